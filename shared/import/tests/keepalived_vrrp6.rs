//! keepalived's IPv6 `vrrp_instance` holding the addresses of IPv6 `virtual_server`s (a pair on
//! an IPv6-only LAN) becomes `[lb.vrrp]`, which lbd then runs over IPv6 (its family follows the
//! service VIPs, as keepalived's follows its `virtual_ipaddress`); beside an IPv4 instance
//! holding service VIPs it is listed as not imported, since `[lb.vrrp]` is then IPv4 and the
//! IPv6 VIPs follow it.

use std::net::IpAddr;
use std::path::Path;

use import::Imported;

/// The backends' IPv6 addresses come from a zone (every host has an IPv4 address too).
const ZONE: &str = "$TTL 1h\n@ SOA ns.lan.test. hostmaster.lan.test. 1 1h 15m 1w 5m\n@ NS ns\nns A 10.1.0.2\nweb1 A 10.1.10.10\nweb1 AAAA fd00:10::10\nweb2 A 10.1.10.11\nweb2 AAAA fd00:10::11\n";

const INSTANCE6: &str = "vrrp_instance VI_6 {
    state BACKUP
    interface eth0
    virtual_router_id 71
    priority 150
    advert_int 0.1
    unicast_src_ip fd00:1::2
    unicast_peer {
        fd00:1::3
    }
    virtual_ipaddress {
        fd00:1::120/64
        fd00:1::199/64
    }
}
";

const SERVER6: &str = "virtual_server fd00:1::120 80 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server fd00:10::10 80 {
        TCP_CHECK {
            connect_timeout 1
        }
    }
    real_server fd00:10::11 80 {
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
";

const INSTANCE4: &str = "vrrp_instance VI_4 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 150
    virtual_ipaddress {
        10.1.0.120/24
    }
}
";

const SERVER4: &str = "virtual_server 10.1.0.120 80 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 10.1.10.10 80 {
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
";

fn import(keepalived: &str) -> Imported {
    let zone = import::import_zone(ZONE, Some("lan.test"), Path::new("db.lan.test"))
        .unwrap_or_else(|e| panic!("{e}"));
    let ka = import::import_keepalived(keepalived, Path::new("keepalived.conf"))
        .unwrap_or_else(|e| panic!("{e}"));
    import::merge(vec![zone, ka])
}

#[test]
fn an_ipv6_instance_holding_ipv6_service_vips_becomes_an_ipv6_lb_vrrp() {
    let i = import(&format!("{INSTANCE6}{SERVER6}"));
    let toml = i.to_toml();
    let t = i
        .check()
        .unwrap_or_else(|e| panic!("does not validate:\n{e}\n---\n{toml}"));
    let lb = t.lb_view();
    let v = lb
        .vrrp
        .as_ref()
        .unwrap_or_else(|| panic!("no [lb.vrrp]:\n{toml}"));
    assert!(v.ipv6, "{toml}");
    assert_eq!((v.vrid, v.priority), (71, 150));
    assert_eq!(v.interval, std::time::Duration::from_millis(100));
    assert_eq!(v.interface.as_deref(), Some("eth0"));
    assert_eq!(v.peers, ["fd00:1::3".parse::<IpAddr>().unwrap()]);
    assert_eq!(v.source, Some("fd00:1::2".parse().unwrap()));
    assert!(lb.instances.is_empty(), "not a floating instance:\n{toml}");
    assert_eq!(lb.services.len(), 1);
    assert_eq!(lb.services[0].vip, "fd00:1::120".parse::<IpAddr>().unwrap());
    assert!(toml.contains("VRRP over IPv6"), "{toml}");
    // Its address without a virtual_server is listed with its line.
    assert!(
        i.unsupported.iter().any(|u| u.line == 13
            && u.construct.contains("fd00:1::199")
            && u.reason.contains("without a virtual_server")),
        "{:#?}",
        i.unsupported
    );
}

#[test]
fn beside_an_ipv4_instance_with_service_vips_the_ipv6_one_is_listed() {
    let i = import(&format!("{INSTANCE4}{SERVER4}{INSTANCE6}{SERVER6}"));
    let toml = i.to_toml();
    let t = i
        .check()
        .unwrap_or_else(|e| panic!("does not validate:\n{e}\n---\n{toml}"));
    let lb = t.lb_view();
    let v = lb.vrrp.as_ref().expect("[lb.vrrp]");
    assert!(!v.ipv6);
    assert_eq!(v.vrid, 51);
    assert!(lb.instances.is_empty(), "{toml}");
    assert!(
        i.unsupported
            .iter()
            .any(|u| u.construct == "vrrp_instance VI_6"
                && u.reason
                    .contains("[lb.vrrp] runs over IPv4 and the IPv6 VIPs follow")),
        "{:#?}",
        i.unsupported
    );
}
