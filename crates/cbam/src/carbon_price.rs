//! The carbon price effectively paid in China's national market, for the Art. 9 deduction.
//!
//! Free allowances are a rebate (DRAFT9 Art. 8(1)(b)(i); Commission Q&A 27.5.2026 Q1.5): only
//! allowances actually bought for a shortfall above the free allocation, at the price paid,
//! count (cbam.md §7 "CBAM treatment"). The registry knows what was allocated free and what was
//! bought into the account; the prices come from the exchange (not finished), so they are an
//! input list. The interface is one function:
//!
//! ```text
//! paid_t   = min(Σ purchases listed, net bought into the account per the registry,
//!                max(0, verified emissions − free allocation))
//! paid     = paid_t × volume-weighted average purchase price
//! per_t    = paid / verified emissions          (per tonne of the installation's emissions)
//! ```
//!
//! Read from the registry, for allowance units of the account's market with vintage = the
//! compliance year, ignoring reversed transactions and their reversals:
//! - free allocation: allocations from the market's issuance account;
//! - bought: allocations from the market's reserve account (auctions), transfers and posted
//!   pending transfers into the account, less transfers out of it.

use crate::error::{CbamError, Result};
use crate::num;
use ets_registry::{Registry, TxKind, UnitClass};
use rust_decimal::Decimal;
use serde::Serialize;

/// A purchase of allowances on the exchange (or at auction): quantity and price paid per tonne.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Purchase {
    pub quantity_t: u64,
    /// Price per tonne in yuan (CNY).
    pub price_cny: Decimal,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DomesticCarbonPrice {
    pub account: String,
    pub market: String,
    pub compliance_year: u16,
    pub verified_emissions_t: Decimal,
    pub free_allocated_t: u64,
    pub bought_t: u64,
    pub sold_t: u64,
    pub purchases_listed_t: u64,
    /// Tonnes whose price counts as effectively paid.
    pub paid_t: Decimal,
    pub average_price_cny: Decimal,
    pub paid_cny: Decimal,
    /// Effective carbon price per tonne of the installation's emissions (CNY).
    pub per_t_co2e_cny: Decimal,
}

/// The effective carbon price paid per tonne of emissions by the holder of `account` for
/// `compliance_year`. `verified_emissions_t` is the year's verified direct emissions (MRV).
pub fn carbon_price_paid(
    registry: &Registry,
    account: &str,
    compliance_year: u16,
    verified_emissions_t: Decimal,
    purchases: &[Purchase],
) -> Result<DomesticCarbonPrice> {
    let idx =
        registry.find_account(account).ok_or_else(|| CbamError::input("account", format!("no account '{account}' in the registry")))?;
    let market_idx = registry.account(idx).market;
    let market = registry.market(market_idx);
    num::positive("verified_emissions_t", verified_emissions_t)?;
    for (i, p) in purchases.iter().enumerate() {
        if p.quantity_t == 0 {
            return Err(CbamError::input(format!("purchases[{i}].quantity_t"), "must be at least 1 t"));
        }
        num::non_negative(&format!("purchases[{i}].price_cny"), p.price_cny)?;
    }
    let (mut free, mut bought, mut sold) = (0u64, 0u64, 0u64);
    for tx in registry.transactions() {
        if tx.reversed_by.is_some() || matches!(tx.kind, TxKind::Reversal { .. } | TxKind::IssuanceReversal { .. }) {
            continue;
        }
        let unit = &registry.unit(tx.unit).spec;
        if unit.issuer != market_idx || unit.class != UnitClass::Allowance || unit.vintage != compliance_year {
            continue;
        }
        let q: u64 = tx.blocks.iter().map(|b| b.len()).sum();
        let into = tx.to == idx;
        let out_of = tx.from == Some(idx);
        match tx.kind {
            TxKind::Allocation if into && tx.from == Some(market.issuance) => free += q,
            TxKind::Allocation if into && tx.from == Some(market.reserve) => bought += q,
            TxKind::Transfer | TxKind::PendingPost if into => bought += q,
            TxKind::Transfer | TxKind::PendingPost if out_of => sold += q,
            _ => {}
        }
    }
    let listed: u64 = purchases.iter().map(|p| p.quantity_t).sum();
    let net_bought = bought.saturating_sub(sold);
    if listed > net_bought {
        return Err(CbamError::input(
            "purchases",
            format!("the purchases list {listed} t but the registry shows {net_bought} t of {}:{compliance_year} bought into {account} (bought {bought}, sold {sold})", market.spec.allowance_code),
        ));
    }
    let shortfall = (verified_emissions_t - Decimal::from(free)).max(Decimal::ZERO);
    let paid_t = Decimal::from(listed).min(shortfall);
    let spent = purchases
        .iter()
        .try_fold(Decimal::ZERO, |a, p| num::add(a, num::mul(Decimal::from(p.quantity_t), p.price_cny, "purchase")?, "purchases"))?;
    let average = if listed == 0 { Decimal::ZERO } else { num::div(spent, Decimal::from(listed), "average price")? };
    let paid = num::money(num::mul(paid_t, average, "paid")?);
    Ok(DomesticCarbonPrice {
        account: account.to_string(),
        market: market.spec.code.clone(),
        compliance_year,
        verified_emissions_t,
        free_allocated_t: free,
        bought_t: bought,
        sold_t: sold,
        purchases_listed_t: listed,
        paid_t,
        average_price_cny: average,
        paid_cny: paid,
        per_t_co2e_cny: num::div(paid, verified_emissions_t, "price per tonne")?,
    })
}
