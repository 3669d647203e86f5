//! Source persistence EXPIRES: with a 2 s timeout a client keeps its backend across requests,
//! and once the timeout has passed without traffic its next connection is scheduled afresh
//! (rr here, which picks the other backend). Kernel: the client's element leaves the
//! backend's set (`nft list set`, polled with a bound) no earlier than the timeout after its
//! last request; proxy: its next request goes elsewhere, again no earlier than the timeout.

mod common;

use std::time::{Duration, Instant};

use common::*;
use e2e::SeedLan;

const TIMEOUT: Duration = Duration::from_secs(2);
/// How long past the timeout expiry may take to show.
const SLACK: Duration = Duration::from_secs(3);

/// Client A (192.168.1.51) takes web1 (rr slot 0), then client B (192.168.1.50) lands on web2
/// (slot 1) and must stay there for `n` requests. Returns when B's last request ended.
fn stick(lan: &SeedLan, n: usize) -> Instant {
    lan.outside.add_addr("eth0", "192.168.1.51/24");
    assert_eq!(get_from(lan, "192.168.1.51").unwrap(), "web1");
    let mine = gets(lan, n);
    assert!(mine.iter().all(|b| b == "web2"), "not sticky: {mine:?}");
    Instant::now()
}

#[test]
fn kernel_persistence_expires_after_the_timeout() {
    e2e::require_netns!("nft", "curl", "busybox");
    let lan = SeedLan::build("lbkpexp");
    let _w1 = web(&lan.web1, "web1");
    let _w2 = web(&lan.web2, "web2");
    let conf = host_file(&lan, "persistence = \"2s\"");
    let _lbd = lbd(&lan, &conf);
    let last = stick(&lan, 5);
    let set = [
        "nft",
        "list",
        "set",
        "ip",
        "lbd",
        "aff_www3_192_168_10_11_80_2",
    ];
    let listed = String::from_utf8_lossy(&lan.main.run(&set).stdout).into_owned();
    assert!(listed.contains("192.168.1.50"), "{listed}");
    // No traffic from B: wait (bounded) for its element to expire.
    loop {
        let listed = String::from_utf8_lossy(&lan.main.run(&set).stdout).into_owned();
        if !listed.contains("192.168.1.50") {
            break;
        }
        assert!(
            last.elapsed() < TIMEOUT + SLACK,
            "element still there {:?} after the last request:\n{listed}",
            last.elapsed()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let gone = last.elapsed();
    println!("kernel: B's persistence element gone {gone:?} after its last request");
    assert!(
        gone >= TIMEOUT - Duration::from_millis(100),
        "expired early: {gone:?}"
    );
    // B's next connection is scheduled again: rr slot 2 -> web1, and it sticks there now.
    let moved = gets(&lan, 4);
    assert!(moved.iter().all(|b| b == "web1"), "not moved: {moved:?}");
}

#[test]
fn proxy_persistence_expires_after_the_timeout() {
    e2e::require_netns!("curl", "busybox");
    let lan = SeedLan::build("lbppexp");
    let _w1 = web(&lan.web1, "web1");
    let _w2 = web(&lan.web2, "web2");
    let conf = host_file(&lan, "dataplane = \"proxy\"\npersistence = \"2s\"");
    let mut lbd = lbd(&lan, &conf);
    lbd.wait_for_log("proxy listening", Duration::from_secs(2))
        .unwrap();
    // The proxy's persistence entry is dated from the choice (B's first request), and its
    // sticky requests do not advance the rr cursor: poll with requests until B moves.
    lan.outside.add_addr("eth0", "192.168.1.51/24");
    assert_eq!(get_from(&lan, "192.168.1.51").unwrap(), "web1");
    let chosen = Instant::now();
    assert_eq!(get(&lan).unwrap(), "web2");
    let mut sticky = 1;
    let moved_at = loop {
        let b = get(&lan).unwrap();
        if b != "web2" {
            assert_eq!(b, "web1", "rr slot 2");
            break chosen.elapsed();
        }
        sticky += 1;
        assert!(
            chosen.elapsed() < TIMEOUT + SLACK,
            "B still on web2 {:?} after the choice",
            chosen.elapsed()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    println!("proxy: B moved {moved_at:?} after the choice, {sticky} sticky requests before");
    assert!(sticky >= 5, "too few sticky requests: {sticky}");
    assert!(moved_at >= TIMEOUT, "expired early: {moved_at:?}");
    // And it sticks to its new backend.
    let after = gets(&lan, 3);
    assert!(after.iter().all(|b| b == "web1"), "{after:?}");
}
