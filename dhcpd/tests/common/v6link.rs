//! One link for the DHCPv6 tests: a server host and a client host joined by a veth pair (both
//! ends `eth0`), duplicate address detection off so addresses are usable at once.

use std::time::{Duration, Instant};

use e2e::{Host, Lab};

/// Hosts `srv` and `cl` on one link; `srv` gets `v4` (CIDR) and `v6` (CIDR, nodad) on eth0; both
/// have a usable link-local address when this returns. The client ignores router advertisements.
pub fn server_and_client(lab: &Lab, v4: &str, v6: &str) -> (Host, Host) {
    let (srv, cl) = server_and_client6(lab, v6);
    srv.add_addr("eth0", v4);
    (srv, cl)
}

/// As [`server_and_client`] for an IPv6-only link: `srv` gets `v6` and no IPv4 address.
pub fn server_and_client6(lab: &Lab, v6: &str) -> (Host, Host) {
    let (srv, cl) = (lab.host("srv"), lab.host("cl"));
    for h in [&srv, &cl] {
        h.sysctl("net.ipv6.conf.all.accept_dad", "0");
        h.sysctl("net.ipv6.conf.default.accept_dad", "0");
        h.sysctl("net.ipv6.conf.default.accept_ra", "0");
    }
    lab.veth(&srv, "eth0", &cl, "eth0");
    srv.ip(&["addr", "add", v6, "dev", "eth0", "nodad"]);
    for h in [&srv, &cl] {
        wait_link_local(h);
    }
    (srv, cl)
}

/// Waits (bounded) until eth0 has a usable link-local address: clients send from it.
pub fn wait_link_local(h: &Host) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = h.ip(&["-6", "addr", "show", "dev", "eth0", "scope", "link"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text.contains("fe80:") && !text.contains("tentative") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no link-local address on eth0: {text}"
        );
        std::thread::sleep(Duration::from_millis(10)); // a poll, bounded by the deadline
    }
}

/// `rdisc6` on `h`'s eth0: solicits and prints the advertisements it gets (up to 5 tries of 1 s).
pub fn rdisc6(h: &Host) -> std::process::Output {
    h.run_unchecked(&["rdisc6", "-1", "-r", "5", "-w", "1000", "eth0"])
}
