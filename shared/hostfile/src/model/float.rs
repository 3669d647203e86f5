//! Floating addresses: VRRP instances besides `[lb.vrrp]`, what they track, their sync groups
//! and notify commands (keepalived's `vrrp_instance`, `vrrp_script`, `vrrp_sync_group`).

use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;
use serde::Serialize;

/// A tracked script or interface as an instance refers to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Track {
    /// Script name (`[lb.vrrp-script.NAME]`) or interface name.
    pub name: String,
    /// keepalived's weight: > 0 added to the priority while it is up, < 0 subtracted while it
    /// is down, 0 = the instance goes to FAULT while it is down.
    pub weight: i32,
}

/// What an instance tracks.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Tracking {
    /// `track-script`.
    pub scripts: Vec<Track>,
    /// `track-interface`: the link (carrier) of these interfaces.
    pub interfaces: Vec<Track>,
}

/// Commands run on transitions (argv lists, no shell; bounded in time).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Notify {
    /// On entering MASTER.
    pub master: Option<Vec<String>>,
    /// On entering BACKUP.
    pub backup: Option<Vec<String>>,
    /// On entering FAULT.
    pub fault: Option<Vec<String>>,
}

/// `[lb.vrrp-script.NAME]` (keepalived's `vrrp_script`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrackScript {
    /// Its name.
    pub name: String,
    /// Program and arguments (with `shell = true`: `/bin/sh -c TEXT`).
    pub argv: Vec<String>,
    /// Time between runs.
    pub interval: Duration,
    /// A run longer than this is killed and counts as a failure.
    pub timeout: Duration,
    /// Default weight of instances tracking it.
    pub weight: i32,
    /// Successes in a row to count as up.
    pub rise: u32,
    /// Failures in a row to count as down.
    pub fall: u32,
}

/// `[lb.vrrp-instance.NAME]`: addresses held by VRRP with no balanced service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FloatInstance {
    /// Its name.
    pub name: String,
    /// Virtual router id (unique per interface).
    pub vrid: u8,
    /// Priority (1-255).
    pub priority: u8,
    /// Take over from a lower-priority master (`preempt = false` is keepalived's `nopreempt`).
    pub preempt: bool,
    /// Advertisement interval.
    pub interval: Duration,
    /// Interface VRRP runs on and the addresses go to.
    pub interface: String,
    /// The floating addresses with their prefix: all IPv4, or all IPv6 (then the instance
    /// speaks VRRP over IPv6: ff02::12, link-local source, neighbour advertisements).
    pub addresses: Vec<IpNet>,
    /// Unicast peers (of the addresses' family); empty = multicast.
    pub peers: Vec<IpAddr>,
    /// Source address for adverts (IPv6 without peers: a link-local one).
    pub source: Option<IpAddr>,
    /// What it tracks.
    pub tracking: Tracking,
    /// Transition commands.
    pub notify: Notify,
}

/// The address family of the `[lb.vrrp]` instance, taken from the addresses it holds (the
/// service VIPs) as keepalived takes an instance's from its `virtual_ipaddress`: IPv6 (VRRP over
/// IPv6, RFC 5798) when there are services and every VIP is IPv6, so that a pair on an
/// IPv6-only link fails over and pairs with keepalived's IPv6 instance; IPv4 otherwise. With
/// service VIPs of both families the instance stays IPv4 and the IPv6 VIPs follow its state
/// (one role for all services: two virtual routers could leave the families on two nodes).
pub fn service_vrrp_ipv6(services: &[super::VirtualService]) -> bool {
    !services.is_empty() && services.iter().all(|s| s.vip.is_ipv6())
}

impl FloatInstance {
    /// True when it floats IPv6 addresses (and speaks VRRP over IPv6).
    pub fn is_ipv6(&self) -> bool {
        self.addresses.first().is_some_and(|a| a.addr().is_ipv6())
    }
}

/// `[lb.sync-group.NAME]` (keepalived's `vrrp_sync_group`): instances that move together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncGroup {
    /// Its name.
    pub name: String,
    /// Member instances; `vrrp` names the `[lb.vrrp]` instance holding the service VIPs.
    pub instances: Vec<String>,
}

/// The name of the `[lb.vrrp]` instance in sync groups.
pub const SERVICE_INSTANCE: &str = "vrrp";
