//! dnsd's status page at `/` of its `metrics` address (issue 18): queries/s by type and by rcode
//! over the last hour, the forwarding cache's hit ratio, RRL drops and slips, the zones with
//! their serials and record counts, the last dynamic updates, the secondaries' last NOTIFY and
//! transfer and the forwarding upstreams' health.
//!
//! The zones, updates and counters come from [`crate::status::document`], the document
//! `dnsd status` prints (one rule in one place); peers from [`crate::peers`]. The history is
//! sampled from the counters that already exist (the per-writer answer slots of
//! [`crate::metrics`] summed as a scrape sums them, and [`crate::stats`]): nothing is added to
//! the packet path. [`render`] writes the HTML (maud escapes every name that came from the
//! network).
//!
//! `DNSD_PAGE_SAMPLE_MS` (read once at start) samples more often than every 10 s: a knob for
//! tests only, so a plot has points a few seconds after traffic. The history's slots stay 10 s
//! wide; the newest slot's rate is then refreshed at each sample.

pub mod render;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use hostfile::{DnsView, HostTable};
use runtime::page::{
    History, Kind, PageFn, PageRequest, layout, sample_interval_from_env, spawn_sampler,
};
use tokio_util::sync::CancellationToken;

use crate::clock::unix_now;
use crate::metrics::{QTYPES, RCODES};
use crate::state::Shared;

/// The test knob: the sample interval in milliseconds (default: every 10 s).
pub const SAMPLE_ENV: &str = "DNSD_PAGE_SAMPLE_MS";
/// Series kept: one per question type and rcode (with `other`), plus a few figures.
const MAX_SERIES: usize = 64;

/// The series name of answers of question type `t`.
pub fn type_series(t: &str) -> String {
    format!("type {t}")
}

/// The series name of answers with rcode `r`.
pub fn rcode_series(r: &str) -> String {
    format!("rcode {r}")
}

/// Forwarded queries answered from the cache.
pub const CACHE_HITS: &str = "cache hits";
/// Forwarded queries sent upstream.
pub const CACHE_MISSES: &str = "cache misses";
/// Answers RRL dropped.
pub const RRL_DROPPED: &str = "rrl dropped";
/// Answers RRL sent truncated.
pub const RRL_SLIPPED: &str = "rrl slipped";

/// The labels of the type series (QTYPES, then `other`).
pub fn type_labels() -> impl Iterator<Item = &'static str> {
    QTYPES.iter().map(|q| q.1).chain(std::iter::once("other"))
}

/// The labels of the rcode series (RCODES, then `other`).
pub fn rcode_labels() -> impl Iterator<Item = &'static str> {
    RCODES.iter().copied().chain(std::iter::once("other"))
}

/// One sample of every series at `now`, read from the existing counters.
pub fn sample(h: &mut History, sh: &Shared, now: Instant) {
    let t = sh.metrics.totals();
    for q in type_labels() {
        let n: u64 = t.answers.iter().filter(|a| a.0 == q).map(|a| a.2).sum();
        h.sample(&type_series(q), Kind::Counter, now, n as f64);
    }
    for r in rcode_labels() {
        let n: u64 = t.answers.iter().filter(|a| a.1 == r).map(|a| a.2).sum();
        h.sample(&rcode_series(r), Kind::Counter, now, n as f64);
    }
    let s = &sh.stats;
    for (name, c) in [
        (CACHE_HITS, &s.cache_hits),
        (CACHE_MISSES, &s.cache_misses),
        (RRL_DROPPED, &s.rrl_dropped),
        (RRL_SLIPPED, &s.rrl_slipped),
    ] {
        h.sample(name, Kind::Counter, now, c.get() as f64);
    }
}

/// Starts sampling `sh` into a history (until `shutdown`) and returns the page to register with
/// [`runtime::metrics::serve_with_page`]. The header's links come from the host file at
/// `config` (read at start and after each reload; unreadable, only dnsd's own page is linked).
pub fn start(sh: Arc<Shared>, config: &Path, shutdown: CancellationToken) -> PageFn {
    let config = config.to_owned();
    let links = move |view: &DnsView| {
        HostTable::load(&config)
            .map(|t| layout::daemon_addrs(&t))
            .unwrap_or([("dhcpd", None), ("dnsd", view.metrics), ("lbd", None)])
    };
    let every = sample_interval_from_env(SAMPLE_ENV);
    let history = Arc::new(Mutex::new(History::new(MAX_SERIES)));
    let s = sh.clone();
    spawn_sampler(history.clone(), every, shutdown, move |h, now| {
        sample(h, &s, now)
    });
    // The header's links, read again from the host file when the view was reloaded.
    let first = sh.view.load_full();
    let nav_addrs = Mutex::new((links(&first), first));
    Arc::new(move |req: &PageRequest| {
        let doc = crate::status::document(&sh);
        let view = sh.view.load_full();
        let nav = {
            let mut n = nav_addrs.lock().unwrap_or_else(|e| e.into_inner());
            if !Arc::ptr_eq(&n.1, &view) {
                *n = (links(&view), view.clone());
            }
            layout::nav(&n.0, req.host.as_deref())
        };
        let h = history.lock().unwrap_or_else(|e| e.into_inner());
        render::page(
            &render::Input {
                doc: &doc,
                view: &view,
                secondaries: &sh.stats.peers.secondaries(),
                upstreams: &sh.stats.peers.upstreams(),
                history: &h,
                now: Instant::now(),
                unix: unix_now(),
            },
            &nav,
        )
    })
}

#[cfg(test)]
mod tests;
