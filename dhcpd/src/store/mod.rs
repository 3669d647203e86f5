//! Durable lease storage behind a trait ([`LeaseStore`]), so a shared SQL backend
//! (`pgstore`) can sit beside the embedded one ([`RedbStore`], journal and fold described
//! there); the [`Spool`] keeps what is acknowledged while a shared database is unreachable.

mod codec;
mod embedded;
mod lease_store;
mod spool;

pub use self::embedded::{FOLD, FOLD_SLICE, RedbStore, parse_fold_limits, read_only};
pub use self::lease_store::{LeaseStore, Refused, StoreError};
pub use self::spool::Spool;
