//! VRRP version 3 (RFC 5798) for IPv4 and IPv6: the pure state machine ([`Machine`]), the
//! packet codec ([`encode`], [`decode`]; [`encode6`], [`decode6`]) and the socket task
//! ([`spawn`]) that feeds it; `crate::float` says where each instance runs (`[lb.vrrp]`:
//! `float::service`). The master holds the VIPs and programs the data plane; a backup
//! holds neither. Adverts go to 224.0.0.18 with TTL 255, or for an instance of IPv6 addresses to
//! ff02::12 from the interface's link-local address with hop limit 255 (or to unicast peers); a
//! clean shutdown sends priority 0 for a fast handover. Interoperates with keepalived
//! (`vrrp_version 3`): the checksum covers the IPv4 or IPv6 pseudo-header.

mod codec;
mod machine;
mod sock;
mod task;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests6;

use std::time::Duration;

pub use codec::{
    Advert, DecodeError, GROUP, GROUP6, PROTO, checksum, checksum6, decode, decode6, encode,
    encode6, ip_packet,
};
pub use machine::{Action, Ignored, MAX_LEARNED_FACTOR, Machine, Params, State};
pub use task::{Control, spawn};

/// One VRRP instance ready to run: where, and its machine's parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// `vrrp` for `[lb.vrrp]`, else the `[lb.vrrp-instance.NAME]`.
    pub name: String,
    /// Interface name.
    pub iface: String,
    /// Interface index.
    pub index: u32,
    /// The machine's parameters (source address and addresses included).
    pub params: Params,
}

/// Why VRRP cannot start.
#[derive(Debug, thiserror::Error)]
pub enum VrrpError {
    /// No interface configured and no service VIP to find one from.
    #[error("VRRP needs `interface` in [lb.vrrp] when there is no service")]
    NoInterface,
    /// The first VIP cannot be placed (its interface is what VRRP would use).
    #[error(transparent)]
    Place(#[from] crate::vip::VipError),
    /// The first IPv6 VIP cannot be placed (an IPv6 `[lb.vrrp]` runs on its interface).
    #[error(transparent)]
    Place6(#[from] crate::vip6::Vip6Error),
    /// The configured interface does not exist.
    #[error("VRRP interface `{0}` does not exist: fix `interface` in [lb.vrrp]")]
    MissingInterface(String),
    /// The interface's addresses cannot be listed.
    #[error(transparent)]
    Addresses(#[from] std::io::Error),
    /// The interface has no address of its own to send from.
    #[error("interface `{0}` has no IPv4 address to send VRRP from")]
    NoAddress(String),
    /// An IPv6 `[lb.vrrp]`'s interface has no link-local address to send from.
    #[error(
        "interface `{0}` has no IPv6 link-local address to send VRRP from: enable IPv6 on it (sysctl net.ipv6.conf.{0}.disable_ipv6=0) and bring it up, or set `source` in [lb.vrrp]"
    )]
    NoAddress6(String),
    /// The raw socket cannot be opened.
    #[error("VRRP socket on {iface}: {error} (needs root/CAP_NET_RAW)")]
    Socket {
        /// The interface.
        iface: String,
        /// What failed.
        error: std::io::Error,
    },
    /// The socket cannot be registered with the runtime.
    #[error("registering the VRRP socket: {0}")]
    Register(std::io::Error),
}

/// An advertisement interval in centiseconds (1-4095).
pub fn interval_cs(d: Duration) -> u16 {
    (d.as_millis() / 10).clamp(1, 4095) as u16
}
