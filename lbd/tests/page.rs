//! lbd's status page in a real browser (issue 18): lbd runs in the seed LAN's `main` namespace
//! with web1 and web2 behind the VIP (kernel data plane, VRRP on), Debian's chromium headless
//! loads `http://127.0.0.1:9169/` in that namespace and the test reads the DOM it built: VRRP
//! master with its change from backup listed; both backends healthy; web1's server stopped and
//! the page shows it down within its fall count; curl traffic through the VIP and the
//! new-connections plot has a non-zero point; a check error carrying HTML shown as text; the
//! nftables table in effect; at a phone's width (390 px) nothing scrolls sideways. Screenshots
//! (phone, the whole page at a phone's width, desktop, whole page) go to
//! `<target>/page-shots/lbd-*.png`.
//!
//! Chromium missing: skipped with "SKIPPED" on stderr, unless `CI` is set (then it fails).

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use e2e::browser::{dump_dom, have_chromium, screenshot, shots_dir};
use e2e::cdp::Tab;
use e2e::{Proc, Ready, SeedLan};

const URL: &str = "http://127.0.0.1:9169/";
const EVIL: &str = "<script>alert(1)</script>";

/// The DOM chromium built from the page.
fn dom(lan: &SeedLan) -> String {
    let d = dump_dom(Some(&lan.main), URL, &[]);
    assert!(d.contains("<main id=\"main\">"), "not the page: {d}");
    d
}

/// The page as served (for polling: cheaper than a browser).
fn fetch(lan: &SeedLan) -> String {
    let out = lan
        .main
        .run_timeout(
            &["curl", "-sS", "--max-time", "2", URL],
            None,
            Duration::from_secs(5),
        )
        .unwrap_or_else(|e| panic!("curl: {e}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Fetches the page until `ok` holds for it, at most `bound`; returns it and the time taken.
fn poll(lan: &SeedLan, bound: Duration, what: &str, ok: impl Fn(&str) -> bool) -> Duration {
    let t0 = Instant::now();
    loop {
        let page = fetch(lan);
        if ok(&page) {
            return t0.elapsed();
        }
        assert!(t0.elapsed() < bound, "{what} not within {bound:?}:\n{page}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The `data-health` of backend `name` in service `svc`.
fn health<'a>(page: &'a str, svc: &str, name: &str) -> Option<&'a str> {
    let key = format!("data-service=\"{svc}\" data-backend=\"{name}\" data-health=\"");
    let rest = &page[page.find(&key)? + key.len()..];
    Some(&rest[..rest.find('"')?])
}

/// The plots' `<section>` of service `svc`.
fn section<'a>(page: &'a str, svc: &str) -> Option<&'a str> {
    let start = page.find(&format!("data-plots=\"{svc}\""))?;
    let rest = &page[start..];
    Some(&rest[..rest.find("</section>")?])
}

/// (points drawn, newest values in the legend) of the plot titled `title` in service `svc`.
fn plot(page: &str, svc: &str, title: &str) -> Option<(usize, Vec<String>)> {
    let sec = section(page, svc)?;
    let fig = sec
        .split("<figure class=\"plot\">")
        .find(|f| f.starts_with(&format!("<figcaption>{title}</figcaption>")))?;
    let fig = &fig[..fig.find("</figure>")?];
    let attr = fig.split("data-points=\"").nth(1)?;
    let points = attr[..attr.find('"')?].parse().ok()?;
    let nows = fig
        .split("<span class=\"now\">")
        .skip(1)
        .filter_map(|s| s.split('<').next().map(str::to_owned))
        .collect();
    Some((points, nows))
}

/// lbd in `main` with the page's sampler at `ms` (the test knob).
fn lbd_sampling(lan: &SeedLan, conf: &Path, ms: u64) -> Proc {
    let rt = lan.lab.dir().join("run-main");
    lan.main
        .process(BIN)
        .args([
            "--config",
            conf.to_str().unwrap(),
            "--runtime-dir",
            rt.to_str().unwrap(),
        ])
        .env("LBD_PAGE_SAMPLE_MS", ms.to_string())
        .name("lbd")
        .ready(Ready::Notify)
        .timeout(Duration::from_secs(15))
        .spawn()
}

fn shoot(lan: &SeedLan, name: &str, size: &str) -> PathBuf {
    let file = shots_dir(env!("CARGO_TARGET_TMPDIR")).join(format!("lbd-{name}.png"));
    screenshot(Some(&lan.main), &file, size, URL, &[]);
    file
}

#[test]
fn page_in_chromium_follows_health_traffic_and_escapes() {
    e2e::require_netns!("curl", "busybox", "nft");
    if !have_chromium(module_path!()) {
        return;
    }
    let lan = SeedLan::build("lbpage");
    let w1 = web(&lan.web1, "web1");
    let _w2 = web(&lan.web2, "web2");
    // A second service whose check wants a body carrying HTML: web2 fails it, and the error
    // (with that body in it) is shown on the page.
    let conf = host_file_with(&lan, |t| {
        let check = t
            .lines()
            .find(|l| l.starts_with("check = "))
            .unwrap()
            .replace("path = \"/\"", &format!("path = \"/\", body = \"{EVIL}\""));
        // VRRP on, alone: lbd starts as backup and becomes master (a role change to show).
        let t = t.replace(
            "metrics = \"127.0.0.1:9169\"",
            "metrics = \"127.0.0.1:9169\"\nvrrp = { vrid = 51, priority = 150, interval = \"100ms\" }",
        );
        format!(
            "{t}\n[service.probe]\nvip = \"192.168.1.121\"\nport = 80\nbackends = [\"web2\"]\n{check}\n"
        )
    });
    let mut lbd = lbd_sampling(&lan, &conf, 300);

    // VRRP: master after the master-down interval, the change from backup in the ring.
    poll(&lan, Duration::from_secs(10), "VRRP master", |p| {
        p.contains("<td class=\"to\" data-label=\"Entered\">MASTER</td>")
    });

    // Both backends of www3 healthy, in the browser's DOM.
    poll(&lan, Duration::from_secs(10), "both healthy", |p| {
        health(p, "www3", "web1") == Some("up") && health(p, "www3", "web2") == Some("up")
    });
    let d = dom(&lan);
    assert_eq!(health(&d, "www3", "web1"), Some("up"), "{d}");
    assert_eq!(health(&d, "www3", "web2"), Some("up"), "{d}");
    assert!(d.contains("passed"), "last check result: {d}");
    assert!(d.contains("VRRP role<b>MASTER</b>"), "{d}");
    assert!(
        d.contains("\">vrrp</td><td class=\"to\" data-label=\"Entered\">MASTER</td>"),
        "{d}"
    );
    // The data plane in effect: lbd's nftables table, as text.
    assert!(d.contains("<pre class=\"ruleset\">"), "{d}");
    assert!(d.contains("table ip lbd {"), "{d}");
    // The check error carrying HTML is text, and no script element came of it.
    assert!(d.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{d}");
    assert!(!d.contains(EVIL), "{d}");
    assert_eq!(health(&d, "probe", "web2"), Some("down"), "{d}");

    // The new-connections plot: once the history has a first slot behind it, curl traffic
    // through the VIP shows as a non-zero rate.
    poll(&lan, Duration::from_secs(25), "a first plot point", |p| {
        plot(p, "www3", "New connections").is_some_and(|(n, _)| n > 0)
    });
    assert_alternating(&gets(&lan, 6));
    let nonzero = |p: &str| {
        plot(p, "www3", "New connections")
            .is_some_and(|(n, nows)| n > 0 && nows.iter().any(|v| v != "0" && v != "–"))
    };
    poll(&lan, Duration::from_secs(15), "a non-zero rate", nonzero);
    let d = dom(&lan);
    assert!(nonzero(&d), "{d}");
    let (points, nows) = plot(&d, "www3", "New connections").unwrap();
    println!("new connections: {points} points, now {nows:?}");
    assert!(
        plot(&d, "www3", "Traffic").is_some_and(|(n, _)| n > 0),
        "{d}"
    );

    // web1's server stops: the page shows it down within its fall count (fall checks at the
    // interval, plus the check timeout and the polling's own time).
    let t0 = Instant::now();
    drop(w1);
    let bound = INTERVAL * (FALL + 1) + Duration::from_millis(150) + Duration::from_millis(1500);
    poll(&lan, bound, "web1 down", |p| {
        health(p, "www3", "web1") == Some("down")
    });
    println!(
        "page shows web1 down {:?} after its server stopped",
        t0.elapsed()
    );
    let d = dom(&lan);
    assert_eq!(health(&d, "www3", "web1"), Some("down"), "{d}");
    assert_eq!(health(&d, "www3", "web2"), Some("up"), "{d}");
    assert!(d.contains("failed: connect"), "{d}");

    let phone = shoot(&lan, "phone", "390,844");
    // On a phone nothing scrolls sideways, neither the page nor a box in it: the tables turn
    // into cards, long addresses and the ruleset wrap.
    let mut tab = Tab::on_phone(Some(&lan.main), URL);
    let wide = tab.sideways();
    assert!(wide.is_empty(), "scrolls sideways at 390 px: {wide:?}");
    let phone_full = shots_dir(env!("CARGO_TARGET_TMPDIR")).join("lbd-phone-full.png");
    tab.screenshot(&phone_full, true);
    drop(tab);
    let desktop = shoot(&lan, "desktop", "1280,900");
    // The whole page (VRRP and data plane sections below the plots), to look at.
    let full = shoot(&lan, "full", "1280,3000");
    println!(
        "{}\n{}\n{}\n{}",
        phone.display(),
        phone_full.display(),
        desktop.display(),
        full.display()
    );
    assert!(lbd.is_running(), "lbd died");
}
