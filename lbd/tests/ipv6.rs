//! IPv6 services on the seed LAN with IPv6 addresses beside the IPv4 ones (fd00:1::/64 outside,
//! fd00:10::/64 inside, DAD off on every test link): `curl -6` through the VIP fd00:1::120 is
//! balanced over web1 and web2 (busybox httpd) in the kernel plane (`ip6 lbd` table) and in the
//! proxy; a stopped backend is taken out within its fall count; the dual-stack www3 answers on
//! its IPv4 VIP too; a clean exit leaves neither VIP nor table. A UDP service on an IPv6 VIP is
//! spread over both backends' IPv6 addresses, its replies coming back from the VIP. A reload to
//! IPv4 only drops the IPv6 VIP and table; one back to dual-stack restores them.

mod common;

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;
use e2e::{Host, SeedLan};

const VIP6: &str = "fd00:1::120";

/// IPv6 on the seed LAN: main fd00:1::2 (br0) and fd00:10::1 (p10p1), forwarding on; outside
/// fd00:1::50, web1 fd00:10::10, web2 fd00:10::11, default routes via main.
fn add_ipv6(lan: &SeedLan) {
    let links = [
        (&lan.main, "br0", "fd00:1::2/64"),
        (&lan.main, "p10p1", "fd00:10::1/64"),
        (&lan.outside, "eth0", "fd00:1::50/64"),
        (&lan.web1, "eth0", "fd00:10::10/64"),
        (&lan.web2, "eth0", "fd00:10::11/64"),
    ];
    for (h, ifc, addr) in links {
        h.sysctl(&format!("net.ipv6.conf.{ifc}.accept_dad"), "0");
        h.ip(&["-6", "addr", "add", addr, "dev", ifc, "nodad"]);
    }
    lan.main.sysctl("net.ipv6.conf.all.forwarding", "1");
    lan.outside
        .ip(&["-6", "route", "add", "default", "via", "fd00:1::2"]);
    for h in [&lan.web1, &lan.web2] {
        h.ip(&["-6", "route", "add", "default", "via", "fd00:10::1"]);
    }
}

/// The example host file with IPv6 subnets, web1/web2's IPv6 addresses and www3 dual-stack
/// (`extra` after its scheduler line; `more` sections at the end).
fn host_file6(lan: &SeedLan, extra: &str, more: &str) -> std::path::PathBuf {
    host_file_with(lan, |t| {
        let t = t
            .replace(
                "vip = \"192.168.1.120\"",
                &format!("vip = [\"192.168.1.120\", \"{VIP6}\"]"),
            )
            .replace(
                "scheduler = \"rr\"",
                &format!("scheduler = \"rr\"\n{extra}"),
            )
            .replace(
                "ip = \"192.168.10.10\"\n",
                "ip = \"192.168.10.10\"\nipv6 = \"fd00:10::10\"\n",
            )
            .replace(
                "ip = \"192.168.10.11\"\n",
                "ip = \"192.168.10.11\"\nipv6 = \"fd00:10::11\"\n",
            );
        format!(
            "{t}\n[[subnet]]\nname = \"outer6\"\nnetwork = \"fd00:1::/64\"\nra = false\n\n[[subnet]]\nname = \"inner6\"\nnetwork = \"fd00:10::/64\"\nra = false\n{more}"
        )
    })
}

/// One request from outside to `http://[VIP6]/`: the body, or the failure.
fn get6(lan: &SeedLan) -> Result<String, String> {
    let url = format!("http://[{VIP6}]/");
    let out = lan
        .outside
        .run_timeout(
            &["curl", "-6", "-sS", "--max-time", "2", &url],
            None,
            Duration::from_secs(5),
        )
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

fn gets6(lan: &SeedLan, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| get6(lan).unwrap_or_else(|e| panic!("IPv6 request {i} failed: {e}")))
        .collect()
}

fn br0_addrs6(lan: &SeedLan) -> String {
    let out = lan.main.ip(&["-6", "addr", "show", "dev", "br0"]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Balanced over both, web1 stopped and taken out within its fall count, the IPv4 VIP of the
/// dual-stack service answering throughout; then a clean exit.
fn scenario(lan: &SeedLan, lbd: &mut e2e::Proc, web1: e2e::Proc) {
    assert!(
        br0_addrs6(lan).contains(&format!("{VIP6}/64")),
        "{}",
        br0_addrs6(lan)
    );
    let first = gets6(lan, 6);
    assert_alternating(&first);
    // The same service on its IPv4 VIP.
    assert_alternating(&gets(lan, 4));

    let cursor = lbd.log_cursor();
    let t0 = Instant::now();
    drop(web1);
    let bound = INTERVAL * (FALL + 1) + Duration::from_millis(150) + Duration::from_millis(500);
    // web1 is checked on both its addresses; the IPv6 one was up (the requests above reached
    // it), so its next line is the "down".
    let line = lbd
        .wait_for_log_after(cursor, "backend=[fd00:10::10]:80", bound)
        .unwrap_or_else(|e| panic!("web1 (IPv6) not taken out: {e}"));
    assert!(line.contains("backend down"), "{line}");
    println!("web1 taken out {:?} after its server stopped", t0.elapsed());
    // The state line comes once the data plane carries it.
    lbd.wait_for_log_after(
        cursor,
        "mode=Live targets=web2=[fd00:10::11]:80",
        Duration::from_secs(2),
    )
    .unwrap();
    let after = gets6(lan, 8);
    assert!(after.iter().all(|b| b == "web2"), "{after:?}");

    let st = lbd.stop_with(Duration::from_secs(5));
    assert!(st.success(), "{st}\n{}", lbd.stderr());
    assert!(
        !br0_addrs6(lan).contains(VIP6),
        "stale IPv6 VIP: {}",
        br0_addrs6(lan)
    );
    let tables = lan.main.run(&["nft", "list", "tables"]);
    assert!(
        !String::from_utf8_lossy(&tables.stdout).contains("lbd"),
        "stale table"
    );
}

#[test]
fn ipv6_kernel_plane_balances_fails_over_and_serves_dual_stack() {
    e2e::require_netns!("nft", "curl", "busybox");
    let lan = SeedLan::build("lb6k");
    add_ipv6(&lan);
    let web1 = web(&lan.web1, "web1");
    let _web2 = web(&lan.web2, "web2");
    let conf = host_file6(&lan, "", "");
    let mut lbd = lbd(&lan, &conf);
    let table = lan.main.run(&["nft", "list", "table", "ip6", "lbd"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("dnat to numgen inc mod 2 map { 0 : fd00:10::10, 1 : fd00:10::11 }"),
        "{table}"
    );
    assert!(
        table.contains(&format!("{VIP6} . tcp . 80 : goto svc1")),
        "{table}"
    );
    scenario(&lan, &mut lbd, web1);
}

#[test]
fn ipv6_proxy_plane_balances_fails_over_and_serves_dual_stack() {
    e2e::require_netns!("curl", "busybox");
    let lan = SeedLan::build("lb6p");
    add_ipv6(&lan);
    let web1 = web(&lan.web1, "web1");
    let _web2 = web(&lan.web2, "web2");
    let conf = host_file6(&lan, "dataplane = \"proxy\"", "");
    let mut lbd = lbd(&lan, &conf);
    scenario(&lan, &mut lbd, web1);
}

/// A UDP responder on `host`, [::]:5353, answering every datagram with `name`, until dropped.
struct Responder {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Responder {
    fn start(host: &Host, name: &'static str) -> Responder {
        let sock = host.enter(|| UdpSocket::bind("[::]:5353").expect("bind [::]:5353"));
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

const UDP6_SERVICE: &str = r#"
[service.echo6]
vip = "fd00:1::121"
port = 5353
protocol = "udp"
backends = ["web1", "web2"]
scheduler = "rr"
dns = false
check = { type = "tcp", port = 80, interval = "200ms", timeout = "150ms", rise = 2, fall = 2 }
"#;

#[test]
fn ipv6_udp_service_in_the_kernel_plane() {
    e2e::require_netns!("nft", "curl", "busybox");
    let lan = SeedLan::build("lb6u");
    add_ipv6(&lan);
    let _web1 = web(&lan.web1, "web1");
    let _web2 = web(&lan.web2, "web2");
    let _r1 = Responder::start(&lan.web1, "web1");
    let _r2 = Responder::start(&lan.web2, "web2");
    let conf = host_file6(&lan, "", UDP6_SERVICE);
    let _lbd = lbd(&lan, &conf);
    let vip: std::net::SocketAddr = "[fd00:1::121]:5353".parse().unwrap();
    let mut seen = Vec::new();
    for i in 0..8 {
        // A fresh source port each time: a new conntrack flow, as DNS clients do.
        let (name, from) = lan
            .outside
            .enter(|| {
                let s = UdpSocket::bind("[fd00:1::50]:0").map_err(|e| e.to_string())?;
                s.set_read_timeout(Some(Duration::from_secs(2)))
                    .map_err(|e| e.to_string())?;
                s.send_to(b"who", vip).map_err(|e| e.to_string())?;
                let mut buf = [0u8; 64];
                let (n, from) = s.recv_from(&mut buf).map_err(|e| e.to_string())?;
                Ok::<_, String>((String::from_utf8_lossy(&buf[..n]).into_owned(), from))
            })
            .unwrap_or_else(|e| panic!("query {i}: {e}"));
        assert_eq!(from, vip, "the reply comes back from the VIP");
        seen.push(name);
    }
    assert_alternating(&seen);
}

#[test]
fn a_reload_drops_and_brings_back_the_ipv6_vip_and_table() {
    e2e::require_netns!("nft", "curl", "busybox");
    let lan = SeedLan::build("lb6r");
    add_ipv6(&lan);
    let _web1 = web(&lan.web1, "web1");
    let _web2 = web(&lan.web2, "web2");
    let conf = host_file6(&lan, "", "");
    let mut lbd = lbd(&lan, &conf);
    assert_alternating(&gets6(&lan, 4));
    let dual = std::fs::read_to_string(&conf).unwrap();
    let v4_only = dual.replace(
        &format!("vip = [\"192.168.1.120\", \"{VIP6}\"]"),
        "vip = \"192.168.1.120\"",
    );
    assert_ne!(dual, v4_only);

    // IPv4 only: the IPv6 VIP leaves the interface and the ip6 table goes; IPv4 keeps serving.
    let cursor = lbd.log_cursor();
    std::fs::write(&conf, &v4_only).unwrap();
    lbd.signal(nix::sys::signal::Signal::SIGHUP);
    let line = lbd
        .wait_for_log_after(cursor, &format!("vip={VIP6}"), Duration::from_secs(5))
        .unwrap();
    assert!(line.contains("VIP removed"), "{line}");
    assert!(!br0_addrs6(&lan).contains(VIP6), "{}", br0_addrs6(&lan));
    let tables = lan.main.run(&["nft", "list", "tables"]);
    let tables = String::from_utf8_lossy(&tables.stdout);
    assert!(
        tables.contains("table ip lbd") && !tables.contains("table ip6 lbd"),
        "{tables}"
    );
    assert_alternating(&gets(&lan, 4));
    assert!(get6(&lan).is_err());

    // Dual-stack again: both come back.
    let cursor = lbd.log_cursor();
    std::fs::write(&conf, &dual).unwrap();
    lbd.signal(nix::sys::signal::Signal::SIGHUP);
    let line = lbd
        .wait_for_log_after(cursor, &format!("vip={VIP6}"), Duration::from_secs(5))
        .unwrap();
    assert!(line.contains("VIP added"), "{line}");
    // The IPv6 addresses' checks start afresh: wait for the applied state with both backends
    // (logged once the table holds them).
    lbd.wait_for_log_after(
        cursor,
        "mode=Live targets=web1=[fd00:10::10]:80,web2=[fd00:10::11]:80",
        Duration::from_secs(5),
    )
    .unwrap();
    assert_alternating(&gets6(&lan, 4));
}
