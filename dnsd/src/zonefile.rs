//! Extra RFC 1035 zone files (for example the flat file Samba wrote for BIND), merged with the
//! host-table zones. A record that contradicts the host table is a configuration error.
//!
//! The files are read by `import::zonefile`, the reader `dnsd import` uses too (BIND's syntax as
//! `named-checkzone` takes it: `@` and relative names in record data, `$TTL 1W`, `$INCLUDE`,
//! `$GENERATE`); its records are turned into hickory records here.

use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, NS, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{RData, Record, RecordType};
use hickory_proto::serialize::txt::Parser;
use hostfile::DnsView;
use import::zonefile::{self, Rdata};

use crate::zone::{ZoneError, ZoneSource, name};

/// The zone sources of the view with every zone file merged in; files for an origin that is
/// not a host-table zone become zones of their own (they must then have a SOA).
pub fn merged_sources(view: &DnsView) -> Result<Vec<ZoneSource>, ZoneError> {
    let mut zones = crate::zone::sources(view)?;
    for zf in &view.zone_files {
        let file = zf.path.display().to_string();
        let text = std::fs::read_to_string(&zf.path)
            .map_err(|e| ZoneError::File(format!("{file}: cannot read the zone file: {e}")))?;
        let origin = name(&zf.origin)?;
        let parsed = zonefile::read_str(&text, &zf.path, Some(&zf.origin))
            .map_err(|e| ZoneError::File(e.to_string()))?;
        let mut recs = Vec::new();
        let mut soa = None;
        for r in &parsed.records {
            let rec = record(r, &origin)?;
            if rec.record_type() == RecordType::SOA {
                soa.get_or_insert(rec);
            } else if !recs.contains(&rec) {
                recs.push(rec);
            }
        }
        match zones.iter_mut().find(|z| z.origin == origin) {
            Some(z) => {
                let host = z.records.clone();
                for r in recs {
                    if !z.origin.zone_of(&r.name) {
                        return Err(ZoneError::File(format!(
                            "{file}: {} is outside the zone {}",
                            r.name, z.origin
                        )));
                    }
                    let same_owner: Vec<_> = host.iter().filter(|x| x.name == r.name).collect();
                    let t = r.record_type();
                    let cname_clash = !same_owner.is_empty()
                        && (t == RecordType::CNAME
                            || same_owner
                                .iter()
                                .any(|x| x.record_type() == RecordType::CNAME))
                        && !same_owner.iter().any(|x| x.data == r.data);
                    let set: Vec<_> = same_owner.iter().filter(|x| x.record_type() == t).collect();
                    let differs = !set.is_empty() && !set.iter().any(|x| x.data == r.data);
                    if cname_clash || differs {
                        return Err(ZoneError::Conflict {
                            file: file.clone(),
                            name: r.name.to_string(),
                            rtype: t.to_string(),
                        });
                    }
                    if !z
                        .records
                        .iter()
                        .any(|x| x.name == r.name && x.data == r.data)
                    {
                        z.records.push(r);
                    }
                }
            }
            None => {
                let Some(soa) = soa else {
                    return Err(ZoneError::File(format!(
                        "{file}: zone {origin} is not a host-table zone and the file has no SOA"
                    )));
                };
                zones.push(ZoneSource {
                    origin,
                    soa,
                    records: recs,
                });
            }
        }
    }
    Ok(zones)
}

/// One record of the reader as a hickory record.
fn record(r: &zonefile::Record, origin: &hickory_proto::rr::Name) -> Result<Record, ZoneError> {
    let at = |m: String| {
        ZoneError::File(format!(
            "{}:{}:{}: {m}",
            r.pos.file.display(),
            r.pos.line,
            r.pos.column
        ))
    };
    if r.class != "IN" {
        return Err(at(format!(
            "class {} records are not served\n    fix: remove the record or write it as class IN",
            r.class
        )));
    }
    let data = match &r.data {
        Rdata::A(ip) => RData::A(A(*ip)),
        Rdata::Aaaa(ip) => RData::AAAA(AAAA(*ip)),
        Rdata::Name(n) => {
            let n = name(n)?;
            match r.rtype.as_str() {
                "NS" => RData::NS(NS(n)),
                "CNAME" => RData::CNAME(CNAME(n)),
                "PTR" => RData::PTR(PTR(n)),
                _ => return other(r, origin),
            }
        }
        Rdata::Mx {
            preference,
            exchange,
        } => RData::MX(MX::new(*preference, name(exchange)?)),
        Rdata::Srv {
            priority,
            weight,
            port,
            target,
        } => RData::SRV(SRV::new(*priority, *weight, *port, name(target)?)),
        Rdata::Soa {
            mname,
            rname,
            serial,
            refresh,
            retry,
            expire,
            minimum,
        } => {
            let i = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
            RData::SOA(SOA::new(
                name(mname)?,
                name(rname)?,
                *serial,
                i(*refresh),
                i(*retry),
                i(*expire),
                *minimum,
            ))
        }
        Rdata::Txt(strings) => {
            RData::TXT(TXT::from_bytes(strings.iter().map(Vec::as_slice).collect()))
        }
        Rdata::Other => return other(r, origin),
    };
    Ok(Record::from_rdata(name(&r.owner)?, r.ttl, data))
}

/// A type the reader keeps as written (CAA, SSHFP, ...): hickory's own parser reads its data,
/// given as one record with an absolute owner.
fn other(r: &zonefile::Record, origin: &hickory_proto::rr::Name) -> Result<Record, ZoneError> {
    let data: Vec<String> = r.words.iter().map(zonefile::quote).collect();
    let text = format!("{} {} IN {} {}\n", r.owner, r.ttl, r.rtype, data.join(" "));
    let where_ = format!("{}:{}:{}", r.pos.file.display(), r.pos.line, r.pos.column);
    let (_, sets) = Parser::new(text, None, Some(origin.clone()))
        .parse()
        .map_err(|e| {
            ZoneError::File(format!(
                "{where_}: {} record for `{}`: {e}\n    fix: check the record's data against its type's syntax (RFC 1035 section 5)",
                r.rtype, r.owner
            ))
        })?;
    sets.values()
        .flat_map(|s| s.records_without_rrsigs())
        .next()
        .map(|x| {
            let mut x = x.clone();
            x.name = x.name.to_lowercase();
            x
        })
        .ok_or_else(|| ZoneError::File(format!("{where_}: {} record has no data", r.rtype)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view_with(file: &str) -> (tempfile::TempDir, DnsView) {
        let dir = tempfile::tempdir().unwrap();
        let hosts = concat!(env!("CARGO_MANIFEST_DIR"), "/../etc/hosts.toml");
        let t = hostfile::HostTable::load(std::path::Path::new(hosts)).unwrap();
        let mut v = t.dns_view();
        let p = dir.path().join("zone.db");
        std::fs::write(&p, file).unwrap();
        v.zone_files = vec![hostfile::ZoneFileRef {
            path: p,
            origin: "it-ishin.com.".into(),
        }];
        (dir, v)
    }

    #[test]
    fn samba_style_file_merges() {
        let (_d, v) = view_with(
            "$ORIGIN it-ishin.com.\n$TTL 3600\n@ IN SOA main hostmaster 1 900 600 86400 3600\n@ IN NS main.it-ishin.com.\nmain IN A 192.168.1.2\n_ldap._tcp IN SRV 0 100 389 main\nbig IN TXT \"hello\"\nbig IN TXT \"again\"\n",
        );
        let z = merged_sources(&v).unwrap();
        let fwd = &z[0];
        assert!(
            fwd.records
                .iter()
                .any(|r| r.record_type() == RecordType::SRV)
        );
        assert!(
            fwd.records
                .iter()
                .any(|r| r.record_type() == RecordType::TXT)
        );
        // duplicates of host-table records are not doubled
        let mains = fwd
            .records
            .iter()
            .filter(|r| {
                r.name == name("main.it-ishin.com.").unwrap() && r.record_type() == RecordType::A
            })
            .count();
        assert_eq!(mains, 2);
    }

    #[test]
    fn conflict_is_an_error() {
        let (_d, v) = view_with("$ORIGIN it-ishin.com.\nweb1 3600 IN A 10.9.9.9\n");
        let e = merged_sources(&v).unwrap_err().to_string();
        assert!(
            e.contains("web1.it-ishin.com.") && e.contains("conflicts"),
            "{e}"
        );
        let (_d, v) = view_with("$ORIGIN it-ishin.com.\nweb1 3600 IN CNAME db\n");
        assert!(merged_sources(&v).is_err());
    }

    #[test]
    fn at_in_record_data_and_ttl_units() {
        let (_d, v) = view_with(
            "$ORIGIN it-ishin.com.\n$TTL 1W\n@ IN SOA @ hostmaster ( 1 2D 4H 6W 1W )\n\tIN MX 10 @\ngc._msdcs IN CNAME main\n_gc._tcp IN SRV 0 100 3268 @\n",
        );
        let z = merged_sources(&v).unwrap();
        let origin = name("it-ishin.com.").unwrap();
        let find = |t: RecordType| {
            z[0].records
                .iter()
                .find(|r| r.record_type() == t)
                .unwrap_or_else(|| panic!("no {t}"))
                .clone()
        };
        assert_eq!(
            find(RecordType::MX).data,
            RData::MX(MX::new(10, origin.clone()))
        );
        let srv = find(RecordType::SRV);
        assert_eq!(srv.data, RData::SRV(SRV::new(0, 100, 3268, origin)));
        assert_eq!(srv.ttl, 7 * 86400);
        let gc = name("gc._msdcs.it-ishin.com.").unwrap();
        assert!(
            z[0].records.iter().any(|r| r.name == gc
                && r.data == RData::CNAME(CNAME(name("main.it-ishin.com.").unwrap())))
        );
    }

    #[test]
    fn other_types_go_through_hickory_and_errors_have_a_column() {
        let (_d, v) =
            view_with("$ORIGIN it-ishin.com.\n$TTL 60\n@ IN CAA 0 issue \"ca.example\"\n");
        let z = merged_sources(&v).unwrap();
        assert!(
            z[0].records
                .iter()
                .any(|r| r.record_type() == RecordType::CAA)
        );
        let (_d, v) = view_with("$ORIGIN it-ishin.com.\nx IN A 1.2.3\n");
        let e = merged_sources(&v).unwrap_err().to_string();
        assert!(e.contains("zone.db:2:8: ") && e.contains("fix: "), "{e}");
    }
}
