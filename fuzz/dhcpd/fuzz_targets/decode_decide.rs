//! Any datagram: decode, then decide as the server would on the inner LAN's interface and on a
//! relay path, then apply the changes. Nothing may panic.
#![no_main]

use std::sync::{Arc, OnceLock};

use dhcpd::config::Config;
use dhcpd::decide::{self, Rx};
use dhcpd::lease::LeaseTable;
use libfuzzer_sys::fuzz_target;

fn config() -> &'static Config {
    static C: OnceLock<Config> = OnceLock::new();
    C.get_or_init(|| {
        let t = shared::HostTable::from_toml(include_str!("../../../etc/hosts.toml"))
            .expect("example host file");
        Config::new(Arc::new(t.dhcp_view()))
    })
}

fuzz_target!(|data: &[u8]| {
    // Never panics, whatever the bytes; agrees with the decoder on whether there is an option 53
    // (also when it sits in an overloaded `file` or `sname`).
    let peeked = decide::peek_type(data);
    let Ok(msg) = decide::parse(data) else {
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
        // A second pass sees the first one's lease.
        let _ = decide::handle(cfg, &table, &msg, &rx);
    }
});
