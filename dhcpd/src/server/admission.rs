//! Admission of new exchanges under overload: a pure count over a sliding second, time passed
//! in.

use std::time::Duration;

/// How long an OFFER counts as waiting for its REQUEST, in `ADMIT_SLOTS` slots.
const ADMIT_SPAN: Duration = Duration::from_secs(1);
const ADMIT_SLOTS: usize = 10;
/// The limit grows with the REQUEST rate: outstanding OFFERs worth 1/`ADMIT_RTT_SHARE` of the
/// last `ADMIT_SPAN`'s REQUESTs (50 ms of round trip) are always allowed, so a busy relay whose
/// DISCOVER-to-REQUEST round trip stretches to tens of milliseconds is not throttled at a rate it
/// keeps up with (30,000 exchanges/s with 20 ms round trips keep ~600 OFFERs outstanding).
const ADMIT_RTT_SHARE: u32 = 20;

/// Admission of new exchanges (DISCOVER, BOOTP) under overload. Answering a DISCOVER is cheap for
/// dhcpd, so when new exchanges come faster than the clients (or the relay in front of them) can
/// follow up, its OFFERs themselves become the overload: they crowd the relay's socket, and the
/// ACKs of exchanges already under way are lost beside them. The signal is the REQUESTs: over the
/// last `ADMIT_SPAN`, new exchanges admitted minus REQUESTs received stays below the limit
/// (`[dhcp] discover-backlog`, default 256: OFFERs the clients did not take up, plus those still
/// on their way, ~60 at 6,000/s with 10 ms round trips), or 50 ms worth of the REQUEST rate if
/// that is more; beyond that decoded DISCOVERs are dropped (clients retry); datagrams that do not
/// decode count neither way. At any rate the clients keep up with, nothing is refused and there is
/// no ramp-up. A limit of 0 admits everything.
#[derive(Debug)]
pub(super) struct Admission {
    /// Start of the current slot.
    start: std::time::Instant,
    cur: usize,
    admitted: [u32; ADMIT_SLOTS],
    requests: [u32; ADMIT_SLOTS],
}

impl Admission {
    pub(super) fn new(now: std::time::Instant) -> Self {
        Admission {
            start: now,
            cur: 0,
            admitted: [0; ADMIT_SLOTS],
            requests: [0; ADMIT_SLOTS],
        }
    }

    fn advance(&mut self, now: std::time::Instant) {
        let slot = ADMIT_SPAN / ADMIT_SLOTS as u32;
        let mut since = now.saturating_duration_since(self.start);
        let mut n = 0;
        while since >= slot && n < ADMIT_SLOTS {
            self.cur = (self.cur + 1) % ADMIT_SLOTS;
            self.admitted[self.cur] = 0;
            self.requests[self.cur] = 0;
            since -= slot;
            n += 1;
        }
        if n == ADMIT_SLOTS {
            self.start = now;
        } else {
            self.start = now - since;
        }
    }

    /// A REQUEST came in at `now`.
    pub(super) fn request(&mut self, now: std::time::Instant) {
        self.advance(now);
        self.requests[self.cur] = self.requests[self.cur].saturating_add(1);
    }

    /// Whether a new exchange arriving at `now` is served under `limit` (0: no limit).
    pub(super) fn admit(&mut self, now: std::time::Instant, limit: u32) -> bool {
        self.advance(now);
        if limit > 0 {
            let admitted: u32 = self.admitted.iter().sum();
            let requests: u32 = self.requests.iter().sum();
            if admitted.saturating_sub(requests) >= limit.max(requests / ADMIT_RTT_SHARE) {
                return false;
            }
        }
        self.admitted[self.cur] = self.admitted[self.cur].saturating_add(1);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// The default of `[dhcp] discover-backlog`.
    const LIMIT: u32 = 256;

    #[test]
    fn the_default_limit_is_the_host_file_default() {
        let v = crate::testutil::config().view;
        assert_eq!(v.discover_backlog, LIMIT);
    }

    #[test]
    fn admission_follows_the_configured_limit_and_zero_means_none() {
        let t0 = Instant::now();
        let mut a = Admission::new(t0);
        // A limit of 10: ten OFFERs nobody takes up, then refusals.
        let served = (0..100).filter(|_| a.admit(t0, 10)).count();
        assert_eq!(served, 10);
        // Raised by a reload: room up to the new limit at once.
        let served = (0..100).filter(|_| a.admit(t0, 25)).count();
        assert_eq!(served, 15);
        // Lowered below what is outstanding: nothing until the span passes.
        assert!(!a.admit(t0, 5));
        // 0: no limit at all.
        let served = (0..100_000).filter(|_| a.admit(t0, 0)).count();
        assert_eq!(served, 100_000);
        // Counting went on meanwhile: a limit set again applies to what was admitted.
        assert!(!a.admit(t0, LIMIT));
        assert!(a.admit(t0 + ADMIT_SPAN + ADMIT_SPAN, LIMIT));
    }

    #[test]
    fn admission_never_refuses_exchanges_that_are_followed_up() {
        let t0 = Instant::now();
        let mut a = Admission::new(t0);
        // 20,000/s for 3 s, each OFFER followed by its REQUEST 10 ms later.
        for i in 0..60_000u64 {
            let t = t0 + Duration::from_micros(50 * i);
            assert!(a.admit(t, LIMIT), "refused exchange {i}");
            if i >= 200 {
                a.request(t);
            }
        }
    }

    #[test]
    fn admission_allows_longer_round_trips_at_high_request_rates() {
        let t0 = Instant::now();
        let mut a = Admission::new(t0);
        // 30,000 DISCOVERs/s for 3 s; each admitted one is followed by its REQUEST 25 ms later
        // (~750 outstanding: above the floor of 256, below 50 ms of the REQUEST rate).
        let mut admitted = vec![false; 90_000];
        let mut refused_late = 0;
        for i in 0..90_000usize {
            let t = t0 + Duration::from_nanos(33_333 * i as u64);
            if i >= 750 && admitted[i - 750] {
                a.request(t);
            }
            admitted[i] = a.admit(t, LIMIT);
            // The first second ramps up (few REQUESTs yet); after it nothing is refused.
            if !admitted[i] && i >= 30_000 {
                refused_late += 1;
            }
        }
        assert_eq!(refused_late, 0);
        // Without follow-ups, what more is admitted stays near 50 ms of the last second's
        // REQUESTs (at most 1,500 here), not unbounded.
        let t = t0 + Duration::from_millis(3000);
        let extra = (0..10_000).filter(|_| a.admit(t, LIMIT)).count() as u32;
        assert!(
            extra > LIMIT && extra <= 30_000 / ADMIT_RTT_SHARE,
            "{extra}"
        );
    }

    #[test]
    fn admission_bounds_offers_nobody_takes_up_and_recovers() {
        let t0 = Instant::now();
        let mut a = Admission::new(t0);
        let mut served = 0;
        for i in 0..10_000u64 {
            if a.admit(t0 + Duration::from_micros(10 * i), LIMIT) {
                served += 1;
            }
        }
        assert_eq!(served, LIMIT);
        // REQUESTs make room again, one each.
        let t = t0 + Duration::from_millis(200);
        for _ in 0..10 {
            a.request(t);
        }
        let again = (0..100).filter(|_| a.admit(t, LIMIT)).count();
        assert_eq!(again, 10);
        // Once the span has passed the unanswered OFFERs no longer count.
        let later = t0 + ADMIT_SPAN + Duration::from_millis(300);
        assert!(a.admit(later, LIMIT));
        // After a long idle gap, all room is back.
        let idle = later + Duration::from_secs(60);
        let n = (0..1000).filter(|_| a.admit(idle, LIMIT)).count();
        assert_eq!(n as u32, LIMIT);
    }
}
