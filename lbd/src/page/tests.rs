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
    assert!(html.contains("<td class=\"num\">1000</td>"), "{html}");
}

#[test]
fn samples_make_plot_points() {
    let mut h = History::new(64);
    let t0 = Instant::now();
    let mut d = doc("www", "web1");
    sample(&mut h, &d, t0);
    d["services"][0]["backends"][0]["connections"] = json!(30);
    sample(&mut h, &d, t0 + STEP);
    let w = h.window(&series("www", "192.168.10.10:80", "conns"), t0 + STEP);
    assert_eq!(w.last().copied().flatten(), Some(2.0));
    let a = h.window(&series("www", "192.168.10.10:80", "active"), t0 + STEP);
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
        html.matches("<td class=\"to\">BACKUP</td>").count(),
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
