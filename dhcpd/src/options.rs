//! Reply options from the host table: what to include (the parameter request list decides beyond a
//! small always-sent set), and fitting the reply into the client's maximum message size.

use std::net::Ipv4Addr;

use dhcproto::v4::{
    DhcpOption, Message, MessageType, OptionCode, UnknownOption,
    fqdn::{ClientFQDN, FqdnFlags},
};
use dhcproto::{Encodable, Name};
use hostfile::{DhcpSubnet, Reservation};

/// Smallest reply sent (RFC 1542: BOOTP relays and clients expect at least 300 octets).
pub const MIN_REPLY: usize = 300;
/// Largest DHCP message a client accepts without option 57 (576 - IP and UDP headers).
pub const DEFAULT_MAX: usize = 548;

/// What the reply carries besides the subnet's options.
#[derive(Debug)]
pub struct ReplyOpts<'a> {
    /// DHCP message type; `None` for a BOOTP reply.
    pub kind: Option<MessageType>,
    /// Option 54.
    pub server_id: Ipv4Addr,
    /// Lease seconds (options 51, 58, 59); `None` for INFORM and BOOTP.
    pub lease: Option<u32>,
    /// The client's subnet.
    pub subnet: &'a DhcpSubnet,
    /// The client's reservation.
    pub host: Option<&'a Reservation>,
    /// Host name to return in option 12 / 81.
    pub hostname: Option<&'a str>,
    /// The domain used in option 81 replies.
    pub domain: &'a str,
    /// The server updates DNS for this client (option 81 S bit).
    pub ddns: bool,
}

fn always(code: u8) -> bool {
    // Message type, server id, lease and renewal times, mask, routers, DNS, domain, relay info.
    matches!(code, 53 | 54 | 51 | 58 | 59 | 1 | 3 | 6 | 15 | 82)
}

fn fqdn_name(s: &str) -> Option<Name> {
    let s = s.trim_end_matches('.');
    if s.is_empty() {
        return None;
    }
    Name::from_ascii(format!("{s}.")).ok()
}

/// Fills `reply`'s options from `o`, honouring `req`'s parameter request list.
pub fn fill(req: &Message, reply: &mut Message, o: &ReplyOpts<'_>) {
    let prl: Option<Vec<u8>> = match req.opts().get(OptionCode::ParameterRequestList) {
        Some(DhcpOption::ParameterRequestList(v)) => Some(v.iter().map(|c| u8::from(*c)).collect()),
        _ => None,
    };
    let wanted = |code: u8| always(code) || prl.as_ref().is_none_or(|p| p.contains(&code));
    let s = o.subnet;
    let out = reply.opts_mut();
    let mut put = |code: u8, opt: DhcpOption| {
        if wanted(code) {
            out.insert(opt);
        }
    };
    if let Some(k) = o.kind {
        put(53, DhcpOption::MessageType(k));
        put(54, DhcpOption::ServerIdentifier(o.server_id));
    }
    if let Some(secs) = o.lease {
        put(51, DhcpOption::AddressLeaseTime(secs));
        if secs != u32::MAX {
            put(58, DhcpOption::Renewal(secs / 2));
            put(59, DhcpOption::Rebinding((u64::from(secs) * 7 / 8) as u32));
        }
    }
    put(1, DhcpOption::SubnetMask(s.network.netmask()));
    if !s.routers.is_empty() {
        put(3, DhcpOption::Router(s.routers.clone()));
    }
    if !s.dns.is_empty() {
        put(6, DhcpOption::DomainNameServer(s.dns.clone()));
    }
    if !s.domain.is_empty() {
        put(15, DhcpOption::DomainName(s.domain.clone()));
    }
    let search: Vec<Name> = s.search.iter().filter_map(|d| fqdn_name(d)).collect();
    if !search.is_empty() {
        put(119, DhcpOption::DomainSearch(search));
    }
    put(28, DhcpOption::BroadcastAddr(s.broadcast));
    if !s.ntp.is_empty() {
        put(42, DhcpOption::NtpServers(s.ntp.clone()));
    }
    if let Some(m) = s.mtu {
        put(26, DhcpOption::InterfaceMtu(m));
    }
    if let Some(h) = o.hostname {
        put(12, DhcpOption::Hostname(h.to_owned()));
    }
    let host_opts = o.host.map(|h| h.options.as_slice()).unwrap_or_default();
    for r in s.options.iter().chain(host_opts) {
        put(
            r.code,
            DhcpOption::Unknown(UnknownOption::new(r.code.into(), r.data.clone())),
        );
    }
    // RFC 4702: answer option 81 when the client sent it.
    if let (Some(DhcpOption::ClientFQDN(c)), Some(h)) =
        (req.opts().get(OptionCode::ClientFQDN), o.hostname)
        && let Some(name) = fqdn_name(&format!("{h}.{}", o.domain))
    {
        let flags = FqdnFlags::new(0)
            .set_e(c.flags().e())
            .set_s(o.ddns)
            .set_o(o.ddns && !c.flags().s());
        let mut f = ClientFQDN::new(flags, name);
        f.set_r1(255).set_r2(255);
        out.insert(DhcpOption::ClientFQDN(f));
    }
    if let Some(ri) = req.opts().get(OptionCode::RelayAgentInformation) {
        out.insert(ri.clone());
    }
}

/// The largest reply this client takes (option 57, never below 576 - 28).
pub fn max_size(req: &Message) -> usize {
    match req.opts().get(OptionCode::MaxMessageSize) {
        Some(DhcpOption::MaxMessageSize(n)) => {
            (usize::from(*n).saturating_sub(28)).max(DEFAULT_MAX)
        }
        _ => DEFAULT_MAX,
    }
}

/// Encodes `reply`, dropping optional options (highest code first) until it fits in `max`, and
/// pads it to [`MIN_REPLY`].
pub fn encode(mut reply: Message, max: usize) -> Option<Vec<u8>> {
    loop {
        let mut v = reply.to_vec().ok()?;
        if v.len() <= max {
            if v.len() < MIN_REPLY {
                v.resize(MIN_REPLY, 0);
            }
            return Some(v);
        }
        let victim = reply
            .opts()
            .iter()
            .map(|(c, _)| u8::from(*c))
            .filter(|c| !always(*c))
            .max()?;
        reply.opts_mut().remove(victim.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::config;
    use dhcproto::Decodable;

    fn opts_for(prl: Option<Vec<u8>>) -> Message {
        let cfg = config();
        let mut req = Message::default();
        if let Some(p) = prl {
            req.opts_mut().insert(DhcpOption::ParameterRequestList(
                p.into_iter().map(OptionCode::from).collect(),
            ));
        }
        let mut reply = Message::default();
        fill(
            &req,
            &mut reply,
            &ReplyOpts {
                kind: Some(MessageType::Ack),
                server_id: "192.168.10.1".parse().unwrap(),
                lease: Some(3600),
                subnet: cfg.subnet(1),
                host: None,
                hostname: Some("pc"),
                domain: "it-ishin.com",
                ddns: false,
            },
        );
        reply
    }

    #[test]
    fn without_a_request_list_everything_configured_is_sent() {
        let r = opts_for(None);
        for code in [1u8, 3, 6, 15, 28, 51, 53, 54, 58, 59, 119, 12] {
            assert!(r.opts().get(code.into()).is_some(), "option {code}");
        }
        assert_eq!(
            r.opts().get(OptionCode::Renewal),
            Some(&DhcpOption::Renewal(1800))
        );
        assert_eq!(
            r.opts().get(OptionCode::Rebinding),
            Some(&DhcpOption::Rebinding(3150))
        );
    }

    #[test]
    fn request_list_limits_the_optional_ones() {
        let r = opts_for(Some(vec![1, 3, 119]));
        assert!(r.opts().get(OptionCode::DomainSearch).is_some());
        assert!(r.opts().get(OptionCode::BroadcastAddr).is_none());
        assert!(r.opts().get(OptionCode::Hostname).is_none());
        assert!(r.opts().get(OptionCode::DomainNameServer).is_some());
    }

    #[test]
    fn search_list_is_rfc3397_encoded() {
        let r = opts_for(None);
        let bytes = encode(r, 1500).unwrap();
        // code 119, then a length, then "\x08it-ishin\x03com\x00"
        let needle = b"\x08it-ishin\x03com\x00";
        let pos = bytes.windows(needle.len()).position(|w| w == needle);
        assert!(pos.is_some_and(|p| bytes[p - 2] == 119));
        let back = Message::from_bytes(&bytes).unwrap();
        assert!(back.opts().get(OptionCode::DomainSearch).is_some());
    }

    #[test]
    fn oversize_reply_sheds_optional_options_and_small_one_is_padded() {
        let mut r = opts_for(None);
        r.opts_mut().insert(DhcpOption::Unknown(UnknownOption::new(
            OptionCode::from(224),
            vec![7; 600],
        )));
        let v = encode(r, DEFAULT_MAX).unwrap();
        assert!(v.len() <= DEFAULT_MAX);
        let back = Message::from_bytes(&v).unwrap();
        assert!(back.opts().get(OptionCode::from(224)).is_none());
        assert!(back.opts().get(OptionCode::SubnetMask).is_some());
        let small = encode(Message::default(), DEFAULT_MAX).unwrap();
        assert_eq!(small.len(), MIN_REPLY);
    }

    #[test]
    fn client_fqdn_is_answered_with_the_full_name_and_server_update_bits() {
        let cfg = config();
        let mut req = Message::default();
        let name = Name::from_ascii("pc.").unwrap();
        req.opts_mut()
            .insert(DhcpOption::ClientFQDN(ClientFQDN::new(
                FqdnFlags::new(0).set_e(true).set_s(true),
                name,
            )));
        let mut reply = Message::default();
        fill(
            &req,
            &mut reply,
            &ReplyOpts {
                kind: Some(MessageType::Ack),
                server_id: "192.168.10.1".parse().unwrap(),
                lease: Some(60),
                subnet: cfg.subnet(1),
                host: None,
                hostname: Some("pc"),
                domain: "it-ishin.com",
                ddns: true,
            },
        );
        let Some(DhcpOption::ClientFQDN(f)) = reply.opts().get(OptionCode::ClientFQDN) else {
            panic!("no option 81");
        };
        assert_eq!(f.domain().to_ascii(), "pc.it-ishin.com.");
        assert!(f.flags().s() && f.flags().e() && !f.flags().o());
        let back = Message::from_bytes(&encode(reply, 1500).unwrap()).unwrap();
        assert!(back.opts().get(OptionCode::ClientFQDN).is_some());
    }

    #[test]
    fn max_size_never_below_the_minimum() {
        let mut req = Message::default();
        req.opts_mut().insert(DhcpOption::MaxMessageSize(100));
        assert_eq!(max_size(&req), DEFAULT_MAX);
        req.opts_mut().insert(DhcpOption::MaxMessageSize(1500));
        assert_eq!(max_size(&req), 1472);
    }
}
