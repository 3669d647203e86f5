//! Source persistence EXPIRES, timed from the client's LAST connection (as LVS's
//! persistence_timeout): with a 2 s timeout a client keeps its backend across requests, and
//! once the timeout has passed without traffic its next connection is scheduled afresh (rr
//! here, which picks the other backend). Kernel: the client's element leaves the backend's set
//! (`nft list set`, polled with a bound) no earlier than the timeout after its last request;
//! proxy (whose table is not observable): a client connecting every half timeout for twice the
//! timeout stays put, and after the timeout has passed with no traffic it moves.

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
    let last = stick(&lan, 5);
    // The proxy's persistence table is not observable from outside, and a request would be
    // the very thing under test, so these waits are the timeout being tested, not a
    // synchronisation with lbd. Persistence times out from the LAST connection: B connects
    // again every half timeout, for twice the timeout in all, and stays on web2 throughout
    // (an entry timed from when the backend was chosen would move it to web1 here).
    let first = Instant::now();
    let mut last = last;
    let mut seen = Vec::new();
    while first.elapsed() < 2 * TIMEOUT {
        std::thread::sleep((TIMEOUT / 2).saturating_sub(last.elapsed()));
        seen.push(get(&lan).unwrap());
        last = Instant::now();
    }
    println!(
        "proxy: {} requests over {:?}, every {:?}: {seen:?}",
        seen.len(),
        first.elapsed(),
        TIMEOUT / 2
    );
    assert!(seen.iter().all(|b| b == "web2"), "not refreshed: {seen:?}");
    // Now a silence longer than the timeout: B's next connection is scheduled afresh. Sticky
    // requests did not advance the rr cursor, so that is rr slot 2 -> web1, and it sticks.
    std::thread::sleep((TIMEOUT + Duration::from_millis(300)).saturating_sub(last.elapsed()));
    let moved = gets(&lan, 4);
    assert!(moved.iter().all(|b| b == "web1"), "not moved: {moved:?}");
}
