//! keepalived's VRRP side imported: floating instances, `vrrp_script`, `vrrp_sync_group`,
//! `track_script`, `track_interface`, notify commands and `nopreempt`, on a keepalived.conf in
//! the form keepalived's own samples use (the seed LAN's NAT pair: the service VIP and the inner
//! gateway in one sync group, HAProxy tracked).

use std::path::{Path, PathBuf};
use std::time::Duration;

use hostfile::{Track, TrackScript};
use import::Imported;

fn sample(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/import-samples")
        .join(name)
}

fn import(name: &str) -> Imported {
    let text = std::fs::read_to_string(sample(name)).unwrap();
    import::import_keepalived(&text, &sample(name)).unwrap_or_else(|e| panic!("{e}"))
}

fn listed(i: &Imported, line: usize, needle: &str) -> bool {
    i.unsupported
        .iter()
        .any(|u| u.line == line && u.construct.contains(needle))
}

fn track(name: &str, weight: i32) -> Track {
    Track {
        name: name.into(),
        weight,
    }
}

fn argv(v: &[&str]) -> Option<Vec<String>> {
    Some(v.iter().map(|s| (*s).to_owned()).collect())
}

#[test]
fn the_nat_pair_sample_imports_two_instances_a_group_scripts_and_notify() {
    let i = import("keepalived-pair.conf");
    let toml = i.to_toml();
    println!("{toml}");
    let t = i
        .check()
        .unwrap_or_else(|e| panic!("imported file does not validate:\n{e}\n---\n{toml}"));
    let lb = t.lb_view();

    // VI_1 holds the service VIP: [lb.vrrp], with nopreempt, its scripts and notify commands.
    assert_eq!(lb.services.len(), 1);
    let v = lb.vrrp.as_ref().expect("[lb.vrrp]");
    assert_eq!((v.vrid, v.priority, v.preempt), (51, 150, false));
    assert_eq!(v.interface.as_deref(), Some("br0"));
    assert_eq!(
        v.tracking.scripts,
        [track("chk_haproxy", 0), track("chk_www", -30)]
    );
    assert_eq!(
        v.notify.master,
        argv(&["/etc/keepalived/notify.sh", "MASTER", "VI_1"])
    );
    assert_eq!(
        v.notify.backup,
        argv(&["/etc/keepalived/notify.sh", "BACKUP", "VI_1"])
    );
    // `&&` needs a shell.
    assert_eq!(
        v.notify.fault,
        argv(&[
            "/bin/sh",
            "-c",
            "/usr/bin/logger -t keepalived 'VI_1 fault' && /etc/keepalived/page.sh"
        ])
    );

    // VI_GW only moves an address: a floating instance.
    assert_eq!(lb.instances.len(), 1);
    let g = &lb.instances[0];
    assert_eq!(g.name, "vi-gw");
    assert_eq!((g.vrid, g.priority, g.preempt), (52, 150, false));
    assert_eq!(g.interface, "p10p1");
    assert_eq!(g.addresses, ["192.168.10.1/24".parse().unwrap()]);
    assert_eq!(g.interval, Duration::from_millis(100));
    assert_eq!(
        g.tracking.interfaces,
        [track("br0", 0), track("p10p1", -50)]
    );
    // The generic `notify SCRIPT`: one command per state, with keepalived's arguments.
    assert_eq!(
        g.notify.master,
        argv(&[
            "/etc/keepalived/notify-all.sh",
            "INSTANCE",
            "VI_GW",
            "MASTER"
        ])
    );
    assert_eq!(
        g.notify.fault,
        argv(&[
            "/etc/keepalived/notify-all.sh",
            "INSTANCE",
            "VI_GW",
            "FAULT"
        ])
    );

    // The sync group names [lb.vrrp] `vrrp`.
    assert_eq!(lb.sync_groups.len(), 1);
    assert_eq!(lb.sync_groups[0].name, "VG_NAT");
    assert_eq!(lb.sync_groups[0].instances, ["vrrp", "vi-gw"]);

    // Scripts: a program not given by path runs in a shell; an argv one does not.
    let s = |n: &str| -> &TrackScript { lb.scripts.iter().find(|s| s.name == n).unwrap() };
    let h = s("chk_haproxy");
    assert_eq!(h.argv, ["/bin/sh", "-c", "killall -0 haproxy"]);
    assert_eq!(
        (h.interval, h.timeout, h.weight, h.rise, h.fall),
        (Duration::from_secs(2), Duration::from_secs(1), 0, 2, 2)
    );
    let w = s("chk_www");
    assert_eq!(
        w.argv,
        [
            "/usr/bin/curl",
            "-sf",
            "-o",
            "/dev/null",
            "http://127.0.0.1/"
        ]
    );
    assert_eq!((w.interval, w.weight), (Duration::from_secs(1), -20));

    // The text says where each table came from and why a shell runs.
    for needle in [
        "[lb.vrrp-instance.vi-gw]",
        "# from vrrp_instance VI_GW at ",
        "[lb.vrrp-script.chk_haproxy]",
        "shell = true",
        "# run by /bin/sh -c: `killall` is not an absolute path",
        "[lb.sync-group.VG_NAT]",
        "instances = [\"vrrp\", \"vi-gw\"]",
        "preempt = false",
    ] {
        assert!(toml.contains(needle), "{needle}\n{toml}");
    }
    // What the host file cannot say is listed at its line.
    for (line, needle) in [
        (9, "enable_script_security"),
        (35, "state BACKUP"),
        (41, "authentication"),
        (71, "notify"),
    ] {
        assert!(
            listed(&i, line, needle),
            "{line} {needle}: {:#?}",
            i.unsupported
        );
    }
}

#[test]
fn an_address_only_config_without_virtual_server_floats_every_instance() {
    // The most common keepalived.conf: an address in front of HAProxy, nothing balanced.
    let conf = "vrrp_script chk_haproxy {\n    script \"/usr/bin/pgrep haproxy\"\n    interval 2\n    weight 2\n}\n\
                vrrp_instance VI_1 {\n    interface eth0\n    state MASTER\n    virtual_router_id 51\n    priority 101\n    virtual_ipaddress {\n        10.0.0.100\n    }\n    track_script {\n        chk_haproxy\n    }\n}\n";
    let i = import::import_keepalived(conf, Path::new("keepalived.conf")).unwrap();
    let toml = i.to_toml();
    let t = i.check().unwrap_or_else(|e| panic!("{e}\n{toml}"));
    let lb = t.lb_view();
    assert!(lb.vrrp.is_none(), "{toml}");
    assert_eq!(lb.instances.len(), 1, "{toml}");
    let v = &lb.instances[0];
    assert_eq!((v.name.as_str(), v.vrid, v.priority), ("vi-1", 51, 101));
    // No prefix: /32, as keepalived adds it, and said so.
    assert_eq!(v.addresses, ["10.0.0.100/32".parse().unwrap()]);
    assert!(
        toml.contains("# guessed: 10.0.0.100 has no prefix"),
        "{toml}"
    );
    assert_eq!(v.tracking.scripts, [track("chk_haproxy", 2)]);
    assert_eq!(lb.scripts[0].argv, ["/usr/bin/pgrep", "haproxy"]);
    // Only the starting state is not imported.
    assert_eq!(i.unsupported.len(), 1, "{:#?}", i.unsupported);
    assert!(listed(&i, 8, "state MASTER"));
}

#[test]
fn a_refused_floating_instance_is_listed_at_its_line_and_its_group_member_goes() {
    // vrid 0 is refused by the host file: the instance goes, listed at its line; the group keeps
    // the other member.
    let conf = "vrrp_sync_group G {\n  group {\n    A\n    B\n  }\n}\n\
                vrrp_instance A {\n  interface eth0\n  virtual_router_id 0\n  virtual_ipaddress {\n    10.0.0.1/24\n  }\n}\n\
                vrrp_instance B {\n  interface eth1\n  virtual_router_id 7\n  virtual_ipaddress {\n    10.0.1.1/24\n  }\n}\n";
    let i = import::import_keepalived(conf, Path::new("keepalived.conf")).unwrap();
    let toml = i.to_toml();
    let t = i.check().unwrap_or_else(|e| panic!("{e}\n{toml}"));
    let lb = t.lb_view();
    assert_eq!(lb.instances.len(), 1, "{toml}");
    assert_eq!(lb.instances[0].name, "b");
    assert!(
        i.unsupported
            .iter()
            .any(|u| u.line == 7 && u.construct.contains("[lb.vrrp-instance.a]")),
        "{:#?}",
        i.unsupported
    );
    assert_eq!(lb.sync_groups[0].instances, ["b"], "{toml}");
}

#[test]
fn command_lines_become_argv_lists_or_shell_lines() {
    // Quoted words inside the command stay one argument; unquoted words are one command; a
    // quote left open, a pipe or a bare program name needs the shell.
    let conf = "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 9\n  virtual_ipaddress {\n    10.0.0.9/24\n  }\n\
                  notify_master \"/usr/bin/logger -t ka 'became master'\"\n\
                  notify_backup /usr/local/bin/state.sh backup now\n\
                  notify_fault \"/usr/bin/logger it's down\"\n}\n\
                vrrp_script a {\n  script \"pidof haproxy\"\n}\n\
                vrrp_script b {\n  script \"/usr/bin/pgrep haproxy | /usr/bin/grep -q .\"\n  weight 10 reverse\n}\n";
    let i = import::import_keepalived(conf, Path::new("keepalived.conf")).unwrap();
    let toml = i.to_toml();
    let t = i.check().unwrap_or_else(|e| panic!("{e}\n{toml}"));
    let lb = t.lb_view();
    let v = &lb.instances[0];
    assert_eq!(
        v.notify.master,
        argv(&["/usr/bin/logger", "-t", "ka", "became master"])
    );
    assert_eq!(
        v.notify.backup,
        argv(&["/usr/local/bin/state.sh", "backup", "now"])
    );
    assert_eq!(
        v.notify.fault,
        argv(&["/bin/sh", "-c", "/usr/bin/logger it's down"])
    );
    assert!(
        toml.contains(
            "# notify_fault (keepalived.conf:9) runs in /bin/sh -c: its quotes do not pair up"
        ),
        "{toml}"
    );
    let s = |n: &str| lb.scripts.iter().find(|s| s.name == n).unwrap();
    assert_eq!(s("a").argv, ["/bin/sh", "-c", "pidof haproxy"]);
    assert_eq!(
        s("b").argv,
        [
            "/bin/sh",
            "-c",
            "/usr/bin/pgrep haproxy | /usr/bin/grep -q ."
        ]
    );
    assert_eq!(s("b").weight, 10);
    assert!(listed(&i, 16, "weight 10 reverse"), "{:#?}", i.unsupported);
}

#[test]
fn ipv6_addresses_of_an_instance_are_listed_and_the_rest_imports() {
    let conf = "vrrp_instance VI_6 {\n  interface eth0\n  virtual_router_id 60\n  unicast_src_ip fd00::2\n  unicast_peer {\n    fd00::3\n    10.0.0.3\n  }\n  virtual_ipaddress {\n    10.0.0.60/24\n    fd00::60/64\n    [fd00::61]\n  }\n}\n";
    let i = import::import_keepalived(conf, Path::new("keepalived.conf")).unwrap();
    let toml = i.to_toml();
    let t = i.check().unwrap_or_else(|e| panic!("{e}\n{toml}"));
    let v = &t.lb_view().instances[0];
    assert_eq!(v.addresses, ["10.0.0.60/24".parse().unwrap()]);
    assert_eq!(v.peers, ["10.0.0.3".parse::<std::net::Ipv4Addr>().unwrap()]);
    for (line, needle) in [
        (4, "fd00::2"),
        (6, "fd00::3"),
        (11, "fd00::60/64"),
        (12, "[fd00::61]"),
    ] {
        assert!(
            listed(&i, line, needle),
            "{line} {needle}: {:#?}",
            i.unsupported
        );
    }
}

#[test]
fn an_ipv6_vrrp_instance_imports_as_an_ipv6_floating_instance() {
    // keepalived: an instance is of the family of its first virtual_ipaddress; the others
    // ("address family must match VRRP instance - ignoring") are listed here.
    let conf = "vrrp_instance VI_6 {\n  interface eth0\n  virtual_router_id 61\n  priority 150\n  advert_int 0.1\n  unicast_src_ip fd00:1::2\n  unicast_peer {\n    fd00:1::3\n    10.0.0.3\n  }\n  virtual_ipaddress {\n    fd00:1::100/64\n    [fd00:1::101]\n    10.0.0.9/24\n  }\n}\nvrrp_instance VI_4 {\n  interface eth0\n  virtual_router_id 61\n  virtual_ipaddress {\n    10.0.0.60/24\n  }\n}\n";
    let i = import::import_keepalived(conf, Path::new("keepalived.conf")).unwrap();
    let toml = i.to_toml();
    let t = i.check().unwrap_or_else(|e| panic!("{e}\n{toml}"));
    let lb = t.lb_view();
    let v = lb.instances.iter().find(|x| x.name == "vi-6").unwrap();
    assert!(v.is_ipv6(), "{toml}");
    assert_eq!(
        v.addresses,
        [
            "fd00:1::100/64".parse().unwrap(),
            "fd00:1::101/128".parse().unwrap()
        ]
    );
    assert_eq!(v.peers, ["fd00:1::3".parse::<std::net::IpAddr>().unwrap()]);
    assert_eq!(v.source, Some("fd00:1::2".parse().unwrap()));
    assert_eq!((v.vrid, v.priority), (61, 150));
    assert_eq!(v.interval, std::time::Duration::from_millis(100));
    // The IPv4 instance may share the vrid: IPv4 and IPv6 virtual routers are independent.
    let v4 = lb.instances.iter().find(|x| x.name == "vi-4").unwrap();
    assert!(!v4.is_ipv6());
    assert_eq!(v4.vrid, 61);
    assert!(toml.contains("\"fd00:1::101/128\""), "{toml}");
    assert!(
        toml.contains("guessed: fd00:1::101 has no prefix: /128"),
        "{toml}"
    );
    for (line, needle) in [(9, "10.0.0.3"), (14, "10.0.0.9/24")] {
        assert!(
            listed(&i, line, needle)
                && i.unsupported
                    .iter()
                    .any(|u| u.line == line && u.reason.contains("address family must match")),
            "{line} {needle}: {:#?}",
            i.unsupported
        );
    }
}
