//! Dynamic DNS (RFC 2136): A and PTR records for leases with a host name, signed with TSIG
//! (RFC 8945), added on ACK and removed on release, decline and expiry. Plain standard messages,
//! so BIND, Knot or dnsd can be the primary.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hickory_proto::op::update_message::UpdateMessage;
use hickory_proto::op::{Message, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
use hickory_proto::rr::rdata::{A, PTR};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType, TSigner};
use shared::DdnsConfig;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::decide::Dns;

/// A configured updater.
pub struct Updater {
    server: SocketAddr,
    signer: Option<TSigner>,
    ttl: u32,
    forward: Name,
    reverse: Vec<Name>,
}

impl std::fmt::Debug for Updater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Updater")
            .field("server", &self.server)
            .field("signed", &self.signer.is_some())
            .field("forward", &self.forward)
            .finish()
    }
}

fn name(s: &str) -> Result<Name, String> {
    let s = s.trim_end_matches('.');
    Name::from_ascii(format!("{s}.")).map_err(|e| format!("bad DNS name {s:?}: {e}"))
}

/// `4.3.2.1.in-addr.arpa.` for 1.2.3.4.
pub fn ptr_name(ip: Ipv4Addr) -> String {
    let o = ip.octets();
    format!("{}.{}.{}.{}.in-addr.arpa.", o[3], o[2], o[1], o[0])
}

impl Updater {
    /// From the host table's settings.
    pub fn new(c: &DdnsConfig) -> Result<Self, String> {
        let signer = match &c.key {
            None => None,
            Some(k) => {
                let alg = match k.algorithm.as_str() {
                    "hmac-sha256" => TsigAlgorithm::HmacSha256,
                    "hmac-sha384" => TsigAlgorithm::HmacSha384,
                    "hmac-sha512" => TsigAlgorithm::HmacSha512,
                    other => return Err(format!("TSIG algorithm {other} is not supported")),
                };
                Some(
                    TSigner::new(k.secret.clone(), alg, name(&k.name)?, 300)
                        .map_err(|e| e.to_string())?,
                )
            }
        };
        Ok(Updater {
            server: c.server,
            signer,
            ttl: c.ttl.as_secs().min(u64::from(u32::MAX)) as u32,
            forward: name(&c.forward_zone)?,
            reverse: c
                .reverse_zones
                .iter()
                .map(|z| name(z))
                .collect::<Result<_, _>>()?,
        })
    }

    fn message(zone: &Name, updates: Vec<Record>) -> Message {
        let mut m = Message::query();
        m.metadata.op_code = OpCode::Update;
        m.metadata.recursion_desired = false;
        let mut q = Query::new();
        q.set_name(zone.clone())
            .set_query_class(DNSClass::IN)
            .set_query_type(RecordType::SOA);
        m.add_zone(q);
        for r in updates {
            m.add_update(r);
        }
        m
    }

    fn delete_rrset(owner: &Name, t: RecordType) -> Record {
        let mut r = Record::from_rdata(owner.clone(), 0, RData::Update0(t));
        r.dns_class = DNSClass::ANY;
        r
    }

    /// The update messages (unsigned) for one action: forward zone first, then the reverse zone
    /// when one covers the address.
    pub fn messages(&self, action: &Dns) -> Result<Vec<Message>, String> {
        let (label, ip) = match action {
            Dns::Add { name, ip } | Dns::Remove { name, ip } => (name, *ip),
        };
        let fqdn = name(&format!("{label}.{}", self.forward))?;
        let rev = name(&ptr_name(ip))?;
        let rzone = self.reverse.iter().find(|z| z.zone_of(&rev)).cloned();
        let mut out = Vec::new();
        match action {
            Dns::Add { .. } => {
                let a = Record::from_rdata(fqdn.clone(), self.ttl, RData::A(A(ip)));
                out.push(Self::message(
                    &self.forward,
                    vec![Self::delete_rrset(&fqdn, RecordType::A), a],
                ));
                if let Some(z) = rzone {
                    let p = Record::from_rdata(rev.clone(), self.ttl, RData::PTR(PTR(fqdn)));
                    out.push(Self::message(
                        &z,
                        vec![Self::delete_rrset(&rev, RecordType::PTR), p],
                    ));
                }
            }
            Dns::Remove { .. } => {
                // Only our address: another client may hold the name now (RFC 2136 2.5.4).
                let mut a = Record::from_rdata(fqdn, 0, RData::A(A(ip)));
                a.dns_class = DNSClass::NONE;
                out.push(Self::message(&self.forward, vec![a]));
                if let Some(z) = rzone {
                    out.push(Self::message(
                        &z,
                        vec![Self::delete_rrset(&rev, RecordType::PTR)],
                    ));
                }
            }
        }
        Ok(out)
    }

    async fn send(&self, mut m: Message) -> Result<ResponseCode, String> {
        if let Some(s) = &self.signer {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            m.finalize(s, now).map_err(|e| e.to_string())?;
        }
        let bytes = m.to_vec().map_err(|e| e.to_string())?;
        let bind: SocketAddr = if self.server.is_ipv4() {
            "0.0.0.0:0".parse().unwrap_or(self.server)
        } else {
            "[::]:0".parse().unwrap_or(self.server)
        };
        let sock = tokio::net::UdpSocket::bind(bind)
            .await
            .map_err(|e| e.to_string())?;
        sock.connect(self.server).await.map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; 4096];
        for _attempt in 0..3 {
            sock.send(&bytes).await.map_err(|e| e.to_string())?;
            let wait = tokio::time::timeout(Duration::from_secs(2), async {
                loop {
                    let n = sock.recv(&mut buf).await.map_err(|e| e.to_string())?;
                    if let Ok(r) = Message::from_vec(&buf[..n])
                        && r.metadata.id == m.metadata.id
                    {
                        return Ok::<_, String>(r.metadata.response_code);
                    }
                }
            });
            if let Ok(r) = wait.await {
                return r;
            }
        }
        Err("no answer".into())
    }

    /// Sends the updates for one action, logging the outcome.
    pub async fn apply(&self, action: &Dns) {
        let msgs = match self.messages(action) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(?action, "dynamic DNS: {e}");
                return;
            }
        };
        for m in msgs {
            let zone = m.queries.first().map(|q| q.name().to_string());
            // A server failure or silence may pass (zone loading, restart): two more tries.
            for attempt in 0..3 {
                if attempt > 0 {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                match self.send(m.clone()).await {
                    Ok(ResponseCode::NoError) => {
                        tracing::info!(?action, zone, server = %self.server, "dynamic DNS update done");
                        break;
                    }
                    Ok(ResponseCode::ServFail) => {
                        tracing::warn!(?action, zone, server = %self.server, attempt, "dynamic DNS update: server failure")
                    }
                    Ok(rc) => {
                        tracing::warn!(?action, zone, server = %self.server, rcode = %rc, "dynamic DNS update refused");
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(?action, zone, server = %self.server, attempt, "dynamic DNS update failed: {e}")
                    }
                }
            }
        }
    }
}

/// Runs updates from `rx` one at a time until `shutdown`.
pub async fn run(up: Updater, mut rx: mpsc::Receiver<Dns>, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            a = rx.recv() => match a {
                Some(a) => up.apply(&a).await,
                None => return,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::config;

    #[test]
    fn add_replaces_a_and_ptr_in_the_right_zones_and_is_signed() {
        let cfg = config();
        let up = Updater::new(cfg.view.ddns.as_ref().unwrap()).unwrap();
        let msgs = up
            .messages(&Dns::Add {
                name: "laptop".into(),
                ip: Ipv4Addr::new(192, 168, 10, 201),
            })
            .unwrap();
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0].queries[0].name().to_string(), "it-ishin.com.");
        assert_eq!(msgs[0].authorities.len(), 2);
        assert_eq!(
            msgs[1].queries[0].name().to_string(),
            "10.168.192.in-addr.arpa."
        );
        let mut m = msgs[0].clone();
        m.finalize(up.signer.as_ref().unwrap(), 1_700_000_000)
            .unwrap();
        let back = Message::from_vec(&m.to_vec().unwrap()).unwrap();
        assert!(back.signature.is_some());
    }

    #[test]
    fn remove_deletes_only_our_address() {
        let cfg = config();
        let up = Updater::new(cfg.view.ddns.as_ref().unwrap()).unwrap();
        let msgs = up
            .messages(&Dns::Remove {
                name: "laptop".into(),
                ip: Ipv4Addr::new(192, 168, 10, 201),
            })
            .unwrap();
        let r = &msgs[0].authorities[0];
        assert_eq!(r.dns_class, DNSClass::NONE);
        assert_eq!(r.data, RData::A(A(Ipv4Addr::new(192, 168, 10, 201))));
    }
}
