//! Picking a backend for a new connection: the scheduler over the installed plan, source
//! persistence, and the per-service state the connections share.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use hostfile::Scheduler;
use tokio::sync::Semaphore;

use super::stats::{BackendStats, Counters, ProxyMetrics, labels};
use crate::desired::{Mode, ServicePlan};
use crate::sched;

/// Persistence entries kept per service, at most.
const MAX_AFFINITY: usize = 65_536;

/// Picks a target for a new connection (pure apart from the round-robin cursor).
#[derive(Debug)]
pub(super) struct Picker {
    pub(super) plan: ServicePlan,
    pub(super) wrr: Vec<usize>,
    pub(super) maglev: Vec<usize>,
    /// Metrics handles, one per target (same order as `plan.targets`).
    pub(super) stats: Vec<BackendStats>,
}

impl Picker {
    pub(super) fn new(plan: ServicePlan, stats: impl Fn(SocketAddr) -> BackendStats) -> Picker {
        let w: Vec<u32> = plan.targets.iter().map(|t| t.weight).collect();
        let wrr = sched::wrr_sequence(&w);
        let maglev = if plan.scheduler == Scheduler::Sh {
            plan.sh_table()
        } else {
            Vec::new()
        };
        let stats = plan.targets.iter().map(|t| stats(t.addr)).collect();
        Picker {
            plan,
            wrr,
            maglev,
            stats,
        }
    }

    /// Index into `plan.targets`; `active(i)` is target i's open connection count.
    pub(super) fn pick(
        &self,
        src: IpAddr,
        cursor: usize,
        active: &dyn Fn(usize) -> u64,
    ) -> Option<usize> {
        let n = self.plan.targets.len();
        if n == 0 {
            return None;
        }
        Some(match self.plan.scheduler {
            Scheduler::Rr => cursor % n,
            Scheduler::Wrr => self
                .wrr
                .get(cursor % self.wrr.len().max(1))
                .copied()
                .unwrap_or(0),
            Scheduler::Sh => {
                let h = sched::fnv(
                    0,
                    &match src {
                        IpAddr::V4(a) => a.octets().to_vec(),
                        IpAddr::V6(a) => a.octets().to_vec(),
                    },
                ) as usize;
                self.maglev
                    .get(h % self.maglev.len().max(1))
                    .copied()
                    .unwrap_or(0)
            }
            Scheduler::Lc => {
                // Least (active + 1) / weight, compared without division.
                let mut best = 0;
                for i in 1..n {
                    let a = (active(i) + 1) * u64::from(self.plan.targets[best].weight);
                    let b = (active(best) + 1) * u64::from(self.plan.targets[i].weight);
                    if a < b {
                        best = i;
                    }
                }
                best
            }
        })
    }
}

#[derive(Debug)]
pub(super) struct Shared {
    pub(super) service: String,
    pub(super) picker: RwLock<Arc<Picker>>,
    pub(super) cursor: AtomicUsize,
    pub(super) affinity: Mutex<HashMap<IpAddr, (SocketAddr, Instant)>>,
    pub(super) counters: Counters,
    pub(super) metrics: ProxyMetrics,
    pub(super) stats: Mutex<HashMap<SocketAddr, BackendStats>>,
    pub(super) conns: Semaphore,
    /// Large transfers move to splice(2).
    pub(super) splice: bool,
}

impl Shared {
    /// The metrics handles of backend `a` (made on first use).
    pub(super) fn stats(&self, a: SocketAddr) -> BackendStats {
        let mut m = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(a)
            .or_insert_with(|| {
                let l = labels(&self.service, a);
                let dir = |d: &str| {
                    let mut l = l.clone();
                    l.push(("direction".into(), d.into()));
                    self.metrics.bytes.get_or_create(&l).clone()
                };
                let active = {
                    let mut c = self.counters.lock().unwrap_or_else(|e| e.into_inner());
                    c.entry((self.service.clone(), a)).or_default().clone()
                };
                BackendStats {
                    active,
                    connections: self.metrics.connections.get_or_create(&l).clone(),
                    to_backend: dir("to_backend"),
                    from_backend: dir("from_backend"),
                }
            })
            .clone()
    }

    pub(super) fn picker(&self, plan: ServicePlan) -> Arc<Picker> {
        Arc::new(Picker::new(plan, |a| self.stats(a)))
    }

    /// The backend for a new connection from `src`, with its metrics handles.
    pub(super) fn choose(&self, src: IpAddr) -> Option<(SocketAddr, BackendStats)> {
        let picker = self
            .picker
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if picker.plan.mode == Mode::Withdrawn {
            return None;
        }
        let at = |i: usize| (picker.plan.targets[i].addr, picker.stats[i].clone());
        let now = Instant::now();
        if let Some(t) = picker.plan.persistence {
            let mut aff = self.affinity.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(i) = sticky(&mut aff, src, now, t, |a| {
                picker.plan.targets.iter().position(|x| x.addr == a)
            }) {
                return Some(at(i));
            }
        }
        let cursor = self.cursor.fetch_add(1, Ordering::Relaxed);
        let i = picker.pick(src, cursor, &|i| {
            picker.stats[i].active.load(Ordering::Relaxed)
        })?;
        let chosen = at(i);
        if let Some(t) = picker.plan.persistence {
            let mut aff = self.affinity.lock().unwrap_or_else(|e| e.into_inner());
            if aff.len() >= MAX_AFFINITY {
                aff.retain(|_, (_, when)| now.duration_since(*when) < t);
            }
            if aff.len() < MAX_AFFINITY {
                aff.insert(src, (chosen.0, now));
            }
        }
        Some(chosen)
    }
}

/// Source persistence: the backend index `src` keeps at `now`, if its entry was last used less
/// than `t` ago and names a backend `live` still has. A hit refreshes the entry, so persistence
/// times out from the client's LAST connection, as LVS's `persistence_timeout` and the kernel
/// plane's `update @set` do (a client that keeps connecting never moves).
pub(super) fn sticky(
    aff: &mut HashMap<IpAddr, (SocketAddr, Instant)>,
    src: IpAddr,
    now: Instant,
    t: Duration,
    live: impl Fn(SocketAddr) -> Option<usize>,
) -> Option<usize> {
    let (a, when) = aff.get_mut(&src)?;
    if now.saturating_duration_since(*when) >= t {
        return None;
    }
    let i = live(*a)?;
    *when = now;
    Some(i)
}
