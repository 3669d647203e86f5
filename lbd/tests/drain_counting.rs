//! Kernel data plane: the established flows of a drained backend (`weight = 0` by reload) and of
//! the sorry server (after the service went live again) keep being counted, in connections and
//! bytes, while new connections go elsewhere.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;
use e2e::{Host, SeedLan};

const WEB1: &str = "{service=\"www3\",backend=\"192.168.10.10:80\"}";
const WEB2: &str = "{service=\"www3\",backend=\"192.168.10.11:80\"}";
const SORRY: &str = "{service=\"www3\",backend=\"192.168.10.11:8080\"}";
const CHUNK: usize = 16 * 1024;

/// A TCP server on `port` in a host: an HTTP `GET` (the health check) gets a 200 (a 500 once
/// `healthy` is cleared) and the connection is closed; any other connection is echoed back until
/// the client closes it.
struct Echo {
    stop: Arc<AtomicBool>,
    healthy: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Echo {
    fn start(host: &Host, port: u16) -> Echo {
        let l = host.enter(|| TcpListener::bind(("0.0.0.0", port)).unwrap());
        l.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let healthy = Arc::new(AtomicBool::new(true));
        let (s, h) = (stop.clone(), healthy.clone());
        let thread = std::thread::spawn(move || {
            let mut conns = Vec::new();
            while !s.load(Ordering::Relaxed) {
                let Ok((c, _)) = l.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let (s, h) = (s.clone(), h.clone());
                conns.push(std::thread::spawn(move || serve(c, &s, &h)));
            }
            for c in conns {
                let _ = c.join();
            }
        });
        Echo {
            stop,
            healthy,
            thread: Some(thread),
        }
    }
}

fn serve(mut c: TcpStream, stop: &AtomicBool, healthy: &AtomicBool) {
    let _ = c.set_nonblocking(false);
    let _ = c.set_read_timeout(Some(Duration::from_millis(100)));
    let mut buf = vec![0u8; CHUNK];
    let mut first = true;
    while !stop.load(Ordering::Relaxed) {
        match c.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if first && buf[..n].starts_with(b"GET ") {
                    let _ = c.write_all(if healthy.load(Ordering::Relaxed) {
                        b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    } else {
                        b"HTTP/1.0 500 No\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    });
                    return;
                }
                first = false;
                if c.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return,
        }
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Sends `chunks` x 16 KiB on `c` and reads each chunk back (so every byte has crossed the
/// balancer both ways, and been counted, when this returns). False if the peer is not an echo.
fn push(c: &mut TcpStream, chunks: usize) -> bool {
    let out: Vec<u8> = (0..CHUNK).map(|i| b'a' + (i % 26) as u8).collect();
    let mut back = vec![0u8; CHUNK];
    for _ in 0..chunks {
        if c.write_all(&out).is_err() || c.read_exact(&mut back).is_err() || back != out {
            return false;
        }
    }
    true
}

/// A held connection from the outside client to the VIP that reaches an echo server (rr: a
/// connection that reached web2's httpd is dropped and the next one goes to web1).
fn echo_flow(lan: &SeedLan) -> TcpStream {
    for _ in 0..4 {
        let mut c = lan.outside.enter(|| {
            TcpStream::connect_timeout(&"192.168.1.120:80".parse().unwrap(), Duration::from_secs(2))
                .unwrap()
        });
        c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        if push(&mut c, 1) {
            return c;
        }
    }
    panic!("no connection reached an echo server");
}

fn series(name: &str, labels: &str) -> String {
    format!("lbd_{name}{labels}")
}

/// (connections, bytes to, bytes from) of `backend` in a scrape.
fn traffic(m: &str, backend: &str) -> (f64, f64, f64) {
    let get = |s: String| sample(m, &s).unwrap_or_else(|| panic!("no {s}\n{m}"));
    let dir = |d: &str| format!("{},direction=\"{d}\"}}", &backend[..backend.len() - 1]);
    (
        get(series("backend_connections_total", backend)),
        get(series("backend_bytes_total", &dir("to_backend"))),
        get(series("backend_bytes_total", &dir("from_backend"))),
    )
}

/// Waits (bounded) until `lbd status` shows web1 and web2 both in use.
fn wait_both_in_use(lan: &SeedLan, conf: &std::path::Path) {
    let t0 = Instant::now();
    loop {
        let st = status(lan, conf);
        let b = &st["services"][0]["backends"];
        if b[0]["in_use"] == true && b[1]["in_use"] == true {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "not both in use: {st}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn drained_backend_and_sorry_server_flows_stay_counted() {
    e2e::require_netns!("nft", "curl", "busybox");
    let lan = SeedLan::build("lbdrain");
    let _e1 = Echo::start(&lan.web1, 80);
    let w2 = web(&lan.web2, "web2");
    let _sorry = Echo::start(&lan.web2, 8080);
    let conf = host_file(&lan, "sorry = \"192.168.10.11:8080\"");
    let mut lbd = lbd(&lan, &conf);
    wait_both_in_use(&lan, &conf);

    // A long-lived flow to web1, 1 + 3 chunks through it.
    let mut flow = echo_flow(&lan);
    assert!(push(&mut flow, 3));
    let m = scrape(&lan.main);
    let t1 = traffic(&m, WEB1);
    assert_eq!(t1.0, 1.0, "{m}");
    let pushed = (4 * CHUNK) as f64;
    assert!(t1.1 >= pushed && t1.2 >= pushed, "{t1:?}\n{m}");

    // web1 drained by a reload: out of the DNAT map, its counters stay in the kernel.
    let good = std::fs::read_to_string(&conf).unwrap();
    let drained = good.replace(
        "backends = [\"web1\", \"web2\"]",
        "backends = [{ host = \"web1\", weight = 0 }, \"web2\"]",
    );
    assert_ne!(good, drained);
    let cursor = lbd.log_cursor();
    std::fs::write(&conf, &drained).unwrap();
    lbd.signal(nix::sys::signal::Signal::SIGHUP);
    lbd.wait_for_log_after(cursor, "mode=Live targets=web2=", Duration::from_secs(5))
        .unwrap();
    let counters = lan
        .main
        .run(&["nft", "list", "counters", "table", "ip", "lbd"]);
    let counters = String::from_utf8_lossy(&counters.stdout);
    assert!(
        counters.contains("c_www3__192_168_10_10_80_to"),
        "{counters}"
    );

    // More bytes on the established flow: web1's counters grow by at least that much; new
    // connections go to web2 only.
    let m = scrape(&lan.main);
    let t2_before = traffic(&m, WEB2);
    assert!(push(&mut flow, 8), "the drained flow broke");
    let bodies = gets(&lan, 4);
    assert!(bodies.iter().all(|b| b == "web2"), "{bodies:?}");
    let m = scrape(&lan.main);
    println!("{m}");
    let t1b = traffic(&m, WEB1);
    let more = (8 * CHUNK) as f64;
    assert_eq!(t1b.0, t1.0, "no new connection to drained web1: {m}");
    assert!(
        t1b.1 - t1.1 >= more && t1b.2 - t1.2 >= more,
        "drained web1 not counted: {t1:?} -> {t1b:?}\n{m}"
    );
    assert_eq!(traffic(&m, WEB2).0, t2_before.0 + 4.0, "{m}");
    let st = status(&lan, &conf);
    let b = &st["services"][0]["backends"];
    assert_eq!(b[0]["in_use"], false, "{st}");
    assert_eq!(b[0]["bytes_to_backend"].as_f64(), Some(t1b.1), "{st}");

    // Quorum lost (web1 drained, web2 stops): the sorry server takes new connections, counted.
    let cursor = lbd.log_cursor();
    drop(w2);
    lbd.wait_for_log_after(cursor, "mode=Sorry", Duration::from_secs(5))
        .unwrap();
    let mut sorry_flow = echo_flow(&lan);
    assert!(push(&mut sorry_flow, 1));
    let m = scrape(&lan.main);
    let s1 = traffic(&m, SORRY);
    assert_eq!(s1.0, 1.0, "{m}");
    assert!(s1.1 >= (2 * CHUNK) as f64, "{s1:?}\n{m}");

    // web2 back: live again, the sorry server's flow goes on and is still counted.
    let cursor = lbd.log_cursor();
    let _w2 = web(&lan.web2, "web2");
    lbd.wait_for_log_after(cursor, "mode=Live targets=web2=", Duration::from_secs(5))
        .unwrap();
    assert!(push(&mut sorry_flow, 8), "the sorry flow broke");
    assert!(push(&mut flow, 1), "the drained flow broke");
    let m = scrape(&lan.main);
    let s2 = traffic(&m, SORRY);
    assert_eq!(s2.0, s1.0, "{m}");
    assert!(
        s2.1 - s1.1 >= more && s2.2 - s1.2 >= more,
        "sorry server not counted after going live: {s1:?} -> {s2:?}\n{m}"
    );
    assert_eq!(sample(&m, "lbd_apply_failures_total"), Some(0.0), "{m}");
    // `lbd status` shows the sorry server's traffic too.
    let st = status(&lan, &conf);
    let sorry = &st["services"][0]["sorry_server"];
    assert_eq!(sorry["in_use"], false, "{st}");
    assert_eq!(sorry["connections"], 1, "{st}");
    assert!(sorry["bytes_to_backend"].as_f64() >= Some(s2.1), "{st}");
    assert!(status_text(&lan, &conf).contains("192.168.10.11:8080 (sorry)"));
    drop(flow);
    drop(sorry_flow);
    let st = lbd.stop_with(Duration::from_secs(5));
    assert!(st.success(), "{st}\n{}", lbd.stderr());
}

#[test]
fn flow_to_a_backend_that_fails_its_checks_stays_counted() {
    e2e::require_netns!("nft", "curl", "busybox");
    let lan = SeedLan::build("lbdown");
    let e1 = Echo::start(&lan.web1, 80);
    let _w2 = web(&lan.web2, "web2");
    let conf = host_file(&lan, "");
    let mut lbd = lbd(&lan, &conf);
    wait_both_in_use(&lan, &conf);
    let mut flow = echo_flow(&lan);
    let m = scrape(&lan.main);
    let t1 = traffic(&m, WEB1);

    // web1 answers its checks with 500 while its established flow goes on (conntrack keeps it).
    let cursor = lbd.log_cursor();
    e1.healthy.store(false, Ordering::Relaxed);
    lbd.wait_for_log_after(cursor, "mode=Live targets=web2=", Duration::from_secs(5))
        .unwrap();
    assert!(push(&mut flow, 8), "the flow to the failed backend broke");
    let bodies = gets(&lan, 4);
    assert!(bodies.iter().all(|b| b == "web2"), "{bodies:?}");
    let m = scrape(&lan.main);
    let t1b = traffic(&m, WEB1);
    let more = (8 * CHUNK) as f64;
    assert_eq!(t1b.0, t1.0, "{m}");
    assert!(
        t1b.1 - t1.1 >= more && t1b.2 - t1.2 >= more,
        "failed web1 not counted: {t1:?} -> {t1b:?}\n{m}"
    );
    assert_eq!(sample(&m, &series("backend_up", WEB1)), Some(0.0), "{m}");
    drop(flow);
    let st = lbd.stop_with(Duration::from_secs(5));
    assert!(st.success(), "{st}\n{}", lbd.stderr());
}
