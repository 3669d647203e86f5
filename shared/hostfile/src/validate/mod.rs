//! From the wire structs to validated parts, a section at a time, collecting every problem.
//!
//! The sections are checked in a fixed order because later ones refer to earlier ones: keys, then
//! subnets, hosts (their addresses lie in subnets), services (their backends are hosts, their VIPs
//! lie in subnets), then the per-daemon views `[dhcp]`, `[dns]` and `[lb]`.

mod dhcp;
mod dns;
mod float;
mod float_addrs;
mod hosts;
mod hosts6;
mod keys;
mod lb;
mod services;
mod services_family;
mod subnets;
mod subnets6;
mod values;

use std::path::PathBuf;
use std::time::Duration;

use crate::error::Diags;
use crate::model::{DhcpView, DnsView, Host, LbView};
use crate::wire;

use values::Validator;

/// A host file's validated parts (meaningful only when no problem was recorded).
pub(crate) struct Validated {
    /// The domain, lower case, no trailing dot.
    pub(crate) domain: String,
    /// Hosts in file order.
    pub(crate) hosts: Vec<Host>,
    pub(crate) dhcp: DhcpView,
    pub(crate) dns: DnsView,
    pub(crate) lb: LbView,
    /// What is valid but unsafe, as problems are (span, message, fix).
    pub(crate) warnings: Diags,
}

/// Validates `w`, adding its problems to `d`; `base` is the folder relative paths (`secret-file`,
/// `lease-db`, ...) start from.
pub(crate) fn validate(w: wire::File, d: Diags, base: Option<PathBuf>) -> (Validated, Diags) {
    let mut v = Validator {
        d,
        warnings: Diags::default(),
        base,
    };
    let mut parts = v.table(w);
    parts.warnings = v.warnings;
    (parts, v.d)
}

impl Validator {
    fn table(&mut self, w: wire::File) -> Validated {
        let domain = self.dns_name(&w.domain, "domain");
        let ttl = self.duration(
            &w.ttl,
            Duration::from_secs(3600),
            Duration::from_secs(1),
            Duration::from_secs(7 * 86400),
            "ttl",
        );
        let ttl = ttl.as_secs() as u32;
        let keys = self.keys(&w.key);
        let (subnets, subnets6) = self.subnets(&w.subnet, &domain);
        let hosts::Hosts {
            hosts,
            reservations,
            reservations6,
            mut names,
            mut addr_owner,
        } = self.hosts(&w.host, &subnets, &subnets6);
        let (server, server_ips) = self.server(w.server.as_ref(), &hosts);
        let lbw = w.lb.as_ref();
        let (services, service_dns) = self.services(
            &w.service,
            lbw,
            (&subnets, &subnets6),
            &hosts,
            &mut names,
            &mut addr_owner,
        );
        let dhcp = self.dhcp(
            w.dhcp.as_ref(),
            &domain,
            &subnets,
            reservations,
            (subnets6, reservations6),
            &keys,
        );
        let dns = self.dns(
            w.dns.as_ref(),
            &domain,
            ttl,
            &hosts,
            &services,
            &service_dns,
            &subnets,
            &dhcp.subnets6,
            &server,
            &server_ips,
            &keys,
        );
        let lb = self.lb(lbw, services, &hosts);
        Validated {
            domain,
            hosts,
            dhcp,
            dns,
            lb,
            warnings: Diags::default(),
        }
    }
}
