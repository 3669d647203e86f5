//! Floating addresses and tracking: every VRRP instance of the node (`[lb.vrrp]`, which holds
//! the service VIPs, and each `[lb.vrrp-instance.NAME]`, which holds its own `addresses`), the
//! tracked scripts and interfaces, sync groups and notify commands.
//!
//! One manager task owns it all: the instances' socket tasks report the states they enter,
//! script runners and a link poll report what they see, and the pure decision
//! ([`decide::effective`], [`decide::followers`]) says what each instance is told. A floating
//! instance's addresses are added (and announced) on MASTER and removed otherwise; the
//! `[lb.vrrp]` instance's role goes to the daemon loop, which carries the services. Commands
//! (scripts, notify) run without a shell, bounded in time, in tasks of their own: nothing here
//! waits on them. An instance of IPv6 addresses speaks VRRP over IPv6 from the interface's
//! link-local address and announces with unsolicited neighbour advertisements; so does
//! `[lb.vrrp]` when every service VIP is IPv6 ([`service`]).

pub mod addr6;
pub mod decide;
mod hold;
pub mod ndisc;
mod run;
pub mod service;

use std::net::{IpAddr, Ipv4Addr};

use hostfile::{FloatInstance, LbView};

use crate::vip::{self, Placement, VipError};
use crate::vrrp::{self, Instance, Params, VrrpError};

pub use run::{Float, InstanceStatus, LINK_POLL, NOTIFY_TIMEOUT, start};

/// Why the floating instances cannot start.
#[derive(Debug, thiserror::Error)]
pub enum FloatError {
    /// The `[lb.vrrp]` instance cannot start.
    #[error(transparent)]
    Vrrp(#[from] VrrpError),
    /// A floating instance's interface is missing or has no address of its own.
    #[error("vrrp-instance `{name}`: {why}")]
    Instance {
        /// The instance.
        name: String,
        /// What is wrong.
        why: String,
    },
    /// Listing or changing addresses failed.
    #[error(transparent)]
    Vip(#[from] VipError),
}

/// Every address that floats on this node (service VIPs and instances' addresses): never a
/// source address for adverts.
fn floating(view: &LbView) -> Vec<Ipv4Addr> {
    let mut v: Vec<Ipv4Addr> = crate::desired::managed_vips(view)
        .iter()
        .map(|p| p.addr)
        .collect();
    v.extend(
        view.instances
            .iter()
            .flat_map(|i| i.addresses.iter())
            .filter_map(|a| match a.addr() {
                IpAddr::V4(v) => Some(v),
                IpAddr::V6(_) => None,
            }),
    );
    v
}

/// Every IPv6 address that floats on this node (service VIPs and instances' addresses).
fn floating6(view: &LbView) -> Vec<std::net::Ipv6Addr> {
    let mut v: Vec<std::net::Ipv6Addr> = crate::desired::managed_vips6(view)
        .iter()
        .map(|p| p.addr)
        .collect();
    v.extend(
        view.instances
            .iter()
            .flat_map(|i| i.addresses.iter())
            .filter_map(|a| match a.addr() {
                IpAddr::V6(v) => Some(v),
                IpAddr::V4(_) => None,
            }),
    );
    v
}

/// Where floating instance `f` runs: its interface, and its source address there.
pub fn locate(f: &FloatInstance, view: &LbView) -> Result<(Instance, Placement), FloatError> {
    let err = |why: String| FloatError::Instance {
        name: f.name.clone(),
        why,
    };
    let Some(index) = vip::if_index(&f.interface) else {
        return Err(err(format!(
            "interface `{}` does not exist: fix `interface`",
            f.interface
        )));
    };
    let local = match f.source {
        Some(s) => s,
        None if f.is_ipv6() => addr6::advert_source(index, &f.peers, &floating6(view))
            .map_err(VipError::List)?
            .map(IpAddr::V6)
            .ok_or_else(|| {
                err(format!(
                    "interface `{}` has no IPv6 link-local address to send VRRP from: enable IPv6 on it (sysctl net.ipv6.conf.{}.disable_ipv6=0) and bring it up, or set `source`",
                    f.interface, f.interface
                ))
            })?,
        None => {
            let floating = floating(view);
            runtime::netif::local_ipv4()
                .map_err(VipError::List)?
                .into_iter()
                .find(|a| a.index == index && !floating.contains(&a.addr))
                .map(|a| IpAddr::V4(a.addr))
                .ok_or_else(|| {
                    err(format!(
                        "interface `{}` has no IPv4 address of its own to send VRRP from: add one, or set `source`",
                        f.interface
                    ))
                })?
        }
    };
    Ok((
        Instance {
            name: f.name.clone(),
            iface: f.interface.clone(),
            index,
            params: Params {
                vrid: f.vrid,
                priority: f.priority,
                preempt: f.preempt,
                interval_cs: vrrp::interval_cs(f.interval),
                local,
                addrs: f.addresses.iter().map(ipnet::IpNet::addr).collect(),
                peers: f.peers.clone(),
            },
        },
        Placement {
            iface: f.interface.clone(),
            index,
        },
    ))
}

/// Checks, without changing anything, that every instance of `view` can run here.
pub fn preflight(view: &LbView) -> Result<(), FloatError> {
    if let Some(cfg) = &view.vrrp {
        service::locate(cfg, view)?;
    }
    for f in &view.instances {
        locate(f, view)?;
    }
    Ok(())
}

/// True when the VRRP side of `a` and `b` differs (instances must restart).
pub fn changed(a: &LbView, b: &LbView) -> bool {
    a.vrrp != b.vrrp
        || a.instances != b.instances
        || a.scripts != b.scripts
        || a.sync_groups != b.sync_groups
        || service::service_addrs(a) != service::service_addrs(b)
}

#[cfg(test)]
#[path = "io_tests.rs"]
mod io_tests;
