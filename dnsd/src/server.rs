//! The I/O layer: sockets, the shared state swapped on reload and update, and the tasks that
//! carry out the handler's decisions (forward, update, transfer, NOTIFY).

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use hostfile::DnsView;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::handler::{
    Decision, Policy, SecondaryAcl, Stats, Transport, TsigCtx, encode, handle, response_to, signer,
};
use crate::rrl::{Rrl, Verdict};
use crate::store::Store;
use crate::update::Outcome;
use crate::zone::{Catalog, ZoneData, ZoneSource, build, digest, next_serial};

/// Concurrent TCP connections.
pub const MAX_TCP: usize = 128;
/// A TCP connection idle this long is closed.
pub const TCP_IDLE: Duration = Duration::from_secs(10);
/// Requests served on one TCP connection before it is closed.
pub const TCP_MAX_REQUESTS: u32 = 10_000;
/// Concurrent forwarded queries.
pub const MAX_FORWARD: usize = 512;
/// Records per AXFR message.
const AXFR_CHUNK: usize = 400;

/// Seconds since the epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The single writer's state (dynamic updates and reloads are serialised through it).
#[derive(Debug)]
pub struct Writer {
    store: Store,
    sources: Vec<ZoneSource>,
}

/// Updates kept for `dnsd status` (in memory and in the store).
pub const JOURNAL_KEEP: usize = crate::store::UPDATES_KEEP;
/// Records listed per update entry (the rest are counted).
const JOURNAL_RECORDS: usize = 16;

/// One applied dynamic update, as `dnsd status` shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct UpdateEntry {
    /// Seconds since the epoch.
    pub time: u64,
    /// Zone origin.
    pub zone: String,
    /// The TSIG key that signed it.
    pub key: String,
    /// Serial before.
    pub from: u32,
    /// Serial after.
    pub serial: u32,
    /// Records added (presentation format; at most 16).
    pub added: Vec<String>,
    /// Records removed (at most 16).
    pub removed: Vec<String>,
    /// Records added and removed in all.
    pub changes: usize,
}

impl UpdateEntry {
    /// The entry for a committed `delta` (RFC 1995 order: old SOA, removed, new SOA, added).
    pub fn new(time: u64, zone: &Name, key: &Name, d: &crate::store::Delta) -> UpdateEntry {
        let body = d.records.get(1..).unwrap_or_default();
        let split = body
            .iter()
            .position(|r| r.record_type() == RecordType::SOA)
            .unwrap_or(body.len());
        let show = |rs: &[hickory_proto::rr::Record]| {
            rs.iter()
                .take(JOURNAL_RECORDS)
                .map(|r| format!("{} {} {} {}", r.name, r.ttl, r.record_type(), r.data))
                .collect::<Vec<_>>()
        };
        let removed = &body[..split];
        let added = body.get(split + 1..).unwrap_or_default();
        UpdateEntry {
            time,
            zone: zone.to_ascii(),
            key: key.to_ascii(),
            from: d.from,
            serial: d.to,
            added: show(added),
            removed: show(removed),
            changes: added.len() + removed.len(),
        }
    }
}

/// State shared by every task.
#[derive(Debug)]
pub struct Shared {
    /// What the handler decides from.
    pub policy: ArcSwap<Policy>,
    /// The current view.
    pub view: ArcSwap<DnsView>,
    /// Counters.
    pub stats: Stats,
    /// Answers by type and rcode, latency (per writer, summed at scrape).
    pub metrics: crate::metrics::Metrics,
    /// The most recent dynamic updates (for `dnsd status`), newest last.
    journal: Mutex<std::collections::VecDeque<UpdateEntry>>,
    cache: crate::forward::Cache,
    rrl: ArcSwap<Rrl>,
    writer: tokio::sync::Mutex<Writer>,
    tcp_slots: Arc<Semaphore>,
    forward_slots: Arc<Semaphore>,
}

/// Builds the policy for `view`: zone sources merged with the zone files, dynamic records and
/// serials from the store (bumping and storing serials of changed zones). Returns the origins
/// whose serial moved.
pub fn compile(
    view: &DnsView,
    store: &Store,
    sources: Vec<ZoneSource>,
    old: Option<&Catalog>,
) -> anyhow::Result<(Policy, Vec<Name>)> {
    let now = unix_now();
    let mut zones = Vec::new();
    let mut writes = Vec::new();
    let mut changed = Vec::new();
    for src in &sources {
        let key = src.origin.to_ascii();
        let mut dynamic = store.dynamic(&key)?;
        // The host table wins over older dynamic records for the same owner.
        let statics: std::collections::BTreeSet<Name> =
            src.records.iter().map(|r| r.name.to_lowercase()).collect();
        dynamic.retain(|r| !statics.contains(&r.name.to_lowercase()));
        let d = digest(src, &dynamic);
        let stored = store.serial(&key)?;
        let serial = next_serial(stored, d, now);
        if stored != Some((d, serial)) {
            writes.push((key.clone(), d, serial));
            changed.push(src.origin.clone());
        }
        zones.push(Arc::new(build(src, dynamic, serial)));
    }
    let mut deltas = Vec::new();
    for z in &zones {
        if let Some(o) = old.and_then(|c| c.get(&z.origin))
            && o.serial() != z.serial()
        {
            deltas.push((z.origin.to_ascii(), crate::zone::delta(o, z)));
        }
    }
    store.commit_with_journal(None, &writes, &deltas, None)?;
    Ok((policy(view, Catalog { zones }), changed))
}

/// The policy for `view` with every zone at `serial` and no store (fuzzing, benchmarks).
pub fn policy_from_view(view: &DnsView, serial: u32) -> anyhow::Result<Policy> {
    let zones = crate::zonefile::merged_sources(view)?
        .iter()
        .map(|s| Arc::new(build(s, Vec::new(), serial)))
        .collect();
    Ok(policy(view, Catalog { zones }))
}

fn policy(view: &DnsView, catalog: Catalog) -> Policy {
    let mut keys: Vec<_> = view.update_keys.iter().filter_map(signer).collect();
    for s in &view.secondaries {
        if let Some(k) = s.key.as_ref().and_then(signer)
            && !keys.iter().any(|x| x.signer_name() == k.signer_name())
        {
            keys.push(k);
        }
    }
    let mut p = Policy {
        catalog: Arc::new(catalog),
        keys,
        update_keys: view
            .update_keys
            .iter()
            .filter_map(|k| crate::zone::name(&k.name).ok())
            .collect(),
        allow_recursion: view.allow_recursion.clone(),
        forwarding: !view.upstream.is_empty(),
        secondaries: view
            .secondaries
            .iter()
            .map(|s| SecondaryAcl {
                ip: s.address.ip(),
                key: s.key.as_ref().and_then(|k| crate::zone::name(&k.name).ok()),
            })
            .collect(),
        fast: Default::default(),
    };
    p.fast = crate::fast::FastTable::build(&p);
    p
}

impl Shared {
    /// Opens the store and compiles the first view.
    pub fn new(view: Arc<DnsView>, store: Store) -> anyhow::Result<(Arc<Shared>, Vec<Name>)> {
        let sources = crate::zonefile::merged_sources(&view)?;
        let (p, changed) = compile(&view, &store, sources.clone(), None)?;
        // The update log survives restarts; an entry that no longer parses is skipped.
        let journal = store
            .updates()?
            .iter()
            .filter_map(|b| serde_json::from_slice::<UpdateEntry>(b).ok())
            .collect();
        let s = Shared {
            policy: ArcSwap::from_pointee(p),
            rrl: ArcSwap::from_pointee(Rrl::new(view.rrl.clone())),
            view: ArcSwap::new(view),
            stats: Stats::default(),
            metrics: Default::default(),
            journal: Mutex::new(journal),
            cache: crate::forward::Cache::default(),
            writer: tokio::sync::Mutex::new(Writer { store, sources }),
            tcp_slots: Arc::new(Semaphore::new(MAX_TCP)),
            forward_slots: Arc::new(Semaphore::new(MAX_FORWARD)),
        };
        Ok((Arc::new(s), changed))
    }

    /// Swaps in a new view; on error the old zones stay in force.
    pub async fn reload(self: &Arc<Self>, view: Arc<DnsView>) {
        let mut w = self.writer.lock().await;
        let sources = match crate::zonefile::merged_sources(&view) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("reload rejected, the previous zones stay in force: {e}");
                return;
            }
        };
        let old = self.policy.load_full();
        match compile(&view, &w.store, sources.clone(), Some(&old.catalog)) {
            Ok((p, changed)) => {
                w.sources = sources;
                if self.view.load().listen != view.listen {
                    tracing::warn!("listen addresses changed: restart dnsd to apply them");
                }
                self.rrl.store(Arc::new(Rrl::new(view.rrl.clone())));
                self.policy.store(Arc::new(p));
                self.view.store(view);
                for z in &changed {
                    tracing::info!(zone = %z, serial = self.serial(z), "zone changed by reload");
                }
                self.notify_all(&changed);
            }
            Err(e) => tracing::error!("reload failed, the previous zones stay in force: {e:#}"),
        }
    }

    /// Entries in the forwarding cache.
    pub fn cache_len(&self) -> usize {
        self.cache.len()
    }

    /// The recent dynamic updates, oldest first.
    pub fn journal(&self) -> Vec<UpdateEntry> {
        self.journal
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    fn serial(&self, origin: &Name) -> u32 {
        self.policy
            .load()
            .catalog
            .get(origin)
            .map_or(0, |z| z.serial())
    }

    async fn update(self: &Arc<Self>, req: Message, tsig: TsigCtx) -> Option<Vec<u8>> {
        let mut w = self.writer.lock().await;
        let pol = self.policy.load_full();
        let zname = req.queries[0].name().to_lowercase();
        let Some(zone) = pol.catalog.get(&zname).cloned() else {
            self.stats.updates_refused.inc();
            return encode(
                response_to(&req, ResponseCode::NotAuth),
                Some(&tsig),
                65535,
                &self.stats,
            );
        };
        let rcode = match crate::update::apply(&zone, &req) {
            Outcome::Rejected(rc) => {
                self.stats.updates_refused.inc();
                rc
            }
            Outcome::Unchanged => {
                self.stats.updates_unchanged.inc();
                ResponseCode::NoError
            }
            Outcome::Changed(dynamic) => {
                match self.commit_zone(&mut w, &pol, &zone, dynamic, tsig.signer.signer_name()) {
                    Ok(entry) => {
                        let serial = entry.serial;
                        self.stats.updates.inc();
                        {
                            let mut j = self.journal.lock().unwrap_or_else(|e| e.into_inner());
                            if j.len() >= JOURNAL_KEEP {
                                j.pop_front();
                            }
                            j.push_back(entry);
                        }
                        tracing::info!(zone = %zname, serial, key = %tsig.signer.signer_name(), "dynamic update applied");
                        self.notify_all(std::slice::from_ref(&zname));
                        ResponseCode::NoError
                    }
                    Err(e) => {
                        self.stats.updates_failed.inc();
                        tracing::error!(zone = %zname, "update not stored: {e:#}");
                        ResponseCode::ServFail
                    }
                }
            }
        };
        encode(response_to(&req, rcode), Some(&tsig), 65535, &self.stats)
    }

    fn commit_zone(
        &self,
        w: &mut Writer,
        pol: &Policy,
        zone: &ZoneData,
        dynamic: Vec<hickory_proto::rr::Record>,
        key_name: &Name,
    ) -> anyhow::Result<UpdateEntry> {
        let src = w
            .sources
            .iter()
            .find(|s| s.origin == zone.origin)
            .ok_or_else(|| anyhow::anyhow!("zone source missing"))?;
        let key = zone.origin.to_ascii();
        let d = digest(src, &dynamic);
        let stored = w.store.serial(&key)?.or(Some((0, zone.serial())));
        let serial = next_serial(stored, d, unix_now());
        let newz = Arc::new(build(src, dynamic.clone(), serial));
        let dl = crate::zone::delta(zone, &newz);
        let entry = UpdateEntry::new(unix_now(), &zone.origin, key_name, &dl);
        let json = serde_json::to_vec(&entry)?;
        w.store.commit_with_journal(
            Some((&key, &dynamic)),
            &[(key.clone(), d, serial)],
            &[(key.clone(), dl)],
            Some(&json),
        )?;
        let zones = pol
            .catalog
            .zones
            .iter()
            .map(|z| {
                if z.origin == zone.origin {
                    newz.clone()
                } else {
                    z.clone()
                }
            })
            .collect();
        let mut p = Policy {
            catalog: Arc::new(Catalog { zones }),
            keys: pol.keys.clone(),
            update_keys: pol.update_keys.clone(),
            allow_recursion: pol.allow_recursion.clone(),
            forwarding: pol.forwarding,
            secondaries: pol.secondaries.clone(),
            fast: Default::default(),
        };
        p.fast = crate::fast::FastTable::build(&p);
        self.policy.store(Arc::new(p));
        Ok(entry)
    }

    /// Sends NOTIFY for each zone to every secondary that wants it (in the background).
    pub fn notify_all(self: &Arc<Self>, zones: &[Name]) {
        let view = self.view.load_full();
        let pol = self.policy.load_full();
        for origin in zones {
            let Some(z) = pol.catalog.get(origin).cloned() else {
                continue;
            };
            for s in view.secondaries.iter().filter(|s| s.notify) {
                let key = s.key.as_ref().and_then(signer);
                let addr = s.address;
                let z = z.clone();
                let sh = self.clone();
                tokio::spawn(async move { notify_one(addr, &z, key, &sh.stats).await });
            }
        }
    }

    /// True when RRL is off.
    pub fn rrl_off(&self) -> bool {
        self.rrl.load().off()
    }

    /// Accounts one UDP response to `src`.
    pub fn rrl_check(&self, src: IpAddr, now: u64) -> Verdict {
        let v = self.rrl.load().check(src, now);
        match v {
            Verdict::Drop => self.stats.rrl_dropped.inc(),
            Verdict::Slip => self.stats.rrl_slipped.inc(),
            Verdict::Send => 0,
        };
        v
    }

    /// Resolves `req` on the runtime and answers `src` on `sock`.
    pub fn spawn_forward(
        self: &Arc<Self>,
        rt: &tokio::runtime::Handle,
        sock: Arc<std::net::UdpSocket>,
        req: Message,
        src: SocketAddr,
    ) {
        let Ok(permit) = self.forward_slots.clone().try_acquire_owned() else {
            return; // overloaded: the client retries
        };
        let sh = self.clone();
        let t0 = Instant::now();
        rt.spawn(async move {
            if let Some(mut b) = sh.forward(req, Transport::Udp).await {
                sh.metrics.tasks.answer(&b);
                sh.metrics.tasks.latency(t0.elapsed(), 1);
                let ok = sh.rrl_off()
                    || match sh.rrl_check(src.ip(), unix_now()) {
                        Verdict::Send => true,
                        Verdict::Drop => false,
                        Verdict::Slip => {
                            crate::handler::slip(&mut b);
                            true
                        }
                    };
                if ok {
                    let _ = sock.send_to(&b, src);
                }
            }
            drop(permit);
        });
    }

    /// Applies an update on the runtime and answers `src` on `sock`.
    pub fn spawn_update(
        self: &Arc<Self>,
        rt: &tokio::runtime::Handle,
        sock: Arc<std::net::UdpSocket>,
        req: Message,
        tsig: TsigCtx,
        src: SocketAddr,
    ) {
        let sh = self.clone();
        let t0 = Instant::now();
        rt.spawn(async move {
            if let Some(b) = sh.update(req, tsig).await {
                sh.metrics.tasks.answer(&b);
                sh.metrics.tasks.latency(t0.elapsed(), 1);
                let _ = sock.send_to(&b, src);
            }
        });
    }

    async fn forward(&self, req: Message, transport: Transport) -> Option<Vec<u8>> {
        let ups = self.view.load().upstream.clone();
        let own = self.policy.load().catalog.clone();
        crate::forward::answer(&self.cache, &ups, &own, &req, transport, &self.stats).await
    }
}

async fn notify_one(
    addr: SocketAddr,
    z: &ZoneData,
    key: Option<hickory_proto::rr::TSigner>,
    stats: &Stats,
) {
    let id = (unix_now() as u16) ^ (z.serial() as u16);
    let mut m = Message::new(id, MessageType::Query, OpCode::Notify);
    m.metadata.authoritative = true;
    m.add_query(Query::query(z.origin.clone(), RecordType::SOA));
    m.add_answer(z.soa.clone());
    let bytes = match &key {
        Some(k) => match k.sign_message(&m, unix_now()) {
            Ok((rec, _)) => {
                m.set_signature(rec);
                m.to_vec()
            }
            Err(e) => Err(e),
        },
        None => m.to_vec(),
    };
    let Ok(bytes) = bytes else { return };
    let bind: SocketAddr = if addr.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    let Ok(sock) = UdpSocket::bind(bind).await else {
        return;
    };
    if sock.connect(addr).await.is_err() {
        return;
    }
    for attempt in 1..=5 {
        if sock.send(&bytes).await.is_ok() {
            stats.notify_sent.inc();
        }
        let mut buf = [0u8; 1024];
        let wait = async {
            loop {
                let n = sock.recv(&mut buf).await.ok()?;
                if let Ok(r) = Message::from_vec(&buf[..n])
                    && r.id == id
                {
                    return Some(r.response_code);
                }
            }
        };
        if let Ok(Some(rc)) = tokio::time::timeout(Duration::from_secs(2), wait).await {
            tracing::info!(secondary = %addr, zone = %z.origin, serial = z.serial(), rcode = %rc, "NOTIFY acknowledged");
            stats.notify_acked.inc();
            return;
        }
        tracing::debug!(secondary = %addr, attempt, "no NOTIFY answer yet");
    }
    stats.notify_failed.inc();
    tracing::warn!(secondary = %addr, zone = %z.origin, "NOTIFY not acknowledged after 5 tries");
}

/// Sockets of one listen address: `workers` UDP sockets sharing the port (SO_REUSEPORT) and
/// the TCP listener.
pub type Bound = (Vec<std::net::UdpSocket>, TcpListener);

/// Binds UDP and TCP on every listen address; a missing address is a clear error.
pub fn bind(listen: &[SocketAddr], workers: usize) -> anyhow::Result<Vec<Bound>> {
    use socket2::{Domain, Protocol, Socket, Type};
    let mut out = Vec::new();
    for a in listen {
        let explain = |e: std::io::Error, proto: &str| {
            if e.raw_os_error() == Some(libc_eaddrnotavail()) {
                anyhow::anyhow!(
                    "cannot listen on {a} ({proto}): {} is not an address of this host; add it to an interface or change [dns] listen",
                    a.ip()
                )
            } else {
                anyhow::anyhow!("cannot listen on {a} ({proto}): {e}")
            }
        };
        let mut udp = Vec::new();
        for _ in 0..workers.max(1) {
            udp.push(crate::udp::bind_one(*a).map_err(|e| explain(e, "udp"))?);
        }
        let dom = Domain::for_address(*a);
        let t = Socket::new(dom, Type::STREAM, Some(Protocol::TCP))?;
        t.set_reuse_address(true)?;
        t.set_nonblocking(true)?;
        t.bind(&(*a).into()).map_err(|e| explain(e, "tcp"))?;
        t.listen(1024)?;
        let t = TcpListener::from_std(std::net::TcpListener::from(t))?;
        out.push((udp, t));
    }
    Ok(out)
}

fn libc_eaddrnotavail() -> i32 {
    99 // EADDRNOTAVAIL on Linux
}

/// Accepts TCP connections until `stop`.
pub async fn serve_tcp(shared: Arc<Shared>, l: TcpListener, stop: CancellationToken) {
    loop {
        let (s, peer) = tokio::select! {
            _ = stop.cancelled() => return,
            r = l.accept() => match r {
                Ok(x) => x,
                Err(e) => { tracing::debug!("tcp accept: {e}"); continue; }
            },
        };
        let Ok(permit) = shared.tcp_slots.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "too many TCP connections; closing");
            continue;
        };
        let (sh, st) = (shared.clone(), stop.clone());
        tokio::spawn(async move {
            tokio::select! {
                _ = st.cancelled() => {}
                _ = connection(sh, s, peer.ip()) => {}
            }
            drop(permit);
        });
    }
}

async fn write_frame(s: &mut TcpStream, b: &[u8]) -> std::io::Result<()> {
    let len = u16::try_from(b.len()).unwrap_or(u16::MAX);
    let mut f = Vec::with_capacity(b.len() + 2);
    f.extend_from_slice(&len.to_be_bytes());
    f.extend_from_slice(&b[..usize::from(len)]);
    tokio::time::timeout(TCP_IDLE, s.write_all(&f))
        .await
        .map_err(|_| std::io::ErrorKind::TimedOut)?
}

async fn connection(shared: Arc<Shared>, mut s: TcpStream, peer: IpAddr) {
    let _ = s.set_nodelay(true);
    let mut buf = vec![0u8; 65535];
    for _ in 0..TCP_MAX_REQUESTS {
        let len = match tokio::time::timeout(TCP_IDLE, s.read_u16()).await {
            Ok(Ok(l)) => usize::from(l),
            _ => return,
        };
        if len < 12 {
            shared.stats.malformed.inc();
            return; // garbage framing: close
        }
        match tokio::time::timeout(TCP_IDLE, s.read_exact(&mut buf[..len])).await {
            Ok(Ok(_)) => {}
            _ => {
                shared.stats.malformed.inc();
                return; // truncated frame
            }
        }
        let t0 = Instant::now();
        let pol = shared.policy.load_full();
        let mut xfr = false;
        let out = match handle(
            &pol,
            &buf[..len],
            peer,
            Transport::Tcp,
            unix_now(),
            &shared.stats,
        ) {
            Decision::Reply(b) => vec![b],
            Decision::Drop => continue,
            Decision::Forward(req) => shared
                .forward(*req, Transport::Tcp)
                .await
                .into_iter()
                .collect(),
            Decision::Update(req, t) => shared.update(*req, t).await.into_iter().collect(),
            Decision::Transfer(z, req, t) => {
                let client = req.authorities.iter().find_map(|r| match &r.data {
                    hickory_proto::rr::RData::SOA(s) => Some(s.serial),
                    _ => None,
                });
                let journal = match client {
                    Some(_) => {
                        let w = shared.writer.lock().await;
                        w.store.journal(&z.origin.to_ascii()).unwrap_or_default()
                    }
                    None => Vec::new(),
                };
                xfr = true;
                match client.and_then(|c| crate::zone::ixfr(&z, c, &journal)) {
                    Some(recs) => {
                        shared.stats.ixfr_out.inc();
                        tracing::info!(%peer, zone = %z.origin, from = client, serial = z.serial(), "incremental zone transfer");
                        transfer_records(recs, &req, t.as_ref(), &shared.stats)
                    }
                    None => {
                        shared.stats.axfr_out.inc();
                        tracing::info!(%peer, zone = %z.origin, serial = z.serial(), "zone transfer");
                        transfer(&z, &req, t.as_ref(), &shared.stats)
                    }
                }
            }
        };
        // A transfer counts once (its first message), as one answer.
        for b in out.iter().take(if xfr { 1 } else { out.len() }) {
            shared.metrics.tasks.answer(b);
        }
        if !out.is_empty() {
            shared.metrics.tasks.latency(t0.elapsed(), 1);
        }
        for b in out {
            if write_frame(&mut s, &b).await.is_err() {
                return;
            }
        }
    }
}

/// The AXFR messages for `z`: SOA, every record, SOA (RFC 5936). With TSIG the first message
/// is signed over the request MAC and the later ones chain on the previous MAC with the timers
/// only (RFC 8945 5.3.1).
pub fn transfer(
    z: &ZoneData,
    req: &Message,
    tsig: Option<&TsigCtx>,
    stats: &Stats,
) -> Vec<Vec<u8>> {
    let mut recs = z.all_records();
    recs.push(z.soa.clone());
    transfer_records(recs, req, tsig, stats)
}

/// The messages carrying `recs` (an AXFR or IXFR answer), signed as [`transfer`] says.
pub fn transfer_records(
    recs: Vec<hickory_proto::rr::Record>,
    req: &Message,
    tsig: Option<&TsigCtx>,
    stats: &Stats,
) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut prev_mac: Vec<u8> = Vec::new();
    for (i, c) in recs.chunks(AXFR_CHUNK).enumerate() {
        let mut m = response_to(req, ResponseCode::NoError);
        m.metadata.authoritative = true;
        m.answers = c.to_vec();
        let bytes = match (i, tsig) {
            (_, None) => encode(m, None, 65535, stats),
            (0, Some(t)) => encode(m, Some(t), 65535, stats),
            (_, Some(t)) => chained(&mut m, t, &prev_mac),
        };
        let Some(b) = bytes else { break };
        if tsig.is_some() {
            match Message::from_vec(&b).ok().and_then(|mm| mm.signature) {
                Some(sig) => prev_mac = sig.data.mac.clone(),
                None => break,
            }
        }
        out.push(b);
    }
    out
}

fn chained(m: &mut Message, t: &TsigCtx, prev_mac: &[u8]) -> Option<Vec<u8>> {
    use hickory_proto::rr::rdata::tsig::{TSIG, make_tsig_record};
    m.signature = None;
    let bytes = m.to_vec().ok()?;
    let mut data = Vec::with_capacity(bytes.len() + prev_mac.len() + 10);
    data.extend_from_slice(&(prev_mac.len() as u16).to_be_bytes());
    data.extend_from_slice(prev_mac);
    data.extend_from_slice(&bytes);
    data.extend_from_slice(&t.now.to_be_bytes()[2..]);
    data.extend_from_slice(&t.signer.fudge().to_be_bytes());
    let mac = t.signer.algorithm().mac_data(t.signer.key(), &data).ok()?;
    let rd = TSIG::new(
        t.signer.algorithm().clone(),
        t.now,
        t.signer.fudge(),
        mac,
        m.id,
        None,
        Vec::new(),
    );
    m.set_signature(Box::new(make_tsig_record(
        t.signer.signer_name().clone(),
        rd,
    )));
    m.to_vec().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handler::Policy;
    use crate::zone::name;
    use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
    use hickory_proto::rr::rdata::{A, SOA};
    use hickory_proto::rr::{RData, Record, TSigner};

    #[test]
    fn multi_message_axfr_tsig_chain_verifies() {
        let origin = name("big.test.").unwrap();
        let src = ZoneSource {
            origin: origin.clone(),
            soa: Record::from_rdata(
                origin.clone(),
                60,
                RData::SOA(SOA::new(origin.clone(), origin.clone(), 0, 1, 1, 1, 1)),
            ),
            records: (0..900u32)
                .map(|i| {
                    Record::from_rdata(
                        name(&format!("h{i}.big.test.")).unwrap(),
                        60,
                        RData::A(A::from(std::net::Ipv4Addr::from(0x0a00_0000 + i))),
                    )
                })
                .collect(),
        };
        let signer = TSigner::new(
            b"0123456789abcdef".to_vec(),
            TsigAlgorithm::HmacSha256,
            name("xfr.").unwrap(),
            300,
        )
        .unwrap();
        let p = Policy {
            catalog: Arc::new(Catalog {
                zones: vec![Arc::new(build(&src, vec![], 7))],
            }),
            keys: vec![signer.clone()],
            update_keys: vec![],
            allow_recursion: vec![],
            forwarding: false,
            secondaries: vec![SecondaryAcl {
                ip: "192.0.2.1".parse().unwrap(),
                key: Some(name("xfr.").unwrap()),
            }],
            fast: Default::default(),
        };
        let now = unix_now();
        let mut req = Message::query();
        req.metadata.id = 77;
        req.add_query(Query::query(origin.clone(), RecordType::AXFR));
        let (sig, verifier) = signer.sign_message(&req, now).unwrap();
        req.set_signature(sig);
        let bytes = req.to_vec().unwrap();
        let stats = Stats::default();
        // Unsigned from the right address: refused (the secondary needs its key).
        let mut plain = req.clone();
        plain.signature = None;
        let d = handle(
            &p,
            &plain.to_vec().unwrap(),
            "192.0.2.1".parse().unwrap(),
            Transport::Tcp,
            now,
            &stats,
        );
        assert!(matches!(d, Decision::Reply(_)));
        let Decision::Transfer(z, r, t) = handle(
            &p,
            &bytes,
            "192.0.2.1".parse().unwrap(),
            Transport::Tcp,
            now,
            &stats,
        ) else {
            panic!("expected a transfer")
        };
        let out = transfer(&z, &r, t.as_ref(), &stats);
        assert_eq!(out.len(), 3);
        let mut v = verifier.unwrap();
        let mut n = 0;
        for b in &out {
            let m = v.verify(b).expect("TSIG chain verifies");
            n += m.answers.len();
        }
        assert_eq!(n, 902);
    }
}
