//! Helpers for dhcpd's end-to-end tests: the test host file, the daemon, `dhcpd leases`, and a
//! crafted DHCP client/relay on a UDP socket for what real clients cannot be made to send.
#![allow(dead_code, unreachable_pub)]

pub mod ddns;
pub mod dhclient6;
pub mod pg;
pub mod v6link;

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dhcproto::v4::{DhcpOption, Flags, Message, MessageType, Opcode, OptionCode};
use dhcproto::{Decodable, Encodable};
use e2e::{Host, Proc, Ready};
use socket2::{Domain, Protocol, Socket, Type};

pub const BIN: &str = env!("CARGO_BIN_EXE_dhcpd");

/// The example host file with the test's own [dhcp] section (and `extra` appended).
pub fn write_config(dir: &Path, dhcp: &str, extra: &str) -> PathBuf {
    hostfile::checkcases::example_with_section(dir, "dhcp", &format!("{dhcp}\n{extra}"))
}

/// Starts dhcpd on `host` with its state in `dir`.
pub fn start(host: &Host, conf: &Path, state: &Path) -> Proc {
    host.process(BIN)
        .args([
            "--config",
            conf.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
            "--log",
            "dhcpd=debug,info",
        ])
        .ready(Ready::Notify)
        .timeout(Duration::from_secs(10))
        .spawn()
}

/// `dhcpd leases --json --all` as parsed JSON rows.
pub fn leases(host: &Host, conf: &Path, state: &Path) -> Vec<serde_json::Value> {
    let out = host.run(&[
        BIN,
        "leases",
        "--json",
        "--all",
        "--config",
        conf.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// The lease row of `ip`.
pub fn lease_of(rows: &[serde_json::Value], ip: Ipv4Addr) -> Option<serde_json::Value> {
    rows.iter()
        .find(|r| r["ip"].as_str() == Some(&ip.to_string()))
        .cloned()
}

/// A UDP socket that sends requests and receives replies (create it inside `Host::enter`).
pub struct Crafted {
    pub sock: UdpSocket,
    pub mac: [u8; 6],
    pub giaddr: Ipv4Addr,
}

impl Crafted {
    /// A client on `iface` (port 68, broadcasts allowed).
    pub fn client(iface: &str, mac: [u8; 6]) -> Crafted {
        Crafted {
            sock: bound(iface, Ipv4Addr::UNSPECIFIED, 68),
            mac,
            giaddr: Ipv4Addr::UNSPECIFIED,
        }
    }
    /// A relay agent at `addr` (port 67).
    pub fn relay(iface: &str, addr: Ipv4Addr) -> Crafted {
        Crafted {
            sock: bound(iface, addr, 67),
            mac: [0; 6],
            giaddr: addr,
        }
    }

    pub fn msg(&self, kind: Option<MessageType>, mac: [u8; 6], xid: u32) -> Message {
        let mut m = Message::default();
        m.set_opcode(Opcode::BootRequest)
            .set_chaddr(&mac)
            .set_xid(xid)
            .set_flags(Flags::default().set_broadcast());
        if !self.giaddr.is_unspecified() {
            m.set_giaddr(self.giaddr).set_hops(1);
        }
        if let Some(k) = kind {
            m.opts_mut().insert(DhcpOption::MessageType(k));
        }
        m
    }

    pub fn send(&self, m: &Message, to: SocketAddrV4) {
        self.sock.send_to(&m.to_vec().unwrap(), to).unwrap();
    }

    /// The next reply with `xid`, or `None` after `timeout`.
    pub fn recv(&self, xid: u32, timeout: Duration) -> Option<Message> {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 1500];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.sock.set_read_timeout(Some(left)).unwrap();
            match self.sock.recv_from(&mut buf) {
                Ok((n, _)) => {
                    if let Ok(m) = Message::from_bytes(&buf[..n])
                        && m.xid() == xid
                        && m.opcode() == Opcode::BootReply
                    {
                        return Some(m);
                    }
                }
                Err(_) => return None,
            }
        }
    }

    /// DISCOVER, OFFER, REQUEST, ACK; returns the address and the server id.
    pub fn dora(&self, to: SocketAddrV4, xid: u32) -> (Ipv4Addr, Ipv4Addr) {
        self.send(&self.msg(Some(MessageType::Discover), self.mac, xid), to);
        let offer = self.recv(xid, Duration::from_secs(5)).expect("OFFER");
        assert_eq!(offer.opts().msg_type(), Some(MessageType::Offer));
        let sid = server_id(&offer).unwrap();
        let mut req = self.msg(Some(MessageType::Request), self.mac, xid + 1);
        req.opts_mut()
            .insert(DhcpOption::RequestedIpAddress(offer.yiaddr()));
        req.opts_mut().insert(DhcpOption::ServerIdentifier(sid));
        self.send(&req, to);
        let ack = self.recv(xid + 1, Duration::from_secs(5)).expect("ACK");
        assert_eq!(ack.opts().msg_type(), Some(MessageType::Ack));
        assert_eq!(ack.yiaddr(), offer.yiaddr());
        (ack.yiaddr(), sid)
    }
}

pub fn server_id(m: &Message) -> Option<Ipv4Addr> {
    match m.opts().get(OptionCode::ServerIdentifier) {
        Some(DhcpOption::ServerIdentifier(ip)) => Some(*ip),
        _ => None,
    }
}

pub fn bound(iface: &str, addr: Ipv4Addr, port: u16) -> UdpSocket {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
    s.set_reuse_address(true).unwrap();
    s.set_broadcast(true).unwrap();
    s.bind_device(Some(iface.as_bytes())).unwrap();
    s.bind(&SocketAddrV4::new(addr, port).into()).unwrap();
    s.into()
}

pub const BCAST67: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::BROADCAST, 67);
