//! Issue 19.8: forwarded answers are scrubbed. A fake upstream on the loopback of one test host
//! sends a CNAME into our zone with a forged record for our name, an unrelated record, out of
//! bailiwick authority and a TTL of 2147483647; dnsd passes on only the question's chain, our
//! own data for our names, and TTLs capped at one day.

use std::net::SocketAddr;

use e2e::{Host, Lab};

mod common;
mod fakeup;

use common::*;
use fakeup::{Canned, a, cname, ns, txt};

const DNS: &str = r#"[dns]
listen = ["127.0.0.1"]
upstream = ["127.0.0.1:5300"]
allow-recursion = ["127.0.0.0/8"]
"#;

const HUGE: u32 = 2_147_483_647;

fn table() -> fakeup::Table {
    vec![
        (
            "poison.example".into(),
            Canned {
                answers: vec![
                    cname("poison.example", HUGE, "web1.it-ishin.com"),
                    a("web1.it-ishin.com", HUGE, [6, 6, 6, 6]),
                    a("victim.example", HUGE, [6, 6, 6, 7]),
                ],
                authorities: vec![
                    ns("it-ishin.com", HUGE, "evil.example"),
                    ns("victim.example", HUGE, "evil.example"),
                ],
                additionals: vec![a("evil.example", HUGE, [6, 6, 6, 8])],
                ..Canned::default()
            },
        ),
        (
            "long.example".into(),
            Canned {
                answers: vec![txt("long.example", HUGE, "kept")],
                authorities: vec![
                    ns("long.example", HUGE, "ns.long.example"),
                    ns("victim.example", HUGE, "evil.example"),
                ],
                ..Canned::default()
            },
        ),
    ]
}

/// The answer, authority and additional lines of dig's output (`+noall +answer ...`).
fn sections(h: &Host, name: &str, t: &str) -> Vec<Vec<String>> {
    let out = dig(
        h,
        &[
            "@127.0.0.1",
            "+noall",
            "+answer",
            "+authority",
            "+additional",
            "+nottlunits",
            name,
            t,
        ],
    );
    out.lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect()
}

fn ttl(line: &[String]) -> u32 {
    line[1].parse().unwrap()
}

#[test]
fn upstream_answers_are_scrubbed() {
    e2e::require_netns!("dig");
    let lab = Lab::new("dnsdscrub");
    let h = lab.host("ns");
    let _up = fakeup::start(&h, "127.0.0.1:5300".parse::<SocketAddr>().unwrap(), table());
    let dir = lab.dir().to_owned();
    let conf = host_file(&dir, DNS);
    let _d = spawn_dnsd(&h, &conf, &dir.join("state"), &[]);

    // Twice: from the upstream, then from the cache.
    for round in 0..2 {
        let got = sections(&h, "poison.example", "A");
        let text = format!("round {round}: {got:?}");
        assert_eq!(got.len(), 2, "{text}");
        assert_eq!(
            got[0][..1],
            ["poison.example.".to_owned()],
            "the question's CNAME: {text}"
        );
        assert_eq!(got[0][3..], ["CNAME", "web1.it-ishin.com."], "{text}");
        assert!(ttl(&got[0]) <= 86_400, "TTL capped: {text}");
        // Our own web1, from our zone, not the upstream's 6.6.6.6.
        assert_eq!(got[1][0], "web1.it-ishin.com.", "{text}");
        assert_eq!(got[1][3..], ["A", "192.168.10.10"], "{text}");
        assert!(ttl(&got[1]) <= 3600, "{text}");
        assert!(!text.contains("6.6.6") && !text.contains("victim") && !text.contains("evil"));
    }

    let got = sections(&h, "long.example", "TXT");
    let text = format!("{got:?}");
    assert_eq!(got.len(), 2, "{text}");
    assert_eq!(got[0][3..], ["TXT", "\"kept\""], "{text}");
    assert_eq!(ttl(&got[0]), 86_400, "{text}");
    // In bailiwick authority stays (TTL capped); the unrelated NS is gone.
    assert_eq!(got[1][0], "long.example.", "{text}");
    assert_eq!(got[1][3..], ["NS", "ns.long.example."], "{text}");
    assert_eq!(ttl(&got[1]), 86_400, "{text}");
}
