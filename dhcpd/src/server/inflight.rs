//! Which addresses the core task changed after the lease writer last read the shared database.
//!
//! The writer reads what other servers wrote ([`super::msg::Back::Changed`]) after committing
//! every change it had received, but the core keeps deciding meanwhile: a row read before the
//! core's newest change to that address is older than the table, and applying it would undo a
//! lease the database is about to hold (a renewal then looks like a new allocation, which an
//! unreachable database refuses). Each commit carries a sequence number; the writer says up to
//! which one its read is current, and rows about addresses changed later are skipped (the
//! database refuses the later change if another server got there first, and sends its row back).

use std::collections::HashMap;
use std::net::Ipv4Addr;

use crate::lease::Lease;

/// Marks an address changed in the table whose commit is not yet numbered (a ping check runs).
const UNSENT: u64 = u64::MAX;

/// Last commit number per address not yet covered by a read of the database.
#[derive(Debug, Default)]
pub(super) struct InFlight {
    last: u64,
    by_ip: HashMap<Ipv4Addr, u64>,
}

impl InFlight {
    /// Numbers a commit about `ips` (handed to the writer next, in this order).
    pub(super) fn stamp(&mut self, ips: impl IntoIterator<Item = Ipv4Addr>) -> u64 {
        self.last += 1;
        for ip in ips {
            self.by_ip.insert(ip, self.last);
        }
        self.last
    }

    /// Holds `ips` until their commit is stamped: changed in the table, not yet sent.
    pub(super) fn hold(&mut self, ips: impl IntoIterator<Item = Ipv4Addr>) {
        for ip in ips {
            self.by_ip.insert(ip, UNSENT);
        }
    }

    /// Of `rows`, read once every commit up to `upto` was settled, those to apply to the table.
    pub(super) fn current(&mut self, rows: Vec<Lease>, upto: u64) -> Vec<Lease> {
        let rows = rows
            .into_iter()
            .filter(|l| self.by_ip.get(&l.ip).is_none_or(|s| *s <= upto))
            .collect();
        self.by_ip.retain(|_, s| *s > upto);
        rows
    }

    /// Addresses still waiting for a read that covers them.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_ip.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lease::{LeaseState, NEVER};

    fn row(ip: [u8; 4]) -> Lease {
        Lease {
            ip: Ipv4Addr::from(ip),
            client: vec![1],
            key_source: Default::default(),
            hwaddr: vec![],
            hostname: None,
            starts: 0,
            expires: NEVER,
            state: LeaseState::Offered,
        }
    }

    fn ips(rows: &[Lease]) -> Vec<Ipv4Addr> {
        rows.iter().map(|l| l.ip).collect()
    }

    #[test]
    fn a_read_older_than_the_tables_change_is_skipped_for_that_address_only() {
        let mut f = InFlight::default();
        let a = f.stamp([Ipv4Addr::new(10, 0, 0, 1)]);
        let b = f.stamp([Ipv4Addr::new(10, 0, 0, 2)]);
        assert!(b > a);
        // Read after commit `a` only: 10.0.0.2 changed later, its row is stale.
        let got = f.current(
            vec![row([10, 0, 0, 1]), row([10, 0, 0, 2]), row([10, 0, 0, 3])],
            a,
        );
        assert_eq!(
            ips(&got),
            [Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 3)]
        );
        assert_eq!(f.len(), 1);
        // A read after `b` covers it: applied, and nothing is left to track.
        let got = f.current(vec![row([10, 0, 0, 2])], b);
        assert_eq!(ips(&got), [Ipv4Addr::new(10, 0, 0, 2)]);
        assert_eq!(f.len(), 0);
    }

    #[test]
    fn an_address_waiting_on_a_ping_check_is_kept_until_its_commit_is_read() {
        let mut f = InFlight::default();
        let ip = Ipv4Addr::new(10, 0, 0, 9);
        f.hold([ip]);
        let later = f.stamp([Ipv4Addr::new(10, 0, 0, 1)]);
        assert!(f.current(vec![row([10, 0, 0, 9])], later).is_empty());
        let s = f.stamp([ip]);
        assert!(f.current(vec![row([10, 0, 0, 9])], s - 1).is_empty());
        assert_eq!(f.current(vec![row([10, 0, 0, 9])], s).len(), 1);
    }
}
