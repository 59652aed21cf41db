//! Over time: banking and borrowing with a discount rate (economics.md §4.1), supply triggers
//! (floors, ceilings, reserves) in each period, and the market stability reserve.
//!
//! Each period is a [`Market`] (its participants' baselines and allocations for that year, its
//! offsets and triggers); the periods clear jointly through the bank
//! `B_t = B_{t−1} + supply_t − (emissions_t − offsets_t) ≥ −L` (L = 0 without borrowing).
//!
//! Method (the standard one for a storable good with a non-negativity constraint): from a start
//! period `s` with bank `B_s`, for each possible end `k` find the smallest initial price `λ_k`
//! such that with prices `p_t = λ (1+r)^(t−s)` the bank at the end of `k` is at least `−L_k`
//! (`L_k = 0` in the last period: nothing is left owed, and the bank ends at zero when the price
//! is positive). The bank at every `t` rises with `λ`, so the path is feasible exactly when
//! `λ ≥ max_k λ_k`: the episode's price is that maximum, the bank constraint binds at its
//! argmax `k*` (the latest one on ties), and the next episode starts at `k* + 1`. Within an
//! episode prices rise at the discount rate (Hotelling); between episodes the price may rise
//! faster. Each `λ_k` is found by the same bracketing solver as a static market, so stepped
//! curves and triggers are handled the same way.
//!
//! The MSR makes supply depend on the bank path, which depends on expected supply; with
//! perfect foresight that is a fixed point, found by iteration (damped after the first 20
//! rounds); whether it converged is reported.

use crate::market::{Market, Position};
use crate::msr::{self, Msr, MsrYear};
use crate::solve::{self, StepFunction};
use crate::SimError;
use serde::Serialize;

/// Stands for unlimited borrowing (Mt).
const BORROWING_UNLIMITED_MT: f64 = 1.0e12;
const MSR_ROUNDS_MAX: usize = 500;

#[derive(Clone, Debug, PartialEq)]
pub struct Intertemporal {
    pub labels: Vec<String>,
    pub periods: Vec<Market>,
    /// Per period (0.05 = 5%).
    pub discount_rate: f64,
    pub banking: bool,
    /// Most allowances that may be owed to later periods (Mt); 0 = no borrowing; infinite =
    /// unlimited.
    pub borrowing_limit_mt: f64,
    pub initial_bank_mt: f64,
    pub msr: Option<Msr>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PeriodOutcome {
    pub label: String,
    pub price: f64,
    /// Price discounted to the first period.
    pub present_price: f64,
    pub abatement_mt: f64,
    pub emissions_mt: f64,
    pub offsets_mt: f64,
    /// Allowances issued this period after triggers and the reserve.
    pub supply_mt: f64,
    pub released_mt: f64,
    pub withheld_mt: f64,
    pub msr: Option<MsrYear>,
    /// Bank at the end of the period (TNAC); negative when borrowing.
    pub bank_mt: f64,
    /// The bank constraint binds at the end of this period (an episode ends here).
    pub constraint_binds: bool,
    pub abatement_cost: f64,
    pub present_cost: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PathOutcome {
    pub periods: Vec<PeriodOutcome>,
    /// Present value of abatement (and offset) costs (million CNY).
    pub present_cost: f64,
    pub cumulative_emissions_mt: f64,
    pub msr_converged: Option<bool>,
    pub msr_rounds: Option<usize>,
}

struct Episode<'a> {
    periods: &'a [Market],
    growth: Vec<f64>,
    bank: f64,
    limit: f64,
}

impl StepFunction for Episode<'_> {
    /// Minus (bank at the end + limit): non-increasing in λ.
    fn eval(&self, lambda: f64) -> (f64, f64) {
        let (mut l, mut r) = (self.bank + self.limit, self.bank + self.limit);
        for (m, g) in self.periods.iter().zip(&self.growth) {
            let (pl, pr) = m.position(lambda * g);
            l -= pl.net_demand();
            r -= pr.net_demand();
        }
        (-l, -r)
    }

    fn breakpoint_in(&self, low: f64, high: f64) -> Option<f64> {
        self.periods
            .iter()
            .zip(&self.growth)
            .filter_map(|(m, g)| m.breakpoint_in(low * g, high * g).map(|b| b / g))
            .min_by(|a, b| a.total_cmp(b))
    }
}

impl Intertemporal {
    fn validate(&self) -> Result<(), SimError> {
        if self.periods.is_empty() {
            return Err(SimError::new("no periods"));
        }
        if self.labels.len() != self.periods.len() {
            return Err(SimError::new("one label per period"));
        }
        if !(self.discount_rate.is_finite() && self.discount_rate > -1.0) {
            return Err(SimError::new(format!("discount rate {} must be a number above −1", self.discount_rate)));
        }
        if self.borrowing_limit_mt.is_nan() || self.borrowing_limit_mt < 0.0 {
            return Err(SimError::new("borrowing limit must be ≥ 0"));
        }
        if !self.initial_bank_mt.is_finite() {
            return Err(SimError::new("initial bank must be a number"));
        }
        if let Some(m) = &self.msr {
            m.validate()?;
        }
        Ok(())
    }

    pub fn solve(&self) -> Result<PathOutcome, SimError> {
        self.validate()?;
        let Some(msr_rule) = &self.msr else {
            return self.solve_with(&vec![0.0; self.periods.len()], None);
        };
        let n = self.periods.len();
        let base_supply: Vec<f64> = self.periods.iter().map(|m| m.cap_mt()).collect();
        let mut change = vec![0.0; n];
        let mut rounds = 0;
        let mut converged = false;
        let mut result;
        loop {
            rounds += 1;
            result = self.solve_with(&change, None)?;
            let tnac: Vec<f64> = result.periods.iter().map(|p| p.bank_mt).collect();
            let (next, _) = msr::path(msr_rule, &tnac, &base_supply);
            let gap = next.iter().zip(&change).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
            let scale = base_supply.iter().fold(1.0_f64, |a, b| a.max(b.abs()));
            if gap <= 1e-9 * scale {
                converged = true;
                break;
            }
            if rounds >= MSR_ROUNDS_MAX {
                break;
            }
            let damping = if rounds > 20 { 0.5 } else { 1.0 };
            for (c, x) in change.iter_mut().zip(&next) {
                *c += damping * (x - *c);
            }
        }
        let tnac: Vec<f64> = result.periods.iter().map(|p| p.bank_mt).collect();
        let (_, years) = msr::path(msr_rule, &tnac, &base_supply);
        let mut out = self.solve_with(&change, Some(&years))?;
        out.msr_converged = Some(converged);
        out.msr_rounds = Some(rounds);
        Ok(out)
    }

    /// Solves with fixed supply changes per period (the reserve's).
    fn solve_with(&self, change: &[f64], msr_years: Option<&[MsrYear]>) -> Result<PathOutcome, SimError> {
        let n = self.periods.len();
        let periods: Vec<Market> = self
            .periods
            .iter()
            .zip(change)
            .map(|(m, c)| {
                let mut m = m.clone();
                m.auction_mt += c;
                m
            })
            .collect();
        let r = self.discount_rate;
        let limit = if self.borrowing_limit_mt.is_infinite() { BORROWING_UNLIMITED_MT } else { self.borrowing_limit_mt };
        let mut prices = vec![0.0; n];
        let mut positions = vec![Position::default(); n];
        let mut banks = vec![0.0; n];
        let mut binds = vec![false; n];
        let mut start = 0;
        let mut bank = self.initial_bank_mt;
        while start < n {
            let ends: Vec<usize> = if self.banking { (start..n).collect() } else { vec![start] };
            let mut best: Option<(f64, f64, usize)> = None;
            for &k in &ends {
                let growth: Vec<f64> = (start..=k).map(|t| (1.0 + r).powi((t - start) as i32)).collect();
                let lim = if k + 1 == n || !self.banking { 0.0 } else { limit };
                let episode = Episode { periods: &periods[start..=k], growth, bank, limit: lim };
                let root = solve::clear(&episode, 0.0).map_err(|e| e.context(&self.labels[k]))?;
                let better = match best {
                    None => true,
                    Some((x, _, _)) => root.x >= x * (1.0 - 1e-12),
                };
                if better {
                    best = Some((root.x, root.theta, k));
                }
            }
            let (lambda, theta, end) = best.expect("at least one end");
            for t in start..=end {
                let p = lambda * (1.0 + r).powi((t - start) as i32);
                let (l, rr) = periods[t].position(p);
                let pos = l.lerp(&rr, theta);
                bank -= pos.net_demand();
                if !self.banking {
                    // Without banking a surplus lapses at the end of the period.
                    bank = 0.0;
                }
                prices[t] = p;
                positions[t] = pos;
                banks[t] = bank;
            }
            binds[end] = lambda > 0.0;
            start = end + 1;
        }
        let mut out =
            PathOutcome { periods: Vec::new(), present_cost: 0.0, cumulative_emissions_mt: 0.0, msr_converged: None, msr_rounds: None };
        for t in 0..n {
            let discount = (1.0 + r).powi(t as i32);
            let cost = period_cost(&periods[t], prices[t], &positions[t]);
            let pos = &positions[t];
            out.present_cost += cost / discount;
            out.cumulative_emissions_mt += pos.emissions_mt;
            out.periods.push(PeriodOutcome {
                label: self.labels[t].clone(),
                price: prices[t],
                present_price: prices[t] / discount,
                abatement_mt: pos.abatement_mt,
                emissions_mt: pos.emissions_mt,
                offsets_mt: pos.offsets_mt,
                supply_mt: pos.supply_mt,
                released_mt: pos.released_mt,
                withheld_mt: pos.withheld_mt,
                msr: msr_years.map(|y| y[t]),
                bank_mt: banks[t],
                constraint_binds: binds[t],
                abatement_cost: cost,
                present_cost: cost / discount,
            });
        }
        Ok(out)
    }
}

/// Abatement cost of a period at its price (continuous curves; on a step, the pro-rata share of
/// the step at that price) plus offsets at their price.
fn period_cost(market: &Market, price: f64, pos: &Position) -> f64 {
    let (mut a_l, mut a_r) = (0.0, 0.0);
    let parts: Vec<(f64, f64)> = market
        .participants
        .iter()
        .map(|p| {
            let (l, r) = p.abatement(price);
            a_l += l;
            a_r += r;
            (l, r)
        })
        .collect();
    let theta = if a_r > a_l { ((pos.abatement_mt - a_l) / (a_r - a_l)).clamp(0.0, 1.0) } else { 1.0 };
    let abatement: f64 = market.participants.iter().zip(&parts).map(|(p, (l, r))| p.mac.cost(l + theta * (r - l))).sum();
    let offsets = market
        .offsets
        .map_or(0.0, |o| pos.offsets_mt * if pos.offsets_mt + 1e-12 < o.limit_share * pos.emissions_mt { price } else { o.price });
    abatement + offsets
}
