//! `[lb]`: the load balancer's settings and VRRP, with the services.

use std::time::Duration;

use crate::model::*;
use crate::wire;

use super::float;
use super::values::Validator;

impl Validator {
    /// The load balancer's view of `services`.
    pub(crate) fn lb(
        &mut self,
        lbw: Option<&wire::Lb>,
        services: Vec<VirtualService>,
        hosts: &[Host],
    ) -> LbView {
        let no_scripts = Default::default();
        let scripts = self.track_scripts(lbw.map_or(&no_scripts, |l| &l.vrrp_script));
        // The family of [lb.vrrp] comes from the addresses it holds, as keepalived's does.
        let v6 = service_vrrp_ipv6(&services);
        let vrrp = lbw.and_then(|l| l.vrrp.as_ref()).map(|v| VrrpConfig {
            vrid: self.int(&Some(v.vrid.clone()), 1, 1, 255, "vrid") as u8,
            priority: self.int(&v.priority, 100, 1, 255, "priority") as u8,
            preempt: v.preempt.unwrap_or(true),
            interval: {
                let d = self.duration(
                    &v.interval,
                    Duration::from_secs(1),
                    Duration::from_millis(10),
                    Duration::from_millis(40950),
                    "vrrp interval",
                );
                Duration::from_millis(d.as_millis().div_ceil(10) as u64 * 10)
            },
            interface: v.interface.as_ref().map(|i| i.get_ref().clone()),
            ipv6: v6,
            peers: Vec::new(),
            source: None,
            tracking: Tracking::default(),
            notify: Notify::default(),
        });
        let mut vrrp = vrrp;
        if let (Some(cfg), Some(v)) = (vrrp.as_mut(), lbw.and_then(|l| l.vrrp.as_ref())) {
            (cfg.peers, cfg.source) = self.float_peers(&v.peers, v.source.as_ref(), v6, true);
            (cfg.tracking, cfg.notify) = self.extras(
                &float::Extras {
                    track_script: &v.track_script,
                    track_interface: &v.track_interface,
                    notify_master: &v.notify_master,
                    notify_backup: &v.notify_backup,
                    notify_fault: &v.notify_fault,
                },
                &scripts,
            );
        }
        let no_instances = Default::default();
        let instances = self.float_instances(
            lbw.map_or(&no_instances, |l| &l.vrrp_instance),
            &scripts,
            vrrp.as_ref().map(|v| {
                (
                    v.vrid,
                    v.interface.clone().or_else(|| {
                        lbw.and_then(|l| l.interface.as_ref())
                            .map(|i| i.get_ref().clone())
                    }),
                    v.ipv6,
                )
            }),
            &services,
        );
        if let Some(l) = lbw {
            self.floating_host_addresses(&l.vrrp_instance, hosts);
        }
        let no_groups = Default::default();
        let sync_groups = self.sync_groups(
            lbw.map_or(&no_groups, |l| &l.sync_group),
            &instances,
            vrrp.is_some(),
        );
        LbView {
            services,
            interface: lbw
                .and_then(|l| l.interface.as_ref())
                .map(|i| i.get_ref().clone()),
            garp_refresh: lbw.and_then(|l| l.garp_refresh.as_ref()).map(|_| {
                self.duration(
                    &lbw.and_then(|l| l.garp_refresh.clone()),
                    Duration::from_secs(60),
                    Duration::from_secs(1),
                    Duration::from_secs(86400),
                    "garp-refresh",
                )
            }),
            vrrp,
            instances,
            scripts,
            sync_groups,
            max_checks: self.int(
                &lbw.and_then(|l| l.max_checks.clone()),
                64,
                1,
                10_000,
                "max-checks",
            ) as u32,
            metrics: self.metrics(lbw.and_then(|l| l.metrics.as_ref()), 9169),
            control_socket: self.path(
                lbw.and_then(|l| l.control_socket.as_deref()),
                "/run/lbd/control.sock",
            ),
            admin_key: lbw
                .and_then(|l| l.admin_key_file.as_ref())
                .and_then(|f| self.admin_key_file(f)),
        }
    }
}
