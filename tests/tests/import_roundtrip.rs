//! Migration round trips: the old configuration runs in the old daemon (BIND's named for the zone)
//! or stands for what the old daemon did (dhcpd.conf, keepalived.conf), `import` turns it into a
//! host file, and the suite's daemons started on that file answer the same.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use e2e::addrs::{MAIN_INNER, VIP};
use e2e::suite::{dhclient_on, http_server};
use e2e::{Host, Proc, Ready, SeedLan, bin_path};

fn samples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/import/tests/import-samples")
}

/// `lbd import FILES -o OUT` (any daemon's import does the same); the result must validate.
fn import(files: &[PathBuf], out: &Path) -> String {
    let o = Command::new(bin_path("lbd"))
        .arg("import")
        .args(files)
        .arg("-o")
        .arg(out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success(), "import failed: {stderr}");
    let check = Command::new(bin_path("dnsd"))
        .args(["--check", "-c"])
        .arg(out)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "imported file fails --check: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    std::fs::read_to_string(out).unwrap()
}

fn start(host: &Host, bin: &str, conf: &Path, dir: &Path) -> Proc {
    let state = dir.join(format!("{bin}-{}", host.name()));
    std::fs::create_dir_all(&state).unwrap();
    host.process(bin_path(bin))
        .args(["--config", conf.to_str().unwrap()])
        .arg("--state-dir")
        .arg(&state)
        .arg("--runtime-dir")
        .arg(&state)
        .ready(Ready::Notify)
        .timeout(Duration::from_secs(30))
        .spawn()
}

/// The addresses `name` finally resolves to (CNAMEs followed) at `server:port`.
fn addrs(from: &Host, server: &str, port: u16, name: &str, qtype: &str) -> BTreeSet<String> {
    let out = from.run_unchecked(&[
        "dig",
        "+short",
        "+time=2",
        "+tries=2",
        "-p",
        &port.to_string(),
        &format!("@{server}"),
        name,
        qtype,
    ]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with(";;") && !l.is_empty())
        .filter(|l| qtype != "A" || !l.ends_with('.'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn zone_files_served_by_bind_and_by_dnsd_from_the_import_agree() {
    e2e::require_netns!("named", "dig");
    let lan = SeedLan::build("impzone");
    let dir = lan.lab.dir().to_owned();
    let s = samples();
    let fwd = s.join("db.it-ishin.com");
    let rev = s.join("db.192.168.10");

    // The old server: named on port 5300 with the zone files as they are.
    let nd = dir.join("named");
    std::fs::create_dir_all(&nd).unwrap();
    let zd = nd.display();
    std::fs::write(
        nd.join("named.conf"),
        format!(
            "options {{ directory \"{zd}\"; pid-file \"{zd}/named.pid\"; listen-on port 5300 {{ 192.168.10.1; }};\n\
             listen-on-v6 {{ none; }}; recursion no; dnssec-validation no; }};\n\
             zone \"it-ishin.com\" {{ type primary; file \"{}\"; }};\n\
             zone \"10.168.192.in-addr.arpa\" {{ type primary; file \"{}\"; }};\n",
            fwd.display(),
            rev.display()
        ),
    )
    .unwrap();
    let conf_named = nd.join("named.conf");
    let _named = lan
        .main
        .process("named")
        .args(["-g", "-4", "-u", "root", "-c", conf_named.to_str().unwrap()])
        .ready(Ready::Log("all zones loaded".into()))
        .timeout(Duration::from_secs(20))
        .spawn();

    // The new one: dnsd from the imported host file.
    let conf = dir.join("imported.toml");
    let text = import(&[fwd.clone(), rev], &conf);
    let _dnsd = start(&lan.main, "dnsd", &conf, &dir);

    let deadline = Instant::now() + Duration::from_secs(10);
    while addrs(&lan.web1, "192.168.10.1", 5300, "web1.it-ishin.com", "A").is_empty() {
        assert!(Instant::now() < deadline, "named never answered");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Every name of the forward zone that the host file can hold, and every PTR of the hosts.
    let names = [
        "main", "ns", "router", "gw", "public", "web1", "web2", "db", "mysql", "www3", "www",
    ];
    let mut compared = 0;
    for n in names {
        let q = format!("{n}.it-ishin.com");
        let old = addrs(&lan.web1, "192.168.10.1", 5300, &q, "A");
        let new = addrs(&lan.web1, &MAIN_INNER.to_string(), 53, &q, "A");
        assert!(!old.is_empty(), "named has no answer for {q}");
        if text.contains(&format!("alias {n} was an A record for the same address")) {
            // One address, one host: the importer made this name an alias and said so in the
            // file; it still answers the old address.
            assert!(new.is_superset(&old), "{q}: BIND {old:?}, dnsd {new:?}");
        } else {
            assert_eq!(old, new, "{q}");
        }
        compared += 1;
    }
    for ip in ["192.168.10.10", "192.168.10.11", "192.168.10.1"] {
        let o = lan
            .web1
            .run_unchecked(&["dig", "+short", "-p", "5300", "@192.168.10.1", "-x", ip]);
        let n = lan
            .web1
            .run_unchecked(&["dig", "+short", "@192.168.10.1", "-x", ip]);
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&n.stdout),
            "PTR {ip}"
        );
        compared += 1;
    }
    assert_eq!(compared, names.len() + 3);
}

#[test]
fn the_seed_dhcpd_conf_imported_gives_dhclient_what_isc_dhcpd_did() {
    e2e::require_netns!("dhclient");
    let lan = SeedLan::build("impdhcp");
    let dir = lan.lab.dir().to_owned();
    let conf = dir.join("imported.toml");
    import(&[samples().join("seed-dhcpd.conf")], &conf);
    let _dhcpd = start(&lan.main, "dhcpd", &conf, &dir);
    // ISC dhcpd with this file handed out 192.168.10.200-254 with routers 192.168.10.1.
    let lease = dhclient_on(&lan.client, "laptop");
    let a = lease
        .address
        .unwrap_or_else(|| panic!("no lease: {}", lease.raw));
    assert!(
        a.octets()[..3] == [192, 168, 10] && a.octets()[3] >= 200,
        "{a}"
    );
    assert_eq!(lease.routers, "192.168.10.1");
    assert!(
        lease.raw.contains("option subnet-mask 255.255.255.0"),
        "{}",
        lease.raw
    );
}

#[test]
fn keepalived_conf_imported_balances_the_vip_like_keepalived_and_lvs() {
    e2e::require_netns!("curl", "busybox", "nft");
    let lan = SeedLan::build("impka");
    let dir = lan.lab.dir().to_owned();
    let conf = dir.join("imported.toml");
    import(&[samples().join("keepalived.conf")], &conf);
    let _w1 = http_server(&lan.web1, "web1", &dir);
    let _w2 = http_server(&lan.web2, "web2", &dir);
    let _lbd = start(&lan.main, "lbd", &conf, &dir);
    // VRRP (imported) makes lbd master after Master_Down; then the VIP serves, round robin.
    let url = format!("http://{VIP}/");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = BTreeSet::new();
    let mut ok = 0;
    while ok < 6 {
        assert!(
            Instant::now() < deadline,
            "VIP never served 6 requests; saw {seen:?}"
        );
        let out = lan
            .outside
            .run_unchecked(&["curl", "-sS", "--max-time", "2", &url]);
        if out.status.success() {
            seen.insert(String::from_utf8_lossy(&out.stdout).trim().to_owned());
            ok += 1;
        } else {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    assert_eq!(seen, BTreeSet::from(["web1".to_owned(), "web2".to_owned()]));
}

#[test]
fn each_daemon_imports_its_own_format_and_names_the_line_of_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let s = samples();
    for (bin, good, bad) in [
        (
            "dhcpd",
            s.join("seed-dhcpd.conf"),
            "subnet 10.0.0.0 netmask 255.255.255.0 {\n  range 10.0.0.5 10.0.0.9;\n",
        ),
        (
            "dnsd",
            s.join("db.it-ishin.com"),
            "$ORIGIN x.test.\n@ IN SOA ns x. ( 1 2 3\nwww IN A 10.0.0.1\n",
        ),
        (
            "lbd",
            s.join("keepalived.conf"),
            "virtual_server 10.0.0.80 80 {\n  real_server 10.0.0.300 80 {\n  }\n}\n",
        ),
    ] {
        let out = dir.path().join(format!("{bin}.toml"));
        let o = Command::new(bin_path(bin))
            .arg("import")
            .arg(&good)
            .arg("-o")
            .arg(&out)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{bin} import: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let badf = dir.path().join(format!("{bin}.bad"));
        std::fs::write(&badf, bad).unwrap();
        let o = Command::new(bin_path(bin))
            .arg("import")
            .arg(&badf)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(64), "{bin}: {err}");
        assert!(
            err.starts_with(&format!("{}:", badf.display())),
            "{bin}: no file:line in {err}"
        );
        assert!(
            o.stdout.is_empty(),
            "{bin} wrote a host file from bad input"
        );
    }
}
