use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use hostfile::Dataplane;
use tokio::net::{TcpListener, TcpStream};

use super::conn::*;
use super::pick::*;
use super::pump::*;
use super::*;
use crate::desired::{Mode, Target};
use hostfile::{Protocol, Scheduler};
use std::time::Instant;

/// An IPv4 socket address.
fn sa(ip: Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(ip, port))
}

fn no_stats(_: SocketAddr) -> BackendStats {
    BackendStats::default()
}

fn plan(s: Scheduler, weights: &[u32]) -> ServicePlan {
    ServicePlan {
        index: 0,
        name: "t".into(),
        vip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port: 1,
        protocol: Protocol::Tcp,
        scheduler: s,
        dataplane: Dataplane::Proxy,
        byte_counters: false,
        persistence: None,
        mode: Mode::Live,
        targets: weights
            .iter()
            .enumerate()
            .map(|(i, w)| Target {
                name: format!("b{i}"),
                addr: sa(Ipv4Addr::new(10, 0, 0, i as u8), 80),
                weight: *w,
            })
            .collect(),
        pool: Vec::new(),
        counted: Vec::new(),
    }
}

#[test]
fn rr_and_wrr() {
    let p = Picker::new(plan(Scheduler::Rr, &[1, 5]), no_stats);
    let none = |_| 0;
    let v: Vec<usize> = (0..4)
        .map(|c| p.pick(IpAddr::V4(Ipv4Addr::LOCALHOST), c, &none).unwrap())
        .collect();
    assert_eq!(v, vec![0, 1, 0, 1]);
    let p = Picker::new(plan(Scheduler::Wrr, &[2, 1]), no_stats);
    let v: Vec<usize> = (0..6)
        .map(|c| p.pick(IpAddr::V4(Ipv4Addr::LOCALHOST), c, &none).unwrap())
        .collect();
    assert_eq!(v.iter().filter(|x| **x == 0).count(), 4);
}

#[test]
fn lc_prefers_the_least_loaded_per_weight() {
    let p = Picker::new(plan(Scheduler::Lc, &[1, 1, 2]), no_stats);
    let load = |i: usize| match i {
        0 => 3,
        1 => 1,
        _ => 4,
    };
    // (3+1)/1=4, (1+1)/1=2, (4+1)/2=2.5 -> backend 1.
    assert_eq!(p.pick(IpAddr::V4(Ipv4Addr::LOCALHOST), 0, &load), Some(1));
}

#[test]
fn sh_is_sticky_per_source() {
    let p = Picker::new(plan(Scheduler::Sh, &[1, 1]), no_stats);
    let none = |_| 0;
    let a = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 50));
    let first = p.pick(a, 0, &none);
    for c in 1..10 {
        assert_eq!(p.pick(a, c, &none), first);
    }
}

#[test]
fn sh_moves_only_the_sources_of_a_backend_that_leaves() {
    let mut full = plan(Scheduler::Sh, &[1, 2, 1]);
    full.pool = full.targets.clone();
    let all = Picker::new(full.clone(), no_stats);
    let none = |_| 0;
    let srcs: Vec<IpAddr> = (0..3000u32)
        .map(|i| IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i * 7919)))
        .collect();
    let at = |p: &Picker, s: IpAddr| p.plan.targets[p.pick(s, 0, &none).unwrap()].addr;
    for gone in 0..3 {
        let mut p = full.clone();
        p.targets.remove(gone);
        let less = Picker::new(p, no_stats);
        let gone_addr = full.targets[gone].addr;
        let mut spread = std::collections::HashSet::new();
        for &s in &srcs {
            let (before, after) = (at(&all, s), at(&less, s));
            if before == gone_addr {
                spread.insert(after);
            } else {
                assert_eq!(before, after, "{s} moved though {before} stayed");
            }
        }
        // The leaving backend's sources are shared by both that remain.
        assert_eq!(spread.len(), 2, "backend {gone}");
    }
}

#[test]
fn proxy_env_knobs() {
    assert_eq!(threads_from(None, 2), (2, None));
    assert_eq!(threads_from(Some("1"), 2), (1, None));
    assert_eq!(threads_from(Some("256"), 2), (256, None));
    for bad in ["0", "257", "four", ""] {
        let (n, w) = threads_from(Some(bad), 2);
        assert_eq!(n, 2, "{bad}");
        assert!(w.unwrap().contains("LBD_PROXY_THREADS"), "{bad}");
    }
    assert_eq!(splice_from(None), (true, None));
    assert_eq!(splice_from(Some("1")), (true, None));
    assert_eq!(splice_from(Some("0")), (false, None));
    let (on, w) = splice_from(Some("off"));
    assert!(on);
    assert!(w.unwrap().contains("LBD_PROXY_SPLICE=\"off\""));
}

#[test]
fn persistence_times_out_from_the_last_use() {
    let t = Duration::from_secs(2);
    let (src, other) = (
        IpAddr::V4(Ipv4Addr::new(192, 168, 1, 50)),
        IpAddr::V4(Ipv4Addr::new(192, 168, 1, 51)),
    );
    let b = sa(Ipv4Addr::new(10, 0, 0, 1), 80);
    let live = |a: SocketAddr| (a == b).then_some(1);
    let t0 = Instant::now();
    let mut aff = HashMap::from([(src, (b, t0))]);
    assert_eq!(sticky(&mut aff, other, t0, t, live), None, "no entry");
    // Uses every 1.5 s keep the client on its backend for 6 s, three times the timeout.
    for k in 1..=4u32 {
        let now = t0 + Duration::from_millis(1500) * k;
        assert_eq!(sticky(&mut aff, src, now, t, live), Some(1), "use {k}");
        assert_eq!(aff[&src].1, now, "refreshed at use {k}");
    }
    let last = t0 + Duration::from_secs(6);
    // A silence of the timeout from the last use ends it (and does not refresh it).
    assert_eq!(sticky(&mut aff, src, last + t, t, live), None);
    assert_eq!(aff[&src].1, last);
    // An entry naming a backend that left is not used, nor refreshed.
    let gone = |_: SocketAddr| None;
    assert_eq!(sticky(&mut aff, src, last + t / 2, t, gone), None);
    assert_eq!(aff[&src].1, last);
}

#[tokio::test]
async fn idle_connections_are_closed() {
    use tokio::io::AsyncReadExt;
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap();
    let c1 = TcpStream::connect(a).await.unwrap();
    let (s1, _) = l.accept().await.unwrap();
    let mut c2 = TcpStream::connect(a).await.unwrap();
    let (s2, _) = l.accept().await.unwrap();
    let t = tokio::spawn(async move {
        let mut b = PooledBuffers::take();
        let (b1, b2) = b.0.as_mut().unwrap().split_at_mut(BUF);
        splice_idle(
            s1,
            s2,
            (b1, b2),
            Duration::from_millis(200),
            &BackendStats::default(),
            true,
        )
        .await;
    });
    tokio::time::timeout(Duration::from_secs(5), t)
        .await
        .unwrap()
        .unwrap();
    // Both sides were closed: the peers read EOF.
    let mut b = [0u8; 1];
    assert_eq!(c2.read(&mut b).await.unwrap(), 0);
    drop(c1);
}

#[tokio::test]
async fn a_connection_in_use_outlives_the_idle_time() {
    // idle 200 ms: bytes every 60 ms for 600 ms keep it open; then it is closed.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let baddr = echo_backend(1).await;
    let front = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let faddr = front.local_addr().unwrap();
    let carried = tokio::spawn(async move {
        let (c, _) = front.accept().await.unwrap();
        let u = connect(baddr).await.unwrap();
        let mut b = PooledBuffers::take();
        let (b1, b2) = b.0.as_mut().unwrap().split_at_mut(BUF);
        let idle = Duration::from_millis(200);
        splice_idle(c, u, (b1, b2), idle, &BackendStats::default(), true).await;
    });
    let mut c = TcpStream::connect(faddr).await.unwrap();
    let mut b = [0u8; 1];
    for i in 0..10u8 {
        tokio::time::sleep(Duration::from_millis(60)).await;
        c.write_all(&[i]).await.unwrap();
        c.read_exact(&mut b).await.unwrap();
        assert_eq!(
            b[0],
            i,
            "still carried after {} ms",
            60 * (u32::from(i) + 1)
        );
    }
    tokio::time::timeout(Duration::from_secs(5), carried)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.read(&mut b).await.unwrap(), 0, "closed once idle");
}

#[tokio::test]
async fn proxies_to_a_local_backend_and_counts() {
    let backend = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let baddr = backend.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = backend.accept().await.unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut b = [0u8; 5];
        s.read_exact(&mut b).await.unwrap();
        s.write_all(&b).await.unwrap();
    });
    // Pick a free port for the front.
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let front = probe.local_addr().unwrap().port();
    drop(probe);
    let mut p = plan(Scheduler::Lc, &[1]);
    p.port = front;
    p.targets[0].addr = baddr;
    let d = Desired {
        vips: vec![],
        vips6: vec![],
        services: vec![p],
    };
    let mut proxies = Proxies::default();
    proxies.apply(&d).unwrap();
    let mut c = TcpStream::connect(("127.0.0.1", front)).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    c.write_all(b"hello").await.unwrap();
    let mut b = [0u8; 5];
    c.read_exact(&mut b).await.unwrap();
    assert_eq!(&b, b"hello");
    assert_eq!(proxies.active(baddr), 1);
    proxies.stop_all();
}

/// An echo server on loopback that answers every byte it reads, for `conns` connections.
async fn echo_backend(conns: usize) -> SocketAddr {
    let backend = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let baddr = backend.local_addr().unwrap();
    tokio::spawn(async move {
        for _ in 0..conns {
            let (mut s, _) = backend.accept().await.unwrap();
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    baddr
}

/// Sends `len` patterned bytes through a carried connection and reads them back; both
/// byte counters see every byte. 1 MiB takes the splice(2) path (reads fill the buffer),
/// 100 bytes the buffered one.
async fn round_trip(len: usize, splice: bool) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let baddr = echo_backend(1).await;
    let front = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let faddr = front.local_addr().unwrap();
    let stats = BackendStats::default();
    let st = stats.clone();
    let carried = tokio::spawn(async move {
        let (c, _) = front.accept().await.unwrap();
        let u = connect(baddr).await.unwrap();
        let mut b = PooledBuffers::take();
        let (b1, b2) = b.0.as_mut().unwrap().split_at_mut(BUF);
        splice_idle(c, u, (b1, b2), Duration::from_secs(10), &st, splice).await;
    });
    let mut c = TcpStream::connect(faddr).await.unwrap();
    let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let (mut r, mut w) = c.split();
    let send = async {
        w.write_all(&data).await.unwrap();
        w.shutdown().await.unwrap();
    };
    let mut back = Vec::new();
    let recv = async {
        r.read_to_end(&mut back).await.unwrap();
    };
    tokio::time::timeout(Duration::from_secs(10), async { tokio::join!(send, recv) })
        .await
        .unwrap();
    assert_eq!(back.len(), len);
    assert!(back == data, "bytes changed on the way");
    tokio::time::timeout(Duration::from_secs(5), carried)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stats.to_backend.get(), len as u64);
    assert_eq!(stats.from_backend.get(), len as u64);
}

#[tokio::test]
async fn large_transfers_are_spliced_intact() {
    round_trip(1 << 20, true).await;
    round_trip(3 * BUF + 17, true).await;
}

#[tokio::test]
async fn small_and_unspliced_transfers_are_intact() {
    round_trip(100, true).await;
    round_trip(1 << 20, false).await;
}

#[test]
fn buffers_are_reused_per_thread() {
    let first = {
        let b = PooledBuffers::take();
        b.0.as_ref().unwrap().as_ptr()
    };
    let again = PooledBuffers::take();
    assert_eq!(again.0.as_ref().unwrap().as_ptr(), first);
}

#[tokio::test]
async fn every_proxy_thread_accepts() {
    // Three listeners share the port (SO_REUSEPORT), one per thread; the kernel spreads
    // connections over them by source port and every one is carried and counted.
    let n = 40;
    let baddr = echo_backend(n).await;
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let front = probe.local_addr().unwrap().port();
    drop(probe);
    let mut p = plan(Scheduler::Rr, &[1]);
    p.port = front;
    p.targets[0].addr = baddr;
    let d = Desired {
        vips: vec![],
        vips6: vec![],
        services: vec![p],
    };
    let mut proxies = Proxies {
        workers: Some(Workers::start(3).unwrap()),
        ..Proxies::default()
    };
    proxies.apply(&d).unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut open = Vec::new();
    for i in 0..n {
        let mut c = TcpStream::connect(("127.0.0.1", front)).await.unwrap();
        c.write_all(&[i as u8]).await.unwrap();
        let mut b = [0u8; 1];
        c.read_exact(&mut b).await.unwrap();
        assert_eq!(b[0], i as u8);
        open.push(c);
    }
    assert_eq!(proxies.active(baddr), n as u64);
    proxies.stop_all();
}

/// A proxy on a free loopback port over `targets` (rr), and that port.
fn front(targets: &[SocketAddr]) -> (Proxies, u16) {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let front = probe.local_addr().unwrap().port();
    drop(probe);
    let mut p = plan(Scheduler::Rr, &vec![1; targets.len()]);
    p.port = front;
    for (t, a) in p.targets.iter_mut().zip(targets) {
        t.addr = *a;
    }
    let d = Desired {
        vips: vec![],
        vips6: vec![],
        services: vec![p],
    };
    let mut proxies = Proxies::default();
    proxies.apply(&d).unwrap();
    (proxies, front)
}

/// A loopback address nothing listens on (connects are refused).
fn refused() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

#[tokio::test]
async fn a_refused_backend_is_skipped_with_the_bytes_already_read() {
    // rr starts at the refusing backend: the client's first bytes, read while that
    // connect was failing, reach the second backend intact, and only it is counted.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dead = refused();
    let live = echo_backend(1).await;
    let (proxies, port) = front(&[dead, live]);
    let mut c = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    c.write_all(b"first bytes").await.unwrap();
    let mut b = [0u8; 11];
    tokio::time::timeout(Duration::from_secs(5), c.read_exact(&mut b))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&b, b"first bytes");
    assert_eq!(proxies.active(live), 1);
    assert_eq!(proxies.active(dead), 0);
    let mut p = proxies;
    p.stop_all();
}

#[tokio::test]
async fn a_failed_connect_keeps_the_client_bytes_it_read() {
    use tokio::io::AsyncWriteExt;
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
    let (mut s, _) = l.accept().await.unwrap();
    c.write_all(b"request").await.unwrap();
    // Let the reactor see the client readable first.
    s.readable().await.unwrap();
    let mut buf = [0u8; 64];
    let mut held = 0;
    let up = start_connect(refused()).unwrap();
    match established(&up, &mut s, &mut buf, &mut held).await {
        Err(OpenError::Backend(e)) => {
            assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused)
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(&buf[..held], b"request", "held for the next backend");
    // The next backend gets the held bytes without another read.
    let live = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = live.local_addr().unwrap();
    let up = start_connect(a).unwrap();
    let (mut b, _) = live.accept().await.unwrap();
    assert_eq!(
        established(&up, &mut s, &mut buf, &mut held).await.unwrap(),
        7
    );
    let mut got = [0u8; 7];
    tokio::io::AsyncReadExt::read_exact(&mut b, &mut got)
        .await
        .unwrap();
    assert_eq!(&got, b"request");
}

#[tokio::test]
async fn fin_seen_only_after_the_peer_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
    let (mut s, _) = l.accept().await.unwrap();
    c.write_all(b"data").await.unwrap();
    let mut b = [0u8; 16];
    assert_eq!(s.read(&mut b).await.unwrap(), 4);
    assert!(!fin_seen(&s), "the peer is still open");
    c.shutdown().await.unwrap();
    s.readable().await.unwrap();
    assert!(fin_seen(&s));
    assert_eq!(s.read(&mut b).await.unwrap(), 0);
}

#[tokio::test]
async fn responses_followed_by_the_backend_closing_arrive_whole() {
    // The backend answers and closes at once (HTTP with `Connection: close`): the answer
    // and the FIN reach the proxy together, which passes them on as one (MSG_MORE then
    // FIN); the client gets every byte and then EOF, 40 times over.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let n = 40;
    let backend = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let baddr = backend.local_addr().unwrap();
    let answer: Vec<u8> = (0..300u32).map(|i| (i % 251) as u8).collect();
    let a = answer.clone();
    tokio::spawn(async move {
        for _ in 0..n {
            let (mut s, _) = backend.accept().await.unwrap();
            let mut req = [0u8; 4];
            s.read_exact(&mut req).await.unwrap();
            s.write_all(&a).await.unwrap();
            // Dropped: close(2) right after the answer.
        }
    });
    let (mut proxies, port) = front(&[baddr]);
    for i in 0..n {
        let mut c = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        c.write_all(b"GET ").await.unwrap();
        let mut got = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut got))
            .await
            .unwrap()
            .unwrap();
        assert!(got == answer, "connection {i}: {} bytes", got.len());
    }
    proxies.stop_all();
}

#[tokio::test]
async fn a_backend_that_speaks_first_is_carried() {
    // The client sends nothing until the backend greets it (SMTP, MySQL): the connect's
    // outcome comes from SO_ERROR, and the greeting, the answer and both half-closes
    // go through.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let backend = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let baddr = backend.local_addr().unwrap();
    let served = tokio::spawn(async move {
        let (mut s, _) = backend.accept().await.unwrap();
        s.write_all(b"220 hello\r\n").await.unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.unwrap();
        s.write_all(b"221 bye\r\n").await.unwrap();
        got
    });
    let (mut proxies, port) = front(&[baddr]);
    let mut c = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut greet = [0u8; 11];
    tokio::time::timeout(Duration::from_secs(5), c.read_exact(&mut greet))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&greet, b"220 hello\r\n");
    c.write_all(b"QUIT\r\n").await.unwrap();
    c.shutdown().await.unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rest, b"221 bye\r\n");
    assert_eq!(served.await.unwrap(), b"QUIT\r\n");
    proxies.stop_all();
}

#[tokio::test]
async fn no_backend_answers_the_client_is_reset() {
    use tokio::io::AsyncReadExt;
    let (mut proxies, port) = front(&[refused(), refused()]);
    let mut c = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut b = [0u8; 1];
    let r = tokio::time::timeout(Duration::from_secs(5), c.read(&mut b))
        .await
        .unwrap();
    assert_eq!(
        r.unwrap_err().kind(),
        std::io::ErrorKind::ConnectionReset,
        "a reset, not a clean close"
    );
    proxies.stop_all();
}

#[tokio::test]
async fn a_port_already_served_is_an_error_not_shared() {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let front = probe.local_addr().unwrap().port();
    drop(probe);
    let mut p = plan(Scheduler::Rr, &[1]);
    p.port = front;
    let d = Desired {
        vips: vec![],
        vips6: vec![],
        services: vec![p],
    };
    let mut first = Proxies::default();
    first.apply(&d).unwrap();
    let mut second = Proxies::default();
    let e = second.apply(&d).unwrap_err().to_string();
    assert!(e.contains(&format!("127.0.0.1:{front}")), "{e}");
    assert!(e.to_lowercase().contains("in use"), "{e}");
    // Something else (not lbd) on the port: the same.
    first.stop_all();
    drop(first);
    let other = std::net::TcpListener::bind(("127.0.0.1", front)).unwrap();
    assert!(Proxies::default().apply(&d).is_err());
    drop(other);
}

#[tokio::test]
async fn ipv6_vip_and_ipv6_backend() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let backend = TcpListener::bind("[::1]:0").await.unwrap();
    let baddr = backend.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, peer) = backend.accept().await.unwrap();
        assert!(peer.is_ipv6(), "{peer}");
        let (mut r, mut w) = s.split();
        let _ = tokio::io::copy(&mut r, &mut w).await;
    });
    let probe = std::net::TcpListener::bind("[::1]:0").unwrap();
    let front = probe.local_addr().unwrap().port();
    drop(probe);
    let mut p = plan(Scheduler::Rr, &[1]);
    p.vip = IpAddr::V6(std::net::Ipv6Addr::LOCALHOST);
    p.port = front;
    p.targets[0].addr = baddr;
    let d = Desired {
        vips: vec![],
        vips6: vec![],
        services: vec![p],
    };
    let mut proxies = Proxies::default();
    proxies.apply(&d).unwrap();
    let mut c = TcpStream::connect(("::1", front)).await.unwrap();
    c.write_all(b"over six").await.unwrap();
    let mut b = [0u8; 8];
    c.read_exact(&mut b).await.unwrap();
    assert_eq!(&b, b"over six");
    assert_eq!(proxies.active(baddr), 1);
    proxies.stop_all();
}

#[tokio::test]
async fn the_handshake_ack_waits_for_bytes_or_is_pushed() {
    // start_connect holds back the handshake's last ACK (TCP_DEFER_ACCEPT on the connecting
    // socket), so the backend has no connection to accept yet; push_ack sends it, for a
    // client with nothing to send (a backend that speaks first).
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let up = start_connect(l.local_addr().unwrap()).unwrap();
    up.writable().await.unwrap();
    assert_eq!(up.take_error().unwrap().map(|e| e.kind()), None);
    let held = l.accept().map(|_| ());
    assert_eq!(
        held.unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock,
        "ACK not held back"
    );
    push_ack(&up);
    // Over loopback the ACK is delivered within the call; allow 100 ms, half the kernel's
    // own 200 ms fallback.
    let t0 = Instant::now();
    loop {
        match l.accept() {
            Ok(_) => break,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(t0.elapsed() < Duration::from_millis(100), "ACK not pushed");
                std::thread::yield_now();
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}
