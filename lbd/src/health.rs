//! Health checks: TCP connect and HTTP GET per backend, each on its own interval, with the number
//! running at once bounded by a semaphore (`max-checks`). Results flow to the daemon loop, which
//! applies the rise/fall rule ([`Tracker`], pure) and reconciles when a state flips.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hostfile::{CheckKind, HealthCheck, LbView};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

/// Rise/fall bookkeeping for one backend.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tracker {
    /// Current state; `None` before the first result.
    pub up: Option<bool>,
    oks: u32,
    fails: u32,
    /// Last failure, for status.
    pub last_error: Option<String>,
}

impl Tracker {
    /// Records one result; returns the new state when it changed. The first result sets the
    /// state at once (no point serving nothing for `rise` intervals at start-up).
    pub fn record(&mut self, ok: bool, rise: u32, fall: u32) -> Option<bool> {
        if ok {
            self.oks = self.oks.saturating_add(1);
            self.fails = 0;
        } else {
            self.fails = self.fails.saturating_add(1);
            self.oks = 0;
        }
        let next = match self.up {
            None => ok,
            Some(false) if ok && self.oks >= rise.max(1) => true,
            Some(true) if !ok && self.fails >= fall.max(1) => false,
            Some(s) => s,
        };
        let changed = self.up != Some(next);
        self.up = Some(next);
        changed.then_some(next)
    }
}

/// Health trackers by (service, backend).
pub type Trackers = BTreeMap<(String, SocketAddr), Tracker>;

/// The health of every backend whose state is known, for [`crate::desired::desired`].
pub fn health_map(t: &Trackers) -> crate::desired::HealthMap {
    t.iter()
        .filter_map(|(k, v)| v.up.map(|u| (k.clone(), u)))
        .collect()
}

/// One check result.
#[derive(Debug, Clone)]
pub struct CheckResult {
    /// Service name.
    pub service: String,
    /// Backend address.
    pub backend: SocketAddr,
    /// Passed?
    pub ok: Result<(), CheckError>,
}

/// Why a check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    /// The backend (or its check port) refused or did not answer the connect.
    #[error("connect {target}: {error}")]
    Connect {
        /// Address checked.
        target: SocketAddr,
        /// What connect said.
        error: String,
    },
    /// The HTTP request could not be sent.
    #[error("send: {0}")]
    Send(String),
    /// The response could not be read.
    #[error("read: {0}")]
    Read(String),
    /// The answer is not HTTP.
    #[error("not an HTTP response")]
    NotHttp,
    /// The status is outside the expected range.
    #[error("status {status}, expected {}-{}", .expect.0, .expect.1)]
    Status {
        /// Status received.
        status: u16,
        /// Range expected.
        expect: (u16, u16),
    },
    /// The body lacks the expected text.
    #[error("body lacks {0:?}")]
    Body(String),
    /// No outcome within the check's timeout.
    #[error("timed out after {0:?}")]
    TimedOut(Duration),
}

/// Parses an HTTP response head: the status code (pure).
pub fn parse_status(head: &[u8]) -> Option<u16> {
    let line = head.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim_end();
    let mut parts = line.split(' ');
    let version = parts.next()?;
    if !version.starts_with("HTTP/") {
        return None;
    }
    parts.next()?.parse().ok()
}

/// Judges an HTTP response against the expectations (pure).
pub fn judge_http(
    response: &[u8],
    expect: (u16, u16),
    body: Option<&str>,
) -> Result<(), CheckError> {
    let status = parse_status(response).ok_or(CheckError::NotHttp)?;
    if !(expect.0..=expect.1).contains(&status) {
        return Err(CheckError::Status { status, expect });
    }
    if let Some(want) = body {
        let start = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(response.len(), |p| p + 4);
        let b = &response[start..];
        if !b.windows(want.len().max(1)).any(|w| w == want.as_bytes()) {
            return Err(CheckError::Body(want.to_owned()));
        }
    }
    Ok(())
}

const MAX_RESPONSE: usize = 64 * 1024;

/// Runs one check against `addr`.
pub async fn check_once(check: &HealthCheck, addr: SocketAddr) -> Result<(), CheckError> {
    let target = SocketAddr::new(addr.ip(), check.port.unwrap_or(addr.port()));
    let work = async {
        match &check.kind {
            CheckKind::None => Ok(()),
            CheckKind::Tcp => {
                TcpStream::connect(target)
                    .await
                    .map(|_| ())
                    .map_err(|e| CheckError::Connect {
                        target,
                        error: e.to_string(),
                    })
            }
            CheckKind::Http {
                path,
                expect,
                body,
                host,
            } => {
                let mut s = TcpStream::connect(target)
                    .await
                    .map_err(|e| CheckError::Connect {
                        target,
                        error: e.to_string(),
                    })?;
                let host = host.clone().unwrap_or_else(|| target.to_string());
                let req = format!(
                    "GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: lbd-check\r\nConnection: close\r\n\r\n"
                );
                s.write_all(req.as_bytes())
                    .await
                    .map_err(|e| CheckError::Send(e.to_string()))?;
                let mut buf = Vec::with_capacity(4096);
                let mut chunk = [0u8; 8192];
                loop {
                    let n = s
                        .read(&mut chunk)
                        .await
                        .map_err(|e| CheckError::Read(e.to_string()))?;
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    // Status only: stop as soon as the head is in.
                    if body.is_none() && buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                    if buf.len() >= MAX_RESPONSE {
                        break;
                    }
                }
                judge_http(&buf, *expect, body.as_deref())
            }
        }
    };
    match tokio::time::timeout(check.timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(CheckError::TimedOut(check.timeout)),
    }
}

/// Starts one checking task per (service, backend) of `view`; they stop when `stop` is
/// cancelled. Results go to `tx`.
pub fn spawn_checkers(
    view: &LbView,
    tx: mpsc::Sender<CheckResult>,
    stop: CancellationToken,
) -> usize {
    let sem = Arc::new(Semaphore::new(view.max_checks.max(1) as usize));
    let mut n = 0;
    // One checker per (service, address): both entries of a dual-stack proxy service may list
    // a backend by the same address (one that has only one family).
    let mut seen = std::collections::HashSet::new();
    for s in &view.services {
        if matches!(s.check.kind, CheckKind::None) {
            continue;
        }
        for b in &s.backends {
            if !seen.insert((s.name.clone(), b.addr)) {
                continue;
            }
            n += 1;
            let check = s.check.clone();
            let addr = b.addr;
            let service = s.name.clone();
            let tx = tx.clone();
            let stop = stop.clone();
            let sem = sem.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(check.interval.max(Duration::from_millis(10)));
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tick.tick() => {}
                    }
                    let ok = {
                        let Ok(_permit) = sem.acquire().await else {
                            return;
                        };
                        tokio::select! {
                            _ = stop.cancelled() => return,
                            r = check_once(&check, addr) => r,
                        }
                    };
                    let r = CheckResult {
                        service: service.clone(),
                        backend: addr,
                        ok,
                    };
                    if tx.send(r).await.is_err() {
                        return;
                    }
                }
            });
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rise_and_fall() {
        let mut t = Tracker::default();
        assert_eq!(t.record(true, 2, 3), Some(true));
        assert_eq!(t.record(false, 2, 3), None);
        assert_eq!(t.record(false, 2, 3), None);
        assert_eq!(t.record(true, 2, 3), None); // resets the failure run
        assert_eq!(t.record(false, 2, 3), None);
        assert_eq!(t.record(false, 2, 3), None);
        assert_eq!(t.record(false, 2, 3), Some(false));
        assert_eq!(t.record(true, 2, 3), None);
        assert_eq!(t.record(true, 2, 3), Some(true));
    }

    #[test]
    fn first_failure_is_down_at_once() {
        let mut t = Tracker::default();
        assert_eq!(t.record(false, 2, 3), Some(false));
    }

    #[test]
    fn flapping_every_interval_never_flips_with_rise_2() {
        let mut t = Tracker::default();
        t.record(false, 2, 2);
        for i in 0..20 {
            assert_eq!(t.record(i % 2 == 0, 2, 2), None);
        }
        assert_eq!(t.up, Some(false));
    }

    #[test]
    fn http_judgement() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nweb1\n";
        assert_eq!(judge_http(r, (200, 399), None), Ok(()));
        assert_eq!(judge_http(r, (200, 399), Some("web1")), Ok(()));
        assert!(judge_http(r, (200, 399), Some("web2")).is_err());
        let e = judge_http(b"HTTP/1.0 503 Busy\r\n\r\n", (200, 399), None).unwrap_err();
        assert!(e.to_string().contains("503"), "{e}");
        assert!(judge_http(b"SSH-2.0-OpenSSH\r\n", (200, 399), None).is_err());
        assert!(judge_http(b"", (200, 399), None).is_err());
    }

    #[tokio::test]
    async fn tcp_check_against_a_local_listener() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = l.local_addr().unwrap();
        let c = HealthCheck {
            kind: CheckKind::Tcp,
            port: None,
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            rise: 1,
            fall: 1,
        };
        assert_eq!(check_once(&c, a).await, Ok(()));
        drop(l);
        // A port held bound but not listening (so nothing else on the machine can take it
        // meanwhile) refuses connections.
        let closed =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        closed
            .bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
            .unwrap();
        let b = closed.local_addr().unwrap().as_socket().unwrap();
        assert!(check_once(&c, b).await.is_err());
    }

    #[tokio::test]
    async fn http_check_against_a_local_server() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = l.local_addr().unwrap();
        tokio::spawn(async move {
            for _ in 0..2 {
                let (mut s, _) = l.accept().await.unwrap();
                let mut b = [0u8; 1024];
                let _ = s.read(&mut b).await;
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
                    .await;
            }
        });
        let mut c = HealthCheck {
            kind: CheckKind::Http {
                path: "/".into(),
                expect: (200, 299),
                body: Some("ok".into()),
                host: None,
            },
            port: None,
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(2),
            rise: 1,
            fall: 1,
        };
        assert_eq!(check_once(&c, a).await, Ok(()));
        c.kind = CheckKind::Http {
            path: "/".into(),
            expect: (200, 299),
            body: Some("missing".into()),
            host: None,
        };
        assert!(check_once(&c, a).await.is_err());
    }

    #[tokio::test]
    async fn tcp_and_http_checks_against_an_ipv6_backend() {
        let l = tokio::net::TcpListener::bind("[::1]:0").await.unwrap();
        let a = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut b = [0u8; 1024];
            let n = s.read(&mut b).await.unwrap();
            // The Host header of an IPv6 target is `[ADDR]:PORT`.
            let ok = String::from_utf8_lossy(&b[..n]).contains(&format!("Host: {a}\r\n"));
            let head: &[u8] = if ok {
                b"HTTP/1.1 200 OK\r\n\r\n"
            } else {
                b"HTTP/1.1 400 Bad\r\n\r\n"
            };
            let _ = s.write_all(head).await;
        });
        let c = HealthCheck {
            kind: CheckKind::Http {
                path: "/".into(),
                expect: (200, 299),
                body: None,
                host: None,
            },
            port: None,
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(2),
            rise: 1,
            fall: 1,
        };
        assert_eq!(check_once(&c, a).await, Ok(()));
        let tcp = HealthCheck {
            kind: CheckKind::Tcp,
            ..c
        };
        // The listener is gone after its one connection: refused.
        assert!(check_once(&tcp, a).await.is_err());
    }

    #[tokio::test]
    async fn one_checker_per_service_and_address() {
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
[host.old]
ip = "192.168.1.11"
[service.www]
vip = ["192.168.1.120", "fd00:1::120"]
port = 80
dataplane = "proxy"
backends = ["web1", "old"]
"#,
        )
        .expect("valid");
        let (tx, _rx) = mpsc::channel(8);
        let stop = CancellationToken::new();
        // web1 twice (one address per family), old once (its IPv4 address in both entries).
        assert_eq!(spawn_checkers(&t.lb_view(), tx, stop.clone()), 3);
        stop.cancel();
    }
}
