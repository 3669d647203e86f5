//! `lbd drain` / `lbd undrain` on the seed LAN (kernel data plane): curl from the outside client
//! through the VIP stops reaching the drained backend, `lbd status` shows it drained, a reload of
//! the host file and a restart of lbd keep it drained (the state folder's `drained` file), and
//! undrain brings it back. Errors (an unknown backend) exit non-zero with the backends listed.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use e2e::{Proc, Ready, SeedLan};

/// lbd in main with its runtime and state folders in the lab.
fn start(lan: &SeedLan, conf: &Path) -> Proc {
    let rt = lan.lab.dir().join("run-main");
    let state = lan.lab.dir().join("state-main");
    lan.main
        .process(BIN)
        .args([
            "--config",
            conf.to_str().unwrap(),
            "--runtime-dir",
            rt.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
        ])
        .name("lbd")
        .ready(Ready::Notify)
        .timeout(Duration::from_secs(15))
        .spawn()
}

/// `lbd COMMAND TARGET`: (exit code, stdout, stderr).
fn cli(lan: &SeedLan, conf: &Path, command: &str, target: &str) -> (i32, String, String) {
    let rt = lan.lab.dir().join("run-main");
    let out = lan.main.run_unchecked(&[
        BIN,
        command,
        target,
        "--config",
        conf.to_str().unwrap(),
        "--runtime-dir",
        rt.to_str().unwrap(),
    ]);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Requests through the VIP until `ok` holds for a batch of `n`, at most `bound`.
fn until(lan: &SeedLan, n: usize, bound: Duration, what: &str, ok: impl Fn(&[String]) -> bool) {
    let t0 = Instant::now();
    loop {
        let b = gets(lan, n);
        if ok(&b) {
            return;
        }
        assert!(t0.elapsed() < bound, "{what} not within {bound:?}: {b:?}");
    }
}

fn only_web2(b: &[String]) -> bool {
    b.iter().all(|x| x == "web2")
}

#[test]
fn drain_from_the_cli_survives_reload_and_restart() {
    e2e::require_netns!("nft", "curl", "busybox");
    let lan = SeedLan::build("lbdrcli");
    let _web1 = web(&lan.web1, "web1");
    let _web2 = web(&lan.web2, "web2");
    let conf = host_file(&lan, "");
    let mut lbd = start(&lan, &conf);
    assert_alternating(&gets(&lan, 6));

    let (code, out, err) = cli(&lan, &conf, "drain", "web9");
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("no backend `web9`") && err.contains("www3/web1"),
        "{err}"
    );

    let (code, out, err) = cli(&lan, &conf, "drain", "web1");
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("drained web1 (in www3)"), "{out}");
    assert!(!out.contains("not yet applied"), "{out}");
    // Applied before the command returned: every new connection goes to web2.
    let after = gets(&lan, 10);
    assert!(only_web2(&after), "{after:?}");
    let st = status(&lan, &conf);
    let b = &st["services"][0]["backends"][0];
    assert_eq!(
        (&b["name"], &b["drained"], &b["drained_by"]),
        (&"web1".into(), &true.into(), &"web1".into()),
        "{st}"
    );
    assert_eq!(b["in_use"], false, "{st}");
    assert_eq!(b["health"], "up", "{st}");
    let text = status_text(&lan, &conf);
    assert!(text.contains("Drained by lbd drain: web1"), "{text}");
    let state = lan.lab.dir().join("state-main").join("drained");
    let kept = std::fs::read_to_string(&state).unwrap();
    assert!(kept.lines().any(|l| l == "web1"), "{kept}");

    // A reload of a changed host file keeps it drained.
    let text = std::fs::read_to_string(&conf).unwrap();
    let changed = text.replace(
        "metrics = \"127.0.0.1:9169\"",
        "metrics = \"127.0.0.1:9169\"\nmax-checks = 32",
    );
    assert_ne!(text, changed);
    std::fs::write(&conf, changed).unwrap();
    let cursor = lbd.log_cursor();
    lbd.signal(nix::sys::signal::Signal::SIGHUP);
    lbd.wait_for_log_after(cursor, "host file reloaded", Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("no reload: {e}"));
    // The daemon loop logs the new view's summary, then applies it.
    lbd.wait_for_log_after(cursor, "service www3 ", Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("the reload not taken: {e}"));
    let after = gets(&lan, 10);
    assert!(only_web2(&after), "after reload: {after:?}");

    // And so does a restart.
    let st = lbd.stop_with(Duration::from_secs(5));
    assert!(st.success(), "{st}");
    drop(lbd);
    let mut lbd = start(&lan, &conf);
    let after = gets(&lan, 10);
    assert!(only_web2(&after), "after restart: {after:?}");
    assert_eq!(
        status(&lan, &conf)["services"][0]["backends"][0]["drained"],
        true
    );

    // Undrain: web1 serves again.
    let (code, out, err) = cli(&lan, &conf, "undrain", "web1");
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.trim(), "undrained web1");
    until(&lan, 6, Duration::from_secs(5), "web1 back", |b| {
        b.iter().any(|x| x == "web1")
    });
    assert_alternating(&gets(&lan, 6));
    assert_eq!(
        status(&lan, &conf)["services"][0]["backends"][0]["drained"],
        false
    );
    let kept = std::fs::read_to_string(&state).unwrap();
    assert!(!kept.lines().any(|l| l == "web1"), "{kept}");

    // One service only: SERVICE/BACKEND.
    let (code, out, err) = cli(&lan, &conf, "drain", "www3/web2");
    assert_eq!(code, 0, "{out}{err}");
    let after = gets(&lan, 10);
    assert!(after.iter().all(|x| x == "web1"), "{after:?}");
    let (code, out, err) = cli(&lan, &conf, "undrain", "web2");
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("drained: www3/web2"), "{err}");
    let st = lbd.stop_with(Duration::from_secs(5));
    assert!(st.success(), "{st}");
}

#[test]
fn drain_from_the_cli_with_the_proxy_data_plane() {
    e2e::require_netns!("nft", "curl", "busybox");
    let lan = SeedLan::build("lbdrprx");
    let _web1 = web(&lan.web1, "web1");
    let _web2 = web(&lan.web2, "web2");
    let conf = host_file(&lan, "dataplane = \"proxy\"");
    let mut lbd = start(&lan, &conf);
    assert_alternating(&gets(&lan, 6));
    let (code, out, err) = cli(&lan, &conf, "drain", "www3/web1");
    assert_eq!(code, 0, "{out}{err}");
    let after = gets(&lan, 10);
    assert!(only_web2(&after), "{after:?}");
    let st = status(&lan, &conf);
    assert_eq!(st["services"][0]["dataplane"], "proxy", "{st}");
    assert_eq!(
        st["services"][0]["backends"][0]["drained_by"], "www3/web1",
        "{st}"
    );
    let (code, out, err) = cli(&lan, &conf, "undrain", "www3/web1");
    assert_eq!(code, 0, "{out}{err}");
    until(&lan, 6, Duration::from_secs(5), "web1 back", |b| {
        b.iter().any(|x| x == "web1")
    });
    let st = lbd.stop_with(Duration::from_secs(5));
    assert!(st.success(), "{st}");
}
