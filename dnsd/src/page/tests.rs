use std::time::{Duration, Instant};

use runtime::page::{History, Kind, STEP, sample_interval};
use serde_json::json;

use super::render::{Input, page};
use super::*;
use crate::peers::Peers;

#[test]
fn the_sample_interval_is_ten_seconds_unless_the_test_knob_says_otherwise() {
    assert_eq!(sample_interval(None), STEP);
    assert_eq!(sample_interval(Some("250")), Duration::from_millis(250));
    assert_eq!(sample_interval(Some("0")), STEP);
    assert_eq!(sample_interval(Some("soon")), STEP);
}

#[test]
fn the_page_shows_zones_updates_peers_and_plots_with_names_as_text() {
    let table = HostTable::load(&hostfile::checkcases::example_path()).unwrap();
    let mut view = table.dns_view();
    view.secondaries = vec![hostfile::Secondary {
        address: "192.168.1.1:53".parse().unwrap(),
        key: None,
        notify: true,
    }];
    view.upstream = vec!["192.168.1.1:53".parse().unwrap()];
    let evil = "\\<script\\>.it-ishin.com. 300 TXT \"<script>alert(1)</script>\"";
    let doc = json!({
        "zones": [{"zone": "it-ishin.com.", "serial": 2026120401u32, "records": 17, "names": 12}],
        "updates": [{"time": 1000, "zone": "it-ishin.com.", "key": "dhcp-update.", "from": 1,
                     "serial": 2, "changes": 1, "added": [evil], "removed": []}],
        "cache_entries": 3,
        "counters": {"queries": 12, "cache_hits": 3, "cache_misses": 1, "rrl_dropped": 4},
    });
    let peers = Peers::default();
    let ip = "192.168.1.1".parse().unwrap();
    peers.notified(ip, "it-ishin.com.", 2, true, 1000);
    peers.transferred(ip, "it-ishin.com.", 2, true, 1001);
    peers.upstream(view.upstream[0], false, 1002);
    let t0 = Instant::now();
    let mut h = History::new(64);
    for k in 0..5u32 {
        h.sample(
            &type_series("A"),
            Kind::Counter,
            t0 + STEP * k,
            f64::from(k * 100),
        );
        h.sample(
            &rcode_series("NXDOMAIN"),
            Kind::Counter,
            t0 + STEP * k,
            f64::from(k * 10),
        );
    }
    let html = page(
        &Input {
            doc: &doc,
            view: &view,
            secondaries: &peers.secondaries(),
            upstreams: &peers.upstreams(),
            history: &h,
            now: t0 + STEP * 4,
            unix: 1010,
        },
        &[],
    );
    assert!(html.contains("<td class=\"wrap\" data-label=\"zone\">it-ishin.com.</td><td class=\"num\" data-label=\"serial\">2026120401</td><td class=\"num\" data-label=\"records\">17</td>"), "{html}");
    assert!(html.contains("\\&lt;script\\&gt;.it-ishin.com. 300 TXT &quot;&lt;script&gt;alert(1)&lt;/script&gt;&quot;"), "{html}");
    assert_eq!(
        html.matches("<script").count(),
        1,
        "only the page's own script: {html}"
    );
    assert!(html.contains("75.0 %"), "cache hit ratio: {html}");
    assert!(
        html.contains("acknowledged</span> it-ishin.com. serial 2"),
        "{html}"
    );
    assert!(html.contains("IXFR</span>"), "{html}");
    assert!(html.contains("failing"), "{html}");
    assert!(
        html.contains("10 s ago<br><span class=\"muted at\">1970-01-01T00:16:40Z</span>"),
        "{html}"
    );
    // Four rates of A (10/s) and of NXDOMAIN (1/s) drawn.
    assert!(html.contains("data-points=\"4\""), "{html}");
    assert!(html.contains(" A <span class=\"now\">10</span>"), "{html}");
    assert!(
        html.contains(" NXDOMAIN <span class=\"now\">1</span>"),
        "{html}"
    );
}
