//! DHCPv6 bindings: the in-memory table the decision core works on, and its durable copy in a
//! redb file of its own (`leases6.redb` beside the v4 lease database). Every change the core
//! makes is written (and fsynced by redb's commit) before the REPLY leaves.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv6Addr;
use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

/// Identity association type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IaKind {
    /// IA_NA: a non-temporary address.
    Na,
    /// IA_PD: a delegated prefix.
    Pd,
}

/// A binding's key: the client's DUID, the IA's id and its type.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key6 {
    /// Client DUID (type code included).
    pub duid: Vec<u8>,
    /// IAID.
    pub iaid: u32,
    /// IA_NA or IA_PD.
    pub kind: IaKind,
}

/// State of a binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State6 {
    /// Assigned and replied.
    Bound,
    /// The client declined the address (in use elsewhere): kept out until `expires`.
    Declined,
}

/// One binding: an address (prefix length 128) or a delegated prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease6 {
    /// Who holds it.
    pub key: Key6,
    /// The address or the prefix's first address.
    pub addr: Ipv6Addr,
    /// 128 for an address, the delegated length for a prefix.
    pub prefix_len: u8,
    /// Unix seconds the binding was made or last renewed.
    pub starts: u64,
    /// Unix seconds it ends (valid lifetime).
    pub expires: u64,
    /// Bound or declined.
    pub state: State6,
    /// The client's host name (its Client FQDN label, or its reservation's), if known.
    pub hostname: Option<String>,
}

/// A change to persist before replying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change6 {
    /// Insert or replace.
    Put(Lease6),
    /// Remove.
    Delete(Key6),
}

/// The table of bindings, indexed by key and by address/prefix.
#[derive(Debug, Default)]
pub struct Leases6 {
    by_key: BTreeMap<Key6, Lease6>,
    by_addr: HashMap<(Ipv6Addr, u8), Key6>,
    /// The addresses (prefix length 128) in `by_addr`, as runs.
    held: super::runs::Runs,
    /// No binding ends before this (a lower bound: 0 until the first sweep), so a sweep with
    /// nothing due costs no walk over the table.
    earliest: u64,
}

impl Leases6 {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }
    /// Number of bindings (any state).
    pub fn len(&self) -> usize {
        self.by_key.len()
    }
    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
    /// The binding of one IA.
    pub fn get(&self, k: &Key6) -> Option<&Lease6> {
        self.by_key.get(k)
    }
    /// Who holds an address (prefix length 128) or a prefix.
    pub fn holder(&self, addr: Ipv6Addr, len: u8) -> Option<&Lease6> {
        self.by_addr
            .get(&(addr, len))
            .and_then(|k| self.by_key.get(k))
    }
    /// True when `addr/len` is free at `now` (no binding, or an expired one).
    pub fn is_free(&self, addr: Ipv6Addr, len: u8, now: u64) -> bool {
        self.holder(addr, len).is_none_or(|l| l.expires <= now)
    }
    /// Applies one change.
    pub fn apply(&mut self, c: &Change6) {
        match c {
            Change6::Put(l) => {
                self.earliest = self.earliest.min(l.expires);
                self.remove(&l.key);
                if let Some(old) = self.by_addr.insert((l.addr, l.prefix_len), l.key.clone()) {
                    self.by_key.remove(&old);
                }
                if l.prefix_len == 128 {
                    self.held.insert(u128::from(l.addr));
                }
                self.by_key.insert(l.key.clone(), l.clone());
            }
            Change6::Delete(k) => self.remove(k),
        }
    }
    fn remove(&mut self, k: &Key6) {
        if let Some(old) = self.by_key.remove(k) {
            self.by_addr.remove(&(old.addr, old.prefix_len));
            if old.prefix_len == 128 {
                self.held.remove(u128::from(old.addr));
            }
        }
    }
    /// The first address in `from ..= to` no binding holds (live or ended).
    pub fn first_unheld(&self, from: Ipv6Addr, to: Ipv6Addr) -> Option<Ipv6Addr> {
        self.held
            .first_free(u128::from(from), u128::from(to))
            .map(Ipv6Addr::from)
    }
    /// Whether a binding may have ended by `now` (else [`Leases6::expired`] finds none).
    pub fn may_have_ended(&self, now: u64) -> bool {
        now >= self.earliest
    }
    /// The changes that drop every binding ended before `now`.
    pub fn expired(&mut self, now: u64) -> Vec<Change6> {
        if !self.may_have_ended(now) {
            return Vec::new();
        }
        let mut earliest = u64::MAX;
        let mut ended = Vec::new();
        for l in self.by_key.values() {
            earliest = earliest.min(l.expires);
            if l.expires <= now {
                ended.push(Change6::Delete(l.key.clone()));
            }
        }
        // The ended ones included: until they are gone, the next sweep walks again.
        self.earliest = earliest;
        ended
    }
    /// Every binding, in key order.
    pub fn iter(&self) -> impl Iterator<Item = &Lease6> {
        self.by_key.values()
    }
}

const TABLE: TableDefinition<'static, &[u8], &[u8]> = TableDefinition::new("leases6");

/// Errors of the v6 lease file.
#[derive(Debug, thiserror::Error)]
pub enum Store6Error {
    /// redb failed.
    #[error("v6 lease database: {0}")]
    Db(#[from] redb::Error),
    /// A record could not be decoded.
    #[error("v6 lease database: a record of {0} bytes cannot be read")]
    Corrupt(usize),
    /// The shared PostgreSQL lease database failed (`super::pg`).
    #[error("v6 bindings: {0}")]
    Shared(#[from] crate::store::StoreError),
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(impl From<$t> for Store6Error {
        fn from(e: $t) -> Self { Store6Error::Db(e.into()) }
    })*};
}
from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

fn key_bytes(k: &Key6) -> Vec<u8> {
    let mut v = Vec::with_capacity(5 + k.duid.len());
    v.push(match k.kind {
        IaKind::Na => 0,
        IaKind::Pd => 1,
    });
    v.extend_from_slice(&k.iaid.to_be_bytes());
    v.extend_from_slice(&k.duid);
    v
}

/// Record version 2: the 34 octets of version 1 (written before host names were kept, still
/// read, as without a name), then the version octet and the host name with a length octet.
const V2: u8 = 2;

fn value_bytes(l: &Lease6) -> Vec<u8> {
    let name = l.hostname.as_deref().map_or(&[][..], |h| {
        let b = h.as_bytes();
        &b[..b.len().min(255)]
    });
    let mut v = Vec::with_capacity(36 + name.len());
    v.extend_from_slice(&l.addr.octets());
    v.push(l.prefix_len);
    v.extend_from_slice(&l.starts.to_be_bytes());
    v.extend_from_slice(&l.expires.to_be_bytes());
    v.push(match l.state {
        State6::Bound => 0,
        State6::Declined => 1,
    });
    v.push(V2);
    v.push(name.len() as u8);
    v.extend_from_slice(name);
    v
}

fn decode(k: &[u8], v: &[u8]) -> Option<Lease6> {
    if k.len() < 5 || v.len() < 34 {
        return None;
    }
    let hostname = match &v[34..] {
        [] => None,
        [V2, n, name @ ..] if usize::from(*n) == name.len() => {
            (!name.is_empty()).then(|| String::from_utf8_lossy(name).into_owned())
        }
        _ => return None,
    };
    let kind = match k[0] {
        0 => IaKind::Na,
        1 => IaKind::Pd,
        _ => return None,
    };
    let u64_at = |i: usize| u64::from_be_bytes(v[i..i + 8].try_into().unwrap_or_default());
    Some(Lease6 {
        key: Key6 {
            duid: k[5..].to_vec(),
            iaid: u32::from_be_bytes(k[1..5].try_into().ok()?),
            kind,
        },
        addr: Ipv6Addr::from(<[u8; 16]>::try_from(&v[..16]).ok()?),
        prefix_len: v[16],
        starts: u64_at(17),
        expires: u64_at(25),
        state: if v[33] == 1 {
            State6::Declined
        } else {
            State6::Bound
        },
        hostname,
    })
}

/// The durable copy of the v6 bindings.
#[derive(Clone)]
pub struct Store6 {
    /// Shared by the core and its writer thread (redb runs one write transaction at a time).
    db: std::sync::Arc<Database>,
}

impl std::fmt::Debug for Store6 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store6")
    }
}

impl Store6 {
    /// Opens (or creates) the file.
    pub fn open(path: &Path) -> Result<Self, Store6Error> {
        let db = Database::create(path)?;
        let tx = db.begin_write()?;
        tx.open_table(TABLE)?;
        tx.commit()?;
        Ok(Store6 {
            db: std::sync::Arc::new(db),
        })
    }
    /// Every stored binding.
    pub fn load(&self) -> Result<Vec<Lease6>, Store6Error> {
        load_from(&*self.db)
    }
    /// Writes the changes in one durable transaction.
    pub fn write(&self, changes: &[Change6]) -> Result<(), Store6Error> {
        if changes.is_empty() {
            return Ok(());
        }
        let tx = self.db.begin_write()?;
        {
            let mut t = tx.open_table(TABLE)?;
            for c in changes {
                match c {
                    Change6::Put(l) => {
                        t.insert(key_bytes(&l.key).as_slice(), value_bytes(l).as_slice())?;
                    }
                    Change6::Delete(k) => {
                        t.remove(key_bytes(k).as_slice())?;
                    }
                }
            }
        }
        tx.commit()?;
        Ok(())
    }
}

fn load_from(db: &impl ReadableDatabase) -> Result<Vec<Lease6>, Store6Error> {
    let tx = db.begin_read()?;
    let t = tx.open_table(TABLE)?;
    let mut out = Vec::new();
    for row in t.iter()? {
        let (k, v) = row?;
        out.push(decode(k.value(), v.value()).ok_or(Store6Error::Corrupt(v.value().len()))?);
    }
    Ok(out)
}

/// Every binding in the file at `path`, opened read-only (for `dhcpd leases` without a
/// running daemon).
pub fn read_only(path: &Path) -> Result<Vec<Lease6>, Store6Error> {
    let db = redb::Builder::new().open_read_only(path)?;
    load_from(&db)
}

#[cfg(test)]
#[path = "lease_tests.rs"]
mod tests;
