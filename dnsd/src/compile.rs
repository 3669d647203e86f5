//! Zone compilation: a view (and the store's dynamic records and serials) into the [`Policy`]
//! the handler decides from, with the fast path's precomputed answers.

use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::rr::Name;
use hostfile::DnsView;

use crate::fast::FastTable;
use crate::handler::{Decision, Transport, handle};
use crate::policy::{Policy, SecondaryAcl};
use crate::stats::Stats;
use crate::store::{Store, StoreError};
use crate::tsig::signer;
use crate::zone::{Catalog, ZoneError, ZoneSource, build, digest, next_serial};

/// Why zones could not be compiled.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// The store could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A zone (or zone file) is not usable.
    #[error(transparent)]
    Zone(#[from] ZoneError),
}

/// Builds the policy for `view`: zone sources merged with the zone files, dynamic records and
/// serials from the store (bumping and storing serials of changed zones). Returns the origins
/// whose serial moved.
pub fn compile(
    view: &DnsView,
    store: &Store,
    sources: Vec<ZoneSource>,
    old: Option<&Catalog>,
    now: u64,
) -> Result<(Policy, Vec<Name>), CompileError> {
    let mut zones = Vec::new();
    let mut writes = Vec::new();
    let mut changed = Vec::new();
    for src in &sources {
        let key = src.origin.to_ascii();
        let mut dynamic = store.dynamic(&key)?;
        // The host table wins over older dynamic records for the same owner.
        let statics: std::collections::BTreeSet<Name> =
            src.records.iter().map(|r| r.name.to_lowercase()).collect();
        dynamic.retain(|r| !statics.contains(&r.name.to_lowercase()));
        let d = digest(src, &dynamic);
        let stored = store.serial(&key)?;
        let serial = next_serial(stored, d, now);
        if stored != Some((d, serial)) {
            writes.push((key.clone(), d, serial));
            changed.push(src.origin.clone());
        }
        zones.push(Arc::new(build(src, dynamic, serial)));
    }
    let mut deltas = Vec::new();
    for z in &zones {
        if let Some(o) = old.and_then(|c| c.get(&z.origin))
            && o.serial() != z.serial()
        {
            deltas.push((z.origin.to_ascii(), crate::zone::delta(o, z)));
        }
    }
    store.commit_with_journal(None, &writes, &deltas, None)?;
    Ok((policy(view, Catalog { zones }), changed))
}

/// The policy for `view` with every zone at `serial` and no store (fuzzing, benchmarks).
pub fn policy_from_view(view: &DnsView, serial: u32) -> Result<Policy, CompileError> {
    let zones = crate::zonefile::merged_sources(view)?
        .iter()
        .map(|s| Arc::new(build(s, Vec::new(), serial)))
        .collect();
    Ok(policy(view, Catalog { zones }))
}

fn policy(view: &DnsView, catalog: Catalog) -> Policy {
    let mut keys: Vec<_> = view.update_keys.iter().filter_map(signer).collect();
    for s in &view.secondaries {
        if let Some(k) = s.key.as_ref().and_then(signer)
            && !keys.iter().any(|x| x.signer_name() == k.signer_name())
        {
            keys.push(k);
        }
    }
    let mut p = Policy {
        catalog: Arc::new(catalog),
        keys,
        update_keys: view
            .update_keys
            .iter()
            .filter_map(|k| crate::zone::name(&k.name).ok())
            .collect(),
        allow_recursion: view.allow_recursion.clone(),
        forwarding: !view.upstream.is_empty(),
        secondaries: view
            .secondaries
            .iter()
            .map(|s| SecondaryAcl {
                ip: s.address.ip(),
                key: s.key.as_ref().and_then(|k| crate::zone::name(&k.name).ok()),
            })
            .collect(),
        fast: Default::default(),
    };
    p.fast = fast_table(&p);
    p
}

/// `pol` with `catalog` in place of its zones (keys and lists kept), fast path rebuilt.
pub fn with_catalog(pol: &Policy, catalog: Catalog) -> Policy {
    let mut p = Policy {
        catalog: Arc::new(catalog),
        keys: pol.keys.clone(),
        update_keys: pol.update_keys.clone(),
        allow_recursion: pol.allow_recursion.clone(),
        forwarding: pol.forwarding,
        secondaries: pol.secondaries.clone(),
        fast: Default::default(),
    };
    p.fast = fast_table(&p);
    p
}

/// The fast path's table for `p`, every answer made by the general path ([`handle`]).
pub fn fast_table(p: &Policy) -> FastTable {
    let stats = Stats::default();
    let src: IpAddr = [0, 0, 0, 0].into();
    FastTable::build(&p.catalog, |bytes| {
        match handle(p, bytes, src, Transport::Udp, 0, &stats) {
            Decision::Reply(b) => Some(b),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    //! The fast path must answer as the general path it is built from.
    use super::*;
    use crate::answer::tests::catalog_with;
    use crate::fast::answer;
    use hickory_proto::op::{Edns, Message, Query};
    use hickory_proto::rr::RecordType;

    fn policy() -> Policy {
        policy_with(false)
    }

    fn policy_with(cuts: bool) -> Policy {
        Policy {
            catalog: Arc::new(catalog_with(cuts)),
            keys: vec![],
            update_keys: vec![],
            allow_recursion: vec!["192.168.10.0/24".parse().unwrap()],
            forwarding: true,
            secondaries: vec![],
            fast: Default::default(),
        }
    }

    /// The fast path must produce what the general path produces (apart from the letter case
    /// it echoes, which both keep).
    #[test]
    fn fast_equals_general() {
        let p = policy();
        let t = fast_table(&p);
        let cases = [
            ("MAIN.it-ishin.com.", RecordType::A, true),
            ("main.it-ishin.com.", RecordType::AAAA, false),
            ("nothere.it-ishin.com.", RecordType::A, true),
            ("deep.it-ishin.com.", RecordType::A, false),
            ("it-ishin.com.", RecordType::NS, true),
            ("it-ishin.com.", RecordType::SOA, false),
        ];
        for (n, ty, edns) in cases {
            for src in ["192.168.10.7", "203.0.113.1"] {
                let mut m = Message::query();
                m.metadata.id = 0xbeef;
                m.metadata.recursion_desired = true;
                m.add_query(Query::query(Name::from_ascii(n).unwrap(), ty));
                if edns {
                    let mut e = Edns::new();
                    e.set_max_payload(4096);
                    m.set_edns(e);
                }
                let b = m.to_vec().unwrap();
                let src: IpAddr = src.parse().unwrap();
                let mut out = Vec::new();
                assert!(answer(&t, &b, &mut out, || p.may_recurse(src)), "{n} {ty}");
                let Decision::Reply(g) = handle(&p, &b, src, Transport::Udp, 0, &Stats::default())
                else {
                    panic!()
                };
                let (f, g) = (
                    Message::from_vec(&out).unwrap(),
                    Message::from_vec(&g).unwrap(),
                );
                assert_eq!(f.metadata, g.metadata, "{n} {ty}");
                assert_eq!(f.queries, g.queries);
                assert_eq!(f.answers, g.answers, "{n} {ty}");
                assert_eq!(f.authorities, g.authorities, "{n} {ty}");
                assert_eq!(f.additionals, g.additionals, "{n} {ty}");
                assert_eq!(f.edns.is_some(), g.edns.is_some());
            }
        }
        // CNAME owners, ANY and names outside: general path.
        for (n, ty) in [
            ("ns.it-ishin.com.", RecordType::A),
            ("main.it-ishin.com.", RecordType::ANY),
            ("www.example.org.", RecordType::A),
        ] {
            let mut m = Message::query();
            m.add_query(Query::query(Name::from_ascii(n).unwrap(), ty));
            let mut out = Vec::new();
            assert!(!answer(&t, &m.to_vec().unwrap(), &mut out, || false));
        }
    }

    #[test]
    fn wildcards_and_cuts_keep_negatives_general() {
        let mut p = policy_with(true);
        p.fast = fast_table(&p);
        let mut out = Vec::new();
        for n in [
            "pc1.dyn.it-ishin.com.",
            "www.child.it-ishin.com.",
            "nothere.it-ishin.com.",
        ] {
            let mut m = Message::query();
            m.add_query(Query::query(Name::from_ascii(n).unwrap(), RecordType::A));
            assert!(
                !answer(&p.fast, &m.to_vec().unwrap(), &mut out, || false),
                "{n}"
            );
        }
    }

    #[test]
    fn odd_requests_fall_back() {
        let p = policy();
        let t = fast_table(&p);
        let mut out = Vec::new();
        assert!(!answer(&t, b"", &mut out, || false));
        assert!(!answer(&t, &[0u8; 40], &mut out, || false));
        let mut lp = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        lp.extend([0xc0, 12, 0, 1, 0, 1]);
        assert!(!answer(&t, &lp, &mut out, || false));
    }
}
