//! dhcpd: DHCPv4 server over the shared host table.

use std::fmt::Write as _;
use std::sync::Arc;

use shared::daemon::{CommonArgs, notify};
use shared::{DhcpView, HostTable};

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
}

/// This daemon's view of the host table.
pub fn view(t: &HostTable) -> DhcpView {
    t.dhcp_view()
}

/// A short human summary of the view (for `--check` and the start-up log).
pub fn summary(v: &DhcpView) -> String {
    let mut s = String::new();
    let addrs = shared::netif::local_ipv4().unwrap_or_default();
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
            .or_else(|| shared::netif::find_in(&addrs, sn.network).map(|a| a.name.clone()))
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
    let _ = writeln!(
        s,
        "{} reservation(s); lease database {}",
        v.reservations.len(),
        v.lease_db.display()
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

/// Runs the server until SIGTERM/SIGINT.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let started = shared::daemon::start(&cli.common, "dhcpd", view, summary);
    let mut rx = started.reload.view.clone();
    notify::ready();
    tracing::info!("dhcpd ready");
    loop {
        tokio::select! {
            _ = started.shutdown.cancelled() => break,
            r = rx.changed() => {
                if r.is_err() { break; }
                let v: Arc<DhcpView> = rx.borrow_and_update().clone();
                for line in summary(&v).lines() { tracing::info!("{line}"); }
            }
        }
    }
    tracing::info!("dhcpd stopped");
    Ok(())
}
