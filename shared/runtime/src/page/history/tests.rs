use super::*;

fn at(t0: Instant, secs: u64) -> Instant {
    t0 + Duration::from_secs(secs)
}

fn filled(w: &[Option<f64>]) -> Vec<f64> {
    w.iter().flatten().copied().collect()
}

#[test]
fn gauge_keeps_values_in_order() {
    let t0 = Instant::now();
    let mut s = Series::gauge();
    for i in 0..5u64 {
        s.sample(at(t0, i * 10), i as f64 * 2.0);
    }
    let w = s.window(at(t0, 40));
    assert_eq!(w.len(), POINTS);
    assert_eq!(filled(&w), vec![0.0, 2.0, 4.0, 6.0, 8.0]);
    assert_eq!(w[POINTS - 1], Some(8.0));
    assert_eq!(s.latest(), Some(8.0));
}

#[test]
fn counter_gives_rate_per_second() {
    let t0 = Instant::now();
    let mut s = Series::counter();
    s.sample(at(t0, 0), 100.0);
    assert_eq!(s.latest(), None, "one sample has no rate");
    s.sample(at(t0, 10), 150.0);
    s.sample(at(t0, 20), 350.0);
    let w = s.window(at(t0, 20));
    assert_eq!(w[POINTS - 3], None);
    assert_eq!(w[POINTS - 2], Some(5.0));
    assert_eq!(w[POINTS - 1], Some(20.0));
}

#[test]
fn counter_reset_is_a_gap_then_rates_again() {
    let t0 = Instant::now();
    let mut s = Series::counter();
    s.sample(at(t0, 0), 1000.0);
    s.sample(at(t0, 10), 1100.0);
    s.sample(at(t0, 20), 5.0); // daemon restarted its counters
    s.sample(at(t0, 30), 55.0);
    let w = s.window(at(t0, 30));
    assert_eq!(&w[POINTS - 3..], &[Some(10.0), None, Some(5.0)]);
}

#[test]
fn second_sample_in_a_slot_replaces_the_first() {
    let t0 = Instant::now();
    let mut g = Series::gauge();
    g.sample(at(t0, 0), 1.0);
    g.sample(at(t0, 3), 7.0);
    assert_eq!(filled(&g.window(at(t0, 5))), vec![7.0]);

    let mut c = Series::counter();
    c.sample(at(t0, 0), 0.0);
    c.sample(at(t0, 10), 100.0); // 10/s over 10 s
    c.sample(at(t0, 15), 200.0); // same slot: 200 over 15 s from the previous slot's sample
    let w = c.window(at(t0, 15));
    assert_eq!(w[POINTS - 1], Some(f64::from((200.0_f64 / 15.0) as f32)));
}

#[test]
fn missed_slots_are_gaps_and_the_rate_spans_them() {
    let t0 = Instant::now();
    let mut s = Series::counter();
    s.sample(at(t0, 0), 0.0);
    s.sample(at(t0, 10), 10.0);
    // The sampler stalls for 40 s.
    s.sample(at(t0, 50), 50.0);
    let w = s.window(at(t0, 50));
    assert_eq!(
        &w[POINTS - 6..],
        &[None, Some(1.0), None, None, None, Some(1.0)]
    );
}

#[test]
fn window_ages_out_after_the_sampler_stops() {
    let t0 = Instant::now();
    let mut s = Series::gauge();
    s.sample(at(t0, 0), 3.0);
    assert_eq!(s.window(at(t0, 100))[POINTS - 11], Some(3.0));
    assert_eq!(s.window(at(t0, 100))[POINTS - 1], None);
    // One hour later the sample has left the window.
    assert!(filled(&s.window(at(t0, 3600))).is_empty());
    assert_eq!(filled(&s.window(at(t0, 3590))), vec![3.0]);
}

#[test]
fn ring_wraps_and_keeps_only_the_last_hour() {
    let t0 = Instant::now();
    let mut s = Series::gauge();
    let n = POINTS as u64 * 2 + 17;
    for i in 0..n {
        s.sample(at(t0, i * 10), i as f64);
    }
    let w = s.window(at(t0, (n - 1) * 10));
    let got = filled(&w);
    assert_eq!(got.len(), POINTS);
    let want: Vec<f64> = (n - POINTS as u64..n).map(|i| i as f64).collect();
    assert_eq!(got, want);
}

#[test]
fn a_gap_longer_than_the_ring_clears_it() {
    let t0 = Instant::now();
    let mut s = Series::gauge();
    for i in 0..100u64 {
        s.sample(at(t0, i * 10), 1.0);
    }
    s.sample(at(t0, 990 + 5000), 2.0);
    assert_eq!(filled(&s.window(at(t0, 990 + 5000))), vec![2.0]);
}

#[test]
fn samples_from_the_past_are_ignored() {
    let t0 = Instant::now();
    let mut s = Series::gauge();
    s.sample(at(t0, 100), 1.0);
    s.sample(at(t0, 50), 9.0);
    s.sample(t0, 9.0); // before the origin
    assert_eq!(filled(&s.window(at(t0, 100))), vec![1.0]);
}

#[test]
fn history_is_bounded_and_prunes_stale_series() {
    let t0 = Instant::now();
    let mut h = History::new(2);
    assert!(h.sample("a", Kind::Gauge, t0, 1.0));
    assert!(h.sample("b", Kind::Counter, t0, 1.0));
    assert!(!h.sample("c", Kind::Gauge, t0, 1.0), "full");
    assert!(!h.sample("a", Kind::Counter, t0, 1.0), "kind mismatch");
    assert_eq!(h.len(), 2);
    assert_eq!(h.refused(), 1);
    assert_eq!(h.names().collect::<Vec<_>>(), ["a", "b"]);
    h.sample("a", Kind::Gauge, at(t0, 3000), 2.0);
    h.prune(at(t0, 3600));
    assert_eq!(h.names().collect::<Vec<_>>(), ["a"]);
    assert!(h.sample("c", Kind::Gauge, at(t0, 3600), 1.0));
    assert_eq!(h.window("nope", t0).len(), POINTS);
}
