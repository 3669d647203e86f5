//! The applier: makes the kernel (VIPs, the nftables table) and the proxy listeners match a
//! [`Desired`] state. It reconciles against what the kernel holds now, so a VIP removed by hand
//! comes back and a VIP left by a crashed run goes away.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, Ipv6Addr};

use hostfile::Dataplane;

use crate::desired::{Desired, VipPlan};
use crate::nft::{self, NftError, Replacement};
use crate::proxy::{Proxies, ProxyError};
use crate::vip::{self, Placement, VipError};
use crate::vip6::{self, Vip6Error};

/// Why an apply failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// A VIP cannot be placed or changed.
    #[error(transparent)]
    Vip(#[from] VipError),
    /// An IPv6 VIP cannot be placed or changed.
    #[error(transparent)]
    Vip6(#[from] Vip6Error),
    /// The nftables table cannot be replaced.
    #[error(transparent)]
    Nft(#[from] NftError),
    /// A proxy listener cannot be opened.
    #[error(transparent)]
    Proxy(#[from] ProxyError),
}

/// Kernel and proxy state owned by lbd.
#[derive(Debug, Default)]
pub struct Applier {
    nft: Option<String>,
    nft_missing: Option<String>,
    last: Option<nft::Ruleset>,
    /// VIPs held now, with where they are.
    pub held: BTreeMap<Ipv4Addr, (u8, Placement)>,
    /// IPv6 VIPs held now, with where they are.
    pub held6: BTreeMap<Ipv6Addr, (u8, Placement)>,
    /// Every IPv6 VIP the views so far mention ([`Applier::manage6`]): removed when not wanted.
    managed6: BTreeSet<Ipv6Addr>,
    /// The user-space data plane.
    pub proxies: Proxies,
}

/// What an apply did.
#[derive(Debug, Default)]
pub struct Applied {
    /// The VIPs newly taken (to announce with gratuitous ARP).
    pub taken: Vec<Ipv4Addr>,
    /// The IPv6 VIPs newly taken (to announce with unsolicited neighbour advertisements).
    pub taken6: Vec<Ipv6Addr>,
    /// The nftables table, when it was replaced: what the counter totals need to know.
    pub replaced: Option<Replacement>,
}

/// True when `d` (or the view behind it) needs the kernel data plane.
fn needs_kernel(services: impl IntoIterator<Item = Dataplane>) -> bool {
    services.into_iter().any(|d| d == Dataplane::Kernel)
}

impl Applier {
    /// A new applier; looks for `nft` once.
    pub fn new() -> Applier {
        let (nft, nft_missing) = match nft::find_nft() {
            Ok(p) => (Some(p), None),
            Err(e) => (None, Some(e.to_string())),
        };
        Applier {
            nft,
            nft_missing,
            ..Applier::default()
        }
    }

    /// Checks, without changing anything, that `view` can be carried here: `nft` present when a
    /// service uses the kernel data plane, every VIP placeable.
    pub fn preflight(&self, view: &hostfile::LbView) -> Result<(), ApplyError> {
        if needs_kernel(view.services.iter().map(|s| s.dataplane)) && self.nft.is_none() {
            return Err(NftError::Missing(self.nft_missing.clone().unwrap_or_default()).into());
        }
        for v in crate::desired::managed_vips(view) {
            vip::place(&v)?;
        }
        for v in crate::desired::managed_vips6(view) {
            vip6::place(&v)?;
        }
        Ok(())
    }

    /// Records the IPv6 VIPs `view` mentions: lbd removes them whenever it does not hold them
    /// (a backup node, a VIP left by a crashed run), as it does the IPv4 `managed` ones.
    pub fn manage6(&mut self, view: &hostfile::LbView) {
        self.managed6.extend(
            crate::desired::managed_vips6(view)
                .into_iter()
                .map(|v| v.addr),
        );
    }

    /// After a successful apply of `view`: only its IPv6 VIPs are managed from now on (those of
    /// an earlier view are gone), as the daemon does with the IPv4 `managed` list.
    pub fn managed6_now(&mut self, view: &hostfile::LbView) {
        self.managed6.clear();
        self.manage6(view);
    }

    /// Makes everything match `d`; `managed` are all VIPs lbd may hold (to remove stale ones).
    /// Returns the VIPs newly taken, both families (to announce with gratuitous ARP or
    /// unsolicited neighbour advertisements) and, when the nftables
    /// table was replaced, the [`Replacement`] (for the counter totals).
    ///
    /// Order: placements are resolved first (nothing changes if one fails); then the nftables
    /// table is replaced in one transaction (nothing changes if nft refuses); then VIPs are
    /// added and removed; then the proxy listeners follow.
    pub fn apply(&mut self, d: &Desired, managed: &[VipPlan]) -> Result<Applied, ApplyError> {
        let mut placed = Vec::new();
        for v in &d.vips {
            placed.push((v.clone(), vip::place(v)?));
        }
        let mut placed6 = Vec::new();
        for v in &d.vips6 {
            placed6.push((v.clone(), vip6::place(v)?));
        }
        let kernel = needs_kernel(d.services.iter().map(|s| s.dataplane));
        let mut replaced = None;
        match &self.nft {
            Some(path) => {
                let next = nft::build(d);
                if self.last.as_ref() != Some(&next) {
                    // Counters about to be deleted are read just before (the caller keeps
                    // scrapes out until it has folded the replacement): the next reading
                    // misses them and carries that last value. A replacement that keeps every
                    // counter (a health change) reads nothing.
                    let gone: Vec<String> = self
                        .last
                        .iter()
                        .flat_map(|p| p.counters.keys())
                        .filter(|c| !next.counters.contains_key(*c))
                        .cloned()
                        .collect();
                    let before = if gone.is_empty() {
                        None
                    } else {
                        match nft::read_counters(path) {
                            Ok(r) => Some(r),
                            Err(e) => {
                                tracing::warn!(
                                    "reading the nftables counters before an apply: {e}"
                                );
                                None
                            }
                        }
                    };
                    let mut script = nft::script(self.last.as_ref(), &next);
                    if self.last.is_none() {
                        script.insert_str(0, &nft::render_delete6());
                    }
                    nft::apply(path, &script)?;
                    tracing::debug!("nftables table replaced");
                    replaced = Some(Replacement {
                        nft: path.clone(),
                        before,
                        gone,
                        counters: next.counters.clone(),
                    });
                    self.last = Some(next);
                }
            }
            None if kernel => {
                return Err(NftError::Missing(self.nft_missing.clone().unwrap_or_default()).into());
            }
            None => {}
        }
        let mut taken = Vec::new();
        for (v, p) in &placed {
            let present = vip::is_present(v.addr, p.index)?;
            if !present {
                vip::add(v.addr, v.prefix, p)?;
                tracing::info!(vip = %v.addr, interface = %p.iface, "VIP added");
                taken.push(v.addr);
            }
            self.held.insert(v.addr, (v.prefix, p.clone()));
        }
        let mut taken6 = Vec::new();
        for (v, p) in &placed6 {
            if !vip6::is_present(v.addr, p.index)? {
                vip6::add(v.addr, v.prefix, p)?;
                tracing::info!(vip = %v.addr, interface = %p.iface, "VIP added");
                taken6.push(v.addr);
            }
            self.managed6.insert(v.addr);
            self.held6.insert(v.addr, (v.prefix, p.clone()));
        }
        self.remove_except(d, managed)?;
        self.remove_except6(d)?;
        self.proxies.apply(d)?;
        Ok(Applied {
            taken,
            taken6,
            replaced,
        })
    }

    fn remove_except(&mut self, d: &Desired, managed: &[VipPlan]) -> Result<(), ApplyError> {
        let keep: Vec<Ipv4Addr> = d.vips.iter().map(|v| v.addr).collect();
        let mut candidates: Vec<Ipv4Addr> = managed.iter().map(|v| v.addr).collect();
        candidates.extend(self.held.keys().copied());
        candidates.sort();
        candidates.dedup();
        let addrs = runtime::netif::local_ipv4().map_err(VipError::List)?;
        for a in candidates.into_iter().filter(|a| !keep.contains(a)) {
            for ifa in addrs.iter().filter(|x| x.addr == a) {
                let p = Placement {
                    iface: ifa.name.clone(),
                    index: ifa.index,
                };
                vip::remove(a, ifa.net.prefix_len(), &p)?;
                tracing::info!(vip = %a, interface = %p.iface, "VIP removed");
            }
            self.held.remove(&a);
        }
        Ok(())
    }

    fn remove_except6(&mut self, d: &Desired) -> Result<(), ApplyError> {
        let keep: Vec<Ipv6Addr> = d.vips6.iter().map(|v| v.addr).collect();
        let mut candidates: BTreeSet<Ipv6Addr> = self.managed6.clone();
        candidates.extend(self.held6.keys().copied());
        let addrs = vip6::local_ipv6()?;
        for a in candidates.into_iter().filter(|a| !keep.contains(a)) {
            for ifa in addrs.iter().filter(|x| x.net.addr() == a) {
                let p = Placement {
                    iface: ifa.name.clone(),
                    index: ifa.index,
                };
                vip6::remove(a, ifa.net.prefix_len(), &p)?;
                tracing::info!(vip = %a, interface = %p.iface, "VIP removed");
            }
            self.held6.remove(&a);
        }
        Ok(())
    }

    /// Gives everything up (exit): VIPs removed, table deleted, listeners closed. Best effort:
    /// every step is tried and every failure logged.
    pub fn clear(&mut self, managed: &[VipPlan]) {
        if let Err(e) = self.remove_except(&Desired::default(), managed) {
            tracing::error!("removing VIPs: {e}");
        }
        if let Err(e) = self.remove_except6(&Desired::default()) {
            tracing::error!("removing IPv6 VIPs: {e}");
        }
        if let Some(path) = &self.nft
            && self.last.is_some()
        {
            match nft::apply(path, &nft::render_delete()) {
                Ok(()) => tracing::info!("nftables table deleted"),
                Err(e) => tracing::error!("deleting the nftables table: {e}"),
            }
            self.last = None;
        }
        self.proxies.stop_all();
    }
}
