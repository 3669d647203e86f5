//! dhcpd's status page for DHCPv6 in a real browser (issue 18 over issue 16): ISC
//! `dhclient -6 -N` binds an address from a /64-sized pool in a namespace; Debian's chromium
//! (driven over the DevTools pipe, in the server's namespace) loads the page: the bindings table
//! lists the address with the DUID dhclient keeps in its lease file and the host name its Client
//! FQDN option gave, the pool's bar counts one used address of 2^63, `dhclient -6 -P`'s prefix is
//! listed and counted in the prefix pool's bar, searches by DUID, address, prefix and host name
//! find them, the DHCPv6 messages plot rises; logged
//! in with the admin key, the Release buttons end the address's and the prefix's bindings (as
//! `dhcpd release` does); at a phone's width (390 px) nothing scrolls sideways. Screenshots at a
//! phone's and a
//! desktop's size (pools, and the bindings with their Release buttons) go to
//! `<target>/page-shots/dhcpd-v6-*.png`.

mod common;
use common::dhclient6::last_item;
use common::v6link::wait_link_local;

use std::net::Ipv6Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use e2e::browser::{have_chromium, shots_dir};
use e2e::cdp::{PHONE, Tab};
use e2e::{Host, Lab};

const KEY: &str = "dhcpd-admin-key-for-the-v6-page";
const METRICS: &str = "10.98.0.1:9167";
const WAIT: Duration = Duration::from_secs(15);

/// A 2^63-address pool (the server's own fd00:97::1 stays outside) and a prefix pool.
const HOSTS: &str = r#"domain = "lan.test"
[[subnet]]
network = "10.98.0.0/24"
[[subnet.pool]]
range = "10.98.0.100-10.98.0.200"
[[subnet]]
name = "lan6"
network = "fd00:97::/64"
ra = false
[[subnet.pool]]
range = "fd00:97::8000:0:0:0-fd00:97::ffff:ffff:ffff:ffff"
[[subnet.pd-pool]]
prefix = "fd00:1700::/48"
delegated-length = 56
[dhcp]
lease-db = "leases.redb"
metrics = "10.98.0.1:9167"
admin-key-file = "admin.key"
"#;

/// Waits (bounded) until `f` holds, checking every 200 ms.
fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200)); // a poll, bounded by the deadline
    }
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

/// The distinct heights of the points drawn in the plot titled `title`.
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

/// dhclient's `default-duid "..."` (octal escapes for the bytes that are not printable) as
/// colon hex, as the page shows DUIDs.
fn duid_hex(quoted: &str) -> String {
    let s = quoted.trim_matches('"').as_bytes();
    let mut bytes = Vec::new();
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'\\' && i + 3 < s.len() && s[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let oct = std::str::from_utf8(&s[i + 1..i + 4]).unwrap();
            bytes.push(u8::from_str_radix(oct, 8).unwrap());
            i += 4;
        } else if s[i] == b'\\' && i + 1 < s.len() {
            bytes.push(s[i + 1]);
            i += 2;
        } else {
            bytes.push(s[i]);
            i += 1;
        }
    }
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// `dhclient -6 MODE -1` on `cl` (`-N` an address, `-P` a prefix) with the configuration
/// `config`; its lease file's text.
fn dhclient6(cl: &Host, mode: &str, config: &str, lf: &Path) -> String {
    let out = common::dhclient6::one_shot(cl, mode, config, lf);
    let text = std::fs::read_to_string(lf).unwrap_or_default();
    assert!(
        out.status.success(),
        "dhclient -6 {mode}: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// The DUID of a dhclient lease file, as the page shows it.
fn duid_of(text: &str) -> String {
    duid_hex(&last_item(text, "default-duid").unwrap_or_else(|| panic!("no default-duid: {text}")))
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

/// Whether `dhcpd leases --json` lists a binding of `addr`.
fn listed(srv: &Host, conf: &Path, state: &Path, addr: Ipv6Addr) -> bool {
    common::leases(srv, conf, state)
        .iter()
        .any(|r| r["family"] == "ipv6" && r["ip"].as_str() == Some(&addr.to_string()))
}

#[test]
fn page_lists_a_dhclient6_binding_counts_it_and_releases_it() {
    e2e::require_netns!("dhclient", "curl");
    if !have_chromium(module_path!()) {
        return;
    }
    let lab = Lab::new("dhcp6pg");
    let (srv, cl) = (lab.host("srv"), lab.host("cl"));
    for h in [&srv, &cl] {
        h.sysctl("net.ipv6.conf.all.accept_dad", "0");
        h.sysctl("net.ipv6.conf.default.accept_dad", "0");
        h.sysctl("net.ipv6.conf.default.accept_ra", "0");
    }
    lab.veth(&srv, "eth0", &cl, "eth0");
    srv.add_addr("eth0", "10.98.0.1/24");
    srv.ip(&["addr", "add", "fd00:97::1/64", "dev", "eth0", "nodad"]);
    for h in [&srv, &cl] {
        wait_link_local(h);
    }
    let dir = lab.dir();
    let conf = dir.join("hosts.toml");
    std::fs::write(&conf, HOSTS).unwrap();
    std::fs::write(dir.join("admin.key"), format!("{KEY}\n")).unwrap();
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    let _d = srv
        .process(common::BIN)
        .args([
            "--config",
            conf.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
        ])
        .env("DHCPD_PAGE_SAMPLE_MS", "200")
        .ready(e2e::Ready::Notify)
        .timeout(Duration::from_secs(10))
        .spawn();

    // Before any client: the pool is empty, its size readable, and the plot has points (a
    // rate needs a sample in the slot after the first: wait, bounded).
    let page = raw(&srv, "");
    assert!(
        page.contains("0</b> used, 2^63 free, 0 declined of 2^63"),
        "{page}"
    );
    wait_until("points in the DHCPv6 plot", Duration::from_secs(40), || {
        !plot_ys(&raw(&srv, ""), "DHCPv6 messages").is_empty()
    });
    assert_eq!(plot_ys(&raw(&srv, ""), "DHCPv6 messages").len(), 1);

    let lf = dir.join("dhclient6.leases");
    let text = dhclient6(&cl, "-N", "send fqdn.fqdn \"Page6Host.\";\n", &lf);
    let addr: Ipv6Addr = last_item(&text, "iaaddr")
        .unwrap_or_else(|| panic!("no iaaddr: {text}"))
        .parse()
        .unwrap();
    let duid = duid_of(&text);
    assert!(listed(&srv, &conf, &state, addr));

    // The pool's bar counts it once the census ran (every 5 s); the plot rose.
    wait_until(
        "the v6 pool bar counting one",
        Duration::from_secs(20),
        || raw(&srv, "").contains("data-used=\"1\" data-declined=\"0\""),
    );
    // A delegated prefix (`dhclient -6 -P`): the prefix pool's bar counts it.
    let text = dhclient6(&cl, "-P", "", &dir.join("dhclient6-pd.leases"));
    let prefix: ipnet::Ipv6Net = last_item(&text, "iaprefix")
        .unwrap_or_else(|| panic!("no iaprefix: {text}"))
        .parse()
        .unwrap();
    let pd_duid = duid_of(&text);
    assert!(listed(&srv, &conf, &state, prefix.network()));
    wait_until(
        "the prefix pool bar counting one",
        Duration::from_secs(20),
        || raw(&srv, "").contains("data-prefix=\"fd00:1700::/48\" data-used=\"1\""),
    );
    wait_until("a rise in the DHCPv6 plot", Duration::from_secs(30), || {
        plot_ys(&raw(&srv, ""), "DHCPv6 messages").len() > 1
    });

    // In the browser: the binding with its DUID, the bar; searches by DUID and address.
    let mut tab = Tab::open(Some(&srv));
    tab.navigate(&format!("http://{METRICS}/"));
    let d = tab.dom();
    let row = d
        .split("<tr data-binding=")
        .skip(1)
        .find(|r| r.starts_with(&format!("\"{addr}\"")))
        .unwrap_or_else(|| panic!("no row for {addr}: {d}"));
    assert!(row.contains(&duid), "{duid} not in {row}");
    // The name its Client FQDN gave, as the binding keeps it (lower case, DNS-safe).
    assert!(row.contains(">page6host<"), "{row}");
    assert!(row.contains("IA_NA") && row.contains(">bound<"), "{row}");
    assert!(
        d.contains("aria-label=\"used 1, declined 0, free 2^63 − 1\""),
        "{d}"
    );
    assert!(
        d.contains("1</b> used, 2^63 − 1 free, 0 declined of 2^63"),
        "{d}"
    );
    assert!(d.contains("1</b> delegated, 255 free of 256"), "{d}");
    let pd_row = d
        .split("<tr data-binding=")
        .skip(1)
        .find(|r| r.starts_with(&format!("\"{prefix}\"")))
        .unwrap_or_else(|| panic!("no row for {prefix}: {d}"));
    assert!(
        pd_row.contains("IA_PD") && pd_row.contains(&pd_duid),
        "{pd_row}"
    );
    // Searches: by DUID (with and without colons: dhclient may keep one DUID for both runs),
    // by address, by prefix, by host name.
    let same = 1 + usize::from(pd_duid == duid);
    for (q, n) in [
        (duid.clone(), same),
        (duid.replace(':', ""), same),
        (addr.to_string(), 1),
        (prefix.to_string(), 1),
        // By host name, a part of it, any case, as v4 names.
        ("PAGE6host".to_owned(), 1),
        ("ge6ho".to_owned(), 1),
    ] {
        tab.navigate(&format!("http://{METRICS}/?q={q}"));
        let d = tab.dom();
        assert_eq!(d.matches("<tr data-binding=").count(), n, "?q={q}: {d}");
    }
    tab.navigate(&format!("http://{METRICS}/?q=00:99:no-such"));
    assert!(tab.dom().contains("No DHCPv6 binding matches."));

    // Log in; release the binding from the page.
    tab.navigate(&format!("http://{METRICS}/"));
    assert!(!tab.dom().contains("data-action=\"release\""));
    tab.eval(&format!(
        "document.getElementById('admin-key').value = {}",
        serde_json::json!(KEY)
    ));
    click(&mut tab, "form.login button");
    let button = format!("button[data-action=\"release\"][data-arg=\"{addr}\"]");
    tab.wait_for(&present(&button), WAIT);
    let shots = shots_dir(env!("CARGO_TARGET_TMPDIR"));
    let scroll_to = |tab: &mut Tab, id: &str| {
        tab.eval(&format!("document.getElementById('{id}').scrollIntoView()"));
    };
    tab.viewport(PHONE.0, PHONE.1, true);
    scroll_to(&mut tab, "pools6");
    tab.screenshot(&shots.join("dhcpd-v6-phone.png"), false);
    // On a phone nothing scrolls sideways, not even the bindings with their long addresses,
    // DUIDs and Release buttons: the table turns into cards, one labelled cell a line.
    let wide = tab.sideways();
    tab.screenshot(&shots.join("dhcpd-v6-phone-full.png"), true);
    assert!(wide.is_empty(), "scrolls sideways at 390 px: {wide:?}");
    tab.viewport(1280, 900, false);
    scroll_to(&mut tab, "pools6");
    tab.screenshot(&shots.join("dhcpd-v6-desktop.png"), false);
    scroll_to(&mut tab, "leases6");
    tab.screenshot(&shots.join("dhcpd-v6-bindings.png"), false);
    click(&mut tab, &button);
    tab.wait_for(&present("#admin-result"), WAIT);
    let d = tab.dom();
    assert!(
        d.contains(&format!("id=\"admin-result\">released {addr}<")),
        "{d}"
    );
    assert!(!d.contains(&format!("data-binding=\"{addr}\"")), "{d}");
    assert!(
        !listed(&srv, &conf, &state, addr),
        "still bound after the release"
    );
    // The prefix too (the control socket's `release PREFIX/LEN`).
    let button = format!("button[data-action=\"release\"][data-arg=\"{prefix}\"]");
    tab.wait_for(&present(&button), WAIT);
    click(&mut tab, &button);
    tab.wait_for(
        &format!(
            "(document.getElementById('admin-result') || {{}}).textContent === {}",
            serde_json::json!(format!("released {prefix}"))
        ),
        WAIT,
    );
    assert!(
        !listed(&srv, &conf, &state, prefix.network()),
        "prefix still delegated after the release"
    );
}
