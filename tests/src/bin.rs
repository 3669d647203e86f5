//! Locating the daemon binaries built by Cargo.
//!
//! The daemons' own integration tests should pass `env!("CARGO_BIN_EXE_dhcpd")`
//! straight to [`crate::Host::spawn_daemon`]; this crate cannot (a package only gets
//! `CARGO_BIN_EXE_*` for its own binaries), so it finds them next to its test
//! executable: `target/<profile>/deps/seed_lan-xxxx` -> `target/<profile>/dhcpd`.

use std::env;
use std::path::PathBuf;

/// Path of the workspace binary `name`: `$E2E_BIN_DIR/name` when that variable is
/// set, else the one in the Cargo target directory this test was built into.
///
/// Panics with a hint when it is not built (`cargo build --bins` first).
pub fn bin_path(name: &str) -> PathBuf {
    try_bin_path(name).unwrap_or_else(|e| panic!("{e}"))
}

/// Like [`bin_path`], returning the reason as an error instead of panicking.
pub fn try_bin_path(name: &str) -> Result<PathBuf, String> {
    if let Some(dir) = env::var_os("E2E_BIN_DIR") {
        let p = PathBuf::from(dir).join(name);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!(
                "E2E_BIN_DIR is set but {} does not exist",
                p.display()
            ))
        };
    }
    let exe = env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    // deps/ -> <profile>/ ; also tolerate running from <profile>/ or examples/.
    for dir in exe.ancestors().skip(1).take(3) {
        let p = dir.join(name);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(format!(
        "binary {name:?} not found near {} (build it first: `cargo build --bins`, \
         or set E2E_BIN_DIR)",
        exe.display()
    ))
}
