//! End-to-end, the status page (issue 18) in a real browser: dnsd runs on the seed LAN's main
//! host with `metrics` on, web1 sends dig traffic (answers, NXDOMAIN, a forwarded query to an
//! upstream that does not answer, a zone transfer) and an nsupdate whose name and TXT hold
//! `<script>`; Debian's chromium, headless in main's namespace, loads `/` and the test reads the
//! DOM it built: zones with the serials dig sees, a queries plot with points, the update listed
//! with its name as text, the secondary's transfer and NOTIFY, the failing upstream; at a
//! phone's width (390 px, over the DevTools protocol) nothing scrolls sideways. Screenshots
//! (phone, the whole page at a phone's width, desktop) go to `<target>/page-shots/dnsd-*.png`.
//!
//! `DNSD_PAGE_SAMPLE_MS=200` (the test knob) samples five times a second, so the plot has points
//! about ten seconds after start (the first 10 s slot only sets the base of the rates).

use std::time::Duration;

use e2e::browser::{dump_dom, screenshot, shots_dir};
use e2e::cdp::Tab;
use e2e::{Host, Ready, SeedLan};

mod common;

use common::*;

const METRICS: &str = "127.0.0.1:9171";
const DNS: &str = r#"[dns]
upstream = ["192.168.1.1"]
allow-recursion = ["192.168.10.0/24"]
update-keys = ["dhcp-update"]
secondary = [{ address = "192.168.10.10" }]
metrics = "127.0.0.1:9171"
"#;
const SERVER: &str = "@192.168.10.1";
const EVIL_TXT: &str = "<script>alert(1)</script>";

/// The page as curl gets it (empty on failure).
fn curl(h: &Host) -> String {
    let out = h.run_unchecked(&[
        "curl",
        "-s",
        "--max-time",
        "5",
        &format!("http://{METRICS}/"),
    ]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The text between `start` and the next `end` after it.
fn between<'a>(s: &'a str, start: &str, end: &str) -> &'a str {
    let from = s.find(start).map_or(s.len(), |i| i + start.len());
    let rest = &s[from..];
    &rest[..rest.find(end).unwrap_or(rest.len())]
}

/// (value of `data-points`, legend) of the first plot (answers by question type).
fn first_plot(dom: &str) -> (usize, String) {
    let fig = between(dom, "<figure class=\"plot\">", "</figure>");
    let points = between(fig, "data-points=\"", "\"").parse().unwrap_or(0);
    (
        points,
        between(fig, "<ul class=\"legend\">", "</ul>").to_owned(),
    )
}

fn traffic(w: &Host) {
    for _ in 0..3 {
        assert_eq!(short(w, SERVER, &["www3.it-ishin.com"]), ["192.168.1.120"]);
        assert!(dig(w, &[SERVER, "nothing-here.it-ishin.com"]).contains("status: NXDOMAIN"));
    }
}

#[test]
fn the_page_shows_traffic_zones_updates_and_peers_in_chromium() {
    e2e::require_netns!("dig", "nsupdate", "curl", "chromium");
    let lan = SeedLan::build("dnsdpage");
    let dir = lan.lab.dir().to_owned();
    let conf = host_file(&dir, DNS);
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    let mut d = lan
        .main
        .process(BIN)
        .args([
            "--config",
            conf.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
            "--runtime-dir",
            state.to_str().unwrap(),
        ])
        .env("DNSD_PAGE_SAMPLE_MS", "200")
        .ready(Ready::Notify)
        .timeout(Duration::from_secs(15))
        .spawn();
    d.wait_for_log(
        "status page on http://127.0.0.1:9171/",
        Duration::from_secs(5),
    )
    .unwrap();
    let w = &lan.web1;

    // Answers and NXDOMAIN; a forwarded name the upstream (nothing on the router's port 53)
    // cannot answer; a zone transfer to the secondary web1.
    traffic(w);
    assert!(dig(w, &[SERVER, "example.org"]).contains("status: SERVFAIL"));
    let axfr = dig(w, &[SERVER, "it-ishin.com", "AXFR"]);
    assert!(axfr.contains("www3.it-ishin.com."), "{axfr}");
    // An update whose owner name and TXT hold <script>: allowed (no host-table name).
    let out = nsupdate(
        w,
        KEY,
        &format!(
            "server 192.168.10.1\nzone it-ishin.com\nupdate add \\<script\\>.it-ishin.com 300 TXT \"{EVIL_TXT}\"\nsend\n"
        ),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let serial = soa_serial(w, SERVER, "it-ishin.com");

    // The plot has the A line once a 10 s slot has passed (traffic keeps coming while we wait),
    // and the NOTIFY the update caused has run its five tries against web1 (nothing listens).
    let ready = wait_until(Duration::from_secs(40), || {
        traffic(w);
        let page = curl(&lan.main);
        let (points, legend) = first_plot(&page);
        points > 0 && legend.contains(" A <") && page.contains("unanswered</span>")
    });
    assert!(
        ready,
        "the page never showed the traffic and the NOTIFY:\n{}",
        curl(&lan.main)
    );

    let url = format!("http://{METRICS}/");
    let dom = dump_dom(Some(&lan.main), &url, &["--virtual-time-budget=5000"]);
    // The zones with the serial dig sees.
    let zones = between(&dom, "<section id=\"zones\">", "</section>");
    assert!(
        zones.contains(&format!(
            "<td class=\"wrap\" data-label=\"zone\">it-ishin.com.</td><td class=\"num\" data-label=\"serial\">{serial}</td>"
        )),
        "{zones}"
    );
    assert!(zones.contains("in-addr.arpa."), "{zones}");
    // The queries plot has points, A and NXDOMAIN among its lines.
    let (points, legend) = first_plot(&dom);
    assert!(points > 0, "{dom}");
    assert!(legend.contains(" A <"), "{legend}");
    let rcodes = between(&dom, "Answers by response code", "</figure>");
    assert!(rcodes.contains(" NXDOMAIN <"), "{rcodes}");
    assert!(!rcodes.contains("data-points=\"0\""), "{rcodes}");
    // The update, its name and TXT as text: no element was injected.
    let updates = between(&dom, "<section id=\"updates\">", "</section>");
    assert!(updates.contains("dhcp-update."), "{updates}");
    assert!(
        updates.contains("&lt;script\\&gt;.it-ishin.com. 300 TXT"),
        "{updates}"
    );
    assert!(
        updates.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{updates}"
    );
    assert_eq!(dom.matches("<script").count(), 1, "{dom}");
    // The secondary's transfer and NOTIFY, the failing upstream.
    let secs = between(&dom, "<section id=\"secondaries\">", "</section>");
    assert!(secs.contains("192.168.10.10:53"), "{secs}");
    assert!(secs.contains("AXFR</span> it-ishin.com."), "{secs}");
    assert!(secs.contains("unanswered</span> it-ishin.com."), "{secs}");
    let ups = between(&dom, "<section id=\"upstreams\">", "</section>");
    assert!(ups.contains("192.168.1.1:53"), "{ups}");
    assert!(ups.contains("failing"), "{ups}");
    assert!(
        dom.contains("<a href=\"./\" aria-current=\"page\">dnsd</a>"),
        "{dom}"
    );

    for (name, size) in [
        ("phone", "390,844"),
        ("desktop", "1280,900"),
        ("desktop-full", "1280,1700"),
    ] {
        let file = shots_dir(env!("CARGO_TARGET_TMPDIR")).join(format!("dnsd-{name}.png"));
        screenshot(Some(&lan.main), &file, size, &url, &[]);
    }
    // On a phone nothing scrolls sideways, neither the page nor a box in it: the zones,
    // updates, secondaries and upstreams tables turn into cards, one labelled cell a line.
    let mut tab = Tab::on_phone(Some(&lan.main), &url);
    let wide = tab.sideways();
    let phone_full = shots_dir(env!("CARGO_TARGET_TMPDIR")).join("dnsd-phone-full.png");
    tab.screenshot(&phone_full, true);
    assert!(wide.is_empty(), "scrolls sideways at 390 px: {wide:?}");
}
