//! The page's DHCPv6 side: per IPv6 subnet the address pools' and prefix-delegation pools'
//! usage (counts that can be 2^64 and more, shown as such), the bindings (asked from the v6
//! core thread as `dhcpd leases` asks it: [`Admin6::leases`](crate::v6::admin::Admin6)),
//! searched and paged, with a Release button for an admin, and the v6 message counters the
//! sampler reads.

use std::time::{Duration, Instant};

use hostfile::DhcpView;
use maud::{Markup, html};
use runtime::page::{self, History, Kind, PageRequest, layout};

use super::{PER_PAGE, PageSource, left};
use crate::lease::{hex_colon, unix_now};
use crate::v6::admin::Row6;
use crate::v6::lease::{IaKind, State6};
use crate::v6::listing::shown;
use crate::v6::metrics::Stats6;

/// How long the page waits for the v6 core's list.
const WAIT: Duration = Duration::from_secs(2);

/// The bindings table's columns (the last, "Action", only for a logged-in admin).
const COLUMNS: [layout::Column; 8] = [
    ("Address / prefix", false),
    ("Type", false),
    ("IAID", true),
    ("DUID", false),
    ("Host name", false),
    ("State", false),
    ("Expires", false),
    ("Action", false),
];

/// The v6 message series sampled (by `type` label), with their labels on the plot.
pub(super) const EXCHANGES: [(&str, &str); 7] = [
    ("solicit", "SOLICIT"),
    ("advertise", "ADVERTISE"),
    ("request", "REQUEST"),
    ("renew", "RENEW"),
    ("rebind", "REBIND"),
    ("release", "RELEASE"),
    ("reply", "REPLY"),
];

/// The history's name of a v6 series.
pub(super) fn series(t: &str) -> String {
    format!("v6_{t}")
}

/// Samples the v6 counters (atomics behind the families' maps; nothing the core thread holds).
pub(super) fn sample(h: &mut History, now: Instant, s: &Stats6) {
    let get = |f: &runtime::metrics::Family<Vec<(String, String)>, runtime::metrics::Counter>,
               t: &str| {
        // `get`, not `get_or_create`: no zero series appears in /metrics.
        f.get(&vec![("type".to_owned(), t.to_owned())])
            .map_or(0, |c| c.get()) as f64
    };
    for (t, _) in EXCHANGES {
        let v = match t {
            "advertise" | "reply" => get(&s.replies, t),
            _ => get(&s.requests, t),
        };
        h.sample(&series(t), Kind::Counter, now, v);
    }
    let drops = (s.bad.get() + s.overload.get()) as f64;
    h.sample(&series("drops"), Kind::Counter, now, drops);
}

/// A count for people: exact below ten million, else a power of two (`2^64`), a power of two
/// less a little (`2^64 − 3`), or a rounded `1.84×10^19`.
pub(super) fn count(n: u128) -> String {
    const EXACT: u128 = 10_000_000;
    if n < EXACT {
        return n.to_string();
    }
    if n.is_power_of_two() {
        return format!("2^{}", n.trailing_zeros());
    }
    let bits = 128 - n.leading_zeros(); // n < 2^bits
    if bits < 128 && (1u128 << bits) - n < EXACT {
        return format!("2^{bits} − {}", (1u128 << bits) - n);
    }
    let e = n.ilog10();
    let mant = n as f64 / 10f64.powi(e as i32);
    format!("{mant:.2}×10^{e}")
}

/// A bar of parts of a whole whose sizes may pass `u64`: a part that is not zero stays visible
/// (at least half a percent wide), the text says the counts.
fn bar(parts: &[(&str, u128, &str)]) -> Markup {
    const MIN: f64 = 0.5;
    let total: f64 = parts.iter().map(|p| p.1 as f64).sum();
    let mut widths: Vec<f64> = parts
        .iter()
        .map(|p| match p.1 {
            0 => 0.0,
            v => (100.0 * v as f64 / total).max(MIN),
        })
        .collect();
    // Give the widened slivers' room back from the widest part.
    let over: f64 = widths.iter().sum::<f64>() - 100.0;
    if over > 0.0
        && let Some(w) = widths.iter_mut().max_by(|a, b| a.total_cmp(b))
    {
        *w -= over;
    }
    let text: Vec<String> = parts
        .iter()
        .map(|(l, v, _)| format!("{l} {}", count(*v)))
        .collect();
    let xs: Vec<f64> = widths
        .iter()
        .scan(0.0, |x, w| {
            let at = *x;
            *x += w;
            Some(at)
        })
        .collect();
    html! {
        svg.bar viewBox="0 0 100 6" preserveAspectRatio="none" role="img"
            aria-label=(text.join(", ")) {
            @for (((label, value, class), w), x) in parts.iter().zip(&widths).zip(&xs) {
                rect class=(class) x=(format!("{x:.2}")) width=(format!("{w:.2}")) height="6" {
                    title { (label) " " (count(*value)) }
                }
            }
        }
    }
}

fn gauge(
    f: &runtime::metrics::Family<Vec<(String, String)>, runtime::metrics::Gauge>,
    l: &Vec<(String, String)>,
) -> u128 {
    f.get(l).map_or(0, |g| g.get().max(0)) as u128
}

/// The IPv6 subnets' pools (nothing when the host file has none).
pub(super) fn pools(src: &PageSource, view: &DhcpView) -> Markup {
    let s = &src.stats.v6;
    html! {
        @if !view.subnets6.is_empty() {
            section #pools6 {
                h2 { "IPv6 pools" }
                @for sn in &view.subnets6 {
                    h3 { (sn.name) " " span.muted { (sn.network.to_string()) } }
                    @if sn.pools.is_empty() && sn.pd_pools.is_empty() {
                        p.muted { "No address or prefix-delegation pool (reservations, SLAAC or stateless only)." }
                    }
                    @for p in &sn.pools {
                        @let range = p.range.to_string();
                        @let label = vec![("range".to_owned(), range.clone())];
                        @let size = p.range.len();
                        @let used = gauge(&s.pool_used, &label);
                        @let declined = gauge(&s.pool_declined, &label);
                        @let free = size.saturating_sub(used + declined);
                        div.pool.pool6 data-range=(range) data-used=(used) data-declined=(declined) {
                            p {
                                "addresses " (range) ": "
                                b { (count(used)) } " used, " (count(free)) " free, "
                                (count(declined)) " declined of " (count(size))
                            }
                            (bar(&[("used", used, "ok"), ("declined", declined, "bad"), ("free", free, "idle")]))
                        }
                    }
                    @for p in &sn.pd_pools {
                        @let prefix = p.prefix.to_string();
                        @let label = vec![
                            ("prefix".to_owned(), prefix.clone()),
                            ("delegated_length".to_owned(), p.delegated_len.to_string()),
                        ];
                        @let size = p.count();
                        @let used = gauge(&s.pd_used, &label);
                        @let free = size.saturating_sub(used);
                        div.pool.pd6 data-prefix=(prefix) data-used=(used) {
                            p {
                                "prefixes /" (p.delegated_len) " from " (prefix) ": "
                                b { (count(used)) } " delegated, " (count(free)) " free of " (count(size))
                            }
                            (bar(&[("delegated", used, "ok"), ("free", free, "idle")]))
                        }
                    }
                }
            }
        }
    }
}

/// Whether a binding passes `?state=` (as the v4 table reads it: empty = current) and `?q=`
/// (address or prefix, DUID, host name; case-insensitive).
fn matches(r: &Row6, q: &str, state: &str, now: u64) -> bool {
    let l = &r.lease;
    let live = l.expires > now;
    let st = match state {
        "" => live,
        "all" => true,
        "bound" => live && l.state == State6::Bound,
        "declined" => live && l.state == State6::Declined,
        "expired" => !live,
        _ => false,
    };
    if !st {
        return false;
    }
    let q = q.trim().to_lowercase();
    if q.is_empty() {
        return true;
    }
    let duid = hex_colon(&l.key.duid);
    shown(l).contains(&q)
        || duid.contains(&q)
        || duid.replace(':', "").contains(&q.replace(':', ""))
        || r.hostname
            .as_deref()
            .is_some_and(|h| h.to_lowercase().contains(&q))
}

/// The rows of page `page_no` (from 1) of what passes the filter, and whether more follow.
pub(super) fn page_of(
    mut rows: Vec<Row6>,
    q: &str,
    state: &str,
    page_no: usize,
    now: u64,
) -> (Vec<Row6>, bool) {
    rows.retain(|r| matches(r, q, state, now));
    rows.sort_by_key(|r| (u128::from(r.lease.addr), r.lease.prefix_len));
    let skip = (page_no - 1).saturating_mul(PER_PAGE);
    let more = rows.len() > skip.saturating_add(PER_PAGE);
    let page = rows.into_iter().skip(skip).take(PER_PAGE).collect();
    (page, more)
}

/// The bindings table (searched with the v4 table's form; paged with `?page6=`).
pub(super) fn lease_table(src: &PageSource, view: &DhcpView, req: &PageRequest) -> Markup {
    if view.subnets6.is_empty() && src.admin6.is_none() {
        return html! {};
    }
    let q = req.param("q").unwrap_or_default();
    let state = req.param("state").unwrap_or_default();
    let page_no = req
        .param("page6")
        .and_then(|p| p.parse::<usize>().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1);
    let now = unix_now();
    let listing = src.admin6.as_ref().map(|a| a.leases(WAIT));
    let admin_on = matches!(req.admin, page::AdminState::LoggedIn { .. });
    let (prev, next) = ((page_no - 1).to_string(), (page_no + 1).to_string());
    html! {
        section #leases6 {
            h2 { "DHCPv6 bindings" }
            p.muted { "The search above also finds bindings: by address or prefix, DUID (with or without colons) or host name." }
            @match listing {
                None => p.muted { "DHCPv6 is not running on this server." },
                Some(Err(e)) => p.bad { "Cannot list the DHCPv6 bindings: " (e.to_string()) },
                Some(Ok(rows)) => {
                    @let (rows, more) = page_of(rows, &q, &state, page_no, now);
                    @if rows.is_empty() {
                        p.muted { "No DHCPv6 binding matches." }
                    } @else {
                        div.scroll { table #lease6-table .stack {
                            (layout::head(&COLUMNS[..COLUMNS.len() - usize::from(!admin_on)]))
                            tbody {
                                @for r in &rows {
                                    @let l = &r.lease;
                                    @let bound = l.state == State6::Bound;
                                    @let c = |k| layout::label(&COLUMNS, k);
                                    tr data-binding=(shown(l)) {
                                        td.addr6 data-label=(c(0)) { (shown(l)) }
                                        td data-label=(c(1)) { @if l.key.kind == IaKind::Pd { "IA_PD" } @else { "IA_NA" } }
                                        td.num data-label=(c(2)) { (l.key.iaid) }
                                        td.wrap.duid data-label=(c(3)) { (hex_colon(&l.key.duid)) }
                                        td.wrap.hostname data-label=(c(4)) { (r.hostname.as_deref().unwrap_or("-")) }
                                        td class=(if bound { "ok" } else { "bad" }) data-label=(c(5)) {
                                            @if bound { "bound" } @else { "declined" }
                                        }
                                        td data-label=(c(6)) {
                                            (crate::leases::show_time(l.expires))
                                            @if l.expires > now {
                                                " " span.muted { "(in " (left(l.expires - now)) ")" }
                                            }
                                        }
                                        @if admin_on {
                                            td data-label=(c(7)) { @if bound && l.expires > now {
                                                (page::admin::action(req, "Release", "release", &shown(l)))
                                            } }
                                        }
                                    }
                                }
                            }
                        } }
                    }
                    div.pager {
                        @if page_no > 1 {
                            a rel="prev" href=(req.link_with(&[("page6", if page_no == 2 { "" } else { &prev })])) { "← previous" }
                        }
                        span.muted { "page " (page_no) }
                        @if more {
                            a rel="next" href=(req.link_with(&[("page6", &next)])) { "next →" }
                        }
                    }
                }
            }
        }
    }
}
