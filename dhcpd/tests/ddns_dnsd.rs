//! Dynamic DNS against this project's dnsd (the same scenarios as against BIND in `ddns_bind`):
//! dnsd must store and serve DHCID records (type 49) and evaluate the prerequisites dhcpd sends.

mod common;

use std::time::Duration;

use common::ddns::*;
use common::*;
use e2e::{Ready, SeedLan};

const DHCP: &str = r#"[dhcp]
ping-check = false
lease-db = "leases.redb"
ddns = { server = "127.0.0.1", key = "dhcp-update" }
"#;

/// dnsd in `lan.main` from the same host file (its [dns] section allows updates with the key).
fn dnsd(lan: &SeedLan, conf: &std::path::Path) -> e2e::Proc {
    let state = lan.lab.dir().join("dnsd");
    std::fs::create_dir_all(&state).unwrap();
    let bin = match e2e::try_bin_path("dnsd") {
        Ok(b) => b,
        Err(e) => panic!("{e} (cargo build -p dnsd first)"),
    };
    let p = lan
        .main
        .process(bin)
        .args(["--config", conf.to_str().unwrap()])
        .arg("--state-dir")
        .arg(&state)
        .arg("--runtime-dir")
        .arg(&state)
        .ready(Ready::Notify)
        .timeout(Duration::from_secs(15))
        .spawn();
    wait_for("dnsd to serve the zone", || {
        !dig(&lan.main, &["it-ishin.com", "SOA"]).is_empty()
    });
    p
}

#[test]
fn a_ptr_and_dhcid_appear_in_dnsd_on_ack_and_go_on_release() {
    e2e::require_netns!("dig");
    let lan = SeedLan::build("dhcdnsd");
    let dir = lan.lab.dir();
    let conf = write_config(dir, DHCP, "");
    let _dnsd = dnsd(&lan, &conf);
    let mut d = start(&lan.main, &conf, dir);
    publish_and_withdraw(&lan, &mut d);
}

#[test]
fn dnsd_keeps_names_held_by_another_client_or_the_host_table() {
    e2e::require_netns!("dig");
    let lan = SeedLan::build("dhcdncid");
    let dir = lan.lab.dir();
    let conf = write_config(dir, DHCP, "");
    let _dnsd = dnsd(&lan, &conf);
    let mut d = start(&lan.main, &conf, dir);
    conflicts_leave_other_names_alone(&lan, &mut d, "web1", "192.168.10.10");
}

#[test]
fn dnsd_gets_a_type_1_dhcid_from_dhclient_with_a_client_identifier() {
    e2e::require_netns!("dig", "dhclient");
    let lan = SeedLan::build("dhcdn61");
    let dir = lan.lab.dir();
    let conf = write_config(dir, DHCP, "");
    let _dnsd = dnsd(&lan, &conf);
    let mut d = start(&lan.main, &conf, dir);
    client_id_gives_type_1_across_a_restart(&lan, &mut d, || start(&lan.main, &conf, dir));
}
