//! The host file as written by people: serde structs that mirror the TOML one to one.
//!
//! Every struct denies unknown keys, so a misspelt key is an error with its line rather than a
//! silently ignored setting. Values that need checking keep their source span (`Spanned`) so the
//! validator (`validate/`) can point at them. Nothing here is interpreted: that is its job.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

pub(crate) type S<T> = Spanned<T>;

/// One value or a list of them: `ip = "10.0.0.1"` and `ip = ["10.0.0.1", "10.0.1.1"]`.
/// (Spans do not survive serde's untagged buffering, so the whole value carries one span.)
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum StrList {
    One(String),
    Many(Vec<String>),
}

/// A spanned [`StrList`], optional.
pub(crate) type OneOrMany = Option<S<StrList>>;

/// The items of a [`OneOrMany`], each carrying the span of the whole value.
pub(crate) fn items(v: &OneOrMany) -> Vec<S<String>> {
    let Some(v) = v else { return Vec::new() };
    let span = v.span();
    match v.get_ref() {
        StrList::One(s) => vec![Spanned::new(span, s.clone())],
        StrList::Many(l) => l
            .iter()
            .map(|s| Spanned::new(span.clone(), s.clone()))
            .collect(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct File {
    pub(crate) domain: S<String>,
    pub(crate) server: Option<S<String>>,
    pub(crate) ttl: Option<S<String>>,
    #[serde(default)]
    pub(crate) subnet: Vec<Subnet>,
    #[serde(default)]
    pub(crate) host: BTreeMap<S<String>, Host>,
    #[serde(default)]
    pub(crate) service: BTreeMap<S<String>, Service>,
    #[serde(default)]
    pub(crate) key: BTreeMap<S<String>, Key>,
    pub(crate) dhcp: Option<Dhcp>,
    pub(crate) dns: Option<Dns>,
    pub(crate) lb: Option<Lb>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct Subnet {
    pub(crate) name: Option<S<String>>,
    pub(crate) network: S<String>,
    pub(crate) interface: Option<S<String>>,
    #[serde(default)]
    pub(crate) routers: Vec<S<String>>,
    #[serde(default)]
    pub(crate) dns: Vec<S<String>>,
    pub(crate) domain: Option<S<String>>,
    #[serde(default)]
    pub(crate) search: Vec<S<String>>,
    #[serde(default)]
    pub(crate) ntp: Vec<S<String>>,
    pub(crate) broadcast: Option<S<String>>,
    pub(crate) mtu: Option<S<i64>>,
    pub(crate) lease: Option<S<String>>,
    pub(crate) max_lease: Option<S<String>>,
    pub(crate) authoritative: Option<S<bool>>,
    pub(crate) next_server: Option<S<String>>,
    pub(crate) boot_file: Option<S<String>>,
    #[serde(default)]
    pub(crate) pool: Vec<Pool>,
    #[serde(default)]
    pub(crate) option: Vec<DhcpOption>,
    // IPv6 subnets only:
    #[serde(default)]
    pub(crate) pd_pool: Vec<PdPool>,
    pub(crate) preferred_lifetime: Option<S<String>>,
    pub(crate) valid_lifetime: Option<S<String>>,
    pub(crate) t1: Option<S<String>>,
    pub(crate) t2: Option<S<String>>,
    pub(crate) ra: Option<S<bool>>,
    pub(crate) slaac: Option<S<bool>>,
    pub(crate) rapid_commit: Option<S<bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct Pool {
    pub(crate) range: S<String>,
    pub(crate) bootp: Option<S<bool>>,
}

/// `{ prefix = "fd00:1000::/48", delegated-length = 56 }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct PdPool {
    pub(crate) prefix: S<String>,
    pub(crate) delegated_length: S<i64>,
}

/// `{ code = 66, text = "tftp.lan" }`, `{ code = 150, ip = ["10.0.0.5"] }`, `{ code = 43, hex = "01:02" }`,
/// `{ code = 23, u8 = 64 }`, `{ code = 57, u16 = 1500 }`, `{ code = 2, u32 = 3600 }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct DhcpOption {
    pub(crate) code: S<i64>,
    pub(crate) text: Option<String>,
    pub(crate) ip: OneOrMany,
    pub(crate) hex: Option<S<String>>,
    pub(crate) u8: Option<S<i64>>,
    pub(crate) u16: Option<S<i64>>,
    pub(crate) u32: Option<S<i64>>,
    pub(crate) bool: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct Host {
    pub(crate) ip: OneOrMany,
    pub(crate) ipv6: OneOrMany,
    pub(crate) mac: Option<S<String>>,
    pub(crate) client_id: Option<S<String>>,
    pub(crate) duid: Option<S<String>>,
    #[serde(default)]
    pub(crate) aliases: Vec<S<String>>,
    pub(crate) dns: Option<bool>,
    pub(crate) boot_file: Option<S<String>>,
    #[serde(default)]
    pub(crate) option: Vec<DhcpOption>,
}

/// `"web1"` or `{ host = "web1", port = 8080, weight = 2 }` (the whole entry carries one span).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum BackendRef {
    Name(String),
    Full(Backend),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct Backend {
    pub(crate) host: String,
    pub(crate) port: Option<i64>,
    pub(crate) weight: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct Service {
    /// One address, or one IPv4 and one IPv6 address for a dual-stack service.
    pub(crate) vip: S<StrList>,
    pub(crate) port: S<i64>,
    pub(crate) protocol: Option<S<String>>,
    pub(crate) backends: Vec<S<BackendRef>>,
    pub(crate) backend_port: Option<S<i64>>,
    pub(crate) scheduler: Option<S<String>>,
    pub(crate) dataplane: Option<S<String>>,
    pub(crate) persistence: Option<S<String>>,
    pub(crate) sorry: Option<S<String>>,
    pub(crate) quorum: Option<S<i64>>,
    pub(crate) interface: Option<S<String>>,
    pub(crate) dns: Option<bool>,
    pub(crate) byte_counters: Option<bool>,
    pub(crate) check: Option<Check>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct Check {
    #[serde(rename = "type")]
    pub(crate) kind: Option<S<String>>,
    pub(crate) path: Option<S<String>>,
    pub(crate) expect: Option<S<String>>,
    pub(crate) body: Option<String>,
    pub(crate) host_header: Option<String>,
    pub(crate) port: Option<S<i64>>,
    pub(crate) interval: Option<S<String>>,
    pub(crate) timeout: Option<S<String>>,
    pub(crate) rise: Option<S<i64>>,
    pub(crate) fall: Option<S<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct Key {
    pub(crate) algorithm: Option<S<String>>,
    /// The base64 secret itself, or
    pub(crate) secret: Option<S<String>>,
    /// a file holding it (relative paths start at the host file's folder); exactly one of the two.
    pub(crate) secret_file: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct Dhcp {
    #[serde(default)]
    pub(crate) interfaces: Vec<S<String>>,
    pub(crate) port: Option<S<i64>>,
    pub(crate) lease_db: Option<String>,
    pub(crate) decline_probation: Option<S<String>>,
    pub(crate) ping_check: Option<bool>,
    pub(crate) ping_timeout: Option<S<String>>,
    pub(crate) discover_backlog: Option<S<i64>>,
    pub(crate) leases_per_mac: Option<S<i64>>,
    pub(crate) dynamic_bootp_lease_length: Option<S<String>>,
    pub(crate) dynamic_bootp_lease_cutoff: Option<S<String>>,
    pub(crate) ddns: Option<Ddns>,
    pub(crate) metrics: Option<S<String>>,
    pub(crate) control_socket: Option<String>,
    /// A file holding the status page's admin key (relative paths start at the host file's folder).
    pub(crate) admin_key_file: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct Ddns {
    pub(crate) server: S<String>,
    pub(crate) key: Option<S<String>>,
    pub(crate) ttl: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct Dns {
    #[serde(default)]
    pub(crate) listen: Vec<S<String>>,
    #[serde(default)]
    pub(crate) upstream: Vec<S<String>>,
    pub(crate) allow_recursion: Option<Vec<S<String>>>,
    #[serde(default)]
    pub(crate) ns: Vec<S<String>>,
    pub(crate) contact: Option<S<String>>,
    pub(crate) refresh: Option<S<String>>,
    pub(crate) retry: Option<S<String>>,
    pub(crate) expire: Option<S<String>>,
    pub(crate) negative_ttl: Option<S<String>>,
    #[serde(default)]
    pub(crate) update_keys: Vec<S<String>>,
    #[serde(default)]
    pub(crate) secondary: Vec<Secondary>,
    #[serde(default)]
    pub(crate) zone_file: Vec<ZoneFile>,
    pub(crate) rrl: Option<Rrl>,
    pub(crate) store: Option<String>,
    pub(crate) metrics: Option<S<String>>,
    pub(crate) control_socket: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct Secondary {
    pub(crate) address: S<String>,
    pub(crate) key: Option<S<String>>,
    pub(crate) notify: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct ZoneFile {
    pub(crate) path: S<String>,
    pub(crate) origin: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct Rrl {
    pub(crate) rate: Option<S<i64>>,
    pub(crate) slip: Option<S<i64>>,
    pub(crate) window: Option<S<String>>,
    pub(crate) ipv4_prefix: Option<S<i64>>,
    pub(crate) ipv6_prefix: Option<S<i64>>,
    #[serde(default)]
    pub(crate) exempt: Vec<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct Lb {
    pub(crate) interface: Option<S<String>>,
    pub(crate) garp_refresh: Option<S<String>>,
    pub(crate) vrrp: Option<Vrrp>,
    /// `[lb.vrrp-instance.NAME]`: floating addresses (see "Floating addresses" below).
    #[serde(default)]
    pub(crate) vrrp_instance: BTreeMap<S<String>, VrrpInstance>,
    /// `[lb.vrrp-script.NAME]`: tracked commands.
    #[serde(default)]
    pub(crate) vrrp_script: BTreeMap<S<String>, VrrpScript>,
    /// `[lb.sync-group.NAME]`: instances that move together.
    #[serde(default)]
    pub(crate) sync_group: BTreeMap<S<String>, SyncGroup>,
    pub(crate) max_checks: Option<S<i64>>,
    pub(crate) metrics: Option<S<String>>,
    pub(crate) control_socket: Option<String>,
    /// A file holding the status page's admin key (relative paths start at the host file's folder).
    pub(crate) admin_key_file: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct Vrrp {
    pub(crate) vrid: S<i64>,
    pub(crate) priority: Option<S<i64>>,
    pub(crate) preempt: Option<bool>,
    pub(crate) interval: Option<S<String>>,
    pub(crate) interface: Option<S<String>>,
    #[serde(default)]
    pub(crate) peers: Vec<S<String>>,
    pub(crate) source: Option<S<String>>,
    #[serde(default)]
    pub(crate) track_script: Vec<S<TrackRef>>,
    #[serde(default)]
    pub(crate) track_interface: Vec<S<TrackRef>>,
    pub(crate) notify_master: Option<S<Vec<String>>>,
    pub(crate) notify_backup: Option<S<Vec<String>>>,
    pub(crate) notify_fault: Option<S<Vec<String>>>,
}

// ---- Floating addresses (keepalived's vrrp_instance / vrrp_script / vrrp_sync_group) ----

/// `"chk_haproxy"` or `{ name = "chk_haproxy", weight = -20 }` (the whole entry carries one span).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum TrackRef {
    Name(String),
    Full(TrackFull),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct TrackFull {
    pub(crate) name: String,
    pub(crate) weight: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct VrrpInstance {
    pub(crate) vrid: S<i64>,
    pub(crate) interface: S<String>,
    pub(crate) priority: Option<S<i64>>,
    pub(crate) preempt: Option<bool>,
    pub(crate) interval: Option<S<String>>,
    pub(crate) addresses: S<Vec<S<String>>>,
    #[serde(default)]
    pub(crate) peers: Vec<S<String>>,
    pub(crate) source: Option<S<String>>,
    #[serde(default)]
    pub(crate) track_script: Vec<S<TrackRef>>,
    #[serde(default)]
    pub(crate) track_interface: Vec<S<TrackRef>>,
    pub(crate) notify_master: Option<S<Vec<String>>>,
    pub(crate) notify_backup: Option<S<Vec<String>>>,
    pub(crate) notify_fault: Option<S<Vec<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct VrrpScript {
    pub(crate) command: S<Vec<String>>,
    pub(crate) shell: Option<bool>,
    pub(crate) interval: Option<S<String>>,
    pub(crate) timeout: Option<S<String>>,
    pub(crate) weight: Option<S<i64>>,
    pub(crate) rise: Option<S<i64>>,
    pub(crate) fall: Option<S<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct SyncGroup {
    pub(crate) instances: S<Vec<S<String>>>,
}
