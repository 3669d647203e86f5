//! The HTML of dnsd's page from what [`super::start`] gathers: the status document, the view, the
//! peers and the history. Pure: the times are passed in.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant, UNIX_EPOCH};

use hostfile::DnsView;
use maud::{Markup, html};
use runtime::page::layout::{Column, head, label};
use runtime::page::{History, Layout, Line, NavLink, Plot, layout, line_plot};
use serde_json::Value;

use super::{
    CACHE_HITS, CACHE_MISSES, RRL_DROPPED, RRL_SLIPPED, rcode_labels, rcode_series, type_labels,
    type_series,
};
use crate::peers::{Event, Secondary, Upstream};

/// Updates listed, newest first.
pub const UPDATES_SHOWN: usize = 20;
/// Lines per plot at most (the busiest).
const MAX_LINES: usize = 8;

/// The tables' columns (a phone shows each row as a card, each cell after its column's name).
const ZONE_COLUMNS: [Column; 4] = [
    ("zone", false),
    ("serial", true),
    ("records", true),
    ("names", true),
];
const UPDATE_COLUMNS: [Column; 5] = [
    ("time", false),
    ("changes", false),
    ("zone", false),
    ("key", false),
    ("serial", false),
];
const SECONDARY_COLUMNS: [Column; 4] = [
    ("address", false),
    ("last NOTIFY", false),
    ("last transfer", false),
    ("NOTIFY", false),
];
const UPSTREAM_COLUMNS: [Column; 6] = [
    ("upstream", false),
    ("state", false),
    ("last answer", false),
    ("last failure", false),
    ("answers", true),
    ("failures", true),
];

/// What the page shows.
#[derive(Debug)]
pub struct Input<'a> {
    /// [`crate::status::document`].
    pub doc: &'a Value,
    /// The view in force (secondaries, upstreams).
    pub view: &'a DnsView,
    /// The last NOTIFY/transfer per secondary address.
    pub secondaries: &'a BTreeMap<IpAddr, Secondary>,
    /// Upstream health.
    pub upstreams: &'a BTreeMap<SocketAddr, Upstream>,
    /// The sampled figures.
    pub history: &'a History,
    /// The history's clock.
    pub now: Instant,
    /// Seconds since the epoch.
    pub unix: u64,
}

/// A time since the epoch: how long ago, then (muted) as RFC 3339.
fn when(t: u64, unix: u64) -> Markup {
    let at = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(t));
    html! { (ago(unix.saturating_sub(t))) " ago" br; span.muted.at { (at.to_string()) } }
}

/// [`when`], or a dash for never.
fn when_or_dash(t: Option<u64>, unix: u64) -> Markup {
    match t {
        Some(t) => when(t, unix),
        None => html! { ("–") },
    }
}

fn ago(s: u64) -> String {
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86400 => format!("{} h", s / 3600),
        _ => format!("{} d", s / 86400),
    }
}

/// `(label, window)` of the series `names` with a non-zero point, busiest first, at most
/// [`MAX_LINES`]; when none has one, the sum of all of them as `all`.
fn busiest(
    h: &History,
    now: Instant,
    names: impl Iterator<Item = (&'static str, String)>,
) -> Vec<(&'static str, Vec<Option<f64>>)> {
    let all: Vec<(&'static str, Vec<Option<f64>>)> =
        names.map(|(l, n)| (l, h.window(&n, now))).collect();
    let volume = |w: &[Option<f64>]| w.iter().flatten().sum::<f64>();
    let mut lines: Vec<_> = all
        .iter()
        .filter(|(_, w)| volume(w) > 0.0)
        .cloned()
        .collect();
    lines.sort_by(|a, b| volume(&b.1).total_cmp(&volume(&a.1)));
    lines.truncate(MAX_LINES);
    if lines.is_empty() {
        let n = all.first().map_or(0, |w| w.1.len());
        let sum = (0..n)
            .map(|i| {
                let v: Vec<f64> = all.iter().filter_map(|w| w.1[i]).collect();
                (!v.is_empty()).then(|| v.iter().sum())
            })
            .collect();
        lines.push(("all", sum));
    }
    lines
}

fn plot(title: &str, unit: &str, lines: &[(&str, Vec<Option<f64>>)]) -> Markup {
    let lines: Vec<Line<'_>> = lines
        .iter()
        .map(|(label, points)| Line { label, points })
        .collect();
    line_plot(&Plot {
        title,
        unit,
        lines: &lines,
    })
}

fn event(e: Option<&Event>, unix: u64) -> Markup {
    match e {
        None => html! { span.muted { ("none since start") } },
        Some(e) => {
            let class = if e.outcome == "unanswered" {
                "bad"
            } else {
                "ok"
            };
            html! {
                span class=(class) { (e.outcome) } " " (e.zone) " serial " (e.serial)
                br; (when(e.time, unix))
            }
        }
    }
}

fn counter(doc: &Value, name: &str) -> u64 {
    doc["counters"][name].as_u64().unwrap_or(0)
}

/// The page's main content.
pub fn main(i: &Input<'_>) -> Markup {
    let (doc, h, now, unix) = (i.doc, i.history, i.now, i.unix);
    let types = busiest(h, now, type_labels().map(|t| (t, type_series(t))));
    let rcodes = busiest(h, now, rcode_labels().map(|r| (r, rcode_series(r))));
    let series = |names: [(&'static str, &str); 2]| -> Vec<(&'static str, Vec<Option<f64>>)> {
        names.iter().map(|(l, n)| (*l, h.window(n, now))).collect()
    };
    let cache = series([("hits", CACHE_HITS), ("misses", CACHE_MISSES)]);
    let rrl = series([("dropped", RRL_DROPPED), ("slipped", RRL_SLIPPED)]);
    let qps: f64 = type_labels()
        .filter_map(|t| h.get(&type_series(t)).and_then(|s| s.latest()))
        .sum();
    let (hits, misses) = (counter(doc, "cache_hits"), counter(doc, "cache_misses"));
    let ratio = if hits + misses == 0 {
        "–".to_owned()
    } else {
        format!("{:.1} %", 100.0 * hits as f64 / (hits + misses) as f64)
    };
    let zones = doc["zones"].as_array().cloned().unwrap_or_default();
    let updates = doc["updates"].as_array().cloned().unwrap_or_default();
    let (dropped, slipped) = (counter(doc, "rrl_dropped"), counter(doc, "rrl_slipped"));
    html! {
        div.stats {
            div.stat { "queries since start" b #queries { (counter(doc, "queries")) } }
            div.stat { "answers/s now" b { (runtime::page::plot::si(qps)) } }
            div.stat { "cache hit ratio" b #hit-ratio { (ratio) } }
            div.stat { "cache entries" b { (doc["cache_entries"].as_u64().unwrap_or(0)) } }
            div.stat { "RRL dropped" b #rrl-dropped class=[(dropped > 0).then_some("warn")] { (dropped) } }
            div.stat { "RRL slipped" b #rrl-slipped { (slipped) } }
            div.stat { "updates applied" b { (counter(doc, "updates_applied")) } }
        }
        div.plots #plots {
            (plot("Answers by question type", "answers/s", &types))
            (plot("Answers by response code", "answers/s", &rcodes))
            (plot("Forwarding cache", "queries/s", &cache))
            (plot("Response rate limiting", "answers/s", &rrl))
        }
        section #zones {
            h2 { "Zones" }
            div.scroll { table.stack {
                (head(&ZONE_COLUMNS))
                tbody { @for z in &zones { tr {
                    @let c = |k| label(&ZONE_COLUMNS, k);
                    td.wrap data-label=(c(0)) { (z["zone"].as_str().unwrap_or("?")) }
                    td.num data-label=(c(1)) { (z["serial"].as_u64().unwrap_or(0)) }
                    td.num data-label=(c(2)) { (z["records"].as_u64().unwrap_or(0)) }
                    td.num data-label=(c(3)) { (z["names"].as_u64().unwrap_or(0)) }
                } } }
            } }
        }
        section #updates {
            h2 { "Last dynamic updates" }
            @if updates.is_empty() {
                p.muted { "None kept: no update applied yet." }
            } @else {
                div.scroll { table.stack {
                    (head(&UPDATE_COLUMNS))
                    tbody { @for u in updates.iter().rev().take(UPDATES_SHOWN) { tr {
                        @let c = |k| label(&UPDATE_COLUMNS, k);
                        td data-label=(c(0)) { (when(u["time"].as_u64().unwrap_or(0), unix)) }
                        td.wrap.records data-label=(c(1)) {
                            @for r in u["removed"].as_array().into_iter().flatten() {
                                span.bad { "− " } (r.as_str().unwrap_or("?")) br;
                            }
                            @for r in u["added"].as_array().into_iter().flatten() {
                                span.ok { "+ " } (r.as_str().unwrap_or("?")) br;
                            }
                        }
                        td data-label=(c(2)) { (u["zone"].as_str().unwrap_or("?")) }
                        td data-label=(c(3)) { (u["key"].as_str().unwrap_or("?")) }
                        td data-label=(c(4)) { (u["from"]) " → " (u["serial"]) }
                    } } }
                } }
            }
        }
        section #secondaries {
            h2 { "Secondaries" }
            @if i.view.secondaries.is_empty() {
                p.muted { "None configured ([[dns.secondary]])." }
            } @else {
                div.scroll { table.stack {
                    (head(&SECONDARY_COLUMNS))
                    tbody { @for s in &i.view.secondaries {
                        @let got = i.secondaries.get(&s.address.ip().to_canonical());
                        @let c = |k| label(&SECONDARY_COLUMNS, k);
                        tr {
                            td data-label=(c(0)) { (s.address) }
                            td data-label=(c(1)) { (event(got.and_then(|g| g.notify.as_ref()), unix)) }
                            td data-label=(c(2)) { (event(got.and_then(|g| g.transfer.as_ref()), unix)) }
                            td data-label=(c(3)) { (if s.notify { "on" } else { "off" }) @if s.key.is_some() { " (TSIG)" } }
                        }
                    } }
                } }
            }
        }
        section #upstreams {
            h2 { "Forwarding upstreams" }
            @if i.view.upstream.is_empty() {
                p.muted { "Forwarding is off (no [dns] upstream)." }
            } @else {
                div.scroll { table.stack {
                    (head(&UPSTREAM_COLUMNS))
                    tbody { @for up in &i.view.upstream {
                        @let u = i.upstreams.get(up).cloned().unwrap_or_default();
                        @let c = |k| label(&UPSTREAM_COLUMNS, k);
                        tr {
                            td data-label=(c(0)) { (up) }
                            td data-label=(c(1)) { @if u.down() { b.bad { "failing" } } @else if u.last_ok.is_some() { b.ok { "answering" } } @else { span.muted { "not asked yet" } } }
                            td data-label=(c(2)) { (when_or_dash(u.last_ok, unix)) }
                            td data-label=(c(3)) { (when_or_dash(u.last_failure, unix)) }
                            td.num data-label=(c(4)) { (u.answers) }
                            td.num data-label=(c(5)) { (u.failures) }
                        }
                    } }
                } }
            }
        }
    }
}

/// The whole document.
pub fn page(i: &Input<'_>, nav: &[NavLink]) -> String {
    layout::render(
        &Layout {
            daemon: "dnsd",
            title: "dnsd",
            nav,
        },
        main(i),
    )
}
