//! Authoritative lookup in the compiled zones: positive answers, CNAME chains, NODATA and
//! NXDOMAIN with the SOA in authority, minimal ANY (RFC 8482). Pure.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::zone::{Catalog, ZoneData};

/// The sections of an authoritative answer.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Answer {
    /// NOERROR or NXDOMAIN.
    pub rcode: ResponseCode,
    /// Answer section.
    pub answers: Vec<Record>,
    /// Authority section.
    pub authorities: Vec<Record>,
    /// Additional section.
    pub additionals: Vec<Record>,
    /// A referral to a delegated child zone (not authoritative).
    pub referral: bool,
}

const MAX_CHAIN: usize = 8;

/// Answers `qname`/`qtype` from the catalog; `None` when no zone of ours holds the name.
pub fn lookup(cat: &Catalog, qname: &Name, qtype: RecordType) -> Option<Answer> {
    let qname = qname.to_lowercase();
    let zone = cat.find(&qname)?;
    let mut ans = Answer::default();
    let mut owner = qname;
    let mut zone: &ZoneData = zone;
    for _ in 0..MAX_CHAIN {
        if let Some(cut) = delegation(zone, &owner, qtype) {
            if ans.answers.is_empty() {
                ans.referral = true;
                glue(cat, &cut, &mut ans.additionals);
                ans.authorities.extend(cut);
            }
            return Some(ans);
        }
        let wild;
        let node = match zone.nodes.get(&owner) {
            Some(n) => Some(n),
            None if !zone.has_descendant(&owner) => {
                wild = wildcard(zone, &owner);
                wild.as_ref()
            }
            None => None,
        };
        let Some(node) = node else {
            if ans.answers.is_empty() {
                ans.rcode = if zone.has_descendant(&owner) {
                    ResponseCode::NoError
                } else {
                    ResponseCode::NXDomain
                };
            } else if !zone.has_descendant(&owner) {
                // RFC 6604: the rcode reflects the last name in the chain.
                ans.rcode = ResponseCode::NXDomain;
            }
            ans.authorities.push(zone.negative_soa());
            return Some(ans);
        };
        if qtype == RecordType::ANY {
            // RFC 8482: one RRset is enough; prefer the addresses a client usually wants.
            let pick = [RecordType::A, RecordType::AAAA, RecordType::CNAME]
                .into_iter()
                .find(|t| node.iter().any(|r| r.record_type() == *t))
                .or_else(|| node.first().map(|r| r.record_type()));
            if let Some(t) = pick {
                ans.answers
                    .extend(node.iter().filter(|r| r.record_type() == t).cloned());
            }
            return Some(ans);
        }
        let matching: Vec<Record> = node
            .iter()
            .filter(|r| r.record_type() == qtype)
            .cloned()
            .collect();
        if !matching.is_empty() {
            if qtype == RecordType::NS || qtype == RecordType::MX {
                glue(cat, &matching, &mut ans.additionals);
            }
            ans.answers.extend(matching);
            return Some(ans);
        }
        let cname = node.iter().find(|r| r.record_type() == RecordType::CNAME);
        match cname {
            Some(c) if qtype != RecordType::CNAME => {
                let RData::CNAME(target) = &c.data else {
                    unreachable!("record_type() == CNAME")
                };
                let target = target.0.to_lowercase();
                ans.answers.push(c.clone());
                if ans.answers.iter().filter(|r| r.name == target).count() > 0 {
                    return Some(ans); // loop
                }
                match cat.find(&target) {
                    Some(z) => {
                        zone = z;
                        owner = target;
                    }
                    // Outside our zones: the resolver follows it.
                    None => return Some(ans),
                }
            }
            _ => {
                // NODATA
                ans.authorities.push(zone.negative_soa());
                return Some(ans);
            }
        }
    }
    Some(ans)
}

/// The NS RRset of a zone cut at or above `owner` (below the origin), if any: names there
/// belong to a child zone. At the cut itself a DS query stays with the parent.
fn delegation(zone: &ZoneData, owner: &Name, qtype: RecordType) -> Option<Vec<Record>> {
    let depth = zone.origin.num_labels();
    let labels = owner.num_labels();
    for n in (depth + 1)..=labels {
        let cut = owner.trim_to(usize::from(n));
        if cut == *owner && qtype == RecordType::DS {
            continue;
        }
        let ns: Vec<Record> = zone.rrset(&cut, RecordType::NS).cloned().collect();
        if !ns.is_empty() {
            return Some(ns);
        }
    }
    None
}

/// Records synthesised from the wildcard at the closest encloser of `owner` (RFC 4592).
fn wildcard(zone: &ZoneData, owner: &Name) -> Option<Vec<Record>> {
    let mut encloser = owner.base_name();
    while zone.origin.zone_of(&encloser) {
        if zone.nodes.contains_key(&encloser) || zone.has_descendant(&encloser) {
            let star = encloser.prepend_label("*").ok()?;
            let recs = zone.nodes.get(&star)?;
            return Some(
                recs.iter()
                    .map(|r| {
                        let mut r = r.clone();
                        r.name = owner.clone();
                        r
                    })
                    .collect(),
            );
        }
        encloser = encloser.base_name();
    }
    None
}

fn glue(cat: &Catalog, rs: &[Record], out: &mut Vec<Record>) {
    for r in rs {
        let target = match &r.data {
            RData::NS(n) => n.0.to_lowercase(),
            RData::MX(m) => m.exchange.to_lowercase(),
            _ => continue,
        };
        if let Some(z) = cat.find(&target) {
            for t in [RecordType::A, RecordType::AAAA] {
                out.extend(z.rrset(&target, t).cloned());
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::zone::{ZoneSource, build, name};
    use hickory_proto::rr::rdata::{A, CNAME, NS, SOA, TXT};
    use std::sync::Arc;

    pub(crate) fn catalog() -> Catalog {
        catalog_with(true)
    }

    /// The test zone; `cuts` adds a wildcard and a delegation.
    pub(crate) fn catalog_with(cuts: bool) -> Catalog {
        let origin = name("it-ishin.com.").unwrap();
        let rec = |n: &str, d: RData| Record::from_rdata(name(n).unwrap(), 3600, d);
        let src = ZoneSource {
            origin: origin.clone(),
            soa: Record::from_rdata(
                origin.clone(),
                3600,
                RData::SOA(SOA::new(
                    name("main.it-ishin.com.").unwrap(),
                    name("hostmaster.it-ishin.com.").unwrap(),
                    0,
                    3600,
                    900,
                    86400,
                    300,
                )),
            ),
            records: vec![
                rec(
                    "it-ishin.com.",
                    RData::NS(NS(name("main.it-ishin.com.").unwrap())),
                ),
                rec("main.it-ishin.com.", RData::A(A::new(192, 168, 1, 2))),
                rec("main.it-ishin.com.", RData::A(A::new(192, 168, 10, 1))),
                rec(
                    "ns.it-ishin.com.",
                    RData::CNAME(CNAME(name("main.it-ishin.com.").unwrap())),
                ),
                rec(
                    "ext.it-ishin.com.",
                    RData::CNAME(CNAME(name("www.example.org.").unwrap())),
                ),
                rec(
                    "a.deep.it-ishin.com.",
                    RData::TXT(TXT::new(vec!["x".into()])),
                ),
            ],
        };
        let mut src = src;
        if cuts {
            src.records.extend([
                rec("*.dyn.it-ishin.com.", RData::A(A::new(10, 0, 0, 9))),
                rec("dyn.it-ishin.com.", RData::TXT(TXT::new(vec!["w".into()]))),
                rec(
                    "child.it-ishin.com.",
                    RData::NS(NS(name("ns.child.it-ishin.com.").unwrap())),
                ),
                rec("ns.child.it-ishin.com.", RData::A(A::new(10, 0, 0, 53))),
            ]);
        }
        Catalog {
            zones: vec![Arc::new(build(&src, vec![], 42))],
        }
    }

    #[test]
    fn positive_case_insensitive() {
        let c = catalog();
        let a = lookup(
            &c,
            &Name::from_ascii("MAIN.It-Ishin.COM.").unwrap(),
            RecordType::A,
        )
        .unwrap();
        assert_eq!(a.rcode, ResponseCode::NoError);
        assert_eq!(a.answers.len(), 2);
        assert!(a.authorities.is_empty());
    }

    #[test]
    fn cname_followed_in_zone() {
        let c = catalog();
        let a = lookup(&c, &name("ns.it-ishin.com.").unwrap(), RecordType::A).unwrap();
        assert_eq!(a.answers.len(), 3);
        assert_eq!(a.answers[0].record_type(), RecordType::CNAME);
        let a = lookup(&c, &name("ext.it-ishin.com.").unwrap(), RecordType::A).unwrap();
        assert_eq!(a.answers.len(), 1);
        let a = lookup(&c, &name("ns.it-ishin.com.").unwrap(), RecordType::CNAME).unwrap();
        assert_eq!(a.answers.len(), 1);
    }

    #[test]
    fn nodata_nxdomain_and_empty_non_terminal() {
        let c = catalog();
        let a = lookup(&c, &name("main.it-ishin.com.").unwrap(), RecordType::AAAA).unwrap();
        assert_eq!((a.rcode, a.answers.len()), (ResponseCode::NoError, 0));
        assert_eq!(a.authorities[0].record_type(), RecordType::SOA);
        assert_eq!(a.authorities[0].ttl, 300);
        let a = lookup(&c, &name("nope.it-ishin.com.").unwrap(), RecordType::A).unwrap();
        assert_eq!(a.rcode, ResponseCode::NXDomain);
        assert_eq!(a.authorities[0].record_type(), RecordType::SOA);
        let a = lookup(&c, &name("deep.it-ishin.com.").unwrap(), RecordType::A).unwrap();
        assert_eq!(a.rcode, ResponseCode::NoError);
        assert!(lookup(&c, &name("example.org.").unwrap(), RecordType::A).is_none());
    }

    #[test]
    fn wildcards_and_delegations() {
        let c = catalog();
        let a = lookup(&c, &name("pc1.dyn.it-ishin.com.").unwrap(), RecordType::A).unwrap();
        assert_eq!(a.answers.len(), 1);
        assert_eq!(a.answers[0].name, name("pc1.dyn.it-ishin.com.").unwrap());
        let a = lookup(
            &c,
            &name("pc1.dyn.it-ishin.com.").unwrap(),
            RecordType::AAAA,
        )
        .unwrap();
        assert_eq!((a.rcode, a.answers.len()), (ResponseCode::NoError, 0));
        // The wildcard does not cover names that exist (dyn itself).
        let a = lookup(&c, &name("dyn.it-ishin.com.").unwrap(), RecordType::A).unwrap();
        assert!(a.answers.is_empty());
        // Delegation: referral with glue, not authoritative.
        let a = lookup(&c, &name("www.child.it-ishin.com.").unwrap(), RecordType::A).unwrap();
        assert!(a.referral && a.answers.is_empty());
        assert_eq!(a.authorities[0].record_type(), RecordType::NS);
        assert_eq!(a.additionals.len(), 1);
        let a = lookup(&c, &name("child.it-ishin.com.").unwrap(), RecordType::NS).unwrap();
        assert!(a.referral);
    }

    #[test]
    fn ns_has_glue_and_any_is_minimal() {
        let c = catalog();
        let a = lookup(&c, &name("it-ishin.com.").unwrap(), RecordType::NS).unwrap();
        assert_eq!(a.answers.len(), 1);
        assert_eq!(a.additionals.len(), 2);
        let a = lookup(&c, &name("it-ishin.com.").unwrap(), RecordType::ANY).unwrap();
        assert_eq!(a.answers.len(), 1);
        let a = lookup(&c, &name("main.it-ishin.com.").unwrap(), RecordType::ANY).unwrap();
        assert!(a.answers.iter().all(|r| r.record_type() == RecordType::A));
    }
}
