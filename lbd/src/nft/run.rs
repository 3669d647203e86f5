//! Running `nft`: finding it, applying a script in one transaction within a deadline, reading
//! the counters.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use super::counters::{CounterValue, parse_counters};

/// How long one run of `nft` may take before it is killed and the run counts as failed.
pub const NFT_DEADLINE: Duration = Duration::from_secs(5);

/// Why the ruleset could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    /// The `nft` program is not installed.
    #[error(
        "`nft` was not found ({0}): install the Debian package nftables, or set dataplane = \"proxy\" on the services"
    )]
    Missing(String),
    /// `nft` refused the ruleset.
    #[error("nft refused the ruleset (the previous one stays in force): {0}")]
    Refused(String),
    /// Talking to `nft` failed.
    #[error("running nft: {0}")]
    Io(#[from] std::io::Error),
    /// `nft` did not finish in time; it was killed and reaped.
    #[error("nft did not finish within {0:?} and was killed (the previous ruleset stays in force)")]
    TimedOut(Duration),
}

/// Reads lbd's counters from the kernel (`nft -j list counters`, kept to the tables `ip lbd`
/// and `ip6 lbd`: one run whether or not the IPv6 table exists).
pub fn read_counters(nft: &str) -> Result<BTreeMap<String, CounterValue>, NftError> {
    let out = run_bounded(
        nft,
        Command::new(nft).args(["-j", "list", "counters"]),
        b"",
        NFT_DEADLINE,
    )?;
    if !out.status.success() {
        return Err(NftError::Refused(format!(
            "listing counters: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    parse_counters(&String::from_utf8_lossy(&out.stdout))
        .map_err(|e| NftError::Refused(e.to_string()))
}

/// Runs `nft -f -` with `script` on stdin, killed past [`NFT_DEADLINE`].
pub fn apply(nft: &str, script: &str) -> Result<(), NftError> {
    apply_within(nft, script, NFT_DEADLINE)
}

/// Runs `nft -f -` with `script` on stdin, killed past `deadline`. nft commits its netlink
/// batch as one transaction, so a run killed before it finished changed nothing.
pub(super) fn apply_within(nft: &str, script: &str, deadline: Duration) -> Result<(), NftError> {
    let out = run_bounded(
        nft,
        Command::new(nft).args(["-f", "-"]),
        script.as_bytes(),
        deadline,
    )?;
    if out.status.success() {
        Ok(())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        Err(NftError::Refused(format!("{}: {}", out.status, err.trim())))
    }
}

/// Runs `cmd` (the program `nft`) with `input` on its stdin and collects its output. Past
/// `deadline` the child is killed by its own PID (still unreaped, so not reused), reaped, and
/// the run fails with [`NftError::TimedOut`].
fn run_bounded(
    nft: &str,
    cmd: &mut Command,
    input: &[u8],
    deadline: Duration,
) -> Result<Output, NftError> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => NftError::Missing(format!("{nft}: {e}")),
            _ => NftError::Io(e),
        })?;
    // Feeding and draining run beside the wait, so a child that stops reading or fills a pipe
    // cannot stall lbd: the deadline covers all of it. A write error (nft exited early) shows
    // as nft's own exit status and message.
    let stdin = child.stdin.take();
    let input = input.to_vec();
    std::thread::spawn(move || {
        if let Some(mut w) = stdin {
            let _ = w.write_all(&input);
        }
    });
    let drain = |r: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut v);
            }
            v
        })
    };
    let stdout = drain(child.stdout.take().map(|r| Box::new(r) as _));
    let stderr = drain(child.stderr.take().map(|r| Box::new(r) as _));
    let Some(status) = wait_until(&mut child, Instant::now() + deadline)? else {
        // The drain threads end when the pipes close (the child is gone); not waited for.
        let _ = child.kill();
        child.wait()?;
        return Err(NftError::TimedOut(deadline));
    };
    Ok(Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

/// Waits for `child` to exit, until `end`: its status, or None when `end` passed first (the
/// child is then still running, unreaped). Waits on a pidfd, which becomes readable on exit.
fn wait_until(child: &mut Child, end: Instant) -> std::io::Result<Option<ExitStatus>> {
    // SAFETY: plain pidfd_open(2) on our own unreaped child; the descriptor is owned below.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, child.id() as libc::pid_t, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    loop {
        if let Some(s) = child.try_wait()? {
            return Ok(Some(s));
        }
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        let mut p = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut p, 1, ms) } < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

/// Finds `nft`: `$LBD_NFT` when set (a non-standard install), else on the PATH and in the sbin
/// folders, which a non-login PATH may lack.
pub fn find_nft() -> Result<String, NftError> {
    if let Some(p) = std::env::var_os("LBD_NFT") {
        let p = std::path::PathBuf::from(p);
        return if p.is_file() {
            Ok(p.to_string_lossy().into_owned())
        } else {
            Err(NftError::Missing(format!(
                "LBD_NFT={} does not exist",
                p.display()
            )))
        };
    }
    let path = std::env::var("PATH").unwrap_or_default();
    for dir in path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"])
    {
        if dir.is_empty() {
            continue;
        }
        let p = std::path::Path::new(dir).join("nft");
        if p.is_file() {
            return Ok(p.to_string_lossy().into_owned());
        }
    }
    Err(NftError::Missing(format!("not on PATH ({path})")))
}
