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
                    // Offers are not stored here.
                    Change::Withdraw { .. } => {}
                }
            }
        }
        tx.commit().map_err(io)
    }
}

const PENDING: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("pending");

/// Changes acknowledged while the shared database was unreachable, kept on local disk (fsync
/// before the ACK) until the database has them, so a restart during an outage loses none.
#[derive(Debug)]
pub struct Spool {
    db: redb::Database,
    path: PathBuf,
}

impl Spool {
    /// Opens (creating) the spool file at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let err = |msg: String| StoreError::Open {
            path: path.to_owned(),
            msg,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
        }
        let db = redb::Database::create(path).map_err(|e| err(e.to_string()))?;
        let tx = db.begin_write().map_err(|e| err(e.to_string()))?;
        tx.open_table(PENDING).map_err(|e| err(e.to_string()))?;
        tx.commit().map_err(|e| err(e.to_string()))?;
        Ok(Spool {
            db,
            path: path.to_owned(),
        })
    }

    /// Its file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends groups of changes durably.
    pub fn push(&mut self, groups: &[Vec<Change>]) -> Result<(), StoreError> {
        let mut tx = self.db.begin_write().map_err(io)?;
        tx.set_durability(Durability::Immediate).map_err(io)?;
        {
            let mut t = tx.open_table(PENDING).map_err(io)?;
            let first = t.last().map_err(io)?.map_or(0, |(k, _)| k.value() + 1);
            for (k, g) in (first..).zip(groups) {
                let v = serde_json::to_vec(g).map_err(io)?;
                t.insert(k, v.as_slice()).map_err(io)?;
            }
        }
        tx.commit().map_err(io)
    }

    /// Every group, oldest first.
    pub fn groups(&self) -> Result<Vec<Vec<Change>>, StoreError> {
        let tx = self.db.begin_read().map_err(io)?;
        let t = tx.open_table(PENDING).map_err(io)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(io)? {
            let (_, v) = row.map_err(io)?;
            out.push(serde_json::from_slice(v.value()).map_err(io)?);
        }
        Ok(out)
    }

    /// Forgets everything (the database has it).
    pub fn clear(&mut self) -> Result<(), StoreError> {
        let mut tx = self.db.begin_write().map_err(io)?;
        tx.set_durability(Durability::Immediate).map_err(io)?;
        tx.delete_table(PENDING).map_err(io)?;
        tx.open_table(PENDING).map_err(io)?;
        tx.commit().map_err(io)
    }

    /// Writes what is spooled to `store`; returns how many groups were written.
    pub fn replay(&mut self, store: &mut dyn LeaseStore, now: u64) -> Result<usize, StoreError> {
        let groups = self.groups()?;
        if groups.is_empty() {
            return Ok(0);
        }
        let slices: Vec<&[Change]> = groups.iter().map(Vec::as_slice).collect();
        for r in store.commit_groups(&slices, now)? {
            tracing::warn!(changes = ?groups[r.group], "a change made while the database was unreachable conflicts with another server's: the database's record stands");
        }
        self.clear()?;
        Ok(groups.len())
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

    #[test]
    fn spool_keeps_groups_in_order_across_reopen_until_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pending.redb");
        let a = vec![Change::Put(lease(1))];
        let b = vec![
            Change::Put(lease(2)),
            Change::Del(Ipv4Addr::new(10, 0, 0, 3)),
        ];
        {
            let mut s = Spool::open(&p).unwrap();
            s.push(std::slice::from_ref(&a)).unwrap();
            s.push(std::slice::from_ref(&b)).unwrap();
        }
        let mut s = Spool::open(&p).unwrap();
        assert_eq!(s.groups().unwrap(), vec![a.clone(), b]);
        // replayed into a store: written, then gone from the spool
        let mut db = RedbStore::open(&dir.path().join("leases.redb")).unwrap();
        assert_eq!(s.replay(&mut db, 0).unwrap(), 2);
        assert!(s.groups().unwrap().is_empty());
        let mut got = db.load().unwrap();
        got.sort_by_key(|l| l.ip);
        assert_eq!(got, vec![lease(1), lease(2)]);
    }
}
