//! `[dhcp]`: the DHCP server's settings and dynamic DNS, with the subnets and reservations.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use crate::model::*;
use crate::model6::Dhcp6Subnet;
use crate::names::{reverse_origin, reverse_origin6, reverse_zone6, reverse_zones};
use crate::wire;

use super::values::{Validator, span};

/// A lease-db value naming a PostgreSQL database rather than a file.
fn is_db_url(s: &str) -> bool {
    s.starts_with("postgresql://") || s.starts_with("postgres://")
}

impl Validator {
    /// The DHCP server's view (IPv6 subnets and reservations passed through).
    pub(crate) fn dhcp(
        &mut self,
        dw: Option<&wire::Dhcp>,
        domain: &str,
        subnets: &[DhcpSubnet],
        reservations: Vec<Reservation>,
        (subnets6, reservations6): (Vec<Dhcp6Subnet>, Vec<Reservation6>),
        keys: &BTreeMap<String, TsigKey>,
    ) -> DhcpView {
        let ddns = dw.and_then(|d| d.ddns.as_ref()).map(|dd| {
            let server = self
                .sockaddr(&dd.server, 53, "ddns server")
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 53)));
            let key = dd.key.as_ref().and_then(|k| self.key_ref(k, keys));
            let ttl = self.duration(
                &dd.ttl,
                Duration::from_secs(300),
                Duration::from_secs(1),
                Duration::from_secs(86400),
                "ddns ttl",
            );
            let mut reverse_zones: Vec<String> = subnets
                .iter()
                .flat_map(|s| reverse_zones(s.network))
                .map(|n| reverse_origin(n).trim_end_matches('.').to_owned())
                .collect();
            reverse_zones.dedup();
            // The ip6.arpa zones dnsd serves for the IPv6 subnets (the same nibble boundaries).
            for s in &subnets6 {
                let z = reverse_origin6(reverse_zone6(s.network));
                let z = z.trim_end_matches('.').to_owned();
                if !reverse_zones.contains(&z) {
                    reverse_zones.push(z);
                }
            }
            DdnsConfig {
                server,
                key,
                ttl,
                forward_zone: domain.to_owned(),
                reverse_zones,
            }
        });
        let interfaces: Vec<String> = dw
            .map(|d| d.interfaces.iter().map(|i| i.get_ref().clone()).collect())
            .unwrap_or_default();
        DhcpView {
            domain: domain.to_owned(),
            reservations,
            interfaces,
            port: self.int(&dw.and_then(|d| d.port.clone()), 67, 1, 65535, "dhcp port") as u16,
            lease_db: self.path(
                dw.and_then(|d| d.lease_db.as_deref())
                    .filter(|s| !is_db_url(s)),
                "/var/lib/dhcpd/leases.redb",
            ),
            lease_db_url: dw
                .and_then(|d| d.lease_db.as_deref())
                .filter(|s| is_db_url(s))
                .map(str::to_owned),
            decline_probation: self.duration(
                &dw.and_then(|d| d.decline_probation.clone()),
                Duration::from_secs(3600),
                Duration::from_secs(1),
                Duration::from_secs(30 * 86400),
                "decline-probation",
            ),
            ping_check: dw.and_then(|d| d.ping_check).unwrap_or(true),
            ping_timeout: self.duration(
                &dw.and_then(|d| d.ping_timeout.clone()),
                Duration::from_millis(300),
                Duration::from_millis(10),
                Duration::from_secs(5),
                "ping-timeout",
            ),
            discover_backlog: self.int(
                &dw.and_then(|d| d.discover_backlog.clone()),
                256,
                0,
                1_000_000,
                "discover-backlog",
            ) as u32,
            leases_per_mac: self.int(
                &dw.and_then(|d| d.leases_per_mac.clone()),
                4,
                0,
                65_535,
                "leases-per-mac",
            ) as u32,
            dynamic_bootp_lease_length: dw.and_then(|d| d.dynamic_bootp_lease_length.clone()).map(
                |s| {
                    self.duration(
                        &Some(s),
                        Duration::from_secs(86400),
                        Duration::from_secs(60),
                        Duration::from_secs(100 * 365 * 86400),
                        "dynamic-bootp-lease-length",
                    )
                },
            ),
            dynamic_bootp_lease_cutoff: dw
                .and_then(|d| d.dynamic_bootp_lease_cutoff.as_ref())
                .and_then(|s| {
                    let t = s.get_ref().trim();
                    match humantime::parse_rfc3339_weak(t)
                        .ok()
                        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    {
                        Some(d) => Some(d.as_secs()),
                        None => {
                            self.d.push(
                                span(s),
                                format!("dynamic-bootp-lease-cutoff `{t}` is not a date"),
                                "write a UTC date and time like \"2027-06-30 00:00:00\"",
                            );
                            None
                        }
                    }
                }),
            ddns,
            metrics: self.metrics(dw.and_then(|d| d.metrics.as_ref()), 9167),
            control_socket: self.path(
                dw.and_then(|d| d.control_socket.as_deref()),
                "/run/dhcpd/control.sock",
            ),
            admin_key: dw
                .and_then(|d| d.admin_key_file.as_ref())
                .and_then(|f| self.admin_key_file(f)),
            subnets: subnets.to_vec(),
            subnets6,
            reservations6,
        }
    }
}
