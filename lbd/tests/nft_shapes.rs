//! Every ruleset shape lbd renders (rr, wrr, sh over a Maglev table, persistence, UDP, one
//! backend, sorry, many backends) is accepted by the real `nft` in a namespace, and an update
//! from each shape to the next applies as one transaction; the same for IPv6 services (the
//! `ip6 lbd` table beside `ip lbd`), alone and mixed with IPv4 ones.

use std::net::{Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::time::Duration;

use hostfile::{Dataplane, Protocol, Scheduler};
use lbd::desired::{Desired, Mode, ServicePlan, Target};
use lbd::nft;

fn plan(index: usize, s: Scheduler, n: usize, persist: bool, proto: Protocol) -> ServicePlan {
    ServicePlan {
        index,
        name: format!("svc-{index}"),
        vip: "192.168.1.120".parse().unwrap(),
        port: 80 + index as u16,
        protocol: proto,
        scheduler: s,
        dataplane: Dataplane::Kernel,
        // Both accounting shapes: bytes counted or not.
        byte_counters: !persist,
        persistence: persist.then(|| Duration::from_secs(60)),
        mode: Mode::Live,
        targets: (0..n)
            .map(|i| Target {
                name: format!("b{i}"),
                addr: SocketAddrV4::new([192, 168, 10, 10 + i as u8].into(), 8080).into(),
                weight: 1 + i as u32,
            })
            .collect(),
        pool: Vec::new(),
        counted: Vec::new(),
    }
}

#[test]
fn nft_accepts_every_shape_and_every_update() {
    e2e::require_netns!("nft");
    let lab = e2e::Lab::new("lbnft");
    let h = lab.host("lb");
    let shapes = vec![
        vec![plan(0, Scheduler::Rr, 2, false, Protocol::Tcp)],
        vec![plan(0, Scheduler::Wrr, 3, false, Protocol::Tcp)],
        vec![plan(0, Scheduler::Sh, 2, false, Protocol::Tcp)],
        vec![plan(0, Scheduler::Sh, 12, true, Protocol::Tcp)],
        vec![
            plan(0, Scheduler::Rr, 1, true, Protocol::Udp),
            plan(1, Scheduler::Wrr, 4, true, Protocol::Tcp),
        ],
        vec![plan(2, Scheduler::Rr, 50, false, Protocol::Tcp)],
        vec![],
    ];
    let mut prev: Option<nft::Ruleset> = None;
    for (i, services) in shapes.into_iter().enumerate() {
        let d = Desired {
            vips: vec![],
            vips6: vec![],
            services,
        };
        let next = nft::build(&d);
        let script = nft::script(prev.as_ref(), &next);
        let out = h
            .run_timeout(
                &["nft", "-f", "-"],
                Some(script.as_bytes()),
                Duration::from_secs(10),
            )
            .unwrap();
        assert!(
            out.status.success(),
            "shape {i} refused: {}\n{script}",
            String::from_utf8_lossy(&out.stderr)
        );
        let listed = h.run(&["nft", "list", "table", "ip", "lbd"]);
        let listed = String::from_utf8_lossy(&listed.stdout);
        for c in &next.chains {
            assert!(
                listed.contains(&format!("chain {c} {{")),
                "shape {i}: chain {c} missing\n{listed}"
            );
        }
        if let Some(p) = &prev {
            for c in p.chains.difference(&next.chains) {
                assert!(
                    !listed.contains(&format!("chain {c} {{")),
                    "shape {i}: stale chain {c}\n{listed}"
                );
            }
        }
        prev = Some(next);
    }
    // A refused script changes nothing: the table stays as it was.
    let before = h.run(&["nft", "list", "table", "ip", "lbd"]).stdout;
    let bad = "flush table ip lbd\ntable ip lbd {\n  chain x {\n    bogus syntax\n  }\n}\n";
    let out = h
        .run_timeout(
            &["nft", "-f", "-"],
            Some(bad.as_bytes()),
            Duration::from_secs(10),
        )
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(h.run(&["nft", "list", "table", "ip", "lbd"]).stdout, before);
}

/// An IPv6 plan: the VIP fd00:1::120, backends fd00:10::10... on port 8080.
fn plan6(index: usize, s: Scheduler, n: usize, persist: bool, proto: Protocol) -> ServicePlan {
    let mut p = plan(index, s, n, persist, proto);
    p.name = format!("svc6-{index}");
    p.vip = "fd00:1::120".parse().unwrap();
    for (i, t) in p.targets.iter_mut().enumerate() {
        let ip = Ipv6Addr::new(0xfd00, 0x10, 0, 0, 0, 0, 0, 0x10 + i as u16);
        t.addr = SocketAddr::V6(SocketAddrV6::new(ip, 8080, 0, 0));
    }
    p
}

#[test]
fn nft_accepts_every_ipv6_shape_and_every_update() {
    e2e::require_netns!("nft");
    let lab = e2e::Lab::new("lbnft6");
    let h = lab.host("lb");
    let mut same_port = plan6(3, Scheduler::Rr, 2, false, Protocol::Tcp);
    for t in &mut same_port.targets {
        t.addr.set_port(83);
    }
    let shapes = vec![
        vec![plan6(0, Scheduler::Rr, 2, false, Protocol::Tcp)],
        vec![plan6(0, Scheduler::Wrr, 3, false, Protocol::Tcp)],
        vec![plan6(0, Scheduler::Sh, 2, false, Protocol::Tcp)],
        vec![plan6(0, Scheduler::Sh, 12, true, Protocol::Tcp)],
        vec![
            plan(0, Scheduler::Rr, 2, false, Protocol::Tcp),
            plan6(1, Scheduler::Rr, 1, true, Protocol::Udp),
            plan6(2, Scheduler::Wrr, 4, true, Protocol::Tcp),
            same_port,
        ],
        vec![plan(0, Scheduler::Rr, 2, false, Protocol::Tcp)],
        vec![plan6(4, Scheduler::Rr, 20, false, Protocol::Udp)],
        vec![],
    ];
    let mut prev: Option<nft::Ruleset> = None;
    for (i, services) in shapes.into_iter().enumerate() {
        let d = Desired {
            vips: vec![],
            vips6: vec![],
            services,
        };
        let next = nft::build(&d);
        let script = nft::script(prev.as_ref(), &next);
        let out = h
            .run_timeout(
                &["nft", "-f", "-"],
                Some(script.as_bytes()),
                Duration::from_secs(10),
            )
            .unwrap();
        assert!(
            out.status.success(),
            "shape {i} refused: {}\n{script}",
            String::from_utf8_lossy(&out.stderr)
        );
        let listed = h
            .run_timeout(
                &["nft", "list", "table", "ip6", "lbd"],
                None,
                Duration::from_secs(10),
            )
            .unwrap();
        if next.v6.body.is_empty() {
            assert!(
                !listed.status.success(),
                "shape {i}: the ip6 table outlived its services\n{script}"
            );
        } else {
            let listed = String::from_utf8_lossy(&listed.stdout);
            for c in &next.v6.chains {
                assert!(
                    listed.contains(&format!("chain {c} {{")),
                    "shape {i}: chain {c} missing\n{listed}"
                );
            }
            assert!(
                listed.contains("ip6 daddr . meta l4proto . th dport vmap"),
                "{listed}"
            );
        }
        // The counters of both tables are read in one run and parsed.
        let json = h.run(&["nft", "-j", "list", "counters"]);
        let read = nft::parse_counters(&String::from_utf8_lossy(&json.stdout)).unwrap();
        for name in next.counters.keys() {
            assert!(
                read.contains_key(name),
                "shape {i}: counter {name} not read"
            );
        }
        prev = Some(next);
    }
}
