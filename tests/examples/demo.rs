//! The demo: the seed LAN in network namespaces, the three daemons in `main` from
//! `etc/hosts.toml`, and what the LAN's clients see. Run by `scripts/demo` (as root).

use std::path::PathBuf;
use std::time::Duration;

use e2e::addrs::{MAIN_INNER, WEB1};
use e2e::suite::{OUTSIDE_NAME, Suite};

fn say(what: &str, result: impl std::fmt::Display) {
    println!("  {what:<46} {result}");
}

fn shown(s: &str) -> String {
    if s.is_empty() {
        "(no answer)".into()
    } else {
        s.replace('\n', ", ")
    }
}

fn main() {
    if e2e::netns_unavailable().is_some() {
        eprintln!("demo: needs root and iproute2 (run scripts/demo as root)");
        std::process::exit(1);
    }
    let host_file = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../etc/hosts.toml"));
    println!(
        "Bringing up the seed LAN (router, main, web1, web2, db, a LAN client, an outside client)"
    );
    println!(
        "and starting dhcpd, dnsd and lbd in main from {}",
        host_file.display()
    );
    let s = Suite::start("demo", &host_file);
    println!("  all three daemons reported ready (sd_notify)\n");

    println!("A LAN client runs dhclient (sending host name 'laptop'):");
    let lease = s.dhclient("laptop");
    match lease.address {
        Some(a) => {
            say("address", a);
            say("router", &lease.routers);
            say("DNS server", &lease.dns);
            say("domain", &lease.domain);
        }
        None => say("no lease", lease.raw.lines().last().unwrap_or("")),
    }
    let fwd = s.dig(&s.lan.web1, MAIN_INNER, &["laptop.it-ishin.com", "A"]);
    say("laptop.it-ishin.com (dhcpd's DNS update)", shown(&fwd));
    if let Some(a) = lease.address {
        say(
            &format!("dig -x {a}"),
            shown(&s.dig(&s.lan.web1, MAIN_INNER, &["-x", &a.to_string()])),
        );
    }

    println!("\ndig @192.168.10.1 from web1:");
    for q in [
        "www3.it-ishin.com",
        "web1.it-ishin.com",
        "mysql.it-ishin.com",
    ] {
        say(q, shown(&s.dig(&s.lan.web1, MAIN_INNER, &[q])));
    }
    say(
        &format!("-x {WEB1}"),
        shown(&s.dig(&s.lan.web1, MAIN_INNER, &["-x", &WEB1.to_string()])),
    );
    say(
        &format!("{OUTSIDE_NAME} (forwarded to the router)"),
        shown(&s.dig(&s.lan.web1, MAIN_INNER, &[OUTSIDE_NAME])),
    );

    println!("\nThe outside client (192.168.1.50) fetches http://www3.it-ishin.com/ six times:");
    for i in 1..=6 {
        match s.fetch_www3() {
            Ok(body) => say(&format!("request {i}"), format!("answered by {body}")),
            Err(e) => say(&format!("request {i}"), format!("FAILED: {e}")),
        }
    }

    println!("\nweb1's HTTP server stops:");
    let mut s = s;
    let mut web1 = s.web.remove(0);
    web1.stop();
    let (ok, seen) = s.fetch_until(5, Duration::from_secs(30), |r| r.as_deref() == Ok("web2"));
    let before = if ok { seen.len() - 5 } else { seen.len() };
    let failed = seen[..before].iter().filter(|r| r.is_err()).count();
    say("requests before web1 was taken out", before);
    say("of those failed (before detection)", failed);
    if ok {
        say("then 5 requests in a row answered by", "web2");
    } else {
        say("web2 did not take over within 30 s", "");
    }

    println!("\nTearing everything down.");
    drop(s);
    println!("Done: no namespace or process is left behind.");
}
