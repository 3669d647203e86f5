//! The seed LAN of `shared/seed-lan.md`, in namespaces.
//!
//! ```text
//!  outer segment 192.168.1.0/24            inner segment 192.168.10.0/24
//!  (bridge br0 inside main)                (bridge br10 in the "switch" host)
//!
//!  router  eth0 .1.1 ──┐                    ┌── p-web1 ── eth0 web1   .10.10
//!  outside eth0 .1.50 ─┤ br0 .1.2 [main] p10p1 .10.1 ── p-main ─ br10 ── p-web2 ── eth0 web2 .10.11
//!                      │  (VIP .1.120 later)│── p-db   ── eth0 db     .10.12
//!                                           └── p-client ─ eth0 client (no address)
//! ```
//!
//! main has `net.ipv4.ip_forward=1` and a default route via the router; the inner
//! hosts route via 192.168.10.1; the outside client and the router reach
//! 192.168.10.0/24 via 192.168.1.2. No NAT is set up: lbd and the tests add what
//! they exercise.

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::lab::{Host, Lab};

/// The router's address (main's upstream).
pub const ROUTER: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 1);
/// main's outer address, on `br0`.
pub const MAIN_OUTER: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 2);
/// main's inner address, on `p10p1`: gateway, DNS and DHCP server of the inner LAN.
pub const MAIN_INNER: Ipv4Addr = Ipv4Addr::new(192, 168, 10, 1);
/// The balanced web service's virtual IP (on main's `br0` once lbd holds it).
pub const VIP: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 120);
/// A client outside the inner LAN.
pub const OUTSIDE: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 50);
/// web1's address.
pub const WEB1: Ipv4Addr = Ipv4Addr::new(192, 168, 10, 10);
/// web2's address.
pub const WEB2: Ipv4Addr = Ipv4Addr::new(192, 168, 10, 11);
/// db's address.
pub const DB: Ipv4Addr = Ipv4Addr::new(192, 168, 10, 12);

/// web1's MAC (the example host table reserves WEB1 for it).
pub const WEB1_MAC: &str = "02:00:00:00:10:10";
/// web2's MAC.
pub const WEB2_MAC: &str = "02:00:00:00:10:11";
/// db's MAC.
pub const DB_MAC: &str = "02:00:00:00:10:12";
/// The DHCP client's MAC.
pub const CLIENT_MAC: &str = "02:00:00:00:10:99";

/// main's outer interface (a bridge standing for the outer LAN).
pub const MAIN_OUTER_IF: &str = "br0";
/// main's inner interface.
pub const MAIN_INNER_IF: &str = "p10p1";
/// The one interface of every other host (router, outside, web1, web2, db, client).
pub const HOST_IF: &str = "eth0";
/// The inner segment's bridge, in the `switch` host.
pub const INNER_BRIDGE: &str = "br10";

const LINK_TIMEOUT: Duration = Duration::from_secs(10);

/// The seed LAN. Fields drop in any order: the namespaces go when the last handle
/// (a field, a clone, or a [`crate::Proc`] started in one) is dropped.
#[derive(Debug)]
pub struct SeedLan {
    /// The lab holding the namespaces and the temp dir.
    pub lab: Lab,
    /// 192.168.1.1 on `eth0`; route to 192.168.10.0/24 via main.
    pub router: Host,
    /// `br0` 192.168.1.2/24 (ports `br0-router`, `br0-outside`), `p10p1`
    /// 192.168.10.1/24, forwarding on, default via the router.
    pub main: Host,
    /// 192.168.1.50 on `eth0`, default via main.
    pub outside: Host,
    /// Holds `br10`, the inner segment (ports `p-main`, `p-web1`, `p-web2`, `p-db`,
    /// `p-client`); no addresses.
    pub switch: Host,
    /// 192.168.10.10 on `eth0` (MAC 02:00:00:00:10:10), default via main.
    pub web1: Host,
    /// 192.168.10.11 on `eth0` (MAC 02:00:00:00:10:11), default via main.
    pub web2: Host,
    /// 192.168.10.12 on `eth0` (MAC 02:00:00:00:10:12), default via main.
    pub db: Host,
    /// `eth0` up with MAC 02:00:00:00:10:99 and no address, for dhclient.
    pub client: Host,
}

impl SeedLan {
    /// Build the seed LAN in a new lab named after `prefix` (the test), and wait
    /// until every link is up.
    pub fn build(prefix: &str) -> SeedLan {
        let lab = Lab::new(prefix);
        let router = lab.host("router");
        let main = lab.host("main");
        let outside = lab.host("outside");
        let switch = lab.host("switch");
        let web1 = lab.host("web1");
        let web2 = lab.host("web2");
        let db = lab.host("db");
        let client = lab.host("client");

        // Outer segment: br0 in main.
        main.add_bridge(MAIN_OUTER_IF);
        for (peer, port) in [(&router, "br0-router"), (&outside, "br0-outside")] {
            lab.veth(&main, port, peer, HOST_IF);
            main.enslave(port, MAIN_OUTER_IF);
        }
        main.add_addr(MAIN_OUTER_IF, &format!("{MAIN_OUTER}/24"));
        router.add_addr(HOST_IF, &format!("{ROUTER}/24"));
        outside.add_addr(HOST_IF, &format!("{OUTSIDE}/24"));

        // Inner segment: br10 in the switch host.
        switch.add_bridge(INNER_BRIDGE);
        lab.veth(&switch, "p-main", &main, MAIN_INNER_IF);
        switch.enslave("p-main", INNER_BRIDGE);
        main.add_addr(MAIN_INNER_IF, &format!("{MAIN_INNER}/24"));
        for (host, port, mac, addr) in [
            (&web1, "p-web1", WEB1_MAC, Some(WEB1)),
            (&web2, "p-web2", WEB2_MAC, Some(WEB2)),
            (&db, "p-db", DB_MAC, Some(DB)),
            (&client, "p-client", CLIENT_MAC, None),
        ] {
            lab.veth(&switch, port, host, HOST_IF);
            switch.enslave(port, INNER_BRIDGE);
            host.set_mac(HOST_IF, mac);
            if let Some(addr) = addr {
                host.add_addr(HOST_IF, &format!("{addr}/24"));
                host.add_route("default", MAIN_INNER);
            }
        }

        // Routing.
        main.sysctl("net.ipv4.ip_forward", "1");
        main.add_route("default", ROUTER);
        router.add_route("192.168.10.0/24", MAIN_OUTER);
        outside.add_route("default", MAIN_OUTER);

        main.wait_link_up(MAIN_OUTER_IF, LINK_TIMEOUT);
        main.wait_link_up(MAIN_INNER_IF, LINK_TIMEOUT);
        switch.wait_link_up(INNER_BRIDGE, LINK_TIMEOUT);
        for h in [&router, &outside, &web1, &web2, &db, &client] {
            h.wait_link_up(HOST_IF, LINK_TIMEOUT);
        }

        SeedLan {
            lab,
            router,
            main,
            outside,
            switch,
            web1,
            web2,
            db,
            client,
        }
    }

    /// Every host, for loops.
    pub fn hosts(&self) -> [&Host; 8] {
        [
            &self.router,
            &self.main,
            &self.outside,
            &self.switch,
            &self.web1,
            &self.web2,
            &self.db,
            &self.client,
        ]
    }

    /// Add the VIP to main's `br0` by hand (lbd does this itself; for tests of
    /// other parts that just need the address present).
    pub fn add_vip_by_hand(&self) {
        self.main.add_addr(MAIN_OUTER_IF, &format!("{VIP}/24"));
    }
}
