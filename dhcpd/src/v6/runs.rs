//! The held addresses (prefix length 128) as runs of consecutive addresses, so the first address
//! nobody holds from some point on is found in one ordered-map step instead of a scan that grows
//! with the table (the core asked up to one lookup per binding for each new address).

use std::collections::BTreeMap;

/// Maximal runs `start ..= end` of held addresses; runs never touch or overlap.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Runs {
    runs: BTreeMap<u128, u128>,
}

impl Runs {
    /// Marks `a` held (no change when it already is).
    pub fn insert(&mut self, a: u128) {
        let before = self.runs.range(..=a).next_back().map(|(s, e)| (*s, *e));
        if before.is_some_and(|(_, e)| e >= a) {
            return;
        }
        let after_end = a.checked_add(1).and_then(|n| self.runs.get(&n).copied());
        let start = match before {
            Some((s, e)) if e.checked_add(1) == Some(a) => s,
            _ => a,
        };
        let end = match after_end {
            Some(e) => {
                self.runs.remove(&(a + 1));
                e
            }
            None => a,
        };
        self.runs.insert(start, end);
    }

    /// Marks `a` free (no change when nobody held it).
    pub fn remove(&mut self, a: u128) {
        let Some((s, e)) = self.runs.range(..=a).next_back().map(|(s, e)| (*s, *e)) else {
            return;
        };
        if e < a {
            return;
        }
        self.runs.remove(&s);
        if s < a {
            self.runs.insert(s, a - 1);
        }
        if a < e {
            self.runs.insert(a + 1, e);
        }
    }

    /// The first address in `from ..= to` that is not held.
    pub fn first_free(&self, from: u128, to: u128) -> Option<u128> {
        if from > to {
            return None;
        }
        let a = match self.runs.range(..=from).next_back() {
            Some((_, e)) if *e >= from => e.checked_add(1)?,
            _ => from,
        };
        (a <= to).then_some(a)
    }

    /// Number of runs (for tests and sizing).
    pub fn len(&self) -> usize {
        self.runs.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_and_splits_runs() {
        let mut r = Runs::default();
        for a in [5, 7, 6, 9] {
            r.insert(a);
        }
        assert_eq!(r.runs, BTreeMap::from([(5, 7), (9, 9)]));
        r.insert(8);
        assert_eq!(r.runs, BTreeMap::from([(5, 9)]));
        r.insert(7);
        assert_eq!(r.len(), 1);
        r.remove(7);
        assert_eq!(r.runs, BTreeMap::from([(5, 6), (8, 9)]));
        r.remove(5);
        r.remove(9);
        r.remove(100);
        assert_eq!(r.runs, BTreeMap::from([(6, 6), (8, 8)]));
        r.remove(6);
        r.remove(8);
        assert!(r.is_empty());
    }

    #[test]
    fn first_free_skips_held_runs_within_bounds() {
        let mut r = Runs::default();
        (10..20).for_each(|a| r.insert(a));
        assert_eq!(r.first_free(0, 100), Some(0));
        assert_eq!(r.first_free(10, 100), Some(20));
        assert_eq!(r.first_free(15, 100), Some(20));
        assert_eq!(r.first_free(10, 19), None);
        assert_eq!(r.first_free(20, 19), None);
        r.insert(u128::MAX);
        assert_eq!(r.first_free(u128::MAX, u128::MAX), None);
        assert_eq!(r.first_free(u128::MAX - 1, u128::MAX), Some(u128::MAX - 1));
    }

    #[test]
    fn agrees_with_a_plain_set_under_random_changes() {
        let mut r = Runs::default();
        let mut set = std::collections::BTreeSet::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..5000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let a = u128::from(x % 64);
            if x & (1 << 40) == 0 {
                r.insert(a);
                set.insert(a);
            } else {
                r.remove(a);
                set.remove(&a);
            }
            let from = u128::from((x >> 20) % 64);
            let want = (from..64).find(|a| !set.contains(a));
            assert_eq!(r.first_free(from, 63), want);
        }
    }
}
