//! The IPv6 segment of the VRRP-over-IPv6 tests (float6.rs, failover6.rs, vrrp6.rs):
//!
//! ```text
//!  fd00:1::/64 (br0, MLD snooping off: adverts to ff02::12 are flooded whatever it has seen)
//!  client ::50 ─┬─ eth0 ::2 [lb1]
//!               └─ eth0 ::3 [lb2]
//! ```
//!
//! Duplicate address detection is off on the test links (`accept_dad = 0` before each link
//! exists), so link-local addresses are usable at once. With `v4` every node also has an IPv4
//! address on 192.168.1.0/24 (the same host part); without, the segment is IPv6 only.

use std::time::Duration;

use e2e::{Host, Lab};

/// The segment and its three hosts.
pub struct Seg {
    pub lab: Lab,
    pub lb1: Host,
    pub lb2: Host,
    pub client: Host,
}

/// A host on the segment: `accept_dad = 0` before its link exists, then its addresses.
fn node(lab: &Lab, sw: &Host, name: &str, host: u8, v4: bool) -> Host {
    let h = lab.host(name);
    for scope in ["all", "default"] {
        h.sysctl(&format!("net.ipv6.conf.{scope}.accept_dad"), "0");
    }
    let port = format!("p-{name}");
    lab.veth(sw, &port, &h, "eth0");
    sw.enslave(&port, "br0");
    let addr = format!("fd00:1::{host:x}/64");
    h.ip(&["addr", "add", &addr, "dev", "eth0", "nodad"]);
    if v4 {
        h.ip(&[
            "addr",
            "add",
            &format!("192.168.1.{host}/24"),
            "dev",
            "eth0",
        ]);
    }
    h
}

/// Builds the segment in a lab named `prefix` (unique per test; removed when dropped).
pub fn segment(prefix: &str, v4: bool) -> Seg {
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
    let lb1 = node(&lab, &sw, "lb1", 2, v4);
    let lb2 = node(&lab, &sw, "lb2", 3, v4);
    let client = node(&lab, &sw, "client", 0x50, v4);
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

/// The IPv6 addresses on `h`'s eth0, as `addr/prefix`.
pub fn ipv6_addrs(h: &Host) -> Vec<String> {
    let out = h.ip(&["-j", "-6", "addr", "show", "dev", "eth0"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ip -j addr: JSON");
    json.as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l.get("addr_info")?.as_array())
        .flatten()
        .filter_map(|a| {
            Some(format!(
                "{}/{}",
                a.get("local")?.as_str()?,
                a.get("prefixlen")?.as_u64()?
            ))
        })
        .collect()
}

/// Whether `h` holds `addr` (any prefix) on eth0.
pub fn holds6(h: &Host, addr: &str) -> bool {
    ipv6_addrs(h)
        .iter()
        .any(|a| a.starts_with(&format!("{addr}/")))
}

/// `h`'s eth0 hardware address.
pub fn mac(h: &Host) -> String {
    let out = h.ip(&["-j", "link", "show", "dev", "eth0"]);
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ip -j link: JSON");
    j[0]["address"].as_str().expect("address").to_owned()
}

/// The client's neighbour entry for `addr` (`ip -6 neigh show`).
pub fn neighbour(client: &Host, addr: &str) -> String {
    let out = client.ip(&["-6", "neigh", "show", addr]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}
