//! The shared PostgreSQL lease store (`[dhcp] lease-db = "postgresql://user@host/db"`), for
//! several dhcpd servers serving the same subnets.
//!
//! Safety between servers comes from the database, not from timing: one row per address (primary
//! key), and every write that hands an address to a client is an `INSERT .. ON CONFLICT DO UPDATE
//! .. WHERE` whose condition admits it only when the row is free (no row, time up, released or
//! expired) or already belongs to the same client. Offers are written too (state `offered`, 30 s),
//! so two servers with the same pools never offer one address to two clients. A write the
//! condition refuses affects no row: that group of changes is skipped and reported, with the
//! rows the database holds for it, so the server learns who won and chooses again.
//!
//! The schema is created and migrated by [`schema`] (`dhcpd_schema_version`), under an advisory
//! lock so two servers starting together do not race; it holds the DHCPv6 bindings too
//! (`dhcpd_lease6`, written by `crate::v6::pg` on a connection of its own).

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use postgres::{Client, NoTls, Row, Statement};

use crate::lease::{Change, KeySource, Lease, LeaseState, NEVER};
use crate::store::{LeaseStore, Refused, StoreError};

mod schema;

pub(crate) use self::schema::migrate;
pub use self::schema::{MIGRATIONS, SCHEMA_VERSION};

const COLS: &str =
    "address, client, hwaddr, hostname, starts, expires, state, modified, key_source";

const UPSERT: &str =
    "INSERT INTO dhcpd_lease AS l (address, client, hwaddr, hostname, starts, expires, state, key_source)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (address) DO UPDATE SET
         client = EXCLUDED.client, hwaddr = EXCLUDED.hwaddr, hostname = EXCLUDED.hostname,
         starts = EXCLUDED.starts, expires = EXCLUDED.expires, state = EXCLUDED.state,
         key_source = EXCLUDED.key_source, modified = nextval('dhcpd_lease_seq')";

/// Hands `address` to a client (offer or bind): only when free or already this client's. An
/// offer never downgrades the client's own live binding.
fn alloc_sql() -> String {
    format!(
        "{UPSERT} WHERE l.client = EXCLUDED.client AND NOT (EXCLUDED.state = 'offered' AND l.state = 'bound' AND l.expires > $9::bigint)
            OR l.expires <= $9::bigint OR l.state IN ('released', 'expired')"
    )
}

/// The client's own release: only while the row is still this client's.
fn release_sql() -> String {
    format!("{UPSERT} WHERE l.client = EXCLUDED.client")
}

/// Expiry seen by this server: only when the row is still the same client's and no one (this or
/// another server) extended it since.
fn expire_sql() -> String {
    format!(
        "{UPSERT} WHERE l.client = EXCLUDED.client AND l.state = 'bound' AND l.expires <= EXCLUDED.expires"
    )
}

/// Probation (DECLINE, ping answer): always.
fn decline_sql() -> String {
    UPSERT.to_owned()
}

/// Forgetting a stale offer or finished probation, never anything live.
const DELETE: &str = "DELETE FROM dhcpd_lease
     WHERE address = $1 AND state IN ('offered', 'declined') AND expires <= $2";

/// The client took another server's offer: our offer goes, whatever else the row became stays.
const WITHDRAW: &str =
    "DELETE FROM dhcpd_lease WHERE address = $1 AND client = $2 AND state = 'offered'";

/// Address lock buckets (at most this many advisory locks per transaction).
const LOCK_BUCKETS: u32 = 64;

/// Transaction-scoped locks on address buckets (class 7406), taken in the order given.
const LOCK: &str = "SELECT count(pg_advisory_xact_lock(7406, a))
     FROM (SELECT a FROM unnest($1::int4[]) WITH ORDINALITY AS u(a, n) ORDER BY n) s";

struct Stmts {
    alloc: Statement,
    release: Statement,
    expire: Statement,
    decline: Statement,
    delete: Statement,
    withdraw: Statement,
    lock: Statement,
    rows_of: Statement,
    since: Statement,
}

/// A connection to the shared lease database.
pub struct PgStore {
    config: postgres::Config,
    shown: String,
    conn: Option<(Client, Stmts)>,
    /// Highest `modified` seen by [`LeaseStore::changed`].
    seen: i64,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PgStore({})", self.shown)
    }
}

/// `url` with any password replaced by `***`, for logs.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (auth, host) = match rest.split_once('@') {
        Some((a, h)) => (Some(a), h),
        None => (None, rest),
    };
    let host = match host.split_once('?') {
        Some((h, q)) => {
            let q: Vec<String> = q
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some(("password", _)) => "password=***".to_owned(),
                    _ => kv.to_owned(),
                })
                .collect();
            format!("{h}?{}", q.join("&"))
        }
        None => host.to_owned(),
    };
    match auth {
        Some(a) => match a.split_once(':') {
            Some((u, _)) => format!("{scheme}://{u}:***@{host}"),
            None => format!("{scheme}://{a}@{host}"),
        },
        None => format!("{scheme}://{host}"),
    }
}

/// The connection settings of `url` (3 s connect timeout unless it sets one, keepalives) and the
/// URL as logs show it.
pub(crate) fn config(url: &str) -> Result<(postgres::Config, String), StoreError> {
    let shown = redact(url);
    let mut config: postgres::Config = url.parse().map_err(|e| StoreError::Open {
        path: shown.clone().into(),
        msg: format!("bad PostgreSQL URL: {e}"),
    })?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(3));
    }
    config.application_name("dhcpd");
    config.keepalives_idle(Duration::from_secs(10));
    Ok((config, shown))
}

pub(crate) fn db_err(e: postgres::Error) -> StoreError {
    match e.as_db_error() {
        Some(db) if !e.is_closed() => {
            StoreError::Io(format!("{} (SQLSTATE {})", db.message(), db.code().code()))
        }
        _ => StoreError::Unavailable(e.to_string()),
    }
}

/// Deadlock or serialization failure: the transaction is to be run again.
pub(crate) fn transient(e: &StoreError) -> bool {
    matches!(e, StoreError::Io(m) if m.contains("SQLSTATE 40P01") || m.contains("SQLSTATE 40001"))
}

pub(crate) fn to_i64(t: u64) -> i64 {
    if t == NEVER {
        i64::MAX
    } else {
        i64::try_from(t).unwrap_or(i64::MAX - 1)
    }
}

pub(crate) fn from_i64(t: i64) -> u64 {
    if t == i64::MAX {
        NEVER
    } else {
        u64::try_from(t).unwrap_or(0)
    }
}

fn state_of(s: &str) -> Option<LeaseState> {
    Some(match s {
        "offered" => LeaseState::Offered,
        "bound" => LeaseState::Bound,
        "released" => LeaseState::Released,
        "expired" => LeaseState::Expired,
        "declined" => LeaseState::Declined,
        _ => return None,
    })
}

fn decode(r: &Row) -> Result<(Lease, i64), StoreError> {
    let ip = match r.get::<_, IpAddr>(0) {
        IpAddr::V4(v) => v,
        IpAddr::V6(v) => {
            return Err(StoreError::Io(format!("IPv6 address {v} in dhcpd_lease")));
        }
    };
    let st: String = r.get(6);
    let state = state_of(&st).ok_or_else(|| StoreError::Corrupt {
        ip,
        msg: format!("state {st:?}"),
    })?;
    Ok((
        Lease {
            ip,
            client: r.get(1),
            key_source: match r.get::<_, Option<&str>>(8) {
                Some("hardware") => KeySource::Hardware,
                Some("client-id") => KeySource::ClientId,
                _ => KeySource::Legacy,
            },
            hwaddr: r.get(2),
            hostname: r.get(3),
            starts: from_i64(r.get(4)),
            expires: from_i64(r.get(5)),
            state,
        },
        r.get(7),
    ))
}

impl PgStore {
    /// Connects to `url`, creating or migrating the schema. Fails when the database is unreachable.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let (config, shown) = config(url)?;
        let mut s = PgStore {
            config,
            shown,
            conn: None,
            seen: 0,
        };
        s.connect().map_err(|e| StoreError::Open {
            path: s.shown.clone().into(),
            msg: e.to_string(),
        })?;
        Ok(s)
    }

    /// The URL without its password.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    fn connect(&mut self) -> Result<(), StoreError> {
        let mut c = self.config.connect(NoTls).map_err(db_err)?;
        migrate(&mut c)?;
        let p = |c: &mut Client, q: &str| c.prepare(q).map_err(db_err);
        let stmts = Stmts {
            alloc: p(&mut c, &alloc_sql())?,
            release: p(&mut c, &release_sql())?,
            expire: p(&mut c, &expire_sql())?,
            decline: p(&mut c, &decline_sql())?,
            delete: p(&mut c, DELETE)?,
            withdraw: p(&mut c, WITHDRAW)?,
            lock: p(&mut c, LOCK)?,
            rows_of: p(
                &mut c,
                &format!("SELECT {COLS} FROM dhcpd_lease WHERE address = ANY($1)"),
            )?,
            since: p(
                &mut c,
                &format!("SELECT {COLS} FROM dhcpd_lease WHERE modified > $1 ORDER BY modified"),
            )?,
        };
        self.conn = Some((c, stmts));
        Ok(())
    }

    fn conn(&mut self) -> Result<&mut (Client, Stmts), StoreError> {
        if self.conn.as_ref().is_some_and(|(c, _)| c.is_closed()) {
            self.conn = None;
        }
        if self.conn.is_none() {
            self.connect()?;
        }
        self.conn
            .as_mut()
            .ok_or_else(|| StoreError::Unavailable("not connected".into()))
    }

    fn run(&mut self, groups: &[&[Change]], now: u64) -> Result<Vec<Refused>, StoreError> {
        let (client, st) = self.conn()?;
        let mut tx = client.transaction().map_err(db_err)?;
        // The lock buckets of every address this transaction touches, taken in ascending order
        // first: two servers' transactions then wait for each other but never deadlock
        // (PostgreSQL would find a deadlock only after deadlock_timeout, 1 s, and abort one).
        // Buckets, not addresses, so a large group stays within the server's lock table.
        let mut addrs: Vec<i32> = groups
            .iter()
            .flat_map(|g| g.iter())
            .map(|c| (u32::from(c.ip()) % LOCK_BUCKETS) as i32)
            .collect();
        addrs.sort_unstable();
        addrs.dedup();
        tx.execute(&st.lock, &[&addrs]).map_err(db_err)?;
        let now = to_i64(now);
        let mut refused = Vec::new();
        for (gi, g) in groups.iter().enumerate() {
            // The change that hands out an address goes first: when it is refused, nothing of
            // its group is written.
            let alloc = |c: &&Change| matches!(c, Change::Put(l) if matches!(l.state, LeaseState::Bound | LeaseState::Offered));
            let mut ok = true;
            for c in g.iter().filter(alloc) {
                if put(&mut tx, &st.alloc, c, now)? == 0 {
                    ok = false;
                    break;
                }
            }
            if !ok {
                let ips: Vec<IpAddr> = g.iter().map(|c| IpAddr::V4(ip_of(c))).collect();
                let rows = tx.query(&st.rows_of, &[&ips]).map_err(db_err)?;
                let mut found = Vec::new();
                for r in &rows {
                    found.push(decode(r)?.0);
                }
                let mut current: Vec<Change> = Vec::new();
                for ip in ips {
                    let IpAddr::V4(ip) = ip else { continue };
                    match found.iter().find(|l| l.ip == ip) {
                        Some(l) => current.push(Change::Put(l.clone())),
                        None => current.push(Change::Del(ip)),
                    }
                }
                current.dedup();
                refused.push(Refused { group: gi, current });
                continue;
            }
            for c in g.iter().filter(|c| !alloc(c)) {
                match c {
                    Change::Put(l) => {
                        let s = match l.state {
                            LeaseState::Released => &st.release,
                            LeaseState::Expired => &st.expire,
                            _ => &st.decline,
                        };
                        if put(&mut tx, s, c, now)? == 0 && l.state == LeaseState::Expired {
                            // Another server extended it (or gave the address on): its row
                            // stands, and goes back to the core instead of the expiry, whose
                            // name removal is not made.
                            let rows = tx
                                .query(&st.rows_of, &[&vec![IpAddr::V4(l.ip)]])
                                .map_err(db_err)?;
                            let mut current = Vec::new();
                            for r in &rows {
                                current.push(Change::Put(decode(r)?.0));
                            }
                            match refused.last_mut() {
                                Some(r) if r.group == gi => r.current.extend(current),
                                _ => refused.push(Refused { group: gi, current }),
                            }
                        }
                    }
                    Change::Del(ip) => {
                        tx.execute(&st.delete, &[&IpAddr::V4(*ip), &now])
                            .map_err(db_err)?;
                    }
                    Change::Withdraw { ip, client } => {
                        tx.execute(&st.withdraw, &[&IpAddr::V4(*ip), client])
                            .map_err(db_err)?;
                    }
                }
            }
        }
        tx.commit().map_err(db_err)?;
        Ok(refused)
    }
}

fn ip_of(c: &Change) -> Ipv4Addr {
    c.ip()
}

fn put(
    tx: &mut postgres::Transaction<'_>,
    s: &Statement,
    c: &Change,
    now: i64,
) -> Result<u64, StoreError> {
    let Change::Put(l) = c else { return Ok(0) };
    let (ip, starts, expires, state) = (
        IpAddr::V4(l.ip),
        to_i64(l.starts),
        to_i64(l.expires),
        l.state.as_str(),
    );
    let source = match l.key_source {
        KeySource::Legacy => None,
        KeySource::Hardware => Some("hardware"),
        KeySource::ClientId => Some("client-id"),
    };
    let mut p: Vec<&(dyn postgres::types::ToSql + Sync)> = vec![
        &ip,
        &l.client,
        &l.hwaddr,
        &l.hostname,
        &starts,
        &expires,
        &state,
        &source,
    ];
    if s.params().len() == 9 {
        p.push(&now);
    }
    tx.execute(s, &p).map_err(db_err)
}

impl LeaseStore for PgStore {
    fn load(&mut self) -> Result<Vec<Lease>, StoreError> {
        let (client, st) = self.conn()?;
        let rows = client.query(&st.since, &[&-1i64]).map_err(db_err)?;
        let mut out = Vec::with_capacity(rows.len());
        let mut seen = 0;
        for r in &rows {
            let (l, m) = decode(r)?;
            seen = seen.max(m);
            out.push(l);
        }
        self.seen = seen;
        Ok(out)
    }

    fn commit(&mut self, changes: &[Change]) -> Result<(), StoreError> {
        let now = crate::lease::unix_now();
        let refused = self.commit_groups(&[changes], now)?;
        match refused.first() {
            None => Ok(()),
            Some(r) => Err(StoreError::Io(format!(
                "address held by another client: {:?}",
                r.current
            ))),
        }
    }

    fn shared(&self) -> bool {
        true
    }

    fn commit_groups(
        &mut self,
        groups: &[&[Change]],
        now: u64,
    ) -> Result<Vec<Refused>, StoreError> {
        if groups.iter().all(|g| g.is_empty()) {
            return Ok(Vec::new());
        }
        let mut tries = 0;
        loop {
            match self.run(groups, now) {
                // Two servers' transactions touching the same rows in another order: PostgreSQL
                // aborts one; run it again.
                Err(e) if tries < 5 && transient(&e) => {
                    tracing::debug!(error = %e, "lease transaction runs again");
                    tries += 1;
                }
                Err(e @ StoreError::Unavailable(_)) => {
                    self.conn = None;
                    return Err(e);
                }
                r => return r,
            }
        }
    }

    fn changed(&mut self) -> Result<Vec<Lease>, StoreError> {
        // Sequence numbers are taken before commit, so a transaction committing late can show a
        // number below the highest seen: look back a little.
        let from = self.seen.saturating_sub(500);
        let (client, st) = self.conn()?;
        let rows = client.query(&st.since, &[&from]).map_err(db_err)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let (l, m) = decode(r)?;
            self.seen = self.seen.max(m);
            out.push(l);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_the_logs() {
        assert_eq!(
            redact("postgresql://dhcpd:s3cret@db.lan:5432/leases"),
            "postgresql://dhcpd:***@db.lan:5432/leases"
        );
        assert_eq!(
            redact("postgres://db.lan/leases?user=d&password=x&sslmode=disable"),
            "postgres://db.lan/leases?user=d&password=***&sslmode=disable"
        );
        assert_eq!(redact("postgresql://dhcpd@db/l"), "postgresql://dhcpd@db/l");
    }

    #[test]
    fn expiry_times_round_trip_including_never() {
        for t in [0, 1, 1_700_000_000, NEVER] {
            assert_eq!(from_i64(to_i64(t)), t);
        }
    }
}
