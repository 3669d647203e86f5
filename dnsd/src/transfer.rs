//! Zone transfers out (AXFR, IXFR from the journal) over TCP, TSIG-signed as a chain.

use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::op::{Message, ResponseCode};

use crate::clock::unix_now;
use crate::message::{encode, response_to};
use crate::state::Shared;
use crate::stats::Stats;
use crate::tsig::{TsigCtx, chained};
use crate::zone::ZoneData;

/// Records per AXFR message.
const AXFR_CHUNK: usize = 400;

/// The messages answering a transfer request the handler allowed: IXFR from the journal when
/// the client's serial is in it, else the whole zone.
pub async fn serve_transfer(
    shared: &Shared,
    z: Arc<ZoneData>,
    req: &Message,
    t: Option<&TsigCtx>,
    peer: IpAddr,
) -> Vec<Vec<u8>> {
    let client = req.authorities.iter().find_map(|r| match &r.data {
        hickory_proto::rr::RData::SOA(s) => Some(s.serial),
        _ => None,
    });
    let journal = match client {
        Some(_) => {
            let w = shared.writer.lock().await;
            w.store.journal(&z.origin.to_ascii()).unwrap_or_default()
        }
        None => Vec::new(),
    };
    match client.and_then(|c| crate::zone::ixfr(&z, c, &journal)) {
        Some(recs) => {
            shared.stats.ixfr_out.inc();
            shared.stats.peers.transferred(
                peer,
                &z.origin.to_ascii(),
                z.serial(),
                true,
                unix_now(),
            );
            tracing::info!(%peer, zone = %z.origin, from = client, serial = z.serial(), "incremental zone transfer");
            transfer_records(recs, req, t, &shared.stats)
        }
        None => {
            shared.stats.axfr_out.inc();
            shared.stats.peers.transferred(
                peer,
                &z.origin.to_ascii(),
                z.serial(),
                false,
                unix_now(),
            );
            tracing::info!(%peer, zone = %z.origin, serial = z.serial(), "zone transfer");
            transfer(&z, req, t, &shared.stats)
        }
    }
}

/// The AXFR messages for `z`: SOA, every record, SOA (RFC 5936). With TSIG the first message
/// is signed over the request MAC and the later ones chain on the previous MAC with the timers
/// only (RFC 8945 5.3.1).
pub fn transfer(
    z: &ZoneData,
    req: &Message,
    tsig: Option<&TsigCtx>,
    stats: &Stats,
) -> Vec<Vec<u8>> {
    let mut recs = z.all_records();
    recs.push(z.soa.clone());
    transfer_records(recs, req, tsig, stats)
}

/// The messages carrying `recs` (an AXFR or IXFR answer), signed as [`transfer`] says.
pub fn transfer_records(
    recs: Vec<hickory_proto::rr::Record>,
    req: &Message,
    tsig: Option<&TsigCtx>,
    stats: &Stats,
) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut prev_mac: Vec<u8> = Vec::new();
    for (i, c) in recs.chunks(AXFR_CHUNK).enumerate() {
        let mut m = response_to(req, ResponseCode::NoError);
        m.metadata.authoritative = true;
        m.answers = c.to_vec();
        let bytes = match (i, tsig) {
            (_, None) => encode(m, None, 65535, stats),
            (0, Some(t)) => encode(m, Some(t), 65535, stats),
            (_, Some(t)) => chained(&mut m, t, &prev_mac),
        };
        let Some(b) = bytes else { break };
        if tsig.is_some() {
            match Message::from_vec(&b).ok().and_then(|mm| mm.signature) {
                Some(sig) => prev_mac = sig.data.mac.clone(),
                None => break,
            }
        }
        out.push(b);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::unix_now;
    use crate::handler::{Decision, Transport, handle};
    use crate::policy::{Policy, SecondaryAcl};
    use crate::zone::{Catalog, ZoneSource, build, name};
    use hickory_proto::op::Query;
    use hickory_proto::rr::RecordType;
    use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
    use hickory_proto::rr::rdata::{A, SOA};
    use hickory_proto::rr::{RData, Record, TSigner};

    #[test]
    fn multi_message_axfr_tsig_chain_verifies() {
        let origin = name("big.test.").unwrap();
        let src = ZoneSource {
            origin: origin.clone(),
            soa: Record::from_rdata(
                origin.clone(),
                60,
                RData::SOA(SOA::new(origin.clone(), origin.clone(), 0, 1, 1, 1, 1)),
            ),
            records: (0..900u32)
                .map(|i| {
                    Record::from_rdata(
                        name(&format!("h{i}.big.test.")).unwrap(),
                        60,
                        RData::A(A::from(std::net::Ipv4Addr::from(0x0a00_0000 + i))),
                    )
                })
                .collect(),
        };
        let signer = TSigner::new(
            b"0123456789abcdef".to_vec(),
            TsigAlgorithm::HmacSha256,
            name("xfr.").unwrap(),
            300,
        )
        .unwrap();
        let p = Policy {
            catalog: Arc::new(Catalog {
                zones: vec![Arc::new(build(&src, vec![], 7))],
            }),
            keys: vec![signer.clone()],
            update_keys: vec![],
            allow_recursion: vec![],
            forwarding: false,
            secondaries: vec![SecondaryAcl {
                ip: "192.0.2.1".parse().unwrap(),
                key: Some(name("xfr.").unwrap()),
            }],
            fast: Default::default(),
        };
        let now = unix_now();
        let mut req = Message::query();
        req.metadata.id = 77;
        req.add_query(Query::query(origin.clone(), RecordType::AXFR));
        let (sig, verifier) = signer.sign_message(&req, now).unwrap();
        req.set_signature(sig);
        let bytes = req.to_vec().unwrap();
        let stats = Stats::default();
        // Unsigned from the right address: refused (the secondary needs its key).
        let mut plain = req.clone();
        plain.signature = None;
        let d = handle(
            &p,
            &plain.to_vec().unwrap(),
            "192.0.2.1".parse().unwrap(),
            Transport::Tcp,
            now,
            &stats,
        );
        assert!(matches!(d, Decision::Reply(_)));
        let Decision::Transfer(z, r, t) = handle(
            &p,
            &bytes,
            "192.0.2.1".parse().unwrap(),
            Transport::Tcp,
            now,
            &stats,
        ) else {
            panic!("expected a transfer")
        };
        let out = transfer(&z, &r, t.as_ref(), &stats);
        assert_eq!(out.len(), 3);
        let mut v = verifier.unwrap();
        let mut n = 0;
        for b in &out {
            let m = v.verify(b).expect("TSIG chain verifies");
            n += m.answers.len();
        }
        assert_eq!(n, 902);
    }
}
