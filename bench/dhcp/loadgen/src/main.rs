//! loadgen: a light DHCP load generator that behaves like
//! `perfdhcp -4 -l RELAY -r RATE -p SECS -R CLIENTS SERVER` (a relay agent starting 4-way
//! exchanges at a fixed rate) or `perfdhcp -6 -l IFACE -r RATE -p SECS -R CLIENTS` (clients on a
//! link, SOLICIT/ADVERTISE/REQUEST/REPLY with IA_NA, multicast to ff02::1:2) but costs a
//! fraction of perfdhcp's CPU, so that on a small machine the server, not the generator, is what
//! a benchmark measures.
//!
//! One thread. Every tick (1 ms by default) it reads every queued reply with recvmmsg, answers
//! each OFFER (ADVERTISE) with its REQUEST, and sends the DISCOVERs (SOLICITs) that are due by
//! then (rate x elapsed), all with sendmmsg; then it sleeps to the next tick. After SECS it sends
//! nothing new and waits at most DRAIN for the replies still owed, then prints a perfdhcp-style
//! report and exits.

mod args;
mod exchange;
mod family;
mod io;
mod packet;
mod packet6;
mod report;

use std::net::{SocketAddr, SocketAddrV6};
use std::process::ExitCode;

use args::{Args, Target};
use exchange::{Action, Exchanges};
use family::Family;
use io::Pkt;
use packet::Clients;

/// Cap on exchanges per run (the table holds 12 bytes per exchange plus 20 per ACK); DHCPv6's
/// 24-bit transaction ids allow fewer (`Family::xid_mask`).
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
    bufs: Vec<Pkt>,
    idx: Vec<u64>,
}

/// The family, the socket (bound, with the server's address) and the command line's echo.
fn open(a: &Args) -> std::io::Result<(Family, io::Udp, i32, String)> {
    Ok(match &a.target {
        Target::V4 { local, server } => {
            let (udp, rcvbuf) = io::Udp::bind(
                SocketAddr::V4(*local),
                None,
                SocketAddr::V4(*server),
                a.sockbuf,
            )?;
            let echo = format!("-4 -l {} {}", local.ip(), server.ip());
            (Family::v4(*local.ip()), udp, rcvbuf, echo)
        }
        Target::V6 {
            iface,
            local_port,
            server,
            server_port,
        } => {
            // the link's index is the scope of ff02::1:2 (and of a link-local server address)
            let scope = io::if_index(iface)?;
            let local = SocketAddrV6::new(std::net::Ipv6Addr::UNSPECIFIED, *local_port, 0, 0);
            let dst = SocketAddrV6::new(*server, *server_port, 0, scope);
            let (udp, rcvbuf) = io::Udp::bind(
                SocketAddr::V6(local),
                Some(iface),
                SocketAddr::V6(dst),
                a.sockbuf,
            )?;
            (Family::v6(), udp, rcvbuf, format!("-6 -l {iface} {server}"))
        }
    })
}

fn run(a: &Args) -> std::io::Result<()> {
    let total = a.rate * a.secs;
    let (fam, mut udp, rcvbuf, echo) = open(a)?;
    let cap = MAX_EXCHANGES.min(u64::from(fam.xid_mask()) + 1);
    if total > cap {
        return Err(std::io::Error::other(format!(
            "rate x seconds = {total} exchanges, more than the {cap} one run may hold"
        )));
    }
    let start_ns = io::mono_ns();
    let base = a
        .xid_base
        .unwrap_or((start_ns as u32) ^ std::process::id().rotate_left(16));
    let mut x = Exchanges::new(
        base,
        fam.xid_mask(),
        Clients::new(a.clients),
        total as usize,
    );
    println!(
        "Running: loadgen {echo} -r {} -p {} -R {} (tick {} us, drain {} ms, socket buffer {} bytes, xid base {:#010x})",
        a.rate,
        a.secs,
        a.clients,
        a.tick_us,
        a.drain_ms,
        rcvbuf,
        base & fam.xid_mask()
    );

    let mut dbufs = vec![fam.first(); io::BATCH];
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
                let Some(r) = udp.datagram(i).map(|d| fam.parse(d)) else {
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
                    pending.bufs.push(fam.request(xid, mac, &addr, server_id));
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
                fam.stamp(b, xid, mac);
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
    report::report(&report::Report {
        a,
        names: fam.names(),
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
