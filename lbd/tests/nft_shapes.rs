//! Every ruleset shape lbd renders (rr, wrr, sh over a Maglev table, persistence, UDP, one
//! backend, sorry, many backends) is accepted by the real `nft` in a namespace, and an update
//! from each shape to the next applies as one transaction.

use std::net::SocketAddrV4;
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
                addr: SocketAddrV4::new([192, 168, 10, 10 + i as u8].into(), 8080),
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
