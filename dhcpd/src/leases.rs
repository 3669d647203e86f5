//! The lease listing shared by `dhcpd leases` and the status page: where the rows come from,
//! which are "current", how times are shown, and one page of a search.

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use crate::lease::{Lease, LeaseState, NEVER, hex_colon};
use crate::store::{self, LeaseStore as _, StoreError};

/// Every lease record in the database at `path`, or in the shared database at `url` when one is
/// configured, sorted by address. One copy of the table: callers filter while iterating it.
pub fn load(path: &Path, url: Option<&str>) -> Result<Vec<Lease>, StoreError> {
    let mut rows = match url {
        Some(u) => crate::pgstore::PgStore::open(u)?.load()?,
        None => store::read_only(path)?,
    };
    rows.sort_by_key(|l| l.ip);
    Ok(rows)
}

/// What `dhcpd leases` shows without `--all`: bound and declined records.
pub fn is_current(l: &Lease) -> bool {
    matches!(l.state, LeaseState::Bound | LeaseState::Declined)
}

/// An expiry as RFC 3339 UTC seconds, or `never`.
pub fn show_time(t: u64) -> String {
    if t == NEVER {
        return "never".into();
    }
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(t)).to_string()
}

/// Which rows a page shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Searched (case-insensitive) in the address, MAC, client id and host name; empty: all.
    pub q: String,
    /// `None`: current leases (as `dhcpd leases`); `Some(None)`: every record; `Some(Some(s))`:
    /// records in state `s`.
    pub state: Option<Option<LeaseState>>,
}

impl Filter {
    /// Whether `l` is shown.
    pub fn matches(&self, l: &Lease) -> bool {
        let state_ok = match self.state {
            None => is_current(l),
            Some(None) => true,
            Some(Some(s)) => l.state == s,
        };
        state_ok && (self.q.is_empty() || self.text_matches(l))
    }

    fn text_matches(&self, l: &Lease) -> bool {
        let q = self.q.trim().to_ascii_lowercase().replace('-', ":");
        if q.is_empty() {
            return true;
        }
        let ip = l.ip.to_string();
        if q.parse::<Ipv4Addr>().is_ok() {
            return ip == q;
        }
        ip.contains(&q)
            || l.mac_string().contains(&q)
            || hex_colon(&l.client).contains(&q)
            || l.hostname
                .as_deref()
                .is_some_and(|h| h.to_ascii_lowercase().contains(&q))
    }
}

/// One page of matching rows.
#[derive(Clone, Debug, Default)]
pub struct LeasePage {
    /// The rows of the page (at most the page size).
    pub rows: Vec<Lease>,
    /// Whether more matching rows follow.
    pub more: bool,
}

/// Page `page` (from 1) of `per` rows of those in `rows` that `filter` keeps: matches are counted
/// while iterating, only the page's rows are kept, and the walk stops one match past the page.
pub fn page_of(
    rows: impl IntoIterator<Item = Lease>,
    filter: &Filter,
    page: usize,
    per: usize,
) -> LeasePage {
    let skip = page.saturating_sub(1).saturating_mul(per);
    let mut out = LeasePage::default();
    let mut seen = 0usize;
    for l in rows {
        if !filter.matches(&l) {
            continue;
        }
        seen += 1;
        if seen <= skip {
            continue;
        }
        if out.rows.len() == per {
            out.more = true;
            break;
        }
        out.rows.push(l);
    }
    out
}

#[cfg(test)]
mod tests;
