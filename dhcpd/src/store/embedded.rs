//! Durable lease storage behind a trait, so a shared SQL backend can sit beside the embedded one.
//!
//! The embedded store is redb: each [`LeaseStore::commit`] is one write transaction with immediate
//! durability (fsync), so a lease is on disk before the ACK that announces it leaves. The server
//! hands the store every change that piled up while the previous commit ran (group commit), so
//! one fsync covers many ACKs under load.
//!
//! Leases are keyed by address, and addresses are handed out spread over the pool, so writing each
//! change into the lease table would touch (copy on write) one page per change. A commit appends
//! its changes instead as one record of a journal table (a few pages whatever the group's size).
//! Readers apply the journal over the table, record by record; since every change carries the
//! whole record of its address, what a reader sees of an address is its last journal change, or
//! the table's record when the journal does not name it.
//!
//! Folding the journal into the table therefore needs no single big transaction: once the
//! journal holds [`FOLD`] changes, the writer freezes it (up to record `upto`) with the last
//! change of each address it names, kept in memory since those changes were written, and each
//! following commit also writes the next [`FOLD_SLICE`] of those addresses, in address order (a
//! few neighbouring pages), into the table. The commit that writes the last slice deletes the
//! journal records up to `upto`. Every transaction is atomic and leaves the same view for
//! readers, so a crash at any point of a fold loses nothing; after a restart the whole journal is
//! frozen again (writing a record twice is harmless). A commit thus costs its append plus one
//! bounded slice, instead of an occasional fold of the whole journal (that took ~110-240 ms at
//! 100,000 leases and held back every ACK waiting behind it).
//! Records are a compact binary form; JSON records of earlier versions still read.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;

use redb::{ConcurrencyMode, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use crate::lease::{Change, Lease};

use super::codec;
use super::lease_store::{LeaseStore, Refused, StoreError, io};

/// The database's page cache.
const CACHE: usize = 4 << 20;

const LEASES: TableDefinition<'_, u32, &[u8]> = TableDefinition::new("leases");
/// Commits not yet folded into [`LEASES`], by sequence number.
const JOURNAL: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("journal");
/// Journal changes beyond which the journal is frozen and folded into the lease table.
pub const FOLD: usize = 32_768;
/// Addresses a commit folds into the table while a fold is under way.
pub const FOLD_SLICE: usize = 1024;

/// `CHANGES/SLICE` (the `DHCPD_JOURNAL_FOLD` knob, for tests and experiments): journal changes
/// that start a fold, addresses folded per commit.
pub fn parse_fold_limits(s: &str) -> Option<(usize, usize)> {
    let (a, b) = s.trim().split_once('/')?;
    let (a, b) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (a >= 1 && b >= 1).then_some((a, b))
}

#[derive(Debug)]
pub struct RedbStore {
    db: redb::Database,
    /// Changes in the journal records not frozen yet.
    journaled: usize,
    /// Key of the next journal record.
    next_seq: u64,
    /// The last change of each address named by journal records not frozen yet: its encoded
    /// record, `None` when deleted.
    live: BTreeMap<u32, Option<Box<[u8]>>>,
    /// The fold under way.
    fold: Option<Fold>,
    fold_limits: (usize, usize),
    /// Folds finished since opening.
    folds: u64,
}

/// A frozen part of the journal, written into the lease table a slice per commit.
#[derive(Debug)]
struct Fold {
    /// The last journal record it covers.
    upto: u64,
    /// The last change of each address those records name, in address order.
    items: Vec<(u32, Option<Box<[u8]>>)>,
    /// How many are in the table already.
    done: usize,
    started: std::time::Instant,
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
            // The lease table lives in memory already; the database is only written (and read
            // at start-up), so its page cache stays small (redb's default grows to 1 GiB).
            .set_cache_size(CACHE)
            .create(path)
            .map_err(|e| err(e.to_string()))?;
        let tx = db.begin_write().map_err(|e| err(e.to_string()))?;
        tx.open_table(LEASES).map_err(|e| err(e.to_string()))?;
        tx.open_table(JOURNAL).map_err(|e| err(e.to_string()))?;
        tx.commit().map_err(|e| err(e.to_string()))?;
        let mut s = RedbStore {
            db,
            journaled: 0,
            next_seq: 0,
            live: BTreeMap::new(),
            fold: None,
            fold_limits: (FOLD, FOLD_SLICE),
            folds: 0,
        };
        {
            let tx = s.db.begin_read().map_err(|e| err(e.to_string()))?;
            let t = tx.open_table(JOURNAL).map_err(|e| err(e.to_string()))?;
            for row in t.iter().map_err(|e| err(e.to_string()))? {
                let (k, v) = row.map_err(|e| err(e.to_string()))?;
                let changes = codec::changes(v.value()).map_err(|e| err(e.to_string()))?;
                s.remember(changes.iter());
                s.next_seq = k.value() + 1;
            }
        }
        // Whatever a fold cut short is frozen again (and written again: harmless).
        s.maybe_freeze();
        Ok(s)
    }

    /// The same with other fold limits (tests: many folds from few changes).
    pub fn with_fold_limits(path: &Path, fold: usize, slice: usize) -> Result<Self, StoreError> {
        let mut s = Self::open(path)?;
        s.fold_limits = (fold.max(1), slice.max(1));
        s.maybe_freeze();
        Ok(s)
    }

    /// Notes journal changes written (or found at start).
    fn remember<'a>(&mut self, changes: impl Iterator<Item = &'a Change>) {
        for c in changes {
            let v = match c {
                Change::Put(l) => {
                    let mut v = Vec::with_capacity(64);
                    codec::put_lease(&mut v, l);
                    Some(v.into_boxed_slice())
                }
                Change::Del(_) => None,
                Change::Withdraw { .. } => continue,
            };
            self.live.insert(u32::from(c.ip()), v);
            self.journaled += 1;
        }
    }

    /// Freezes the journal for folding once it is long and no fold is under way.
    fn maybe_freeze(&mut self) {
        if self.fold.is_none() && self.journaled >= self.fold_limits.0 && self.next_seq > 0 {
            let items: Vec<_> = std::mem::take(&mut self.live).into_iter().collect();
            tracing::debug!(
                changes = self.journaled,
                addresses = items.len(),
                upto = self.next_seq - 1,
                "journal fold started"
            );
            self.fold = Some(Fold {
                upto: self.next_seq - 1,
                items,
                done: 0,
                started: std::time::Instant::now(),
            });
            self.journaled = 0;
        }
    }

    /// True while a fold is under way.
    pub fn folding(&self) -> bool {
        self.fold.is_some()
    }

    /// Folds finished since opening.
    pub fn folds(&self) -> u64 {
        self.folds
    }

    /// Writes `changes` in one durable transaction: appended to the journal, with the next
    /// slice of a fold under way.
    fn write(&mut self, changes: &mut dyn Iterator<Item = &Change>) -> Result<(), StoreError> {
        // Offers are not stored here.
        let changes: Vec<&Change> = changes
            .filter(|c| !matches!(c, Change::Withdraw { .. }))
            .collect();
        if changes.is_empty() {
            return Ok(());
        }
        let mut rec = Vec::new();
        codec::put_changes(&mut rec, &mut changes.iter().copied());
        let mut tx = self.db.begin_write().map_err(io)?;
        tx.set_durability(Durability::Immediate).map_err(io)?;
        let mut folded = None;
        {
            let mut j = tx.open_table(JOURNAL).map_err(io)?;
            j.insert(self.next_seq, rec.as_slice()).map_err(io)?;
            if let Some(f) = &self.fold {
                let end = (f.done + self.fold_limits.1).min(f.items.len());
                let mut t = tx.open_table(LEASES).map_err(io)?;
                for (ip, v) in &f.items[f.done..end] {
                    match v {
                        Some(v) => {
                            t.insert(*ip, &v[..]).map_err(io)?;
                        }
                        None => {
                            t.remove(*ip).map_err(io)?;
                        }
                    }
                }
                if end == f.items.len() {
                    j.retain_in(..=f.upto, |_, _| false).map_err(io)?;
                }
                folded = Some(end);
            }
        }
        tx.commit().map_err(io)?;
        self.next_seq += 1;
        self.remember(changes.into_iter());
        if let (Some(end), Some(f)) = (folded, &mut self.fold) {
            f.done = end;
            if end == f.items.len() {
                tracing::debug!(
                    addresses = f.items.len(),
                    ms = f.started.elapsed().as_millis() as u64,
                    "journal fold finished"
                );
                self.fold = None;
                self.folds += 1;
            }
        }
        self.maybe_freeze();
        Ok(())
    }
}

fn decode(k: u32, v: &[u8]) -> Result<Lease, StoreError> {
    let corrupt = |msg: String| StoreError::Corrupt {
        ip: Ipv4Addr::from(k),
        msg,
    };
    if v.first() == Some(&b'{') {
        return serde_json::from_slice(v).map_err(|e| corrupt(e.to_string()));
    }
    let mut r = codec::Reader(v);
    let l = r.lease().map_err(|e| corrupt(e.to_string()))?;
    if u32::from(l.ip) != k {
        return Err(corrupt(format!("record holds {}", l.ip)));
    }
    Ok(l)
}

fn read_all(tx: &redb::ReadTransaction) -> Result<Vec<Lease>, StoreError> {
    let t = tx.open_table(LEASES).map_err(io)?;
    let mut by_ip = std::collections::BTreeMap::new();
    for row in t.iter().map_err(io)? {
        let (k, v) = row.map_err(io)?;
        by_ip.insert(k.value(), decode(k.value(), v.value())?);
    }
    // A database written before the journal existed has no journal table.
    match tx.open_table(JOURNAL) {
        Ok(j) => {
            for row in j.iter().map_err(io)? {
                let (_, v) = row.map_err(io)?;
                for c in codec::changes(v.value())? {
                    match c {
                        Change::Put(l) => {
                            by_ip.insert(u32::from(l.ip), l);
                        }
                        Change::Del(ip) => {
                            by_ip.remove(&u32::from(ip));
                        }
                        Change::Withdraw { .. } => {}
                    }
                }
            }
        }
        Err(redb::TableError::TableDoesNotExist(_)) => {}
        Err(e) => return Err(io(e)),
    }
    Ok(by_ip.into_values().collect())
}

impl LeaseStore for RedbStore {
    fn load(&mut self) -> Result<Vec<Lease>, StoreError> {
        read_all(&self.db.begin_read().map_err(io)?)
    }

    fn commit(&mut self, changes: &[Change]) -> Result<(), StoreError> {
        self.write(&mut changes.iter())
    }

    fn commit_groups(
        &mut self,
        groups: &[&[Change]],
        _now: u64,
    ) -> Result<Vec<Refused>, StoreError> {
        self.write(&mut groups.iter().flat_map(|g| g.iter()))?;
        Ok(Vec::new())
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
mod tests;
