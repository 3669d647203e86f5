//! Where the v6 core's bindings go: `leases6.redb` ([`Store6`]) or, when the host file selects a
//! PostgreSQL lease database, its `dhcpd_lease6` table ([`super::pg::PgStore6`]), which other
//! servers may write too. [`settle`] is the core's one way to commit: decide, write, and when the
//! shared database refuses (another server's client holds the address or prefix), learn what it
//! holds and decide again, so the REPLY only ever carries what is durable and nobody else's.

use super::decide::Outcome;
use super::lease::{Change6, Lease6, Leases6, Store6, Store6Error};

/// How often one message is decided again after refusals before it goes unanswered (each
/// refusal also brings every row other servers changed since the last look).
pub const SETTLE_TRIES: usize = 4;

/// The outcome of [`BindingStore::commit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Commit6 {
    /// Everything is durable.
    Done,
    /// Nothing was written: an address or prefix given to an IA is held by another one. The
    /// rows the database holds for it (usually one).
    Refused(Vec<Lease6>),
}

/// Makes changes durable in one transaction (a store's handle for the writer thread).
pub type WriteFn = Box<dyn FnMut(&[Change6]) -> Result<(), Store6Error> + Send>;

/// The durable home of the v6 bindings.
pub trait BindingStore: Send + std::fmt::Debug {
    /// Every stored binding.
    fn load(&mut self) -> Result<Vec<Lease6>, Store6Error>;
    /// Makes `changes` durable in one transaction before returning. `known` is the core's table
    /// before the changes, `now` the time they were decided at: a shared store uses them to
    /// delete only what this server knows (a live binding) or what has ended (expiry).
    fn commit(
        &mut self,
        changes: &[Change6],
        known: &Leases6,
        now: u64,
    ) -> Result<Commit6, Store6Error>;
    /// Bindings other servers wrote since the last call (shared stores only).
    fn changed(&mut self) -> Result<Vec<Lease6>, Store6Error> {
        Ok(Vec::new())
    }
    /// Every binding of every server, for `dhcpd leases`: `None` when the core's own table is
    /// the whole truth (the embedded file).
    fn list(&mut self) -> Result<Option<Vec<Lease6>>, Store6Error> {
        Ok(None)
    }
    /// True when the core may commit the changes of many messages in one transaction before
    /// their replies (a store only this server writes, which never refuses a change).
    fn groups(&self) -> bool {
        false
    }
    /// A second handle that makes changes durable from the writer thread ([`super::writer`]),
    /// for a store that groups; `None`: the core commits itself.
    fn writer(&self) -> Option<WriteFn> {
        None
    }
}

impl BindingStore for Store6 {
    fn load(&mut self) -> Result<Vec<Lease6>, Store6Error> {
        Store6::load(self)
    }
    fn commit(&mut self, changes: &[Change6], _: &Leases6, _: u64) -> Result<Commit6, Store6Error> {
        self.write(changes)?;
        Ok(Commit6::Done)
    }
    fn groups(&self) -> bool {
        true
    }
    fn writer(&self) -> Option<WriteFn> {
        let s = self.clone();
        Some(Box::new(move |c| s.write(c)))
    }
}

/// Why [`settle`] sent nothing.
#[derive(Debug, thiserror::Error)]
pub enum Settle6Error {
    /// The write failed.
    #[error(transparent)]
    Store(#[from] Store6Error),
    /// Other servers kept taking what this one chose.
    #[error("the shared lease database refused {SETTLE_TRIES} choices in a row")]
    Contended,
}

/// Decides with `decide` on the current table and commits the changes; the returned outcome's
/// changes are durable and applied to `leases`. On a refusal the rows the database holds (and
/// what else changed there) are applied and the message is decided again.
pub fn settle(
    store: &mut dyn BindingStore,
    leases: &mut Leases6,
    now: u64,
    mut decide: impl FnMut(&Leases6) -> Outcome,
) -> Result<Outcome, Settle6Error> {
    for _ in 0..SETTLE_TRIES {
        let out = decide(leases);
        if out.reply.is_none() || out.changes.is_empty() {
            return Ok(out);
        }
        match store.commit(&out.changes, leases, now)? {
            Commit6::Done => {
                out.changes.iter().for_each(|c| leases.apply(c));
                return Ok(out);
            }
            Commit6::Refused(rows) => {
                let held: Vec<String> = rows
                    .iter()
                    .map(|l| format!("{}/{}", l.addr, l.prefix_len))
                    .collect();
                tracing::info!(held = ?held, "DHCPv6: address taken by another server; choosing again");
                learn(leases, rows);
                learn(leases, store.changed()?);
            }
        }
    }
    Err(Settle6Error::Contended)
}

/// Applies rows read from the shared database to the core's table.
pub fn learn(leases: &mut Leases6, rows: Vec<Lease6>) {
    for l in rows {
        leases.apply(&Change6::Put(l));
    }
}

/// Brings in what other servers wrote (a shared store; nothing for the embedded file). A failure
/// is logged: the table only misses rows the database still guards.
pub fn refresh(store: &mut dyn BindingStore, leases: &mut Leases6) {
    match store.changed() {
        Ok(rows) => learn(leases, rows),
        Err(e) => tracing::warn!(error = %e, "DHCPv6: bindings of other servers not read"),
    }
}

/// Of the bindings a sweep removed, those still ended once the table has learned what other
/// servers wrote since: another server of a pair may have renewed one (the shared database then
/// kept its row, as [`BindingStore::commit`] deletes only ended rows), and its name must stay in
/// DNS and its binding in the table.
pub fn still_ended(ended: Vec<Change6>, leases: &Leases6, now: u64) -> Vec<Change6> {
    ended
        .into_iter()
        .filter(|c| match c {
            Change6::Delete(k) => leases.get(k).is_none_or(|l| l.expires <= now),
            Change6::Put(_) => true,
        })
        .collect()
}

/// The stored bindings still running at `now` as a table; ended ones are removed from the store.
/// Returns the table and how many ended.
pub fn load_live(store: &mut dyn BindingStore, now: u64) -> Result<(Leases6, usize), Store6Error> {
    let mut leases = Leases6::new();
    let mut ended = Vec::new();
    for l in store.load()? {
        if l.expires > now {
            leases.apply(&Change6::Put(l));
        } else {
            ended.push(Change6::Delete(l.key));
        }
    }
    // Removed only where they are still ended (another server may have renewed one meanwhile).
    store.commit(&ended, &Leases6::new(), now)?;
    Ok((leases, ended.len()))
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
