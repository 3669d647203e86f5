use std::path::Path;

use super::*;

fn zone(text: &str) -> ZoneFile {
    read_str(text, Path::new("db.test"), Some("example.com")).unwrap_or_else(|e| panic!("{e}"))
}

fn err(text: &str) -> ZoneFileError {
    read_str(text, Path::new("db.test"), Some("example.com")).unwrap_err()
}

#[test]
fn ttl_units() {
    assert_eq!(parse_ttl("3600"), Some(3600));
    assert_eq!(parse_ttl("1h30m"), Some(5400));
    assert_eq!(parse_ttl("1d2h"), Some(93_600));
    assert_eq!(parse_ttl("1W"), Some(604_800));
    assert_eq!(parse_ttl("IN"), None);
    assert_eq!(parse_ttl("1x"), None);
}

#[test]
fn at_and_relative_names_wherever_a_name_may_stand() {
    let z = zone(
        "$TTL 1d2h\n@ IN SOA @ hostmaster (\n  7 ; serial\n  1h 15m 2w 1h )\n\
         \tNS @\n\tMX 10 @\nwww CNAME @\n_ldap._tcp 600 IN SRV 0 100 389 dc1\n\
         1.10.in-addr.arpa. PTR @\nmail IN 60 MX 5 mx.other.org.\n",
    );
    let d: Vec<&Rdata> = z.records.iter().map(|r| &r.data).collect();
    let ex = "example.com.".to_owned();
    assert_eq!(
        d[0],
        &Rdata::Soa {
            mname: ex.clone(),
            rname: "hostmaster.example.com.".into(),
            serial: 7,
            refresh: 3600,
            retry: 900,
            expire: 14 * 86400,
            minimum: 3600
        }
    );
    assert_eq!(d[1], &Rdata::Name(ex.clone()));
    assert_eq!(z.records[1].owner, ex);
    assert_eq!(
        d[2],
        &Rdata::Mx {
            preference: 10,
            exchange: ex.clone()
        }
    );
    assert_eq!(d[3], &Rdata::Name(ex.clone()));
    assert_eq!(
        d[4],
        &Rdata::Srv {
            priority: 0,
            weight: 100,
            port: 389,
            target: "dc1.example.com.".into()
        }
    );
    assert_eq!(z.records[4].owner, "_ldap._tcp.example.com.");
    assert_eq!((z.records[4].ttl, z.records[0].ttl), (600, 93_600));
    assert_eq!(d[5], &Rdata::Name(ex));
    assert_eq!(z.records[6].ttl, 60, "TTL and class in either order");
}

#[test]
fn strings_escapes_includes_and_generate() {
    let files = |p: &Path| -> std::io::Result<String> {
        assert_eq!(p, Path::new("/z/more.inc"));
        Ok("printer A 10.0.0.9\n".into())
    };
    let text = "$TTL 1h\ntxt TXT \"a;b\" \"say \\\"hi\\\"\" \"\\065\"\n\
                $INCLUDE more.inc lab.example.com.\nafter A 10.0.0.1\n\
                $GENERATE 1-3/2 host-${10,3} A 10.0.1.$\n";
    let z = read(text, Path::new("/z/db.test"), Some("example.com"), &files).unwrap();
    let owners: Vec<&str> = z.records.iter().map(|r| r.owner.as_str()).collect();
    assert_eq!(
        owners,
        [
            "txt.example.com.",
            "printer.lab.example.com.",
            "after.example.com.",
            "host-011.example.com.",
            "host-013.example.com."
        ]
    );
    assert_eq!(
        z.records[0].data,
        Rdata::Txt(vec![b"a;b".to_vec(), b"say \"hi\"".to_vec(), b"A".to_vec()])
    );
    assert_eq!(&*z.records[1].pos.file, Path::new("/z/more.inc"));
    assert_eq!(z.records[4].data, Rdata::A("10.0.1.3".parse().unwrap()));
}

#[test]
fn errors_give_line_column_and_a_fix() {
    let e = err("$TTL 1h\n\nhost IN A 10.0.0.256\n");
    let s = e.to_string();
    assert!(s.starts_with("db.test:3:11: "), "{s}");
    assert!(s.contains("10.0.0.256") && s.contains("fix: "), "{s}");
    let e = err("@ IN SOA ns hostmaster (\n 1 2 3 4 5\nns IN A 10.0.0.1\n");
    assert!(e.to_string().starts_with("db.test:1:24: "), "{e}");
    let e = err("@ IN SOA ns hostmaster ( 1 2 3 )\n");
    assert!(e.to_string().contains("7 fields"), "{e}");
    let e = err("_x._tcp SRV 0 100 ldap dc1\n");
    assert!(e.to_string().starts_with("db.test:1:19: "), "{e}");
    let e = read_str("host A 10.0.0.1\n", Path::new("z"), None).unwrap_err();
    assert!(e.to_string().contains("origin"), "{e}");
}
