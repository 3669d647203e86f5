//! What dnsd last did with its peers, for the status page: per secondary address the last NOTIFY
//! sent (zone, serial, acknowledged or not) and the last transfer served (AXFR or IXFR), per
//! forwarding upstream the last answer and the last failure. Small maps bounded by [`PEERS_KEEP`]
//! (the least recently seen peer makes room), written off the fast path: NOTIFY rounds,
//! transfers and upstream queries (cache misses) only. Time is passed in (seconds since the
//! epoch).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

/// Peers kept per map.
pub const PEERS_KEEP: usize = 64;

/// One NOTIFY round or one transfer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Seconds since the epoch.
    pub time: u64,
    /// The zone's origin.
    pub zone: String,
    /// The serial sent.
    pub serial: u32,
    /// `acknowledged`, `unanswered`, `AXFR` or `IXFR`.
    pub outcome: &'static str,
}

/// The last NOTIFY and the last transfer of one secondary address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Secondary {
    /// The last NOTIFY round (after its last try).
    pub notify: Option<Event>,
    /// The last transfer served to this address.
    pub transfer: Option<Event>,
}

impl Secondary {
    fn seen(&self) -> u64 {
        let t = |e: &Option<Event>| e.as_ref().map_or(0, |e| e.time);
        t(&self.notify).max(t(&self.transfer))
    }
}

/// One upstream resolver's health.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Upstream {
    /// When it last answered.
    pub last_ok: Option<u64>,
    /// When it last did not answer in time.
    pub last_failure: Option<u64>,
    /// Answers since start.
    pub answers: u64,
    /// Failures since start.
    pub failures: u64,
}

impl Upstream {
    fn seen(&self) -> u64 {
        self.last_ok
            .unwrap_or(0)
            .max(self.last_failure.unwrap_or(0))
    }

    /// True when its last attempt failed.
    pub fn down(&self) -> bool {
        self.last_failure.unwrap_or(0) > 0 && self.last_failure >= self.last_ok
    }
}

/// The two maps.
#[derive(Debug, Default)]
pub struct Peers {
    secondaries: Mutex<BTreeMap<IpAddr, Secondary>>,
    upstreams: Mutex<BTreeMap<SocketAddr, Upstream>>,
}

/// The entry for `k`, making room first (dropping the least recently seen) when `m` is full.
fn entry<K: Ord + Copy, V: Default>(
    m: &mut BTreeMap<K, V>,
    k: K,
    seen: impl Fn(&V) -> u64,
) -> &mut V {
    if !m.contains_key(&k)
        && m.len() >= PEERS_KEEP
        && let Some(old) = m.iter().min_by_key(|(_, v)| seen(v)).map(|(k, _)| *k)
    {
        m.remove(&old);
    }
    m.entry(k).or_default()
}

impl Peers {
    /// Records a finished NOTIFY round to `addr` (`acked`: the secondary answered).
    pub fn notified(&self, addr: IpAddr, zone: &str, serial: u32, acked: bool, now: u64) {
        let mut m = self.secondaries.lock().unwrap_or_else(|e| e.into_inner());
        entry(&mut m, addr.to_canonical(), Secondary::seen).notify = Some(Event {
            time: now,
            zone: zone.to_owned(),
            serial,
            outcome: if acked { "acknowledged" } else { "unanswered" },
        });
    }

    /// Records a transfer served to `addr` (`incremental`: IXFR from the journal).
    pub fn transferred(&self, addr: IpAddr, zone: &str, serial: u32, incremental: bool, now: u64) {
        let mut m = self.secondaries.lock().unwrap_or_else(|e| e.into_inner());
        entry(&mut m, addr.to_canonical(), Secondary::seen).transfer = Some(Event {
            time: now,
            zone: zone.to_owned(),
            serial,
            outcome: if incremental { "IXFR" } else { "AXFR" },
        });
    }

    /// Records one query to the upstream `up`: answered (`ok`) or not.
    pub fn upstream(&self, up: SocketAddr, ok: bool, now: u64) {
        let mut m = self.upstreams.lock().unwrap_or_else(|e| e.into_inner());
        let u = entry(&mut m, up, Upstream::seen);
        if ok {
            u.last_ok = Some(now);
            u.answers += 1;
        } else {
            u.last_failure = Some(now);
            u.failures += 1;
        }
    }

    /// The secondaries seen, by address (an IPv4-mapped IPv6 address as IPv4).
    pub fn secondaries(&self) -> BTreeMap<IpAddr, Secondary> {
        self.secondaries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The upstreams asked, by address.
    pub fn upstreams(&self) -> BTreeMap<SocketAddr, Upstream> {
        self.upstreams
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_events_per_peer_within_the_bound() {
        let p = Peers::default();
        let s: IpAddr = "192.168.1.1".parse().unwrap();
        p.notified(s, "it-ishin.com.", 7, false, 100);
        p.notified(s, "it-ishin.com.", 8, true, 110);
        p.transferred(s, "it-ishin.com.", 8, true, 111);
        let got = &p.secondaries()[&s];
        let n = got.notify.as_ref().unwrap();
        assert_eq!((n.time, n.serial, n.outcome), (110, 8, "acknowledged"));
        assert_eq!(got.transfer.as_ref().unwrap().outcome, "IXFR");
        // A dual-stack socket's mapped address is the same secondary.
        p.transferred(
            "::ffff:192.168.1.1".parse().unwrap(),
            "it-ishin.com.",
            9,
            false,
            112,
        );
        assert_eq!(p.secondaries()[&s].transfer.as_ref().unwrap().serial, 9);
        assert_eq!(p.secondaries().len(), 1);

        let up: SocketAddr = "192.168.1.1:53".parse().unwrap();
        p.upstream(up, true, 5);
        assert!(!p.upstreams()[&up].down());
        p.upstream(up, false, 6);
        let u = &p.upstreams()[&up];
        assert!(u.down());
        assert_eq!((u.answers, u.failures, u.last_ok), (1, 1, Some(5)));
        p.upstream(up, true, 7);
        assert!(!p.upstreams()[&up].down());

        // Full: the least recently seen peer makes room; the map never grows past the bound.
        for i in 0..PEERS_KEEP as u64 {
            let a = IpAddr::from([10, 0, (i / 256) as u8, i as u8]);
            p.transferred(a, "z.", 1, false, 200 + i);
        }
        let m = p.secondaries();
        assert_eq!(m.len(), PEERS_KEEP);
        assert!(!m.contains_key(&s), "the oldest peer made room");
        assert!(m.contains_key(&IpAddr::from([10, 0, 0, 0])));
    }
}
