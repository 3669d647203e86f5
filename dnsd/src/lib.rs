//! dnsd: authoritative and forwarding DNS over the shared host table.
//!
//! hickory-proto parses and encodes; the protocol decisions are pure functions in
//! [`handler`], [`answer`], [`update`] and [`rrl`] over a [`policy`] that [`compile`] builds;
//! [`state`] is what every task shares; [`udp`], [`tcp`], [`transfer`], [`commit`],
//! [`recursion`] and [`notify`] are the IO around the decisions; [`serve()`] runs them.

pub mod admission;
pub mod answer;
pub mod clock;
pub mod collector;
pub mod commit;
pub mod compile;
pub mod fast;
pub mod forward;
pub mod handler;
pub mod journal;
pub mod links;
pub mod message;
pub mod metrics;
pub mod notify;
pub mod page;
pub mod peers;
pub mod policy;
pub mod recursion;
pub mod rrl;
pub mod serve;
pub mod sockets;
pub mod state;
pub mod stats;
pub mod status;
pub mod steering;
pub mod store;
pub mod tcp;
pub mod transfer;
pub mod tsig;
pub mod udp;
pub mod update;
pub mod watch;
pub mod zone;
pub mod zonefile;

pub use serve::{Setup, serve};

use std::fmt::Write as _;
use std::sync::Arc;

use hostfile::{DnsView, HostTable};
use runtime::daemon::CommonArgs;

/// Command line.
#[derive(Debug, clap::Parser)]
#[command(
    name = "dnsd",
    version,
    about = "Authoritative and forwarding DNS for the LAN described by the host file"
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
    /// Turn BIND zone files (and dhcpd.conf, keepalived.conf) into a host file.
    Import(import::command::ImportArgs),
    /// Show the running daemon's zones, serials, recent updates, cache and counters (asks it
    /// over the control socket).
    Status {
        /// Print the JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// This daemon's view of the host table.
pub fn view(t: &HostTable) -> DnsView {
    t.dns_view()
}

/// A short human summary of the view (for `--check` and the start-up log).
pub fn summary(v: &DnsView) -> String {
    let mut s = String::new();
    for z in &v.zones {
        let _ = writeln!(
            s,
            "zone {}: {} records, NS {}",
            z.origin,
            z.records.len() + 1,
            z.soa.mname
        );
    }
    let listen: Vec<String> = v.listen.iter().map(|a| a.to_string()).collect();
    let _ = writeln!(s, "listen {}", listen.join(" "));
    if v.upstream.is_empty() {
        s.push_str("forwarding off\n");
    } else {
        let up: Vec<String> = v.upstream.iter().map(|a| a.to_string()).collect();
        let allow: Vec<String> = v.allow_recursion.iter().map(|a| a.to_string()).collect();
        let _ = writeln!(s, "forwarding to {} for {}", up.join(" "), allow.join(" "));
    }
    let keys: Vec<&str> = v.update_keys.iter().map(|k| k.name.as_str()).collect();
    let _ = writeln!(
        s,
        "dynamic updates: {}",
        if keys.is_empty() {
            "off".to_owned()
        } else {
            format!("keys {}", keys.join(" "))
        }
    );
    s
}

/// Extra checks `--check` runs beyond the host table: zone files readable, parseable and in
/// agreement with the host table.
pub fn check_zones(v: &DnsView) -> Result<(), zone::ZoneError> {
    zonefile::merged_sources(v).map(|_| ())
}

/// Runs the server until SIGTERM/SIGINT: the privileged set-up from the command line (store,
/// sockets, metrics, control socket, privilege drop), then [`serve()`].
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let started = runtime::daemon::start(&cli.common, "dnsd", view, summary);
    let mut rx = started.reload.view.clone();
    let first: Arc<DnsView> = rx.borrow_and_update().clone();
    let store_path = cli.common.state_path(&first.store);
    let store = store::Store::open(&store_path)?;
    tracing::info!(store = %store_path.display(), "store open");
    let (state, changed) = state::Shared::new(first.clone(), store)?;
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let sockets = sockets::bind(&first.listen, workers)?;
    let stop = started.shutdown.clone();
    if let Some(addr) = first.metrics {
        let mut reg = runtime::metrics::Registry::default();
        state.stats.register(&mut reg);
        reg.register_collector(Box::new(collector::Collector(state.clone())));
        let page = page::start(state.clone(), &cli.common.config, stop.clone());
        runtime::metrics::serve_with_page(addr, Arc::new(reg), Some(page), stop.clone()).await?;
    }
    let control = cli.common.runtime_path(&first.control_socket);
    let st = state.clone();
    let handler: runtime::control::Handler = Arc::new(move |args| match args[0] {
        "status" => status::document(&st),
        other => serde_json::json!({"error": format!("unknown command `{other}`; try status")}),
    });
    if let Err(e) = runtime::control::serve(&control, handler, stop.clone()) {
        tracing::warn!(socket = %control.display(), error = %e, "control socket not available; `dnsd status` will not work");
    }
    // Everything privileged is done: sockets bound, store open. Files the user must write
    // later are handed over first.
    let mut owned = vec![store_path.clone(), control.clone()];
    owned.extend(cli.common.state_dir.iter().cloned());
    owned.extend(cli.common.runtime_dir.iter().cloned());
    runtime::privdrop::hand_over(&cli.user, &owned);
    let dropped = runtime::privdrop::drop_privileges(&cli.user, &[])?;
    if let runtime::privdrop::Dropped::Dropped { user, .. } = &dropped {
        let mut read = vec![cli.common.config.clone()];
        read.extend(serve::zone_paths(&first));
        for p in read {
            if nix::unistd::access(&p, nix::unistd::AccessFlags::R_OK).is_err() {
                tracing::warn!(file = %p.display(), user = %user, "not readable by {user}: reloads will fail until it is (chgrp {user} and chmod g+r, or run under systemd)");
            }
        }
    }
    let setup = Setup {
        state,
        sockets,
        changed,
    };
    serve(setup, rx, stop).await?;
    Ok(())
}
