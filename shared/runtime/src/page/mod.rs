//! The status page a daemon serves at `/` of its metrics address.
//!
//! The pieces, from the bottom: [`history`] keeps the last hour of each figure in a bounded ring
//! (pure: time is passed in); [`plot`] draws such series as inline SVG; [`layout`] wraps a
//! daemon's content in the common page (header linking the three daemons, responsive CSS, the
//! live refresh); [`request`] parses the few HTTP requests the endpoint answers. The daemon
//! registers a [`PageFn`] with [`crate::metrics::serve_with_page`]; without `metrics` in the host
//! file nothing is served at all.
//!
//! The HTML is written with maud, re-exported here as [`maud`] so a daemon can write
//! `use runtime::page::maud::{self, html};` without a dependency of its own; maud escapes every
//! interpolated value, so names that came from the network are shown as text.
//!
//! Every link the page makes to itself is relative (`./`, `page.css`, `?q=…`), so the page works
//! behind a reverse proxy under a path prefix, as long as the prefix ends with a slash.
//!
//! How a daemon plugs its page in (here a DNS server with one counter):
//!
//! ```no_run
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use std::sync::{Arc, Mutex};
//! use std::time::Instant;
//!
//! use runtime::page::maud::{self, html};
//! use runtime::page::{self, History, Kind, Layout, Line, PageFn, PageRequest, Plot, layout};
//!
//! # async fn wire(
//! #     table: hostfile::HostTable,
//! #     registry: Arc<runtime::metrics::Registry>,
//! #     shutdown: tokio_util::sync::CancellationToken,
//! #     queries: Arc<AtomicU64>,
//! # ) -> std::io::Result<()> {
//! let history = Arc::new(Mutex::new(History::new(64)));
//! page::spawn_sampler(history.clone(), page::STEP, shutdown.clone(), move |h, now| {
//!     h.sample("queries", Kind::Counter, now, queries.load(Ordering::Relaxed) as f64);
//! });
//! let addrs = layout::daemon_addrs(&table);
//! let page: PageFn = Arc::new(move |req: &PageRequest| {
//!     let points = history.lock().unwrap().window("queries", Instant::now());
//!     let nav = layout::nav(&addrs, req.host.as_deref());
//!     let lines = [Line { label: "all", points: &points }];
//!     let plot = Plot { title: "Queries", unit: "queries/s", lines: &lines };
//!     let main = html! { div.plots { (page::line_plot(&plot)) } };
//!     layout::render(&Layout { daemon: "dnsd", title: "dnsd", nav: &nav }, main)
//! });
//! if let Some(addr) = table.dns_view().metrics {
//!     runtime::metrics::serve_with_page(addr, registry, Some(page), shutdown).await?;
//! }
//! # Ok(())
//! # }
//! ```

pub mod admin;
pub mod history;
pub mod layout;
pub mod plot;
pub mod request;

use std::sync::{Arc, Mutex};
use std::time::Instant;

pub use maud;
use tokio_util::sync::CancellationToken;

pub use admin::{Admin, AdminState};
pub use history::{History, Kind, POINTS, STEP, Series};
pub use layout::{Layout, NavLink, daemon_addrs, daemon_href, nav};
pub use plot::{Line, Plot, line_plot};
pub use request::PageRequest;

/// What a daemon registers to serve its page: the full HTML document for a request (built with
/// [`layout::render`]). Called on a blocking thread, once per request; keep it to reading state.
pub type PageFn = Arc<dyn Fn(&PageRequest) -> String + Send + Sync>;

/// The page's style sheet, served as `page.css`.
pub const CSS: &str = include_str!("assets/page.css");
/// The page's script, served as `page.js`: the refresh without a full reload. The page works
/// without it. A file rather than an inline script, so the Content-Security-Policy can forbid
/// every inline script: should a value ever slip through unescaped, it would still not run.
pub const JS: &str = include_str!("assets/page.js");

/// The Content-Security-Policy sent with the page: only its own style sheet and script, fetches
/// to itself, no frames, no plugins, forms only to itself.
pub const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; \
connect-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; \
frame-ancestors 'none'";

/// The sample interval: a daemon's test knob (milliseconds, the value of its `*_PAGE_SAMPLE_MS`
/// variable) when it is a positive number, else [`STEP`].
pub fn sample_interval(knob: Option<&str>) -> std::time::Duration {
    knob.and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&ms| ms > 0)
        .map_or(STEP, std::time::Duration::from_millis)
}

/// [`sample_interval`] of the environment variable `var`, read once by the caller at start.
pub fn sample_interval_from_env(var: &str) -> std::time::Duration {
    sample_interval(std::env::var(var).ok().as_deref())
}

/// Samples the daemon's figures into `history` every `every` (normally [`STEP`]) until
/// `shutdown`: `sample` is called with the history locked and the current time (pass it on to
/// [`History::sample`]). Series not sampled for an hour are pruned. The cost is one call every
/// ten seconds, whether anyone looks at the page or not.
pub fn spawn_sampler<F>(
    history: Arc<Mutex<History>>,
    every: std::time::Duration,
    shutdown: CancellationToken,
    mut sample: F,
) -> tokio::task::JoinHandle<()>
where
    F: FnMut(&mut History, Instant) + Send + 'static,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            // Tokio's clock (the same as std's unless a test pauses it).
            let now = tokio::time::Instant::now().into_std();
            let mut h = history.lock().unwrap_or_else(|e| e.into_inner());
            sample(&mut h, now);
            h.prune(now);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn sampler_feeds_the_history_every_step_until_shutdown() {
        let history = Arc::new(Mutex::new(History::new(4)));
        let stop = CancellationToken::new();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut total = 0.0;
        let task = spawn_sampler(history.clone(), STEP, stop.clone(), move |h, now| {
            total += 50.0;
            h.sample("things", Kind::Counter, now, total);
            let _ = tx.send(now);
        });
        let mut times = Vec::new();
        for _ in 0..7 {
            let t = tokio::time::timeout(STEP * 2, rx.recv())
                .await
                .unwrap()
                .unwrap();
            times.push(t);
        }
        for w in times.windows(2) {
            assert_eq!(w[1] - w[0], STEP);
        }
        let now = times[6];
        let window = history.lock().unwrap().window("things", now);
        // Seven samples: six rates of 50 per 10 s.
        assert_eq!(
            window.iter().flatten().copied().collect::<Vec<_>>(),
            [5.0; 6]
        );
        stop.cancel();
        task.await.unwrap();
    }
}
