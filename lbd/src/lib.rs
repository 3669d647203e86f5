//! lbd: virtual IP, health checks, balancing and VRRP over the shared host table.

use std::fmt::Write as _;
use std::sync::Arc;

use shared::daemon::{CommonArgs, notify};
use shared::{HostTable, LbView};

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
}

/// This daemon's view of the host table.
pub fn view(t: &HostTable) -> LbView {
    t.lb_view()
}

/// A short human summary of the view (for `--check` and the start-up log).
pub fn summary(v: &LbView) -> String {
    let mut s = String::new();
    for svc in &v.services {
        let b: Vec<String> = svc
            .backends
            .iter()
            .map(|b| format!("{}={} w{}", b.name, b.addr, b.weight))
            .collect();
        let _ = writeln!(
            s,
            "service {} {:?} {}:{} {:?} {:?} -> {}",
            svc.name,
            svc.protocol,
            svc.vip,
            svc.port,
            svc.scheduler,
            svc.dataplane,
            b.join(", ")
        );
    }
    match &v.vrrp {
        Some(r) => {
            let _ = writeln!(
                s,
                "vrrp vrid {} priority {} interval {}ms",
                r.vrid,
                r.priority,
                r.interval.as_millis()
            );
        }
        None => s.push_str("vrrp off (this node always holds the VIPs)\n"),
    }
    s
}

/// Runs the balancer until SIGTERM/SIGINT.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let started = shared::daemon::start(&cli.common, "lbd", view, summary);
    let mut rx = started.reload.view.clone();
    notify::ready();
    tracing::info!("lbd ready");
    loop {
        tokio::select! {
            _ = started.shutdown.cancelled() => break,
            r = rx.changed() => {
                if r.is_err() { break; }
                let v: Arc<LbView> = rx.borrow_and_update().clone();
                for line in summary(&v).lines() { tracing::info!("{line}"); }
            }
        }
    }
    tracing::info!("lbd stopped");
    Ok(())
}
