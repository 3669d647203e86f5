//! Reading the [`Facts`] that decide a listen address's steering ([`crate::steering::choose`])
//! from the kernel: the interfaces holding the address (getifaddrs) and their receive queues and
//! RPS masks (`/sys/class/net/IF/queues/rx-*/rps_cpus`).

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use nix::ifaddrs::getifaddrs;
use nix::net::if_::InterfaceFlags;

use crate::steering::{Facts, Link};

/// The facts for listen address `addr`, read from getifaddrs and `/sys/class/net`. An address
/// the system does not list (or a getifaddrs failure) is [`Facts::NotFound`].
pub fn facts(addr: SocketAddr) -> Facts {
    if addr.ip().is_loopback() {
        return Facts::Loopback;
    }
    let Ok(ifaddrs) = getifaddrs() else {
        return Facts::NotFound;
    };
    // (name, up, loopback, holds addr)
    let mut ifs: Vec<(String, bool, bool, bool)> = Vec::new();
    for ia in ifaddrs {
        let holds = ia.address.as_ref().is_some_and(|a| {
            if let Some(v4) = a.as_sockaddr_in() {
                IpAddr::V4(v4.ip()) == addr.ip()
            } else if let Some(v6) = a.as_sockaddr_in6() {
                let scope = match addr {
                    // A link-local listen address names its interface by scope id.
                    SocketAddr::V6(s) if s.scope_id() != 0 => s.scope_id() == v6.scope_id(),
                    _ => true,
                };
                IpAddr::V6(v6.ip()) == addr.ip() && scope
            } else {
                false
            }
        });
        let up = ia.flags.contains(InterfaceFlags::IFF_UP);
        let lo = ia.flags.contains(InterfaceFlags::IFF_LOOPBACK);
        match ifs.iter_mut().find(|i| i.0 == ia.interface_name) {
            Some(i) => i.3 |= holds,
            None => ifs.push((ia.interface_name, up, lo, holds)),
        }
    }
    let sys = Path::new("/sys/class/net");
    let up_links = |ifs: &[(String, bool, bool, bool)]| {
        ifs.iter()
            .filter(|i| i.1 && !i.2)
            .map(|i| link(sys, &i.0))
            .collect()
    };
    if addr.ip().is_unspecified() {
        return Facts::Any(up_links(&ifs));
    }
    let holding: Vec<_> = ifs.iter().filter(|i| i.3).collect();
    if holding.is_empty() {
        Facts::NotFound
    } else if holding.iter().any(|i| i.2) {
        // An address on the loopback interface (a service address) is reached through any.
        Facts::Any(up_links(&ifs))
    } else {
        Facts::On(holding.iter().map(|i| link(sys, &i.0)).collect())
    }
}

/// Interface `name`'s receive queues and RPS, read under `sys` (`/sys/class/net`); unreadable
/// queues count as none, an unreadable mask as no RPS.
pub fn link(sys: &Path, name: &str) -> Link {
    let mut rx_queues = 0;
    let mut rps = false;
    if let Ok(dir) = std::fs::read_dir(sys.join(name).join("queues")) {
        for e in dir.flatten() {
            if !e.file_name().to_string_lossy().starts_with("rx-") {
                continue;
            }
            rx_queues += 1;
            if let Ok(mask) = std::fs::read_to_string(e.path().join("rps_cpus")) {
                rps |= mask_set(&mask);
            }
        }
    }
    Link {
        name: name.to_string(),
        rx_queues,
        rps,
    }
}

/// Whether an `rps_cpus` mask (`00000000,00000003`) names any CPU.
fn mask_set(mask: &str) -> bool {
    mask.trim()
        .chars()
        .any(|c| c.is_ascii_hexdigit() && c != '0')
}

#[cfg(test)]
mod tests {
    use super::{facts, link, mask_set};
    use crate::steering::{Facts, Link};

    #[test]
    fn an_rps_mask_is_set_when_any_cpu_is_named() {
        assert!(!mask_set("0\n"));
        assert!(!mask_set("00000000,00000000\n"));
        assert!(mask_set("00000000,00000003\n"));
        assert!(mask_set("f"));
        assert!(!mask_set(""));
    }

    #[test]
    fn queues_and_rps_are_read_from_the_sysfs_layout() {
        let dir = tempfile::tempdir().expect("temp dir");
        let q = dir.path().join("eth9/queues");
        for (rx, mask) in [("rx-0", "00000000\n"), ("rx-1", "00000002\n")] {
            std::fs::create_dir_all(q.join(rx)).expect("queue dir");
            std::fs::write(q.join(rx).join("rps_cpus"), mask).expect("mask");
        }
        std::fs::create_dir_all(q.join("tx-0")).expect("tx queue dir");
        let l = link(dir.path(), "eth9");
        assert_eq!(
            l,
            Link {
                name: "eth9".into(),
                rx_queues: 2,
                rps: true
            }
        );
        let none = link(dir.path(), "nosuch0");
        assert_eq!((none.rx_queues, none.rps), (0, false));
    }

    #[test]
    fn loopback_and_unknown_addresses_are_told_apart() {
        assert_eq!(
            facts("127.0.0.1:53".parse().expect("addr")),
            Facts::Loopback
        );
        assert_eq!(facts("[::1]:53".parse().expect("addr")), Facts::Loopback);
        // TEST-NET-3: held by no interface of a test host.
        assert_eq!(
            facts("203.0.113.77:53".parse().expect("addr")),
            Facts::NotFound
        );
    }
}
