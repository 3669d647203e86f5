//! The kernel data plane on the seed LAN: curl from the outside client through the VIP to
//! web1/web2 (busybox httpd), rr alternation, a backend's server stopping and coming back, and a
//! clean exit leaving neither the VIP nor the nftables table behind.

mod common;

use std::time::Duration;

use common::*;

#[test]
fn kernel_rr_failover_and_clean_exit() {
    e2e::require_netns!("nft", "curl", "busybox");
    let lan = e2e::SeedLan::build("lbkrr");
    let web1 = web(&lan.web1, "web1");
    let _web2 = web(&lan.web2, "web2");
    let conf = host_file(&lan, "");
    let mut lbd = lbd(&lan, &conf);
    assert!(
        br0_addrs(&lan)
            .iter()
            .any(|a| a.starts_with("192.168.1.120/")),
        "{:?}",
        br0_addrs(&lan)
    );
    let table = lan.main.run(&["nft", "list", "table", "ip", "lbd"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("dnat to 192.168.10.10:80"), "{table}");
    assert!(!table.contains("masquerade"), "{table}");

    failover_scenario(&lan, &conf, &mut lbd, web1);

    let st = lbd.stop_with(Duration::from_secs(5));
    assert!(st.success(), "{st}\n{}", lbd.stderr());
    assert!(
        !br0_addrs(&lan)
            .iter()
            .any(|a| a.starts_with("192.168.1.120/")),
        "stale VIP: {:?}",
        br0_addrs(&lan)
    );
    let tables = lan.main.run(&["nft", "list", "tables"]);
    assert!(
        !String::from_utf8_lossy(&tables.stdout).contains("lbd"),
        "stale table"
    );
}
