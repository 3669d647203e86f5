//! `lbd::serve` driven directly, without a command line: in a namespace of its own, a proxied
//! service in front of one backend carries a request; cancelling the token makes `serve` return
//! and take its VIP away.

use std::net::SocketAddrV4;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

const HOSTS: &str = r#"
domain = "example.com"
[[subnet]]
network = "10.77.0.0/24"
[host.web1]
ip = "10.77.0.10"
[service.www]
vip = "10.77.0.100"
port = 8080
backends = ["web1"]
dataplane = "proxy"
"#;

/// Connects to `addr` until it answers `request` with something, within `within`.
async fn ask(addr: SocketAddrV4, request: &[u8], within: Duration) -> Result<String, String> {
    let end = Instant::now() + within;
    let mut last = String::new();
    while Instant::now() < end {
        let attempt = async {
            let mut s = tokio::net::TcpStream::connect(addr).await?;
            s.write_all(request).await?;
            s.shutdown().await?;
            let mut got = String::new();
            s.read_to_string(&mut got).await?;
            Ok::<_, std::io::Error>(got)
        };
        match tokio::time::timeout(Duration::from_secs(2), attempt).await {
            Ok(Ok(got)) if !got.is_empty() => return Ok(got),
            Ok(Ok(_)) => last = "empty answer".into(),
            Ok(Err(e)) => last = e.to_string(),
            Err(_) => last = "timed out".into(),
        }
        // The listener or the VIP is not there yet: the next try waits for the next tick.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(last)
}

#[test]
fn serve_carries_a_request_and_returns_when_cancelled() {
    e2e::require_netns!();
    let lab = e2e::Lab::new("lbserve");
    let h = lab.host("lb");
    h.ip(&["link", "add", "d0", "type", "veth", "peer", "name", "d1"]);
    h.add_addr("d0", "10.77.0.1/24");
    h.add_addr("d0", "10.77.0.10/32");
    h.link_up("d1");
    h.link_up("d0");
    let table = hostfile::HostTable::from_toml(HOSTS).expect("host file");
    let view = Arc::new(lbd::view(&table));

    let (answer, returned, vip_after) = h.enter(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            // The backend: says who it is to whoever sends something (health checks connect
            // and close, and get nothing).
            let backend = tokio::net::TcpListener::bind("10.77.0.10:8080")
                .await
                .unwrap();
            tokio::spawn(async move {
                while let Ok((mut s, _)) = backend.accept().await {
                    tokio::spawn(async move {
                        let mut buf = [0u8; 64];
                        if let Ok(n) = s.read(&mut buf).await
                            && n > 0
                        {
                            let _ = s.write_all(b"web1 here\n").await;
                        }
                    });
                }
            });
            let (_tx, rx) = tokio::sync::watch::channel(view);
            let shutdown = CancellationToken::new();
            let daemon = tokio::spawn(lbd::serve(rx, shutdown.clone(), lbd::Setup::default()));
            let vip: SocketAddrV4 = "10.77.0.100:8080".parse().unwrap();
            let answer = ask(vip, b"hello\n", Duration::from_secs(10)).await;
            shutdown.cancel();
            let returned = tokio::time::timeout(Duration::from_secs(10), daemon).await;
            let vip_after = runtime::netif::local_ipv4()
                .unwrap()
                .iter()
                .any(|a| a.addr == *vip.ip());
            (answer, returned, vip_after)
        })
    });
    assert_eq!(answer.as_deref(), Ok("web1 here\n"));
    match returned {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => panic!("serve failed: {e:#}"),
        Ok(Err(e)) => panic!("serve panicked: {e}"),
        Err(_) => panic!("serve did not return within 10 s of the cancel"),
    }
    assert!(!vip_after, "the VIP outlived serve");
}
