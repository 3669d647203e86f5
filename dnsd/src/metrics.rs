//! Per-answer metrics that stay off the fast path's critical cost: answers by question type and
//! response code, and the time a request spends in the server. Each UDP worker thread owns one
//! [`Slots`] (its own cache lines, so no two cores write the same line); the TCP, forwarding and
//! update tasks share one more. A scrape adds them up ([`crate::collector::Collector`]).
//!
//! The type and rcode are read back from the encoded answer ([`classify`]): the fast path never
//! decodes the request, and reading 2 + 1 bytes of what it wrote costs less than carrying them.
//! Latency on UDP is measured per receive batch (from `recvmmsg` returning to `sendmmsg` done) and
//! attributed to each answer of the batch: an upper bound of each answer's time in the server,
//! for two clock reads per batch instead of two per query.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Question types with their own label; the rest are `other`.
pub const QTYPES: [(u16, &str); 14] = [
    (1, "A"),
    (2, "NS"),
    (5, "CNAME"),
    (6, "SOA"),
    (12, "PTR"),
    (15, "MX"),
    (16, "TXT"),
    (28, "AAAA"),
    (33, "SRV"),
    (64, "SVCB"),
    (65, "HTTPS"),
    (251, "IXFR"),
    (252, "AXFR"),
    (255, "ANY"),
];
const NQ: usize = QTYPES.len() + 1;
/// Header response codes 0..=10 by name; anything else is `other`.
pub const RCODES: [&str; 11] = [
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET",
    "NXRRSET", "NOTAUTH", "NOTZONE",
];
const NR: usize = RCODES.len() + 1;
/// Upper bounds of the latency buckets, in microseconds (the last bucket is +Inf).
pub const BUCKETS_US: [u64; 16] = [
    10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000,
    500_000, 1_000_000,
];
const NB: usize = BUCKETS_US.len() + 1;

fn qtype_label(i: usize) -> &'static str {
    QTYPES.get(i).map_or("other", |q| q.1)
}

fn rcode_label(i: usize) -> &'static str {
    RCODES.get(i).copied().unwrap_or("other")
}

fn qtype_index(t: u16) -> usize {
    QTYPES.iter().position(|q| q.0 == t).unwrap_or(QTYPES.len())
}

/// (question type index, rcode index) of an encoded answer; `None` when it is not a message.
/// An answer without a question (FORMERR, NOTIMP) counts as type `other`.
pub fn classify(resp: &[u8]) -> Option<(usize, usize)> {
    if resp.len() < 12 {
        return None;
    }
    let rc = usize::from(resp[3] & 0x0f).min(NR - 1);
    if u16::from_be_bytes([resp[4], resp[5]]) == 0 {
        return Some((NQ - 1, rc));
    }
    let mut i = 12;
    loop {
        let l = *resp.get(i)?;
        if l == 0 {
            i += 1;
            break;
        }
        if l & 0xc0 == 0xc0 {
            i += 2;
            break;
        }
        i += 1 + usize::from(l);
    }
    let t = u16::from_be_bytes([*resp.get(i)?, *resp.get(i + 1)?]);
    Some((qtype_index(t), rc))
}

fn bucket(d: Duration) -> usize {
    let us = d.as_micros();
    BUCKETS_US
        .iter()
        .position(|&b| us <= u128::from(b))
        .unwrap_or(NB - 1)
}

/// One writer's counters (a UDP worker, or the tasks on the runtime).
#[repr(align(128))]
#[derive(Debug)]
pub struct Slots {
    answers: [AtomicU64; NQ * NR],
    buckets: [AtomicU64; NB],
    sum_ns: AtomicU64,
}

impl Default for Slots {
    fn default() -> Self {
        Slots {
            answers: std::array::from_fn(|_| AtomicU64::new(0)),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_ns: AtomicU64::new(0),
        }
    }
}

impl Slots {
    /// Counts the encoded answer `resp`.
    #[inline]
    pub fn answer(&self, resp: &[u8]) {
        if let Some((q, r)) = classify(resp) {
            self.answers[q * NR + r].fetch_add(1, Relaxed);
        }
    }

    /// Records `n` requests that each spent at most `d` in the server.
    #[inline]
    pub fn latency(&self, d: Duration, n: u64) {
        if n == 0 {
            return;
        }
        self.buckets[bucket(d)].fetch_add(n, Relaxed);
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_ns.fetch_add(ns.saturating_mul(n), Relaxed);
    }
}

/// Every writer's slots.
#[derive(Debug, Default)]
pub struct Metrics {
    all: Mutex<Vec<Arc<Slots>>>,
    /// The slots of the tasks on the runtime (TCP, forwarding, updates).
    pub tasks: Arc<Slots>,
}

/// Sums over every writer, taken at scrape (or `dnsd status`) time.
#[derive(Debug, Clone, PartialEq)]
pub struct Totals {
    /// Non-zero (qtype, rcode, count).
    pub answers: Vec<(&'static str, &'static str, u64)>,
    /// (upper bound in seconds, count in this bucket), the last bound infinite.
    pub buckets: Vec<(f64, u64)>,
    /// Sum of the latencies in seconds.
    pub sum_seconds: f64,
    /// Number of latency observations.
    pub count: u64,
}

impl Metrics {
    /// New slots for one more writer (a UDP worker thread).
    pub fn slots(&self) -> Arc<Slots> {
        let s = Arc::new(Slots::default());
        self.all
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(s.clone());
        s
    }

    /// Adds up every writer.
    pub fn totals(&self) -> Totals {
        let all = self.all.lock().unwrap_or_else(|e| e.into_inner());
        let mut answers = [0u64; NQ * NR];
        let mut buckets = [0u64; NB];
        let mut sum = 0u64;
        for s in all.iter().chain(std::iter::once(&self.tasks)) {
            for (a, x) in answers.iter_mut().zip(&s.answers) {
                *a += x.load(Relaxed);
            }
            for (b, x) in buckets.iter_mut().zip(&s.buckets) {
                *b += x.load(Relaxed);
            }
            sum = sum.saturating_add(s.sum_ns.load(Relaxed));
        }
        Totals {
            answers: answers
                .iter()
                .enumerate()
                .filter(|(_, n)| **n > 0)
                .map(|(i, n)| (qtype_label(i / NR), rcode_label(i % NR), *n))
                .collect(),
            buckets: BUCKETS_US
                .iter()
                .map(|&b| b as f64 / 1e6)
                .chain(std::iter::once(f64::INFINITY))
                .zip(buckets)
                .collect(),
            sum_seconds: sum as f64 / 1e9,
            count: buckets.iter().sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Message, Query, ResponseCode};
    use hickory_proto::rr::{Name, RecordType};

    fn answer(t: RecordType, rc: ResponseCode) -> Vec<u8> {
        let mut m = Message::query();
        m.add_query(Query::query(
            Name::from_ascii("www.it-ishin.com.").unwrap(),
            t,
        ));
        m.metadata.message_type = hickory_proto::op::MessageType::Response;
        m.metadata.response_code = rc;
        m.to_vec().unwrap()
    }

    #[test]
    fn classify_reads_type_and_rcode_from_the_answer() {
        let a = answer(RecordType::AAAA, ResponseCode::NXDomain);
        assert_eq!(classify(&a), Some((qtype_index(28), 3)));
        let p = answer(RecordType::PTR, ResponseCode::NoError);
        assert_eq!(classify(&p), Some((qtype_index(12), 0)));
        let odd = answer(RecordType::CAA, ResponseCode::Refused);
        assert_eq!(classify(&odd), Some((NQ - 1, 5)));
        // No question (NOTIMP answers): type `other`.
        let mut m = Message::query();
        m.metadata.response_code = ResponseCode::NotImp;
        assert_eq!(classify(&m.to_vec().unwrap()), Some((NQ - 1, 4)));
        // Truncated garbage: not counted, no panic.
        assert_eq!(classify(&a[..14]), None);
        assert_eq!(classify(&[0u8; 5]), None);
        for n in 0..a.len() {
            let _ = classify(&a[..n]);
        }
        let mut long = a.clone();
        long[12] = 63; // a label running past the end
        assert_eq!(classify(&long), None);
    }

    #[test]
    fn totals_add_every_writer() {
        let m = Metrics::default();
        let (w1, w2) = (m.slots(), m.slots());
        let a = answer(RecordType::A, ResponseCode::NoError);
        w1.answer(&a);
        w2.answer(&a);
        m.tasks
            .answer(&answer(RecordType::MX, ResponseCode::Refused));
        w1.latency(Duration::from_micros(40), 2);
        m.tasks.latency(Duration::from_secs(5), 1);
        let t = m.totals();
        assert_eq!(t.answers, vec![("A", "NOERROR", 2), ("MX", "REFUSED", 1)]);
        assert_eq!(t.count, 3);
        assert_eq!(t.buckets[2], (50e-6, 2));
        assert_eq!(t.buckets.last().unwrap(), &(f64::INFINITY, 1));
        assert!((t.sum_seconds - 5.00008).abs() < 1e-9);
    }
}
