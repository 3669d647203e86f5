//! Issue 15, item 4: configurations in the form the real tools write, each with a construct the
//! importers used to refuse or lose. The rule: a file is refused only for a real syntax error;
//! what the host file cannot express is listed with its file and line; a security property
//! (signed updates, a health check that can pass) is never weakened silently.

use std::path::PathBuf;

use hostfile::HostTable;
use import::{Format, Imported, Unsupported};

fn sample(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/import-samples")
        .join(name)
}

fn file(format: Format, name: &str) -> Imported {
    import::import_file(format, &sample(name), None).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn valid(i: &Imported) -> HostTable {
    i.check()
        .unwrap_or_else(|e| panic!("does not validate:\n{e}\n---\n{}", i.to_toml()))
}

/// The entries listed at `name:line`.
fn at<'a>(i: &'a Imported, name: &str, line: usize) -> Vec<&'a Unsupported> {
    i.unsupported
        .iter()
        .filter(|u| u.file.file_name().is_some_and(|f| f == name) && u.line == line)
        .collect()
}

// ------------------------------------------------------------------ 1. bytes that are not UTF-8

#[test]
fn dhcpd_conf_with_latin1_shift_jis_or_euc_jp_comments_imports() {
    for (name, net, host) in [
        ("dhcpd-latin1.conf", "192.168.50.0/24", "drucker"),
        ("dhcpd-sjis.conf", "192.168.60.0/24", "fukugouki"),
        ("dhcpd-eucjp.conf", "192.168.60.0/24", "fukugouki"),
    ] {
        assert!(
            std::str::from_utf8(&std::fs::read(sample(name)).unwrap()).is_err(),
            "{name} must hold bytes that are not UTF-8"
        );
        let i = file(Format::IscDhcpd, name);
        let t = valid(&i);
        let v = t.dhcp_view();
        assert_eq!(v.subnets.len(), 1, "{name}");
        assert_eq!(v.subnets[0].network.to_string(), net);
        assert_eq!(v.subnets[0].pools.len(), 1, "{name}");
        assert!(
            v.reservations.iter().any(|r| r.hostname == host),
            "{name}: {:?}",
            v.reservations
        );
        // Bytes inside comments are harmless: nothing is said about them.
        let comments: Vec<_> = i
            .unsupported
            .iter()
            .filter(|u| u.reason.contains("not UTF-8") && u.line <= 3)
            .collect();
        assert!(comments.is_empty(), "{name}: {comments:#?}");
    }
}

#[test]
fn a_byte_that_is_not_utf8_outside_a_comment_is_named_with_its_line() {
    let i = file(Format::IscDhcpd, "dhcpd-latin1.conf");
    valid(&i);
    let l = at(&i, "dhcpd-latin1.conf", 26);
    assert!(
        l.iter()
            .any(|u| u.reason.contains("not UTF-8") && u.construct.contains("host-name")),
        "{:#?}",
        i.unsupported
    );
    // Only that line: the Latin-1 comments (lines 1, 2, 12, 18) are not listed.
    let n = i
        .unsupported
        .iter()
        .filter(|u| u.reason.contains("not UTF-8"))
        .count();
    assert_eq!(n, 1, "{:#?}", i.unsupported);
}

#[test]
fn the_import_command_takes_a_latin1_dhcpd_conf() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("hosts.toml");
    let args = import::command::ImportArgs {
        files: vec![sample("dhcpd-latin1.conf")],
        origin: None,
        format: None,
        output: Some(out.clone()),
    };
    assert_eq!(import::command::run(&args, Format::IscDhcpd), 0);
    let text = std::fs::read_to_string(&out).unwrap();
    HostTable::from_toml(&text).unwrap();
    assert!(text.contains("\"192.168.50.0/24\""), "{text}");
}

#[test]
fn a_zone_file_with_latin1_bytes_imports_and_names_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.buero.example");
    let mut z = b"; Zone f\xfcr das B\xfcro (bind9)\n$TTL 1h\n".to_vec();
    z.extend_from_slice(b"@ IN SOA ns hostmaster 1 3600 900 1209600 300\n  IN NS ns\n");
    z.extend_from_slice(b"ns IN A 192.168.50.1\n@ IN TXT \"B\xfcro K\xf6ln\"\n");
    std::fs::write(&path, z).unwrap();
    let i = import::import_file(Format::Zone, &path, None).unwrap_or_else(|e| panic!("{e}"));
    let t = valid(&i);
    assert_eq!(t.domain, "buero.example");
    let l = at(&i, "db.buero.example", 6);
    assert!(
        l.iter().any(|u| u.reason.contains("not UTF-8")),
        "{:#?}",
        i.unsupported
    );
    let comment = at(&i, "db.buero.example", 1);
    assert!(
        comment.iter().all(|u| !u.reason.contains("not UTF-8")),
        "{comment:#?}"
    );
}

// ------------------------------------------------------------------ 2-5. keepalived 2.x

fn service(t: &HostTable, vip: &str, port: u16) -> hostfile::VirtualService {
    let v = t.lb_view();
    v.services
        .iter()
        .find(|s| s.vip.to_string() == vip && s.port == port)
        .unwrap_or_else(|| panic!("no service {vip}:{port}: {:?}", v.services))
        .clone()
}

#[test]
fn status_code_ranges_map_to_expect_and_a_gap_is_said_loudly() {
    let i = file(Format::Keepalived, "keepalived-2x.conf");
    let t = valid(&i);
    let s = service(&t, "192.168.200.16", 80);
    let hostfile::CheckKind::Http { path, expect, .. } = &s.check.kind else {
        panic!("{:?}", s.check)
    };
    assert_eq!(path, "/healthz");
    // 200-299 400-499: one range holding both, so every backend keepalived passed still passes.
    assert_eq!(*expect, (200, 499));
    let l = at(&i, "keepalived-2x.conf", 32);
    assert!(
        l.iter()
            .any(|u| u.reason.starts_with("WARNING: ") && u.reason.contains("300-399")),
        "{:#?}",
        i.unsupported
    );
    // 200 204: one range too, 201-203 named.
    let s = service(&t, "192.168.200.16", 8080);
    let hostfile::CheckKind::Http { expect, .. } = &s.check.kind else {
        panic!("{:?}", s.check)
    };
    assert_eq!(*expect, (200, 204));
}

#[test]
fn virtualhost_becomes_the_checks_host_header() {
    let i = file(Format::Keepalived, "keepalived-2x.conf");
    let t = valid(&i);
    // On the virtual_server: every HTTP check of it.
    let s = service(&t, "192.168.200.16", 80);
    let hostfile::CheckKind::Http { host, .. } = &s.check.kind else {
        panic!("{:?}", s.check)
    };
    assert_eq!(host.as_deref(), Some("www.example.com"));
    // In the HTTP_GET block.
    let s = service(&t, "192.168.200.16", 8080);
    let hostfile::CheckKind::Http { host, .. } = &s.check.kind else {
        panic!("{:?}", s.check)
    };
    assert_eq!(host.as_deref(), Some("admin.example.com"));
    assert!(
        !i.unsupported
            .iter()
            .any(|u| u.construct.contains("virtualhost")),
        "{:#?}",
        i.unsupported
    );
}

#[test]
fn ssl_get_becomes_a_tcp_check_on_the_same_port_and_says_so_loudly() {
    let i = file(Format::Keepalived, "keepalived-2x.conf");
    let t = valid(&i);
    let s = service(&t, "192.168.200.17", 443);
    assert_eq!(s.check.kind, hostfile::CheckKind::Tcp, "{:?}", s.check);
    assert_eq!(s.check.port, None, "the backend's own port, 443");
    assert!(
        s.backends.iter().all(|b| b.addr.port() == 443),
        "{:?}",
        s.backends
    );
    // Loud: listed at the SSL_GET line, among the warnings, and next to the service.
    let w: Vec<_> = i.warnings().collect();
    assert!(
        w.iter()
            .any(|u| u.line == 61 && u.construct.contains("SSL_GET")),
        "{w:#?}"
    );
    let toml = i.to_toml();
    let note = toml
        .find("# WARNING: keepalived checked these backends with SSL_GET")
        .expect("a note at the service");
    assert!(
        toml[note..].lines().find(|l| l.starts_with('['))
            == Some("[service.vs-192-168-200-17-443]"),
        "{toml}"
    );
}

#[test]
fn an_ipv6_virtual_server_is_listed_and_the_rest_imported() {
    let i = file(Format::Keepalived, "keepalived-2x.conf");
    let t = valid(&i);
    assert_eq!(t.lb_view().services.len(), 3, "{}", i.to_toml());
    let v6 = at(&i, "keepalived-2x.conf", 85);
    assert!(
        v6.iter().any(|u| u
            .construct
            .starts_with("virtual_server 2001:db8:200::16 80")
            && u.reason.contains("IPv6")),
        "{:#?}",
        i.unsupported
    );
    assert!(
        at(&i, "keepalived-2x.conf", 91)
            .iter()
            .any(|u| u.construct.starts_with("real_server 2001:db8:200::100 80")),
        "{:#?}",
        i.unsupported
    );
    // The IPv6 VIP of the VRRP instance too, and it is kept in the file as a comment.
    assert!(
        !at(&i, "keepalived-2x.conf", 16).is_empty(),
        "{:#?}",
        i.unsupported
    );
    assert!(
        i.to_toml()
            .contains("keepalived-2x.conf:85: not imported: virtual_server 2001:db8:200::16 80"),
        "{}",
        i.to_toml()
    );
}

// ------------------------------------------------------------------ 6-9. dhcpd.conf with DDNS

#[test]
fn two_hosts_with_one_mac_keep_the_first_and_list_the_second() {
    let i = file(Format::IscDhcpd, "dhcpd-ddns.conf");
    let t = valid(&i);
    let v = t.dhcp_view();
    let nas: Vec<_> = v
        .reservations
        .iter()
        .filter(|r| r.mac.is_some_and(|m| m.to_string() == "00:11:32:aa:bb:cc"))
        .collect();
    assert_eq!(nas.len(), 1, "{:?}", v.reservations);
    assert_eq!(
        (nas[0].hostname.as_str(), nas[0].ip.to_string().as_str()),
        ("nas", "192.168.1.10")
    );
    // Nothing merged: nas has one address and nas-backup's name is nowhere.
    assert!(!i.to_toml().contains("192.168.1.11\""), "{}", i.to_toml());
    assert!(!i.to_toml().contains("[host.nas-backup]"));
    let l = at(&i, "dhcpd-ddns.conf", 46);
    assert!(
        l.iter().any(|u| u.construct == "host nas-backup"
            && u.reason.contains("already reserved for host `nas`")
            && u.reason.contains("dhcpd-ddns.conf:40")),
        "{:#?}",
        i.unsupported
    );
}

#[test]
fn a_zone_primary_given_as_a_host_name_is_found_among_the_hosts() {
    // With a key the host file takes, the update settings are live and point at ns1's address.
    let conf = std::fs::read_to_string(sample("dhcpd-ddns.conf"))
        .unwrap()
        .replace("hmac-md5", "hmac-sha256")
        .replace(
            "7nSgfYxOPxXJ4fIxMmAH1w==",
            "bGFuc3VpdGUtZXhhbXBsZS1rZXktY2hhbmdlLW1lLW5vdw==",
        );
    let i = import::import_isc_dhcpd(&conf, &sample("dhcpd-ddns.conf")).unwrap();
    let t = valid(&i);
    let dd = t.dhcp_view().ddns.clone().expect("ddns imported");
    assert_eq!(dd.server.to_string(), "192.168.1.2:53");
    assert_eq!(dd.key.expect("signed").name, "rndc-key");
    assert!(
        i.to_toml()
            .contains("ns1.home.example.net is 192.168.1.2 (host ns1)")
    );
    assert_eq!(i.warnings().count(), 0, "{:#?}", i.unsupported);
    // A name no imported file gives an address: listed, and the setting kept as a comment.
    let conf = "ddns-update-style standard;\n\
                key k { algorithm hmac-sha256; secret \"bGFuc3VpdGUtZXhhbXBsZS1rZXktY2hhbmdlLW1lLW5vdw==\"; }\n\
                zone example.org. { primary ns.elsewhere.org; key k; }\n\
                subnet 10.0.0.0 netmask 255.255.255.0 { }\n";
    let i = import::import_isc_dhcpd(conf, std::path::Path::new("dhcpd.conf")).unwrap();
    let t = valid(&i);
    assert!(t.dhcp_view().ddns.is_none());
    assert!(
        i.unsupported
            .iter()
            .any(|u| u.line == 3 && u.construct == "primary ns.elsewhere.org"),
        "{:#?}",
        i.unsupported
    );
    assert!(
        i.to_toml()
            .contains("# ddns = { server = \"ns.elsewhere.org\", key = \"k\" }"),
        "{}",
        i.to_toml()
    );
}

#[test]
fn an_hmac_md5_key_never_turns_into_unsigned_updates() {
    let i = file(Format::IscDhcpd, "dhcpd-ddns.conf");
    let t = valid(&i);
    // No live update settings, no unsigned ones: the key and ddns are written commented out.
    assert!(t.dhcp_view().ddns.is_none(), "{}", i.to_toml());
    assert!(t.dns_view().update_keys.is_empty());
    let toml = i.to_toml();
    assert!(
        toml.contains("# [key.rndc-key]\n# algorithm = \"hmac-md5\"\n"),
        "{toml}"
    );
    assert!(
        toml.contains("# ddns = { server = \"192.168.1.2\", key = \"rndc-key\" }"),
        "{toml}"
    );
    // Loudly: at the key's line, among the warnings.
    let w: Vec<_> = i.warnings().collect();
    assert!(
        w.iter().any(|u| u.line == 13
            && u.reason.contains("hmac-md5")
            && u.reason.contains("NOT sent")),
        "{w:#?}"
    );
    // The reverse zone has the same primary and key: nothing to say about it.
    assert!(
        at(&i, "dhcpd-ddns.conf", 23).is_empty(),
        "{:#?}",
        i.unsupported
    );
    // A zone without any key: dhcpd.conf sent unsigned updates; the import does not.
    let conf = "ddns-update-style interim;\n\
                zone example.org. { primary 10.0.0.1; }\n\
                subnet 10.0.0.0 netmask 255.255.255.0 { }\n";
    let i = import::import_isc_dhcpd(conf, std::path::Path::new("dhcpd.conf")).unwrap();
    assert!(valid(&i).dhcp_view().ddns.is_none());
    assert!(
        i.warnings()
            .any(|u| u.line == 2 && u.reason.contains("unsigned"))
    );
    assert!(i.to_toml().contains("# ddns = { server = \"10.0.0.1\" }"));
    // A reverse zone updated elsewhere than the forward one: said, since one server takes all.
    let conf = "ddns-update-style interim;\n\
                zone example.org. { primary 10.0.0.1; }\n\
                zone 0.0.10.in-addr.arpa. { primary 10.0.0.2; }\n\
                subnet 10.0.0.0 netmask 255.255.255.0 { }\n";
    let i = import::import_isc_dhcpd(conf, std::path::Path::new("dhcpd.conf")).unwrap();
    valid(&i);
    assert!(
        i.unsupported
            .iter()
            .any(|u| u.line == 3 && u.reason.contains("differs from zone example.org")),
        "{:#?}",
        i.unsupported
    );
}

#[test]
fn the_domain_comes_from_the_subnet_ddns_domainname_or_the_zone_not_lan() {
    // The only subnet names it.
    let i = file(Format::IscDhcpd, "dhcpd-ddns.conf");
    assert_eq!(i.domain(), "home.example.net");
    assert!(
        i.guesses.iter().all(|g| !g.contains("\"lan\"")),
        "{:?}",
        i.guesses
    );
    let dom = |conf: &str| {
        let i = import::import_isc_dhcpd(conf, std::path::Path::new("dhcpd.conf")).unwrap();
        valid(&i);
        i.domain().to_owned()
    };
    assert_eq!(
        dom("subnet 10.0.0.0 netmask 255.255.255.0 { option domain-name \"office.example.com\"; }"),
        "office.example.com"
    );
    // Only ddns-domainname.
    assert_eq!(
        dom(
            "ddns-update-style none;\nddns-domainname \"lab.example.org\";\nsubnet 10.0.0.0 netmask 255.255.255.0 { }"
        ),
        "lab.example.org"
    );
    // Only the update zone.
    assert_eq!(
        dom(
            "ddns-update-style none;\nzone lab.example.org. { primary 10.0.0.1; }\nzone 0.0.10.in-addr.arpa. { primary 10.0.0.1; }\nsubnet 10.0.0.0 netmask 255.255.255.0 { }"
        ),
        "lab.example.org"
    );
    // Global option domain-name first, as before.
    assert_eq!(
        dom(
            "option domain-name \"a.example\";\nddns-domainname \"b.example\";\nsubnet 10.0.0.0 netmask 255.255.255.0 { }"
        ),
        "a.example"
    );
}

// ------------------------------------------------------------------ 10. loopback records

#[test]
fn localhost_records_are_skipped_not_made_a_subnet_on_lo() {
    let i = file(Format::Zone, "db.home.example.net");
    let t = valid(&i);
    let v = t.dhcp_view();
    assert!(
        v.subnets
            .iter()
            .all(|s| !s.network.to_string().starts_with("127.")),
        "{}",
        i.to_toml()
    );
    assert!(!i.to_toml().contains("[host.localhost]"), "{}", i.to_toml());
    for line in [13, 14] {
        assert!(
            at(&i, "db.home.example.net", line)
                .iter()
                .any(|u| u.reason.starts_with("skipped: a loopback")),
            "{line}: {:#?}",
            i.unsupported
        );
    }
    assert!(i.to_toml().contains("[host.nas]"));
    // Merged with the dhcpd.conf: still no lo subnet, and the zone's domain.
    let m = import::merge(vec![i, file(Format::IscDhcpd, "dhcpd-ddns.conf")]);
    let t = valid(&m);
    assert_eq!(t.domain, "home.example.net");
    assert_eq!(t.dhcp_view().subnets.len(), 1, "{}", m.to_toml());
}

// ------------------------------------------------------------------ issue 17: dhcpd6.conf, ip6.arpa

#[test]
fn dhcpd6_conf_imports_subnet6_range6_prefix6_and_ipv6_reservations() {
    let zone6 = import::import_file(
        Format::Zone,
        &sample("db.fd00-1.ip6.arpa"),
        Some("0.0.0.0.0.0.0.0.1.0.0.0.0.0.d.f.ip6.arpa"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let m = import::merge(vec![
        file(Format::IscDhcpd, "dhcpd-ddns.conf"),
        file(Format::Zone, "db.home.example.net"),
        file(Format::IscDhcpd, "dhcpd6.conf"),
        zone6,
    ]);
    let t = valid(&m);
    let v = t.dhcp_view();
    assert_eq!(v.subnets6.len(), 1, "{}", m.to_toml());
    let s = &v.subnets6[0];
    assert_eq!(s.network.to_string(), "fd00:1::/64");
    assert_eq!(s.pools.len(), 1, "the temporary range6 is listed, not kept");
    assert_eq!(s.pools[0].range.start.to_string(), "fd00:1::1000");
    assert_eq!(s.pools[0].range.end.to_string(), "fd00:1::1fff");
    assert_eq!(s.pd_pools.len(), 1);
    assert_eq!(s.pd_pools[0].prefix.to_string(), "fd00:1000::/48");
    assert_eq!(s.pd_pools[0].delegated_len, 56);
    assert_eq!(
        (
            s.preferred.as_secs(),
            s.valid.as_secs(),
            s.t1.as_secs(),
            s.t2.as_secs()
        ),
        (604_800, 2_592_000, 3600, 7200)
    );
    assert_eq!(s.dns, ["fd00:1::2".parse::<std::net::Ipv6Addr>().unwrap()]);
    assert_eq!(s.search, ["home.example.net"]);
    assert!(!s.ra, "ISC dhcpd sent no router advertisements");
    // Reservations joined to the IPv4 hosts: nas by name (DUID), ns1 by MAC.
    let r6 = |n: &str| {
        v.reservations6
            .iter()
            .find(|r| r.hostname == n)
            .unwrap_or_else(|| panic!("{n}: {:?}\n{}", v.reservations6, m.to_toml()))
    };
    assert_eq!(r6("nas").ip.to_string(), "fd00:1::10");
    assert_eq!(r6("nas").duid.as_ref().map(Vec::len), Some(14));
    assert_eq!(r6("ns1").ip.to_string(), "fd00:1::2");
    // An IPv6-only host (no IPv4 reservation anywhere) becomes a host of its own, reserved by
    // its DUID, and nothing about it is listed as unsupported.
    assert_eq!(r6("phone").ip.to_string(), "fd00:1::99");
    assert_eq!(r6("phone").duid.as_ref().map(Vec::len), Some(10));
    assert!(at(&m, "dhcpd6.conf", 31).is_empty(), "{:#?}", m.unsupported);
    assert!(
        m.to_toml().contains("[host.phone]\nipv6 = \"fd00:1::99\""),
        "{}",
        m.to_toml()
    );
    // What the host file cannot hold, with file:line.
    assert!(
        !at(&m, "dhcpd6.conf", 40).is_empty(),
        "{:#?}",
        m.unsupported
    ); // temporary
    // The ip6.arpa PTRs agree with the hosts' ipv6 addresses; dnsd does not serve them yet.
    for line in [7, 8] {
        let l = at(&m, "db.fd00-1.ip6.arpa", line);
        assert!(
            l.iter().any(|u| u.reason.contains("as the PTR says")),
            "{line}: {:#?}",
            m.unsupported
        );
    }
}
