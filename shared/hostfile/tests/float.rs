//! Floating addresses: `[lb.vrrp-instance.*]`, `[lb.vrrp-script.*]`, `[lb.sync-group.*]` and the
//! tracking and notify keys, valid and broken one rule at a time (file:line, value, fix).

use std::time::Duration;

use hostfile::checkcases::base;
use hostfile::{HostTable, Track};

const LB: &str = r#"[host.web1]
ip = "10.1.0.10"
[service.www]
vip = "10.1.0.120"
port = 80
backends = ["web1"]
[lb.vrrp]
vrid = 51
priority = 150
interface = "eth0"
track-script = ["chk_haproxy"]
notify-master = ["/usr/local/bin/became", "master"]
[lb.vrrp-script.chk_haproxy]
command = ["/usr/bin/pidof", "haproxy"]
interval = "2s"
weight = -60
fall = 2
rise = 3
[lb.vrrp-script.chk_gw]
command = ["ip route | grep -q default"]
shell = true
[lb.vrrp-instance.gateway]
vrid = 52
interface = "eth1"
priority = 150
preempt = false
interval = "100ms"
addresses = ["10.1.0.1/24", "10.1.0.2"]
track-interface = ["eth0", { name = "eth2", weight = -10 }]
track-script = [{ name = "chk_gw", weight = 0 }]
notify-fault = ["/usr/bin/logger", "gateway fault"]
[lb.sync-group.nat]
instances = ["vrrp", "gateway"]
"#;

fn with(extra: &str) -> String {
    format!("{}{extra}", base())
}

#[test]
fn floating_instances_scripts_and_groups_are_read() {
    let v = HostTable::from_toml(&with(LB)).expect("valid").lb_view();
    let d = v.vrrp.as_ref().unwrap();
    assert_eq!(
        d.tracking.scripts,
        [Track {
            name: "chk_haproxy".into(),
            weight: -60
        }]
    );
    assert_eq!(
        d.notify.master.as_deref(),
        Some(&["/usr/local/bin/became".to_owned(), "master".into()][..])
    );
    assert_eq!(v.scripts.len(), 2);
    let chk = v.scripts.iter().find(|s| s.name == "chk_haproxy").unwrap();
    assert_eq!(chk.argv, ["/usr/bin/pidof", "haproxy"]);
    assert_eq!(chk.interval, Duration::from_secs(2));
    assert_eq!(chk.timeout, Duration::from_secs(2));
    assert_eq!((chk.weight, chk.rise, chk.fall), (-60, 3, 2));
    let gw = v.scripts.iter().find(|s| s.name == "chk_gw").unwrap();
    assert_eq!(gw.argv, ["/bin/sh", "-c", "ip route | grep -q default"]);
    let i = &v.instances[0];
    assert_eq!(
        (i.name.as_str(), i.vrid, i.priority, i.preempt),
        ("gateway", 52, 150, false)
    );
    assert_eq!(i.interface, "eth1");
    assert_eq!(i.interval, Duration::from_millis(100));
    let a: Vec<String> = i.addresses.iter().map(ToString::to_string).collect();
    assert_eq!(a, ["10.1.0.1/24", "10.1.0.2/32"]);
    assert_eq!(
        i.tracking.interfaces,
        [
            Track {
                name: "eth0".into(),
                weight: 0
            },
            Track {
                name: "eth2".into(),
                weight: -10
            }
        ]
    );
    assert_eq!(i.tracking.scripts[0].weight, 0);
    assert_eq!(v.sync_groups[0].instances, ["vrrp", "gateway"]);
}

#[test]
fn the_single_vrrp_table_is_unchanged() {
    let v = HostTable::from_toml(&with(
        "[host.web1]\nip = \"10.1.0.10\"\n[service.www]\nvip = \"10.1.0.120\"\nport = 80\nbackends = [\"web1\"]\n[lb]\nvrrp = { vrid = 51, priority = 150, interval = \"1s\" }\n",
    ))
    .expect("valid")
    .lb_view();
    let d = v.vrrp.unwrap();
    assert_eq!((d.vrid, d.priority, d.preempt), (51, 150, true));
    assert!(d.tracking.scripts.is_empty() && d.notify.master.is_none());
    assert!(v.instances.is_empty() && v.scripts.is_empty() && v.sync_groups.is_empty());
}

/// `LB` with `from` replaced by `to`: the error names `line` and contains `needle`, with a fix.
fn broken(rule: &str, from: &str, to: &str, line: usize, needle: &str) {
    assert!(LB.contains(from), "{rule}: `{from}` not in the file");
    let text = with(&LB.replacen(from, to, 1));
    let err = HostTable::from_toml(&text).expect_err(rule);
    let hit = err
        .problems()
        .iter()
        .find(|p| p.message.contains(needle))
        .unwrap_or_else(|| panic!("{rule}: no problem mentions {needle:?}: {err}"));
    assert_eq!(hit.line, line, "{rule}: wrong line in {err}");
    assert!(!hit.fix.is_empty(), "{rule}: no fix");
}

#[test]
fn every_floating_rule_is_enforced_with_its_line() {
    // Lines: the base is 5 lines, LB starts at line 6.
    broken(
        "vrid unique per interface",
        "vrid = 52\ninterface = \"eth1\"",
        "vrid = 51\ninterface = \"eth0\"",
        28,
        "vrid `51` on `eth0` is already used by [lb.vrrp]",
    );
    let addr = "\"10.1.0.2\"]";
    broken(
        "service VIP cannot float elsewhere",
        addr,
        "\"10.1.0.120\"]",
        33,
        "is the VIP of service `www`",
    );
    broken(
        "address twice",
        addr,
        "\"10.1.0.1\"]",
        33,
        "already held by vrrp-instance `gateway`",
    );
    broken(
        "address syntax",
        addr,
        "\"10.1.0.300/24\"]",
        33,
        "`10.1.0.300/24` is not an IPv4 address",
    );
    broken(
        "no addresses",
        "addresses = [\"10.1.0.1/24\", \"10.1.0.2\"]",
        "addresses = []",
        33,
        "has no addresses",
    );
    broken(
        "interval bounds",
        "interval = \"100ms\"",
        "interval = \"50s\"",
        32,
        "vrrp interval `50s` is out of range",
    );
    broken(
        "script path absolute",
        "[\"/usr/bin/pidof\", \"haproxy\"]",
        "[\"pidof\", \"haproxy\"]",
        19,
        "program `pidof` is not an absolute path",
    );
    broken(
        "notify path absolute",
        "[\"/usr/bin/logger\", \"gateway fault\"]",
        "[\"logger\"]",
        36,
        "notify-fault program `logger`",
    );
    broken(
        "unknown script",
        "[{ name = \"chk_gw\", weight = 0 }]",
        "[\"chk_gone\"]",
        35,
        "track-script `chk_gone` is not defined",
    );
    broken(
        "script timeout within interval",
        "interval = \"2s\"",
        "interval = \"2s\"\ntimeout = \"5s\"",
        21,
        "timeout `5s` is longer than its interval",
    );
    broken(
        "weight bounds",
        "weight = -60",
        "weight = -300",
        21,
        "weight `-300` is out of range",
    );
    broken(
        "group member exists",
        "[\"vrrp\", \"gateway\"]",
        "[\"vrrp\", \"gatway\"]",
        38,
        "member `gatway` is not a VRRP instance",
    );
    broken(
        "unknown key",
        "preempt = false",
        "nopreempt = true",
        31,
        "unknown field `nopreempt`",
    );
}

#[test]
fn a_floating_address_owned_by_a_host_is_a_warning() {
    let text = with(&LB.replace("[host.web1]", "[host.main]\nip = \"10.1.0.1\"\n[host.web1]"));
    let t = HostTable::from_toml(&text).expect("valid, with a warning");
    let w = t.warnings();
    assert!(
        w.iter().any(
            |w| w.contains("floating address `10.1.0.1` is also host `main`'s address")
                && w.contains("take 10.1.0.1 out of main's own interface configuration")
        ),
        "{w:?}"
    );
    assert!(
        HostTable::from_toml(&with(LB))
            .unwrap()
            .warnings()
            .is_empty()
    );
}
