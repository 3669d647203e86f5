//! What of an upstream's answer is passed on (issue 19.8), as resolvers scrub what they cache:
//!
//! - answer section: only the question's CNAME chain (from the question name, through CNAMEs,
//!   to the records of the asked type), at most [`MAX_CHAIN`] links; anything else is dropped;
//! - upstream data never stands for names in our own zones: the chain stops at the first name
//!   of ours (the CNAME pointing there is kept), the upstream's rcode and authority for it are
//!   dropped, and [`complete`] answers that name from our zones (a delegated name: the chain
//!   stays cut);
//! - authority section: only SOA and NS records owned by an ancestor of the chain's last name
//!   (in bailiwick) and outside our zones;
//! - additional section: never passed on;
//! - TTLs capped at [`TTL_CAP`].
//!
//! [`scrub`] runs before caching (what is cached is upstream data only), [`complete`] on every
//! answer (so local changes show at once). Pure.

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::answer::lookup;
use crate::zone::Catalog;

/// Longest TTL passed on and cached (one day, Unbound's `cache-max-ttl`; BIND's
/// `max-cache-ttl` is a week).
pub const TTL_CAP: u32 = 86_400;
/// Longest CNAME chain followed in an upstream answer.
pub const MAX_CHAIN: usize = 8;

fn cname_at<'a>(answers: &'a [Record], owner: &Name) -> Option<&'a Record> {
    answers
        .iter()
        .find(|r| &r.name == owner && matches!(r.data, RData::CNAME(_)))
}

fn target(r: &Record) -> Option<&Name> {
    match &r.data {
        RData::CNAME(c) => Some(&c.0),
        _ => None,
    }
}

/// Reduces the upstream answer `m` to the question `q` to what may be passed on and cached.
pub fn scrub(q: &Query, m: &mut Message, own: &Catalog) {
    let qtype = q.query_type();
    let mut kept = Vec::new();
    let mut cur = q.name().clone();
    let mut into_own = false;
    for hop in 0..=MAX_CHAIN {
        if own.find(&cur).is_some() {
            into_own = true;
            break;
        }
        // A CNAME leaves no room for other data at its name (RFC 1034 3.6.2): it is followed.
        let follow = !matches!(qtype, RecordType::CNAME | RecordType::ANY);
        let Some(c) = cname_at(&m.answers, &cur).filter(|_| follow) else {
            kept.extend(
                m.answers
                    .iter()
                    .filter(|r| {
                        r.name == cur && (qtype == RecordType::ANY || r.record_type() == qtype)
                    })
                    .cloned(),
            );
            break;
        };
        let Some(next) = target(c).cloned() else {
            break;
        };
        if hop == MAX_CHAIN || kept.iter().any(|r: &Record| r.name == next) || next == *q.name() {
            break; // too long, or a loop
        }
        kept.push(c.clone());
        cur = next;
    }
    m.answers = kept;
    if into_own {
        m.metadata.response_code = ResponseCode::NoError;
        m.authorities.clear();
    } else {
        m.authorities.retain(|r| {
            matches!(r.record_type(), RecordType::SOA | RecordType::NS)
                && r.name.zone_of(&cur)
                && own.find(&r.name).is_none()
        });
    }
    m.additionals.clear();
    for r in m.answers.iter_mut().chain(m.authorities.iter_mut()) {
        r.ttl = r.ttl.min(TTL_CAP);
    }
}

/// When the chain of the scrubbed answer `resp` to `q` leads into one of our zones, answers the
/// rest from our data (RFC 6604: the rcode is that of the last name).
pub fn complete(q: &Query, resp: &mut Message, own: &Catalog) {
    let qtype = q.query_type();
    if matches!(qtype, RecordType::CNAME | RecordType::ANY) {
        return;
    }
    let mut cur = q.name().clone();
    for _ in 0..=MAX_CHAIN {
        match cname_at(&resp.answers, &cur).and_then(target) {
            Some(next) => cur = next.clone(),
            None => break,
        }
    }
    if cur == *q.name() || own.find(&cur).is_none() {
        return;
    }
    match lookup(own, &cur, qtype) {
        Some(a) if !a.referral => {
            resp.metadata.response_code = a.rcode;
            resp.answers.extend(a.answers);
            resp.authorities = a.authorities;
        }
        _ => {} // delegated from our zone: the chain stays cut at the CNAME
    }
}

#[cfg(test)]
mod tests;
