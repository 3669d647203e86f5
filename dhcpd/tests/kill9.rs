//! kill -9 under load: every ACK a client saw is in the store after restart, and no address is
//! handed to two clients across the crash.

mod common;

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use dhcproto::v4::{DhcpOption, Message, MessageType};
use e2e::Lab;
use nix::sys::signal::Signal;

const DHCP: &str = r#"[dhcp]
ping-check = false
lease-db = "leases.redb"
"#;

const LOAD: &str = r#"
[[subnet]]
name = "load"
network = "10.20.0.0/16"
routers = ["10.20.0.1"]
[[subnet.pool]]
range = "10.20.1.0-10.20.250.255"
"#;

const SERVER: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 20, 0, 1), 67);

fn mac(i: u32) -> [u8; 6] {
    let b = i.to_be_bytes();
    [2, 0x77, b[0], b[1], b[2], b[3]]
}

/// Runs pipelined DORA exchanges as a relay for clients `first..first+count` until `stop` or until
/// no reply came for `quiet`; returns mac index -> ACKed address.
fn load(
    relay: &Crafted,
    first: u32,
    count: u32,
    window: usize,
    acked: &AtomicUsize,
    stop: &AtomicBool,
    quiet: Duration,
) -> HashMap<u32, Ipv4Addr> {
    let mut out = HashMap::new();
    let mut next = first;
    let mut outstanding = 0usize;
    let mut last_reply = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(20);
    relay
        .sock
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let mut buf = [0u8; 1500];
    while Instant::now() < deadline && last_reply.elapsed() < quiet {
        while !stop.load(Ordering::Relaxed) && outstanding < window && next < first + count {
            relay.send(
                &relay.msg(Some(MessageType::Discover), mac(next), next * 2),
                SERVER,
            );
            next += 1;
            outstanding += 1;
        }
        let Ok((n, _)) = relay.sock.recv_from(&mut buf) else {
            if stop.load(Ordering::Relaxed) {
                continue;
            }
            // a lost exchange frees its slot
            outstanding = outstanding.saturating_sub(1);
            continue;
        };
        last_reply = Instant::now();
        let Ok(m) = <Message as dhcproto::Decodable>::from_bytes(&buf[..n]) else {
            continue;
        };
        let i = m.xid() / 2;
        match m.opts().msg_type() {
            Some(MessageType::Offer) => {
                let mut req = relay.msg(Some(MessageType::Request), mac(i), i * 2 + 1);
                req.opts_mut()
                    .insert(DhcpOption::RequestedIpAddress(m.yiaddr()));
                req.opts_mut()
                    .insert(DhcpOption::ServerIdentifier(server_id(&m).unwrap()));
                relay.send(&req, SERVER);
            }
            Some(MessageType::Ack) => {
                out.insert(i, m.yiaddr());
                acked.fetch_add(1, Ordering::Relaxed);
                outstanding = outstanding.saturating_sub(1);
            }
            _ => outstanding = outstanding.saturating_sub(1),
        }
    }
    out
}

/// A lab with a server and a relay on 10.20.0.0/16.
fn lab(prefix: &str) -> (Lab, e2e::Host, e2e::Host, std::path::PathBuf) {
    let lab = Lab::new(prefix);
    let srv = lab.host("srv");
    let cli = lab.host("cli");
    lab.veth(&srv, "s0", &cli, "c0");
    srv.add_addr("s0", "10.20.0.1/16");
    cli.add_addr("c0", "10.20.0.2/16");
    srv.link_up("s0");
    cli.link_up("c0");
    let conf = write_config(lab.dir(), DHCP, LOAD);
    (lab, srv, cli, conf)
}

/// Runs the load until `kill` (called with the server and the count of ACKs so far) has sent
/// `SIGKILL`; returns the ACKs seen.
fn load_until_killed(
    cli: &e2e::Host,
    d: &mut e2e::Proc,
    kill: impl FnOnce(&mut e2e::Proc, &AtomicUsize),
) -> HashMap<u32, Ipv4Addr> {
    let acked = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let before = std::thread::scope(|s| {
        let h = s.spawn(|| {
            cli.enter(|| {
                let relay = Crafted::relay("c0", Ipv4Addr::new(10, 20, 0, 2));
                load(&relay, 0, 20_000, 64, &acked, &stop, Duration::from_secs(1))
            })
        });
        kill(d, &acked);
        stop.store(true, Ordering::Relaxed);
        h.join().unwrap()
    });
    assert!(
        before.len() >= 400,
        "only {} ACKs before the kill",
        before.len()
    );
    d.wait_exit(Duration::from_secs(5));
    before
}

/// After a restart: every ACK seen before the crash is in the store with its MAC, and 300 new
/// clients get none of those addresses.
fn check_after_restart(
    srv: &e2e::Host,
    cli: &e2e::Host,
    conf: &std::path::Path,
    dir: &std::path::Path,
    before: &HashMap<u32, Ipv4Addr>,
) {
    let _d = start(srv, conf, dir);
    let rows = leases(srv, conf, dir);
    let stored: HashMap<String, String> = rows
        .iter()
        .filter(|r| r["state"] == "bound")
        .map(|r| {
            (
                r["ip"].as_str().unwrap().to_owned(),
                r["mac"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for (i, ip) in before {
        let m = mac(*i);
        let want = m
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":");
        assert_eq!(
            stored.get(&ip.to_string()),
            Some(&want),
            "ACKed {ip} to {want} but the store does not have it"
        );
    }
    // New clients after the restart never get an address ACKed before the crash.
    let acked2 = AtomicUsize::new(0);
    let stop2 = AtomicBool::new(false);
    let after = cli.enter(|| {
        let relay = Crafted::relay("c0", Ipv4Addr::new(10, 20, 0, 2));
        load(
            &relay,
            1_000_000,
            300,
            32,
            &acked2,
            &stop2,
            Duration::from_millis(500),
        )
    });
    assert!(
        after.len() >= 250,
        "only {} ACKs after restart",
        after.len()
    );
    let old: HashSet<Ipv4Addr> = before.values().copied().collect();
    let dup: Vec<_> = after.values().filter(|ip| old.contains(ip)).collect();
    assert!(dup.is_empty(), "addresses given twice: {dup:?}");
    let mut seen = HashSet::new();
    assert!(after.values().all(|ip| seen.insert(*ip)));
}

#[test]
fn every_acked_lease_survives_kill_9_and_none_is_duplicated() {
    e2e::require_netns!();
    let (lab, srv, cli, conf) = lab("dhckill");
    let dir = lab.dir();
    let mut d = start(&srv, &conf, dir);
    let before = load_until_killed(&cli, &mut d, |d, acked| {
        let deadline = Instant::now() + Duration::from_secs(15);
        while acked.load(Ordering::Relaxed) < 400 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        d.signal(Signal::SIGKILL);
    });
    drop(d);
    check_after_restart(&srv, &cli, &conf, dir, &before);
}

/// The same with the journal folded into the lease table every 256 changes, 4 addresses a
/// commit (so a fold spans dozens of commits), and the kill landing in the middle of a fold.
#[test]
fn every_acked_lease_survives_kill_9_during_a_journal_fold() {
    e2e::require_netns!();
    let (lab, srv, cli, conf) = lab("dhckfold");
    let dir = lab.dir();
    let mut d = srv
        .process(BIN)
        .args([
            "--config",
            conf.to_str().unwrap(),
            "--state-dir",
            dir.to_str().unwrap(),
            "--log",
            "dhcpd=debug,info",
        ])
        .env("DHCPD_JOURNAL_FOLD", "256/4")
        .ready(e2e::Ready::Notify)
        .timeout(Duration::from_secs(10))
        .spawn();
    let before = load_until_killed(&cli, &mut d, |d, acked| {
        let deadline = Instant::now() + Duration::from_secs(15);
        while acked.load(Ordering::Relaxed) < 400 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        // A fold that starts after 400 ACKs (at least one fold finished before it).
        let at = d.log_cursor();
        d.wait_for_log_after(at, "journal fold started", Duration::from_secs(10))
            .unwrap();
        d.signal(Signal::SIGKILL);
    });
    let log = d.stderr();
    drop(d);
    let last_start = log.rfind("journal fold started").unwrap();
    assert!(
        log[..last_start].contains("journal fold finished"),
        "no fold finished before the kill:\n{log}"
    );
    assert!(
        !log[last_start..].contains("journal fold finished"),
        "the kill did not land inside the fold"
    );
    check_after_restart(&srv, &cli, &conf, dir, &before);
}
