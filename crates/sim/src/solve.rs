//! The clearing-price search on a monotone excess-demand function with jumps.
//!
//! Excess demand falls (weakly) as the price rises. Where a stepped curve, an offset price or a
//! price trigger sits, it jumps down: the function is given by its left and right limits. The
//! clearing price is `p* = inf { p ≥ lower : right(p) ≤ 0 }`, the price where excess demand
//! changes sign. It is found by bracketing (doubling) and a safeguarded regula falsi
//! (Illinois) that keeps the bracket `right(lo) > 0 ≥ right(hi)`, then snapped exactly onto a
//! jump inside the final bracket if there is one.
//!
//! Ties: when the sign changes at a jump, the quantities that switch at `p*` (every measure
//! costing exactly `p*`, offsets priced at `p*`, a reserve triggered at `p*`) are all taken at
//! the same fraction `theta = left / (left − right)`: pro rata to their size. When a whole range
//! of prices clears (excess demand exactly zero between two steps), the lowest price of the range
//! is the answer.

use crate::SimError;

/// A non-increasing function with downward jumps.
pub trait StepFunction {
    /// (left limit, right limit) at `x`; left ≥ right.
    fn eval(&self, x: f64) -> (f64, f64);
    /// The smallest `x` in (low, high] where the function jumps, if any.
    fn breakpoint_in(&self, low: f64, high: f64) -> Option<f64>;
}

/// A clearing point: the price, and the fraction of the quantities switching exactly there that
/// are taken (1 when nothing jumps there).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Root {
    pub x: f64,
    pub theta: f64,
    /// Function evaluations used (for benchmarks and tests of the search).
    pub evaluations: u32,
}

/// The largest price the search tries before saying that nothing clears (CNY/t).
pub const PRICE_MAX: f64 = 1.0e9;
const ITERATIONS_MAX: u32 = 300;

fn theta(left: f64, right: f64) -> f64 {
    if left <= 0.0 {
        0.0
    } else if left - right <= 0.0 {
        1.0
    } else {
        (left / (left - right)).clamp(0.0, 1.0)
    }
}

pub fn clear(f: &impl StepFunction, lower: f64) -> Result<Root, SimError> {
    let mut evaluations = 1;
    let (l0, r0) = f.eval(lower);
    if !(l0.is_finite() && r0.is_finite()) {
        return Err(SimError::new(format!("excess demand is not a number at price {lower}")));
    }
    if r0 <= 0.0 {
        return Ok(Root { x: lower, theta: theta(l0, r0), evaluations });
    }
    // Bracket: double the distance above `lower` until excess demand is no longer positive.
    let mut lo = lower;
    let mut g_lo = r0;
    let mut step = 64.0_f64.max(lower.abs());
    let (mut hi, mut g_hi);
    loop {
        let x = lower + step;
        let (_, r) = f.eval(x);
        evaluations += 1;
        if r <= 0.0 {
            hi = x;
            g_hi = r;
            break;
        }
        lo = x;
        g_lo = r;
        if x >= PRICE_MAX {
            return Err(SimError::new(format!(
                "no price up to {PRICE_MAX:e} clears the market: at that price {r:.6} Mt are still short (abatement potential and reserves are too small)"
            )));
        }
        step *= 2.0;
    }
    // Safeguarded regula falsi (Illinois): right(lo) > 0 ≥ right(hi) throughout.
    let mut side = 0i8;
    let (mut w_lo, mut w_hi) = (g_lo, g_hi);
    for i in 0..ITERATIONS_MAX {
        let width = hi - lo;
        if width <= 1e-13 * hi.abs().max(1.0) {
            break;
        }
        let secant = if w_lo - w_hi > 0.0 { hi - w_hi * (hi - lo) / (w_hi - w_lo) } else { f64::NAN };
        let x = if i % 4 == 3 || !(secant > lo && secant < hi) { lo + width / 2.0 } else { secant };
        if x <= lo || x >= hi {
            break;
        }
        let (_, r) = f.eval(x);
        evaluations += 1;
        if r > 0.0 {
            lo = x;
            w_lo = r;
            if side == -1 {
                w_hi /= 2.0;
            }
            side = -1;
        } else {
            hi = x;
            g_hi = r;
            w_hi = r;
            if side == 1 {
                w_lo /= 2.0;
            }
            side = 1;
        }
    }
    let _ = g_hi;
    if let Some(b) = f.breakpoint_in(lo, hi) {
        let (lb, rb) = f.eval(b);
        evaluations += 1;
        if rb <= 0.0 && lb > 0.0 {
            return Ok(Root { x: b, theta: theta(lb, rb), evaluations });
        }
    }
    Ok(Root { x: hi, theta: 1.0, evaluations })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Lin(f64);
    impl StepFunction for Lin {
        fn eval(&self, x: f64) -> (f64, f64) {
            (self.0 - x, self.0 - x)
        }
        fn breakpoint_in(&self, _: f64, _: f64) -> Option<f64> {
            None
        }
    }

    /// 10 − x, minus 4 from x ≥ 3 on (a step of 4 at 3).
    struct Jump;
    impl StepFunction for Jump {
        fn eval(&self, x: f64) -> (f64, f64) {
            let base = 5.0 - x;
            let left = if x > 3.0 { base - 4.0 } else { base };
            let right = if x >= 3.0 { base - 4.0 } else { base };
            (left, right)
        }
        fn breakpoint_in(&self, low: f64, high: f64) -> Option<f64> {
            (low < 3.0 && 3.0 <= high).then_some(3.0)
        }
    }

    #[test]
    fn continuous_root() {
        let r = clear(&Lin(123.456), 0.0).unwrap();
        assert!((r.x - 123.456).abs() < 1e-9, "{r:?}");
        assert!(r.evaluations < 80, "{r:?}");
    }

    #[test]
    fn root_at_lower_bound_when_already_cleared() {
        let r = clear(&Lin(-5.0), 0.0).unwrap();
        assert_eq!(r.x, 0.0);
    }

    #[test]
    fn jump_snaps_exactly_with_pro_rata_fraction() {
        // At 3: left 2, right −2: price 3, half of the step taken.
        let r = clear(&Jump, 0.0).unwrap();
        assert_eq!(r.x, 3.0);
        assert!((r.theta - 0.5).abs() < 1e-12);
    }

    #[test]
    fn nothing_clears_is_an_error() {
        struct Never;
        impl StepFunction for Never {
            fn eval(&self, _: f64) -> (f64, f64) {
                (1.0, 1.0)
            }
            fn breakpoint_in(&self, _: f64, _: f64) -> Option<f64> {
                None
            }
        }
        assert!(clear(&Never, 0.0).unwrap_err().to_string().contains("no price"));
    }
}
