//! Pre-trade rules of the national market (china-ets.md §4, `[SEEE-ZH]`): price bands around
//! the previous close and the split between listed and block trading by order size. The values
//! are the market's rulebook's (`[trading]`); here they are plain integers so that the matching
//! core stays free of decimals: shares in basis points, prices in ticks (fen).

use serde::{Deserialize, Serialize};
use std::fmt;

/// A trading mode of the national market.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// Listed trading: orders below the block minimum, band ±10%.
    Listed,
    /// Block trading: orders of at least the block minimum, band ±30%.
    Block,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TradingRules {
    /// Listed price band around the previous close, basis points (1,000 = ±10%).
    pub listed_band_bp: u32,
    /// Block price band, basis points (3,000 = ±30%).
    pub block_band_bp: u32,
    /// Smallest block order, and the first size listed trading refuses (100,000 t).
    pub block_min_t: u64,
}

impl TradingRules {
    /// The national market's rules (`[SEEE-ZH]`).
    pub const NATIONAL: TradingRules = TradingRules { listed_band_bp: 1_000, block_band_bp: 3_000, block_min_t: 100_000 };

    /// The band [low, high] in ticks for a mode around `previous_close`, rounded inward so that
    /// no allowed price is outside the percentage.
    pub fn band(&self, mode: Mode, previous_close: i64) -> (i64, i64) {
        let bp = i64::from(match mode {
            Mode::Listed => self.listed_band_bp,
            Mode::Block => self.block_band_bp,
        });
        let close = i128::from(previous_close);
        let high = close * i128::from(10_000 + bp) / 10_000;
        let low_num = close * i128::from(10_000 - bp);
        let low = (low_num + 9_999) / 10_000;
        (low as i64, high as i64)
    }

    /// Checks an order's mode, size and price against the rules.
    pub fn check(&self, mode: Mode, previous_close: i64, price: i64, qty: u64) -> Result<(), PreTradeReject> {
        match mode {
            Mode::Listed if qty >= self.block_min_t => {
                return Err(PreTradeReject::TooLargeForListed { qty, block_min_t: self.block_min_t })
            }
            Mode::Block if qty < self.block_min_t => return Err(PreTradeReject::TooSmallForBlock { qty, block_min_t: self.block_min_t }),
            _ => {}
        }
        let (low, high) = self.band(mode, previous_close);
        if price < low || price > high {
            return Err(PreTradeReject::OutsideBand { mode, price, low, high });
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PreTradeReject {
    TooLargeForListed { qty: u64, block_min_t: u64 },
    TooSmallForBlock { qty: u64, block_min_t: u64 },
    OutsideBand { mode: Mode, price: i64, low: i64, high: i64 },
}

pub(crate) fn yuan(ticks: i64) -> String {
    format!("¥{}.{:02}", ticks / 100, ticks % 100)
}

impl fmt::Display for PreTradeReject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PreTradeReject::TooLargeForListed { qty, block_min_t } => {
                write!(f, "an order of {qty} t must go to block trading: listed orders are below {block_min_t} t")
            }
            PreTradeReject::TooSmallForBlock { qty, block_min_t } => {
                write!(f, "an order of {qty} t must go to listed trading: block orders are at least {block_min_t} t")
            }
            PreTradeReject::OutsideBand { mode, price, low, high } => {
                write!(f, "{mode:?} price {} is outside the band [{}, {}]", yuan(*price), yuan(*low), yuan(*high))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_13_price_bands_and_order_routing() {
        // Previous close ¥80.00 → listed band [72.00, 88.00]; block band [56.00, 104.00].
        let r = TradingRules::NATIONAL;
        assert_eq!(r.band(Mode::Listed, 8_000), (7_200, 8_800));
        assert_eq!(r.band(Mode::Block, 8_000), (5_600, 10_400));
        // 99,999 t must go listed; 100,000 t may go block.
        assert!(r.check(Mode::Listed, 8_000, 8_000, 99_999).is_ok());
        assert_eq!(
            r.check(Mode::Listed, 8_000, 8_000, 100_000).unwrap_err().to_string(),
            "an order of 100000 t must go to block trading: listed orders are below 100000 t"
        );
        assert!(r.check(Mode::Block, 8_000, 8_000, 100_000).is_ok());
        assert!(r.check(Mode::Block, 8_000, 8_000, 99_999).is_err());
        // A listed bid at ¥88.01 is rejected.
        assert_eq!(
            r.check(Mode::Listed, 8_000, 8_801, 10).unwrap_err().to_string(),
            "Listed price ¥88.01 is outside the band [¥72.00, ¥88.00]"
        );
    }

    #[test]
    fn bands_round_inward() {
        // Close ¥74.63: +10% = 82.093 → 82.09; −10% = 67.167 → 67.17.
        assert_eq!(TradingRules::NATIONAL.band(Mode::Listed, 7_463), (6_717, 8_209));
    }
}
