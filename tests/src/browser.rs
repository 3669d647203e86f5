//! Headless chromium for the status-page tests: the switches every run needs, a throwaway
//! profile per run, `--dump-dom`, screenshots at a window size into `<target>/page-shots/`,
//! and the skip rule (chromium missing: SKIPPED, unless `CI` or `E2E_STRICT` is set).
//!
//! ```no_run
//! use e2e::browser;
//!
//! if !browser::have_chromium(module_path!()) {
//!     return;
//! }
//! let dom = browser::dump_dom(None, "http://127.0.0.1:9171/", &["--virtual-time-budget=5000"]);
//! // In an integration test: `browser::shots_dir(env!("CARGO_TARGET_TMPDIR"))`.
//! let dir = browser::shots_dir("target/tmp");
//! browser::screenshot(None, &dir.join("x-phone.png"), "390,844", "http://127.0.0.1:9171/", &[]);
//! # let _ = dom;
//! ```

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::exec::{command, run_bounded};
use crate::lab::Host;
use crate::skip::skip_or_fail;

/// How long one chromium run may take.
pub const BROWSER_TIMEOUT: Duration = Duration::from_secs(120);

/// The switches of every headless run (before the profile and the caller's arguments).
pub const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
];

/// Whether `chromium --version` runs. When it does not, prints a SKIPPED line for `test`
/// and returns false, or panics in strict mode (`CI` or `E2E_STRICT` set): a CI run must
/// never pass by skipping (scripts/install-test-deps installs chromium).
pub fn have_chromium(test: &str) -> bool {
    let ok = Command::new("chromium")
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        skip_or_fail(
            test,
            "chromium not installed (scripts/install-test-deps installs it)",
        );
    }
    ok
}

/// `<target>/page-shots`, created: beside the `tmp` dir cargo gives integration tests
/// (pass `env!("CARGO_TARGET_TMPDIR")`).
pub fn shots_dir(target_tmpdir: &str) -> PathBuf {
    let dir = Path::new(target_tmpdir)
        .parent()
        .expect("CARGO_TARGET_TMPDIR has a parent")
        .join("page-shots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs chromium headless, in `host`'s namespace or (with `None`) in this process's, with
/// [`FLAGS`], a fresh profile and then `args`, within [`BROWSER_TIMEOUT`]. Panics unless it
/// exits with success (and, for `--dump-dom`, printed something); returns its stdout.
pub fn chromium(host: Option<&Host>, args: &[String]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut argv: Vec<String> = FLAGS.iter().map(|s| (*s).to_owned()).collect();
    argv.push(format!("--user-data-dir={}", profile.path().display()));
    argv.extend_from_slice(args);
    let out = match host {
        Some(h) => {
            let mut all = vec!["chromium".to_owned()];
            all.extend(argv);
            h.run_timeout(&all, None, BROWSER_TIMEOUT)
        }
        None => run_bounded(command("chromium", &argv), None, BROWSER_TIMEOUT),
    }
    .unwrap_or_else(|e| panic!("chromium: {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "chromium failed: {}\n{stderr}",
        out.status
    );
    if args.iter().any(|a| a == "--dump-dom") {
        assert!(!out.stdout.is_empty(), "chromium dumped nothing:\n{stderr}");
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The DOM chromium built from `url` (`extra` switches first, e.g.
/// `--virtual-time-budget=5000`).
pub fn dump_dom(host: Option<&Host>, url: &str, extra: &[&str]) -> String {
    let mut args: Vec<String> = extra.iter().map(|a| (*a).to_owned()).collect();
    args.push("--dump-dom".to_owned());
    args.push(url.to_owned());
    chromium(host, &args)
}

/// Saves a screenshot of `url` at `size` ("w,h") to `file` (removed first), with `extra`
/// switches, and checks it is a PNG of more than 10 kB; prints its path.
pub fn screenshot(host: Option<&Host>, file: &Path, size: &str, url: &str, extra: &[&str]) {
    let _ = std::fs::remove_file(file);
    let mut args = vec![
        format!("--screenshot={}", file.display()),
        format!("--window-size={size}"),
    ];
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    args.push(url.to_owned());
    chromium(host, &args);
    let png = std::fs::read(file).unwrap_or_default();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "no screenshot at {}",
        file.display()
    );
    eprintln!("screenshot: {}", file.display());
}
