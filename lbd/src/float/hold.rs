//! Holding and giving up floating addresses (IO), both families: IPv4 with `crate::vip` and
//! gratuitous ARP, IPv6 with [`super::addr6`] (no duplicate address detection) and unsolicited
//! neighbour advertisements ([`super::ndisc`]). Five announcements 200 ms apart, as keepalived's
//! `vrrp_garp_master_repeat` does for both.

use std::net::IpAddr;
use std::time::Duration;

use ipnet::{IpNet, Ipv6Net};

use super::{addr6, ndisc};
use crate::vip::{self, Placement};

/// Announcement rounds after taking the addresses, and the gap between them.
const ROUNDS: u32 = 5;
const GAP: Duration = Duration::from_millis(200);

/// Removes `addrs` wherever they are configured (a crashed run's leftovers, or giving up).
pub(super) fn remove_present(addrs: &[IpNet]) {
    let v4: Vec<&IpNet> = addrs.iter().filter(|a| a.addr().is_ipv4()).collect();
    if !v4.is_empty()
        && let Ok(local) = runtime::netif::local_ipv4()
    {
        for a in v4 {
            for ifa in local.iter().filter(|x| IpAddr::V4(x.addr) == a.addr()) {
                let p = Placement {
                    iface: ifa.name.clone(),
                    index: ifa.index,
                };
                match vip::remove(ifa.addr, ifa.net.prefix_len(), &p) {
                    Ok(()) => {
                        tracing::info!(address = %a.addr(), interface = %p.iface, "floating address removed")
                    }
                    Err(e) => tracing::error!("removing a floating address: {e}"),
                }
            }
        }
    }
    let v6: Vec<&IpNet> = addrs.iter().filter(|a| a.addr().is_ipv6()).collect();
    if v6.is_empty() {
        return;
    }
    let Ok(local) = addr6::list() else { return };
    for a in v6 {
        for ifa in local.iter().filter(|x| IpAddr::V6(x.addr) == a.addr()) {
            let net =
                Ipv6Net::new(ifa.addr, ifa.prefix).unwrap_or_else(|_| Ipv6Net::from(ifa.addr));
            match addr6::remove(net, ifa.index) {
                Ok(()) => {
                    tracing::info!(address = %a.addr(), interface = %ifa.name, "floating address removed")
                }
                Err(e) => {
                    tracing::error!(address = %a.addr(), interface = %ifa.name, "removing a floating address: {e}")
                }
            }
        }
    }
}

/// Adds `addrs` on `p` and announces them (five gratuitous ARPs or unsolicited neighbour
/// advertisements each, 200 ms apart).
pub(super) fn take(addrs: &[IpNet], p: &Placement) {
    for a in addrs {
        let r = match a {
            IpNet::V4(n) => vip::add(n.addr(), n.prefix_len(), p).map_err(|e| e.to_string()),
            IpNet::V6(n) => {
                addr6::add(*n, p.index).map_err(|e| format!("add {n} on {}: {e}", p.iface))
            }
        };
        match r {
            Ok(()) => {
                tracing::info!(address = %a.addr(), interface = %p.iface, "floating address added")
            }
            Err(e) => tracing::error!("adding a floating address: {e}"),
        }
    }
    let (addrs, p) = (addrs.to_vec(), p.clone());
    tokio::spawn(async move {
        let v6: Vec<_> = addrs
            .iter()
            .filter_map(|a| match a {
                IpNet::V6(n) => Some(n.addr()),
                IpNet::V4(_) => None,
            })
            .collect();
        for round in 0..ROUNDS {
            if round > 0 {
                tokio::time::sleep(GAP).await;
            }
            for a in &addrs {
                if let IpNet::V4(n) = a
                    && let Err(e) = vip::send_garp(n.addr(), &p)
                {
                    tracing::warn!(address = %a.addr(), error = %e, "gratuitous ARP failed");
                }
            }
            if !v6.is_empty()
                && let Err(e) = ndisc::send_na(&v6, &p.iface, p.index)
            {
                tracing::warn!(interface = %p.iface, error = %e, "unsolicited neighbour advertisement failed");
            }
        }
    });
}
