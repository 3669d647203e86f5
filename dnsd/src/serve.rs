//! The serving loop: UDP worker threads and TCP accept tasks on the bound sockets, reloads on
//! a new view, SIGHUP or a changed zone file, and an orderly stop when `shutdown` is cancelled.
//! The daemon's `run` builds a [`Setup`] from the command line; tests build one themselves.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::rr::Name;
use hostfile::DnsView;
use runtime::daemon::notify;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::sockets::Bound;
use crate::state::Shared;

/// What [`serve`] runs on: the state and the sockets, bound while privileged.
#[derive(Debug)]
pub struct Setup {
    /// The compiled first view.
    pub state: Arc<Shared>,
    /// The listen addresses' sockets ([`crate::sockets::bind`]).
    pub sockets: Vec<Bound>,
    /// Zones whose serial moved at start: their secondaries get NOTIFY once serving.
    pub changed: Vec<Name>,
}

/// Why serving could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A socket, thread or signal handler could not be set up.
    #[error("cannot start serving: {0}")]
    Io(#[from] std::io::Error),
}

/// The zone files `v` reads (watched for changes).
pub fn zone_paths(v: &DnsView) -> Vec<PathBuf> {
    v.zone_files.iter().map(|z| z.path.clone()).collect()
}

/// Serves until `shutdown` is cancelled (or `views` closes, which cancels `shutdown`),
/// reloading on each new view; returns once the workers have stopped.
pub async fn serve(
    setup: Setup,
    mut views: watch::Receiver<Arc<DnsView>>,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    let Setup {
        state,
        sockets,
        changed,
    } = setup;
    let stop = shutdown.clone();
    let mut tasks = tokio::task::JoinSet::new();
    let mut threads = Vec::new();
    let rt = tokio::runtime::Handle::current();
    for (udp, t) in sockets {
        tracing::info!(
            "listening for UDP on {} ({} sockets)",
            udp[0].local_addr()?,
            udp.len()
        );
        tracing::info!("listening for TCP on {}", t.local_addr()?);
        for u in udp {
            let (sh, rt, st) = (state.clone(), rt.clone(), stop.clone());
            let u = Arc::new(u);
            threads.push(
                std::thread::Builder::new()
                    .name("dnsd-udp".into())
                    .spawn(move || crate::udp::worker(sh, u, rt, st))?,
            );
        }
        tasks.spawn(crate::tcp::serve_tcp(state.clone(), t, stop.clone()));
    }
    for z in state.policy.load().catalog.zones.iter() {
        tracing::info!(zone = %z.origin, serial = z.serial(), records = z.nodes.values().map(Vec::len).sum::<usize>(), "zone loaded");
    }
    state.notify_all(&changed);
    // SIGHUP and a change of a zone file re-read the zone files (the host table may be
    // unchanged, so runtime::reload publishes nothing).
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let (ztx, mut zrx) = tokio::sync::mpsc::channel::<()>(1);
    let first = state.view.load_full();
    let mut zwatch = crate::watch::ZoneFileWatcher::new(zone_paths(&first), ztx.clone());
    notify::ready();
    tracing::info!("dnsd ready");
    let mut status = tokio::time::interval(Duration::from_secs(60));
    status.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = status.tick() => {
                let line = state.stats.line();
                notify::status(&line);
                tracing::info!("{line}");
            }
            _ = hup.recv() => {
                let v = state.view.load_full();
                state.reload(v).await;
            }
            Some(()) = zrx.recv() => {
                tracing::info!("a zone file changed");
                let v = state.view.load_full();
                state.reload(v).await;
            }
            r = views.changed() => {
                if r.is_err() { break; }
                // runtime::reload already sent RELOADING=1 / READY=1 for this trigger.
                let v: Arc<DnsView> = views.borrow_and_update().clone();
                if zwatch.files() != zone_paths(&v).as_slice() {
                    zwatch = crate::watch::ZoneFileWatcher::new(zone_paths(&v), ztx.clone());
                }
                state.reload(v).await;
            }
        }
    }
    notify::stopping();
    stop.cancel();
    let drain = async { while tasks.join_next().await.is_some() {} };
    let _ = tokio::time::timeout(Duration::from_secs(5), drain).await;
    for t in threads {
        let _ = tokio::task::spawn_blocking(move || t.join()).await;
    }
    tracing::info!("{}", state.stats.line());
    tracing::info!("dnsd stopped");
    Ok(())
}
