//! A UDP service on the kernel data plane with real traffic: a small UDP responder on web1 and
//! web2 (port 5353, answers with its name), datagrams from the outside client to
//! 192.168.1.120:5353, each from a fresh source port (a new conntrack flow, as DNS clients do).
//! rr spreads them over both backends; the replies come back from the VIP (un-DNAT by
//! conntrack). The health check is TCP on the web port: when web1's httpd stops, web1 leaves the
//! UDP service too.

mod common;

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::*;
use e2e::{Host, SeedLan};

/// A UDP responder on `host`:5353 answering every datagram with `name`, until dropped.
struct Responder {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Responder {
    fn start(host: &Host, name: &'static str) -> Responder {
        let sock = host.enter(|| UdpSocket::bind("0.0.0.0:5353").expect("bind 5353"));
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while !s.load(Ordering::Relaxed) {
                if let Ok((_, from)) = sock.recv_from(&mut buf) {
                    let _ = sock.send_to(name.as_bytes(), from);
                }
            }
        });
        Responder {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One query from the outside client (fresh source port): the answer and where it came from.
fn query(lan: &SeedLan) -> Result<(String, std::net::SocketAddr), String> {
    lan.outside.enter(|| {
        let s = UdpSocket::bind("192.168.1.50:0").map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(2)))
            .map_err(|e| e.to_string())?;
        s.send_to(b"who", "192.168.1.120:5353")
            .map_err(|e| e.to_string())?;
        let mut buf = [0u8; 64];
        let (n, from) = s.recv_from(&mut buf).map_err(|e| e.to_string())?;
        Ok((String::from_utf8_lossy(&buf[..n]).into_owned(), from))
    })
}

const UDP_SERVICE: &str = r#"
[service.echo]
vip = "192.168.1.120"
port = 5353
protocol = "udp"
backends = ["web1", "web2"]
scheduler = "rr"
dns = false
byte-counters = true
check = { type = "tcp", port = 80, interval = "200ms", timeout = "150ms", rise = 2, fall = 2 }

"#;

#[test]
fn kernel_udp_service_balances_and_follows_health() {
    e2e::require_netns!("nft", "busybox", "curl");
    let lan = SeedLan::build("lbkudp");
    let mut httpd1 = Some(web(&lan.web1, "web1"));
    let _httpd2 = web(&lan.web2, "web2");
    let _r1 = Responder::start(&lan.web1, "web1");
    let _r2 = Responder::start(&lan.web2, "web2");
    let conf = host_file_with(&lan, |t| {
        let at = t
            .find("# ---------------------------------------------------------------- keys")
            .expect("keys section");
        format!("{}{UDP_SERVICE}{}", &t[..at], &t[at..])
    });
    let mut lbd = lbd(&lan, &conf);
    let table = lan.main.run(&["nft", "list", "table", "ip", "lbd"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("192.168.1.120 . udp . 5353"), "{table}");

    let answers: Vec<String> = (0..10)
        .map(|i| {
            let (name, from) = query(&lan).unwrap_or_else(|e| panic!("query {i}: {e}"));
            assert_eq!(
                from.to_string(),
                "192.168.1.120:5353",
                "reply not from the VIP"
            );
            name
        })
        .collect();
    println!("UDP answers: {answers:?}");
    assert_alternating(&answers);
    // Ten flows (one socket each): five per backend, counted in the kernel with their exact IP
    // bytes: "who" is 20 + 8 + 3 = 31 bytes, "webN" 20 + 8 + 4 = 32.
    let m = scrape(&lan.main);
    for b in ["192.168.10.10:5353", "192.168.10.11:5353"] {
        let l = format!("{{service=\"echo\",backend=\"{b}\"");
        assert_eq!(
            sample(&m, &format!("lbd_backend_connections_total{l}}}")),
            Some(5.0),
            "{m}"
        );
        assert_eq!(
            sample(
                &m,
                &format!("lbd_backend_bytes_total{l},direction=\"to_backend\"}}")
            ),
            Some(155.0),
            "{m}"
        );
        assert_eq!(
            sample(
                &m,
                &format!("lbd_backend_bytes_total{l},direction=\"from_backend\"}}")
            ),
            Some(160.0),
            "{m}"
        );
    }

    // web1's httpd stops: the TCP check fails, web1 leaves the UDP service too.
    let cursor = lbd.log_cursor();
    drop(httpd1.take());
    lbd.wait_for_log_after(
        cursor,
        "service=echo mode=Live targets=web2=192.168.10.11:5353",
        Duration::from_secs(5),
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", lbd.stderr()));
    let after: Vec<String> = (0..6).map(|_| query(&lan).unwrap().0).collect();
    assert!(after.iter().all(|a| a == "web2"), "{after:?}");
    let cursor = lbd.log_cursor();
    httpd1 = Some(web(&lan.web1, "web1"));
    lbd.wait_for_log_after(
        cursor,
        "service=echo mode=Live targets=web1=192.168.10.10:5353,web2=",
        Duration::from_secs(5),
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", lbd.stderr()));
    let back: Vec<String> = (0..6).map(|_| query(&lan).unwrap().0).collect();
    assert!(back.iter().any(|a| a == "web1"), "{back:?}");
    drop(httpd1);
}
