//! dnsd: authoritative and forwarding DNS over the shared host table.

use std::fmt::Write as _;
use std::sync::Arc;

use shared::daemon::{CommonArgs, notify};
use shared::{DnsView, HostTable};

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

/// Runs the server until SIGTERM/SIGINT.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let started = shared::daemon::start(&cli.common, "dnsd", view, summary);
    let mut rx = started.reload.view.clone();
    notify::ready();
    tracing::info!("dnsd ready");
    loop {
        tokio::select! {
            _ = started.shutdown.cancelled() => break,
            r = rx.changed() => {
                if r.is_err() { break; }
                let v: Arc<DnsView> = rx.borrow_and_update().clone();
                for line in summary(&v).lines() { tracing::info!("{line}"); }
            }
        }
    }
    tracing::info!("dnsd stopped");
    Ok(())
}
