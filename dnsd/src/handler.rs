//! The request path as a pure function: bytes in, a [`Decision`] out. The socket layer only
//! receives, calls [`handle`], and carries out the decision (send, forward, update, transfer).

use std::net::IpAddr;

use hickory_proto::op::{Message, OpCode, ResponseCode};
use hickory_proto::rr::rdata::tsig::TsigError;
use hickory_proto::rr::{DNSClass, RecordType, TSigResponseContext};

use crate::answer::lookup;
use crate::message::{encode, formerr, response_to, udp_limit};
use crate::policy::Policy;
use crate::stats::Stats;
use crate::tsig::TsigCtx;

/// How the request arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Datagram: answers are size-limited and may be truncated.
    Udp,
    /// Stream: answers up to 65535 bytes, transfers allowed.
    Tcp,
}

/// What to do with a request.
#[derive(Debug)]
pub enum Decision {
    /// Send these bytes back.
    Reply(Vec<u8>),
    /// Send nothing.
    Drop,
    /// Resolve through the upstream resolvers (the client is allowed).
    Forward(Box<Message>),
    /// Apply a dynamic update (TSIG verified, key allowed, zone ours).
    Update(Box<Message>, TsigCtx),
    /// Stream the zone (TCP, ACL passed).
    Transfer(
        std::sync::Arc<crate::zone::ZoneData>,
        Box<Message>,
        Option<TsigCtx>,
    ),
}

enum TsigCheck {
    None,
    Ok(TsigCtx),
    Fail(Vec<u8>),
}

fn check_tsig(p: &Policy, req: &Message, bytes: &[u8], now: u64) -> TsigCheck {
    let Some(sig) = &req.signature else {
        return TsigCheck::None;
    };
    let keyname = sig.name.to_lowercase();
    let mut resp = response_to(req, ResponseCode::NotAuth);
    let Some(signer) = p
        .keys
        .iter()
        .find(|k| k.signer_name().to_lowercase() == keyname)
    else {
        tracing::warn!(key = %keyname, "TSIG with an unknown key");
        let ctx = TSigResponseContext::unknown_key(req.id, now, sig.name.clone());
        return tsig_error(&mut resp, ctx);
    };
    match signer.verify_message_byte(bytes, None, true) {
        Ok((mac, _t, range)) if range.contains(&now) || range.end == now => {
            TsigCheck::Ok(TsigCtx {
                signer: signer.clone(),
                request_mac: mac,
                now,
            })
        }
        Ok((mac, _, _)) => {
            tracing::warn!(key = %keyname, "TSIG time outside the fudge window");
            let ctx = TSigResponseContext::new(
                req.id,
                now,
                signer.clone(),
                mac,
                Some(TsigError::BadTime),
            );
            tsig_error(&mut resp, ctx)
        }
        Err(e) => {
            tracing::warn!(key = %keyname, "TSIG verification failed: {e}");
            let ctx = TSigResponseContext::bad_signature(req.id, now, signer.clone());
            tsig_error(&mut resp, ctx)
        }
    }
}

fn tsig_error(resp: &mut Message, ctx: TSigResponseContext) -> TsigCheck {
    let Ok(bytes) = resp.to_vec() else {
        return TsigCheck::Fail(Vec::new());
    };
    match ctx.sign(&bytes) {
        Ok(rec) => {
            resp.set_signature(rec);
            TsigCheck::Fail(resp.to_vec().unwrap_or(bytes))
        }
        Err(_) => TsigCheck::Fail(bytes),
    }
}

fn reply(resp: Message, tsig: Option<&TsigCtx>, limit: usize, stats: &Stats) -> Decision {
    if resp.response_code == ResponseCode::Refused {
        stats.refused.inc();
    }
    match encode(resp, tsig, limit, stats) {
        Some(b) => Decision::Reply(b),
        None => Decision::Drop,
    }
}

/// Decides what to do with one request from `src`.
pub fn handle(
    p: &Policy,
    bytes: &[u8],
    src: IpAddr,
    transport: Transport,
    now_unix: u64,
    stats: &Stats,
) -> Decision {
    if bytes.len() < 12 || bytes[2] & 0x80 != 0 {
        // Too short for a header, or a response (never answer those: reflection loops).
        stats.malformed.inc();
        return Decision::Drop;
    }
    let req = match Message::from_vec(bytes) {
        Ok(m) => m,
        Err(e) => {
            stats.malformed.inc();
            tracing::debug!(%src, "malformed request: {e}");
            return formerr(bytes).map_or(Decision::Drop, Decision::Reply);
        }
    };
    stats.queries.inc();
    let limit = match transport {
        Transport::Udp => udp_limit(&req),
        Transport::Tcp => usize::from(u16::MAX),
    };
    if let Some(e) = &req.edns
        && e.version() > 0
    {
        return reply(response_to(&req, ResponseCode::BADVERS), None, limit, stats);
    }
    let checked = check_tsig(p, &req, bytes, now_unix);
    if matches!(checked, TsigCheck::Fail(_)) {
        stats.tsig_failures.inc();
    }
    let tsig = match checked {
        TsigCheck::None => None,
        TsigCheck::Ok(t) => Some(t),
        TsigCheck::Fail(b) if b.is_empty() => return Decision::Drop,
        TsigCheck::Fail(b) => return Decision::Reply(b),
    };
    match req.op_code {
        OpCode::Query => query(p, req, src, transport, tsig, limit, stats),
        OpCode::Update => update(p, req, tsig, limit, stats),
        // We are the primary: a NOTIFY to us is not for a zone we follow.
        OpCode::Notify => reply(
            response_to(&req, ResponseCode::Refused),
            tsig.as_ref(),
            limit,
            stats,
        ),
        _ => {
            stats.notimp.inc();
            let mut r = response_to(&req, ResponseCode::NotImp);
            r.queries.clear();
            reply(r, tsig.as_ref(), limit, stats)
        }
    }
}

fn query(
    p: &Policy,
    req: Message,
    src: IpAddr,
    transport: Transport,
    tsig: Option<TsigCtx>,
    limit: usize,
    stats: &Stats,
) -> Decision {
    let ixfr = req.queries.first().map(|q| q.query_type()) == Some(RecordType::IXFR);
    if req.queries.len() != 1 || !req.answers.is_empty() || (!req.authorities.is_empty() && !ixfr) {
        stats.malformed.inc();
        return reply(
            response_to(&req, ResponseCode::FormErr),
            tsig.as_ref(),
            limit,
            stats,
        );
    }
    let q = req.queries[0].clone();
    let recurse = p.may_recurse(src);
    let mut resp = response_to(&req, ResponseCode::NoError);
    resp.metadata.recursion_available = recurse;
    if q.query_class() != DNSClass::IN && q.query_class() != DNSClass::ANY {
        resp.metadata.response_code = ResponseCode::Refused;
        return reply(resp, tsig.as_ref(), limit, stats);
    }
    if matches!(q.query_type(), RecordType::AXFR | RecordType::IXFR) {
        let zone = p.catalog.get(&q.name().to_lowercase());
        let allowed = p.secondaries.iter().any(|s| {
            s.ip == src
                && match &s.key {
                    None => true,
                    Some(k) => tsig
                        .as_ref()
                        .is_some_and(|t| t.signer.signer_name().to_lowercase() == *k),
                }
        });
        return match (zone, transport, allowed) {
            // IXFR over UDP (RFC 1995 2): the current SOA tells the client to use TCP or that
            // it is up to date.
            (Some(z), Transport::Udp, true) if ixfr => {
                resp.metadata.authoritative = true;
                resp.answers = vec![z.soa.clone()];
                reply(resp, tsig.as_ref(), limit, stats)
            }
            (Some(z), Transport::Tcp, true) => {
                stats.transfers.inc();
                Decision::Transfer(z.clone(), Box::new(req), tsig)
            }
            (None, _, _) => {
                resp.metadata.response_code = ResponseCode::NotAuth;
                reply(resp, tsig.as_ref(), limit, stats)
            }
            _ => {
                tracing::info!(%src, zone = %q.name(), "zone transfer refused");
                resp.metadata.response_code = ResponseCode::Refused;
                reply(resp, tsig.as_ref(), limit, stats)
            }
        };
    }
    match lookup(&p.catalog, q.name(), q.query_type()) {
        Some(a) => {
            resp.metadata.authoritative = !a.referral;
            resp.metadata.response_code = a.rcode;
            resp.answers = a.answers;
            resp.authorities = a.authorities;
            resp.additionals = a.additionals;
            for r in resp
                .answers
                .iter_mut()
                .chain(resp.authorities.iter_mut())
                .chain(resp.additionals.iter_mut())
            {
                // Echo the client's spelling for the owner it asked about (0x20 resolvers).
                if r.name == *q.name() {
                    r.name = q.name().clone();
                }
            }
            reply(resp, tsig.as_ref(), limit, stats)
        }
        None if recurse && req.recursion_desired => {
            stats.forwarded.inc();
            Decision::Forward(Box::new(req))
        }
        None => {
            resp.metadata.response_code = ResponseCode::Refused;
            reply(resp, tsig.as_ref(), limit, stats)
        }
    }
}

fn update(
    p: &Policy,
    req: Message,
    tsig: Option<TsigCtx>,
    limit: usize,
    stats: &Stats,
) -> Decision {
    if req.queries.len() != 1 || req.queries[0].query_type() != RecordType::SOA {
        stats.malformed.inc();
        return reply(
            response_to(&req, ResponseCode::FormErr),
            tsig.as_ref(),
            limit,
            stats,
        );
    }
    let zname = req.queries[0].name().to_lowercase();
    if p.catalog.get(&zname).is_none() {
        stats.updates_refused.inc();
        return reply(
            response_to(&req, ResponseCode::NotAuth),
            tsig.as_ref(),
            limit,
            stats,
        );
    }
    match tsig {
        Some(t)
            if p.update_keys
                .iter()
                .any(|k| *k == t.signer.signer_name().to_lowercase()) =>
        {
            Decision::Update(Box::new(req), t)
        }
        t => {
            tracing::info!(zone = %zname, "update refused: not signed with an update key");
            stats.updates_refused.inc();
            // A request signed with a known key that may not update is still answered
            // signed with that key (RFC 8945 5.3).
            reply(
                response_to(&req, ResponseCode::Refused),
                t.as_ref(),
                limit,
                stats,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer::tests::catalog;
    use crate::policy::SecondaryAcl;
    use hickory_proto::op::{Edns, Query};
    use hickory_proto::rr::Name;
    use std::sync::Arc;

    fn policy() -> Policy {
        Policy {
            catalog: Arc::new(catalog()),
            keys: vec![],
            update_keys: vec![],
            allow_recursion: vec!["192.168.10.0/24".parse().unwrap()],
            forwarding: true,
            secondaries: vec![SecondaryAcl {
                ip: "192.168.1.1".parse().unwrap(),
                key: None,
            }],
            fast: Default::default(),
        }
    }

    fn q(name: &str, t: RecordType) -> Message {
        let mut m = Message::query();
        m.metadata.id = 0x1234;
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
        m
    }

    fn run(m: &Message, src: &str, tr: Transport) -> Decision {
        handle(
            &policy(),
            &m.to_vec().unwrap(),
            src.parse().unwrap(),
            tr,
            0,
            &Stats::default(),
        )
    }

    fn decoded(d: Decision) -> Message {
        match d {
            Decision::Reply(b) => Message::from_vec(&b).unwrap(),
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    #[test]
    fn authoritative_answer_has_aa_and_id() {
        let r = decoded(run(
            &q("main.it-ishin.com.", RecordType::A),
            "192.168.10.5",
            Transport::Udp,
        ));
        assert_eq!(r.id, 0x1234);
        assert!(r.authoritative);
        assert!(r.recursion_available);
        assert_eq!(r.answers.len(), 2);
    }

    #[test]
    fn outside_zones_forwarded_or_refused() {
        let m = q("www.example.org.", RecordType::A);
        assert!(matches!(
            run(&m, "192.168.10.5", Transport::Udp),
            Decision::Forward(_)
        ));
        let r = decoded(run(&m, "203.0.113.9", Transport::Udp));
        assert_eq!(r.response_code, ResponseCode::Refused);
        assert!(!r.recursion_available);
    }

    #[test]
    fn axfr_only_over_tcp_from_secondaries() {
        let m = q("it-ishin.com.", RecordType::AXFR);
        assert!(matches!(
            run(&m, "192.168.1.1", Transport::Tcp),
            Decision::Transfer(..)
        ));
        let r = decoded(run(&m, "192.168.10.5", Transport::Tcp));
        assert_eq!(r.response_code, ResponseCode::Refused);
        let r = decoded(run(&m, "192.168.1.1", Transport::Udp));
        assert_eq!(r.response_code, ResponseCode::Refused);
    }

    #[test]
    fn garbage_and_unknown_opcodes() {
        let s = Stats::default();
        let p = policy();
        let src: IpAddr = "192.168.10.5".parse().unwrap();
        assert!(matches!(
            handle(&p, b"abc", src, Transport::Udp, 0, &s),
            Decision::Drop
        ));
        // A header claiming one question and no question bytes: FORMERR with the ID.
        let bad = [0xab, 0xcd, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        let r = decoded(handle(&p, &bad, src, Transport::Udp, 0, &s));
        assert_eq!((r.id, r.response_code), (0xabcd, ResponseCode::FormErr));
        // Compression pointer loop.
        let mut lp = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        lp.extend([0xc0, 12, 0, 1, 0, 1]);
        let r = decoded(handle(&p, &lp, src, Transport::Udp, 0, &s));
        assert_eq!(r.response_code, ResponseCode::FormErr);
        let mut m = q("main.it-ishin.com.", RecordType::A);
        m.metadata.op_code = OpCode::Status;
        let r = decoded(handle(&p, &m.to_vec().unwrap(), src, Transport::Udp, 0, &s));
        assert_eq!(r.response_code, ResponseCode::NotImp);
        assert_eq!(s.malformed.get(), 3);
        assert_eq!(s.notimp.get(), 1);
    }

    #[test]
    fn big_answers_truncate_over_udp() {
        let s = Stats::default();
        let mut r = response_to(&q("x.", RecordType::A), ResponseCode::NoError);
        for i in 0..100u8 {
            r.add_answer(hickory_proto::rr::Record::from_rdata(
                Name::from_ascii("x.").unwrap(),
                60,
                hickory_proto::rr::RData::A(hickory_proto::rr::rdata::A::new(10, 0, 0, i)),
            ));
        }
        let b = encode(r.clone(), None, 512, &s).unwrap();
        let m = Message::from_vec(&b).unwrap();
        assert!(m.truncation && m.answers.is_empty());
        let b = encode(r, None, 65535, &s).unwrap();
        assert_eq!(Message::from_vec(&b).unwrap().answers.len(), 100);
    }

    /// RFC 8945 5.3: the answer to a correctly signed request is signed with the same key,
    /// refusals included (a key that may transfer but not update, or neither).
    #[test]
    fn refusals_of_signed_requests_are_signed() {
        use hickory_proto::rr::TSigner;
        use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
        let key = |n: &str| {
            TSigner::new(
                b"0123456789abcdef".to_vec(),
                TsigAlgorithm::HmacSha256,
                Name::from_ascii(n).unwrap(),
                300,
            )
            .unwrap()
        };
        let (upd, xfr) = (key("upd."), key("xfr."));
        let mut p = policy();
        p.keys = vec![upd.clone(), xfr.clone()];
        p.update_keys = vec![Name::from_ascii("upd.").unwrap()];
        let now = 1_700_000_000;
        let s = Stats::default();
        let src: IpAddr = "192.168.10.5".parse().unwrap();
        // An update signed with the transfer key, and a transfer from a host that is no
        // secondary, signed with the update key: both refused, both answers signed.
        let mut u = Message::new(7, hickory_proto::op::MessageType::Query, OpCode::Update);
        u.add_query(Query::query(
            Name::from_ascii("it-ishin.com.").unwrap(),
            RecordType::SOA,
        ));
        let x = q("it-ishin.com.", RecordType::AXFR);
        for (mut m, k, tr) in [(u, &xfr, Transport::Udp), (x, &upd, Transport::Tcp)] {
            let (sig, verifier) = k.sign_message(&m, now).unwrap();
            m.set_signature(sig);
            let Decision::Reply(b) = handle(&p, &m.to_vec().unwrap(), src, tr, now, &s) else {
                panic!("expected a reply");
            };
            let r = verifier
                .unwrap()
                .verify(&b)
                .expect("the refusal carries a valid TSIG of the request's key");
            assert_eq!(r.response_code, ResponseCode::Refused);
        }
        assert_eq!(s.updates_refused.get(), 1);
    }

    #[test]
    fn edns_limits() {
        let mut m = q("x.", RecordType::A);
        assert_eq!(udp_limit(&m), 512);
        let mut e = Edns::new();
        e.set_max_payload(65000);
        m.set_edns(e.clone());
        assert_eq!(udp_limit(&m), 1232);
        e.set_max_payload(100);
        m.set_edns(e);
        assert_eq!(udp_limit(&m), 512);
    }
}
