//! The page's HTML from the status document, the [`Recent`] records and the history (pure: the
//! times are passed in). maud escapes every value: service and backend names, check errors,
//! the ruleset.

use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use maud::{Markup, html};
use runtime::page::layout::{Column, head, label};
use runtime::page::{History, Layout, Line, PageRequest, Plot, admin, layout, line_plot};
use serde_json::Value;

use super::{Recent, series};

/// What one rendering of the page reads.
#[derive(Debug)]
pub struct Inputs<'a> {
    /// `lbd status`'s document; `None` while the daemon starts.
    pub doc: Option<&'a Value>,
    /// Last checks, VRRP transitions, ruleset.
    pub recent: &'a Recent,
    /// The sampled figures.
    pub history: &'a History,
    /// Now, on the history's clock.
    pub now: Instant,
    /// Now, on the wall clock (ages of checks and transitions).
    pub wall: SystemTime,
    /// The daemons' metrics addresses, for the header.
    pub addrs: &'a [(&'static str, Option<SocketAddr>)],
    /// The request's `Host`, for links to daemons on unspecified addresses.
    pub host: Option<&'a str>,
    /// The request (its admin state: the drain buttons).
    pub req: &'a PageRequest,
}

/// The whole document.
pub fn page(i: &Inputs<'_>) -> String {
    let nav = layout::nav(i.addrs, i.host);
    let main = match i.doc {
        Some(doc) => body(i, doc),
        None => {
            html! { section { h2 { "Starting" } p { "lbd is running its first health checks." } } }
        }
    };
    layout::render(
        &Layout {
            daemon: "lbd",
            title: "lbd",
            nav: &nav,
        },
        main,
    )
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("?")
}

fn body(i: &Inputs<'_>, doc: &Value) -> Markup {
    let services: Vec<&Value> = doc["services"].as_array().into_iter().flatten().collect();
    let backends: Vec<&Value> = services
        .iter()
        .flat_map(|s| s["backends"].as_array().into_iter().flatten())
        .collect();
    let up = backends
        .iter()
        .filter(|b| matches!(b["health"].as_str(), Some("up" | "nocheck")))
        .count();
    // A dual-stack service is one service (one name, one DNS name) carried as two entries.
    let names: std::collections::BTreeSet<&str> = services.iter().map(|v| s(v, "name")).collect();
    let role = doc["vrrp"]["state"].as_str().unwrap_or("MASTER");
    let vips: Vec<&str> = doc["vips"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    html! {
        (admin::panel(i.req))
        div.stats {
            div.stat #role {
                "VRRP role" b { (role) }
                @if doc["vrrp"].is_null() { span.muted { "no VRRP" } }
            }
            div.stat { "VIPs held" b { (vips.len()) } }
            div.stat { "Services" b { (names.len()) } }
            div.stat #healthy {
                "Backends healthy"
                b class=(if up == backends.len() { "ok" } else { "bad" }) { (up) " / " (backends.len()) }
            }
        }
        section #backends {
            h2 { "Backends" }
            div.scroll {
                table.backends.stack {
                    (head(&BACKEND_COLUMNS))
                    tbody {
                        @for svc in &services { (rows(i, &services, svc)) }
                    }
                }
            }
        }
        @for svc in &services { (service(i, &services, svc)) }
        (vrrp(i, doc, &vips))
        (dataplane(i, &services))
    }
}

/// The backend table's columns (heading, right-aligned figure).
const BACKEND_COLUMNS: [Column; 11] = [
    ("Service", false),
    ("Backend", false),
    ("Health", false),
    ("Weight", true),
    ("Drained", false),
    ("In use", false),
    ("Active", true),
    ("Connections", true),
    ("Bytes in / out", true),
    ("Last check", false),
    ("Address", false),
];

/// The VRRP instances' table's columns.
const INSTANCE_COLUMNS: [Column; 6] = [
    ("Instance", false),
    ("VRID", true),
    ("Interface", false),
    ("State", false),
    ("Priority (configured)", true),
    ("Addresses", false),
];

/// The role changes' table's columns.
const TRANSITION_COLUMNS: [Column; 4] = [
    ("When (UTC)", false),
    ("Ago", false),
    ("Instance", false),
    ("Entered", false),
];

/// The proxy's table's columns.
const PROXY_COLUMNS: [Column; 6] = [
    ("Service", false),
    ("Listening on", false),
    ("Active", true),
    ("Connections", true),
    ("Bytes to backends", true),
    ("Bytes from backends", true),
];

fn health_class(h: &str) -> &'static str {
    match h {
        "up" | "nocheck" => "ok",
        "down" => "bad",
        _ => "warn",
    }
}

/// The address family of `VIP` or `ADDR:PORT` / `[ADDR]:PORT`.
fn family(address: &str) -> &'static str {
    if address.starts_with('[') || address.matches(':').count() > 1 {
        "IPv6"
    } else {
        "IPv4"
    }
}

/// The other entries of `svc`'s name (a dual-stack service: the other family's).
fn siblings<'a>(services: &[&'a Value], svc: &Value) -> Vec<&'a Value> {
    services
        .iter()
        .filter(|o| s(o, "name") == s(svc, "name") && s(o, "vip") != s(svc, "vip"))
        .copied()
        .collect()
}

/// The service column: the name, and the VIP's family for a dual-stack service.
fn service_cell(name: &str, family: Option<&str>) -> Markup {
    let l = label(&BACKEND_COLUMNS, 0);
    html! { td data-label=(l) { (name) @if let Some(f) = family { " " span.muted { (f) } } } }
}

fn rows(i: &Inputs<'_>, services: &[&Value], svc: &Value) -> Markup {
    let name = s(svc, "name");
    let vip = s(svc, "vip");
    let fam = (!siblings(services, svc).is_empty()).then(|| family(vip));
    let sorry = svc.get("sorry_server").filter(|v| v.is_object());
    let l = |k| label(&BACKEND_COLUMNS, k);
    html! {
        @for b in svc["backends"].as_array().into_iter().flatten() {
            (backend_row(i, name, vip, fam, b))
        }
        @if let Some(b) = sorry {
            tr data-service=(name) data-backend="sorry" data-vip=(vip) {
                (service_cell(name, fam)) td data-label=(l(1)) { "sorry server" }
                td data-label=(l(2)) { "–" } td.num data-label=(l(3)) { "–" }
                td data-label=(l(4)) { "–" }
                td data-label=(l(5)) { (yes(b["in_use"].as_bool() == Some(true))) }
                td.num data-label=(l(6)) { "–" }
                td.num data-label=(l(7)) { (b["connections"]) }
                td.num data-label=(l(8)) { (b["bytes_to_backend"]) " / " (b["bytes_from_backend"]) }
                td data-label=(l(9)) { "–" } td data-label=(l(10)) { (s(b, "address")) }
            }
        }
    }
}

/// A service entry's plots. The two entries of a dual-stack service get a section each, their
/// figures kept apart (as keepalived shows an IPv4 and an IPv6 virtual server, and `lbd status`
/// one line per VIP): the families are checked, planned and can fail separately, and a sum
/// would hide one family's outage behind the other's traffic.
fn service(i: &Inputs<'_>, services: &[&Value], svc: &Value) -> Markup {
    let name = s(svc, "name");
    let vip = s(svc, "vip");
    let others = siblings(services, svc);
    // Backends reached at the same address from the other family's VIP (a proxy service's
    // backend without an address of this family, the sorry server): the data planes count
    // per (service, address), so these figures are that address's totals over both VIPs.
    let shared = |a: &str| {
        others.iter().any(|o| {
            o["backends"]
                .as_array()
                .into_iter()
                .flatten()
                .chain(o.get("sorry_server").filter(|v| v.is_object()))
                .any(|b| s(b, "address") == a)
        })
    };
    let sorry = svc.get("sorry_server").filter(|v| v.is_object());
    let mut labels: Vec<(String, String)> = svc["backends"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|b| (s(b, "name").to_owned(), s(b, "address").to_owned()))
        .collect();
    if let Some(b) = sorry {
        labels.push(("sorry".to_owned(), s(b, "address").to_owned()));
    }
    let both: Vec<String> = labels
        .iter()
        .filter(|(_, a)| shared(a))
        .map(|(l, a)| format!("{l} ({a})"))
        .collect();
    for (l, a) in &mut labels {
        if shared(a) {
            l.push_str(" (both VIPs)");
        }
    }
    let window = |fig: &str| -> Vec<Vec<Option<f64>>> {
        labels
            .iter()
            .map(|(_, a)| i.history.window(&series(name, vip, a, fig), i.now))
            .collect()
    };
    let plot = |title: &str, unit: &str, fig: &str| {
        let w = window(fig);
        let lines: Vec<Line<'_>> = labels
            .iter()
            .zip(&w)
            .map(|((l, _), p)| Line {
                label: l,
                points: p,
            })
            .collect();
        line_plot(&Plot {
            title,
            unit,
            lines: &lines,
        })
    };
    html! {
        section.service data-plots=(name) data-vip=(vip) {
            h2 {
                "Service " (name)
                @if !others.is_empty() { " " span.muted { "(" (family(vip)) ")" } }
            }
            p.muted {
                (s(svc, "protocol")) " " (vip_port(svc)) " · "
                (s(svc, "scheduler")) " · " (s(svc, "dataplane")) " data plane · "
                span.mode { (s(svc, "mode")) }
            }
            @if !both.is_empty() {
                p.muted {
                    "Reached at the same address from both VIPs, so shown with the totals of both: "
                    (both.join(", "))
                }
            }
            div.plots {
                (plot("Active connections", "connections", "active"))
                (plot("New connections", "connections/s", "conns"))
                (plot("Traffic", "bytes/s", "bytes"))
            }
        }
    }
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn backend_row(i: &Inputs<'_>, service: &str, vip: &str, fam: Option<&str>, b: &Value) -> Markup {
    let health = s(b, "health");
    let weight = b["weight"].as_u64().unwrap_or(0);
    let drained_by = b["drained_by"].as_str();
    let name = s(b, "name");
    let target = format!("{service}/{name}");
    let last = s(b, "address")
        .parse()
        .ok()
        .and_then(|a| i.recent.last_check(service, a));
    let l = |k| label(&BACKEND_COLUMNS, k);
    html! {
        tr data-service=(service) data-backend=(s(b, "name")) data-health=(health) data-vip=(vip) {
            (service_cell(service, fam))
            td data-label=(l(1)) { (s(b, "name")) }
            td class=(format!("health {}", health_class(health))) data-label=(l(2)) { (health) }
            td.num data-label=(l(3)) { (weight) }
            td.drained data-label=(l(4)) {
                @match drained_by {
                    Some("host-file") => span.warn title="weight = 0 in the host file" { "drained" },
                    Some(e) => {
                        span.warn title=(format!("lbd drain {e}")) { "drained" } " "
                        (admin::action(i.req, "Undrain", "undrain", e))
                    },
                    None if weight == 0 => span.warn { "drained" },
                    None => { "no " (admin::action(i.req, "Drain", "drain", &target)) },
                }
            }
            td data-label=(l(5)) { (yes(b["in_use"].as_bool() == Some(true))) }
            td.num data-label=(l(6)) { @match b["active"].as_u64() { Some(n) => (n), None => "–" } }
            td.num data-label=(l(7)) { (b["connections"]) }
            td.num data-label=(l(8)) { (b["bytes_to_backend"]) " / " (b["bytes_from_backend"]) }
            td.wrap.check data-label=(l(9)) {
                @match &last {
                    Some(c) => {
                        @match &c.error {
                            None => span.ok { "passed" },
                            Some(e) => span.bad { "failed: " (e) },
                        }
                        " " span.muted title=(utc(c.at)) { (ago(i.wall, c.at)) }
                    },
                    None => span.muted { "none yet" },
                }
            }
            td data-label=(l(10)) { (s(b, "address")) }
        }
    }
}

/// `VIP:PORT`, an IPv6 VIP in brackets (`[fd00::10]:80`).
fn vip_port(svc: &Value) -> String {
    let (vip, port) = (s(svc, "vip"), &svc["port"]);
    if vip.contains(':') {
        format!("[{vip}]:{port}")
    } else {
        format!("{vip}:{port}")
    }
}

fn vrrp(i: &Inputs<'_>, doc: &Value, vips: &[&str]) -> Markup {
    let transitions = i.recent.transitions();
    let instances: Vec<&Value> = doc["vrrp_instances"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    html! {
        section #vrrp {
            h2 { "VRRP" }
            @match doc.get("vrrp").filter(|v| v.is_object()) {
                Some(v) => p {
                    "vrid " (v["vrid"]) ", priority " (v["priority"]) ", advertisement every "
                    (v["interval_ms"]) " ms: " b { (s(v, "state")) }
                },
                None => p { "VRRP off: this node holds the VIPs." },
            }
            p { "VIPs held: " @if vips.is_empty() { "none" } @else { (vips.join(", ")) } }
            @if !instances.is_empty() {
                div.scroll { table.instances.stack {
                    (head(&INSTANCE_COLUMNS))
                    tbody {
                        @for v in &instances {
                            @let state = s(v, "state");
                            @let l = |k| label(&INSTANCE_COLUMNS, k);
                            tr {
                                td data-label=(l(0)) { (s(v, "name")) }
                                td.num data-label=(l(1)) { (v["vrid"]) }
                                td data-label=(l(2)) { (s(v, "interface")) }
                                td class=(match state { "MASTER" => "ok", "FAULT" => "bad", _ => "" }) data-label=(l(3)) { (state) }
                                td.num data-label=(l(4)) { (v["priority"]) " (" (v["configured_priority"]) ")" }
                                td.wrap data-label=(l(5)) {
                                    (v["addresses"].as_array().into_iter().flatten()
                                        .filter_map(Value::as_str).collect::<Vec<_>>().join(", "))
                                }
                            }
                        }
                    }
                } }
            }
            h2 { "Role changes" }
            @if transitions.is_empty() {
                p.muted { "No role change since lbd started." }
            } @else {
                div.scroll { table.transitions.stack {
                    (head(&TRANSITION_COLUMNS))
                    tbody {
                        @for t in transitions.iter().rev() {
                            @let l = |k| label(&TRANSITION_COLUMNS, k);
                            tr {
                                td data-label=(l(0)) { (utc(t.at)) }
                                td data-label=(l(1)) { (ago(i.wall, t.at)) }
                                td data-label=(l(2)) { (t.instance) }
                                td.to data-label=(l(3)) { (t.to) }
                            }
                        }
                    }
                } }
            }
        }
    }
}

fn dataplane(i: &Inputs<'_>, services: &[&Value]) -> Markup {
    let proxied: Vec<&&Value> = services
        .iter()
        .filter(|s| s["dataplane"].as_str() == Some("proxy"))
        .collect();
    let ruleset = i.recent.ruleset();
    html! {
        section #dataplane {
            h2 { "Data plane" }
            @if let Some(text) = &ruleset {
                p { "The nftables table lbd applied last (kernel services):" }
                div.scroll { pre.ruleset { (text) } }
            }
            @if !proxied.is_empty() {
                p { "The proxy (user-space services): totals since lbd started." }
                div.scroll { table.proxy.stack {
                    (head(&PROXY_COLUMNS))
                    tbody {
                        @for svc in &proxied {
                            @let sum = |k: &str| -> u64 {
                                svc["backends"].as_array().into_iter().flatten()
                                    .filter_map(|b| b[k].as_u64()).sum()
                            };
                            @let l = |k| label(&PROXY_COLUMNS, k);
                            tr {
                                td data-label=(l(0)) { (s(svc, "name")) }
                                td data-label=(l(1)) { (vip_port(svc)) }
                                td.num data-label=(l(2)) { (sum("active")) }
                                td.num data-label=(l(3)) { (sum("connections")) }
                                td.num data-label=(l(4)) { (sum("bytes_to_backend")) }
                                td.num data-label=(l(5)) { (sum("bytes_from_backend")) }
                            }
                        }
                    }
                } }
            }
            @if ruleset.is_none() && proxied.is_empty() {
                p.muted { "Nothing carried (no service, or this node is backup)." }
            }
        }
    }
}

/// `at` as `YYYY-MM-DD HH:MM:SS` UTC.
pub fn utc(at: SystemTime) -> String {
    let secs = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// How long before `now` `at` was, in words (`4 s ago`, `3 min ago`, `2 h ago`).
fn ago(now: SystemTime, at: SystemTime) -> String {
    let s = now.duration_since(at).map_or(0, |d| d.as_secs());
    match s {
        0..120 => format!("{s} s ago"),
        120..7200 => format!("{} min ago", s / 60),
        _ => format!("{} h ago", s / 3600),
    }
}
