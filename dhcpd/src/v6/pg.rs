//! DHCPv6 bindings in the shared PostgreSQL lease database (`dhcpd_lease6`, created beside the v4
//! table by `crate::pgstore`'s migrations), on the core thread's own connection.
//!
//! Safety between servers comes from the database, as for v4: one row per address or prefix
//! (primary key `kind, address, prefix_len`) and one per IA (unique `kind, duid, iaid`); the
//! write that hands an address or prefix to an IA is an `INSERT .. ON CONFLICT DO UPDATE ..
//! WHERE` admitting it only when the row is that IA's or has ended. A refused write rolls the
//! whole message back and reports the row that won, and the core decides again
//! ([`super::store::settle`]). Deletions touch only what this server knows to be live (a
//! release) or what has ended (expiry), so a stale table never removes another server's binding.
//! Each transaction first takes advisory locks on buckets of the addresses and IAs it touches,
//! in ascending order: two servers' writes wait for each other instead of deadlocking or
//! tripping over the unique IA index.

use std::net::{IpAddr, Ipv6Addr};

use postgres::{Client, NoTls, Row, Statement, Transaction};

use super::lease::{Change6, IaKind, Key6, Lease6, Leases6, State6, Store6Error};
use super::store::{BindingStore, Commit6};
use crate::pgstore::{config, db_err, from_i64, migrate, to_i64, transient};
use crate::store::StoreError;

const COLS: &str =
    "kind, address, prefix_len, duid, iaid, hostname, starts, expires, state, modified";

const UPSERT: &str = "INSERT INTO dhcpd_lease6 AS l
         (kind, address, prefix_len, duid, iaid, hostname, starts, expires, state)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
     ON CONFLICT (kind, address, prefix_len) DO UPDATE SET
         duid = EXCLUDED.duid, iaid = EXCLUDED.iaid, hostname = EXCLUDED.hostname,
         starts = EXCLUDED.starts, expires = EXCLUDED.expires, state = EXCLUDED.state,
         modified = nextval('dhcpd_lease6_seq')";

/// Hands an address or prefix to an IA: only when the row is free, ended, or already this IA's.
fn bind_sql() -> String {
    format!(
        "{UPSERT} WHERE (l.duid = EXCLUDED.duid AND l.iaid = EXCLUDED.iaid) OR l.expires <= $10::bigint"
    )
}

/// The IA's other row goes when it moves (one binding per IA).
const MOVE: &str = "DELETE FROM dhcpd_lease6
     WHERE kind = $1 AND duid = $2 AND iaid = $3 AND NOT (address = $4 AND prefix_len = $5)";

/// A release of the binding this server knows: only that row, only while it is still the IA's.
const DELETE_KNOWN: &str = "DELETE FROM dhcpd_lease6
     WHERE kind = $1 AND duid = $2 AND iaid = $3 AND address = $4 AND prefix_len = $5";

/// Expiry: only while the IA's row is still ended (no server renewed it since).
const DELETE_ENDED: &str = "DELETE FROM dhcpd_lease6
     WHERE kind = $1 AND duid = $2 AND iaid = $3 AND expires <= $4";

/// Buckets of addresses and of IAs; at most twice this many advisory locks per transaction.
const LOCK_BUCKETS: u32 = 64;

/// Transaction-scoped locks (class 7407; v4 uses 7406), taken in the order given.
const LOCK: &str = "SELECT count(pg_advisory_xact_lock(7407, a))
     FROM (SELECT a FROM unnest($1::int4[]) WITH ORDINALITY AS u(a, n) ORDER BY n) s";

struct Stmts {
    bind: Statement,
    decline: Statement,
    moved: Statement,
    delete_known: Statement,
    delete_ended: Statement,
    lock: Statement,
    row_at: Statement,
    since: Statement,
}

/// The v6 bindings' connection to the shared lease database.
pub struct PgStore6 {
    config: postgres::Config,
    shown: String,
    conn: Option<(Client, Stmts)>,
    /// Highest `modified` seen by [`BindingStore::changed`].
    seen: i64,
}

impl std::fmt::Debug for PgStore6 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PgStore6({})", self.shown)
    }
}

impl Drop for PgStore6 {
    /// The client closes its connection by blocking on a runtime of its own, which panics on a
    /// thread that drives a tokio runtime (an early error return in `run`): close it elsewhere.
    fn drop(&mut self) {
        if let Some(c) = self.conn.take()
            && tokio::runtime::Handle::try_current().is_ok()
        {
            let _ = std::thread::Builder::new()
                .name("dhcpv6-pg-close".into())
                .spawn(move || drop(c));
        }
    }
}

fn kind_str(k: IaKind) -> &'static str {
    match k {
        IaKind::Na => "na",
        IaKind::Pd => "pd",
    }
}

fn bad(addr: impl std::fmt::Display, what: impl std::fmt::Display) -> Store6Error {
    StoreError::Io(format!("dhcpd_lease6: bad row for {addr}: {what}")).into()
}

fn decode(r: &Row) -> Result<(Lease6, i64), Store6Error> {
    let addr = match r.get::<_, IpAddr>(1) {
        IpAddr::V6(a) => a,
        IpAddr::V4(a) => return Err(bad(a, "an IPv4 address")),
    };
    let kind = match r.get::<_, &str>(0) {
        "na" => IaKind::Na,
        "pd" => IaKind::Pd,
        k => return Err(bad(addr, format_args!("kind {k:?}"))),
    };
    let state = match r.get::<_, &str>(8) {
        "bound" => State6::Bound,
        "declined" => State6::Declined,
        s => return Err(bad(addr, format_args!("state {s:?}"))),
    };
    let len: i16 = r.get(2);
    let iaid: i64 = r.get(4);
    Ok((
        Lease6 {
            key: Key6 {
                duid: r.get(3),
                iaid: u32::try_from(iaid).map_err(|_| bad(addr, format_args!("IAID {iaid}")))?,
                kind,
            },
            addr,
            prefix_len: u8::try_from(len)
                .ok()
                .filter(|l| (1..=128).contains(l))
                .ok_or_else(|| bad(addr, format_args!("prefix length {len}")))?,
            starts: from_i64(r.get(6)),
            expires: from_i64(r.get(7)),
            state,
            hostname: r.get(5),
        },
        r.get(9),
    ))
}

fn addr_bucket(a: Ipv6Addr, len: u8) -> i32 {
    let x = u128::from(a) ^ u128::from(len);
    let folded = (x as u64) ^ ((x >> 64) as u64);
    // Fibonacci hashing: the top bits of the product depend on every bit of the address, so
    // neighbouring addresses and neighbouring prefixes fall into different buckets.
    (folded.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - LOCK_BUCKETS.trailing_zeros())) as i32
}

fn key_bucket(k: &Key6) -> i32 {
    // FNV-1a over the IA's identity.
    let mut h: u32 = 0x811c_9dc5;
    let kind = [kind_str(k.kind).as_bytes()[0]];
    for b in kind.iter().chain(&k.iaid.to_be_bytes()).chain(&k.duid) {
        h = (h ^ u32::from(*b)).wrapping_mul(0x0100_0193);
    }
    (LOCK_BUCKETS + h % LOCK_BUCKETS) as i32
}

/// The lock buckets a group of changes touches, ascending, each once.
fn buckets(changes: &[Change6], known: &Leases6) -> Vec<i32> {
    let mut v = Vec::new();
    for c in changes {
        match c {
            Change6::Put(l) => {
                v.push(addr_bucket(l.addr, l.prefix_len));
                v.push(key_bucket(&l.key));
            }
            Change6::Delete(k) => {
                v.push(key_bucket(k));
                if let Some(l) = known.get(k) {
                    v.push(addr_bucket(l.addr, l.prefix_len));
                }
            }
        }
    }
    v.sort_unstable();
    v.dedup();
    v
}

impl PgStore6 {
    /// Connects to `url`, creating or migrating the schema. Fails when the database is unreachable.
    pub fn open(url: &str) -> Result<Self, Store6Error> {
        let (config, shown) = config(url)?;
        let mut s = PgStore6 {
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
            bind: p(&mut c, &bind_sql())?,
            decline: p(&mut c, UPSERT)?,
            moved: p(&mut c, MOVE)?,
            delete_known: p(&mut c, DELETE_KNOWN)?,
            delete_ended: p(&mut c, DELETE_ENDED)?,
            lock: p(&mut c, LOCK)?,
            row_at: p(
                &mut c,
                &format!(
                    "SELECT {COLS} FROM dhcpd_lease6 WHERE kind = $1 AND address = $2 AND prefix_len = $3"
                ),
            )?,
            since: p(
                &mut c,
                &format!("SELECT {COLS} FROM dhcpd_lease6 WHERE modified > $1 ORDER BY modified"),
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

    /// Rows modified after `from`, in order; `seen` moves to the highest.
    fn since(&mut self, from: i64) -> Result<Vec<Lease6>, Store6Error> {
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

    fn run(
        &mut self,
        changes: &[Change6],
        known: &Leases6,
        now: u64,
    ) -> Result<Commit6, StoreError> {
        let (client, st) = self.conn()?;
        let mut tx = client.transaction().map_err(db_err)?;
        tx.execute(&st.lock, &[&buckets(changes, known)])
            .map_err(db_err)?;
        let (ended_by, now) = (now, to_i64(now));
        for c in changes {
            match c {
                Change6::Put(l) => {
                    let k = &l.key;
                    let (kind, addr, len, iaid) = (
                        kind_str(k.kind),
                        IpAddr::V6(l.addr),
                        i16::from(l.prefix_len),
                        i64::from(k.iaid),
                    );
                    tx.execute(&st.moved, &[&kind, &k.duid, &iaid, &addr, &len])
                        .map_err(db_err)?;
                    if put(&mut tx, st, l, now)? == 0 {
                        let rows = tx
                            .query(&st.row_at, &[&kind, &addr, &len])
                            .map_err(db_err)?;
                        let held = rows
                            .iter()
                            .map(|r| decode(r).map(|(l, _)| l))
                            .collect::<Result<Vec<_>, _>>()
                            .map_err(|e| StoreError::Io(e.to_string()))?;
                        tx.rollback().map_err(db_err)?;
                        return Ok(Commit6::Refused(held));
                    }
                }
                Change6::Delete(k) => {
                    let (kind, iaid) = (kind_str(k.kind), i64::from(k.iaid));
                    match known.get(k).filter(|l| l.expires > ended_by) {
                        Some(l) => tx.execute(
                            &st.delete_known,
                            &[
                                &kind,
                                &k.duid,
                                &iaid,
                                &IpAddr::V6(l.addr),
                                &i16::from(l.prefix_len),
                            ],
                        ),
                        None => tx.execute(&st.delete_ended, &[&kind, &k.duid, &iaid, &now]),
                    }
                    .map_err(db_err)?;
                }
            }
        }
        tx.commit().map_err(db_err)?;
        Ok(Commit6::Done)
    }
}

/// Writes one binding: conditionally when it binds, always when it records a declined address.
fn put(tx: &mut Transaction<'_>, st: &Stmts, l: &Lease6, now: i64) -> Result<u64, StoreError> {
    let (kind, addr, len, iaid) = (
        kind_str(l.key.kind),
        IpAddr::V6(l.addr),
        i16::from(l.prefix_len),
        i64::from(l.key.iaid),
    );
    let (starts, expires) = (to_i64(l.starts), to_i64(l.expires));
    let hostname = l.hostname.as_deref();
    let state = match l.state {
        State6::Bound => "bound",
        State6::Declined => "declined",
    };
    let mut p: Vec<&(dyn postgres::types::ToSql + Sync)> = vec![
        &kind,
        &addr,
        &len,
        &l.key.duid,
        &iaid,
        &hostname,
        &starts,
        &expires,
        &state,
    ];
    let s = match l.state {
        State6::Bound => {
            p.push(&now);
            &st.bind
        }
        State6::Declined => &st.decline,
    };
    tx.execute(s, &p).map_err(db_err)
}

/// A unique-index conflict between two servers' transactions: run it again.
fn retry(e: &StoreError) -> bool {
    transient(e) || matches!(e, StoreError::Io(m) if m.contains("SQLSTATE 23505"))
}

impl BindingStore for PgStore6 {
    fn load(&mut self) -> Result<Vec<Lease6>, Store6Error> {
        self.since(-1)
    }

    fn commit(
        &mut self,
        changes: &[Change6],
        known: &Leases6,
        now: u64,
    ) -> Result<Commit6, Store6Error> {
        if changes.is_empty() {
            return Ok(Commit6::Done);
        }
        let mut tries = 0;
        loop {
            match self.run(changes, known, now) {
                Err(e) if tries < 5 && retry(&e) => {
                    tracing::debug!(error = %e, "DHCPv6 lease transaction runs again");
                    tries += 1;
                }
                Err(e @ StoreError::Unavailable(_)) => {
                    self.conn = None;
                    return Err(e.into());
                }
                r => return Ok(r?),
            }
        }
    }

    fn changed(&mut self) -> Result<Vec<Lease6>, Store6Error> {
        // Sequence numbers are taken before commit, so a transaction committing late can show a
        // number below the highest seen: look back a little.
        self.since(self.seen.saturating_sub(500))
    }

    fn list(&mut self) -> Result<Option<Vec<Lease6>>, Store6Error> {
        let (client, _) = self.conn()?;
        let rows = client
            .query(&format!("SELECT {COLS} FROM dhcpd_lease6"), &[])
            .map_err(db_err)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(decode(r)?.0);
        }
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(duid: u8, iaid: u32, kind: IaKind) -> Key6 {
        Key6 {
            duid: vec![0, 3, 0, 1, duid],
            iaid,
            kind,
        }
    }

    #[test]
    fn lock_buckets_are_sorted_distinct_and_keep_addresses_apart_from_ias() {
        let l = Lease6 {
            key: key(1, 7, IaKind::Na),
            addr: "fd00::1000".parse().unwrap(),
            prefix_len: 128,
            starts: 1,
            expires: 2,
            state: State6::Bound,
            hostname: None,
        };
        let mut known = Leases6::new();
        known.apply(&Change6::Put(l.clone()));
        let b = buckets(
            &[Change6::Put(l.clone()), Change6::Delete(l.key.clone())],
            &known,
        );
        assert!(b.windows(2).all(|w| w[0] < w[1]), "{b:?}");
        assert_eq!(b.len(), 2, "one address bucket and one IA bucket: {b:?}");
        assert!(b[0] < LOCK_BUCKETS as i32 && b[1] >= LOCK_BUCKETS as i32);
        assert!(b.iter().all(|x| (0..2 * LOCK_BUCKETS as i32).contains(x)));
    }

    #[test]
    fn neighbouring_addresses_and_prefixes_spread_over_buckets() {
        let base = u128::from("fd00::1000".parse::<Ipv6Addr>().unwrap());
        let spread: std::collections::HashSet<i32> = (0..64u128)
            .map(|i| addr_bucket(Ipv6Addr::from(base + i), 128))
            .collect();
        assert!(spread.len() >= 40, "{spread:?}");
        let pd = u128::from("fd00:1000::".parse::<Ipv6Addr>().unwrap());
        let spread: std::collections::HashSet<i32> = (0..64u128)
            .map(|i| addr_bucket(Ipv6Addr::from(pd + (i << 72)), 56))
            .collect();
        assert!(spread.len() >= 40, "{spread:?}");
    }
}
