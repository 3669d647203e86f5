//! dhcpd: DHCPv4 server over the shared host table.

pub mod alloc;
pub mod ddns;
pub mod decide;
pub mod decode;
pub mod index;
pub mod io;
pub mod lease;
pub mod leases;
pub mod metrics;
pub mod options;
pub mod page;
pub mod pgstore;
pub mod ping;
pub mod pool_index;
pub mod recent;
pub mod server;
pub mod store;
#[cfg(test)]
mod testutil;
pub mod v6;

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::Context as _;
use hostfile::{DhcpView, HostTable};
use runtime::daemon::{CommonArgs, notify};

use crate::lease::{Lease, NEVER};

/// Command line.
#[derive(Debug, clap::Parser)]
#[command(
    name = "dhcpd",
    version,
    about = "DHCPv4 server for the LAN described by the host file"
)]
pub struct Cli {
    /// Flags shared by the three daemons.
    #[command(flatten)]
    pub common: CommonArgs,
    /// `--user`: whom to become when started as root.
    #[command(flatten)]
    pub user: runtime::daemon::UserArg,
    /// What to do (default: serve).
    #[command(subcommand)]
    pub cmd: Option<Cmd>,
}

/// Subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Cmd {
    /// List leases from the lease database (works while the server runs).
    Leases {
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
        /// Include released and expired records.
        #[arg(long)]
        all: bool,
    },
    /// Release a bound lease as its client's DHCPRELEASE (or DHCPv6 RELEASE) would (asks the
    /// running daemon; answers once the release is durable).
    Release {
        /// The leased address: IPv4, IPv6, or a delegated IPv6 prefix (`fd00:1000::/56`).
        ip: v6::listing::Target,
    },
    /// Turn an ISC dhcpd.conf (and zone files, keepalived.conf) into a host file.
    Import(import::command::ImportArgs),
}

/// This daemon's view of the host table.
pub fn view(t: &HostTable) -> DhcpView {
    t.dhcp_view()
}

/// A short human summary of the view (for `--check` and the start-up log).
pub fn summary(v: &DhcpView) -> String {
    let mut s = String::new();
    let addrs = runtime::netif::local_ipv4().unwrap_or_default();
    for sn in &v.subnets {
        let size: u64 = sn.pools.iter().map(|p| p.range.len()).sum();
        let bootp: u64 = sn
            .pools
            .iter()
            .filter(|p| p.bootp)
            .map(|p| p.range.len())
            .sum();
        let iface = sn
            .interface
            .clone()
            .or_else(|| runtime::netif::find_in(&addrs, sn.network).map(|a| a.name.clone()))
            .unwrap_or_else(|| "no local interface".into());
        let _ = writeln!(
            s,
            "subnet {} ({}) on {iface}: {} pool(s), {size} dynamic addresses ({bootp} BOOTP), lease {}, {}",
            sn.network,
            sn.name,
            sn.pools.len(),
            humantime_secs(sn.lease.as_secs()),
            if sn.authoritative {
                "authoritative"
            } else {
                "not authoritative"
            }
        );
    }
    // The interface serving each IPv6 subnet, as the DHCPv6 server will choose it.
    let links = v6::server::choose_links(v).unwrap_or_default();
    for (i, sn) in v.subnets6.iter().enumerate() {
        let iface = sn
            .interface
            .as_deref()
            .or_else(|| {
                let l = links
                    .iter()
                    .find(|l| v6::server::subnet_of(v, l) == Some(i));
                l.map(|l| l.name.as_str())
            })
            .unwrap_or("no local interface");
        let _ = writeln!(s, "{}", sn.summary_on(iface));
    }
    let db = match &v.lease_db_url {
        Some(u) => format!("{} (shared, PostgreSQL)", pgstore::redact(u)),
        None => v.lease_db.display().to_string(),
    };
    let _ = writeln!(
        s,
        "{} reservation(s), {} IPv6; lease database {db}",
        v.reservations.len(),
        v.reservations6.len(),
    );
    match &v.ddns {
        Some(d) => {
            let key = d
                .key
                .as_ref()
                .map_or("unsigned".to_owned(), |k| format!("key {}", k.name));
            let _ = writeln!(
                s,
                "dynamic DNS to {} ({key}) for zone {}",
                d.server, d.forward_zone
            );
        }
        None => s.push_str("dynamic DNS off\n"),
    }
    s
}

fn humantime_secs(secs: u64) -> String {
    match secs {
        s if s % 86400 == 0 => format!("{}d", s / 86400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// The control socket: `leases [--all]` answers with the lease table (text and JSON) read by the
/// running daemon, so `dhcpd leases` needs no access to the database itself; `release IP` hands
/// the release to the core task (`admin`) and answers once it is durable. Returns the handler
/// (the status page's release button runs it too).
fn serve_control(
    cli: &Cli,
    v: &DhcpView,
    db: &std::path::Path,
    admin: tokio::sync::mpsc::Sender<server::Release>,
    admin6: Option<v6::admin::Admin6>,
    stop: tokio_util::sync::CancellationToken,
) -> runtime::control::Handler {
    let path = cli.common.runtime_path(&v.control_socket);
    let (db, url) = (db.to_owned(), v.lease_db_url.clone());
    let handler: runtime::control::Handler = std::sync::Arc::new(move |args| match args[0] {
        "leases" => {
            // Only the form asked for, as one string: a JSON tree of 100,000 leases would cost
            // the daemon hundreds of megabytes for a moment.
            let all = args.contains(&"--all");
            let json = args.contains(&"--json");
            let v6 = match admin6.as_ref().map(|a| a.leases(RELEASE_WAIT)) {
                None => Ok(Vec::new()),
                Some(r) => r,
            };
            match v6
                .map_err(anyhow::Error::from)
                .and_then(|v6| list_leases(&db, url.as_deref(), json, all, &v6))
            {
                Ok(t) => serde_json::json!({ "text": t }),
                Err(e) => serde_json::json!({ "error": format!("{e:#}") }),
            }
        }
        "release" => match args.get(1).and_then(|a| a.parse().ok()) {
            Some(v6::listing::Target::V4(ip)) => release_in_core(&admin, ip),
            Some(v6::listing::Target::V6(t)) => {
                match admin6.as_ref().map(|a| a.release(t, RELEASE_WAIT)) {
                    Some(Ok(l)) => {
                        serde_json::json!({ "text": format!("released {}", v6::listing::shown(&l)) })
                    }
                    Some(Err(e)) => serde_json::json!({ "error": e.to_string() }),
                    None => serde_json::json!({ "error": "this server does not serve DHCPv6" }),
                }
            }
            None => {
                serde_json::json!({ "error": "usage: release IPV4-ADDRESS | IPV6-ADDRESS | IPV6-PREFIX" })
            }
        },
        other => {
            serde_json::json!({ "error": format!("unknown command `{other}`; try leases or release IP") })
        }
    });
    if let Err(e) = runtime::control::serve(&path, handler.clone(), stop) {
        tracing::warn!(socket = %path.display(), error = %e, "control socket not available; `dhcpd leases` reads the database instead");
    }
    handler
}

/// How long `release` waits for the core task and the lease writer (the client waits 5 s).
const RELEASE_WAIT: Duration = Duration::from_secs(4);

/// Runs on the control socket's blocking thread: asks the core task, waits for durability.
fn release_in_core(
    admin: &tokio::sync::mpsc::Sender<server::Release>,
    ip: std::net::Ipv4Addr,
) -> serde_json::Value {
    let (done, answer) = std::sync::mpsc::channel();
    if admin.blocking_send(server::Release { ip, done }).is_err() {
        return serde_json::json!({ "error": "the server is stopping" });
    }
    match answer.recv_timeout(RELEASE_WAIT) {
        Ok(Ok(())) => serde_json::json!({ "text": format!("released {ip}") }),
        Ok(Err(e)) => serde_json::json!({ "error": e.to_string() }),
        Err(_) => {
            serde_json::json!({ "error": format!("the release of {ip} was not confirmed durable") })
        }
    }
}

/// `dhcpd release IP`: only through the running daemon (the lease table is its own).
pub fn release_command(cli: &Cli, ip: v6::listing::Target) -> anyhow::Result<String> {
    let t = runtime::daemon::load_or_exit(&cli.common.config);
    let sock = cli.common.runtime_path(&view(&t).control_socket);
    let doc = runtime::control::request(&sock, &format!("release {ip}"))
        .with_context(|| format!("no running daemon at {}", sock.display()))?;
    match doc.get("error") {
        Some(e) => anyhow::bail!("{}", e.as_str().unwrap_or_default()),
        None => Ok(doc["text"].as_str().unwrap_or_default().to_owned()),
    }
}

/// `dhcpd leases`: asks the running daemon; without one, reads the database. Returns the text to
/// print.
pub fn leases_command(cli: &Cli, json: bool, all: bool) -> anyhow::Result<String> {
    let t = runtime::daemon::load_or_exit(&cli.common.config);
    let v = view(&t);
    let sock = cli.common.runtime_path(&v.control_socket);
    let cmd = format!(
        "leases{}{}",
        if all { " --all" } else { "" },
        if json { " --json" } else { "" }
    );
    match runtime::control::request(&sock, &cmd) {
        Ok(doc) if doc.get("error").is_none() => {
            return Ok(doc["text"].as_str().unwrap_or_default().to_owned());
        }
        Ok(doc) => anyhow::bail!("the daemon answered: {}", doc["error"]),
        Err(e) => eprintln!("dhcpd leases: no running daemon ({e}); reading the lease database"),
    }
    let db = cli.common.state_path(&v.lease_db);
    // The v4 listing stays available when the v6 file cannot be read (held by a daemon whose
    // control socket is away, say).
    let v6 = match &v.lease_db_url {
        Some(url) => v6::listing::read_shared_rows(url, &v.reservations6),
        None => v6::listing::read_rows(&db.with_file_name("leases6.redb"), &v.reservations6),
    }
    .unwrap_or_else(|e| {
        eprintln!("dhcpd leases: DHCPv6 bindings not shown: {e}");
        Vec::new()
    });
    list_leases(&db, v.lease_db_url.as_deref(), json, all, &v6)
}

/// Started as root by hand: hands the state and runtime folders to `--user` and becomes it,
/// keeping only what dhcpd uses (port 67, raw sockets for ping checks and interface binding, ARP
/// entries for unicast replies). Capabilities are per thread: call before any thread exists.
pub fn drop_privileges(cli: &Cli) -> Result<runtime::privdrop::Dropped, runtime::privdrop::Error> {
    use runtime::privdrop::Capability::{NetAdmin, NetBindService, NetRaw};
    let v = view(&runtime::daemon::load_or_exit(&cli.common.config));
    let (mut folders, mut files) = (Vec::new(), Vec::new());
    for p in [
        cli.common.state_path(&v.lease_db),
        cli.common.runtime_path(&v.control_socket),
    ] {
        if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
            folders.push(dir.to_owned());
            files.push(p.with_file_name("leases-pending.redb"));
            files.extend(["leases6.redb", "server-duid"].map(|f| p.with_file_name(f)));
            files.push(p);
        }
    }
    runtime::privdrop::become_user(
        &cli.user,
        &folders,
        &files,
        &[NetAdmin, NetRaw, NetBindService],
    )
}

/// Runs the server until SIGTERM/SIGINT.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let started = runtime::daemon::start(&cli.common, "dhcpd", view, summary);
    let v = started.reload.view.borrow().clone();
    let db = cli.common.state_path(&v.lease_db);
    let (store, spool): (Box<dyn store::LeaseStore>, _) = match &v.lease_db_url {
        Some(url) => {
            let url = url.clone();
            // Changes acknowledged during an outage of the database wait beside where the
            // embedded database would be.
            let mut spool = store::Spool::open(&db.with_file_name("leases-pending.redb"))?;
            // The PostgreSQL client runs its own runtime: connect off this one.
            let (s, spool) = tokio::task::spawn_blocking(move || {
                let mut s = pgstore::PgStore::open(&url)?;
                let n = spool.replay(&mut s, lease::unix_now())?;
                if n > 0 {
                    tracing::info!(
                        groups = n,
                        "changes acknowledged during an earlier outage written to the database"
                    );
                }
                Ok::<_, store::StoreError>((s, spool))
            })
            .await??;
            tracing::info!(url = %s.shown(), "shared lease database open");
            (Box::new(s), Some(spool))
        }
        None => {
            let s = match std::env::var("DHCPD_JOURNAL_FOLD") {
                Err(_) => store::RedbStore::open(&db)?,
                Ok(v) => match store::parse_fold_limits(&v) {
                    Some((fold, slice)) => {
                        tracing::info!(fold, slice, "DHCPD_JOURNAL_FOLD: journal fold limits");
                        store::RedbStore::with_fold_limits(&db, fold, slice)?
                    }
                    None => {
                        tracing::warn!(value = %v, "DHCPD_JOURNAL_FOLD is not CHANGES/SLICE (two whole numbers from 1): ignored");
                        store::RedbStore::open(&db)?
                    }
                },
            };
            tracing::info!(path = %db.display(), "lease database open");
            (Box::new(s), None)
        }
    };
    let mut ifaces = Vec::new();
    for (name, addrs) in server::choose_ifaces(&v)? {
        let sock = io::bind_iface(&name, v.port)
            .with_context(|| format!("cannot bind UDP port {} on {name}", v.port))?;
        let shown: Vec<String> = addrs.iter().map(ToString::to_string).collect();
        tracing::info!(iface = %name, port = v.port, "listening on {name} ({})", shown.join(", "));
        ifaces.push(io::Iface { name, addrs, sock });
    }
    let mut v6 = v6::server::setup(&v, &db)?;
    let ra = v6::ra::task::setup(&v)?;
    if ifaces.is_empty() {
        if v6.is_none() && ra.is_none() {
            anyhow::bail!("{}", nothing_to_serve(&cli.common.config, &v));
        }
        if !v.subnets.is_empty() {
            tracing::warn!(
                "DHCPv4 not served: no local interface holds an address in an IPv4 subnet (name them with [dhcp] interfaces = [..])"
            );
        }
        tracing::info!("serving IPv6 only (DHCPv6 and router advertisements)");
    }
    let (admin_tx, admin_rx) = tokio::sync::mpsc::channel(16);
    let admin6 = v6.as_ref().map(v6::server::Setup6::admin);
    let control = serve_control(
        &cli,
        &v,
        &db,
        admin_tx,
        admin6.clone(),
        started.shutdown.clone(),
    );
    let stats = std::sync::Arc::new(metrics::Stats::default());
    let stats6 = stats.v6.clone();
    if let Some(addr) = v.metrics {
        let registry = std::sync::Arc::new(stats.registry());
        let table = runtime::daemon::load_or_exit(&cli.common.config);
        let page = page::start(
            page::PageSource {
                view: started.reload.view.clone(),
                stats: stats.clone(),
                db: db.clone(),
                url: v.lease_db_url.clone(),
                addrs: runtime::page::daemon_addrs(&table),
                admin6,
            },
            started.shutdown.clone(),
        );
        let admin = page::admin(started.reload.view.clone(), control);
        runtime::metrics::serve_with_admin(
            addr,
            registry,
            Some(page),
            Some(admin),
            started.shutdown.clone(),
        )
        .await
        .with_context(|| format!("cannot serve metrics on {addr}"))?;
    }
    let setup = server::Setup {
        ifaces,
        store,
        spool,
        port: v.port,
        stats,
        admin: Some(admin_rx),
    };
    let dns_tx = match &v.ddns {
        Some(c) => {
            let up = ddns::Updater::new(c).map_err(|e| anyhow::anyhow!("dynamic DNS: {e}"))?;
            let (tx, rx) = tokio::sync::mpsc::channel(4096);
            // DHCPv6 names: their own queue and the table of what was published.
            let pub6 = match v6.as_mut() {
                Some(s) => {
                    let path = db.with_file_name("ddns6.redb");
                    let names = ddns::v6::Names6::open(&path)
                        .with_context(|| format!("cannot open {}", path.display()))?;
                    let (tx6, rx) = tokio::sync::mpsc::channel(4096);
                    s.ddns = Some(tx6);
                    Some(ddns::v6::Publisher { rx, names })
                }
                None => None,
            };
            tokio::spawn(ddns::run(up, rx, pub6, started.shutdown.clone()));
            Some(tx)
        }
        None => None,
    };
    let (view, stop) = (started.reload.view.clone(), started.shutdown.clone());
    let ra = ra.map(|s| tokio::spawn(v6::ra::task::serve(s, view.clone(), stop.clone())));
    let v6 = v6.map(|s| tokio::spawn(v6::server::serve(s, view, stop, stats6)));
    notify::ready();
    tracing::info!("dhcpd ready");
    server::serve(
        setup,
        started.reload.view.clone(),
        started.shutdown.clone(),
        dns_tx,
    )
    .await?;
    if let Some(t) = v6 {
        t.await??;
    }
    if let Some(t) = ra {
        t.await?;
    }
    tracing::info!("dhcpd stopped");
    Ok(())
}

/// Why dhcpd refuses to start: no local interface serves any subnet of the host file `path`,
/// IPv4 or IPv6, and no router advertisements are due; says how to fix it.
fn nothing_to_serve(path: &std::path::Path, v: &DhcpView) -> String {
    format!(
        "nothing to serve: {} has {} IPv4 and {} IPv6 subnet(s), and no local interface holds an address in any of them; give the interface an address in a subnet, or name it with `interface` on the subnet (or [dhcp] interfaces = [..] for IPv4)",
        path.display(),
        v.subnets.len(),
        v.subnets6.len(),
    )
}

/// `dhcpd leases`: the table (or JSON) of leases in the database at `path`, or in the shared
/// database at `url` when one is configured, then the DHCPv6 bindings `v6` (a second table when
/// there are any; more rows of the JSON array).
pub fn list_leases(
    path: &std::path::Path,
    url: Option<&str>,
    json: bool,
    all: bool,
    v6: &[v6::admin::Row6],
) -> anyhow::Result<String> {
    let leases: Vec<Lease> = leases::load(path, url)?
        .into_iter()
        .filter(|l| all || leases::is_current(l))
        .collect();
    if json {
        let mut rows: Vec<serde_json::Value> = leases
            .iter()
            .map(|l| {
                serde_json::json!({
                    "ip": l.ip,
                    "mac": l.mac_string(),
                    "client_id": lease::hex_colon(&l.client),
                    "hostname": l.hostname,
                    "starts": l.starts,
                    "expires": if l.expires == NEVER { None } else { Some(l.expires) },
                    "state": l.state.as_str(),
                })
            })
            .collect();
        rows.extend(v6::listing::json(v6));
        return Ok(serde_json::to_string_pretty(&rows)? + "\n");
    }
    let mut s = format!(
        "{:<16} {:<18} {:<24} {:<21} {}\n",
        "ADDRESS", "MAC", "HOSTNAME", "EXPIRES", "STATE"
    );
    for l in &leases {
        let _ = writeln!(
            s,
            "{:<16} {:<18} {:<24} {:<21} {}",
            l.ip.to_string(),
            l.mac_string(),
            l.hostname.as_deref().unwrap_or("-"),
            leases::show_time(l.expires),
            l.state.as_str()
        );
    }
    if !v6.is_empty() {
        s.push('\n');
        s.push_str(&v6::listing::text(v6));
    }
    Ok(s)
}
