//! ISC dhclient and busybox udhcpc against dhcpd on the seed LAN.

mod common;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use common::*;
use e2e::SeedLan;

pub const DHCP: &str = r#"[dhcp]
decline-probation = "1h"
ping-check = true
ping-timeout = "200ms"
lease-db = "leases.redb"
"#;

fn kill_pidfile(path: &std::path::Path) {
    if let Ok(s) = std::fs::read_to_string(path)
        && let Ok(pid) = s.trim().parse::<i32>()
    {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
}

fn last_value(text: &str, key: &str) -> Option<String> {
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix(key))
        .map(|v| v.trim().trim_end_matches(';').trim_matches('"').to_owned())
}

#[test]
fn dhclient_gets_a_lease_with_options_keeps_it_on_reboot_and_releases_it() {
    e2e::require_netns!("dhclient");
    let lan = SeedLan::build("dhcdcl");
    let dir = lan.lab.dir();
    let conf = write_config(dir, DHCP, "");
    let _d = start(&lan.main, &conf, dir);
    let lf = dir.join("dhclient.leases");
    let pf = dir.join("dhclient.pid");
    let dhclient = |extra: &[&str]| {
        let mut args = vec![
            "dhclient",
            "-4",
            "-1",
            "-v",
            "-sf",
            "/bin/true",
            "-cf",
            "/dev/null",
        ];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[
            "-lf",
            lf.to_str().unwrap(),
            "-pf",
            pf.to_str().unwrap(),
            "eth0",
        ]);
        let out = lan.client.run(&args);
        kill_pidfile(&pf);
        out
    };
    let out = dhclient(&[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&lf).unwrap();
    let ip: Ipv4Addr = last_value(&text, "fixed-address").unwrap().parse().unwrap();
    assert!(
        (Ipv4Addr::new(192, 168, 10, 200)..=Ipv4Addr::new(192, 168, 10, 254)).contains(&ip),
        "{text}"
    );
    assert_eq!(
        last_value(&text, "option routers").as_deref(),
        Some("192.168.10.1")
    );
    assert_eq!(
        last_value(&text, "option domain-name-servers").as_deref(),
        Some("192.168.10.1")
    );
    assert_eq!(
        last_value(&text, "option domain-name").as_deref(),
        Some("it-ishin.com")
    );
    assert_eq!(
        last_value(&text, "option dhcp-server-identifier").as_deref(),
        Some("192.168.10.1")
    );
    let rows = leases(&lan.main, &conf, dir);
    let row = lease_of(&rows, ip).expect("lease in the store");
    assert_eq!(row["state"], "bound");
    assert_eq!(row["mac"], "02:00:00:00:10:99");

    // Reboot with the address configured: INIT-REBOOT asks for it again and gets it.
    lan.client.add_addr("eth0", &format!("{ip}/24"));
    let out = dhclient(&[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&lf).unwrap();
    assert_eq!(last_value(&text, "fixed-address"), Some(ip.to_string()));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("DHCPREQUEST")
            && !String::from_utf8_lossy(&out.stderr).contains("DHCPDISCOVER"),
        "expected a REQUEST straight away: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Release: the server marks it released.
    let out = dhclient(&["-r"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let rows = leases(&lan.main, &conf, dir);
        if lease_of(&rows, ip).is_some_and(|r| r["state"] == "released") {
            break;
        }
        assert!(Instant::now() < deadline, "not released: {rows:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn udhcpc_gets_a_pool_address_and_the_reserved_mac_its_reservation() {
    e2e::require_netns!("busybox");
    let lan = SeedLan::build("dhcudh");
    let dir = lan.lab.dir();
    let conf = write_config(dir, DHCP, "");
    let _d = start(&lan.main, &conf, dir);
    let script = dir.join("udhcpc.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\n[ \"$1\" = bound ] && echo \"ip=$ip router=$router dns=$dns domain=$domain serverid=$serverid lease=$lease\" > \"$OUT\"\nexit 0\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let run = |host: &e2e::Host, name: &str| {
        let out_file = dir.join(format!("{name}.out"));
        let out = host.run(&[
            "env",
            &format!("OUT={}", out_file.display()),
            "busybox",
            "udhcpc",
            "-i",
            "eth0",
            "-f",
            "-q",
            "-n",
            "-t",
            "3",
            "-T",
            "2",
            "-s",
            script.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::read_to_string(out_file).unwrap()
    };
    let got = run(&lan.client, "client");
    let ip: Ipv4Addr = got
        .split_whitespace()
        .find_map(|w| w.strip_prefix("ip="))
        .unwrap()
        .parse()
        .unwrap();
    assert!(ip >= Ipv4Addr::new(192, 168, 10, 200), "{got}");
    assert!(
        got.contains("router=192.168.10.1 dns=192.168.10.1 domain=it-ishin.com"),
        "{got}"
    );
    assert!(got.contains("serverid=192.168.10.1 lease=43200"), "{got}");
    // web1's interface has the reserved MAC 02:00:00:00:10:10.
    let got = run(&lan.web1, "web1");
    assert!(got.starts_with("ip=192.168.10.10 "), "{got}");
    let rows = leases(&lan.main, &conf, dir);
    let row = lease_of(&rows, Ipv4Addr::new(192, 168, 10, 10)).unwrap();
    assert_eq!(row["hostname"], "web1");
}
