//! Line plots of the last hour, rendered on the server as inline SVG.
//!
//! Hand-written rather than drawn with `plotters`: a line plot with two axes is a few dozen lines
//! of SVG, while `plotters` (even with only its SVG backend) brings its own text layout and
//! colour crates for what is here a `polyline`. The SVG is built with maud like the rest of the
//! page, so every label is escaped; it needs no JavaScript and no fonts or files from elsewhere,
//! and scales to the width of its box (phone or desktop). Text and axes use `currentColor`, so the
//! page's colour scheme (light or dark) applies.

use maud::{Markup, html};

use super::history::STEP;

/// One line of a plot: a label and its points, oldest first, evenly spaced, `None` for a gap
/// (typically [`super::history::Series::window`]).
#[derive(Clone, Copy, Debug)]
pub struct Line<'a> {
    /// Shown in the legend with the newest value.
    pub label: &'a str,
    /// The values; the last one is "now", each [`STEP`] after the one before.
    pub points: &'a [Option<f64>],
}

/// A plot: a title, the unit of the y axis and its lines (colours are assigned in order).
#[derive(Clone, Copy, Debug)]
pub struct Plot<'a> {
    /// Above the plot.
    pub title: &'a str,
    /// The y axis' unit, e.g. `"queries/s"`.
    pub unit: &'a str,
    /// The lines, drawn in order; a plot reads best with up to eight.
    pub lines: &'a [Line<'a>],
}

/// Line colours, in order (a palette that stays apart for the common colour blindnesses).
pub const COLOURS: [&str; 8] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#9c755f",
];

const W: f64 = 440.0;
const H: f64 = 200.0;
const LEFT: f64 = 46.0;
const RIGHT: f64 = 10.0;
const TOP: f64 = 22.0;
const BOTTOM: f64 = 24.0;

/// The plot as a `<figure>` holding the SVG and an HTML legend (which wraps on narrow screens).
/// The `<svg>` carries `data-points`, the number of points drawn.
pub fn line_plot(plot: &Plot<'_>) -> Markup {
    let n = plot.lines.iter().map(|l| l.points.len()).max().unwrap_or(0);
    let (lo, hi) = y_range(plot.lines);
    let x = |i: usize| {
        if n <= 1 {
            W - RIGHT
        } else {
            LEFT + (W - LEFT - RIGHT) * i as f64 / (n - 1) as f64
        }
    };
    let y = |v: f64| TOP + (H - TOP - BOTTOM) * (hi - v) / (hi - lo);
    let mut drawn = 0usize;
    let mut shapes = Vec::new();
    for (k, line) in plot.lines.iter().enumerate() {
        let colour = COLOURS[k % COLOURS.len()];
        // Lines shorter than the longest are aligned on "now" (the right edge).
        let offset = n - line.points.len();
        for seg in segments(line.points) {
            drawn += seg.len();
            let coords: Vec<(f64, f64)> = seg.iter().map(|&(i, v)| (x(i + offset), y(v))).collect();
            shapes.push((colour, coords));
        }
    }
    let yticks = [lo, (lo + hi) / 2.0, hi];
    let xticks = x_ticks(n);
    html! {
        figure.plot {
            figcaption { (plot.title) }
            svg xmlns="http://www.w3.org/2000/svg" viewBox=(format!("0 0 {W} {H}"))
                role="img" aria-label=(format!("{} ({})", plot.title, plot.unit))
                data-points=(drawn) font-size="13" fill="currentColor" {
                title { (plot.title) " (" (plot.unit) ")" }
                @for t in yticks {
                    line.grid x1=(LEFT) x2=(W - RIGHT) y1=(r1(y(t))) y2=(r1(y(t)))
                        stroke="currentColor" stroke-opacity="0.2" {}
                    text x=(LEFT - 4.0) y=(r1(y(t) + 4.0)) text-anchor="end" { (si(t)) }
                }
                @for (i, label) in &xticks {
                    text x=(r1(x(*i))) y=(H - 6.0) text-anchor=(anchor(*i, n)) { (label) }
                }
                line x1=(LEFT) x2=(LEFT) y1=(TOP) y2=(H - BOTTOM)
                    stroke="currentColor" stroke-opacity="0.6" {}
                line x1=(LEFT) x2=(W - RIGHT) y1=(H - BOTTOM) y2=(H - BOTTOM)
                    stroke="currentColor" stroke-opacity="0.6" {}
                text x=(LEFT - 4.0) y="12" opacity="0.8" { (plot.unit) }
                @if drawn == 0 {
                    text x=(W / 2.0) y=(H / 2.0) text-anchor="middle" opacity="0.7" {
                        "no data yet"
                    }
                }
                @for (colour, coords) in &shapes {
                    @if coords.len() == 1 {
                        circle.pt cx=(r1(coords[0].0)) cy=(r1(coords[0].1)) r="2" fill=(colour) {}
                    } @else {
                        polyline points=(points_attr(coords)) fill="none" stroke=(colour)
                            stroke-width="1.5" stroke-linejoin="round" {}
                    }
                }
            }
            ul.legend {
                @for (k, line) in plot.lines.iter().enumerate() {
                    li {
                        svg.key width="10" height="10" viewBox="0 0 10 10" aria-hidden="true" {
                            rect width="10" height="10" fill=(COLOURS[k % COLOURS.len()]) {}
                        }
                        " " (line.label) " "
                        span.now { (latest(line.points)) }
                    }
                }
            }
        }
    }
}

/// The newest value as text, a dash for a gap.
fn latest(points: &[Option<f64>]) -> String {
    points
        .last()
        .copied()
        .flatten()
        .map_or_else(|| "–".to_owned(), si)
}

/// Where an x label stands against its tick: the first and last inside the plot.
fn anchor(i: usize, n: usize) -> &'static str {
    if i == 0 {
        "start"
    } else if i + 1 == n {
        "end"
    } else {
        "middle"
    }
}

/// Runs of consecutive present points, as (index, value).
fn segments(points: &[Option<f64>]) -> Vec<Vec<(usize, f64)>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    for (i, p) in points.iter().enumerate() {
        match p {
            Some(v) if v.is_finite() => cur.push((i, *v)),
            _ => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The y axis' range: from 0 (or the lowest value, if negative) to a round number at or above
/// the highest value.
fn y_range(lines: &[Line<'_>]) -> (f64, f64) {
    let vals = lines
        .iter()
        .flat_map(|l| l.points.iter().flatten())
        .filter(|v| v.is_finite());
    let (mut lo, mut hi) = (0.0_f64, 0.0_f64);
    for &v in vals {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    let hi = if hi > 0.0 { nice_ceil(hi) } else { 1.0 };
    let lo = if lo < 0.0 { -nice_ceil(-lo) } else { 0.0 };
    (lo, hi)
}

/// The smallest of 1, 2, 2.5, 5 × 10^k that is at least `v` (`v` > 0).
fn nice_ceil(v: f64) -> f64 {
    let mag = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * mag >= v * (1.0 - 1e-9) {
            return m * mag;
        }
    }
    10.0 * mag
}

/// Ticks on the x axis every quarter of the span: ("−45 min", …, "now").
fn x_ticks(n: usize) -> Vec<(usize, String)> {
    if n < 2 {
        return vec![(0, "now".to_owned())];
    }
    (0..=4)
        .map(|q| {
            let i = (n - 1) * q / 4;
            let back = STEP * (n - 1 - i) as u32;
            let label = if i == n - 1 {
                "now".to_owned()
            } else if back.as_secs() >= 120 {
                format!("−{} min", (back.as_secs() + 30) / 60)
            } else {
                format!("−{} s", back.as_secs())
            };
            (i, label)
        })
        .collect()
}

/// A value for a human: up to three significant digits, with k, M, G, T above a thousand.
pub fn si(v: f64) -> String {
    let a = v.abs();
    let (div, suffix) = match a {
        a if a >= 1e12 => (1e12, "T"),
        a if a >= 1e9 => (1e9, "G"),
        a if a >= 1e6 => (1e6, "M"),
        a if a >= 1e3 => (1e3, "k"),
        _ => (1.0, ""),
    };
    let s = v / div;
    let text = if s.abs() >= 100.0 || s.fract() == 0.0 {
        format!("{s:.0}")
    } else if s.abs() >= 10.0 {
        format!("{s:.1}")
    } else if s.abs() >= 0.01 || s == 0.0 {
        format!("{s:.2}")
    } else {
        format!("{s:.1e}")
    };
    let text = if text.contains('.') && !text.contains('e') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    };
    format!("{text}{suffix}")
}

fn r1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

fn points_attr(coords: &[(f64, f64)]) -> String {
    let mut s = String::with_capacity(coords.len() * 12);
    for (k, (x, y)) in coords.iter().enumerate() {
        if k > 0 {
            s.push(' ');
        }
        s.push_str(&format!("{},{}", r1(*x), r1(*y)));
    }
    s
}

#[cfg(test)]
mod tests;
