//! Durable lease storage behind a trait, so a shared SQL backend can sit beside the embedded one.
//!
//! The embedded store is redb: each [`LeaseStore::commit`] is one write transaction with immediate
//! durability (fsync), so a lease is on disk before the ACK that announces it leaves. The server
//! hands the store every change that piled up while the previous commit ran (group commit), so
//! one fsync covers many ACKs under load.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use redb::{ConcurrencyMode, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use crate::lease::{Change, Lease};

const LEASES: TableDefinition<'_, u32, &[u8]> = TableDefinition::new("leases");

/// A store failure.
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

fn io(e: impl std::fmt::Display) -> StoreError {
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
    /// address another client holds (nothing of that group is written) and says so; the
    /// embedded store never refuses.
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

/// The embedded redb store.
#[derive(Debug)]
pub struct RedbStore {
    db: redb::Database,
}

impl RedbStore {
    /// Opens (creating when missing) the database at `path`, creating its folder too.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let err = |msg: String| StoreError::Open {
            path: path.to_owned(),
            msg,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
        }
        let db = redb::Builder::new()
            .set_concurrency_mode(ConcurrencyMode::SingleWriter)
            .create(path)
            .map_err(|e| err(e.to_string()))?;
        let tx = db.begin_write().map_err(|e| err(e.to_string()))?;
        tx.open_table(LEASES).map_err(|e| err(e.to_string()))?;
        tx.commit().map_err(|e| err(e.to_string()))?;
        Ok(RedbStore { db })
    }
}

fn decode(k: u32, v: &[u8]) -> Result<Lease, StoreError> {
    serde_json::from_slice(v).map_err(|e| StoreError::Corrupt {
        ip: Ipv4Addr::from(k),
        msg: e.to_string(),
    })
}

fn read_all(tx: &redb::ReadTransaction) -> Result<Vec<Lease>, StoreError> {
    let t = tx.open_table(LEASES).map_err(io)?;
    let mut out = Vec::new();
    for row in t.iter().map_err(io)? {
        let (k, v) = row.map_err(io)?;
        out.push(decode(k.value(), v.value())?);
    }
    Ok(out)
}

impl LeaseStore for RedbStore {
    fn load(&mut self) -> Result<Vec<Lease>, StoreError> {
        read_all(&self.db.begin_read().map_err(io)?)
    }

    fn commit(&mut self, changes: &[Change]) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut tx = self.db.begin_write().map_err(io)?;
        tx.set_durability(Durability::Immediate).map_err(io)?;
        {
            let mut t = tx.open_table(LEASES).map_err(io)?;
            for c in changes {
                match c {
                    Change::Put(l) => {
                        let v = serde_json::to_vec(l).map_err(io)?;
                        t.insert(u32::from(l.ip), v.as_slice()).map_err(io)?;
                    }
                    Change::Del(ip) => {
                        t.remove(u32::from(*ip)).map_err(io)?;
                    }
                }
            }
        }
        tx.commit().map_err(io)
    }
}

/// Reads every lease from a database another process may be writing (`dhcpd leases`).
pub fn read_only(path: &Path) -> Result<Vec<Lease>, StoreError> {
    let db = redb::Builder::new()
        .set_concurrency_mode(ConcurrencyMode::SingleWriter)
        .open_read_only(path)
        .map_err(|e| StoreError::Open {
            path: path.to_owned(),
            msg: e.to_string(),
        })?;
    read_all(&db.begin_read().map_err(io)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lease::LeaseState;

    fn lease(last: u8) -> Lease {
        Lease {
            ip: Ipv4Addr::new(10, 0, 0, last),
            client: vec![1, last],
            hwaddr: vec![last; 6],
            hostname: Some(format!("h{last}")),
            starts: 1,
            expires: 100,
            state: LeaseState::Bound,
        }
    }

    #[test]
    fn committed_leases_survive_reopen_and_deletes_stick() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/leases.redb");
        {
            let mut s = RedbStore::open(&p).unwrap();
            s.commit(&[Change::Put(lease(5)), Change::Put(lease(6))])
                .unwrap();
            s.commit(&[Change::Del(Ipv4Addr::new(10, 0, 0, 5))])
                .unwrap();
        }
        let mut s = RedbStore::open(&p).unwrap();
        assert_eq!(s.load().unwrap(), vec![lease(6)]);
    }

    #[test]
    fn read_only_sees_commits_of_a_live_writer() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("leases.redb");
        let mut s = RedbStore::open(&p).unwrap();
        s.commit(&[Change::Put(lease(7))]).unwrap();
        assert_eq!(read_only(&p).unwrap(), vec![lease(7)]);
    }
}
