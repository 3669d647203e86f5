//! Forwarding to the upstream resolvers with a TTL cache (negative answers too, RFC 2308);
//! upstream answers are scrubbed first ([`scrub`]).

pub mod scrub;

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::handler::Transport;
use crate::message::{encode, response_to, udp_limit};
use crate::peers::Peers;
use crate::stats::Stats;
use crate::zone::Catalog;

/// Entries kept at most; beyond it expired entries are purged, then the insert is skipped.
const CACHE_MAX: usize = 20_000;
/// Negative TTL when the upstream sent no SOA.
const NEG_DEFAULT: u32 = 60;
/// Longest time anything stays cached.
const TTL_MAX: u32 = scrub::TTL_CAP;
/// Time to wait for one upstream.
const UPSTREAM_TIMEOUT: Duration = Duration::from_millis(1500);
/// Largest answer over TCP (the two-byte length prefix).
pub const TCP_LIMIT: usize = 65_535;

/// A cached upstream answer.
#[derive(Debug, Clone)]
pub struct Cached {
    /// Response code.
    pub rcode: ResponseCode,
    /// Answers.
    pub answers: Vec<Record>,
    /// Authority (SOA for negatives).
    pub authorities: Vec<Record>,
    stored: Instant,
    expires: Instant,
}

/// The cache.
#[derive(Debug, Default)]
pub struct Cache {
    map: Mutex<HashMap<(Name, RecordType), Cached>>,
}

impl Cache {
    /// Entries held (live or not yet swept).
    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A live entry with TTLs lowered by its age.
    pub fn get(&self, name: &Name, t: RecordType, now: Instant) -> Option<Cached> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let c = map.get(&(name.to_lowercase(), t))?;
        if c.expires <= now {
            return None;
        }
        let age = u32::try_from(now.duration_since(c.stored).as_secs()).unwrap_or(u32::MAX);
        let mut c = c.clone();
        for r in c.answers.iter_mut().chain(c.authorities.iter_mut()) {
            r.ttl = r.ttl.saturating_sub(age);
        }
        Some(c)
    }

    /// Stores an upstream response according to its TTLs; SERVFAIL and friends are not kept.
    pub fn put(&self, name: &Name, t: RecordType, resp: &Message, now: Instant) {
        let ttl = match resp.response_code {
            ResponseCode::NoError if !resp.answers.is_empty() => {
                resp.answers.iter().map(|r| r.ttl).min().unwrap_or(0)
            }
            ResponseCode::NoError | ResponseCode::NXDomain => resp
                .authorities
                .iter()
                .find_map(|r| match &r.data {
                    RData::SOA(s) => Some(r.ttl.min(s.minimum)),
                    _ => None,
                })
                .unwrap_or(NEG_DEFAULT),
            _ => 0,
        }
        .min(TTL_MAX);
        if ttl == 0 {
            return;
        }
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= CACHE_MAX {
            map.retain(|_, c| c.expires > now);
            if map.len() >= CACHE_MAX {
                return;
            }
        }
        map.insert(
            (name.to_lowercase(), t),
            Cached {
                rcode: resp.response_code,
                answers: resp.answers.clone(),
                authorities: resp.authorities.clone(),
                stored: now,
                expires: now + Duration::from_secs(u64::from(ttl)),
            },
        );
    }
}

/// Answers the forwarded request `req` (from the cache, else from the upstreams, scrubbed
/// against our zones `own`), encoded for `transport`: over UDP within the client's size limit
/// (TC beyond it), over TCP whole.
pub async fn answer(
    cache: &Cache,
    upstreams: &[SocketAddr],
    own: &Catalog,
    req: &Message,
    transport: Transport,
    stats: &Stats,
) -> Option<Vec<u8>> {
    let q: Query = req.queries.first()?.clone();
    let mut resp = response_to(req, ResponseCode::NoError);
    resp.metadata.recursion_available = true;
    let now = Instant::now();
    match cache.get(q.name(), q.query_type(), now) {
        Some(c) => {
            stats.cache_hits.inc();
            resp.metadata.response_code = c.rcode;
            resp.answers = c.answers;
            resp.authorities = c.authorities;
        }
        None => {
            stats.cache_misses.inc();
            match resolve(upstreams, &q, &stats.peers).await {
                Some(mut m) => {
                    scrub::scrub(&q, &mut m, own);
                    cache.put(q.name(), q.query_type(), &m, now);
                    resp.metadata.response_code = m.response_code;
                    resp.answers = m.answers;
                    resp.authorities = m.authorities;
                }
                None => resp.metadata.response_code = ResponseCode::ServFail,
            }
        }
    }
    if resp.metadata.response_code != ResponseCode::ServFail {
        scrub::complete(&q, &mut resp, own);
    }
    let limit = match transport {
        Transport::Udp => udp_limit(req),
        Transport::Tcp => TCP_LIMIT,
    };
    encode(resp, None, limit, stats)
}

fn random_id() -> u16 {
    let mut h = std::hash::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
    );
    h.finish() as u16
}

/// Asks the upstreams in order; the first valid answer wins. Falls back to TCP on TC.
/// Each upstream's answer or silence is recorded in `peers`.
pub async fn resolve(upstreams: &[SocketAddr], q: &Query, peers: &Peers) -> Option<Message> {
    for up in upstreams {
        let id = random_id();
        let mut m = Message::new(id, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = true;
        m.add_query(q.clone());
        let mut e = Edns::new();
        e.set_max_payload(1232);
        m.set_edns(e);
        let Ok(bytes) = m.to_vec() else { return None };
        let got = match tokio::time::timeout(UPSTREAM_TIMEOUT, udp(*up, &bytes, id, q)).await {
            Ok(Some(r)) if r.truncation => {
                tokio::time::timeout(UPSTREAM_TIMEOUT, tcp(*up, &bytes, id, q))
                    .await
                    .ok()
                    .flatten()
            }
            Ok(Some(r)) => Some(r),
            _ => None,
        };
        peers.upstream(*up, got.is_some(), crate::clock::unix_now());
        match got {
            Some(r) => return Some(r),
            None => tracing::debug!(upstream = %up, "no answer from upstream"),
        }
    }
    None
}

fn matches(r: &Message, id: u16, q: &Query) -> bool {
    r.id == id
        && r.message_type == MessageType::Response
        && r.queries.len() == 1
        && r.queries[0].name() == q.name()
        && r.queries[0].query_type() == q.query_type()
}

async fn udp(up: SocketAddr, bytes: &[u8], id: u16, q: &Query) -> Option<Message> {
    let bind: SocketAddr = if up.is_ipv4() {
        "0.0.0.0:0".parse().ok()?
    } else {
        "[::]:0".parse().ok()?
    };
    let s = tokio::net::UdpSocket::bind(bind).await.ok()?;
    s.connect(up).await.ok()?;
    s.send(bytes).await.ok()?;
    let mut buf = vec![0u8; 4096];
    loop {
        let n = s.recv(&mut buf).await.ok()?;
        if let Ok(r) = Message::from_vec(&buf[..n])
            && matches(&r, id, q)
        {
            return Some(r);
        }
    }
}

async fn tcp(up: SocketAddr, bytes: &[u8], id: u16, q: &Query) -> Option<Message> {
    let mut s = tokio::net::TcpStream::connect(up).await.ok()?;
    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(bytes);
    s.write_all(&framed).await.ok()?;
    let len = s.read_u16().await.ok()?;
    let mut buf = vec![0u8; usize::from(len)];
    s.read_exact(&mut buf).await.ok()?;
    Message::from_vec(&buf).ok().filter(|r| matches(r, id, q))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::{A, SOA};

    #[test]
    fn positive_and_negative_ttls() {
        let c = Cache::default();
        let n = Name::from_ascii("www.example.org.").unwrap();
        let t0 = Instant::now();
        let mut m = Message::new(1, MessageType::Response, OpCode::Query);
        m.add_answer(Record::from_rdata(
            n.clone(),
            100,
            RData::A(A::new(1, 2, 3, 4)),
        ));
        c.put(&n, RecordType::A, &m, t0);
        let got = c
            .get(&n, RecordType::A, t0 + Duration::from_secs(40))
            .unwrap();
        assert_eq!(got.answers[0].ttl, 60);
        assert!(
            c.get(&n, RecordType::A, t0 + Duration::from_secs(100))
                .is_none()
        );

        let mut neg = Message::new(1, MessageType::Response, OpCode::Query);
        neg.metadata.response_code = ResponseCode::NXDomain;
        let soa = SOA::new(n.clone(), n.clone(), 1, 1, 1, 1, 30);
        neg.add_authority(Record::from_rdata(n.clone(), 3600, RData::SOA(soa)));
        let nx = Name::from_ascii("nx.example.org.").unwrap();
        c.put(&nx, RecordType::A, &neg, t0);
        let got = c
            .get(&nx, RecordType::A, t0 + Duration::from_secs(29))
            .unwrap();
        assert_eq!(got.rcode, ResponseCode::NXDomain);
        assert!(
            c.get(&nx, RecordType::A, t0 + Duration::from_secs(30))
                .is_none()
        );

        let mut fail = Message::new(1, MessageType::Response, OpCode::Query);
        fail.metadata.response_code = ResponseCode::ServFail;
        let sf = Name::from_ascii("sf.example.org.").unwrap();
        c.put(&sf, RecordType::A, &fail, t0);
        assert!(c.get(&sf, RecordType::A, t0).is_none());
    }
}
