use std::time::{Duration, Instant};

use hostfile::{Dataplane, Protocol, Scheduler};

use super::run::apply_within;
use super::*;
use crate::desired::{Desired, Mode, ServicePlan, Target, VipPlan};

fn plan(scheduler: Scheduler, weights: &[u32], persistence: bool) -> Desired {
    Desired {
        vips: vec![VipPlan {
            addr: "192.168.1.120".parse().unwrap(),
            prefix: 24,
            interface: None,
        }],
        vips6: vec![],
        services: vec![ServicePlan {
            index: 0,
            name: "www3".into(),
            vip: "192.168.1.120".parse().unwrap(),
            port: 80,
            protocol: Protocol::Tcp,
            scheduler,
            dataplane: Dataplane::Kernel,
            byte_counters: true,
            persistence: persistence.then(|| std::time::Duration::from_secs(300)),
            mode: Mode::Live,
            targets: weights
                .iter()
                .enumerate()
                .map(|(i, w)| Target {
                    name: format!("web{}", i + 1),
                    addr: format!("192.168.10.{}:80", 10 + i).parse().unwrap(),
                    weight: *w,
                })
                .collect(),
            pool: Vec::new(),
            counted: Vec::new(),
        }],
    }
}

#[test]
fn rr_two_backends() {
    let s = render(&plan(Scheduler::Rr, &[1, 1], false));
    assert!(s.starts_with("table ip lbd\ndelete table ip lbd\ntable ip lbd {\n"));
    // No persistence: the service chain DNATs itself (one jump, as a hand-written rule).
    assert!(
        s.contains(
            "  chain svc0 {\n    dnat ip to numgen inc mod 2 map { 0 : 192.168.10.10, 1 : 192.168.10.11 }\n  }"
        ),
        "{s}"
    );
    assert!(!s.contains("_ep"), "{s}");
    // Backends on another port: the map gives address . port.
    let mut d = plan(Scheduler::Rr, &[1, 1], false);
    for t in &mut d.services[0].targets {
        t.addr.set_port(8080);
    }
    let o = render(&d);
    assert!(
        o.contains("meta l4proto tcp dnat ip to numgen inc mod 2 map { 0 : 192.168.10.10 . 8080, 1 : 192.168.10.11 . 8080 }"),
        "{o}"
    );
    // With persistence: per-backend chains (they update the client sets).
    let p = render(&plan(Scheduler::Rr, &[1, 1], true));
    assert!(p.contains("numgen inc mod 2 vmap { 0 : goto svc0_ep0, 1 : goto svc0_ep1 }"));
    assert!(p.contains("meta l4proto tcp dnat to 192.168.10.10:80"));
    assert!(p.contains("meta l4proto tcp dnat to 192.168.10.11:80"));
    assert!(s.contains("type nat hook prerouting priority dstnat"));
    assert!(s.contains("type nat hook output priority -100"));
    assert!(s.contains("192.168.1.120 . tcp . 80 : goto svc0"));
    assert!(!s.contains("masquerade"));
}

#[test]
fn wrr_expands_interleaved_slots() {
    let s = render(&plan(Scheduler::Wrr, &[3, 1], false));
    assert!(
        s.contains(
            "numgen inc mod 4 map { 0-1 : 192.168.10.10, 2 : 192.168.10.11, 3 : 192.168.10.10 }"
        ),
        "{s}"
    );
}

#[test]
fn sh_uses_jhash_over_a_maglev_table() {
    let s = render(&plan(Scheduler::Sh, &[1, 1], false));
    assert!(s.contains("dnat ip to jhash ip saddr mod 251 seed"), "{s}");
    let p = render(&plan(Scheduler::Sh, &[1, 1], true));
    assert!(p.contains("jhash ip saddr mod 251 seed"), "{p}");
    assert!(p.contains(": goto svc0_ep1"), "{p}");
}

#[test]
fn persistence_sets_and_updates() {
    let s = render(&plan(Scheduler::Rr, &[1, 1], true));
    assert!(s.contains(
        "set aff_www3_192_168_10_10_80_300 { type ipv4_addr; flags dynamic,timeout; timeout 300s;"
    ));
    assert!(s.contains("ip saddr @aff_www3_192_168_10_11_80_300 goto svc0_ep1"));
    assert!(s.contains("update @aff_www3_192_168_10_10_80_300 { ip saddr }"));
}

#[test]
fn withdrawn_and_proxy_services_get_no_rules() {
    let mut d = plan(Scheduler::Rr, &[1, 1], false);
    d.services[0].mode = Mode::Withdrawn;
    d.services[0].targets.clear();
    d.services[0].pool.clear();
    assert_eq!(
        render(&d),
        "table ip lbd\ndelete table ip lbd\ntable ip lbd {\n}\n"
    );
    // A withdrawn service with a pool: no DNAT, but its established connections are still
    // counted.
    let mut d = plan(Scheduler::Rr, &[1, 1], false);
    d.services[0].mode = Mode::Withdrawn;
    d.services[0].pool = std::mem::take(&mut d.services[0].targets);
    let w = render(&d);
    assert!(
        !w.contains("dnat ip to") && !w.contains("chain svc0"),
        "{w}"
    );
    assert!(w.contains("chain acct_bytes {"), "{w}");
    let mut d = plan(Scheduler::Rr, &[1, 1], false);
    d.services[0].dataplane = Dataplane::Proxy;
    assert!(!render(&d).contains("chain"));
}

#[test]
fn update_flushes_keeps_sets_and_deletes_what_vanished() {
    let a = build(&plan(Scheduler::Rr, &[1, 1], true));
    let mut d = plan(Scheduler::Rr, &[1, 1], true);
    d.services[0].targets.remove(0);
    let b = build(&d);
    let s = script(Some(&a), &b);
    assert!(s.starts_with("flush table ip lbd\n"), "{s}");
    assert!(s.contains("\ntable ip lbd {\n"), "{s}");
    assert!(!s.contains("delete table"), "{s}");
    assert!(s.contains("delete chain ip lbd svc0_ep1\n"), "{s}");
    assert!(
        s.contains("delete set ip lbd aff_www3_192_168_10_10_80_300\n"),
        "{s}"
    );
    // The surviving backend keeps its set (same name).
    assert!(s.contains("set aff_www3_192_168_10_11_80_300 {"), "{s}");
}

#[test]
fn one_backend_is_a_plain_goto() {
    let s = render(&plan(Scheduler::Rr, &[1], false));
    assert!(
        s.contains("  chain svc0 {\n    meta l4proto tcp dnat to 192.168.10.10:80\n  }"),
        "{s}"
    );
    let p = render(&plan(Scheduler::Rr, &[1], true));
    assert!(p.contains("    goto svc0_ep0\n"), "{p}");
}

#[test]
fn without_byte_counters_no_rule_sees_every_packet() {
    let mut d = plan(Scheduler::Rr, &[1, 1], false);
    d.services[0].byte_counters = false;
    let r = build(&d);
    let s = &r.body;
    // Connections still counted (nat chains: first packet only) ...
    assert_eq!(r.counters.len(), 2, "{s}");
    assert!(
        r.counters
            .values()
            .all(|k| k.kind == CounterKind::Connections),
        "{s}"
    );
    assert!(s.contains("chain acct_conns {"), "{s}");
    // ... and no filter chain, map or counter for bytes.
    assert!(!s.contains("acct_bytes"), "{s}");
    assert!(!s.contains("map bytes_"), "{s}");
    assert!(!s.contains("type filter"), "{s}");
    assert!(!r.maps.contains("bytes_tcp"), "{s}");
}

#[test]
fn counters_per_backend_and_the_chains_that_feed_them() {
    let r = build(&plan(Scheduler::Rr, &[1, 1], false));
    let s = &r.body;
    assert_eq!(r.counters.len(), 6, "{s}");
    let conns = CounterKey {
        service: "www3".into(),
        backend: "192.168.10.10:80".parse().unwrap(),
        kind: CounterKind::Connections,
    };
    assert_eq!(counter_name(&conns), "c_www3__192_168_10_10_80_conns");
    assert_eq!(r.counters["c_www3__192_168_10_10_80_conns"], conns);
    assert!(
        s.contains("  counter c_www3__192_168_10_11_80_from { }\n"),
        "{s}"
    );
    assert!(
        s.contains(
            "map conns_tcp { type ipv4_addr . inet_service . ipv4_addr . inet_service : counter; elements = { 192.168.1.120 . 80 . 192.168.10.10 . 80 : \"c_www3__192_168_10_10_80_conns\", 192.168.1.120 . 80 . 192.168.10.11 . 80 : \"c_www3__192_168_10_11_80_conns\" } }"
        ),
        "{s}"
    );
    assert!(
        s.contains("192.168.1.120 . 80 . 192.168.10.10 . 80 . original : \"c_www3__192_168_10_10_80_to\", 192.168.1.120 . 80 . 192.168.10.10 . 80 . reply : \"c_www3__192_168_10_10_80_from\""),
        "{s}"
    );
    // Connections: once per new conntrack entry (nat chains), before srcnat.
    assert!(
        s.contains("chain acct_conns {\n    type nat hook postrouting priority 99; policy accept;\n    meta l4proto tcp ct status dnat counter name ct original ip daddr . ct original proto-dst . ct reply ip saddr . ct reply proto-src map @conns_tcp\n  }"),
        "{s}"
    );
    assert!(s.contains("type nat hook input priority 99;"), "{s}");
    assert!(
        s.contains("chain acct_bytes_in {\n    type filter hook input priority 0; policy accept;\n    meta l4proto tcp iif != \"lo\" ct status dnat counter name"),
        "{s}"
    );
    // Bytes: every packet, one lookup, keyed with the direction.
    assert!(
        s.contains("chain acct_bytes {\n    type filter hook postrouting priority 0; policy accept;\n    meta l4proto tcp ct status dnat counter name ct original ip daddr . ct original proto-dst . ct reply ip saddr . ct reply proto-src . ct direction map @bytes_tcp\n  }"),
        "{s}"
    );
    assert!(!s.contains("udp"), "{s}");
    // Service names that differ only in punctuation get distinct counters.
    let a = CounterKey {
        service: "a-b".into(),
        ..conns.clone()
    };
    let b = CounterKey {
        service: "a_b".into(),
        ..conns
    };
    assert_eq!(counter_name(&a), "c_a_2db__192_168_10_10_80_conns");
    assert_ne!(counter_name(&a), counter_name(&b));
    // Pool members that are down keep their counters (their connections still flow).
    let mut d = plan(Scheduler::Rr, &[1, 1], false);
    d.services[0].pool = d.services[0].targets.clone();
    d.services[0].targets.remove(0);
    assert_eq!(build(&d).counters.len(), 6);
    // Drained (weight 0, so neither target nor pool) and the sorry server after the service
    // went live again: counter objects and byte-map elements stay while configured.
    let mut d = plan(Scheduler::Rr, &[1], false);
    d.services[0].counted = vec![
        "192.168.10.10:80".parse().unwrap(),
        "192.168.10.11:80".parse().unwrap(),
        "192.168.10.99:8080".parse().unwrap(),
    ];
    let r = build(&d);
    assert_eq!(r.counters.len(), 9, "{}", r.body);
    for (b, name) in [
        ("192.168.10.11 . 80", "192_168_10_11_80"),
        ("192.168.10.99 . 8080", "192_168_10_99_8080"),
    ] {
        assert!(
            r.body.contains(&format!(
                "192.168.1.120 . 80 . {b} . original : \"c_www3__{name}_to\", 192.168.1.120 . 80 . {b} . reply : \"c_www3__{name}_from\""
            )),
            "{}",
            r.body
        );
        assert!(
            r.body.contains(&format!(
                "192.168.1.120 . 80 . {b} : \"c_www3__{name}_conns\""
            )),
            "{}",
            r.body
        );
    }
    // ... but get no new connections.
    assert!(
        r.body
            .contains("  chain svc0 {\n    meta l4proto tcp dnat to 192.168.10.10:80\n  }"),
        "{}",
        r.body
    );
    // A drained backend that returns keeps its counters: nothing is deleted.
    let mut back = d.clone();
    back.services[0].targets.push(Target {
        name: "web2".into(),
        addr: "192.168.10.11:80".parse().unwrap(),
        weight: 1,
    });
    let s = script(Some(&r), &build(&back));
    assert!(!s.contains("delete counter"), "{s}");
    // Proxy services are not counted here.
    d.services[0].dataplane = Dataplane::Proxy;
    assert!(build(&d).counters.is_empty());
}

#[test]
fn update_refills_counter_maps_and_deletes_vanished_counters_last() {
    let a = build(&plan(Scheduler::Rr, &[1, 1], false));
    let mut d = plan(Scheduler::Rr, &[1, 1], false);
    d.services[0].targets.remove(0);
    let b = build(&d);
    let s = script(Some(&a), &b);
    assert!(
        s.starts_with(
            "flush table ip lbd\nflush map ip lbd bytes_tcp\nflush map ip lbd conns_tcp\ntable ip lbd {\n"
        ),
        "{s}"
    );
    // Kept backend: its counters are redeclared (which leaves their values alone).
    assert!(s.contains("counter c_www3__192_168_10_11_80_to { }"), "{s}");
    let tail = s.split("\n}\n").nth(1).unwrap();
    assert_eq!(
        tail,
        "delete counter ip lbd c_www3__192_168_10_10_80_conns\n\
         delete counter ip lbd c_www3__192_168_10_10_80_from\n\
         delete counter ip lbd c_www3__192_168_10_10_80_to\n",
        "{s}"
    );
    // Everything gone (e.g. backup): maps deleted before their counters.
    let s = script(Some(&a), &build(&Desired::default()));
    let maps = s.find("delete map ip lbd conns_tcp").unwrap();
    let counters = s.find("delete counter").unwrap();
    assert!(maps < counters, "{s}");
}

#[test]
fn counters_parsed_from_nft_json() {
    let json = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
        {"counter": {"family": "ip", "name": "c_www3__192_168_10_10_80_conns", "table": "lbd", "handle": 1, "packets": 4, "bytes": 240}},
        {"counter": {"family": "ip", "name": "other", "table": "filter", "handle": 2, "packets": 9, "bytes": 9}}]}"#;
    let m = parse_counters(json).unwrap();
    assert_eq!(m.len(), 1);
    let v = m["c_www3__192_168_10_10_80_conns"];
    assert_eq!(v.of(CounterKind::Connections), 4);
    assert_eq!(v.of(CounterKind::ToBackend), 240);
    assert!(parse_counters("nft: error").is_err());
    let bad = r#"{"nftables": [{"counter": {"family": "ip", "table": "lbd", "name": "x"}}]}"#;
    assert!(
        parse_counters(bad)
            .unwrap_err()
            .to_string()
            .contains("without")
    );
}

// `sh` stands in for nft: `sh -f -` runs the script it is fed on stdin (no executable is
// written at run time, so no ETXTBSY race with other tests' forks).

#[test]
fn a_hanging_nft_is_killed_at_the_deadline() {
    // `exec`: the shell becomes the sleeper, so killing the child ends the hang.
    let t = Instant::now();
    let e = apply_within("/bin/sh", "exec sleep 30\n", Duration::from_millis(300)).unwrap_err();
    let took = t.elapsed();
    assert!(matches!(e, NftError::TimedOut(_)), "{e}");
    assert!(e.to_string().contains("previous ruleset stays"), "{e}");
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_secs(5), "not killed: {took:?}");
    // The same with a script too large for a pipe, fed to a child that stops reading it.
    let big = format!("exec sleep 30\n{}", "#".repeat(1 << 20));
    let e = apply_within("/bin/sh", &big, Duration::from_millis(300)).unwrap_err();
    assert!(matches!(e, NftError::TimedOut(_)), "{e}");
}

#[test]
fn nft_status_and_message_are_collected() {
    let script = "echo 'Error: no such table' >&2; exit 1\n";
    let e = apply_within("/bin/sh", script, Duration::from_secs(5)).unwrap_err();
    assert!(matches!(e, NftError::Refused(_)), "{e}");
    assert!(e.to_string().contains("Error: no such table"), "{e}");
    apply_within("/bin/sh", "exit 0\n", Duration::from_secs(5)).unwrap();
}

#[test]
fn missing_nft_is_named() {
    let e = apply("/nonexistent/nft", "").unwrap_err();
    assert!(matches!(e, NftError::Missing(_)));
    assert!(e.to_string().contains("nftables"), "{e}");
}

/// `plan` with the VIP fd00:1::120 and the backends fd00:10::10... on port 80.
fn plan6(scheduler: Scheduler, weights: &[u32], persistence: bool) -> Desired {
    let mut d = plan(scheduler, weights, persistence);
    d.vips.clear();
    let s = &mut d.services[0];
    s.vip = "fd00:1::120".parse().unwrap();
    for (i, t) in s.targets.iter_mut().enumerate() {
        t.addr = format!("[fd00:10::{}]:80", 10 + i).parse().unwrap();
    }
    s.pool = s.targets.clone();
    d
}

#[test]
fn ipv6_services_get_their_own_table_with_the_same_shapes() {
    let d = plan6(Scheduler::Rr, &[1, 1], false);
    let r = build(&d);
    assert!(r.body.is_empty() && r.chains.is_empty(), "{}", r.body);
    let b = &r.v6.body;
    assert!(
        b.contains("dnat ip6 to numgen inc mod 2 map { 0 : fd00:10::10, 1 : fd00:10::11 }"),
        "{b}"
    );
    assert!(
        b.contains(
            "ip6 daddr . meta l4proto . th dport vmap { fd00:1::120 . tcp . 80 : goto svc0 }"
        ),
        "{b}"
    );
    assert!(
        b.contains(
            "map conns_tcp { type ipv6_addr . inet_service . ipv6_addr . inet_service : counter;"
        ),
        "{b}"
    );
    assert!(b.contains("ct original ip6 daddr"), "{b}");
    assert!(
        r.counters
            .contains_key("c_www3__6_fd00_10_0_0_0_0_0_10_80_conns")
    );
    // Persistence and sh: ip6 saddr sets and jhash over the source.
    let p = build(&plan6(Scheduler::Sh, &[1, 1], true)).v6.body;
    assert!(p.contains("jhash ip6 saddr mod"), "{p}");
    assert!(
        p.contains(
            "set aff_www3_fd00_10_0_0_0_0_0_11_80_300 { type ipv6_addr; flags dynamic,timeout;"
        ),
        "{p}"
    );
    assert!(
        p.contains("update @aff_www3_fd00_10_0_0_0_0_0_10_80_300 { ip6 saddr }"),
        "{p}"
    );
    assert!(
        p.contains("meta l4proto tcp dnat to [fd00:10::10]:80"),
        "{p}"
    );
    // One backend on another port: `[ADDR]:PORT`.
    let mut one = plan6(Scheduler::Rr, &[1], false);
    one.services[0].targets[0].addr = "[fd00:10::10]:8080".parse().unwrap();
    let o = build(&one).v6.body;
    assert!(
        o.contains("meta l4proto tcp dnat to [fd00:10::10]:8080"),
        "{o}"
    );
}

#[test]
fn the_ipv6_table_comes_and_goes_with_its_services() {
    let v4 = build(&plan(Scheduler::Rr, &[1, 1], false));
    let v6 = build(&plan6(Scheduler::Rr, &[1, 1], false));
    // From nothing: no IPv6 table mentioned without IPv6 services.
    assert!(!script(None, &v4).contains("ip6"));
    let up = script(Some(&v4), &v6);
    assert!(
        up.contains("table ip6 lbd\ndelete table ip6 lbd\ntable ip6 lbd {\n"),
        "{up}"
    );
    // Kept: flushed and refilled like the IPv4 table, its counters deleted in it.
    let mut fewer = plan6(Scheduler::Rr, &[1], false);
    fewer.services[0].pool.truncate(1);
    let f = script(Some(&v6), &build(&fewer));
    assert!(f.contains("flush table ip6 lbd"), "{f}");
    assert!(
        f.contains("delete counter ip6 lbd c_www3__6_fd00_10_0_0_0_0_0_11_80_conns"),
        "{f}"
    );
    assert!(!f.contains("delete counter ip lbd"), "{f}");
    // Gone: the table is deleted.
    let down = script(Some(&v6), &v4);
    assert!(
        down.ends_with("table ip6 lbd\ndelete table ip6 lbd\n"),
        "{down}"
    );
    assert!(render_delete().contains("delete table ip6 lbd"));
}

#[test]
fn counters_of_both_tables_are_read() {
    let json = r#"{"nftables": [
        {"counter": {"family": "ip", "name": "a", "table": "lbd", "packets": 1, "bytes": 10}},
        {"counter": {"family": "ip6", "name": "b", "table": "lbd", "packets": 2, "bytes": 20}},
        {"counter": {"family": "inet", "name": "c", "table": "lbd", "packets": 3, "bytes": 30}},
        {"counter": {"family": "ip6", "name": "d", "table": "other", "packets": 4, "bytes": 40}}
    ]}"#;
    let c = parse_counters(json).unwrap();
    assert_eq!(c.keys().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(c["b"].bytes, 20);
}
