//! The user-space data plane on the seed LAN: the same scenario as the kernel test, with
//! `dataplane = "proxy"`; and `lc` which only the proxy offers.

mod common;

use std::time::Duration;

use common::*;

#[test]
fn proxy_rr_failover_and_clean_exit() {
    e2e::require_netns!("curl", "busybox");
    let lan = e2e::SeedLan::build("lbprr");
    let web1 = web(&lan.web1, "web1");
    let _web2 = web(&lan.web2, "web2");
    let conf = host_file(&lan, "dataplane = \"proxy\"");
    let mut lbd = lbd(&lan, &conf);
    lbd.wait_for_log("proxy listening", Duration::from_secs(2))
        .unwrap();
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
}
