//! Started as root by hand, dhcpd becomes an unprivileged user before serving, keeping only
//! CAP_NET_BIND_SERVICE, CAP_NET_RAW and CAP_NET_ADMIN; dhclient still gets a lease, and
//! `dhcpd leases` reads it from the running daemon over its control socket.

mod common;

use std::time::Duration;

use common::*;
use e2e::{Ready, SeedLan};

#[test]
fn root_start_drops_to_the_user_and_still_serves() {
    e2e::require_netns!("dhclient");
    let lan = SeedLan::build("dhpriv");
    let dir = lan.lab.dir();
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    let conf = write_config(
        dir,
        "[dhcp]\nping-check = false\nlease-db = \"leases.redb\"\n",
        "",
    );
    let d = lan
        .main
        .process(BIN)
        .args([
            "--config",
            conf.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
            "--user",
            "nobody",
        ])
        .ready(Ready::Notify)
        .timeout(Duration::from_secs(10))
        .spawn();
    // CAP_NET_BIND_SERVICE (10), CAP_NET_ADMIN (12), CAP_NET_RAW (13) and nothing else.
    e2e::procstatus::assert_runs_as(d.pid(), "nobody", "0000000000003400");

    let lease = e2e::suite::dhclient_on(&lan.client, "laptop");
    let ip = lease
        .address
        .unwrap_or_else(|| panic!("no lease: {}", lease.raw));
    // The lease database was written by the unprivileged process.
    let meta = std::fs::metadata(state.join("leases.redb")).unwrap();
    let nobody = nix::unistd::User::from_name("nobody")
        .unwrap()
        .unwrap()
        .uid
        .as_raw();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), nobody);
    // `dhcpd leases` asks the daemon (its socket is in the state folder).
    assert!(state.join("control.sock").exists());
    let out = lan.main.run(&[
        BIN,
        "leases",
        "--config",
        conf.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("no running daemon"),
        "answered from the database, not the daemon: {err}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&ip.to_string()));
    let rows = leases(&lan.main, &conf, &state);
    let row = lease_of(&rows, ip).expect("lease listed");
    assert_eq!(row["hostname"], "laptop");
}
