//! Samba's BIND9_FLATFILE zone for the seed LAN served from `[[dns.zone-file]]`.
//!
//! Two files in `tests/samba/`: `provision-4.17.zone` is what Debian 12's Samba wrote, unedited:
//! `samba-tool domain provision --targetdir=DIR --realm=IT-ISHIN.COM --domain=IT-ISHIN
//! --server-role=dc --dns-backend=BIND9_FLATFILE --host-name=main --host-ip=192.168.1.2
//! --host-ip6=fd00::2` (DIR/bind-dns/dns/it-ishin.com.zone); `provision-template.zone` is Samba's
//! current `source4/setup/provision.zone` rendered for the same domain (`@ IN SOA @ hostmaster (`,
//! `gc._msdcs` as a CNAME). Both pass `named-checkzone`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use e2e::{Host, SeedLan};
use import::zonefile::{self, Rdata};

mod common;

use common::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/samba")
        .join(name)
}

const DNS: &str = r#"[dns]
upstream = ["192.168.1.1"]
allow-recursion = ["192.168.10.0/24", "127.0.0.0/8"]
update-keys = ["dhcp-update"]
zone-file = [{ path = "samba.zone" }]
"#;

/// The example host file with the Samba zone `name` beside it, in `dir`.
fn setup(dir: &Path, name: &str) -> PathBuf {
    std::fs::copy(fixture(name), dir.join("samba.zone")).unwrap();
    host_file(dir, DNS)
}

#[test]
fn both_samba_files_pass_check() {
    for name in ["provision-4.17.zone", "provision-template.zone"] {
        let dir = tempfile::tempdir().unwrap();
        let conf = setup(dir.path(), name);
        let out = Command::new(BIN)
            .args(["--check", "-c"])
            .arg(&conf)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn a_zone_file_error_names_line_column_and_its_own_fix() {
    let dir = tempfile::tempdir().unwrap();
    let conf = host_file(dir.path(), DNS);
    std::fs::write(
        dir.path().join("samba.zone"),
        "$ORIGIN it-ishin.com.\n$TTL 1W\n_ldap._tcp IN SRV 0 100 ldap main\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["--check", "-c"])
        .arg(&conf)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert!(err.contains("samba.zone:3:25: "), "{err}");
    assert!(err.contains("`ldap` is not a port"), "{err}");
    assert!(err.contains("fix: write a whole number"), "{err}");
    assert!(
        !err.contains("host table"),
        "a fix that does not apply: {err}"
    );
}

/// What dig should answer for each SRV, CNAME and TXT record of the file.
fn expected(name: &str) -> Vec<(String, &'static str, String)> {
    let text = std::fs::read_to_string(fixture(name)).unwrap();
    let z = zonefile::read_str(&text, &fixture(name), Some("it-ishin.com")).unwrap();
    z.records
        .iter()
        .filter_map(|r| {
            let answer = match &r.data {
                Rdata::Srv {
                    priority,
                    weight,
                    port,
                    target,
                } => ("SRV", format!("{priority} {weight} {port} {target}")),
                Rdata::Name(t) if r.rtype == "CNAME" => ("CNAME", t.clone()),
                Rdata::Txt(s) => (
                    "TXT",
                    s.iter()
                        .map(|b| format!("\"{}\"", String::from_utf8_lossy(b)))
                        .collect::<Vec<_>>()
                        .join(" "),
                ),
                _ => return None,
            };
            Some((r.owner.clone(), answer.0, answer.1))
        })
        .collect()
}

/// The names a Windows client looks up to find and join the domain (the DC locator), plus the
/// Kerberos and kpasswd services.
const JOIN: &[(&str, &str)] = &[
    ("_ldap._tcp.dc._msdcs.it-ishin.com", "SRV"),
    (
        "_ldap._tcp.Default-First-Site-Name._sites.dc._msdcs.it-ishin.com",
        "SRV",
    ),
    ("_ldap._tcp.pdc._msdcs.it-ishin.com", "SRV"),
    ("_ldap._tcp.gc._msdcs.it-ishin.com", "SRV"),
    ("_gc._tcp.it-ishin.com", "SRV"),
    ("_ldap._tcp.it-ishin.com", "SRV"),
    ("_kerberos._tcp.dc._msdcs.it-ishin.com", "SRV"),
    ("_kerberos._tcp.it-ishin.com", "SRV"),
    ("_kerberos._udp.it-ishin.com", "SRV"),
    ("_kpasswd._tcp.it-ishin.com", "SRV"),
    ("_kpasswd._udp.it-ishin.com", "SRV"),
    ("_kerberos.it-ishin.com", "TXT"),
];

fn assert_served(w: &Host, s: &str, name: &str) {
    let want = expected(name);
    assert!(want.len() > 20, "{name}: {want:?}");
    for (owner, t, answer) in &want {
        let got = short(w, s, &[owner, t]);
        assert_eq!(got, std::slice::from_ref(answer), "{name}: {owner} {t}");
    }
    for (owner, t) in JOIN {
        let got = short(w, s, &[owner, t]);
        assert!(!got.is_empty(), "{name}: nothing for {owner} {t}");
        if *t == "SRV" {
            assert!(got[0].ends_with(" main.it-ishin.com."), "{owner}: {got:?}");
        }
    }
}

/// The host table's names answer as without the zone file.
fn host_names_unchanged(w: &Host, s: &str) {
    assert_eq!(
        short(w, s, &["main.it-ishin.com"]),
        ["192.168.1.2", "192.168.10.1"]
    );
    assert_eq!(short(w, s, &["web1.it-ishin.com"]), ["192.168.10.10"]);
    assert_eq!(short(w, s, &["www3.it-ishin.com"]), ["192.168.1.120"]);
    assert_eq!(short(w, s, &["-x", "192.168.10.12"]), ["db.it-ishin.com."]);
    assert_eq!(short(w, s, &["it-ishin.com", "NS"]), ["main.it-ishin.com."]);
}

#[test]
fn samba_zone_serves_every_join_record_and_follows_a_rewrite() {
    e2e::require_netns!("dig");
    let lan = SeedLan::build("dnsdsamba");
    let dir = lan.lab.dir().to_owned();
    let conf = setup(&dir, "provision-4.17.zone");
    let _d = spawn_dnsd(&lan.main, &conf, &dir.join("state"), &[]);
    let w = &lan.web1;
    let s = "@192.168.10.1";
    assert_served(w, s, "provision-4.17.zone");
    host_names_unchanged(w, s);

    // Samba rewrites the file (here: the current template's form); served without a restart.
    std::fs::copy(fixture("provision-template.zone"), dir.join("samba.zone")).unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || short(
            w,
            s,
            &["gc._msdcs.it-ishin.com", "CNAME"]
        ) == ["main.it-ishin.com."]),
        "the rewritten zone file is not served"
    );
    assert_served(w, s, "provision-template.zone");
    host_names_unchanged(w, s);
}
