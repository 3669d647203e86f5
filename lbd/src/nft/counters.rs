//! lbd's named counters: what each counts, their names, and parsing `nft -j list counters`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;

/// What a kernel counter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CounterKind {
    /// New connections DNATed to the backend (the counter's packets).
    Connections,
    /// Bytes (IP packets) of those connections towards the backend.
    ToBackend,
    /// Bytes (IP packets) of those connections from the backend.
    FromBackend,
}

impl CounterKind {
    /// Every kind.
    pub const ALL: [CounterKind; 3] = [
        CounterKind::Connections,
        CounterKind::ToBackend,
        CounterKind::FromBackend,
    ];

    pub(super) fn suffix(self) -> &'static str {
        match self {
            CounterKind::Connections => "conns",
            CounterKind::ToBackend => "to",
            CounterKind::FromBackend => "from",
        }
    }
}

/// The (service, backend, kind) a kernel counter counts.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CounterKey {
    /// Service name.
    pub service: String,
    /// Backend address.
    pub backend: SocketAddr,
    /// What is counted.
    pub kind: CounterKind,
}

/// The counter object's name for `key`: the service name with every byte outside `[A-Za-z0-9]`
/// written `_xx` (so distinct services never share a name), the backend, the kind.
pub fn counter_name(key: &CounterKey) -> String {
    let mut name = String::from("c_");
    for b in key.service.bytes() {
        if b.is_ascii_alphanumeric() {
            name.push(char::from(b));
        } else {
            let _ = write!(name, "_{b:02x}");
        }
    }
    match key.backend.ip() {
        std::net::IpAddr::V4(a) => {
            let o = a.octets();
            let _ = write!(name, "__{}_{}_{}_{}", o[0], o[1], o[2], o[3]);
        }
        // IPv6: `6` then the eight groups in hex (four numbers never start an IPv6 name).
        std::net::IpAddr::V6(a) => {
            name.push_str("__6");
            for g in a.segments() {
                let _ = write!(name, "_{g:x}");
            }
        }
    }
    let _ = write!(name, "_{}_{}", key.backend.port(), key.kind.suffix());
    name
}

/// Value of a kernel counter as lbd reads it: packets for [`CounterKind::Connections`], bytes
/// otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CounterValue {
    /// Packets counted.
    pub packets: u64,
    /// Bytes counted.
    pub bytes: u64,
}

impl CounterValue {
    /// The figure that matters for `kind`.
    pub fn of(self, kind: CounterKind) -> u64 {
        match kind {
            CounterKind::Connections => self.packets,
            CounterKind::ToBackend | CounterKind::FromBackend => self.bytes,
        }
    }
}

/// Why `nft -j list counters` output could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CounterParseError {
    /// The output is not JSON.
    #[error("nft -j output is not JSON: {0}")]
    NotJson(String),
    /// The document has no `nftables` array.
    #[error("nft -j output has no `nftables` array")]
    NoArray,
    /// A counter lacks a field.
    #[error("nft -j counter without name/packets/bytes: {0}")]
    Incomplete(String),
}

/// Parses `nft -j list counters`: counter name -> value of the counters in lbd's tables
/// (`ip lbd` and `ip6 lbd`; their names never clash: [`counter_name`]); other tables' counters
/// and other objects are skipped.
pub fn parse_counters(json: &str) -> Result<BTreeMap<String, CounterValue>, CounterParseError> {
    let v: serde_json::Value =
        serde_json::from_str(json).map_err(|e| CounterParseError::NotJson(e.to_string()))?;
    let items = v
        .get("nftables")
        .and_then(|x| x.as_array())
        .ok_or(CounterParseError::NoArray)?;
    let mut out = BTreeMap::new();
    for c in items.iter().filter_map(|i| i.get("counter")) {
        if c.get("table").and_then(|t| t.as_str()) != Some("lbd")
            || !matches!(c.get("family").and_then(|t| t.as_str()), Some("ip" | "ip6"))
        {
            continue;
        }
        let (Some(name), Some(packets), Some(bytes)) = (
            c.get("name").and_then(|x| x.as_str()),
            c.get("packets").and_then(serde_json::Value::as_u64),
            c.get("bytes").and_then(serde_json::Value::as_u64),
        ) else {
            return Err(CounterParseError::Incomplete(c.to_string()));
        };
        out.insert(name.to_owned(), CounterValue { packets, bytes });
    }
    Ok(out)
}

/// A replacement of lbd's table by an apply, as the counter totals need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replacement {
    /// The `nft` that applied it (and reads the counters).
    pub nft: String,
    /// The counters read just before, when the replacement deleted some (`None` otherwise, or
    /// when that reading failed).
    pub before: Option<BTreeMap<String, CounterValue>>,
    /// The counters it deleted.
    pub gone: Vec<String>,
    /// The counters the table holds now, and what each counts.
    pub counters: BTreeMap<String, CounterKey>,
}
