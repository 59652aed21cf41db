//! Runs a scenario: equilibrium regimes, the path over time, the agent-based year, Monte Carlo
//! draws and the CBAM question; returns the results as one JSON document plus CSV and SVG
//! files (names and contents; the caller writes them). Same scenario, same bytes.

use crate::agents::{self, AgentOutcome};
use crate::cbam;
use crate::chart::{self, Series};
use crate::equilibrium::{self, Outcome, Regime, Restriction};
use crate::intertemporal::{Intertemporal, PathOutcome};
use crate::market::{Market, Trigger, TriggerKind, UNLIMITED_MT};
use crate::scenario::{fnv, lognormal, normal, BankingSpec, Distribution, Draw, Parameter, RegimeSpec, Scenario};
use crate::SimError;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use std::fmt::Write;

/// Most participant rows written to `participants.csv`.
pub const PARTICIPANT_ROWS_MAX: usize = 200_000;

pub struct Results {
    pub json: Value,
    /// (file name, contents): CSV tables and SVG charts.
    pub files: Vec<(String, String)>,
    /// A few lines for people.
    pub summary: Vec<String>,
}

/// Reports progress as (stage, done, total).
pub type Progress<'a> = &'a mut dyn FnMut(&str, usize, usize);

fn default_draws(s: &Scenario) -> Vec<Draw> {
    vec![Draw::default(); s.markets.len()]
}

fn regime_of(s: &Scenario, spec: &RegimeSpec) -> Result<Regime, SimError> {
    let rates = || -> Vec<f64> {
        let eq = s.equilibrium.as_ref();
        s.markets.iter().map(|m| eq.and_then(|e| e.exchange_rates.get(&m.code)).copied().unwrap_or(1.0)).collect()
    };
    Ok(match spec {
        RegimeSpec::Autarky => Regime::Autarky,
        RegimeSpec::Integrated => Regime::Integrated,
        RegimeSpec::Linked => Regime::Linked { rates: rates() },
        RegimeSpec::Restricted => {
            let r = s
                .equilibrium
                .as_ref()
                .and_then(|e| e.restricted.as_ref())
                .ok_or_else(|| SimError::new("restricted regime without [equilibrium.restricted]"))?;
            let idx = |codes: &[String]| codes.iter().map(|c| s.market_index(c).expect("checked when read")).collect::<Vec<_>>();
            Regime::Restricted(Restriction {
                group_a: idx(&r.a),
                group_b: idx(&r.b),
                quota_mt: r.quota_mt,
                rates: rates(),
                rent_to: r.rent_to,
            })
        }
    })
}

fn solve_regimes(s: &Scenario, markets: &[Market]) -> Result<Vec<Outcome>, SimError> {
    let Some(eq) = &s.equilibrium else { return Ok(Vec::new()) };
    eq.regimes.iter().map(|r| equilibrium::solve(markets, &regime_of(s, r)?)).collect()
}

pub fn run(s: &Scenario, progress: Progress) -> Result<Results, SimError> {
    let mut json = json!({"scenario": s.name, "seed": s.seed});
    let mut files = Vec::new();
    let mut summary = vec![format!("scenario: {}", s.name)];
    if let Some(c) = &s.calibration {
        json["calibration"] = json!({"params": c.params, "price_scale_2020_to_2024": c.price_scale,
            "markets": c.markets.iter().filter(|m| s.market_index(&m.code).is_some()).collect::<Vec<_>>()});
    }
    let markets = s.build_markets(&default_draws(s))?;
    let outcomes = solve_regimes(s, &markets)?;
    if !outcomes.is_empty() {
        equilibrium_results(s, &outcomes, &mut json, &mut files, &mut summary);
    }
    if let Some(b) = &s.banking {
        let path = solve_path(s, b, &default_draws(s))?;
        // Comparisons: the same years without banking (and so without a bank for a reserve to
        // act on), and with banking but without the reserve.
        let no_banking =
            if b.banking { Some(solve_path(s, &BankingSpec { banking: false, msr: None, ..b.clone() }, &default_draws(s))?) } else { None };
        let no_msr = if b.msr.is_some() { Some(solve_path(s, &BankingSpec { msr: None, ..b.clone() }, &default_draws(s))?) } else { None };
        banking_results(b, &path, no_banking.as_ref(), no_msr.as_ref(), &mut json, &mut files, &mut summary);
    }
    if let Some(a) = &s.agents {
        let i = s.market_index(&a.market).expect("checked when read");
        let mut spec = s.markets[i].clone();
        spec.firms = a.firms;
        let market = spec.build(s.seed, s.firm_dispersion, Draw::default())?;
        let start = match a.start_price.or(spec.target_price) {
            Some(p) => p,
            None => equilibrium::solve(std::slice::from_ref(&market), &Regime::Autarky)?.markets[0].price,
        };
        let outcome = agents::run(&market, a, s.seed, start, &mut |d, n| progress("agent-based year", d, n))?;
        agent_results(&outcome, &mut json, &mut files, &mut summary);
    }
    if let Some(mc) = &s.monte_carlo {
        monte_carlo(s, mc, progress, &mut json, &mut files, &mut summary)?;
    }
    if let Some(c) = &s.cbam {
        cbam_results(s, c, &outcomes, &mut json, &mut files, &mut summary);
    }
    Ok(Results { json, files, summary })
}

fn equilibrium_results(s: &Scenario, outcomes: &[Outcome], json: &mut Value, files: &mut Vec<(String, String)>, summary: &mut Vec<String>) {
    let autarky = outcomes.iter().find(|o| o.regime == "autarky");
    let mut csv = String::from("regime,market,price,method,baseline_mt,cap_mt,abatement_mt,emissions_mt,offsets_mt,released_mt,withheld_mt,net_import_mt,abatement_cost,offset_cost,trade_payment,quota_rent,total_cost,gain_vs_autarky\n");
    let mut gains = serde_json::Map::new();
    for o in outcomes {
        for (i, m) in o.markets.iter().enumerate() {
            let gain = autarky.map(|a| a.markets[i].total_cost - m.total_cost);
            let _ = writeln!(
                csv,
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                o.regime,
                m.code,
                m.price,
                m.method,
                m.baseline_mt,
                m.cap_mt,
                m.abatement_mt,
                m.emissions_mt,
                m.offsets_mt,
                m.released_mt,
                m.withheld_mt,
                m.net_import_mt,
                m.abatement_cost,
                m.offset_cost,
                m.trade_payment,
                m.quota_rent,
                m.total_cost,
                gain.map_or(String::new(), |g| g.to_string())
            );
        }
        if let Some(a) = autarky {
            gains.insert(o.regime.clone(), json!(a.total_cost - o.total_cost));
        }
    }
    files.push(("equilibrium.csv".into(), csv));
    let rows: usize = outcomes.iter().map(|o| o.participants.iter().map(Vec::len).sum::<usize>()).sum();
    if outcomes.iter().any(|o| o.participants.iter().any(|p| p.len() > 1)) {
        let mut csv = String::from("regime,market,participant,abatement_mt,emissions_mt,offsets_mt,net_purchase_mt,abatement_cost,offset_cost,purchase_cost,total_cost,no_trade_cost\n");
        let mut written = 0;
        'all: for o in outcomes {
            for (m, parts) in o.markets.iter().zip(&o.participants) {
                for p in parts {
                    if written == PARTICIPANT_ROWS_MAX {
                        break 'all;
                    }
                    written += 1;
                    let _ = writeln!(
                        csv,
                        "{},{},{},{},{},{},{},{},{},{},{},{}",
                        o.regime,
                        m.code,
                        p.name,
                        p.abatement_mt,
                        p.emissions_mt,
                        p.offsets_mt,
                        p.net_purchase_mt,
                        p.abatement_cost,
                        p.offset_cost,
                        p.purchase_cost,
                        p.total_cost,
                        p.no_trade_cost.map_or(String::new(), |c| c.to_string())
                    );
                }
            }
        }
        files.push(("participants.csv".into(), csv));
        json["participant_rows"] = json!({"total": rows, "written": rows.min(PARTICIPANT_ROWS_MAX)});
    }
    let codes: Vec<String> = s.markets.iter().map(|m| m.code.clone()).collect();
    let series = |f: &dyn Fn(&equilibrium::MarketOutcome) -> f64| {
        outcomes.iter().map(|o| (o.regime.clone(), o.markets.iter().map(f).collect())).collect::<Vec<_>>()
    };
    files.push(("prices.svg".into(), chart::bars("Allowance price by market", "CNY/t", &codes, &series(&|m| m.price))));
    let mut cost_codes = codes.clone();
    cost_codes.push("all".into());
    let costs: Vec<(String, Vec<f64>)> =
        outcomes.iter().map(|o| (o.regime.clone(), o.markets.iter().map(|m| m.total_cost).chain([o.total_cost]).collect())).collect();
    files.push((
        "costs.svg".into(),
        chart::bars("Cost of compliance by market (abatement + offsets + net purchases)", "million CNY", &cost_codes, &costs),
    ));
    let flows: Vec<(String, Vec<f64>)> = series(&|m| m.net_import_mt).into_iter().filter(|(r, _)| r != "autarky").collect();
    if !flows.is_empty() {
        files.push(("flows.svg".into(), chart::bars("Net allowance imports by market (negative: exports)", "Mt", &codes, &flows)));
    }
    let check: Vec<Value> = match autarky {
        Some(a) => s
            .markets
            .iter()
            .zip(&a.markets)
            .filter_map(|(spec, m)| {
                spec.target_price
                    .map(|t| json!({"market": m.code, "observed_target": t, "autarky": m.price, "error_share": (m.price - t) / t}))
            })
            .collect(),
        None => Vec::new(),
    };
    json["equilibrium"] = json!({"regimes": outcomes, "gain_vs_autarky": gains, "calibration_check": check});
    for o in outcomes {
        let prices: Vec<String> = o.markets.iter().map(|m| format!("{} {:.2}", m.code, m.price)).collect();
        summary.push(format!("{:<11} total cost {:>12.1} M CNY; prices {}", o.regime, o.total_cost, prices.join(", ")));
        if let (Some(a), true) = (autarky, o.regime != "autarky") {
            let gain = a.total_cost - o.total_cost;
            summary.push(format!("{:<11} gain vs autarky {:.1} M CNY ({:.2}%)", "", gain, 100.0 * gain / a.total_cost.abs().max(1e-12)));
        }
        if let Some(q) = &o.quota {
            summary.push(format!(
                "{:<11} quota {:.3} Mt {} (unrestricted flow {:.3} Mt), rent {:.1} M CNY to the {:?}",
                "",
                q.quota_mt,
                if q.binding { "binds" } else { "does not bind" },
                q.unrestricted_flow_mt,
                q.rent,
                q.rent_to
            ));
        }
    }
}

/// The periods of a banking run for one draw.
pub fn path_model(s: &Scenario, b: &BankingSpec, draws: &[Draw]) -> Result<Intertemporal, SimError> {
    let indexes: Vec<usize> = b.markets.iter().map(|c| s.market_index(c).expect("checked when read")).collect();
    let base_baseline: f64 = indexes.iter().map(|i| s.markets[*i].baseline_mt * draws[*i].baseline).sum();
    let base_cap: f64 = indexes.iter().map(|i| s.markets[*i].cap_mt * draws[*i].cap).sum();
    let mut periods = Vec::with_capacity(b.years);
    let mut labels = Vec::with_capacity(b.years);
    for t in 0..b.years {
        let baseline_factor = match &b.baselines_mt {
            Some(v) => v[t] / base_baseline,
            None => (1.0 + b.baseline_growth).powi(t as i32),
        };
        let cap_factor = match &b.caps_mt {
            Some(v) => v[t] / base_cap,
            None => (1.0 - b.cap_decline * t as f64).max(0.0),
        };
        let mut merged = Market::new(b.markets.join("+"), Vec::new());
        for (k, i) in indexes.iter().enumerate() {
            let d = draws[*i];
            let m = s.markets[*i].build(
                s.seed,
                s.firm_dispersion,
                Draw { baseline: d.baseline * baseline_factor, cap: d.cap * cap_factor, mac_level: d.mac_level },
            )?;
            merged.auction_mt += m.auction_mt;
            merged.participants.extend(m.participants);
            if k == 0 {
                merged.offsets = m.offsets;
            }
            if indexes.len() == 1 {
                merged.triggers = m.triggers;
            }
        }
        let cap = merged.cap_mt();
        if let Some(f) = &b.floor {
            merged.triggers.push(Trigger {
                kind: TriggerKind::Withhold,
                price: f.price * (1.0 + f.growth).powi(t as i32),
                quantity_mt: f.quantity_mt.unwrap_or(cap),
            });
        }
        if let Some(c) = &b.ceiling {
            merged.triggers.push(Trigger {
                kind: TriggerKind::Release,
                price: c.price * (1.0 + c.growth).powi(t as i32),
                quantity_mt: c.quantity_mt.unwrap_or(UNLIMITED_MT),
            });
        }
        periods.push(merged);
        labels.push((b.first_year + t as i32).to_string());
    }
    Ok(Intertemporal {
        labels,
        periods,
        discount_rate: b.discount_rate,
        banking: b.banking,
        borrowing_limit_mt: b.borrowing_limit_mt,
        initial_bank_mt: b.initial_bank_mt,
        msr: b.msr.clone(),
    })
}

fn solve_path(s: &Scenario, b: &BankingSpec, draws: &[Draw]) -> Result<PathOutcome, SimError> {
    path_model(s, b, draws)?.solve().map_err(|e| e.context("banking"))
}

fn banking_results(
    b: &BankingSpec,
    path: &PathOutcome,
    no_banking: Option<&PathOutcome>,
    no_msr: Option<&PathOutcome>,
    json: &mut Value,
    files: &mut Vec<(String, String)>,
    summary: &mut Vec<String>,
) {
    let mut csv = String::from("year,price,present_price,abatement_mt,emissions_mt,offsets_mt,supply_mt,released_mt,withheld_mt,msr_intake_mt,msr_release_mt,msr_invalidated_mt,msr_holdings_mt,bank_mt,constraint_binds,abatement_cost,present_cost\n");
    for p in &path.periods {
        let m = p.msr.unwrap_or_default();
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            p.label,
            p.price,
            p.present_price,
            p.abatement_mt,
            p.emissions_mt,
            p.offsets_mt,
            p.supply_mt,
            p.released_mt,
            p.withheld_mt,
            m.intake_mt,
            m.release_mt,
            m.invalidated_mt,
            m.holdings_mt,
            p.bank_mt,
            p.constraint_binds,
            p.abatement_cost,
            p.present_cost
        );
    }
    files.push(("banking.csv".into(), csv));
    let x = |i: usize| (b.first_year + i as i32) as f64;
    let mut price_series = vec![
        Series {
            name: "price".into(),
            points: path.periods.iter().enumerate().map(|(i, p)| (x(i), p.price)).collect(),
            ..Series::default()
        },
        Series {
            name: "present price".into(),
            points: path.periods.iter().enumerate().map(|(i, p)| (x(i), p.present_price)).collect(),
            ..Series::default()
        },
    ];
    for (name, other) in [("no banking", no_banking), ("no MSR", no_msr)] {
        if let Some(n) = other {
            price_series.push(Series {
                name: name.into(),
                points: n.periods.iter().enumerate().map(|(i, p)| (x(i), p.price)).collect(),
                ..Series::default()
            });
        }
    }
    files.push((
        "banking_prices.svg".into(),
        chart::lines(&format!("Prices over time ({})", b.markets.join("+")), "year", "CNY/t", &price_series),
    ));
    let mut bank_series = vec![Series {
        name: "bank (TNAC)".into(),
        points: path.periods.iter().enumerate().map(|(i, p)| (x(i), p.bank_mt)).collect(),
        ..Series::default()
    }];
    if b.msr.is_some() {
        bank_series.push(Series {
            name: "MSR holdings".into(),
            points: path.periods.iter().enumerate().map(|(i, p)| (x(i), p.msr.unwrap_or_default().holdings_mt)).collect(),
            ..Series::default()
        });
    }
    files.push(("banking_bank.svg".into(), chart::lines("Bank and reserve", "year", "Mt", &bank_series)));
    json["banking"] = json!({"markets": b.markets, "discount_rate": b.discount_rate, "banking": b.banking, "borrowing_limit_mt": if b.borrowing_limit_mt.is_finite() { json!(b.borrowing_limit_mt) } else { json!("unlimited") },
        "path": path, "present_cost_without_banking": no_banking.map(|n| n.present_cost), "present_cost_without_msr": no_msr.map(|n| n.present_cost),
        "cumulative_emissions_without_msr_mt": no_msr.map(|n| n.cumulative_emissions_mt)});
    summary.push(format!(
        "banking {}: prices {:.2} → {:.2} CNY/t over {} years; present cost {:.1} M CNY{}",
        b.markets.join("+"),
        path.periods.first().map_or(0.0, |p| p.price),
        path.periods.last().map_or(0.0, |p| p.price),
        path.periods.len(),
        path.present_cost,
        no_banking.map_or(String::new(), |n| format!(" (without banking {:.1})", n.present_cost))
    ));
    if let Some(n) = no_msr {
        summary.push(format!(
            "without the MSR: prices {:.2} → {:.2}; present cost {:.1} M CNY; cumulative emissions {:.1} Mt (with it {:.1})",
            n.periods.first().map_or(0.0, |p| p.price),
            n.periods.last().map_or(0.0, |p| p.price),
            n.present_cost,
            n.cumulative_emissions_mt,
            path.cumulative_emissions_mt
        ));
    }
    if let (Some(c), Some(r)) = (path.msr_converged, path.msr_rounds) {
        let intake: f64 = path.periods.iter().map(|p| p.msr.unwrap_or_default().intake_mt).sum();
        summary
            .push(format!("MSR: {intake:.1} Mt taken in; fixed point {} after {r} rounds", if c { "converged" } else { "NOT converged" }));
    }
}

fn agent_results(a: &AgentOutcome, json: &mut Value, files: &mut Vec<(String, String)>, summary: &mut Vec<String>) {
    let mut csv = String::from("day,close,high,low,volume_t,trades,orders,band_hits,band_low,band_high\n");
    for d in &a.days {
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{},{},{},{},{}",
            d.day, d.close, d.high, d.low, d.volume_t, d.trades, d.orders, d.band_hits, d.band_low, d.band_high
        );
    }
    files.push(("agents_daily.csv".into(), csv));
    let pts = |f: &dyn Fn(&agents::Day) -> f64| a.days.iter().map(|d| (d.day as f64, f(d))).collect::<Vec<_>>();
    let price = vec![
        Series { name: "close".into(), points: pts(&|d| d.close), ..Series::default() },
        Series { name: "band".into(), band: a.days.iter().map(|d| (d.day as f64, d.band_low, d.band_high)).collect(), ..Series::default() },
        Series {
            name: "equilibrium".into(),
            points: vec![(1.0, a.equilibrium_price), (a.days.len() as f64, a.equilibrium_price)],
            ..Series::default()
        },
    ];
    files.push((
        "agents_price.svg".into(),
        chart::lines(&format!("{}: daily close, {} firms", a.market, a.firms), "trading day", "CNY/t", &price),
    ));
    let volume = vec![Series { name: "volume".into(), points: pts(&|d| d.volume_t as f64 / 1e3), bars: true, ..Series::default() }];
    files.push(("agents_volume.svg".into(), chart::lines(&format!("{}: daily volume", a.market), "trading day", "kt", &volume)));
    json["agents"] = serde_json::to_value(a).expect("serializable");
    summary.push(format!(
        "agents {}: {} firms, {} days; VWAP {:.2} (equilibrium {:.2}), last close {:.2}; {:.3} Mt in {} trades; {} days without trades; {} band hits; {} firms short by {:.3} Mt",
        a.market,
        a.firms,
        a.days.len(),
        a.vwap,
        a.equilibrium_price,
        a.final_close,
        a.volume_mt,
        a.trades,
        a.days_without_trades,
        a.band_hits,
        a.firms_short,
        a.shortfall_mt
    ));
}

fn sample(rng: &mut ChaCha8Rng, d: &Distribution) -> f64 {
    match *d {
        Distribution::Normal { sd } => (1.0 + sd * normal(rng)).max(0.01),
        Distribution::Lognormal { sigma } => lognormal(rng, sigma),
        Distribution::Uniform { low, high } => low + (high - low) * rng.gen::<f64>(),
    }
}

/// Quantile (linear interpolation between order statistics) of sorted values.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let h = q * (sorted.len() - 1) as f64;
    let (i, frac) = (h.floor() as usize, h - h.floor());
    if i + 1 < sorted.len() {
        sorted[i] + frac * (sorted[i + 1] - sorted[i])
    } else {
        sorted[i]
    }
}

#[derive(Default)]
struct Metric {
    name: String,
    values: Vec<f64>,
}

fn monte_carlo(
    s: &Scenario,
    mc: &crate::scenario::MonteCarloSpec,
    progress: Progress,
    json: &mut Value,
    files: &mut Vec<(String, String)>,
    summary: &mut Vec<String>,
) -> Result<(), SimError> {
    let mut rng = ChaCha8Rng::seed_from_u64(s.seed ^ fnv("monte carlo"));
    let mut metrics: Vec<Metric> = Vec::new();
    let mut record = |k: &mut usize, name: String, v: f64| {
        if metrics.len() <= *k {
            metrics.push(Metric { name, values: Vec::with_capacity(mc.draws) });
        }
        metrics[*k].values.push(v);
        *k += 1;
    };
    for draw in 0..mc.draws {
        let mut draws = default_draws(s);
        for u in &mc.uncertain {
            for (i, m) in s.markets.iter().enumerate() {
                if u.market.as_ref().is_some_and(|c| c != &m.code) {
                    continue;
                }
                let x = sample(&mut rng, &u.distribution);
                match u.parameter {
                    Parameter::Baseline => draws[i].baseline *= x,
                    Parameter::Cap => draws[i].cap *= x,
                    Parameter::MacLevel => draws[i].mac_level *= x,
                }
            }
        }
        let mut k = 0;
        let markets = s.build_markets(&draws)?;
        let outcomes = solve_regimes(s, &markets).map_err(|e| e.context(&format!("Monte Carlo draw {}", draw + 1)))?;
        let autarky_total = outcomes.iter().find(|o| o.regime == "autarky").map(|o| o.total_cost);
        for o in &outcomes {
            for m in &o.markets {
                record(&mut k, format!("{}.{}.price", o.regime, m.code), m.price);
            }
            record(&mut k, format!("{}.total_cost", o.regime), o.total_cost);
            if let (Some(a), true) = (autarky_total, o.regime != "autarky") {
                record(&mut k, format!("{}.gain_vs_autarky", o.regime), a - o.total_cost);
            }
        }
        if let Some(b) = &s.banking {
            let path = solve_path(s, b, &draws).map_err(|e| e.context(&format!("Monte Carlo draw {}", draw + 1)))?;
            for p in &path.periods {
                record(&mut k, format!("banking.{}.price", p.label), p.price);
            }
            record(&mut k, "banking.present_cost".into(), path.present_cost);
        }
        progress("Monte Carlo", draw + 1, mc.draws);
    }
    let tail = (1.0 - mc.confidence) / 2.0;
    let mut csv = String::from("metric,mean,low,median,high\n");
    let mut rows = Vec::new();
    let mut bands = std::collections::BTreeMap::new();
    for m in &mut metrics {
        let mean = m.values.iter().sum::<f64>() / m.values.len() as f64;
        m.values.sort_by(|a, b| a.total_cmp(b));
        let (lo, med, hi) = (quantile(&m.values, tail), quantile(&m.values, 0.5), quantile(&m.values, 1.0 - tail));
        let _ = writeln!(csv, "{},{mean},{lo},{med},{hi}", m.name);
        rows.push(json!({"metric": m.name, "mean": mean, "low": lo, "median": med, "high": hi}));
        bands.insert(m.name.clone(), (mean, lo, med, hi));
    }
    files.push(("monte_carlo.csv".into(), csv));
    let codes: Vec<String> = s.markets.iter().map(|m| m.code.clone()).collect();
    if let Some(eq) = &s.equilibrium {
        let mut series = Vec::new();
        for r in &eq.regimes {
            let name = match r {
                RegimeSpec::Autarky => "autarky",
                RegimeSpec::Integrated => "integrated",
                RegimeSpec::Linked => "linked",
                RegimeSpec::Restricted => "restricted",
            };
            for (label, pick) in [("low", 1usize), ("median", 2), ("high", 3)] {
                let values = codes
                    .iter()
                    .map(|c| {
                        let b = bands.get(&format!("{name}.{c}.price")).copied().unwrap_or_default();
                        [b.0, b.1, b.2, b.3][pick]
                    })
                    .collect();
                series.push((format!("{name} {label}"), values));
            }
        }
        files.push((
            "monte_carlo_prices.svg".into(),
            chart::bars(&format!("Prices: {:.0}% band over {} draws", mc.confidence * 100.0, mc.draws), "CNY/t", &codes, &series),
        ));
    }
    if let Some(b) = &s.banking {
        let years: Vec<(f64, (f64, f64, f64, f64))> = (0..b.years)
            .map(|t| {
                (
                    (b.first_year + t as i32) as f64,
                    bands.get(&format!("banking.{}.price", b.first_year + t as i32)).copied().unwrap_or_default(),
                )
            })
            .collect();
        let series = vec![Series {
            name: format!("median, {:.0}% band", mc.confidence * 100.0),
            points: years.iter().map(|(x, b)| (*x, b.2)).collect(),
            band: years.iter().map(|(x, b)| (*x, b.1, b.3)).collect(),
            bars: false,
        }];
        files.push(("monte_carlo_path.svg".into(), chart::lines("Price path under uncertainty", "year", "CNY/t", &series)));
    }
    for key in ["integrated.gain_vs_autarky", "banking.present_cost"] {
        if let Some((mean, lo, _, hi)) = bands.get(key) {
            summary.push(format!(
                "Monte Carlo {key}: mean {mean:.1}, {:.0}% band [{lo:.1}, {hi:.1}] over {} draws",
                mc.confidence * 100.0,
                mc.draws
            ));
        }
    }
    json["monte_carlo"] = json!({"draws": mc.draws, "confidence": mc.confidence, "metrics": rows});
    Ok(())
}

fn cbam_results(
    s: &Scenario,
    c: &crate::scenario::CbamSpec,
    outcomes: &[Outcome],
    json: &mut Value,
    files: &mut Vec<(String, String)>,
    summary: &mut Vec<String>,
) {
    let steps = 60;
    let grid: Vec<cbam::CbamPoint> = (0..=steps).map(|k| cbam::point(c, c.price_max * k as f64 / steps as f64)).collect();
    let mut csv = String::from("domestic_price,certificates_per_t,deduction_per_t,liability_eur_per_t,liability_eur,removed_share\n");
    for p in &grid {
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{}",
            p.domestic_price, p.certificates_per_t, p.deduction_per_t, p.liability_eur_per_t, p.liability_eur, p.removed_share
        );
    }
    files.push(("cbam.csv".into(), csv));
    let mut at_markets = Vec::new();
    let mut series = vec![Series {
        name: format!("{} liability", c.good),
        points: grid.iter().map(|p| (p.domestic_price, p.liability_eur_per_t)).collect(),
        ..Series::default()
    }];
    for code in &c.markets {
        let i = s.market_index(code).expect("checked when read");
        let mut prices: Vec<(String, f64)> = outcomes.iter().map(|o| (o.regime.clone(), o.markets[i].price)).collect();
        if prices.is_empty() {
            if let Some(t) = s.markets[i].target_price {
                prices.push(("observed".into(), t));
            }
        }
        for (regime, p) in prices {
            let point = cbam::point(c, p);
            series.push(Series { name: format!("{code} {regime}"), points: vec![(p, point.liability_eur_per_t)], ..Series::default() });
            at_markets.push(json!({"market": code, "regime": regime, "domestic_price": p, "point": point}));
            summary.push(format!(
                "CBAM {}: at {code} {regime} price {:.2} CNY/t, {:.4} certificates/t, €{:.2}/t ({:.1}% of the liability removed)",
                c.good,
                p,
                point.certificates_per_t,
                point.liability_eur_per_t,
                100.0 * point.removed_share
            ));
        }
    }
    files.push((
        "cbam.svg".into(),
        chart::lines(
            &format!("CBAM liability of {} against the domestic price", c.good),
            "domestic price, CNY/t",
            "EUR per t of good",
            &series,
        ),
    ));
    json["cbam"] = json!({"good": c.good, "paid_share": c.paid_share, "price_removing_all": cbam::price_removing_all(c), "at_markets": at_markets, "grid": grid});
}
