//! Every validation rule, the example host files, and the views derived from the seed LAN.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use hostfile::checkcases::{CASES, base};
use hostfile::{ConfigError, HostTable, RecordData};

fn example_files() -> Vec<PathBuf> {
    let etc = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../etc");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&etc)
        .expect("etc/ exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no example host files in etc/");
    v
}

#[test]
fn base_of_the_cases_is_valid() {
    HostTable::from_toml(base()).expect("base is valid");
}

#[test]
fn every_rule_is_enforced_with_its_line() {
    for c in CASES {
        let err = HostTable::from_toml(c.text).expect_err(c.rule);
        let p = err.problems();
        assert!(!p.is_empty(), "{}: no problems", c.rule);
        let hit = p.iter().find(|p| p.message.contains(c.needle));
        let Some(hit) = hit else {
            panic!("{}: no problem mentions {:?}: {err}", c.rule, c.needle)
        };
        assert_eq!(hit.line, c.line, "{}: wrong line in {err}", c.rule);
        assert!(!hit.fix.is_empty(), "{}: no fix", c.rule);
    }
}

#[test]
fn all_problems_are_reported_at_once() {
    let text = format!(
        "{}[host.a]\nip = \"10.9.0.1\"\n[host.b]\nip = \"10.1.0.150\"\nmac = \"02:00:00:00:00:01\"\n[host.c]\nip = \"10.1.0.7\"\nmac = \"02:00:00:00:00:01\"\n[dhcp]\ndecline-probation = \"0s\"\n",
        base()
    );
    let err = HostTable::from_toml(&text).unwrap_err();
    let lines: Vec<usize> = err.problems().iter().map(|p| p.line).collect();
    assert_eq!(lines, vec![7, 9, 13, 15], "{err}");
    let shown = err.to_string();
    assert!(
        shown.starts_with("<string>:7:6: address `10.9.0.1`"),
        "{shown}"
    );
}

#[test]
fn example_files_are_valid() {
    for f in example_files() {
        if let Err(e) = HostTable::load(&f) {
            panic!("{}: {e}", f.display());
        }
    }
}

/// Every table of every example file, given one unknown key, must be rejected.
#[test]
fn unknown_key_in_any_table_of_any_example_is_rejected() {
    fn tables(v: &toml::Value, path: Vec<String>, out: &mut Vec<Vec<String>>) {
        match v {
            toml::Value::Table(t) => {
                out.push(path.clone());
                for (k, v) in t {
                    let mut p = path.clone();
                    p.push(k.clone());
                    tables(v, p, out);
                }
            }
            toml::Value::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    let mut p = path.clone();
                    p.push(format!("#{i}"));
                    tables(v, p, out);
                }
            }
            _ => {}
        }
    }
    fn get<'a>(v: &'a mut toml::Value, path: &[String]) -> &'a mut toml::Value {
        path.iter().fold(v, |v, k| match k.strip_prefix('#') {
            Some(i) => &mut v.as_array_mut().unwrap()[i.parse::<usize>().unwrap()],
            None => v.as_table_mut().unwrap().get_mut(k).unwrap(),
        })
    }
    for f in example_files() {
        let text = std::fs::read_to_string(&f).unwrap();
        let doc: toml::Value = toml::from_str(&text).unwrap();
        let mut paths = Vec::new();
        tables(&doc, Vec::new(), &mut paths);
        assert!(paths.len() > 10, "walked too few tables in {}", f.display());
        for p in paths {
            let mut d = doc.clone();
            get(&mut d, &p)
                .as_table_mut()
                .unwrap()
                .insert("zz-unknown".into(), toml::Value::Integer(1));
            let out = toml::to_string(&d).unwrap();
            match HostTable::from_toml(&out) {
                Err(ConfigError::Invalid { problems, .. }) => assert!(!problems.is_empty()),
                other => panic!(
                    "{}: unknown key in table {p:?} accepted: {other:?}",
                    f.display()
                ),
            }
        }
    }
}

fn seed() -> HostTable {
    HostTable::load(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../etc/hosts.toml"))
        .unwrap()
}

#[test]
fn seed_dhcp_view() {
    let v = seed().dhcp_view();
    assert_eq!(v.subnets.len(), 2);
    let inner = &v.subnets[1];
    assert_eq!(inner.network.to_string(), "192.168.10.0/24");
    assert_eq!(inner.routers, vec![Ipv4Addr::new(192, 168, 10, 1)]);
    assert_eq!(inner.pools.len(), 1);
    assert!(inner.pools[0].bootp);
    assert_eq!(inner.pools[0].range.len(), 55);
    assert!(inner.authoritative);
    let web1 = v
        .reservations
        .iter()
        .find(|r| r.hostname == "web1")
        .unwrap();
    assert_eq!(web1.ip, Ipv4Addr::new(192, 168, 10, 10));
    assert_eq!(web1.mac.unwrap().to_string(), "02:00:00:00:10:10");
    assert_eq!(web1.subnet, 1);
    assert_eq!(v.reservations.len(), 3);
    let dd = v.ddns.unwrap();
    assert_eq!(dd.forward_zone, "it-ishin.com");
    assert!(dd.key.is_some());
    assert!(
        dd.reverse_zones
            .contains(&"10.168.192.in-addr.arpa".to_owned())
    );
}

#[test]
fn seed_dns_view() {
    let v = seed().dns_view();
    let origins: Vec<&str> = v.zones.iter().map(|z| z.origin.as_str()).collect();
    assert_eq!(
        origins,
        [
            "it-ishin.com.",
            "1.168.192.in-addr.arpa.",
            "10.168.192.in-addr.arpa."
        ]
    );
    let fwd = &v.zones[0];
    let find = |name: &str| -> Vec<&RecordData> {
        fwd.records
            .iter()
            .filter(|r| r.name == name)
            .map(|r| &r.data)
            .collect()
    };
    assert_eq!(
        find("www3.it-ishin.com."),
        [&RecordData::A(Ipv4Addr::new(192, 168, 1, 120))]
    );
    assert_eq!(
        find("web1.it-ishin.com."),
        [&RecordData::A(Ipv4Addr::new(192, 168, 10, 10))]
    );
    assert_eq!(
        find("mysql.it-ishin.com."),
        [&RecordData::Cname("db.it-ishin.com.".into())]
    );
    assert_eq!(
        find("it-ishin.com."),
        [&RecordData::Ns("main.it-ishin.com.".into())]
    );
    assert_eq!(find("main.it-ishin.com.").len(), 2);
    let rev = &v.zones[2];
    assert!(
        rev.records
            .iter()
            .any(|r| r.name == "10.10.168.192.in-addr.arpa."
                && r.data == RecordData::Ptr("web1.it-ishin.com.".into()))
    );
    let rev1 = &v.zones[1];
    assert!(
        rev1.records
            .iter()
            .any(|r| r.name == "120.1.168.192.in-addr.arpa."
                && r.data == RecordData::Ptr("www3.it-ishin.com.".into()))
    );
    assert_eq!(v.upstream, vec!["192.168.1.1:53".parse().unwrap()]);
    let listen: Vec<String> = v.listen.iter().map(|a| a.to_string()).collect();
    assert_eq!(
        listen,
        [
            "192.168.1.2:53",
            "192.168.10.1:53",
            "127.0.0.1:53",
            "[::1]:53"
        ]
    );
    assert_eq!(v.update_keys.len(), 1);
}

#[test]
fn seed_lb_view() {
    let v = seed().lb_view();
    assert_eq!(v.services.len(), 1);
    let s = &v.services[0];
    assert_eq!(s.name, "www3");
    assert_eq!(s.vip, Ipv4Addr::new(192, 168, 1, 120));
    assert_eq!(s.vip_prefix, 24);
    let b: Vec<String> = s
        .backends
        .iter()
        .map(|b| format!("{}={}", b.name, b.addr))
        .collect();
    assert_eq!(b, ["web1=192.168.10.10:80", "web2=192.168.10.11:80"]);
    assert!(matches!(s.check.kind, hostfile::CheckKind::Http { .. }));
    assert_eq!(v.vrrp.as_ref().unwrap().vrid, 51);
}

#[test]
fn reverse_zones_are_octet_aligned() {
    let z = |s: &str| {
        hostfile::reverse_zones(s.parse().unwrap())
            .iter()
            .map(|n| hostfile::reverse_origin(*n))
            .collect::<Vec<_>>()
    };
    assert_eq!(z("192.168.10.0/24"), ["10.168.192.in-addr.arpa."]);
    assert_eq!(z("10.20.0.0/16"), ["20.10.in-addr.arpa."]);
    assert_eq!(
        z("10.20.0.0/23"),
        ["0.20.10.in-addr.arpa.", "1.20.10.in-addr.arpa."]
    );
    assert_eq!(z("10.20.0.64/26"), ["0.20.10.in-addr.arpa."]);
}

#[test]
fn every_unknown_key_is_reported_with_the_semantic_errors() {
    let text = format!(
        "{}colour = 1\n[host.a]\nip = \"10.9.0.1\"\nmacc = \"x\"\n[dhcp]\nping-chek = true\n",
        base()
    );
    let err = HostTable::from_toml(&text).unwrap_err();
    let got: Vec<(usize, bool)> = err
        .problems()
        .iter()
        .map(|p| (p.line, p.message.starts_with("unknown field")))
        .collect();
    assert_eq!(
        got,
        vec![(6, true), (8, false), (9, true), (11, true)],
        "{err}"
    );
}
