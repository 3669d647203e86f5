//! Dynamic DNS for DHCPv6 IA_NA bindings: AAAA and ip6.arpa PTR records with a DHCID of type 2
//! over the client's DUID (RFC 4701 section 3.3), under the same RFC 4703 rules as v4.
//!
//! The v6 core reports only what happened to its bindings ([`Event6`], sent after the change is
//! durable and the REPLY is on its way, never waiting for a full queue). This side remembers
//! which name it published for which binding in a table of its own (`ddns6.redb` beside the
//! lease files): the v6 bindings carry no name, and a release, an expiry or a restart must still
//! find what to remove. The table is written before an addition and cleared after a removal, so
//! after a crash it names at most records that are gone already (their removal is refused by
//! the DHCID prerequisite or finds nothing), never records it has forgotten.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv6Addr};
use std::path::Path;
use std::sync::Arc;

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::mpsc;

use super::{Job, Updater};
use crate::decide::ClientId;

/// What happened to a DHCPv6 binding, as far as DNS is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event6 {
    /// An IA_NA binding was made or extended. `name` is the host label it asks for (its Client
    /// FQDN option or its reservation); `None` keeps the name it has, as a v4 renewal that names
    /// no host does.
    Bound {
        /// The client's DUID.
        duid: Vec<u8>,
        /// The IA's id.
        iaid: u32,
        /// The bound address.
        addr: Ipv6Addr,
        /// Host label.
        name: Option<String>,
    },
    /// The binding ended: released, declined, expired or taken over.
    Unbound {
        /// The client's DUID.
        duid: Vec<u8>,
        /// The IA's id.
        iaid: u32,
    },
    /// The IA_NA bindings alive when the server started: the names of any others go (they
    /// ended while it was down, or their removal was lost with the process).
    Live(Vec<(Vec<u8>, u32)>),
}

/// A published name: the address its records point to and the host label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// Address of the AAAA and PTR records.
    pub addr: Ipv6Addr,
    /// Host label (under the forward zone).
    pub name: String,
}

/// A binding: DUID and IAID.
type Key = (Vec<u8>, u32);

/// One step of handling an event, in the order to run them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Act {
    /// Remove these records (RFC 4703 removal steps).
    Remove(Job),
    /// Remember that the binding's name is published (before adding it).
    Remember(Vec<u8>, u32, Published),
    /// Add these records.
    Add(Job),
    /// Forget the binding's name (after removing it).
    Forget(Vec<u8>, u32),
}

/// The DHCID identity of a DHCPv6 client: type 2, its DUID.
pub fn client_id(duid: &[u8]) -> ClientId {
    ClientId {
        kind: 2,
        data: duid.to_vec(),
    }
}

fn job(add: bool, duid: &[u8], p: &Published) -> Job {
    Job {
        add,
        name: p.name.clone(),
        ip: IpAddr::V6(p.addr),
        id: client_id(duid),
    }
}

/// What to do about `e`, given the names published now. Pure.
pub fn plan(published: &BTreeMap<Key, Published>, e: &Event6) -> Vec<Act> {
    let gone = |(duid, iaid): &Key, p: &Published| {
        vec![
            Act::Remove(job(false, duid, p)),
            Act::Forget(duid.clone(), *iaid),
        ]
    };
    match e {
        Event6::Bound {
            duid,
            iaid,
            addr,
            name,
        } => {
            let key = (duid.clone(), *iaid);
            let now = published.get(&key);
            let Some(name) = name.clone().or_else(|| now.map(|p| p.name.clone())) else {
                return Vec::new();
            };
            let want = Published { addr: *addr, name };
            if now == Some(&want) {
                // Published already (as a v4 renewal with the same name adds nothing).
                return Vec::new();
            }
            let mut acts = Vec::new();
            if let Some(old) = now {
                acts.push(Act::Remove(job(false, duid, old)));
            }
            acts.push(Act::Remember(duid.clone(), *iaid, want.clone()));
            acts.push(Act::Add(job(true, duid, &want)));
            acts
        }
        Event6::Unbound { duid, iaid } => {
            let key = (duid.clone(), *iaid);
            published
                .get(&key)
                .map(|p| gone(&key, p))
                .unwrap_or_default()
        }
        Event6::Live(keys) => {
            let live: BTreeSet<&Key> = keys.iter().collect();
            published
                .iter()
                .filter(|(k, _)| !live.contains(k))
                .flat_map(|(k, p)| gone(k, p))
                .collect()
        }
    }
}

/// Errors of the names table.
#[derive(Debug, thiserror::Error)]
pub enum Names6Error {
    /// redb failed.
    #[error("dynamic DNS names table: {0}")]
    Db(#[from] redb::Error),
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(impl From<$t> for Names6Error {
        fn from(e: $t) -> Self { Names6Error::Db(e.into()) }
    })*};
}
from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

const TABLE: TableDefinition<'static, &[u8], &[u8]> = TableDefinition::new("ddns6");

fn key_bytes(duid: &[u8], iaid: u32) -> Vec<u8> {
    let mut v = iaid.to_be_bytes().to_vec();
    v.extend_from_slice(duid);
    v
}

fn decode(k: &[u8], v: &[u8]) -> Option<(Key, Published)> {
    let iaid = u32::from_be_bytes(k.get(..4)?.try_into().ok()?);
    let addr = Ipv6Addr::from(<[u8; 16]>::try_from(v.get(..16)?).ok()?);
    let name = std::str::from_utf8(v.get(16..)?).ok()?.to_owned();
    Some(((k[4..].to_vec(), iaid), Published { addr, name }))
}

/// The names published for DHCPv6 bindings, in memory and in their file.
pub struct Names6 {
    db: Arc<Database>,
    map: BTreeMap<Key, Published>,
}

impl std::fmt::Debug for Names6 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Names6")
            .field("published", &self.map.len())
            .finish()
    }
}

impl Names6 {
    /// Opens (or creates) the file and reads it.
    pub fn open(path: &Path) -> Result<Self, Names6Error> {
        let db = Database::create(path)?;
        let tx = db.begin_write()?;
        tx.open_table(TABLE)?;
        tx.commit()?;
        let mut map = BTreeMap::new();
        {
            let tx = db.begin_read()?;
            let t = tx.open_table(TABLE)?;
            for row in t.iter()? {
                let (k, v) = row?;
                match decode(k.value(), v.value()) {
                    Some((k, p)) => {
                        map.insert(k, p);
                    }
                    None => tracing::warn!("dynamic DNS names table: unreadable record skipped"),
                }
            }
        }
        Ok(Names6 {
            db: Arc::new(db),
            map,
        })
    }

    /// What is published now.
    pub fn published(&self) -> &BTreeMap<Key, Published> {
        &self.map
    }

    /// Writes one record (or its removal) on a blocking thread: dhcpd's runtime has one thread,
    /// which also sends the replies, and a commit waits for the disk.
    async fn write(&self, duid: &[u8], iaid: u32, p: Option<&Published>) {
        let db = Arc::clone(&self.db);
        let k = key_bytes(duid, iaid);
        let v = p.map(|p| {
            let mut v = p.addr.octets().to_vec();
            v.extend_from_slice(p.name.as_bytes());
            v
        });
        let done = tokio::task::spawn_blocking(move || write(&db, &k, v.as_deref())).await;
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "dynamic DNS names table not written"),
            Err(e) => tracing::warn!(error = %e, "dynamic DNS names table not written"),
        }
    }

    async fn remember(&mut self, duid: &[u8], iaid: u32, p: Published) {
        self.write(duid, iaid, Some(&p)).await;
        self.map.insert((duid.to_vec(), iaid), p);
    }

    async fn forget(&mut self, duid: &[u8], iaid: u32) {
        self.write(duid, iaid, None).await;
        self.map.remove(&(duid.to_vec(), iaid));
    }
}

/// One durable insert (`Some`) or removal (`None`) of a record.
fn write(db: &Database, k: &[u8], v: Option<&[u8]>) -> Result<(), Names6Error> {
    let mut tx = db.begin_write()?;
    tx.set_durability(Durability::Immediate)?;
    {
        let mut t = tx.open_table(TABLE)?;
        match v {
            Some(v) => {
                t.insert(k, v)?;
            }
            None => {
                t.remove(k)?;
            }
        }
    }
    tx.commit()?;
    Ok(())
}

/// The DHCPv6 side of the update task: its events and its names table.
#[derive(Debug)]
pub struct Publisher {
    /// Events from the v6 core.
    pub rx: mpsc::Receiver<Event6>,
    /// What is published.
    pub names: Names6,
}

impl Publisher {
    /// Handles one event: its updates, one after the other, and the table.
    pub async fn handle(&mut self, up: &Updater, e: &Event6) {
        for act in plan(self.names.published(), e) {
            match act {
                Act::Remove(j) | Act::Add(j) => up.apply_job(&j).await,
                Act::Remember(duid, iaid, p) => self.names.remember(&duid, iaid, p).await,
                Act::Forget(duid, iaid) => self.names.forget(&duid, iaid).await,
            }
        }
    }
}

#[cfg(test)]
mod tests;
