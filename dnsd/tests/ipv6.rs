//! End-to-end over IPv6 on the seed LAN: the example host file with its IPv6 example
//! uncommented (fd00:10::/64 on the inner LAN, main fd00:10::1, web1 fd00:10::a), dnsd on main,
//! dig and nsupdate from web1.

use std::path::{Path, PathBuf};
use std::time::Duration;

use e2e::{Host, Ready, SeedLan};

mod common;

use common::*;

const MAIN6: &str = "fd00:10::1";
const WEB16: &str = "fd00:10::a";
/// The ip6.arpa zone of fd00:10::/64.
const ZONE6: &str = "0.0.0.0.0.0.0.0.0.1.0.0.0.0.d.f.ip6.arpa";

const DNS: &str = r#"[dns]
update-keys = ["dhcp-update"]
"#;

/// The example host file with `dns` as `[dns]`, its IPv6 subnet uncommented and IPv6 addresses
/// for main and web1.
fn host_file6(dir: &Path, dns: &str) -> PathBuf {
    let p = host_file(dir, dns);
    let text = std::fs::read_to_string(&p).unwrap();
    let start = text
        .find("# [[subnet]]\n# name = \"inner6\"")
        .expect("the example's IPv6 block");
    let end = start + text[start..].find("\n\n").unwrap_or(text.len() - start);
    let block: String = text[start..end]
        .lines()
        .map(|l| format!("{}\n", l.strip_prefix("# ").unwrap_or(l)))
        .collect();
    let text = format!("{}{block}{}", &text[..start], &text[end..])
        .replace(
            "[host.main]\n",
            &format!("[host.main]\nipv6 = \"{MAIN6}\"\n"),
        )
        .replace(
            "[host.web1]\n",
            &format!("[host.web1]\nipv6 = \"{WEB16}\"\n"),
        );
    std::fs::write(&p, text).unwrap();
    p
}

/// `addr` on `iface` of `h`, usable at once (no duplicate address detection).
fn add_addr6(h: &Host, iface: &str, addr: &str) {
    h.sysctl(&format!("net.ipv6.conf.{iface}.accept_dad"), "0");
    h.ip(&["-6", "addr", "add", addr, "dev", iface, "nodad"]);
}

fn lan6(prefix: &str) -> SeedLan {
    let lan = SeedLan::build(prefix);
    add_addr6(&lan.main, "p10p1", &format!("{MAIN6}/64"));
    add_addr6(&lan.web1, "eth0", &format!("{WEB16}/64"));
    lan
}

/// web1 adds the PTR fd00:10::99 -> dyn6.it-ishin.com. to dnsd's IPv6 reverse zone by a signed
/// update over IPv6.
fn add_dyn6_ptr(w: &Host) {
    let ptr = "9.9.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.0.d.f.ip6.arpa";
    let out = nsupdate(
        w,
        KEY,
        &format!(
            "server {MAIN6}\nzone {ZONE6}\nupdate add {ptr} 300 PTR dyn6.it-ishin.com.\nsend\n"
        ),
    );
    assert!(out.status.success(), "{out:?}");
}

/// Whether `secondary` answers the PTR of [`add_dyn6_ptr`] within 10 s.
fn dyn6_ptr_reaches(w: &Host, secondary: &str) -> bool {
    wait_until(Duration::from_secs(10), || {
        short(w, secondary, &["-x", "fd00:10::99"]) == ["dyn6.it-ishin.com."]
    })
}

#[test]
fn ip6_arpa_reverse_zone_answers_and_takes_updates() {
    e2e::require_netns!("dig", "nsupdate");
    let lan = lan6("dnsd6rev");
    let dir = lan.lab.dir().to_owned();
    let conf = host_file6(&dir, DNS);
    let _d = spawn_dnsd(&lan.main, &conf, &dir.join("state"), &[]);
    let s = "@192.168.10.1";
    let w = &lan.web1;
    assert_eq!(short(w, s, &["-x", WEB16]), ["web1.it-ishin.com."]);
    assert_eq!(short(w, s, &["-x", MAIN6]), ["main.it-ishin.com."]);
    assert_eq!(short(w, s, &["web1.it-ishin.com", "AAAA"]), [WEB16]);
    // SOA and NS as for the in-addr.arpa zones.
    assert!(soa_serial(w, s, ZONE6) > 1_000_000_000);
    assert_eq!(
        short(w, s, &[ZONE6, "SOA"])[0]
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>(),
        short(w, s, &["10.168.192.in-addr.arpa", "SOA"])[0]
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
    );
    assert_eq!(short(w, s, &[ZONE6, "NS"]), ["main.it-ishin.com."]);
    let out = dig(w, &[s, "-x", "fd00:10::99"]);
    assert!(
        out.contains("status: NXDOMAIN") && out.contains("SOA"),
        "{out}"
    );

    // A dynamic PTR, signed with the update key, as for in-addr.arpa.
    let ptr = "9.9.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.0.d.f.ip6.arpa";
    let before = soa_serial(w, s, ZONE6);
    let out = nsupdate(
        w,
        KEY,
        &format!(
            "server 192.168.10.1\nzone {ZONE6}\nupdate add {ptr} 300 PTR dyn6.it-ishin.com.\nsend\n"
        ),
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(short(w, s, &["-x", "fd00:10::99"]), ["dyn6.it-ishin.com."]);
    assert!(soa_serial(w, s, ZONE6) > before);
    // A name the host table defines stays refused.
    let web1ptr = "a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.0.d.f.ip6.arpa";
    let out = nsupdate(
        w,
        KEY,
        &format!("server 192.168.10.1\nzone {ZONE6}\nupdate delete {web1ptr} PTR\nsend\n"),
    );
    assert!(!out.status.success(), "{out:?}");
    assert_eq!(short(w, s, &["-x", WEB16]), ["web1.it-ishin.com."]);
    // Unsigned: refused.
    let out = lan
        .web1
        .run_timeout(
            &["nsupdate", "-t", "3"],
            Some(
                format!("server 192.168.10.1\nzone {ZONE6}\nupdate delete {ptr} PTR\nsend\n")
                    .as_bytes(),
            ),
            Duration::from_secs(20),
        )
        .unwrap();
    assert!(!out.status.success(), "{out:?}");
    assert_eq!(short(w, s, &["-x", "fd00:10::99"]), ["dyn6.it-ishin.com."]);
}

#[test]
fn listens_on_the_servers_ipv6_address_and_loopback_by_default() {
    e2e::require_netns!("dig");
    let lan = lan6("dnsd6listen");
    let dir = lan.lab.dir().to_owned();
    let conf = host_file6(&dir, DNS);
    let _d = spawn_dnsd(&lan.main, &conf, &dir.join("state"), &[]);
    let s6 = format!("@{MAIN6}");
    let w = &lan.web1;
    assert_eq!(short(w, &s6, &["-6", "web1.it-ishin.com", "AAAA"]), [WEB16]);
    assert_eq!(
        short(w, &s6, &["-6", "+tcp", "-x", WEB16]),
        ["web1.it-ishin.com."]
    );
    assert_eq!(
        short(w, &s6, &["-6", "web1.it-ishin.com", "A"]),
        ["192.168.10.10"]
    );
    assert_eq!(
        short(&lan.main, "@::1", &["main.it-ishin.com", "AAAA"]),
        [MAIN6]
    );
    assert_eq!(
        short(&lan.main, "@::1", &["+tcp", "-x", MAIN6]),
        ["main.it-ishin.com."]
    );
    // Today's IPv4 addresses stay.
    assert_eq!(
        short(w, "@192.168.10.1", &["web1.it-ishin.com", "AAAA"]),
        [WEB16]
    );
    assert_eq!(
        short(&lan.main, "@127.0.0.1", &["web1.it-ishin.com", "AAAA"]),
        [WEB16]
    );
}

#[test]
fn nsd_secondary_transfers_over_ipv6_and_follows_notify() {
    e2e::require_netns!("dig", "nsupdate", "nsd");
    let lan = lan6("dnsd6nsd");
    let dir = lan.lab.dir().to_owned();
    let dns = format!("{DNS}secondary = [{{ address = \"{WEB16}\" }}]\n");
    let conf = host_file6(&dir, &dns);
    let _d = spawn_dnsd(&lan.main, &conf, &dir.join("state"), &[]);
    let nsd_dir = dir.join("nsd");
    std::fs::create_dir_all(&nsd_dir).unwrap();
    let nd = nsd_dir.display();
    let zone = |name: &str| {
        format!(
            "zone:\n  name: {name}\n  zonefile: \"{nd}/{name}.zone\"\n  \
             allow-notify: {MAIN6} NOKEY\n  request-xfr: AXFR {MAIN6} NOKEY\n"
        )
    };
    std::fs::write(
        nsd_dir.join("nsd.conf"),
        format!(
            "server:\n  ip-address: {WEB16}\n  port: 53\n  username: \"\"\n  chroot: \"\"\n  zonesdir: \"{nd}\"\n  \
             database: \"\"\n  pidfile: \"{nd}/nsd.pid\"\n  xfrdfile: \"{nd}/xfrd.state\"\n  zonelistfile: \"{nd}/zone.list\"\n  \
             rrl-ratelimit: 0\n  verbosity: 2\nremote-control:\n  control-enable: no\n{}{}",
            zone("it-ishin.com"),
            zone(ZONE6)
        ),
    )
    .unwrap();
    let _nsd = lan.web1.spawn_daemon(
        "nsd",
        &["-d", "-c", nsd_dir.join("nsd.conf").to_str().unwrap()],
        Ready::Udp(53),
        Duration::from_secs(10),
    );
    let w = &lan.web1;
    let primary = format!("@{MAIN6}");
    let secondary = format!("@{WEB16}");
    for z in ["it-ishin.com", ZONE6] {
        let serial = soa_serial(w, &primary, z);
        assert!(
            wait_until(Duration::from_secs(15), || short(
                w,
                &secondary,
                &[z, "SOA"]
            )
            .first()
            .is_some_and(|l| l.contains(&serial.to_string()))),
            "NSD did not transfer {z} over IPv6"
        );
    }
    assert_eq!(short(w, &secondary, &["-x", WEB16]), ["web1.it-ishin.com."]);
    assert_eq!(
        short(w, &secondary, &["main.it-ishin.com", "AAAA"]),
        [MAIN6]
    );
    // A dynamic PTR reaches NSD after the NOTIFY over IPv6 (its refresh timer is an hour).
    add_dyn6_ptr(w);
    assert!(
        dyn6_ptr_reaches(w, &secondary),
        "NSD did not pick up the change after NOTIFY"
    );
    // The transfer is refused to a source that is not a secondary (main over ::1).
    let out = dig(&lan.main, &["@::1", ZONE6, "AXFR"]);
    assert!(
        out.contains("Transfer failed") || !out.contains("SOA"),
        "{out}"
    );
}

fn status(out: &str) -> &str {
    out.split("status: ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or("(no answer)")
}

#[test]
fn forwarding_over_ipv6_for_the_ipv6_subnets() {
    e2e::require_netns!("dig");
    let lan = lan6("dnsd6fwd");
    // The outer segment gets fd00:1::/64: router ::1, main ::2, outside ::50.
    add_addr6(&lan.router, "eth0", "fd00:1::1/64");
    add_addr6(&lan.main, "br0", "fd00:1::2/64");
    add_addr6(&lan.outside, "eth0", "fd00:1::50/64");
    let dir = lan.lab.dir().to_owned();
    // The "internet": a second dnsd on the router, reached over IPv6 only.
    let up = dir.join("up");
    std::fs::create_dir_all(&up).unwrap();
    std::fs::write(
        up.join("hosts.toml"),
        "domain = \"example.org\"\nserver = \"router\"\n[[subnet]]\nnetwork = \"192.168.1.0/24\"\n\
         [host.router]\nip = \"192.168.1.1\"\n[host.www]\nip = \"192.168.1.80\"\nipv6 = \"2001:db8::80\"\n\
         [dns]\nlisten = [\"[fd00:1::1]:53\"]\nallow-recursion = []\n",
    )
    .unwrap();
    let _upstream = spawn_dnsd(&lan.router, &up.join("hosts.toml"), &up.join("state"), &[]);
    let conf = host_file6(&dir, "[dns]\nupstream = [\"fd00:1::1\"]\n");
    let _d = spawn_dnsd(&lan.main, &conf, &dir.join("state"), &[]);
    let s6 = format!("@{MAIN6}");
    // web1 (in fd00:10::/64, allowed by default) over IPv6, the upstream asked over IPv6.
    let out = dig(&lan.web1, &["-6", &s6, "www.example.org", "AAAA"]);
    assert_eq!(status(&out), "NOERROR", "{out}");
    assert!(out.contains("2001:db8::80"), "{out}");
    assert_eq!(
        short(&lan.web1, &s6, &["-6", "+tcp", "www.example.org", "A"]),
        ["192.168.1.80"]
    );
    // ::1 is allowed by default too.
    assert_eq!(
        short(&lan.main, "@::1", &["www.example.org", "AAAA"]),
        ["2001:db8::80"]
    );
    // A v6 source outside every subnet (outside, routed to fd00:10::1 through main) is refused.
    lan.outside
        .ip(&["-6", "route", "add", "fd00:10::/64", "via", "fd00:1::2"]);
    let out = dig(&lan.outside, &["-6", &s6, "www.example.org", "AAAA"]);
    assert_eq!(status(&out), "REFUSED", "{out}");
}

#[test]
fn knot_secondary_with_tsig_takes_ixfr_of_the_ip6_arpa_zone_over_ipv6() {
    e2e::require_netns!("dig", "nsupdate", "knotd");
    let lan = lan6("dnsd6knot");
    let dir = lan.lab.dir().to_owned();
    let secret = "c2Vjb25kYXJ5LXRyYW5zZmVyLWtleS1mb3ItdGVzdHM=";
    let conf = host_file6(
        &dir,
        &format!(
            "[key.xfr]\nalgorithm = \"hmac-sha256\"\nsecret = \"{secret}\"\n\n{DNS}\
             secondary = [{{ address = \"{WEB16}\", key = \"xfr\" }}]\n"
        ),
    );
    let mut d = spawn_dnsd(&lan.main, &conf, &dir.join("state"), &[]);
    let mut knot = knot_secondary(&lan.web1, &dir, WEB16, MAIN6, ZONE6, secret);
    let w = &lan.web1;
    let secondary = format!("@{WEB16}");
    assert!(
        wait_until(Duration::from_secs(15), || short(
            w,
            &secondary,
            &["-x", WEB16]
        ) == ["web1.it-ishin.com."]),
        "Knot did not transfer {ZONE6}:\n{}",
        knot.stderr()
    );
    // Without the key web1 may not transfer.
    let out = dig(w, &[&format!("@{MAIN6}"), ZONE6, "AXFR"]);
    assert!(!out.contains("web1.it-ishin.com"), "{out}");
    add_dyn6_ptr(w);
    assert!(
        dyn6_ptr_reaches(w, &secondary),
        "Knot did not pick up the change after NOTIFY:\n{}",
        knot.stderr()
    );
    // ... by IXFR from the journal, not a full transfer.
    assert_ixfr(&mut d, &knot);
    knot.stop();
}

#[test]
fn rrl_limits_an_ipv6_burst_and_spares_exempt_ipv6_networks() {
    e2e::require_netns!("dig", "python3");
    let lan = lan6("dnsd6rrl");
    add_addr6(&lan.web2, "eth0", "fd00:10::b/64");
    let dir = lan.lab.dir().to_owned();
    let conf = host_file6(
        &dir,
        &format!("{DNS}rrl = {{ rate = 5, slip = 2, exempt = [\"fd00:10::b/128\"] }}\n"),
    );
    let _d = spawn_dnsd(&lan.main, &conf, &dir.join("state"), &[]);
    let (n, tc) = burst(&lan.web1, MAIN6);
    assert!((5..50).contains(&n), "answered {n} of 50");
    assert!(tc >= 5, "slipped {tc}");
    assert!(n - tc <= 10, "full answers {}", n - tc);
    // web2's v6 address is exempt: every query answered in full.
    assert_eq!(burst(&lan.web2, MAIN6), (50, 0));
}
