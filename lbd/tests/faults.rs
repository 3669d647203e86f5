//! Faults: nftables missing, a VIP interface that does not exist (at start: a clear error and
//! nothing left behind; on reload: the last good config keeps serving).

mod common;

use std::time::Duration;

use common::*;
use e2e::Ready;

fn no_vip(lan: &e2e::SeedLan) {
    assert!(
        !br0_addrs(lan)
            .iter()
            .any(|a| a.starts_with("192.168.1.120/")),
        "half-applied: VIP present {:?}",
        br0_addrs(lan)
    );
}

fn no_table(lan: &e2e::SeedLan) {
    let t = lan.main.run(&["nft", "list", "tables"]);
    assert!(
        !String::from_utf8_lossy(&t.stdout).contains("lbd"),
        "half-applied: table present"
    );
}

#[test]
fn nft_missing_is_a_clear_error_with_nothing_applied() {
    e2e::require_netns!("nft");
    let lan = e2e::SeedLan::build("lbnonft");
    let conf = host_file(&lan, "");
    let err = lan
        .main
        .process(BIN)
        .args(["--config", conf.to_str().unwrap()])
        .env("LBD_NFT", "/nonexistent/nft")
        .ready(Ready::Notify)
        .timeout(Duration::from_secs(10))
        .try_spawn()
        .expect_err("lbd must refuse to start without nft");
    let text = err.to_string();
    assert!(
        text.contains("install the Debian package nftables"),
        "{text}"
    );
    assert!(
        text.contains("dataplane = \\\"proxy\\\"") || text.contains("dataplane = \"proxy\""),
        "{text}"
    );
    no_vip(&lan);
    no_table(&lan);
}

#[test]
fn missing_interface_at_start_is_a_clear_error_with_nothing_applied() {
    e2e::require_netns!("nft");
    let lan = e2e::SeedLan::build("lbnoif");
    let conf = host_file(&lan, "interface = \"nosuch0\"");
    let err = lan
        .main
        .process(BIN)
        .args(["--config", conf.to_str().unwrap()])
        .ready(Ready::Notify)
        .timeout(Duration::from_secs(10))
        .try_spawn()
        .expect_err("lbd must refuse a missing interface");
    let text = err.to_string();
    assert!(
        text.contains("interface `nosuch0`") && text.contains("does not exist"),
        "{text}"
    );
    no_vip(&lan);
    no_table(&lan);
}

#[test]
fn bad_reload_keeps_the_last_good_config_serving() {
    e2e::require_netns!("nft", "curl", "busybox");
    let lan = e2e::SeedLan::build("lbbadrl");
    let _web1 = web(&lan.web1, "web1");
    let _web2 = web(&lan.web2, "web2");
    let conf = host_file(&lan, "");
    let mut lbd = lbd(&lan, &conf);
    assert_alternating(&gets(&lan, 4));
    let good = std::fs::read_to_string(&conf).unwrap();
    let cursor = lbd.log_cursor();
    std::fs::write(
        &conf,
        good.replace(
            "scheduler = \"rr\"",
            "scheduler = \"rr\"\ninterface = \"nosuch0\"",
        ),
    )
    .unwrap();
    lbd.signal(nix::sys::signal::Signal::SIGHUP);
    lbd.wait_for_log_after(
        cursor,
        "previous one stays in force",
        Duration::from_secs(5),
    )
    .unwrap();
    assert_alternating(&gets(&lan, 6));
    assert!(lbd.is_running());
}
