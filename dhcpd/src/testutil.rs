//! Test fixtures: the example host file's view.

use std::sync::Arc;

use crate::index::ViewIndex;

/// The example host file (subnet 0 = outer, 1 = inner).
pub(crate) fn config() -> ViewIndex {
    let t = hostfile::HostTable::from_toml(include_str!("../../etc/hosts.toml")).expect("example");
    ViewIndex::new(Arc::new(t.dhcp_view()))
}
