//! Compiled zones: the host-table records, extra zone files and dynamic records of each zone,
//! indexed by lower-case owner name, with the SOA serial the store decided.
//!
//! Built off the packet path at start, on reload and after each dynamic update, then swapped in
//! whole (readers never see a half-built zone).

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::str::FromStr;
use std::sync::Arc;

use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, PTR, SOA};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hostfile::{DnsView, RecordData, Zone};

/// Zone build failure (bad name from the view or a conflicting zone file).
#[derive(Debug, thiserror::Error)]
pub enum ZoneError {
    /// A name that hickory cannot parse.
    #[error("`{0}` is not a valid domain name: {1}")]
    Name(String, String),
    /// A zone file record clashes with a host-table record.
    #[error("{file}: {name} {rtype} conflicts with the host table's records for {name}")]
    Conflict {
        /// The zone file.
        file: String,
        /// Owner.
        name: String,
        /// Type in the zone file.
        rtype: String,
    },
    /// A zone file that cannot be read or parsed.
    #[error("{0}")]
    File(String),
}

/// Parses an absolute name and lower-cases it.
pub fn name(s: &str) -> Result<Name, ZoneError> {
    let mut n = Name::from_str(s).map_err(|e| ZoneError::Name(s.to_owned(), e.to_string()))?;
    n.set_fqdn(true);
    Ok(n.to_lowercase())
}

/// The records of a zone as given by configuration (host table + zone files), before the
/// dynamic records and the serial are added.
#[derive(Debug, Clone)]
pub struct ZoneSource {
    /// Origin, lower case, absolute.
    pub origin: Name,
    /// SOA without the serial (serial 0).
    pub soa: Record,
    /// Static records (host table and zone files).
    pub records: Vec<Record>,
}

/// A zone ready to answer from.
#[derive(Debug)]
pub struct ZoneData {
    /// Origin, lower case.
    pub origin: Name,
    /// SOA with the current serial.
    pub soa: Record,
    /// Every record (SOA included) by lower-case owner, sorted canonically.
    pub nodes: BTreeMap<Name, Vec<Record>>,
    /// Owners defined by configuration: dynamic updates may not touch them.
    pub static_names: BTreeSet<Name>,
    /// The dynamic records (persisted in the store).
    pub dynamic: Vec<Record>,
}

impl ZoneData {
    /// Current serial.
    pub fn serial(&self) -> u32 {
        match &self.soa.data {
            RData::SOA(s) => s.serial,
            _ => 0,
        }
    }

    /// The SOA for the authority section of negative answers (TTL capped by the minimum).
    pub fn negative_soa(&self) -> Record {
        let mut r = self.soa.clone();
        if let RData::SOA(s) = &r.data {
            r.ttl = r.ttl.min(s.minimum);
        }
        r
    }

    /// Records of `rtype` at `owner` (lower case).
    pub fn rrset(&self, owner: &Name, rtype: RecordType) -> impl Iterator<Item = &Record> {
        self.nodes
            .get(owner)
            .into_iter()
            .flatten()
            .filter(move |r| r.record_type() == rtype)
    }

    /// True when some owner lies strictly below `owner` (an empty non-terminal when `owner`
    /// itself has no records).
    pub fn has_descendant(&self, owner: &Name) -> bool {
        self.nodes
            .range(owner.clone()..)
            .find(|(k, _)| *k != owner)
            .is_some_and(|(k, _)| owner.zone_of(k))
    }

    /// All records in transfer order: SOA first, then the rest (SOA not repeated).
    pub fn all_records(&self) -> Vec<Record> {
        let mut v = vec![self.soa.clone()];
        for rs in self.nodes.values() {
            v.extend(
                rs.iter()
                    .filter(|r| r.record_type() != RecordType::SOA)
                    .cloned(),
            );
        }
        v
    }
}

/// All the zones we are authoritative for.
#[derive(Debug, Default)]
pub struct Catalog {
    /// Zones, any order.
    pub zones: Vec<Arc<ZoneData>>,
}

impl Catalog {
    /// The zone holding `qname` (longest origin match).
    pub fn find(&self, qname: &Name) -> Option<&Arc<ZoneData>> {
        self.zones
            .iter()
            .filter(|z| z.origin.zone_of(qname))
            .max_by_key(|z| z.origin.num_labels())
    }

    /// The zone whose origin is exactly `origin`.
    pub fn get(&self, origin: &Name) -> Option<&Arc<ZoneData>> {
        self.zones.iter().find(|z| &z.origin == origin)
    }
}

fn rdata(d: &RecordData) -> Result<RData, ZoneError> {
    Ok(match d {
        RecordData::A(ip) => RData::A(A(*ip)),
        RecordData::Aaaa(ip) => RData::AAAA(AAAA(*ip)),
        RecordData::Cname(n) => RData::CNAME(CNAME(name(n)?)),
        RecordData::Ptr(n) => RData::PTR(PTR(name(n)?)),
        RecordData::Ns(n) => RData::NS(NS(name(n)?)),
    })
}

/// The configured zones of the view (without zone files), serial 0.
pub fn sources(view: &DnsView) -> Result<Vec<ZoneSource>, ZoneError> {
    view.zones.iter().map(source).collect()
}

fn source(z: &Zone) -> Result<ZoneSource, ZoneError> {
    let origin = name(&z.origin)?;
    let soa = Record::from_rdata(
        origin.clone(),
        z.soa.ttl,
        RData::SOA(SOA::new(
            name(&z.soa.mname)?,
            name(&z.soa.rname)?,
            0,
            z.soa.refresh as i32,
            z.soa.retry as i32,
            z.soa.expire as i32,
            z.soa.minimum,
        )),
    );
    let mut records = Vec::with_capacity(z.records.len());
    for r in &z.records {
        records.push(Record::from_rdata(name(&r.name)?, r.ttl, rdata(&r.data)?));
    }
    Ok(ZoneSource {
        origin,
        soa,
        records,
    })
}

/// A stable 64-bit digest (FNV-1a) of the zone content apart from the serial: the store keeps
/// it beside the serial to know whether the content changed across restarts and reloads.
pub fn digest(src: &ZoneSource, dynamic: &[Record]) -> u64 {
    let mut lines: Vec<String> = src
        .records
        .iter()
        .chain(dynamic)
        .map(|r| {
            format!(
                "{} {} {} {}",
                r.name.to_lowercase(),
                r.ttl,
                r.record_type(),
                r.data
            )
        })
        .collect();
    lines.sort();
    lines.push(format!("{}", src.soa.data));
    lines.push(src.soa.ttl.to_string());
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for l in &lines {
        for b in l.bytes().chain([b'\n']) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// The serial to publish: unchanged content keeps the stored serial; changed content gets a
/// serial greater than the stored one (RFC 1982) and at least the current Unix time, so it
/// also grows across a lost store.
pub fn next_serial(stored: Option<(u64, u32)>, digest: u64, now_unix: u64) -> u32 {
    let clock = u32::try_from(now_unix).unwrap_or(u32::MAX);
    match stored {
        Some((d, s)) if d == digest => s,
        Some((_, s)) => {
            let bumped = s.wrapping_add(1);
            // clock is "greater" than s in serial arithmetic when the difference is < 2^31.
            if clock.wrapping_sub(s) != 0 && clock.wrapping_sub(s) < 0x8000_0000 {
                clock
            } else {
                bumped
            }
        }
        None => clock.max(1),
    }
}

/// Builds a zone from its source, dynamic records and serial.
pub fn build(src: &ZoneSource, dynamic: Vec<Record>, serial: u32) -> ZoneData {
    let mut soa = src.soa.clone();
    if let RData::SOA(s) = &mut soa.data {
        s.serial = serial;
    }
    let mut nodes: BTreeMap<Name, Vec<Record>> = BTreeMap::new();
    let mut static_names = BTreeSet::new();
    nodes
        .entry(src.origin.clone())
        .or_default()
        .push(soa.clone());
    static_names.insert(src.origin.clone());
    for r in &src.records {
        let mut r = r.clone();
        r.name = r.name.to_lowercase();
        r.dns_class = DNSClass::IN;
        static_names.insert(r.name.clone());
        push_unique(nodes.entry(r.name.clone()).or_default(), r);
    }
    for r in &dynamic {
        let mut r = r.clone();
        r.name = r.name.to_lowercase();
        push_unique(nodes.entry(r.name.clone()).or_default(), r);
    }
    ZoneData {
        origin: src.origin.clone(),
        soa,
        nodes,
        static_names,
        dynamic,
    }
}

fn push_unique(v: &mut Vec<Record>, r: Record) {
    if !v
        .iter()
        .any(|x| x.record_type() == r.record_type() && x.data == r.data)
    {
        v.push(r);
    }
}

/// The IXFR delta from `old` to `new` (RFC 1995 order: old SOA, deletions, new SOA, additions).
pub fn delta(old: &ZoneData, new: &ZoneData) -> crate::store::Delta {
    let key = |r: &Record| {
        format!(
            "{} {} {} {}",
            r.name.to_lowercase(),
            r.ttl,
            r.record_type(),
            r.data
        )
    };
    let olds: Vec<Record> = old.all_records().into_iter().skip(1).collect();
    let news: Vec<Record> = new.all_records().into_iter().skip(1).collect();
    let ok: BTreeSet<String> = olds.iter().map(key).collect();
    let nk: BTreeSet<String> = news.iter().map(key).collect();
    let mut records = vec![old.soa.clone()];
    records.extend(olds.into_iter().filter(|r| !nk.contains(&key(r))));
    records.push(new.soa.clone());
    records.extend(news.into_iter().filter(|r| !ok.contains(&key(r))));
    crate::store::Delta {
        from: old.serial(),
        to: new.serial(),
        records,
    }
}

/// The answer records of an IXFR from `client` (RFC 1995): the current SOA alone when the
/// client is current, the journal chain between two copies of the current SOA, or `None` when
/// the journal does not reach back to `client` (the caller sends the whole zone instead).
pub fn ixfr(z: &ZoneData, client: u32, journal: &[crate::store::Delta]) -> Option<Vec<Record>> {
    let current = z.serial();
    if client == current {
        return Some(vec![z.soa.clone()]);
    }
    let mut out = vec![z.soa.clone()];
    let mut at = client;
    let mut steps = 0;
    while at != current {
        let d = journal.iter().rev().find(|d| d.from == at)?;
        out.extend(d.records.iter().cloned());
        at = d.to;
        steps += 1;
        if steps > journal.len() {
            return None;
        }
    }
    out.push(z.soa.clone());
    Some(out)
}

/// The reverse-lookup owner of an IPv4 address (for tests and the fast path).
pub fn ptr_owner(ip: Ipv4Addr) -> Name {
    let o = ip.octets();
    name(&format!(
        "{}.{}.{}.{}.in-addr.arpa.",
        o[3], o[2], o[1], o[0]
    ))
    .expect("valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_keeps_on_same_digest_and_grows_on_change() {
        assert_eq!(next_serial(Some((7, 100)), 7, 1_700_000_000), 100);
        assert_eq!(next_serial(Some((7, 100)), 8, 1_700_000_000), 1_700_000_000);
        // stored serial ahead of the clock (several changes in one second): +1
        assert_eq!(
            next_serial(Some((7, 1_700_000_000)), 8, 1_700_000_000),
            1_700_000_001
        );
        assert_eq!(
            next_serial(Some((7, 1_800_000_000)), 8, 1_700_000_000),
            1_800_000_001
        );
        assert_eq!(next_serial(None, 8, 1_700_000_000), 1_700_000_000);
        assert_eq!(next_serial(Some((1, u32::MAX)), 2, 5), 5); // wraps (RFC 1982)
    }

    #[test]
    fn ixfr_walks_the_journal() {
        let origin = name("example.com.").unwrap();
        let src = ZoneSource {
            origin: origin.clone(),
            soa: Record::from_rdata(
                origin.clone(),
                60,
                RData::SOA(SOA::new(origin.clone(), origin.clone(), 0, 1, 1, 1, 1)),
            ),
            records: vec![],
        };
        let a = |n: &str, o: u8| {
            Record::from_rdata(name(n).unwrap(), 60, RData::A(A::new(10, 0, 0, o)))
        };
        let z1 = build(&src, vec![a("x.example.com.", 1)], 1);
        let z2 = build(&src, vec![a("x.example.com.", 2)], 2);
        let z3 = build(
            &src,
            vec![a("x.example.com.", 2), a("y.example.com.", 3)],
            3,
        );
        let j = vec![delta(&z1, &z2), delta(&z2, &z3)];
        assert_eq!(j[0].records.len(), 4); // SOA1, -x1, SOA2, +x2
        assert_eq!(j[1].records.len(), 3); // SOA2, SOA3, +y3
        let r = ixfr(&z3, 1, &j).unwrap();
        assert_eq!(r.len(), 1 + 4 + 3 + 1);
        assert_eq!(ixfr(&z3, 3, &j).unwrap().len(), 1);
        assert!(ixfr(&z3, 0, &j).is_none());
    }

    #[test]
    fn descendant_finds_empty_non_terminals() {
        let origin = name("example.com.").unwrap();
        let src = ZoneSource {
            origin: origin.clone(),
            soa: Record::from_rdata(
                origin.clone(),
                60,
                RData::SOA(SOA::new(origin.clone(), origin.clone(), 0, 1, 1, 1, 1)),
            ),
            records: vec![Record::from_rdata(
                name("a.b.example.com.").unwrap(),
                60,
                RData::A(A::new(1, 2, 3, 4)),
            )],
        };
        let z = build(&src, vec![], 5);
        assert_eq!(z.serial(), 5);
        assert!(z.has_descendant(&name("b.example.com.").unwrap()));
        assert!(!z.has_descendant(&name("c.example.com.").unwrap()));
        assert!(!z.has_descendant(&name("a.b.example.com.").unwrap()));
    }
}
