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
    let Ok(msg) = decide::parse(data) else {
        return;
    };
    let cfg = config();
    let mut table = LeaseTable::new();
    let addrs = ["192.168.10.1/24".parse().unwrap()];
    for now in [1_000_000u64, u64::MAX - 1] {
        let rx = Rx {
            iface: "p10p1",
            addrs: &addrs,
            now,
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
