//! dhcpd's status page, served at `/` of the `metrics` address: pool usage, the lease table
//! (searched and paged, from the same listing as `dhcpd leases`), exchanges over the last hour,
//! recent declines and ping conflicts, and the lease store in use. With IPv6 subnets, their
//! pools, the DHCPv6 bindings and DHCPv6 messages per second too (`page/v6.rs`).
//!
//! The figures come from [`Stats`]: the counters the packet path already bumps (sampled into a
//! [`History`] every 10 s, off the packet path) and the pool gauges the core's census refreshes.
//!
//! With `[dhcp] admin-key-file` set, a logged-in admin gets a "Release" button per bound or
//! offered lease (and per bound DHCPv6 binding): the control socket's `release IP`, as
//! `dhcpd release IP` runs it.

mod store;
mod v6;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use hostfile::DhcpView;
use maud::{Markup, html};
use runtime::page::{self, History, Kind, Layout, Line, PageFn, PageRequest, Plot, layout};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::lease::{LeaseState, hex_colon, unix_now};
use crate::leases::{self, Filter};
use crate::metrics::Stats;

/// Rows per page of the lease table.
pub const PER_PAGE: usize = 100;

/// Test knob: `DHCPD_PAGE_SAMPLE_MS` (read once at start) samples the counters this often
/// instead of every 10 s, so a test sees points without waiting minutes. Not for production:
/// the history's slots stay 10 s wide, a shorter interval only refreshes the newest slot.
pub const SAMPLE_ENV: &str = "DHCPD_PAGE_SAMPLE_MS";

/// Series the history keeps: 8 for v4, 8 for v6 (with room).
const HISTORY_SERIES: usize = 24;

/// The exchange series sampled, with their labels on the plot.
const EXCHANGES: [(&str, &str); 4] = [
    ("discover", "DISCOVER"),
    ("offer", "OFFER"),
    ("request", "REQUEST"),
    ("ack", "ACK"),
];

/// The lease table's columns (the last, "Action", only for a logged-in admin).
const LEASE_COLUMNS: [layout::Column; 7] = [
    ("Address", false),
    ("MAC", false),
    ("Client id", false),
    ("Host name", false),
    ("State", false),
    ("Expires", false),
    ("Action", false),
];

/// The recent declines' and conflicts' table's columns.
const RECENT_COLUMNS: [layout::Column; 4] = [
    ("When", false),
    ("What", false),
    ("Address", false),
    ("MAC", false),
];

/// What the page is built from.
#[derive(Debug)]
pub struct PageSource {
    /// The view in force (follows reloads).
    pub view: watch::Receiver<Arc<DhcpView>>,
    /// The daemon's counters.
    pub stats: Arc<Stats>,
    /// The embedded lease database (unused with `url`).
    pub db: PathBuf,
    /// The shared lease database, if any.
    pub url: Option<String>,
    /// The daemons' metrics addresses (for the header).
    pub addrs: [(&'static str, Option<SocketAddr>); 3],
    /// The DHCPv6 core's control handle, when it runs (its bindings live on its thread).
    pub admin6: Option<crate::v6::admin::Admin6>,
}

/// The commands of the control socket the page's admin may run.
pub const ACTIONS: &[&str] = &["release"];

/// The page's admin side: the key in force in the view `view` follows (`[dhcp]
/// admin-key-file`), running [`ACTIONS`] through the control socket's `handler`.
pub fn admin(
    view: watch::Receiver<Arc<DhcpView>>,
    handler: runtime::control::Handler,
) -> page::Admin {
    let key = Arc::new(move || view.borrow().admin_key.as_ref().map(|k| k.secret.clone()));
    page::Admin::new("dhcpd", key, ACTIONS, handler)
}

/// Starts the sampler and returns the page.
pub fn start(src: PageSource, shutdown: CancellationToken) -> PageFn {
    let history = Arc::new(Mutex::new(History::new(HISTORY_SERIES)));
    start_sampler(history.clone(), src.stats.clone(), shutdown);
    let src = Arc::new(src);
    Arc::new(move |req: &PageRequest| render(&src, &history, req))
}

/// Reads the counters every [`page::STEP`] (or [`SAMPLE_ENV`]): atomics only, nothing the packet
/// path locks.
fn start_sampler(history: Arc<Mutex<History>>, stats: Arc<Stats>, shutdown: CancellationToken) {
    let every = page::sample_interval_from_env(SAMPLE_ENV);
    page::spawn_sampler(history, every, shutdown, move |h, now| {
        let req = |t: &str| {
            // `get`, not `get_or_create`: no zero series appears in /metrics.
            stats
                .requests
                .get(&vec![("type".to_owned(), t.to_owned())])
                .map_or(0, |c| c.get()) as f64
        };
        let figures = [
            ("discover", req("discover")),
            ("request", req("request")),
            ("offer", stats.offers.get() as f64),
            ("ack", stats.acks.get() as f64),
            ("nak", stats.naks.get() as f64),
            ("drops", (stats.overload.get() + stats.bad.get()) as f64),
            ("declines", stats.declines.get() as f64),
            ("conflicts", stats.conflicts.get() as f64),
        ];
        for (name, v) in figures {
            h.sample(name, Kind::Counter, now, v);
        }
        v6::sample(h, now, &stats.v6);
    });
}

fn render(src: &PageSource, history: &Mutex<History>, req: &PageRequest) -> String {
    let view = src.view.borrow().clone();
    let nav = layout::nav(&src.addrs, req.host.as_deref());
    let main = html! {
        (page::admin::panel(req))
        (pools(src, &view))
        (v6::pools(src, &view))
        (plots(history, !view.subnets6.is_empty()))
        (lease_table(src, req))
        (v6::lease_table(src, &view, req))
        (recent(src))
        (store::store(src))
    };
    layout::render(
        &Layout {
            daemon: "dhcpd",
            title: "dhcpd",
            nav: &nav,
        },
        main,
    )
}

fn pools(src: &PageSource, view: &DhcpView) -> Markup {
    let g = |f: &runtime::metrics::Family<Vec<(String, String)>, runtime::metrics::Gauge>,
             l: &Vec<(String, String)>| f.get(l).map_or(0, |g| g.get().max(0)) as u64;
    html! {
        section #pools {
            h2 { "Pools" }
            @if view.subnets.is_empty() { p.muted { "No IPv4 subnets." } }
            @for sn in &view.subnets {
                h3 { (sn.name) " " span.muted { (sn.network.to_string()) } }
                @if sn.pools.is_empty() { p.muted { "No dynamic range (reservations only)." } }
                @for p in &sn.pools {
                    @let label = vec![("range".to_owned(), p.range.to_string())];
                    @let size = p.range.len();
                    @let used = g(&src.stats.pool_used, &label);
                    @let offered = g(&src.stats.pool_offered, &label);
                    @let declined = g(&src.stats.pool_declined, &label);
                    @let free = size.saturating_sub(used + offered + declined);
                    div.pool data-range=(p.range.to_string()) {
                        p {
                            (p.range.to_string()) @if p.bootp { " (BOOTP)" } ": "
                            b { (used) } " used, " (free) " free, " (declined) " declined, "
                            (offered) " offered of " (size)
                        }
                        (layout::bar(&[
                            ("used", used, "ok"),
                            ("offered", offered, "warn"),
                            ("declined", declined, "bad"),
                            ("free", free, "idle"),
                        ]))
                    }
                }
            }
        }
    }
}

fn plots(history: &Mutex<History>, with_v6: bool) -> Markup {
    let now = Instant::now();
    let h = history.lock().unwrap_or_else(|e| e.into_inner());
    let ex: Vec<Vec<Option<f64>>> = EXCHANGES.iter().map(|(n, _)| h.window(n, now)).collect();
    let bad: Vec<Vec<Option<f64>>> = ["nak", "drops", "declines", "conflicts"]
        .iter()
        .map(|n| h.window(n, now))
        .collect();
    let v6_names: Vec<String> = v6::EXCHANGES
        .iter()
        .map(|(t, _)| v6::series(t))
        .chain([v6::series("drops")])
        .collect();
    let ex6: Vec<Vec<Option<f64>>> = v6_names.iter().map(|n| h.window(n, now)).collect();
    drop(h);
    let ex_lines: Vec<Line<'_>> = EXCHANGES
        .iter()
        .zip(&ex)
        .map(|((_, label), points)| Line { label, points })
        .collect();
    let bad_lines: Vec<Line<'_>> = ["NAK", "drops", "declines", "ping conflicts"]
        .iter()
        .zip(&bad)
        .map(|(label, points)| Line { label, points })
        .collect();
    let ex6_lines: Vec<Line<'_>> = v6::EXCHANGES
        .iter()
        .map(|(_, label)| *label)
        .chain(["drops"])
        .zip(&ex6)
        .map(|(label, points)| Line { label, points })
        .collect();
    html! {
        div.plots #exchanges {
            (page::line_plot(&Plot { title: "Exchanges", unit: "messages/s", lines: &ex_lines }))
            (page::line_plot(&Plot { title: "NAKs and drops", unit: "per s", lines: &bad_lines }))
            @if with_v6 {
                (page::line_plot(&Plot { title: "DHCPv6 messages", unit: "messages/s", lines: &ex6_lines }))
            }
        }
    }
}

/// `?state=`: empty = current (as `dhcpd leases`), `all`, or a state name.
fn state_filter(s: &str) -> Option<Option<LeaseState>> {
    let states = [
        LeaseState::Offered,
        LeaseState::Bound,
        LeaseState::Released,
        LeaseState::Expired,
        LeaseState::Declined,
    ];
    match s {
        "all" => Some(None),
        s => states.into_iter().find(|st| st.as_str() == s).map(Some),
    }
}

fn lease_table(src: &PageSource, req: &PageRequest) -> Markup {
    let q = req.param("q").unwrap_or_default();
    let state = req.param("state").unwrap_or_default();
    let page_no = req
        .param("page")
        .and_then(|p| p.parse::<usize>().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1);
    let filter = Filter {
        q: q.clone(),
        state: state_filter(&state),
    };
    let listing = leases::load(&src.db, src.url.as_deref())
        .map(|rows| leases::page_of(rows, &filter, page_no, PER_PAGE));
    let now = unix_now();
    let prev = (page_no - 1).to_string();
    let next = (page_no + 1).to_string();
    let options = [
        "", "all", "bound", "offered", "declined", "released", "expired",
    ];
    let admin_on = matches!(req.admin, page::AdminState::LoggedIn { .. });
    let placeholder = if src.view.borrow().subnets6.is_empty() {
        "address, MAC, client id or host name"
    } else {
        "address or prefix, MAC, client id, DUID or host name"
    };
    html! {
        section #leases {
            h2 { "Leases" }
            form.search method="get" action="./" {
                input type="search" name="q" value=(q) placeholder=(placeholder) aria-label="search leases";
                select name="state" aria-label="state" {
                    @for o in options {
                        option value=(o) selected[o == state] {
                            @if o.is_empty() { "current" } @else { (o) }
                        }
                    }
                }
                input type="submit" value="Search";
            }
            @match listing {
                Err(e) => p.bad { "Cannot read the lease database: " (e.to_string()) },
                Ok(p) => {
                    @if p.rows.is_empty() {
                        p.muted { "No lease matches." }
                    } @else {
                        div.scroll {
                            table #lease-table .stack {
                                (layout::head(&LEASE_COLUMNS[..LEASE_COLUMNS.len() - usize::from(!admin_on)]))
                                tbody {
                                    @for l in &p.rows {
                                        @let c = |k| layout::label(&LEASE_COLUMNS, k);
                                        tr {
                                            td data-label=(c(0)) { (l.ip.to_string()) }
                                            td data-label=(c(1)) { (l.mac_string()) }
                                            td.wrap data-label=(c(2)) { (hex_colon(&l.client)) }
                                            td.wrap.hostname data-label=(c(3)) { (l.hostname.as_deref().unwrap_or("-")) }
                                            td class=(state_class(l.state)) data-label=(c(4)) { (l.state.as_str()) }
                                            td data-label=(c(5)) {
                                                (leases::show_time(l.expires))
                                                @if l.expires != crate::lease::NEVER && l.expires > now {
                                                    " " span.muted { "(in " (left(l.expires - now)) ")" }
                                                }
                                            }
                                            @if admin_on {
                                                td data-label=(c(6)) {
                                                    @if matches!(l.state, LeaseState::Bound | LeaseState::Offered) {
                                                        (page::admin::action(req, "Release", "release", &l.ip.to_string()))
                                                    }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    div.pager {
                        @if page_no > 1 {
                            a rel="prev" href=(req.link_with(&[("page", if page_no == 2 { "" } else { &prev })])) { "← previous" }
                        }
                        span.muted { "page " (page_no) }
                        @if p.more {
                            a rel="next" href=(req.link_with(&[("page", &next)])) { "next →" }
                        }
                    }
                }
            }
        }
    }
}

fn state_class(s: LeaseState) -> &'static str {
    match s {
        LeaseState::Bound => "ok",
        LeaseState::Offered => "warn",
        LeaseState::Declined => "bad",
        _ => "muted",
    }
}

pub(crate) fn left(secs: u64) -> String {
    match secs {
        s if s >= 86400 => format!("{}d {}h", s / 86400, s % 86400 / 3600),
        s if s >= 3600 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        s if s >= 60 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

fn recent(src: &PageSource) -> Markup {
    let events: Vec<_> = {
        let r = src.stats.recent.lock().unwrap_or_else(|e| e.into_inner());
        r.newest_first().cloned().collect()
    };
    html! {
        section #recent {
            h2 { "Recent declines and ping conflicts" }
            @if events.is_empty() {
                p.muted { "None since the start." }
            } @else {
                div.scroll { table.stack {
                    (layout::head(&RECENT_COLUMNS))
                    tbody {
                        @for e in &events {
                            @let c = |k| layout::label(&RECENT_COLUMNS, k);
                            tr {
                                td data-label=(c(0)) { (leases::show_time(e.at)) }
                                td.bad data-label=(c(1)) { (e.kind.as_str()) }
                                td data-label=(c(2)) { (e.ip.to_string()) }
                                td data-label=(c(3)) { (e.mac.as_deref().unwrap_or("-")) }
                            }
                        }
                    }
                } }
            }
        }
    }
}

#[cfg(test)]
mod tests;
