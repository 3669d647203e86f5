//! The lean authoritative fast path: answers for the zones precomputed in wire format when the
//! zones are compiled, served by patching the ID, RD/CD/RA bits and copying the client's
//! question (keeping its letter case). Anything unusual (other opcodes, EDNS options, TSIG,
//! CNAME owners, ANY, names outside our zones, answers that do not fit) returns `None` and
//! goes through the general path in [`crate::handler`], which also built these answers.

use std::collections::{HashMap, HashSet};

use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::{Name, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};

use crate::message::MAX_UDP;
use crate::zone::{Catalog, ZoneData};

/// Wire form of a name, lower case, with the terminating zero.
fn wire_lower(n: &Name) -> Vec<u8> {
    let mut v = Vec::with_capacity(n.len() + 2);
    for l in n.iter() {
        v.push(l.len() as u8);
        v.extend(l.iter().map(u8::to_ascii_lowercase));
    }
    v.push(0);
    v
}

/// FNV-1a: the keys are short and trusted only after lookup; SipHash costs more than the lookup.
#[derive(Debug, Default, Clone, Copy)]
pub struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

type FnvBuild = std::hash::BuildHasherDefault<Fnv>;

#[derive(Debug, Default)]
struct Answers {
    /// Without OPT (for clients without EDNS); empty when larger than 512 bytes.
    plain: Vec<u8>,
    /// With OPT (payload 1232); empty when larger than 1232 bytes.
    edns: Vec<u8>,
}

#[derive(Debug)]
struct Negative {
    /// Wire origin (lower case), to locate it as a suffix of the question.
    origin: Vec<u8>,
    /// The SOA RR after its owner name (type .. rdata), TTL capped by the minimum.
    soa_tail: Vec<u8>,
    /// Owners (lower-case wire) that exist, empty non-terminals included.
    names: HashSet<Vec<u8>>,
    /// Owners that hold a CNAME (their answers need the general path).
    cnames: HashSet<Vec<u8>>,
    /// The zone has a wildcard: negative answers need the general path.
    wildcard: bool,
}

/// Precomputed answers of one catalog.
#[derive(Debug, Default)]
pub struct FastTable {
    /// Key: lower-case wire owner followed by the type (2 bytes).
    answers: HashMap<Box<[u8]>, Answers, FnvBuild>,
    zones: Vec<Negative>,
}

const QR_AA: u8 = 0x84;

impl FastTable {
    /// Precomputes every positive answer of `catalog` with the general path: `general` answers
    /// one encoded UDP query as the handler would (`None` when it would not reply).
    pub fn build(
        catalog: &Catalog,
        mut general: impl FnMut(&[u8]) -> Option<Vec<u8>>,
    ) -> FastTable {
        let mut t = FastTable::default();
        for z in &catalog.zones {
            t.zones.push(negative(z));
            for (owner, recs) in &z.nodes {
                if recs.iter().any(|r| r.record_type() == RecordType::CNAME) {
                    continue;
                }
                let mut types: Vec<RecordType> = recs.iter().map(|r| r.record_type()).collect();
                types.dedup();
                for ty in types {
                    let mut a = Answers::default();
                    for edns in [false, true] {
                        let mut q = Message::query();
                        q.add_query(Query::query(owner.clone(), ty));
                        if edns {
                            let mut e = Edns::new();
                            e.set_max_payload(MAX_UDP);
                            q.set_edns(e);
                        }
                        let Ok(bytes) = q.to_vec() else { continue };
                        if let Some(mut b) = general(&bytes) {
                            let limit = if edns { usize::from(MAX_UDP) } else { 512 };
                            if b.len() <= limit && b[2] & 0x02 == 0 {
                                b[3] &= !0x80; // RA is per client
                                if edns {
                                    a.edns = b;
                                } else {
                                    a.plain = b;
                                }
                            }
                        }
                    }
                    let mut key = wire_lower(owner);
                    key.extend_from_slice(&u16::from(ty).to_be_bytes());
                    t.answers.insert(key.into_boxed_slice(), a);
                }
            }
        }
        t
    }
}

fn negative(z: &ZoneData) -> Negative {
    let origin = wire_lower(&z.origin);
    let soa = z.negative_soa();
    let mut buf = Vec::new();
    {
        let mut enc = BinEncoder::new(&mut buf);
        enc.set_name_encoding(NameEncoding::Uncompressed);
        let _ = soa.emit(&mut enc);
    }
    let soa_tail = buf
        .get(origin.len()..)
        .map(<[u8]>::to_vec)
        .unwrap_or_default();
    let mut names = HashSet::new();
    let mut cnames = HashSet::new();
    let mut wildcard = false;
    for (owner, recs) in &z.nodes {
        // Wildcards and zone cuts make negative answers name-dependent: general path.
        wildcard |= owner.is_wildcard()
            || (*owner != z.origin && recs.iter().any(|r| r.record_type() == RecordType::NS));
        if recs.iter().any(|r| r.record_type() == RecordType::CNAME) {
            cnames.insert(wire_lower(owner));
        }
        let mut n = owner.clone();
        while z.origin.zone_of(&n) {
            if !names.insert(wire_lower(&n)) || n == z.origin {
                break;
            }
            n = n.base_name();
        }
    }
    Negative {
        origin,
        soa_tail,
        names,
        cnames,
        wildcard,
    }
}

/// A parsed plain query.
struct Q<'a> {
    /// Question bytes as sent (name, type, class).
    question: &'a [u8],
    /// Lower-case wire name.
    lname: [u8; 258],
    nlen: usize,
    qtype: u16,
    /// EDNS payload size when an OPT without options was sent.
    edns: Option<u16>,
}

fn parse(b: &[u8]) -> Option<Q<'_>> {
    if b.len() < 17 || b[2] & 0xfa != 0 || b[3] & 0x4f != 0 {
        // QR, opcode, AA/TC set, Z or rcode set: general path
        return None;
    }
    if b[4..10] != [0, 1, 0, 0, 0, 0] || b[10] != 0 || b[11] > 1 {
        return None;
    }
    let mut lname = [0u8; 258];
    let mut i = 12;
    loop {
        let l = usize::from(*b.get(i)?);
        if l & 0xc0 != 0 || i - 12 + l + 1 > 255 {
            return None;
        }
        lname[i - 12] = l as u8;
        if l == 0 {
            i += 1;
            break;
        }
        let label = b.get(i + 1..i + 1 + l)?;
        for (k, c) in label.iter().enumerate() {
            lname[i - 12 + 1 + k] = c.to_ascii_lowercase();
        }
        i += 1 + l;
    }
    let nlen = i - 12;
    let tail = b.get(i..i + 4)?;
    let qtype = u16::from_be_bytes([tail[0], tail[1]]);
    if tail[2..4] != [0, 1] {
        return None;
    }
    let question = &b[12..i + 4];
    let rest = &b[i + 4..];
    let edns = match (b[11], rest.len()) {
        (0, 0) => None,
        // root owner, type OPT, payload, ext-rcode 0, version 0, flags, no options
        (1, 11)
            if rest[0] == 0
                && rest[1..3] == [0, 41]
                && rest[5..7] == [0, 0]
                && rest[9..11] == [0, 0] =>
        {
            Some(u16::from_be_bytes([rest[3], rest[4]]).clamp(512, MAX_UDP))
        }
        _ => return None,
    };
    Some(Q {
        question,
        lname,
        nlen,
        qtype,
        edns,
    })
}

fn patch(out: &mut [u8], req: &[u8], q: &Q<'_>, ra: bool) {
    out[0] = req[0];
    out[1] = req[1];
    out[2] = (out[2] & !0x01) | (req[2] & 0x01);
    out[3] = (out[3] & !0x90) | (req[3] & 0x10) | if ra { 0x80 } else { 0 };
    out[12..12 + q.question.len()].copy_from_slice(q.question);
}

/// Answers `req` from the precomputed table into `out`; `false` means "use the general path".
/// `recurse` says whether the client may recurse (the RA bit); it is asked at most once.
pub fn answer(
    t: &FastTable,
    req: &[u8],
    out: &mut Vec<u8>,
    recurse: impl FnOnce() -> bool,
) -> bool {
    let Some(q) = parse(req) else { return false };
    if matches!(q.qtype, 251..=255 | 46 | 43 | 48 | 50 | 47) {
        return false; // IXFR, AXFR, MAILB/A, ANY, DNSSEC types
    }
    let mut key = q.lname;
    key[q.nlen..q.nlen + 2].copy_from_slice(&q.qtype.to_be_bytes());
    let lname = &q.lname[..q.nlen];
    let limit = q.edns.map_or(512, usize::from);
    out.clear();
    // Positive answer.
    if let Some(a) = t.answers.get(&key[..q.nlen + 2]) {
        let src_bytes = if q.edns.is_some() { &a.edns } else { &a.plain };
        if src_bytes.is_empty() || src_bytes.len() > limit {
            return false;
        }
        out.extend_from_slice(src_bytes);
        patch(out, req, &q, recurse());
        return true;
    }
    // Negative: find the zone (longest origin that is a suffix on a label boundary).
    let mut best: Option<(&Negative, usize)> = None;
    let mut off = 0;
    loop {
        let suffix = &lname[off..];
        if let Some(z) = t.zones.iter().find(|z| z.origin == suffix) {
            best = Some((z, off));
            break;
        }
        let l = usize::from(lname[off]);
        if l == 0 {
            break;
        }
        off += 1 + l;
    }
    let Some((z, origin_off)) = best else {
        return false;
    };
    if z.wildcard || z.cnames.contains(lname) {
        return false;
    }
    let exists = z.names.contains(lname);
    let rcode = if exists { 0 } else { 3 };
    // header
    out.extend_from_slice(&[
        req[0],
        req[1],
        QR_AA | (req[2] & 0x01),
        rcode | (req[3] & 0x10),
    ]);
    if recurse() {
        out[3] |= 0x80;
    }
    out.extend_from_slice(&[0, 1, 0, 0, 0, 1, 0, u8::from(q.edns.is_some())]);
    out.extend_from_slice(q.question);
    let ptr = 0xc000u16 | (12 + origin_off) as u16;
    out.extend_from_slice(&ptr.to_be_bytes());
    out.extend_from_slice(&z.soa_tail);
    if q.edns.is_some() {
        out.extend_from_slice(&[0, 0, 41]);
        out.extend_from_slice(&MAX_UDP.to_be_bytes());
        out.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    }
    out.len() <= limit
}
