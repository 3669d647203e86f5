//! Started as root by hand, lbd becomes an unprivileged user before serving and keeps only
//! CAP_NET_ADMIN, CAP_NET_RAW and CAP_NET_BIND_SERVICE: the VIP, the nftables table and
//! balancing through it still work.

mod common;

use std::time::Duration;

use common::*;

#[test]
fn root_start_drops_to_the_user_and_still_balances() {
    e2e::require_netns!("nft", "curl", "busybox");
    let lan = e2e::SeedLan::build("lbpriv");
    let _web1 = web(&lan.web1, "web1");
    let _web2 = web(&lan.web2, "web2");
    let conf = host_file(&lan, "");
    let rt = lan.lab.dir().join("run-priv");
    std::fs::create_dir_all(&rt).unwrap();
    let lbd = lan
        .main
        .process(BIN)
        .args([
            "--config",
            conf.to_str().unwrap(),
            "--runtime-dir",
            rt.to_str().unwrap(),
            "--user",
            "nobody",
        ])
        .name("lbd")
        .ready(e2e::Ready::Notify)
        .timeout(Duration::from_secs(15))
        .spawn();
    // CAP_NET_BIND_SERVICE (10), CAP_NET_ADMIN (12), CAP_NET_RAW (13) and nothing else.
    e2e::procstatus::assert_runs_as(lbd.pid(), "nobody", "0000000000003400");
    // The VIP and the table were put in place by the unprivileged process (and its nft).
    let bodies = gets(&lan, 4);
    assert_alternating(&bodies);
    let table = lan.main.run(&["nft", "list", "table", "ip", "lbd"]);
    assert!(String::from_utf8_lossy(&table.stdout).contains("192.168.10.10"));
}
