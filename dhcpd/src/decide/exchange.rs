//! One exchange: the answer to each message type (RFC 2131 section 4.3) for a client whose subnet
//! and server identifier are known.

use std::net::Ipv4Addr;

use dhcproto::v4::{DhcpOption, Flags, Message, MessageType, Opcode, OptionCode};

use crate::alloc::{self, Client};
use crate::decode::{client_hostname, client_id, mac, msg_type, opt_ip};
use crate::index::ViewIndex;
use crate::lease::{Change, KeySource, Lease, LeaseState, LeaseTable, NEVER};
use crate::options::{self, ReplyOpts};

use super::decision::{ClientId, Decision, Dest, Dns, OFFER_HOLD, OFFLINE, Reply, probation};

/// RFC 2131 section 4.1 delivery for OFFER/ACK/BOOTREPLY.
fn dest(req: &Message, yiaddr: Ipv4Addr, nak: bool) -> Dest {
    if !req.giaddr().is_unspecified() {
        Dest::Relay(req.giaddr())
    } else if nak {
        Dest::Broadcast
    } else if !req.ciaddr().is_unspecified() {
        Dest::Unicast(req.ciaddr())
    } else if req.flags().broadcast() || yiaddr.is_unspecified() {
        Dest::Broadcast
    } else if let Some(mac) = mac(req) {
        Dest::Hw { ip: yiaddr, mac }
    } else {
        Dest::Broadcast
    }
}

fn base_reply(req: &Message) -> Message {
    let mut r = Message::default();
    r.set_opcode(Opcode::BootReply)
        .set_htype(req.htype())
        .set_chaddr(req.chaddr())
        .set_xid(req.xid())
        .set_flags(req.flags())
        .set_giaddr(req.giaddr());
    r
}

/// Why a new client identifier of a hardware address got nothing.
const MAC_FULL: &str = "hardware address holds leases-per-mac leases under other client ids";

pub(super) struct Ctx<'a> {
    pub(super) cfg: &'a ViewIndex,
    pub(super) t: &'a LeaseTable,
    pub(super) req: &'a Message,
    pub(super) now: u64,
    pub(super) subnet: usize,
    pub(super) server_id: Ipv4Addr,
    pub(super) key: Vec<u8>,
    pub(super) offline: bool,
}

impl Ctx<'_> {
    /// Where the client key came from.
    fn source(&self) -> KeySource {
        if client_id(self.req).is_some() {
            KeySource::ClientId
        } else {
            KeySource::Hardware
        }
    }

    /// The identity this request's DNS records carry.
    fn dhcid_id(&self) -> ClientId {
        ClientId::of(&self.key, self.req.chaddr(), self.source())
    }

    fn client(&self) -> Client<'_> {
        Client {
            key: &self.key,
            cid: client_id(self.req),
            mac: mac(self.req),
            bootp: msg_type(self.req).is_none(),
        }
    }

    fn lease_secs(&self) -> u32 {
        let s = self.cfg.subnet(self.subnet);
        let secs = match self.req.opts().get(OptionCode::AddressLeaseTime) {
            Some(DhcpOption::AddressLeaseTime(t)) => u64::from(*t).min(s.max_lease.as_secs()),
            _ => s.lease.as_secs(),
        };
        secs.clamp(1, u64::from(u32::MAX - 1)) as u32
    }

    /// True when the client's hardware address already holds `[dhcp] leases-per-mac` live
    /// leases under other client identifiers (a reserved client is never refused).
    fn mac_full(&self) -> bool {
        let n = self.cfg.view.leases_per_mac;
        let c = self.client();
        n > 0
            && self.cfg.reservation(c.cid, c.mac, self.subnet).is_none()
            && self.t.held_by_hw(self.req.chaddr(), &self.key, self.now) >= n as usize
    }

    /// When a BOOTP lease of `ip` ends: never for a reserved address or without
    /// `dynamic-bootp-lease-length` / `-cutoff` (ISC's default), else the earlier of the two.
    fn bootp_expires(&self, ip: Ipv4Addr) -> u64 {
        let c = self.client();
        if self
            .cfg
            .reservation(c.cid, c.mac, self.subnet)
            .is_some_and(|r| r.ip == ip)
        {
            return NEVER;
        }
        let v = &self.cfg.view;
        let length = v
            .dynamic_bootp_lease_length
            .map(|d| self.now.saturating_add(d.as_secs()));
        [length, v.dynamic_bootp_lease_cutoff]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(NEVER)
    }

    fn hostname(&self) -> Option<String> {
        let c = self.client();
        self.cfg
            .reservation(c.cid, c.mac, self.subnet)
            .map(|r| r.hostname.clone())
            .or_else(|| client_hostname(self.req))
    }

    fn reply(
        &self,
        kind: Option<MessageType>,
        yiaddr: Ipv4Addr,
        lease: Option<u32>,
        hostname: Option<&str>,
    ) -> Option<Reply> {
        let c = self.client();
        let s = self.cfg.subnet(self.subnet);
        let host = self.cfg.reservation(c.cid, c.mac, self.subnet);
        let mut r = base_reply(self.req);
        r.set_yiaddr(yiaddr);
        if matches!(kind, Some(MessageType::Ack)) || kind.is_none() {
            r.set_ciaddr(self.req.ciaddr());
        }
        if let Some(ns) = s.next_server {
            r.set_siaddr(ns);
        }
        if let Some(f) = host
            .and_then(|h| h.boot_file.as_ref())
            .or(s.boot_file.as_ref())
        {
            r.set_fname_str(f);
        }
        options::fill(
            self.req,
            &mut r,
            &ReplyOpts {
                kind,
                server_id: self.server_id,
                lease,
                subnet: s,
                host,
                hostname,
                domain: &self.cfg.view.domain,
                ddns: self.cfg.view.ddns.is_some(),
            },
        );
        let bytes = options::encode(r, options::max_size(self.req))?;
        Some(Reply {
            bytes,
            dest: dest(self.req, yiaddr, false),
            kind: match kind {
                Some(MessageType::Offer) => "OFFER",
                Some(MessageType::Ack) => "ACK",
                _ => "BOOTREPLY",
            },
            yiaddr,
        })
    }

    fn nak(&self, why: &'static str) -> Decision {
        let mut r = base_reply(self.req);
        if !self.req.giaddr().is_unspecified() {
            r.set_flags(Flags::default().set_broadcast());
        }
        let o = r.opts_mut();
        o.insert(DhcpOption::MessageType(MessageType::Nak));
        o.insert(DhcpOption::ServerIdentifier(self.server_id));
        o.insert(DhcpOption::Message(why.to_owned()));
        if let Some(ri) = self.req.opts().get(OptionCode::RelayAgentInformation) {
            o.insert(ri.clone());
        }
        let Some(bytes) = options::encode(r, options::max_size(self.req)) else {
            return Decision::silent("cannot encode NAK");
        };
        Decision {
            reply: Some(Reply {
                bytes,
                dest: dest(self.req, Ipv4Addr::UNSPECIFIED, true),
                kind: "NAK",
                yiaddr: Ipv4Addr::UNSPECIFIED,
            }),
            silent: Some(why),
            ..Default::default()
        }
    }

    /// Binds `ip` to the client and answers with ACK (or a BOOTP reply).
    fn bind(&self, ip: Ipv4Addr, kind: Option<MessageType>) -> Decision {
        let prev = self.t.get(ip);
        // A renewal that names no host keeps the name the lease has (and its DNS records).
        let hostname = self.hostname().or_else(|| {
            prev.filter(|p| p.client == self.key && p.state == LeaseState::Bound)
                .and_then(|p| p.hostname.clone())
        });
        let renewal = prev.is_some_and(|p| {
            p.client == self.key && p.state == LeaseState::Bound && p.holds(self.now)
        });
        if self.offline && !renewal {
            return Decision::silent(OFFLINE);
        }
        let (lease, expires) = if kind.is_none() {
            (None, self.bootp_expires(ip))
        } else if self.offline {
            // Only what the database already holds: another server may give the address away
            // once that time is up.
            let end = prev.map_or(self.now, |p| p.expires);
            let s = end
                .saturating_sub(self.now)
                .clamp(1, u64::from(u32::MAX - 1)) as u32;
            (Some(s), end)
        } else {
            let s = self.lease_secs();
            (Some(s), self.now.saturating_add(u64::from(s)))
        };
        let Some(reply) = self.reply(kind, ip, lease, hostname.as_deref()) else {
            return Decision::silent("cannot encode reply");
        };
        let mut d = Decision {
            reply: Some(reply),
            ..Default::default()
        };
        let me = self.dhcid_id();
        let was_published = prev.is_some_and(|p| {
            p.client == self.key
                && p.state == LeaseState::Bound
                && p.hostname == hostname
                && p.holds(self.now)
                && ClientId::of_lease(p) == me
        });
        // The client's older lease elsewhere ends now.
        if let Some(old) = self.t.of_client(&self.key)
            && old.ip != ip
            && old.state == LeaseState::Bound
        {
            d.changes.push(Change::Put(Lease {
                state: LeaseState::Released,
                expires: self.now,
                ..old.clone()
            }));
            if let Some(h) = &old.hostname {
                d.dns.push(Dns::Remove {
                    name: h.clone(),
                    ip: old.ip,
                    id: ClientId::of_lease(old),
                });
            }
        }
        // Another client's stale record of this address loses its DNS name, and so does this
        // client's own record when it now goes by another name or identity (it started or
        // stopped sending option 61, or the record predates the key source): the name is then
        // published again under the identity the lease now keeps.
        if let Some(p) = prev
            && (p.client != self.key || p.hostname != hostname || ClientId::of_lease(p) != me)
            && let Some(h) = &p.hostname
            && p.state == LeaseState::Bound
        {
            d.dns.push(Dns::Remove {
                name: h.clone(),
                ip,
                id: ClientId::of_lease(p),
            });
        }
        d.changes.push(Change::Put(Lease {
            ip,
            client: self.key.clone(),
            key_source: self.source(),
            hwaddr: self.req.chaddr().to_vec(),
            hostname: hostname.clone(),
            starts: self.now,
            expires,
            state: LeaseState::Bound,
        }));
        if let Some(h) = hostname
            && !was_published
        {
            d.dns.push(Dns::Add {
                name: h,
                ip,
                id: me,
            });
        }
        d
    }

    pub(super) fn discover(&self) -> Decision {
        let c = self.client();
        if self.offline {
            // A client that holds a live lease may still be offered it: its REQUEST renews.
            let held = self
                .t
                .of_client(&self.key)
                .is_some_and(|l| l.state == LeaseState::Bound && l.holds(self.now));
            if !held {
                return Decision::silent(OFFLINE);
            }
        }
        if self.mac_full() {
            return Decision::silent(MAC_FULL);
        }
        let requested = opt_ip(self.req, OptionCode::RequestedIpAddress);
        let Some(pick) = alloc::choose(self.cfg, self.t, self.subnet, &c, requested, self.now)
        else {
            return Decision::silent("no free address in the pool");
        };
        let hostname = self.hostname();
        let Some(reply) = self.reply(
            Some(MessageType::Offer),
            pick.ip,
            Some(self.lease_secs()),
            hostname.as_deref(),
        ) else {
            return Decision::silent("cannot encode OFFER");
        };
        let mut d = Decision {
            reply: Some(reply),
            ..Default::default()
        };
        let live = self.t.get(pick.ip).is_some_and(|l| {
            l.client == self.key && l.state == LeaseState::Bound && l.holds(self.now)
        });
        if !live {
            d.changes.push(Change::Put(Lease {
                ip: pick.ip,
                client: self.key.clone(),
                key_source: self.source(),
                hwaddr: self.req.chaddr().to_vec(),
                hostname,
                starts: self.now,
                expires: self.now.saturating_add(OFFER_HOLD),
                state: LeaseState::Offered,
            }));
        }
        if pick.fresh && self.cfg.view.ping_check {
            d.probe = Some(pick.ip);
        }
        d
    }

    pub(super) fn request(&self) -> Decision {
        let sid = opt_ip(self.req, OptionCode::ServerIdentifier);
        let requested = opt_ip(self.req, OptionCode::RequestedIpAddress);
        let ciaddr = self.req.ciaddr();
        let selecting = sid.is_some();
        if let Some(sid) = sid
            && sid != self.server_id
        {
            // The client took another server's offer: drop ours.
            let mut d = Decision::silent("client chose another server");
            if let Some(l) = self.t.of_client(&self.key)
                && l.state == LeaseState::Offered
            {
                d.changes.push(Change::Withdraw {
                    ip: l.ip,
                    client: self.key.clone(),
                });
            }
            return d;
        }
        let ip = match (requested, ciaddr.is_unspecified()) {
            (Some(ip), _) => ip,
            (None, false) => ciaddr,
            (None, true) => return Decision::bad("REQUEST without an address"),
        };
        let authoritative = self.cfg.subnet(self.subnet).authoritative;
        let refuse = |why| {
            if selecting || authoritative {
                self.nak(why)
            } else {
                Decision::silent(why)
            }
        };
        let s = self.cfg.subnet(self.subnet);
        if !s.network.contains(&ip) {
            return refuse("address not on this network");
        }
        let c = self.client();
        if let Some(r) = self.cfg.reservation(c.cid, c.mac, self.subnet) {
            return if r.ip == ip {
                self.bind(ip, Some(MessageType::Ack))
            } else {
                refuse("this client has a reserved address")
            };
        }
        if self.cfg.is_reserved(ip) {
            return refuse("address reserved for another host");
        }
        let mine = self
            .t
            .get(ip)
            .is_some_and(|l| l.client == self.key && l.state != LeaseState::Declined);
        if mine
            && (alloc::in_pool(s, ip, false) || self.t.get(ip).is_some_and(|l| l.holds(self.now)))
        {
            return self.bind(ip, Some(MessageType::Ack));
        }
        if self.mac_full() {
            return refuse(MAC_FULL);
        }
        if alloc::available(self.cfg, self.t, self.subnet, &c, ip, self.now) {
            return self.bind(ip, Some(MessageType::Ack));
        }
        refuse("address not available")
    }

    pub(super) fn decline(&self) -> Decision {
        if opt_ip(self.req, OptionCode::ServerIdentifier).is_some_and(|s| s != self.server_id) {
            return Decision::silent("DECLINE for another server");
        }
        let Some(ip) = opt_ip(self.req, OptionCode::RequestedIpAddress) else {
            return Decision::bad("DECLINE without an address");
        };
        match self.t.get(ip) {
            Some(l) if l.client == self.key && l.state != LeaseState::Declined => {
                let mut d = Decision::silent("DECLINE: address on probation");
                if let Some(h) = &l.hostname {
                    d.dns.push(Dns::Remove {
                        name: h.clone(),
                        ip,
                        id: ClientId::of_lease(l),
                    });
                }
                d.changes.push(Change::Put(probation(
                    ip,
                    self.now,
                    self.cfg.view.decline_probation.as_secs(),
                )));
                d
            }
            _ => Decision::silent("DECLINE for an address the client does not hold"),
        }
    }

    pub(super) fn release(&self) -> Decision {
        let ip = self.req.ciaddr();
        match self.t.get(ip) {
            Some(l) if l.client == self.key && l.state == LeaseState::Bound => {
                super::released(l, self.now)
            }
            _ => Decision::silent("RELEASE for an address the client does not hold"),
        }
    }

    pub(super) fn inform(&self) -> Decision {
        let mut r = base_reply(self.req);
        r.set_ciaddr(self.req.ciaddr());
        let s = self.cfg.subnet(self.subnet);
        options::fill(
            self.req,
            &mut r,
            &ReplyOpts {
                kind: Some(MessageType::Ack),
                server_id: self.server_id,
                lease: None,
                subnet: s,
                host: None,
                hostname: None,
                domain: &self.cfg.view.domain,
                ddns: false,
            },
        );
        let Some(bytes) = options::encode(r, options::max_size(self.req)) else {
            return Decision::silent("cannot encode ACK");
        };
        Decision {
            reply: Some(Reply {
                bytes,
                dest: dest(self.req, Ipv4Addr::UNSPECIFIED, false),
                kind: "ACK(INFORM)",
                yiaddr: Ipv4Addr::UNSPECIFIED,
            }),
            ..Default::default()
        }
    }

    pub(super) fn bootp(&self) -> Decision {
        let c = self.client();
        if self.mac_full() {
            return Decision::silent(MAC_FULL);
        }
        let Some(pick) = alloc::choose(self.cfg, self.t, self.subnet, &c, None, self.now) else {
            return Decision::silent("no free BOOTP address");
        };
        self.bind(pick.ip, None)
    }
}
