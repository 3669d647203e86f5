//! Rate-limited warnings for the packet path.

use std::time::{Duration, Instant};

/// Logs at most one warning a second, with a count of those suppressed.
#[derive(Debug, Default)]
pub(super) struct RateLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLog {
    pub(super) fn warn(&mut self, f: impl FnOnce(u64)) {
        let t = Instant::now();
        if self
            .last
            .is_none_or(|l| t.duration_since(l) >= Duration::from_secs(1))
        {
            f(self.suppressed);
            self.suppressed = 0;
            self.last = Some(t);
        } else {
            self.suppressed += 1;
        }
    }
}
