//! Prerequisites: tests that need root and iproute2 skip loudly without them.

use std::env;
use std::path::{Path, PathBuf};

/// Why namespaces cannot be used in this process, or `None` when they can.
pub fn netns_unavailable() -> Option<String> {
    if !nix::unistd::Uid::effective().is_root() {
        return Some("needs root to create network namespaces".to_owned());
    }
    missing_tools(&["ip"])
}

/// The programs in `tools` that are not installed, as a message, or `None`.
pub fn missing_tools(tools: &[&str]) -> Option<String> {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| which(t).is_none())
        .collect();
    if missing.is_empty() {
        None
    } else {
        Some(format!(
            "missing program(s): {} (run scripts/install-test-deps)",
            missing.join(", ")
        ))
    }
}

/// Print a SKIPPED line for `test`, or panic when strict mode (`CI` or
/// `E2E_STRICT` set) forbids skipping.
pub fn skip_or_fail(test: &str, why: &str) {
    if env::var_os("E2E_STRICT").is_some() || env::var_os("CI").is_some() {
        panic!("{test}: prerequisites missing in strict mode (CI/E2E_STRICT): {why}");
    }
    eprintln!("SKIPPED {test}: {why}");
}

/// Find `prog` on the PATH, also in the sbin directories a non-login root shell may lack.
pub(crate) fn which(prog: &str) -> Option<PathBuf> {
    if prog.contains('/') {
        return Path::new(prog).is_file().then(|| PathBuf::from(prog));
    }
    let path = env::var_os("PATH").unwrap_or_default();
    env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(prog))
        .find(|p| p.is_file())
}
