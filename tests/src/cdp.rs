//! Headless chromium driven over the DevTools protocol, for the status pages' admin tests: type
//! into a form, click a button, wait for the page the browser then shows, read its DOM, take a
//! screenshot at a phone's size. The protocol runs over a pipe (`--remote-debugging-pipe`: the
//! browser reads NUL-terminated JSON on fd 3 and answers on fd 4), so no port is opened and no
//! websocket client is needed.
//!
//! ```no_run
//! use std::time::Duration;
//! use e2e::cdp::Tab;
//!
//! let mut tab = Tab::open(None);
//! tab.navigate("http://127.0.0.1:9169/");
//! tab.eval("document.querySelector('button').click()");
//! tab.wait_for("document.querySelector('#done') !== null", Duration::from_secs(10));
//! let dom = tab.dom();
//! # let _ = dom;
//! ```

use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::browser::FLAGS;
use crate::lab::Host;

/// A phone's viewport in CSS pixels (width, height), as the status pages' tests check them.
pub const PHONE: (u32, u32) = (390, 844);

/// How long one protocol command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// One page in a headless chromium started for it (ended in `Drop`).
#[derive(Debug)]
pub struct Tab {
    child: Child,
    to: std::fs::File,
    from: mpsc::Receiver<Value>,
    session: String,
    next: u64,
    _profile: tempfile::TempDir,
}

impl Tab {
    /// Starts chromium (in `host`'s namespace, or this process's with `None`) with a fresh
    /// profile and opens a blank page.
    pub fn open(host: Option<&Host>) -> Tab {
        let profile = tempfile::tempdir().unwrap();
        let (cmd_r, cmd_w) = pipe();
        let (ans_r, ans_w) = pipe();
        let mut c = match host {
            Some(h) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", h.netns(), "chromium"]);
                c
            }
            None => Command::new("chromium"),
        };
        c.args(FLAGS)
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("--remote-debugging-pipe")
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let (r, w) = (cmd_r.as_raw_fd(), ans_w.as_raw_fd());
        // SAFETY: only async-signal-safe calls (dup2) between fork and exec.
        unsafe {
            c.pre_exec(move || {
                // The browser reads on 3 and writes on 4; dup2 clears close-on-exec.
                if libc::dup2(r, 3) < 0 || libc::dup2(w, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = c.spawn().unwrap_or_else(|e| panic!("chromium: {e}"));
        drop((cmd_r, ans_w));
        let from = reader(ans_r);
        let mut tab = Tab {
            child,
            to: std::fs::File::from(cmd_w),
            from,
            session: String::new(),
            next: 0,
            _profile: profile,
        };
        let t = tab.call("Target.createTarget", json!({ "url": "about:blank" }));
        let target = t["targetId"].as_str().expect("a target").to_owned();
        let s = tab.call(
            "Target.attachToTarget",
            json!({ "targetId": target, "flatten": true }),
        );
        tab.session = s["sessionId"].as_str().expect("a session").to_owned();
        tab.call("Page.enable", json!({}));
        tab
    }

    /// Sends `method` (to the page once attached) and returns its result; panics on an error
    /// or after [`COMMAND_TIMEOUT`]. Events in between are dropped.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.try_call(method, params)
            .unwrap_or_else(|e| panic!("{method}: {e}"))
    }

    fn try_call(&mut self, method: &str, params: Value) -> Result<Value, String> {
        self.next += 1;
        let id = self.next;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if !self.session.is_empty() {
            msg["sessionId"] = json!(self.session);
        }
        let mut bytes = serde_json::to_vec(&msg).unwrap();
        bytes.push(0);
        self.to.write_all(&bytes).map_err(|e| e.to_string())?;
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let m = self
                .from
                .recv_timeout(left)
                .map_err(|_| "no answer from chromium".to_owned())?;
            if m["id"].as_u64() == Some(id) {
                return match m.get("error") {
                    Some(e) => Err(e.to_string()),
                    None => Ok(m["result"].clone()),
                };
            }
        }
    }

    /// Loads `url` and waits until the document is complete.
    pub fn navigate(&mut self, url: &str) {
        self.call("Page.navigate", json!({ "url": url }));
        self.wait_for(
            &format!(
                "document.readyState === 'complete' && location.href.startsWith({})",
                json!(url)
            ),
            COMMAND_TIMEOUT,
        );
    }

    /// The value of the JavaScript expression `js` in the page (an exception is an error).
    pub fn try_eval(&mut self, js: &str) -> Result<Value, String> {
        let r = self.try_call(
            "Runtime.evaluate",
            json!({ "expression": js, "returnByValue": true, "awaitPromise": true }),
        )?;
        if let Some(e) = r.get("exceptionDetails") {
            return Err(e.to_string());
        }
        Ok(r["result"]["value"].clone())
    }

    /// [`Tab::try_eval`], panicking on an error.
    pub fn eval(&mut self, js: &str) -> Value {
        self.try_eval(js).unwrap_or_else(|e| panic!("{js}: {e}"))
    }

    /// Evaluates `js` until it is `true` (a page being replaced by a navigation just answers
    /// later), at most `bound`; panics with the DOM otherwise.
    pub fn wait_for(&mut self, js: &str, bound: Duration) {
        let t0 = Instant::now();
        loop {
            if self.try_eval(js).is_ok_and(|v| v == json!(true)) {
                return;
            }
            if t0.elapsed() > bound {
                let dom = self.try_eval("document.documentElement.outerHTML");
                panic!("`{js}` not true within {bound:?}; the page:\n{dom:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The page's DOM as HTML.
    pub fn dom(&mut self) -> String {
        self.eval("document.documentElement.outerHTML")
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Sets the viewport to `width` x `height` CSS pixels (`mobile`: a phone's).
    pub fn viewport(&mut self, width: u32, height: u32, mobile: bool) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile }),
        );
    }

    /// Opens `url` (in `host`'s namespace, or this process's with `None`) at a phone's size
    /// ([`PHONE`], a mobile viewport), to check with [`Tab::sideways`] that it fits.
    pub fn on_phone(host: Option<&Host>, url: &str) -> Tab {
        let mut tab = Tab::open(host);
        tab.viewport(PHONE.0, PHONE.1, true);
        tab.navigate(url);
        tab
    }

    /// What scrolls sideways in the page as laid out now: the document when it is wider than
    /// the viewport, and each element that scrolls (`overflow-x` auto or scroll) with content
    /// wider than its box, as `tag.class > first child's tag.class: content width > box
    /// width`. Empty: the page fits its width (check it at a phone's [`Tab::viewport`]).
    pub fn sideways(&mut self) -> Vec<String> {
        let js = r#"(() => {
            const d = document.documentElement, out = [];
            if (d.scrollWidth > d.clientWidth) {
                out.push(`document: ${d.scrollWidth} > ${d.clientWidth}`);
            }
            const name = e => e ? `${e.tagName.toLowerCase()}.${e.getAttribute('class') || ''}` : '';
            for (const e of document.querySelectorAll('body *')) {
                const o = getComputedStyle(e).overflowX;
                if ((o === 'auto' || o === 'scroll') && e.scrollWidth > e.clientWidth) {
                    const inner = e.firstElementChild ? ` > ${name(e.firstElementChild)}` : '';
                    out.push(`${name(e)}${inner}: ${e.scrollWidth} > ${e.clientWidth}`);
                }
            }
            return out;
        })()"#;
        let v = self.eval(js);
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect()
    }

    /// Saves a PNG of the viewport (the whole page with `full`) to `file`; checks it is one.
    pub fn screenshot(&mut self, file: &Path, full: bool) {
        let r = self.call(
            "Page.captureScreenshot",
            json!({ "format": "png", "captureBeyondViewport": full }),
        );
        let png = base64_decode(r["data"].as_str().unwrap_or_default());
        assert!(png.starts_with(b"\x89PNG"), "no screenshot");
        std::fs::write(file, &png).unwrap();
        eprintln!("screenshot: {}", file.display());
    }
}

impl Drop for Tab {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A close-on-exec pipe whose ends are numbered 10 and up, so that moving them to 3 and 4 in
/// the child never overwrites one with the other.
fn pipe() -> (OwnedFd, OwnedFd) {
    use std::os::fd::FromRawFd;
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    let high = |fd: OwnedFd| {
        // SAFETY: fcntl on an fd we own; the result is a new fd we then own.
        let n = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 10) };
        assert!(n >= 10, "F_DUPFD_CLOEXEC failed");
        // SAFETY: `n` is a fresh descriptor nobody else owns.
        unsafe { OwnedFd::from_raw_fd(n) }
    };
    (high(r), high(w))
}

/// Reads the browser's NUL-terminated messages on a thread (so a wait can time out).
fn reader(fd: OwnedFd) -> mpsc::Receiver<Value> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut r = BufReader::new(std::fs::File::from(fd));
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(0, &mut buf) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if buf.last() == Some(&0) {
                buf.pop();
            }
            if let Ok(v) = serde_json::from_slice(&buf)
                && tx.send(v).is_err()
            {
                return;
            }
        }
    });
    rx
}

/// Standard base64 (the screenshot's encoding).
fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for v in s.bytes().filter_map(val) {
        acc = acc << 6 | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64() {
        assert_eq!(super::base64_decode("aGVsbG8gd29ybGQ="), b"hello world");
        assert_eq!(super::base64_decode("iVBORw=="), b"\x89PNG");
    }
}
