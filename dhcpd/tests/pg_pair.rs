//! Two dhcpd servers on one PostgreSQL lease database (started by the test in its own namespace):
//! clients through a relay, some served by one server, some by the other, some by both, from a
//! pool barely larger than the clients, so the servers keep choosing the same addresses. Every
//! ACKed address is unique and recorded. Then PostgreSQL is stopped: renewals are still ACKed,
//! new clients get nothing; it is started again and what was acknowledged meanwhile is written.

mod common;

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::time::{Duration, Instant};

use common::pg::{Cluster, DB, LoneDb, pg_bin};
use common::*;
use dhcproto::v4::{DhcpOption, Message, MessageType};
use e2e::{Host, Lab, Proc};
use nix::sys::signal::Signal;

const S1: Ipv4Addr = Ipv4Addr::new(10, 20, 0, 1);
const S2: Ipv4Addr = Ipv4Addr::new(10, 20, 0, 3);
const RELAY: Ipv4Addr = Ipv4Addr::new(10, 20, 0, 2);

const LOAD: &str = r#"
[[subnet]]
name = "load"
network = "10.20.0.0/16"
routers = ["10.20.0.1"]
lease = "1h"
[[subnet.pool]]
range = "10.20.1.0-10.20.1.199"
"#;

fn mac(i: u32) -> [u8; 6] {
    let b = i.to_be_bytes();
    [2, 0x55, b[0], b[1], b[2], b[3]]
}

fn mac_str(i: u32) -> String {
    mac(i)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Which servers a client's relay forwards to.
fn servers_of(i: u32) -> Vec<SocketAddrV4> {
    let a = SocketAddrV4::new(S1, 67);
    let b = SocketAddrV4::new(S2, 67);
    match i % 3 {
        0 => vec![a],
        1 => vec![b],
        _ => vec![a, b],
    }
}

/// DORA for clients `ids` through the relay (pipelined, with retransmission rounds); returns
/// client -> (address, server id) for every ACK.
fn dora_all(relay: &Crafted, ids: &[u32], window: usize) -> HashMap<u32, (Ipv4Addr, Ipv4Addr)> {
    let mut acked: HashMap<u32, (Ipv4Addr, Ipv4Addr)> = HashMap::new();
    let mut requested: HashSet<u32> = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    relay
        .sock
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let mut buf = [0u8; 1500];
    for round in 0..4 {
        let todo: Vec<u32> = ids
            .iter()
            .copied()
            .filter(|i| !acked.contains_key(i))
            .collect();
        if todo.is_empty() || Instant::now() > deadline {
            break;
        }
        requested.clear();
        let mut next = 0;
        let mut outstanding = 0usize;
        let mut last = Instant::now();
        while Instant::now() < deadline && last.elapsed() < Duration::from_millis(800) {
            while outstanding < window && next < todo.len() {
                let i = todo[next];
                for s in servers_of(i) {
                    relay.send(
                        &relay.msg(Some(MessageType::Discover), mac(i), i * 8 + round * 2),
                        s,
                    );
                }
                next += 1;
                outstanding += 1;
            }
            let Ok((n, _)) = relay.sock.recv_from(&mut buf) else {
                continue;
            };
            last = Instant::now();
            let Ok(m) = <Message as dhcproto::Decodable>::from_bytes(&buf[..n]) else {
                continue;
            };
            let i = m.xid() / 8;
            match m.opts().msg_type() {
                // The first offer wins, as with a real client.
                Some(MessageType::Offer) if requested.insert(i) => {
                    let mut req =
                        relay.msg(Some(MessageType::Request), mac(i), i * 8 + round * 2 + 1);
                    req.opts_mut()
                        .insert(DhcpOption::RequestedIpAddress(m.yiaddr()));
                    req.opts_mut()
                        .insert(DhcpOption::ServerIdentifier(server_id(&m).unwrap()));
                    for s in servers_of(i) {
                        relay.send(&req, s);
                    }
                }
                Some(MessageType::Ack) => {
                    acked.insert(i, (m.yiaddr(), server_id(&m).unwrap()));
                    outstanding = outstanding.saturating_sub(1);
                }
                Some(MessageType::Nak) => outstanding = outstanding.saturating_sub(1),
                _ => {}
            }
        }
    }
    acked
}

/// Bound leases in the database (through `dhcpd leases`, which reads PostgreSQL): address -> MAC.
fn bound_in_db(
    host: &Host,
    conf: &Path,
    dir: &Path,
) -> (HashMap<String, String>, Vec<serde_json::Value>) {
    let rows = leases(host, conf, dir);
    let bound = rows
        .iter()
        .filter(|r| r["state"] == "bound")
        .map(|r| {
            (
                r["ip"].as_str().unwrap().to_owned(),
                r["mac"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    (bound, rows)
}

fn count(p: &Proc, needle: &str) -> usize {
    p.stderr().matches(needle).count() + p.stdout().matches(needle).count()
}

#[test]
fn two_servers_share_a_postgresql_lease_database() {
    e2e::require_netns!("setpriv");
    let Some(bin) = pg_bin() else {
        e2e::skip_or_fail(
            concat!(module_path!(), ":", line!()),
            "PostgreSQL server not installed (Debian package postgresql)",
        );
        return;
    };
    let lab = Lab::new("dhcpg");
    let sw = lab.host("sw");
    sw.add_bridge("br0");
    let db = lab.host("db");
    let s1 = lab.host("s1");
    let s2 = lab.host("s2");
    let cli = lab.host("cli");
    for (h, name, addr) in [
        (&db, "db", DB),
        (&s1, "s1", S1),
        (&s2, "s2", S2),
        (&cli, "cl", RELAY),
    ] {
        let port = format!("p{name}");
        lab.veth(&sw, &port, h, "e0");
        sw.enslave(&port, "br0");
        sw.link_up(&port);
        h.add_addr("e0", &format!("{addr}/16"));
        h.link_up("e0");
    }
    sw.link_up("br0");

    let cluster = Cluster::init(bin);
    let mut pg = cluster.start(&db);

    let dir = lab.dir();
    let dhcp = format!(
        "[dhcp]\nping-check = false\nlease-db = \"postgresql://postgres@{DB}:5432/postgres\"\n"
    );
    let conf = write_config(dir, &dhcp, LOAD);
    let d1dir = dir.join("s1");
    let d2dir = dir.join("s2");
    std::fs::create_dir_all(&d1dir).unwrap();
    std::fs::create_dir_all(&d2dir).unwrap();
    // Both start together: the schema is created once (advisory lock), both find it.
    let (d1, d2) = std::thread::scope(|s| {
        let a = s.spawn(|| start(&s1, &conf, &d1dir));
        let b = s.spawn(|| start(&s2, &conf, &d2dir));
        (a.join().unwrap(), b.join().unwrap())
    });
    let (mut d1, mut d2) = (d1, d2);

    // 180 clients for a pool of 200 addresses, a third on each server, a third on both.
    let ids: Vec<u32> = (0..180).collect();
    let acked = cli.enter(|| {
        let relay = Crafted::relay("e0", RELAY);
        dora_all(&relay, &ids, 24)
    });
    assert!(
        acked.len() >= 170,
        "only {} of 180 clients bound",
        acked.len()
    );
    let mut seen: HashMap<Ipv4Addr, u32> = HashMap::new();
    for (i, (ip, _)) in &acked {
        if let Some(j) = seen.insert(*ip, *i) {
            panic!("{ip} ACKed to clients {i} and {j}");
        }
    }
    let by_server = |sid| acked.values().filter(|(_, s)| *s == sid).count();
    let (n1, n2) = (by_server(S1), by_server(S2));
    assert!(n1 > 30 && n2 > 30, "servers ACKed {n1} and {n2}");
    let (bound, _) = bound_in_db(&s1, &conf, &d1dir);
    for (i, (ip, _)) in &acked {
        assert_eq!(
            bound.get(&ip.to_string()),
            Some(&mac_str(*i)),
            "ACKed {ip} to client {i} but PostgreSQL does not have it"
        );
    }
    let retried = count(&d1, "address taken by another server")
        + count(&d2, "address taken by another server");
    eprintln!(
        "{} ACKs (s1 {n1}, s2 {n2}); {retried} allocations refused by the database and chosen again",
        acked.len()
    );

    // PostgreSQL goes away.
    pg.signal(Signal::SIGINT);
    assert!(
        pg.wait_exit(Duration::from_secs(15)).is_some(),
        "PostgreSQL did not stop"
    );
    drop(pg);

    let mut renewers: Vec<u32> = acked.keys().copied().take(20).collect();
    // The release goes to s1, which is then killed before the database returns: it must come
    // from s1's spool at its restart.
    let released = *acked.iter().find(|(_, (_, sid))| *sid == S1).unwrap().0;
    renewers.retain(|i| *i != released);
    renewers.insert(0, released);
    let (renewed, fresh) = cli.enter(|| {
        let relay = Crafted::relay("e0", RELAY);
        let mut renewed = Vec::new();
        for (k, &i) in renewers.iter().enumerate() {
            let (ip, sid) = acked[&i];
            let xid = 0x4000_0000 + k as u32;
            let mut req = relay.msg(Some(MessageType::Request), mac(i), xid);
            req.set_ciaddr(ip);
            if i == released {
                req = relay.msg(Some(MessageType::Release), mac(i), xid);
                req.set_ciaddr(ip);
                req.opts_mut().insert(DhcpOption::ServerIdentifier(sid));
                relay.send(&req, SocketAddrV4::new(sid, 67));
                continue;
            }
            relay.send(&req, SocketAddrV4::new(sid, 67));
            if let Some(m) = relay.recv(xid, Duration::from_secs(5)) {
                renewed.push((i, m.opts().msg_type(), m.yiaddr()));
            }
        }
        // New clients: nothing while the database is away.
        let mut fresh = 0;
        for k in 0..5u32 {
            let i = 5000 + k;
            relay.send(
                &relay.msg(Some(MessageType::Discover), mac(i), i * 8),
                SocketAddrV4::new(S1, 67),
            );
            relay.send(
                &relay.msg(Some(MessageType::Discover), mac(i), i * 8),
                SocketAddrV4::new(S2, 67),
            );
            if relay.recv(i * 8, Duration::from_millis(700)).is_some() {
                fresh += 1;
            }
        }
        (renewed, fresh)
    });
    assert_eq!(
        renewed.len(),
        renewers.len() - 1,
        "renewals answered: {renewed:?}"
    );
    for (i, t, ip) in &renewed {
        assert_eq!(*t, Some(MessageType::Ack), "renewal of client {i}");
        assert_eq!(*ip, acked[i].0);
    }
    assert_eq!(fresh, 0, "new clients got offers with the database down");
    let refusals = count(&d1, "new allocation refused") + count(&d2, "new allocation refused");
    assert!(refusals > 0, "no log line about refused allocations");

    // s1 dies during the outage with its acknowledged changes only in its spool.
    d1.signal(Signal::SIGKILL);
    d1.wait_exit(Duration::from_secs(5));
    drop(d1);

    // Back again: queued changes reach the database (s2 reconnects, s1 replays at start).
    let pg = cluster.start(&db);
    d2.wait_for_log("lease database reachable again", Duration::from_secs(15))
        .expect("s2 catches up");
    let mut d1 = start(&s1, &conf, &d1dir);
    d1.wait_for_log(
        "acknowledged during an earlier outage written",
        Duration::from_secs(5),
    )
    .expect("s1 replays its spool at start");
    let (bound, rows) = bound_in_db(&s1, &conf, &d1dir);
    for (i, (ip, _)) in &acked {
        if *i == released {
            let row = lease_of(&rows, *ip).expect("released row");
            assert_eq!(row["state"], "released", "release made offline is recorded");
            continue;
        }
        assert_eq!(bound.get(&ip.to_string()), Some(&mac_str(*i)), "{ip} lost");
    }
    // And new clients are served again, with addresses nobody holds.
    let more: Vec<u32> = (6000..6010).collect();
    let acked2 = cli.enter(|| {
        let relay = Crafted::relay("e0", RELAY);
        dora_all(&relay, &more, 8)
    });
    assert!(
        acked2.len() >= 9,
        "only {} new clients after the database came back",
        acked2.len()
    );
    for (i, (ip, _)) in &acked2 {
        if let Some(j) = seen.insert(*ip, *i) {
            assert_eq!(j, released, "{ip} ACKed to clients {i} and {j}");
        }
    }
    drop((d1, d2));
    drop(pg);
}

/// A database of schema version 1 (before the key source was kept) with a bound row: dhcpd
/// migrates it to version 2, the old row reads as legacy (the DHCID it was published with), and
/// new rows keep where their client key came from.
#[test]
fn schema_1_rows_migrate_and_read_as_legacy() {
    use dhcpd::lease::{Change, KeySource, Lease, LeaseState};
    use dhcpd::store::LeaseStore;
    e2e::require_netns!("setpriv");
    let Some(pg) = LoneDb::start("dhcpgmig", concat!(module_path!(), ":", line!())) else {
        return;
    };
    let (db, url) = (&pg.db, pg.url.as_str());
    let mac = [2, 0, 0, 0, 0x10, 0x99];
    let key = [&[1][..], &mac[..]].concat();
    db.enter(|| {
        // Version 1 exactly as the previous dhcpd created it.
        let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
        c.batch_execute(&format!(
            "CREATE TABLE dhcpd_schema_version (version integer NOT NULL);
             INSERT INTO dhcpd_schema_version VALUES (1);
             {}",
            dhcpd::pgstore::MIGRATIONS[0]
        ))
        .unwrap();
        c.execute(
            "INSERT INTO dhcpd_lease (address, client, hwaddr, hostname, starts, expires, state)
             VALUES ('10.20.1.5', $1, $2, 'laptop', 1, 4000000000, 'bound')",
            &[&key, &mac.to_vec()],
        )
        .unwrap();
        let old = Lease {
            ip: Ipv4Addr::new(10, 20, 1, 5),
            client: key.clone(),
            key_source: KeySource::Legacy,
            hwaddr: mac.to_vec(),
            hostname: Some("laptop".into()),
            starts: 1,
            expires: 4_000_000_000,
            state: LeaseState::Bound,
        };
        let mut s = dhcpd::pgstore::PgStore::open(url).unwrap();
        let v: i32 = c
            .query_one("SELECT max(version) FROM dhcpd_schema_version", &[])
            .unwrap()
            .get(0);
        assert_eq!(v, dhcpd::pgstore::SCHEMA_VERSION);
        assert_eq!(s.load().unwrap(), vec![old.clone()]);
        // New rows carry their source, both kinds; the old row is rewritten with one too.
        let a = Lease {
            key_source: KeySource::ClientId,
            expires: 4_000_000_001,
            ..old.clone()
        };
        let b = Lease {
            ip: Ipv4Addr::new(10, 20, 1, 6),
            client: vec![1, 2, 0, 0, 0, 0x10, 0x98],
            hwaddr: vec![2, 0, 0, 0, 0x10, 0x98],
            key_source: KeySource::Hardware,
            ..old.clone()
        };
        s.commit(&[Change::Put(a.clone()), Change::Put(b.clone())])
            .unwrap();
        let mut got = dhcpd::pgstore::PgStore::open(url).unwrap().load().unwrap();
        got.sort_by_key(|l| l.ip);
        assert_eq!(got, vec![a, b]);
    });
}

/// `dhcpd leases` against a running dhcpd on PostgreSQL: the daemon answers it (its control
/// handler reads the database off the async threads) instead of dying in the handler ("Cannot
/// start a runtime from within a runtime") and leaving the command to read the database itself.
#[test]
fn the_daemon_lists_leases_from_postgresql() {
    e2e::require_netns!("setpriv");
    let Some(bin) = pg_bin() else {
        e2e::skip_or_fail(
            concat!(module_path!(), ":", line!()),
            "PostgreSQL server not installed (Debian package postgresql)",
        );
        return;
    };
    let lab = Lab::new("dhcpl");
    let sw = lab.host("sw");
    sw.add_bridge("br0");
    let db = lab.host("db");
    let s1 = lab.host("s1");
    let cli = lab.host("cli");
    for (h, name, addr) in [(&db, "db", DB), (&s1, "s1", S1), (&cli, "cl", RELAY)] {
        let port = format!("p{name}");
        lab.veth(&sw, &port, h, "e0");
        sw.enslave(&port, "br0");
        sw.link_up(&port);
        h.add_addr("e0", &format!("{addr}/16"));
        h.link_up("e0");
    }
    sw.link_up("br0");
    let cluster = Cluster::init(bin);
    let pg = cluster.start(&db);
    let dir = lab.dir();
    let dhcp = format!(
        "[dhcp]\nping-check = false\nlease-db = \"postgresql://postgres@{DB}:5432/postgres\"\n"
    );
    let conf = write_config(dir, &dhcp, LOAD);
    let state = dir.join("s1");
    std::fs::create_dir_all(&state).unwrap();
    let d = start(&s1, &conf, &state);
    let (ip, _) = cli.enter(|| Crafted::relay("e0", RELAY).dora(SocketAddrV4::new(S1, 67), 0x77));
    let out = s1.run(&[
        common::BIN,
        "leases",
        "--json",
        "--config",
        conf.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        !stderr.contains("no running daemon"),
        "the daemon did not answer: {stderr}\n{}",
        d.stderr()
    );
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        lease_of(&rows, ip).map(|r| r["state"].clone()),
        Some("bound".into())
    );
    assert!(!d.stderr().contains("panicked"), "{}", d.stderr());
    drop(d);
    drop(pg);
}

/// An expiry seen by one server of a pair after the other renewed the lease: the database keeps
/// the renewal and gives the row back as refused (so the core learns it and the writer withholds
/// the name's removal), while an expiry nobody overtook in the same call is written.
#[test]
fn an_expiry_the_other_server_overtook_is_refused_with_its_row() {
    use dhcpd::lease::{Change, KeySource, Lease, LeaseState};
    use dhcpd::store::{LeaseStore, Refused};
    e2e::require_netns!("setpriv");
    let Some(pg) = LoneDb::start("dhcpgexp", concat!(module_path!(), ":", line!())) else {
        return;
    };
    let (db, url) = (&pg.db, pg.url.as_str());
    let lease = |i: u8, expires: u64| Lease {
        ip: Ipv4Addr::new(10, 20, 1, i),
        client: vec![1, 2, 0, 0, 0, 0x30, i],
        key_source: KeySource::Hardware,
        hwaddr: vec![2, 0, 0, 0, 0x30, i],
        hostname: Some(format!("pc{i}")),
        starts: 1_000,
        expires,
        state: LeaseState::Bound,
    };
    db.enter(|| {
        let mut a = dhcpd::pgstore::PgStore::open(url).unwrap();
        let mut b = dhcpd::pgstore::PgStore::open(url).unwrap();
        a.commit(&[Change::Put(lease(5, 2_000)), Change::Put(lease(6, 2_000))])
            .unwrap();
        // b renews .5 until 9,000; a has not seen it and expires both at 2,000.
        let renewed = lease(5, 9_000);
        b.commit(&[Change::Put(renewed.clone())]).unwrap();
        let ended = |i| {
            Change::Put(Lease {
                state: LeaseState::Expired,
                ..lease(i, 2_000)
            })
        };
        let (e5, e6) = (ended(5), ended(6));
        let refused = a.commit_groups(&[&[e5][..], &[e6][..]], 2_000).unwrap();
        assert_eq!(
            refused,
            vec![Refused {
                group: 0,
                current: vec![Change::Put(renewed.clone())],
            }]
        );
        let mut rows = b.load().unwrap();
        rows.sort_by_key(|l| l.ip);
        assert_eq!(rows[0], renewed);
        assert_eq!(rows[1].state, LeaseState::Expired);
    });
}
