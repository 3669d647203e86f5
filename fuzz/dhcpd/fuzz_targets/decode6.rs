//! Any datagram to the DHCPv6 port: relay unwrap, decode, decide (with and without a subnet for
//! the link, before and after the clock's end), apply, encode and wrap the reply. Nothing may
//! panic. The same path runs under `cargo test -p dhcpd` on a bounded random corpus
//! (`dhcpd::v6::exercise`); the seeds are in `corpus/decode6`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = dhcpd::v6::exercise::exercise(data);
});
