//! `lbd status`: the running daemon's services, backends (health, weight, active connections)
//! and VRRP state, as JSON over the control socket and as an `ipvsadm -Ln`-like table.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use hostfile::{CheckKind, LbView};
use serde_json::{Value, json};

use crate::desired::{Desired, Mode, Role};
use crate::drain::Drains;
use crate::health::Trackers;
use crate::metrics::Traffic;

/// The status document (pure: everything comes in as arguments). `view` is the host file's;
/// `drains` the backends `lbd drain` took out (carried with weight 0): each backend says whether
/// it is drained and by what (`drained_by`: the `lbd drain` entry, or `host-file` for
/// `weight = 0`).
#[allow(clippy::too_many_arguments)]
pub fn document(
    view: &LbView,
    drains: &Drains,
    trackers: &Trackers,
    current: &Desired,
    role: Role,
    held: &[IpAddr],
    active: &dyn Fn(&hostfile::VirtualService, SocketAddr) -> Option<u64>,
    traffic: &BTreeMap<(String, SocketAddr), Traffic>,
) -> Value {
    let services: Vec<Value> = view
        .services
        .iter()
        .map(|s| {
            // A dual-stack service is two entries of one name: each has its own plan (its own
            // targets and mode), found by name and VIP.
            let plan = current
                .services
                .iter()
                .find(|p| p.name == s.name && p.vip == s.vip);
            let backends: Vec<Value> = s
                .backends
                .iter()
                .map(|b| {
                    let t = trackers.get(&(s.name.clone(), b.addr));
                    let health = if matches!(s.check.kind, CheckKind::None) {
                        "nocheck"
                    } else {
                        match t.and_then(|t| t.up) {
                            Some(true) => "up",
                            Some(false) => "down",
                            None => "unknown",
                        }
                    };
                    let in_use = plan.is_some_and(|p| p.targets.iter().any(|x| x.addr == b.addr));
                    let tr = traffic.get(&(s.name.clone(), b.addr)).copied().unwrap_or_default();
                    let drained_by = match drains.entry_for(&s.name, &b.name) {
                        Some(e) => Some(e.to_owned()),
                        None if b.weight == 0 => Some("host-file".to_owned()),
                        None => None,
                    };
                    json!({
                        "name": b.name,
                        "address": b.addr.to_string(),
                        "weight": b.weight,
                        "drained": drained_by.is_some(),
                        "drained_by": drained_by,
                        "health": health,
                        "in_use": in_use,
                        "active": active(s, b.addr),
                        "connections": tr.connections,
                        "bytes_to_backend": tr.to_backend,
                        "bytes_from_backend": tr.from_backend,
                        "last_error": t.and_then(|t| t.last_error.clone()),
                    })
                })
                .collect();
            json!({
                "name": s.name,
                "vip": s.vip.to_string(),
                "port": s.port,
                "protocol": format!("{:?}", s.protocol).to_uppercase(),
                "scheduler": format!("{:?}", s.scheduler).to_lowercase(),
                "dataplane": format!("{:?}", s.dataplane).to_lowercase(),
                "persistence_s": s.persistence.map(|d| d.as_secs()),
                "quorum": s.quorum,
                "sorry": s.sorry.map(|a| a.to_string()),
                // The sorry server's traffic: its connections outlive the service going live
                // again, and stay counted while it is configured.
                "sorry_server": s.sorry.map(|a| {
                    let tr = traffic.get(&(s.name.clone(), a)).copied().unwrap_or_default();
                    json!({
                        "address": a.to_string(),
                        "in_use": plan.is_some_and(|p| p.mode == Mode::Sorry),
                        "connections": tr.connections,
                        "bytes_to_backend": tr.to_backend,
                        "bytes_from_backend": tr.from_backend,
                    })
                }),
                "mode": plan.map_or("not carried (backup)".to_owned(), |p| format!("{:?}", p.mode).to_lowercase()),
                "backends": backends,
            })
        })
        .collect();
    json!({
        "vrrp": view.vrrp.as_ref().map(|v| json!({
            "vrid": v.vrid,
            "priority": v.priority,
            "interval_ms": v.interval.as_millis() as u64,
            "preempt": v.preempt,
            "state": match role { Role::Master => "MASTER", Role::Backup => "BACKUP" },
        })),
        "vips": held.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        "services": services,
        "drained": drains.entries().collect::<Vec<_>>(),
    })
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
            "service {} {:?} {} {:?} {:?} -> {}",
            svc.name,
            svc.protocol,
            std::net::SocketAddr::new(svc.vip, svc.port),
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
    for i in &v.instances {
        let a: Vec<String> = i.addresses.iter().map(ToString::to_string).collect();
        let _ = writeln!(
            s,
            "vrrp-instance {} vrid {} on {} priority {} interval {}ms: {}",
            i.name,
            i.vrid,
            i.interface,
            i.priority,
            i.interval.as_millis(),
            a.join(", ")
        );
    }
    for g in &v.sync_groups {
        let _ = writeln!(s, "sync-group {}: {}", g.name, g.instances.join(", "));
    }
    s
}

/// The `ipvsadm -Ln`-like text for a status document.
pub fn render_text(doc: &Value) -> String {
    let mut s = String::new();
    match doc.get("vrrp") {
        Some(Value::Object(v)) => {
            let _ = writeln!(
                s,
                "VRRP vrid {} priority {} interval {} ms: {}",
                v["vrid"],
                v["priority"],
                v["interval_ms"],
                v["state"].as_str().unwrap_or("?")
            );
        }
        _ => s.push_str("VRRP off (this node holds the VIPs)\n"),
    }
    if let Some(Value::Array(list)) = doc.get("vrrp_instances") {
        for i in list {
            let addrs: Vec<&str> = i["addresses"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let _ = writeln!(
                s,
                "VRRP instance {} vrid {} on {} priority {} (configured {}): {} {}",
                i["name"].as_str().unwrap_or(""),
                i["vrid"],
                i["interface"].as_str().unwrap_or(""),
                i["priority"],
                i["configured_priority"],
                i["state"].as_str().unwrap_or(""),
                addrs.join(", ")
            );
        }
    }
    let vips: Vec<&str> = doc["vips"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
        .unwrap_or_default();
    let _ = writeln!(
        s,
        "VIPs held: {}",
        if vips.is_empty() {
            "none".to_owned()
        } else {
            vips.join(", ")
        }
    );
    let drained: Vec<&str> = doc["drained"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !drained.is_empty() {
        let _ = writeln!(s, "Drained by lbd drain: {}", drained.join(", "));
    }
    s.push_str("Prot LocalAddress:Port Scheduler Dataplane State\n");
    s.push_str(
        "  -> RemoteAddress:Port           Health  Weight ActiveConn InUse Conns      InBytes      OutBytes\n",
    );
    for svc in doc["services"].as_array().into_iter().flatten() {
        let _ = writeln!(
            s,
            "{}  {} {} {} {}",
            svc["protocol"].as_str().unwrap_or("?"),
            // `ADDR:PORT`, `[ADDR]:PORT` for an IPv6 VIP.
            match svc["vip"].as_str().unwrap_or("?") {
                v if v.contains(':') => format!("[{v}]:{}", svc["port"]),
                v => format!("{v}:{}", svc["port"]),
            },
            svc["scheduler"].as_str().unwrap_or("?"),
            svc["dataplane"].as_str().unwrap_or("?"),
            svc["mode"].as_str().unwrap_or("?"),
        );
        for b in svc["backends"].as_array().into_iter().flatten() {
            let active = match &b["active"] {
                Value::Number(n) => n.to_string(),
                _ => "-".to_owned(),
            };
            let addr = format!(
                "{} ({})",
                b["address"].as_str().unwrap_or("?"),
                b["name"].as_str().unwrap_or("?")
            );
            let health = b["health"].as_str().unwrap_or("?");
            // A drained backend carries weight 0 whatever the host file says.
            let weight = if b["drained"].as_bool() == Some(true) {
                "drain".to_owned()
            } else {
                b["weight"].to_string()
            };
            backend_row(&mut s, &addr, health, &weight, &active, b);
        }
        if let Some(b) = svc.get("sorry_server").filter(|b| b.is_object()) {
            let addr = format!("{} (sorry)", b["address"].as_str().unwrap_or("?"));
            backend_row(&mut s, &addr, "-", "-", "-", b);
        }
    }
    s
}

/// One `  -> ` line of the table: the given columns, then in use, connections and bytes of `b`.
fn backend_row(s: &mut String, addr: &str, health: &str, weight: &str, active: &str, b: &Value) {
    let _ = writeln!(
        s,
        "  -> {:<28} {:<7} {:<6} {:<10} {:<5} {:<10} {:<12} {}",
        addr,
        health,
        weight,
        active,
        if b["in_use"].as_bool() == Some(true) {
            "yes"
        } else {
            "no"
        },
        b["connections"].as_u64().unwrap_or(0),
        b["bytes_to_backend"].as_u64().unwrap_or(0),
        b["bytes_from_backend"].as_u64().unwrap_or(0),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::Tracker;

    #[test]
    fn document_and_text() {
        let t = hostfile::HostTable::from_toml(
            r#"
domain = "example.com"
[[subnet]]
network = "192.168.1.0/24"
[host.web1]
ip = "192.168.1.10"
[host.web2]
ip = "192.168.1.11"
[service.www]
vip = "192.168.1.120"
port = 80
backends = ["web1", "web2"]
dataplane = "proxy"
sorry = "192.168.1.99:8080"
[lb]
vrrp = { vrid = 7, priority = 120 }
"#,
        )
        .unwrap();
        let view = t.lb_view();
        let mut trackers = Trackers::new();
        let mut up = Tracker::default();
        up.record(true, 1, 1);
        let mut down = Tracker::default();
        down.record(false, 1, 1);
        down.last_error = Some("connect refused".into());
        trackers.insert(("www".into(), "192.168.1.10:80".parse().unwrap()), up);
        trackers.insert(("www".into(), "192.168.1.11:80".parse().unwrap()), down);
        let health = crate::health::health_map(&trackers);
        let d = crate::desired::desired(&view, &health, Role::Master);
        let drains = Drains::default().with("www/web2");
        let doc = document(
            &view,
            &drains,
            &trackers,
            &d,
            Role::Master,
            &["192.168.1.120".parse().unwrap()],
            &|_, _| Some(3),
            &BTreeMap::from([
                (
                    ("www".to_owned(), "192.168.1.10:80".parse().unwrap()),
                    Traffic {
                        connections: 7,
                        to_backend: 700,
                        from_backend: 9000,
                    },
                ),
                (
                    ("www".to_owned(), "192.168.1.99:8080".parse().unwrap()),
                    Traffic {
                        connections: 2,
                        to_backend: 20,
                        from_backend: 30,
                    },
                ),
            ]),
        );
        let sorry = &doc["services"][0]["sorry_server"];
        assert_eq!(sorry["address"], "192.168.1.99:8080");
        assert_eq!(sorry["in_use"], false);
        assert_eq!(sorry["connections"], 2);
        assert_eq!(sorry["bytes_from_backend"], 30);
        assert_eq!(doc["vrrp"]["state"], "MASTER");
        assert_eq!(doc["services"][0]["mode"], "live");
        assert_eq!(doc["services"][0]["backends"][0]["health"], "up");
        assert_eq!(doc["services"][0]["backends"][0]["in_use"], true);
        assert_eq!(doc["services"][0]["backends"][1]["health"], "down");
        assert_eq!(doc["services"][0]["backends"][1]["in_use"], false);
        assert_eq!(doc["services"][0]["backends"][0]["active"], 3);
        assert_eq!(doc["services"][0]["backends"][0]["connections"], 7);
        assert_eq!(
            doc["services"][0]["backends"][0]["bytes_from_backend"],
            9000
        );
        assert_eq!(doc["services"][0]["backends"][1]["connections"], 0);
        assert_eq!(doc["services"][0]["backends"][0]["drained"], false);
        assert_eq!(doc["services"][0]["backends"][1]["drained"], true);
        assert_eq!(doc["services"][0]["backends"][1]["drained_by"], "www/web2");
        let text = render_text(&doc);
        assert!(text.contains("VRRP vrid 7 priority 120"), "{text}");
        assert!(
            text.contains("TCP  192.168.1.120:80 rr proxy live"),
            "{text}"
        );
        assert!(text.contains("192.168.1.11:80 (web2)"), "{text}");
        assert!(text.contains("Drained by lbd drain: www/web2\n"), "{text}");
        assert!(
            text.lines()
                .any(|l| l.contains("(web2)") && l.contains(" drain ")),
            "{text}"
        );
        assert!(
            text.lines().any(|l| l.contains("(web1)")
                && l.split_whitespace()
                    .collect::<Vec<_>>()
                    .ends_with(&["yes", "7", "700", "9000"])),
            "{text}"
        );
        assert!(text.contains("down"), "{text}");
        assert!(
            text.lines().any(|l| l.contains("192.168.1.99:8080 (sorry)")
                && l.split_whitespace()
                    .collect::<Vec<_>>()
                    .ends_with(&["no", "2", "20", "30"])),
            "{text}"
        );
    }

    #[test]
    fn every_vrrp_instance_gets_a_line() {
        let doc = json!({
            "vrrp": null,
            "vips": [],
            "services": [],
            "vrrp_instances": [
                {"name": "vrrp", "vrid": 51, "interface": "eth0", "state": "FAULT", "priority": 150,
                 "configured_priority": 150, "addresses": ["192.168.1.120"]},
                {"name": "gateway", "vrid": 52, "interface": "eth1", "state": "BACKUP", "priority": 90,
                 "configured_priority": 150, "addresses": ["192.168.10.1", "192.168.10.254"]},
            ],
        });
        let text = render_text(&doc);
        assert!(
            text.contains("VRRP instance vrrp vrid 51 on eth0 priority 150 (configured 150): FAULT 192.168.1.120\n"),
            "{text}"
        );
        assert!(
            text.contains("VRRP instance gateway vrid 52 on eth1 priority 90 (configured 150): BACKUP 192.168.10.1, 192.168.10.254\n"),
            "{text}"
        );
    }
}
