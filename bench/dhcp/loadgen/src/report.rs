//! The report: perfdhcp's layout for the family (sent/received packets, drops, drops ratio and
//! delays per message pair; scripts that read perfdhcp read this too), then one summary line.

use crate::args::Args;
use crate::exchange::{self, Exchanges};
use crate::family::Names;

#[derive(Debug)]
pub(crate) struct Report<'a> {
    pub(crate) a: &'a Args,
    pub(crate) names: Names,
    pub(crate) x: &'a Exchanges,
    pub(crate) malformed: u64,
    pub(crate) non_unique: u64,
    pub(crate) wall_ns: u64,
    pub(crate) last_discover_ns: u64,
    pub(crate) user_us: u64,
    pub(crate) sys_us: u64,
    pub(crate) ticks: u64,
    pub(crate) send_stalls: u64,
}

fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// perfdhcp's report layout (so scripts that read perfdhcp read this too), then one summary line.
pub(crate) fn report(r: &Report<'_>) {
    let c = &r.x.counts;
    let n = &r.names;
    let secs = r.a.secs as f64;
    println!("***Rate statistics***");
    println!(
        "Rate: {:.2} 4-way exchanges/second, expected rate: {} ({}s sent at {:.2}/s, the last at {:.3} s)",
        c.acks as f64 / secs,
        r.a.rate,
        n.first_msg,
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
        n.first,
        c.discovers,
        c.offers,
        c.discovers - c.offers,
        "",
        &r.x.offer_delay,
    );
    // "received packets" counts ACKs only (completed exchanges, what scripts read); a NAK (a
    // REPLY without an address) is an answer, so it is neither received nor a drop
    let nak_line = format!("{}: {}", n.refused, c.naks);
    let rdrops = c.requests - c.acks - c.naks;
    section(
        n.second,
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
        "loadgen offered={} {}={} {}={:.4}% request_drop={:.4}% {}={} non_unique={} loadgen_cpu={:.0}% loadgen_us_per_exchange={:.1}",
        r.a.rate,
        n.done_key,
        c.acks / r.a.secs,
        n.first_drop_key,
        pct(c.discovers - c.offers, c.discovers),
        pct(c.requests - c.acks - c.naks, c.requests),
        n.refused_key,
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
