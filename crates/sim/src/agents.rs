//! Agent-based mode: heterogeneous firms trade a compliance year through ets's own matching
//! engine (`ets_exchange::OrderBook`), under the market's listed price band
//! (`ets_exchange::TradingRules`), so liquidity, bands and thin pilot markets show in prices.
//!
//! The model (a documented heuristic, not an estimated one):
//! - Each firm has a MAC curve, a baseline, a free allocation and an emissions shock drawn at
//!   the start (normal, `shock_sd`), revealed linearly over the year.
//! - It holds a price expectation, first scattered around the start price, then moved each day
//!   towards the day's close (`learning`) with a little noise. It plans the abatement its curve
//!   gives at that expectation, forecasts its emissions, and compares them with its holdings.
//! - On a day it is active (probability `participation`, rising towards the deadline up to
//!   `deadline_rush` times: the compliance rush seen in Nov–Dec, economics.md §5.3), a short
//!   firm bids and a long firm offers a part of its gap (the whole of it in the last days),
//!   at its expectation ± a random markup that widens with urgency; a bid never exceeds the
//!   cost of abating the gap itself. Prices outside the band around the previous close are
//!   moved to the band's edge (counted as band hits).
//! - Orders are day orders (GTC, cancelled at the close). The close is the day's VWAP, or the
//!   previous close without trades (the national rule, `listed_vwap`).
//! - At the end of the year emissions are realized; what holdings do not cover is a shortfall.
//!
//! Prices are ticks of 0.01 yuan and quantities whole tonnes, as in the exchange.

use crate::equilibrium::{self, Regime};
use crate::market::{Market, Participant};
use crate::scenario::{lognormal, normal, AgentSpec};
use crate::SimError;
use ets_exchange::{Command, Event, Mode, OrderBook, Side, Tif, TradingRules};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Day {
    pub day: usize,
    pub close: f64,
    pub high: f64,
    pub low: f64,
    pub volume_t: u64,
    pub trades: u32,
    pub orders: u32,
    /// Orders priced at the band's edge because their price was outside it.
    pub band_hits: u32,
    pub band_low: f64,
    pub band_high: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AgentOutcome {
    pub market: String,
    pub firms: usize,
    pub start_price: f64,
    /// The market's equilibrium price with the same firms (no shocks).
    pub equilibrium_price: f64,
    pub final_close: f64,
    /// Volume-weighted average price over the year.
    pub vwap: f64,
    pub volume_mt: f64,
    pub trades: u64,
    pub band_hits: u64,
    /// Days without a trade.
    pub days_without_trades: usize,
    pub firms_short: usize,
    pub shortfall_mt: f64,
    pub days: Vec<Day>,
}

struct Firm {
    participant: Participant,
    expectation: f64,
    shock: f64,
    holdings_t: i64,
}

const T_PER_MT: f64 = 1e6;

pub fn run(
    market: &Market,
    spec: &AgentSpec,
    seed: u64,
    start_price: f64,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<AgentOutcome, SimError> {
    if market.participants.len() < 2 {
        return Err(SimError::new("the agent-based mode needs at least two firms"));
    }
    if start_price.is_nan() || start_price <= 0.0 {
        return Err(SimError::new(format!("start price {start_price} must be positive")));
    }
    let equilibrium_price = equilibrium::solve(std::slice::from_ref(market), &Regime::Autarky)?.markets[0].price;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xa6e7_5eed);
    let mut firms: Vec<Firm> = market
        .participants
        .iter()
        .map(|p| Firm {
            expectation: start_price * lognormal(&mut rng, spec.noise * 2.0),
            shock: spec.shock_sd * normal(&mut rng),
            holdings_t: (p.allocation_mt * T_PER_MT).round() as i64,
            participant: p.clone(),
        })
        .collect();
    let share = spec.listed_band;
    let rules = TradingRules { listed_band_bp: (share * 10_000.0).round() as u32, block_band_bp: 10_000, block_min_t: u64::MAX };
    let mut close = (start_price * 100.0).round().max(1.0) as i64;
    let mut days = Vec::with_capacity(spec.days);
    let mut events = Vec::new();
    let mut order_firm: Vec<usize> = Vec::new();
    let mut order_side: Vec<Side> = Vec::new();
    let (mut volume_total, mut turnover_total, mut trades_total, mut hits_total) = (0u64, 0f64, 0u64, 0u64);
    let mut order: Vec<usize> = (0..firms.len()).collect();
    for d in 0..spec.days {
        let progress_year = (d + 1) as f64 / spec.days as f64;
        let remaining = (spec.days - d) as f64;
        let active = (spec.participation * (1.0 + (spec.deadline_rush - 1.0) * progress_year.powi(3))).min(1.0);
        let (band_low, band_high) = rules.band(Mode::Listed, close);
        let (band_low, band_high) = (band_low.max(1), band_high.max(band_low.max(1)));
        let mut book = OrderBook::new();
        order_firm.clear();
        order_side.clear();
        // Firms arrive in a random order each day.
        for i in (1..order.len()).rev() {
            let j = rng.gen_range(0..=i);
            order.swap(i, j);
        }
        let mut day = Day {
            day: d + 1,
            close: 0.0,
            high: 0.0,
            low: f64::INFINITY,
            volume_t: 0,
            trades: 0,
            orders: 0,
            band_hits: 0,
            band_low: band_low as f64 / 100.0,
            band_high: band_high as f64 / 100.0,
        };
        let (mut volume, mut turnover) = (0u64, 0f64);
        for &i in &order {
            let u: f64 = rng.gen();
            if u >= active {
                continue;
            }
            let f = &firms[i];
            let p = &f.participant;
            let abatement = p.abatement(f.expectation).1;
            let forecast_t = ((p.baseline_mt - abatement) * (1.0 + f.shock * progress_year) * T_PER_MT).max(0.0);
            let gap = forecast_t - f.holdings_t as f64;
            let chunk = if remaining <= 5.0 { 1.0 } else { (3.0 / (remaining * active)).min(1.0) };
            let qty = (gap.abs() * chunk).round() as u64;
            if qty == 0 {
                continue;
            }
            let urgency = 1.0 + 2.0 * progress_year.powi(4);
            let markup = spec.noise * urgency * rng.gen::<f64>();
            let (side, price) = if gap > 0.0 {
                // Never pay more than abating the gap itself would cost.
                let ceiling = p.mac.mac(abatement + qty as f64 / T_PER_MT).max(f.expectation);
                (Side::Buy, (f.expectation * (1.0 + markup)).min(ceiling))
            } else {
                (Side::Sell, f.expectation * (1.0 - markup))
            };
            let mut ticks = (price * 100.0).round() as i64;
            if ticks < band_low || ticks > band_high {
                ticks = ticks.clamp(band_low, band_high);
                day.band_hits += 1;
            }
            let id = order_firm.len() as u64 + 1;
            order_firm.push(i);
            order_side.push(side);
            events.clear();
            book.execute(&Command::Place { id, owner: i as u32, side, price: Some(ticks), qty, tif: Tif::Gtc }, &mut events)
                .map_err(|e| SimError::new(format!("exchange refused an agent order: {e}")))?;
            day.orders += 1;
            for e in &events {
                if let Event::Trade { maker, taker, price, qty } = e {
                    let (m, t) = ((*maker - 1) as usize, (*taker - 1) as usize);
                    let q = *qty as i64;
                    for (o, sign) in [(m, 1), (t, 1)] {
                        let dir = if order_side[o] == Side::Buy { sign } else { -sign };
                        firms[order_firm[o]].holdings_t += dir * q;
                    }
                    volume += qty;
                    turnover += *qty as f64 * *price as f64 / 100.0;
                    day.trades += 1;
                    let px = *price as f64 / 100.0;
                    day.high = day.high.max(px);
                    day.low = day.low.min(px);
                }
            }
        }
        if volume > 0 {
            close = ((turnover / volume as f64) * 100.0).round() as i64;
        }
        let close_yuan = close as f64 / 100.0;
        day.close = close_yuan;
        day.volume_t = volume;
        if day.trades == 0 {
            day.low = close_yuan;
            day.high = close_yuan;
        }
        volume_total += volume;
        turnover_total += turnover;
        trades_total += u64::from(day.trades);
        hits_total += u64::from(day.band_hits);
        for f in &mut firms {
            let noise = spec.noise * 0.2 * normal(&mut rng);
            f.expectation = ((1.0 - spec.learning) * f.expectation + spec.learning * close_yuan) * (1.0 + noise);
            f.expectation = f.expectation.max(0.01);
        }
        days.push(day);
        progress(d + 1, spec.days);
    }
    let mut firms_short = 0;
    let mut shortfall_t = 0.0;
    for f in &firms {
        let p = &f.participant;
        let emissions_t = ((p.baseline_mt - p.abatement(f.expectation).1) * (1.0 + f.shock) * T_PER_MT).max(0.0);
        let short = emissions_t - f.holdings_t as f64;
        if short >= 1.0 {
            firms_short += 1;
            shortfall_t += short;
        }
    }
    Ok(AgentOutcome {
        market: market.code.clone(),
        firms: firms.len(),
        start_price,
        equilibrium_price,
        final_close: close as f64 / 100.0,
        vwap: if volume_total > 0 { turnover_total / volume_total as f64 } else { start_price },
        volume_mt: volume_total as f64 / T_PER_MT,
        trades: trades_total,
        band_hits: hits_total,
        days_without_trades: days.iter().filter(|d| d.trades == 0).count(),
        firms_short,
        shortfall_mt: shortfall_t / T_PER_MT,
        days,
    })
}
