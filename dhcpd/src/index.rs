//! A lookup index over the host table's DHCP view (reservations by client, reserved addresses,
//! subnets by address), built once per reload for the packet path.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::Arc;

use hostfile::{DhcpSubnet, DhcpView, Reservation};

/// A [`DhcpView`] plus indexes.
#[derive(Debug)]
pub struct ViewIndex {
    /// The view.
    pub view: Arc<DhcpView>,
    by_mac: HashMap<[u8; 6], usize>,
    by_cid: HashMap<Vec<u8>, usize>,
    reserved: HashSet<Ipv4Addr>,
}

impl ViewIndex {
    /// Indexes `view`.
    pub fn new(view: Arc<DhcpView>) -> Self {
        let mut by_mac = HashMap::new();
        let mut by_cid = HashMap::new();
        let mut reserved = HashSet::new();
        for (i, r) in view.reservations.iter().enumerate() {
            if let Some(m) = r.mac {
                by_mac.insert(m.0, i);
            }
            if let Some(c) = &r.client_id {
                by_cid.insert(c.clone(), i);
            }
            reserved.insert(r.ip);
        }
        // Addresses the subnet itself uses are never handed out either.
        for s in &view.subnets {
            reserved.extend(s.routers.iter().copied());
            reserved.extend(s.dns.iter().copied());
            reserved.insert(s.network.network());
            reserved.insert(s.network.broadcast());
        }
        ViewIndex {
            view,
            by_mac,
            by_cid,
            reserved,
        }
    }

    /// The reservation of a client in subnet `subnet`, by client identifier first, then by MAC.
    pub fn reservation(
        &self,
        cid: Option<&[u8]>,
        mac: Option<[u8; 6]>,
        subnet: usize,
    ) -> Option<&Reservation> {
        let by_cid = cid.and_then(|c| self.by_cid.get(c));
        let by_mac = mac.and_then(|m| self.by_mac.get(&m));
        by_cid
            .or(by_mac)
            .map(|&i| &self.view.reservations[i])
            .filter(|r| r.subnet == subnet)
    }

    /// True when `ip` is reserved (for some host) or used by the subnet's own servers.
    pub fn is_reserved(&self, ip: Ipv4Addr) -> bool {
        self.reserved.contains(&ip)
    }

    /// The subnet at `i`.
    pub fn subnet(&self, i: usize) -> &DhcpSubnet {
        &self.view.subnets[i]
    }

    /// Index of the subnet whose network holds `ip`.
    pub fn subnet_of(&self, ip: Ipv4Addr) -> Option<usize> {
        self.view
            .subnets
            .iter()
            .position(|s| s.network.contains(&ip))
    }
}
