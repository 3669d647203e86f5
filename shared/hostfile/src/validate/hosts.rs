//! `[host.NAME]`: names, addresses, MACs, aliases and DHCP reservations; and `server`, the host
//! that runs the daemons.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::hosts6::Seen6Hosts;
use super::subnets::subnet_of;
use super::values::{Validator, span};
use crate::model::*;
use crate::model6::Dhcp6Subnet;
use crate::wire::{self, S};

/// The hosts and what the later sections check against them.
pub(crate) struct Hosts {
    /// Hosts in file order.
    pub(crate) hosts: Vec<Host>,
    /// DHCP reservations of the hosts with a MAC or client id.
    pub(crate) reservations: Vec<Reservation>,
    /// DHCPv6 reservations of the hosts with a DUID or MAC and an address in an IPv6 subnet.
    pub(crate) reservations6: Vec<Reservation6>,
    /// Name or alias -> what owns it (`host NAME`), for the services' names.
    pub(crate) names: HashMap<String, String>,
    /// Address -> what owns it, for the services' VIPs.
    pub(crate) addr_owner: HashMap<Ipv4Addr, String>,
}

impl Validator {
    /// The hosts; `subnets` are the validated subnets their addresses must lie in.
    pub(crate) fn hosts(
        &mut self,
        host: &std::collections::BTreeMap<S<String>, wire::Host>,
        subnets: &[DhcpSubnet],
        subnets6: &[Dhcp6Subnet],
    ) -> Hosts {
        let subnet_of = |ip: Ipv4Addr| subnet_of(subnets, ip);
        let mut hosts = Vec::new();
        let mut reservations = Vec::new();
        let mut reservations6 = Vec::new();
        let mut seen6 = Seen6Hosts::default();
        let mut names: HashMap<String, String> = HashMap::new(); // name -> what owns it
        let mut addr_owner: HashMap<Ipv4Addr, String> = HashMap::new();
        let mut mac_owner: HashMap<Mac, String> = HashMap::new();
        for (hname, h) in host {
            let name = self.label(hname, "host name");
            if let Some(prev) = names.insert(name.clone(), format!("host {name}")) {
                self.d.push(
                    span(hname),
                    format!("host name `{name}` is already used by {prev}"),
                    "give every host a different name",
                );
            }
            let ip_list = wire::items(&h.ip);
            if ip_list.is_empty() && wire::items(&h.ipv6).is_empty() {
                self.d.push(span(hname), format!("host `{name}` has no address"), "add ip = \"ADDRESS\" or ipv6 = \"ADDRESS\" (a host without an address cannot be reserved or published)");
            }
            let mut ips = Vec::new();
            for s in &ip_list {
                let Some(ip) = self.ip(s, "host address") else {
                    continue;
                };
                if let Some(prev) = addr_owner.insert(ip, format!("host {name}")) {
                    self.d.push(
                        span(s),
                        format!("address `{ip}` is already used by {prev}"),
                        "give every host its own address",
                    );
                }
                match subnet_of(ip) {
                    None => self.d.push(
                        span(s),
                        format!("address `{ip}` of host `{name}` is outside every subnet"),
                        "add a [[subnet]] that contains it, or correct the address",
                    ),
                    Some(i) => {
                        let sn = &subnets[i];
                        if ip == sn.network.network() || ip == sn.network.broadcast() {
                            self.d.push(
                                span(s),
                                format!(
                                    "address `{ip}` is the network or broadcast address of {}",
                                    sn.network
                                ),
                                "use a host address inside the subnet",
                            );
                        }
                    }
                }
                ips.push(ip);
            }
            let ipv6: Vec<Ipv6Addr> = wire::items(&h.ipv6)
                .iter()
                .filter_map(|s| match s.get_ref().trim().parse::<Ipv6Addr>() {
                    Ok(a) => Some(a),
                    Err(_) => {
                        self.d.push(
                            span(s),
                            format!("ipv6 `{}` is not an IPv6 address", s.get_ref()),
                            "write it like \"2001:db8::10\"",
                        );
                        None
                    }
                })
                .collect();
            let mac = h
                .mac
                .as_ref()
                .and_then(|m| match m.get_ref().trim().parse::<Mac>() {
                    Ok(mac) => {
                        if let Some(prev) = mac_owner.insert(mac, format!("host {name}")) {
                            self.d.push(
                                span(m),
                                format!("MAC `{mac}` is already used by {prev}"),
                                "a MAC can be reserved for one host only",
                            );
                        }
                        Some(mac)
                    }
                    Err(()) => {
                        self.d.push(
                            span(m),
                            format!("MAC `{}` is not a hardware address", m.get_ref()),
                            "write six hex bytes separated by colons, e.g. \"02:00:00:00:10:10\"",
                        );
                        None
                    }
                });
            let client_id = h.client_id.as_ref().map(|c| {
                let t = c.get_ref().trim();
                let hex: String = t.chars().filter(|ch| *ch != ':').collect();
                if hex.len().is_multiple_of(2)
                    && !hex.is_empty()
                    && hex.chars().all(|ch| ch.is_ascii_hexdigit())
                {
                    (0..hex.len())
                        .step_by(2)
                        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or(0))
                        .collect()
                } else {
                    t.as_bytes().to_vec()
                }
            });
            let mut aliases = Vec::new();
            for a in &h.aliases {
                let al = self.label(a, "alias");
                if let Some(prev) = names.insert(al.clone(), format!("host {name}")) {
                    self.d.push(
                        span(a),
                        format!("alias `{al}` is already used by {prev}"),
                        "names, aliases and service names must all differ",
                    );
                }
                aliases.push(al);
            }
            let host_opts = self.options(&h.option);
            if mac.is_some() || client_id.is_some() {
                for (ip, s) in ips.iter().zip(&ip_list) {
                    let Some(si) = subnet_of(*ip) else { continue };
                    if let Some(p) = subnets[si].pools.iter().find(|p| p.range.contains(*ip)) {
                        self.d.push(span(s), format!("reserved address `{ip}` of host `{name}` is inside the dynamic range {}", p.range), "choose an address outside every range, or shrink the range");
                    }
                    reservations.push(Reservation {
                        hostname: name.clone(),
                        mac,
                        client_id: client_id.clone(),
                        ip: *ip,
                        subnet: si,
                        boot_file: h.boot_file.as_ref().map(|b| b.get_ref().clone()),
                        options: host_opts.clone(),
                    });
                }
            }
            reservations6.extend(self.reservations6(&name, h, mac, subnets6, &mut seen6));
            hosts.push(Host {
                name,
                ips,
                ipv6,
                mac,
                aliases,
                dns: h.dns.unwrap_or(true),
            });
        }
        Hosts {
            hosts,
            reservations,
            reservations6,
            names,
            addr_owner,
        }
    }

    /// `server`: the host running the daemons, and its IPv4 addresses.
    pub(crate) fn server(
        &mut self,
        server: Option<&S<String>>,
        hosts: &[Host],
    ) -> (Option<String>, Vec<Ipv4Addr>) {
        let host_by_name: HashMap<&str, &Host> =
            hosts.iter().map(|h| (h.name.as_str(), h)).collect();

        let server = server.map(|s| {
            let n = self.label(s, "server");
            if !host_by_name.contains_key(n.as_str()) {
                self.d.push(
                    span(s),
                    format!("server `{n}` is not a host in this file"),
                    "name the [host.NAME] that runs the daemons",
                );
            }
            n
        });
        let server_ips: Vec<Ipv4Addr> = server
            .as_ref()
            .and_then(|s| host_by_name.get(s.as_str()))
            .map(|h| h.ips.clone())
            .unwrap_or_default();

        (server, server_ips)
    }
}
