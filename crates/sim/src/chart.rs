//! Small hand-written SVG charts: lines (with optional confidence bands) and grouped bars.
//! Output is a pure function of the data (fixed formatting), so equal results give equal bytes.

use std::fmt::Write;

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 420.0;
const LEFT: f64 = 78.0;
const RIGHT: f64 = 170.0;
const TOP: f64 = 44.0;
const BOTTOM: f64 = 56.0;
const COLOURS: [&str; 10] = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

#[derive(Clone, Debug, Default)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    /// (x, low, high) of a confidence band.
    pub band: Vec<(f64, f64, f64)>,
    /// Draw points as bars from zero (e.g. volume) instead of a line.
    pub bars: bool,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// "Nice" tick step for a range (1, 2 or 5 × 10^k).
fn step(range: f64, ticks: f64) -> f64 {
    if range.is_nan() || range <= 0.0 {
        return 1.0;
    }
    let raw = range / ticks;
    let magnitude = 10f64.powf(raw.log10().floor());
    let m = raw / magnitude;
    let nice = if m <= 1.0 {
        1.0
    } else if m <= 2.0 {
        2.0
    } else if m <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * magnitude
}

fn label(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 100.0 || (v.fract() == 0.0) {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

struct Frame {
    x0: f64,
    x1: f64,
    y0: f64,
    y1: f64,
}

impl Frame {
    fn x(&self, v: f64) -> f64 {
        let span = if self.x1 > self.x0 { self.x1 - self.x0 } else { 1.0 };
        LEFT + (v - self.x0) / span * (WIDTH - LEFT - RIGHT)
    }
    fn y(&self, v: f64) -> f64 {
        let span = if self.y1 > self.y0 { self.y1 - self.y0 } else { 1.0 };
        HEIGHT - BOTTOM - (v - self.y0) / span * (HEIGHT - TOP - BOTTOM)
    }
}

fn head(out: &mut String, title: &str, x_label: &str, y_label: &str) {
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" font-family=\"sans-serif\" font-size=\"12\">\n\
<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
<text x=\"{}\" y=\"24\" font-size=\"15\" font-weight=\"bold\">{}</text>\n\
<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n\
<text transform=\"translate(16,{}) rotate(-90)\" text-anchor=\"middle\">{}</text>\n",
        LEFT,
        escape(title),
        LEFT + (WIDTH - LEFT - RIGHT) / 2.0,
        HEIGHT - 14.0,
        escape(x_label),
        TOP + (HEIGHT - TOP - BOTTOM) / 2.0,
        escape(y_label)
    );
}

fn y_axis(out: &mut String, f: &Frame) {
    let s = step(f.y1 - f.y0, 6.0);
    let mut v = (f.y0 / s).ceil() * s;
    while v <= f.y1 + s * 1e-9 {
        let y = f.y(v);
        let _ = writeln!(out, "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#e0e0e0\"/>", WIDTH - RIGHT);
        let _ = writeln!(out, "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>", LEFT - 6.0, y + 4.0, label(v));
        v += s;
    }
    let _ = writeln!(
        out,
        "<line x1=\"{LEFT}\" x2=\"{LEFT}\" y1=\"{TOP}\" y2=\"{:.1}\" stroke=\"black\"/><line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"black\"/>",
        HEIGHT - BOTTOM,
        WIDTH - RIGHT,
        f.y(f.y0.max(0.0).min(f.y1)),
        f.y(f.y0.max(0.0).min(f.y1))
    );
}

fn legend(out: &mut String, names: &[&str]) {
    for (i, name) in names.iter().enumerate() {
        let y = TOP + 8.0 + i as f64 * 18.0;
        let x = WIDTH - RIGHT + 14.0;
        let _ = writeln!(out, "<rect x=\"{x}\" y=\"{:.1}\" width=\"12\" height=\"12\" fill=\"{}\"/>", y - 10.0, COLOURS[i % COLOURS.len()]);
        let _ = writeln!(out, "<text x=\"{}\" y=\"{y:.1}\">{}</text>", x + 18.0, escape(name));
    }
}

fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if lo > hi {
        (0.0, 1.0)
    } else if lo == hi {
        (lo - 1.0, hi + 1.0)
    } else {
        (lo, hi)
    }
}

/// A line chart; the y axis starts at zero unless values are negative.
pub fn lines(title: &str, x_label: &str, y_label: &str, series: &[Series]) -> String {
    let (x0, x1) = range(series.iter().flat_map(|s| s.points.iter().map(|p| p.0)));
    let (ylo, yhi) = range(series.iter().flat_map(|s| s.points.iter().map(|p| p.1).chain(s.band.iter().flat_map(|b| [b.1, b.2]))));
    let s = step(yhi - ylo.min(0.0), 6.0);
    let f = Frame { x0, x1, y0: (ylo.min(0.0) / s).floor() * s, y1: (yhi / s).ceil() * s };
    let mut out = String::new();
    head(&mut out, title, x_label, y_label);
    y_axis(&mut out, &f);
    let xs = step(x1 - x0, 8.0);
    let mut v = (x0 / xs).ceil() * xs;
    while v <= x1 + xs * 1e-9 {
        let x = f.x(v);
        let _ = writeln!(out, "<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>", HEIGHT - BOTTOM + 16.0, label(v));
        v += xs;
    }
    for (i, s) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        if !s.band.is_empty() {
            let mut d = String::new();
            for (j, (x, _, hi)) in s.band.iter().enumerate() {
                let _ = write!(d, "{}{:.1},{:.1} ", if j == 0 { "M" } else { "L" }, f.x(*x), f.y(*hi));
            }
            for (x, lo, _) in s.band.iter().rev() {
                let _ = write!(d, "L{:.1},{:.1} ", f.x(*x), f.y(*lo));
            }
            let _ = writeln!(out, "<path d=\"{}Z\" fill=\"{colour}\" fill-opacity=\"0.18\" stroke=\"none\"/>", d);
        }
        if s.bars {
            let width = ((WIDTH - LEFT - RIGHT) / s.points.len().max(1) as f64 * 0.8).max(0.5);
            for (x, y) in &s.points {
                let (top, bottom) = (f.y(y.max(0.0)), f.y(y.min(0.0)));
                let _ = writeln!(
                    out,
                    "<rect x=\"{:.1}\" y=\"{top:.1}\" width=\"{width:.1}\" height=\"{:.1}\" fill=\"{colour}\" fill-opacity=\"0.5\"/>",
                    f.x(*x) - width / 2.0,
                    (bottom - top).max(0.0)
                );
            }
        } else if s.points.len() == 1 {
            let (x, y) = s.points[0];
            let _ = writeln!(out, "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"{colour}\"/>", f.x(x), f.y(y));
        } else {
            let mut d = String::new();
            for (j, (x, y)) in s.points.iter().enumerate() {
                let _ = write!(d, "{}{:.1},{:.1} ", if j == 0 { "M" } else { "L" }, f.x(*x), f.y(*y));
            }
            let _ = writeln!(out, "<path d=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"/>", d.trim_end());
        }
    }
    legend(&mut out, &series.iter().map(|s| s.name.as_str()).collect::<Vec<_>>());
    out.push_str("</svg>\n");
    out
}

/// Grouped bars: one group per category, one bar per series in each group.
pub fn bars(title: &str, y_label: &str, categories: &[String], series: &[(String, Vec<f64>)]) -> String {
    let (lo, hi) = range(series.iter().flat_map(|s| s.1.iter().copied()).chain([0.0]));
    let s = step(hi - lo, 6.0);
    let f = Frame { x0: 0.0, x1: categories.len() as f64, y0: (lo / s).floor() * s, y1: (hi / s).ceil() * s };
    let mut out = String::new();
    head(&mut out, title, "", y_label);
    y_axis(&mut out, &f);
    let group = (WIDTH - LEFT - RIGHT) / categories.len().max(1) as f64;
    let bar = group * 0.8 / series.len().max(1) as f64;
    for (c, name) in categories.iter().enumerate() {
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            f.x(c as f64 + 0.5),
            HEIGHT - BOTTOM + 16.0,
            escape(name)
        );
        for (k, (_, values)) in series.iter().enumerate() {
            let Some(v) = values.get(c) else { continue };
            let (top, bottom) = (f.y(v.max(0.0)), f.y(v.min(0.0)));
            let x = LEFT + c as f64 * group + group * 0.1 + k as f64 * bar;
            let _ = writeln!(
                out,
                "<rect x=\"{x:.1}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{}: {v:.2}</title></rect>",
                bar.max(0.5),
                (bottom - top).max(0.0),
                COLOURS[k % COLOURS.len()],
                escape(name)
            );
        }
    }
    legend(&mut out, &series.iter().map(|s| s.0.as_str()).collect::<Vec<_>>());
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_well_formed_and_deterministic() {
        let s = vec![Series {
            name: "CN <national>".into(),
            points: vec![(2025.0, 90.0), (2026.0, 95.0)],
            band: vec![(2025.0, 80.0, 100.0), (2026.0, 85.0, 105.0)],
            bars: false,
        }];
        let a = lines("Prices", "year", "CNY/t", &s);
        assert_eq!(a, lines("Prices", "year", "CNY/t", &s));
        assert!(a.starts_with("<svg") && a.ends_with("</svg>\n"));
        assert!(a.contains("CN &lt;national&gt;"));
        let b = bars("Cost", "million CNY", &["BJ".into(), "HB".into()], &[("autarky".into(), vec![500.0, -40.0])]);
        assert_eq!(b.matches("<rect x=").count(), 2 + 1);
        assert_eq!(step(97.0, 6.0), 20.0);
        assert_eq!(step(0.9, 6.0), 0.2);
    }
}
