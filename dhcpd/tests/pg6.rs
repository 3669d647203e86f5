//! DHCPv6 bindings on the shared PostgreSQL lease database (the test starts its own server):
//! the table's rules seen through two connections (a bind refused while another IA holds the
//! address, stale expiry never removing a renewed binding, schema 2 migrated); ISC `dhclient -6
//! -N` (naming itself with a Client FQDN) bound by a dhcpd on PostgreSQL, `kill -9`, restart, the
//! binding listed with its name and renewed with the same address; and two dhcpd on one
//! database, each with a client, handing out different
//! addresses from the same pool.

mod common;

use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::pg::{Cluster, DB, pg_bin};
use common::v6link::wait_link_local;
use dhcpd::v6::lease::{Change6, IaKind, Key6, Lease6, Leases6, State6};
use dhcpd::v6::pg::PgStore6;
use dhcpd::v6::store::{BindingStore, Commit6};
use dhcproto::v6::{DhcpOption, DhcpOptions, IANA, Message, MessageType, OptionCode};
use e2e::{Host, Lab};
use nix::sys::signal::Signal;

const URL: &str = "postgresql://postgres@10.20.0.9:5432/postgres";
const POOL: (&str, &str) = ("fd00:96::1000", "fd00:96::1003");
const LOG: Duration = Duration::from_secs(30);

/// T1 of 2 s: a bound dhclient renews two seconds later.
fn hosts() -> String {
    format!(
        r#"domain = "lan.test"
[[subnet]]
network = "10.96.0.0/24"
[[subnet.pool]]
range = "10.96.0.100-10.96.0.200"
[[subnet]]
name = "lan6"
network = "fd00:96::/64"
preferred-lifetime = "60s"
valid-lifetime = "120s"
t1 = "2s"
t2 = "50s"
ra = false
[[subnet.pool]]
range = "{}-{}"
[dhcp]
ping-check = false
lease-db = "{URL}"
"#,
        POOL.0, POOL.1
    )
}

fn in_pool(a: Ipv6Addr) -> bool {
    let (s, e): (Ipv6Addr, Ipv6Addr) = (POOL.0.parse().unwrap(), POOL.1.parse().unwrap());
    (s..=e).contains(&a)
}

/// PostgreSQL's binaries, or the test fails in strict mode (skips otherwise) naming the package.
fn need_pg(test: &str) -> Option<std::path::PathBuf> {
    let bin = pg_bin();
    if bin.is_none() {
        e2e::skip_or_fail(
            test,
            "PostgreSQL server not installed (Debian package postgresql)",
        );
    }
    bin
}

fn no_dad(h: &Host) {
    h.sysctl("net.ipv6.conf.all.accept_dad", "0");
    h.sysctl("net.ipv6.conf.default.accept_dad", "0");
    h.sysctl("net.ipv6.conf.default.accept_ra", "0");
}

/// A `dhclient -6 -N` on `host`'s eth0 with its files in `dir`; killed by its PID on drop.
struct Client<'h> {
    host: &'h Host,
    lf: PathBuf,
    pf: PathBuf,
    cf: PathBuf,
}

impl<'h> Client<'h> {
    fn new(host: &'h Host, dir: &Path, name: &str) -> Client<'h> {
        let c = Client {
            host,
            lf: dir.join(format!("{name}.leases")),
            pf: dir.join(format!("{name}.pid")),
            cf: dir.join(format!("{name}.conf")),
        };
        std::fs::write(&c.cf, "").unwrap();
        c
    }

    /// `dhclient -6 -N -1`: returns the bound address once it has one (it keeps running).
    fn bind(&self) -> Ipv6Addr {
        self.run("-1");
        self.addr()
    }

    /// `dhclient -6 -N -r`: stops the running client and sends a RELEASE.
    fn release(&self) {
        self.run("-r");
    }

    fn run(&self, what: &str) {
        let out = self.host.run_unchecked(&[
            "dhclient",
            "-6",
            "-N",
            "-v",
            what,
            "-sf",
            "/bin/true",
            "-cf",
            self.cf.to_str().unwrap(),
            "-lf",
            self.lf.to_str().unwrap(),
            "-pf",
            self.pf.to_str().unwrap(),
            "eth0",
        ]);
        assert!(
            out.status.success(),
            "dhclient -6 -N {what}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.lease_file()
        );
    }

    fn lease_file(&self) -> String {
        std::fs::read_to_string(&self.lf).unwrap_or_default()
    }

    /// The last `iaaddr` of the lease file.
    fn addr(&self) -> Ipv6Addr {
        let text = self.lease_file();
        text.lines()
            .rev()
            .find_map(|l| l.trim().strip_prefix("iaaddr"))
            .map(|v| v.trim().trim_end_matches('{').trim().parse().unwrap())
            .unwrap_or_else(|| panic!("no iaaddr in\n{text}"))
    }
}

impl Drop for Client<'_> {
    fn drop(&mut self) {
        let Some(pid) = std::fs::read_to_string(&self.pf)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        else {
            return;
        };
        if !e2e::procstatus::is_gone(pid as u32) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
            let deadline = Instant::now() + Duration::from_secs(5);
            while !e2e::procstatus::is_gone(pid as u32) && Instant::now() < deadline {
                std::thread::yield_now();
            }
        }
    }
}

/// The v6 rows of `dhcpd leases --json --all` run on `host`.
fn v6_rows(host: &Host, conf: &Path, state: &Path) -> Vec<serde_json::Value> {
    common::leases(host, conf, state)
        .into_iter()
        .filter(|r| r["family"] == "ipv6")
        .collect()
}

fn row_of(rows: &[serde_json::Value], a: Ipv6Addr) -> Option<serde_json::Value> {
    rows.iter()
        .find(|r| r["ip"].as_str() == Some(&a.to_string()))
        .cloned()
}

#[test]
fn dhclient_keeps_its_address_on_postgresql_across_kill_9() {
    e2e::require_netns!("dhclient", "setpriv");
    let Some(bin) = need_pg(concat!(module_path!(), ":", line!())) else {
        return;
    };
    let lab = Lab::new("dhcp6pg");
    let (srv, cl) = (lab.host("srv"), lab.host("cl"));
    for h in [&srv, &cl] {
        no_dad(h);
    }
    lab.veth(&srv, "eth0", &cl, "eth0");
    srv.add_addr("eth0", "10.96.0.1/24");
    srv.ip(&["addr", "add", "fd00:96::1/64", "dev", "eth0", "nodad"]);
    // PostgreSQL on the server's own loopback.
    srv.link_up("lo");
    srv.add_addr("lo", &format!("{DB}/32"));
    for h in [&srv, &cl] {
        wait_link_local(h);
    }
    let cluster = Cluster::init(bin);
    let _pg = cluster.start(&srv);
    let conf = lab.dir().join("hosts.toml");
    std::fs::write(&conf, hosts()).unwrap();
    let state = lab.dir().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let mut d = common::start(&srv, &conf, &state);

    let c = Client::new(&cl, lab.dir(), "na");
    // The client names itself (Client FQDN): the row keeps the name.
    std::fs::write(&c.cf, "send fqdn.fqdn \"pgnamed.\";\n").unwrap();
    let addr = c.bind();
    assert!(in_pool(addr), "{addr}\n{}", c.lease_file());
    let row = row_of(&v6_rows(&srv, &conf, &state), addr).expect("the binding in dhcpd leases");
    assert_eq!(
        (&row["type"], &row["state"], &row["hostname"]),
        (&"IA_NA".into(), &"bound".into(), &"pgnamed".into())
    );
    let first = row["expires"].as_u64().unwrap();

    // kill -9 right after the REPLY (dhclient renews 2 s after binding).
    d.signal(Signal::SIGKILL);
    assert!(d.wait_exit(Duration::from_secs(5)).is_some());
    // Without a daemon, `dhcpd leases` reads PostgreSQL itself.
    let row = row_of(&v6_rows(&srv, &conf, &state), addr);
    assert_eq!(
        row.map(|r| (r["state"].clone(), r["hostname"].clone())),
        Some(("bound".into(), "pgnamed".into())),
        "the REPLYed binding is in PostgreSQL, with its name"
    );
    assert!(
        !state.join("leases6.redb").exists(),
        "v6 bindings went to the embedded file"
    );

    let mut d2 = common::start(&srv, &conf, &state);
    let loaded = d2
        .wait_for_log("DHCPv6 bindings loaded", Duration::from_secs(5))
        .unwrap();
    assert!(loaded.contains("bindings=1"), "{loaded}");
    d2.wait_for_log("asked=Renew kind=Reply", LOG)
        .expect("dhclient renews with the restarted dhcpd");
    assert_eq!(c.addr(), addr, "the renewal keeps the address");
    let row = row_of(&v6_rows(&srv, &conf, &state), addr).expect("still listed");
    assert!(row["expires"].as_u64().unwrap() > first, "{first} -> {row}");
    assert_eq!(row["hostname"], "pgnamed", "the renewal keeps the name");
    // The RENEW found its binding: no new SOLICIT or REQUEST (what NoBinding would bring).
    for asked in ["asked=Solicit", "asked=Request"] {
        assert!(
            d2.wait_for_log(asked, Duration::ZERO).is_err(),
            "{asked} after the restart:\n{}",
            d2.stderr()
        );
    }

    // dhclient -r: the binding leaves the database.
    let released = d2.log_cursor();
    c.release();
    d2.wait_for_log_after(released, "asked=Release kind=Reply", LOG)
        .expect("dhclient -r sends a RELEASE");
    assert_eq!(row_of(&v6_rows(&srv, &conf, &state), addr), None);
}

#[test]
fn two_dhcpd_on_one_postgresql_give_two_clients_different_addresses() {
    e2e::require_netns!("dhclient", "setpriv");
    let Some(bin) = need_pg(concat!(module_path!(), ":", line!())) else {
        return;
    };
    let lab = Lab::new("dhcp6pgp");
    let sw = lab.host("sw");
    sw.add_bridge("br0");
    let db = lab.host("db");
    let (s1, s2) = (lab.host("s1"), lab.host("s2"));
    let (c1, c2) = (lab.host("c1"), lab.host("c2"));
    for (h, name, addr) in [
        (&db, "db", DB.to_string()),
        (&s1, "s1", "10.20.0.1".into()),
        (&s2, "s2", "10.20.0.3".into()),
    ] {
        let port = format!("p{name}");
        lab.veth(&sw, &port, h, "e0");
        sw.enslave(&port, "br0");
        sw.link_up(&port);
        h.add_addr("e0", &format!("{addr}/16"));
        h.link_up("e0");
    }
    sw.link_up("br0");
    // Each server has a link of its own with one client, in the same IPv6 subnet and pool.
    for (i, (s, c)) in [(&s1, &c1), (&s2, &c2)].into_iter().enumerate() {
        no_dad(s);
        no_dad(c);
        lab.veth(s, "eth0", c, "eth0");
        s.add_addr("eth0", &format!("10.96.0.{}/24", i + 1));
        s.ip(&[
            "addr",
            "add",
            &format!("fd00:96::{}/64", i + 1),
            "dev",
            "eth0",
            "nodad",
        ]);
    }
    for h in [&s1, &s2, &c1, &c2] {
        wait_link_local(h);
    }
    let cluster = Cluster::init(bin);
    let _pg = cluster.start(&db);
    let conf = lab.dir().join("hosts.toml");
    std::fs::write(&conf, hosts()).unwrap();
    let (st1, st2) = (lab.dir().join("s1"), lab.dir().join("s2"));
    std::fs::create_dir_all(&st1).unwrap();
    std::fs::create_dir_all(&st2).unwrap();
    let (d1, d2) = std::thread::scope(|s| {
        let a = s.spawn(|| common::start(&s1, &conf, &st1));
        let b = s.spawn(|| common::start(&s2, &conf, &st2));
        (a.join().unwrap(), b.join().unwrap())
    });

    // Both clients at once: both servers choose from the same empty-looking pool.
    let (k1, k2) = (
        Client::new(&c1, lab.dir(), "c1"),
        Client::new(&c2, lab.dir(), "c2"),
    );
    let (a1, a2) = std::thread::scope(|s| {
        let x = s.spawn(|| k1.bind());
        let y = s.spawn(|| k2.bind());
        (x.join().unwrap(), y.join().unwrap())
    });
    assert!(in_pool(a1) && in_pool(a2), "{a1} {a2}");
    assert_ne!(a1, a2, "one address REPLYed to two clients");

    // Either server lists both bindings (they are read from the database).
    for (h, st) in [(&s1, &st1), (&s2, &st2)] {
        let rows = v6_rows(h, &conf, st);
        let (r1, r2) = (row_of(&rows, a1), row_of(&rows, a2));
        let (r1, r2) = (
            r1.expect("client 1's binding"),
            r2.expect("client 2's binding"),
        );
        assert_ne!(r1["duid"], r2["duid"]);
        assert_eq!(
            (&r1["state"], &r2["state"]),
            (&"bound".into(), &"bound".into())
        );
    }
    let refused = [&d1, &d2]
        .iter()
        .map(|d| {
            d.stderr()
                .matches("address taken by another server")
                .count()
        })
        .sum::<usize>();
    eprintln!("{a1} and {a2}; {refused} choices refused by the database and made again");
    drop((d1, d2));
}

fn key(duid: u8, kind: IaKind) -> Key6 {
    Key6 {
        duid: vec![0, 3, 0, 1, 2, 0, 0, 0, 0, duid],
        iaid: 1,
        kind,
    }
}

fn binding(k: Key6, addr: &str, len: u8, expires: u64) -> Lease6 {
    Lease6 {
        key: k,
        addr: addr.parse().unwrap(),
        prefix_len: len,
        starts: 1,
        expires,
        state: State6::Bound,
        hostname: None,
    }
}

fn sorted(mut v: Vec<Lease6>) -> Vec<Lease6> {
    v.sort_by_key(|l| (l.addr, l.prefix_len));
    v
}

/// A REQUEST for one IA_NA to server `server`.
fn request(client: u8, server: &[u8]) -> Message {
    let mut m = Message::new_with_id(MessageType::Request, [0, 0, client]);
    let o = m.opts_mut();
    o.insert(DhcpOption::ClientId(key(client, IaKind::Na).duid));
    o.insert(DhcpOption::ServerId(server.to_vec()));
    o.insert(DhcpOption::IANA(IANA {
        id: 1,
        t1: 0,
        t2: 0,
        opts: DhcpOptions::new(),
    }));
    m
}

fn replied(m: &Message) -> Option<Ipv6Addr> {
    let Some(DhcpOption::IANA(ia)) = m.opts().get(OptionCode::IANA) else {
        return None;
    };
    ia.opts.iter().find_map(|o| match o {
        DhcpOption::IAAddr(a) if a.valid_life > 0 => Some(a.addr),
        _ => None,
    })
}

#[test]
fn v6_rows_in_postgresql_follow_the_shared_rules() {
    e2e::require_netns!("setpriv");
    let Some(bin) = need_pg(concat!(module_path!(), ":", line!())) else {
        return;
    };
    let lab = Lab::new("dhcp6pgl");
    let db = lab.host("db");
    db.link_up("lo");
    db.add_addr("lo", &format!("{DB}/32"));
    let cluster = Cluster::init(bin);
    let _pg = cluster.start(&db);
    db.enter(|| {
        // Schema 2 exactly as the previous dhcpd created it: opening migrates it.
        let mut c = postgres::Client::connect(URL, postgres::NoTls).unwrap();
        c.batch_execute(&format!(
            "CREATE TABLE dhcpd_schema_version (version integer NOT NULL);
             INSERT INTO dhcpd_schema_version VALUES (2);
             {}; {}",
            dhcpd::pgstore::MIGRATIONS[0],
            dhcpd::pgstore::MIGRATIONS[1]
        ))
        .unwrap();
        let (mut a, mut b) = (PgStore6::open(URL).unwrap(), PgStore6::open(URL).unwrap());
        let v: i32 = c
            .query_one("SELECT max(version) FROM dhcpd_schema_version", &[])
            .unwrap()
            .get(0);
        assert_eq!(v, dhcpd::pgstore::SCHEMA_VERSION);
        drop(c);
        let none = Leases6::new();
        let now = 1_000_000;

        // Server a binds; server b, not knowing, would give the address to another IA: refused,
        // with the row that holds it; nothing of b's message is written.
        let x = binding(key(1, IaKind::Na), "fd00:96::1000", 128, now + 100);
        assert_eq!(
            a.commit(&[Change6::Put(x.clone())], &none, now).unwrap(),
            Commit6::Done
        );
        let other = binding(key(2, IaKind::Na), "fd00:96::1000", 128, now + 100);
        let pd = binding(key(2, IaKind::Pd), "fd00:100::", 56, now + 100);
        assert_eq!(
            b.commit(&[Change6::Put(pd.clone()), Change6::Put(other)], &none, now)
                .unwrap(),
            Commit6::Refused(vec![x.clone()])
        );
        assert_eq!(
            b.load().unwrap(),
            vec![x.clone()],
            "the refused message wrote nothing"
        );
        // A prefix and an address may share a first address: different kinds, different rows.
        let pd0 = binding(key(2, IaKind::Pd), "fd00:96::1000", 120, now + 100);
        assert_eq!(
            b.commit(&[Change6::Put(pd0.clone())], &none, now).unwrap(),
            Commit6::Done
        );

        // The same IA renews through b, now with the host name its client sent: the row keeps
        // it (rows written without one read back as None, as `x` did above); moving the IA to
        // another address leaves one row.
        let renewed = Lease6 {
            expires: now + 200,
            hostname: Some("laptop6".into()),
            ..x.clone()
        };
        assert_eq!(
            b.commit(&[Change6::Put(renewed.clone())], &none, now)
                .unwrap(),
            Commit6::Done
        );
        assert!(
            a.load().unwrap().contains(&renewed),
            "the host name is kept in PostgreSQL"
        );
        let moved = binding(key(1, IaKind::Na), "fd00:96::1001", 128, now + 300);
        assert_eq!(
            b.commit(&[Change6::Put(moved.clone())], &none, now)
                .unwrap(),
            Commit6::Done
        );
        assert_eq!(
            sorted(a.list().unwrap().unwrap()),
            sorted(vec![pd0.clone(), moved.clone()])
        );

        // a's stale copy (ended at `now`) expires: the row b renewed stays.
        let mut stale = Leases6::new();
        stale.apply(&Change6::Put(Lease6 {
            expires: now,
            ..moved.clone()
        }));
        a.commit(&stale.expired(now), &stale, now).unwrap();
        assert!(
            a.load().unwrap().contains(&moved),
            "expiry removed a renewed binding"
        );
        // A release of what a server knows live removes it.
        let mut known = Leases6::new();
        known.apply(&Change6::Put(moved.clone()));
        a.commit(&[Change6::Delete(moved.key.clone())], &known, now)
            .unwrap();
        assert_eq!(a.load().unwrap(), vec![pd0.clone()]);
        // An ended binding is free for another IA; a declined address is always recorded.
        let ended = binding(key(3, IaKind::Na), "fd00:96::1002", 128, now);
        a.commit(&[Change6::Put(ended)], &none, now - 10).unwrap();
        let taker = binding(key(4, IaKind::Na), "fd00:96::1002", 128, now + 100);
        assert_eq!(
            b.commit(&[Change6::Put(taker.clone())], &none, now)
                .unwrap(),
            Commit6::Done
        );
        let declined = Lease6 {
            state: State6::Declined,
            ..binding(key(5, IaKind::Na), "fd00:96::1002", 128, now + 50)
        };
        b.commit(&[Change6::Put(declined.clone())], &none, now)
            .unwrap();
        let rows = a.load().unwrap();
        assert!(
            rows.contains(&declined) && !rows.contains(&taker),
            "{rows:?}"
        );
        // What b wrote reaches a through `changed`.
        assert!(a.changed().unwrap().contains(&declined));

        // Two cores that never look at each other's tables, alternating 3 clients each on
        // the same pool: every REPLY a different address, each one in the database.
        let mut c = postgres::Client::connect(URL, postgres::NoTls).unwrap();
        c.batch_execute("DELETE FROM dhcpd_lease6").unwrap();
        drop(c);
        let view = hostfile::HostTable::from_toml(&hosts())
            .unwrap()
            .dhcp_view();
        let duids: [Vec<u8>; 2] = [vec![0, 4, 1, 1, 1, 1], vec![0, 4, 2, 2, 2, 2]];
        let mut stores = [a, b];
        let mut tables = [Leases6::new(), Leases6::new()];
        let mut given = Vec::new();
        let now = dhcpd::lease::unix_now();
        for client in 10..14u8 {
            let i = usize::from(client % 2);
            let ctx = dhcpd::v6::decide::Ctx {
                subnets: &view.subnets6,
                reservations: &view.reservations6,
                server_duid: &duids[i],
                decline_probation: 60,
                client_mac: None,
            };
            let m = request(client, &duids[i]);
            let out = dhcpd::v6::store::settle(&mut stores[i], &mut tables[i], now, |l| {
                dhcpd::v6::decide::decide(&ctx, Some(0), l, &m, now)
            })
            .unwrap();
            let got = replied(out.reply.as_ref().unwrap()).expect("an address");
            assert!(!given.contains(&got), "{got} REPLYed twice: {given:?}");
            given.push(got);
        }
        let in_db: Vec<Ipv6Addr> = sorted(stores[0].load().unwrap())
            .iter()
            .map(|l| l.addr)
            .collect();
        given.sort();
        assert_eq!(in_db, given);
        // The refusals taught each core the other's bindings.
        assert!(tables.iter().all(|t| t.len() >= 3), "{tables:?}");
    });
}
