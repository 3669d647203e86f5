//! Helpers for lbd's end-to-end tests: tiny web servers that say who they are, the example host
//! file with short check intervals, curl from the outside client.
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use e2e::{Host, Proc, Ready, SeedLan};

pub mod failover;
pub mod seg6;
pub mod vrrp;

pub const BIN: &str = env!("CARGO_BIN_EXE_lbd");

/// Check interval and fall count written into the test host file.
pub const INTERVAL: Duration = Duration::from_millis(200);
pub const FALL: u32 = 2;

/// `busybox httpd` on port 80 in `host`, serving a page with `name` in it.
pub fn web(host: &Host, name: &str) -> Proc {
    web_port(host, name, 80)
}

/// `busybox httpd` on `port` in `host`, serving a page with `name` in it.
pub fn web_port(host: &Host, name: &str, port: u16) -> Proc {
    let dir = host.dir().join(format!("www-{name}-{port}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("index.html"), format!("{name}\n")).unwrap();
    host.process("busybox")
        .args([
            "httpd",
            "-f",
            "-p",
            &port.to_string(),
            "-h",
            dir.to_str().unwrap(),
        ])
        .name(&format!("httpd-{name}-{port}"))
        .ready(Ready::Tcp(port))
        .timeout(Duration::from_secs(10))
        .spawn()
}

/// The example host file with the checks shortened, VRRP removed, and `extra` replacing the
/// `scheduler = "rr"` line of the www3 service (e.g. to add `dataplane = "proxy"`).
pub fn host_file(lan: &SeedLan, service_extra: &str) -> PathBuf {
    host_file_with(lan, |t| {
        t.replace(
            "scheduler = \"rr\"",
            &format!("scheduler = \"rr\"\n{service_extra}"),
        )
    })
}

/// The example host file with the checks shortened and VRRP removed, then `edit`ed (e.g. to
/// replace the `backends = ...` and `scheduler = "rr"` lines of the www3 service).
pub fn host_file_with(lan: &SeedLan, edit: impl FnOnce(String) -> String) -> PathBuf {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../etc/hosts.toml")).unwrap();
    let check_line = text
        .lines()
        .find(|l| l.starts_with("check = "))
        .expect("example has a check line")
        .to_owned();
    let vrrp_line = text
        .lines()
        .find(|l| l.starts_with("vrrp = "))
        .expect("example has a vrrp line")
        .to_owned();
    let text = text
        .replace(
            &check_line,
            &format!(
                "check = {{ type = \"http\", path = \"/\", expect = \"200-399\", interval = \"{}ms\", timeout = \"150ms\", rise = 2, fall = {FALL} }}",
                INTERVAL.as_millis()
            ),
        )
        .replace(&vrrp_line, "metrics = \"127.0.0.1:9169\"");
    let text = edit(text);
    let path = lan.lab.dir().join("hosts.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Starts lbd in main and waits for READY=1.
pub fn lbd(lan: &SeedLan, conf: &std::path::Path) -> Proc {
    let rt = lan.lab.dir().join("run-main");
    lan.main
        .process(BIN)
        .args([
            "--config",
            conf.to_str().unwrap(),
            "--runtime-dir",
            rt.to_str().unwrap(),
        ])
        .name("lbd")
        .ready(Ready::Notify)
        .timeout(Duration::from_secs(15))
        .spawn()
}

/// One request from the outside client to the VIP: the body, or the failure.
pub fn get(lan: &SeedLan) -> Result<String, String> {
    get_from(lan, "192.168.1.50")
}

/// One request from the outside client, sent from its address `src`.
pub fn get_from(lan: &SeedLan, src: &str) -> Result<String, String> {
    let out = lan
        .outside
        .run_timeout(
            &[
                "curl",
                "-sS",
                "--max-time",
                "2",
                "--interface",
                src,
                "http://192.168.1.120/",
            ],
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

/// `n` requests; panics on any failure.
pub fn gets(lan: &SeedLan, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| get(lan).unwrap_or_else(|e| panic!("request {i} failed: {e}")))
        .collect()
}

/// Requests alternate between web1 and web2.
pub fn assert_alternating(bodies: &[String]) {
    assert!(
        bodies.iter().all(|b| b == "web1" || b == "web2"),
        "{bodies:?}"
    );
    for w in bodies.windows(2) {
        assert_ne!(w[0], w[1], "not alternating: {bodies:?}");
    }
}

/// The kill-web1 / restart-web1 scenario shared by both data planes.
pub fn failover_scenario(lan: &SeedLan, conf: &std::path::Path, lbd: &mut Proc, web1: Proc) {
    assert_alternating(&gets(lan, 6));

    // web1's server stops: within fall x interval (plus one check timeout) lbd takes it out.
    let cursor = lbd.log_cursor();
    let t0 = Instant::now();
    drop(web1);
    let bound = INTERVAL * (FALL + 1) + Duration::from_millis(150) + Duration::from_millis(500);
    lbd.wait_for_log_after(cursor, "backend down", bound)
        .unwrap_or_else(|e| panic!("web1 not taken out: {e}"));
    println!("web1 taken out {:?} after its server stopped", t0.elapsed());
    let after = gets(lan, 10);
    assert!(after.iter().all(|b| b == "web2"), "{after:?}");
    let st = status(lan, conf);
    let b = &st["services"][0]["backends"];
    assert_eq!(b[0]["health"], "down", "{st}");
    assert_eq!(b[0]["in_use"], false, "{st}");
    assert_eq!(b[1]["health"], "up", "{st}");
    let text = status_text(lan, conf);
    assert!(
        text.contains("192.168.10.10:80 (web1)") && text.contains("down"),
        "{text}"
    );
    println!("{text}");

    // web1 comes back: it rejoins after rise checks.
    let cursor = lbd.log_cursor();
    let _web1 = web(&lan.web1, "web1");
    lbd.wait_for_log_after(cursor, "backend up", Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("web1 did not rejoin: {e}"));
    let back = gets(lan, 6);
    assert!(back.iter().any(|b| b == "web1"), "{back:?}");
    assert!(back.iter().any(|b| b == "web2"), "{back:?}");
}

/// The addresses on main's br0.
pub fn br0_addrs(lan: &SeedLan) -> Vec<String> {
    lan.main.ipv4_addrs("br0")
}

fn status_args(lan: &SeedLan, conf: &std::path::Path, json: bool) -> Vec<String> {
    let rt = lan.lab.dir().join("run-main");
    let mut v = vec![
        BIN.to_owned(),
        "status".into(),
        "--config".into(),
        conf.display().to_string(),
        "--runtime-dir".into(),
        rt.display().to_string(),
    ];
    if json {
        v.push("--json".into());
    }
    v
}

/// `lbd status --json` in main.
pub fn status(lan: &SeedLan, conf: &std::path::Path) -> serde_json::Value {
    let out = lan.main.run(&status_args(lan, conf, true));
    serde_json::from_slice(&out.stdout).expect("status is JSON")
}

/// `lbd status` in main.
pub fn status_text(lan: &SeedLan, conf: &std::path::Path) -> String {
    String::from_utf8_lossy(&lan.main.run(&status_args(lan, conf, false)).stdout).into_owned()
}

/// `GET http://127.0.0.1:9169/metrics` inside `host`.
pub fn scrape(host: &Host) -> String {
    let out = host.run(&[
        "curl",
        "-sS",
        "--max-time",
        "2",
        "http://127.0.0.1:9169/metrics",
    ]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The value of the sample whose name and labels are exactly `series` (e.g.
/// `lbd_applies_total` or `lbd_backend_up{service="www3",backend="192.168.10.10:80"}`).
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}
