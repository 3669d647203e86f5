//! Announcing the VIPs lbd holds (IO): IPv4 VIPs with gratuitous ARP ([`vip::send_garp`]),
//! IPv6 VIPs with unsolicited neighbour advertisements ([`ndisc::send_na`], the floating
//! instances' sender), so the link's caches follow a VIP to its new master at once.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use crate::apply::Applier;
use crate::float::ndisc;
use crate::vip::{self, Placement};

/// Announcement rounds after taking VIPs, and the gap between them (keepalived sends five).
const ROUNDS: u32 = 5;
const GAP: Duration = Duration::from_millis(200);

/// Announces the VIPs newly taken, `(IPv4, IPv6)` as [`Applier::apply`] returns them: five
/// rounds 200 ms apart, in a task of their own (the daemon loop does not wait).
pub fn taken(applier: &Applier, (vips, vips6): &(Vec<Ipv4Addr>, Vec<Ipv6Addr>)) {
    let targets: Vec<(Ipv4Addr, Placement)> = vips
        .iter()
        .filter_map(|a| applier.held.get(a).map(|(_, p)| (*a, p.clone())))
        .collect();
    let targets6 = held6_at(applier, vips6);
    if targets.is_empty() && targets6.is_empty() {
        return;
    }
    tokio::spawn(async move {
        for round in 0..ROUNDS {
            if round > 0 {
                tokio::time::sleep(GAP).await;
            }
            for (a, p) in &targets {
                if let Err(e) = vip::send_garp(*a, p) {
                    tracing::warn!(vip = %a, interface = %p.iface, error = %e, "gratuitous ARP failed");
                }
            }
            send_na(&targets6);
        }
    });
}

/// One announcement of every VIP held (`garp-refresh` while master).
pub fn refresh(applier: &Applier) {
    for (a, (_, p)) in &applier.held {
        if let Err(e) = vip::send_garp(*a, p) {
            tracing::warn!(vip = %a, error = %e, "gratuitous ARP refresh failed");
        }
    }
    let held6: Vec<Ipv6Addr> = applier.held6.keys().copied().collect();
    send_na(&held6_at(applier, &held6));
}

/// The IPv6 VIPs of `vips` held now, grouped by interface (for [`send_na`]).
fn held6_at(applier: &Applier, vips: &[Ipv6Addr]) -> Vec<(Placement, Vec<Ipv6Addr>)> {
    let mut out: Vec<(Placement, Vec<Ipv6Addr>)> = Vec::new();
    for a in vips {
        let Some((_, p)) = applier.held6.get(a) else {
            continue;
        };
        match out.iter_mut().find(|(q, _)| q == p) {
            Some((_, v)) => v.push(*a),
            None => out.push((p.clone(), vec![*a])),
        }
    }
    out
}

/// One unsolicited neighbour advertisement for each IPv6 VIP of `targets`.
fn send_na(targets: &[(Placement, Vec<Ipv6Addr>)]) {
    for (p, vips) in targets {
        if let Err(e) = ndisc::send_na(vips, &p.iface, p.index) {
            tracing::warn!(interface = %p.iface, error = %e, "unsolicited neighbour advertisement failed");
        }
    }
}
