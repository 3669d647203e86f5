//! Router advertisements (RFC 4861), as radvd sends them: for each IPv6 subnet with `ra` on that
//! a local interface serves, the prefix (on-link, autonomous when the subnet asks for SLAAC), the
//! M and O flags matching its DHCPv6 pools and options, RDNSS and DNSSL (RFC 8106), the MTU and
//! the interface's link-layer address; unsolicited ones on radvd's schedule, answers to router
//! solicitations, and a final one with router lifetime 0 when the daemon stops.
//!
//! The core is pure: [`build`] makes the bytes, [`rs`] reads a solicitation, [`sched`] decides
//! when to send what, from the time it is given. [`task`] is the socket side.

pub mod build;
pub mod rs;
pub mod sched;
pub mod task;
#[cfg(test)]
mod tests;

/// ICMPv6 type of a router solicitation.
pub const ROUTER_SOLICITATION: u8 = 133;
/// ICMPv6 type of a router advertisement.
pub const ROUTER_ADVERTISEMENT: u8 = 134;
/// Neighbour discovery messages are sent and accepted with this hop limit only (RFC 4861 6.1).
pub const ND_HOP_LIMIT: u8 = 255;
