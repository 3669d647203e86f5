//! Prometheus metrics scraped with curl while real traffic flows (both data planes), and a
//! backend flapping every check interval: every change applied and counted, logs rate-limited,
//! no crash, no failed apply, and a consistent state once it settles.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::*;
use e2e::{Host, SeedLan};

const WEB1: &str = "{service=\"www3\",backend=\"192.168.10.10:80\"}";
const WEB2: &str = "{service=\"www3\",backend=\"192.168.10.11:80\"}";

fn series(name: &str, labels: &str) -> String {
    format!("lbd_{name}{labels}")
}

/// Adds `extra` labels to a `{...}` label set.
fn with(labels: &str, extra: &str) -> String {
    format!("{},{extra}}}", &labels[..labels.len() - 1])
}

fn hold_connection(lan: &SeedLan) -> std::net::TcpStream {
    lan.outside.enter(|| {
        std::net::TcpStream::connect_timeout(
            &"192.168.1.120:80".parse().unwrap(),
            Duration::from_secs(2),
        )
        .unwrap()
    })
}

#[test]
fn proxy_metrics_count_connections_bytes_and_move() {
    e2e::require_netns!("curl", "busybox");
    let lan = SeedLan::build("lbpmet");
    let _w1 = web(&lan.web1, "web1");
    let _w2 = web(&lan.web2, "web2");
    let conf = host_file(&lan, "dataplane = \"proxy\"");
    let mut lbd = lbd(&lan, &conf);
    lbd.wait_for_log("proxy listening", Duration::from_secs(2))
        .unwrap();
    let before = scrape(&lan.main);
    assert_eq!(sample(&before, &series("backend_up", WEB1)), Some(1.0));
    assert_eq!(sample(&before, "lbd_vrrp_master"), Some(1.0));
    assert_eq!(sample(&before, "lbd_apply_failures_total"), Some(0.0));
    let applies = sample(&before, "lbd_applies_total").unwrap();
    assert!(applies >= 1.0, "{before}");

    assert_alternating(&gets(&lan, 6));
    let held = hold_connection(&lan);
    // The held connection is carried once the proxy connected to a backend: wait for it.
    let t0 = Instant::now();
    let m = loop {
        let m = scrape(&lan.main);
        let active = sample(&m, &series("backend_active_connections", WEB1)).unwrap_or(0.0)
            + sample(&m, &series("backend_active_connections", WEB2)).unwrap_or(0.0);
        if active == 1.0 {
            break m;
        }
        assert!(t0.elapsed() < Duration::from_secs(3), "active never 1: {m}");
        std::thread::sleep(Duration::from_millis(20));
    };
    println!("{m}");
    // Six requests alternated, then the held connection went to web1 (rr slot 6 -> web1).
    let c1 = sample(&m, &series("backend_connections_total", WEB1)).unwrap();
    let c2 = sample(&m, &series("backend_connections_total", WEB2)).unwrap();
    assert_eq!((c1, c2), (4.0, 3.0), "{m}");
    for (b, n) in [(WEB1, 3.0), (WEB2, 3.0)] {
        let to = sample(
            &m,
            &series("backend_bytes_total", &with(b, "direction=\"to_backend\"")),
        )
        .unwrap();
        let from = sample(
            &m,
            &series(
                "backend_bytes_total",
                &with(b, "direction=\"from_backend\""),
            ),
        )
        .unwrap();
        // Each request is a curl GET (> 50 bytes) answered with headers and a 5-byte page.
        assert!(to >= 50.0 * n && from >= 60.0 * n, "{b}: {to} {from}\n{m}");
    }
    drop(held);
    let t0 = Instant::now();
    while sample(
        &scrape(&lan.main),
        &series("backend_active_connections", WEB1),
    ) != Some(0.0)
    {
        assert!(t0.elapsed() < Duration::from_secs(3), "active did not drop");
        std::thread::sleep(Duration::from_millis(20));
    }

    // web1 stops: health, transitions and applies move.
    let cursor = lbd.log_cursor();
    drop(_w1);
    lbd.wait_for_log_after(cursor, "mode=Live targets=web2=", Duration::from_secs(5))
        .unwrap();
    let m = scrape(&lan.main);
    assert_eq!(sample(&m, &series("backend_up", WEB1)), Some(0.0), "{m}");
    assert_eq!(
        sample(
            &m,
            &series("backend_transitions_total", &with(WEB1, "to=\"down\""))
        ),
        Some(1.0),
        "{m}"
    );
    assert!(sample(&m, "lbd_applies_total").unwrap() > applies, "{m}");
    let fails = with(WEB1, "result=\"fail\"");
    assert!(
        sample(&m, &series("checks_total", &fails)).unwrap() >= 2.0,
        "{m}"
    );
}

#[test]
fn kernel_metrics_active_connections_from_conntrack() {
    e2e::require_netns!("nft", "curl", "busybox");
    let lan = SeedLan::build("lbkmet");
    let _w1 = web(&lan.web1, "web1");
    let _w2 = web(&lan.web2, "web2");
    let conf = host_file(&lan, "");
    let _lbd = lbd(&lan, &conf);
    let m = scrape(&lan.main);
    assert_eq!(
        sample(&m, &series("backend_active_connections", WEB1)),
        Some(0.0),
        "{m}"
    );
    let held = hold_connection(&lan);
    let m = scrape(&lan.main);
    let a1 = sample(&m, &series("backend_active_connections", WEB1)).unwrap();
    let a2 = sample(&m, &series("backend_active_connections", WEB2)).unwrap();
    assert_eq!(a1 + a2, 1.0, "{m}");
    drop(held);
}

/// An HTTP server on port 80 of `host` that, while `flap` is set, answers 200 and 500 in turn
/// (so with rise = fall = 1 the backend changes state at every check), else always 200.
struct Flapper {
    stop: Arc<AtomicBool>,
    flap: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Flapper {
    fn start(host: &Host) -> Flapper {
        let l = host.enter(|| TcpListener::bind("0.0.0.0:80").unwrap());
        l.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flap = Arc::new(AtomicBool::new(true));
        let (s, f) = (stop.clone(), flap.clone());
        let n = AtomicU64::new(0);
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let Ok((mut c, _)) = l.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let _ = c.set_nonblocking(false);
                let _ = c.set_read_timeout(Some(Duration::from_millis(500)));
                let mut buf = [0u8; 1024];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match c.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(k) => got.extend_from_slice(&buf[..k]),
                    }
                }
                let ok = !f.load(Ordering::Relaxed)
                    || n.fetch_add(1, Ordering::Relaxed).is_multiple_of(2);
                let resp: &[u8] = if ok {
                    b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nweb1\n"
                } else {
                    b"HTTP/1.0 500 Oops\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                };
                let _ = c.write_all(resp);
            }
        });
        Flapper {
            stop,
            flap,
            thread: Some(thread),
        }
    }
}

impl Drop for Flapper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn flapping_backend_is_applied_counted_and_logged_with_a_limit() {
    e2e::require_netns!("nft", "curl", "busybox");
    let lan = SeedLan::build("lbflap");
    let flapper = Flapper::start(&lan.web1);
    let _w2 = web(&lan.web2, "web2");
    let conf = host_file_with(&lan, |t| {
        t.replace("rise = 2, fall = 2", "rise = 1, fall = 1")
    });
    let mut lbd = lbd(&lan, &conf);
    // Flapping every check interval (200 ms): wait, bounded, until 16 state changes.
    let down = series("backend_transitions_total", &with(WEB1, "to=\"down\""));
    let up = series("backend_transitions_total", &with(WEB1, "to=\"up\""));
    let t0 = Instant::now();
    let m = loop {
        let m = scrape(&lan.main);
        let n = sample(&m, &down).unwrap_or(0.0) + sample(&m, &up).unwrap_or(0.0);
        // A scrape may fall between a change being recorded and its apply: wait for both.
        if n >= 16.0 && sample(&m, "lbd_applies_total").unwrap_or(0.0) >= 16.0 {
            break m;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(9),
            "web1 did not flap: {n} changes\n{m}\n{}",
            lbd.stderr()
        );
        assert!(lbd.is_running(), "lbd died: {}", lbd.stderr());
        std::thread::sleep(Duration::from_millis(100));
    };
    let applies = sample(&m, "lbd_applies_total").unwrap();
    assert!(applies >= 16.0, "every change applied: {m}");
    assert_eq!(sample(&m, "lbd_apply_failures_total"), Some(0.0), "{m}");
    // Logs: at most the burst of up/down lines for web1 within the 10 s window, then one
    // "flapping" line, whatever the number of changes.
    let log = lbd.stderr();
    let lines = log
        .lines()
        .filter(|l| {
            l.contains("192.168.10.10:80")
                && (l.contains("backend up") || l.contains("backend down"))
        })
        .count();
    let flapping = log
        .lines()
        .filter(|l| l.contains("backend flapping"))
        .count();
    println!("{lines} up/down lines and {flapping} flapping line for 16+ changes");
    assert!(lines <= 6, "not rate-limited: {lines} lines\n{log}");
    assert_eq!(flapping, 1, "{log}");
    let state_lines = log.lines().filter(|l| l.contains("service state")).count();
    assert!(
        state_lines <= 25,
        "service state lines not limited: {state_lines}"
    );

    // Flapping stops (web1 healthy): the state settles with web1 in use, the table carries both
    // backends, and traffic alternates again.
    flapper.flap.store(false, Ordering::Relaxed);
    let t0 = Instant::now();
    loop {
        let st = status(&lan, &conf);
        let b = &st["services"][0]["backends"];
        if b[0]["health"] == "up" && b[0]["in_use"] == true && b[1]["in_use"] == true {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(3),
            "did not settle: {st}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let table = lan.main.run(&["nft", "list", "table", "ip", "lbd"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("map { 0 : 192.168.10.10, 1 : 192.168.10.11 }"),
        "{table}"
    );
    assert_alternating(&gets(&lan, 6));
    assert!(lbd.is_running());
    let st = lbd.stop_with(Duration::from_secs(5));
    assert!(st.success(), "{st}");
    drop(flapper);
}

/// One request through the VIP from the outside client: (body, request bytes, response bytes
/// with headers), as curl counted them.
fn get_sized(lan: &SeedLan) -> (String, u64, u64) {
    let out = lan.outside.run(&[
        "curl",
        "-sS",
        "--max-time",
        "2",
        "-w",
        "\n%{size_request} %{size_header} %{size_download}",
        "http://192.168.1.120/",
    ]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, sizes) = text.rsplit_once('\n').unwrap();
    let n: Vec<u64> = sizes.split(' ').map(|x| x.parse().unwrap()).collect();
    (body.trim().to_owned(), n[0], n[1] + n[2])
}

/// (connections, bytes to, bytes from) of `backend` in a scrape.
fn traffic(m: &str, backend: &str) -> (f64, f64, f64) {
    let get = |s: String| sample(m, &s).unwrap_or_else(|| panic!("no {s}\n{m}"));
    (
        get(series("backend_connections_total", backend)),
        get(series(
            "backend_bytes_total",
            &with(backend, "direction=\"to_backend\""),
        )),
        get(series(
            "backend_bytes_total",
            &with(backend, "direction=\"from_backend\""),
        )),
    )
}

/// Waits (bounded) until `nft list counters` in main does or does not name `name`.
fn wait_counter(lan: &SeedLan, name: &str, present: bool) {
    let t0 = Instant::now();
    loop {
        let out = lan
            .main
            .run(&["nft", "list", "counters", "table", "ip", "lbd"]);
        if String::from_utf8_lossy(&out.stdout).contains(name) == present {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "counter {name} present={present} never true"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn kernel_counts_connections_and_bytes_per_backend_across_replacements() {
    e2e::require_netns!("nft", "curl", "busybox");
    let lan = SeedLan::build("lbkbytes");
    let w1 = web(&lan.web1, "web1");
    let _w2 = web(&lan.web2, "web2");
    let conf = host_file(&lan, "");
    let mut lbd = lbd(&lan, &conf);
    let m = scrape(&lan.main);
    assert_eq!(traffic(&m, WEB1), (0.0, 0.0, 0.0), "{m}");
    assert_eq!(traffic(&m, WEB2), (0.0, 0.0, 0.0), "{m}");

    // Six requests: rr gives each backend exactly three connections. Each direction carried
    // more bytes than the HTTP bytes curl counted (IP and TCP headers, handshake, FIN).
    let mut req = [0u64; 2];
    let mut resp = [0u64; 2];
    for _ in 0..6 {
        let (body, q, r) = get_sized(&lan);
        let i = usize::from(body == "web2");
        req[i] += q;
        resp[i] += r;
    }
    let m = scrape(&lan.main);
    println!("{m}");
    let t1 = traffic(&m, WEB1);
    let t2 = traffic(&m, WEB2);
    assert_eq!((t1.0, t2.0), (3.0, 3.0), "{m}");
    for (t, i) in [(t1, 0), (t2, 1)] {
        assert!(
            t.1 > req[i] as f64 && t.2 > resp[i] as f64,
            "{t:?} {req:?} {resp:?}"
        );
    }
    // `lbd status` shows the same figures (health checks are not DNATed: nothing moved).
    let st = status(&lan, &conf);
    let b = &st["services"][0]["backends"];
    assert_eq!(b[0]["connections"], 3, "{st}");
    assert_eq!(b[1]["connections"], 3, "{st}");
    assert_eq!(b[0]["bytes_to_backend"].as_f64(), Some(t1.1), "{st}");
    assert_eq!(b[1]["bytes_from_backend"].as_f64(), Some(t2.2), "{st}");
    let text = status_text(&lan, &conf);
    assert!(text.contains("Conns"), "{text}");
    println!("{text}");

    // web1 stops: the table is replaced (web1 out of the DNAT map); its totals stay.
    let cursor = lbd.log_cursor();
    drop(w1);
    lbd.wait_for_log_after(cursor, "mode=Live targets=web2=", Duration::from_secs(5))
        .unwrap();
    for _ in 0..4 {
        assert_eq!(get_sized(&lan).0, "web2");
    }
    let m = scrape(&lan.main);
    assert_eq!(traffic(&m, WEB1), t1, "{m}");
    let t2b = traffic(&m, WEB2);
    assert_eq!(t2b.0, 7.0, "{m}");
    assert!(t2b.1 > t2.1 && t2b.2 > t2.2, "{m}");

    // A reload drops web1 from the service: its counters leave the kernel, lbd carries them.
    let good = std::fs::read_to_string(&conf).unwrap();
    let web2_only = good.replace("backends = [\"web1\", \"web2\"]", "backends = [\"web2\"]");
    assert_ne!(good, web2_only);
    std::fs::write(&conf, &web2_only).unwrap();
    lbd.signal(nix::sys::signal::Signal::SIGHUP);
    wait_counter(&lan, "c_www3__192_168_10_10_80_conns", false);
    let m = scrape(&lan.main);
    assert_eq!(traffic(&m, WEB1), t1, "carried totals: {m}");
    assert_eq!(traffic(&m, WEB2), t2b, "{m}");

    // web1 back in the file and serving: new kernel counters, totals continue from the carried
    // ones.
    let cursor = lbd.log_cursor();
    let _w1 = web(&lan.web1, "web1");
    std::fs::write(&conf, &good).unwrap();
    lbd.signal(nix::sys::signal::Signal::SIGHUP);
    lbd.wait_for_log_after(cursor, "targets=web1=", Duration::from_secs(5))
        .unwrap();
    let bodies: Vec<String> = (0..4).map(|_| get_sized(&lan).0).collect();
    assert_alternating(&bodies);
    let m = scrape(&lan.main);
    let t1c = traffic(&m, WEB1);
    let t2c = traffic(&m, WEB2);
    assert_eq!((t1c.0, t2c.0), (5.0, 9.0), "{m}");
    assert!(t1c.1 > t1.1 && t1c.2 > t1.2, "{m}");
    assert_eq!(sample(&m, "lbd_apply_failures_total"), Some(0.0), "{m}");
    let st = lbd.stop_with(Duration::from_secs(5));
    assert!(st.success(), "{st}\n{}", lbd.stderr());
}
