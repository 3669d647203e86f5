//! The desired state, computed purely from (services, backend health, VRRP role).
//!
//! Everything the appliers do (VIPs through rtnetlink, the nftables table, the proxy listeners)
//! follows from one [`Desired`] value, so the decision "what should the kernel look like now" is
//! tested here without sockets, and the appliers only reconcile.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use hostfile::{CheckKind, Dataplane, LbView, Protocol, Scheduler};
use serde::Serialize;

/// Health of each backend, keyed by (service name, backend address). Missing = not known yet,
/// treated as down.
pub type HealthMap = BTreeMap<(String, SocketAddr), bool>;

/// This node's VRRP role (without VRRP a node is always master).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Role {
    /// Holds the VIPs and programs the data plane.
    Master,
    /// Holds neither.
    Backup,
}

/// What a service does with new connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Mode {
    /// Spread over live backends.
    Live,
    /// No live backend (or quorum lost): everything goes to the sorry server.
    Sorry,
    /// No live backend (or quorum lost) and no sorry server: no mapping, clients get a reset.
    Withdrawn,
}

/// One destination of new connections.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    /// Backend name (`sorry` for the sorry server).
    pub name: String,
    /// Address.
    pub addr: SocketAddr,
    /// Weight (> 0).
    pub weight: u32,
}

/// A service as the data plane must carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServicePlan {
    /// Position in the view (stable names for nftables chains).
    pub index: usize,
    /// Service name.
    pub name: String,
    /// Virtual address.
    pub vip: IpAddr,
    /// Port.
    pub port: u16,
    /// Transport.
    pub protocol: Protocol,
    /// Scheduler.
    pub scheduler: Scheduler,
    /// Data plane.
    pub dataplane: Dataplane,
    /// Source persistence timeout.
    pub persistence: Option<Duration>,
    /// Live, sorry or withdrawn.
    pub mode: Mode,
    /// Where new connections go (empty when withdrawn).
    pub targets: Vec<Target>,
    /// Backends configured with a weight (live or not): the source-hash table is built over
    /// them, so a backend that leaves moves only its own sources ([`ServicePlan::sh_table`]).
    pub pool: Vec<Target>,
    /// Every address whose connections the kernel plane counts while it is configured, whatever
    /// the mode: each backend of the service (drained with `weight = 0` or down included: their
    /// established connections keep flowing) and the sorry server (its connections outlive a
    /// return to live). Sorted, each once. Empty in plans built by hand: then only `targets`
    /// and `pool` are counted.
    pub counted: Vec<SocketAddr>,
    /// Kernel plane: count bytes per backend too (`byte-counters`: a rule on every packet).
    pub byte_counters: bool,
}

impl ServicePlan {
    /// The source-hash lookup table (entries index `targets`): Maglev over the whole pool, each
    /// slot keeping its backend while that backend is live; the slots of backends that are not
    /// live are shared out by a Maglev table over the live ones. So a backend leaving moves only
    /// its own sources, and when it returns exactly those come back. Empty without targets.
    pub fn sh_table(&self) -> Vec<usize> {
        let n = self.targets.len();
        if n == 0 {
            return Vec::new();
        }
        let key = |t: &Target| t.addr.to_string();
        let live_keys: Vec<String> = self.targets.iter().map(key).collect();
        let live_w: Vec<u32> = self.targets.iter().map(|t| t.weight).collect();
        // Pool members that are live, by pool index -> target index.
        let pool: Vec<&Target> = if self.pool.is_empty() {
            self.targets.iter().collect()
        } else {
            self.pool.iter().collect()
        };
        let pool_keys: Vec<String> = pool.iter().map(|t| key(t)).collect();
        let pool_w: Vec<u32> = pool.iter().map(|t| t.weight).collect();
        let to_target: Vec<Option<usize>> = pool
            .iter()
            .map(|p| self.targets.iter().position(|t| t.addr == p.addr))
            .collect();
        let m = crate::sched::maglev_size(pool.len().max(n));
        let full = crate::sched::maglev(&pool_keys, &pool_w, m);
        if to_target.iter().all(Option::is_some) && pool.len() == n {
            return full.iter().map(|&i| to_target[i].unwrap_or(0)).collect();
        }
        let fallback = crate::sched::maglev(&live_keys, &live_w, m);
        full.iter()
            .zip(&fallback)
            .map(|(&i, &f)| to_target.get(i).copied().flatten().unwrap_or(f))
            .collect()
    }
}

/// A VIP this node must hold.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct VipPlan {
    /// The address.
    pub addr: Ipv4Addr,
    /// Prefix length of its subnet.
    pub prefix: u8,
    /// Interface; `None` = the one holding an address in the subnet.
    pub interface: Option<String>,
}

/// An IPv6 VIP this node must hold (added without duplicate address detection, as keepalived
/// does: the address moves between nodes and must answer at once).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Vip6Plan {
    /// The address.
    pub addr: Ipv6Addr,
    /// Prefix length of its subnet.
    pub prefix: u8,
    /// Interface; `None` = the one holding an address in the subnet.
    pub interface: Option<String>,
}

/// The whole desired state.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Desired {
    /// IPv4 VIPs held, sorted, each once.
    pub vips: Vec<VipPlan>,
    /// IPv6 VIPs held, sorted, each once.
    pub vips6: Vec<Vip6Plan>,
    /// Services carried (empty when backup).
    pub services: Vec<ServicePlan>,
}

/// Every IPv4 VIP the view mentions (held or not): the set lbd manages and must clean up.
pub fn managed_vips(view: &LbView) -> Vec<VipPlan> {
    let mut v: Vec<VipPlan> = view
        .services
        .iter()
        .filter_map(|s| match s.vip {
            IpAddr::V4(addr) => Some(VipPlan {
                addr,
                prefix: s.vip_prefix,
                interface: s.interface.clone().or_else(|| view.interface.clone()),
            }),
            IpAddr::V6(_) => None,
        })
        .collect();
    v.sort();
    v.dedup_by(|a, b| a.addr == b.addr);
    v
}

/// Every IPv6 VIP the view mentions (held or not).
pub fn managed_vips6(view: &LbView) -> Vec<Vip6Plan> {
    let mut v: Vec<Vip6Plan> = view
        .services
        .iter()
        .filter_map(|s| match s.vip {
            IpAddr::V6(addr) => Some(Vip6Plan {
                addr,
                prefix: s.vip_prefix,
                interface: s.interface.clone().or_else(|| view.interface.clone()),
            }),
            IpAddr::V4(_) => None,
        })
        .collect();
    v.sort();
    v.dedup_by(|a, b| a.addr == b.addr);
    v
}

/// True when `backend` of `service` is up (backends without a check are always up).
pub fn is_up(view_kind: &CheckKind, health: &HealthMap, service: &str, addr: SocketAddr) -> bool {
    matches!(view_kind, CheckKind::None)
        || health
            .get(&(service.to_owned(), addr))
            .copied()
            .unwrap_or(false)
}

/// The pure decision: which VIPs to hold and where each service sends new connections.
pub fn desired(view: &LbView, health: &HealthMap, role: Role) -> Desired {
    if role == Role::Backup {
        return Desired::default();
    }
    let mut services = Vec::new();
    for (index, s) in view.services.iter().enumerate() {
        let live: Vec<Target> = s
            .backends
            .iter()
            .filter(|b| b.weight > 0 && is_up(&s.check.kind, health, &s.name, b.addr))
            .map(|b| Target {
                name: b.name.clone(),
                addr: b.addr,
                weight: b.weight,
            })
            .collect();
        let live_weight: u32 = live.iter().map(|t| t.weight).sum();
        let (mode, targets) = if !live.is_empty() && live_weight >= s.quorum {
            (Mode::Live, live)
        } else if let Some(sorry) = s.sorry {
            (
                Mode::Sorry,
                vec![Target {
                    name: "sorry".into(),
                    addr: sorry,
                    weight: 1,
                }],
            )
        } else {
            (Mode::Withdrawn, Vec::new())
        };
        let mut counted: Vec<SocketAddr> =
            s.backends.iter().map(|b| b.addr).chain(s.sorry).collect();
        counted.sort();
        counted.dedup();
        services.push(ServicePlan {
            counted,
            byte_counters: s.byte_counters,
            index,
            name: s.name.clone(),
            vip: s.vip,
            port: s.port,
            protocol: s.protocol,
            scheduler: s.scheduler,
            dataplane: s.dataplane,
            persistence: s.persistence,
            mode,
            targets,
            pool: s
                .backends
                .iter()
                .filter(|b| b.weight > 0)
                .map(|b| Target {
                    name: b.name.clone(),
                    addr: b.addr,
                    weight: b.weight,
                })
                .collect(),
        });
    }
    Desired {
        vips: managed_vips(view),
        vips6: managed_vips6(view),
        services,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> LbView {
        let t = hostfile::HostTable::from_toml(
            r#"
domain = "example.com"
[[subnet]]
network = "192.168.1.0/24"
[[subnet]]
network = "192.168.10.0/24"
[host.web1]
ip = "192.168.10.10"
[host.web2]
ip = "192.168.10.11"
[service.www]
vip = "192.168.1.120"
port = 80
backends = ["web1", { host = "web2", weight = 3 }]
scheduler = "wrr"
quorum = 2
sorry = "192.168.10.99:8080"
"#,
        )
        .expect("valid");
        t.lb_view()
    }

    fn h(pairs: &[(&str, bool)]) -> HealthMap {
        pairs
            .iter()
            .map(|(a, up)| (("www".to_owned(), a.parse().unwrap()), *up))
            .collect()
    }

    #[test]
    fn all_up_uses_every_backend_with_weights() {
        let d = desired(
            &view(),
            &h(&[("192.168.10.10:80", true), ("192.168.10.11:80", true)]),
            Role::Master,
        );
        assert_eq!(d.vips.len(), 1);
        assert_eq!(d.vips[0].addr, Ipv4Addr::new(192, 168, 1, 120));
        assert_eq!(d.vips[0].prefix, 24);
        let s = &d.services[0];
        assert_eq!(s.mode, Mode::Live);
        let w: Vec<(String, u32)> = s
            .targets
            .iter()
            .map(|t| (t.addr.to_string(), t.weight))
            .collect();
        assert_eq!(
            w,
            vec![
                ("192.168.10.10:80".into(), 1),
                ("192.168.10.11:80".into(), 3)
            ]
        );
    }

    #[test]
    fn down_backend_is_left_out_and_unknown_counts_as_down() {
        let d = desired(&view(), &h(&[("192.168.10.11:80", true)]), Role::Master);
        let s = &d.services[0];
        assert_eq!(s.mode, Mode::Live);
        assert_eq!(s.targets.len(), 1);
        assert_eq!(s.targets[0].name, "web2");
    }

    #[test]
    fn below_quorum_goes_to_the_sorry_server() {
        // web1 alone has weight 1 < quorum 2.
        let d = desired(
            &view(),
            &h(&[("192.168.10.10:80", true), ("192.168.10.11:80", false)]),
            Role::Master,
        );
        let s = &d.services[0];
        assert_eq!(s.mode, Mode::Sorry);
        assert_eq!(s.targets[0].addr.to_string(), "192.168.10.99:8080");
    }

    #[test]
    fn no_sorry_server_means_withdrawn() {
        let mut v = view();
        v.services[0].sorry = None;
        let d = desired(&v, &h(&[]), Role::Master);
        assert_eq!(d.services[0].mode, Mode::Withdrawn);
        assert!(d.services[0].targets.is_empty());
        // The VIP is still held: clients get a clean reset rather than ARP silence.
        assert_eq!(d.vips.len(), 1);
    }

    #[test]
    fn backup_holds_nothing() {
        let d = desired(
            &view(),
            &h(&[("192.168.10.10:80", true), ("192.168.10.11:80", true)]),
            Role::Backup,
        );
        assert_eq!(d, Desired::default());
    }

    #[test]
    fn pool_counts_configured_backends_whatever_their_health() {
        // The source-hash table is built over `pool`: it must not change when a backend goes
        // down.
        let all = desired(
            &view(),
            &h(&[("192.168.10.10:80", true), ("192.168.10.11:80", true)]),
            Role::Master,
        );
        let one = desired(&view(), &h(&[("192.168.10.11:80", true)]), Role::Master);
        assert_eq!(all.services[0].pool.len(), 2);
        assert_eq!(one.services[0].targets.len(), 1);
        assert_eq!(one.services[0].pool, all.services[0].targets);
    }

    #[test]
    fn weight_zero_is_drained() {
        let mut v = view();
        v.services[0].backends[1].weight = 0;
        v.services[0].quorum = 0;
        let d = desired(
            &v,
            &h(&[("192.168.10.10:80", true), ("192.168.10.11:80", true)]),
            Role::Master,
        );
        assert_eq!(d.services[0].targets.len(), 1);
        assert_eq!(d.services[0].targets[0].name, "web1");
        // Still counted: its established connections keep flowing; so is the sorry server.
        let counted: Vec<String> = d.services[0]
            .counted
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            counted,
            ["192.168.10.10:80", "192.168.10.11:80", "192.168.10.99:8080"]
        );
    }

    #[test]
    fn counted_whatever_the_mode() {
        // Live, sorry and withdrawn plans all count every configured backend and the sorry
        // server; backup carries nothing.
        let up = h(&[("192.168.10.10:80", true), ("192.168.10.11:80", true)]);
        for (health, mode) in [(up.clone(), Mode::Live), (h(&[]), Mode::Sorry)] {
            let d = desired(&view(), &health, Role::Master);
            assert_eq!(d.services[0].mode, mode);
            assert_eq!(d.services[0].counted.len(), 3, "{mode:?}");
        }
        let mut v = view();
        v.services[0].sorry = None;
        let d = desired(&v, &h(&[]), Role::Master);
        assert_eq!(d.services[0].mode, Mode::Withdrawn);
        assert_eq!(d.services[0].counted.len(), 2);
    }

    #[test]
    fn a_dual_stack_service_is_planned_per_family() {
        let t = hostfile::HostTable::from_toml(
            r#"
domain = "example.com"
[[subnet]]
network = "192.168.1.0/24"
[[subnet]]
network = "fd00:1::/64"
[host.web1]
ip = "192.168.1.10"
ipv6 = "fd00:1::10"
[service.www]
vip = ["192.168.1.120", "fd00:1::120"]
port = 80
backends = ["web1"]
check = { type = "none" }
"#,
        )
        .expect("valid");
        let v = t.lb_view();
        let d = desired(&v, &HealthMap::new(), Role::Master);
        assert_eq!(d.vips.len(), 1);
        assert_eq!(d.vips6[0].addr, "fd00:1::120".parse::<Ipv6Addr>().unwrap());
        assert_eq!(d.vips6[0].prefix, 64);
        let t: Vec<String> = d
            .services
            .iter()
            .map(|s| s.targets[0].addr.to_string())
            .collect();
        assert_eq!(t, ["192.168.1.10:80", "[fd00:1::10]:80"]);
        assert!(d.services.iter().all(|s| s.name == "www"));
        // Backup: neither family's VIP is held.
        assert!(
            desired(&v, &HealthMap::new(), Role::Backup)
                .vips6
                .is_empty()
        );
    }
}
