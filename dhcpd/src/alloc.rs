//! Which address a client gets: its reservation, else the address it held, else the one it asks
//! for, else a stable pick (a hash of its key into the pool, probing forward past busy addresses).

use std::net::Ipv4Addr;

use hostfile::DhcpSubnet;

use crate::index::ViewIndex;
use crate::lease::LeaseTable;

/// Who is asking.
#[derive(Debug, Clone, Copy)]
pub struct Client<'a> {
    /// Lease table key.
    pub key: &'a [u8],
    /// Option 61, when sent.
    pub cid: Option<&'a [u8]>,
    /// Ethernet MAC, when chaddr is one.
    pub mac: Option<[u8; 6]>,
    /// A BOOTP client (only `bootp = true` pools serve it).
    pub bootp: bool,
}

/// An address chosen for a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pick {
    /// The address.
    pub ip: Ipv4Addr,
    /// From the host table, not a pool.
    pub reserved: bool,
    /// The client did not hold it before (worth a ping before offering).
    pub fresh: bool,
}

/// True when `ip` lies in a pool of `s` open to this kind of client.
pub fn in_pool(s: &DhcpSubnet, ip: Ipv4Addr, bootp: bool) -> bool {
    s.pools
        .iter()
        .any(|p| (!bootp || p.bootp) && p.range.contains(ip))
}

/// True when a dynamic client may be given `ip` now.
pub fn available(
    cfg: &ViewIndex,
    t: &LeaseTable,
    subnet: usize,
    c: &Client<'_>,
    ip: Ipv4Addr,
    now: u64,
) -> bool {
    in_pool(cfg.subnet(subnet), ip, c.bootp) && !cfg.is_reserved(ip) && t.free_for(ip, c.key, now)
}

fn fnv1a(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for x in b {
        h ^= u64::from(*x);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Chooses an address for `c` in subnet `subnet`, or `None` when the pools are full.
pub fn choose(
    cfg: &ViewIndex,
    t: &LeaseTable,
    subnet: usize,
    c: &Client<'_>,
    requested: Option<Ipv4Addr>,
    now: u64,
) -> Option<Pick> {
    if let Some(r) = cfg.reservation(c.cid, c.mac, subnet) {
        return Some(Pick {
            ip: r.ip,
            reserved: true,
            fresh: false,
        });
    }
    if let Some(l) = t.of_client(c.key)
        && available(cfg, t, subnet, c, l.ip, now)
    {
        return Some(Pick {
            ip: l.ip,
            reserved: false,
            fresh: false,
        });
    }
    if let Some(ip) = requested
        && available(cfg, t, subnet, c, ip, now)
    {
        return Some(Pick {
            ip,
            reserved: false,
            fresh: true,
        });
    }
    let s = cfg.subnet(subnet);
    let pools: Vec<_> = s.pools.iter().filter(|p| !c.bootp || p.bootp).collect();
    let total: u64 = pools.iter().map(|p| p.range.len()).sum();
    if total == 0 {
        return None;
    }
    // From the client's hashed position onward through the pools, wrapping round: the first
    // address the table does not hold taken (skipped a word of 64 at a time), then checked.
    let start = fnv1a(c.key) % total;
    let mut segments = Vec::with_capacity(pools.len() + 1);
    let mut off = start;
    let mut first = None;
    for (k, p) in pools.iter().enumerate() {
        if first.is_none() && off < p.range.len() {
            first = Some((k, off));
        } else if first.is_none() {
            off -= p.range.len();
        }
    }
    let (k0, off0) = first?;
    let base = |k: usize| u32::from(pools[k].range.start);
    let last = |k: usize| base(k) + (pools[k].range.len() - 1) as u32;
    segments.push((base(k0) + off0 as u32, last(k0)));
    for k in (k0 + 1..pools.len()).chain(0..k0) {
        segments.push((base(k), last(k)));
    }
    if off0 > 0 {
        segments.push((base(k0), base(k0) + off0 as u32 - 1));
    }
    // A pool with nothing free: an address held only by an outstanding offer is offered again
    // (the first client's REQUEST for it is then refused and it starts over), so that offers
    // to clients that never come back cannot exhaust the pool.
    type Next = fn(&LeaseTable, Ipv4Addr, Ipv4Addr) -> Option<Ipv4Addr>;
    type Free = fn(&LeaseTable, Ipv4Addr, &[u8], u64) -> bool;
    let passes: [(Next, Free); 2] = [
        (LeaseTable::next_untaken, LeaseTable::free_for),
        (LeaseTable::next_unkept, LeaseTable::free_or_offered),
    ];
    for (next, free) in passes {
        for &(a, b) in &segments {
            let mut x = a;
            while let Some(ip) = next(t, Ipv4Addr::from(x), Ipv4Addr::from(b)) {
                if free(t, ip, c.key, now) && !cfg.is_reserved(ip) {
                    return Some(Pick {
                        ip,
                        reserved: false,
                        fresh: true,
                    });
                }
                if u32::from(ip) >= b {
                    break;
                }
                x = u32::from(ip) + 1;
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lease::{Change, Lease, LeaseState};
    use crate::testutil::config;

    fn client(key: &[u8]) -> Client<'_> {
        Client {
            key,
            cid: None,
            mac: None,
            bootp: false,
        }
    }

    /// Puts a record of `client` for `ip` with the given expiry and state.
    /// Every address of the test pool (192.168.10.200-254) leased, to client [last octet],
    /// expiring at 100, in the state `state` gives for the last octet.
    fn fill_pool(t: &mut LeaseTable, state: impl Fn(u8) -> LeaseState) {
        for i in 200..=254u8 {
            put(t, Ipv4Addr::new(192, 168, 10, i), vec![i], 100, state(i));
        }
    }

    fn put(t: &mut LeaseTable, ip: Ipv4Addr, client: Vec<u8>, expires: u64, state: LeaseState) {
        t.apply(&Change::Put(Lease {
            ip,
            client,
            key_source: crate::lease::KeySource::Hardware,
            hwaddr: vec![],
            hostname: None,
            starts: 0,
            expires,
            state,
        }));
    }

    #[test]
    fn reservation_wins_over_everything() {
        let cfg = config();
        let t = LeaseTable::new();
        let c = Client {
            mac: Some([2, 0, 0, 0, 0x10, 0x10]),
            ..client(b"x")
        };
        let p = choose(&cfg, &t, 1, &c, Some("192.168.10.201".parse().unwrap()), 0).unwrap();
        assert_eq!(p.ip, Ipv4Addr::new(192, 168, 10, 10));
        assert!(p.reserved);
    }

    #[test]
    fn stable_choice_is_in_the_pool_and_repeatable() {
        let cfg = config();
        let t = LeaseTable::new();
        let a = choose(&cfg, &t, 1, &client(b"abc"), None, 0).unwrap();
        let b = choose(&cfg, &t, 1, &client(b"abc"), None, 0).unwrap();
        assert_eq!(a, b);
        assert!(in_pool(cfg.subnet(1), a.ip, false));
    }

    #[test]
    fn previous_address_comes_back_and_busy_ones_are_skipped() {
        let cfg = config();
        let mut t = LeaseTable::new();
        let ip: Ipv4Addr = "192.168.10.230".parse().unwrap();
        put(&mut t, ip, b"old".to_vec(), 5, LeaseState::Expired);
        assert_eq!(
            choose(&cfg, &t, 1, &client(b"old"), None, 10).unwrap().ip,
            ip
        );
        // someone else asking for it while it is bound to "old" does not get it
        put(&mut t, ip, b"old".to_vec(), 100, LeaseState::Bound);
        let p = choose(&cfg, &t, 1, &client(b"new"), Some(ip), 10).unwrap();
        assert_ne!(p.ip, ip);
    }

    #[test]
    fn nearly_full_pool_finds_its_last_free_address_whatever_the_start() {
        let cfg = config();
        let mut t = LeaseTable::new();
        for i in 200..=254u8 {
            if i != 231 {
                put(
                    &mut t,
                    Ipv4Addr::new(192, 168, 10, i),
                    vec![i],
                    100,
                    LeaseState::Offered,
                );
            }
        }
        for k in 0..50u8 {
            let key = [b'k', k];
            let p = choose(&cfg, &t, 1, &client(&key), None, 10).unwrap();
            assert_eq!(p.ip, Ipv4Addr::new(192, 168, 10, 231));
        }
    }

    #[test]
    fn a_pool_full_of_offers_offers_one_of_them_again_but_never_a_bound_address() {
        let cfg = config();
        let mut t = LeaseTable::new();
        fill_pool(&mut t, |i| {
            if i == 240 {
                LeaseState::Offered
            } else {
                LeaseState::Bound
            }
        });
        let p = choose(&cfg, &t, 1, &client(b"late"), None, 10).unwrap();
        assert_eq!(p.ip, Ipv4Addr::new(192, 168, 10, 240));
        // once bound, nothing is left
        put(&mut t, p.ip, vec![240], 100, LeaseState::Bound);
        assert_eq!(choose(&cfg, &t, 1, &client(b"late"), None, 10), None);
    }

    #[test]
    fn full_pool_gives_none() {
        let cfg = config();
        let mut t = LeaseTable::new();
        fill_pool(&mut t, |_| LeaseState::Bound);
        assert_eq!(choose(&cfg, &t, 1, &client(b"z"), None, 10), None);
    }
}
