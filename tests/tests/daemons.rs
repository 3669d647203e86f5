//! The three daemons start inside `main` of the seed LAN from `etc/hosts.toml` as shipped, report
//! readiness through sd_notify, reload on SIGHUP, stop cleanly on SIGTERM, and leave nothing behind.

use std::path::PathBuf;
use std::time::Duration;

use e2e::{Proc, Ready, SeedLan, bin_path, list_netns};

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../etc/hosts.toml")
}

fn start(lan: &SeedLan, daemon: &str) -> Proc {
    let state = lan.lab.dir().join(format!("{daemon}-state"));
    let run = lan.lab.dir().join(format!("{daemon}-run"));
    std::fs::create_dir_all(&state).unwrap();
    std::fs::create_dir_all(&run).unwrap();
    let conf = example();
    lan.main
        .process(bin_path(daemon))
        .args(["--config", conf.to_str().unwrap()])
        .arg("--state-dir")
        .arg(&state)
        .arg("--runtime-dir")
        .arg(&run)
        .ready(Ready::Notify)
        .timeout(Duration::from_secs(20))
        .spawn()
}

#[test]
fn the_three_daemons_run_in_main_from_the_example_host_file() {
    e2e::require_netns!("nft");
    let lan = SeedLan::build("daemons");
    let prefix = format!("{}-", lan.lab.name());
    let mut procs: Vec<Proc> = ["dhcpd", "dnsd", "lbd"]
        .iter()
        .map(|d| start(&lan, d))
        .collect();

    // Each logged its view of the one host file.
    procs[0]
        .wait_for_log("192.168.10.0/24", Duration::from_secs(5))
        .unwrap();
    procs[1]
        .wait_for_log("it-ishin.com", Duration::from_secs(5))
        .unwrap();
    procs[2]
        .wait_for_log("www3", Duration::from_secs(5))
        .unwrap();

    // SIGHUP re-reads the file; it is unchanged, and each daemon says so and is ready again.
    for p in &mut procs {
        let cursor = p.log_cursor();
        p.signal(nix::sys::signal::Signal::SIGHUP);
        p.wait_for_log_after(cursor, "host file unchanged", Duration::from_secs(10))
            .unwrap();
    }

    // SIGTERM: a clean exit, status 0.
    for mut p in procs {
        let name = p.name().to_owned();
        let status = p.stop();
        assert!(status.success(), "{name} exited with {status}");
    }
    drop(lan);
    assert!(
        list_netns().iter().all(|n| !n.starts_with(&prefix)),
        "namespaces left behind"
    );
}
