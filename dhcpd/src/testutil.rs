//! Test fixtures: the example host file's view.

use std::sync::Arc;

use crate::index::ViewIndex;

/// The example host file (subnet 0 = outer, 1 = inner).
pub(crate) fn config() -> ViewIndex {
    let t = hostfile::HostTable::from_toml(include_str!("../../etc/hosts.toml")).expect("example");
    ViewIndex::new(Arc::new(t.dhcp_view()))
}

/// Asserts that the rendered metrics `text` holds, for each `(what, range, n)`, the line
/// `{prefix}{what}_addresses{range="{range}"} {n}` (a pool gauge).
pub(crate) fn assert_pool_gauges(text: &str, prefix: &str, rows: &[(&str, &str, i64)]) {
    for (what, range, n) in rows {
        let line = format!("{prefix}{what}_addresses{{range=\"{range}\"}} {n}");
        assert!(text.contains(&line), "{line} not in\n{text}");
    }
}
