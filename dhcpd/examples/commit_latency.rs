//! Measures how long a lease change waits from entering the writer to its durable commit, with
//! the embedded store holding many leases (the journal fold is what stalls it).
//!
//! It plays the writer thread's part without the network: changes (renewals of random leases)
//! arrive at a steady rate; at most one transaction per 10 ms (as `server/writer.rs` paces them) takes
//! everything that arrived meanwhile. For each commit it records the wait of the oldest change in
//! it. Bounded in time and count.
//!
//! `cargo run --release -p dhcpd --example commit_latency -- [leases] [rate/s] [seconds] [dir]`
//! (defaults 100000 6000 20 and a temporary folder).

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use dhcpd::lease::{Change, KeySource, Lease, LeaseState};
use dhcpd::store::{LeaseStore, RedbStore};

const PACE: Duration = Duration::from_millis(10);

fn lease(n: u32, expires: u64) -> Lease {
    let mac = [
        2,
        0x66,
        (n >> 24) as u8,
        (n >> 16) as u8,
        (n >> 8) as u8,
        n as u8,
    ];
    Lease {
        ip: Ipv4Addr::from(0x0a14_0000 + n),
        client: [&[1][..], &mac[..]].concat(),
        key_source: KeySource::Hardware,
        hwaddr: mac.to_vec(),
        hostname: None,
        starts: expires - 3600,
        expires,
        state: LeaseState::Bound,
    }
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, d: u64| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    let (leases, rate, secs) = (
        arg(0, 100_000).min(4_000_000) as u32,
        arg(1, 6000).clamp(1, 200_000),
        arg(2, 20).min(300),
    );
    let tmp = tempfile::tempdir().expect("temporary folder");
    let dir = args
        .get(3)
        .map_or_else(|| tmp.path().to_owned(), std::path::PathBuf::from);
    let path = dir.join("latency.redb");
    let _ = std::fs::remove_file(&path);
    let mut store = RedbStore::open(&path).expect("open");

    let t = Instant::now();
    let all: Vec<Change> = (0..leases).map(|n| Change::Put(lease(n, 10_000))).collect();
    for chunk in all.chunks(4096) {
        store.commit(chunk).expect("prefill");
    }
    println!(
        "prefilled {leases} leases in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs(secs);
    let mut issued: u64 = 0;
    let mut waits = Vec::new();
    let mut commits = Vec::new();
    let mut last: Option<Instant> = None;
    while Instant::now() < end {
        if let Some(l) = last {
            let due = l + PACE;
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        let start = Instant::now();
        last = Some(start);
        let arrived = ((start - t0).as_secs_f64() * rate as f64) as u64;
        if arrived <= issued {
            continue;
        }
        let oldest = t0 + Duration::from_secs_f64(issued as f64 / rate as f64);
        let group: Vec<Change> = (issued..arrived)
            .map(|i| Change::Put(lease((next() % u64::from(leases)) as u32, 20_000 + i)))
            .collect();
        issued = arrived;
        store.commit_groups(&[&group], 0).expect("commit");
        let done = Instant::now();
        waits.push(done - oldest);
        commits.push(done - start);
    }
    waits.sort();
    commits.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{} changes in {} commits over {secs} s at {rate}/s with {leases} leases",
        issued,
        commits.len()
    );
    println!(
        "wait of the oldest change per commit (ms): p50 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}",
        ms(pct(&waits, 0.5)),
        ms(pct(&waits, 0.99)),
        ms(pct(&waits, 0.999)),
        ms(*waits.last().unwrap())
    );
    println!(
        "commit duration (ms): p50 {:.1}  p99 {:.1}  max {:.1}; commits over 50 ms: {}",
        ms(pct(&commits, 0.5)),
        ms(pct(&commits, 0.99)),
        ms(*commits.last().unwrap()),
        commits
            .iter()
            .filter(|d| **d > Duration::from_millis(50))
            .count()
    );
    drop(store);
    let mut check = RedbStore::open(&path).expect("reopen");
    let n = check.load().expect("load").len();
    assert_eq!(n, leases as usize, "every lease still there");
}
