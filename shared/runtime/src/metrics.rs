//! Prometheus metrics over HTTP (`GET /metrics`), off unless the host file names an address.
//!
//! The registry and metric types are `prometheus-client`'s (the Prometheus project's Rust client);
//! this module only serves them. The endpoint is deliberately tiny (HTTP/1.0-style, one request per
//! connection, bounded reads and concurrency): it is for a scraper on localhost, not the world.
//! When the daemon registers a page ([`serve_with_page`]), the same endpoint serves it at `/`
//! (see [`crate::page`]); GET and HEAD only, unless the daemon also registers the page's admin
//! actions ([`serve_with_admin`], [`crate::page::admin`]): then small form POSTs too.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use prometheus_client::metrics::counter::Counter;
pub use prometheus_client::metrics::family::Family;
pub use prometheus_client::metrics::gauge::Gauge;
pub use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
pub use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::page::admin::{self, Admin};
use crate::page::{self, PageFn, PageRequest, request};

const MAX_REQUEST: usize = 8 * 1024;
const IO_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_CONNS: usize = 16;

/// The text exposition of `registry`.
pub fn render(registry: &Registry) -> String {
    let mut out = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, registry) {
        tracing::warn!(error = %e, "encoding metrics failed");
    }
    out
}

/// Binds `addr` and serves `registry` until `shutdown`; returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    registry: Arc<Registry>,
    shutdown: CancellationToken,
) -> std::io::Result<SocketAddr> {
    serve_with_page(addr, registry, None, shutdown).await
}

/// Binds `addr` and serves `registry` at `/metrics` and, when the daemon registered one, its
/// status page at `/` (and `/index.html`, with `page.css` and `page.js` beside it) until
/// `shutdown`; returns the bound address. Same socket, same limits: nothing else is opened.
pub async fn serve_with_page(
    addr: SocketAddr,
    registry: Arc<Registry>,
    page: Option<PageFn>,
    shutdown: CancellationToken,
) -> std::io::Result<SocketAddr> {
    serve_with_admin(addr, registry, page, None, shutdown).await
}

/// [`serve_with_page`] with the page's admin actions: with `admin` (and its key set) the page
/// offers a login and the actions, POSTed to `login`, `action`, `logout` beside it.
pub async fn serve_with_admin(
    addr: SocketAddr,
    registry: Arc<Registry>,
    page: Option<PageFn>,
    admin: Option<Admin>,
    shutdown: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tracing::info!(%bound, "metrics listening on http://{bound}/metrics");
    if page.is_some() {
        tracing::info!(%bound, "status page on http://{bound}/");
    }
    let permits = Arc::new(Semaphore::new(MAX_CONNS));
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = listener.accept() => match r {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "metrics accept failed");
                        continue;
                    }
                },
            };
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                continue;
            };
            let registry = registry.clone();
            let page = page.clone();
            let admin = admin.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let _ = tokio::time::timeout(
                    IO_TIMEOUT,
                    answer(&mut sock, &registry, page, admin.as_ref()),
                )
                .await;
            });
        }
    });
    Ok(bound)
}

/// An answer: status line, extra headers, body.
struct Reply {
    status: &'static str,
    ctype: &'static str,
    headers: Vec<(&'static str, String)>,
    body: String,
}

impl Reply {
    fn text(status: &'static str, body: &str) -> Self {
        Reply {
            status,
            ctype: "text/plain; charset=utf-8",
            headers: Vec::new(),
            body: body.to_owned(),
        }
    }
}

async fn answer(
    sock: &mut tokio::net::TcpStream,
    registry: &Registry,
    page: Option<PageFn>,
    admin: Option<&Admin>,
) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let end = |b: &[u8]| b.windows(4).position(|w| w == b"\r\n\r\n");
    while end(&buf).is_none() && buf.len() < MAX_REQUEST {
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = request::Head::parse(&buf);
    let (reply, head_only) = match request::parse(&buf) {
        Err(_) => (Reply::text("400 Bad Request", "bad request\n"), false),
        Ok((method, mut req)) if method == "GET" || method == "HEAD" => {
            if let Some(a) = admin {
                req.admin = a.state(&head);
            }
            (route(&req, registry, page).await, method == "HEAD")
        }
        Ok((method, req)) if method == "POST" && admin.is_some_and(Admin::enabled) => {
            let body_at = end(&buf).map_or(buf.len(), |i| i + 4);
            let body = read_body(sock, &mut buf, body_at, &head).await?;
            let reply = match (body, admin) {
                (Some(body), Some(a)) => posted(a.post(&req.path, &head, &body).await),
                _ => Reply::text("413 Content Too Large", "the form is too large\n"),
            };
            (reply, false)
        }
        Ok(_) => {
            let mut r = Reply::text("405 Method Not Allowed", "GET or HEAD only\n");
            r.headers.push(("Allow", "GET, HEAD".to_owned()));
            (r, false)
        }
    };
    let mut head = format!(
        "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
        reply.status,
        reply.ctype,
        reply.body.len()
    );
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("Connection: close\r\n\r\n");
    sock.write_all(head.as_bytes()).await?;
    if !head_only {
        sock.write_all(reply.body.as_bytes()).await?;
    }
    sock.shutdown().await
}

/// Headers of the page and its files: no sniffing, no framing, no referrer to other daemons
/// (`same-origin`, not `no-referrer`: the admin forms' POSTs then carry their `Origin`).
const PAGE_HEADERS: [(&str, &str); 3] = [
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("Content-Security-Policy", page::CSP),
];

fn page_headers() -> Vec<(&'static str, String)> {
    PAGE_HEADERS
        .iter()
        .map(|(n, v)| (*n, (*v).to_owned()))
        .collect()
}

/// The body of a POST: what `Content-Length` says, read on from `buf[at..]`; `None` when it is
/// larger than [`admin::MAX_BODY`].
async fn read_body(
    sock: &mut tokio::net::TcpStream,
    buf: &mut Vec<u8>,
    at: usize,
    head: &request::Head,
) -> std::io::Result<Option<Vec<u8>>> {
    let len: usize = head
        .header("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    if len > admin::MAX_BODY {
        return Ok(None);
    }
    let mut chunk = [0u8; 1024];
    while buf.len() < at + len {
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let end = buf.len().min(at + len);
    Ok(Some(buf[at.min(end)..end].to_vec()))
}

fn posted(p: admin::PostReply) -> Reply {
    let mut headers = page_headers();
    headers.push(("Cache-Control", "no-store".to_owned()));
    headers.extend(p.location.map(|l| ("Location", l)));
    headers.extend(p.cookie.map(|c| ("Set-Cookie", c)));
    Reply {
        status: p.status,
        ctype: "text/plain; charset=utf-8",
        headers,
        body: p.body,
    }
}

async fn route(req: &PageRequest, registry: &Registry, page: Option<PageFn>) -> Reply {
    let asset = |ctype, body: &str| {
        let mut headers = page_headers();
        headers.push(("Cache-Control", "max-age=300".to_owned()));
        Reply {
            status: "200 OK",
            ctype,
            headers,
            body: body.to_owned(),
        }
    };
    match (req.path.as_str(), page) {
        ("/metrics", _) => Reply {
            status: "200 OK",
            ctype: "text/plain; version=0.0.4; charset=utf-8",
            headers: Vec::new(),
            body: render(registry),
        },
        ("/" | "/index.html", Some(page)) => {
            let req = req.clone();
            match tokio::task::spawn_blocking(move || page(&req)).await {
                Ok(body) => {
                    let mut headers = page_headers();
                    // The page is live state: never from a cache (the refresh fetches it again).
                    headers.push(("Cache-Control", "no-store".to_owned()));
                    Reply {
                        status: "200 OK",
                        ctype: "text/html; charset=utf-8",
                        headers,
                        body,
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "status page failed");
                    Reply::text("500 Internal Server Error", "the page failed\n")
                }
            }
        }
        ("/page.css", Some(_)) => asset("text/css; charset=utf-8", page::CSS),
        ("/page.js", Some(_)) => asset("text/javascript; charset=utf-8", page::JS),
        (_, Some(_)) => Reply::text("404 Not Found", "try / or /metrics\n"),
        (_, None) => Reply::text("404 Not Found", "try /metrics\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn scrape_returns_registered_metrics() {
        let mut reg = Registry::default();
        let c = Counter::<u64>::default();
        reg.register("test_things", "Things seen", c.clone());
        c.inc_by(3);
        let stop = CancellationToken::new();
        let addr = serve("127.0.0.1:0".parse().unwrap(), Arc::new(reg), stop.clone())
            .await
            .unwrap();
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        assert!(out.starts_with("HTTP/1.1 200 OK"), "{out}");
        assert!(out.contains("test_things_total 3"), "{out}");
        stop.cancel();
    }

    async fn ask(addr: SocketAddr, req: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    fn header<'a>(resp: &'a str, name: &str) -> Option<&'a str> {
        let head = resp.split("\r\n\r\n").next()?;
        head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    #[tokio::test]
    async fn page_is_served_beside_the_metrics() {
        let page: PageFn =
            Arc::new(|req: &PageRequest| format!("<!DOCTYPE html><p>q={:?}</p>", req.param("q")));
        let stop = CancellationToken::new();
        let addr = serve_with_page(
            "127.0.0.1:0".parse().unwrap(),
            Arc::new(Registry::default()),
            Some(page),
            stop.clone(),
        )
        .await
        .unwrap();
        for path in ["/?q=a%20b", "/index.html?q=a+b"] {
            let out = ask(addr, &format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n")).await;
            assert!(out.starts_with("HTTP/1.1 200 OK"), "{out}");
            assert_eq!(
                header(&out, "content-type"),
                Some("text/html; charset=utf-8")
            );
            assert_eq!(header(&out, "cache-control"), Some("no-store"));
            assert_eq!(header(&out, "x-content-type-options"), Some("nosniff"));
            assert!(
                header(&out, "content-security-policy")
                    .is_some_and(|c| c.contains("script-src 'self'"))
            );
            assert!(out.ends_with("<p>q=Some(\"a b\")</p>"), "{out}");
        }
        let css = ask(addr, "GET /page.css HTTP/1.1\r\n\r\n").await;
        assert_eq!(
            header(&css, "content-type"),
            Some("text/css; charset=utf-8")
        );
        assert!(css.ends_with(page::CSS));
        let js = ask(addr, "GET /page.js HTTP/1.1\r\n\r\n").await;
        assert_eq!(
            header(&js, "content-type"),
            Some("text/javascript; charset=utf-8")
        );
        let m = ask(addr, "GET /metrics HTTP/1.1\r\n\r\n").await;
        assert!(m.starts_with("HTTP/1.1 200 OK"), "{m}");
        assert!(m.contains("# EOF"), "{m}");

        // HEAD: the same head with its length, no body.
        let h = ask(addr, "HEAD / HTTP/1.1\r\n\r\n").await;
        assert!(h.starts_with("HTTP/1.1 200 OK"), "{h}");
        assert!(h.ends_with("\r\n\r\n"), "{h}");
        assert_eq!(header(&h, "content-length"), Some("28"));

        let post = ask(addr, "POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n").await;
        assert!(post.starts_with("HTTP/1.1 405"), "{post}");
        assert_eq!(header(&post, "allow"), Some("GET, HEAD"));
        let nf = ask(addr, "GET /leases HTTP/1.1\r\n\r\n").await;
        assert!(nf.starts_with("HTTP/1.1 404"), "{nf}");
        let bad = ask(addr, "hello\r\n\r\n").await;
        assert!(bad.starts_with("HTTP/1.1 400"), "{bad}");
        stop.cancel();
    }

    #[tokio::test]
    async fn no_page_registered_means_no_page() {
        let stop = CancellationToken::new();
        let addr = serve(
            "127.0.0.1:0".parse().unwrap(),
            Arc::new(Registry::default()),
            stop.clone(),
        )
        .await
        .unwrap();
        for path in ["/", "/index.html", "/page.js"] {
            let out = ask(addr, &format!("GET {path} HTTP/1.1\r\n\r\n")).await;
            assert!(out.starts_with("HTTP/1.1 404"), "{out}");
            assert!(out.ends_with("try /metrics\n"), "{out}");
        }
        stop.cancel();
    }

    #[tokio::test]
    async fn a_panicking_page_is_a_500_and_the_server_goes_on() {
        let page: PageFn = Arc::new(|_: &PageRequest| panic!("boom"));
        let stop = CancellationToken::new();
        let addr = serve_with_page(
            "127.0.0.1:0".parse().unwrap(),
            Arc::new(Registry::default()),
            Some(page),
            stop.clone(),
        )
        .await
        .unwrap();
        let out = ask(addr, "GET / HTTP/1.1\r\n\r\n").await;
        assert!(out.starts_with("HTTP/1.1 500"), "{out}");
        let m = ask(addr, "GET /metrics HTTP/1.1\r\n\r\n").await;
        assert!(m.starts_with("HTTP/1.1 200"), "{m}");
        stop.cancel();
    }
}
