//! RFC 2136 dynamic update as a pure function over a zone: prerequisites, prescan, then the
//! new set of dynamic records. Names defined by the host table (or a zone file) are refused.

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use crate::zone::ZoneData;

/// The outcome of an update.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// Prerequisites held and nothing changed.
    Unchanged,
    /// The new dynamic records of the zone.
    Changed(Vec<Record>),
    /// Refused with this code.
    Rejected(ResponseCode),
}

fn in_zone(z: &ZoneData, n: &Name) -> bool {
    z.origin.zone_of(&n.to_lowercase())
}

fn rtype_of(r: &Record) -> RecordType {
    r.record_type()
}

fn is_empty_rdata(r: &Record) -> bool {
    matches!(r.data, RData::Update0(_))
}

/// Checks the prerequisite section (RFC 2136 3.2).
pub fn prerequisites(z: &ZoneData, msg: &Message) -> Result<(), ResponseCode> {
    for p in &msg.answers {
        if p.ttl != 0 {
            return Err(ResponseCode::FormErr);
        }
        if !in_zone(z, &p.name) {
            return Err(ResponseCode::NotZone);
        }
        let owner = p.name.to_lowercase();
        let node = z.nodes.get(&owner);
        let t = rtype_of(p);
        match p.dns_class {
            DNSClass::ANY => {
                if !is_empty_rdata(p) {
                    return Err(ResponseCode::FormErr);
                }
                let ok = if t == RecordType::ANY {
                    node.is_some_and(|n| !n.is_empty())
                } else {
                    node.is_some_and(|n| n.iter().any(|r| r.record_type() == t))
                };
                if !ok {
                    return Err(if t == RecordType::ANY {
                        ResponseCode::NXDomain
                    } else {
                        ResponseCode::NXRRSet
                    });
                }
            }
            DNSClass::NONE => {
                if !is_empty_rdata(p) {
                    return Err(ResponseCode::FormErr);
                }
                let exists = if t == RecordType::ANY {
                    node.is_some_and(|n| !n.is_empty())
                } else {
                    node.is_some_and(|n| n.iter().any(|r| r.record_type() == t))
                };
                if exists {
                    return Err(if t == RecordType::ANY {
                        ResponseCode::YXDomain
                    } else {
                        ResponseCode::YXRRSet
                    });
                }
            }
            DNSClass::IN => {}
            _ => return Err(ResponseCode::FormErr),
        }
    }
    // Value-dependent prerequisites: each (name, type) set must equal the zone's RRset.
    let mut groups: Vec<(Name, RecordType, Vec<&RData>)> = Vec::new();
    for p in msg.answers.iter().filter(|p| p.dns_class == DNSClass::IN) {
        let key = (p.name.to_lowercase(), rtype_of(p));
        match groups.iter_mut().find(|g| g.0 == key.0 && g.1 == key.1) {
            Some(g) => g.2.push(&p.data),
            None => groups.push((key.0, key.1, vec![&p.data])),
        }
    }
    for (n, t, want) in groups {
        let have: Vec<&RData> = z.rrset(&n, t).map(|r| &r.data).collect();
        let same = have.len() == want.len() && have.iter().all(|h| want.contains(h));
        if !same {
            return Err(ResponseCode::NXRRSet);
        }
    }
    Ok(())
}

/// Applies `msg` (already authenticated) to zone `z`.
pub fn apply(z: &ZoneData, msg: &Message) -> Outcome {
    if let Err(rc) = prerequisites(z, msg) {
        return Outcome::Rejected(rc);
    }
    // Prescan (RFC 2136 3.4.1).
    for u in &msg.authorities {
        if !in_zone(z, &u.name) {
            return Outcome::Rejected(ResponseCode::NotZone);
        }
        let t = rtype_of(u);
        match u.dns_class {
            DNSClass::IN => {
                if matches!(
                    t,
                    RecordType::ANY | RecordType::AXFR | RecordType::IXFR | RecordType::OPT
                ) || is_empty_rdata(u)
                {
                    return Outcome::Rejected(ResponseCode::FormErr);
                }
            }
            DNSClass::ANY => {
                if u.ttl != 0 || !is_empty_rdata(u) {
                    return Outcome::Rejected(ResponseCode::FormErr);
                }
            }
            DNSClass::NONE => {
                if u.ttl != 0 {
                    return Outcome::Rejected(ResponseCode::FormErr);
                }
            }
            _ => return Outcome::Rejected(ResponseCode::FormErr),
        }
        let owner = u.name.to_lowercase();
        if z.static_names.contains(&owner) {
            tracing::info!(name = %owner, "update refused: the host table owns this name");
            return Outcome::Rejected(ResponseCode::Refused);
        }
    }
    let mut dynamic: Vec<Record> = z.dynamic.clone();
    for u in &msg.authorities {
        let owner = u.name.to_lowercase();
        let t = rtype_of(u);
        match u.dns_class {
            DNSClass::IN => {
                if t == RecordType::SOA {
                    continue; // the serial is ours
                }
                let at_owner = |d: &Vec<Record>| -> Vec<RecordType> {
                    d.iter()
                        .filter(|r| r.name == owner)
                        .map(|r| r.record_type())
                        .collect()
                };
                let types = at_owner(&dynamic);
                if t == RecordType::CNAME && types.iter().any(|x| *x != RecordType::CNAME) {
                    continue; // RFC 2136 3.4.2.2: CNAME cannot join other data
                }
                if t != RecordType::CNAME && types.contains(&RecordType::CNAME) {
                    continue;
                }
                if t == RecordType::CNAME {
                    dynamic.retain(|r| !(r.name == owner && r.record_type() == RecordType::CNAME));
                }
                let mut r = u.clone();
                r.name = owner.clone();
                if let Some(existing) = dynamic
                    .iter_mut()
                    .find(|x| x.name == owner && x.record_type() == t && x.data == r.data)
                {
                    existing.ttl = r.ttl;
                } else {
                    dynamic.push(r);
                }
                // One TTL per RRset.
                for x in dynamic
                    .iter_mut()
                    .filter(|x| x.name == owner && x.record_type() == t)
                {
                    x.ttl = u.ttl;
                }
            }
            DNSClass::ANY if t == RecordType::ANY => dynamic.retain(|r| r.name != owner),
            DNSClass::ANY => dynamic.retain(|r| !(r.name == owner && r.record_type() == t)),
            DNSClass::NONE => {
                dynamic.retain(|r| !(r.name == owner && r.record_type() == t && r.data == u.data))
            }
            _ => {}
        }
    }
    if same_set(&dynamic, &z.dynamic) {
        Outcome::Unchanged
    } else {
        Outcome::Changed(dynamic)
    }
}

fn same_set(a: &[Record], b: &[Record]) -> bool {
    a.len() == b.len()
        && a.iter().all(|x| {
            b.iter()
                .any(|y| x.name == y.name && x.ttl == y.ttl && x.data == y.data)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer::tests::catalog;
    use crate::zone::name;
    use hickory_proto::op::{MessageType, OpCode, Query};
    use hickory_proto::rr::rdata::A;

    fn upd(prereq: Vec<Record>, updates: Vec<Record>) -> Message {
        let mut m = Message::new(1, MessageType::Query, OpCode::Update);
        m.add_query(Query::query(
            name("it-ishin.com.").unwrap(),
            RecordType::SOA,
        ));
        m.answers = prereq;
        m.authorities = updates;
        m
    }

    fn a(n: &str, ip: [u8; 4], ttl: u32) -> Record {
        Record::from_rdata(
            name(n).unwrap(),
            ttl,
            RData::A(A::new(ip[0], ip[1], ip[2], ip[3])),
        )
    }

    fn with_class(mut r: Record, c: DNSClass) -> Record {
        r.dns_class = c;
        r
    }

    #[test]
    fn add_then_delete() {
        let cat = catalog();
        let z = &cat.zones[0];
        let out = apply(
            z,
            &upd(
                vec![],
                vec![a("laptop.it-ishin.com.", [192, 168, 10, 200], 300)],
            ),
        );
        let Outcome::Changed(d) = out else {
            panic!("{out:?}")
        };
        assert_eq!(d.len(), 1);
        let z2 = crate::zone::build(
            &crate::zone::ZoneSource {
                origin: z.origin.clone(),
                soa: z.soa.clone(),
                records: vec![],
            },
            d,
            2,
        );
        // same add again: unchanged
        assert_eq!(
            apply(
                &z2,
                &upd(
                    vec![],
                    vec![a("laptop.it-ishin.com.", [192, 168, 10, 200], 300)]
                )
            ),
            Outcome::Unchanged
        );
        let del = with_class(
            Record::update0(name("laptop.it-ishin.com.").unwrap(), 0, RecordType::ANY),
            DNSClass::ANY,
        );
        assert_eq!(
            apply(&z2, &upd(vec![], vec![del])),
            Outcome::Changed(vec![])
        );
    }

    /// The sequence dhcpd sends (delete the RRset, add the lease's address; on release delete
    /// that one address) replaces and removes without touching anything else.
    #[test]
    fn dhcpd_style_replace_and_release() {
        let cat = catalog();
        let z = &cat.zones[0];
        let src = crate::zone::ZoneSource {
            origin: z.origin.clone(),
            soa: z.soa.clone(),
            records: vec![],
        };
        let del_rrset = || {
            with_class(
                Record::update0(name("phone.it-ishin.com.").unwrap(), 0, RecordType::A),
                DNSClass::ANY,
            )
        };
        let Outcome::Changed(d) = apply(
            z,
            &upd(
                vec![],
                vec![
                    del_rrset(),
                    a("phone.it-ishin.com.", [192, 168, 10, 201], 300),
                ],
            ),
        ) else {
            panic!()
        };
        let z1 = crate::zone::build(&src, d, 2);
        let Outcome::Changed(d) = apply(
            &z1,
            &upd(
                vec![],
                vec![
                    del_rrset(),
                    a("phone.it-ishin.com.", [192, 168, 10, 202], 300),
                ],
            ),
        ) else {
            panic!()
        };
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].data, RData::A(A::new(192, 168, 10, 202)));
        let z2 = crate::zone::build(&src, d, 3);
        // Release of an address the name no longer has: nothing changes.
        let old = with_class(
            a("phone.it-ishin.com.", [192, 168, 10, 201], 0),
            DNSClass::NONE,
        );
        assert_eq!(apply(&z2, &upd(vec![], vec![old])), Outcome::Unchanged);
        let cur = with_class(
            a("phone.it-ishin.com.", [192, 168, 10, 202], 0),
            DNSClass::NONE,
        );
        assert_eq!(
            apply(&z2, &upd(vec![], vec![cur])),
            Outcome::Changed(vec![])
        );
    }

    #[test]
    fn host_table_names_refused_and_out_of_zone() {
        let cat = catalog();
        let z = &cat.zones[0];
        assert_eq!(
            apply(
                z,
                &upd(vec![], vec![a("main.it-ishin.com.", [1, 2, 3, 4], 60)])
            ),
            Outcome::Rejected(ResponseCode::Refused)
        );
        assert_eq!(
            apply(z, &upd(vec![], vec![a("x.example.org.", [1, 2, 3, 4], 60)])),
            Outcome::Rejected(ResponseCode::NotZone)
        );
    }

    #[test]
    fn prerequisites_are_honoured() {
        let cat = catalog();
        let z = &cat.zones[0];
        let add = || vec![a("new.it-ishin.com.", [10, 0, 0, 1], 60)];
        // name not in use: main is in use -> YXDOMAIN
        let p = with_class(
            Record::update0(name("main.it-ishin.com.").unwrap(), 0, RecordType::ANY),
            DNSClass::NONE,
        );
        assert_eq!(
            apply(z, &upd(vec![p], add())),
            Outcome::Rejected(ResponseCode::YXDomain)
        );
        // name in use: nope is not -> NXDOMAIN
        let p = with_class(
            Record::update0(name("nope.it-ishin.com.").unwrap(), 0, RecordType::ANY),
            DNSClass::ANY,
        );
        assert_eq!(
            apply(z, &upd(vec![p], add())),
            Outcome::Rejected(ResponseCode::NXDomain)
        );
        // RRset exists (value dependent): main has two A; giving one fails
        let p = a("main.it-ishin.com.", [192, 168, 1, 2], 0);
        assert_eq!(
            apply(z, &upd(vec![p], add())),
            Outcome::Rejected(ResponseCode::NXRRSet)
        );
        let p = vec![
            a("main.it-ishin.com.", [192, 168, 1, 2], 0),
            a("main.it-ishin.com.", [192, 168, 10, 1], 0),
        ];
        assert!(matches!(apply(z, &upd(p, add())), Outcome::Changed(_)));
        // RRset does not exist: main has A -> YXRRSET
        let p = with_class(
            Record::update0(name("main.it-ishin.com.").unwrap(), 0, RecordType::A),
            DNSClass::NONE,
        );
        assert_eq!(
            apply(z, &upd(vec![p], add())),
            Outcome::Rejected(ResponseCode::YXRRSet)
        );
    }
}
