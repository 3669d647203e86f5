//! Dynamic DNS scenarios run against any primary (BIND 9 `named`, dnsd): `dig` at 127.0.0.1 in
//! the server's namespace, crafted clients with host names, and the DHCID dhcpd should publish.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use base64::Engine;
use dhcpd::ddns::dhcid_rdata;
use dhcpd::decide::ClientId;
use dhcpd::lease::KeySource;
use dhcproto::v4::{DhcpOption, MessageType};
use e2e::{Host, Proc, SeedLan};

use super::*;

pub fn dig(host: &e2e::Host, args: &[&str]) -> String {
    let mut a = vec!["dig", "@127.0.0.1", "+short", "+time=1", "+tries=1"];
    a.extend_from_slice(args);
    String::from_utf8_lossy(&host.run(&a).stdout)
        .trim()
        .to_owned()
}

pub fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// DISCOVER and REQUEST with host name `name` from `mac`; returns the ACKed address.
pub fn lease(client: &Host, mac: [u8; 6], xid: u32, name: &str) -> Ipv4Addr {
    client.enter(|| {
        let c = Crafted::client("eth0", mac);
        let mut m = c.msg(Some(MessageType::Discover), mac, xid);
        m.opts_mut().insert(DhcpOption::Hostname(name.into()));
        c.send(&m, BCAST67);
        let offer = c.recv(xid, Duration::from_secs(5)).expect("OFFER");
        let mut r = c.msg(Some(MessageType::Request), mac, xid + 1);
        r.opts_mut().insert(DhcpOption::Hostname(name.into()));
        r.opts_mut()
            .insert(DhcpOption::RequestedIpAddress(offer.yiaddr()));
        r.opts_mut()
            .insert(DhcpOption::ServerIdentifier(server_id(&offer).unwrap()));
        c.send(&r, BCAST67);
        let ack = c.recv(xid + 1, Duration::from_secs(5)).expect("ACK");
        assert_eq!(ack.opts().msg_type(), Some(MessageType::Ack));
        ack.yiaddr()
    })
}

/// RELEASE (unicast from the client's address in real life; the server only needs ciaddr).
pub fn release(client: &Host, mac: [u8; 6], xid: u32, ip: Ipv4Addr) {
    client.enter(|| {
        let c = Crafted::client("eth0", mac);
        let mut m = c.msg(Some(MessageType::Release), mac, xid);
        m.set_ciaddr(ip);
        m.opts_mut()
            .insert(DhcpOption::ServerIdentifier(Ipv4Addr::new(192, 168, 10, 1)));
        c.send(&m, BCAST67);
    });
}

/// The DHCID (base64, as dig prints it) of a client without option 61 and host `label`.
pub fn dhcid_of(mac: [u8; 6], label: &str) -> String {
    dhcid_with(mac, label, KeySource::Hardware)
}

/// The DHCID (base64) of a client whose key is htype + `mac`, sent as option 61 or not.
pub fn dhcid_with(mac: [u8; 6], label: &str, source: KeySource) -> String {
    let id = ClientId::of(&[&[1][..], &mac[..]].concat(), &mac, source);
    let fqdn = hickory_proto::rr::Name::from_ascii(format!("{label}.it-ishin.com.")).unwrap();
    base64::engine::general_purpose::STANDARD.encode(dhcid_rdata(&id, &fqdn))
}

/// A, PTR and DHCID appear on ACK and all three go on RELEASE.
pub fn publish_and_withdraw(lan: &SeedLan, d: &mut Proc) {
    let mac = [2, 0, 0, 0, 0x10, 0x99];
    let ip = lease(&lan.client, mac, 100, "laptop");
    let ip_s = ip.to_string();
    wait_for("the A record", || {
        dig(&lan.main, &["laptop.it-ishin.com", "A"]) == ip_s
    });
    wait_for("the PTR record", || {
        dig(&lan.main, &["-x", &ip_s]) == "laptop.it-ishin.com."
    });
    assert_eq!(
        dig(&lan.main, &["laptop.it-ishin.com", "DHCID"]),
        dhcid_of(mac, "laptop")
    );

    release(&lan.client, mac, 102, ip);
    wait_for("the A record to go", || {
        dig(&lan.main, &["laptop.it-ishin.com", "A"]).is_empty()
    });
    wait_for("the PTR record to go", || {
        dig(&lan.main, &["-x", &ip_s]).is_empty()
    });
    wait_for("the DHCID record to go", || {
        dig(&lan.main, &["laptop.it-ishin.com", "DHCID"]).is_empty()
    });
    d.wait_for_log("dynamic DNS update done", Duration::from_secs(1))
        .unwrap();
}

/// A second client asking for a name the first one holds neither takes it over nor deletes it
/// on release; neither does a client asking for `static_name` (a name of the zone with address
/// `static_ip` and no DHCID). The owner's release removes its records.
pub fn conflicts_leave_other_names_alone(
    lan: &SeedLan,
    d: &mut Proc,
    static_name: &str,
    static_ip: &str,
) {
    let first = [2, 0, 0, 0, 0x10, 0x99];
    let second = [2, 0, 0, 0, 0x10, 0x98];
    let ip1 = lease(&lan.client, first, 200, "laptop");
    let ip1_s = ip1.to_string();
    wait_for("the first client's PTR", || {
        dig(&lan.main, &["-x", &ip1_s]) == "laptop.it-ishin.com."
    });

    // A second client asks for the same name: refused by the DHCID prerequisite.
    let at = d.log_cursor();
    let ip2 = lease(&lan.client, second, 210, "laptop");
    assert_ne!(ip1, ip2);
    d.wait_for_log_after(at, "held by another client", Duration::from_secs(10))
        .unwrap();
    assert_eq!(dig(&lan.main, &["laptop.it-ishin.com", "A"]), ip1_s);
    assert_eq!(
        dig(&lan.main, &["laptop.it-ishin.com", "DHCID"]),
        dhcid_of(first, "laptop")
    );
    assert_eq!(dig(&lan.main, &["-x", &ip2.to_string()]), "");

    // Its release deletes nothing of the first client's.
    let at = d.log_cursor();
    release(&lan.client, second, 212, ip2);
    d.wait_for_log_after(at, "no longer this client's", Duration::from_secs(10))
        .unwrap();
    assert_eq!(dig(&lan.main, &["laptop.it-ishin.com", "A"]), ip1_s);
    assert_eq!(dig(&lan.main, &["-x", &ip1_s]), "laptop.it-ishin.com.");

    // A name of the zone itself (no DHCID) is not taken over either.
    let at = d.log_cursor();
    let third = [2, 0, 0, 0, 0x10, 0x97];
    lease(&lan.client, third, 220, static_name);
    d.wait_for_log_after(at, "held by another client", Duration::from_secs(10))
        .unwrap();
    let fqdn = format!("{static_name}.it-ishin.com");
    assert_eq!(dig(&lan.main, &[fqdn.as_str(), "A"]), static_ip);

    // The owner's release removes its records.
    release(&lan.client, first, 202, ip1);
    wait_for("the A record to go", || {
        dig(&lan.main, &["laptop.it-ishin.com", "A"]).is_empty()
    });
    wait_for("the DHCID record to go", || {
        dig(&lan.main, &["laptop.it-ishin.com", "DHCID"]).is_empty()
    });
    wait_for("the PTR record to go", || {
        dig(&lan.main, &["-x", &ip1_s]).is_empty()
    });
}

/// ISC dhclient sending option 61 = htype + its MAC (`send dhcp-client-identifier`) and a host
/// name: the DHCID is type 1 over option 61 (RFC 4701 3.3), not type 0 over chaddr. The lease
/// keeps that, so after dhcpd is killed and started again, dhclient's release removes the
/// records (the removal's DHCID prerequisite matches).
pub fn client_id_gives_type_1_across_a_restart(
    lan: &SeedLan,
    d: &mut Proc,
    start_again: impl FnOnce() -> Proc,
) {
    let mac = [2, 0, 0, 0, 0x10, 0x99];
    let dir = lan.lab.dir();
    let cf = dir.join("dhclient.conf");
    std::fs::write(
        &cf,
        "send dhcp-client-identifier 1:02:00:00:00:10:99;\nsend host-name \"laptop\";\n",
    )
    .unwrap();
    let (lf, pf) = (dir.join("dhclient.leases"), dir.join("dhclient.pid"));
    let dhclient = |extra: &[&str]| {
        let mut a = vec![
            "timeout",
            "20",
            "dhclient",
            "-4",
            "-1",
            "-v",
            "-sf",
            "/bin/true",
        ];
        a.extend_from_slice(extra);
        a.extend_from_slice(&[
            "-cf",
            cf.to_str().unwrap(),
            "-lf",
            lf.to_str().unwrap(),
            "-pf",
            pf.to_str().unwrap(),
            "eth0",
        ]);
        let out = lan.client.run_unchecked(&a);
        if let Ok(s) = std::fs::read_to_string(&pf)
            && let Ok(pid) = s.trim().parse::<i32>()
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        assert!(
            out.status.success(),
            "dhclient {extra:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    dhclient(&[]);
    let text = std::fs::read_to_string(&lf).unwrap();
    let ip = text
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("fixed-address "))
        .map(|v| v.trim_end_matches(';').to_owned())
        .expect("a lease");
    wait_for("the PTR record", || {
        dig(&lan.main, &["-x", &ip]) == "laptop.it-ishin.com."
    });
    let type1 = dhcid_with(mac, "laptop", KeySource::ClientId);
    assert_ne!(type1, dhcid_of(mac, "laptop"));
    assert_eq!(dig(&lan.main, &["laptop.it-ishin.com", "A"]), ip);
    assert_eq!(dig(&lan.main, &["laptop.it-ishin.com", "DHCID"]), type1);
    let rev = {
        let o: Vec<&str> = ip.split('.').collect();
        format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
    };
    assert_eq!(dig(&lan.main, &[rev.as_str(), "DHCID"]), type1);

    // The lease (and its key source) comes back from the store after kill -9.
    d.signal(nix::sys::signal::Signal::SIGKILL);
    d.wait_exit(Duration::from_secs(5));
    let mut d = start_again();
    // Configured as its script would have done, so that the RELEASE goes out by unicast.
    lan.client.add_addr("eth0", &format!("{ip}/24"));
    dhclient(&["-r"]);
    wait_for("the A record to go", || {
        dig(&lan.main, &["laptop.it-ishin.com", "A"]).is_empty()
    });
    wait_for("the DHCID record to go", || {
        dig(&lan.main, &["laptop.it-ishin.com", "DHCID"]).is_empty()
    });
    wait_for("the PTR record to go", || {
        dig(&lan.main, &["-x", &ip]).is_empty()
    });
    assert!(
        !d.stderr().contains("no longer this client's"),
        "the release's DHCID did not match the one added"
    );
    d.stop();
}
