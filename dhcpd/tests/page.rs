//! dhcpd's status page in a real browser: dhclient gets leases on the seed LAN, Debian's chromium
//! (headless, in the server's namespace) loads the page from the metrics address and the test
//! reads the DOM: the lease with its host name, search by MAC, paging links, the exchanges plot
//! with points after traffic, hostile text shown as text; at a phone's width (390 px, over the
//! DevTools protocol) nothing scrolls sideways. Screenshots (desktop, phone, the whole page at a
//! phone's width) go to `<target>/page-shots/dhcpd-*.png`.

mod common;

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use dhcproto::v4::{DhcpOption, MessageType};
use e2e::cdp::Tab;
use e2e::{Host, SeedLan, browser};

const METRICS: &str = "192.168.10.1:9167";

const DHCP: &str = r#"[dhcp]
decline-probation = "1h"
lease-db = "leases.redb"
metrics = "192.168.10.1:9167"
"#;

fn dom(host: &Host, query: &str) -> String {
    let d = browser::dump_dom(Some(host), &format!("http://{METRICS}/{query}"), &[]);
    assert!(d.contains("</html>"), "no document: {d}");
    d
}

fn shoot(host: &Host, name: &str, size: &str) {
    let file = browser::shots_dir(env!("CARGO_TARGET_TMPDIR")).join(format!("dhcpd-{name}.png"));
    browser::screenshot(Some(host), &file, size, &format!("http://{METRICS}/"), &[]);
}

/// The page as the server sends it (curl in the server's namespace).
fn raw(host: &Host, query: &str) -> String {
    let out = host.run(&[
        "curl",
        "-sS",
        "--max-time",
        "10",
        &format!("http://{METRICS}/{query}"),
    ]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Points drawn in the plot titled `title`.
fn plot_points(dom: &str, title: &str) -> usize {
    let Some(fig) = dom
        .split("<figure class=\"plot\"")
        .skip(1)
        .find(|f| f.contains(&format!("<figcaption>{title}")))
    else {
        panic!("no plot {title}: {dom}")
    };
    let fig = &fig[..fig.find("</figure>").unwrap()];
    let mut drawn = fig.matches("<circle").count();
    for part in fig.split("<polyline points=\"").skip(1) {
        drawn += part[..part.find('"').unwrap()].split(' ').count();
    }
    drawn
}

/// The distinct heights of the points drawn in the plot titled `title`: one while every rate is
/// zero, more once a line rose.
fn plot_ys(dom: &str, title: &str) -> std::collections::BTreeSet<String> {
    let fig = dom
        .split("<figure class=\"plot\"")
        .skip(1)
        .find(|f| f.contains(&format!("<figcaption>{title}")))
        .unwrap_or_else(|| panic!("no plot {title}: {dom}"));
    let fig = &fig[..fig.find("</figure>").unwrap()];
    let mut ys = std::collections::BTreeSet::new();
    for part in fig.split("cy=\"").skip(1) {
        ys.insert(part[..part.find('"').unwrap()].to_owned());
    }
    for part in fig.split("<polyline points=\"").skip(1) {
        for xy in part[..part.find('"').unwrap()].split(' ') {
            ys.insert(xy.split(',').nth(1).unwrap_or_default().to_owned());
        }
    }
    ys
}

/// The lease table's rows (`<tr>` in its body) that contain `text`.
fn lease_rows_with<'a>(dom: &'a str, text: &str) -> Vec<&'a str> {
    let Some(start) = dom.find("id=\"lease-table\"") else {
        return Vec::new();
    };
    let table = &dom[start..];
    let table = &table[..table.find("</table>").unwrap()];
    table
        .split("<tr>")
        .skip(1)
        .filter(|r| r.contains(text))
        .collect()
}

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

/// dhclient once on the client host with `conf` as its configuration; the address it got.
fn dhclient(lan: &SeedLan, tag: &str, conf: &str) -> Ipv4Addr {
    let dir = lan.lab.dir();
    let cf = dir.join(format!("dhclient-{tag}.conf"));
    std::fs::write(&cf, conf).unwrap();
    let lf = dir.join(format!("dhclient-{tag}.leases"));
    let pf = dir.join(format!("dhclient-{tag}.pid"));
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

/// Waits (bounded) until `f` holds, checking every 200 ms.
fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn page_lists_leases_searches_plots_and_escapes() {
    e2e::require_netns!("dhclient", "curl");
    if !browser::have_chromium(module_path!()) {
        return;
    }
    let lan = SeedLan::build("dhcpg");
    let dir = lan.lab.dir();
    let conf = write_config(dir, DHCP, "");
    let _d = lan
        .main
        .process(BIN)
        .args([
            "--config",
            conf.to_str().unwrap(),
            "--state-dir",
            dir.to_str().unwrap(),
        ])
        .env("DHCPD_PAGE_SAMPLE_MS", "200")
        .ready(e2e::Ready::Notify)
        .timeout(Duration::from_secs(10))
        .spawn();

    // The sampler runs every 200 ms, the history's slots are 10 s: a rate needs a sample in the
    // slot after the first, so wait (bounded) for the plot to have points.
    wait_until(
        "points in the exchanges plot",
        Duration::from_secs(40),
        || plot_points(&raw(&lan.main, ""), "Exchanges") > 0,
    );
    assert_eq!(plot_ys(&raw(&lan.main, ""), "Exchanges").len(), 1);

    let ip = dhclient(&lan, "laptop", "send host-name \"laptop-page\";\n");
    // Another client id on the same MAC, with a hostile host name.
    let evil = dhclient(
        &lan,
        "evil",
        "send dhcp-client-identifier \"evil-client\";\nsend host-name \"<script>x</script>\";\n",
    );
    assert_ne!(ip, evil);

    // Traffic after the sampler has rated a slot, so the plot shows the exchanges as a rise.
    wait_until(
        "nonzero exchanges in the plot",
        Duration::from_secs(20),
        || plot_ys(&raw(&lan.main, ""), "Exchanges").len() >= 2,
    );
    let page = dom(&lan.main, "");
    let rows = lease_rows_with(&page, &format!(">{ip}<"));
    assert_eq!(rows.len(), 1, "lease {ip} not listed once: {page}");
    assert!(rows[0].contains("laptop-page"), "{}", rows[0]);
    assert!(rows[0].contains("02:00:00:00:10:99"), "{}", rows[0]);
    assert!(rows[0].contains("bound"), "{}", rows[0]);
    assert!(plot_points(&page, "Exchanges") > 0, "{page}");
    // Pool bar: the inner pool counts the two leases (the census runs every 5 s).
    assert!(page.contains("<svg class=\"bar\""), "{page}");
    assert!(page.contains("redb at"), "{page}");

    // The hostile host name: the server keeps only a label's characters, and whatever it keeps
    // is text, not markup.
    let evil_rows = lease_rows_with(&page, &format!(">{evil}<"));
    assert_eq!(evil_rows.len(), 1, "{page}");
    assert!(evil_rows[0].contains(">scriptxscript<"), "{}", evil_rows[0]);
    assert_eq!(page.matches("<script").count(), 1, "{page}");

    // Search by MAC (in dashes and capitals too) finds both leases of the MAC; by name only one.
    for q in ["02:00:00:00:10:99", "02-00-00-00-10-99"] {
        let found = dom(&lan.main, &format!("?q={q}"));
        assert_eq!(lease_rows_with(&found, "<td ").len(), 2, "{found}");
        assert_eq!(lease_rows_with(&found, "laptop-page").len(), 1, "{found}");
    }
    let by_name = dom(&lan.main, "?q=LAPTOP");
    assert_eq!(lease_rows_with(&by_name, "<td ").len(), 1, "{by_name}");
    let none = dom(&lan.main, "?q=nobody-here");
    assert!(none.contains("No lease matches."), "{none}");
    assert!(!none.contains("rel=\"next\""), "{none}");

    // A query with markup in it comes back as the search field's value, as text.
    let sent = raw(&lan.main, "?q=%3Cscript%3Ex%3C%2Fscript%3E");
    assert!(
        sent.contains("value=\"&lt;script&gt;x&lt;/script&gt;\""),
        "{sent}"
    );
    let hostile = dom(&lan.main, "?q=%3Cscript%3Ex%3C%2Fscript%3E");
    // Only the page's own script element; the query is the field's value, as text.
    assert_eq!(hostile.matches("<script").count(), 1, "{hostile}");
    assert!(
        hostile.contains("value=\"&lt;script&gt;x&lt;/script&gt;\""),
        "{hostile}"
    );

    // A crafted client takes an address and declines it: the page lists the decline, and the
    // pool's bar counts the address as declined once the census ran (every 5 s).
    const DECLINER: [u8; 6] = [2, 0, 0, 0, 0x10, 0x55];
    let declined = lan.client.enter(|| {
        let c = Crafted::client("eth0", DECLINER);
        let (ip, sid) = c.dora(BCAST67, 20);
        let mut m = c.msg(Some(MessageType::Decline), DECLINER, 30);
        m.opts_mut().insert(DhcpOption::RequestedIpAddress(ip));
        m.opts_mut().insert(DhcpOption::ServerIdentifier(sid));
        c.send(&m, BCAST67);
        ip
    });
    wait_until("the decline on the page", Duration::from_secs(15), || {
        let p = raw(&lan.main, "");
        p.contains("1 declined")
            && p.contains(&format!(
                "<td data-label=\"Address\">{declined}</td><td data-label=\"MAC\">02:00:00:00:10:55</td>"
            ))
    });
    let page = dom(&lan.main, "");
    let recent = &page[page.find("id=\"recent\"").unwrap()..];
    assert!(
        recent.contains(&format!("<td data-label=\"Address\">{declined}</td>")),
        "{recent}"
    );
    assert!(recent.contains("decline"), "{recent}");

    shoot(&lan.main, "desktop", "1280,900");
    shoot(&lan.main, "phone", "390,844");
    // On a phone nothing scrolls sideways, neither the page nor a box in it: the lease and
    // decline tables turn into cards, one labelled cell a line.
    let mut tab = Tab::on_phone(Some(&lan.main), &format!("http://{METRICS}/"));
    let wide = tab.sideways();
    let shots = browser::shots_dir(env!("CARGO_TARGET_TMPDIR"));
    tab.screenshot(&shots.join("dhcpd-phone-full.png"), true);
    assert!(wide.is_empty(), "scrolls sideways at 390 px: {wide:?}");
    drop(tab);

    // `dhcpd release IP` through the control socket: answered once durable, so the database
    // (read by `dhcpd leases`) and the page show it released at once.
    let release = |ip: Ipv4Addr| {
        lan.main.run_unchecked(&[
            BIN,
            "release",
            &ip.to_string(),
            "--config",
            conf.to_str().unwrap(),
            "--state-dir",
            dir.to_str().unwrap(),
        ])
    };
    let out = release(evil);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("released {evil}")
    );
    let rows = leases(&lan.main, &conf, dir);
    assert_eq!(
        lease_of(&rows, evil).unwrap()["state"],
        "released",
        "{rows:?}"
    );
    assert_eq!(lease_of(&rows, ip).unwrap()["state"], "bound", "{rows:?}");
    let after = dom(&lan.main, "?state=released");
    let released = lease_rows_with(&after, &format!(">{evil}<"));
    assert_eq!(released.len(), 1, "{after}");
    assert!(released[0].contains(">released<"), "{}", released[0]);
    // Twice: nothing is bound there any more.
    let again = release(evil);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains(&format!("no lease is bound on {evil}")),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}
