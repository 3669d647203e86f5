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
    assert!(
        table.contains("map { 0 : 192.168.10.10, 1 : 192.168.10.11 }"),
        "{table}"
    );
    assert!(!table.contains("masquerade"), "{table}");

    // An open connection through the VIP shows as one active connection on one backend
    // (conntrack, like ipvsadm's ActiveConn).
    let held = lan.outside.enter(|| {
        std::net::TcpStream::connect_timeout(
            &"192.168.1.120:80".parse().unwrap(),
            Duration::from_secs(2),
        )
        .unwrap()
    });
    let st = status(&lan, &conf);
    let active: Vec<u64> = (0..2)
        .map(|i| st["services"][0]["backends"][i]["active"].as_u64().unwrap())
        .collect();
    assert_eq!(active.iter().sum::<u64>(), 1, "{st}");
    drop(held);
    let m = lan.main.run(&[
        "curl",
        "-sS",
        "--max-time",
        "2",
        "http://127.0.0.1:9169/metrics",
    ]);
    let m = String::from_utf8_lossy(&m.stdout);
    assert!(
        m.contains("lbd_backend_up{service=\"www3\",backend=\"192.168.10.11:80\"} 1"),
        "{m}"
    );
    assert!(m.contains("lbd_vrrp_master 1"), "{m}");

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

#[test]
fn kernel_persistence_survives_backend_changes() {
    e2e::require_netns!("nft", "curl", "busybox");
    let lan = e2e::SeedLan::build("lbkpers");
    let mut servers = [Some(web(&lan.web1, "web1")), Some(web(&lan.web2, "web2"))];
    let conf = host_file(&lan, "persistence = \"300s\"");
    let mut lbd = lbd(&lan, &conf);
    // A first client takes web1 (slot 0), so the client under test lands on web2: a table
    // rebuilt from scratch (counter and sets reset) would send it to web1 again.
    lan.outside.add_addr("eth0", "192.168.1.51/24");
    assert_eq!(get_from(&lan, "192.168.1.51").unwrap(), "web1");
    let first = gets(&lan, 5);
    assert_eq!(first[0], "web2");
    assert!(
        first.iter().all(|b| *b == first[0]),
        "not sticky: {first:?}"
    );
    // Take the other backend out and back in: the table is rewritten twice.
    let other = if first[0] == "web1" { 1 } else { 0 };
    let cursor = lbd.log_cursor();
    servers[other] = None;
    lbd.wait_for_log_after(cursor, "backend down", Duration::from_secs(3))
        .unwrap();
    let cursor = lbd.log_cursor();
    let host = if other == 0 { &lan.web1 } else { &lan.web2 };
    servers[other] = Some(web(host, if other == 0 { "web1" } else { "web2" }));
    lbd.wait_for_log_after(cursor, "backend up", Duration::from_secs(3))
        .unwrap();
    let after = gets(&lan, 5);
    assert!(
        after.iter().all(|b| *b == first[0]),
        "persistence lost across table updates: {after:?}"
    );
}
