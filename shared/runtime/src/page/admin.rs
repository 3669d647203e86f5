//! The page's admin actions (issue 18): off unless the host file names an `admin-key-file` for
//! the daemon. Then the page offers a login form; the key typed into it (compared in constant
//! time) opens a session held in the daemon's memory, carried by a cookie (`HttpOnly`,
//! `SameSite=Strict`, no `Path`: it stays under the prefix a reverse proxy serves the page at,
//! `Secure` when the proxy says it spoke HTTPS). Every action is a form POSTed to the same
//! server with the session's synchroniser token (`csrf`), checked in constant time, and the
//! `Origin` (or `Referer`) must name the host the page was served as when the browser sends one.
//!
//! An action is a control-socket command the daemon allows the page (`drain`, `release`): it
//! runs through the same handler as the CLI's request (one rule in one place), and its answer
//! comes back to the page as `?done=` or `?failed=` after a `303 See Other` to `./`.
//!
//! Sessions end after [`SESSION_LIFE`], at logout, when the key changes (a reload with another
//! file) and when the key is removed (then POST is refused as before: 405).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use maud::{Markup, html};

use super::request::{self, Head, PageRequest};
use crate::control;

/// Longest request body read (a form of a few fields).
pub const MAX_BODY: usize = 4096;
/// How long a session lasts.
pub const SESSION_LIFE: Duration = Duration::from_secs(8 * 3600);
/// Sessions held at once; the oldest goes first.
const MAX_SESSIONS: usize = 32;
/// Wrong keys accepted per [`FAIL_WINDOW`] before logins are refused for the rest of it.
const MAX_FAILS: u32 = 10;
const FAIL_WINDOW: Duration = Duration::from_secs(60);

/// The current admin key (follows reloads); `None`: actions are off.
pub type KeyFn = Arc<dyn Fn() -> Option<Vec<u8>> + Send + Sync>;

/// What the page may show of the admin actions for one request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum AdminState {
    /// No admin key: read-only, no forms.
    #[default]
    Off,
    /// A key is set, this browser has no session: the login form.
    LoggedOut,
    /// A session: the action forms, each carrying this token.
    LoggedIn {
        /// The session's synchroniser token.
        csrf: String,
    },
}

struct Session {
    csrf: String,
    key: Vec<u8>,
    since: Instant,
}

/// The admin side of a daemon's page: its key, the actions it allows, the sessions.
#[derive(Clone)]
pub struct Admin {
    daemon: &'static str,
    key: KeyFn,
    actions: &'static [&'static str],
    handler: control::Handler,
    sessions: Arc<Mutex<HashMap<String, Session>>>,
    fails: Arc<Mutex<(Instant, u32)>>,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("daemon", &self.daemon)
            .field("actions", &self.actions)
            .finish_non_exhaustive()
    }
}

/// An answer to a POST, for the endpoint to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostReply {
    /// Status line, e.g. `303 See Other`.
    pub status: &'static str,
    /// `Location` (relative).
    pub location: Option<String>,
    /// `Set-Cookie`.
    pub cookie: Option<String>,
    /// A short text body.
    pub body: String,
}

impl PostReply {
    fn refuse(status: &'static str, why: &str) -> Self {
        PostReply {
            status,
            location: None,
            cookie: None,
            body: format!("{why}\n"),
        }
    }
    fn back(query: &str, cookie: Option<String>) -> Self {
        PostReply {
            status: "303 See Other",
            location: Some(format!("./{query}")),
            cookie,
            body: String::new(),
        }
    }
}

impl Admin {
    /// The admin side of `daemon`'s page: `key` gives the key in force, `actions` the commands
    /// of `handler` (the control socket's) the page may run.
    pub fn new(
        daemon: &'static str,
        key: KeyFn,
        actions: &'static [&'static str],
        handler: control::Handler,
    ) -> Self {
        Admin {
            daemon,
            key,
            actions,
            handler,
            sessions: Arc::default(),
            fails: Arc::new(Mutex::new((Instant::now(), 0))),
        }
    }

    /// Whether a key is set (without one POST is not allowed at all).
    pub fn enabled(&self) -> bool {
        (self.key)().is_some()
    }

    fn cookie_name(&self) -> String {
        format!("lansuite-admin-{}", self.daemon)
    }

    /// The request's admin state from its `Cookie` header.
    pub fn state(&self, head: &Head) -> AdminState {
        let Some(key) = (self.key)() else {
            self.sessions
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clear();
            return AdminState::Off;
        };
        match self.session(head, &key) {
            Some(csrf) => AdminState::LoggedIn { csrf },
            None => AdminState::LoggedOut,
        }
    }

    /// The csrf token of the request's session, if it has a live one under `key`.
    fn session(&self, head: &Head, key: &[u8]) -> Option<String> {
        let token = head.cookie(&self.cookie_name())?;
        let mut s = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        s.retain(|_, v| now.duration_since(v.since) < SESSION_LIFE && ct_eq(&v.key, key));
        s.get(&token).map(|v| v.csrf.clone())
    }

    /// Answers a POST to `path` (`/login`, `/logout`, `/action`) with the form `body`.
    pub async fn post(&self, path: &str, head: &Head, body: &[u8]) -> PostReply {
        let Some(key) = (self.key)() else {
            return PostReply::refuse("405 Method Not Allowed", "GET or HEAD only");
        };
        if !same_origin(head) {
            return PostReply::refuse("403 Forbidden", "cross-origin request refused");
        }
        let form = request::form(body);
        let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        if path == "/login" {
            return self.login(&key, field("key").unwrap_or_default().as_bytes(), head);
        }
        let Some(csrf) = self.session(head, &key) else {
            return PostReply::refuse("403 Forbidden", "log in first (no session)");
        };
        if !ct_eq(
            csrf.as_bytes(),
            field("csrf").unwrap_or_default().as_bytes(),
        ) {
            return PostReply::refuse("403 Forbidden", "missing or wrong csrf token");
        }
        match path {
            "/logout" => {
                if let Some(t) = head.cookie(&self.cookie_name()) {
                    self.sessions
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&t);
                }
                PostReply::back("", Some(format!("{}=; Max-Age=0", self.cookie_name())))
            }
            "/action" => {
                let cmd = field("cmd").unwrap_or_default();
                let arg = field("arg").unwrap_or_default();
                let Some(cmd) = self.actions.iter().find(|a| **a == cmd) else {
                    return PostReply::refuse("400 Bad Request", "no such action");
                };
                if arg.is_empty() || arg.split_whitespace().count() != 1 {
                    return PostReply::refuse("400 Bad Request", "one argument expected");
                }
                let h = self.handler.clone();
                let cmd: &'static str = cmd;
                let line = format!("{cmd} {arg}");
                let answer = tokio::task::spawn_blocking(move || h(&[cmd, &arg])).await;
                let (k, text) = match answer {
                    Ok(v) => match v.get("error") {
                        Some(e) => ("failed", e.as_str().unwrap_or_default().to_owned()),
                        None => ("done", v["text"].as_str().unwrap_or(&line).to_owned()),
                    },
                    Err(e) => ("failed", e.to_string()),
                };
                tracing::info!(action = %line, result = k, detail = %text, "status page action");
                let q = PageRequest::default().link_with(&[(k, &text)]);
                PostReply::back(&q, None)
            }
            _ => PostReply::refuse("404 Not Found", "no such action"),
        }
    }

    fn login(&self, key: &[u8], given: &[u8], head: &Head) -> PostReply {
        {
            let mut f = self.fails.lock().unwrap_or_else(|e| e.into_inner());
            if f.0.elapsed() >= FAIL_WINDOW {
                *f = (Instant::now(), 0);
            }
            if f.1 >= MAX_FAILS {
                return PostReply::refuse("429 Too Many Requests", "too many wrong keys; wait");
            }
            if !ct_eq(key, given) {
                f.1 += 1;
                tracing::warn!(daemon = self.daemon, "status page: wrong admin key");
                return PostReply::refuse("403 Forbidden", "wrong admin key");
            }
        }
        let token = random_hex();
        let mut s = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if s.len() >= MAX_SESSIONS
            && let Some(oldest) = s
                .iter()
                .min_by_key(|(_, v)| v.since)
                .map(|(k, _)| k.clone())
        {
            s.remove(&oldest);
        }
        s.insert(
            token.clone(),
            Session {
                csrf: random_hex(),
                key: key.to_vec(),
                since: Instant::now(),
            },
        );
        let secure = head
            .header("x-forwarded-proto")
            .is_some_and(|p| p.eq_ignore_ascii_case("https"));
        let cookie = format!(
            "{}={token}; HttpOnly; SameSite=Strict; Max-Age={}{}",
            self.cookie_name(),
            SESSION_LIFE.as_secs(),
            if secure { "; Secure" } else { "" }
        );
        PostReply::back("", Some(cookie))
    }
}

/// `Origin` (else `Referer`), when sent, names the host the request was addressed to (`Host`,
/// or `X-Forwarded-Host` behind a reverse proxy). A request with neither is let through: the
/// token and the `SameSite` cookie still hold.
fn same_origin(head: &Head) -> bool {
    let hosts: Vec<String> = ["host", "x-forwarded-host"]
        .iter()
        .filter_map(|h| head.header(h))
        .collect();
    let names = |url: &str| {
        let Some((_, rest)) = url.split_once("://") else {
            return false;
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        hosts.iter().any(|h| h.eq_ignore_ascii_case(authority))
    };
    match (head.header("origin"), head.header("referer")) {
        (Some(o), _) => names(&o),
        (None, Some(r)) => names(&r),
        (None, None) => true,
    }
}

/// Equality of two secrets in time that depends on their lengths only.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x);
    }
    std::hint::black_box(diff) == 0
}

/// 128 random bits as hex (the kernel's generator).
fn random_hex() -> String {
    let mut buf = [0u8; 16];
    let mut filled = 0;
    while filled < buf.len() {
        // SAFETY: writes at most the remaining length of `buf`.
        let n =
            unsafe { libc::getrandom(buf[filled..].as_mut_ptr().cast(), buf.len() - filled, 0) };
        assert!(n > 0, "getrandom failed");
        filled += n as usize;
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// The admin bar for the top of the page: nothing without a key; the login form; or the
/// logout button and the last action's result (`?done=`, `?failed=`).
pub fn panel(req: &PageRequest) -> Markup {
    let done = req.param("done");
    let failed = req.param("failed");
    html! {
        @match &req.admin {
            AdminState::Off => {},
            AdminState::LoggedOut => {
                form.admin.login method="post" action="login" {
                    label for="admin-key" { "Admin key" }
                    input #admin-key type="password" name="key" autocomplete="current-password" required;
                    button type="submit" { "Log in" }
                }
            }
            AdminState::LoggedIn { csrf } => {
                form.admin.logout method="post" action="logout" {
                    span.ok { "Admin actions enabled." }
                    input type="hidden" name="csrf" value=(csrf);
                    button type="submit" { "Log out" }
                }
                @if let Some(d) = done { p.ok #admin-result { (d) } }
                @if let Some(f) = failed { p.bad #admin-result { (f) } }
            }
        }
    }
}

/// A button running `cmd arg` (one of the daemon's actions), shown only to a logged-in admin.
pub fn action(req: &PageRequest, label: &str, cmd: &str, arg: &str) -> Markup {
    html! {
        @if let AdminState::LoggedIn { csrf } = &req.admin {
            form.action method="post" action="action" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="cmd" value=(cmd);
                input type="hidden" name="arg" value=(arg);
                button type="submit" data-action=(cmd) data-arg=(arg) { (label) }
            }
        }
    }
}

#[cfg(test)]
mod tests;
