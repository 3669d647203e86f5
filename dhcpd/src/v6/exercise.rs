//! One datagram through everything the v6 server does with it, without sockets: relay unwrap,
//! decode, decide (with and without a subnet for the link, before and after the clock's end),
//! apply the changes, encode and wrap the reply, and decode that again. The fuzz target
//! (`fuzz/dhcpd/fuzz_targets/decode6.rs`) and a bounded random test both call it; it panics
//! only on a broken promise.

use std::sync::OnceLock;

use dhcproto::v6::Message;
use dhcproto::{Decodable, Decoder, Encodable};
use hostfile::DhcpView;

use super::decide::{Ctx, decide};
use super::lease::Leases6;
use super::relay;

/// A subnet with an address pool, a prefix-delegation pool, Rapid Commit, and reservations by
/// DUID and by MAC, so that every path of the core is reachable.
const HOSTS: &str = r#"domain = "lan.test"
[[subnet]]
network = "10.9.0.0/24"
[[subnet]]
name = "lan6"
network = "fd00:9::/64"
dns = ["fd00:9::1"]
search = ["lan.test"]
ntp = ["fd00:9::2"]
rapid-commit = true
[[subnet.pool]]
range = "fd00:9::100-fd00:9::1ff"
[[subnet.pd-pool]]
prefix = "fd00:900::/48"
delegated-length = 56
[host.a]
ip = "10.9.0.5"
ipv6 = "fd00:9::5"
duid = "00:03:00:01:02:00:00:00:00:01"
[host.b]
ip = "10.9.0.6"
mac = "02:00:00:00:00:06"
ipv6 = "fd00:9::6"
"#;

fn view() -> &'static DhcpView {
    static V: OnceLock<DhcpView> = OnceLock::new();
    V.get_or_init(|| {
        hostfile::HostTable::from_toml(HOSTS)
            .expect("the exercise host file is valid")
            .dhcp_view()
    })
}

const SERVER_DUID: &[u8] = &[0, 4, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9];

/// Runs `data` through the v6 path. Returns whether some decision answered it (so callers can
/// check their inputs reach the core).
pub fn exercise(data: &[u8]) -> bool {
    let Ok((hops, inner)) = relay::unwrap(data) else {
        return false;
    };
    let Ok(msg) = super::decode::parse(inner) else {
        return false;
    };
    let v = view();
    let ctx = Ctx {
        subnets: &v.subnets6,
        reservations: &v.reservations6,
        server_duid: SERVER_DUID,
        decline_probation: 3600,
        client_mac: relay::client_mac(&hops),
    };
    let _ = relay::client_link(&hops);
    let mut leases = Leases6::new();
    let mut answered = false;
    for (link, now) in [
        (Some(0), 1_000_000u64),
        (None, 1_000_000),
        (Some(0), u64::MAX - 1),
    ] {
        // Twice: the second pass sees the first one's bindings.
        for _ in 0..2 {
            let out = decide(&ctx, link, &leases, &msg, now);
            for c in &out.changes {
                leases.apply(c);
            }
            let _ = leases.expired(now);
            if let Some(r) = out.reply {
                answered = true;
                let b = r.to_vec().expect("every reply encodes");
                let back = Message::decode(&mut Decoder::new(&b)).expect("every reply decodes");
                assert_eq!(back.msg_type(), r.msg_type());
                let len = b.len();
                let wrapped = relay::wrap(&hops, b);
                // One RELAY-REPL header (34 octets) and Relay Message option (4) per relay.
                assert!(wrapped.len() >= len + 38 * hops.len());
                if !hops.is_empty() {
                    assert_eq!(wrapped[0], relay::RELAY_REPL);
                }
            }
        }
    }
    answered
}

#[cfg(test)]
mod tests {
    use super::exercise;

    /// xorshift64*: a fixed seed, so a failure names its input and reproduces.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// The fuzz target's seed corpus: every seed must reach the decision core.
    fn seeds() -> Vec<(String, Vec<u8>)> {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/dhcpd/corpus/decode6");
        let mut out: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("seed-"))
            })
            .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn the_seed_corpus_reaches_the_core() {
        let seeds = seeds();
        assert!(seeds.len() >= 5, "{seeds:?}");
        for (name, bytes) in &seeds {
            assert!(exercise(bytes), "{name} got no answer");
        }
    }

    /// A bounded random corpus through the fuzz target's path (so CI exercises it without
    /// cargo-fuzz): random bytes, and the seeds with random bytes changed, cut, or spliced.
    #[test]
    fn a_bounded_random_corpus_never_panics() {
        let seeds = seeds();
        let mut rng = Rng(0x6d68_6370_3664_6563);
        let mut answered = 0;
        for i in 0..10_000 {
            let mut b: Vec<u8> = if i % 4 == 0 {
                let n = rng.below(200);
                (0..n).map(|_| rng.next() as u8).collect()
            } else {
                seeds[rng.below(seeds.len())].1.clone()
            };
            if i % 4 != 0 {
                for _ in 0..=rng.below(4) {
                    match rng.below(4) {
                        0 if !b.is_empty() => {
                            let at = rng.below(b.len());
                            b[at] = rng.next() as u8;
                        }
                        1 if !b.is_empty() => b.truncate(rng.below(b.len())),
                        2 => {
                            let other = &seeds[rng.below(seeds.len())].1;
                            let at = rng.below(other.len());
                            b.extend_from_slice(&other[at..]);
                        }
                        _ => {
                            // A length field (octets 2-3 of an option) set to something odd.
                            if b.len() > 8 {
                                let at = 4 + rng.below(b.len() - 6);
                                b[at] = [0, 0xff, 1][rng.below(3)];
                            }
                        }
                    }
                }
            }
            let r = std::panic::catch_unwind(|| exercise(&b));
            match r {
                Ok(a) => answered += usize::from(a),
                Err(_) => panic!("input {i} panicked: {b:02x?}"),
            }
        }
        // The mutations still reach the decision core often enough to test it.
        assert!(answered > 1000, "only {answered} inputs were answered");
    }
}
