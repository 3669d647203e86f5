//! Schedulers and service modes with real traffic, on both data planes: curl from the outside
//! client through the VIP 192.168.1.120 to busybox httpd on web1/web2/db.
//!
//! - wrr: weights 3:1 give 3:1 over 40 requests;
//! - sh: each client address always lands on the same backend; when a backend leaves only its
//!   clients move, and when it returns they come back;
//! - persistence: a client sticks to its backend within the timeout;
//! - sorry: all backends down -> the sorry server answers; a backend back -> live again;
//! - quorum: below the quorum the service is withdrawn (connection refused), back when health
//!   returns.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use e2e::{Proc, SeedLan};

const WAIT: Duration = Duration::from_secs(5);

fn plane_line(plane: &str) -> String {
    format!("dataplane = \"{plane}\"")
}

/// Starts lbd and, for the proxy plane, waits for its listener.
fn start(lan: &SeedLan, conf: &std::path::Path, plane: &str) -> Proc {
    let mut p = lbd(lan, conf);
    if plane == "proxy" {
        p.wait_for_log("proxy listening", WAIT).unwrap();
    }
    p
}

/// Waits until lbd logged (after `cursor`) that www3 is now in `mode` (Live, Sorry, Withdrawn):
/// the line comes after the apply, so the data plane already carries it.
fn wait_mode(lbd: &mut Proc, cursor: e2e::LogCursor, mode: &str) {
    lbd.wait_for_log_after(cursor, &format!("mode={mode}"), WAIT)
        .unwrap_or_else(|e| panic!("www3 not {mode}: {e}\n{}", lbd.stderr()));
}

/// Waits until lbd logged (after `cursor`) a service state whose targets start with `targets`.
fn wait_targets(lbd: &mut Proc, cursor: e2e::LogCursor, targets: &str) {
    lbd.wait_for_log_after(cursor, &format!("targets={targets}"), WAIT)
        .unwrap_or_else(|e| panic!("targets not {targets}: {e}\n{}", lbd.stderr()));
}

fn wrr(prefix: &str, plane: &str) {
    e2e::require_netns!("nft", "curl", "busybox");
    let lan = SeedLan::build(prefix);
    let _w1 = web(&lan.web1, "web1");
    let _w2 = web(&lan.web2, "web2");
    let conf = host_file_with(&lan, |t| {
        t.replace(
            "backends = [\"web1\", \"web2\"]",
            "backends = [{ host = \"web1\", weight = 3 }, \"web2\"]",
        )
        .replace(
            "scheduler = \"rr\"",
            &format!("scheduler = \"wrr\"\n{}", plane_line(plane)),
        )
    });
    let _lbd = start(&lan, &conf, plane);
    let bodies = gets(&lan, 40);
    let w1 = bodies.iter().filter(|b| *b == "web1").count();
    let w2 = bodies.iter().filter(|b| *b == "web2").count();
    println!("{plane} wrr 3:1 over 40 requests: web1 {w1}, web2 {w2}");
    assert_eq!(w1 + w2, 40, "{bodies:?}");
    assert!((28..=32).contains(&w1), "not 3:1: {bodies:?}");
    // Smooth weighted round robin interleaves: web2 within every 4 consecutive requests.
    for w in bodies.windows(4) {
        assert!(w.iter().any(|b| b == "web2"), "burst of web1: {bodies:?}");
    }
}

#[test]
fn kernel_wrr_weights_3_to_1() {
    wrr("lbkwrr", "kernel");
}

#[test]
fn proxy_wrr_weights_3_to_1() {
    wrr("lbpwrr", "proxy");
}

/// Backend of each client address (three requests each, which must agree).
fn sh_map(lan: &SeedLan, clients: &[String]) -> BTreeMap<String, String> {
    clients
        .iter()
        .map(|c| {
            let v: Vec<String> = (0..3)
                .map(|_| get_from(lan, c).unwrap_or_else(|e| panic!("{c}: {e}")))
                .collect();
            assert!(
                v.iter().all(|b| *b == v[0]),
                "{c} not sticky under sh: {v:?}"
            );
            (c.clone(), v[0].clone())
        })
        .collect()
}

fn sh(prefix: &str, plane: &str) {
    e2e::require_netns!("nft", "curl", "busybox");
    let lan = SeedLan::build(prefix);
    let mut web1 = Some(web(&lan.web1, "web1"));
    let _w2 = web(&lan.web2, "web2");
    let _db = web(&lan.db, "db");
    let conf = host_file_with(&lan, |t| {
        t.replace(
            "backends = [\"web1\", \"web2\"]",
            "backends = [\"web1\", \"web2\", \"db\"]",
        )
        .replace(
            "scheduler = \"rr\"",
            &format!("scheduler = \"sh\"\n{}", plane_line(plane)),
        )
    });
    let mut lbd = start(&lan, &conf, plane);
    let clients: Vec<String> = (50..=65).map(|i| format!("192.168.1.{i}")).collect();
    for c in &clients[1..] {
        lan.outside.add_addr("eth0", &format!("{c}/24"));
    }
    let before = sh_map(&lan, &clients);
    let mut per: BTreeMap<&str, usize> = BTreeMap::new();
    for b in before.values() {
        *per.entry(b.as_str()).or_default() += 1;
    }
    println!("{plane} sh, 16 clients: {per:?}");
    assert!(
        per.len() >= 2,
        "sh sent every client to one backend: {before:?}"
    );
    assert!(per.contains_key("web1"), "no client on web1: {before:?}");

    // web1 leaves: only its clients move.
    let cursor = lbd.log_cursor();
    drop(web1.take());
    wait_targets(
        &mut lbd,
        cursor,
        "web2=192.168.10.11:80,db=192.168.10.12:80",
    );
    let during = sh_map(&lan, &clients);
    for c in &clients {
        if before[c] == "web1" {
            assert_ne!(during[c], "web1", "{c}");
        } else {
            assert_eq!(during[c], before[c], "{c} moved though its backend stayed");
        }
    }
    // web1 returns: its clients come back, the others stay.
    let cursor = lbd.log_cursor();
    web1 = Some(web(&lan.web1, "web1"));
    wait_targets(
        &mut lbd,
        cursor,
        "web1=192.168.10.10:80,web2=192.168.10.11:80,db=192.168.10.12:80",
    );
    let after = sh_map(&lan, &clients);
    assert_eq!(after, before);
    drop(web1);
}

#[test]
fn kernel_sh_is_sticky_and_consistent() {
    sh("lbksh", "kernel");
}

#[test]
fn proxy_sh_is_sticky_and_consistent() {
    sh("lbpsh", "proxy");
}

#[test]
fn proxy_persistence_sticks_within_the_timeout() {
    e2e::require_netns!("curl", "busybox");
    let lan = SeedLan::build("lbppers");
    let _w1 = web(&lan.web1, "web1");
    let _w2 = web(&lan.web2, "web2");
    let conf = host_file(&lan, "dataplane = \"proxy\"\npersistence = \"300s\"");
    let _lbd = start(&lan, &conf, "proxy");
    // A first client takes web1 (rr slot 0); the client under test then lands on web2 and
    // must stay there although rr alone would alternate.
    lan.outside.add_addr("eth0", "192.168.1.51/24");
    assert_eq!(get_from(&lan, "192.168.1.51").unwrap(), "web1");
    let mine = gets(&lan, 6);
    assert!(mine.iter().all(|b| b == "web2"), "not sticky: {mine:?}");
    assert!(
        (0..4).all(|_| get_from(&lan, "192.168.1.51").unwrap() == "web1"),
        "first client lost its backend"
    );
}

fn sorry(prefix: &str, plane: &str) {
    e2e::require_netns!("nft", "curl", "busybox");
    let lan = SeedLan::build(prefix);
    let mut w1 = Some(web(&lan.web1, "web1"));
    let mut w2 = Some(web(&lan.web2, "web2"));
    let _sorry = web_port(&lan.db, "sorry", 8080);
    let conf = host_file(
        &lan,
        &format!("{}\nsorry = \"192.168.10.12:8080\"", plane_line(plane)),
    );
    let mut lbd = start(&lan, &conf, plane);
    assert_alternating(&gets(&lan, 4));
    let cursor = lbd.log_cursor();
    drop(w1.take());
    drop(w2.take());
    wait_mode(&mut lbd, cursor, "Sorry");
    let st = status(&lan, &conf);
    assert_eq!(st["services"][0]["mode"], "sorry", "{st}");
    let s = gets(&lan, 4);
    assert!(s.iter().all(|b| b == "sorry"), "{s:?}");
    // A backend returns: traffic goes to it, not to the sorry server.
    let cursor = lbd.log_cursor();
    w1 = Some(web(&lan.web1, "web1"));
    wait_mode(&mut lbd, cursor, "Live");
    let back = gets(&lan, 4);
    assert!(back.iter().all(|b| b == "web1"), "{back:?}");
    drop((w1, w2));
}

#[test]
fn kernel_sorry_server_when_all_backends_are_down() {
    sorry("lbksorry", "kernel");
}

#[test]
fn proxy_sorry_server_when_all_backends_are_down() {
    sorry("lbpsorry", "proxy");
}

fn quorum(prefix: &str, plane: &str) {
    e2e::require_netns!("nft", "curl", "busybox");
    let lan = SeedLan::build(prefix);
    let mut w1 = Some(web(&lan.web1, "web1"));
    let _w2 = web(&lan.web2, "web2");
    let conf = host_file(&lan, &format!("{}\nquorum = 2", plane_line(plane)));
    let mut lbd = start(&lan, &conf, plane);
    assert_alternating(&gets(&lan, 4));
    // web1 stops: live weight 1 < quorum 2 -> withdrawn, although web2 is healthy.
    let cursor = lbd.log_cursor();
    drop(w1.take());
    wait_mode(&mut lbd, cursor, "Withdrawn");
    for i in 0..3 {
        let r = get(&lan);
        assert!(r.is_err(), "request {i} served while withdrawn: {r:?}");
        let e = r.unwrap_err();
        println!("{plane} withdrawn: {e}");
        assert!(
            e.contains("connect")
                || e.contains("refused")
                || e.contains("reset")
                || e.contains("timed out"),
            "{e}"
        );
    }
    let st = status(&lan, &conf);
    assert_eq!(st["services"][0]["mode"], "withdrawn", "{st}");
    // web1 returns: quorum met again, the service is back on both backends.
    let cursor = lbd.log_cursor();
    w1 = Some(web(&lan.web1, "web1"));
    wait_mode(&mut lbd, cursor, "Live");
    assert_alternating(&gets(&lan, 4));
    drop(w1);
}

#[test]
fn kernel_quorum_withdraws_and_restores() {
    quorum("lbkquor", "kernel");
}

#[test]
fn proxy_quorum_withdraws_and_restores() {
    quorum("lbpquor", "proxy");
}
