//! The status page in a real browser: Debian's chromium, headless, loads a demo page from the
//! metrics endpoint on 127.0.0.1 and the test reads the DOM it built. Screenshots (phone and
//! desktop) are left in `<target>/page-shots/` as artifacts.
//!
//! Chromium missing: the test is skipped with "SKIPPED" on stderr, unless `CI` is set (then it
//! fails: scripts/install-test-deps installs it).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use e2e::browser::{self, have_chromium, shots_dir};

use runtime::metrics::{Registry, serve_with_page};
use runtime::page::maud::{self, html};
use runtime::page::{
    History, Kind, Layout, Line, NavLink, POINTS, PageFn, PageRequest, Plot, STEP, layout,
    line_plot,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

const EVIL: &str = "<script>alert(1)</script>";

/// The history of the demo: one hour of samples, with a 50 s hole in the counter, ending at the
/// returned "now".
fn demo_history() -> (History, Instant) {
    let t0 = Instant::now();
    let mut h = History::new(16);
    let mut total = 0.0;
    for k in 0..POINTS as u64 {
        let now = t0 + STEP * k as u32;
        let phase = k as f64 / 30.0;
        total += 10.0 * (120.0 + 80.0 * phase.sin());
        if !(200..205).contains(&k) {
            h.sample("dns_queries", Kind::Counter, now, total);
        }
        if k >= 120 {
            h.sample("leases_used", Kind::Gauge, now, 40.0 + (k % 50) as f64);
            h.sample("leases_offered", Kind::Gauge, now, (k % 7) as f64);
        }
    }
    (h, t0 + STEP * (POINTS as u32 - 1))
}

/// The demo daemon's page: figures, two plots, a bar and a table with a hostile host name.
fn demo_page(history: History, now: Instant, hits: Arc<AtomicU64>) -> PageFn {
    let nav = vec![
        NavLink {
            label: "dhcpd".into(),
            href: "http://127.0.0.1:1/".into(),
        },
        NavLink {
            label: "dnsd".into(),
            href: "./".into(),
        },
        NavLink {
            label: "lbd".into(),
            href: "http://127.0.0.1:3/".into(),
        },
    ];
    Arc::new(move |req: &PageRequest| {
        let n = hits.fetch_add(1, Ordering::SeqCst) + 1;
        let q = history.window("dns_queries", now);
        let used = history.window("leases_used", now);
        let offered = history.window("leases_offered", now);
        let rows = [
            ("192.168.10.213", "52:54:00:12:34:56", EVIL, "bound"),
            (
                "192.168.10.214",
                "52:54:00:ab:cd:ef",
                "laptop-anna",
                "offered",
            ),
            (
                "192.168.10.215",
                "52:54:00:00:00:01",
                "a-very-long-host-name-from-a-dhcp-client.example.lan",
                "bound",
            ),
        ];
        let body = html! {
            div.stats {
                div.stat { "requests served" b #hits { (n) } }
                div.stat { "queries/s" b { (runtime::page::plot::si(q[POINTS - 1].unwrap_or(0.0))) } }
                div.stat { "leases in use" b.ok { "89" } }
                div.stat { "declined" b.bad { "2" } }
            }
            div.plots {
                (line_plot(&Plot { title: "DNS queries", unit: "queries/s", lines: &[Line { label: "all", points: &q }] }))
                (line_plot(&Plot { title: "Leases", unit: "leases", lines: &[
                    Line { label: "used", points: &used },
                    Line { label: "offered", points: &offered },
                ] }))
            }
            section {
                h2 { "Pool 192.168.10.100–192.168.10.250" }
                (layout::bar(&[("used", 89, "ok"), ("offered", 6, "warn"), ("declined", 2, "bad"), ("free", 54, "idle")]))
                p.muted { "89 used, 6 offered, 2 declined, 54 free" }
            }
            section {
                h2 { "Leases" }
                form.search method="get" action="" {
                    input type="search" name="q" value=(req.param("q").unwrap_or_default()) placeholder="address, MAC, name" aria-label="search";
                    button type="submit" { "Search" }
                }
                div.scroll {
                    table #leases {
                        thead { tr { th { "address" } th { "MAC" } th { "host name" } th { "state" } } }
                        tbody {
                            @for (ip, mac, name, state) in rows {
                                tr { td { (ip) } td { (mac) } td.host.wrap { (name) } td { (state) } }
                            }
                        }
                    }
                }
                div.pager { a href=(req.link_with(&[("page", "2")])) { "next page" } }
            }
        };
        layout::render(
            &Layout {
                daemon: "dnsd",
                title: "dnsd on gw1 (demo)",
                nav: &nav,
            },
            body,
        )
    })
}

struct Demo {
    addr: SocketAddr,
    hits: Arc<AtomicU64>,
    stop: CancellationToken,
    /// Points each plot should draw: the present values of its windows.
    expected: Vec<usize>,
}

async fn start_demo() -> Demo {
    let (history, now) = demo_history();
    let present = |name: &str| history.window(name, now).iter().flatten().count();
    let expected = vec![
        present("dns_queries"),
        present("leases_used") + present("leases_offered"),
    ];
    // 360 slots, the first without a rate, a hole of five: 354. Gauges from slot 120 on: 240 each.
    assert_eq!(expected, [354, 480]);
    let hits = Arc::new(AtomicU64::new(0));
    let stop = CancellationToken::new();
    let addr = serve_with_page(
        "127.0.0.1:0".parse().unwrap(),
        Arc::new(Registry::default()),
        Some(demo_page(history, now, hits.clone())),
        stop.clone(),
    )
    .await
    .unwrap();
    Demo {
        addr,
        hits,
        stop,
        expected,
    }
}

/// Chromium (see `e2e::browser::chromium`) off the async workers; returns its stdout.
async fn chromium(args: &[String]) -> String {
    let args = args.to_vec();
    tokio::task::spawn_blocking(move || browser::chromium(None, &args))
        .await
        .unwrap()
}

/// Saves a screenshot of `url` at `size` ("w,h") to `file` and checks it is a PNG of some size.
async fn shoot(file: &Path, size: &str, url: &str) {
    shoot_with(file, size, url, &[]).await;
}

/// [`shoot`] with more switches for chromium.
async fn shoot_with(file: &Path, size: &str, url: &str, extra: &[&str]) {
    let (file, size, url) = (file.to_owned(), size.to_owned(), url.to_owned());
    let extra: Vec<String> = extra.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        browser::screenshot(None, &file, &size, &url, &extra);
    })
    .await
    .unwrap();
}

/// The body of `GET path` from the demo server.
async fn get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    body.to_owned()
}

/// (value of `data-points`, points actually drawn) for each plot in `dom`, in order.
fn plot_points(dom: &str) -> Vec<(usize, usize)> {
    dom.split("<figure class=\"plot\">")
        .skip(1)
        .map(|fig| {
            let fig = &fig[..fig.find("</figure>").unwrap()];
            let attr = fig.split("data-points=\"").nth(1).unwrap();
            let declared: usize = attr[..attr.find('"').unwrap()].parse().unwrap();
            let mut drawn = fig.matches("<circle").count();
            for part in fig.split("<polyline points=\"").skip(1) {
                drawn += part[..part.find('"').unwrap()].split(' ').count();
            }
            (declared, drawn)
        })
        .collect()
}

fn check_static_dom(dom: &str, demo: &Demo) {
    // The hostile host name is text in its cell, and no script element was injected.
    assert!(
        dom.contains(r#"<td class="host wrap">&lt;script&gt;alert(1)&lt;/script&gt;</td>"#),
        "{dom}"
    );
    assert_eq!(dom.matches("<script").count(), 1, "{dom}");
    assert!(
        dom.contains(r#"<script src="page.js" defer=""></script>"#),
        "{dom}"
    );
    assert!(dom.contains("laptop-anna"));
    let plots = plot_points(dom);
    let drawn: Vec<usize> = plots.iter().map(|p| p.1).collect();
    assert_eq!(drawn, demo.expected, "{plots:?}");
    assert!(plots.iter().all(|(d, n)| d == n), "{plots:?}");
    assert!(dom.contains(r#"<a href="./" aria-current="page">dnsd</a>"#));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_in_chromium() {
    if !have_chromium(module_path!()) {
        return;
    }
    let demo = start_demo().await;
    let url = format!("http://{}/", demo.addr);

    // With JavaScript and 25 s of virtual time: the script refreshes <main> in place.
    let dom = chromium(&[
        "--virtual-time-budget=25000".to_owned(),
        "--dump-dom".to_owned(),
        url.clone(),
    ])
    .await;
    check_static_dom(&dom, &demo);
    let refreshed = dom
        .split("data-refreshed=\"")
        .nth(1)
        .map(|s| s[..s.find('"').unwrap()].parse::<u64>().unwrap());
    assert!(
        refreshed.is_some_and(|n| n >= 1),
        "main was not refreshed in place: {dom}"
    );
    assert!(demo.hits.load(Ordering::SeqCst) >= 2);
    // The refreshed copy shows a later request count than the first load.
    assert!(!dom.contains(r#"<b id="hits">1</b>"#), "{dom}");

    // The page as loaded, under its other name, with a query echoed into the search field.
    let dom = chromium(&[
        "--dump-dom".to_owned(),
        format!("{url}index.html?q=%3Cb%3E"),
    ])
    .await;
    check_static_dom(&dom, &demo);
    assert!(!dom.contains("data-refreshed"), "{dom}");
    assert!(dom.contains(r#"value="&lt;b&gt;""#), "{dom}");

    // Screenshots: phone, a phone-wide full page, desktop.
    let dir = shots_dir(env!("CARGO_TARGET_TMPDIR"));
    for (name, size) in [
        ("phone", "390,844"),
        ("phone-full", "390,1900"),
        ("desktop", "1280,900"),
    ] {
        shoot(&dir.join(format!("demo-{name}.png")), size, &url).await;
    }
    // The dark colour scheme (prefers-color-scheme: dark).
    shoot_with(
        &dir.join("demo-phone-dark.png"),
        "390,844",
        &url,
        &["--force-dark-mode"],
    )
    .await;

    // Without JavaScript: chromium's own switch for that also stops --dump-dom and --screenshot
    // (they run through its script engine), so the page is saved without its script element,
    // next to its style sheet, and shown from the file.
    let html = get(demo.addr, "/").await;
    let script = r#"<script src="page.js" defer></script>"#;
    assert!(html.contains(script));
    let nojs = tempfile::tempdir().unwrap();
    std::fs::write(nojs.path().join("index.html"), html.replace(script, "")).unwrap();
    std::fs::write(
        nojs.path().join("page.css"),
        get(demo.addr, "/page.css").await,
    )
    .unwrap();
    let file_url = format!("file://{}/index.html", nojs.path().display());
    let dom = chromium(&["--dump-dom".to_owned(), file_url.clone()]).await;
    assert_eq!(dom.matches("<script").count(), 0, "{dom}");
    assert!(dom.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert_eq!(
        plot_points(&dom).iter().map(|p| p.1).collect::<Vec<_>>(),
        demo.expected
    );
    shoot(&dir.join("demo-phone-nojs.png"), "390,844", &file_url).await;
    demo.stop.cancel();
}

/// A reverse proxy on 127.0.0.1 that serves `upstream` under `prefix` (e.g. `/dnsd/`), as a
/// front web server would: strips the prefix from the request line, answers 404 outside it, and
/// records every path asked for.
async fn prefix_proxy(
    upstream: SocketAddr,
    prefix: &'static str,
    seen: Arc<Mutex<Vec<String>>>,
    stop: CancellationToken,
) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let mut client = tokio::select! {
                _ = stop.cancelled() => return,
                r = listener.accept() => match r {
                    Ok((c, _)) => c,
                    Err(_) => return,
                },
            };
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 8192 {
                    match client.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&buf).into_owned();
                let Some((line, rest)) = text.split_once("\r\n") else {
                    return;
                };
                let mut parts = line.splitn(3, ' ');
                let (Some(method), Some(target), Some(version)) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    return;
                };
                seen.lock().unwrap().push(target.to_owned());
                let Some(inner) = target.strip_prefix(prefix) else {
                    let _ = client
                        .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                        .await;
                    return;
                };
                let Ok(mut up) = TcpStream::connect(upstream).await else {
                    return;
                };
                let head = format!("{method} /{inner} {version}\r\n{rest}");
                if up.write_all(head.as_bytes()).await.is_ok() {
                    let _ = tokio::io::copy(&mut up, &mut client).await;
                }
                let _ = client.shutdown().await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_behind_a_reverse_proxy_under_a_prefix() {
    if !have_chromium(module_path!()) {
        return;
    }
    let demo = start_demo().await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let proxy = prefix_proxy(demo.addr, "/dnsd/", seen.clone(), demo.stop.clone()).await;
    let url = format!("http://{proxy}/dnsd/");
    let dom = chromium(&[
        "--virtual-time-budget=25000".to_owned(),
        "--dump-dom".to_owned(),
        url.clone(),
    ])
    .await;
    check_static_dom(&dom, &demo);
    assert!(
        dom.contains("data-refreshed=\""),
        "no refresh through the proxy: {dom}"
    );
    let seen = seen.lock().unwrap().clone();
    // The style sheet, the script and the refreshes all went through the prefix; nothing
    // was asked for outside it.
    for path in ["/dnsd/page.css", "/dnsd/page.js"] {
        assert!(
            seen.iter().any(|p| p == path),
            "{path} not fetched: {seen:?}"
        );
    }
    assert!(
        seen.iter().filter(|p| *p == "/dnsd/").count() >= 2,
        "{seen:?}"
    );
    assert!(seen.iter().all(|p| p.starts_with("/dnsd/")), "{seen:?}");
    shoot(
        &shots_dir(env!("CARGO_TARGET_TMPDIR")).join("demo-desktop-prefix.png"),
        "1280,900",
        &url,
    )
    .await;
    demo.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_refresh_keeps_the_page_and_says_so() {
    if !have_chromium(module_path!()) {
        return;
    }
    let calls = Arc::new(AtomicU64::new(0));
    let c = calls.clone();
    // The first request gets the page; later ones get a document without its content, as
    // from a proxy's error page.
    let page: PageFn = Arc::new(move |_: &PageRequest| {
        if c.fetch_add(1, Ordering::SeqCst) > 0 {
            return "<!DOCTYPE html><p>something else</p>".to_owned();
        }
        layout::render(
            &Layout {
                daemon: "lbd",
                title: "lbd",
                nav: &[],
            },
            html! { p #first { "first copy" } },
        )
    });
    let stop = CancellationToken::new();
    let addr = serve_with_page(
        "127.0.0.1:0".parse().unwrap(),
        Arc::new(Registry::default()),
        Some(page),
        stop.clone(),
    )
    .await
    .unwrap();
    let dom = chromium(&[
        "--virtual-time-budget=15000".to_owned(),
        "--dump-dom".to_owned(),
        format!("http://{addr}/"),
    ])
    .await;
    assert!(dom.contains(r#"<p id="first">first copy</p>"#), "{dom}");
    assert!(!dom.contains("data-refreshed"), "{dom}");
    assert!(
        dom.contains(
            r#"<span id="live" class="warn">Refresh failed (no content), retrying. </span>"#
        ),
        "{dom}"
    );
    assert!(calls.load(Ordering::SeqCst) >= 2);
    stop.cancel();
}

#[test]
fn maud_is_reachable_through_runtime() {
    // The daemons write `use runtime::page::maud::{self, html};` without a dependency of their own.
    let m: maud::Markup = html! { p { (EVIL) } };
    assert_eq!(
        m.into_string(),
        "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"
    );
}
