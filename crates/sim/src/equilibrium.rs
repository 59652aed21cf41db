//! Static market equilibrium: each market alone (autarky), full integration, linking with
//! exchange rates, and a restricted link with a transfer quota (economics.md §2.1).
//!
//! A *pool* is a set of markets clearing at one reference price `P`. A market's allowance is
//! worth `rate_m` reference units (exchange rate; 1 under full integration), so its firms face
//! `p_m = rate_m · P` and the pool clears when Σ rate_m · net_demand_m(p_m) = shift, where
//! `shift` is a fixed import into the pool (a binding transfer quota) or 0. With rates ≠ 1
//! total emissions are no longer the sum of the caps: that is what an exchange rate does.
//!
//! Linear pools (every curve linear, no offsets, no triggers) use the closed form
//! `P = (Σ rate_m (E_m − S_m) − shift) / Σ rate_m² / c_m` with `1/c_m = Σ_i 1/c_i`; if it
//! would make some firm abate more than its baseline, or the price negative, the numerical
//! solver (`solve::clear`) is used instead. Which one ran is reported (`method`).

use crate::market::{Market, Position};
use crate::solve::{self, StepFunction};
use crate::SimError;
use serde::Serialize;

#[derive(Clone, Debug, PartialEq)]
pub enum Regime {
    /// Each market alone.
    Autarky,
    /// One market: every allowance counts one for one.
    Integrated,
    /// One pool with exchange rates (reference units per allowance), one per market.
    Linked { rates: Vec<f64> },
    /// Two groups linked with a cap on net transfers; other markets stay alone.
    Restricted(Restriction),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RentTo {
    /// The importing side buys at the exporting side's price.
    Importer,
    /// The importing side pays its own (higher) price.
    Exporter,
    /// The importer pays its price, the exporter receives its own, the authority keeps the
    /// difference (e.g. by auctioning transfer rights).
    Regulator,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Restriction {
    pub group_a: Vec<usize>,
    pub group_b: Vec<usize>,
    /// Most net transfers across the link in one year (Mt, reference units).
    pub quota_mt: f64,
    /// Exchange rates, one per market (1 for a one-for-one link).
    pub rates: Vec<f64>,
    pub rent_to: RentTo,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ParticipantOutcome {
    pub name: String,
    pub abatement_mt: f64,
    pub emissions_mt: f64,
    pub offsets_mt: f64,
    /// Allowances bought (negative: sold).
    pub net_purchase_mt: f64,
    pub abatement_cost: f64,
    pub offset_cost: f64,
    pub purchase_cost: f64,
    /// Abatement + offsets + purchases (million CNY).
    pub total_cost: f64,
    /// Cost of meeting its own allocation by its own abatement, no trade; null when it cannot.
    pub no_trade_cost: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MarketOutcome {
    pub code: String,
    pub price: f64,
    pub method: &'static str,
    pub baseline_mt: f64,
    pub cap_mt: f64,
    pub abatement_mt: f64,
    pub emissions_mt: f64,
    pub offsets_mt: f64,
    pub released_mt: f64,
    pub withheld_mt: f64,
    /// Allowances (this market's units) bought from other markets; negative: sold.
    pub net_import_mt: f64,
    pub abatement_cost: f64,
    pub offset_cost: f64,
    /// Paid for net imports (received for exports: negative).
    pub trade_payment: f64,
    /// Quota rent this market captured.
    pub quota_rent: f64,
    /// Abatement + offsets + trade payments − quota rent: the market's cost (firms and
    /// authority together; domestic sales of allowances cancel out).
    pub total_cost: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct QuotaOutcome {
    pub quota_mt: f64,
    /// Net flow the unrestricted link would carry (reference units, into group A).
    pub unrestricted_flow_mt: f64,
    pub binding: bool,
    pub flow_mt: f64,
    pub rent: f64,
    pub rent_to: RentTo,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Outcome {
    pub regime: String,
    pub markets: Vec<MarketOutcome>,
    #[serde(skip)]
    pub participants: Vec<Vec<ParticipantOutcome>>,
    pub total_abatement_mt: f64,
    pub total_emissions_mt: f64,
    pub total_abatement_cost: f64,
    /// Σ market total costs + rent kept by the authority: abatement + offsets (+ nothing else
    /// when every transfer is paid for inside the set of markets).
    pub total_cost: f64,
    pub quota: Option<QuotaOutcome>,
}

/// A pool of markets at one reference price.
struct Pool<'a> {
    members: Vec<(&'a Market, f64)>,
    shift: f64,
}

impl StepFunction for Pool<'_> {
    fn eval(&self, price: f64) -> (f64, f64) {
        let (mut l, mut r) = (-self.shift, -self.shift);
        for (m, rate) in &self.members {
            let (pl, pr) = m.position(price * rate);
            l += rate * pl.net_demand();
            r += rate * pr.net_demand();
        }
        (l, r)
    }

    fn breakpoint_in(&self, low: f64, high: f64) -> Option<f64> {
        self.members.iter().filter_map(|(m, rate)| m.breakpoint_in(low * rate, high * rate).map(|b| b / rate)).min_by(|a, b| a.total_cmp(b))
    }
}

struct PoolSolution {
    price: f64,
    theta: f64,
    method: &'static str,
}

fn solve_pool(pool: &Pool) -> Result<PoolSolution, SimError> {
    if pool.members.iter().all(|(m, _)| m.is_linear_only()) {
        let mut num = -pool.shift;
        let mut den = 0.0;
        for (m, rate) in &pool.members {
            num += rate * (m.baseline_mt() - m.cap_mt());
            den += rate * rate * m.inverse_slope();
        }
        if den > 0.0 {
            let price = num / den;
            let inside = price >= 0.0
                && pool.members.iter().all(|(m, rate)| m.participants.iter().all(|p| p.mac.abatement(price * rate).1 <= p.baseline_mt));
            if inside {
                return Ok(PoolSolution { price, theta: 1.0, method: "closed_form" });
            }
        }
    }
    let root = solve::clear(pool, 0.0)?;
    Ok(PoolSolution { price: root.x, theta: root.theta, method: "numeric" })
}

fn positions(pool: &Pool, s: &PoolSolution) -> Vec<Position> {
    pool.members
        .iter()
        .map(|(m, rate)| {
            let (l, r) = m.position(s.price * rate);
            l.lerp(&r, s.theta)
        })
        .collect()
}

fn participant_outcomes(market: &Market, price: f64, theta: f64, position: &Position) -> Vec<ParticipantOutcome> {
    let emissions_total = position.emissions_mt;
    let offset_unit_cost = match &market.offsets {
        Some(o) if position.offsets_mt + 1e-12 < o.limit_share * emissions_total => price,
        Some(o) => o.price,
        None => 0.0,
    };
    market
        .participants
        .iter()
        .map(|p| {
            let (l, r) = p.abatement(price);
            let abatement = l + theta * (r - l);
            let emissions = p.baseline_mt - abatement;
            let offsets = if emissions_total > 0.0 { position.offsets_mt * emissions / emissions_total } else { 0.0 };
            let net_purchase = emissions - offsets - p.allocation_mt;
            let abatement_cost = p.mac.cost(abatement);
            let offset_cost = offsets * offset_unit_cost;
            let purchase_cost = price * net_purchase;
            ParticipantOutcome {
                name: p.name.clone(),
                abatement_mt: abatement,
                emissions_mt: emissions,
                offsets_mt: offsets,
                net_purchase_mt: net_purchase,
                abatement_cost,
                offset_cost,
                purchase_cost,
                total_cost: abatement_cost + offset_cost + purchase_cost,
                no_trade_cost: p.no_trade_cost(),
            }
        })
        .collect()
}

fn market_outcome(
    market: &Market,
    price: f64,
    method: &'static str,
    position: &Position,
    participants: &[ParticipantOutcome],
    trade_price: f64,
) -> MarketOutcome {
    let abatement_cost: f64 = participants.iter().map(|p| p.abatement_cost).sum();
    let offset_cost: f64 = participants.iter().map(|p| p.offset_cost).sum();
    let net_import = position.net_demand();
    let trade_payment = trade_price * net_import;
    MarketOutcome {
        code: market.code.clone(),
        price,
        method,
        baseline_mt: market.baseline_mt(),
        cap_mt: market.cap_mt(),
        abatement_mt: position.abatement_mt,
        emissions_mt: position.emissions_mt,
        offsets_mt: position.offsets_mt,
        released_mt: position.released_mt,
        withheld_mt: position.withheld_mt,
        net_import_mt: net_import,
        abatement_cost,
        offset_cost,
        trade_payment,
        quota_rent: 0.0,
        total_cost: abatement_cost + offset_cost + trade_payment,
    }
}

/// Solves one pool; returns (market index, outcome, participants) for each member.
fn run_pool(
    markets: &[Market],
    members: &[(usize, f64)],
    shift: f64,
) -> Result<Vec<(usize, MarketOutcome, Vec<ParticipantOutcome>)>, SimError> {
    let pool = Pool { members: members.iter().map(|(i, r)| (&markets[*i], *r)).collect(), shift };
    let s = solve_pool(&pool)?;
    let pos = positions(&pool, &s);
    let mut out = Vec::new();
    for (k, (i, rate)) in members.iter().enumerate() {
        let market = &markets[*i];
        let price = s.price * rate;
        let parts = participant_outcomes(market, price, s.theta, &pos[k]);
        let mo = market_outcome(market, price, s.method, &pos[k], &parts, price);
        out.push((*i, mo, parts));
    }
    Ok(out)
}

fn check_rates(markets: &[Market], rates: &[f64]) -> Result<(), SimError> {
    if rates.len() != markets.len() {
        return Err(SimError::new(format!("{} exchange rates for {} markets", rates.len(), markets.len())));
    }
    for (m, r) in markets.iter().zip(rates) {
        if !(r.is_finite() && *r > 0.0) {
            return Err(SimError::new(format!("exchange rate of {} must be a positive number, not {r}", m.code)));
        }
    }
    Ok(())
}

fn assemble(
    regime: &str,
    markets: &[Market],
    mut rows: Vec<(usize, MarketOutcome, Vec<ParticipantOutcome>)>,
    quota: Option<QuotaOutcome>,
) -> Outcome {
    rows.sort_by_key(|r| r.0);
    debug_assert_eq!(rows.len(), markets.len());
    let mut outcome = Outcome {
        regime: regime.to_string(),
        markets: Vec::new(),
        participants: Vec::new(),
        total_abatement_mt: 0.0,
        total_emissions_mt: 0.0,
        total_abatement_cost: 0.0,
        total_cost: 0.0,
        quota: None,
    };
    for (_, m, p) in rows {
        outcome.total_abatement_mt += m.abatement_mt;
        outcome.total_emissions_mt += m.emissions_mt;
        outcome.total_abatement_cost += m.abatement_cost;
        outcome.total_cost += m.total_cost;
        outcome.markets.push(m);
        outcome.participants.push(p);
    }
    if let Some(q) = &quota {
        if q.rent_to == RentTo::Regulator {
            outcome.total_cost -= q.rent;
        }
    }
    outcome.quota = quota;
    outcome
}

pub fn solve(markets: &[Market], regime: &Regime) -> Result<Outcome, SimError> {
    if markets.is_empty() {
        return Err(SimError::new("no markets to solve"));
    }
    match regime {
        Regime::Autarky => {
            let mut rows = Vec::new();
            for i in 0..markets.len() {
                rows.extend(run_pool(markets, &[(i, 1.0)], 0.0).map_err(|e| e.context(&markets[i].code))?);
            }
            Ok(assemble("autarky", markets, rows, None))
        }
        Regime::Integrated => {
            let members: Vec<(usize, f64)> = (0..markets.len()).map(|i| (i, 1.0)).collect();
            Ok(assemble("integrated", markets, run_pool(markets, &members, 0.0)?, None))
        }
        Regime::Linked { rates } => {
            check_rates(markets, rates)?;
            let members: Vec<(usize, f64)> = rates.iter().enumerate().map(|(i, r)| (i, *r)).collect();
            Ok(assemble("linked", markets, run_pool(markets, &members, 0.0)?, None))
        }
        Regime::Restricted(r) => restricted(markets, r),
    }
}

fn restricted(markets: &[Market], r: &Restriction) -> Result<Outcome, SimError> {
    check_rates(markets, &r.rates)?;
    if r.group_a.is_empty() || r.group_b.is_empty() {
        return Err(SimError::new("a restricted link needs markets on both sides"));
    }
    if r.group_a.iter().any(|i| r.group_b.contains(i)) {
        return Err(SimError::new("a market cannot be on both sides of a link"));
    }
    if !(r.quota_mt.is_finite() && r.quota_mt >= 0.0) {
        return Err(SimError::new(format!("transfer quota {} Mt must be a number ≥ 0", r.quota_mt)));
    }
    let members = |g: &[usize]| -> Vec<(usize, f64)> { g.iter().map(|i| (*i, r.rates[*i])).collect() };
    let both: Vec<usize> = r.group_a.iter().chain(&r.group_b).copied().collect();
    let free = run_pool(markets, &members(&both), 0.0)?;
    let flow: f64 = free.iter().filter(|x| r.group_a.contains(&x.0)).map(|x| r.rates[x.0] * x.1.net_import_mt).sum();
    let mut rows: Vec<(usize, MarketOutcome, Vec<ParticipantOutcome>)> = Vec::new();
    for i in 0..markets.len() {
        if !both.contains(&i) {
            rows.extend(run_pool(markets, &[(i, 1.0)], 0.0)?);
        }
    }
    let quota = if flow.abs() <= r.quota_mt {
        rows.extend(free);
        QuotaOutcome { quota_mt: r.quota_mt, unrestricted_flow_mt: flow, binding: false, flow_mt: flow, rent: 0.0, rent_to: r.rent_to }
    } else {
        let q = r.quota_mt * flow.signum();
        let side_a = run_pool(markets, &members(&r.group_a), q)?;
        let side_b = run_pool(markets, &members(&r.group_b), -q)?;
        let price_ref = |rows: &[(usize, MarketOutcome, Vec<ParticipantOutcome>)]| rows[0].1.price / r.rates[rows[0].0];
        let (pa, pb) = (price_ref(&side_a), price_ref(&side_b));
        // Importer: the side taking q > 0 in; its price is the higher one.
        let (mut importer, mut exporter, p_imp, p_exp) = if q > 0.0 { (side_a, side_b, pa, pb) } else { (side_b, side_a, pb, pa) };
        let volume = q.abs();
        let rent = volume * (p_imp - p_exp);
        // Every market's trade payment is valued at its own group price; the rent moves the
        // cross-link part to the price actually paid.
        match r.rent_to {
            RentTo::Importer => share_rent(&mut importer, rent, &r.rates, true),
            RentTo::Exporter => share_rent(&mut exporter, rent, &r.rates, false),
            RentTo::Regulator => {}
        }
        rows.extend(importer);
        rows.extend(exporter);
        QuotaOutcome { quota_mt: r.quota_mt, unrestricted_flow_mt: flow, binding: true, flow_mt: q, rent, rent_to: r.rent_to }
    };
    Ok(assemble("restricted", markets, rows, Some(quota)))
}

/// Gives `rent` to the markets of one side, pro rata to their net imports (importing side) or
/// net exports (exporting side), in reference units.
fn share_rent(side: &mut [(usize, MarketOutcome, Vec<ParticipantOutcome>)], rent: f64, rates: &[f64], importing: bool) {
    let weight = |i: usize, m: &MarketOutcome| {
        let v = rates[i] * m.net_import_mt;
        if importing {
            v.max(0.0)
        } else {
            (-v).max(0.0)
        }
    };
    let total: f64 = side.iter().map(|(i, m, _)| weight(*i, m)).sum();
    let n = side.len() as f64;
    for (i, m, _) in side.iter_mut() {
        let share = if total > 0.0 { weight(*i, m) / total } else { 1.0 / n };
        m.quota_rent = rent * share;
        m.total_cost -= m.quota_rent;
    }
}

/// Closed forms for linear MACs (economics.md §2.1), one entry per market: (slope c_i in CNY/t
/// per Mt, required abatement A_i in Mt).
pub mod closed {
    /// Autarky prices p_i = c_i A_i.
    pub fn autarky_prices(m: &[(f64, f64)]) -> Vec<f64> {
        m.iter().map(|(c, a)| c * a).collect()
    }

    /// Autarky costs C_i = c_i A_i²/2.
    pub fn autarky_costs(m: &[(f64, f64)]) -> Vec<f64> {
        m.iter().map(|(c, a)| c * a * a / 2.0).collect()
    }

    /// Effective slope (Σ 1/c_i)^-1.
    pub fn effective_slope(m: &[(f64, f64)]) -> f64 {
        1.0 / m.iter().map(|(c, _)| 1.0 / c).sum::<f64>()
    }

    /// Linked price p* = ΣA_i / Σ(1/c_i).
    pub fn linked_price(m: &[(f64, f64)]) -> f64 {
        m.iter().map(|(_, a)| a).sum::<f64>() * effective_slope(m)
    }

    /// Linked total cost C* = c_eff (ΣA)²/2.
    pub fn linked_cost(m: &[(f64, f64)]) -> f64 {
        let total: f64 = m.iter().map(|(_, a)| a).sum();
        effective_slope(m) * total * total / 2.0
    }

    /// Gain of each market G_i = (p_i − p*)²/(2c_i).
    pub fn gains(m: &[(f64, f64)]) -> Vec<f64> {
        let p = linked_price(m);
        m.iter().map(|(c, a)| (c * a - p).powi(2) / (2.0 * c)).collect()
    }

    /// Two markets with a binding transfer limit q̄: prices (p1 − c1 q̄, p2 + c2 q̄) for
    /// importer 1, and the gain G(q̄) = q̄(p1 − p2) − (c1 + c2) q̄²/2.
    pub fn quota(c1: f64, a1: f64, c2: f64, a2: f64, q: f64) -> (f64, f64, f64) {
        let (p1, p2) = (c1 * a1, c2 * a2);
        (p1 - c1 * q, p2 + c2 * q, q * (p1 - p2) - (c1 + c2) * q * q / 2.0)
    }
}
