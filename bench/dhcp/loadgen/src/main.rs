//! loadgen: a light DHCPv4 load generator that behaves like
//! `perfdhcp -4 -l RELAY -r RATE -p SECS -R CLIENTS SERVER` (a relay agent starting 4-way
//! exchanges at a fixed rate) but costs a fraction of perfdhcp's CPU, so that on a small machine
//! the server, not the generator, is what a benchmark measures.
//!
//! One thread. Every tick (1 ms by default) it reads every queued reply with recvmmsg, answers
//! each OFFER with its REQUEST, and sends the DISCOVERs that are due by then (rate x elapsed), all
//! with sendmmsg; then it sleeps to the next tick. After SECS it sends nothing new and waits at
//! most DRAIN for the replies still owed, then prints a perfdhcp-style report and exits.

mod args;
mod exchange;
mod io;
mod packet;

use std::process::ExitCode;

use args::Args;
use exchange::{Action, Exchanges};
use packet::{Clients, REQ_LEN};

/// Cap on exchanges per run (the table holds 12 bytes per exchange plus 8 per ACK).
const MAX_EXCHANGES: u64 = 20_000_000;

fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("loadgen: {e}\n\n{}", args::USAGE);
            return ExitCode::from(64);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Pending REQUESTs: the OFFERs answered since the last send.
#[derive(Debug)]
struct Pending {
    bufs: Vec<[u8; REQ_LEN]>,
    idx: Vec<u64>,
}

fn run(a: &Args) -> std::io::Result<()> {
    let total = a.rate * a.secs;
    if total > MAX_EXCHANGES {
        return Err(std::io::Error::other(format!(
            "rate x seconds = {total} exchanges, more than the {MAX_EXCHANGES} one run may hold"
        )));
    }
    let (mut udp, rcvbuf) = io::Udp::bind(a.local, a.server, a.sockbuf)?;
    let start_ns = io::mono_ns();
    let base = a
        .xid_base
        .unwrap_or((start_ns as u32) ^ std::process::id().rotate_left(16));
    let mut x = Exchanges::new(base, Clients::new(a.clients), total as usize);
    println!(
        "Running: loadgen -l {} -r {} -p {} -R {} {} (tick {} us, drain {} ms, socket buffer {} bytes, xid base {:#010x})",
        a.local.ip(),
        a.rate,
        a.secs,
        a.clients,
        a.server.ip(),
        a.tick_us,
        a.drain_ms,
        rcvbuf,
        base
    );

    let discover = packet::discover_template(*a.local.ip());
    let request = packet::request_template(*a.local.ip());
    let mut dbufs = vec![discover; io::BATCH];
    let mut pending = Pending {
        bufs: Vec::with_capacity(1024),
        idx: Vec::with_capacity(1024),
    };
    let mut malformed = 0u64;
    let period_ns = a.secs * 1_000_000_000;
    let end_ns = period_ns + a.drain_ms * 1_000_000;
    let tick_ns = a.tick_us * 1_000;
    let (u0, s0) = io::cpu_us();
    let mut next_tick = start_ns;
    let mut last_discover_ns = 0u64;
    let mut ticks = 0u64;
    let mut send_stalls = 0u64;

    loop {
        let now_ns = io::mono_ns() - start_ns;
        let now_us = (now_ns / 1_000) as u32;
        ticks += 1;

        // 1. every reply queued: OFFERs become pending REQUESTs
        loop {
            let n = udp.recv_batch()?;
            for i in 0..n {
                let Some(r) = udp.datagram(i).map(packet::parse_reply) else {
                    malformed += 1;
                    continue;
                };
                let Ok(r) = r else {
                    malformed += 1;
                    continue;
                };
                if let Action::Request {
                    idx,
                    xid,
                    mac,
                    addr,
                    server_id,
                } = x.on_reply(&r, now_us)
                {
                    let mut b = request;
                    packet::stamp_request(&mut b, xid, mac, addr, server_id);
                    pending.bufs.push(b);
                    pending.idx.push(idx);
                }
            }
            if n < io::BATCH {
                break;
            }
        }

        // 2. the REQUESTs (a full socket buffer keeps the rest for the next tick)
        let mut sent = 0;
        while sent < pending.bufs.len() {
            let want = (pending.bufs.len() - sent).min(io::BATCH);
            let k = udp.send_batch(&pending.bufs[sent..sent + want])?;
            for &idx in &pending.idx[sent..sent + k] {
                x.request_sent(idx, now_us);
            }
            sent += k;
            if k < want {
                send_stalls += 1;
                break;
            }
        }
        pending.bufs.drain(..sent);
        pending.idx.drain(..sent);

        // 3. the DISCOVERs due by now
        let due = due(now_ns.min(period_ns), a.rate).min(total);
        while x.opened() < due {
            let k = ((due - x.opened()) as usize).min(io::BATCH);
            for b in dbufs.iter_mut().take(k) {
                let (xid, mac) = x.open(now_us);
                packet::stamp(b, xid, mac);
            }
            let s = udp.send_batch(&dbufs[..k])?;
            if s < k {
                // the socket buffer is full: the unsent ones go out at the next tick
                x.unopen((k - s) as u64);
                send_stalls += 1;
                break;
            }
            last_discover_ns = now_ns;
        }

        // 4. done: all sent and all answered, or the drain is over
        let all_answered = x.opened() >= total && x.outstanding() == 0 && pending.bufs.is_empty();
        if now_ns >= end_ns || (now_ns >= period_ns && all_answered) {
            break;
        }
        // a late tick (the machine was busy) is not made up with a burst of empty ticks
        next_tick = (next_tick + tick_ns).max(io::mono_ns());
        io::sleep_until(next_tick);
    }

    let wall_ns = io::mono_ns() - start_ns;
    let (u1, s1) = io::cpu_us();
    let non_unique = x.non_unique_addresses();
    report(&Report {
        a,
        x: &x,
        malformed,
        non_unique,
        wall_ns,
        last_discover_ns,
        user_us: u1 - u0,
        sys_us: s1 - s0,
        ticks,
        send_stalls,
    });
    Ok(())
}

/// DISCOVERs due `elapsed_ns` into the run at `rate` per second.
fn due(elapsed_ns: u64, rate: u64) -> u64 {
    (u128::from(elapsed_ns) * u128::from(rate) / 1_000_000_000) as u64
}

#[derive(Debug)]
struct Report<'a> {
    a: &'a Args,
    x: &'a Exchanges,
    malformed: u64,
    non_unique: u64,
    wall_ns: u64,
    last_discover_ns: u64,
    user_us: u64,
    sys_us: u64,
    ticks: u64,
    send_stalls: u64,
}

fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// perfdhcp's report layout (so scripts that read perfdhcp read this too), then one summary line.
fn report(r: &Report<'_>) {
    let c = &r.x.counts;
    let secs = r.a.secs as f64;
    println!("***Rate statistics***");
    println!(
        "Rate: {:.2} 4-way exchanges/second, expected rate: {} (DISCOVERs sent at {:.2}/s, the last at {:.3} s)",
        c.acks as f64 / secs,
        r.a.rate,
        c.discovers as f64 / secs,
        r.last_discover_ns as f64 / 1e9
    );
    println!();
    println!("***Malformed Packets***");
    println!("Malformed packets: {}", r.malformed);
    // drops: requests that got no answer by the end of the drain
    let section =
        |name: &str, sent: u64, rcvd: u64, drops: u64, other: &str, d: &exchange::Delays| {
            println!("***Statistics for: {name}***");
            println!("sent packets: {sent}");
            println!("received packets: {rcvd}");
            println!("drops: {drops}");
            println!("drops ratio: {:.4} %", pct(drops, sent));
            if !other.is_empty() {
                println!("{other}");
            }
            println!(
                "late replies (> {} ms, perfdhcp's drop time): {}",
                exchange::LATE_US / 1000,
                d.late
            );
            println!();
            if d.n > 0 {
                println!("min delay: {:.3} ms", f64::from(d.min_us) / 1e3);
                println!("avg delay: {:.3} ms", d.avg_us() / 1e3);
                println!("p50 delay: {:.1} ms", f64::from(d.quantile_us(0.5)) / 1e3);
                println!("p99 delay: {:.1} ms", f64::from(d.quantile_us(0.99)) / 1e3);
                println!("max delay: {:.3} ms", f64::from(d.max_us) / 1e3);
                println!(
                    "(delays are measured at the generator's tick, {} us resolution)",
                    r.a.tick_us
                );
            }
            println!();
        };
    section(
        "DISCOVER-OFFER",
        c.discovers,
        c.offers,
        c.discovers - c.offers,
        "",
        &r.x.offer_delay,
    );
    // "received packets" counts ACKs only (completed exchanges, what scripts read); a NAK is an
    // answer, so it is neither received nor a drop
    let nak_line = format!("naks: {}", c.naks);
    let rdrops = c.requests - c.acks - c.naks;
    section(
        "REQUEST-ACK",
        c.requests,
        c.acks,
        rdrops,
        &nak_line,
        &r.x.ack_delay,
    );
    println!(
        "orphans: {} duplicates: {} unusable: {} non unique addresses: {} send stalls (full socket buffer): {}",
        c.orphans, c.duplicates, c.unusable, r.non_unique, r.send_stalls
    );
    let cpu_us = r.user_us + r.sys_us;
    let wall = r.wall_ns as f64 / 1e9;
    println!(
        "CPU: user {:.3} s, system {:.3} s over {:.3} s wall ({} ticks): {:.0}% of one core, {:.1} us per completed exchange",
        r.user_us as f64 / 1e6,
        r.sys_us as f64 / 1e6,
        wall,
        r.ticks,
        cpu_us as f64 / 1e4 / wall,
        if c.acks > 0 {
            cpu_us as f64 / c.acks as f64
        } else {
            0.0
        }
    );
    println!(
        "loadgen offered={} acks_per_s={} discover_drop={:.4}% request_drop={:.4}% naks={} non_unique={} loadgen_cpu={:.0}% loadgen_us_per_exchange={:.1}",
        r.a.rate,
        c.acks / r.a.secs,
        pct(c.discovers - c.offers, c.discovers),
        pct(c.requests - c.acks - c.naks, c.requests),
        c.naks,
        r.non_unique,
        cpu_us as f64 / 1e4 / wall,
        if c.acks > 0 {
            cpu_us as f64 / c.acks as f64
        } else {
            0.0
        }
    );
}

#[cfg(test)]
mod tests {
    use super::due;

    #[test]
    fn pacing_is_rate_times_elapsed() {
        assert_eq!(due(0, 20_000), 0);
        assert_eq!(due(1_000_000, 20_000), 20); // 1 ms
        assert_eq!(due(1_500_000_000, 20_000), 30_000);
        assert_eq!(due(10_000_000_000, 30_000), 300_000);
        // no overflow at the bounds args allows
        assert_eq!(due(3_600_000_000_000, 1_000_000), 3_600_000_000);
    }
}
