//! The validated host table: plain typed values, every invariant already checked.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::Serialize;

use crate::model6::Dhcp6Subnet;

mod admin;
mod float;
pub use admin::AdminKey;
pub use float::*;

/// An Ethernet hardware address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Mac(pub [u8; 6]);

impl FromStr for Mac {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        let parts: Vec<&str> = s.split([':', '-']).collect();
        if parts.len() != 6 {
            return Err(());
        }
        let mut out = [0u8; 6];
        for (o, p) in out.iter_mut().zip(parts) {
            if p.len() != 2 {
                return Err(());
            }
            *o = u8::from_str_radix(p, 16).map_err(|_| ())?;
        }
        Ok(Mac(out))
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

/// An inclusive IPv4 address range, `192.168.10.200-192.168.10.254`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Ipv4Range {
    /// First address.
    pub start: Ipv4Addr,
    /// Last address (inclusive).
    pub end: Ipv4Addr,
}

impl Ipv4Range {
    /// True when `ip` lies in the range.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        (self.start..=self.end).contains(&ip)
    }
    /// Number of addresses in the range.
    pub fn len(&self) -> u64 {
        u64::from(u32::from(self.end)) - u64::from(u32::from(self.start)) + 1
    }
    /// Never true: a range holds at least one address.
    pub fn is_empty(&self) -> bool {
        false
    }
    /// True when the two ranges share an address.
    pub fn overlaps(&self, o: &Ipv4Range) -> bool {
        self.start <= o.end && o.start <= self.end
    }
}

impl fmt::Display for Ipv4Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

/// A TSIG key (RFC 8945), shared by dnsd (to verify) and dhcpd (to sign updates).
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct TsigKey {
    /// Key name as it appears on the wire (a DNS name, lower case, no trailing dot).
    pub name: String,
    /// Algorithm name, e.g. `hmac-sha256`.
    pub algorithm: String,
    /// The decoded secret.
    #[serde(skip)]
    pub secret: Vec<u8>,
}

impl fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TsigKey")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// A DHCP option given by code in the host file, already encoded as its payload bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RawOption {
    /// Option code (1-254).
    pub code: u8,
    /// Payload, without code and length.
    pub data: Vec<u8>,
}

/// A subnet as the DHCP server sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DhcpSubnet {
    /// Name given in the file, or the network in text form.
    pub name: String,
    /// The network, host bits zero.
    pub network: Ipv4Net,
    /// Interface to serve it on; `None` = whichever interface holds an address in it.
    pub interface: Option<String>,
    /// Option 3.
    pub routers: Vec<Ipv4Addr>,
    /// Option 6.
    pub dns: Vec<Ipv4Addr>,
    /// Option 15.
    pub domain: String,
    /// Option 119.
    pub search: Vec<String>,
    /// Option 42.
    pub ntp: Vec<Ipv4Addr>,
    /// Option 28.
    pub broadcast: Ipv4Addr,
    /// Option 26.
    pub mtu: Option<u16>,
    /// Default lease time.
    pub lease: Duration,
    /// Longest lease granted when a client asks for more.
    pub max_lease: Duration,
    /// NAK requests for addresses that are wrong for this network (`authoritative;`).
    pub authoritative: bool,
    /// BOOTP/PXE `siaddr`.
    pub next_server: Option<Ipv4Addr>,
    /// BOOTP/PXE file name.
    pub boot_file: Option<String>,
    /// Dynamic ranges.
    pub pools: Vec<Pool>,
    /// Any further options by code.
    pub options: Vec<RawOption>,
}

/// A dynamic range inside a subnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Pool {
    /// The addresses.
    pub range: Ipv4Range,
    /// BOOTP clients may get addresses from it (`range dynamic-bootp`).
    pub bootp: bool,
}

/// A fixed address handed to one client by MAC (or client identifier).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reservation {
    /// Host name (one label).
    pub hostname: String,
    /// Hardware address, if reserved by MAC.
    pub mac: Option<Mac>,
    /// Client identifier (option 61) bytes, if reserved by it.
    pub client_id: Option<Vec<u8>>,
    /// The reserved address.
    pub ip: Ipv4Addr,
    /// Index into `DhcpView::subnets`.
    pub subnet: usize,
    /// Per-host boot file.
    pub boot_file: Option<String>,
    /// Per-host options, overriding the subnet's.
    pub options: Vec<RawOption>,
}

/// A fixed IPv6 address handed to one client by DUID or by MAC (from a DUID-LL/LLT or a relay's
/// client link-layer address option, RFC 6939).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reservation6 {
    /// Host name (one label).
    pub hostname: String,
    /// DUID bytes (type code included), if reserved by DUID.
    pub duid: Option<Vec<u8>>,
    /// Hardware address, if the host has one.
    pub mac: Option<Mac>,
    /// The reserved address.
    pub ip: Ipv6Addr,
    /// Index into `DhcpView::subnets6`.
    pub subnet: usize,
}

/// Where dhcpd sends RFC 2136 updates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DdnsConfig {
    /// The DNS server.
    pub server: SocketAddr,
    /// TSIG key to sign with.
    pub key: Option<TsigKey>,
    /// TTL of the records added.
    pub ttl: Duration,
    /// The forward zone (the domain), no trailing dot.
    pub forward_zone: String,
    /// Reverse zones that may receive PTR updates (in-addr.arpa and ip6.arpa), no trailing dot.
    pub reverse_zones: Vec<String>,
}

/// Everything dhcpd needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DhcpView {
    /// The domain (option 15 default, DDNS forward zone).
    pub domain: String,
    /// Subnets in file order.
    pub subnets: Vec<DhcpSubnet>,
    /// Reservations.
    pub reservations: Vec<Reservation>,
    /// IPv6 subnets in file order (DHCPv6 and router advertisements).
    pub subnets6: Vec<Dhcp6Subnet>,
    /// IPv6 reservations.
    pub reservations6: Vec<Reservation6>,
    /// Interfaces to listen on; empty = automatic.
    pub interfaces: Vec<String>,
    /// UDP server port (67).
    pub port: u16,
    /// Lease database path.
    pub lease_db: PathBuf,
    /// Shared SQL lease database (`lease-db = "postgresql://..."`); when set, `lease_db` is unused.
    pub lease_db_url: Option<String>,
    /// How long a declined or conflicting address is kept out of use.
    pub decline_probation: Duration,
    /// Ping an address before offering it.
    pub ping_check: bool,
    /// How long to wait for the echo reply.
    pub ping_timeout: Duration,
    /// Most DISCOVERs answered over the last second beyond the REQUESTs that followed; past it
    /// new exchanges are dropped (overload). 0: no limit.
    pub discover_backlog: u32,
    /// Most leases (offered or bound) one hardware address holds under different client
    /// identifiers; a client id beyond them gets no address. 0: no bound.
    pub leases_per_mac: u32,
    /// Length of dynamic BOOTP leases (ISC `dynamic-bootp-lease-length`); `None`: they never
    /// expire (ISC's default).
    pub dynamic_bootp_lease_length: Option<Duration>,
    /// Unix seconds at which every dynamic BOOTP lease ends (ISC `dynamic-bootp-lease-cutoff`);
    /// `None`: no cutoff.
    pub dynamic_bootp_lease_cutoff: Option<u64>,
    /// Dynamic DNS, when configured.
    pub ddns: Option<DdnsConfig>,
    /// Prometheus endpoint.
    pub metrics: Option<SocketAddr>,
    /// Local control socket (status, leases).
    pub control_socket: PathBuf,
    /// `admin-key-file`: the key that unlocks the status page's actions (release a lease).
    pub admin_key: Option<AdminKey>,
}

/// Record data in the zones derived from the host table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum RecordData {
    /// IPv4 address.
    A(Ipv4Addr),
    /// IPv6 address.
    Aaaa(Ipv6Addr),
    /// Canonical name (absolute, trailing dot).
    Cname(String),
    /// Pointer (absolute, trailing dot).
    Ptr(String),
    /// Name server (absolute, trailing dot).
    Ns(String),
}

/// One resource record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Record {
    /// Owner name, absolute, lower case, trailing dot.
    pub name: String,
    /// TTL in seconds.
    pub ttl: u32,
    /// The data.
    pub data: RecordData,
}

/// Start-of-authority values (the serial is the DNS server's business: it must grow on change).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Soa {
    /// Primary server name, absolute.
    pub mname: String,
    /// Responsible mailbox as a name, absolute.
    pub rname: String,
    /// Seconds.
    pub refresh: u32,
    /// Seconds.
    pub retry: u32,
    /// Seconds.
    pub expire: u32,
    /// Negative caching TTL, seconds.
    pub minimum: u32,
    /// TTL of the SOA record itself.
    pub ttl: u32,
}

/// What a zone is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ZoneKind {
    /// The domain.
    Forward,
    /// An in-addr.arpa zone covering this network.
    Reverse(Ipv4Net),
    /// An ip6.arpa zone covering this network (a nibble boundary).
    Reverse6(Ipv6Net),
}

/// A zone built from the host table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Zone {
    /// Origin, absolute, lower case, trailing dot.
    pub origin: String,
    /// Forward or reverse.
    pub kind: ZoneKind,
    /// SOA values.
    pub soa: Soa,
    /// All records but the SOA (NS at the apex included), sorted by name.
    pub records: Vec<Record>,
}

/// A secondary allowed to transfer the zones and told of changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Secondary {
    /// Its address (port 53 unless given).
    pub address: SocketAddr,
    /// Key it must sign transfer requests with.
    pub key: Option<TsigKey>,
    /// Send NOTIFY to it on change.
    pub notify: bool,
}

/// An extra RFC 1035 zone file served beside the host-table records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ZoneFileRef {
    /// Path (relative paths are relative to the host file's folder).
    pub path: PathBuf,
    /// Origin, absolute; defaults to the domain.
    pub origin: String,
}

/// Response rate limiting settings (BIND/NSD style).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RrlSettings {
    /// Responses per second per source prefix; 0 = off.
    pub rate: u32,
    /// Every `slip`-th limited response is sent truncated (TC) instead of dropped; 0 = always drop.
    pub slip: u32,
    /// Accounting window.
    pub window: Duration,
    /// IPv4 prefix length grouping sources.
    pub ipv4_prefix: u8,
    /// IPv6 prefix length grouping sources.
    pub ipv6_prefix: u8,
    /// Networks never limited.
    pub exempt: Vec<IpNet>,
}

/// Everything dnsd needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DnsView {
    /// The domain, absolute.
    pub domain: String,
    /// Forward zone first, then reverse zones.
    pub zones: Vec<Zone>,
    /// Addresses to answer on.
    pub listen: Vec<SocketAddr>,
    /// Upstream resolvers for names outside the zones; empty = no forwarding.
    pub upstream: Vec<SocketAddr>,
    /// Clients allowed to use forwarding (and the cache).
    pub allow_recursion: Vec<IpNet>,
    /// Keys accepted for dynamic updates.
    pub update_keys: Vec<TsigKey>,
    /// Secondaries (transfer ACL and NOTIFY targets).
    pub secondaries: Vec<Secondary>,
    /// Extra zone files.
    pub zone_files: Vec<ZoneFileRef>,
    /// Response rate limiting.
    pub rrl: RrlSettings,
    /// Persistent store for dynamic updates and serials.
    pub store: PathBuf,
    /// Prometheus endpoint.
    pub metrics: Option<SocketAddr>,
    /// Local control socket.
    pub control_socket: PathBuf,
}

/// Transport of a virtual service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

/// How connections are spread over backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Scheduler {
    /// Round robin.
    Rr,
    /// Weighted round robin.
    Wrr,
    /// Least connections (user-space data plane).
    Lc,
    /// Source hashing, consistent.
    Sh,
}

/// Which data plane carries a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Dataplane {
    /// nftables DNAT in the kernel.
    Kernel,
    /// tokio TCP proxy in user space.
    Proxy,
}

/// One real server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Backend {
    /// Host name from the table.
    pub name: String,
    /// Its address on the service's side (the family of the service's VIP, except for a proxy
    /// service whose backend has only the other family).
    pub addr: SocketAddr,
    /// Relative weight (1-1000).
    pub weight: u32,
}

/// The kind of health check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum CheckKind {
    /// No check: always up.
    None,
    /// TCP connect.
    Tcp,
    /// HTTP GET.
    Http {
        /// Path requested.
        path: String,
        /// Accepted status codes, inclusive.
        expect: (u16, u16),
        /// Substring the body must contain.
        body: Option<String>,
        /// Host header (defaults to the backend address).
        host: Option<String>,
    },
}

/// Health check parameters for every backend of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthCheck {
    /// What to do.
    pub kind: CheckKind,
    /// Port to check; `None` = the backend's port.
    pub port: Option<u16>,
    /// Time between checks.
    pub interval: Duration,
    /// Time a check may take.
    pub timeout: Duration,
    /// Successes in a row to become healthy.
    pub rise: u32,
    /// Failures in a row to become unhealthy.
    pub fall: u32,
}

/// A balanced virtual service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VirtualService {
    /// Service name (also its DNS name under the domain).
    pub name: String,
    /// Virtual address. A dual-stack service (`vip = ["IPv4", "IPv6"]`) is two entries with the
    /// same name, one per family, each over its backends' addresses of that family.
    pub vip: IpAddr,
    /// Prefix length of the subnet the VIP lives in (for adding it to an interface).
    pub vip_prefix: u8,
    /// Port.
    pub port: u16,
    /// Transport.
    pub protocol: Protocol,
    /// Scheduler.
    pub scheduler: Scheduler,
    /// Data plane.
    pub dataplane: Dataplane,
    /// Source persistence timeout.
    pub persistence: Option<Duration>,
    /// Sorry server used when no backend is live.
    pub sorry: Option<SocketAddr>,
    /// Minimum live weight; below it the service is withdrawn.
    pub quorum: u32,
    /// Count bytes per backend in the kernel data plane (a rule on every packet: off by default;
    /// connections are always counted, at no per-packet cost).
    pub byte_counters: bool,
    /// Interface for the VIP; `None` = the one holding an address in the VIP's subnet.
    pub interface: Option<String>,
    /// Real servers.
    pub backends: Vec<Backend>,
    /// Health check.
    pub check: HealthCheck,
}

/// VRRP v3 settings of `[lb.vrrp]`, the instance holding the service VIPs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VrrpConfig {
    /// Virtual router id (1-255).
    pub vrid: u8,
    /// Priority (1-254; 255 = address owner).
    pub priority: u8,
    /// Take over from a lower-priority master.
    pub preempt: bool,
    /// Advertisement interval (centisecond resolution).
    pub interval: Duration,
    /// Interface to run on; `None` = the VIPs' interface.
    pub interface: Option<String>,
    /// An IPv6 virtual router (VRRP over IPv6: ff02::12, link-local source) when the service
    /// VIPs are all IPv6 ([`service_vrrp_ipv6`]); IPv4 otherwise.
    pub ipv6: bool,
    /// Unicast peers, of the instance's family; empty = multicast (224.0.0.18 or ff02::12).
    pub peers: Vec<IpAddr>,
    /// Source address for adverts (IPv6 without peers: a link-local one).
    pub source: Option<IpAddr>,
    /// `track-script` / `track-interface`: what lowers the priority or faults this instance.
    pub tracking: Tracking,
    /// `notify-master` / `notify-backup` / `notify-fault`.
    pub notify: Notify,
}

/// Everything lbd needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LbView {
    /// Virtual services.
    pub services: Vec<VirtualService>,
    /// Default interface for VIPs.
    pub interface: Option<String>,
    /// Periodic gratuitous ARP while master.
    pub garp_refresh: Option<Duration>,
    /// VRRP, when configured.
    pub vrrp: Option<VrrpConfig>,
    /// Further VRRP instances holding floating addresses.
    pub instances: Vec<FloatInstance>,
    /// Tracked scripts.
    pub scripts: Vec<TrackScript>,
    /// Sync groups.
    pub sync_groups: Vec<SyncGroup>,
    /// Health checks running at once, at most.
    pub max_checks: u32,
    /// Prometheus endpoint.
    pub metrics: Option<SocketAddr>,
    /// Local control socket.
    pub control_socket: PathBuf,
    /// `admin-key-file`: the key that unlocks the status page's actions (drain, undrain).
    pub admin_key: Option<AdminKey>,
}

/// A host from the table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Host {
    /// One DNS label, lower case.
    pub name: String,
    /// IPv4 addresses.
    pub ips: Vec<Ipv4Addr>,
    /// IPv6 addresses (AAAA records; those in an IPv6 subnet are also DHCPv6 reservations).
    pub ipv6: Vec<Ipv6Addr>,
    /// Hardware address for the DHCP reservation.
    pub mac: Option<Mac>,
    /// Extra names (CNAMEs).
    pub aliases: Vec<String>,
    /// Published in DNS.
    pub dns: bool,
}
