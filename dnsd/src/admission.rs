//! Who gets a TCP connection slot (issue 19.11): at most [`LIMITS`]`.total` connections, at
//! most `per_client` from one address, and the last `reserve` slots only for the configured
//! secondaries, so one host holding connections open cannot stop a zone transfer. When more
//! than half of the general slots are taken, idle connections are closed after
//! [`TCP_IDLE_SHORT`] instead of the usual idle limit.
//!
//! [`Occupancy`] is the pure count; [`TcpAdmission`] shares it between the accept loop and the
//! connections, whose [`Permit`] gives the slot back when dropped.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A TCP connection idle this long is closed.
pub const TCP_IDLE: Duration = Duration::from_secs(10);
/// The idle limit while slots run short.
pub const TCP_IDLE_SHORT: Duration = Duration::from_secs(2);

/// Slot limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Concurrent TCP connections in all.
    pub total: usize,
    /// Concurrent connections from one address.
    pub per_client: usize,
    /// Slots only the configured secondaries may take.
    pub reserve: usize,
}

/// The limits dnsd runs with.
pub const LIMITS: Limits = Limits {
    total: 128,
    per_client: 16,
    reserve: 16,
};

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Every slot open to this client is taken.
    #[error("too many TCP connections")]
    Full,
    /// This address already holds its share.
    #[error("too many TCP connections from this address")]
    ClientCap,
}

/// Connections open, in all and per address.
#[derive(Debug, Default)]
pub struct Occupancy {
    total: usize,
    by_client: HashMap<IpAddr, usize>,
}

impl Occupancy {
    /// Takes a slot for `ip` (`secondary`: a configured secondary, which may use the reserve).
    pub fn admit(&mut self, l: &Limits, ip: IpAddr, secondary: bool) -> Result<(), Refusal> {
        let open_to = if secondary {
            l.total
        } else {
            l.total.saturating_sub(l.reserve)
        };
        if self.total >= open_to {
            return Err(Refusal::Full);
        }
        let n = self.by_client.entry(ip).or_insert(0);
        if *n >= l.per_client {
            return Err(Refusal::ClientCap);
        }
        *n += 1;
        self.total += 1;
        Ok(())
    }

    /// Gives back a slot of `ip`.
    pub fn release(&mut self, ip: IpAddr) {
        if let Some(n) = self.by_client.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.by_client.remove(&ip);
            }
            self.total -= 1;
        }
    }

    /// Connections open.
    pub fn total(&self) -> usize {
        self.total
    }

    /// How long a connection may stay idle now: short once more than half of the general
    /// slots are taken.
    pub fn idle_limit(&self, l: &Limits) -> Duration {
        if self.total * 2 > l.total.saturating_sub(l.reserve) {
            TCP_IDLE_SHORT
        } else {
            TCP_IDLE
        }
    }
}

/// The shared occupancy.
#[derive(Debug)]
pub struct TcpAdmission {
    limits: Limits,
    occ: Mutex<Occupancy>,
}

/// A taken slot, given back on drop.
#[derive(Debug)]
pub struct Permit {
    adm: Arc<TcpAdmission>,
    ip: IpAddr,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.adm.lock().release(self.ip);
    }
}

impl TcpAdmission {
    /// No connection open yet.
    pub fn new(limits: Limits) -> TcpAdmission {
        TcpAdmission {
            limits,
            occ: Mutex::new(Occupancy::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Occupancy> {
        self.occ.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A slot for a connection from `ip`, or why not.
    pub fn admit(self: &Arc<Self>, ip: IpAddr, secondary: bool) -> Result<Permit, Refusal> {
        self.lock().admit(&self.limits, ip, secondary)?;
        Ok(Permit {
            adm: self.clone(),
            ip,
        })
    }

    /// The idle limit for connections now.
    pub fn idle_limit(&self) -> Duration {
        self.lock().idle_limit(&self.limits)
    }

    /// Connections open.
    pub fn open(&self) -> usize {
        self.lock().total()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Limits = Limits {
        total: 10,
        per_client: 3,
        reserve: 2,
    };

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, n])
    }

    #[test]
    fn one_address_gets_its_share_and_no_more() {
        let mut o = Occupancy::default();
        for _ in 0..3 {
            o.admit(&L, ip(1), false).unwrap();
        }
        assert_eq!(o.admit(&L, ip(1), false), Err(Refusal::ClientCap));
        o.admit(&L, ip(2), false).unwrap();
        o.release(ip(1));
        o.admit(&L, ip(1), false).unwrap();
        assert_eq!(o.total(), 4);
    }

    #[test]
    fn the_reserve_is_for_secondaries() {
        let mut o = Occupancy::default();
        for n in 1..=8 {
            o.admit(&L, ip(n), false).unwrap();
        }
        assert_eq!(o.admit(&L, ip(9), false), Err(Refusal::Full));
        o.admit(&L, ip(100), true).unwrap();
        o.admit(&L, ip(100), true).unwrap();
        assert_eq!(o.admit(&L, ip(100), true), Err(Refusal::Full));
        // Releasing an address that holds nothing changes nothing.
        o.release(ip(50));
        assert_eq!(o.total(), 10);
    }

    #[test]
    fn idle_limit_shortens_when_slots_run_short() {
        let mut o = Occupancy::default();
        for n in 1..=4 {
            o.admit(&L, ip(n), false).unwrap();
        }
        assert_eq!(o.idle_limit(&L), TCP_IDLE);
        o.admit(&L, ip(5), false).unwrap();
        assert_eq!(o.idle_limit(&L), TCP_IDLE_SHORT);
        o.release(ip(5));
        assert_eq!(o.idle_limit(&L), TCP_IDLE);
    }

    #[test]
    fn permits_give_their_slot_back() {
        let a = Arc::new(TcpAdmission::new(L));
        let p: Vec<Permit> = (0..3).map(|_| a.admit(ip(1), false).unwrap()).collect();
        assert_eq!(a.admit(ip(1), false).unwrap_err(), Refusal::ClientCap);
        drop(p);
        assert_eq!(a.open(), 0);
        assert!(a.admit(ip(1), false).is_ok());
    }
}
