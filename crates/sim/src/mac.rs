//! Marginal abatement cost (MAC) curves (economics.md §3.1).
//!
//! Units throughout the crate: abatement and emissions in Mt (million tonnes CO2e), prices in
//! CNY per tonne, costs in million CNY (CNY/t × Mt). A linear slope is in CNY/t per Mt.
//!
//! Every curve gives the abatement a firm chooses at a price as a pair (left, right): the limits
//! from below and from above. They differ only where the curve has a step, at a measure's cost:
//! below it the measure is not taken (left), at or above it is (right). Continuous curves return
//! equal values.

use crate::SimError;

#[derive(Clone, Debug, PartialEq)]
pub enum Mac {
    /// MAC(a) = slope·a; cost c·a²/2.
    Linear { slope: f64 },
    /// MAC(a) = beta·a^gamma; cost beta·a^(gamma+1)/(gamma+1) (economics.md §3.1, power law).
    /// `scale` = beta^(−1/gamma), derived (build with [`Mac::power`]): abatement at price p is
    /// scale·p^(1/gamma), so a market of firms sharing gamma needs one `powf` per price.
    Power { beta: f64, gamma: f64, scale: f64 },
    /// A bottom-up curve from a table of measures, each taken whole at its cost.
    Stepped(Steps),
}

/// Measures sorted by cost with cumulative potentials and costs.
#[derive(Clone, Debug, PartialEq)]
pub struct Steps {
    costs: Vec<f64>,
    /// Potential of measures 0..=i.
    cumulative: Vec<f64>,
    /// Cost of taking measures 0..=i whole.
    cumulative_cost: Vec<f64>,
}

impl Steps {
    /// Measures as (cost CNY/t, potential Mt), in any order. Costs may be negative (no-regret
    /// measures); potentials must be positive.
    pub fn new(measures: &[(f64, f64)]) -> Result<Steps, SimError> {
        if measures.is_empty() {
            return Err(SimError::new("a stepped curve needs at least one measure"));
        }
        let mut sorted = measures.to_vec();
        for (i, (cost, potential)) in sorted.iter().enumerate() {
            if !cost.is_finite() {
                return Err(SimError::new(format!("measure {i}: cost {cost} must be a finite number")));
            }
            if !(potential.is_finite() && *potential > 0.0) {
                return Err(SimError::new(format!("measure {i}: potential {potential} must be a positive number")));
            }
        }
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut costs = Vec::with_capacity(sorted.len());
        let mut cumulative = Vec::with_capacity(sorted.len());
        let mut cumulative_cost = Vec::with_capacity(sorted.len());
        let (mut q, mut c) = (0.0, 0.0);
        for (cost, potential) in sorted {
            q += potential;
            c += cost * potential;
            costs.push(cost);
            cumulative.push(q);
            cumulative_cost.push(c);
        }
        Ok(Steps { costs, cumulative, cumulative_cost })
    }

    pub fn total(&self) -> f64 {
        *self.cumulative.last().expect("non-empty")
    }

    fn taken_below(&self, count: usize) -> f64 {
        if count == 0 {
            0.0
        } else {
            self.cumulative[count - 1]
        }
    }

    fn abatement(&self, price: f64) -> (f64, f64) {
        let strict = self.costs.partition_point(|c| *c < price);
        let inclusive = self.costs.partition_point(|c| *c <= price);
        (self.taken_below(strict), self.taken_below(inclusive))
    }

    fn cost(&self, a: f64) -> f64 {
        let a = a.max(0.0);
        let i = self.cumulative.partition_point(|q| *q < a);
        if i >= self.costs.len() {
            return *self.cumulative_cost.last().expect("non-empty");
        }
        let (q0, c0) = if i == 0 { (0.0, 0.0) } else { (self.cumulative[i - 1], self.cumulative_cost[i - 1]) };
        c0 + self.costs[i] * (a - q0)
    }

    fn mac(&self, a: f64) -> f64 {
        let i = self.cumulative.partition_point(|q| *q < a);
        self.costs[i.min(self.costs.len() - 1)]
    }

    fn breakpoint_in(&self, low: f64, high: f64) -> Option<f64> {
        let i = self.costs.partition_point(|c| *c <= low);
        self.costs.get(i).copied().filter(|c| *c <= high)
    }

    fn scaled(&self, share: f64) -> Steps {
        Steps {
            costs: self.costs.clone(),
            cumulative: self.cumulative.iter().map(|q| q * share).collect(),
            cumulative_cost: self.cumulative_cost.iter().map(|c| c * share).collect(),
        }
    }

    /// The measures as (cost, potential), cheapest first.
    pub fn measures(&self) -> Vec<(f64, f64)> {
        let mut before = 0.0;
        self.costs
            .iter()
            .zip(&self.cumulative)
            .map(|(c, q)| {
                let m = (*c, q - before);
                before = *q;
                m
            })
            .collect()
    }
}

impl Mac {
    pub fn linear(slope: f64) -> Result<Mac, SimError> {
        if !(slope.is_finite() && slope > 0.0) {
            return Err(SimError::new(format!("a linear MAC slope must be a positive number, not {slope}")));
        }
        Ok(Mac::Linear { slope })
    }

    pub fn power(beta: f64, gamma: f64) -> Result<Mac, SimError> {
        if !(beta.is_finite() && beta > 0.0) {
            return Err(SimError::new(format!("a power-law MAC needs beta > 0, not {beta}")));
        }
        if !(gamma.is_finite() && gamma > 0.0) {
            return Err(SimError::new(format!("a power-law MAC needs gamma > 0, not {gamma}")));
        }
        Ok(Mac::Power { beta, gamma, scale: beta.powf(-1.0 / gamma) })
    }

    pub fn stepped(measures: &[(f64, f64)]) -> Result<Mac, SimError> {
        Steps::new(measures).map(Mac::Stepped)
    }

    /// Abatement chosen at `price` (CNY/t), as (left, right) limits; never negative.
    pub fn abatement(&self, price: f64) -> (f64, f64) {
        match self {
            Mac::Linear { slope } => {
                let a = price.max(0.0) / slope;
                (a, a)
            }
            Mac::Power { gamma, scale, .. } => {
                let a = if price > 0.0 { scale * price.powf(1.0 / gamma) } else { 0.0 };
                (a, a)
            }
            Mac::Stepped(s) => s.abatement(price),
        }
    }

    /// Total cost (million CNY) of abating `a` Mt, cheapest measures first.
    pub fn cost(&self, a: f64) -> f64 {
        let a = a.max(0.0);
        match self {
            Mac::Linear { slope } => slope * a * a / 2.0,
            Mac::Power { beta, gamma, .. } => beta * a.powf(gamma + 1.0) / (gamma + 1.0),
            Mac::Stepped(s) => s.cost(a),
        }
    }

    /// The marginal cost at abatement `a`.
    pub fn mac(&self, a: f64) -> f64 {
        let a = a.max(0.0);
        match self {
            Mac::Linear { slope } => slope * a,
            Mac::Power { beta, gamma, .. } => beta * a.powf(*gamma),
            Mac::Stepped(s) => s.mac(a),
        }
    }

    /// Most abatement the curve offers (infinite for the continuous forms).
    pub fn potential(&self) -> f64 {
        match self {
            Mac::Stepped(s) => s.total(),
            _ => f64::INFINITY,
        }
    }

    /// The smallest price in (low, high] where the abatement jumps.
    pub fn breakpoint_in(&self, low: f64, high: f64) -> Option<f64> {
        match self {
            Mac::Stepped(s) => s.breakpoint_in(low, high),
            _ => None,
        }
    }

    /// The curve of a firm that does `share` of this curve's abatement at every price.
    pub fn scaled(&self, share: f64) -> Mac {
        match self {
            Mac::Linear { slope } => Mac::Linear { slope: slope / share },
            Mac::Power { beta, gamma, scale } => Mac::Power { beta: beta * share.powf(-gamma), gamma: *gamma, scale: scale * share },
            Mac::Stepped(s) => Mac::Stepped(s.scaled(share)),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Mac::Linear { .. } => "linear",
            Mac::Power { .. } => "power",
            Mac::Stepped(_) => "stepped",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_and_power_agree_at_gamma_one() {
        let l = Mac::linear(2.0).unwrap();
        let p = Mac::power(2.0, 1.0).unwrap();
        for price in [0.0, 1.0, 7.5, 40.0] {
            assert!((l.abatement(price).0 - p.abatement(price).0).abs() < 1e-12);
        }
        assert!((l.cost(20.0) - 400.0).abs() < 1e-9);
        assert!((p.cost(20.0) - 400.0).abs() < 1e-9);
    }

    #[test]
    fn stepped_curve_left_right_and_cost() {
        let m = Mac::stepped(&[(50.0, 2.0), (-10.0, 1.0), (20.0, 3.0)]).unwrap();
        assert_eq!(m.abatement(0.0), (1.0, 1.0));
        assert_eq!(m.abatement(20.0), (1.0, 4.0));
        assert_eq!(m.abatement(30.0), (4.0, 4.0));
        assert_eq!(m.abatement(50.0), (4.0, 6.0));
        // Cost of 5 Mt: -10·1 + 20·3 + 50·1 = 100.
        assert!((m.cost(5.0) - 100.0).abs() < 1e-12);
        assert_eq!(m.mac(2.5), 20.0);
        assert_eq!(m.breakpoint_in(20.0, 60.0), Some(50.0));
        assert_eq!(m.breakpoint_in(19.0, 60.0), Some(20.0));
        assert_eq!(m.breakpoint_in(50.0, 60.0), None);
    }

    #[test]
    fn scaling_scales_abatement_at_every_price() {
        for mac in [Mac::linear(3.0).unwrap(), Mac::power(0.5, 2.0).unwrap(), Mac::stepped(&[(10.0, 4.0)]).unwrap()] {
            let s = mac.scaled(0.25);
            for price in [5.0, 10.0, 30.0] {
                let (a, b) = (mac.abatement(price), s.abatement(price));
                assert!((a.1 * 0.25 - b.1).abs() < 1e-9, "{mac:?} at {price}");
            }
        }
    }

    #[test]
    fn bad_curves_are_refused() {
        assert!(Mac::linear(0.0).is_err());
        assert!(Mac::power(1.0, -1.0).is_err());
        assert!(Mac::stepped(&[(1.0, 0.0)]).is_err());
        assert!(Mac::stepped(&[]).is_err());
    }
}
