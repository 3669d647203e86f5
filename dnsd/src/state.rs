//! The state every task shares: the policy and view swapped on reload and update, counters,
//! the forwarding cache, RRL, the update log and the single writer (store and zone sources).

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use hickory_proto::rr::Name;
use hostfile::DnsView;
use tokio::sync::Semaphore;

use crate::admission::{LIMITS, TcpAdmission};
use crate::clock::unix_now;
use crate::compile::{CompileError, compile};
use crate::journal::{JOURNAL_KEEP, UpdateEntry};
use crate::policy::Policy;
use crate::rrl::{Rrl, Verdict};
use crate::stats::Stats;
use crate::store::Store;
use crate::tsig::signer;
use crate::zone::ZoneSource;

/// Concurrent forwarded queries.
pub const MAX_FORWARD: usize = 512;

/// The single writer's state (dynamic updates and reloads are serialised through it).
#[derive(Debug)]
pub struct Writer {
    /// The store of dynamic records, serials and journals.
    pub(crate) store: Store,
    /// The zones' static sources (host table merged with the zone files).
    pub(crate) sources: Vec<ZoneSource>,
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
    journal: Mutex<VecDeque<UpdateEntry>>,
    pub(crate) cache: crate::forward::Cache,
    rrl: ArcSwap<Rrl>,
    pub(crate) writer: tokio::sync::Mutex<Writer>,
    /// TCP connection slots ([`crate::admission`]).
    pub(crate) tcp: Arc<TcpAdmission>,
    pub(crate) forward_slots: Arc<Semaphore>,
}

impl Shared {
    /// Compiles the first view over `store`; returns the state and the zones whose serial moved.
    pub fn new(view: Arc<DnsView>, store: Store) -> Result<(Arc<Shared>, Vec<Name>), CompileError> {
        let sources = crate::zonefile::merged_sources(&view)?;
        let (p, changed) = compile(&view, &store, sources.clone(), None, unix_now())?;
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
            tcp: Arc::new(TcpAdmission::new(LIMITS)),
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
        match compile(
            &view,
            &w.store,
            sources.clone(),
            Some(&old.catalog),
            unix_now(),
        ) {
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

    /// Adds an applied update to the log, dropping the oldest beyond [`JOURNAL_KEEP`].
    pub(crate) fn record_update(&self, entry: UpdateEntry) {
        let mut j = self.journal.lock().unwrap_or_else(|e| e.into_inner());
        if j.len() >= JOURNAL_KEEP {
            j.pop_front();
        }
        j.push_back(entry);
    }

    fn serial(&self, origin: &Name) -> u32 {
        self.policy
            .load()
            .catalog
            .get(origin)
            .map_or(0, |z| z.serial())
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
                tokio::spawn(
                    async move { crate::notify::notify_one(addr, &z, key, &sh.stats).await },
                );
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
}
