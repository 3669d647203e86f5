//! The log of applied dynamic updates that `dnsd status` shows (kept in memory and in the store).

use hickory_proto::rr::{Name, RecordType};

/// Updates kept for `dnsd status` (in memory and in the store).
pub const JOURNAL_KEEP: usize = crate::store::UPDATES_KEEP;
/// Records listed per update entry (the rest are counted).
const JOURNAL_RECORDS: usize = 16;

/// One applied dynamic update, as `dnsd status` shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct UpdateEntry {
    /// Seconds since the epoch.
    pub time: u64,
    /// Zone origin.
    pub zone: String,
    /// The TSIG key that signed it.
    pub key: String,
    /// Serial before.
    pub from: u32,
    /// Serial after.
    pub serial: u32,
    /// Records added (presentation format; at most 16).
    pub added: Vec<String>,
    /// Records removed (at most 16).
    pub removed: Vec<String>,
    /// Records added and removed in all.
    pub changes: usize,
}

impl UpdateEntry {
    /// The entry for a committed `delta` (RFC 1995 order: old SOA, removed, new SOA, added).
    pub fn new(time: u64, zone: &Name, key: &Name, d: &crate::store::Delta) -> UpdateEntry {
        let body = d.records.get(1..).unwrap_or_default();
        let split = body
            .iter()
            .position(|r| r.record_type() == RecordType::SOA)
            .unwrap_or(body.len());
        let show = |rs: &[hickory_proto::rr::Record]| {
            rs.iter()
                .take(JOURNAL_RECORDS)
                .map(|r| format!("{} {} {} {}", r.name, r.ttl, r.record_type(), r.data))
                .collect::<Vec<_>>()
        };
        let removed = &body[..split];
        let added = body.get(split + 1..).unwrap_or_default();
        UpdateEntry {
            time,
            zone: zone.to_ascii(),
            key: key.to_ascii(),
            from: d.from,
            serial: d.to,
            added: show(added),
            removed: show(removed),
            changes: added.len() + removed.len(),
        }
    }
}
