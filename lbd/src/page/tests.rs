use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use runtime::page::{History, STEP};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::*;

fn doc(service: &str, backend: &str) -> Value {
    json!({
        "vrrp": {"vrid": 7, "priority": 120, "interval_ms": 1000, "preempt": true, "state": "MASTER"},
        "vips": ["192.168.1.120"],
        "services": [{
            "name": service, "vip": "192.168.1.120", "port": 80, "protocol": "TCP",
            "scheduler": "rr", "dataplane": "proxy", "mode": "live", "sorry_server": null,
            "backends": [
                {"name": backend, "address": "192.168.10.10:80", "weight": 1, "health": "up",
                 "in_use": true, "active": 2, "connections": 10, "bytes_to_backend": 100,
                 "bytes_from_backend": 1000, "last_error": null},
                {"name": "web2", "address": "192.168.10.11:80", "weight": 0, "health": "down",
                 "in_use": false, "active": 0, "connections": 0, "bytes_to_backend": 0,
                 "bytes_from_backend": 0, "last_error": "connect refused"},
            ],
        }],
    })
}

fn render_doc(d: &Value, recent: &Recent, h: &History, now: Instant) -> String {
    page(&render::Inputs {
        doc: Some(d),
        recent,
        history: h,
        now,
        wall: SystemTime::now(),
        addrs: &[("lbd", Some("127.0.0.1:9169".parse().unwrap()))],
        host: None,
        req: &runtime::page::PageRequest::default(),
    })
}

#[test]
fn names_and_errors_are_escaped() {
    let evil = "<script>alert(1)</script>";
    let recent = Recent::default();
    recent.check(
        evil,
        "192.168.10.11:80".parse().unwrap(),
        &Err::<(), _>("status 500 <b>"),
    );
    let d = doc(evil, evil);
    let html = render_doc(&d, &recent, &History::new(8), Instant::now());
    assert!(!html.contains("<script>alert"), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert!(html.contains("failed: status 500 &lt;b&gt;"), "{html}");
}

#[test]
fn rows_show_health_weight_drained_and_last_check() {
    let recent = Recent::default();
    recent.check(
        "www",
        "192.168.10.10:80".parse().unwrap(),
        &Ok::<(), String>(()),
    );
    let html = render_doc(
        &doc("www", "web1"),
        &recent,
        &History::new(8),
        Instant::now(),
    );
    assert!(
        html.contains(r#"data-service="www" data-backend="web1" data-health="up""#),
        "{html}"
    );
    assert!(
        html.contains(r#"data-service="www" data-backend="web2" data-health="down""#),
        "{html}"
    );
    assert!(html.contains("passed"), "{html}");
    assert!(html.contains("none yet"), "{html}");
    assert!(html.contains("drained"), "{html}");
    assert!(html.contains("1 / 2"), "{html}");
    // The proxy's figures in the data plane section: the sums over the backends.
    assert!(
        html.contains("<td class=\"num\" data-label=\"Bytes from backends\">1000</td>"),
        "{html}"
    );
}

#[test]
fn samples_make_plot_points() {
    let mut h = History::new(64);
    let t0 = Instant::now();
    let mut d = doc("www", "web1");
    sample(&mut h, &d, t0);
    d["services"][0]["backends"][0]["connections"] = json!(30);
    sample(&mut h, &d, t0 + STEP);
    let key = |fig: &str| series("www", "192.168.1.120", "192.168.10.10:80", fig);
    let w = h.window(&key("conns"), t0 + STEP);
    assert_eq!(w.last().copied().flatten(), Some(2.0));
    let a = h.window(&key("active"), t0 + STEP);
    assert_eq!(a.last().copied().flatten(), Some(2.0));
    let html = render_doc(&d, &Recent::default(), &h, t0 + STEP);
    assert!(html.contains("New connections"), "{html}");
}

#[test]
fn transitions_are_a_bounded_ring() {
    let r = Recent::default();
    for k in 0..TRANSITIONS + 5 {
        r.transition("vrrp", if k % 2 == 0 { "MASTER" } else { "BACKUP" });
    }
    let t = r.transitions();
    assert_eq!(t.len(), TRANSITIONS);
    assert_eq!(t.last().unwrap().to, "MASTER");
    let html = render_doc(&doc("www", "web1"), &r, &History::new(8), Instant::now());
    assert_eq!(
        html.matches("<td class=\"to\" data-label=\"Entered\">BACKUP</td>")
            .count(),
        TRANSITIONS / 2,
        "{html}"
    );
}

fn inst(name: &str, state: &'static str) -> (String, &'static str) {
    (name.to_owned(), state)
}

#[test]
fn instance_changes_are_state_changes_only() {
    let mut last = BTreeMap::new();
    // First sight: no change.
    assert!(changes(&mut last, &[inst("vrrp", "BACKUP"), inst("gw", "BACKUP")]).is_empty());
    assert_eq!(
        changes(&mut last, &[inst("vrrp", "MASTER"), inst("gw", "BACKUP")]),
        [("vrrp".to_owned(), "MASTER")]
    );
    // Published again with the same states (a priority change): no change.
    assert!(changes(&mut last, &[inst("vrrp", "MASTER"), inst("gw", "BACKUP")]).is_empty());
    assert_eq!(
        changes(&mut last, &[inst("vrrp", "FAULT"), inst("gw", "FAULT")]),
        [("vrrp".to_owned(), "FAULT"), ("gw".to_owned(), "FAULT")]
    );
    // An instance gone (reload) is forgotten.
    assert!(changes(&mut last, &[inst("vrrp", "FAULT")]).is_empty());
    assert_eq!(last.len(), 1);
}

#[tokio::test]
async fn followed_instances_land_in_the_ring() {
    let (tx, rx) = tokio::sync::watch::channel(vec![inst("vrrp", "BACKUP")]);
    let recent = std::sync::Arc::new(Recent::default());
    let stop = CancellationToken::new();
    follow_instances(rx, |i| i.clone(), recent.clone(), stop.clone());
    tx.send(vec![inst("vrrp", "MASTER")]).unwrap();
    let seen = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let t = recent.transitions();
            if !t.is_empty() {
                return t;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("transition recorded");
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (seen[0].instance.as_str(), seen[0].to.as_str()),
        ("vrrp", "MASTER")
    );
    stop.cancel();
}

#[test]
fn utc_formats_the_civil_date() {
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_400_219);
    assert_eq!(utc(t), "2026-12-04 16:03:39");
    assert_eq!(utc(SystemTime::UNIX_EPOCH), "1970-01-01 00:00:00");
}

#[test]
fn no_document_yet_says_starting() {
    let html = page(&render::Inputs {
        doc: None,
        recent: &Recent::default(),
        history: &History::new(8),
        now: Instant::now(),
        wall: SystemTime::now(),
        addrs: &[],
        host: None,
        req: &runtime::page::PageRequest::default(),
    });
    assert!(html.contains("Starting"), "{html}");
}

#[test]
fn drain_buttons_only_for_a_logged_in_admin() {
    let mut d = doc("www", "web1");
    d["services"][0]["backends"][1]["drained"] = json!(true);
    d["services"][0]["backends"][1]["drained_by"] = json!("www/web2");
    let render = |req: &PageRequest| {
        page(&render::Inputs {
            doc: Some(&d),
            recent: &Recent::default(),
            history: &History::new(8),
            now: Instant::now(),
            wall: SystemTime::now(),
            addrs: &[],
            host: None,
            req,
        })
    };
    let ro = render(&PageRequest::default());
    assert!(!ro.contains("<form"), "{ro}");
    assert!(ro.contains("drained"), "{ro}");
    let out = render(&PageRequest {
        admin: runtime::page::AdminState::LoggedOut,
        ..PageRequest::default()
    });
    assert!(out.contains("action=\"login\""), "{out}");
    assert!(!out.contains("data-action"), "{out}");
    let admin = render(&PageRequest {
        admin: runtime::page::AdminState::LoggedIn {
            csrf: "t0k3n".into(),
        },
        ..PageRequest::default()
    });
    assert!(
        admin.contains("data-action=\"drain\" data-arg=\"www/web1\""),
        "{admin}"
    );
    assert!(
        admin.contains("data-action=\"undrain\" data-arg=\"www/web2\""),
        "{admin}"
    );
    assert!(admin.contains("name=\"csrf\" value=\"t0k3n\""), "{admin}");
    // Form actions are relative: they stay under a reverse proxy's prefix.
    assert!(admin.contains("action=\"action\""), "{admin}");
    assert!(!admin.contains("action=\"/"), "{admin}");
}

/// A dual-stack service (web2 without IPv6: the proxy reaches it at its IPv4 address from
/// both VIPs) through the daemon's own steps: host file, plans, status document, sampler,
/// page. `up` says which (backend, address) checks pass; `conns` each address' connections.
fn dual_stack_doc(up: &[&str], conns: &[(&str, u64)]) -> Value {
    use crate::health::{Tracker, Trackers};
    let t = hostfile::HostTable::from_toml(
        r#"
domain = "example.com"
[[subnet]]
network = "192.168.1.0/24"
[[subnet]]
network = "fd00:1::/64"
[host.web1]
ip = "192.168.1.10"
ipv6 = "fd00:1::10"
[host.web2]
ip = "192.168.1.11"
[service.www]
vip = ["192.168.1.120", "fd00:1::120"]
port = 80
backends = ["web1", "web2"]
dataplane = "proxy"
"#,
    )
    .expect("valid host file");
    let view = t.lb_view();
    let mut trackers = Trackers::new();
    for a in ["192.168.1.10:80", "[fd00:1::10]:80", "192.168.1.11:80"] {
        let mut tr = Tracker::default();
        tr.record(up.contains(&a), 1, 1);
        trackers.insert(("www".into(), a.parse().unwrap()), tr);
    }
    let health = crate::health::health_map(&trackers);
    let plans = crate::desired::desired(&view, &health, crate::desired::Role::Master);
    let traffic = conns
        .iter()
        .map(|(a, n)| {
            let tr = crate::metrics::Traffic {
                connections: *n,
                to_backend: 100 * n,
                from_backend: 1000 * n,
            };
            (("www".to_owned(), a.parse().unwrap()), tr)
        })
        .collect();
    crate::status::document(
        &view,
        &crate::drain::Drains::default(),
        &trackers,
        &plans,
        crate::desired::Role::Master,
        &[
            "192.168.1.120".parse().unwrap(),
            "fd00:1::120".parse().unwrap(),
        ],
        &|_, _| Some(0),
        &traffic,
    )
}

/// The `<tr>` of `backend` in the service entry on `vip`.
fn row_of<'a>(html: &'a str, backend: &str, vip: &str) -> &'a str {
    let start = html
        .match_indices(&format!("data-backend=\"{backend}\""))
        .map(|(k, _)| k)
        .find(|k| {
            html[*k..]
                .split('>')
                .next()
                .unwrap()
                .contains(&format!("data-vip=\"{vip}\""))
        })
        .unwrap_or_else(|| panic!("no row for {backend} on {vip}: {html}"));
    let rest = &html[start..];
    &rest[..rest.find("</tr>").unwrap()]
}

/// The newest value of `label`'s line in the plot `title` of the service entry on `vip`.
fn plot_now<'a>(html: &'a str, vip: &str, title: &str, label: &str) -> &'a str {
    let key = format!("data-plots=\"www\" data-vip=\"{vip}\"");
    let sec = &html[html
        .find(&key)
        .unwrap_or_else(|| panic!("no section {key}: {html}"))..];
    let sec = &sec[..sec.find("</section>").unwrap()];
    let fig = &sec[sec
        .find(&format!("<figcaption>{title}</figcaption>"))
        .unwrap()..];
    let key = format!(" {label} <span class=\"now\">");
    let v = &fig[fig.find(&key).unwrap_or_else(|| panic!("no {key}: {fig}")) + key.len()..];
    &v[..v.find('<').unwrap()]
}

#[test]
fn a_dual_stack_service_keeps_each_familys_figures() {
    let all = ["192.168.1.10:80", "[fd00:1::10]:80", "192.168.1.11:80"];
    let mut h = History::new(64);
    let t0 = Instant::now();
    let d0 = dual_stack_doc(&all, &[]);
    sample(&mut h, &d0, t0);
    // Over one slot: 10 connections to web1 over IPv4, 50 over IPv6, 20 to web2 (both VIPs).
    let conns = [
        ("192.168.1.10:80", 10),
        ("[fd00:1::10]:80", 50),
        ("192.168.1.11:80", 20),
    ];
    let d = dual_stack_doc(&all, &conns);
    sample(&mut h, &d, t0 + STEP);
    let now = |vip: &str, addr: &str| {
        h.window(&series("www", vip, addr, "conns"), t0 + STEP)
            .last()
            .copied()
            .flatten()
    };
    assert_eq!(now("192.168.1.120", "192.168.1.10:80"), Some(1.0));
    assert_eq!(now("fd00:1::120", "[fd00:1::10]:80"), Some(5.0));
    // The address both entries reach: one series per entry, never one sampled twice.
    assert_eq!(now("192.168.1.120", "192.168.1.11:80"), Some(2.0));
    assert_eq!(now("fd00:1::120", "192.168.1.11:80"), Some(2.0));
    assert_eq!(h.names().filter(|n| n.ends_with("conns")).count(), 4);

    let html = render_doc(&d, &Recent::default(), &h, t0 + STEP);
    // One section per VIP, each with its own family's figures.
    assert_eq!(
        plot_now(&html, "192.168.1.120", "New connections", "web1"),
        "1"
    );
    assert_eq!(
        plot_now(&html, "fd00:1::120", "New connections", "web1"),
        "5"
    );
    assert_eq!(
        plot_now(&html, "fd00:1::120", "New connections", "web2 (both VIPs)"),
        "2"
    );
    assert!(
        html.contains("Service www <span class=\"muted\">(IPv6)</span>"),
        "{html}"
    );
    // One service, two entries: every row says its family, and the IPv6 entry's backends are
    // in use by the IPv6 entry's own plan.
    assert!(html.contains("Services<b>1</b>"), "{html}");
    let v6 = row_of(&html, "web1", "fd00:1::120");
    assert!(v6.contains("<span class=\"muted\">IPv6</span>"), "{v6}");
    assert!(v6.contains(">yes</td>"), "{v6}");
    assert!(row_of(&html, "web1", "192.168.1.120").contains(">yes</td>"));

    // web1's IPv4 path and web2 down: the IPv4 entry is withdrawn, the IPv6 one stays live
    // over web1's IPv6 address; each section says its own mode.
    let d = dual_stack_doc(&["[fd00:1::10]:80"], &conns);
    let html = render_doc(&d, &Recent::default(), &h, t0 + STEP);
    let mode = |vip: &str| {
        let key = format!("data-plots=\"www\" data-vip=\"{vip}\"");
        let sec = &html[html.find(&key).unwrap()..];
        let m = &sec[sec.find("<span class=\"mode\">").unwrap() + 19..];
        m[..m.find('<').unwrap()].to_owned()
    };
    assert_eq!(mode("192.168.1.120"), "withdrawn");
    assert_eq!(mode("fd00:1::120"), "live");
    assert!(row_of(&html, "web1", "fd00:1::120").contains(">yes</td>"));
}
