//! Scheduling tables shared by both data planes: the smooth weighted round-robin order (nginx's
//! algorithm, which interleaves rather than sending bursts) and a Maglev lookup table for
//! consistent source hashing (Eisenbud et al., NSDI 2016): removing one backend moves only the
//! sources that were on it.

/// Greatest common divisor.
fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Largest weighted-round-robin cycle we expand (the kernel map gets one element per slot).
pub const MAX_WRR_SLOTS: u32 = 4096;

/// The order in which a weighted round robin visits `weights` (indices), one full cycle.
/// Weights are divided by their gcd and scaled down if the cycle would exceed [`MAX_WRR_SLOTS`].
pub fn wrr_sequence(weights: &[u32]) -> Vec<usize> {
    let g = weights.iter().copied().filter(|w| *w > 0).fold(0, gcd);
    if g == 0 {
        return Vec::new();
    }
    let mut w: Vec<u32> = weights.iter().map(|x| x / g).collect();
    let total: u32 = w.iter().sum();
    if total > MAX_WRR_SLOTS {
        for x in &mut w {
            if *x > 0 {
                *x = ((u64::from(*x) * u64::from(MAX_WRR_SLOTS) / u64::from(total)) as u32).max(1);
            }
        }
    }
    let total: i64 = w.iter().map(|x| i64::from(*x)).sum();
    let mut current = vec![0i64; w.len()];
    let mut out = Vec::with_capacity(total as usize);
    for _ in 0..total {
        let mut best = 0;
        for i in 0..w.len() {
            current[i] += i64::from(w[i]);
            if current[i] > current[best] {
                best = i;
            }
        }
        current[best] -= total;
        out.push(best);
    }
    out
}

/// FNV-1a, 64 bit, with a seed mixed in first.
pub fn fnv(seed: u64, data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Size of the Maglev table for `n` backends (prime, about 100 slots per backend at least).
pub fn maglev_size(n: usize) -> usize {
    match n {
        0..=2 => 251,
        3..=40 => 4093,
        _ => 65537,
    }
}

/// Maglev lookup table of size `m` (prime) over backends named `keys` with `weights`: entry `i`
/// is the index of the backend serving hash bucket `i`. Empty when no backend has weight.
pub fn maglev(keys: &[String], weights: &[u32], m: usize) -> Vec<usize> {
    let n = keys.len();
    if n == 0 || weights.iter().all(|w| *w == 0) {
        return Vec::new();
    }
    let g = weights.iter().copied().filter(|w| *w > 0).fold(0, gcd);
    let turns: Vec<u32> = weights.iter().map(|w| (w / g).min(64)).collect();
    let perm: Vec<(usize, usize)> = keys
        .iter()
        .map(|k| {
            let offset = (fnv(0x5bd1_e995, k.as_bytes()) % m as u64) as usize;
            let skip = (fnv(0x1b87_3593, k.as_bytes()) % (m as u64 - 1)) as usize + 1;
            (offset, skip)
        })
        .collect();
    let mut next = vec![0usize; n];
    let mut entry = vec![usize::MAX; m];
    let mut filled = 0;
    'outer: loop {
        for i in 0..n {
            for _ in 0..turns[i] {
                let (offset, skip) = perm[i];
                let mut c = (offset + next[i] * skip) % m;
                while entry[c] != usize::MAX {
                    next[i] += 1;
                    c = (offset + next[i] * skip) % m;
                }
                entry[c] = i;
                next[i] += 1;
                filled += 1;
                if filled == m {
                    break 'outer;
                }
            }
        }
    }
    entry
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrr_interleaves_by_weight() {
        let s = wrr_sequence(&[5, 1, 1]);
        assert_eq!(s, vec![0, 0, 1, 0, 2, 0, 0]);
        assert_eq!(wrr_sequence(&[2, 2]), vec![0, 1]);
        assert_eq!(wrr_sequence(&[1, 3]).len(), 4);
        assert!(wrr_sequence(&[]).is_empty());
    }

    #[test]
    fn wrr_cycle_is_bounded() {
        let s = wrr_sequence(&[1000, 999, 997, 991, 983]);
        assert!(s.len() as u32 <= MAX_WRR_SLOTS + 5, "{}", s.len());
        let c0 = s.iter().filter(|x| **x == 0).count();
        let c4 = s.iter().filter(|x| **x == 4).count();
        assert!(c0 >= c4);
    }

    #[test]
    fn maglev_is_balanced_and_consistent() {
        let keys: Vec<String> = (0..3).map(|i| format!("10.0.0.{i}:80")).collect();
        let m = 4093;
        let t = maglev(&keys, &[1, 1, 1], m);
        assert_eq!(t.len(), m);
        for i in 0..3 {
            let c = t.iter().filter(|x| **x == i).count();
            assert!((1300..=1430).contains(&c), "backend {i}: {c}");
        }
        // Remove backend 1: buckets owned by 0 or 2 mostly stay put.
        let keys2 = vec![keys[0].clone(), keys[2].clone()];
        let t2 = maglev(&keys2, &[1, 1], m);
        let moved = (0..m)
            .filter(|&b| t[b] != 1)
            .filter(|&b| keys[t[b]] != keys2[t2[b]])
            .count();
        assert!(moved < m / 10, "{moved} buckets moved");
    }

    #[test]
    fn maglev_weights_shift_share() {
        let keys: Vec<String> = vec!["a".into(), "b".into()];
        let t = maglev(&keys, &[3, 1], 4093);
        let a = t.iter().filter(|x| **x == 0).count();
        assert!(a > 2800 && a < 3300, "{a}");
    }
}
