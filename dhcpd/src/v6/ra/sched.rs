//! When to advertise (RFC 4861 6.2.4 and 6.2.6, with radvd's defaults): unsolicited
//! advertisements at random intervals between MinRtrAdvInterval and MaxRtrAdvInterval, the first
//! few at most [`MAX_INITIAL_INTERVAL`] apart; answers to solicitations after a random delay of
//! up to [`MAX_RA_DELAY`], unicast to a soliciting host that has an address (radvd's
//! AdvRASolicitedUnicast), multicast otherwise, never two multicasts within
//! [`MIN_DELAY_BETWEEN_RAS`]. Pure: the caller passes the time and a random seed.

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

/// MaxRtrAdvInterval, radvd's default.
pub const MAX_INTERVAL: Duration = Duration::from_secs(600);
/// MinRtrAdvInterval: 0.33 x MaxRtrAdvInterval, radvd's default.
pub const MIN_INTERVAL: Duration = Duration::from_secs(198);
/// MAX_INITIAL_RTR_ADVERT_INTERVAL.
pub const MAX_INITIAL_INTERVAL: Duration = Duration::from_secs(16);
/// MAX_INITIAL_RTR_ADVERTISEMENTS: after each of the first this many advertisements the next
/// one comes within [`MAX_INITIAL_INTERVAL`].
pub const MAX_INITIAL_ADVERTS: u32 = 3;
/// MIN_DELAY_BETWEEN_RAS.
pub const MIN_DELAY_BETWEEN_RAS: Duration = Duration::from_secs(3);
/// MAX_RA_DELAY_TIME: the longest random wait before answering a solicitation.
pub const MAX_RA_DELAY: Duration = Duration::from_millis(500);
/// Unicast answers waiting at once; more solicitations are answered by the next multicast.
const UNICAST_PENDING: usize = 16;
/// Unicast answers per [`MIN_DELAY_BETWEEN_RAS`] window: a flood of solicitations costs at
/// most this many answers plus one multicast per window.
const UNICAST_PER_WINDOW: u32 = 8;

/// Where an advertisement goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dest {
    /// ff02::1, all nodes on the link.
    AllNodes,
    /// One soliciting host.
    Host(Ipv6Addr),
}

/// One interface's advertisement schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    next_multicast: Instant,
    last_multicast: Option<Instant>,
    multicasts: u32,
    unicast: Vec<(Instant, Ipv6Addr)>,
    window: (Instant, u32),
    rng: u64,
}

impl Schedule {
    /// A schedule whose first advertisement is due at `now` (radvd advertises at once when it
    /// starts on an interface); `seed` drives the random intervals and delays.
    pub fn new(now: Instant, seed: u64) -> Schedule {
        Schedule {
            next_multicast: now,
            last_multicast: None,
            multicasts: 0,
            unicast: Vec::new(),
            window: (now, 0),
            rng: seed | 1,
        }
    }

    /// Uniform in [0, 1) (xorshift64*).
    fn random(&mut self) -> f64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A valid solicitation from `src` arrived at `now`.
    pub fn solicited(&mut self, now: Instant, src: Ipv6Addr) {
        let at = now + MAX_RA_DELAY.mul_f64(self.random());
        if now.saturating_duration_since(self.window.0) >= MIN_DELAY_BETWEEN_RAS {
            self.window = (now, 0);
        }
        if !src.is_unspecified() {
            if self.unicast.iter().any(|(_, a)| *a == src) {
                return;
            }
            if self.unicast.len() < UNICAST_PENDING && self.window.1 < UNICAST_PER_WINDOW {
                self.window.1 += 1;
                self.unicast.push((at, src));
                return;
            }
        }
        let at = match self.last_multicast {
            Some(last) => at.max(last + MIN_DELAY_BETWEEN_RAS),
            None => at,
        };
        self.next_multicast = self.next_multicast.min(at);
    }

    /// The advertisements due at `now`; the schedule moves on as if they were sent.
    pub fn due(&mut self, now: Instant) -> Vec<Dest> {
        let mut out = Vec::new();
        self.unicast.retain(|&(t, a)| {
            let due = t <= now;
            if due {
                out.push(Dest::Host(a));
            }
            !due
        });
        if self.next_multicast <= now {
            out.push(Dest::AllNodes);
            self.last_multicast = Some(now);
            self.multicasts += 1;
            let mut gap = MIN_INTERVAL + (MAX_INTERVAL - MIN_INTERVAL).mul_f64(self.random());
            if self.multicasts <= MAX_INITIAL_ADVERTS {
                gap = gap.min(MAX_INITIAL_INTERVAL);
            }
            self.next_multicast = now + gap;
        }
        out
    }

    /// When [`Schedule::due`] next has something.
    pub fn next_wake(&self) -> Instant {
        self.unicast
            .iter()
            .map(|(t, _)| *t)
            .fold(self.next_multicast, Instant::min)
    }
}
