//! Any datagram: decode, then decide as the server would on the inner LAN's interface and on a
//! relay path, then apply the changes and build every dynamic DNS message the decision asks for.
//! Nothing may panic.
#![no_main]

use std::sync::{Arc, OnceLock};

use dhcpd::decode;
use dhcpd::index::ViewIndex;
use dhcpd::ddns::{Step, Updater};
use dhcpd::decide::{self, Rx};
use dhcpd::lease::LeaseTable;
use libfuzzer_sys::fuzz_target;

fn config() -> &'static ViewIndex {
    static C: OnceLock<ViewIndex> = OnceLock::new();
    C.get_or_init(|| {
        let t = hostfile::HostTable::from_toml(include_str!("../../../etc/hosts.toml"))
            .expect("example host file");
        ViewIndex::new(Arc::new(t.dhcp_view()))
    })
}

fn updater() -> &'static Updater {
    static U: OnceLock<Updater> = OnceLock::new();
    U.get_or_init(|| Updater::new(config().view.ddns.as_ref().expect("ddns")).expect("updater"))
}

const STEPS: [Step; 6] = [
    Step::AddNew,
    Step::Replace,
    Step::AddPtr,
    Step::RemoveA,
    Step::RemoveDhcid,
    Step::RemovePtr,
];

fuzz_target!(|data: &[u8]| {
    // Never panics, whatever the bytes; agrees with the decoder on whether there is an option 53
    // (also when it sits in an overloaded `file` or `sname`).
    let peeked = decode::peek_type(data);
    let Ok(msg) = decode::parse(data) else {
        return;
    };
    assert_eq!(peeked.is_some(), msg.opts().msg_type().is_some());
    let cfg = config();
    let mut table = LeaseTable::new();
    let addrs = ["192.168.10.1/24".parse().unwrap()];
    // Both before and after the clock's end, and with the shared lease database unreachable.
    for (now, offline) in [
        (1_000_000u64, false),
        (u64::MAX - 1, false),
        (1_000_000, true),
    ] {
        let rx = Rx {
            iface: "p10p1",
            addrs: &addrs,
            now,
            offline,
        };
        let d = decide::handle(cfg, &table, &msg, &rx);
        if let Some(r) = &d.reply {
            // Every reply must itself decode.
            assert!(r.bytes.len() >= 300);
        }
        for c in &d.changes {
            table.apply(c);
        }
        // Host names come from the client: every update message must build and encode.
        for a in &d.dns {
            for step in STEPS {
                if let Ok(Some(m)) = updater().message_for(a, step) {
                    m.to_vec().expect("update message encodes");
                }
            }
        }
        // A second pass sees the first one's lease.
        let _ = decide::handle(cfg, &table, &msg, &rx);
    }
});
