//! Dynamic DNS (RFC 2136): A (or AAAA) and PTR records for leases with a host name, signed with
//! TSIG (RFC 8945), added on ACK (or DHCPv6 REPLY, see [`v6`]) and removed on release, decline
//! and expiry. Conflicts between clients that want the same name are resolved as RFC 4703 says
//! (and Kea and ISC dhcpd do): a DHCID record (RFC 4701) marks whose name it is, and
//! prerequisites make the server refuse an update that would take over or delete another
//! client's name. Plain standard messages, so BIND, Knot or dnsd can be the primary.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hickory_proto::op::update_message::UpdateMessage;
use hickory_proto::op::{Message, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
use hickory_proto::rr::rdata::{A, AAAA, NULL, PTR};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType, TSigner};
use hostfile::DdnsConfig;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::decide::{ClientId, Dns};

pub mod v6;

/// Why an update could not be built or sent.
#[derive(Debug, thiserror::Error)]
pub enum DdnsError {
    /// A name from the host file or a client is not a DNS name.
    #[error("bad DNS name {name:?}: {msg}")]
    BadName {
        /// The name.
        name: String,
        /// Why.
        msg: String,
    },
    /// The key's algorithm is not one dhcpd signs with.
    #[error("TSIG algorithm {0} is not supported")]
    Algorithm(String),
    /// The key could not be set up.
    #[error("{0}")]
    Key(String),
    /// The message could not be signed or encoded.
    #[error("{0}")]
    Encode(String),
    /// The socket failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Three tries went unanswered.
    #[error("no answer")]
    NoAnswer,
}

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

fn name(s: &str) -> Result<Name, DdnsError> {
    let s = s.trim_end_matches('.');
    Name::from_ascii(format!("{s}.")).map_err(|e| DdnsError::BadName {
        name: s.to_owned(),
        msg: e.to_string(),
    })
}

/// `4.3.2.1.in-addr.arpa.` for 1.2.3.4.
pub fn ptr_name(ip: Ipv4Addr) -> String {
    let o = ip.octets();
    format!("{}.{}.{}.{}.in-addr.arpa.", o[3], o[2], o[1], o[0])
}

/// One action of either family: what a v4 [`Dns`] says, or what [`v6`] makes of a DHCPv6
/// binding.
#[derive(Clone, PartialEq, Eq)]
pub struct Job {
    /// Add (else remove).
    pub add: bool,
    /// Host label.
    pub name: String,
    /// Address: an A record for IPv4, AAAA for IPv6.
    pub ip: IpAddr,
    /// Whose records they are (the DHCID).
    pub id: ClientId,
}

/// As [`Dns`] shows in logs: `Add { name: .., ip: .., id: .. }` or `Remove { .. }`.
impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct(if self.add { "Add" } else { "Remove" })
            .field("name", &self.name)
            .field("ip", &self.ip)
            .field("id", &self.id)
            .finish()
    }
}

impl From<&Dns> for Job {
    fn from(d: &Dns) -> Job {
        let (add, (name, ip, id)) = match d {
            Dns::Add { name, ip, id } => (true, (name, ip, id)),
            Dns::Remove { name, ip, id } => (false, (name, ip, id)),
        };
        Job {
            add,
            name: name.clone(),
            ip: IpAddr::V4(*ip),
            id: id.clone(),
        }
    }
}

impl Updater {
    /// From the host table's settings.
    pub fn new(c: &DdnsConfig) -> Result<Self, DdnsError> {
        let signer = match &c.key {
            None => None,
            Some(k) => {
                let alg = match k.algorithm.as_str() {
                    "hmac-sha256" => TsigAlgorithm::HmacSha256,
                    "hmac-sha384" => TsigAlgorithm::HmacSha384,
                    "hmac-sha512" => TsigAlgorithm::HmacSha512,
                    other => return Err(DdnsError::Algorithm(other.to_owned())),
                };
                Some(
                    TSigner::new(k.secret.clone(), alg, name(&k.name)?, 300)
                        .map_err(|e| DdnsError::Key(e.to_string()))?,
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

    fn message(zone: &Name, prereqs: Vec<Record>, updates: Vec<Record>) -> Message {
        let mut m = Message::query();
        m.metadata.op_code = OpCode::Update;
        m.metadata.recursion_desired = false;
        let mut q = Query::new();
        q.set_name(zone.clone())
            .set_query_class(DNSClass::IN)
            .set_query_type(RecordType::SOA);
        m.add_zone(q);
        for r in prereqs {
            m.add_pre_requisite(r);
        }
        for r in updates {
            m.add_update(r);
        }
        m
    }

    /// The names, zones and DHCID of one action.
    fn target(&self, job: &Job) -> Result<Target, DdnsError> {
        let fqdn = name(&format!("{}.{}", job.name, self.forward))?;
        let rev = name(&match job.ip {
            IpAddr::V4(ip) => ptr_name(ip),
            IpAddr::V6(ip) => hostfile::ptr_name6(ip),
        })?;
        // The most specific zone holding the name (dnsd nests a /64's ip6.arpa zone in a /60's).
        let rzone = self
            .reverse
            .iter()
            .filter(|z| z.zone_of(&rev))
            .max_by_key(|z| z.num_labels())
            .cloned();
        let dhcid = dhcid(&job.id, &fqdn);
        Ok(Target {
            fqdn,
            ip: job.ip,
            rev,
            rzone,
            dhcid,
        })
    }

    /// The update message of one step of a v4 action, unsigned; `None` when the step has no
    /// zone (no reverse zone covers the address).
    pub fn message_for(&self, action: &Dns, step: Step) -> Result<Option<Message>, DdnsError> {
        self.job_message(&Job::from(action), step)
    }

    /// The update message of one step, unsigned; `None` when the step has no zone.
    pub fn job_message(&self, job: &Job, step: Step) -> Result<Option<Message>, DdnsError> {
        let t = self.target(job)?;
        let ttl = self.ttl;
        let f = &t.fqdn;
        let ours = || Record::from_rdata(f.clone(), 0, t.dhcid.clone());
        let addr = |ttl| match t.ip {
            IpAddr::V4(ip) => Record::from_rdata(f.clone(), ttl, RData::A(A(ip))),
            IpAddr::V6(ip) => Record::from_rdata(f.clone(), ttl, RData::AAAA(AAAA(ip))),
        };
        let a = || addr(ttl);
        let rtype = if t.ip.is_ipv4() {
            RecordType::A
        } else {
            RecordType::AAAA
        };
        let forward = |pre, upd| Some(Self::message(&self.forward, pre, upd));
        Ok(match step {
            // RFC 4703 5.3.1: the name is not in use -> A (AAAA) and DHCID.
            Step::AddNew => forward(
                vec![class(
                    Record::update0(f.clone(), 0, RecordType::ANY),
                    DNSClass::NONE,
                )],
                vec![a(), Record::from_rdata(f.clone(), ttl, t.dhcid.clone())],
            ),
            // 5.3.2: the name carries our DHCID -> replace the A (AAAA) RRset; the other
            // family's addresses stay.
            Step::Replace => forward(vec![ours()], vec![delete_rrset(f, rtype), a()]),
            // 5.4: the PTR RRset (and a DHCID) at the address's name.
            Step::AddPtr => t.rzone.as_ref().map(|z| {
                Self::message(
                    z,
                    vec![],
                    vec![
                        delete_rrset(&t.rev, RecordType::PTR),
                        delete_rrset(&t.rev, DHCID),
                        Record::from_rdata(t.rev.clone(), ttl, RData::PTR(PTR(f.clone()))),
                        Record::from_rdata(t.rev.clone(), ttl, t.dhcid.clone()),
                    ],
                )
            }),
            // 5.5: our address only, and only while the name is ours.
            Step::RemoveA => forward(vec![ours()], vec![class(addr(0), DNSClass::NONE)]),
            // Then the DHCID, once no address of ours is left at the name.
            Step::RemoveDhcid => forward(
                vec![
                    ours(),
                    class(Record::update0(f.clone(), 0, RecordType::A), DNSClass::NONE),
                    class(
                        Record::update0(f.clone(), 0, RecordType::AAAA),
                        DNSClass::NONE,
                    ),
                ],
                vec![delete_rrset(f, DHCID)],
            ),
            // The PTR, while it still names us.
            Step::RemovePtr => t.rzone.as_ref().map(|z| {
                Self::message(
                    z,
                    vec![Record::from_rdata(
                        t.rev.clone(),
                        0,
                        RData::PTR(PTR(f.clone())),
                    )],
                    vec![
                        delete_rrset(&t.rev, RecordType::PTR),
                        delete_rrset(&t.rev, DHCID),
                    ],
                )
            }),
        })
    }

    async fn send(&self, mut m: Message) -> Result<ResponseCode, DdnsError> {
        if let Some(s) = &self.signer {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            m.finalize(s, now)
                .map_err(|e| DdnsError::Encode(e.to_string()))?;
        }
        let bytes = m.to_vec().map_err(|e| DdnsError::Encode(e.to_string()))?;
        let bind: SocketAddr = if self.server.is_ipv4() {
            "0.0.0.0:0".parse().unwrap_or(self.server)
        } else {
            "[::]:0".parse().unwrap_or(self.server)
        };
        let sock = tokio::net::UdpSocket::bind(bind).await?;
        sock.connect(self.server).await?;
        let mut buf = vec![0u8; 4096];
        for _attempt in 0..3 {
            sock.send(&bytes).await?;
            let wait = tokio::time::timeout(Duration::from_secs(2), async {
                loop {
                    let n = sock.recv(&mut buf).await?;
                    if let Ok(r) = Message::from_vec(&buf[..n])
                        && r.metadata.id == m.metadata.id
                    {
                        return Ok::<_, DdnsError>(r.metadata.response_code);
                    }
                }
            });
            if let Ok(r) = wait.await {
                return r;
            }
        }
        Err(DdnsError::NoAnswer)
    }

    /// Sends one message, again on server failure or silence (zone loading, restart): three
    /// tries in all. `None` when no answer came.
    async fn send_retrying(&self, m: &Message, action: &Job, step: Step) -> Option<ResponseCode> {
        let zone = m.queries.first().map(|q| q.name().to_string());
        let mut last = None;
        for attempt in 0..3 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            match self.send(m.clone()).await {
                Ok(ResponseCode::ServFail) => {
                    tracing::warn!(?action, ?step, zone, server = %self.server, attempt, "dynamic DNS update: server failure");
                    last = Some(ResponseCode::ServFail);
                }
                Ok(rc) => return Some(rc),
                Err(e) => {
                    tracing::warn!(?action, ?step, zone, server = %self.server, attempt, "dynamic DNS update failed: {e}")
                }
            }
        }
        last
    }

    /// Runs the steps of one v4 action (RFC 4703), logging the outcome.
    pub async fn apply(&self, action: &Dns) {
        self.apply_job(&Job::from(action)).await;
    }

    /// Runs the steps of one action (RFC 4703), logging the outcome.
    pub async fn apply_job(&self, action: &Job) {
        let mut step = Some(if action.add {
            Step::AddNew
        } else {
            Step::RemoveA
        });
        while let Some(s) = step {
            let m = match self.job_message(action, s) {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(?action, "dynamic DNS: {e}");
                    return;
                }
            };
            let zone = m.queries.first().map(|q| q.name().to_string());
            let rc = self.send_retrying(&m, action, s).await;
            match (s, rc) {
                (_, Some(ResponseCode::NoError)) => {
                    tracing::info!(?action, step = ?s, zone, server = %self.server, "dynamic DNS update done")
                }
                (Step::Replace, Some(ResponseCode::NXRRSet)) => {
                    tracing::warn!(?action, zone, server = %self.server, "dynamic DNS: the name is held by another client (its DHCID differs): left alone")
                }
                (Step::RemoveA, Some(ResponseCode::NXRRSet)) => {
                    tracing::info!(?action, zone, server = %self.server, "dynamic DNS: the name is no longer this client's: left alone")
                }
                (Step::AddNew, Some(ResponseCode::YXDomain))
                | (Step::RemoveDhcid, Some(ResponseCode::YXRRSet))
                | (Step::RemovePtr, Some(ResponseCode::NXRRSet)) => {
                    tracing::debug!(?action, step = ?s, zone, "dynamic DNS: prerequisite not met")
                }
                (_, Some(rc)) => {
                    tracing::warn!(?action, step = ?s, zone, server = %self.server, rcode = %rc, "dynamic DNS update refused")
                }
                (_, None) => {}
            }
            step = s.next(rc);
        }
    }
}

/// One message of an update (RFC 4703 section 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Forward: if the name is not in use, add the A (AAAA) record and our DHCID.
    AddNew,
    /// Forward: if the name carries our DHCID, replace its A (AAAA) RRset.
    Replace,
    /// Reverse: the PTR and our DHCID at the address's name.
    AddPtr,
    /// Forward: if the name carries our DHCID, delete our A (AAAA) record.
    RemoveA,
    /// Forward: if the name carries our DHCID and no address, delete the DHCID.
    RemoveDhcid,
    /// Reverse: if the PTR names us, delete it and the DHCID there.
    RemovePtr,
}

impl Step {
    /// Where an action starts.
    pub fn first(action: &Dns) -> Step {
        match action {
            Dns::Add { .. } => Step::AddNew,
            Dns::Remove { .. } => Step::RemoveA,
        }
    }

    /// What follows this step's answer (`None`: no answer). A name that another client holds
    /// is left alone and its PTR is not written.
    pub fn next(self, rc: Option<ResponseCode>) -> Option<Step> {
        use ResponseCode::{NXRRSet, NoError, YXDomain};
        match (self, rc) {
            (Step::AddNew, Some(NoError)) | (Step::Replace, Some(NoError)) => Some(Step::AddPtr),
            (Step::AddNew, Some(YXDomain)) => Some(Step::Replace),
            (Step::AddNew | Step::Replace | Step::AddPtr, _) => None,
            (Step::RemoveA, Some(NoError)) => Some(Step::RemoveDhcid),
            (Step::RemoveA, Some(NXRRSet)) => Some(Step::RemovePtr),
            (Step::RemoveA | Step::RemoveDhcid, _) => Some(Step::RemovePtr),
            (Step::RemovePtr, _) => None,
        }
    }
}

struct Target {
    fqdn: Name,
    ip: IpAddr,
    rev: Name,
    rzone: Option<Name>,
    dhcid: RData,
}

/// RR type 49 (hickory has no type of its own for it).
const DHCID: RecordType = RecordType::Unknown(49);

fn class(mut r: Record, c: DNSClass) -> Record {
    r.dns_class = c;
    r
}

fn delete_rrset(owner: &Name, t: RecordType) -> Record {
    class(Record::update0(owner.clone(), 0, t), DNSClass::ANY)
}

/// The DHCID RDATA (RFC 4701 section 3): identifier type, digest type 1, and SHA-256 over the
/// identifier followed by the name in canonical wire form.
pub fn dhcid_rdata(id: &ClientId, fqdn: &Name) -> Vec<u8> {
    let mut input = id.data.clone();
    for label in fqdn.to_lowercase().iter() {
        input.push(label.len() as u8);
        input.extend_from_slice(label);
    }
    input.push(0);
    let digest = ring::digest::digest(&ring::digest::SHA256, &input);
    let mut out = Vec::with_capacity(3 + 32);
    out.extend_from_slice(&id.kind.to_be_bytes());
    out.push(1);
    out.extend_from_slice(digest.as_ref());
    out
}

fn dhcid(id: &ClientId, fqdn: &Name) -> RData {
    RData::Unknown {
        code: DHCID,
        rdata: NULL::with(dhcid_rdata(id, fqdn)),
    }
}

/// Runs updates from `rx` (v4) and from the DHCPv6 side `v6`, one at a time (so the updates of
/// a name never overtake each other), until `shutdown` or until both queues close.
pub async fn run(
    up: Updater,
    mut rx: mpsc::Receiver<Dns>,
    mut v6: Option<v6::Publisher>,
    shutdown: CancellationToken,
) {
    let (mut open4, mut open6) = (true, v6.is_some());
    while open4 || open6 {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            a = rx.recv(), if open4 => match a {
                Some(a) => up.apply(&a).await,
                None => open4 = false,
            },
            e = recv6(&mut v6), if open6 => match (e, v6.as_mut()) {
                (Some(e), Some(p)) => p.handle(&up, &e).await,
                _ => open6 = false,
            },
        }
    }
}

async fn recv6(v6: &mut Option<v6::Publisher>) -> Option<v6::Event6> {
    match v6 {
        Some(p) => p.rx.recv().await,
        None => None,
    }
}

#[cfg(test)]
mod tests;
