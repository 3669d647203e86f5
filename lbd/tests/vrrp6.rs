//! `[lb.vrrp]` over IPv6 (VRRPv3, RFC 5798) on an IPv6-only link, against keepalived's IPv6
//! instance, both ways round:
//!
//! ```text
//!  fd00:1::/64 only (no IPv4 on the link; br0, MLD snooping off)
//!  client ::50 ─┬─ eth0 ::2 [lb1]
//!               └─ eth0 ::3 [lb2]
//!  lbd:        [lb.vrrp] vrid 71 + service www6, VIP fd00:1::120 port 80 (proxy) -> its node's
//!              [addr]:8080, where a web server says the node's name; the VIP is the service's
//!              only one, so [lb.vrrp] advertises over IPv6 (ff02::12 from fe80::)
//!  keepalived: vrrp_instance with virtual_ipaddress fd00:1::120/64, vrid 71; a web server on
//!              [::]:80 stands in for its virtual_server (the test kernel has no IPVS)
//! ```
//!
//! Each way the master dies as a machine does (kill -9 and its link down) while the client loops
//! `curl -6` through the VIP; the other node takes the VIP and the client is answered by it
//! again, which needs its neighbour entry moved by the new master's unsolicited neighbour
//! advertisements. The gap is printed.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::failover::{client_loop, gap, get6, summary};
use common::seg6::{holds6, mac, neighbour, segment};
use common::vrrp::{
    ADVERT_MS, holds_throughout, keepalived, kill9_pidfile, lbd_node as lbd, poll_until,
};
use e2e::{Host, Lab, Proc};

/// The service VIP.
const VIP6: &str = "fd00:1::120";
const VRID: u8 = 71;
/// Where lbd's service sends (each node's own web server).
const BACKEND_PORT: u16 = 8080;
/// Each client try is bounded at this (curl --max-time).
const TRY: Duration = Duration::from_millis(200);
/// The client is answered again within this after the master's death (the measured gap is
/// printed): loose for a loaded machine, while a failover that does not happen, or a client
/// left on the dead node's MAC, fails it by far.
const GAP_BOUND: Duration = Duration::from_millis(1500);

/// lbd's host file on node `name`: the IPv6 service and `[lb.vrrp]`. The host table wants an
/// IPv4 `ip` for each host; the link carries none.
fn conf(lab: &Lab, name: &str, priority: u8) -> PathBuf {
    let path = lab.dir().join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            r#"domain = "it-ishin.com"
[[subnet]]
network = "192.168.1.0/24"
[[subnet]]
name = "outer6"
network = "fd00:1::/64"
ra = false
[host.lb1]
ip = "192.168.1.2"
ipv6 = "fd00:1::2"
[host.lb2]
ip = "192.168.1.3"
ipv6 = "fd00:1::3"
[service.www6]
vip = "{VIP6}"
port = 80
backend-port = {BACKEND_PORT}
backends = ["{name}"]
dataplane = "proxy"
dns = false
check = {{ type = "tcp", interval = "200ms", timeout = "150ms", rise = 1, fall = 2 }}
[lb.vrrp]
vrid = {VRID}
priority = {priority}
interval = "{ADVERT_MS}ms"
interface = "eth0"
"#
        ),
    )
    .unwrap();
    path
}

/// keepalived on `h` with the IPv6 instance of the same VIP, and the web server standing in
/// for its virtual server.
fn keepalived6(h: &Host, priority: u8) -> (Proc, Proc, PathBuf, PathBuf) {
    let web = common::web_port(h, h.name(), 80);
    let int = ADVERT_MS as f64 / 1000.0;
    let conf = format!(
        "global_defs {{\n  router_id {name}\n  vrrp_version 3\n}}\n\
         vrrp_instance VI_6 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id {VRID}\n  priority {priority}\n  advert_int {int}\n  virtual_ipaddress {{\n    {VIP6}/64\n  }}\n}}\n",
        name = h.name(),
    );
    let (ka, pid, vpid) = keepalived(h, &conf);
    (ka, web, pid, vpid)
}

fn holds(h: &Host) -> bool {
    holds6(h, VIP6)
}

fn wait_holds(h: &Host, want: bool, bound: Duration) -> Duration {
    poll_until(
        bound,
        || holds(h) == want,
        || format!("{}: holds {VIP6} = {} after {bound:?}", h.name(), !want),
    )
}

fn get(client: &Host) -> Option<String> {
    get6(client, &format!("http://[{VIP6}]/"), TRY)
}

/// lbd's adverts go out over IPv6 from the interface's link-local address.
fn assert_ipv6_adverts(p: &Proc) {
    let err = p.stderr();
    assert!(
        err.contains("instance=vrrp") && err.contains("source=fe80::"),
        "[lb.vrrp] does not send from a link-local address:\n{err}"
    );
}

/// After `event` (the master's death), the client is answered by `by` within [`GAP_BOUND`],
/// and its neighbour entry for the VIP holds `by`'s hardware address.
fn failover(client: &Host, event: impl FnOnce(), by: &Host, what: &str) {
    let (tries, at) = client_loop(|| get(client), 3, event, by.name());
    let (g, failed) = gap(&tries, at, by.name());
    let answered = tries.iter().filter(|t| t.2.is_some()).count();
    println!(
        "{what}, IPv6-only link, adverts {ADVERT_MS} ms, tries bounded at {TRY:?}: gap {g:?} ({failed} failed tries in between; {answered}/{} answered)",
        tries.len()
    );
    eprintln!("client gap ({what}): {g:?}");
    assert!(g < GAP_BOUND, "gap {g:?}: {}", summary(&tries));
    let neigh = neighbour(client, VIP6);
    assert!(
        neigh.contains(&format!("lladdr {}", mac(by))),
        "client's neighbour entry for {VIP6}: {neigh:?}, {} is {}",
        by.name(),
        mac(by)
    );
}

#[test]
fn lbd_ipv6_master_keepalived_takes_over_on_kill9() {
    e2e::require_netns!("curl", "busybox", "keepalived");
    let s = segment("lbvrrp6a", false);
    let _w1 = common::web_port(&s.lb1, "lb1", BACKEND_PORT);
    let mut lb1 = lbd(&s.lb1, &conf(&s.lab, "lb1", 150));
    lb1.wait_for_log("entering MASTER", Duration::from_secs(5))
        .unwrap();
    wait_holds(&s.lb1, true, Duration::from_secs(3));
    assert_ipv6_adverts(&lb1);
    let (mut ka, _w2, pid, vpid) = keepalived6(&s.lb2, 100);
    // keepalived accepts lbd's IPv6 adverts: it stays backup for many Master_Down_Intervals.
    holds_throughout(
        Duration::from_millis(ADVERT_MS * 10),
        || !holds(&s.lb2),
        || format!("keepalived took {VIP6} from a live lbd master"),
    );
    assert!(!ka.stderr().contains("Entering MASTER"), "{}", ka.stderr());
    poll_until(
        Duration::from_secs(5),
        || get(&s.client).as_deref() == Some("lb1"),
        || format!("lb1 does not answer on [{VIP6}]:80"),
    );
    failover(
        &s.client,
        || common::failover::kill_node(&s.lb1, &mut lb1),
        &s.lb2,
        "lbd master -> keepalived, kill -9 + link down of lbd",
    );
    kill9_pidfile(&vpid);
    kill9_pidfile(&pid);
    let _ = ka.wait_exit(Duration::from_secs(2));
}

#[test]
fn keepalived_ipv6_master_lbd_takes_over_on_kill9() {
    e2e::require_netns!("curl", "busybox", "keepalived");
    let s = segment("lbvrrp6b", false);
    let (mut ka, _w1, pid, vpid) = keepalived6(&s.lb1, 200);
    ka.wait_for_log("Entering MASTER STATE", Duration::from_secs(5))
        .unwrap();
    wait_holds(&s.lb1, true, Duration::from_secs(3));
    let _w2 = common::web_port(&s.lb2, "lb2", BACKEND_PORT);
    let mut lb2 = lbd(&s.lb2, &conf(&s.lab, "lb2", 150));
    assert_ipv6_adverts(&lb2);
    // lbd hears keepalived's IPv6 adverts (hop limit, checksum, address list) and stays backup.
    holds_throughout(
        Duration::from_millis(ADVERT_MS * 10),
        || !holds(&s.lb2),
        || format!("lbd took {VIP6} from a live keepalived master"),
    );
    let err = lb2.stderr();
    assert!(
        !err.contains("advert ignored") && !err.contains("VRRP packet dropped"),
        "{err}"
    );
    poll_until(
        Duration::from_secs(5),
        || get(&s.client).as_deref() == Some("lb1"),
        || format!("keepalived's node does not answer on [{VIP6}]:80"),
    );
    failover(
        &s.client,
        || {
            kill9_pidfile(&vpid);
            kill9_pidfile(&pid);
            s.lb1.run(&["ip", "link", "set", "eth0", "down"]);
        },
        &s.lb2,
        "keepalived master -> lbd, kill -9 + link down of keepalived",
    );
    let _ = ka.wait_exit(Duration::from_secs(2));
    lb2.wait_for_log("entering MASTER", Duration::from_secs(1))
        .unwrap();
    // A clean stop gives the VIP up.
    assert!(lb2.stop_with(Duration::from_secs(5)).success());
    assert!(!holds(&s.lb2));
}
