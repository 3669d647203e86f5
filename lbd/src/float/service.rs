//! The `[lb.vrrp]` instance, which holds the service VIPs: what it advertises and where it runs.
//! Its address family is the host file's (`VrrpConfig::ipv6`, decided once by
//! `hostfile::service_vrrp_ipv6` from the service VIPs, as keepalived takes an instance's family
//! from its addresses): IPv4 adverts to 224.0.0.18 listing the IPv4 VIPs, or, when every service
//! VIP is IPv6, VRRP over IPv6 listing the IPv6 VIPs, sent as a floating IPv6 instance's are
//! (ff02::12 from the interface's link-local address, [`super::addr6::advert_source`]). The VIPs
//! themselves are taken and announced by the daemon loop (gratuitous ARP or unsolicited
//! neighbour advertisements, `crate::announce`), whatever the family of the adverts.

use std::net::IpAddr;

use hostfile::{LbView, VrrpConfig};

use super::addr6;
use crate::desired::{managed_vips, managed_vips6};
use crate::vrrp::{Instance, Params, VrrpError, interval_cs};

/// The addresses the `[lb.vrrp]` instance of `view` lists in its adverts: the service VIPs of
/// its family (pure). With VIPs of both families the instance is IPv4 and lists the IPv4 ones;
/// the IPv6 VIPs follow its state.
pub fn service_addrs(view: &LbView) -> Vec<IpAddr> {
    if view.vrrp.as_ref().is_some_and(|c| c.ipv6) {
        managed_vips6(view).iter().map(|v| v.addr.into()).collect()
    } else {
        managed_vips(view).iter().map(|v| v.addr.into()).collect()
    }
}

/// The interface `[lb.vrrp]` runs on: `interface` there or in `[lb]`, else the first VIP's.
fn interface(cfg: &VrrpConfig, view: &LbView) -> Result<String, VrrpError> {
    if let Some(i) = cfg.interface.clone().or_else(|| view.interface.clone()) {
        return Ok(i);
    }
    if cfg.ipv6 {
        let vips = managed_vips6(view);
        let first = vips.first().ok_or(VrrpError::NoInterface)?;
        Ok(crate::vip6::place(first)?.iface)
    } else {
        let vips = managed_vips(view);
        let first = vips.first().ok_or(VrrpError::NoInterface)?;
        Ok(crate::vip::place(first)?.iface)
    }
}

/// Where `[lb.vrrp]` runs for `cfg`: interface name, index and the source address of its adverts
/// (`source`, else one of the interface's own addresses that is no VIP; IPv6: its link-local one).
pub fn locate(cfg: &VrrpConfig, view: &LbView) -> Result<(String, u32, IpAddr), VrrpError> {
    let iface = interface(cfg, view)?;
    let Some(index) = crate::vip::if_index(&iface) else {
        return Err(VrrpError::MissingInterface(iface));
    };
    let local = match cfg.source {
        Some(s) => s,
        None if cfg.ipv6 => addr6::advert_source(index, &cfg.peers, &super::floating6(view))?
            .map(IpAddr::V6)
            .ok_or_else(|| VrrpError::NoAddress6(iface.clone()))?,
        None => {
            let vips = super::floating(view);
            runtime::netif::local_ipv4()?
                .into_iter()
                .find(|a| a.index == index && !vips.contains(&a.addr))
                .map(|a| IpAddr::V4(a.addr))
                .ok_or_else(|| VrrpError::NoAddress(iface.clone()))?
        }
    };
    Ok((iface, index, local))
}

/// The `[lb.vrrp]` instance ready to run: where, and what it protects (the service VIPs).
pub fn service_instance(cfg: &VrrpConfig, view: &LbView) -> Result<Instance, VrrpError> {
    let (iface, index, local) = locate(cfg, view)?;
    Ok(Instance {
        name: hostfile::SERVICE_INSTANCE.to_owned(),
        iface,
        index,
        params: Params {
            vrid: cfg.vrid,
            priority: cfg.priority,
            preempt: cfg.preempt,
            interval_cs: interval_cs(cfg.interval),
            local,
            addrs: service_addrs(view),
            peers: cfg.peers.clone(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A host file with `[lb.vrrp]` and the services `services` (TOML).
    fn view(services: &str) -> LbView {
        hostfile::HostTable::from_toml(&format!(
            r#"domain = "example.com"
[[subnet]]
network = "192.168.1.0/24"
[[subnet]]
network = "fd00:1::/64"
ra = false
[host.web1]
ip = "192.168.1.10"
ipv6 = "fd00:1::10"
{services}
[lb.vrrp]
vrid = 51
"#
        ))
        .unwrap_or_else(|e| panic!("{e}"))
        .lb_view()
    }

    fn ips(v: &[&str]) -> Vec<IpAddr> {
        v.iter().map(|a| a.parse().unwrap()).collect()
    }

    const V6: &str = "[service.www6]\nvip = \"fd00:1::120\"\nport = 80\nbackends = [\"web1\"]\n";
    const V6B: &str = "[service.dns6]\nvip = \"fd00:1::121\"\nport = 53\nprotocol = \"udp\"\nbackends = [\"web1\"]\n";
    const V4: &str = "[service.www]\nvip = \"192.168.1.120\"\nport = 80\nbackends = [\"web1\"]\n";
    const DUAL: &str = "[service.www]\nvip = [\"192.168.1.120\", \"fd00:1::120\"]\nport = 80\nbackends = [\"web1\"]\n";

    #[test]
    fn ipv6_service_vips_only_make_an_ipv6_instance_listing_them() {
        let v = view(&format!("{V6}{V6B}"));
        assert!(v.vrrp.as_ref().unwrap().ipv6);
        assert_eq!(service_addrs(&v), ips(&["fd00:1::120", "fd00:1::121"]));
    }

    #[test]
    fn ipv4_or_both_families_keep_the_ipv4_instance() {
        for (what, services) in [
            ("IPv4 only", V4.to_owned()),
            ("a dual-stack service", DUAL.to_owned()),
            ("an IPv4 and an IPv6 service", format!("{V4}{V6B}")),
        ] {
            let v = view(&services);
            assert!(!v.vrrp.as_ref().unwrap().ipv6, "{what}");
            assert_eq!(service_addrs(&v), ips(&["192.168.1.120"]), "{what}");
        }
        // No service yet: IPv4, as keepalived's instance without addresses.
        let v = view("");
        assert!(!v.vrrp.as_ref().unwrap().ipv6);
        assert!(service_addrs(&v).is_empty());
    }

    #[test]
    fn a_change_of_the_advertised_vips_restarts_vrrp_and_a_following_one_does_not() {
        let v6 = view(V6);
        // Another IPv6 VIP is another address list in the IPv6 adverts.
        assert!(super::super::changed(&v6, &view(&format!("{V6}{V6B}"))));
        // An IPv4 service turns the instance IPv4.
        assert!(super::super::changed(&v6, &view(&format!("{V4}{V6}"))));
        // Beside an IPv4 VIP an IPv6 one only follows: the adverts stay the same.
        assert!(!super::super::changed(
            &view(V4),
            &view(&format!("{V4}{V6B}"))
        ));
    }
}
