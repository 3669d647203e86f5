//! The whole request path on arbitrary bytes: decode, TSIG check, lookup, update prescan and
//! apply, AXFR build, and the encoding of every reply. Nothing may panic or hang. Whenever the
//! fast path answers, the general path must give the same message (differential check).
#![no_main]

use std::sync::{Arc, OnceLock};

use dnsd::handler::{Decision, Transport, handle};
use dnsd::policy::Policy;
use dnsd::stats::Stats;
use libfuzzer_sys::fuzz_target;

fn policy() -> &'static Policy {
    static P: OnceLock<Policy> = OnceLock::new();
    P.get_or_init(|| {
        let text = include_str!("../../../etc/hosts.toml");
        let t = hostfile::HostTable::from_toml(text).expect("example host file");
        let v = t.dns_view();
        dnsd::compile::policy_from_view(&v, 1).expect("zones")
    })
}

fuzz_target!(|data: &[u8]| {
    let p = policy();
    let stats = Stats::default();
    let mut out = Vec::new();
    let src: std::net::IpAddr = "192.168.10.10".parse().unwrap();
    if dnsd::fast::answer(&p.fast, data, &mut out, || p.may_recurse(src)) {
        let Decision::Reply(g) = handle(p, data, src, Transport::Udp, 1_700_000_000, &stats) else {
            panic!("fast path answered what the general path does not");
        };
        let f = hickory_proto::op::Message::from_vec(&out).expect("fast answer decodes");
        let g = hickory_proto::op::Message::from_vec(&g).expect("general answer decodes");
        assert_eq!(f.metadata, g.metadata);
        assert_eq!(f.queries, g.queries);
        assert_eq!(f.answers, g.answers);
        assert_eq!(f.authorities, g.authorities);
        assert_eq!(f.additionals, g.additionals);
        assert_eq!(f.edns.is_some(), g.edns.is_some());
    }
    for (src, tr) in [
        ("192.168.10.10", Transport::Udp),
        ("192.168.1.1", Transport::Tcp),
        ("203.0.113.1", Transport::Udp),
    ] {
        match handle(p, data, src.parse().unwrap(), tr, 1_700_000_000, &stats) {
            Decision::Reply(b) => {
                assert!(b.len() >= 12);
                let _ = hickory_check(&b);
            }
            Decision::Update(req, _) => {
                let z = p.catalog.find(&req.queries[0].name().to_lowercase());
                if let Some(z) = z {
                    let _ = dnsd::update::apply(z, &req);
                }
            }
            Decision::Transfer(z, req, t) => {
                let out = dnsd::transfer::transfer(&z, &req, t.as_ref(), &stats);
                assert!(!out.is_empty());
            }
            Decision::Forward(_) | Decision::Drop => {}
        }
    }
    let _ = Arc::strong_count(&p.catalog);
});

fn hickory_check(b: &[u8]) -> bool {
    // Our own replies must decode (dig and resolvers will read them).
    dnsd::message::decodes(b)
}
