//! The daemon loop: gathers three inputs (the view from the host file, backend health, the VRRP
//! role), computes the desired state purely ([`desired::desired`]) and hands it to the
//! [`apply::Applier`], which reconciles the kernel (VIPs, one nftables table) and the proxy
//! listeners with it. [`serve`] runs it from a view channel and a shutdown token, so a test can
//! drive the daemon without a command line.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hostfile::LbView;
use runtime::daemon::notify;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::desired::{self, Desired, Role};
use crate::health::{self, Trackers, health_map};
use crate::{announce, apply, conntrack, drain, float, metrics, status};

/// What [`serve`] needs besides the view: where its files are.
#[derive(Debug, Clone, Default)]
pub struct Setup {
    /// The host file, named in errors.
    pub config: PathBuf,
    /// The control socket (`lbd status`); `None`: no control socket.
    pub control: Option<PathBuf>,
    /// Where the backends drained by `lbd drain` are kept ([`drain::FILE`] in the state
    /// folder); `None`: not kept across a restart.
    pub drained: Option<PathBuf>,
}

/// What the control socket answers from.
#[derive(Debug, Clone)]
struct Snapshot {
    view: Arc<LbView>,
    trackers: Trackers,
    current: Desired,
    role: Role,
    held: Vec<std::net::IpAddr>,
    instances: InstancesRx,
}

pub use crate::status::summary;

/// Keys of every checked backend in `view`.
fn checked_keys(view: &LbView) -> Vec<(String, SocketAddr)> {
    view.services
        .iter()
        .filter(|s| !matches!(s.check.kind, hostfile::CheckKind::None))
        .flat_map(|s| s.backends.iter().map(|b| (s.name.clone(), b.addr)))
        .collect()
}

/// Longest check timeout of `view` (bounds the wait for the first round).
fn longest_timeout(view: &LbView) -> Duration {
    view.services
        .iter()
        .map(|s| s.check.timeout)
        .max()
        .unwrap_or(Duration::ZERO)
}

/// The VIPs held now, IPv4 then IPv6 (for `lbd status`).
fn held_all(applier: &apply::Applier) -> Vec<std::net::IpAddr> {
    let v4 = applier.held.keys().map(|a| std::net::IpAddr::V4(*a));
    v4.chain(applier.held6.keys().map(|a| std::net::IpAddr::V6(*a)))
        .collect()
}

/// Runs the balancer until `shutdown`; `rx` carries the view and its reloads. Everything lbd
/// placed (VIPs, its nftables table, proxy listeners) is removed before it returns.
pub async fn serve(
    mut rx: watch::Receiver<Arc<LbView>>,
    shutdown: CancellationToken,
    setup: Setup,
) -> anyhow::Result<()> {
    let mut view: Arc<LbView> = rx.borrow_and_update().clone();

    let mut applier = apply::Applier::new();
    if let Err(e) = applier.preflight(&view) {
        anyhow::bail!(
            "cannot carry the services in {}: {e}",
            setup.config.display()
        );
    }

    let metrics = metrics::Metrics::default();
    applier.proxies.counters = metrics.active.proxy.clone();
    applier.proxies.metrics = metrics.proxy.clone();
    metrics.set_carried(&view);
    let mut state_logs: StateLogs = BTreeMap::new();
    let state_lines = runtime::ratelimit::LogLimiter::new(STATE_LOG_WINDOW, 4 * STATE_LOG_BURST);
    let page_status = crate::page::StatusCell::default();
    let (drain_ctl, mut drains_rx, drain_applied) = drain::Control::start(setup.drained.clone());
    let admin_key = crate::page::admin_key(rx.clone());
    if let Some(addr) = view.metrics
        && let Err(e) = crate::page::serve(
            addr,
            metrics.registry(),
            metrics.recent.clone(),
            &setup.config,
            page_status.clone(),
            admin_key,
            shutdown.clone(),
        )
        .await
    {
        anyhow::bail!("metrics on {addr}: {e}: fix `metrics` in [lb]");
    }

    // Health checks.
    let (check_tx, mut check_rx) = mpsc::channel::<health::CheckResult>(1024);
    let mut checkers_stop = CancellationToken::new();
    health::spawn_checkers(&view, check_tx.clone(), checkers_stop.clone());
    let mut trackers: Trackers = BTreeMap::new();

    // The VRRP role (always master without VRRP).
    let mut vrrp_stop = CancellationToken::new();
    let (mut vrrp_task, mut role_rx, instances) = start_vrrp(&view, &vrrp_stop, &metrics)?;
    let mut role = *role_rx.borrow_and_update();

    // First round of checks, so the first apply already leaves dead backends out.
    let first_deadline =
        tokio::time::Instant::now() + longest_timeout(&view) + Duration::from_millis(500);
    let want = checked_keys(&view);
    while want
        .iter()
        .any(|k| trackers.get(k).is_none_or(|t| t.up.is_none()))
    {
        tokio::select! {
            _ = tokio::time::sleep_until(first_deadline) => break,
            _ = shutdown.cancelled() => break,
            Some(r) = check_rx.recv() => { record(&view, &mut trackers, r, &metrics, &mut state_logs); }
        }
    }

    let mut managed = desired::managed_vips(&view);
    applier.manage6(&view);
    let mut current: Desired = desired::desired(
        &drains_rx.borrow_and_update().apply(&view),
        &health_map(&trackers),
        role,
    );
    metrics.master.set(i64::from(role == Role::Master));
    match apply_counted(&mut applier, &metrics, &current, &managed) {
        Ok(taken) => {
            metrics.applies.inc();
            announce::taken(&applier, &taken);
        }
        Err(e) => {
            applier.clear(&managed);
            anyhow::bail!("cannot apply the initial state (everything rolled back): {e}");
        }
    }
    let snapshot = Arc::new(std::sync::Mutex::new(Snapshot {
        view: view.clone(),
        trackers: trackers.clone(),
        current: current.clone(),
        role,
        held: held_all(&applier),
        instances,
    }));
    {
        let snap = snapshot.clone();
        let counters = applier.proxies.counters.clone();
        let m = metrics.clone();
        let drain_ctl = drain_ctl.clone();
        let handler: runtime::control::Handler = Arc::new(move |args: &[&str]| match args[0] {
            "drain" | "undrain" => {
                let view = snap.lock().unwrap_or_else(|e| e.into_inner()).view.clone();
                let answer = drain_ctl.command(&view, args);
                tracing::info!(command = %args.join(" "), answer = %answer, "control");
                answer
            }
            "status" => {
                let s = snap.lock().unwrap_or_else(|e| e.into_inner()).clone();
                // Kernel services: count conntrack entries (read once per request, bounded).
                let kernel = s
                    .view
                    .services
                    .iter()
                    .any(|v| v.dataplane == hostfile::Dataplane::Kernel);
                let ct = if kernel { conntrack::active() } else { None };
                let active = |svc: &hostfile::VirtualService, a: SocketAddr| match svc.dataplane {
                    hostfile::Dataplane::Proxy => {
                        let m = counters.lock().unwrap_or_else(|e| e.into_inner());
                        Some(
                            m.get(&(svc.name.clone(), a))
                                .map_or(0, |c| c.load(std::sync::atomic::Ordering::Relaxed)),
                        )
                    }
                    hostfile::Dataplane::Kernel => ct.as_ref().map(|m| {
                        m.get(&(conntrack::proto_num(svc.protocol), svc.vip, svc.port, a))
                            .copied()
                            .unwrap_or(0)
                    }),
                };
                let traffic = m.traffic(&s.view);
                let mut doc = status::document(
                    &s.view,
                    &drain_ctl.current(),
                    &s.trackers,
                    &s.current,
                    s.role,
                    &s.held,
                    &active,
                    &traffic,
                );
                let instances = s.instances.borrow().clone();
                if !instances.is_empty() {
                    doc["vrrp_instances"] = serde_json::to_value(instances).unwrap_or_default();
                }
                doc
            }
            other => {
                serde_json::json!({"error": format!("unknown command `{other}`; try status, drain or undrain")})
            }
        });
        let _ = page_status.set(handler.clone());
        if let Some(path) = &setup.control
            && let Err(e) = runtime::control::serve(path, handler, shutdown.clone())
        {
            tracing::warn!(socket = %path.display(), error = %e, "control socket not available; `lbd status` will not work");
        }
    }
    notify::ready();
    log_state(&current, role);
    tracing::info!("lbd ready");

    let mut garp = view.garp_refresh.map(tokio::time::interval);
    let mut dirty = false;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            r = rx.changed() => {
                if r.is_err() { break; }
                let next: Arc<LbView> = rx.borrow_and_update().clone();
                if let Err(e) = applier.preflight(&next) {
                    tracing::error!("new host file not applied, the previous one stays in force: {e}");
                    continue;
                }
                let vrrp_changed = float::changed(&next, &view);
                if vrrp_changed {
                    if let Err(e) = float::preflight(&next) {
                        tracing::error!("new host file not applied, the previous one stays in force: {e}");
                        continue;
                    }
                    // Restart VRRP with the new settings: the old instance leaves cleanly
                    // (priority 0 when master), the new one starts as backup.
                    vrrp_stop.cancel();
                    if let Some(t) = vrrp_task.take() {
                        let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
                    }
                    vrrp_stop = CancellationToken::new();
                    match start_vrrp(&next, &vrrp_stop, &metrics) {
                        Ok((t, r, i)) => {
                            vrrp_task = t;
                            role_rx = r;
                            snapshot.lock().unwrap_or_else(|e| e.into_inner()).instances = i;
                            role = *role_rx.borrow_and_update();
                            tracing::info!(role = ?role, "VRRP restarted for the new host file");
                        }
                        Err(e) => {
                            tracing::error!("VRRP could not restart ({e}); holding nothing");
                            vrrp_task = None;
                            role = Role::Backup;
                            snapshot.lock().unwrap_or_else(|e| e.into_inner()).instances =
                                watch::channel(Vec::new()).1;
                        }
                    }
                }
                checkers_stop.cancel();
                checkers_stop = CancellationToken::new();
                let keys = checked_keys(&next);
                trackers.retain(|k, _| keys.contains(k));
                metrics.recent.retain(&next);
                health::spawn_checkers(&next, check_tx.clone(), checkers_stop.clone());
                let mut all = managed.clone();
                all.extend(desired::managed_vips(&next));
                applier.manage6(&next);
                managed = all;
                garp = next.garp_refresh.map(tokio::time::interval);
                state_logs.retain(|k, _| keys.contains(k));
                metrics.set_carried(&next);
                view = next;
                for line in summary(&view).lines() { tracing::info!("{line}"); }
                dirty = true;
            }
            Some(r) = check_rx.recv() => {
                if record(&view, &mut trackers, r, &metrics, &mut state_logs) { dirty = true; }
            }
            r = drains_rx.changed() => {
                if r.is_err() { break; }
                dirty = true;
            }
            r = role_rx.changed(), if vrrp_task.is_some() => {
                if r.is_err() { break; }
                let was = role;
                role = *role_rx.borrow_and_update();
                if role != was {
                    let to = if role == Role::Master { "master" } else { "backup" };
                    metrics.vrrp_transitions.get_or_create(&vec![("to".to_owned(), to.to_owned())]).inc();
                }
                tracing::info!(role = ?role, "VRRP role changed");
                dirty = true;
            }
            _ = async { garp.as_mut().expect("guarded").tick().await }, if garp.is_some() && role == Role::Master => {
                announce::refresh(&applier);
            }
        }
        if dirty {
            let drains = drains_rx.borrow_and_update().clone();
            let next = desired::desired(&drains.apply(&view), &health_map(&trackers), role);
            metrics.master.set(i64::from(role == Role::Master));
            match apply_counted(&mut applier, &metrics, &next, &managed) {
                Ok(taken) => {
                    metrics.applies.inc();
                    announce::taken(&applier, &taken);
                    if next != current
                        && let Some(suppressed) =
                            state_lines.allow("service-state", std::time::Instant::now())
                    {
                        if suppressed > 0 {
                            tracing::info!(
                                suppressed,
                                "service state changes not logged (rate limit); `lbd status` shows the current state"
                            );
                        }
                        log_state(&next, role);
                    }
                    current = next;
                    managed = desired::managed_vips(&view);
                    applier.managed6_now(&view);
                    dirty = false;
                }
                Err(e) => {
                    metrics.apply_failures.inc();
                    tracing::error!("apply failed, the previous state stays in force: {e}");
                    dirty = false;
                }
            }
            drain_applied.send_replace(drains.generation);
        }
        {
            let mut s = snapshot.lock().unwrap_or_else(|e| e.into_inner());
            s.view = view.clone();
            s.trackers.clone_from(&trackers);
            s.current = current.clone();
            s.role = role;
            s.held = held_all(&applier);
        }
    }
    checkers_stop.cancel();
    applier.clear(&managed);
    vrrp_stop.cancel();
    if let Some(t) = vrrp_task {
        let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
    }
    tracing::info!("lbd stopped");
    Ok(())
}

/// Applies `d`, folding what the replacement of the nftables table did to its counters into
/// the kernel totals. The totals stay locked from the reading taken before the replacement to
/// the fold, so no scrape reads the new table in between. Returns the VIPs newly taken (IPv4,
/// IPv6).
fn apply_counted(
    applier: &mut apply::Applier,
    metrics: &metrics::Metrics,
    d: &Desired,
    managed: &[desired::VipPlan],
) -> Result<(Vec<Ipv4Addr>, Vec<Ipv6Addr>), apply::ApplyError> {
    let mut k = metrics.kernel.lock().unwrap_or_else(|e| e.into_inner());
    let applied = applier.apply(d, managed)?;
    metrics.recent.applied(d);
    if let Some(r) = &applied.replaced {
        k.replaced(r);
    }
    Ok((applied.taken, applied.taken6))
}

/// Starts VRRP for `view` (if configured: `[lb.vrrp]` and the floating instances, with their
/// tracking): the manager task and the service VIPs' role channel (always master without
/// `[lb.vrrp]`).
#[allow(clippy::type_complexity)]
fn start_vrrp(
    view: &LbView,
    stop: &CancellationToken,
    metrics: &metrics::Metrics,
) -> Result<
    (
        Option<tokio::task::JoinHandle<()>>,
        watch::Receiver<Role>,
        InstancesRx,
    ),
    float::FloatError,
> {
    metrics.vrrp_state.clear();
    metrics.vrrp_priority.clear();
    match float::start(view, stop.clone(), metrics)? {
        Some(f) => {
            crate::page::follow_instances(
                f.status.clone(),
                |i: &float::InstanceStatus| (i.name.clone(), i.state),
                metrics.recent.clone(),
                stop.clone(),
            );
            Ok((Some(f.task), f.role, f.status))
        }
        None => {
            let (_tx, rx) = watch::channel(Role::Master);
            Ok((None, rx, watch::channel(Vec::new()).1))
        }
    }
}

/// Every VRRP instance's state, for `lbd status`.
type InstancesRx = watch::Receiver<Vec<float::InstanceStatus>>;

/// Per-backend limiters of "backend up/down" lines, and whether "flapping" was said in the
/// current window.
type StateLogs = BTreeMap<(String, SocketAddr), (runtime::ratelimit::LogLimiter, bool)>;

/// Health changes of one backend logged per window; beyond that a flapping backend gets one
/// "flapping" line per window and the next line logged carries the count left out.
const STATE_LOG_BURST: u32 = 6;
/// The window of [`STATE_LOG_BURST`].
const STATE_LOG_WINDOW: Duration = Duration::from_secs(10);

/// Feeds one check result into its tracker; true when the backend's state flipped.
fn record(
    view: &LbView,
    trackers: &mut Trackers,
    r: health::CheckResult,
    m: &metrics::Metrics,
    logs: &mut StateLogs,
) -> bool {
    let Some(svc) = view.services.iter().find(|s| s.name == r.service) else {
        return false;
    };
    let key = (r.service.clone(), r.backend);
    let t = trackers.entry(key.clone()).or_default();
    let ok = r.ok.is_ok();
    let mut labels = metrics::Metrics::labels(&r.service, r.backend);
    labels.push(("result".into(), if ok { "ok" } else { "fail" }.into()));
    m.checks.get_or_create(&labels).inc();
    m.recent.check(&r.service, r.backend, &r.ok);
    if let Err(e) = &r.ok {
        t.last_error = Some(e.to_string());
    }
    let changed = t.record(ok, svc.check.rise, svc.check.fall);
    if let Some(up) = t.up {
        m.backend_up
            .get_or_create(&metrics::Metrics::labels(&r.service, r.backend))
            .set(i64::from(up));
    }
    let Some(up) = changed else {
        return false;
    };
    let mut labels = metrics::Metrics::labels(&r.service, r.backend);
    labels.push(("to".into(), if up { "up" } else { "down" }.into()));
    m.backend_transitions.get_or_create(&labels).inc();
    let (limiter, told) = logs.entry(key).or_insert_with(|| {
        (
            runtime::ratelimit::LogLimiter::new(STATE_LOG_WINDOW, STATE_LOG_BURST),
            false,
        )
    });
    match limiter.allow("state", std::time::Instant::now()) {
        Some(suppressed) => {
            *told = false;
            if up {
                tracing::info!(service = %r.service, backend = %r.backend, suppressed, "backend up");
            } else {
                tracing::warn!(service = %r.service, backend = %r.backend, suppressed, reason = %r.ok.err().map(|e| e.to_string()).unwrap_or_default(), "backend down");
            }
        }
        None if !*told => {
            *told = true;
            tracing::warn!(
                service = %r.service,
                backend = %r.backend,
                "backend flapping: its up/down changes are logged at most {STATE_LOG_BURST} per {}s from now on (each still applied; counted in lbd_backend_transitions_total)",
                STATE_LOG_WINDOW.as_secs()
            );
        }
        None => {}
    }
    true
}

fn log_state(d: &Desired, role: Role) {
    for s in &d.services {
        let t: Vec<String> = s
            .targets
            .iter()
            .map(|t| format!("{}={}", t.name, t.addr))
            .collect();
        tracing::info!(role = ?role, service = %s.name, mode = ?s.mode, targets = %t.join(","), "service state");
    }
    if d.services.is_empty() {
        tracing::info!(role = ?role, "holding no VIP, carrying no service");
    }
}
