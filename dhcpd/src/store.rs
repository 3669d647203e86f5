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
use std::path::{Path, PathBuf};

use redb::{ConcurrencyMode, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use crate::lease::{Change, Lease};

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

/// The binary record forms: a lease is version byte 2, address, state, key source, start,
/// expiry, then client key, hardware address and host name each with a 16-bit length (0xffff: no
/// host name); version 1 (written before the key source was kept) has no key source byte and
/// reads as [`KeySource::Legacy`]. A journal record is a sequence of changes, each `P` + lease or
/// `D` + address.
mod codec {
    use super::{Change, Lease, StoreError};
    use crate::lease::{KeySource, LeaseState};
    use std::net::Ipv4Addr;

    const V1: u8 = 1;
    const V2: u8 = 2;
    const NONE: u16 = u16::MAX;

    fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
        // Client keys, hardware addresses and names are far below 64 KiB (one DHCP option).
        let n = b.len().min(usize::from(NONE - 1));
        out.extend_from_slice(&(n as u16).to_be_bytes());
        out.extend_from_slice(&b[..n]);
    }

    pub(super) fn put_lease(out: &mut Vec<u8>, l: &Lease) {
        out.push(V2);
        out.extend_from_slice(&l.ip.octets());
        out.push(match l.state {
            LeaseState::Offered => 0,
            LeaseState::Bound => 1,
            LeaseState::Released => 2,
            LeaseState::Expired => 3,
            LeaseState::Declined => 4,
        });
        out.push(match l.key_source {
            KeySource::Legacy => 0,
            KeySource::Hardware => 1,
            KeySource::ClientId => 2,
        });
        out.extend_from_slice(&l.starts.to_be_bytes());
        out.extend_from_slice(&l.expires.to_be_bytes());
        put_bytes(out, &l.client);
        put_bytes(out, &l.hwaddr);
        match &l.hostname {
            Some(h) => put_bytes(out, h.as_bytes()),
            None => out.extend_from_slice(&NONE.to_be_bytes()),
        }
    }

    /// Appends the stored changes of `changes`; returns how many.
    pub(super) fn put_changes(
        out: &mut Vec<u8>,
        changes: &mut dyn Iterator<Item = &Change>,
    ) -> usize {
        let mut n = 0;
        for c in changes {
            match c {
                Change::Put(l) => {
                    out.push(b'P');
                    put_lease(out, l);
                }
                Change::Del(ip) => {
                    out.push(b'D');
                    out.extend_from_slice(&ip.octets());
                }
                Change::Withdraw { .. } => continue,
            }
            n += 1;
        }
        n
    }

    pub(super) fn changes(b: &[u8]) -> Result<Vec<Change>, StoreError> {
        let mut r = Reader(b);
        let mut out = Vec::new();
        while !r.0.is_empty() {
            match r.take(1)?[0] {
                b'P' => out.push(Change::Put(r.lease()?)),
                b'D' => out.push(Change::Del(r.ip()?)),
                x => return Err(bad(format!("unknown journal change {x:#04x}"))),
            }
        }
        Ok(out)
    }

    fn bad(msg: String) -> StoreError {
        StoreError::Io(format!("bad record: {msg}"))
    }

    pub(super) struct Reader<'a>(pub &'a [u8]);

    impl Reader<'_> {
        fn take(&mut self, n: usize) -> Result<&[u8], StoreError> {
            if self.0.len() < n {
                return Err(bad("truncated".into()));
            }
            let (a, b) = self.0.split_at(n);
            self.0 = b;
            Ok(a)
        }
        fn u16(&mut self) -> Result<u16, StoreError> {
            let b = self.take(2)?;
            Ok(u16::from_be_bytes([b[0], b[1]]))
        }
        fn u64(&mut self) -> Result<u64, StoreError> {
            let mut a = [0; 8];
            a.copy_from_slice(self.take(8)?);
            Ok(u64::from_be_bytes(a))
        }
        fn ip(&mut self) -> Result<Ipv4Addr, StoreError> {
            let b = self.take(4)?;
            Ok(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
        }
        fn bytes(&mut self) -> Result<Vec<u8>, StoreError> {
            let n = self.u16()?;
            Ok(self.take(usize::from(n))?.to_vec())
        }
        pub(super) fn lease(&mut self) -> Result<Lease, StoreError> {
            let v = self.take(1)?[0];
            if v != V1 && v != V2 {
                return Err(bad(format!("unknown record version {v}")));
            }
            let ip = self.ip()?;
            let state = match self.take(1)?[0] {
                0 => LeaseState::Offered,
                1 => LeaseState::Bound,
                2 => LeaseState::Released,
                3 => LeaseState::Expired,
                4 => LeaseState::Declined,
                x => return Err(bad(format!("unknown lease state {x}"))),
            };
            let key_source = if v == V1 {
                KeySource::Legacy
            } else {
                match self.take(1)?[0] {
                    0 => KeySource::Legacy,
                    1 => KeySource::Hardware,
                    2 => KeySource::ClientId,
                    x => return Err(bad(format!("unknown key source {x}"))),
                }
            };
            let starts = self.u64()?;
            let expires = self.u64()?;
            let client = self.bytes()?;
            let hwaddr = self.bytes()?;
            let hostname = if self.0.get(..2) == Some(&NONE.to_be_bytes()[..]) {
                self.take(2)?;
                None
            } else {
                let b = self.bytes()?;
                Some(String::from_utf8(b).map_err(|_| bad("host name is not UTF-8".into()))?)
            };
            Ok(Lease {
                ip,
                client,
                key_source,
                hwaddr,
                hostname,
                starts,
                expires,
                state,
            })
        }
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
    use crate::lease::{KeySource, LeaseState};

    fn lease(last: u8) -> Lease {
        Lease {
            ip: Ipv4Addr::new(10, 0, 0, last),
            client: vec![1, last],
            key_source: KeySource::ClientId,
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
    fn journal_folds_into_the_table_and_every_change_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("leases.redb");
        let mut want = std::collections::BTreeMap::new();
        {
            let mut s = RedbStore::open(&p).unwrap();
            // enough commits to fold more than once, with deletes crossing the folds
            for i in 0..(FOLD as u32 * 2 + 100) / 50 {
                let mut group = Vec::new();
                for j in 0..50u32 {
                    let n = (i * 50 + j) % 3000;
                    let mut l = lease(0);
                    l.ip = Ipv4Addr::from(0x0a00_0000 + n);
                    l.expires = u64::from(i);
                    l.hostname = (j % 2 == 0).then(|| format!("h{n}"));
                    if j == 49 {
                        group.push(Change::Del(l.ip));
                        want.remove(&l.ip);
                    } else {
                        want.insert(l.ip, l.clone());
                        group.push(Change::Put(l));
                    }
                }
                s.commit_groups(&[&group[..10], &group[10..]], 0).unwrap();
            }
            assert!(s.journaled < FOLD);
            assert_eq!(
                s.load().unwrap(),
                want.values().cloned().collect::<Vec<_>>()
            );
        }
        let mut s = RedbStore::open(&p).unwrap();
        assert_eq!(
            s.load().unwrap(),
            want.values().cloned().collect::<Vec<_>>()
        );
        assert_eq!(
            read_only(&p).unwrap(),
            want.values().cloned().collect::<Vec<_>>()
        );
    }

    fn journal_rows(p: &Path) -> usize {
        let db = redb::Builder::new()
            .set_concurrency_mode(ConcurrencyMode::SingleWriter)
            .open_read_only(p)
            .unwrap();
        let tx = db.begin_read().unwrap();
        let j = tx.open_table(JOURNAL).unwrap();
        j.iter().unwrap().count()
    }

    /// Commits of Puts and Dels over 300 addresses with a fold every 64 changes, 8 addresses a
    /// slice: after every commit - what a restart after `kill -9` at that point would load - the
    /// database reads as exactly what was committed, also when the store is reopened in the
    /// middle of a fold.
    #[test]
    fn a_fold_in_slices_keeps_every_commit_readable_at_every_point() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("leases.redb");
        let mut want = std::collections::BTreeMap::new();
        let mut s = RedbStore::with_fold_limits(&p, 64, 8).unwrap();
        let (mut folds, mut reopened, mut mid_fold_commits) = (0, 0, 0);
        let mut x: u32 = 12345;
        for i in 0..600u32 {
            let mut group = Vec::new();
            for _ in 0..(i % 20 + 1) {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                let n = (x >> 8) % 300;
                let mut l = lease(0);
                l.ip = Ipv4Addr::from(0x0a00_0000 + n);
                l.expires = u64::from(i);
                if x.is_multiple_of(7) {
                    group.push(Change::Del(l.ip));
                    want.remove(&l.ip);
                } else {
                    want.insert(l.ip, l.clone());
                    group.push(Change::Put(l));
                }
            }
            if s.folding() {
                mid_fold_commits += 1;
            }
            let before = s.folds();
            s.commit(&group).unwrap();
            folds += s.folds() - before;
            let all: Vec<Lease> = want.values().cloned().collect();
            assert_eq!(read_only(&p).unwrap(), all, "after commit {i}");
            if s.folding() && i.is_multiple_of(50) {
                // Stopped in the middle of a fold (between two transactions).
                drop(s);
                s = RedbStore::with_fold_limits(&p, 64, 8).unwrap();
                reopened += 1;
                assert_eq!(s.load().unwrap(), all, "reopened after commit {i}");
            }
        }
        assert!(folds > 20, "{folds} folds");
        assert!(mid_fold_commits > 100, "{mid_fold_commits}");
        assert!(reopened > 0);
        // Folds keep the journal short.
        drop(s);
        assert!(journal_rows(&p) < 100, "{} journal rows", journal_rows(&p));
    }

    #[test]
    fn fold_limits_parse() {
        assert_eq!(parse_fold_limits("256/8"), Some((256, 8)));
        assert_eq!(parse_fold_limits(" 1 / 1 "), Some((1, 1)));
        for bad in ["", "256", "0/8", "8/0", "a/b", "-1/2", "1/2/3"] {
            assert_eq!(parse_fold_limits(bad), None, "{bad}");
        }
    }

    #[test]
    fn json_records_of_earlier_versions_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("leases.redb");
        {
            let db = redb::Database::create(&p).unwrap();
            let tx = db.begin_write().unwrap();
            {
                let mut t = tx.open_table(LEASES).unwrap();
                // Those records have no key source.
                let mut v = serde_json::to_value(lease(9)).unwrap();
                v.as_object_mut().unwrap().remove("key_source").unwrap();
                let v = serde_json::to_vec(&v).unwrap();
                t.insert(u32::from(lease(9).ip), v.as_slice()).unwrap();
            }
            tx.commit().unwrap();
        }
        let old = Lease {
            key_source: KeySource::Legacy,
            ..lease(9)
        };
        assert_eq!(read_only(&p).unwrap(), vec![old.clone()]);
        let mut s = RedbStore::open(&p).unwrap();
        s.commit(&[Change::Put(lease(10))]).unwrap();
        assert_eq!(s.load().unwrap(), vec![old, lease(10)]);
    }

    /// A lease record as dhcpd wrote it before the key source was kept (version 1).
    fn v1_record(l: &Lease) -> Vec<u8> {
        let mut v = vec![1];
        v.extend_from_slice(&l.ip.octets());
        v.push(1); // bound
        v.extend_from_slice(&l.starts.to_be_bytes());
        v.extend_from_slice(&l.expires.to_be_bytes());
        for b in [&l.client, &l.hwaddr] {
            v.extend_from_slice(&(b.len() as u16).to_be_bytes());
            v.extend_from_slice(b);
        }
        let h = l.hostname.as_deref().unwrap().as_bytes();
        v.extend_from_slice(&(h.len() as u16).to_be_bytes());
        v.extend_from_slice(h);
        v
    }

    #[test]
    fn version_1_records_in_table_and_journal_load_as_legacy() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("leases.redb");
        let legacy = |last| Lease {
            key_source: KeySource::Legacy,
            ..lease(last)
        };
        // Byte for byte what the previous version wrote: one lease folded into the table, one
        // in the journal (a `P` change), one JSON record of the version before.
        let (a, b) = (legacy(1), legacy(2));
        assert_eq!(
            v1_record(&a),
            [
                &[1, 10, 0, 0, 1, 1][..],
                &1u64.to_be_bytes(),
                &100u64.to_be_bytes(),
                &[0, 2, 1, 1, 0, 6, 1, 1, 1, 1, 1, 1, 0, 2, b'h', b'1'],
            ]
            .concat()
        );
        {
            let db = redb::Database::create(&p).unwrap();
            let tx = db.begin_write().unwrap();
            {
                let mut t = tx.open_table(LEASES).unwrap();
                t.insert(u32::from(a.ip), v1_record(&a).as_slice()).unwrap();
                let mut j = tx.open_table(JOURNAL).unwrap();
                let rec = [&b"P"[..], &v1_record(&b)].concat();
                j.insert(0, rec.as_slice()).unwrap();
            }
            tx.commit().unwrap();
        }
        assert_eq!(read_only(&p).unwrap(), vec![a.clone(), b.clone()]);
        let mut s = RedbStore::open(&p).unwrap();
        assert_eq!(s.journaled, 1);
        // New records carry their source; old ones keep reading as legacy after a write.
        s.commit(&[Change::Put(lease(3))]).unwrap();
        assert_eq!(s.load().unwrap(), vec![a, b, lease(3)]);
    }

    #[test]
    fn key_source_round_trips() {
        for k in [KeySource::Legacy, KeySource::Hardware, KeySource::ClientId] {
            let l = Lease {
                key_source: k,
                hostname: None,
                ..lease(4)
            };
            let mut v = Vec::new();
            codec::put_lease(&mut v, &l);
            assert_eq!(codec::Reader(&v).lease().unwrap(), l);
        }
    }

    #[test]
    fn a_damaged_record_is_an_error_not_a_panic() {
        let mut whole = Vec::new();
        codec::put_changes(&mut whole, &mut [Change::Put(lease(3))].iter());
        assert_eq!(codec::changes(&whole).unwrap(), vec![Change::Put(lease(3))]);
        for cut in 1..whole.len() {
            assert!(codec::changes(&whole[..cut]).is_err(), "cut at {cut}");
        }
        assert!(codec::changes(b"X").is_err());
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
