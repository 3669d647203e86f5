//! Extra RFC 1035 zone files (for example the flat file Samba wrote for BIND), merged with the
//! host-table zones. A record that contradicts the host table is a configuration error.

use hickory_proto::rr::RecordType;
use hickory_proto::serialize::txt::Parser;
use hostfile::DnsView;

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
        let (_, sets) = Parser::new(text, Some(zf.path.clone()), Some(origin.clone()))
            .parse()
            .map_err(|e| ZoneError::File(format!("{file}: {e}")))?;
        let mut recs = Vec::new();
        let mut soa = None;
        for set in sets.values() {
            for r in set.records_without_rrsigs() {
                let mut r = r.clone();
                r.name = r.name.to_lowercase();
                if r.record_type() == RecordType::SOA {
                    soa = Some(r);
                } else {
                    recs.push(r);
                }
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
}
