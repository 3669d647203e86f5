//! DHCPv6 (RFC 8415): a pure decision core ([`decide`]), the bindings and their durable file
//! ([`lease`]) and the socket task ([`server`]). It serves the host file's IPv6 subnets
//! (`DhcpView::subnets6`, `reservations6`) beside the v4 server, sharing nothing with it but the
//! view and the shutdown token.

pub mod admin;
pub mod batch;
mod core6;
pub mod decide;
pub mod decode;
pub mod exercise;
pub mod fqdn;
pub mod lease;
pub mod links;
pub mod listing;
pub mod metrics;
#[cfg(test)]
mod ops_tests;
pub mod pg;
pub mod ra;
pub mod relay;
pub mod runs;
mod send6;
pub mod server;
pub mod store;
#[cfg(test)]
mod tests;
mod writer;

use std::path::Path;

/// Errors reading or creating the server DUID.
#[derive(Debug, thiserror::Error)]
pub enum DuidError {
    /// The file could not be read or written.
    #[error("server DUID file {path}: {err}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        err: std::io::Error,
    },
    /// No randomness for a new DUID-UUID.
    #[error("no random bytes for a new server DUID")]
    Random,
}

/// The server's DUID: read from `path` (hex), or made once (DUID-UUID, type 4, RFC 6355, from
/// random bytes) and written there, so clients see the same server across restarts.
pub fn server_duid(path: &Path) -> Result<Vec<u8>, DuidError> {
    let io = |err| DuidError::Io {
        path: path.display().to_string(),
        err,
    };
    match std::fs::read_to_string(path) {
        Ok(s) => {
            if let Some(d) = parse_hex(s.trim()).filter(|d| d.len() >= 3 && d.len() <= 130) {
                return Ok(d);
            }
            tracing::warn!(path = %path.display(), "server DUID file unreadable: making a new DUID");
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let mut uuid = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut uuid)
        .map_err(|_| DuidError::Random)?;
    uuid[6] = (uuid[6] & 0x0f) | 0x40; // version 4
    uuid[8] = (uuid[8] & 0x3f) | 0x80; // RFC 4122 variant
    let mut d = vec![0, 4];
    d.extend_from_slice(&uuid);
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, hex(&d) + "\n").map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    Ok(d)
}

/// Lower-case hex without separators.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Parses hex with or without `:` separators.
pub fn parse_hex(s: &str) -> Option<Vec<u8>> {
    let s: String = s.chars().filter(|c| *c != ':').collect();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}
