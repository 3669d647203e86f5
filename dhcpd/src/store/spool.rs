//! The outage spool of a shared store: changes acknowledged while the database was unreachable,
//! on local disk until the database has them.

use std::path::{Path, PathBuf};

use redb::{Durability, ReadableDatabase, ReadableTable, TableDefinition};

use crate::lease::Change;

use super::lease_store::{LeaseStore, StoreError, io};

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
