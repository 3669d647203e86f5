//! Group commit for the v6 core (pure: time is passed in). Replies whose messages changed
//! bindings are held here with those changes; one [`Batch::flush`] makes every held change
//! durable in one transaction (one fsync) and only then hands the replies back to be sent. A
//! reply without changes (ADVERTISE, CONFIRM, a refusal) is handed back at once. Commits are
//! paced: while messages keep coming, at most one starts per [`COMMIT_GAP`], so under load one
//! fsync covers everything that arrived meanwhile; an idle server commits at once.

use std::time::{Duration, Instant};

use super::lease::Change6;

/// Most replies held for one commit.
pub const MAX_HELD: usize = 512;
/// Longest a held reply waits for its commit while messages keep arriving.
pub const MAX_WAIT: Duration = Duration::from_millis(10);
/// Least time between the starts of two commits while replies wait.
pub const COMMIT_GAP: Duration = Duration::from_millis(4);

/// Replies waiting for the commit of their changes.
#[derive(Debug)]
pub struct Batch<R> {
    held: Vec<R>,
    changes: Vec<Change6>,
    since: Option<Instant>,
    last: Option<Instant>,
}

impl<R> Default for Batch<R> {
    fn default() -> Self {
        Batch {
            held: Vec::new(),
            changes: Vec::new(),
            since: None,
            last: None,
        }
    }
}

impl<R> Batch<R> {
    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Number of held replies.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// Takes a decided reply with the changes it depends on: without changes it is returned to
    /// be sent now; with changes it waits for the next [`Batch::flush`].
    pub fn add(&mut self, reply: R, changes: &[Change6], now: Instant) -> Option<R> {
        if changes.is_empty() {
            return Some(reply);
        }
        self.since.get_or_insert(now);
        self.changes.extend_from_slice(changes);
        self.held.push(reply);
        None
    }

    /// True when the held replies should be committed now even though more messages are
    /// waiting: the batch is full, or its oldest reply has waited [`MAX_WAIT`].
    pub fn due(&self, now: Instant) -> bool {
        self.held.len() >= MAX_HELD
            || self
                .since
                .is_some_and(|t| now.saturating_duration_since(t) >= MAX_WAIT)
    }

    /// With no message waiting: how long to wait for more before committing (`None`: commit
    /// now). A commit started less than [`COMMIT_GAP`] ago makes the held replies wait for the
    /// gap to pass, never beyond [`MAX_WAIT`] of the oldest.
    pub fn idle_wait(&self, now: Instant) -> Option<Duration> {
        let (since, last) = (self.since?, self.last?);
        let until = (last + COMMIT_GAP).min(since + MAX_WAIT);
        Some(until.saturating_duration_since(now)).filter(|d| !d.is_zero())
    }

    /// Commits every held change with `commit` (one transaction) at `now`; the held replies
    /// come back only when it succeeded. On failure they are dropped (their clients
    /// retransmit) and the error is returned with how many were dropped. The batch is empty
    /// afterwards either way.
    pub fn flush<E>(
        &mut self,
        now: Instant,
        commit: impl FnOnce(&[Change6]) -> Result<(), E>,
    ) -> Result<Vec<R>, (E, usize)> {
        let (changes, held) = self.take(now);
        if held.is_empty() {
            return Ok(held);
        }
        match commit(&changes) {
            Ok(()) => Ok(held),
            Err(e) => Err((e, held.len())),
        }
    }

    /// Empties the batch at `now` for a commit made elsewhere (the writer thread): its changes
    /// and the replies that wait for them.
    pub fn take(&mut self, now: Instant) -> (Vec<Change6>, Vec<R>) {
        self.since = None;
        let changes = std::mem::take(&mut self.changes);
        let held = std::mem::take(&mut self.held);
        if !held.is_empty() {
            self.last = Some(now);
        }
        (changes, held)
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::net::Ipv6Addr;

    use super::*;
    use crate::v6::lease::{IaKind, Key6, Lease6, State6};

    fn put(i: u8) -> Change6 {
        Change6::Put(Lease6 {
            key: Key6 {
                duid: vec![0, 3, 0, 1, 2, 0, 0, 0, 0, i],
                iaid: 1,
                kind: IaKind::Na,
            },
            addr: Ipv6Addr::new(0xfd00, 0x20, 0, 0, 0, 1, 0, u16::from(i)),
            prefix_len: 128,
            starts: 1000,
            expires: 5000,
            state: State6::Bound,
            hostname: None,
        })
    }

    #[test]
    fn no_reply_is_released_before_the_commit_of_its_batch() {
        let t0 = Instant::now();
        let mut b: Batch<&str> = Batch::default();
        // An ADVERTISE (no changes) goes at once; the REPLYs wait.
        assert_eq!(b.add("advertise", &[], t0), Some("advertise"));
        assert_eq!(b.add("reply-1", &[put(1)], t0), None);
        assert_eq!(b.add("reply-2", &[put(2), put(3)], t0), None);
        assert_eq!(b.len(), 2);
        // What the commit saw, and what had been released by then: nothing.
        let released: RefCell<Vec<&str>> = RefCell::new(Vec::new());
        let committed: RefCell<Vec<Change6>> = RefCell::new(Vec::new());
        let out = b
            .flush(t0, |changes| {
                assert!(
                    released.borrow().is_empty(),
                    "a reply left before its commit"
                );
                committed.borrow_mut().extend_from_slice(changes);
                Ok::<(), ()>(())
            })
            .unwrap();
        released.borrow_mut().extend(out);
        assert_eq!(*committed.borrow(), vec![put(1), put(2), put(3)]);
        assert_eq!(*released.borrow(), vec!["reply-1", "reply-2"]);
        assert!(b.is_empty());
    }

    #[test]
    fn a_failed_commit_releases_nothing_and_empties_the_batch() {
        let t0 = Instant::now();
        let mut b: Batch<u32> = Batch::default();
        b.add(1, &[put(1)], t0);
        b.add(2, &[put(2)], t0);
        assert_eq!(b.flush(t0, |_| Err("disk full")), Err(("disk full", 2)));
        assert!(b.is_empty());
        // The next batch carries only its own changes.
        b.add(3, &[put(3)], t0);
        let mut seen = Vec::new();
        let out = b.flush(t0, |c| {
            seen = c.to_vec();
            Ok::<(), ()>(())
        });
        assert_eq!(out, Ok(vec![3]));
        assert_eq!(seen, vec![put(3)]);
    }

    #[test]
    fn due_when_full_or_when_the_oldest_waited_long_enough() {
        let t0 = Instant::now();
        let mut b: Batch<usize> = Batch::default();
        assert!(!b.due(t0 + MAX_WAIT * 10), "an empty batch is never due");
        b.add(0, &[put(0)], t0);
        assert!(!b.due(t0 + MAX_WAIT / 2));
        assert!(b.due(t0 + MAX_WAIT));
        // A later reply does not restart the clock of the oldest.
        b.add(1, &[put(1)], t0 + MAX_WAIT / 2);
        assert!(b.due(t0 + MAX_WAIT));
        let _ = b.flush(t0, |_| Ok::<(), ()>(()));
        for i in 0..MAX_HELD {
            assert!(!b.due(t0), "due after {i} of {MAX_HELD}");
            b.add(i, &[put(1)], t0);
        }
        assert!(b.due(t0));
    }

    #[test]
    fn commits_are_paced_while_replies_keep_coming() {
        let t0 = Instant::now();
        let mut b: Batch<u32> = Batch::default();
        // The first commit of an idle server goes at once.
        b.add(1, &[put(1)], t0);
        assert_eq!(b.idle_wait(t0), None);
        assert_eq!(b.flush(t0, |_| Ok::<(), ()>(())), Ok(vec![1]));
        // A reply right after waits for the gap, counted from the last commit's start.
        let t1 = t0 + Duration::from_millis(1);
        b.add(2, &[put(2)], t1);
        assert_eq!(b.idle_wait(t1), Some(COMMIT_GAP - Duration::from_millis(1)));
        assert_eq!(b.idle_wait(t0 + COMMIT_GAP), None);
        // Never past MAX_WAIT of the oldest held reply.
        let mut c: Batch<u32> = Batch::default();
        c.add(0, &[put(0)], t0);
        let _ = c.flush(t0 + MAX_WAIT * 3, |_| Ok::<(), ()>(()));
        c.add(3, &[put(3)], t0 + MAX_WAIT * 3 - MAX_WAIT);
        assert_eq!(c.idle_wait(t0 + MAX_WAIT * 3), None);
    }
}
