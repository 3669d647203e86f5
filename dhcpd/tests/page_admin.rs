//! dhcpd's page admin action in a real browser (issue 18): with `[dhcp] admin-key-file` set,
//! dhclient takes a lease on the seed LAN, Debian's chromium (driven over the DevTools pipe, in
//! the server's namespace) logs in with the key and clicks "Release" on that lease; the page
//! says so and lists the lease as released; `dhcpd leases` agrees. A POST without the page's
//! token or with a wrong key is refused and releases nothing. Screenshots at a phone's and a
//! desktop's size go to `<target>/page-shots/dhcpd-admin-*.png`.

mod common;

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use common::*;
use e2e::browser::{have_chromium, shots_dir};
use e2e::cdp::Tab;
use e2e::{Host, SeedLan};

const KEY: &str = "dhcpd-admin-key-for-the-page";
const URL: &str = "http://192.168.10.1:9167/";
const WAIT: Duration = Duration::from_secs(15);

const DHCP: &str = r#"[dhcp]
lease-db = "leases.redb"
metrics = "192.168.10.1:9167"
admin-key-file = "admin.key"
"#;

fn kill_pidfile(path: &Path) {
    if let Ok(s) = std::fs::read_to_string(path)
        && let Ok(pid) = s.trim().parse::<i32>()
    {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
}

/// dhclient once on the client host; the address it got.
fn dhclient(lan: &SeedLan) -> Ipv4Addr {
    let dir = lan.lab.dir();
    let cf = dir.join("dhclient.conf");
    std::fs::write(&cf, "send host-name \"admin-laptop\";\n").unwrap();
    let lf = dir.join("dhclient.leases");
    let pf = dir.join("dhclient.pid");
    let out = lan.client.run(&[
        "dhclient",
        "-4",
        "-1",
        "-v",
        "-sf",
        "/bin/true",
        "-cf",
        cf.to_str().unwrap(),
        "-lf",
        lf.to_str().unwrap(),
        "-pf",
        pf.to_str().unwrap(),
        "eth0",
    ]);
    kill_pidfile(&pf);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&lf).unwrap();
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("fixed-address"))
        .map(|v| v.trim().trim_end_matches(';').parse().unwrap())
        .unwrap_or_else(|| panic!("no lease: {text}"))
}

fn present(selector: &str) -> String {
    format!(
        "document.querySelector({}) !== null",
        serde_json::json!(selector)
    )
}

fn click(tab: &mut Tab, selector: &str) {
    let js = format!(
        "(() => {{ const b = document.querySelector({}); if (!b) return false; b.click(); return true; }})()",
        serde_json::json!(selector)
    );
    assert_eq!(tab.eval(&js), serde_json::json!(true), "no {selector}");
}

/// `curl` in `host`: the status line and headers of a form POST to `path`.
fn post(host: &Host, path: &str, cookie: Option<&str>, body: &str) -> String {
    let mut args = vec![
        "curl".to_owned(),
        "-sS".into(),
        "-i".into(),
        "--max-time".into(),
        "5".into(),
        "--data".into(),
        body.to_owned(),
    ];
    if let Some(c) = cookie {
        args.extend(["-H".into(), format!("Cookie: {c}")]);
    }
    args.push(format!("{}{path}", URL.trim_end_matches('/')));
    String::from_utf8_lossy(&host.run(&args).stdout).into_owned()
}

fn state_of(lan: &SeedLan, conf: &Path, dir: &Path, ip: Ipv4Addr) -> String {
    let rows = leases(&lan.main, conf, dir);
    lease_of(&rows, ip)
        .map(|r| r["state"].as_str().unwrap_or_default().to_owned())
        .unwrap_or_default()
}

#[test]
fn release_from_the_page_and_refusals() {
    e2e::require_netns!("dhclient", "curl");
    if !have_chromium(module_path!()) {
        return;
    }
    let lan = SeedLan::build("dhcpadm");
    let dir = lan.lab.dir();
    std::fs::write(dir.join("admin.key"), format!("{KEY}\n")).unwrap();
    let conf = write_config(dir, DHCP, "");
    let _d = start(&lan.main, &conf, dir);
    let ip = dhclient(&lan);
    assert_eq!(state_of(&lan, &conf, dir, ip), "bound");

    // Refusals over plain HTTP first: they change nothing.
    let wrong = post(&lan.main, "/login", None, "key=not-the-admin-key");
    assert!(wrong.starts_with("HTTP/1.1 403"), "{wrong}");
    let ok = post(&lan.main, "/login", None, &format!("key={KEY}"));
    assert!(ok.starts_with("HTTP/1.1 303"), "{ok}");
    let cookie = ok
        .lines()
        .find_map(|l| l.strip_prefix("Set-Cookie: "))
        .and_then(|c| c.split(';').next())
        .unwrap_or_else(|| panic!("no cookie: {ok}"))
        .to_owned();
    let no_token = post(
        &lan.main,
        "/action",
        Some(&cookie),
        &format!("cmd=release&arg={ip}"),
    );
    assert!(no_token.starts_with("HTTP/1.1 403"), "{no_token}");
    let bad_token = post(
        &lan.main,
        "/action",
        Some(&cookie),
        &format!("csrf=0123&cmd=release&arg={ip}"),
    );
    assert!(bad_token.starts_with("HTTP/1.1 403"), "{bad_token}");
    let no_session = post(
        &lan.main,
        "/action",
        None,
        &format!("csrf=0123&cmd=release&arg={ip}"),
    );
    assert!(no_session.starts_with("HTTP/1.1 403"), "{no_session}");
    assert_eq!(state_of(&lan, &conf, dir, ip), "bound");

    // In the browser: log in, release the lease.
    let mut tab = Tab::open(Some(&lan.main));
    tab.navigate(URL);
    assert!(!tab.dom().contains("data-action=\"release\""));
    tab.eval(&format!(
        "document.getElementById('admin-key').value = {}",
        serde_json::json!(KEY)
    ));
    click(&mut tab, "form.login button");
    let button = format!("button[data-action=\"release\"][data-arg=\"{ip}\"]");
    tab.wait_for(&present(&button), WAIT);
    let d = tab.dom();
    assert!(d.contains("admin-laptop"), "{d}");
    let shots = shots_dir(env!("CARGO_TARGET_TMPDIR"));
    tab.viewport(390, 844, true);
    tab.screenshot(&shots.join("dhcpd-admin-phone.png"), false);
    tab.viewport(1280, 900, false);
    tab.screenshot(&shots.join("dhcpd-admin-desktop.png"), false);
    click(&mut tab, &button);
    tab.wait_for(&present("#admin-result"), WAIT);
    let d = tab.dom();
    assert!(
        d.contains(&format!("id=\"admin-result\">released {ip}<")),
        "{d}"
    );
    assert!(!d.contains(&format!("data-arg=\"{ip}\"")), "{d}");
    assert_eq!(state_of(&lan, &conf, dir, ip), "released");
    tab.navigate(&format!("{URL}?state=released"));
    let d = tab.dom();
    assert!(
        d.contains(&format!("<td data-label=\"Address\">{ip}</td>")),
        "{d}"
    );
}
