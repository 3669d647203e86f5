//! A client's view of a failover over IPv6: requests in a bounded loop, a node killed as a machine
//! dies, and the gap between the last answer before the kill and the first from the new holder.

use std::time::{Duration, Instant};

use e2e::{Host, Proc};
use nix::sys::signal::Signal;

/// At most this many tries per loop...
pub const MAX_TRIES: usize = 300;
/// ...and at most this long.
pub const MAX_LOOP: Duration = Duration::from_secs(20);

/// The node dies as a machine does: lbd killed with -9 and its link down at once.
pub fn kill_node(h: &Host, lbd: &mut Proc) {
    lbd.signal(Signal::SIGKILL);
    h.run(&["ip", "link", "set", "eth0", "down"]);
    let _ = lbd.wait_exit(Duration::from_secs(2));
}

/// One `curl -6` from `client` to `url` within `limit`: the body (the answering node's name).
pub fn get6(client: &Host, url: &str, limit: Duration) -> Option<String> {
    let out = client
        .run_timeout(
            &[
                "curl",
                "-6",
                "-gsS",
                "--max-time",
                &format!("{}", limit.as_secs_f64()),
                url,
            ],
            None,
            limit + Duration::from_secs(2),
        )
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The client's tries across an event: (start, end, answer).
pub type Tries = Vec<(Instant, Instant, Option<String>)>;

/// The answers in order, `-` for a failed try (for failure messages).
pub fn summary(tries: &Tries) -> String {
    tries
        .iter()
        .map(|t| t.2.as_deref().unwrap_or("-"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Tries `get` in a loop (bounded by [`MAX_TRIES`] and [`MAX_LOOP`]), calls `event` once `before`
/// answers came, and goes on until `by` answered 3 times after it: the tries and the event time.
pub fn client_loop(
    mut get: impl FnMut() -> Option<String>,
    before: usize,
    event: impl FnOnce(),
    by: &str,
) -> (Tries, Instant) {
    let mut tries: Tries = Vec::new();
    let mut event = Some(event);
    let mut at: Option<Instant> = None;
    let t0 = Instant::now();
    for _ in 0..MAX_TRIES {
        if t0.elapsed() > MAX_LOOP {
            break;
        }
        let start = Instant::now();
        let answer = get();
        tries.push((start, Instant::now(), answer));
        match at {
            None if tries.iter().filter(|t| t.2.is_some()).count() >= before => {
                (event.take().expect("once"))();
                at = Some(Instant::now());
            }
            Some(e)
                if tries
                    .iter()
                    .filter(|t| t.0 > e && t.2.as_deref() == Some(by))
                    .count()
                    >= 3 =>
            {
                break;
            }
            _ => {}
        }
    }
    let at = at.unwrap_or_else(|| panic!("never answered {before} times: {}", summary(&tries)));
    (tries, at)
}

/// The gap from the end of the last answer before `event` to the end of the first answer by
/// `by` after it, and the failed tries in between.
pub fn gap(tries: &Tries, event: Instant, by: &str) -> (Duration, usize) {
    let before = tries
        .iter()
        .filter(|t| t.1 <= event && t.2.is_some())
        .map(|t| t.1)
        .next_back()
        .expect("answered before the event");
    let after = tries
        .iter()
        .find(|t| t.0 > event && t.2.as_deref() == Some(by))
        .map(|t| t.1)
        .unwrap_or_else(|| {
            panic!(
                "never answered by {by} after the event ({} tries): {}",
                tries.len(),
                summary(tries)
            )
        });
    let failed = tries
        .iter()
        .filter(|t| t.0 >= before && t.1 <= after && t.2.is_none())
        .count();
    (after - before, failed)
}
