//! ISC dhclient through a whole lease cycle against dhcpd: BOUND, RENEWING at T1 by unicast to the
//! server, and REBINDING at T2 by broadcast once unicast to the server is cut off.
//!
//! Evidence that the renewal really was unicast (and the rebinding broadcast) comes from the
//! server's side: nftables counters in the server's namespace on UDP port 67 for requests with
//! ciaddr set (the 32 bits at offset 12 of the DHCP header), one for datagrams addressed to the
//! server's own address (RENEWING) and one for those to 255.255.255.255 (REBINDING; INIT-REBOOT
//! and SELECTING requests carry no ciaddr), read before and after each step. The server's "sent ACK ... to=<ciaddr>:68" log line shows that it answered the
//! client at its address, and `dhcpd leases --json` shows the expiry moving forward each time.

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use common::*;
use e2e::{Host, Ready, SeedLan};

const DHCP: &str = r#"[dhcp]
lease-db = "leases.redb"
"#;

/// The client asks for a 10 s lease (option 51, honoured up to the subnet's max-lease): T1 = 5 s,
/// T2 = 8 s. dhclient retransmits every 1-2 s (below), so in the 2 s between T2 and the expiry it
/// makes at least one broadcast attempt; with its default 10 s first interval the lease would run
/// out before T2 came round.
const LEASE_SECS: u64 = 10;

const RULES: &str = "table ip dfunc {
    counter unicast {}
    counter broadcast {}
    counter cut {}
    chain input {
        type filter hook input priority 0; policy accept;
        udp dport 67 ip daddr 192.168.10.1 @th,160,32 != 0 counter name unicast
        udp dport 67 ip daddr 255.255.255.255 @th,160,32 != 0 counter name broadcast
    }
}
";

fn counter(host: &Host, name: &str) -> u64 {
    let out = host.run(&["nft", "list", "counter", "ip", "dfunc", name]);
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .skip_while(|w| *w != "packets")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no packet count for {name}: {text}"))
}

fn expiry(host: &Host, conf: &std::path::Path, dir: &std::path::Path, ip: Ipv4Addr) -> u64 {
    let rows = leases(host, conf, dir);
    let row = lease_of(&rows, ip).unwrap_or_else(|| panic!("no lease for {ip}: {rows:?}"));
    assert_eq!(row["state"], "bound", "{row}");
    assert_eq!(row["mac"], "02:00:00:00:10:99", "{row}");
    row["expires"].as_u64().unwrap()
}

#[test]
fn dhclient_renews_by_unicast_at_t1_and_rebinds_by_broadcast_at_t2() {
    e2e::require_netns!("dhclient", "nft");
    let lan = SeedLan::build("dhcren");
    let dir = lan.lab.dir();
    let conf = write_config(dir, DHCP, "");
    let mut d = start(&lan.main, &conf, dir);
    lan.main.run_stdin(&["nft", "-f", "-"], RULES.as_bytes());

    // A minimal dhclient-script: configure the address (so that unicast to the server can leave)
    // and nothing else.
    let script = dir.join("dhclient-script");
    std::fs::write(
        &script,
        "#!/bin/sh\ncase \"$reason\" in\n  BOUND|RENEW|REBIND|REBOOT)\n    \
         /usr/sbin/ip addr replace \"$new_ip_address/24\" dev \"$interface\" ;;\nesac\nexit 0\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let cf = dir.join("dhclient.conf");
    std::fs::write(
        &cf,
        format!("send dhcp-lease-time {LEASE_SECS};\ninitial-interval 1;\nbackoff-cutoff 2;\n"),
    )
    .unwrap();
    let lf = dir.join("dhclient.leases");
    let pf = dir.join("dhclient.pid");
    let mut client = lan
        .client
        .process("dhclient")
        .args([
            "-4",
            "-d",
            "-v",
            "-sf",
            script.to_str().unwrap(),
            "-cf",
            cf.to_str().unwrap(),
            "-lf",
            lf.to_str().unwrap(),
            "-pf",
            pf.to_str().unwrap(),
            "eth0",
        ])
        .ready(Ready::Log("bound to ".into()))
        .timeout(Duration::from_secs(15))
        .spawn();
    let bound = client
        .wait_for_log("bound to ", Duration::from_secs(1))
        .unwrap();
    let ip: Ipv4Addr = bound
        .split("bound to ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no address in {bound:?}"));
    let first = expiry(&lan.main, &conf, dir, ip);
    let unicast0 = counter(&lan.main, "unicast");
    assert_eq!(unicast0, 0, "no unicast to the server before T1");
    assert_eq!(
        counter(&lan.main, "broadcast"),
        0,
        "no request with ciaddr yet"
    );

    // RENEWING: at T1 dhclient sends its REQUEST (ciaddr set) to the server's address.
    let at = client.log_cursor();
    let server_at = d.log_cursor();
    let line = client
        .wait_for_log_after(
            at,
            &format!("DHCPREQUEST for {ip} on eth0 to 192.168.10.1 port 67"),
            Duration::from_secs(LEASE_SECS),
        )
        .unwrap();
    client
        .wait_for_log_after(at, "DHCPACK of ", Duration::from_secs(5))
        .unwrap();
    let renewed = client
        .wait_for_log_after(at, &format!("bound to {ip} "), Duration::from_secs(5))
        .unwrap();
    assert!(renewed.contains("renewal in"), "{line} / {renewed}");
    assert!(
        counter(&lan.main, "unicast") > unicast0,
        "the renewal (ciaddr set) reached the server by unicast"
    );
    d.wait_for_log_after(
        server_at,
        &format!("sent ACK iface=p10p1 to={ip}:68"),
        Duration::from_secs(2),
    )
    .unwrap();
    let second = expiry(&lan.main, &conf, dir, ip);
    assert!(second > first, "expiry moved forward: {first} -> {second}");

    // REBINDING: unicast to the server is dropped from now on; at T2 dhclient broadcasts.
    let broadcast0 = counter(&lan.main, "broadcast");
    lan.main.run(&[
        "nft",
        "insert",
        "rule",
        "ip",
        "dfunc",
        "input",
        "udp",
        "dport",
        "67",
        "ip",
        "daddr",
        "192.168.10.1",
        "counter",
        "name",
        "cut",
        "drop",
    ]);
    let at = client.log_cursor();
    client
        .wait_for_log_after(
            at,
            &format!("DHCPREQUEST for {ip} on eth0 to 255.255.255.255 port 67"),
            Duration::from_secs(LEASE_SECS + 3),
        )
        .unwrap();
    client
        .wait_for_log_after(at, &format!("bound to {ip} "), Duration::from_secs(5))
        .unwrap();
    assert!(
        counter(&lan.main, "cut") >= 1,
        "the renewal attempts were unicast (and dropped)"
    );
    assert!(
        counter(&lan.main, "broadcast") > broadcast0,
        "the rebinding request (ciaddr set) was broadcast"
    );
    let third = expiry(&lan.main, &conf, dir, ip);
    assert!(third > second, "expiry moved forward: {second} -> {third}");
    client.stop();
}
