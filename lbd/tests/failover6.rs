//! An IPv6 service VIP floating with `[lb.vrrp]` between two lbd nodes on one segment:
//!
//! ```text
//!  fd00:1::/64 and 192.168.1.0/24 (br0, MLD snooping off; VRRP adverts over IPv4)
//!  client ::50 ─┬─ eth0 ::2 [lb1]  web "lb1" on [::]:8080, the only backend of lb1's service
//!               └─ eth0 ::3 [lb2]  web "lb2" on [::]:8080, the only backend of lb2's service
//!        service www6: VIP fd00:1::120 port 80 (the proxy) -> its node's [addr]:8080
//! ```
//!
//! kill -9 of the master and its link down (a dead machine): the backup takes the VIP, and
//! the client's loop of `curl -6` is answered by it again, which can only happen once the
//! client's neighbour cache follows the new master's unsolicited neighbour advertisements (the
//! old entry would otherwise keep pointing at the dead node's MAC for tens of seconds).
//! Duplicate address detection is off on the test links (`accept_dad = 0`).

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::failover::{client_loop, gap, get6, kill_node, summary};
use common::vrrp::{ADVERT_MS, POLL, lbd_node as lbd, poll_until};
use e2e::{Host, Lab};

/// The service VIP.
const VIP6: &str = "fd00:1::120";
const BACKEND_PORT: u16 = 8080;
/// Each client try is bounded at this (curl --max-time).
const TRY: Duration = Duration::from_millis(200);
/// The client is answered again within this after the master's death (the measured gap is
/// printed): loose enough for a loaded CI machine, while a client left on the dead node's MAC
/// (no neighbour advertisement) fails it by far.
const GAP_BOUND: Duration = Duration::from_millis(1500);
struct Seg {
    lab: Lab,
    lb1: Host,
    lb2: Host,
    client: Host,
}

/// A host on the segment: `accept_dad = 0` before its link exists, then its addresses (`[lb.vrrp]`
/// adverts are IPv4: each node has an IPv4 address too).
fn node(lab: &Lab, sw: &Host, name: &str, addr: &str, v4: &str) -> Host {
    let h = lab.host(name);
    for scope in ["all", "default"] {
        h.sysctl(&format!("net.ipv6.conf.{scope}.accept_dad"), "0");
    }
    let port = format!("p-{name}");
    lab.veth(sw, &port, &h, "eth0");
    sw.enslave(&port, "br0");
    h.ip(&["addr", "add", &format!("{addr}/64"), "dev", "eth0", "nodad"]);
    h.ip(&["addr", "add", &format!("{v4}/24"), "dev", "eth0"]);
    h
}

fn segment(prefix: &str) -> Seg {
    let lab = Lab::new(prefix);
    let sw = lab.host("sw");
    for scope in ["all", "default"] {
        sw.sysctl(&format!("net.ipv6.conf.{scope}.accept_dad"), "0");
    }
    sw.add_bridge("br0");
    sw.ip(&[
        "link",
        "set",
        "br0",
        "type",
        "bridge",
        "mcast_snooping",
        "0",
    ]);
    let lb1 = node(&lab, &sw, "lb1", "fd00:1::2", "192.168.1.2");
    let lb2 = node(&lab, &sw, "lb2", "fd00:1::3", "192.168.1.3");
    let client = node(&lab, &sw, "client", "fd00:1::50", "192.168.1.50");
    sw.wait_link_up("br0", Duration::from_secs(10));
    for h in [&lb1, &lb2, &client] {
        h.wait_link_up("eth0", Duration::from_secs(10));
    }
    Seg {
        lab,
        lb1,
        lb2,
        client,
    }
}

/// The host file of node `name` (`priority`): the IPv6 service, carried by `[lb.vrrp]`, with
/// the node itself as its backend (so the answer names the node that holds the VIP).
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
[lb]
metrics = "127.0.0.1:9169"
[lb.vrrp]
vrid = 71
priority = {priority}
interval = "{ADVERT_MS}ms"
interface = "eth0"
"#
        ),
    )
    .unwrap();
    path
}

/// Whether `h` holds the VIP on eth0.
fn holds(h: &Host) -> bool {
    let out = h.ip(&["-6", "addr", "show", "dev", "eth0"]);
    String::from_utf8_lossy(&out.stdout).contains(&format!("{VIP6}/"))
}

/// Polls until `h` holds the VIP (`want`) or not; panics after `bound`.
fn wait_holds(h: &Host, want: bool, bound: Duration) -> Duration {
    poll_until(
        bound,
        || holds(h) == want,
        || format!("{}: holds {VIP6} = {} after {bound:?}", h.name(), !want),
    )
}

/// One request from the client over IPv6: the answering node's name.
fn get(client: &Host) -> Option<String> {
    get6(client, &format!("http://[{VIP6}]/"), TRY)
}

/// `h`'s eth0 hardware address.
fn mac(h: &Host) -> String {
    let out = h.ip(&["-j", "link", "show", "dev", "eth0"]);
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ip -j link: JSON");
    j[0]["address"].as_str().expect("address").to_owned()
}

#[test]
fn kill9_of_the_master_moves_the_ipv6_service_vip_and_the_client_follows() {
    e2e::require_netns!("curl", "busybox");
    let s = segment("lbfo6");
    let _w1 = common::web_port(&s.lb1, "lb1", BACKEND_PORT);
    let _w2 = common::web_port(&s.lb2, "lb2", BACKEND_PORT);
    let mut lb1 = lbd(&s.lb1, &conf(&s.lab, "lb1", 150));
    lb1.wait_for_log("entering MASTER", Duration::from_secs(5))
        .unwrap();
    wait_holds(&s.lb1, true, Duration::from_secs(3));
    let _lb2 = lbd(&s.lb2, &conf(&s.lab, "lb2", 100));
    // lb2 hears lb1's adverts: it holds nothing for several Master_Down_Intervals.
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_millis(ADVERT_MS * 10) {
        assert!(!holds(&s.lb2), "lb2 took {VIP6} from a live master");
        std::thread::sleep(POLL);
    }
    poll_until(
        Duration::from_secs(5),
        || get(&s.client).as_deref() == Some("lb1"),
        || format!("lb1 does not answer on [{VIP6}]:80"),
    );
    let (tries, event) = client_loop(|| get(&s.client), 3, || kill_node(&s.lb1, &mut lb1), "lb2");
    let (g, failed) = gap(&tries, event, "lb2");
    let answered = tries.iter().filter(|t| t.2.is_some()).count();
    println!(
        "IPv6 service VIP, lbd pair ([lb.vrrp]), kill -9 + link down of the master, adverts {ADVERT_MS} ms, tries bounded at {TRY:?}: gap {g:?} ({failed} failed tries in between; {answered}/{} answered)",
        tries.len()
    );
    eprintln!("client gap across the IPv6 service failover: {g:?}");
    assert!(g < GAP_BOUND, "gap {g:?}: {}", summary(&tries));
    // The client's neighbour entry for the VIP moved to lb2's hardware address (the unsolicited
    // neighbour advertisements' override), not left on the dead node's.
    let neigh = s.client.ip(&["-6", "neigh", "show", VIP6]);
    let neigh = String::from_utf8_lossy(&neigh.stdout).into_owned();
    assert!(
        neigh.contains(&format!("lladdr {}", mac(&s.lb2))),
        "client's neighbour entry for {VIP6}: {neigh:?}, lb2 is {}",
        mac(&s.lb2)
    );
}
