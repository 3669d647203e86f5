//! Rate-limited logging: under a flood of bad packets, one line per kind of error per window, with
//! a count of what was suppressed, instead of a line per packet.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Per-kind limiter: at most `burst` events logged per `window`.
#[derive(Debug)]
pub struct LogLimiter {
    window: Duration,
    burst: u32,
    state: Mutex<HashMap<&'static str, (Instant, u32, u64)>>,
}

impl LogLimiter {
    /// A limiter allowing `burst` lines per `window` for each kind.
    pub fn new(window: Duration, burst: u32) -> Self {
        LogLimiter {
            window,
            burst,
            state: Mutex::new(HashMap::new()),
        }
    }

    /// Should an event of `kind` be logged at `now`? `Some(suppressed)` says yes and how many were
    /// dropped since the last one logged; `None` says stay quiet.
    pub fn allow(&self, kind: &'static str, now: Instant) -> Option<u64> {
        let mut m = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let e = m.entry(kind).or_insert((now, 0, 0));
        if now.duration_since(e.0) >= self.window {
            *e = (now, 0, e.2);
        }
        if e.1 < self.burst {
            e.1 += 1;
            let suppressed = std::mem::take(&mut e.2);
            Some(suppressed)
        } else {
            e.2 += 1;
            None
        }
    }
}

/// Logs a warning at most a few times per kind and 10 seconds, saying how many were suppressed.
#[macro_export]
macro_rules! warn_limited {
    ($limiter:expr, $kind:expr, $($arg:tt)+) => {
        if let Some(suppressed) = $limiter.allow($kind, ::std::time::Instant::now()) {
            ::tracing::warn!(kind = $kind, suppressed, $($arg)+);
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_suppresses_then_reports_the_count() {
        let l = LogLimiter::new(Duration::from_secs(10), 2);
        let t = Instant::now();
        assert_eq!(l.allow("bad", t), Some(0));
        assert_eq!(l.allow("bad", t), Some(0));
        assert_eq!(l.allow("bad", t), None);
        assert_eq!(l.allow("bad", t), None);
        assert_eq!(l.allow("other", t), Some(0));
        assert_eq!(l.allow("bad", t + Duration::from_secs(11)), Some(2));
    }
}
