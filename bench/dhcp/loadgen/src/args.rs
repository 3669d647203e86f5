//! Command line: perfdhcp's spelling for what the two tools share (-4/-6 -l -r -p -R -L -N,
//! server last), long options for the rest. Every value is bounded so a typo cannot start an
//! endless or absurd run.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4};

pub(crate) const USAGE: &str = "\
usage: loadgen [-4] -l RELAY_ADDR -r RATE -p SECS [-R CLIENTS] [options] SERVER
       loadgen -6 -l IFACE -r RATE -p SECS [-R CLIENTS] [options] [SERVER]
  -l ADDR        -4: local (relay) address: bound as ADDR:67, sent as giaddr (required)
  -l IFACE       -6: the client's link: bound as [::]:546 on IFACE, SOLICITs to ff02::1:2 there
                 (or to SERVER, an IPv6 address); one DUID-LL per simulated client (required)
  -r RATE        new 4-way exchanges per second, 1..=1000000 (required)
  -p SECS        sending period in seconds, 1..=3600 (required)
  -R CLIENTS     simulated clients (distinct chaddrs/DUIDs), default 1; one per exchange until
                 used up
  -L PORT        local port (default 67; -6: 546)   -N PORT  server port (default 67; -6: 547)
  --drain MS     after SECS, wait at most MS for replies still owed (default 2000, max 60000)
  --tick US      send/receive tick in microseconds (default 1000, 50..=100000)
  --sockbuf B    socket send/receive buffer bytes (default 8388608)
  --xid-base N   first transaction id (default: derived from the clock)
Prints perfdhcp-style statistics and a summary line; exits 64 on a bad command line.";

/// Where the generator sends from and to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// DHCPv4, as a relay agent: bound to `local`, which is also the giaddr.
    V4 {
        local: SocketAddrV4,
        server: SocketAddrV4,
    },
    /// DHCPv6, as clients on the link `iface` (bound to [::]:`local_port` there).
    V6 {
        iface: String,
        local_port: u16,
        server: Ipv6Addr,
        server_port: u16,
    },
}

/// All DHCP relay agents and servers (RFC 8415 section 7.1): where perfdhcp -6 sends.
pub(crate) const ALL_SERVERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Args {
    pub(crate) target: Target,
    pub(crate) rate: u64,
    pub(crate) secs: u64,
    pub(crate) clients: u32,
    pub(crate) drain_ms: u64,
    pub(crate) tick_us: u64,
    pub(crate) sockbuf: i32,
    pub(crate) xid_base: Option<u32>,
}

fn num<T>(flag: &str, v: &str, lo: T, hi: T) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let n: T = v
        .parse()
        .map_err(|_| format!("{flag} {v:?}: not a number"))?;
    if n < lo || n > hi {
        return Err(format!("{flag} {v}: out of range, use {lo}..={hi}"));
    }
    Ok(n)
}

impl Args {
    pub(crate) fn parse(mut it: impl Iterator<Item = String>) -> Result<Self, String> {
        let (mut local, mut server, mut rate, mut secs) = (None, None, None, None);
        let (mut lport, mut sport, mut clients, mut v6) = (None, None, 1u32, false);
        let (mut drain_ms, mut tick_us, mut sockbuf, mut xid_base) =
            (2000u64, 1000u64, 8 << 20, None);
        while let Some(arg) = it.next() {
            if arg == "-4" || arg == "-6" {
                v6 = arg == "-6";
                continue;
            }
            if !arg.starts_with('-') {
                if server.is_some() {
                    return Err(format!("{arg:?}: only one server address"));
                }
                server = Some(arg);
                continue;
            }
            let v = it.next().ok_or_else(|| format!("{arg} needs a value"))?;
            match arg.as_str() {
                "-l" => local = Some(v),
                "-r" => rate = Some(num("-r", &v, 1, 1_000_000)?),
                "-p" => secs = Some(num("-p", &v, 1, 3600)?),
                "-R" => clients = num("-R", &v, 1, u32::MAX)?,
                "-L" => lport = Some(num("-L", &v, 1, u16::MAX)?),
                "-N" => sport = Some(num("-N", &v, 1, u16::MAX)?),
                "--drain" => drain_ms = num("--drain", &v, 0, 60_000)?,
                "--tick" => tick_us = num("--tick", &v, 50, 100_000)?,
                "--sockbuf" => sockbuf = num("--sockbuf", &v, 4096, 1 << 30)?,
                "--xid-base" => xid_base = Some(num("--xid-base", &v, 0, u32::MAX)?),
                _ => return Err(format!("unknown option {arg}")),
            }
        }
        let target = if v6 {
            let iface = local.ok_or("-6 needs -l IFACE, the client's link")?;
            if iface.is_empty() || iface.len() > 15 || iface.contains(['/', ' ', ':']) {
                return Err(format!(
                    "-l {iface:?}: not an interface name (-6 takes one)"
                ));
            }
            let server = match server {
                None => ALL_SERVERS,
                Some(s) => s
                    .parse::<Ipv6Addr>()
                    .map_err(|_| format!("server {s:?}: not an IPv6 address"))?,
            };
            Target::V6 {
                iface,
                local_port: lport.unwrap_or(546),
                server,
                server_port: sport.unwrap_or(547),
            }
        } else {
            let local = local
                .ok_or("-l RELAY_ADDR is required (perfdhcp's relay mode is the only mode)")?;
            let local = local
                .parse::<Ipv4Addr>()
                .map_err(|_| format!("-l {local:?}: not an IPv4 address"))?;
            let server = server.ok_or("the server address is required (last argument)")?;
            let server = server
                .parse::<Ipv4Addr>()
                .map_err(|_| format!("server {server:?}: not an IPv4 address"))?;
            Target::V4 {
                local: SocketAddrV4::new(local, lport.unwrap_or(67)),
                server: SocketAddrV4::new(server, sport.unwrap_or(67)),
            }
        };
        Ok(Self {
            target,
            rate: rate.ok_or("-r RATE is required")?,
            secs: secs.ok_or("-p SECS is required")?,
            clients,
            drain_ms,
            tick_us,
            sockbuf,
            xid_base,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Args, String> {
        Args::parse(s.split_whitespace().map(String::from))
    }

    #[test]
    fn perfdhcp_command_line() {
        let a = parse("-4 -l 10.20.0.2 -r 20000 -p 10 -R 1000000 10.20.0.1").unwrap();
        assert_eq!(
            a.target,
            Target::V4 {
                local: "10.20.0.2:67".parse().unwrap(),
                server: "10.20.0.1:67".parse().unwrap()
            }
        );
        assert_eq!(
            (a.rate, a.secs, a.clients, a.drain_ms, a.tick_us),
            (20_000, 10, 1_000_000, 2000, 1000)
        );
        let a = parse(
            "-l 127.0.0.2 -L 6767 -N 6768 -r 1 -p 1 --drain 0 --tick 500 --xid-base 7 127.0.0.1",
        )
        .unwrap();
        assert_eq!(
            a.target,
            Target::V4 {
                local: "127.0.0.2:6767".parse().unwrap(),
                server: "127.0.0.1:6768".parse().unwrap()
            }
        );
        assert_eq!((a.drain_ms, a.tick_us, a.xid_base), (0, 500, Some(7)));
    }

    #[test]
    fn dhcpv6_command_line() {
        let a = parse("-6 -l d6-c -r 20000 -p 10 -R 1000000").unwrap();
        assert_eq!(
            a.target,
            Target::V6 {
                iface: "d6-c".into(),
                local_port: 546,
                server: ALL_SERVERS,
                server_port: 547
            }
        );
        assert_eq!((a.rate, a.secs, a.clients), (20_000, 10, 1_000_000));
        let a = parse("-6 -l lo -L 5460 -N 5470 -r 1 -p 1 ::1").unwrap();
        assert_eq!(
            a.target,
            Target::V6 {
                iface: "lo".into(),
                local_port: 5460,
                server: Ipv6Addr::LOCALHOST,
                server_port: 5470
            }
        );
        assert_eq!(
            parse("-6 -r 1 -p 1").unwrap_err(),
            "-6 needs -l IFACE, the client's link"
        );
        assert!(
            parse("-6 -l fd00::2 -r 1 -p 1")
                .unwrap_err()
                .contains("not an interface name")
        );
        assert_eq!(
            parse("-6 -l d6-c -r 1 -p 1 10.0.0.1").unwrap_err(),
            "server \"10.0.0.1\": not an IPv6 address"
        );
    }

    #[test]
    fn bad_command_lines_say_why() {
        assert_eq!(
            parse("-l 10.20.0.2 -r 10 -p 1").unwrap_err(),
            "the server address is required (last argument)"
        );
        assert!(
            parse("-r 10 -p 1 10.20.0.1")
                .unwrap_err()
                .contains("-l RELAY_ADDR")
        );
        assert_eq!(
            parse("-l 10.20.0.2 -r 0 -p 1 x").unwrap_err(),
            "-r 0: out of range, use 1..=1000000"
        );
        assert_eq!(
            parse("-l 10.20.0.2 -r 10 -p 99999 10.20.0.1").unwrap_err(),
            "-p 99999: out of range, use 1..=3600"
        );
        assert_eq!(
            parse("-l 10.20.0.2 -r ten -p 1 10.20.0.1").unwrap_err(),
            "-r \"ten\": not a number"
        );
        assert_eq!(
            parse("-l 10.20.0.2 -r 10 -p 1 -x 1 10.20.0.1").unwrap_err(),
            "unknown option -x"
        );
        assert_eq!(
            parse("-l 10.20.0.2 -r 10 -p").unwrap_err(),
            "-p needs a value"
        );
        assert!(
            parse("-l 10.20.0.2 -r 10 -p 1 10.20.0.1 10.20.0.3")
                .unwrap_err()
                .contains("only one server")
        );
        assert!(
            parse("-l host -r 10 -p 1 10.20.0.1")
                .unwrap_err()
                .contains("not an IPv4 address")
        );
    }
}
