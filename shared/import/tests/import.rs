//! The importers on the seed's dhcpd.conf and on realistic samples of each format: each result
//! passes the host file's validation and its views hold what the old configuration served.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use hostfile::{CheckKind, HostTable, Mac, RecordData};
use import::{self, ImportError, Imported};

fn sample(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/import-samples")
        .join(name)
}

fn text(name: &str) -> String {
    std::fs::read_to_string(sample(name)).expect("sample exists")
}

fn isc(name: &str) -> Imported {
    import::import_isc_dhcpd(&text(name), &sample(name)).unwrap_or_else(|e| panic!("{e}"))
}

fn zone(name: &str, origin: Option<&str>) -> Imported {
    import::import_zone(&text(name), origin, &sample(name)).unwrap_or_else(|e| panic!("{e}"))
}

fn keepalived() -> Imported {
    import::import_keepalived(&text("keepalived.conf"), &sample("keepalived.conf"))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn valid(i: &Imported) -> HostTable {
    i.check().unwrap_or_else(|e| {
        panic!(
            "imported file does not validate:\n{e}\n---\n{}",
            i.to_toml()
        )
    })
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

/// Unsupported entries at `file:line` whose construct contains `needle`.
fn listed(i: &Imported, file: &str, line: usize, needle: &str) -> bool {
    i.unsupported.iter().any(|u| {
        u.file.file_name().is_some_and(|f| f == file)
            && u.line == line
            && u.construct.contains(needle)
    })
}

#[test]
fn seed_dhcpd_conf_imports_with_its_bootp_range_and_router() {
    let i = isc("seed-dhcpd.conf");
    let t = valid(&i);
    let v = t.dhcp_view();
    assert_eq!(v.subnets.len(), 1);
    let s = &v.subnets[0];
    assert_eq!(s.network, "192.168.10.0/24".parse().unwrap());
    assert_eq!(s.routers, vec![ip("192.168.10.1")]);
    assert_eq!(s.pools.len(), 1);
    assert_eq!(s.pools[0].range.start, ip("192.168.10.200"));
    assert_eq!(s.pools[0].range.end, ip("192.168.10.254"));
    assert!(s.pools[0].bootp, "dynamic-bootp must become bootp = true");
    // log-facility cannot be expressed: listed with its line, not dropped.
    assert!(
        listed(&i, "seed-dhcpd.conf", 6, "log-facility"),
        "{:?}",
        i.unsupported
    );
    // No domain anywhere: guessed, and the guess is said in the file.
    assert_eq!(i.domain(), "lan");
    assert!(i.to_toml().contains("# guessed: no input names a domain"));
}

#[test]
fn isc_sample_with_groups_shared_network_and_include() {
    let i = isc("dhcpd.conf");
    let t = valid(&i);
    assert_eq!(t.domain, "it-ishin.com");
    let v = t.dhcp_view();
    let nets: Vec<String> = v.subnets.iter().map(|s| s.network.to_string()).collect();
    assert_eq!(
        nets,
        ["192.168.1.0/24", "192.168.10.0/24", "192.168.20.0/24"]
    );
    let inner = &v.subnets[1];
    assert!(inner.authoritative && !v.subnets[0].authoritative);
    assert_eq!(inner.lease.as_secs(), 43200);
    assert_eq!(inner.max_lease.as_secs(), 86400);
    assert_eq!(
        inner.dns,
        vec![ip("192.168.10.1")],
        "global option inherited"
    );
    assert_eq!(inner.search, vec!["it-ishin.com".to_owned()]);
    let lab = &v.subnets[2];
    assert_eq!(
        lab.lease.as_secs(),
        3600,
        "subnet overrides the global lease"
    );
    assert_eq!(lab.next_server, Some(ip("192.168.20.1")));
    assert_eq!(lab.boot_file.as_deref(), Some("pxelinux.0"));
    assert_eq!(lab.mtu, Some(1500));
    assert_eq!(lab.ntp, vec![ip("192.168.20.1")]);
    // The printer's fixed address sat inside the range: the range is split around it.
    let ranges: Vec<String> = lab.pools.iter().map(|p| p.range.to_string()).collect();
    assert_eq!(
        ranges,
        [
            "192.168.20.100-192.168.20.149",
            "192.168.20.151-192.168.20.199"
        ]
    );
    // Reservations from the included file, named by option host-name where given.
    let res = |name: &str| {
        v.reservations
            .iter()
            .find(|r| r.hostname == name)
            .unwrap_or_else(|| panic!("no reservation {name}: {:?}", v.reservations))
    };
    assert_eq!(res("web1").ip, ip("192.168.10.10"));
    assert_eq!(
        res("web1").mac,
        Some("02:00:00:00:10:10".parse::<Mac>().unwrap())
    );
    assert_eq!(res("db").ip, ip("192.168.10.12"));
    assert_eq!(
        res("lab-printer").mac,
        Some("00:1b:a9:12:34:56".parse::<Mac>().unwrap())
    );
    // Options without a named key travel as raw options: per host, and per subnet.
    let o = &res("lab-printer").options;
    assert_eq!(
        (o[0].code, o[0].data.as_slice()),
        (6, &[192, 168, 20, 1][..])
    );
    let tftp = lab
        .options
        .iter()
        .find(|o| o.code == 66)
        .expect("option 66");
    assert_eq!(tftp.data, b"192.168.20.1");
    // Dynamic DNS and its key.
    let dd = v.ddns.expect("ddns imported");
    assert_eq!(dd.server.to_string(), "127.0.0.1:53");
    assert_eq!(dd.key.expect("key").name, "dhcp-update");
    assert!(v.ping_check);
    // Unsupported constructs with their lines, including the included file's name.
    for (line, needle) in [
        (12, "log-facility"),
        (24, "class"),
        (46, "shared-network"),
        (56, "if option pxe-system-type"),
        (73, "roaming-laptop"),
    ] {
        assert!(
            listed(&i, "dhcpd.conf", line, needle),
            "{line} {needle}: {:#?}",
            i.unsupported
        );
    }
    let toml = i.to_toml();
    assert!(
        toml.contains("# reservation from") || toml.contains("# from dhcpd-hosts.conf:2"),
        "{toml}"
    );
    assert!(
        toml.contains("dhcpd-hosts.conf:10"),
        "the include's lines are cited: {toml}"
    );
}

#[test]
fn samba_flat_zone_imports_hosts_and_lists_the_rest() {
    let i = zone("db.it-ishin.com", None);
    let t = valid(&i);
    assert_eq!(t.domain, "it-ishin.com");
    let names: Vec<&str> = t.hosts.iter().map(|h| h.name.as_str()).collect();
    for n in ["main", "router", "public", "web1", "web2", "db"] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    let main = t.hosts.iter().find(|h| h.name == "main").unwrap();
    assert_eq!(
        main.ips,
        vec![ip("192.168.1.2"), ip("192.168.10.1")],
        "omitted owner = previous owner"
    );
    assert!(
        main.aliases.contains(&"ns".to_owned()),
        "second name of an address becomes an alias"
    );
    let db = t.hosts.iter().find(|h| h.name == "db").unwrap();
    assert_eq!(db.aliases, vec!["mysql".to_owned()]);
    let dns = t.dns_view();
    let fwd = &dns.zones[0];
    assert_eq!(fwd.origin, "it-ishin.com.");
    assert_eq!(fwd.soa.refresh, 10800);
    assert_eq!(fwd.soa.retry, 900);
    assert_eq!(fwd.soa.expire, 604800);
    assert_eq!(fwd.soa.minimum, 300);
    assert_eq!(fwd.soa.ttl, 3600);
    assert_eq!(fwd.soa.mname, "main.it-ishin.com.");
    assert_eq!(fwd.soa.rname, "hostmaster.it-ishin.com.");
    let has = |name: &str, d: RecordData| fwd.records.iter().any(|r| r.name == name && r.data == d);
    assert!(has(
        "web1.it-ishin.com.",
        RecordData::A(ip("192.168.10.10"))
    ));
    assert!(has(
        "gw.it-ishin.com.",
        RecordData::Cname("router.it-ishin.com.".into())
    ));
    assert!(has(
        "it-ishin.com.",
        RecordData::Ns("main.it-ishin.com.".into())
    ));
    // www3 has an A record of its own here (no keepalived.conf to make it a service), www its alias.
    assert!(has(
        "www.it-ishin.com.",
        RecordData::Cname("www3.it-ishin.com.".into())
    ));
    assert!(has(
        "www3.it-ishin.com.",
        RecordData::A(ip("192.168.1.120"))
    ));
    // MX, TXT, SRV, the apex A, the _msdcs names: each listed with its line.
    for (line, needle) in [
        (12, "MX"),
        (13, "TXT"),
        (14, "A 192.168.1.2"),
        (27, "gc._msdcs"),
        (28, "_ldap._tcp"),
        (31, "_kpasswd._udp"),
        (33, "default-first-site-name"),
        (34, "_msdcs"),
    ] {
        assert!(
            listed(&i, "db.it-ishin.com", line, needle),
            "{line} {needle}: {:#?}",
            i.unsupported
        );
    }
    // Subnets were guessed from the addresses, and the file says so.
    assert!(i.to_toml().contains("# guessed: network 192.168.10.0/24"));
}

#[test]
fn reverse_zone_ptrs_are_checked_against_the_a_records() {
    let fwd = zone("db.it-ishin.com", None);
    let rev = zone("db.192.168.10", Some("10.168.192.in-addr.arpa"));
    let m = import::merge(vec![fwd, rev]);
    let t = valid(&m);
    // Agreeing PTRs are generated by the host file; disagreeing or orphaned ones are reported.
    assert!(
        listed(&m, "db.192.168.10", 8, "mysql.it-ishin.com"),
        "{:#?}",
        m.unsupported
    );
    assert!(
        listed(&m, "db.192.168.10", 9, "old-printer"),
        "{:#?}",
        m.unsupported
    );
    assert!(
        !m.unsupported
            .iter()
            .any(|u| u.line == 6 && u.construct.contains("web1"))
    );
    let dns = t.dns_view();
    let rz = dns
        .zones
        .iter()
        .find(|z| z.origin == "10.168.192.in-addr.arpa.")
        .expect("reverse zone");
    assert!(
        rz.records
            .iter()
            .any(|r| r.name == "10.10.168.192.in-addr.arpa."
                && r.data == RecordData::Ptr("web1.it-ishin.com.".into()))
    );
}

#[test]
fn keepalived_sample_imports_service_vrrp_and_guessed_names() {
    let i = keepalived();
    let t = valid(&i);
    let lb = t.lb_view();
    assert_eq!(lb.services.len(), 1);
    let s = &lb.services[0];
    assert_eq!(s.vip, ip("192.168.1.120"));
    assert_eq!(s.port, 80);
    let addrs: Vec<std::net::SocketAddr> = s.backends.iter().map(|b| b.addr).collect();
    assert_eq!(
        addrs,
        [
            "192.168.10.10:80".parse().unwrap(),
            "192.168.10.11:80".parse().unwrap()
        ]
    );
    assert_eq!(s.backends[0].name, "rs-192-168-10-10");
    match &s.check.kind {
        CheckKind::Http { path, expect, .. } => {
            assert_eq!(path, "/");
            assert_eq!(*expect, (200, 200));
        }
        k => panic!("check {k:?}"),
    }
    assert_eq!(s.check.interval.as_secs(), 2);
    assert_eq!(s.check.timeout.as_secs(), 1);
    assert_eq!(s.interface.as_deref(), Some("br0"));
    let vrrp = lb.vrrp.expect("vrrp");
    assert_eq!((vrrp.vrid, vrrp.priority, vrrp.preempt), (51, 150, true));
    assert_eq!(vrrp.interval.as_secs(), 1);
    assert_eq!(vrrp.interface.as_deref(), Some("br0"));
    let toml = i.to_toml();
    assert!(
        toml.contains("# guessed: name `rs-192-168-10-10`"),
        "{toml}"
    );
    assert!(
        toml.contains("# guessed: network 192.168.1.0/24 from the VIP prefix"),
        "{toml}"
    );
    for (line, needle) in [
        (4, "notification_email"),
        (11, "state MASTER"),
        (16, "authentication"),
        (37, "digest"),
    ] {
        assert!(
            listed(&i, "keepalived.conf", line, needle),
            "{line} {needle}: {:#?}",
            i.unsupported
        );
    }
}

#[test]
fn merge_of_all_three_matches_the_example_host_file() {
    let m = import::merge(vec![
        isc("dhcpd.conf"),
        zone("db.it-ishin.com", None),
        zone("db.192.168.10", Some("10.168.192.in-addr.arpa")),
        keepalived(),
    ]);
    let got = valid(&m);
    let want =
        HostTable::load(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../etc/hosts.toml"))
            .expect("etc/hosts.toml is valid");
    assert_eq!(got.domain, want.domain);
    // Every host of the example, with the same addresses, MAC and aliases.
    for w in &want.hosts {
        let g = got
            .hosts
            .iter()
            .find(|h| h.name == w.name)
            .unwrap_or_else(|| panic!("host {} missing:\n{}", w.name, m.to_toml()));
        let mut gi = g.ips.clone();
        let mut wi = w.ips.clone();
        gi.sort();
        wi.sort();
        assert_eq!(gi, wi, "{}", w.name);
        assert_eq!(g.mac, w.mac, "{}", w.name);
        assert_eq!(g.aliases, w.aliases, "{}", w.name);
    }
    // The DHCP essentials of the inner LAN.
    let (gd, wd) = (got.dhcp_view(), want.dhcp_view());
    let gi = gd
        .subnets
        .iter()
        .find(|s| s.network.to_string() == "192.168.10.0/24")
        .unwrap();
    let wi = wd
        .subnets
        .iter()
        .find(|s| s.network.to_string() == "192.168.10.0/24")
        .unwrap();
    assert_eq!(gi.routers, wi.routers);
    assert_eq!(gi.dns, wi.dns);
    assert_eq!(gi.search, wi.search);
    assert_eq!(
        (gi.lease, gi.max_lease, gi.authoritative),
        (wi.lease, wi.max_lease, wi.authoritative)
    );
    assert_eq!(gi.pools, wi.pools);
    let mut gres: Vec<_> = gd
        .reservations
        .iter()
        .map(|r| (r.hostname.clone(), r.mac, r.ip))
        .collect();
    gres.retain(|r| r.0 != "lab-printer");
    let wres: Vec<_> = wd
        .reservations
        .iter()
        .map(|r| (r.hostname.clone(), r.mac, r.ip))
        .collect();
    assert_eq!(gres, wres);
    assert_eq!(
        gd.ddns.as_ref().map(|d| d.server),
        wd.ddns.as_ref().map(|d| d.server)
    );
    // The balanced service: named www3 from the zone, backends web1/web2 by name.
    let (gl, wl) = (got.lb_view(), want.lb_view());
    assert_eq!(gl.services.len(), 1);
    let (gs, ws) = (&gl.services[0], &wl.services[0]);
    assert_eq!(
        (gs.name.as_str(), gs.vip, gs.port),
        (ws.name.as_str(), ws.vip, ws.port)
    );
    assert_eq!(gs.backends, ws.backends);
    assert_eq!(gs.scheduler, ws.scheduler);
    assert!(matches!(gs.check.kind, CheckKind::Http { .. }));
    assert_eq!(gs.check.interval, ws.check.interval);
    let (gv, wv) = (gl.vrrp.unwrap(), wl.vrrp.unwrap());
    assert_eq!(
        (gv.vrid, gv.priority, gv.interval),
        (wv.vrid, wv.priority, wv.interval)
    );
    // DNS: the same forward records for every name of the example (A, CNAME, NS), www3 included.
    let (gz, wz) = (&got.dns_view().zones[0], &want.dns_view().zones[0]);
    for r in &wz.records {
        assert!(
            gz.records
                .iter()
                .any(|g| g.name == r.name && g.data == r.data),
            "record {r:?} missing:\n{}",
            m.to_toml()
        );
    }
    assert_eq!(got.dns_view().update_keys.len(), 1);
    // www pointed at www3, now a service: services have no aliases, so it is listed.
    assert!(
        listed(&m, "db.it-ishin.com", 26, "www.it-ishin.com. CNAME"),
        "{:#?}",
        m.unsupported
    );
    // The real servers took the zone's names: nothing is named rs-*.
    assert!(!m.to_toml().contains("rs-192"), "{}", m.to_toml());
}

fn syntax_line(e: ImportError) -> (usize, String) {
    let s = e.to_string();
    (e.line(), s)
}

#[test]
fn malformed_input_names_the_line() {
    let p = Path::new("bad.conf");
    let cases: Vec<(&str, Result<Imported, ImportError>, usize, &str)> = vec![
        (
            "isc unclosed brace",
            import::import_isc_dhcpd(
                "subnet 10.0.0.0 netmask 255.255.255.0 {\n  option routers 10.0.0.1;\n",
                p,
            ),
            1,
            "never closed",
        ),
        (
            "isc bad address",
            import::import_isc_dhcpd(
                "subnet 10.0.0.0 netmask 255.255.255.0 {\n  option routers 10.0.0.300;\n}\n",
                p,
            ),
            2,
            "10.0.0.300",
        ),
        (
            "isc unterminated string",
            import::import_isc_dhcpd(
                "option domain-name \"it-ishin.com;\nsubnet 10.0.0.0 netmask 255.0.0.0 { }\n",
                p,
            ),
            1,
            "never closed",
        ),
        (
            "isc missing semicolon",
            import::import_isc_dhcpd(
                "subnet 10.0.0.0 netmask 255.255.255.0 {\n  option routers 10.0.0.1\n}\n",
                p,
            ),
            2,
            "does not end with `;`",
        ),
        (
            "isc stray brace",
            import::import_isc_dhcpd("authoritative;\n}\n", p),
            2,
            "without a matching",
        ),
        (
            "isc host bits",
            import::import_isc_dhcpd("\nsubnet 10.0.0.1 netmask 255.255.255.0 { }\n", p),
            2,
            "host bits",
        ),
        (
            "zone parenthesis never closed",
            import::import_zone(
                "$TTL 1h\n@ IN SOA ns hostmaster (\n 1 2 3 4 5\nns IN A 10.0.0.1\n",
                Some("example.com"),
                p,
            ),
            2,
            "never closed",
        ),
        (
            "zone bad address",
            import::import_zone("$TTL 1h\n\nhost IN A 10.0.0.256\n", Some("example.com"), p),
            3,
            "10.0.0.256",
        ),
        (
            "zone unterminated string",
            import::import_zone("$TTL 1h\n@ IN TXT \"v=spf1\n", Some("example.com"), p),
            2,
            "never closed",
        ),
        (
            "zone relative name without origin",
            import::import_zone("host IN A 10.0.0.1\n", None, p),
            1,
            "origin",
        ),
        (
            "zone short SOA",
            import::import_zone("@ IN SOA ns hostmaster ( 1 2 3 )\n", Some("example.com"), p),
            1,
            "7 fields",
        ),
        (
            "keepalived unclosed brace",
            import::import_keepalived(
                "vrrp_instance VI_1 {\n  virtual_router_id 51\n  virtual_ipaddress {\n    10.0.0.5\n}\n",
                p,
            ),
            1,
            "never closed",
        ),
        (
            "keepalived bad address",
            import::import_keepalived(
                "virtual_server 10.0.0.5 80 {\n  real_server 10.0.0.999 80 {\n  }\n}\n",
                p,
            ),
            2,
            "10.0.0.999",
        ),
        (
            "keepalived unterminated string",
            import::import_keepalived("global_defs {\n  router_id \"main\n}\n", p),
            2,
            "never closed",
        ),
    ];
    for (what, r, line, needle) in cases {
        let e = r.err().unwrap_or_else(|| panic!("{what}: accepted"));
        let (l, msg) = syntax_line(e);
        assert_eq!(l, line, "{what}: {msg}");
        assert!(msg.contains(needle), "{what}: {msg}");
        assert!(
            msg.starts_with(&format!("bad.conf:{line}:")),
            "{what}: {msg}"
        );
    }
}

#[test]
fn an_include_loop_is_an_error_not_a_hang() {
    let read =
        |p: &Path| -> std::io::Result<String> { Ok(format!("include \"{}\";\n", p.display())) };
    let e = import::import_isc_dhcpd_with("include \"a.conf\";\n", Path::new("/x/a.conf"), &read)
        .expect_err("loop");
    assert!(e.to_string().contains("includes itself"), "{e}");
}

#[test]
fn zone_grammar_details() {
    // TTL and class in either order, BIND units, $ORIGIN changes, quoted strings with `;`,
    // a multi-line record, a name relative to a new origin, and $INCLUDE with its own origin.
    let files = |p: &Path| -> std::io::Result<String> {
        assert_eq!(p, Path::new("/z/more.inc"));
        Ok("printer 1h IN A 10.0.0.9\n".into())
    };
    let z = "$TTL 2h\n\
             @ IN SOA ns.example.com. admin\\.john.example.com. (\n  7 ; serial\n  1h 15m 2w 1h )\n\
             \tNS ns\n\
             ns 7200 IN A 10.0.0.2\n\
             www IN 7200 A 10.0.0.3\n\
             txt IN TXT \"a;b\" \"c\"\n\
             $ORIGIN lab.example.com.\n\
             box A 10.0.0.4\n\
             $ORIGIN example.com.\n\
             $INCLUDE more.inc\n";
    let i = import::import_zone_with(z, Some("example.com"), Path::new("/z/db.example"), &files)
        .unwrap_or_else(|e| panic!("{e}"));
    let t = valid(&i);
    let mut names: Vec<&str> = t.hosts.iter().map(|h| h.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["ns", "printer", "www"]);
    assert!(
        listed(&i, "db.example", 8, "txt.example.com. TXT \"a;b\" \"c\""),
        "{:#?}",
        i.unsupported
    );
    assert!(
        listed(&i, "db.example", 10, "box.lab.example.com."),
        "{:#?}",
        i.unsupported
    );
    assert!(
        listed(&i, "more.inc", 1, "printer"),
        "TTL differs: {:#?}",
        i.unsupported
    );
    let soa = &t.dns_view().zones[0].soa;
    assert_eq!(
        (soa.refresh, soa.retry, soa.expire, soa.minimum),
        (3600, 900, 14 * 86400, 3600)
    );
    assert_eq!(soa.rname, "admin.john.example.com.");
    assert_eq!(soa.ttl, 7200);
}

type Importer = fn(&str, &Path) -> Result<Imported, ImportError>;

/// Truncated prefixes of every sample never panic; every prefix that imports validates.
#[test]
fn truncated_samples_never_panic_and_always_validate() {
    let samples: Vec<(&str, Importer)> = vec![
        ("seed-dhcpd.conf", |t, p| import::import_isc_dhcpd(t, p)),
        ("dhcpd.conf", |t, p| import::import_isc_dhcpd(t, p)),
        ("dhcpd-hosts.conf", |t, p| import::import_isc_dhcpd(t, p)),
        ("db.it-ishin.com", |t, p| import::import_zone(t, None, p)),
        ("db.192.168.10", |t, p| {
            import::import_zone(t, Some("10.168.192.in-addr.arpa"), p)
        }),
        ("keepalived.conf", |t, p| import::import_keepalived(t, p)),
    ];
    let mut imported = 0;
    for (name, f) in samples {
        let full = text(name);
        let path = sample(name);
        let cuts: Vec<usize> = full
            .char_indices()
            .map(|(i, _)| i)
            .chain([full.len()])
            .collect();
        for &cut in &cuts {
            let r = std::panic::catch_unwind(|| f(&full[..cut], &path).map(|i| i.to_toml()));
            let Ok(r) = r else {
                panic!("{name}: panic on a prefix of {cut} bytes")
            };
            // Whole lines: whatever imports must also be a valid host file.
            if let Ok(toml) = r
                && (cut == full.len() || full.as_bytes()[cut] == b'\n')
            {
                imported += 1;
                if let Err(e) = HostTable::from_toml(&toml) {
                    panic!("{name} cut at {cut}: invalid output\n{e}\n---\n{toml}");
                }
            }
        }
    }
    assert!(imported > 50, "too few prefixes imported: {imported}");
}

#[test]
fn fixed_address_names_resolve_through_the_zone_and_cname_chains_are_followed() {
    let dhcp = import::import_isc_dhcpd(
        "subnet 10.0.0.0 netmask 255.255.255.0 {\n  range 10.0.0.100 10.0.0.150;\n}\n\
         host printer { hardware ethernet 02:00:00:00:00:09; fixed-address printer.example.com; }\n\
         host ghost { hardware ethernet 02:00:00:00:00:0a; fixed-address ghost.example.com; }\n",
        Path::new("dhcpd.conf"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let zone = import::import_zone(
        "$TTL 1h\n@ SOA ns hostmaster 1 1h 15m 1w 5m\n  NS ns\nns A 10.0.0.1\nprinter A 10.0.0.9\n\
         lp CNAME printer\nlp2 CNAME lp\n",
        Some("example.com"),
        Path::new("db.example.com"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // Alone, the dhcpd.conf cannot place the named hosts: listed, not guessed.
    assert!(
        listed(&dhcp, "dhcpd.conf", 4, "fixed-address printer"),
        "{:#?}",
        dhcp.unsupported
    );
    let m = import::merge(vec![dhcp, zone]);
    let t = valid(&m);
    let r = &t.dhcp_view().reservations;
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(
        (r[0].hostname.as_str(), r[0].ip),
        ("printer", ip("10.0.0.9"))
    );
    assert!(
        listed(&m, "dhcpd.conf", 5, "fixed-address ghost"),
        "{:#?}",
        m.unsupported
    );
    let printer = t.hosts.iter().find(|h| h.name == "printer").unwrap();
    assert_eq!(printer.aliases, ["lp", "lp2"]);
}

#[test]
fn real_servers_are_named_by_ptr_when_no_a_record_names_them() {
    let rev = import::import_zone(
        "$TTL 1h\n@ SOA ns.example.com. hostmaster.example.com. 1 1h 15m 1w 5m\n20 PTR app1.example.com.\n",
        Some("0.0.10.in-addr.arpa"),
        Path::new("db.10.0.0"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let ka = import::import_keepalived(
        "virtual_server 10.0.0.5 443 {\n  lb_algo wlc\n  real_server 10.0.0.20 8443 {\n    TCP_CHECK {\n      connect_timeout 3\n    }\n  }\n  real_server 10.0.0.21 8443 {\n    TCP_CHECK {\n      connect_timeout 3\n    }\n  }\n}\n",
        Path::new("keepalived.conf"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let m = import::merge(vec![rev, ka]);
    let t = valid(&m);
    let s = &t.lb_view().services[0];
    let names: Vec<&str> = s.backends.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, ["app1", "rs-10-0-0-21"]);
    assert_eq!(s.backends[0].addr.port(), 8443);
    assert_eq!(s.scheduler, hostfile::Scheduler::Lc);
    assert_eq!(
        s.dataplane,
        hostfile::Dataplane::Proxy,
        "least-connection needs the proxy"
    );
    assert_eq!(s.check.kind, CheckKind::Tcp);
    assert_eq!(s.check.timeout.as_secs(), 3);
    assert_eq!(
        s.check.interval.as_secs(),
        60,
        "keepalived's default delay_loop"
    );
    // The PTR agrees with the host it named: nothing about it is listed.
    assert!(
        !m.unsupported.iter().any(|u| u.construct.contains("PTR")),
        "{:#?}",
        m.unsupported
    );
}

/// A small deterministic generator (no extra crate): the same mutations on every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n.max(1) as u64) as usize
    }
}

fn mutate(text: &str, rng: &mut Lcg) -> String {
    const PIECES: [&str; 22] = [
        "{",
        "}",
        ";",
        "\"",
        "(",
        ")",
        "\n",
        "#",
        "!",
        ".",
        "0",
        "999",
        "a",
        "-",
        "/",
        ":",
        "@",
        " ",
        "\t",
        "$ORIGIN x.",
        "range 10.0.0.1;",
        " IN A 1.2.3.4",
    ];
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    for _ in 0..1 + rng.next(3) {
        if lines.is_empty() {
            break;
        }
        let l = rng.next(lines.len());
        match rng.next(5) {
            0 => {
                lines.remove(l);
            }
            1 => {
                let d = lines[l].clone();
                lines.insert(l, d);
            }
            2 => {
                let m = rng.next(lines.len());
                lines.swap(l, m);
            }
            _ => {
                let chars: Vec<char> = lines[l].chars().collect();
                let at = rng.next(chars.len() + 1);
                let mut s: String = chars[..at].iter().collect();
                if rng.next(2) == 0 {
                    s.push_str(PIECES[rng.next(PIECES.len())]);
                    s.extend(&chars[at..]);
                } else {
                    s.extend(chars.iter().skip(at + 1));
                }
                lines[l] = s;
            }
        }
    }
    lines.join("\n") + "\n"
}

/// Random edits of every sample never panic, and whatever still imports (alone, or merged with
/// the other samples) is a valid host file.
#[test]
fn mutated_samples_never_panic_and_always_validate() {
    let samples: Vec<(&str, Importer)> = vec![
        ("dhcpd.conf", |t, p| import::import_isc_dhcpd(t, p)),
        ("db.it-ishin.com", |t, p| import::import_zone(t, None, p)),
        ("db.192.168.10", |t, p| {
            import::import_zone(t, Some("10.168.192.in-addr.arpa"), p)
        }),
        ("keepalived.conf", |t, p| import::import_keepalived(t, p)),
        ("keepalived-2x.conf", |t, p| import::import_keepalived(t, p)),
        ("dhcpd-ddns.conf", |t, p| import::import_isc_dhcpd(t, p)),
        ("dhcpd6.conf", |t, p| import::import_isc_dhcpd(t, p)),
    ];
    let mut rng = Lcg(0x5eed_1a4e);
    let (mut ok, mut err) = (0, 0);
    for (k, (name, f)) in samples.iter().enumerate() {
        let full = text(name);
        for round in 0..300 {
            let m = mutate(&full, &mut rng);
            let r = std::panic::catch_unwind(|| f(&m, &sample(name)));
            let Ok(r) = r else {
                panic!("{name}: panic on mutation {round}:\n{m}")
            };
            match r {
                Err(e) => {
                    assert!(
                        e.line() <= m.lines().count() + 1,
                        "{name}: line out of range: {e}"
                    );
                    err += 1;
                }
                Ok(i) => {
                    ok += 1;
                    if let Err(e) = i.check() {
                        panic!(
                            "{name} mutation {round}: invalid output\n{e}\n--- input\n{m}\n--- output\n{}",
                            i.to_toml()
                        );
                    }
                    // Merged with the unmutated others.
                    let mut parts = vec![i];
                    for (j, (other, g)) in samples.iter().enumerate() {
                        if j != k {
                            parts.push(g(&text(other), &sample(other)).unwrap());
                        }
                    }
                    let merged = import::merge(parts);
                    if let Err(e) = merged.check() {
                        panic!(
                            "{name} mutation {round} merged: invalid output\n{e}\n--- input\n{m}\n--- output\n{}",
                            merged.to_toml()
                        );
                    }
                }
            }
        }
    }
    assert!(
        ok > 100 && err > 50,
        "mutations too tame or too wild: {ok} imported, {err} rejected"
    );
}

/// Imports that succeed must validate; failures must name a line of the input.
fn valid_or_line_error(name: &str, input: &str, r: Result<Imported, ImportError>) {
    match r {
        Err(e) => assert!(
            (1..=input.lines().count().max(1)).contains(&e.line()),
            "{name}: {e}"
        ),
        Ok(i) => {
            if let Err(e) = i.check() {
                panic!("{name}: invalid output\n{e}\n{}", i.to_toml());
            }
        }
    }
}

#[test]
fn adversarial_inputs_give_valid_files_or_line_errors() {
    let p = Path::new("x.conf");
    let isc = [
        "subnet 10.0.0.0 netmask 255.255.255.254 { }",
        "subnet 10.0.0.0 netmask 255.255.255.0 { range 10.0.0.0 10.0.0.255; option routers 10.9.9.9; default-lease-time 10; max-lease-time 5; option interface-mtu 20; }",
        "subnet 10.0.0.0 netmask 255.255.255.0 { } host a { hardware ethernet 1:2:3:4:5:6; fixed-address 10.0.0.0; } host b { hardware ethernet 1:2:3:4:5:6; fixed-address 10.0.0.5; }",
        "host 123 { fixed-address 10.0.0.5; } host \"-\" { fixed-address 10.0.0.6; } host a { fixed-address 10.0.0.7; } host a { fixed-address 10.0.0.8; } host A { hardware ethernet 02:00:00:00:00:01; fixed-address 10.0.0.7; }",
        "key k { algorithm hmac-md5; secret \"abc\"; } key \"k2.\" { algorithm hmac-sha256; secret \"c2hvcnQ=\"; } ddns-update-style standard; zone x. { primary 10.0.0.1; key k2; }",
        "option domain-name \"bad_domain\"; option domain-search \"ok.com\", \"bad..x\"; subnet 10.0.0.0 netmask 255.0.0.0 { }",
        "subnet 10.0.0.0 netmask 255.255.255.0 { range 10.0.0.10 10.0.0.20; } subnet 10.0.0.0 netmask 255.255.0.0 { range 10.0.0.15 10.0.0.30; }",
        "subnet 10.0.0.0 netmask 255.255.255.0 { range 10.0.0.10 10.0.0.20; range 10.0.0.15 10.0.0.30; } host h { hardware ethernet 02:00:00:00:00:01; fixed-address 10.0.0.10, 10.0.0.20; }",
        "host h { hardware ethernet 02:00:00:00:00:01; fixed-address 10.0.0.10; option host-name \"a.b.c\"; option vendor-encapsulated-options 1:2:ff; option netbios-node-type 300; }",
        "option netbios-node-type 8; option ip-forwarding maybe;",
        "subnet 10.0.0.0 netmask 255.255.255.0 { option routers gw.example.com; next-server tftp; }",
        "host x { hardware ethernet 02:00:00:00:00:01; fixed-address 255.255.255.255; } host y { hardware ethernet 02:00:00:00:00:02; fixed-address 0.0.0.0; }",
    ];
    for (n, t) in isc.iter().enumerate() {
        valid_or_line_error(&format!("isc{n}"), t, import::import_isc_dhcpd(t, p));
    }
    let zones = [
        "$TTL 0\n@ SOA . . 0 0 0 0 99999999\n@ CNAME www\nWWW A 10.0.0.1\na CNAME b\nb CNAME a\n@ NS ns.other.org.\nsub NS ns\n* A 10.0.0.9\n",
        "$TTL 4294967295\n@ SOA ns hostmaster 1 1 1 1 1\nns A 10.0.0.0\nx A 10.0.0.255\ny A 255.255.255.255\nz A 0.0.0.0\nz AAAA ::1\nq AAAA ::2\n",
        "$ORIGIN .\n$TTL 1\ncom SOA ns.com. h.com. 1 2 3 4 5\n",
        "$TTL 1h\n@ SOA ns hostmaster 1 2 3 4 5\nns A 10.0.0.1\nns2 A 10.0.0.1\nns2 A 10.0.0.2\nns A 10.0.0.2\n",
        "$TTL 1h\n@ SOA ns hostmaster 1 2 3 4 5\nweb1 A 10.0.0.1\nwww3 A 10.0.0.120\nwww3 A 10.0.0.121\n",
        "$TTL 1h\n@ CH TXT x\n@ IN\n",
    ];
    for (n, t) in zones.iter().enumerate() {
        valid_or_line_error(
            &format!("zone{n}"),
            t,
            import::import_zone(t, Some("example.com"), p),
        );
    }
    let ka = [
        "vrrp_instance a {\n virtual_router_id 0\n priority 0\n advert_int 0\n}\nvrrp_instance b {\n virtual_router_id 3\n}\n",
        "virtual_server 10.0.0.0 80 {\n protocol UDP\n lb_algo lc\n quorum 5\n persistence_timeout 0\n sorry_server 10.0.0.9 8080\n real_server 10.0.0.0 80 {\n weight 0\n }\n real_server 10.0.0.0 80 {\n }\n}\n",
        "virtual_server 10.0.0.5 80 {\n real_server 10.0.0.5 80 {\n }\n}\nvirtual_server 10.0.0.5 80 {\n real_server 10.0.0.6 80 {\n }\n}\nvirtual_server 10.0.0.5 443 {\n real_server 10.0.0.6 443 {\n weight 99999\n }\n}\n",
        "virtual_server 10.0.0.5 80 {\n delay_loop 0.01\n real_server 10.0.0.6 80 {\n HTTP_GET {\n url {\n path x\n status_code 42\n }\n connect_timeout 0\n nb_get_retry 0\n connect_port 0\n }\n }\n}\n",
        "virtual_server 10.0.0.255 80 {\n real_server 10.0.0.6 80 {\n }\n}\nvrrp_instance v {\n virtual_router_id 9\n virtual_ipaddress {\n 10.0.0.255/24\n 10.0.0.7/33\n }\n}\n",
        "virtual_server 10.0.0.5 80 {\n real_server 10.0.0.6 80 {\n }\n}\nvirtual_server 10.0.0.6 80 {\n real_server 10.0.0.5 80 {\n }\n}\n",
    ];
    for (n, t) in ka.iter().enumerate() {
        valid_or_line_error(&format!("ka{n}"), t, import::import_keepalived(t, p));
    }
    // merges with conflicts
    let d = import::import_isc_dhcpd("host web1 { hardware ethernet 02:00:00:00:00:01; fixed-address 10.0.0.120; } host other { hardware ethernet 02:00:00:00:00:02; fixed-address 10.0.0.1; }", p).unwrap();
    let z = import::import_zone("$TTL 1h\n@ SOA ns hostmaster 1 2 3 4 5\nweb1 A 10.0.0.1\nwww3 A 10.0.0.120\nwww CNAME www3\n", Some("example.com"), p).unwrap();
    let k = import::import_keepalived(
        "virtual_server 10.0.0.120 80 {\n real_server 10.0.0.1 80 {\n }\n}\n",
        p,
    )
    .unwrap();
    let m = import::merge(vec![d, z, k]);
    valid(&m);
    // The VIP became a reserved host's address (dhcpd.conf put web1 there): the service is listed.
    assert!(
        m.unsupported
            .iter()
            .any(|u| u.construct.contains("virtual_server 10.0.0.120 80"))
    );
}

#[test]
fn aaaa_only_names_become_ipv6_only_hosts() {
    // An AAAA with no A (v6box), and an AAAA before the A of the same name (late).
    let z = "$TTL 1h\n\
             @ IN SOA ns.example.com. admin.example.com. 1 1h 15m 2w 1h\n\
             \tNS ns\n\
             ns A 10.0.0.2\n\
             v6box AAAA fd00::5\n\
             late AAAA fd00::6\n\
             late A 10.0.0.6\n";
    let i = import::import_zone(z, Some("example.com."), Path::new("/z/db.example.com"))
        .unwrap_or_else(|e| panic!("{e}"));
    let t = valid(&i);
    let host = |n: &str| {
        t.hosts
            .iter()
            .find(|h| h.name == n)
            .unwrap_or_else(|| panic!("{n}: {}", i.to_toml()))
    };
    assert!(host("v6box").ips.is_empty());
    assert_eq!(
        host("v6box").ipv6,
        ["fd00::5".parse::<std::net::Ipv6Addr>().unwrap()]
    );
    assert_eq!(host("late").ips, [ip("10.0.0.6")]);
    assert_eq!(
        host("late").ipv6,
        ["fd00::6".parse::<std::net::Ipv6Addr>().unwrap()]
    );
    assert!(!listed(&i, "db.example.com", 5, ""), "{:#?}", i.unsupported);
}
