//! End-to-end, operations: dnsd started as root drops to an unprivileged user after binding and
//! keeps serving (queries on port 53, updates written to its store); `dnsd status` reads the
//! running daemon; `/metrics` counters move with queries, updates, transfers and NOTIFY.

use std::path::Path;
use std::time::Duration;

use e2e::{Host, SeedLan};

mod common;

use common::*;

const DNS: &str = r#"[dns]
upstream = ["192.168.1.1"]
allow-recursion = ["192.168.10.0/24", "127.0.0.0/8"]
update-keys = ["dhcp-update"]
secondary = [{ address = "192.168.1.1" }]
metrics = "127.0.0.1:9169"
"#;

fn dnsd_status(h: &Host, conf: &Path, state: &Path, json: bool) -> std::process::Output {
    let mut a = vec![
        BIN,
        "--config",
        conf.to_str().unwrap(),
        "--runtime-dir",
        state.to_str().unwrap(),
        "status",
    ];
    if json {
        a.push("--json");
    }
    h.run_unchecked(&a)
}

#[test]
fn started_as_root_it_drops_to_the_user_and_keeps_serving() {
    e2e::require_netns!("dig", "nsupdate");
    let lan = SeedLan::build("dnsddrop");
    let dir = lan.lab.dir().to_owned();
    let conf = host_file(&dir, DNS);
    let state = dir.join("state");
    let mut d = spawn_dnsd(&lan.main, &conf, &state, &["--user", "nobody"]);
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    let uid = nobody.uid.as_raw().to_string();

    // Unprivileged, every capability gone, no way back.
    let uids: Vec<String> = e2e::procstatus::status_field(d.pid(), "Uid:")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert_eq!(uids, [uid.as_str(); 4]);
    assert_eq!(
        e2e::procstatus::status_field(d.pid(), "CapEff:"),
        "0000000000000000"
    );
    assert_eq!(
        e2e::procstatus::status_field(d.pid(), "CapPrm:"),
        "0000000000000000"
    );
    assert_eq!(
        e2e::procstatus::status_field(d.pid(), "CapBnd:"),
        "0000000000000000"
    );
    assert_eq!(e2e::procstatus::status_field(d.pid(), "NoNewPrivs:"), "1");
    d.wait_for_log("dropped root privileges", Duration::from_secs(5))
        .unwrap();

    // Still answers on port 53 (bound before the drop).
    let w = &lan.web1;
    assert_eq!(
        short(w, "@192.168.10.1", &["www3.it-ishin.com"]),
        ["192.168.1.120"]
    );
    // An update is written to the store in the state folder, handed over to the user.
    let serial0 = soa_serial(w, "@192.168.10.1", "it-ishin.com");
    let out = nsupdate(
        w,
        KEY,
        "server 192.168.10.1\nzone it-ishin.com\nupdate add laptop.it-ishin.com 300 A 192.168.10.200\nsend\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        short(w, "@192.168.10.1", &["laptop.it-ishin.com"]),
        ["192.168.10.200"]
    );
    assert!(soa_serial(w, "@192.168.10.1", "it-ishin.com") > serial0);
    use std::os::unix::fs::MetadataExt as _;
    let store = std::fs::read_dir(&state)
        .unwrap()
        .flatten()
        .find(|e| e.path().extension().is_some_and(|x| x == "redb"))
        .expect("a store in the state folder");
    assert_eq!(store.metadata().unwrap().uid(), nobody.uid.as_raw());
    assert_eq!(
        std::fs::metadata(&state).unwrap().uid(),
        nobody.uid.as_raw()
    );

    // `dnsd status` asks the running daemon (the control socket it made before the drop).
    assert!(state.join("control.sock").exists());
    let out = dnsd_status(&lan.main, &conf, &state, true);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["uid"], nobody.uid.as_raw());
    assert_eq!(v["pid"], d.pid());
    let zones = v["zones"].as_array().unwrap();
    let fwd = zones
        .iter()
        .find(|z| z["zone"] == "it-ishin.com.")
        .expect("forward zone");
    assert_eq!(
        fwd["serial"],
        soa_serial(w, "@192.168.10.1", "it-ishin.com")
    );
    assert!(fwd["records"].as_u64().unwrap() > 10, "{fwd}");
    assert!(
        zones
            .iter()
            .any(|z| z["zone"] == "10.168.192.in-addr.arpa.")
    );
    let ups = v["updates"].as_array().unwrap();
    assert_eq!(ups.len(), 1, "{v:#}");
    assert_eq!(ups[0]["zone"], "it-ishin.com.");
    assert_eq!(ups[0]["key"], "dhcp-update.");
    assert_eq!(ups[0]["from"], serial0);
    assert_eq!(
        ups[0]["added"],
        serde_json::json!(["laptop.it-ishin.com. 300 A 192.168.10.200"])
    );
    assert_eq!(v["counters"]["updates_applied"], 1);
    assert!(v["counters"]["queries"].as_u64().unwrap() >= 4);
    let out = dnsd_status(&lan.main, &conf, &state, false);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("it-ishin.com."), "{text}");
    assert!(
        text.contains("+ laptop.it-ishin.com. 300 A 192.168.10.200"),
        "{text}"
    );
    assert!(text.contains("key dhcp-update."), "{text}");

    // Stopped (as the user: it removes its socket) and started again: the update log is kept.
    assert!(d.stop().success());
    assert!(!state.join("control.sock").exists());
    let _d = spawn_dnsd(&lan.main, &conf, &state, &["--user", "nobody"]);
    let out = dnsd_status(&lan.main, &conf, &state, true);
    let v2: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v2["updates"], v["updates"], "{v2:#}");
    assert_eq!(
        short(w, "@192.168.10.1", &["laptop.it-ishin.com"]),
        ["192.168.10.200"]
    );
}

#[test]
fn status_without_a_daemon_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let conf = host_file(dir.path(), DNS);
    let out = std::process::Command::new(BIN)
        .args(["--config", conf.to_str().unwrap(), "--runtime-dir"])
        .arg(dir.path())
        .arg("status")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is the daemon running?"), "{err}");
}

/// Scrapes `/metrics` in `h`: (series with labels, value) pairs.
/// Started as root by hand, dnsd never follows a link planted where its store goes (the daemon
/// user owns the state folder after the first run): it refuses to start, and nothing is created
/// where the link points.
#[test]
fn a_link_planted_as_the_store_stops_the_start() {
    e2e::require_netns!();
    let lan = SeedLan::build("dnsdlink");
    let dir = lan.lab.dir().to_owned();
    let conf = host_file(&dir, DNS);
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    let target = dir.join("planted");
    std::os::unix::fs::symlink(&target, state.join("dnsd.redb")).unwrap();
    let refused = lan
        .main
        .process(BIN)
        .args(["--config", conf.to_str().unwrap(), "--state-dir"])
        .arg(&state)
        .args(["--user", "nobody"])
        .ready(e2e::Ready::Notify)
        .timeout(Duration::from_secs(15))
        .try_spawn()
        .expect_err("dnsd must not start through a planted link");
    assert!(refused.stderr.contains("symbolic link"), "{refused}");
    assert!(!target.exists(), "root created the link's target");
}

fn scrape(h: &Host) -> Vec<(String, f64)> {
    let out = h.run(&[
        "curl",
        "-sf",
        "--max-time",
        "5",
        "http://127.0.0.1:9169/metrics",
    ]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_owned(), v.parse().ok()?))
        })
        .collect()
}

fn value(m: &[(String, f64)], series: &str) -> f64 {
    m.iter().find(|(k, _)| k == series).map_or(0.0, |(_, v)| *v)
}

/// Polls `f` until it returns true or `limit` passes (a bounded wait on a condition).
#[test]
fn metrics_move_with_queries_updates_and_transfers() {
    e2e::require_netns!("dig", "nsupdate", "curl");
    let lan = SeedLan::build("dnsdmetr");
    let dir = lan.lab.dir().to_owned();
    let conf = host_file(&dir, DNS);
    let state = dir.join("state");
    // A user that does not exist: it refuses to start rather than serve as root.
    let refused = lan
        .main
        .process(BIN)
        .args(["--config", conf.to_str().unwrap(), "--state-dir"])
        .arg(&state)
        .args(["--user", "no-such-dnsd-user"])
        .ready(e2e::Ready::Notify)
        .timeout(Duration::from_secs(15))
        .try_spawn()
        .expect_err("dnsd must not start as root when its user is missing");
    assert!(refused.status.is_some_and(|s| !s.success()), "{refused}");
    assert!(
        refused.stderr.contains("no-such-dnsd-user") && refused.stderr.contains("--user root"),
        "{refused}"
    );
    // Root only when asked for by name.
    let mut d = spawn_dnsd(&lan.main, &conf, &state, &["--user", "root"]);
    d.wait_for_log("asked not to drop privileges", Duration::from_secs(5))
        .unwrap();
    assert!(e2e::procstatus::status_field(d.pid(), "Uid:").starts_with("0\t"));
    let before = scrape(&lan.main);
    let w = &lan.web1;
    let a = r#"dnsd_answers_total{qtype="A",rcode="NOERROR"}"#;
    let nx = r#"dnsd_answers_total{qtype="A",rcode="NXDOMAIN"}"#;
    let ptr = r#"dnsd_answers_total{qtype="PTR",rcode="NOERROR"}"#;
    let aaaa = r#"dnsd_answers_total{qtype="AAAA",rcode="NOERROR"}"#;
    for _ in 0..3 {
        assert_eq!(
            short(w, "@192.168.10.1", &["www3.it-ishin.com"]),
            ["192.168.1.120"]
        );
    }
    assert!(short(w, "@192.168.10.1", &["nothere.it-ishin.com"]).is_empty());
    assert_eq!(
        short(w, "@192.168.10.1", &["-x", "192.168.10.12"]),
        ["db.it-ishin.com."]
    );
    assert!(short(w, "@192.168.10.1", &["web1.it-ishin.com", "AAAA"]).is_empty());
    let serial0 = soa_serial(w, "@192.168.10.1", "it-ishin.com");
    // One update applied, one refused (a name of the host table).
    let out = nsupdate(
        w,
        KEY,
        "server 192.168.10.1\nzone it-ishin.com\nupdate add laptop.it-ishin.com 300 A 192.168.10.200\nsend\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = nsupdate(
        w,
        KEY,
        "server 192.168.10.1\nzone it-ishin.com\nupdate add web1.it-ishin.com 300 A 10.9.9.9\nsend\n",
    );
    assert!(!out.status.success());
    // A whole-zone transfer and an incremental one, to the configured secondary.
    let r = &lan.router;
    let out = dig(r, &["@192.168.1.2", "it-ishin.com", "AXFR"]);
    assert_eq!(out.matches("\tSOA\t").count(), 2, "{out}");
    let ixfr = format!("IXFR={serial0}");
    let out = dig(r, &["@192.168.1.2", "+tcp", "it-ishin.com", &ixfr]);
    assert!(out.contains("laptop.it-ishin.com."), "{out}");
    // A name outside our zones: forwarded (the router runs no resolver: SERVFAIL), a cache miss.
    let _ = dig(w, &["@192.168.10.1", "www.example.org"]);

    let after = scrape(&lan.main);
    let moved = |s: &str| value(&after, s) - value(&before, s);
    assert_eq!(moved(a), 3.0, "{after:?}");
    assert_eq!(moved(nx), 1.0);
    assert_eq!(moved(ptr), 1.0);
    assert_eq!(moved(aaaa), 1.0);
    assert!(moved("dnsd_request_duration_seconds_count") >= 8.0);
    assert!(moved("dnsd_request_duration_seconds_sum") > 0.0);
    assert!(
        value(&after, r#"dnsd_request_duration_seconds_bucket{le="+Inf"}"#)
            == value(&after, "dnsd_request_duration_seconds_count")
    );
    assert_eq!(moved(r#"dnsd_updates_total{result="applied"}"#), 1.0);
    assert_eq!(moved(r#"dnsd_updates_total{result="refused"}"#), 1.0);
    assert_eq!(moved(r#"dnsd_transfers_total{kind="axfr"}"#), 1.0);
    assert_eq!(moved(r#"dnsd_transfers_total{kind="ixfr"}"#), 1.0);
    assert_eq!(moved("dnsd_cache_misses_total"), 1.0);
    assert_eq!(
        value(&after, r#"dnsd_zone_serial{zone="it-ishin.com."}"#),
        f64::from(soa_serial(w, "@192.168.10.1", "it-ishin.com"))
    );
    assert!(value(&after, r#"dnsd_zone_records{zone="it-ishin.com."}"#) > 10.0);
    // The update's NOTIFY to the secondary (nobody answers on the router).
    assert!(
        wait_until(Duration::from_secs(5), || value(
            &scrape(&lan.main),
            "dnsd_notify_sent_total"
        ) > value(
            &before,
            "dnsd_notify_sent_total"
        )),
        "no NOTIFY counted"
    );
}
