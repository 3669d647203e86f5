//! The dhcpd page's lease-store section names the PostgreSQL pair's peer (issue 18): two dhcpd
//! servers on one PostgreSQL database (started by the test in its own namespace); server 1's page
//! lists server 2 by address as connected to the database; once server 2 stops, the page says no
//! other dhcpd is connected. Read with curl: the section is plain server-rendered HTML.

mod common;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use common::pg::{Cluster, DB, pg_bin};
use common::*;
use e2e::{Host, Lab};

const S1: Ipv4Addr = Ipv4Addr::new(10, 20, 0, 1);
const S2: Ipv4Addr = Ipv4Addr::new(10, 20, 0, 3);

const LOAD: &str = r#"
[[subnet]]
name = "load"
network = "10.20.0.0/16"
routers = ["10.20.0.1"]
lease = "1h"
[[subnet.pool]]
range = "10.20.1.0-10.20.1.199"
"#;

fn page(h: &Host) -> String {
    let out = h.run(&["curl", "-sS", "--max-time", "10", "http://127.0.0.1:9167/"]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Fetches server 1's page until `ok` holds, at most 20 s.
fn until(h: &Host, what: &str, ok: impl Fn(&str) -> bool) -> String {
    let t0 = Instant::now();
    loop {
        let p = page(h);
        if ok(&p) {
            return p;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "{what}: {p}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_page_names_the_pair_peer_as_the_database_sees_it() {
    e2e::require_netns!("setpriv", "curl");
    let Some(bin) = pg_bin() else {
        e2e::skip_or_fail(
            concat!(module_path!(), ":", line!()),
            "PostgreSQL server not installed (Debian package postgresql)",
        );
        return;
    };
    let lab = Lab::new("dhcppeer");
    let sw = lab.host("sw");
    sw.add_bridge("br0");
    let db = lab.host("db");
    let s1 = lab.host("s1");
    let s2 = lab.host("s2");
    for (h, name, addr) in [(&db, "db", DB), (&s1, "s1", S1), (&s2, "s2", S2)] {
        let port = format!("p{name}");
        lab.veth(&sw, &port, h, "e0");
        sw.enslave(&port, "br0");
        sw.link_up(&port);
        h.add_addr("e0", &format!("{addr}/16"));
        h.link_up("e0");
        h.link_up("lo");
    }
    sw.link_up("br0");
    let cluster = Cluster::init(bin);
    let _pg = cluster.start(&db);
    let dir = lab.dir();
    let dhcp = format!(
        "[dhcp]\nping-check = false\nlease-db = \"postgresql://postgres@{DB}:5432/postgres\"\nmetrics = \"127.0.0.1:9167\"\n"
    );
    let conf = write_config(dir, &dhcp, LOAD);
    let (d1dir, d2dir) = (dir.join("s1"), dir.join("s2"));
    std::fs::create_dir_all(&d1dir).unwrap();
    std::fs::create_dir_all(&d2dir).unwrap();
    let _d1 = start(&s1, &conf, &d1dir);
    let mut d2 = start(&s2, &conf, &d2dir);

    let p = until(&s1, "server 2 listed as the peer", |p| {
        p.contains(&format!("<tr data-peer=\"{S2}\">"))
    });
    assert!(p.contains("data-state=\"connected\""), "{p}");
    // Server 1 itself is not its own peer.
    assert!(!p.contains(&format!("data-peer=\"{S1}\"")), "{p}");
    assert!(p.contains("PostgreSQL (shared)"), "{p}");

    let st = d2.stop_with(Duration::from_secs(5));
    assert!(st.success(), "{st}");
    let p = until(&s1, "no peer once server 2 stopped", |p| {
        p.contains("data-state=\"none\"")
    });
    assert!(p.contains("No other dhcpd is connected"), "{p}");
}
