//! The lease database's schema: its versions and the steps between them, applied at connection
//! under an advisory lock so two servers starting together do not race.

use postgres::Client;

use super::db_err;
use crate::store::StoreError;

/// The schema version this build writes.
pub const SCHEMA_VERSION: i32 = 3;

/// The schema steps, in order (`MIGRATIONS[n]` takes version n to n + 1). Frozen once released:
/// tests rebuild an old database from them.
pub const MIGRATIONS: &[&str] = &[
    // 0 -> 1
    "CREATE SEQUENCE dhcpd_lease_seq;
     CREATE TABLE dhcpd_lease (
         address  inet PRIMARY KEY,
         client   bytea NOT NULL,
         hwaddr   bytea NOT NULL,
         hostname text,
         starts   bigint NOT NULL,
         expires  bigint NOT NULL,
         state    text NOT NULL
                  CHECK (state IN ('offered', 'bound', 'released', 'expired', 'declined')),
         modified bigint NOT NULL DEFAULT nextval('dhcpd_lease_seq')
     );
     CREATE INDEX dhcpd_lease_modified ON dhcpd_lease (modified);
     CREATE INDEX dhcpd_lease_client ON dhcpd_lease (client);",
    // 1 -> 2: where the client key came from (the DHCID type, RFC 4701); NULL on rows written
    // before, which keep the DHCID those servers published.
    "ALTER TABLE dhcpd_lease ADD COLUMN key_source text
         CHECK (key_source IN ('hardware', 'client-id'));",
    // 2 -> 3: DHCPv6 bindings (`crate::v6::pg`). One row per address or delegated prefix
    // (primary key) and one per identity association (unique): a second server's write that
    // would hand a held address to another IA, or give one IA two, is refused or conflicts.
    "CREATE SEQUENCE dhcpd_lease6_seq;
     CREATE TABLE dhcpd_lease6 (
         kind       text NOT NULL CHECK (kind IN ('na', 'pd')),
         address    inet NOT NULL,
         prefix_len smallint NOT NULL CHECK (prefix_len BETWEEN 1 AND 128),
         duid       bytea NOT NULL,
         iaid       bigint NOT NULL,
         hostname   text,
         starts     bigint NOT NULL,
         expires    bigint NOT NULL,
         state      text NOT NULL CHECK (state IN ('bound', 'declined')),
         modified   bigint NOT NULL DEFAULT nextval('dhcpd_lease6_seq'),
         PRIMARY KEY (kind, address, prefix_len),
         UNIQUE (kind, duid, iaid)
     );
     CREATE INDEX dhcpd_lease6_modified ON dhcpd_lease6 (modified);",
];

/// Creates or migrates the schema to [`SCHEMA_VERSION`].
pub(crate) fn migrate(c: &mut Client) -> Result<(), StoreError> {
    let mut tx = c.transaction().map_err(db_err)?;
    // One server migrates at a time; the others wait here, then find the work done.
    tx.execute("SELECT pg_advisory_xact_lock(7406375)", &[])
        .map_err(db_err)?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS dhcpd_schema_version (version integer NOT NULL)")
        .map_err(db_err)?;
    let v: i32 = tx
        .query_opt("SELECT max(version) FROM dhcpd_schema_version", &[])
        .map_err(db_err)?
        .and_then(|r| r.get::<_, Option<i32>>(0))
        .unwrap_or(0);
    if v > SCHEMA_VERSION {
        return Err(StoreError::Io(format!(
            "the database schema is version {v}, newer than this dhcpd knows ({SCHEMA_VERSION}); upgrade dhcpd"
        )));
    }
    for (i, m) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(v).unwrap_or(0))
    {
        tx.batch_execute(m).map_err(db_err)?;
        let to = i32::try_from(i + 1).unwrap_or(i32::MAX);
        tx.execute("DELETE FROM dhcpd_schema_version", &[])
            .map_err(db_err)?;
        tx.execute(
            "INSERT INTO dhcpd_schema_version (version) VALUES ($1)",
            &[&to],
        )
        .map_err(db_err)?;
        tracing::info!(version = to, "lease database schema migrated");
    }
    tx.commit().map_err(db_err)
}
