//! Charts as SVG, drawn by the server: a closing-price line over daily volume bars. Prices are
//! integers (fen), volumes integers (tonnes); every pixel position is computed in integer
//! arithmetic from them (no floating point), so the same data always draws the same picture.

use crate::view::BarView;
use maud::{html, Markup};

/// At most this many trading days are drawn (about a trading year); older days are left out.
pub const CHART_DAYS_MAX: usize = 260;

/// A chart's size in pixels and the share of its height the volume bars get.
#[derive(Clone, Copy, Debug)]
pub struct ChartSize {
    pub width_px: i64,
    pub height_px: i64,
    pub volume_px: i64,
    /// Room for the price labels on the left.
    pub label_px: i64,
    pub font_px: i64,
}

pub const LARGE: ChartSize = ChartSize { width_px: 960, height_px: 340, volume_px: 70, label_px: 56, font_px: 12 };
pub const SMALL: ChartSize = ChartSize { width_px: 300, height_px: 170, volume_px: 34, label_px: 44, font_px: 10 };

const TOP_PX: i64 = 8;
const RIGHT_PX: i64 = 8;
const BOTTOM_PX: i64 = 18;
const GAP_PX: i64 = 12;

/// A round grid step (1, 2 or 5 times a power of ten, in fen) giving at most `lines` steps over
/// `span_fen`.
fn grid_step(span_fen: i64, lines: i64) -> i64 {
    let mut power = 1i64;
    loop {
        for m in [1, 2, 5] {
            let step = m * power;
            if span_fen / step <= lines {
                return step;
            }
        }
        power *= 10;
    }
}

/// The price range drawn: the data's range widened to whole grid steps (at least one step).
fn price_range(lo_fen: i64, hi_fen: i64) -> (i64, i64, i64) {
    let span = (hi_fen - lo_fen).max(1);
    let step = grid_step(span, 4);
    let lo = lo_fen.div_euclid(step) * step;
    let mut hi = (hi_fen + step - 1).div_euclid(step) * step;
    if hi == lo {
        hi = lo + step;
    }
    (lo, hi, step)
}

fn yuan_label(fen: i64) -> String {
    ets_core::Fen(fen).to_string()
}

/// The closing-price line of `bars` (oldest first; the last `CHART_DAYS_MAX` are drawn) with
/// each day's volume (listed, block and other) as bars below. `title` names the chart for
/// screen readers.
pub fn price_volume(title: &str, bars: &[BarView], size: ChartSize) -> Markup {
    let bars = &bars[bars.len().saturating_sub(CHART_DAYS_MAX)..];
    let ChartSize { width_px: w, height_px: h, volume_px, label_px, font_px } = size;
    let (x0, x1) = (label_px, w - RIGHT_PX);
    let (py0, py1) = (TOP_PX, h - BOTTOM_PX - volume_px - GAP_PX);
    let (vy0, vy1) = (h - BOTTOM_PX - volume_px, h - BOTTOM_PX);
    let view_box = format!("0 0 {w} {h}");
    if bars.is_empty() {
        return html! {
            svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox=(view_box) width=(w) height=(h) role="img" aria-label=(title) {
                title { (title) }
                rect x=(x0) y=(py0) width=(x1 - x0) height=(vy1 - py0) class="frame" {}
                text x=((x0 + x1) / 2) y=((py0 + vy1) / 2) text-anchor="middle" font-size=(font_px + 1) class="empty" {
                    "no closed trading day yet"
                }
            }
        };
    }
    let lo_fen = bars.iter().map(|b| b.close_fen).min().expect("not empty");
    let hi_fen = bars.iter().map(|b| b.close_fen).max().expect("not empty");
    let (lo, hi, step) = price_range(lo_fen, hi_fen);
    let n = bars.len() as i64;
    // Day i's centre: slots of equal width across the plot, integer positions.
    let x_of = |i: i64| x0 + (2 * i + 1) * (x1 - x0) / (2 * n);
    let y_of = |fen: i64| py1 - (fen - lo) * (py1 - py0) / (hi - lo);
    let points: Vec<String> = bars.iter().enumerate().map(|(i, b)| format!("{},{}", x_of(i as i64), y_of(b.close_fen))).collect();
    let volume = |b: &BarView| b.listed_volume_t + b.block_volume_t + b.other_volume_t;
    let volume_max = bars.iter().map(volume).max().unwrap_or(0).max(1);
    let slot = ((x1 - x0) / n).max(1);
    let bar_width = if slot > 2 { slot - 1 } else { slot };
    let grid: Vec<i64> = (0..).map(|k| lo + k * step).take_while(|p| *p <= hi).collect();
    let last = bars.last().expect("not empty");
    let (first_date, last_date) = (&bars[0].date, &last.date);
    html! {
        svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox=(view_box) width=(w) height=(h) role="img" aria-label=(title) {
            title { (title) }
            rect x=(x0) y=(py0) width=(x1 - x0) height=(py1 - py0) class="frame" {}
            @for p in &grid {
                line x1=(x0) x2=(x1) y1=(y_of(*p)) y2=(y_of(*p)) class="grid" vector-effect="non-scaling-stroke" {}
                text x=(x0 - 4) y=(y_of(*p) + font_px / 3) text-anchor="end" font-size=(font_px) { (yuan_label(*p)) }
            }
            @for (i, b) in bars.iter().enumerate() {
                @let v = volume(b) as i64;
                @let bar_h = v * (vy1 - vy0) / volume_max as i64;
                rect class="vol" x=(x0 + i as i64 * (x1 - x0) / n) y=(vy1 - bar_h) width=(bar_width) height=(bar_h) {
                    title { (b.date) ": " (ets_core::Tonnes(v as u64)) " t" }
                }
            }
            line x1=(x0) x2=(x1) y1=(vy1) y2=(vy1) class="axis" {}
            text x=(x0 - 4) y=(vy0 + font_px) text-anchor="end" font-size=(font_px) { (compact_tonnes(volume_max)) " t" }
            text x=(x0 - 4) y=(vy1) text-anchor="end" font-size=(font_px) { "vol" }
            polyline class="price" fill="none" vector-effect="non-scaling-stroke" points=(points.join(" ")) {}
            circle class="last" cx=(x_of(n - 1)) cy=(y_of(last.close_fen)) r="3" {}
            text x=(x0) y=(h - 4) font-size=(font_px) { (first_date) }
            text x=(x1) y=(h - 4) text-anchor="end" font-size=(font_px) { (last_date) }
        }
    }
}

/// Tonnes in a short form for an axis: 12,345 → 12k, 3,400,000 → 3.4M.
fn compact_tonnes(t: u64) -> String {
    match t {
        0..=9_999 => ets_core::Tonnes(t).to_string(),
        10_000..=999_999 => format!("{}k", t / 1_000),
        _ => format!("{}.{}M", t / 1_000_000, t / 100_000 % 10),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn bar(date: &str, close_fen: i64, volume_t: u64) -> BarView {
        BarView {
            date: date.into(),
            open_fen: Some(close_fen),
            high_fen: Some(close_fen),
            low_fen: Some(close_fen),
            close_fen,
            listed_volume_t: volume_t,
            block_volume_t: 0,
            other_volume_t: 0,
            value_fen: close_fen * volume_t as i64,
            trades: 1,
        }
    }

    #[test]
    fn grid_steps_are_round_and_cover_the_data() {
        assert_eq!(grid_step(1, 4), 1);
        assert_eq!(grid_step(750, 4), 200);
        assert_eq!(grid_step(1_000, 4), 500);
        assert_eq!(price_range(8_010, 8_990), (8_000, 9_000, 200));
        assert_eq!(price_range(8_000, 8_000), (8_000, 8_001, 1));
    }

    #[test]
    fn the_line_maps_prices_to_exact_pixels_and_the_svg_parses() {
        let bars = Arc::new(vec![bar("2025-06-02", 8_000, 100), bar("2025-06-03", 9_000, 300), bar("2025-06-04", 8_500, 0)]);
        let svg = price_volume("CEA-2025 <closing>", &bars, LARGE).into_string();
        let doc = roxmltree::Document::parse(&svg).expect("well-formed SVG");
        let polyline = doc.descendants().find(|n| n.has_tag_name("polyline")).unwrap();
        // Range 8,000-9,000 fen in 500-fen steps over plot rows 8..=240; day i at 56 + (2i+1)·896/6.
        assert_eq!(polyline.attribute("points"), Some("205,240 504,8 802,124"));
        let bars_drawn: Vec<_> = doc.descendants().filter(|n| n.attribute("class") == Some("vol")).collect();
        assert_eq!(bars_drawn.len(), 3);
        assert_eq!(bars_drawn[1].attribute("height"), Some("70"));
        assert_eq!(bars_drawn[2].attribute("height"), Some("0"));
        assert!(svg.contains("CEA-2025 &lt;closing&gt;"));
    }

    #[test]
    fn an_empty_series_says_so() {
        let svg = price_volume("none", &[], SMALL).into_string();
        roxmltree::Document::parse(&svg).expect("well-formed SVG");
        assert!(svg.contains("no closed trading day yet"));
    }
}
