//! Issue 19.3: forwarded answers go back whole over TCP; an upstream's TC over UDP makes dnsd
//! ask it again over TCP. dnsd and a fake upstream on the loopback of one test host.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;

use e2e::{Host, Lab, Proc};

mod common;
mod fakeup;

use common::*;
use fakeup::{Canned, FakeUpstream, a, many_a};

const DNS: &str = r#"[dns]
listen = ["127.0.0.1"]
upstream = ["127.0.0.1:5300"]
allow-recursion = ["127.0.0.0/8"]
"#;

/// 40 A records: 700 bytes, more than 512, less than 1232.
const FORTY: u32 = 40;
/// 100 A records: 1,700 bytes, more than 1232 (the upstream itself truncates over UDP).
const HUNDRED: u32 = 100;

fn table() -> fakeup::Table {
    vec![
        (
            "forty.example".into(),
            Canned {
                answers: many_a("forty.example", FORTY, 40),
                ..Canned::default()
            },
        ),
        (
            "hundred.example".into(),
            Canned {
                answers: many_a("hundred.example", HUNDRED, 100),
                ..Canned::default()
            },
        ),
        (
            // Small, but the upstream sets TC over UDP (with a partial answer): only the TCP
            // answer is whole.
            "tc.example".into(),
            Canned {
                answers: vec![
                    a("tc.example", 300, [10, 3, 0, 1]),
                    a("tc.example", 300, [10, 3, 0, 2]),
                    a("tc.example", 300, [10, 3, 0, 3]),
                ],
                udp_tc: Some(Box::new(Canned {
                    answers: vec![a("tc.example", 300, [10, 9, 9, 9])],
                    ..Canned::default()
                })),
                ..Canned::default()
            },
        ),
    ]
}

fn setup(prefix: &str) -> (Lab, Host, Proc, FakeUpstream) {
    let lab = Lab::new(prefix);
    let h = lab.host("ns");
    let up = fakeup::start(&h, "127.0.0.1:5300".parse::<SocketAddr>().unwrap(), table());
    let dir = lab.dir().to_owned();
    let conf = host_file(&dir, DNS);
    let d = spawn_dnsd(&h, &conf, &dir.join("state"), &[]);
    (lab, h, d, up)
}

/// The A records of `+short` output (sorted), and dig's whole output for messages.
fn addrs(h: &Host, args: &[&str]) -> (Vec<String>, String) {
    let mut a = vec!["@127.0.0.1"];
    a.extend_from_slice(args);
    let out = dig(h, &a);
    let mut v: Vec<String> = out
        .lines()
        .filter(|l| !l.starts_with(';') && l.parse::<std::net::Ipv4Addr>().is_ok())
        .map(str::to_owned)
        .collect();
    v.sort();
    (v, out)
}

#[test]
fn forwarded_answers_go_back_whole_over_tcp() {
    e2e::require_netns!("dig");
    let (_lab, h, _d, up) = setup("dnsdfwdtcp");
    // Over TCP with EDNS: more than the 1232 a UDP answer may carry.
    let (v, out) = addrs(&h, &["+tcp", "+short", "hundred.example", "A"]);
    assert_eq!(v.len(), HUNDRED as usize, "{out}");
    // Over UDP with EDNS: the upstream's own TC made dnsd ask again over TCP; the client gets TC
    // and retries over TCP (dig does by itself), then the whole answer.
    let (v, out) = addrs(&h, &["+short", "hundred.example", "A"]);
    assert_eq!(v.len(), HUNDRED as usize, "{out}");
    assert!(up.tcp_queries.load(Relaxed) >= 1);
    // Without EDNS (glibc's default): 512 bytes over UDP, so TC, then TCP gets all 40.
    let out = dig(
        &h,
        &["@127.0.0.1", "+noedns", "+ignore", "forty.example", "A"],
    );
    assert!(
        out.contains("flags: qr tc"),
        "the UDP answer is truncated: {out}"
    );
    let (v, out) = addrs(&h, &["+noedns", "+short", "forty.example", "A"]);
    assert_eq!(v.len(), FORTY as usize, "{out}");
    let (v, out) = addrs(&h, &["+noedns", "+tcp", "+short", "forty.example", "A"]);
    assert_eq!(v.len(), FORTY as usize, "{out}");
}

#[test]
fn upstream_tc_over_udp_is_asked_again_over_tcp() {
    e2e::require_netns!("dig");
    let (_lab, h, _d, up) = setup("dnsdfwdtc");
    let (v, out) = addrs(&h, &["+short", "tc.example", "A"]);
    assert_eq!(v, ["10.3.0.1", "10.3.0.2", "10.3.0.3"], "{out}");
    let asked = (up.udp_queries.load(Relaxed), up.tcp_queries.load(Relaxed));
    assert_eq!(asked, (1, 1), "one UDP question (TC), then one over TCP");
    // The whole answer was cached: the client gets it again without asking the upstream.
    let (v, out) = addrs(&h, &["+tcp", "+short", "tc.example", "A"]);
    assert_eq!(v, ["10.3.0.1", "10.3.0.2", "10.3.0.3"], "{out}");
    let again = (up.udp_queries.load(Relaxed), up.tcp_queries.load(Relaxed));
    assert_eq!(again, asked);
}
