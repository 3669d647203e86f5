//! Dynamic DNS against a real BIND 9 `named` in the server's namespace: A, PTR and DHCID appear on
//! ACK (signed with the host file's TSIG key) and go away on RELEASE; a name that another client
//! (or the zone file) holds is neither taken over nor deleted (RFC 4703).

mod common;

use std::time::Duration;

use common::ddns::*;
use common::*;
use e2e::{Proc, Ready, SeedLan};

const DHCP: &str = r#"[dhcp]
ping-check = false
lease-db = "leases.redb"
ddns = { server = "127.0.0.1", key = "dhcp-update" }
"#;

const SECRET: &str = "bGFuc3VpdGUtZXhhbXBsZS1rZXktY2hhbmdlLW1lLW5vdw==";

/// named in `lan.main`, primary for it-ishin.com and 10.168.192.in-addr.arpa, updates allowed
/// with the TSIG key; waits until it serves the zone.
fn named(lan: &SeedLan) -> Proc {
    let z = lan.lab.dir().join("named");
    std::fs::create_dir_all(&z).unwrap();
    let soa = "$TTL 300\n@ IN SOA ns.it-ishin.com. admin.it-ishin.com. 1 3600 600 86400 300\n@ IN NS ns.it-ishin.com.\n";
    std::fs::write(z.join("fwd.zone"), format!("{soa}ns IN A 192.168.10.1\n")).unwrap();
    std::fs::write(z.join("rev.zone"), soa).unwrap();
    let zd = z.display();
    std::fs::write(
        z.join("named.conf"),
        format!(
            r#"options {{ directory "{zd}"; pid-file "{zd}/named.pid"; listen-on port 53 {{ 127.0.0.1; }};
  listen-on-v6 {{ none; }}; recursion no; dnssec-validation no; allow-query {{ any; }}; }};
key "dhcp-update" {{ algorithm hmac-sha256; secret "{SECRET}"; }};
zone "it-ishin.com" {{ type primary; file "{zd}/fwd.zone"; allow-update {{ key "dhcp-update"; }}; }};
zone "10.168.192.in-addr.arpa" {{ type primary; file "{zd}/rev.zone"; allow-update {{ key "dhcp-update"; }}; }};
"#
        ),
    )
    .unwrap();
    let conf_named = z.join("named.conf");
    let p = lan
        .main
        .process("named")
        .args(["-g", "-4", "-u", "root", "-c", conf_named.to_str().unwrap()])
        .ready(Ready::Log("all zones loaded".into()))
        .timeout(Duration::from_secs(15))
        .spawn();
    // named logs "running" early in its start-up too: wait until it answers for the zone.
    wait_for("named to serve the zone", || {
        dig(&lan.main, &["it-ishin.com", "SOA"]).starts_with("ns.it-ishin.com.")
    });
    p
}

#[test]
fn a_ptr_and_dhcid_appear_in_bind_on_ack_and_go_on_release() {
    e2e::require_netns!("named", "dig");
    let lan = SeedLan::build("dhcddns");
    let dir = lan.lab.dir();
    let _named = named(&lan);
    let conf = write_config(dir, DHCP, "");
    let mut d = start(&lan.main, &conf, dir);
    publish_and_withdraw(&lan, &mut d);
}

#[test]
fn bind_keeps_names_held_by_another_client_or_the_zone() {
    e2e::require_netns!("named", "dig");
    let lan = SeedLan::build("dhcdcid");
    let dir = lan.lab.dir();
    let _named = named(&lan);
    let conf = write_config(dir, DHCP, "");
    let mut d = start(&lan.main, &conf, dir);
    conflicts_leave_other_names_alone(&lan, &mut d, "ns", "192.168.10.1");
}

#[test]
fn bind_gets_a_type_1_dhcid_from_dhclient_with_a_client_identifier() {
    e2e::require_netns!("named", "dig", "dhclient");
    let lan = SeedLan::build("dhcdc61");
    let dir = lan.lab.dir();
    let _named = named(&lan);
    let conf = write_config(dir, DHCP, "");
    let mut d = start(&lan.main, &conf, dir);
    client_id_gives_type_1_across_a_restart(&lan, &mut d, || start(&lan.main, &conf, dir));
}
