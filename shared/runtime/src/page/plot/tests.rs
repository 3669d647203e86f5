use super::*;
use crate::page::history::POINTS;

/// Coordinate pairs in every polyline plus every lone point.
fn count_points(svg: &str) -> usize {
    let mut n = svg.matches("<circle").count();
    for part in svg.split("<polyline points=\"").skip(1) {
        let attr = &part[..part.find('"').unwrap()];
        n += attr.split(' ').count();
    }
    n
}

#[test]
fn draws_every_point_and_splits_at_gaps() {
    let mut pts: Vec<Option<f64>> = (0..POINTS).map(|i| Some(i as f64)).collect();
    pts[100] = None;
    pts[101] = None;
    pts[200] = None;
    pts[202] = None; // 201 is alone: a circle
    let lines = [Line {
        label: "queries",
        points: &pts,
    }];
    let svg = line_plot(&Plot {
        title: "DNS",
        unit: "queries/s",
        lines: &lines,
    })
    .into_string();
    assert_eq!(count_points(&svg), POINTS - 4, "{svg}");
    assert_eq!(svg.matches("<polyline").count(), 3);
    assert_eq!(svg.matches("<circle").count(), 1);
    assert!(svg.contains(&format!("data-points=\"{}\"", POINTS - 4)));
    assert!(svg.contains(">−60 min<") && svg.contains(">now<"), "{svg}");
    assert!(svg.contains(">500<"), "y axis up to a round 500: {svg}");
}

#[test]
fn lines_of_two_series_and_an_empty_plot() {
    let a = vec![Some(1.0); 10];
    let b = vec![None; 10];
    let lines = [
        Line {
            label: "a",
            points: &a,
        },
        Line {
            label: "b",
            points: &b,
        },
    ];
    let svg = line_plot(&Plot {
        title: "t",
        unit: "u",
        lines: &lines,
    })
    .into_string();
    assert_eq!(count_points(&svg), 10);
    let empty = line_plot(&Plot {
        title: "t",
        unit: "u",
        lines: &lines[1..],
    })
    .into_string();
    assert_eq!(count_points(&empty), 0);
    assert!(empty.contains("no data yet"));
    assert!(empty.contains("data-points=\"0\""));
}

#[test]
fn labels_are_escaped() {
    let pts = [Some(1.0), Some(2.0)];
    let lines = [Line {
        label: "<script>alert(1)</script>",
        points: &pts,
    }];
    let svg = line_plot(&Plot {
        title: "a & \"b\"",
        unit: "<u>",
        lines: &lines,
    })
    .into_string();
    assert!(!svg.contains("<script>"), "{svg}");
    assert!(!svg.contains("<u>"), "{svg}");
    assert!(svg.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(svg.contains("a &amp; &quot;b&quot;"));
}

#[test]
fn round_axis_and_human_numbers() {
    assert_eq!(nice_ceil(7.3), 10.0);
    assert_eq!(nice_ceil(1.2), 2.0);
    assert_eq!(nice_ceil(230.0), 250.0);
    assert_eq!(nice_ceil(5.0), 5.0);
    assert_eq!(si(0.0), "0");
    assert_eq!(si(0.5), "0.5");
    assert_eq!(si(12.34), "12.3");
    assert_eq!(si(999.0), "999");
    assert_eq!(si(1500.0), "1.5k");
    assert_eq!(si(2_500_000.0), "2.5M");
    assert_eq!(si(-3000.0), "-3k");
    assert_eq!(y_range(&[]), (0.0, 1.0));
}

#[test]
fn x_ticks_cover_the_hour() {
    let t = x_ticks(POINTS);
    let labels: Vec<&str> = t.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(labels, ["−60 min", "−45 min", "−30 min", "−15 min", "now"]);
    assert_eq!(t[0].0, 0);
    assert_eq!(t[4].0, POINTS - 1);
}
