//! The last hour of a daemon's figures, kept in the daemon: one fixed ring per series.
//!
//! A series holds [`POINTS`] slots of [`STEP`] each (360 × 10 s = one hour). A sampler calls
//! [`Series::sample`] with the time and the current value, about once per step; the series turns
//! counters into rates per second (from the delta to the previous sample) and keeps gauges as they
//! are. A slot nobody sampled (the daemon was busy, the sampler stalled) stays a gap, drawn as a
//! break in the line rather than as a made-up value.
//!
//! Memory is bounded and allocated once: a series is its ring of 360 `f32` (1,440 bytes) plus a
//! few fixed fields; [`History`] holds at most the number of series it was built with, so a daemon
//! with `max_series` = 256 spends about 400 KiB on its history at most. `f32` keeps about
//! seven significant digits, plenty for a plot. Everything here is pure: time is passed in.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The width of one slot.
pub const STEP: Duration = Duration::from_secs(10);
/// Slots per series: one hour at [`STEP`].
pub const POINTS: usize = 360;

/// How a series reads its samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A monotonic total (packets, bytes): stored as a rate per second.
    Counter,
    /// A level (leases in use, connections): stored as sampled.
    Gauge,
}

/// One series: a ring of the last [`POINTS`] slots.
#[derive(Clone, Debug)]
pub struct Series {
    kind: Kind,
    /// Slot values, `NaN` for a gap; `ring[slot % POINTS]`.
    ring: Box<[f32]>,
    /// The time slot 0 starts at: the first sample's time.
    origin: Option<Instant>,
    /// The newest slot written, counted from `origin`.
    head: u64,
    /// Counters: the last raw sample of an earlier slot, the base of the current slot's rate.
    base: Option<(Instant, f64)>,
    /// The last raw sample.
    last: Option<(Instant, f64)>,
}

impl Series {
    /// An empty series of `kind`.
    pub fn new(kind: Kind) -> Self {
        Series {
            kind,
            ring: vec![f32::NAN; POINTS].into_boxed_slice(),
            origin: None,
            head: 0,
            base: None,
            last: None,
        }
    }

    /// An empty counter series (stored as a rate per second).
    pub fn counter() -> Self {
        Self::new(Kind::Counter)
    }

    /// An empty gauge series.
    pub fn gauge() -> Self {
        Self::new(Kind::Gauge)
    }

    /// The series' kind.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Records `value` seen at `now`.
    ///
    /// A sample older than the newest slot is ignored (time does not run backwards here); a second
    /// sample in the same slot replaces the first (a counter's rate is then taken from the previous
    /// slot's last sample, over the longer span). Slots skipped since the last sample become gaps.
    /// A counter's first sample, and a sample after the counter went down (the daemon's counters
    /// were reset), give no rate: that slot is a gap and the next one has a rate again. After a
    /// gap, a counter's rate is the average over the whole span since the last sample.
    pub fn sample(&mut self, now: Instant, value: f64) {
        let origin = *self.origin.get_or_insert(now);
        let Some(since) = now.checked_duration_since(origin) else {
            return;
        };
        let slot = (since.as_nanos() / STEP.as_nanos()) as u64;
        let first = self.last.is_none();
        if !first && slot < self.head {
            return;
        }
        if first || slot > self.head {
            // Blank the skipped slots (at most one lap) and open the new one.
            let from = if first { slot } else { self.head + 1 };
            let from = from.max(slot.saturating_sub(POINTS as u64 - 1));
            for s in from..=slot {
                self.ring[(s % POINTS as u64) as usize] = f32::NAN;
            }
            self.head = slot;
            self.base = self.last;
        }
        let stored = match self.kind {
            Kind::Gauge => Some(value),
            Kind::Counter => self.base.and_then(|(t, v)| {
                let dt = now.checked_duration_since(t)?.as_secs_f64();
                (dt > 0.0 && value >= v).then(|| (value - v) / dt)
            }),
        };
        self.ring[(slot % POINTS as u64) as usize] = stored.map_or(f32::NAN, |v| v as f32);
        self.last = Some((now, value));
    }

    /// The hour ending at `now`, oldest first: always [`POINTS`] entries, the last one the slot
    /// `now` falls in, `None` where nothing was recorded (before the first sample, gaps, and
    /// the time since the last sample if the sampler stopped).
    pub fn window(&self, now: Instant) -> Vec<Option<f64>> {
        let mut out = vec![None; POINTS];
        let Some(origin) = self.origin else {
            return out;
        };
        let Some(since) = now.checked_duration_since(origin) else {
            return out;
        };
        let now_slot = (since.as_nanos() / STEP.as_nanos()) as u64;
        for (i, cell) in out.iter_mut().enumerate() {
            // Entry i is slot now_slot - (POINTS - 1 - i).
            let back = (POINTS - 1 - i) as u64;
            let Some(slot) = now_slot.checked_sub(back) else {
                continue;
            };
            if slot > self.head || self.head - slot >= POINTS as u64 {
                continue;
            }
            let v = self.ring[(slot % POINTS as u64) as usize];
            if !v.is_nan() {
                *cell = Some(f64::from(v));
            }
        }
        out
    }

    /// The newest stored value (a rate for counters), if the newest slot has one.
    pub fn latest(&self) -> Option<f64> {
        self.last?;
        let v = self.ring[(self.head % POINTS as u64) as usize];
        (!v.is_nan()).then_some(f64::from(v))
    }

    /// When the series was last sampled.
    pub fn last_sampled(&self) -> Option<Instant> {
        self.last.map(|(t, _)| t)
    }
}

/// A daemon's series by name, at most `max_series` of them.
#[derive(Clone, Debug)]
pub struct History {
    series: BTreeMap<String, Series>,
    max_series: usize,
    refused: u64,
}

impl History {
    /// An empty history that keeps at most `max_series` series.
    pub fn new(max_series: usize) -> Self {
        History {
            series: BTreeMap::new(),
            max_series,
            refused: 0,
        }
    }

    /// Records `value` for the series `name` (created as `kind` on first use). Returns false, and
    /// records nothing, when `name` is new and the history is full, or when `name` exists with the
    /// other kind.
    pub fn sample(&mut self, name: &str, kind: Kind, now: Instant, value: f64) -> bool {
        if let Some(s) = self.series.get_mut(name) {
            if s.kind != kind {
                return false;
            }
            s.sample(now, value);
            return true;
        }
        if self.series.len() >= self.max_series {
            self.refused += 1;
            return false;
        }
        let mut s = Series::new(kind);
        s.sample(now, value);
        self.series.insert(name.to_owned(), s);
        true
    }

    /// The series `name`, if any.
    pub fn get(&self, name: &str) -> Option<&Series> {
        self.series.get(name)
    }

    /// The window of `name` ending at `now` ([`Series::window`]); all gaps without such a series.
    pub fn window(&self, name: &str, now: Instant) -> Vec<Option<f64>> {
        self.get(name)
            .map_or_else(|| vec![None; POINTS], |s| s.window(now))
    }

    /// Series names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.series.keys().map(String::as_str)
    }

    /// Number of series held.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// True when no series is held.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// How many new series were refused because the history was full.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// Drops the series not sampled for a whole window (a removed backend, a deleted zone): their
    /// plot would be empty anyway, and the room goes to new series.
    pub fn prune(&mut self, now: Instant) {
        let window = STEP * POINTS as u32;
        self.series.retain(|_, s| {
            s.last_sampled()
                .and_then(|t| now.checked_duration_since(t))
                .is_none_or(|age| age < window)
        });
    }
}

#[cfg(test)]
mod tests;
