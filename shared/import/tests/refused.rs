//! The host file's validator judges every import: what it refuses is left out of the file and
//! listed at the input's file and line, the rest of the table kept.

use std::path::Path;

use import::Imported;

fn refused<'a>(i: &'a Imported, needle: &str) -> Vec<&'a import::Unsupported> {
    i.unsupported
        .iter()
        .filter(|u| u.reason.contains("the host file refuses it") && u.construct.contains(needle))
        .collect()
}

#[test]
fn refused_values_are_listed_at_their_source_and_the_rest_is_kept() {
    let conf = "# a comment\n\
        subnet 10.0.0.0 netmask 255.255.255.0 {\n\
          range 10.0.0.10 10.0.0.20;\n\
          range 10.0.0.15 10.0.0.30;\n\
          option routers 10.9.9.9, 10.0.0.1;\n\
          option interface-mtu 20;\n\
          option domain-search \"ok.com\", \"bad..x\";\n\
        }\n";
    let i = import::import_isc_dhcpd(conf, Path::new("dhcpd.conf")).unwrap();
    let t = i.check().unwrap_or_else(|e| panic!("{e}\n{}", i.to_toml()));
    let s = &t.dhcp_view().subnets[0];
    assert_eq!(
        s.routers,
        ["10.0.0.1".parse::<std::net::Ipv4Addr>().unwrap()]
    );
    assert_eq!(s.search, ["ok.com"]);
    assert_eq!(s.pools.len(), 1, "the overlapping range goes");
    // Each at the line that set it.
    for (needle, line) in [
        ("mtu = 20", 6),
        ("\"10.9.9.9\"", 5),
        ("\"bad..x\"", 7),
        ("10.0.0.15-10.0.0.30", 4),
    ] {
        let r = refused(&i, needle);
        assert_eq!(r.len(), 1, "{needle}: {:#?}", i.unsupported);
        assert_eq!(
            (r[0].file.as_path(), r[0].line),
            (Path::new("dhcpd.conf"), line)
        );
    }
}

#[test]
fn a_refused_key_that_a_table_needs_takes_the_table_along() {
    let conf = "vrrp_instance a {\n virtual_router_id 0\n}\n\
                virtual_server 10.0.0.5 80 {\n quorum 5\n real_server 10.0.0.6 80 {\n }\n}\n";
    let i = import::import_keepalived(conf, Path::new("keepalived.conf")).unwrap();
    let t = i.check().unwrap_or_else(|e| panic!("{e}\n{}", i.to_toml()));
    assert!(
        !i.to_toml().lines().any(|l| l == "[lb.vrrp]"),
        "{}",
        i.to_toml()
    );
    let v = refused(&i, "[lb.vrrp]");
    assert_eq!(v.len(), 1, "{:#?}", i.unsupported);
    assert_eq!(v[0].line, 1);
    let q = refused(&i, "quorum = 5");
    assert_eq!(q.len(), 1, "{:#?}", i.unsupported);
    assert_eq!(q[0].line, 4);
    assert_eq!(
        t.lb_view().services.len(),
        1,
        "the service stays, without its quorum"
    );
}
