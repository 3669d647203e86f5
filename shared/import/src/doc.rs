//! The host file to write, as plain values already consistent (see `resolve`): what `emit`
//! renders and `verify` maps back to the inputs' lines.

use crate::emit_vrrp::{DExtras, DFloats};
use crate::source::Src;

/// The host file to write: plain values, already consistent (see `resolve.rs`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Doc {
    pub(crate) header: Vec<String>,
    pub(crate) domain: String,
    pub(crate) domain_note: Option<String>,
    pub(crate) server: Option<(String, String)>,
    pub(crate) ttl: Option<u32>,
    pub(crate) subnets: Vec<DSubnet>,
    pub(crate) hosts: Vec<DHost>,
    pub(crate) services: Vec<DService>,
    pub(crate) keys: Vec<DKey>,
    /// Keys the host file cannot take (hmac-md5): written commented out, to be replaced.
    pub(crate) old_keys: Vec<DKey>,
    pub(crate) ping_check: Option<bool>,
    pub(crate) ddns: Option<DDdns>,
    pub(crate) dns: DDns,
    pub(crate) vrrp: Option<DVrrp>,
    pub(crate) floats: DFloats,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct DSubnet {
    /// Where it came from (not written).
    pub(crate) src: Option<Src>,
    /// Where each of its keys came from, when not from `src` (not written).
    pub(crate) key_srcs: std::collections::BTreeMap<&'static str, Src>,
    pub(crate) notes: Vec<String>,
    pub(crate) network: String,
    pub(crate) interface: Option<String>,
    pub(crate) routers: Vec<String>,
    pub(crate) dns: Vec<String>,
    pub(crate) domain: Option<String>,
    pub(crate) search: Vec<String>,
    pub(crate) ntp: Vec<String>,
    pub(crate) broadcast: Option<String>,
    pub(crate) mtu: Option<u16>,
    pub(crate) lease: Option<(u64, String)>,
    pub(crate) max_lease: Option<(u64, String)>,
    pub(crate) authoritative: bool,
    pub(crate) next_server: Option<String>,
    pub(crate) boot_file: Option<String>,
    pub(crate) pools: Vec<DPool>,
    pub(crate) options: Vec<DOption>,
    /// IPv6: `[[subnet.pd-pool]]`s.
    pub(crate) pd_pools: Vec<DPdPool>,
    /// IPv6: `preferred-lifetime`, `valid-lifetime`, `t1`, `t2` in seconds.
    pub(crate) lifetimes6: Vec<(&'static str, u64)>,
    /// IPv6: `ra`.
    pub(crate) ra: Option<bool>,
}

/// `[[subnet.pd-pool]]`.
#[derive(Debug, Clone)]
pub(crate) struct DPdPool {
    /// Where it came from (not written).
    pub(crate) src: Src,
    pub(crate) note: String,
    pub(crate) prefix: String,
    pub(crate) delegated_length: u8,
}

/// `[[subnet.option]]` / `[[host.NAME.option]]`: the value already written as `kind = value`.
#[derive(Debug, Clone)]
pub(crate) struct DOption {
    /// Where it came from (not written).
    pub(crate) src: Src,
    pub(crate) note: String,
    pub(crate) code: u8,
    pub(crate) value: String,
}

#[derive(Debug, Clone)]
pub(crate) struct DPool {
    /// Where it came from (not written).
    pub(crate) src: Src,
    pub(crate) note: String,
    pub(crate) start: String,
    pub(crate) end: String,
    pub(crate) bootp: bool,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct DHost {
    /// Where it came from (not written).
    pub(crate) src: Option<Src>,
    pub(crate) notes: Vec<String>,
    pub(crate) name: String,
    pub(crate) ips: Vec<String>,
    pub(crate) ipv6: Vec<String>,
    pub(crate) mac: Option<String>,
    pub(crate) duid: Option<String>,
    pub(crate) client_id: Option<String>,
    pub(crate) aliases: Vec<String>,
    pub(crate) dns: Option<bool>,
    pub(crate) boot_file: Option<String>,
    pub(crate) options: Vec<DOption>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct DBackend {
    pub(crate) host: String,
    pub(crate) port: Option<u16>,
    pub(crate) weight: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DCheck {
    pub(crate) kind: &'static str,
    pub(crate) path: Option<String>,
    pub(crate) expect: Option<String>,
    pub(crate) host_header: Option<String>,
    pub(crate) port: Option<u16>,
    pub(crate) interval_ms: Option<u64>,
    pub(crate) timeout_ms: Option<u64>,
    pub(crate) fall: Option<u32>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct DService {
    /// Where it came from (not written).
    pub(crate) src: Option<Src>,
    pub(crate) notes: Vec<String>,
    pub(crate) name: String,
    pub(crate) vip: String,
    /// The IPv6 VIP of a dual-stack service (`vip = [vip, vip6]`).
    pub(crate) vip6: Option<String>,
    pub(crate) port: u16,
    pub(crate) udp: bool,
    pub(crate) backends: Vec<DBackend>,
    pub(crate) backend_port: Option<u16>,
    pub(crate) scheduler: Option<String>,
    pub(crate) dataplane: Option<&'static str>,
    pub(crate) persistence: Option<u64>,
    pub(crate) sorry: Option<String>,
    pub(crate) quorum: Option<u32>,
    pub(crate) interface: Option<String>,
    pub(crate) dns: Option<bool>,
    pub(crate) check: Option<DCheck>,
}

#[derive(Debug, Clone)]
pub(crate) struct DKey {
    /// Where it came from (not written).
    pub(crate) src: Src,
    pub(crate) note: String,
    pub(crate) name: String,
    pub(crate) algorithm: String,
    pub(crate) secret: String,
}

#[derive(Debug, Clone)]
pub(crate) struct DDdns {
    /// Where it came from (not written).
    pub(crate) src: Src,
    pub(crate) note: String,
    pub(crate) server: String,
    pub(crate) key: Option<String>,
    pub(crate) ttl: Option<u64>,
    /// Why it is written commented out (no usable key: updates are never made unsigned).
    pub(crate) disabled: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct DDns {
    /// Where it came from (not written).
    pub(crate) src: Option<Src>,
    pub(crate) notes: Vec<String>,
    pub(crate) ns: Vec<String>,
    pub(crate) contact: Option<String>,
    pub(crate) refresh: Option<u64>,
    pub(crate) retry: Option<u64>,
    pub(crate) expire: Option<u64>,
    pub(crate) negative_ttl: Option<u64>,
    pub(crate) update_keys: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct DVrrp {
    /// Where it came from (not written).
    pub(crate) src: Option<Src>,
    pub(crate) notes: Vec<String>,
    pub(crate) vrid: u8,
    pub(crate) priority: Option<u8>,
    pub(crate) preempt: bool,
    pub(crate) interval_ms: Option<u64>,
    pub(crate) interface: Option<String>,
    pub(crate) peers: Vec<String>,
    pub(crate) source: Option<String>,
    pub(crate) extras: DExtras,
}
