//! The page's lease-store section: the embedded redb file, or the shared PostgreSQL database and
//! the pair's peer as far as this server can know it. The host file names no peer: the servers
//! of a pair only share the database. So the peer is what the database sees: the other dhcpd
//! servers connected to it now (`pg_stat_activity`, `application_name = 'dhcpd'`, from another
//! address than this server's own connection), with their address, host name when the server
//! logs them, since when they are connected and their last activity. None connected: the peer
//! is down or cannot reach the database (this server then serves alone, which the design
//! allows: every write is checked by the database).

use std::time::Duration;

use maud::{Markup, html};
use runtime::page::layout;

use super::PageSource;

/// How long the page waits for the database.
const TIMEOUT: Duration = Duration::from_secs(2);

/// The peers' table's columns.
const PEER_COLUMNS: [layout::Column; 5] = [
    ("Address", false),
    ("Host name", false),
    ("Connected since", false),
    ("Last activity", false),
    ("Connections", true),
];

/// The peers' query: other dhcpd servers (by their connection's address), oldest connection
/// and newest activity per address. Addresses equal to this session's own are this server.
const PEERS: &str = "SELECT host(client_addr), max(client_hostname), \
     extract(epoch FROM min(backend_start))::bigint, \
     extract(epoch FROM max(state_change))::bigint, count(*) \
     FROM pg_stat_activity \
     WHERE application_name = 'dhcpd' AND client_addr IS DISTINCT FROM inet_client_addr() \
     GROUP BY client_addr ORDER BY 1";

/// One other dhcpd connected to the shared database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Peer {
    /// Its address as the database sees it (`local` for a Unix socket).
    pub(super) addr: String,
    /// Its host name, when the database resolves client names.
    pub(super) name: Option<String>,
    /// Unix seconds: connected since, last activity.
    pub(super) since: i64,
    pub(super) active: i64,
    /// Connections it holds.
    pub(super) conns: i64,
}

/// Why the peers could not be read (shown on the page).
#[derive(Debug, thiserror::Error)]
pub(super) enum PeerError {
    /// The URL does not parse.
    #[error("bad PostgreSQL URL: {0}")]
    Url(String),
    /// Connecting or querying failed.
    #[error("{0}")]
    Db(#[from] postgres::Error),
}

/// The other dhcpd servers connected to the database at `url` now.
pub(super) fn peers(url: &str) -> Result<Vec<Peer>, PeerError> {
    let mut config: postgres::Config = url.parse().map_err(|e| PeerError::Url(format!("{e}")))?;
    config.connect_timeout(TIMEOUT);
    // Not `dhcpd`: the page's own look is not a server.
    config.application_name("dhcpd-page");
    let mut c = config.connect(postgres::NoTls)?;
    let rows = c.query(PEERS, &[])?;
    Ok(rows
        .iter()
        .map(|r| Peer {
            addr: r
                .get::<_, Option<String>>(0)
                .unwrap_or_else(|| "local".to_owned()),
            name: r.get(1),
            since: r.get::<_, Option<i64>>(2).unwrap_or(0),
            active: r.get::<_, Option<i64>>(3).unwrap_or(0),
            conns: r.get(4),
        })
        .collect())
}

fn show(t: i64) -> String {
    crate::leases::show_time(u64::try_from(t).unwrap_or(0))
}

/// The section.
pub(super) fn store(src: &PageSource) -> Markup {
    html! {
        section #store {
            h2 { "Lease store" }
            @match &src.url {
                Some(u) => {
                    p {
                        "PostgreSQL (shared) at " code { (crate::pgstore::redact(u)) }
                        ". Every dhcpd using this database serves the same leases; the host file names no peer."
                    }
                    (peer_list(peers(u)))
                }
                None => p { "redb at " code { (src.db.display().to_string()) } },
            }
        }
    }
}

/// The pair's peer(s) as the database reports them.
pub(super) fn peer_list(found: Result<Vec<Peer>, PeerError>) -> Markup {
    html! {
        h3 { "Peer" }
        @match found {
            Err(e) => p.bad #peer-state data-state="unknown" {
                "The database cannot be reached from here (" (e.to_string()) "): the peer's state is unknown."
            },
            Ok(list) if list.is_empty() => p.warn #peer-state data-state="none" {
                "No other dhcpd is connected to the database now: the peer is down or cannot reach it. This server serves alone."
            },
            Ok(list) => {
                p.ok #peer-state data-state="connected" {
                    (list.len()) " other dhcpd connected to the database (reachable through it):"
                }
                div.scroll { table #peers .stack {
                    (layout::head(&PEER_COLUMNS))
                    tbody {
                        @for p in &list {
                            @let c = |k| layout::label(&PEER_COLUMNS, k);
                            tr data-peer=(p.addr) {
                                td data-label=(c(0)) { (p.addr) }
                                td.wrap data-label=(c(1)) { (p.name.as_deref().unwrap_or("-")) }
                                td data-label=(c(2)) { (show(p.since)) }
                                td data-label=(c(3)) { (show(p.active)) }
                                td.num data-label=(c(4)) { (p.conns) }
                            }
                        }
                    }
                } }
            }
        }
    }
}
