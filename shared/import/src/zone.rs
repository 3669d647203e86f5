//! Zone files as facts: the records read by [`crate::zonefile`] (the reader dnsd uses too), each
//! mapped to what the host file can hold (hosts from A/AAAA, aliases from CNAME, the SOA's
//! timers, name servers), the rest listed with its line.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use crate::facts::{Raw, RawAddr, RawLink, RawSoa, reverse_net};
use crate::source::{ImportError, NOT_UTF8, ReadFn, Src, abridge};
use crate::zonefile::{self, Rdata, Record, absolute};

pub(crate) fn import(
    text: &str,
    origin: Option<&str>,
    file: &Path,
    read: ReadFn<'_>,
    raw: &mut Raw,
) -> Result<(), ImportError> {
    let file: Arc<Path> = Arc::from(file);
    let mut origin = origin.map(absolute);
    let mut guessed = None;
    if origin.is_none()
        && !text
            .lines()
            .any(|l| l.trim_start().to_ascii_uppercase().starts_with("$ORIGIN"))
    {
        guessed = origin_from_file_name(&file);
        origin.clone_from(&guessed);
    }
    let z = zonefile::read(text, &file, origin.as_deref(), read)?;
    let mut ttls = z.ttls.iter().peekable();
    let mut seen_soa = false;
    for r in &z.records {
        // A $TTL before this record, when no TTL was taken yet, is the file's default TTL.
        while let Some(t) = ttls.next_if(|t| before(&t.pos, &r.pos)) {
            if raw.ttl.is_none() {
                raw.ttl = Some((t.ttl, src_of(&t.pos)));
            }
        }
        if r.text().contains('\u{FFFD}') {
            raw.unsupported
                .push(src_of(&r.pos).unsupported(abridge(&r.text()), NOT_UTF8));
        }
        record(r, raw, &mut seen_soa)?;
    }
    for t in ttls {
        if raw.ttl.is_none() {
            raw.ttl = Some((t.ttl, src_of(&t.pos)));
        }
    }
    if let Some(g) = guessed {
        raw.unsupported.push(Src::new(&file, 1).unsupported(
            format!("(origin {g})"),
            "the file sets no $ORIGIN: the origin was guessed from the file name; give the zone name if it is wrong",
        ));
    }
    Ok(())
}

/// Whether `a` comes before `b` (the same file, or the order of records is what counts).
fn before(a: &zonefile::Pos, b: &zonefile::Pos) -> bool {
    a.file != b.file || a.line < b.line
}

fn src_of(p: &zonefile::Pos) -> Src {
    Src::new(&p.file, p.line)
}

/// `db.example.com` -> `example.com.`, `example.com.zone` -> `example.com.`.
fn origin_from_file_name(p: &Path) -> Option<String> {
    let n = p.file_name()?.to_string_lossy().to_ascii_lowercase();
    let n = n
        .strip_prefix("db.")
        .or_else(|| n.strip_suffix(".zone"))
        .or_else(|| n.strip_suffix(".db"))?;
    // BIND's habit for reverse zones: db.192.168.10 holds 10.168.192.in-addr.arpa.
    let octets: Vec<&str> = n.split('.').collect();
    if (1..=3).contains(&octets.len()) && octets.iter().all(|o| o.parse::<u8>().is_ok()) {
        let rev: Vec<&str> = octets.into_iter().rev().collect();
        return Some(absolute(&format!("{}.in-addr.arpa", rev.join("."))));
    }
    (n.contains('.') && hostfile::is_dns_name(n)).then(|| absolute(n))
}

fn record(r: &Record, raw: &mut Raw, seen_soa: &mut bool) -> Result<(), ImportError> {
    let src = src_of(&r.pos);
    let owner = r.owner.clone();
    let construct = || abridge(&r.text());
    if r.class != "IN" {
        raw.unsupported.push(src.unsupported(
            construct(),
            format!("class {} records are not served", r.class),
        ));
        return Ok(());
    }
    let ttl = r.explicit_ttl.or(r.dollar_ttl);
    let link = |target: &String| RawLink {
        owner: owner.clone(),
        target: target.clone(),
        src: src.clone(),
    };
    match (&r.data, r.rtype.as_str()) {
        (Rdata::A(ip), _) => raw.addrs.push(RawAddr {
            name: owner,
            ip: IpAddr::V4(*ip),
            ttl,
            src,
        }),
        (Rdata::Aaaa(ip), _) => raw.addrs.push(RawAddr {
            name: owner,
            ip: IpAddr::V6(*ip),
            ttl,
            src,
        }),
        (Rdata::Name(t), "CNAME") => raw.cnames.push(link(t)),
        (Rdata::Name(t), "PTR") => raw.ptrs.push(link(t)),
        (Rdata::Name(t), "NS") => raw.ns.push(link(t)),
        (
            Rdata::Soa {
                mname,
                rname,
                serial,
                refresh,
                retry,
                expire,
                minimum,
            },
            _,
        ) => {
            // A second SOA within one import: another zone via $INCLUDE is fine, the same owner is not.
            if *seen_soa && raw.soa.iter().any(|s| s.owner == owner) {
                return Err(src.error(format!("second SOA record for `{owner}`")));
            }
            *seen_soa = true;
            if raw.ttl.is_none()
                && let Some(t) = ttl
            {
                raw.ttl = Some((t, src.clone()));
            }
            if !owner.ends_with(".arpa.") {
                raw.domains
                    .push((owner.trim_end_matches('.').to_owned(), src.clone(), 2, "the zone's SOA"));
            } else if let Some(net) = reverse_net(&owner) {
                raw.net_hints
                    .push((net, src.clone(), format!("from the reverse zone {owner}")));
            }
            raw.soa.push(RawSoa {
                owner,
                mname: mname.clone(),
                rname: rname.clone(),
                refresh: *refresh,
                retry: *retry,
                expire: *expire,
                minimum: *minimum,
                src: src.clone(),
            });
            raw.unsupported.push(src.unsupported(
                format!("SOA serial {serial}"),
                "dnsd numbers its own serials (it starts above this one only if you set it; secondaries may need a full transfer)",
            ));
        }
        (_, "MX") => raw.unsupported.push(src.unsupported(
            construct(),
            "the host file has no mail exchanger records; serve them from a zone-file ([[dns.zone-file]])",
        )),
        (_, "TXT" | "SPF") => raw.unsupported.push(src.unsupported(
            construct(),
            "the host file has no TXT records; serve them from a zone-file ([[dns.zone-file]])",
        )),
        (_, "SRV") => raw.unsupported.push(src.unsupported(
            construct(),
            "the host file has no SRV records (Active Directory's are registered by Samba itself); serve them from a zone-file ([[dns.zone-file]])",
        )),
        (_, t) => raw.unsupported.push(src.unsupported(
            construct(),
            format!("the host file cannot express {t} records; serve them from a zone-file ([[dns.zone-file]])"),
        )),
    }
    Ok(())
}
