//! An IPv6 service VIP floating with `[lb.vrrp]` between two lbd nodes on one segment:
//!
//! ```text
//!  fd00:1::/64 and 192.168.1.0/24 (br0, MLD snooping off; VRRP adverts over IPv6: the service
//!  VIP is IPv6, so [lb.vrrp] is an IPv6 virtual router although the nodes have IPv4 addresses)
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
use common::seg6::{holds6, mac, neighbour, segment};
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
/// The host file of node `name` (`priority`): the service (`vip`, as the TOML value), carried
/// by `[lb.vrrp]`, with the node itself as its backend (so the answer names the node that holds
/// the VIP).
fn conf(lab: &Lab, name: &str, priority: u8, vip: &str) -> PathBuf {
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
vip = {vip}
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
    holds6(h, VIP6)
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

/// The lbd pair with service `vip`: lb1 master, its adverts from `source` (the start of the
/// address); kill -9 of lb1 and its link down under the client's `curl -6` loop; `what` names
/// the case in the printed gap.
fn kill9_scenario(prefix: &str, vip: &str, source: &str, what: &str) {
    let s = segment(prefix, true);
    let _w1 = common::web_port(&s.lb1, "lb1", BACKEND_PORT);
    let _w2 = common::web_port(&s.lb2, "lb2", BACKEND_PORT);
    let mut lb1 = lbd(&s.lb1, &conf(&s.lab, "lb1", 150, vip));
    lb1.wait_for_log("entering MASTER", Duration::from_secs(5))
        .unwrap();
    wait_holds(&s.lb1, true, Duration::from_secs(3));
    // The family of [lb.vrrp] is its addresses'.
    assert!(
        lb1.stderr().contains(&format!("source={source}")),
        "{}",
        lb1.stderr()
    );
    let _lb2 = lbd(&s.lb2, &conf(&s.lab, "lb2", 100, vip));
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
        "{what}, lbd pair ([lb.vrrp]), kill -9 + link down of the master, adverts {ADVERT_MS} ms, tries bounded at {TRY:?}: gap {g:?} ({failed} failed tries in between; {answered}/{} answered)",
        tries.len()
    );
    eprintln!("client gap across the IPv6 service failover ({what}): {g:?}");
    assert!(g < GAP_BOUND, "gap {g:?}: {}", summary(&tries));
    // The client's neighbour entry for the VIP moved to lb2's hardware address (the unsolicited
    // neighbour advertisements' override), not left on the dead node's.
    let neigh = neighbour(&s.client, VIP6);
    assert!(
        neigh.contains(&format!("lladdr {}", mac(&s.lb2))),
        "client's neighbour entry for {VIP6}: {neigh:?}, lb2 is {}",
        mac(&s.lb2)
    );
}

#[test]
fn kill9_of_the_master_moves_the_ipv6_service_vip_and_the_client_follows() {
    e2e::require_netns!("curl", "busybox");
    // The only service VIP is IPv6: [lb.vrrp] advertises over IPv6 from fe80::.
    kill9_scenario(
        "lbfo6",
        &format!("\"{VIP6}\""),
        "fe80::",
        "IPv6 service VIP, VRRP over IPv6",
    );
}

#[test]
fn a_dual_stack_service_keeps_ipv4_adverts_and_its_ipv6_vip_follows() {
    e2e::require_netns!("curl", "busybox");
    // VIPs of both families: [lb.vrrp] stays IPv4, the IPv6 VIP follows it with neighbour
    // advertisements.
    kill9_scenario(
        "lbfo6d",
        &format!("[\"192.168.1.120\", \"{VIP6}\"]"),
        "192.168.1.2",
        "dual-stack service, VRRP over IPv4",
    );
}
