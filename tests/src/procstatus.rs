//! What the kernel says about a process's identity: for tests that a daemon started as root
//! became an unprivileged user with only the capabilities it needs.

/// The value of `key` (e.g. `"Uid:"`, `"CapEff:"`) in `/proc/PID/status`, or "" when absent.
pub fn status_field(pid: u32, key: &str) -> String {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_owned()))
        .unwrap_or_default()
}

/// Panics unless every uid of `pid` (real, effective, saved, fs) is `user`'s and its effective
/// capability set is exactly `cap_eff` (the hex string /proc shows, e.g. "0000000000003400").
pub fn assert_runs_as(pid: u32, user: &str, cap_eff: &str) {
    let uid = nix::unistd::User::from_name(user)
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("no user {user}"))
        .uid
        .as_raw()
        .to_string();
    let uids = status_field(pid, "Uid:");
    assert!(
        uids.split_whitespace().all(|u| u == uid),
        "pid {pid}: Uid: {uids}, wanted {user} ({uid})"
    );
    assert_eq!(
        status_field(pid, "CapEff:"),
        cap_eff,
        "pid {pid}: effective capabilities"
    );
}

/// Whether `pid` is gone (or a zombie nobody reaped yet: it no longer runs).
pub fn is_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
    }
}
