//! Compliance status per market and entity, computed on request from the MRV register
//! (verified emissions), the registry (allocation and surrenders) and the market's rulebook
//! (`ets_compliance`), under the compliance set-up the server was started with.
//!
//! Who sees what: a market's authority, registry administrators and auditors see every covered
//! entity of the market (`ReadCompliance`); an account representative sees the entities whose
//! compliance account it represents (`ReadHoldings` of that account); nobody else.

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Path, Query};
use crate::Platform;
use axum::extract::State;
use axum::Json;
use ets_access::{AccountRef, Action};
use ets_core::Fen;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

type S = State<Arc<Platform>>;

#[derive(Deserialize, IntoParams)]
pub struct ComplianceQuery {
    /// The emission (compliance) year; default the latest year with an accepted report.
    pub year: Option<i32>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct NotCounted {
    pub quantity_t: u64,
    pub reason: String,
}

/// One covered entity's standing for the year.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct EntityCompliance {
    pub entity: String,
    /// Its compliance account in the registry.
    pub account: Option<String>,
    /// `compliant`, `shortfall` or `not assessed`.
    pub status: String,
    /// Why it could not be assessed (no accepted report, no account).
    pub not_assessed: Option<String>,
    pub obligation_t: Option<u64>,
    pub allowances_counted_t: Option<u64>,
    pub offsets_counted_t: Option<u64>,
    /// Surrendered but not counted, with the rule that refused each.
    pub not_counted: Vec<NotCounted>,
    pub shortfall_t: Option<u64>,
    /// The fine at the market's price; absent when the market has no price to compute it at.
    pub fine_fen: Option<i64>,
    pub next_year_deduction_t: Option<u64>,
    pub carried_obligation_t: Option<u64>,
}

/// A market's compliance year: the totals over the entities the caller may see, and each one.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct MarketCompliance {
    pub market: String,
    pub year: i32,
    /// The rulebook the market is assessed under.
    pub rulebook: String,
    /// The surrender deadline of the year.
    pub deadline: Option<String>,
    /// The price fines are computed at, and where it comes from.
    pub price_fen: Option<i64>,
    pub price_source: String,
    /// Whether the caller sees every covered entity (`market`) or only its own (`own accounts`).
    pub scope: String,
    pub covered: usize,
    pub compliant: usize,
    pub shortfall: usize,
    pub not_assessed: usize,
    pub obligation_t: u64,
    pub surrendered_counted_t: u64,
    pub shortfall_t: u64,
    pub fines_fen: Option<i64>,
    pub entities: Vec<EntityCompliance>,
}

/// What of a market's compliance the caller may see.
enum Scope {
    Market,
    Accounts(Vec<String>),
}

fn scope(platform: &Platform, caller: &Caller, market: &str) -> ApiResult<Scope> {
    if ets_access::allows(caller.roles(), &Action::ReadCompliance { market: market.to_string() }) {
        return Ok(Scope::Market);
    }
    let ledger = platform.registry.lock().expect("registry lock");
    let r = ledger.registry();
    let own: Vec<String> = r
        .accounts()
        .iter()
        .filter(|a| r.market(a.market).spec.code == market)
        .filter(|a| ets_access::allows(caller.roles(), &Action::ReadHoldings { account: AccountRef::new(&a.number, market) }))
        .map(|a| a.number.clone())
        .collect();
    if own.is_empty() {
        caller.signed_in()?;
        return Err(ApiError::forbidden(format!(
            "compliance in {market} is for its authority, auditors, administrators and the representatives of covered accounts"
        )));
    }
    Ok(Scope::Accounts(own))
}

/// The price fines are computed at: the operator's set-up, else the market's latest closing
/// price on the exchange, else none.
fn price(platform: &Platform, market: &str) -> (Option<Fen>, String) {
    if let Some(p) = platform.compliance.prices.get(market) {
        return (Some(*p), "set for the market when the server was started".into());
    }
    let view = platform.market.read().expect("market view").clone();
    let latest = view
        .instruments
        .values()
        .filter(|i| i.market == market)
        .filter_map(|i| i.bars.last().map(|b| (b.date.clone(), i.code.clone(), b.close_fen)))
        .max();
    match latest {
        Some((date, code, close)) => (Some(Fen(close)), format!("closing price of {code} on {date}")),
        None => (None, "none: the market has no set price and no closing price, so fines are not computed".into()),
    }
}

fn latest_accepted_year(state: &ets_mrv::state::MrvState) -> Option<i32> {
    state.workflow().reports().filter(|r| r.verified_emissions_t.is_some()).map(|r| r.year).max()
}

/// A market's compliance year as `caller` may see it.
pub(crate) fn market_compliance(platform: &Platform, caller: &Caller, market: &str, year: Option<i32>) -> ApiResult<MarketCompliance> {
    if platform.registry.lock().expect("registry lock").registry().find_market(market).is_none() {
        return Err(ApiError::not_found(format!("no market {market}")));
    }
    let scope = scope(platform, caller, market)?;
    let mrv = platform.mrv.lock().expect("mrv lock");
    let state = mrv.state();
    let year = match year.or_else(|| latest_accepted_year(state)) {
        Some(y) if (1990..=2100).contains(&y) => y,
        Some(y) => return Err(ApiError::invalid(format!("year {y} is outside 1990..=2100"))),
        None => return Err(ApiError::invalid("no accepted emission report yet: give the year (?year=)")),
    };
    let rb =
        platform.compliance.rulebook(market, year).ok_or_else(|| ApiError::not_found(format!("no rulebook governs {market} in {year}")))?;
    let (price, price_source) = price(platform, market);
    let projects = platform.compliance.projects_for(market);
    // The MRV lock is taken before the registry's, as everywhere both are held.
    let status = {
        let ledger = platform.registry.lock().expect("registry lock");
        ets_compliance::market_status(&rb, state, ledger.registry(), year, price.unwrap_or_default(), &projects)
    };
    let visible: Vec<ets_compliance::EntityStatus> = match &scope {
        Scope::Market => status.entities,
        Scope::Accounts(own) => status.entities.into_iter().filter(|e| e.account.as_ref().is_some_and(|a| own.contains(a))).collect(),
    };
    let totals = ets_compliance::Totals::of(&visible);
    let entities = visible
        .into_iter()
        .map(|e| {
            let a = e.assessment.as_ref();
            EntityCompliance {
                status: e.status.into(),
                not_assessed: e.not_assessed.clone(),
                obligation_t: a.map(|a| a.obligation_t),
                allowances_counted_t: a.map(|a| a.allowances_counted_t),
                offsets_counted_t: a.map(|a| a.offsets_counted_t),
                not_counted: a
                    .map(|a| a.not_counted.iter().map(|(q, why)| NotCounted { quantity_t: *q, reason: why.clone() }).collect())
                    .unwrap_or_default(),
                shortfall_t: a.map(|a| a.shortfall_t),
                fine_fen: a.and_then(|a| price.map(|_| a.fine_minor)),
                next_year_deduction_t: a.map(|a| a.next_year_deduction_t),
                carried_obligation_t: a.map(|a| a.carried_obligation_t),
                entity: e.entity,
                account: e.account,
            }
        })
        .collect();
    let out = MarketCompliance {
        market: market.to_string(),
        year,
        rulebook: status.rulebook,
        deadline: status.deadline.map(|d| d.to_string()),
        price_fen: price.map(|p| p.0),
        price_source,
        scope: match scope {
            Scope::Market => "market".into(),
            Scope::Accounts(_) => "own accounts".into(),
        },
        covered: totals.covered,
        compliant: totals.compliant,
        shortfall: totals.shortfall,
        not_assessed: totals.not_assessed,
        obligation_t: totals.obligation_t,
        surrendered_counted_t: totals.surrendered_counted_t,
        shortfall_t: totals.shortfall_t,
        // Without a price the fines are not computed, not zero.
        fines_fen: price.map(|_| totals.fines.0),
        entities,
    };
    Ok(out)
}

/// The markets whose compliance `caller` may see (any part of).
pub(crate) fn visible_markets(platform: &Platform, caller: &Caller) -> Vec<String> {
    let codes: Vec<String> = {
        let ledger = platform.registry.lock().expect("registry lock");
        ledger.registry().markets().iter().map(|m| m.spec.code.clone()).collect()
    };
    codes.into_iter().filter(|m| scope(platform, caller, m).is_ok()).collect()
}

/// Compliance status of every market the caller may see, for a year.
#[utoipa::path(get, path = "/api/v1/compliance", tag = "compliance", params(ComplianceQuery), security(("session" = []), ("bearer" = [])),
    responses((status = 200, body = Vec<MarketCompliance>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn compliance_all(
    State(platform): S,
    caller: Caller,
    Query(q): Query<ComplianceQuery>,
) -> ApiResult<Json<Vec<MarketCompliance>>> {
    crate::api::blocking(move || {
        let markets = visible_markets(&platform, &caller);
        if markets.is_empty() {
            caller.signed_in()?;
            return Err(ApiError::forbidden(
                "compliance is for market authorities, auditors, administrators and the representatives of covered accounts",
            ));
        }
        // Without a year and without any accepted report, there is nothing to assess yet.
        if q.year.is_none() && latest_accepted_year(platform.mrv.lock().expect("mrv lock").state()).is_none() {
            return Ok(Json(Vec::new()));
        }
        let mut out = Vec::new();
        for m in markets {
            match market_compliance(&platform, &caller, &m, q.year) {
                Ok(c) => out.push(c),
                // A market without a rulebook for the year has no compliance status to show.
                Err(e) if e.status == axum::http::StatusCode::NOT_FOUND => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(Json(out))
    })
    .await
}

/// One market's compliance year: each covered entity's obligation, what counted, shortfall,
/// fine and deduction (the entities the caller may see).
#[utoipa::path(get, path = "/api/v1/compliance/{market}", tag = "compliance", params(("market" = String, Path, example = "CN"), ComplianceQuery),
    security(("session" = []), ("bearer" = [])),
    responses((status = 200, body = MarketCompliance), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn compliance_market(
    State(platform): S,
    caller: Caller,
    Path(market): Path<String>,
    Query(q): Query<ComplianceQuery>,
) -> ApiResult<Json<MarketCompliance>> {
    crate::api::blocking(move || market_compliance(&platform, &caller, &market, q.year).map(Json)).await
}
