//! Persistent state in an embedded redb database: the dynamic records of each zone and the
//! (content digest, serial) pair that keeps serials growing across restarts.

use std::path::Path;

use hickory_proto::op::Message;
use hickory_proto::rr::Record;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

const DYNAMIC: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("dynamic");
const SERIAL: TableDefinition<'_, &str, (u64, u32)> = TableDefinition::new("serial");
/// IXFR journal: key "ZONE SEQ" (SEQ zero-padded), value (from serial, to serial, delta as the
/// answer section of a message: old SOA, deleted records, new SOA, added records).
const JOURNAL: TableDefinition<'_, &str, (u32, u32, &[u8])> = TableDefinition::new("journal");
/// The recent dynamic updates as `dnsd status` shows them: key a sequence number, value the
/// entry as JSON (written in the update's own transaction).
const UPDATES: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("updates");
/// Update log entries kept.
pub const UPDATES_KEEP: usize = 64;
/// Journal entries kept per zone.
pub const JOURNAL_KEEP: usize = 64;

/// One journal entry: the change from serial `from` to serial `to`.
#[derive(Debug, Clone, PartialEq)]
pub struct Delta {
    /// Serial before.
    pub from: u32,
    /// Serial after.
    pub to: u32,
    /// Old SOA, deleted records, new SOA, added records (RFC 1995 order).
    pub records: Vec<Record>,
}

/// Store errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Anything from redb.
    #[error("store {path}: {msg}")]
    Db {
        /// The file.
        path: String,
        /// What failed.
        msg: String,
    },
}

/// The store.
#[derive(Debug)]
pub struct Store {
    db: Database,
    path: String,
}

impl Store {
    /// Opens (creating the file and its folder if needed).
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let p = path.display().to_string();
        let err = |m: String| StoreError::Db {
            path: p.clone(),
            msg: m,
        };
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| err(format!("cannot create folder: {e}")))?;
        }
        let db = Database::create(path).map_err(|e| err(e.to_string()))?;
        let s = Store {
            db,
            path: p.clone(),
        };
        // Make sure both tables exist so reads never fail on a fresh file.
        let tx = s.db.begin_write().map_err(|e| err(e.to_string()))?;
        tx.open_table(DYNAMIC).map_err(|e| err(e.to_string()))?;
        tx.open_table(SERIAL).map_err(|e| err(e.to_string()))?;
        tx.open_table(JOURNAL).map_err(|e| err(e.to_string()))?;
        tx.commit().map_err(|e| err(e.to_string()))?;
        Ok(s)
    }

    fn err(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::Db {
            path: self.path.clone(),
            msg: e.to_string(),
        }
    }

    /// Dynamic records of `zone` (empty when none).
    pub fn dynamic(&self, zone: &str) -> Result<Vec<Record>, StoreError> {
        let tx = self.db.begin_read().map_err(|e| self.err(e))?;
        let t = tx.open_table(DYNAMIC).map_err(|e| self.err(e))?;
        let Some(v) = t.get(zone).map_err(|e| self.err(e))? else {
            return Ok(Vec::new());
        };
        let m = Message::from_vec(v.value()).map_err(|e| self.err(format!("zone {zone}: {e}")))?;
        Ok(m.answers)
    }

    /// Stored (digest, serial) of `zone`.
    pub fn serial(&self, zone: &str) -> Result<Option<(u64, u32)>, StoreError> {
        let tx = self.db.begin_read().map_err(|e| self.err(e))?;
        let t = tx.open_table(SERIAL).map_err(|e| self.err(e))?;
        Ok(t.get(zone).map_err(|e| self.err(e))?.map(|v| v.value()))
    }

    /// The journal of `zone`, oldest first.
    pub fn journal(&self, zone: &str) -> Result<Vec<Delta>, StoreError> {
        let tx = self.db.begin_read().map_err(|e| self.err(e))?;
        let t = tx.open_table(JOURNAL).map_err(|e| self.err(e))?;
        let lo = format!("{zone} ");
        let hi = format!("{zone}!");
        let mut out = Vec::new();
        for e in t.range(lo.as_str()..hi.as_str()).map_err(|e| self.err(e))? {
            let (_, v) = e.map_err(|e| self.err(e))?;
            let (from, to, bytes) = v.value();
            let m = Message::from_vec(bytes).map_err(|e| self.err(e))?;
            out.push(Delta {
                from,
                to,
                records: m.answers,
            });
        }
        Ok(out)
    }

    /// The update log, oldest first (at most [`UPDATES_KEEP`] entries).
    pub fn updates(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        let tx = self.db.begin_read().map_err(|e| self.err(e))?;
        let t = match tx.open_table(UPDATES) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(self.err(e)),
        };
        let mut out = Vec::new();
        for e in t.iter().map_err(|e| self.err(e))? {
            let (_, v) = e.map_err(|e| self.err(e))?;
            out.push(v.value().to_vec());
        }
        Ok(out)
    }

    /// Atomically stores new dynamic records (if given), serials and journal deltas.
    pub fn commit(
        &self,
        dynamic: Option<(&str, &[Record])>,
        serials: &[(String, u64, u32)],
    ) -> Result<(), StoreError> {
        self.commit_with_journal(dynamic, serials, &[], None)
    }

    /// [`Store::commit`] plus journal entries `(zone, delta)`, pruned to [`JOURNAL_KEEP`], and
    /// an entry of the update log (pruned to [`UPDATES_KEEP`]).
    pub fn commit_with_journal(
        &self,
        dynamic: Option<(&str, &[Record])>,
        serials: &[(String, u64, u32)],
        deltas: &[(String, Delta)],
        update: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(|e| self.err(e))?;
        if let Some(entry) = update {
            let mut t = tx.open_table(UPDATES).map_err(|e| self.err(e))?;
            let keys: Vec<u64> = t
                .iter()
                .map_err(|e| self.err(e))?
                .filter_map(|e| e.ok().map(|(k, _)| k.value()))
                .collect();
            let next = keys.last().map_or(0, |k| k + 1);
            t.insert(next, entry).map_err(|e| self.err(e))?;
            let excess = (keys.len() + 1).saturating_sub(UPDATES_KEEP);
            for k in keys.iter().take(excess) {
                t.remove(*k).map_err(|e| self.err(e))?;
            }
        }
        {
            let mut j = tx.open_table(JOURNAL).map_err(|e| self.err(e))?;
            for (zone, d) in deltas {
                let lo = format!("{zone} ");
                let hi = format!("{zone}!");
                let keys: Vec<String> = j
                    .range(lo.as_str()..hi.as_str())
                    .map_err(|e| self.err(e))?
                    .filter_map(|e| e.ok().map(|(k, _)| k.value().to_owned()))
                    .collect();
                let seq = keys
                    .last()
                    .and_then(|k| k.rsplit(' ').next())
                    .and_then(|n| n.parse::<u64>().ok())
                    .map_or(0, |n| n + 1);
                let mut m = Message::query();
                m.answers = d.records.clone();
                let bytes = m.to_vec().map_err(|e| self.err(e))?;
                let key = format!("{zone} {seq:020}");
                j.insert(key.as_str(), (d.from, d.to, bytes.as_slice()))
                    .map_err(|e| self.err(e))?;
                let excess = (keys.len() + 1).saturating_sub(JOURNAL_KEEP);
                for k in keys.iter().take(excess) {
                    j.remove(k.as_str()).map_err(|e| self.err(e))?;
                }
            }
        }
        {
            if let Some((zone, recs)) = dynamic {
                let mut m = Message::query();
                m.answers = recs.to_vec();
                let bytes = m.to_vec().map_err(|e| self.err(e))?;
                let mut t = tx.open_table(DYNAMIC).map_err(|e| self.err(e))?;
                t.insert(zone, bytes.as_slice()).map_err(|e| self.err(e))?;
            }
            let mut t = tx.open_table(SERIAL).map_err(|e| self.err(e))?;
            for (zone, d, s) in serials {
                t.insert(zone.as_str(), (*d, *s)).map_err(|e| self.err(e))?;
            }
        }
        tx.commit().map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::A;
    use hickory_proto::rr::{Name, RData};

    #[test]
    fn survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/dnsd.redb");
        let r = Record::from_rdata(
            Name::from_ascii("a.x.").unwrap(),
            60,
            RData::A(A::new(1, 2, 3, 4)),
        );
        {
            let s = Store::open(&p).unwrap();
            assert!(s.dynamic("x.").unwrap().is_empty());
            assert_eq!(s.serial("x.").unwrap(), None);
            s.commit(
                Some(("x.", std::slice::from_ref(&r))),
                &[("x.".into(), 9, 77)],
            )
            .unwrap();
        }
        let s = Store::open(&p).unwrap();
        assert_eq!(s.dynamic("x.").unwrap(), vec![r.clone()]);
        assert_eq!(s.serial("x.").unwrap(), Some((9, 77)));
        for i in 0..(JOURNAL_KEEP as u32 + 5) {
            let d = Delta {
                from: i,
                to: i + 1,
                records: vec![r.clone()],
            };
            s.commit_with_journal(None, &[], &[("x.".into(), d)], None)
                .unwrap();
        }
        let j = s.journal("x.").unwrap();
        assert_eq!(j.len(), JOURNAL_KEEP);
        assert_eq!(
            (j[0].from, j.last().unwrap().to),
            (5, JOURNAL_KEEP as u32 + 5)
        );
        assert!(s.journal("y.").unwrap().is_empty());
    }

    #[test]
    fn update_log_keeps_the_newest_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("dnsd.redb");
        {
            let s = Store::open(&p).unwrap();
            assert!(s.updates().unwrap().is_empty());
            for i in 0..UPDATES_KEEP + 3 {
                s.commit_with_journal(None, &[], &[], Some(format!("{i}").as_bytes()))
                    .unwrap();
            }
        }
        let s = Store::open(&p).unwrap();
        let u = s.updates().unwrap();
        assert_eq!(u.len(), UPDATES_KEEP);
        assert_eq!(u[0], b"3");
        assert_eq!(
            u.last().unwrap(),
            format!("{}", UPDATES_KEEP + 2).as_bytes()
        );
    }
}
