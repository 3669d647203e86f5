//! The storage contract: what every lease store does, and how it fails.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use crate::lease::{Change, Lease};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened.
    #[error("{path}: cannot open the lease database: {msg}")]
    Open {
        /// Its path.
        path: PathBuf,
        /// Why.
        msg: String,
    },
    /// A read or write failed.
    #[error("lease database: {0}")]
    Io(String),
    /// The (shared) database cannot be reached now.
    #[error("lease database unreachable: {0}")]
    Unavailable(String),
    /// A stored record does not decode.
    #[error("lease database: bad record for {ip}: {msg}")]
    Corrupt {
        /// Its key.
        ip: Ipv4Addr,
        /// Why.
        msg: String,
    },
}

pub(super) fn io(e: impl std::fmt::Display) -> StoreError {
    StoreError::Io(e.to_string())
}

/// A group of changes a shared store would not write: its address is held by another client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// Index of the group in the call.
    pub group: usize,
    /// What the database holds for the group's addresses (`Del` where it has no row).
    pub current: Vec<Change>,
}

/// Where leases live between runs.
pub trait LeaseStore: Send {
    /// Every stored lease.
    fn load(&mut self) -> Result<Vec<Lease>, StoreError>;
    /// Applies all `changes` atomically and durably; returns only once they are on disk.
    fn commit(&mut self, changes: &[Change]) -> Result<(), StoreError>;
    /// True when other servers write the same store: offers are stored too, a write may be
    /// refused, and the local view is refreshed from [`LeaseStore::changed`].
    fn shared(&self) -> bool {
        false
    }
    /// Applies groups of changes in one durable transaction. A shared store refuses a group whose
    /// address another client holds (nothing of that group is written) and says so, and an
    /// expiry another server overtook (it renewed the lease or gave the address on: the row
    /// stands and is returned); the embedded store never refuses.
    fn commit_groups(
        &mut self,
        groups: &[&[Change]],
        now: u64,
    ) -> Result<Vec<Refused>, StoreError> {
        let _ = now;
        let all: Vec<Change> = groups.iter().flat_map(|g| g.iter().cloned()).collect();
        self.commit(&all)?;
        Ok(Vec::new())
    }
    /// Leases other servers changed since the last call (shared stores only).
    fn changed(&mut self) -> Result<Vec<Lease>, StoreError> {
        Ok(Vec::new())
    }
}

impl std::fmt::Debug for dyn LeaseStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LeaseStore")
    }
}
