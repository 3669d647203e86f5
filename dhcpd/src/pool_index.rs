//! Which pool an address falls in, by binary search over the pools sorted by first address:
//! the host file's pools never overlap (the validator refuses it), so at most one holds any
//! address. The DHCPv6 census uses it, so 500,000 bindings cost one walk of the table rather
//! than one per pool (the v4 table keeps its counts per change instead).

/// Pools as `(first, last)` address pairs, searchable by address; indices are the pools'
/// positions in the order given to [`PoolIndex::new`].
#[derive(Debug)]
pub struct PoolIndex<A> {
    /// `(first, last, position)`, sorted by `first`.
    sorted: Vec<(A, A, usize)>,
}

impl<A: Ord + Copy> PoolIndex<A> {
    /// Indexes pools given as `(first, last)`, in their order.
    pub fn new(ranges: impl IntoIterator<Item = (A, A)>) -> Self {
        let mut sorted: Vec<_> = ranges
            .into_iter()
            .enumerate()
            .map(|(i, (first, last))| (first, last, i))
            .collect();
        sorted.sort_by_key(|&(first, _, _)| first);
        PoolIndex { sorted }
    }

    /// Number of pools.
    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// True when there are no pools.
    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// The position of the pool holding `a`, if any.
    pub fn find(&self, a: A) -> Option<usize> {
        let at = self.sorted.partition_point(|&(first, _, _)| first <= a);
        let &(_, last, i) = self.sorted.get(at.checked_sub(1)?)?;
        (a <= last).then_some(i)
    }
}

#[cfg(test)]
mod tests {
    use super::PoolIndex;

    #[test]
    fn an_address_finds_the_pool_holding_it_or_none() {
        // Given out of order: positions follow the input, not the sort.
        let p = PoolIndex::new([(50u32, 59), (10, 19), (30, 30)]);
        assert_eq!(p.len(), 3);
        let found: Vec<_> = [9, 10, 19, 20, 30, 31, 49, 50, 55, 59, 60]
            .into_iter()
            .map(|a| p.find(a))
            .collect();
        let want = [
            None,
            Some(1),
            Some(1),
            None,
            Some(2),
            None,
            None,
            Some(0),
            Some(0),
            Some(0),
            None,
        ];
        assert_eq!(found, want);
        assert!(PoolIndex::<u32>::new([]).find(5).is_none());
    }
}
