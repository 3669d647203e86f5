//! The whole generator against a scripted server on loopback (127.0.0.1, ephemeral ports): every
//! count it prints is known in advance because the server answers exactly what the script says.

use std::net::UdpSocket;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

const SID: [u8; 4] = [127, 0, 0, 1];

/// Option `code`'s value in a request (no overload; the generator sends none).
fn option(p: &[u8], code: u8) -> Option<&[u8]> {
    let mut i = 240;
    while i + 1 < p.len() && p[i] != 255 {
        if p[i] == 0 {
            i += 1;
            continue;
        }
        let len = p[i + 1] as usize;
        if p[i] == code {
            return p.get(i + 2..i + 2 + len);
        }
        i += 2 + len;
    }
    None
}

fn reply(req: &[u8], msg_type: u8, yiaddr: [u8; 4]) -> Vec<u8> {
    let mut b = req[..240].to_vec();
    b[0] = 2;
    b[16..20].copy_from_slice(&yiaddr);
    b.extend_from_slice(&[53, 1, msg_type, 54, 4]);
    b.extend_from_slice(&SID);
    b.extend_from_slice(&[51, 4, 0, 0, 14, 16, 255]);
    b
}

#[derive(Debug, Default)]
struct Seen {
    discovers: u64,
    requests: u64,
    bad: Vec<String>,
}

/// Answers DISCOVER with an OFFER of 10.(xid) (except xids divisible by 10: silence) and REQUEST
/// with an ACK of option 50 when option 54 is ours; notes anything a relayed request should not be.
fn scripted_server(sock: UdpSocket, stop: Arc<AtomicBool>) -> Seen {
    let mut seen = Seen::default();
    let mut buf = [0u8; 1500];
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    while !stop.load(Ordering::Relaxed) {
        let Ok((n, from)) = sock.recv_from(&mut buf) else {
            continue;
        };
        let p = &buf[..n];
        if n != 300
            || p[0] != 1
            || p[3] != 1
            || p[24..28] != [127, 0, 0, 1]
            || p[236..240] != [99, 130, 83, 99]
        {
            seen.bad.push(format!(
                "not a relayed BOOTREQUEST: len {n}, head {:?}",
                &p[..4.min(n)]
            ));
            continue;
        }
        let xid = u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
        match option(p, 53) {
            Some([1]) => {
                seen.discovers += 1;
                if xid % 10 != 0 {
                    let a = xid.to_be_bytes();
                    sock.send_to(&reply(p, 2, [10, a[1], a[2], a[3]]), from)
                        .unwrap();
                }
            }
            Some([3]) => {
                seen.requests += 1;
                let a = xid.to_be_bytes();
                if option(p, 50) != Some(&[10, a[1], a[2], a[3]][..])
                    || option(p, 54) != Some(&SID[..])
                {
                    seen.bad
                        .push(format!("REQUEST {xid}: option 50/54 not from the OFFER"));
                    continue;
                }
                sock.send_to(&reply(p, 5, [10, a[1], a[2], a[3]]), from)
                    .unwrap();
            }
            other => seen.bad.push(format!("message type {other:?}")),
        }
    }
    seen
}

/// Stops the scripted server once the generator has exited; the generator succeeded and the
/// server saw nothing malformed. Returns what the server saw and the generator's report.
fn finish(
    out: &std::process::Output,
    stop: &AtomicBool,
    server: thread::JoinHandle<Seen>,
) -> (Seen, String) {
    stop.store(true, Ordering::Relaxed);
    let seen = server.join().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(seen.bad.is_empty(), "{:?}", seen.bad);
    (seen, text)
}

fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn field<'a>(out: &'a str, section: &str, key: &str) -> &'a str {
    let s = &out[out
        .find(section)
        .unwrap_or_else(|| panic!("no {section} in\n{out}"))..];
    let line = s
        .lines()
        .find(|l| l.starts_with(key))
        .unwrap_or_else(|| panic!("no {key} in\n{out}"));
    line[key.len()..].trim()
}

#[test]
fn counts_every_exchange_of_a_scripted_server() {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sport = sock.local_addr().unwrap().port();
    let stop = Arc::new(AtomicBool::new(false));
    let server = thread::spawn({
        let stop = stop.clone();
        move || scripted_server(sock, stop)
    });
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([
            "-4",
            "-l",
            "127.0.0.1",
            "-L",
            &free_port().to_string(),
            "-N",
            &sport.to_string(),
        ])
        .args([
            "-r",
            "2000",
            "-p",
            "1",
            "-R",
            "100000",
            "--drain",
            "1000",
            "--xid-base",
            "0",
            "127.0.0.1",
        ])
        .output()
        .unwrap();
    let (seen, text) = finish(&out, &stop, server);
    // 2,000 DISCOVERs; xids 0, 10, 20 ... (200 of them) get no OFFER
    assert_eq!((seen.discovers, seen.requests), (2000, 1800));
    assert_eq!(field(&text, "DISCOVER-OFFER", "sent packets:"), "2000");
    assert_eq!(field(&text, "DISCOVER-OFFER", "received packets:"), "1800");
    assert_eq!(field(&text, "DISCOVER-OFFER", "drops ratio:"), "10.0000 %");
    assert_eq!(field(&text, "REQUEST-ACK", "sent packets:"), "1800");
    assert_eq!(field(&text, "REQUEST-ACK", "received packets:"), "1800");
    assert_eq!(field(&text, "REQUEST-ACK", "drops ratio:"), "0.0000 %");
    assert!(
        text.contains(
            "loadgen offered=2000 acks_per_s=1800 discover_drop=10.0000% request_drop=0.0000%"
        ),
        "{text}"
    );
    assert!(text.contains("non unique addresses: 0"), "{text}");
}

#[test]
fn a_bad_command_line_exits_64_and_says_why() {
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["-l", "127.0.0.1", "-r", "0", "-p", "1", "127.0.0.1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("-r 0: out of range"));
}

mod v6 {
    //! The DHCPv6 mode against a scripted server on [::1] (unicast, ephemeral ports): the
    //! server decodes every request and builds every answer with dhcproto.
    use super::*;
    use dhcproto::v6::{DhcpOption, IAAddr, IANA, Message, MessageType, OptionCode};
    use dhcproto::{Decodable, Decoder, Encodable};
    use std::net::Ipv6Addr;

    const SID6: [u8; 10] = [0, 3, 0, 1, 2, 0, 0, 0, 0, 1];

    /// The address offered to transaction `xid`: fd00:20::1:0 + xid.
    fn addr_of(xid: u32) -> Ipv6Addr {
        Ipv6Addr::from(0xfd00_0020_0000_0000_0000_0000_0001_0000u128 + u128::from(xid))
    }

    fn answer(t: MessageType, req: &Message, xid: u32) -> Vec<u8> {
        let mut m = Message::new_with_id(t, req.xid());
        let o = m.opts_mut();
        o.insert(DhcpOption::ServerId(SID6.to_vec()));
        o.insert(req.opts().get(OptionCode::ClientId).unwrap().clone());
        let addr = DhcpOption::IAAddr(IAAddr {
            addr: addr_of(xid),
            preferred_life: 3000,
            valid_life: 4000,
            opts: Default::default(),
        });
        o.insert(DhcpOption::IANA(IANA {
            id: 1,
            t1: 1000,
            t2: 2000,
            opts: [addr].into_iter().collect(),
        }));
        m.to_vec().unwrap()
    }

    /// ADVERTISEs every SOLICIT but those whose xid is divisible by 10, REPLYs every REQUEST that
    /// names our DUID and the advertised address.
    fn scripted_server(sock: UdpSocket, stop: Arc<AtomicBool>) -> Seen {
        let mut seen = Seen::default();
        let mut buf = [0u8; 1500];
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        while !stop.load(Ordering::Relaxed) {
            let Ok((n, from)) = sock.recv_from(&mut buf) else {
                continue;
            };
            let Ok(m) = Message::decode(&mut Decoder::new(&buf[..n])) else {
                seen.bad.push(format!("undecodable: {:?}", &buf[..n]));
                continue;
            };
            let xid = m.xid_num();
            let client_ok = matches!(
                m.opts().get(OptionCode::ClientId),
                Some(DhcpOption::ClientId(d)) if d.len() == 10 && d[..4] == [0, 3, 0, 1]
            );
            let elapsed_ok = m.opts().get(OptionCode::ElapsedTime).is_some();
            if !client_ok || !elapsed_ok {
                seen.bad
                    .push(format!("{xid}: no DUID-LL or elapsed time: {m:?}"));
                continue;
            }
            match m.msg_type() {
                MessageType::Solicit => {
                    seen.discovers += 1;
                    if xid % 10 != 0 {
                        sock.send_to(&answer(MessageType::Advertise, &m, xid), from)
                            .unwrap();
                    }
                }
                MessageType::Request => {
                    seen.requests += 1;
                    let sid = m.opts().get(OptionCode::ServerId);
                    let addr = match m.opts().get(OptionCode::IANA) {
                        Some(DhcpOption::IANA(ia)) => match ia.opts.get(OptionCode::IAAddr) {
                            Some(DhcpOption::IAAddr(a)) => Some(a.addr),
                            _ => None,
                        },
                        _ => None,
                    };
                    if sid != Some(&DhcpOption::ServerId(SID6.to_vec()))
                        || addr != Some(addr_of(xid))
                    {
                        seen.bad.push(format!(
                            "REQUEST {xid}: server id/address not from the ADVERTISE"
                        ));
                        continue;
                    }
                    sock.send_to(&answer(MessageType::Reply, &m, xid), from)
                        .unwrap();
                }
                other => seen.bad.push(format!("message type {other:?}")),
            }
        }
        seen
    }

    #[test]
    fn counts_every_exchange_of_a_scripted_v6_server() {
        let sock = UdpSocket::bind("[::1]:0").unwrap();
        let sport = sock.local_addr().unwrap().port();
        let lport = UdpSocket::bind("[::1]:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let stop = Arc::new(AtomicBool::new(false));
        let server = thread::spawn({
            let stop = stop.clone();
            move || scripted_server(sock, stop)
        });
        let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
            .args(["-6", "-l", "lo", "-L", &lport.to_string()])
            .args(["-N", &sport.to_string(), "-r", "2000", "-p", "1"])
            .args(["-R", "100000", "--drain", "1000", "--xid-base", "0", "::1"])
            .output()
            .unwrap();
        let (seen, text) = finish(&out, &stop, server);
        assert_eq!((seen.discovers, seen.requests), (2000, 1800));
        assert_eq!(field(&text, "SOLICIT-ADVERTISE", "sent packets:"), "2000");
        assert_eq!(
            field(&text, "SOLICIT-ADVERTISE", "received packets:"),
            "1800"
        );
        assert_eq!(field(&text, "REQUEST-REPLY", "received packets:"), "1800");
        assert!(
            text.contains(
                "loadgen offered=2000 replies_per_s=1800 solicit_drop=10.0000% request_drop=0.0000% no_address=0 non_unique=0"
            ),
            "{text}"
        );
    }
}
