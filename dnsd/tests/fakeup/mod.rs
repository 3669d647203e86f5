//! A fake upstream resolver for the forwarding tests: UDP and TCP on one address inside a test
//! host, answering from a table of canned answers. Over UDP it behaves like a real server
//! (answers that do not fit the client's size get TC and no records) unless a name asks for TC
//! anyway.

#![allow(dead_code)] // each test file uses its own subset

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use e2e::Host;
use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, CNAME, NS, TXT};
use hickory_proto::rr::{Name, RData, Record};

/// The sections of one canned answer.
#[derive(Debug, Clone, Default)]
pub(crate) struct Canned {
    /// Response code.
    pub(crate) rcode: ResponseCode,
    /// Answer section.
    pub(crate) answers: Vec<Record>,
    /// Authority section.
    pub(crate) authorities: Vec<Record>,
    /// Additional section.
    pub(crate) additionals: Vec<Record>,
    /// Over UDP: send these sections with TC set instead, whatever the size.
    pub(crate) udp_tc: Option<Box<Canned>>,
}

/// What the fake upstream answers for a lowercase question name (any type); NXDOMAIN else.
pub(crate) type Table = Vec<(String, Canned)>;

/// A running fake upstream; stops serving when dropped.
pub(crate) struct FakeUpstream {
    /// Where it listens (UDP and TCP).
    pub(crate) addr: SocketAddr,
    stop: Arc<AtomicBool>,
    /// Questions received over UDP.
    pub(crate) udp_queries: Arc<AtomicU32>,
    /// Questions received over TCP.
    pub(crate) tcp_queries: Arc<AtomicU32>,
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Starts the fake upstream on `addr` inside `host` (sockets bound in its namespace).
pub(crate) fn start(host: &Host, addr: SocketAddr, table: Table) -> FakeUpstream {
    let (udp, tcp) = host.enter(|| {
        let u = UdpSocket::bind(addr).expect("fake upstream: bind UDP");
        let t = TcpListener::bind(addr).expect("fake upstream: bind TCP");
        (u, t)
    });
    let table = Arc::new(table);
    let stop = Arc::new(AtomicBool::new(false));
    let udp_queries = Arc::new(AtomicU32::new(0));
    let tcp_queries = Arc::new(AtomicU32::new(0));
    udp.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    {
        let (table, stop, n) = (table.clone(), stop.clone(), udp_queries.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !stop.load(Ordering::Relaxed) {
                let Ok((len, peer)) = udp.recv_from(&mut buf) else {
                    continue;
                };
                n.fetch_add(1, Ordering::Relaxed);
                if let Some(out) = respond(&table, &buf[..len], false) {
                    let _ = udp.send_to(&out, peer);
                }
            }
        });
    }
    {
        let (table, stop, n) = (table.clone(), stop.clone(), tcp_queries.clone());
        std::thread::spawn(move || {
            for conn in tcp.incoming() {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(mut c) = conn else { continue };
                let _ = c.set_read_timeout(Some(Duration::from_secs(3)));
                let mut len = [0u8; 2];
                while c.read_exact(&mut len).is_ok() {
                    let mut q = vec![0u8; usize::from(u16::from_be_bytes(len))];
                    if c.read_exact(&mut q).is_err() {
                        break;
                    }
                    n.fetch_add(1, Ordering::Relaxed);
                    let Some(out) = respond(&table, &q, true) else {
                        break;
                    };
                    let mut framed = (out.len() as u16).to_be_bytes().to_vec();
                    framed.extend_from_slice(&out);
                    if c.write_all(&framed).is_err() {
                        break;
                    }
                }
            }
        });
    }
    FakeUpstream {
        addr,
        stop,
        udp_queries,
        tcp_queries,
    }
}

fn respond(table: &Table, bytes: &[u8], tcp: bool) -> Option<Vec<u8>> {
    let req = Message::from_vec(bytes).ok()?;
    let q = req.queries.first()?.clone();
    let qname = q.name().to_lowercase().to_ascii();
    let qname = qname.trim_end_matches('.');
    let canned = table
        .iter()
        .find(|(n, _)| n == qname)
        .map(|(_, c)| c.clone())
        .unwrap_or(Canned {
            rcode: ResponseCode::NXDomain,
            ..Canned::default()
        });
    let limit = match &req.edns {
        Some(e) => usize::from(e.max_payload().max(512)),
        None => 512,
    };
    let (canned, force_tc) = match (&canned.udp_tc, tcp) {
        (Some(c), false) => ((**c).clone(), true),
        _ => (canned, false),
    };
    let mut m = Message::new(req.id, MessageType::Response, req.op_code);
    m.metadata.recursion_desired = req.recursion_desired;
    m.metadata.recursion_available = true;
    m.metadata.response_code = canned.rcode;
    m.add_query(q);
    m.answers = canned.answers;
    m.authorities = canned.authorities;
    m.additionals = canned.additionals;
    if let Some(e) = &req.edns {
        let mut r = hickory_proto::op::Edns::new();
        r.set_max_payload(e.max_payload());
        m.set_edns(r);
    }
    m.metadata.truncation = force_tc;
    let out = m.to_vec().ok()?;
    if tcp || out.len() <= limit {
        return Some(out);
    }
    let mut t = m.truncate();
    t.metadata.truncation = true;
    t.to_vec().ok()
}

/// `name`, absolute.
pub(crate) fn name(s: &str) -> Name {
    Name::from_ascii(format!("{}.", s.trim_end_matches('.'))).unwrap()
}

/// `owner TTL A ip`.
pub(crate) fn a(owner: &str, ttl: u32, ip: [u8; 4]) -> Record {
    Record::from_rdata(
        name(owner),
        ttl,
        RData::A(A::new(ip[0], ip[1], ip[2], ip[3])),
    )
}

/// `owner TTL CNAME target`.
pub(crate) fn cname(owner: &str, ttl: u32, target: &str) -> Record {
    Record::from_rdata(name(owner), ttl, RData::CNAME(CNAME(name(target))))
}

/// `owner TTL NS target`.
pub(crate) fn ns(owner: &str, ttl: u32, target: &str) -> Record {
    Record::from_rdata(name(owner), ttl, RData::NS(NS(name(target))))
}

/// `owner TTL TXT text`.
pub(crate) fn txt(owner: &str, ttl: u32, text: &str) -> Record {
    Record::from_rdata(
        name(owner),
        ttl,
        RData::TXT(TXT::new(vec![text.to_owned()])),
    )
}

/// `n` A records for `owner`: 10.x.y.z.
pub(crate) fn many_a(owner: &str, n: u32, x: u8) -> Vec<Record> {
    (0..n)
        .map(|i| a(owner, 300, [10, x, (i / 250) as u8, (i % 250 + 1) as u8]))
        .collect()
}
