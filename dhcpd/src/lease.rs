//! Leases and the in-memory lease table the protocol decisions read.
//!
//! The table is the single authority on who holds which address: it is loaded from the store at
//! start, changed only by applying a decision's [`Change`]s, and every change that an ACK depends on
//! reaches the store before that ACK is sent.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

/// Expiry of leases that never end (BOOTP).
pub const NEVER: u64 = u64::MAX;

/// Unix seconds now (the clock the IO shells pass to the decisions).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Where a lease is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LeaseState {
    /// Offered, not yet requested (memory only, never stored).
    Offered,
    /// Acknowledged and in use.
    Bound,
    /// Given back by the client; remembered so it gets the address again.
    Released,
    /// Ran out; remembered so the client gets the address again.
    Expired,
    /// On probation after a DECLINE or a ping reply, until `expires`.
    Declined,
}

impl LeaseState {
    /// Every state, in the order of [`LeaseState::slot`].
    pub const ALL: [LeaseState; 5] = [
        LeaseState::Offered,
        LeaseState::Bound,
        LeaseState::Released,
        LeaseState::Expired,
        LeaseState::Declined,
    ];
    /// This state's position in [`LeaseState::ALL`].
    pub fn slot(self) -> usize {
        match self {
            LeaseState::Offered => 0,
            LeaseState::Bound => 1,
            LeaseState::Released => 2,
            LeaseState::Expired => 3,
            LeaseState::Declined => 4,
        }
    }
    /// Lower-case name for tables.
    pub fn as_str(self) -> &'static str {
        match self {
            LeaseState::Offered => "offered",
            LeaseState::Bound => "bound",
            LeaseState::Released => "released",
            LeaseState::Expired => "expired",
            LeaseState::Declined => "declined",
        }
    }
}

/// Where a lease's client key came from. It decides the identifier type of the DHCID record
/// (RFC 4701 section 3.3) that marks the client's DNS names, so that the records added at ACK
/// are the ones removed at release or expiry, also after a restart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeySource {
    /// Written by a dhcpd that did not keep it: its DHCID is computed as that dhcpd did
    /// (hardware type 0 when the key is htype + chaddr, even if it came as option 61).
    #[default]
    Legacy,
    /// htype + chaddr: the client sent no option 61.
    Hardware,
    /// The client identifier option (61).
    ClientId,
}

/// One address and who holds (or last held) it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The address.
    pub ip: Ipv4Addr,
    /// Client key: option 61 when sent, else hardware type + chaddr.
    pub client: Vec<u8>,
    /// Which of the two `client` is.
    #[serde(default)]
    pub key_source: KeySource,
    /// Hardware address (chaddr, hlen bytes).
    pub hwaddr: Vec<u8>,
    /// Host name the client gave or the host table holds.
    pub hostname: Option<String>,
    /// Unix seconds the lease (or probation) began.
    pub starts: u64,
    /// Unix seconds it ends; [`NEVER`] for BOOTP.
    pub expires: u64,
    /// State.
    pub state: LeaseState,
}

impl Lease {
    /// True while this lease keeps the address from anyone else.
    pub fn holds(&self, now: u64) -> bool {
        match self.state {
            LeaseState::Offered | LeaseState::Bound | LeaseState::Declined => self.expires > now,
            LeaseState::Released | LeaseState::Expired => false,
        }
    }
    /// `aa:bb:..` form of the hardware address.
    pub fn mac_string(&self) -> String {
        hex_colon(&self.hwaddr)
    }
}

/// `01:02:..` form of bytes.
pub fn hex_colon(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 3);
    for (i, x) in b.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        s.push_str(&format!("{x:02x}"));
    }
    s
}

/// A change a decision makes to the lease table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    /// Insert or replace the lease of `lease.ip`.
    Put(Lease),
    /// Forget the address entirely.
    Del(Ipv4Addr),
    /// Drop the offer of `ip` to `client` (it took another server's); anything else stays.
    Withdraw {
        /// The offered address.
        ip: Ipv4Addr,
        /// The client it was offered to.
        client: Vec<u8>,
    },
}

impl Change {
    /// True when the change must reach the store (offers live in memory only).
    pub fn persistent(&self) -> bool {
        !matches!(self, Change::Put(l) if l.state == LeaseState::Offered)
            && !matches!(self, Change::Withdraw { .. })
    }
    /// The address it is about.
    pub fn ip(&self) -> Ipv4Addr {
        match self {
            Change::Put(l) => l.ip,
            Change::Del(ip) | Change::Withdraw { ip, .. } => *ip,
        }
    }
}

/// All leases, by address and by client.
#[derive(Debug, Default, Clone)]
pub struct LeaseTable {
    by_ip: HashMap<Ipv4Addr, Lease>,
    /// Client key (its hash: 8 bytes and no allocation per lease) -> address. A lookup is
    /// confirmed against the record's key, so a collision only costs a client its previous
    /// address, never hands it someone else's.
    by_client: HashMap<u64, Ipv4Addr>,
    keys: std::collections::hash_map::RandomState,
    /// Addresses whose record is offered, bound or declined (whatever its expiry), a bit each,
    /// 64 addresses a word: lets the allocator skip taken stretches of a nearly full pool a word
    /// at a time instead of probing address by address.
    taken: BTreeMap<u32, u64>,
    /// The same for bound and declined records only (offers left out).
    kept: BTreeMap<u32, u64>,
    /// Hardware address (its hash) -> addresses of offered and bound records with it, to bound
    /// what one MAC holds under many client identifiers.
    by_hw: HashMap<u64, Vec<Ipv4Addr>>,
    /// No offered, bound or declined record ends before this, so [`LeaseTable::expiries`] with
    /// nothing due walks nothing.
    due: Floor,
    /// Records per state (by [`LeaseState::slot`]), kept per change so the census never walks
    /// the table.
    by_state: [i64; 5],
    /// Addresses of declined records (probation; few), for the census's per-pool counts.
    declined: BTreeSet<u32>,
}

/// What one pool's addresses hold, by record state (whatever the records' ends: an ended lease
/// leaves these counts when the expiry check reclaims it).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PoolCounts {
    /// Bound records.
    pub bound: u64,
    /// Offered records.
    pub offered: u64,
    /// Declined records (probation).
    pub declined: u64,
}

/// A lower bound of the ends of the records [`LeaseTable::expiries`] acts on: lowered by every
/// change that writes one, raised to the true minimum by each walk of `expiries` (atomic so a
/// read-only walk may raise it; relaxed: the table has one owner). 0, the start, walks once.
#[derive(Debug, Default)]
struct Floor(std::sync::atomic::AtomicU64);

impl Floor {
    fn get(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
    fn set(&self, v: u64) {
        self.0.store(v, std::sync::atomic::Ordering::Relaxed);
    }
    fn lower(&self, v: u64) {
        self.0.fetch_min(v, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Clone for Floor {
    fn clone(&self) -> Self {
        Floor(self.get().into())
    }
}

/// Whether [`LeaseTable::expiries`] acts on a record in `state` once its time is up: the
/// states that hold the address (the `taken` bitmap).
fn ends(state: LeaseState) -> bool {
    matches!(
        state,
        LeaseState::Bound | LeaseState::Offered | LeaseState::Declined
    )
}

fn set_bit(map: &mut BTreeMap<u32, u64>, ip: Ipv4Addr, on: bool) {
    let (w, bit) = (u32::from(ip) >> 6, 1u64 << (u32::from(ip) & 63));
    if on {
        *map.entry(w).or_default() |= bit;
    } else if let Some(x) = map.get_mut(&w) {
        *x &= !bit;
        if *x == 0 {
            map.remove(&w);
        }
    }
}

/// The first address in `from..=to` whose bit is clear in `map`.
fn next_clear(map: &BTreeMap<u32, u64>, from: Ipv4Addr, to: Ipv4Addr) -> Option<Ipv4Addr> {
    let (from, to) = (u32::from(from), u32::from(to));
    if from > to {
        return None;
    }
    let mut want = from >> 6;
    for (&w, &bits) in map.range(from >> 6..=to >> 6) {
        if w > want {
            // A word with nothing set.
            return Some(Ipv4Addr::from((want << 6).max(from)));
        }
        let mut free = !bits;
        if w == from >> 6 {
            free &= u64::MAX << (from & 63);
        }
        if free != 0 {
            let ip = (w << 6) | free.trailing_zeros();
            return (ip <= to).then(|| Ipv4Addr::from(ip));
        }
        if w == u32::MAX >> 6 {
            return None;
        }
        want = w + 1;
    }
    let ip = (want << 6).max(from);
    (want <= to >> 6 && ip <= to).then(|| Ipv4Addr::from(ip))
}

/// How many bits of `map` are set for the addresses `from..=to`.
fn count_bits(map: &BTreeMap<u32, u64>, from: Ipv4Addr, to: Ipv4Addr) -> u64 {
    let (from, to) = (u32::from(from), u32::from(to));
    if from > to {
        return 0;
    }
    map.range(from >> 6..=to >> 6)
        .map(|(&w, &bits)| {
            let mut b = bits;
            if w == from >> 6 {
                b &= u64::MAX << (from & 63);
            }
            if w == to >> 6 {
                b &= u64::MAX >> (63 - (to & 63));
            }
            u64::from(b.count_ones())
        })
        .sum()
}

impl LeaseTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }
    /// Builds the table from stored leases.
    pub fn from_leases(leases: impl IntoIterator<Item = Lease>) -> Self {
        let mut t = Self::new();
        for l in leases {
            t.apply(&Change::Put(l));
        }
        t
    }
    fn key(&self, client: &[u8]) -> u64 {
        use std::hash::BuildHasher;
        self.keys.hash_one(client)
    }
    /// The lease record of `ip`.
    pub fn get(&self, ip: Ipv4Addr) -> Option<&Lease> {
        self.by_ip.get(&ip)
    }
    /// The latest lease record of a client (any state).
    pub fn of_client(&self, client: &[u8]) -> Option<&Lease> {
        let ip = self.by_client.get(&self.key(client))?;
        self.by_ip.get(ip).filter(|l| l.client == client)
    }
    /// True when `ip` may be given to `client` now.
    pub fn free_for(&self, ip: Ipv4Addr, client: &[u8], now: u64) -> bool {
        match self.by_ip.get(&ip) {
            None => true,
            Some(l) if l.state == LeaseState::Declined => !l.holds(now),
            Some(l) => l.client == client || !l.holds(now),
        }
    }
    /// Applies one change.
    pub fn apply(&mut self, c: &Change) {
        let ip = c.ip();
        let (before, state) = self.apply_record(c);
        if before != state {
            if let Some(b) = before {
                self.by_state[b.slot()] -= 1;
            }
            if let Some(s) = state {
                self.by_state[s.slot()] += 1;
            }
            if before == Some(LeaseState::Declined) {
                self.declined.remove(&u32::from(ip));
            }
            if state == Some(LeaseState::Declined) {
                self.declined.insert(u32::from(ip));
            }
        }
        // The bitmaps change only when the state moves in or out of what they hold (a renewal,
        // bound to bound, touches neither).
        let kept =
            |s: Option<LeaseState>| matches!(s, Some(LeaseState::Bound | LeaseState::Declined));
        let taken = |s: Option<LeaseState>| s.is_some_and(ends);
        if taken(before) != taken(state) {
            set_bit(&mut self.taken, ip, taken(state));
        }
        if kept(before) != kept(state) {
            set_bit(&mut self.kept, ip, kept(state));
        }
    }

    /// The first address in `from..=to` that no offered, bound or declined record names (it may
    /// still be reserved, or not free for a given client: callers check with
    /// [`LeaseTable::free_for`]).
    pub fn next_untaken(&self, from: Ipv4Addr, to: Ipv4Addr) -> Option<Ipv4Addr> {
        next_clear(&self.taken, from, to)
    }

    /// The first address in `from..=to` that no bound or declined record names (offered ones
    /// included): see [`LeaseTable::free_or_offered`].
    pub fn next_unkept(&self, from: Ipv4Addr, to: Ipv4Addr) -> Option<Ipv4Addr> {
        next_clear(&self.kept, from, to)
    }

    /// True when `ip` is free for `client` or held only by an offer (to anyone): what may be
    /// offered again when a pool has nothing free, so that offers never exhaust it.
    pub fn free_or_offered(&self, ip: Ipv4Addr, client: &[u8], now: u64) -> bool {
        self.free_for(ip, client, now)
            || self
                .by_ip
                .get(&ip)
                .is_some_and(|l| l.state == LeaseState::Offered)
    }

    /// Live offered or bound records with hardware address `hw` held under client keys other
    /// than `client`.
    pub fn held_by_hw(&self, hw: &[u8], client: &[u8], now: u64) -> usize {
        self.by_hw.get(&self.key(hw)).map_or(0, |ips| {
            ips.iter()
                .filter_map(|ip| self.by_ip.get(ip))
                .filter(|l| {
                    l.hwaddr == hw
                        && l.client != client
                        && matches!(l.state, LeaseState::Offered | LeaseState::Bound)
                        && l.holds(now)
                })
                .count()
        })
    }

    /// The `by_hw` key of a record that belongs there.
    fn hw_key(&self, l: &Lease) -> Option<u64> {
        (!l.hwaddr.is_empty() && matches!(l.state, LeaseState::Offered | LeaseState::Bound))
            .then(|| self.key(&l.hwaddr))
    }

    fn unindex_hw(&mut self, k: Option<u64>, ip: Ipv4Addr) {
        if let Some(k) = k
            && let Some(v) = self.by_hw.get_mut(&k)
        {
            v.retain(|x| *x != ip);
            if v.is_empty() {
                self.by_hw.remove(&k);
            }
        }
    }

    /// Applies `c` to the records and their indexes (one map operation on the records for a
    /// put or a delete); returns the address's state before and after.
    fn apply_record(&mut self, c: &Change) -> (Option<LeaseState>, Option<LeaseState>) {
        match c {
            Change::Put(l) => {
                if ends(l.state) {
                    self.due.lower(l.expires);
                }
                let before = self.by_ip.insert(l.ip, l.clone()).map(|old| {
                    self.unindex_hw(self.hw_key(&old), l.ip);
                    if old.client != l.client {
                        let k = self.key(&old.client);
                        if self.by_client.get(&k) == Some(&l.ip) {
                            self.by_client.remove(&k);
                        }
                    }
                    old.state
                });
                if let Some(k) = self.hw_key(l) {
                    self.by_hw.entry(k).or_default().push(l.ip);
                }
                if !l.client.is_empty() {
                    self.by_client.insert(self.key(&l.client), l.ip);
                }
                (before, Some(l.state))
            }
            Change::Del(ip) => {
                let before = self.by_ip.remove(ip).map(|old| {
                    self.unindex_hw(self.hw_key(&old), *ip);
                    let k = self.key(&old.client);
                    if self.by_client.get(&k) == Some(ip) {
                        self.by_client.remove(&k);
                    }
                    old.state
                });
                (before, None)
            }
            Change::Withdraw { ip, client } => {
                let current = self.by_ip.get(ip).map(|l| (l.state, &l.client == client));
                match current {
                    Some((LeaseState::Offered, true)) => self.apply_record(&Change::Del(*ip)),
                    _ => {
                        let s = current.map(|(s, _)| s);
                        (s, s)
                    }
                }
            }
        }
    }
    /// Records per state, every state listed (0 for a state with none).
    pub fn state_counts(&self) -> [(LeaseState, i64); 5] {
        LeaseState::ALL.map(|s| (s, self.by_state[s.slot()]))
    }
    /// What the addresses `first..=last` hold (a pool's census, without walking the records).
    pub fn pool_counts(&self, first: Ipv4Addr, last: Ipv4Addr) -> PoolCounts {
        let kept = count_bits(&self.kept, first, last);
        let declined = self
            .declined
            .range(u32::from(first)..=u32::from(last))
            .count() as u64;
        PoolCounts {
            bound: kept.saturating_sub(declined),
            offered: count_bits(&self.taken, first, last).saturating_sub(kept),
            declined,
        }
    }
    /// Every lease.
    pub fn iter(&self) -> impl Iterator<Item = &Lease> {
        self.by_ip.values()
    }
    /// Number of records.
    pub fn len(&self) -> usize {
        self.by_ip.len()
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.by_ip.is_empty()
    }
    /// Changes that end leases whose time is up: bound -> expired, stale offers dropped, probation
    /// over -> forgotten. At most `limit` at a time so a large expiry wave is spread out. Walks
    /// the table only when a record may be due (see [`Floor`]); the walk leaves the bound at the
    /// earliest end it saw, the returned ones included (until they are applied, the next call
    /// walks again).
    pub fn expiries(&self, now: u64, limit: usize) -> Vec<Change> {
        let mut out = Vec::new();
        if now < self.due.get() {
            return out;
        }
        let mut earliest = u64::MAX;
        for l in self.by_ip.values() {
            if !ends(l.state) {
                continue;
            }
            earliest = earliest.min(l.expires);
            if l.expires > now || out.len() >= limit {
                continue;
            }
            out.push(match l.state {
                LeaseState::Bound => Change::Put(Lease {
                    state: LeaseState::Expired,
                    ..l.clone()
                }),
                _ => Change::Del(l.ip),
            });
        }
        self.due.set(earliest);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(ip: [u8; 4], client: &[u8], state: LeaseState, expires: u64) -> Lease {
        Lease {
            ip: ip.into(),
            client: client.to_vec(),
            key_source: KeySource::Hardware,
            hwaddr: client.to_vec(),
            hostname: None,
            starts: 0,
            expires,
            state,
        }
    }

    /// What one hardware address holds under other client keys follows every change: offers and
    /// bound leases count while live, released, withdrawn, deleted and overwritten ones stop.
    #[test]
    fn leases_held_by_a_hardware_address_follow_the_table() {
        let hw = b"mac".to_vec();
        let of = |ip: u8, client: &[u8], state| Lease {
            hwaddr: hw.clone(),
            ..lease([10, 0, 0, ip], client, state, 100)
        };
        let mut t = LeaseTable::from_leases([
            of(1, b"c1", LeaseState::Bound),
            of(2, b"c2", LeaseState::Offered),
            of(3, b"c3", LeaseState::Bound),
        ]);
        assert_eq!(t.held_by_hw(&hw, b"new", 50), 3);
        assert_eq!(t.held_by_hw(&hw, b"c1", 50), 2);
        assert_eq!(t.held_by_hw(&hw, b"new", 100), 0, "expired by time");
        t.apply(&Change::Put(of(1, b"c1", LeaseState::Released)));
        t.apply(&Change::Withdraw {
            ip: Ipv4Addr::new(10, 0, 0, 2),
            client: b"c2".to_vec(),
        });
        assert_eq!(t.held_by_hw(&hw, b"new", 50), 1);
        t.apply(&Change::Put(lease(
            [10, 0, 0, 3],
            b"other",
            LeaseState::Bound,
            100,
        )));
        assert_eq!(
            t.held_by_hw(&hw, b"new", 50),
            0,
            "address now another MAC's"
        );
        t.apply(&Change::Put(of(4, b"c4", LeaseState::Bound)));
        t.apply(&Change::Del(Ipv4Addr::new(10, 0, 0, 4)));
        assert_eq!(t.held_by_hw(&hw, b"new", 50), 0);
        assert_eq!(t.held_by_hw(b"other", b"new", 50), 1);
        assert_eq!(t.by_hw.len(), 1, "no entry left for the first MAC");
    }

    #[test]
    fn bound_lease_is_not_free_for_others_until_it_expires() {
        let t = LeaseTable::from_leases([lease([10, 0, 0, 5], b"a", LeaseState::Bound, 100)]);
        let ip = Ipv4Addr::new(10, 0, 0, 5);
        assert!(t.free_for(ip, b"a", 50));
        assert!(!t.free_for(ip, b"b", 50));
        assert!(t.free_for(ip, b"b", 100));
    }

    #[test]
    fn declined_address_is_free_for_nobody_during_probation() {
        let t = LeaseTable::from_leases([lease([10, 0, 0, 5], b"", LeaseState::Declined, 100)]);
        assert!(!t.free_for(Ipv4Addr::new(10, 0, 0, 5), b"a", 99));
        assert!(t.free_for(Ipv4Addr::new(10, 0, 0, 5), b"a", 100));
    }

    #[test]
    fn next_untaken_skips_taken_words_and_honours_both_ends() {
        let ip = |n: u32| Ipv4Addr::from(0x0a00_0000 + n);
        let mut t = LeaseTable::new();
        // 0..=130 taken except 70; 200 released (not taken)
        for n in (0..=130).filter(|n| *n != 70) {
            t.apply(&Change::Put(lease(
                ip(n).octets(),
                &n.to_be_bytes(),
                LeaseState::Bound,
                9,
            )));
        }
        t.apply(&Change::Put(lease(
            ip(200).octets(),
            b"r",
            LeaseState::Released,
            9,
        )));
        assert_eq!(t.next_untaken(ip(0), ip(300)), Some(ip(70)));
        assert_eq!(t.next_untaken(ip(71), ip(300)), Some(ip(131)));
        assert_eq!(t.next_untaken(ip(71), ip(130)), None);
        assert_eq!(t.next_untaken(ip(5), ip(69)), None);
        assert_eq!(t.next_untaken(ip(200), ip(200)), Some(ip(200)));
        assert_eq!(t.next_untaken(ip(300), ip(200)), None);
        // freeing an address (release, delete) makes it untaken again
        t.apply(&Change::Del(ip(3)));
        assert_eq!(t.next_untaken(ip(0), ip(300)), Some(ip(3)));
        t.apply(&Change::Put(lease(
            ip(100).octets(),
            b"x",
            LeaseState::Expired,
            9,
        )));
        assert_eq!(t.next_untaken(ip(71), ip(300)), Some(ip(100)));
        // the top of the address space
        let top = Ipv4Addr::new(255, 255, 255, 255);
        assert_eq!(t.next_untaken(top, top), Some(top));
        t.apply(&Change::Put(lease(
            top.octets(),
            b"t",
            LeaseState::Bound,
            9,
        )));
        assert_eq!(t.next_untaken(top, top), None);
    }

    #[test]
    fn reassignment_moves_the_client_index() {
        let mut t = LeaseTable::from_leases([lease([10, 0, 0, 5], b"a", LeaseState::Expired, 1)]);
        t.apply(&Change::Put(lease(
            [10, 0, 0, 5],
            b"b",
            LeaseState::Bound,
            100,
        )));
        assert!(t.of_client(b"a").is_none());
        assert_eq!(t.of_client(b"b").unwrap().ip, Ipv4Addr::new(10, 0, 0, 5));
    }

    #[test]
    fn expiry_turns_bound_into_expired_and_forgets_probation() {
        let t = LeaseTable::from_leases([
            lease([10, 0, 0, 5], b"a", LeaseState::Bound, 10),
            lease([10, 0, 0, 6], b"", LeaseState::Declined, 10),
            lease([10, 0, 0, 7], b"c", LeaseState::Bound, 1000),
        ]);
        let mut ch = t.expiries(20, 100);
        ch.sort_by_key(Change::ip);
        assert_eq!(ch.len(), 2);
        assert!(matches!(&ch[0], Change::Put(l) if l.state == LeaseState::Expired));
        assert_eq!(ch[1], Change::Del(Ipv4Addr::new(10, 0, 0, 6)));
    }

    /// The walk happens only when a record may be due: once it has found none, later calls
    /// walk nothing until a change writes an earlier end or the time comes; an offer or
    /// probation due but over the limit keeps the next call walking.
    #[test]
    fn expiries_walk_only_when_a_record_may_be_due() {
        let mut t = LeaseTable::from_leases([
            lease([10, 0, 0, 5], b"a", LeaseState::Bound, 100),
            lease([10, 0, 0, 6], b"b", LeaseState::Offered, 50),
            lease([10, 0, 0, 7], b"c", LeaseState::Expired, 10),
        ]);
        assert!(t.expiries(20, 100).is_empty());
        assert_eq!(
            t.due.get(),
            50,
            "the earliest end of an offered/bound/declined record"
        );
        assert!(t.expiries(49, 100).is_empty());
        // A change that writes an earlier end lowers the bound.
        t.apply(&Change::Put(lease(
            [10, 0, 0, 8],
            b"d",
            LeaseState::Declined,
            30,
        )));
        assert_eq!(t.due.get(), 30);
        assert_eq!(
            t.expiries(30, 100),
            vec![Change::Del(Ipv4Addr::new(10, 0, 0, 8))]
        );
        // Not applied yet: still due, so the next call walks and finds it again.
        assert_eq!(t.due.get(), 30);
        // Over the limit: what is left over keeps the bound at or below now.
        let first = t.expiries(100, 1);
        assert_eq!(first.len(), 1);
        for c in &first {
            t.apply(c);
        }
        assert!(t.due.get() <= 100);
        let rest = t.expiries(100, 10);
        assert_eq!(rest.len(), 2, "{rest:?}");
        for c in &rest {
            t.apply(c);
        }
        assert!(t.expiries(100, 10).is_empty());
        assert_eq!(t.due.get(), u64::MAX, "nothing left to end");
    }

    /// The counts kept per change (per state, per pool) always equal a walk over the records,
    /// through every kind of change: puts over other states and clients, deletions, withdrawn
    /// offers (kept and not), in a long pseudo-random sequence.
    #[test]
    fn kept_counts_equal_a_walk_after_every_change() {
        let mut t = LeaseTable::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let (first, last) = (Ipv4Addr::new(10, 0, 0, 60), Ipv4Addr::new(10, 0, 0, 130));
        for _ in 0..5_000 {
            let ip = [10, 0, 0, next(200) as u8];
            let client = [b'c', next(4) as u8];
            let c = match next(6) {
                0 => Change::Del(ip.into()),
                1 => Change::Withdraw {
                    ip: ip.into(),
                    client: client.to_vec(),
                },
                _ => Change::Put(lease(ip, &client, LeaseState::ALL[next(5) as usize], 9)),
            };
            t.apply(&c);
            let mut want = [0i64; 5];
            let mut pool = PoolCounts::default();
            for l in t.iter() {
                want[l.state.slot()] += 1;
                if (first..=last).contains(&l.ip) {
                    match l.state {
                        LeaseState::Bound => pool.bound += 1,
                        LeaseState::Offered => pool.offered += 1,
                        LeaseState::Declined => pool.declined += 1,
                        _ => {}
                    }
                }
            }
            assert_eq!(t.state_counts().map(|(_, n)| n), want, "after {c:?}");
            assert_eq!(t.pool_counts(first, last), pool, "after {c:?}");
        }
    }

    /// Bit counts over a range honour both ends inside a word and across words.
    #[test]
    fn pool_counts_cut_the_ends_of_the_range_exactly() {
        let t = LeaseTable::from_leases(
            [0u8, 1, 63, 64, 127, 128, 255]
                .map(|i| lease([10, 0, 1, i], &[i], LeaseState::Bound, 9)),
        );
        let n = |a: u8, b: u8| {
            t.pool_counts([10, 0, 1, a].into(), [10, 0, 1, b].into())
                .bound
        };
        assert_eq!(n(0, 255), 7);
        assert_eq!(n(1, 254), 5);
        assert_eq!(n(63, 64), 2);
        assert_eq!(n(64, 64), 1);
        assert_eq!(n(2, 62), 0);
        assert_eq!(n(128, 127), 0);
    }
}
