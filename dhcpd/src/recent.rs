//! The last declines and ping conflicts, kept for the status page: a small bounded ring (pure:
//! the time is passed in by the caller).

use std::collections::VecDeque;
use std::net::Ipv4Addr;

/// How many events the ring keeps.
pub const RECENT: usize = 20;

/// What happened to an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecentKind {
    /// A client sent DHCPDECLINE for it.
    Decline,
    /// It answered the ping check before an offer.
    Conflict,
}

impl RecentKind {
    /// As shown: `decline` or `ping conflict`.
    pub fn as_str(self) -> &'static str {
        match self {
            RecentKind::Decline => "decline",
            RecentKind::Conflict => "ping conflict",
        }
    }
}

/// One decline or conflict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecentEvent {
    /// Unix seconds.
    pub at: u64,
    /// Which.
    pub kind: RecentKind,
    /// The address.
    pub ip: Ipv4Addr,
    /// The client's hardware address (declines), as `aa:bb:..`.
    pub mac: Option<String>,
}

/// The last [`RECENT`] events, newest last.
#[derive(Clone, Debug, Default)]
pub struct Recent {
    ring: VecDeque<RecentEvent>,
}

impl Recent {
    /// Adds `e`, forgetting the oldest beyond [`RECENT`].
    pub fn push(&mut self, e: RecentEvent) {
        if self.ring.len() == RECENT {
            self.ring.pop_front();
        }
        self.ring.push_back(e);
    }

    /// Newest first.
    pub fn newest_first(&self) -> impl Iterator<Item = &RecentEvent> {
        self.ring.iter().rev()
    }

    /// How many are kept.
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// None kept.
    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_twenty_newest_first() {
        let mut r = Recent::default();
        for i in 0..25u8 {
            r.push(RecentEvent {
                at: u64::from(i),
                kind: RecentKind::Decline,
                ip: Ipv4Addr::new(10, 0, 0, i),
                mac: None,
            });
        }
        assert_eq!(r.len(), RECENT);
        let ats: Vec<u64> = r.newest_first().map(|e| e.at).collect();
        assert_eq!(ats, (5..25).rev().collect::<Vec<_>>());
    }
}
