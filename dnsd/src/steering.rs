//! Which steering a listen address's SO_REUSEPORT group gets: by the receiving CPU
//! ([`crate::udp::steer_by_cpu`]) or the kernel's hash of the client's address and port.
//!
//! Steering by CPU balances the workers only when the datagrams are received on more than one
//! CPU: over loopback (received on the sender's CPU), or on an interface with more than one
//! receive queue (RSS) or with RPS set. On a single-queue interface without RPS every datagram
//! is received on one CPU, so one worker would take them all, while the hash spreads a LAN's
//! many clients over the workers. The rule is [`choose`], a pure function of [`Facts`] that
//! [`crate::links::facts`] reads from the kernel.

/// The steering of one listen address's UDP sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Steering {
    /// A datagram goes to the worker of the CPU that received it (a reuseport BPF program).
    Cpu,
    /// The kernel's reuseport hash of the client's address and port (no BPF program).
    KernelHash,
}

/// What the kernel shows of one network interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The interface's name (`eth0`).
    pub name: String,
    /// Its receive queues (`/sys/class/net/IF/queues/rx-*`); 0 when they cannot be read.
    pub rx_queues: usize,
    /// Whether any receive queue has RPS set (`rps_cpus` not all zero).
    pub rps: bool,
}

impl Link {
    /// Whether datagrams arriving on this link are received on more than one CPU.
    fn spreads(&self) -> bool {
        self.rx_queues > 1 || self.rps
    }

    /// Why it does or does not spread, in a few words (`eth0 has one receive queue and no RPS`).
    fn describe(&self) -> String {
        match (self.rx_queues, self.rps) {
            (_, true) => format!("{} has RPS set", self.name),
            (0, false) => format!("{}'s receive queues cannot be read", self.name),
            (1, false) => format!("{} has one receive queue and no RPS", self.name),
            (n, false) => format!("{} has {n} receive queues", self.name),
        }
    }
}

/// What decides the steering of one listen address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Facts {
    /// A loopback address (127.0.0.0/8, ::1): received on the sender's CPU.
    Loopback,
    /// The interfaces holding the address (usually one).
    On(Vec<Link>),
    /// A wildcard listen (0.0.0.0, ::), or an address on the loopback interface that is not a
    /// loopback address (reached through any interface): the non-loopback interfaces that are up.
    Any(Vec<Link>),
    /// No interface holds the address.
    NotFound,
}

/// The steering chosen and why, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// The steering.
    pub steering: Steering,
    /// Why, in a few words (`eth0 has one receive queue and no RPS`).
    pub why: String,
}

impl std::fmt::Display for Choice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self.steering {
            Steering::Cpu => "CPU steering",
            Steering::KernelHash => "kernel hash steering",
        };
        write!(f, "{s} ({})", self.why)
    }
}

/// The steering for an address with `facts`: by CPU when every interface it can be reached
/// through receives on more than one CPU (loopback, several receive queues, or RPS); otherwise,
/// or when no interface is known, the kernel's hash.
pub fn choose(facts: &Facts) -> Choice {
    let (steering, why) = match facts {
        Facts::Loopback => (
            Steering::Cpu,
            "loopback: received on the sender's CPU".to_string(),
        ),
        Facts::NotFound => (
            Steering::KernelHash,
            "no interface holds the address".to_string(),
        ),
        Facts::On(links) if links.is_empty() => (
            Steering::KernelHash,
            "no interface holds the address".to_string(),
        ),
        Facts::On(links) => all_spread(links, ""),
        Facts::Any(links) if links.is_empty() => (
            Steering::Cpu,
            "no interface but loopback is up: received on the sender's CPU".to_string(),
        ),
        Facts::Any(links) => all_spread(links, "any interface: "),
    };
    Choice { steering, why }
}

/// By CPU when all `links` spread their receive, naming them; else the hash, naming the first
/// that does not.
fn all_spread(links: &[Link], prefix: &str) -> (Steering, String) {
    let mut why = prefix.to_string();
    match links.iter().find(|l| !l.spreads()) {
        Some(l) => {
            why.push_str(&l.describe());
            (Steering::KernelHash, why)
        }
        None => {
            for (i, l) in links.iter().enumerate() {
                if i > 0 {
                    why.push_str(", ");
                }
                why.push_str(&l.describe());
            }
            (Steering::Cpu, why)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Facts, Link, Steering, choose};

    fn link(name: &str, rx_queues: usize, rps: bool) -> Link {
        Link {
            name: name.into(),
            rx_queues,
            rps,
        }
    }

    #[test]
    fn loopback_is_steered_by_cpu() {
        let c = choose(&Facts::Loopback);
        assert_eq!(c.steering, Steering::Cpu);
        assert_eq!(
            c.to_string(),
            "CPU steering (loopback: received on the sender's CPU)"
        );
    }

    #[test]
    fn a_single_queue_without_rps_keeps_the_kernel_hash() {
        let c = choose(&Facts::On(vec![link("eth0", 1, false)]));
        assert_eq!(c.steering, Steering::KernelHash);
        assert_eq!(
            c.to_string(),
            "kernel hash steering (eth0 has one receive queue and no RPS)"
        );
    }

    #[test]
    fn several_receive_queues_are_steered_by_cpu() {
        let c = choose(&Facts::On(vec![link("eth0", 4, false)]));
        assert_eq!(c.steering, Steering::Cpu);
        assert_eq!(c.to_string(), "CPU steering (eth0 has 4 receive queues)");
    }

    #[test]
    fn rps_on_a_single_queue_is_steered_by_cpu() {
        let c = choose(&Facts::On(vec![link("eth0", 1, true)]));
        assert_eq!(c.steering, Steering::Cpu);
        assert_eq!(c.why, "eth0 has RPS set");
    }

    #[test]
    fn unreadable_queues_keep_the_kernel_hash() {
        let c = choose(&Facts::On(vec![link("eth0", 0, false)]));
        assert_eq!(c.steering, Steering::KernelHash);
        assert_eq!(c.why, "eth0's receive queues cannot be read");
    }

    #[test]
    fn an_address_on_no_interface_keeps_the_kernel_hash() {
        for f in [Facts::NotFound, Facts::On(vec![])] {
            let c = choose(&f);
            assert_eq!(c.steering, Steering::KernelHash, "{f:?}");
            assert_eq!(c.why, "no interface holds the address");
        }
    }

    #[test]
    fn an_address_on_two_interfaces_needs_both_to_spread() {
        let both = choose(&Facts::On(vec![
            link("br0", 2, false),
            link("br1", 1, true),
        ]));
        assert_eq!(both.steering, Steering::Cpu);
        assert_eq!(both.why, "br0 has 2 receive queues, br1 has RPS set");
        let one = choose(&Facts::On(vec![
            link("br0", 2, false),
            link("br1", 1, false),
        ]));
        assert_eq!(one.steering, Steering::KernelHash);
        assert_eq!(one.why, "br1 has one receive queue and no RPS");
    }

    #[test]
    fn a_wildcard_is_steered_by_cpu_only_if_every_interface_up_spreads() {
        let all = choose(&Facts::Any(vec![
            link("eth0", 8, false),
            link("eth1", 1, true),
        ]));
        assert_eq!(all.steering, Steering::Cpu);
        assert_eq!(
            all.to_string(),
            "CPU steering (any interface: eth0 has 8 receive queues, eth1 has RPS set)"
        );
        let not_all = choose(&Facts::Any(vec![
            link("eth0", 8, false),
            link("eth1", 1, false),
        ]));
        assert_eq!(not_all.steering, Steering::KernelHash);
        assert_eq!(
            not_all.to_string(),
            "kernel hash steering (any interface: eth1 has one receive queue and no RPS)"
        );
    }

    #[test]
    fn a_wildcard_with_only_loopback_up_is_steered_by_cpu() {
        let c = choose(&Facts::Any(vec![]));
        assert_eq!(c.steering, Steering::Cpu);
        assert_eq!(
            c.why,
            "no interface but loopback is up: received on the sender's CPU"
        );
    }
}
