//! ISC `dhclient -6 -1` runs, and ending them: after `-1` it forks, the parent exits at once and
//! the child writes the pid file and keeps port 546, so the next client in the namespace must
//! wait for both.

use std::path::Path;
use std::time::{Duration, Instant};

use e2e::{Host, Proto};

/// Stops the client a `dhclient -6 ... -1 -pf PF` left running (waiting, bounded, for its pid
/// file), removes the pid file and waits (bounded) until port 546 is free again in `host`.
/// `ran_daemon` is false for runs that leave no daemon (`-r`, or a failed `-1`).
pub fn stop_one_shot(host: &Host, pf: &Path, ran_daemon: bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let pid = loop {
        if !ran_daemon {
            break None;
        }
        if let Ok(s) = std::fs::read_to_string(pf)
            && let Ok(pid) = s.trim().parse::<i32>()
        {
            break Some(pid);
        }
        if Instant::now() >= deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(10)); // a poll, bounded by the deadline
    };
    if let Some(pid) = pid {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    let _ = std::fs::remove_file(pf);
    let deadline = Instant::now() + Duration::from_secs(10);
    while host.port_bound(Proto::Udp, 546) {
        assert!(Instant::now() < deadline, "dhclient still holds port 546");
        std::thread::sleep(Duration::from_millis(10)); // a poll, bounded by the deadline
    }
}

/// `dhclient -6 MODE -1` on `host`'s eth0 (`-N` an address, `-P` a prefix) with the
/// configuration `config` (written beside the lease file `lf`), touching nothing on the host
/// (`-sf /bin/true`); stops the daemon it leaves behind and returns the first run's output.
pub fn one_shot(host: &Host, mode: &str, config: &str, lf: &Path) -> std::process::Output {
    let pf = lf.with_extension("pid");
    let cf = lf.with_extension("conf");
    std::fs::write(&cf, config).unwrap();
    let out = host.run(&[
        "dhclient",
        "-6",
        mode,
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
    stop_one_shot(host, &pf, out.status.success());
    out
}

/// The last `key VALUE {` (or `key VALUE;`) of a dhclient lease file.
pub fn last_item(text: &str, key: &str) -> Option<String> {
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix(key))
        .map(|v| v.trim().trim_end_matches(['{', ';']).trim().to_owned())
}
