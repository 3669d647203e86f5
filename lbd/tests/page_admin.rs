//! lbd's page admin actions in a real browser (issue 18): with `[lb] admin-key-file` set, Debian's
//! chromium (driven over the DevTools pipe) logs in with the key, clicks "Drain" on www3's web1
//! and the page shows it drained; curl through the VIP then reaches web2 only; "Undrain" brings
//! web1 back. The same again through a reverse proxy serving the page under `/lbd/` (a small
//! prefix-stripping proxy in the test: relative form actions, the cookie's default path,
//! `X-Forwarded-Host` for the origin check). A wrong key is refused. Screenshots at a phone's
//! and a desktop's size go to `<target>/page-shots/lbd-admin-*.png`.
//!
//! Chromium missing: skipped with "SKIPPED" on stderr, unless `CI` is set (then it fails).

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;
use e2e::browser::{have_chromium, shots_dir};
use e2e::cdp::Tab;
use e2e::{Host, Proc, Ready, SeedLan};

const KEY: &str = "page-admin-key-0123456789";
const WAIT: Duration = Duration::from_secs(15);

fn start(lan: &SeedLan, conf: &Path) -> Proc {
    let rt = lan.lab.dir().join("run-main");
    let state = lan.lab.dir().join("state-main");
    lan.main
        .process(BIN)
        .args([
            "--config",
            conf.to_str().unwrap(),
            "--runtime-dir",
            rt.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
        ])
        .name("lbd")
        .ready(Ready::Notify)
        .timeout(Duration::from_secs(15))
        .spawn()
}

/// Requests through the VIP until `ok` holds for a batch of six, at most [`WAIT`].
fn until(lan: &SeedLan, what: &str, ok: impl Fn(&[String]) -> bool) {
    let t0 = Instant::now();
    loop {
        let b = gets(lan, 6);
        if ok(&b) {
            return;
        }
        assert!(t0.elapsed() < WAIT, "{what} not within {WAIT:?}: {b:?}");
    }
}

fn click(tab: &mut Tab, selector: &str) {
    let js = format!(
        "(() => {{ const b = document.querySelector({}); if (!b) return false; b.click(); return true; }})()",
        serde_json::json!(selector)
    );
    assert_eq!(tab.eval(&js), serde_json::json!(true), "no {selector}");
}

fn present(selector: &str) -> String {
    format!(
        "document.querySelector({}) !== null",
        serde_json::json!(selector)
    )
}

/// Logs in at `url`, drains www3/web1, checks the VIP, undrains; screenshots when `shots`.
fn drain_round(lan: &SeedLan, tab: &mut Tab, url: &str, shots: Option<&str>) {
    tab.navigate(url);
    assert!(tab.dom().contains("action=\"login\""), "{}", tab.dom());
    if let Some(prefix) = shots {
        let dir = shots_dir(env!("CARGO_TARGET_TMPDIR"));
        tab.viewport(390, 844, true);
        tab.screenshot(&dir.join(format!("{prefix}-login-phone.png")), false);
    }
    assert!(!tab.dom().contains("data-action=\"drain\""));
    tab.eval(&format!(
        "document.getElementById('admin-key').value = {}",
        serde_json::json!(KEY)
    ));
    click(tab, "form.login button");
    tab.wait_for(&present("form.logout"), WAIT);
    let drain = "button[data-action=\"drain\"][data-arg=\"www3/web1\"]";
    tab.wait_for(&present(drain), WAIT);
    click(tab, drain);
    let undrain = "button[data-action=\"undrain\"][data-arg=\"www3/web1\"]";
    tab.wait_for(&present(undrain), WAIT);
    let d = tab.dom();
    assert!(
        d.contains("id=\"admin-result\">drained www3/web1 (in www3)"),
        "{d}"
    );
    assert!(
        d.contains("data-backend=\"web1\" data-health=\"up\""),
        "{d}"
    );
    // Applied before the answer: new connections go to web2 only.
    let after = gets(lan, 10);
    assert!(after.iter().all(|b| b == "web2"), "{after:?}");
    if let Some(prefix) = shots {
        let dir = shots_dir(env!("CARGO_TARGET_TMPDIR"));
        tab.viewport(390, 844, true);
        tab.screenshot(&dir.join(format!("{prefix}-phone.png")), false);
        tab.viewport(1280, 900, false);
        tab.screenshot(&dir.join(format!("{prefix}-desktop.png")), false);
    }
    click(tab, undrain);
    tab.wait_for(&present(drain), WAIT);
    until(lan, "web1 back", |b| b.iter().any(|x| x == "web1"));
    click(tab, "form.logout button");
    tab.wait_for(&present("form.login"), WAIT);
}

#[test]
fn drain_and_undrain_from_the_page() {
    e2e::require_netns!("curl", "busybox", "nft");
    if !have_chromium(module_path!()) {
        return;
    }
    let lan = SeedLan::build("lbpadm");
    let _w1 = web(&lan.web1, "web1");
    let _w2 = web(&lan.web2, "web2");
    std::fs::write(lan.lab.dir().join("admin.key"), format!("{KEY}\n")).unwrap();
    let conf = host_file_with(&lan, |t| {
        t.replace(
            "metrics = \"127.0.0.1:9169\"",
            "metrics = \"127.0.0.1:9169\"\nadmin-key-file = \"admin.key\"",
        )
    });
    let _lbd = start(&lan, &conf);
    assert_alternating(&gets(&lan, 6));

    let mut tab = Tab::open(Some(&lan.main));
    // A wrong key: refused, nothing unlocked.
    tab.navigate("http://127.0.0.1:9169/");
    tab.eval("document.getElementById('admin-key').value = 'not-the-key-at-all'");
    click(&mut tab, "form.login button");
    tab.wait_for("document.body.innerText.includes('wrong admin key')", WAIT);
    drain_round(&lan, &mut tab, "http://127.0.0.1:9169/", Some("lbd-admin"));

    // Behind a reverse proxy under /lbd/.
    let proxy = Proxy::start(&lan.main, 9180, "/lbd", 9169);
    drain_round(&lan, &mut tab, "http://127.0.0.1:9180/lbd/", None);
    assert!(
        proxy.seen.load(Ordering::Relaxed),
        "the proxy carried nothing"
    );
}

/// A reverse proxy serving `127.0.0.1:upstream` under `prefix` on `port` in `host`: strips the
/// prefix, sets `Host` to the upstream and `X-Forwarded-Host`/`-Prefix` as nginx is usually
/// told to; one request per connection.
struct Proxy {
    stop: Arc<AtomicBool>,
    seen: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    fn start(host: &Host, port: u16, prefix: &'static str, upstream: u16) -> Proxy {
        let l = host.enter(|| TcpListener::bind(("127.0.0.1", port)).unwrap());
        l.set_nonblocking(true).unwrap();
        let (stop, seen) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let (s, n) = (stop.clone(), seen.clone());
        let h = host.clone();
        let thread = std::thread::spawn(move || {
            let t0 = Instant::now();
            while !s.load(Ordering::Relaxed) && t0.elapsed() < Duration::from_secs(300) {
                let Ok((c, _)) = l.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let up = h.enter(|| TcpStream::connect(("127.0.0.1", upstream)));
                if let Ok(up) = up {
                    n.store(true, Ordering::Relaxed);
                    let _ = relay(c, up, prefix);
                }
            }
        });
        Proxy {
            stop,
            seen,
            thread: Some(thread),
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn relay(mut c: TcpStream, mut up: TcpStream, prefix: &str) -> std::io::Result<()> {
    c.set_nonblocking(false)?;
    for s in [&c, &up] {
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
    }
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = c.read(&mut chunk)?;
        if n == 0 || buf.len() > 65536 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let first = lines.next().unwrap_or_default();
    let mut parts = first.splitn(3, ' ');
    let (method, target, version) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let path = target.strip_prefix(prefix).unwrap_or(target);
    let mut out = format!("{method} {path} {version}\r\n");
    let mut len = 0usize;
    for l in lines {
        let (name, value) = l.split_once(':').unwrap_or((l, ""));
        match name.to_ascii_lowercase().as_str() {
            "host" => {
                out.push_str(&format!("X-Forwarded-Host: {}\r\n", value.trim()));
                out.push_str("Host: upstream.invalid\r\n");
            }
            "connection" => {}
            "content-length" => {
                len = value.trim().parse().unwrap_or(0);
                out.push_str(l);
                out.push_str("\r\n");
            }
            _ => {
                out.push_str(l);
                out.push_str("\r\n");
            }
        }
    }
    out.push_str(&format!(
        "X-Forwarded-Prefix: {prefix}\r\nConnection: close\r\n\r\n"
    ));
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = c.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    up.write_all(out.as_bytes())?;
    up.write_all(&body)?;
    let mut answer = Vec::new();
    up.read_to_end(&mut answer)?;
    c.write_all(&answer)?;
    c.shutdown(std::net::Shutdown::Both)
}
