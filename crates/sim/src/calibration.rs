//! The default data set: the national market and the eight pilots, from the published
//! statistics in economics.md (`data/calibration-china.toml`, every value with its source and
//! tag), and what the simulator reads from a market's rulebook.

use crate::mac::Mac;
use crate::SimError;
use ets_rules::rulebook::Rulebook;
use serde::{Deserialize, Serialize};

/// The shipped calibration file.
pub const DEFAULT: &str = include_str!("../data/calibration-china.toml");

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    calibration: Params,
    prices: PriceRule,
    market: Vec<Entry>,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub abatement_share: f64,
    pub mac_gamma: f64,
    pub firm_dispersion: f64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceRule {
    scale_from: Vec<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    code: String,
    name: String,
    rulebook: Option<String>,
    cap_mt: f64,
    entities: u32,
    price_2024: Option<f64>,
    price_2020: Option<f64>,
    volume_2024_mt: Option<f64>,
}

/// One market as calibrated.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CalibratedMarket {
    pub code: String,
    pub name: String,
    pub rulebook: Option<String>,
    pub cap_mt: f64,
    pub baseline_mt: f64,
    /// The price the market alone clears at (CNY/t).
    pub target_price: f64,
    /// "2024" (observed) or "2020 close × scale" (see the data file).
    pub target_basis: String,
    pub entities: u32,
    pub volume_2024_mt: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Calibration {
    pub params: Params,
    /// The 2020 → 2024 pilot price scale.
    pub price_scale: f64,
    pub markets: Vec<CalibratedMarket>,
}

impl Calibration {
    pub fn default_set() -> Calibration {
        Calibration::parse(DEFAULT).expect("the shipped calibration is valid")
    }

    pub fn parse(text: &str) -> Result<Calibration, SimError> {
        let file: File = toml::from_str(text).map_err(|e| SimError::new(format!("calibration: {}", e.message())))?;
        let p = file.calibration;
        if !(p.abatement_share > 0.0 && p.abatement_share < 1.0) {
            return Err(SimError::new("calibration.abatement_share must be between 0 and 1"));
        }
        if !(p.mac_gamma > 0.0 && p.mac_gamma.is_finite()) {
            return Err(SimError::new("calibration.mac_gamma must be positive"));
        }
        let (mut sum_2024, mut sum_2020) = (0.0, 0.0);
        for code in &file.prices.scale_from {
            let e = file
                .market
                .iter()
                .find(|m| &m.code == code)
                .ok_or_else(|| SimError::new(format!("prices.scale_from: no market {code}")))?;
            match (e.price_2024, e.price_2020) {
                (Some(a), Some(b)) => {
                    sum_2024 += a;
                    sum_2020 += b;
                }
                _ => return Err(SimError::new(format!("prices.scale_from: {code} needs price_2024 and price_2020"))),
            }
        }
        let price_scale = if sum_2020 > 0.0 { sum_2024 / sum_2020 } else { 1.0 };
        let mut markets = Vec::new();
        for e in file.market {
            let (target_price, target_basis) = match (e.price_2024, e.price_2020) {
                (Some(p), _) => (p, "2024".to_string()),
                (None, Some(p)) => (p * price_scale, format!("2020 close {p} × {price_scale:.4}")),
                (None, None) => return Err(SimError::new(format!("market {}: needs price_2024 or price_2020", e.code))),
            };
            if !(e.cap_mt > 0.0 && target_price > 0.0) {
                return Err(SimError::new(format!("market {}: cap and price must be positive", e.code)));
            }
            markets.push(CalibratedMarket {
                baseline_mt: e.cap_mt / (1.0 - p.abatement_share),
                code: e.code,
                name: e.name,
                rulebook: e.rulebook,
                cap_mt: e.cap_mt,
                target_price,
                target_basis,
                entities: e.entities,
                volume_2024_mt: e.volume_2024_mt,
            });
        }
        Ok(Calibration { params: p, price_scale, markets })
    }

    pub fn market(&self, code: &str) -> Option<&CalibratedMarket> {
        self.markets.iter().find(|m| m.code == code)
    }
}

/// The market-level MAC that clears `required` Mt at `price` with curvature `gamma`.
pub fn mac_for(price: f64, required: f64, gamma: f64) -> Result<Mac, SimError> {
    if required.is_nan() || required <= 0.0 {
        return Err(SimError::new(format!(
            "cannot calibrate a MAC to a price with {required} Mt to abate: the cap must be below the baseline"
        )));
    }
    if gamma == 1.0 {
        Mac::linear(price / required)
    } else {
        Mac::power(price / required.powf(gamma), gamma)
    }
}

/// What the simulator takes from a rulebook.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RuleInfo {
    pub id: String,
    pub market: String,
    /// Offset groups' limits added up, or the all-offsets limit if tighter. The rulebooks'
    /// bases differ (emissions, obligation, allocation); the simulator applies it to emissions.
    pub offset_limit_share: Option<f64>,
    pub banking: bool,
    pub borrowing: bool,
    /// Listed price band (± share of the previous close).
    pub listed_band: Option<f64>,
    pub floor: Option<f64>,
    pub ceiling: Option<f64>,
    pub cap_mt: Option<f64>,
}

/// The ids of the shipped rulebooks (file names without `.toml`).
pub fn rulebook_ids() -> Vec<String> {
    ets_rules::rulebook::builtin().iter().map(|(f, _)| f.trim_end_matches(".toml").to_string()).collect()
}

/// Reads a shipped rulebook by id (`gd-2024`).
pub fn rule_info(id: &str) -> Result<RuleInfo, SimError> {
    let (file, text) = ets_rules::rulebook::builtin()
        .iter()
        .find(|(f, _)| f.trim_end_matches(".toml") == id)
        .ok_or_else(|| SimError::new(format!("no shipped rulebook '{id}' (known: {})", rulebook_ids().join(", "))))?;
    let book = Rulebook::from_toml(file, text).map_err(|e| SimError::new(format!("rulebook {id}: {e}")))?;
    Ok(info(&book))
}

pub fn info(book: &Rulebook) -> RuleInfo {
    let groups: Vec<f64> = book.compliance.offsets.iter().map(|o| dec_any(&o.limit_share)).collect();
    let total = book.compliance.total_offset_limit_share.as_ref().map(dec_any);
    let sum = (!groups.is_empty()).then(|| groups.iter().sum::<f64>());
    let offset_limit_share = match (sum, total) {
        (Some(g), Some(t)) => Some(g.min(t)),
        (g, t) => g.or(t),
    };
    let bounds = book.trading.price_bounds;
    RuleInfo {
        id: book.rulebook.id.clone(),
        market: book.rulebook.market.clone(),
        offset_limit_share,
        banking: book.compliance.vintages.banking,
        borrowing: book.compliance.vintages.borrowing,
        listed_band: book.trading.listed_band.as_ref().map(dec_any),
        floor: bounds.and_then(|b| b.floor_minor).map(|f| f as f64 / 100.0),
        ceiling: bounds.and_then(|b| b.ceiling_minor).map(|c| c as f64 / 100.0),
        cap_mt: book.cap.cap_t.map(|c| c as f64 / 1e6),
    }
}

fn dec_any(d: &impl ToString) -> f64 {
    d.to_string().parse().expect("a decimal prints as a number")
}
