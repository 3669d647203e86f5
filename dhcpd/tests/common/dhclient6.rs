//! Ending an ISC `dhclient -6 -1` run: after `-1` it forks, the parent exits at once and the child
//! writes the pid file and keeps port 546, so the next client in the namespace must wait for both.

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
