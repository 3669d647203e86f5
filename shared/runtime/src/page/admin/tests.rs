//! The admin actions over plain HTTP on loopback: what is refused changes nothing.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::*;
use crate::metrics::{Registry, serve_with_admin};
use crate::page::PageFn;

const KEY: &str = "correct-horse-battery-staple";

struct Server {
    addr: SocketAddr,
    calls: Arc<Mutex<Vec<String>>>,
    key: Arc<Mutex<Option<Vec<u8>>>>,
    stop: CancellationToken,
}

async fn server() -> Server {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let c = calls.clone();
    let handler: control::Handler = Arc::new(move |args: &[&str]| {
        c.lock().unwrap().push(args.join(" "));
        if args.get(1) == Some(&"bad") {
            serde_json::json!({ "error": "no backend `bad`" })
        } else {
            serde_json::json!({ "text": format!("drained {}", args[1]) })
        }
    });
    let key = Arc::new(Mutex::new(Some(KEY.as_bytes().to_vec())));
    let k = key.clone();
    let admin = Admin::new(
        "test",
        Arc::new(move || k.lock().unwrap().clone()),
        &["drain"],
        handler,
    );
    let page: PageFn = Arc::new(|req: &PageRequest| {
        format!(
            "<main>{}{}</main>",
            panel(req).into_string(),
            action(req, "Drain", "drain", "web1").into_string()
        )
    });
    let stop = CancellationToken::new();
    let addr = serve_with_admin(
        "127.0.0.1:0".parse().unwrap(),
        Arc::new(Registry::default()),
        Some(page),
        Some(admin),
        stop.clone(),
    )
    .await
    .unwrap();
    Server {
        addr,
        calls,
        key,
        stop,
    }
}

async fn ask(addr: SocketAddr, req: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

fn post(addr: SocketAddr, path: &str, extra: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn header<'a>(resp: &'a str, name: &str) -> Option<&'a str> {
    let head = resp.split("\r\n\r\n").next()?;
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Logs in; returns the cookie pair and the csrf token the page then shows.
async fn login(s: &Server) -> (String, String) {
    let out = ask(s.addr, &post(s.addr, "/login", "", &format!("key={KEY}"))).await;
    assert!(out.starts_with("HTTP/1.1 303"), "{out}");
    assert_eq!(header(&out, "location"), Some("./"));
    let set = header(&out, "set-cookie").unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    assert!(!set.contains("Path="), "{set}");
    let cookie = set.split(';').next().unwrap().to_owned();
    let page = ask(
        s.addr,
        &format!(
            "GET / HTTP/1.1\r\nHost: {}\r\nCookie: {cookie}\r\n\r\n",
            s.addr
        ),
    )
    .await;
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("no csrf token in {page}"))
        .to_owned();
    assert!(page.contains("data-action=\"drain\""), "{page}");
    (cookie, csrf)
}

#[tokio::test]
async fn login_then_action_runs_the_command_once() {
    let s = server().await;
    let page = ask(s.addr, "GET / HTTP/1.1\r\n\r\n").await;
    assert!(page.contains("action=\"login\""), "{page}");
    assert!(!page.contains("data-action"), "{page}");
    let (cookie, csrf) = login(&s).await;
    let out = ask(
        s.addr,
        &post(
            s.addr,
            "/action",
            &format!("Cookie: {cookie}\r\nOrigin: http://{}\r\n", s.addr),
            &format!("csrf={csrf}&cmd=drain&arg=web1"),
        ),
    )
    .await;
    assert!(out.starts_with("HTTP/1.1 303"), "{out}");
    assert_eq!(header(&out, "location"), Some("./?done=drained%20web1"));
    assert_eq!(*s.calls.lock().unwrap(), ["drain web1"]);
    // The command's error comes back as ?failed=.
    let out = ask(
        s.addr,
        &post(
            s.addr,
            "/action",
            &format!("Cookie: {cookie}\r\n"),
            &format!("csrf={csrf}&cmd=drain&arg=bad"),
        ),
    )
    .await;
    assert_eq!(
        header(&out, "location"),
        Some("./?failed=no%20backend%20%60bad%60"),
        "{out}"
    );
    // Logout ends the session.
    let out = ask(
        s.addr,
        &post(
            s.addr,
            "/logout",
            &format!("Cookie: {cookie}\r\n"),
            &format!("csrf={csrf}"),
        ),
    )
    .await;
    assert!(out.starts_with("HTTP/1.1 303"), "{out}");
    let again = ask(
        s.addr,
        &post(
            s.addr,
            "/action",
            &format!("Cookie: {cookie}\r\n"),
            &format!("csrf={csrf}&cmd=drain&arg=web1"),
        ),
    )
    .await;
    assert!(again.starts_with("HTTP/1.1 403"), "{again}");
    assert_eq!(s.calls.lock().unwrap().len(), 2);
    s.stop.cancel();
}

#[tokio::test]
async fn refusals_change_nothing() {
    let s = server().await;
    // Wrong key: 403, no cookie.
    let out = ask(s.addr, &post(s.addr, "/login", "", "key=guess-guess-guess")).await;
    assert!(out.starts_with("HTTP/1.1 403"), "{out}");
    assert_eq!(header(&out, "set-cookie"), None);
    let (cookie, csrf) = login(&s).await;
    let cases = [
        // No session at all.
        post(
            s.addr,
            "/action",
            "",
            &format!("csrf={csrf}&cmd=drain&arg=web1"),
        ),
        // Session, no token.
        post(
            s.addr,
            "/action",
            &format!("Cookie: {cookie}\r\n"),
            "cmd=drain&arg=web1",
        ),
        // Session, wrong token.
        post(
            s.addr,
            "/action",
            &format!("Cookie: {cookie}\r\n"),
            "csrf=00&cmd=drain&arg=web1",
        ),
        // Another site's form.
        post(
            s.addr,
            "/action",
            &format!("Cookie: {cookie}\r\nOrigin: http://evil.example\r\n"),
            &format!("csrf={csrf}&cmd=drain&arg=web1"),
        ),
        post(
            s.addr,
            "/action",
            &format!("Cookie: {cookie}\r\nOrigin: null\r\n"),
            &format!("csrf={csrf}&cmd=drain&arg=web1"),
        ),
        post(
            s.addr,
            "/action",
            &format!("Cookie: {cookie}\r\nReferer: http://evil.example/x\r\n"),
            &format!("csrf={csrf}&cmd=drain&arg=web1"),
        ),
    ];
    for c in &cases {
        let out = ask(s.addr, c).await;
        assert!(out.starts_with("HTTP/1.1 403"), "{c}\n->\n{out}");
    }
    // A command the page does not offer.
    let out = ask(
        s.addr,
        &post(
            s.addr,
            "/action",
            &format!("Cookie: {cookie}\r\n"),
            &format!("csrf={csrf}&cmd=status&arg=x"),
        ),
    )
    .await;
    assert!(out.starts_with("HTTP/1.1 400"), "{out}");
    // A body beyond the bound.
    let big = format!("csrf={csrf}&cmd=drain&arg={}", "a".repeat(MAX_BODY));
    let out = ask(
        s.addr,
        &post(s.addr, "/action", &format!("Cookie: {cookie}\r\n"), &big),
    )
    .await;
    assert!(out.starts_with("HTTP/1.1 413"), "{out}");
    assert!(s.calls.lock().unwrap().is_empty());
    // The key removed by a reload: POST is not allowed at all, the page is read-only.
    *s.key.lock().unwrap() = None;
    let out = ask(
        s.addr,
        &post(
            s.addr,
            "/action",
            &format!("Cookie: {cookie}\r\n"),
            &format!("csrf={csrf}&cmd=drain&arg=web1"),
        ),
    )
    .await;
    assert!(out.starts_with("HTTP/1.1 405"), "{out}");
    let page = ask(
        s.addr,
        &format!("GET / HTTP/1.1\r\nCookie: {cookie}\r\n\r\n"),
    )
    .await;
    assert!(!page.contains("<form"), "{page}");
    assert!(s.calls.lock().unwrap().is_empty());
    s.stop.cancel();
}

#[tokio::test]
async fn a_new_key_ends_the_sessions_and_wrong_keys_are_bounded() {
    let s = server().await;
    let (cookie, csrf) = login(&s).await;
    *s.key.lock().unwrap() = Some(b"another-key-another-key".to_vec());
    let out = ask(
        s.addr,
        &post(
            s.addr,
            "/action",
            &format!("Cookie: {cookie}\r\n"),
            &format!("csrf={csrf}&cmd=drain&arg=web1"),
        ),
    )
    .await;
    assert!(out.starts_with("HTTP/1.1 403"), "{out}");
    let statuses = AtomicUsize::new(0);
    for _ in 0..12 {
        let out = ask(s.addr, &post(s.addr, "/login", "", "key=wrong")).await;
        if out.starts_with("HTTP/1.1 429") {
            statuses.fetch_add(1, Ordering::Relaxed);
        }
    }
    assert_eq!(statuses.load(Ordering::Relaxed), 2);
    assert!(s.calls.lock().unwrap().is_empty());
    s.stop.cancel();
}

#[test]
fn constant_time_equality() {
    assert!(ct_eq(b"abc", b"abc"));
    assert!(!ct_eq(b"abc", b"abd"));
    assert!(!ct_eq(b"abc", b"abcd"));
    assert!(!ct_eq(b"", b"a"));
    assert!(ct_eq(b"", b""));
    assert_eq!(random_hex().len(), 32);
    assert_ne!(random_hex(), random_hex());
}
