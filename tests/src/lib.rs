//! End-to-end test harness for the LAN suite.
//!
//! Hosts are Linux network namespaces created with `ip` (iproute2); links are veth
//! pairs and bridges; the real daemons and the real clients (`dig`, `dhclient`,
//! `curl`, ...) run inside them. Everything a test creates is torn down in `Drop`,
//! also when the test panics, and a per-process watchdog aborts a hung test after
//! tearing everything down, so neither namespaces nor processes outlive the test.
//!
//! ```no_run
//! use std::time::Duration;
//! use e2e::{Ready, SeedLan, bin_path};
//!
//! e2e::require_netns!("dig");
//! let lan = SeedLan::build("dns");
//! let conf = lan.lab.dir().join("hosts.toml");
//! let _dnsd = lan.main.spawn_daemon(
//!     bin_path("dnsd"),
//!     &["--config", conf.to_str().unwrap()],
//!     Ready::Notify,
//!     Duration::from_secs(10),
//! );
//! lan.web1.run(&["dig", "@192.168.10.1", "www3.it-ishin.com"]);
//! ```
//!
//! Why namespaces driven by the `ip` CLI rather than netlink from Rust: the tests
//! must not depend on the code under test (lbd's netlink applier), and the `ip`
//! commands are what an operator would type, so a failing setup step is easy to
//! reproduce by hand.

mod bin;
pub mod browser;
pub mod cdp;
mod exec;
mod lab;
mod notify;
mod ports;
mod process;
pub mod procstatus;
mod registry;
mod seed;
mod skip;
pub mod suite;

pub use bin::{bin_path, try_bin_path};
pub use exec::{DEFAULT_RUN_TIMEOUT, RunError};
pub use lab::{Host, Lab, list_netns, netns_with_prefix};
pub use ports::Proto;
pub use process::{LogCursor, Proc, Ready, Spawn, SpawnError};
pub use registry::{DEFAULT_TEST_TIMEOUT, sweep_stale_namespaces};
pub use seed::SeedLan;
/// Addresses, MACs and interface names of the seed LAN.
pub mod addrs {
    pub use crate::seed::{
        CLIENT_MAC, DB, DB_MAC, HOST_IF, INNER_BRIDGE, MAIN_INNER, MAIN_INNER_IF, MAIN_OUTER,
        MAIN_OUTER_IF, OUTSIDE, ROUTER, VIP, WEB1, WEB1_MAC, WEB2, WEB2_MAC,
    };
}
pub use skip::{missing_tools, netns_unavailable, skip_or_fail};

/// Skip the calling test (with a printed reason) unless network namespaces can be
/// used here: root, and `ip` on the PATH. Extra arguments name further programs the
/// test needs (`require_netns!("dig", "dhclient")`).
///
/// With `CI` or `E2E_STRICT` set in the environment, a missing prerequisite fails
/// the test instead: a CI run must never pass by skipping.
#[macro_export]
macro_rules! require_netns {
    ($($tool:expr),* $(,)?) => {
        if let ::std::option::Option::Some(why) = $crate::netns_unavailable()
            .or_else(|| $crate::missing_tools(&[$($tool),*]))
        {
            $crate::skip_or_fail(concat!(module_path!(), ":", line!()), &why);
            return;
        }
    };
}
