//! Response rate limiting per source prefix (BIND/NSD style): over the rate, every `slip`-th
//! response goes out truncated (so real clients retry over TCP) and the rest are dropped.
//!
//! The accounting table has a fixed size ([`TABLE_SLOTS`]), allocated once: a source prefix
//! hashes (with a per-table random key, so outsiders cannot aim at a slot) to one set of
//! [`WAYS`] slots. A prefix not in its set takes an empty or expired slot of the set, or else
//! replaces the set's least active entry (oldest second, then fewest responses in it). Every
//! check therefore looks at [`WAYS`] slots at most, whatever a spoofed flood has put in the
//! table, and the table never grows. The sets are spread over [`SHARDS`] independently locked
//! shards: no lock is shared by all answers.

use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::Mutex;

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

/// Slots in the table (source prefixes tracked at once), whatever the traffic.
pub const TABLE_SLOTS: usize = 1 << 16;
/// Slots one prefix may occupy (the set it hashes to); the most a check looks at.
pub const WAYS: usize = 4;
/// Independently locked parts of the table.
pub const SHARDS: usize = 64;
const SETS_PER_SHARD: usize = TABLE_SLOTS / WAYS / SHARDS;

/// One accounted prefix.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    /// The prefix; `None` when free.
    key: Option<IpAddr>,
    /// The second `count` is for.
    sec: u64,
    /// Responses in that second.
    count: u32,
    /// Responses limited so far (drives the slip cycle).
    limited: u32,
}

/// What one check did: the verdict and how many table slots it looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// The verdict.
    pub verdict: Verdict,
    /// Slots looked at (at most [`WAYS`]).
    pub visited: usize,
}

/// Limiter state. Shared by reference: [`Rrl::check`] takes `&self`.
#[derive(Debug)]
pub struct Rrl {
    s: RrlSettings,
    hasher: RandomState,
    /// `SHARDS` shards of `SETS_PER_SHARD * WAYS` slots; empty when the limiter is off.
    shards: Vec<Mutex<Box<[Slot]>>>,
}

impl Rrl {
    /// New limiter (its table allocated once, unless the limiter is off).
    pub fn new(s: RrlSettings) -> Rrl {
        let shards = if s.rate == 0 {
            Vec::new()
        } else {
            (0..SHARDS)
                .map(|_| Mutex::new(vec![Slot::default(); SETS_PER_SHARD * WAYS].into()))
                .collect()
        };
        Rrl {
            s,
            hasher: RandomState::new(),
            shards,
        }
    }

    /// True when the limiter is off.
    pub fn off(&self) -> bool {
        self.s.rate == 0
    }

    /// Slots the table holds (fixed: [`TABLE_SLOTS`], 0 when off).
    pub fn capacity(&self) -> usize {
        self.shards.len() * SETS_PER_SHARD * WAYS
    }

    /// Prefixes currently accounted (occupied slots). Walks the table: for tests and status.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|sh| {
                let sh = sh.lock().unwrap_or_else(|e| e.into_inner());
                sh.iter().filter(|b| b.key.is_some()).count()
            })
            .sum()
    }

    /// True when no prefix is accounted.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn prefix(&self, ip: IpAddr) -> IpAddr {
        let len = match ip {
            IpAddr::V4(_) => self.s.ipv4_prefix,
            IpAddr::V6(_) => self.s.ipv6_prefix,
        };
        IpNet::new(ip, len).map(|n| n.network()).unwrap_or(ip)
    }

    /// Accounts one response to `src` at second `now_sec`.
    pub fn check(&self, src: IpAddr, now_sec: u64) -> Verdict {
        self.account(src, now_sec).verdict
    }

    /// [`Rrl::check`], also telling how much of the table it looked at.
    pub fn account(&self, src: IpAddr, now_sec: u64) -> Probe {
        if self.off() || self.s.exempt.iter().any(|n| n.contains(&src)) {
            return Probe {
                verdict: Verdict::Send,
                visited: 0,
            };
        }
        let key = self.prefix(src);
        let h = self.hasher.hash_one(key) as usize;
        let set = (h / SHARDS) % SETS_PER_SHARD;
        let mut shard = self.shards[h % SHARDS]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let set = &mut shard[set * WAYS..(set + 1) * WAYS];
        let (i, visited) = match set.iter().position(|b| b.key == Some(key)) {
            Some(i) => (i, i + 1),
            None => {
                let window = self.s.window.as_secs();
                let i = (0..WAYS)
                    .min_by_key(|&i| evict_rank(&set[i], now_sec, window))
                    .unwrap_or(0);
                set[i] = Slot {
                    key: Some(key),
                    sec: now_sec,
                    count: 0,
                    limited: 0,
                };
                (i, WAYS)
            }
        };
        let verdict = bump(&self.s, &mut set[i], now_sec);
        Probe { verdict, visited }
    }
}

/// Lowest goes first: free slots, then entries idle longer than the window, then the entry
/// with the oldest second and the fewest responses in it.
fn evict_rank(b: &Slot, now_sec: u64, window: u64) -> (u8, u64, u32) {
    match b.key {
        None => (0, 0, 0),
        Some(_) if b.sec.saturating_add(window) < now_sec => (1, b.sec, b.count),
        Some(_) => (2, b.sec, b.count),
    }
}

fn bump(s: &RrlSettings, b: &mut Slot, now_sec: u64) -> Verdict {
    if b.sec != now_sec {
        b.sec = now_sec;
        b.count = 0;
    }
    b.count = b.count.saturating_add(1);
    if b.count <= s.rate {
        return Verdict::Send;
    }
    b.limited = b.limited.wrapping_add(1);
    if s.slip > 0 && b.limited.is_multiple_of(s.slip) {
        Verdict::Slip
    } else {
        Verdict::Drop
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
            ipv6_prefix: 56,
            exempt: vec!["10.0.0.0/8".parse().unwrap()],
        }
    }

    #[test]
    fn limits_per_prefix_with_slip_and_exempt() {
        let r = Rrl::new(s(3, 2));
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
        let off = Rrl::new(s(0, 2));
        for _ in 0..10 {
            assert_eq!(off.check(a, 1), Verdict::Send);
        }
        let drop_all = Rrl::new(s(1, 0));
        drop_all.check(a, 1);
        assert_eq!(drop_all.check(a, 1), Verdict::Drop);
    }

    #[test]
    fn ipv6_sources_share_a_bucket_per_prefix() {
        let r = Rrl::new(s(2, 0));
        let a: IpAddr = "2001:db8:0:10::1".parse().unwrap();
        let b: IpAddr = "2001:db8:0:ff:1234::9".parse().unwrap(); // same /56
        let c: IpAddr = "2001:db8:0:100::1".parse().unwrap(); // next /56
        assert_eq!(r.check(a, 100), Verdict::Send);
        assert_eq!(r.check(b, 100), Verdict::Send);
        assert_eq!(r.check(a, 100), Verdict::Drop);
        assert_eq!(r.check(b, 100), Verdict::Drop);
        assert_eq!(r.check(c, 100), Verdict::Send);
        assert_eq!(r.check(c, 100), Verdict::Send);
        assert_eq!(r.check(c, 100), Verdict::Drop);
        // A /64 prefix length separates a and b.
        let r = Rrl::new(RrlSettings {
            ipv6_prefix: 64,
            ..s(1, 0)
        });
        assert_eq!(r.check(a, 100), Verdict::Send);
        assert_eq!(r.check(b, 100), Verdict::Send);
        assert_eq!(r.check(a, 100), Verdict::Drop);
        // IPv4 sources keep their own prefix length.
        assert_eq!(r.check("192.0.2.1".parse().unwrap(), 100), Verdict::Send);
        assert_eq!(r.check("192.0.2.200".parse().unwrap(), 100), Verdict::Drop);
    }

    #[test]
    fn eviction_prefers_free_then_expired_then_least_active() {
        let now = 1000;
        let free = Slot::default();
        let expired = Slot {
            key: Some("192.0.2.0".parse().unwrap()),
            sec: now - 20,
            count: 900,
            limited: 0,
        };
        let busy = Slot {
            sec: now,
            count: 50,
            ..expired
        };
        let quiet = Slot { count: 1, ..busy };
        let older = Slot {
            sec: now - 1,
            count: 500,
            ..busy
        };
        let rank = |b: &Slot| evict_rank(b, now, 15);
        assert!(rank(&free) < rank(&expired));
        assert!(rank(&expired) < rank(&older));
        assert!(rank(&older) < rank(&quiet));
        assert!(rank(&quiet) < rank(&busy));
    }
}
