//! An instrument's trading rules from its market's rulebook: listing a vintage of a pilot's
//! allowances gives it the pilot's price band, block rules and closing price, not the national
//! market's. Shared by `POST /api/v1/exchange/instruments` and `ets exchange list`.
//!
//! What the venue applies from `[trading]`: `listed_band` and `block_band` (as basis points;
//! no `block_band`: no block trading), `block_min_t`, `listed_max_order_t` and `closing_price`
//! (`listed_vwap`; `last_trade` is the venue's last-trade close, no closing call). The venue
//! trades in fen and in 1-fen ticks and 1 t lots: a rulebook priced in another currency, or
//! with another tick or lot, is refused rather than listed under rules it does not state.
//! Price bounds (floors and ceilings that trigger auctions or buy-backs) are market
//! interventions, not order checks, and are not applied here. Sessions, style and settlement
//! lag stay the national market's unless the caller sets them.

use ets_exchange::venue::{CloseRule, InstrumentSpec};
use ets_registry::UnitRef;
use ets_rules::rulebook::{ClosingPrice, Rulebook};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

/// A share (0.10) as basis points (1,000), exactly, from 1 to 10,000.
fn basis_points(key: &str, share: Decimal) -> Result<u32, String> {
    let bp = share * Decimal::from(10_000);
    if bp.fract() != Decimal::ZERO || bp < Decimal::ONE || bp > Decimal::from(10_000) {
        return Err(format!("[trading] {key} = {share}: the venue takes a band of whole basis points from 0.0001 to 1"));
    }
    Ok(bp.to_u32().expect("from 1 to 10,000"))
}

/// The instrument `code` delivering `unit` of `market`, with the reference price (fen) as its
/// first previous close, under `rulebook`'s trading rules (the national defaults where the
/// rulebook is silent, and entirely without one).
pub fn instrument_spec(
    rulebook: Option<&Rulebook>,
    market: &str,
    unit: UnitRef,
    code: String,
    reference_price_fen: i64,
) -> Result<InstrumentSpec, String> {
    let mut spec = InstrumentSpec::national(unit.vintage, reference_price_fen);
    spec.code = code;
    spec.market = market.to_string();
    spec.unit = unit;
    let Some(rb) = rulebook else { return Ok(spec) };
    let t = &rb.trading;
    let id = &rb.rulebook.id;
    if t.currency != "CNY" {
        return Err(format!("rulebook {id} prices in {}: the exchange trades in yuan (fen)", t.currency));
    }
    if t.tick_minor.is_some_and(|x| x != 1) || t.lot_t.is_some_and(|x| x != 1) {
        return Err(format!("rulebook {id} sets a tick or lot other than 1 fen and 1 t, which the exchange does not trade in"));
    }
    if let Some(band) = t.listed_band {
        spec.rules.listed_band_bp = basis_points("listed_band", band).map_err(|e| format!("rulebook {id}: {e}"))?;
    }
    match t.block_band {
        Some(band) => {
            spec.rules.block_band_bp = basis_points("block_band", band).map_err(|e| format!("rulebook {id}: {e}"))?;
            if let Some(min) = t.block_min_t {
                spec.rules.block_min_t = min;
            }
            spec.max_order_t =
                t.listed_max_order_t.unwrap_or(spec.rules.block_min_t.saturating_sub(1)).min(spec.rules.block_min_t.saturating_sub(1));
        }
        None => {
            // No block mode: no block sessions, and listed orders are bounded by the listed
            // maximum alone (the block minimum is what listed trading refuses).
            spec.block.clear();
            spec.max_order_t = t.listed_max_order_t.unwrap_or(spec.max_order_t);
            spec.rules.block_min_t = spec.max_order_t.saturating_add(1);
        }
    }
    spec.close_rule = match t.closing_price {
        ClosingPrice::ListedVwap => CloseRule::ListedVwap,
        // Without a closing call the closing-auction rule is the last trade's price.
        ClosingPrice::LastTrade => {
            spec.closing_call = None;
            CloseRule::ClosingAuction
        }
    };
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped(id: &str) -> Rulebook {
        ets_compliance::shipped().iter().find(|rb| rb.rulebook.id == id).unwrap().clone()
    }

    #[test]
    fn the_national_rulebook_lists_under_the_national_rules() {
        let rb = shipped("cn-power-2025-2026-draft");
        let spec = instrument_spec(Some(&rb), "CN", UnitRef::allowance("CEA", 2026), "CEA-2026".into(), 8_000).unwrap();
        assert_eq!(spec, InstrumentSpec::national(2026, 8_000));
    }

    #[test]
    fn a_pilot_without_block_trading_lists_without_it() {
        let rb = shipped("bj-2024");
        assert!(rb.trading.block_band.is_none());
        let spec = instrument_spec(Some(&rb), "BJ", UnitRef::allowance("BEA", 2025), "BEA-2025".into(), 10_000).unwrap();
        assert_eq!(spec.rules.listed_band_bp, 1_000);
        assert!(spec.block.is_empty(), "no block sessions");
        assert_eq!(spec.rules.block_min_t, spec.max_order_t + 1, "listed orders up to the maximum pass the block-size check");
        assert_eq!((spec.market.as_str(), spec.code.as_str()), ("BJ", "BEA-2025"));
    }

    #[test]
    fn bands_other_currencies_and_ticks_are_checked() {
        assert_eq!(basis_points("listed_band", "0.2".parse().unwrap()), Ok(2_000));
        assert_eq!(basis_points("listed_band", "0.0001".parse().unwrap()), Ok(1));
        assert_eq!(basis_points("listed_band", "1".parse().unwrap()), Ok(10_000));
        assert!(basis_points("listed_band", "0.00005".parse().unwrap()).is_err());
        assert!(basis_points("listed_band", "1.5".parse().unwrap()).is_err());
        let mut rb = shipped("bj-2024");
        rb.trading.listed_band = Some("0.2".parse().unwrap());
        rb.trading.block_band = Some("0.3".parse().unwrap());
        rb.trading.block_min_t = Some(10_000);
        let spec = instrument_spec(Some(&rb), "BJ", UnitRef::allowance("BEA", 2025), "BEA-2025".into(), 10_000).unwrap();
        assert_eq!(
            (spec.rules.listed_band_bp, spec.rules.block_band_bp, spec.rules.block_min_t, spec.max_order_t),
            (2_000, 3_000, 10_000, 9_999)
        );
        rb.trading.tick_minor = Some(5);
        assert!(instrument_spec(Some(&rb), "BJ", UnitRef::allowance("BEA", 2025), "BEA-2025".into(), 10_000).unwrap_err().contains("tick"));
        rb.trading.tick_minor = None;
        rb.trading.currency = "EUR".into();
        assert!(instrument_spec(Some(&rb), "BJ", UnitRef::allowance("BEA", 2025), "BEA-2025".into(), 10_000).unwrap_err().contains("EUR"));
    }
}
