//! lbd: virtual IP, health checks, balancing and VRRP over the shared host table.
//!
//! The daemon loop ([`daemon::serve`]) gathers three inputs (the view from the host file, backend
//! health, the VRRP role), computes the desired state purely ([`desired::desired`]) and hands it
//! to the [`apply::Applier`], which reconciles the kernel (VIPs, one nftables table) and the
//! proxy listeners with it.

use hostfile::{HostTable, LbView};
use runtime::daemon::CommonArgs;

pub mod announce;
pub mod apply;
pub mod conntrack;
pub mod daemon;
pub mod desired;
pub mod drain;
pub mod float;
pub mod health;
pub mod metrics;
pub mod nft;
pub mod page;
pub mod proxy;
pub mod sched;
pub mod status;
pub mod vip;
pub mod vip6;
pub mod vrrp;

pub use daemon::{Setup, serve};

/// Command line.
#[derive(Debug, clap::Parser)]
#[command(
    name = "lbd",
    version,
    about = "Load balancer for the services described by the host file"
)]
pub struct Cli {
    /// Flags shared by the three daemons.
    #[command(flatten)]
    pub common: CommonArgs,
    /// `--user`: whom to become when started as root.
    #[command(flatten)]
    pub user: runtime::daemon::UserArg,
    /// What to do (default: run the daemon).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Show the running daemon's services, backends and VRRP state (like `ipvsadm -Ln`).
    Status {
        /// Print the JSON document instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Drain a backend at run time: no new connections go to it, established ones finish
    /// (weight 0 in effect, like `weight = 0` in the host file); kept across reloads and
    /// restarts until `lbd undrain`. BACKEND is a host name (in every service carrying it) or
    /// SERVICE/BACKEND.
    Drain {
        /// `web1`, or `www/web1` for one service.
        backend: String,
    },
    /// Undo `lbd drain` (give the same name or SERVICE/BACKEND).
    Undrain {
        /// As given to `lbd drain`.
        backend: String,
    },
    /// Turn keepalived.conf (and dhcpd.conf, zone files) into a host file.
    Import(import::command::ImportArgs),
}

/// Started as root by hand: hands the runtime and state folders to `--user` and becomes it,
/// keeping only the capabilities lbd uses (they are per thread, so this runs before the tokio
/// runtime exists; the ambient set passes them on to the `nft` lbd runs).
pub fn drop_privileges(cli: &Cli) -> Result<runtime::privdrop::Dropped, runtime::privdrop::Error> {
    use runtime::privdrop::Capability::{NetAdmin, NetBindService, NetRaw};
    let table = runtime::daemon::load_or_exit(&cli.common.config);
    let control = cli.common.runtime_path(&table.lb_view().control_socket);
    let mut folders: Vec<std::path::PathBuf> = Vec::new();
    folders.extend(
        control
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .map(|d| d.to_owned()),
    );
    // The folders systemd or the command line name are handed over when they exist.
    let given = [&cli.common.state_dir, &cli.common.runtime_dir];
    folders.extend(given.into_iter().flatten().filter(|d| d.is_dir()).cloned());
    runtime::privdrop::become_user(
        &cli.user,
        &folders,
        &[],
        &[NetAdmin, NetRaw, NetBindService],
    )
}

/// `lbd status`: asks the running daemon over its control socket; returns the exit code.
pub fn status_command(cli: &Cli, json: bool) -> i32 {
    let table = runtime::daemon::load_or_exit(&cli.common.config);
    let path = cli.common.runtime_path(&table.lb_view().control_socket);
    match runtime::control::request(&path, "status") {
        Ok(doc) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
            } else {
                print!("{}", status::render_text(&doc));
            }
            0
        }
        Err(e) => {
            eprintln!("lbd status: {e}");
            69
        }
    }
}

/// `lbd drain` / `lbd undrain` (`command`): asks the running daemon; returns the exit code.
pub fn drain_command(cli: &Cli, command: &str, backend: &str) -> i32 {
    let table = runtime::daemon::load_or_exit(&cli.common.config);
    let path = cli.common.runtime_path(&table.lb_view().control_socket);
    if backend.split_whitespace().count() != 1 {
        eprintln!("lbd {command}: give one backend name or SERVICE/BACKEND");
        return 64;
    }
    match runtime::control::request(&path, &format!("{command} {backend}")) {
        Ok(doc) => match doc.get("error") {
            Some(e) => {
                eprintln!("lbd {command}: {}", e.as_str().unwrap_or_default());
                1
            }
            None => {
                println!("{}", doc["text"].as_str().unwrap_or_default());
                0
            }
        },
        Err(e) => {
            eprintln!("lbd {command}: {e}");
            69
        }
    }
}

/// This daemon's view of the host table.
pub fn view(t: &HostTable) -> LbView {
    t.lb_view()
}

/// A short human summary of the view (for `--check` and the start-up log).
pub fn summary(v: &LbView) -> String {
    daemon::summary(v)
}

/// Runs the balancer until SIGTERM/SIGINT: [`serve`] with the host file's view, reloaded on
/// change or SIGHUP.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let started = runtime::daemon::start(&cli.common, "lbd", view, summary);
    let control = cli
        .common
        .runtime_path(&started.reload.view.borrow().control_socket);
    let setup = Setup {
        config: cli.common.config.clone(),
        control: Some(control),
        drained: Some(cli.common.state_path(std::path::Path::new(drain::FILE))),
    };
    serve(started.reload.view.clone(), started.shutdown.clone(), setup).await
}
