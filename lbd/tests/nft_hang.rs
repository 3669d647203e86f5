//! A hanging `nft` is bounded: lbd kills it at its deadline (`nft::NFT_DEADLINE`, 5 s) and
//! treats the run as a failed apply. At start that is a clear error (no READY, nothing left
//! behind); while running, the previous ruleset stays in force, the error is logged, and the
//! next change applies once nft answers again. `$LBD_NFT` points at a wrapper that hangs
//! (`exec sleep`) while a flag file exists and runs the real nft otherwise.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use e2e::{Ready, SeedLan};

/// The wrapper in the lab folder: hangs while `flag` exists, else runs the real nft. Written
/// by a child process, so no descriptor open for writing lingers in this (multi-threaded)
/// process when lbd executes it (ETXTBSY).
fn wrapper(lan: &SeedLan, flag: &Path) -> PathBuf {
    let real = ["/usr/sbin/nft", "/sbin/nft"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .expect("nft installed");
    let path = lan.lab.dir().join("nft-wrapper");
    let text = format!(
        "#!/bin/sh\nif [ -e '{}' ]; then exec sleep 30; fi\nexec {real} \"$@\"\n",
        flag.display()
    );
    let mut child = std::process::Command::new("sh")
        .args(["-c", "cat > \"$1\" && chmod 755 \"$1\"", "sh"])
        .arg(&path)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    path
}

fn vip_present(lan: &SeedLan) -> bool {
    lan.main
        .ipv4_addrs("br0")
        .iter()
        .any(|a| a.starts_with("192.168.1.120/"))
}

#[test]
fn a_hanging_nft_at_start_is_a_clear_error_with_nothing_applied() {
    e2e::require_netns!("nft");
    let lan = SeedLan::build("lbnfthang");
    let flag = lan.lab.dir().join("hang");
    std::fs::write(&flag, "").unwrap();
    let nft = wrapper(&lan, &flag);
    let conf = host_file(&lan, "");
    let err = lan
        .main
        .process(BIN)
        .args(["--config", conf.to_str().unwrap()])
        .env("LBD_NFT", nft.to_str().unwrap())
        .ready(Ready::Notify)
        .timeout(Duration::from_secs(15))
        .try_spawn()
        .expect_err("lbd must not become ready while nft hangs");
    let text = err.to_string();
    assert!(
        text.contains("nft did not finish within 5s and was killed"),
        "{text}"
    );
    assert!(!vip_present(&lan), "half-applied: VIP present");
    let t = lan.main.run(&["nft", "list", "tables"]);
    assert!(
        !String::from_utf8_lossy(&t.stdout).contains("lbd"),
        "half-applied: table present"
    );
}

#[test]
fn a_hanging_nft_while_running_is_a_failed_apply_and_the_previous_ruleset_serves() {
    e2e::require_netns!("nft", "curl", "busybox");
    let lan = SeedLan::build("lbnfthrl");
    let _w1 = web(&lan.web1, "web1");
    let _w2 = web(&lan.web2, "web2");
    let flag = lan.lab.dir().join("hang");
    let nft = wrapper(&lan, &flag);
    let conf = host_file(&lan, "");
    let rr = std::fs::read_to_string(&conf).unwrap();
    let sh = rr.replace("scheduler = \"rr\"", "scheduler = \"sh\"");
    assert_ne!(rr, sh);
    let rt = lan.lab.dir().join("run-main");
    let mut lbd = lan
        .main
        .process(BIN)
        .args([
            "--config",
            conf.to_str().unwrap(),
            "--runtime-dir",
            rt.to_str().unwrap(),
        ])
        .env("LBD_NFT", nft.to_str().unwrap())
        .name("lbd")
        .ready(Ready::Notify)
        .timeout(Duration::from_secs(15))
        .spawn();
    assert_alternating(&gets(&lan, 4));

    // nft hangs now; the change to sh cannot be applied.
    std::fs::write(&flag, "").unwrap();
    let cursor = lbd.log_cursor();
    std::fs::write(&conf, &sh).unwrap();
    lbd.signal(nix::sys::signal::Signal::SIGHUP);
    lbd.wait_for_log_after(
        cursor,
        "nft did not finish within 5s and was killed",
        Duration::from_secs(15),
    )
    .unwrap();
    assert!(lbd.is_running());
    // The rr ruleset is still in force (sh would keep this one client on one backend).
    assert_alternating(&gets(&lan, 6));
    assert!(vip_present(&lan));

    // nft answers again: back to rr (the ruleset in force, so nothing to run), then sh applies.
    std::fs::remove_file(&flag).unwrap();
    let cursor = lbd.log_cursor();
    std::fs::write(&conf, &rr).unwrap();
    lbd.signal(nix::sys::signal::Signal::SIGHUP);
    lbd.wait_for_log_after(cursor, "host file reloaded", Duration::from_secs(10))
        .unwrap();
    let cursor = lbd.log_cursor();
    std::fs::write(&conf, &sh).unwrap();
    lbd.signal(nix::sys::signal::Signal::SIGHUP);
    lbd.wait_for_log_after(cursor, "host file reloaded", Duration::from_secs(10))
        .unwrap();
    // Bounded wait for the apply to land: one source then always meets the same backend.
    let t = std::time::Instant::now();
    loop {
        let seen = gets(&lan, 4);
        if seen.windows(2).all(|w| w[0] == w[1]) {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "sh never applied: {seen:?}"
        );
    }
    assert!(lbd.is_running());
}
