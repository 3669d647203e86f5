//! VRRP on a bridge of two balancers (lb1, lb2) and a client: priorities, takeover after
//! kill -9 of the master (time measured and printed), pre-emption by a returning higher-priority
//! node (which first removes the VIP its crashed run left behind), priority 0 on a clean exit;
//! and the same against keepalived (`keepalived --vrrp`, vrrp_version 3) either way round.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::vrrp::{
    ADVERT_MS, VIP, holds_on, holds_throughout, kill9_pidfile, lbd_node as lbd, poll_until,
    takeover_bound,
};
use e2e::{Host, Lab, Proc};
use lbd::vrrp::GROUP;
use nix::sys::signal::Signal;

struct Pair {
    lab: Lab,
    lb1: Host,
    lb2: Host,
    client: Host,
}

/// lb1 192.168.1.2, lb2 192.168.1.3, client 192.168.1.50, all on bridge br0 in host `sw`.
fn pair(prefix: &str) -> Pair {
    let lab = Lab::new(prefix);
    let sw = lab.host("sw");
    sw.add_bridge("br0");
    let mut hosts = Vec::new();
    for (name, ip) in [("lb1", 2), ("lb2", 3), ("client", 50)] {
        let h = lab.host(name);
        let port = format!("p-{name}");
        lab.veth(&sw, &port, &h, "eth0");
        sw.enslave(&port, "br0");
        h.add_addr("eth0", &format!("192.168.1.{ip}/24"));
        hosts.push(h);
    }
    sw.wait_link_up("br0", Duration::from_secs(10));
    for h in &hosts {
        h.wait_link_up("eth0", Duration::from_secs(10));
    }
    let client = hosts.pop().unwrap();
    let lb2 = hosts.pop().unwrap();
    let lb1 = hosts.pop().unwrap();
    Pair {
        lab,
        lb1,
        lb2,
        client,
    }
}

fn conf(lab: &Lab, name: &str, priority: u8) -> PathBuf {
    conf_with(lab, name, priority, "")
}

/// `extra` goes inside the vrrp table (e.g. `, peers = ["192.168.1.3"]`).
fn conf_with(lab: &Lab, name: &str, priority: u8, extra: &str) -> PathBuf {
    let path = lab.dir().join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            r#"domain = "it-ishin.com"
[[subnet]]
network = "192.168.1.0/24"
[host.web1]
ip = "192.168.1.10"
[service.www3]
vip = "{VIP}"
port = 80
backends = ["web1"]
check = {{ type = "none" }}
[lb]
metrics = "127.0.0.1:9169"
vrrp = {{ vrid = 51, priority = {priority}, interval = "{ADVERT_MS}ms"{extra} }}
"#
        ),
    )
    .unwrap();
    path
}

#[test]
fn lbd_pair_priorities_kill9_takeover_preempt_and_priority0() {
    e2e::require_netns!("nft", "ping", "curl");
    let p = pair("lbvrrp");
    let c1 = conf(&p.lab, "lb1", 150);
    let c2 = conf(&p.lab, "lb2", 100);
    let mut lb1 = lbd(&p.lb1, &c1);
    lb1.wait_for_log("entering MASTER", Duration::from_secs(3))
        .unwrap();
    wait_vip(&p.lb1, true, Duration::from_secs(1));
    let mut lb2 = lbd(&p.lb2, &c2);
    stays_without_vip(&p.lb2, Duration::from_millis(ADVERT_MS * 8));
    // The client reaches the VIP (ARP answered by the master).
    p.client.run(&["ping", "-c", "1", "-W", "1", VIP]);

    // kill -9 the master: the backup takes over within Master_Down_Interval.
    let t0 = Instant::now();
    lb1.signal(Signal::SIGKILL);
    let _ = lb1.wait_exit(Duration::from_secs(2));
    wait_vip(&p.lb2, true, takeover_bound(100));
    println!(
        "lbd pair, adverts {ADVERT_MS} ms: backup holds the VIP {:?} after kill -9 of the master",
        t0.elapsed()
    );
    // Gratuitous ARP: the client's cache moves to lb2's MAC without the client asking.
    let mac2 = String::from_utf8_lossy(&p.lb2.run(&["cat", "/sys/class/net/eth0/address"]).stdout)
        .trim()
        .to_owned();
    let t1 = Instant::now();
    loop {
        let n = p.client.run(&["ip", "neigh", "show", VIP]);
        if String::from_utf8_lossy(&n.stdout).contains(&mac2) {
            break;
        }
        assert!(
            t1.elapsed() < Duration::from_secs(2),
            "client's ARP entry for the VIP still not lb2 ({mac2}): {}",
            String::from_utf8_lossy(&n.stdout)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The VIP the killed run left behind is still on lb1.
    assert!(holds_vip(&p.lb1));

    // lb1 returns: it starts as backup (removing its stale VIP), then pre-empts lb2.
    let mut lb1 = lbd(&p.lb1, &c1);
    lb1.wait_for_log("entering MASTER", Duration::from_secs(3))
        .unwrap();
    wait_vip(&p.lb2, false, Duration::from_secs(1));
    assert!(holds_vip(&p.lb1));

    // Clean exit of the master: priority 0, lb2 takes over after only Skew_Time.
    let t0 = Instant::now();
    assert!(lb1.stop_with(Duration::from_secs(5)).success());
    let took = wait_vip(&p.lb2, true, Duration::from_millis(500));
    println!(
        "lbd pair: backup holds the VIP {took:?} after the master's priority-0 advert ({:?} incl. the master's exit)",
        t0.elapsed()
    );
    assert!(!holds_vip(&p.lb1), "clean exit left the VIP behind");
    // lb2's metrics: master after the kill, backup when lb1 pre-empted, master again.
    let m = common::scrape(&p.lb2);
    assert_eq!(common::sample(&m, "lbd_vrrp_master"), Some(1.0), "{m}");
    assert_eq!(
        common::sample(&m, "lbd_vrrp_transitions_total{to=\"master\"}"),
        Some(2.0),
        "{m}"
    );
    assert_eq!(
        common::sample(&m, "lbd_vrrp_transitions_total{to=\"backup\"}"),
        Some(1.0),
        "{m}"
    );
    assert!(lb2.stop_with(Duration::from_secs(5)).success());
    assert!(!holds_vip(&p.lb2));
}

fn holds_vip(h: &Host) -> bool {
    holds_on(h, "eth0", VIP)
}

/// Polls (20 ms steps, bounded) until `h` holds the VIP or not; returns the time it took.
fn wait_vip(h: &Host, want: bool, bound: Duration) -> Duration {
    poll_until(
        bound,
        || holds_vip(h) == want,
        || {
            format!(
                "{}: VIP {} not {} within {bound:?}",
                h.name(),
                VIP,
                if want { "taken" } else { "released" }
            )
        },
    )
}

/// Asserts `h` does not take the VIP during `d` (a backup staying backup).
fn stays_without_vip(h: &Host, d: Duration) {
    holds_throughout(
        d,
        || !holds_vip(h),
        || {
            format!(
                "{} took the VIP while a higher priority master runs",
                h.name()
            )
        },
    );
}

fn keepalived(h: &Host, priority: u8) -> (Proc, PathBuf, PathBuf) {
    let conf = format!(
        "global_defs {{\n  router_id {}\n  vrrp_version 3\n}}\nvrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  priority {priority}\n  advert_int {}\n  virtual_ipaddress {{\n    {VIP}/24\n  }}\n}}\n",
        h.name(),
        ADVERT_MS as f64 / 1000.0
    );
    common::vrrp::keepalived(h, &conf)
}

#[test]
fn lbd_master_keepalived_backup_then_kill9() {
    e2e::require_netns!("nft", "keepalived");
    let p = pair("lbkal1");
    let c1 = conf(&p.lab, "lb1", 150);
    let mut lb1 = lbd(&p.lb1, &c1);
    lb1.wait_for_log("entering MASTER", Duration::from_secs(3))
        .unwrap();
    let (mut ka, pid, vpid) = keepalived(&p.lb2, 100);
    stays_without_vip(&p.lb2, Duration::from_millis(ADVERT_MS * 8));
    assert!(holds_vip(&p.lb1));
    let t0 = Instant::now();
    lb1.signal(Signal::SIGKILL);
    let _ = lb1.wait_exit(Duration::from_secs(2));
    wait_vip(&p.lb2, true, takeover_bound(100));
    println!(
        "lbd master -> keepalived backup, adverts {ADVERT_MS} ms: keepalived holds the VIP {:?} after kill -9",
        t0.elapsed()
    );
    ka.wait_for_log("Entering MASTER STATE", Duration::from_secs(1))
        .unwrap();
    // Stop keepalived: its VRRP child first, then the parent (both started by this test).
    kill9_pidfile(&vpid);
    kill9_pidfile(&pid);
    let _ = ka.wait_exit(Duration::from_secs(2));
}

#[test]
fn keepalived_master_lbd_backup_then_kill9() {
    e2e::require_netns!("nft", "keepalived");
    let p = pair("lbkal2");
    let (mut ka, pid, vpid) = keepalived(&p.lb1, 200);
    ka.wait_for_log("Entering MASTER STATE", Duration::from_secs(3))
        .unwrap();
    wait_vip(&p.lb1, true, Duration::from_secs(1));
    let c2 = conf(&p.lab, "lb2", 150);
    let mut lb2 = lbd(&p.lb2, &c2);
    // lbd hears keepalived's adverts (checksum, TTL, version all accepted) and stays backup.
    stays_without_vip(&p.lb2, Duration::from_millis(ADVERT_MS * 8));
    assert!(
        !lb2.stderr().contains("VRRP packet dropped"),
        "{}",
        lb2.stderr()
    );
    let t0 = Instant::now();
    kill9_pidfile(&vpid);
    kill9_pidfile(&pid);
    let _ = ka.wait_exit(Duration::from_secs(2));
    wait_vip(&p.lb2, true, takeover_bound(150));
    println!(
        "keepalived master -> lbd backup, adverts {ADVERT_MS} ms: lbd holds the VIP {:?} after kill -9",
        t0.elapsed()
    );
    assert!(lb2.stop_with(Duration::from_secs(5)).success());
}

#[test]
fn unicast_peers_pair() {
    e2e::require_netns!("nft");
    let p = pair("lbvuni");
    let c1 = conf_with(&p.lab, "lb1", 150, ", peers = [\"192.168.1.3\"]");
    let c2 = conf_with(&p.lab, "lb2", 100, ", peers = [\"192.168.1.2\"]");
    let mut lb1 = lbd(&p.lb1, &c1);
    lb1.wait_for_log("entering MASTER", Duration::from_secs(3))
        .unwrap();
    let _lb2 = lbd(&p.lb2, &c2);
    stays_without_vip(&p.lb2, Duration::from_millis(ADVERT_MS * 8));
    let t0 = Instant::now();
    lb1.signal(Signal::SIGKILL);
    let _ = lb1.wait_exit(Duration::from_secs(2));
    wait_vip(&p.lb2, true, takeover_bound(100));
    println!(
        "unicast lbd pair: backup holds the VIP {:?} after kill -9",
        t0.elapsed()
    );
}

#[test]
fn reload_with_a_higher_priority_takes_over() {
    e2e::require_netns!("nft");
    let p = pair("lbvrel");
    let c1 = conf(&p.lab, "lb1", 150);
    let c2 = conf(&p.lab, "lb2", 100);
    let mut lb1 = lbd(&p.lb1, &c1);
    lb1.wait_for_log("entering MASTER", Duration::from_secs(3))
        .unwrap();
    let mut lb2 = lbd(&p.lb2, &c2);
    stays_without_vip(&p.lb2, Duration::from_millis(ADVERT_MS * 8));
    let cursor = lb2.log_cursor();
    std::fs::copy(conf(&p.lab, "lb2new", 200), &c2).unwrap();
    lb2.signal(Signal::SIGHUP);
    lb2.wait_for_log_after(cursor, "VRRP restarted", Duration::from_secs(5))
        .unwrap();
    lb2.wait_for_log_after(cursor, "entering MASTER", Duration::from_secs(3))
        .unwrap();
    wait_vip(&p.lb2, true, Duration::from_secs(1));
    wait_vip(&p.lb1, false, Duration::from_secs(1));
    lb1.wait_for_log("entering BACKUP", Duration::from_secs(1))
        .unwrap();
}

/// Sends one forged VRRP advert from `h` (its eth0) to `dst` (the VRRP group or a unicast
/// peer), with `src` as the claimed sender: `addrs` as its address list, `interval_cs` as its interval, priority 255.
fn spoof(
    h: &Host,
    src: std::net::Ipv4Addr,
    dst: std::net::Ipv4Addr,
    addrs: Vec<std::net::Ipv4Addr>,
    interval_cs: u16,
) {
    use lbd::vrrp::{Advert, encode, ip_packet};
    use socket2::{Domain, Protocol, SockAddr, Socket, Type};
    let a = Advert {
        vrid: 51,
        priority: 255,
        interval_cs,
        addrs: addrs.into_iter().map(Into::into).collect(),
    };
    let pkt = ip_packet(&encode(&a, src, dst), src, dst);
    h.enter(|| {
        let s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(112))).unwrap();
        s.set_header_included_v4(true).unwrap();
        s.bind_device(Some(b"eth0")).unwrap();
        s.set_multicast_if_v4(&"192.168.1.50".parse().unwrap())
            .unwrap();
        let to = SockAddr::from(std::net::SocketAddrV4::new(dst, 0));
        assert_eq!(s.send_to(&pkt, &to).unwrap(), pkt.len());
    });
}

#[test]
fn a_stranger_cannot_silence_the_master() {
    // Issue 19.5: one forged advert (vrid 51, priority 255, no addresses, interval 4095 cs)
    // used to take the VIP away for 3 x 40.95 s.
    e2e::require_netns!("nft");
    let p = pair("lbvspoof");
    let stranger: std::net::Ipv4Addr = "192.168.1.66".parse().unwrap();
    let vip: std::net::Ipv4Addr = VIP.parse().unwrap();
    let c1 = conf(&p.lab, "lb1", 150);
    let mut lb1 = lbd(&p.lb1, &c1);
    lb1.wait_for_log("entering MASTER", Duration::from_secs(3))
        .unwrap();
    wait_vip(&p.lb1, true, Duration::from_secs(1));

    // Another address list than ours (keepalived drops these too): ignored, and said.
    let cursor = lb1.log_cursor();
    spoof(&p.client, stranger, GROUP, vec![], 4095);
    lb1.wait_for_log_after(cursor, "VRRP advert ignored", Duration::from_secs(3))
        .unwrap();
    assert!(holds_vip(&p.lb1), "the forged advert took the VIP");
    assert!(
        !lb1.stderr().contains("entering BACKUP"),
        "{}",
        lb1.stderr()
    );

    // Our own address list (VRRPv3 cannot tell a forger from a peer without `peers`): the
    // master yields, but the interval it learns is bounded, so it is back within about
    // 3 x 4 x its own interval instead of 123 s.
    let cursor = lb1.log_cursor();
    spoof(&p.client, stranger, GROUP, vec![vip], 4095);
    lb1.wait_for_log_after(cursor, "entering BACKUP", Duration::from_secs(3))
        .unwrap();
    wait_vip(&p.lb1, false, Duration::from_secs(2));
    let back = wait_vip(&p.lb1, true, Duration::from_secs(5));
    println!("forged advert with our addresses: VIP back after {back:?}");
    assert!(lb1.stop_with(Duration::from_secs(5)).success());

    // With `peers` set only the peers are heard: the same advert, sent to lb1 itself (it
    // listens for unicast adverts then), is ignored.
    let c1 = conf_with(&p.lab, "lb1peers", 150, ", peers = [\"192.168.1.3\"]");
    let mut lb1 = lbd(&p.lb1, &c1);
    lb1.wait_for_log("entering MASTER", Duration::from_secs(3))
        .unwrap();
    wait_vip(&p.lb1, true, Duration::from_secs(1));
    let cursor = lb1.log_cursor();
    spoof(
        &p.client,
        stranger,
        "192.168.1.2".parse().unwrap(),
        vec![vip],
        4095,
    );
    lb1.wait_for_log_after(cursor, "VRRP advert ignored", Duration::from_secs(3))
        .unwrap();
    assert!(
        holds_vip(&p.lb1),
        "a stranger's advert took the VIP despite `peers`"
    );
    assert!(
        !lb1.stderr().contains("entering BACKUP"),
        "{}",
        lb1.stderr()
    );
}
