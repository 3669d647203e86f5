//! What real clients cannot be told to send: BOOTP, relayed requests, INIT-REBOOT on the wrong
//! network, DECLINE, malformed datagrams.

mod common;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use common::*;
use dhcproto::v4::relay::{RelayAgentInformation, RelayInfo};
use dhcproto::v4::{DhcpOption, MessageType, OptionCode};
use e2e::SeedLan;

const DHCP: &str = r#"[dhcp]
decline-probation = "1h"
ping-check = false
lease-db = "leases.redb"
metrics = "127.0.0.1:9167"
"#;

const REMOTE: &str = r#"
[[subnet]]
name = "remote"
network = "10.77.0.0/24"
routers = ["10.77.0.1"]
[[subnet.pool]]
range = "10.77.0.100-10.77.0.200"
"#;

const MAC: [u8; 6] = [2, 0, 0, 0, 0x10, 0x99];

#[test]
fn bootp_nak_decline_relay_and_bad_packets() {
    e2e::require_netns!();
    let lan = SeedLan::build("dhccra");
    let dir = lan.lab.dir();
    let conf = write_config(dir, DHCP, REMOTE);
    let mut d = start(&lan.main, &conf, dir);

    // A second server on the same interfaces is refused, not silently sharing port 67.
    let other = dir.join("second");
    std::fs::create_dir_all(&other).unwrap();
    let err = lan
        .main
        .process(BIN)
        .args([
            "--config",
            conf.to_str().unwrap(),
            "--state-dir",
            other.to_str().unwrap(),
        ])
        .ready(e2e::Ready::Notify)
        .timeout(Duration::from_secs(10))
        .try_spawn()
        .expect_err("second dhcpd must not start");
    assert!(
        err.stderr.contains("cannot bind UDP port 67"),
        "{}",
        err.stderr
    );

    // BOOTP: a request without option 53 gets a BOOTREPLY from the dynamic-bootp range.
    let bootp_ip = lan.client.enter(|| {
        let c = Crafted::client("eth0", MAC);
        let m = c.msg(None, [2, 0, 0, 0, 0xb0, 0x07], 7);
        c.send(&m, BCAST67);
        let r = c.recv(7, Duration::from_secs(5)).expect("BOOTREPLY");
        assert_eq!(r.opts().msg_type(), None);
        assert_eq!(
            r.opts().get(OptionCode::SubnetMask),
            Some(&DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 255, 0)))
        );
        r.yiaddr()
    });
    assert!(bootp_ip >= Ipv4Addr::new(192, 168, 10, 200));

    // INIT-REBOOT for an address of another network: NAK (the inner subnet is authoritative).
    lan.client.enter(|| {
        let c = Crafted::client("eth0", MAC);
        let mut m = c.msg(Some(MessageType::Request), MAC, 11);
        m.opts_mut()
            .insert(DhcpOption::RequestedIpAddress(Ipv4Addr::new(10, 9, 9, 9)));
        c.send(&m, BCAST67);
        let r = c.recv(11, Duration::from_secs(5)).expect("NAK");
        assert_eq!(r.opts().msg_type(), Some(MessageType::Nak));
    });

    // DECLINE: the address goes on probation and the client is offered another.
    let (declined, second) = lan.client.enter(|| {
        let c = Crafted::client("eth0", MAC);
        let (ip, sid) = c.dora(BCAST67, 20);
        let mut m = c.msg(Some(MessageType::Decline), MAC, 30);
        m.opts_mut().insert(DhcpOption::RequestedIpAddress(ip));
        m.opts_mut().insert(DhcpOption::ServerIdentifier(sid));
        c.send(&m, BCAST67);
        // no reply to a DECLINE; the next exchange shows its effect
        let (ip2, _) = c.dora(BCAST67, 40);
        (ip, ip2)
    });
    assert_ne!(declined, second);
    let rows = leases(&lan.main, &conf, dir);
    assert_eq!(lease_of(&rows, declined).unwrap()["state"], "declined");
    assert_eq!(lease_of(&rows, second).unwrap()["state"], "bound");

    // A relay on the outer LAN for the remote subnet 10.77.0.0/24: giaddr picks the subnet, the
    // reply goes to giaddr:67 with option 82 echoed.
    lan.outside.add_addr("eth0", "10.77.0.1/24");
    lan.main
        .ip(&["route", "add", "10.77.0.0/24", "via", "192.168.1.50"]);
    lan.outside.enter(|| {
        let relay = Crafted::relay("eth0", Ipv4Addr::new(10, 77, 0, 1));
        let mut m = relay.msg(Some(MessageType::Discover), [2, 0, 0, 0, 0x77, 1], 50);
        let mut ri = RelayAgentInformation::default();
        ri.insert(RelayInfo::AgentCircuitId(b"eth7".to_vec()));
        m.opts_mut()
            .insert(DhcpOption::RelayAgentInformation(ri.clone()));
        relay.send(&m, SocketAddrV4::new(Ipv4Addr::new(192, 168, 1, 2), 67));
        let r = relay
            .recv(50, Duration::from_secs(5))
            .expect("relayed OFFER");
        assert_eq!(r.opts().msg_type(), Some(MessageType::Offer));
        assert!(
            (Ipv4Addr::new(10, 77, 0, 100)..=Ipv4Addr::new(10, 77, 0, 200)).contains(&r.yiaddr()),
            "{}",
            r.yiaddr()
        );
        assert_eq!(
            r.opts().get(OptionCode::Router),
            Some(&DhcpOption::Router(vec![Ipv4Addr::new(10, 77, 0, 1)]))
        );
        assert_eq!(
            r.opts().get(OptionCode::RelayAgentInformation),
            Some(&DhcpOption::RelayAgentInformation(ri))
        );
        assert_eq!(r.giaddr(), Ipv4Addr::new(10, 77, 0, 1));
    });

    // Garbage is dropped and counted; the server keeps serving.
    lan.client.enter(|| {
        let c = Crafted::client("eth0", MAC);
        let good =
            dhcproto::Encodable::to_vec(&c.msg(Some(MessageType::Discover), MAC, 60)).unwrap();
        let mut fqdn = good[..240].to_vec();
        fqdn.extend_from_slice(&[53, 1, 1, 81, 1, 0, 255]);
        let mut hlen = good.clone();
        hlen[2] = 99;
        // Option overload (52): options continued in `file` (RFC 2132 section 9.3).
        let overloaded = |value: u8, file: &[u8]| {
            let mut v = good[..240].to_vec();
            v[108..236].fill(0);
            v[108..108 + file.len()].copy_from_slice(file);
            v.extend_from_slice(&[53, 1, 1, 52, 1, value, 255]);
            v
        };
        let bad_value = overloaded(9, &[50, 4, 192, 168, 10, 240, 255]);
        let mut overrun = [0u8; 128];
        overrun[125..].copy_from_slice(&[12, 9, b'x']);
        let overrun = overloaded(1, &overrun);
        for bad in [
            &good[..10],
            &good[..200],
            &fqdn[..],
            &hlen[..],
            &[2u8; 300][..],
            &bad_value[..],
            &overrun[..],
        ] {
            c.sock.send_to(bad, BCAST67).unwrap();
        }
        // A well-formed one from a new client: the requested address that sits in `file` is
        // offered.
        let mut fresh = overloaded(1, &[50, 4, 192, 168, 10, 240, 255]);
        fresh[28..34].copy_from_slice(&[2, 0, 0, 0, 0x10, 0x77]);
        c.sock.send_to(&fresh, BCAST67).unwrap();
        let offer = c.recv(60, Duration::from_secs(5)).expect("OFFER");
        assert_eq!(offer.opts().msg_type(), Some(MessageType::Offer));
        assert_eq!(offer.yiaddr(), Ipv4Addr::new(192, 168, 10, 240));
        let (ip, _) = c.dora(BCAST67, 70);
        assert!(ip >= Ipv4Addr::new(192, 168, 10, 200));
    });
    d.wait_for_log("dropped bad packet", Duration::from_secs(5))
        .unwrap();
    // The counters are on the Prometheus endpoint.
    let scrape = || {
        lan.main.enter(|| {
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect("127.0.0.1:9167").unwrap();
            s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            out
        })
    };
    let value = |text: &str, name: &str| -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
    };
    // The lease census (states, pool usage) runs every few seconds: wait for it, bounded.
    let pool = "dhcpd_pool_used_addresses{range=\"192.168.10.200-192.168.10.254\"}";
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let text = loop {
        let text = scrape();
        if value(&text, pool).is_some_and(|v| v >= 1.0) || std::time::Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let v = |name: &str| value(&text, name).unwrap_or_else(|| panic!("{name} missing in {text}"));
    assert_eq!(v("dhcpd_bad_packets_total"), 7.0, "{text}");
    assert!(v("dhcpd_sent_replies_total") >= 8.0, "{text}");
    assert!(
        v("dhcpd_requests_total{type=\"discover\"}") >= 1.0,
        "{text}"
    );
    assert!(v("dhcpd_requests_total{type=\"request\"}") >= 1.0, "{text}");
    assert!(v("dhcpd_commit_seconds_count") >= 1.0, "{text}");
    assert!(v("dhcpd_leases{state=\"bound\"}") >= 1.0, "{text}");
    assert!(v(pool) >= 1.0, "{text}");
    assert_eq!(
        v("dhcpd_pool_size_addresses{range=\"192.168.10.200-192.168.10.254\"}"),
        55.0,
        "{text}"
    );
    // The DECLINE above is counted and its address is held on probation.
    assert_eq!(v("dhcpd_declines_total"), 1.0, "{text}");
    // The wait of committed changes, from reaching the writer to durable.
    let (last, max) = (
        v("dhcpd_lease_commit_wait_last_seconds"),
        v("dhcpd_lease_commit_wait_max_seconds"),
    );
    assert!(last > 0.0 && max >= last && max < 10.0, "{text}");
    assert_eq!(v("dhcpd_requests_total{type=\"decline\"}"), 1.0, "{text}");
    assert!(v("dhcpd_leases{state=\"declined\"}") >= 1.0, "{text}");
}

#[test]
fn reload_keeps_leases_and_a_new_reservation_takes_over_at_the_next_renew() {
    e2e::require_netns!();
    let lan = SeedLan::build("dhcrel");
    let dir = lan.lab.dir();
    let conf = write_config(dir, DHCP, "");
    let mut d = start(&lan.main, &conf, dir);
    let other = [2, 0, 0, 0, 0x10, 0x55];
    let (ip, other_ip) = lan.client.enter(|| {
        let a = Crafted::client("eth0", MAC).dora(BCAST67, 200).0;
        let b = Crafted::client("eth0", other).dora(BCAST67, 300).0;
        (a, b)
    });
    // Reserve 192.168.10.50 for MAC (the host file is rewritten; the watcher reloads it).
    let cursor = d.log_cursor();
    let text = std::fs::read_to_string(&conf).unwrap();
    let text = text.replace(
        "[host.db]",
        "[host.pc]\nip = \"192.168.10.50\"\nmac = \"02:00:00:00:10:99\"\n\n[host.db]",
    );
    std::fs::write(&conf, text).unwrap();
    d.wait_for_log_after(cursor, "host table reloaded", Duration::from_secs(10))
        .unwrap();
    let rows = leases(&lan.main, &conf, dir);
    assert_eq!(lease_of(&rows, ip).unwrap()["state"], "bound");
    assert_eq!(lease_of(&rows, other_ip).unwrap()["state"], "bound");
    // A renewing client holds its address (the ACK comes by unicast to it).
    lan.client.add_addr("eth0", &format!("{other_ip}/24"));
    lan.client.enter(|| {
        let c = Crafted::client("eth0", MAC);
        // RENEWING/REBINDING with the old address: NAK, since the client now has a reservation.
        let mut m = c.msg(Some(MessageType::Request), MAC, 400);
        m.set_ciaddr(ip);
        c.send(&m, BCAST67);
        let r = c.recv(400, Duration::from_secs(5)).expect("NAK");
        assert_eq!(r.opts().msg_type(), Some(MessageType::Nak));
        // Back to INIT: the reservation.
        assert_eq!(c.dora(BCAST67, 500).0, Ipv4Addr::new(192, 168, 10, 50));
        // The other client renews its address unchanged.
        let o = Crafted::client("eth0", other);
        let mut m = o.msg(Some(MessageType::Request), other, 600);
        m.set_ciaddr(other_ip);
        o.send(&m, BCAST67);
        let r = o.recv(600, Duration::from_secs(5)).expect("ACK");
        assert_eq!(r.opts().msg_type(), Some(MessageType::Ack));
        assert_eq!(r.yiaddr(), other_ip);
    });
}

/// `[dhcp] discover-backlog`: with a limit of 3, six DISCOVERs nobody follows up get three OFFERs
/// and three overload drops; a reload to 0 (no limit) answers the next six at once.
#[test]
fn discover_backlog_limits_unfollowed_discovers_and_a_reload_changes_it() {
    e2e::require_netns!();
    let lan = SeedLan::build("dhcadm");
    let dir = lan.lab.dir();
    let dhcp = format!("{DHCP}discover-backlog = 3\n");
    let conf = write_config(dir, &dhcp, "");
    let mut d = start(&lan.main, &conf, dir);
    let scrape = || {
        lan.main.enter(|| {
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect("127.0.0.1:9167").unwrap();
            s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            out
        })
    };
    let value = |name: &str| -> f64 {
        scrape()
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or(0.0)
    };
    // Sends DISCOVERs from six new clients; once the server has taken all six in, returns the
    // OFFERs that came back.
    let round = |first: u8, want_received: f64| -> usize {
        lan.client.enter(|| {
            let c = Crafted::client("eth0", MAC);
            for i in 0..6u8 {
                let mac = [2, 0, 0, 0, 0x20, first + i];
                let xid = 9000 + u32::from(first + i);
                c.send(&c.msg(Some(MessageType::Discover), mac, xid), BCAST67);
            }
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while value("dhcpd_received_packets_total") < want_received {
                assert!(std::time::Instant::now() < deadline, "{}", scrape());
                std::thread::sleep(Duration::from_millis(50));
            }
            // Every reply the server sent is on its way; count them (bounded wait).
            let mut offers = std::collections::HashSet::new();
            let mut buf = [0u8; 1500];
            c.sock
                .set_read_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            while let Ok((n, _)) = c.sock.recv_from(&mut buf) {
                if let Ok(m) = <dhcproto::v4::Message as dhcproto::Decodable>::from_bytes(&buf[..n])
                    && m.opts().msg_type() == Some(MessageType::Offer)
                {
                    offers.insert(m.xid());
                }
            }
            offers.len()
        })
    };
    assert_eq!(round(0, 6.0), 3);
    assert_eq!(value("dhcpd_overload_drops_total"), 3.0);
    assert_eq!(value("dhcpd_sent_replies_total"), 3.0);

    let cursor = d.log_cursor();
    let text = std::fs::read_to_string(&conf)
        .unwrap()
        .replace("discover-backlog = 3", "discover-backlog = 0");
    std::fs::write(&conf, text).unwrap();
    d.wait_for_log_after(cursor, "discover_backlog=0", Duration::from_secs(10))
        .unwrap();
    assert_eq!(round(10, 12.0), 6);
    assert_eq!(value("dhcpd_overload_drops_total"), 3.0);
}
