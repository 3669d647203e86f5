//! Response rate limiting per source prefix (BIND/NSD style): over the rate, every `slip`-th
//! response goes out truncated (so real clients retry over TCP) and the rest are dropped.

use std::collections::HashMap;
use std::net::IpAddr;

use hostfile::RrlSettings;
use ipnet::IpNet;

/// What to do with a UDP response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send it.
    Send,
    /// Send an empty TC response instead.
    Slip,
    /// Send nothing.
    Drop,
}

/// Table bound: beyond it, stale buckets are purged.
const MAX_BUCKETS: usize = 100_000;

/// Limiter state.
#[derive(Debug)]
pub struct Rrl {
    s: RrlSettings,
    /// prefix -> (second, responses in that second, limited so far)
    buckets: HashMap<IpAddr, (u64, u32, u32)>,
}

impl Rrl {
    /// New limiter.
    pub fn new(s: RrlSettings) -> Rrl {
        Rrl {
            s,
            buckets: HashMap::new(),
        }
    }

    /// True when the limiter is off.
    pub fn off(&self) -> bool {
        self.s.rate == 0
    }

    fn prefix(&self, ip: IpAddr) -> IpAddr {
        let len = match ip {
            IpAddr::V4(_) => self.s.ipv4_prefix,
            IpAddr::V6(_) => 56,
        };
        IpNet::new(ip, len).map(|n| n.network()).unwrap_or(ip)
    }

    /// Accounts one response to `src` at second `now_sec`.
    pub fn check(&mut self, src: IpAddr, now_sec: u64) -> Verdict {
        if self.off() || self.s.exempt.iter().any(|n| n.contains(&src)) {
            return Verdict::Send;
        }
        if self.buckets.len() >= MAX_BUCKETS {
            let window = self.s.window.as_secs();
            self.buckets
                .retain(|_, b| b.0.saturating_add(window) >= now_sec);
        }
        let key = self.prefix(src);
        let b = self.buckets.entry(key).or_insert((now_sec, 0, 0));
        if b.0 != now_sec {
            *b = (now_sec, 0, b.2);
        }
        b.1 = b.1.saturating_add(1);
        if b.1 <= self.s.rate {
            return Verdict::Send;
        }
        b.2 = b.2.wrapping_add(1);
        if self.s.slip > 0 && b.2.is_multiple_of(self.s.slip) {
            Verdict::Slip
        } else {
            Verdict::Drop
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn s(rate: u32, slip: u32) -> RrlSettings {
        RrlSettings {
            rate,
            slip,
            window: Duration::from_secs(15),
            ipv4_prefix: 24,
            exempt: vec!["10.0.0.0/8".parse().unwrap()],
        }
    }

    #[test]
    fn limits_per_prefix_with_slip_and_exempt() {
        let mut r = Rrl::new(s(3, 2));
        let a: IpAddr = "192.168.1.7".parse().unwrap();
        let b: IpAddr = "192.168.1.8".parse().unwrap(); // same /24
        let v: Vec<Verdict> = (0..7)
            .map(|i| r.check(if i % 2 == 0 { a } else { b }, 100))
            .collect();
        assert_eq!(
            v,
            [
                Verdict::Send,
                Verdict::Send,
                Verdict::Send,
                Verdict::Drop,
                Verdict::Slip,
                Verdict::Drop,
                Verdict::Slip
            ]
        );
        // next second: budget again
        assert_eq!(r.check(a, 101), Verdict::Send);
        // another prefix is independent
        assert_eq!(r.check("192.168.2.1".parse().unwrap(), 100), Verdict::Send);
        for _ in 0..10 {
            assert_eq!(r.check("10.1.2.3".parse().unwrap(), 100), Verdict::Send);
        }
        let mut off = Rrl::new(s(0, 2));
        for _ in 0..10 {
            assert_eq!(off.check(a, 1), Verdict::Send);
        }
        let mut drop_all = Rrl::new(s(1, 0));
        drop_all.check(a, 1);
        assert_eq!(drop_all.check(a, 1), Verdict::Drop);
    }
}
