//! Carbon finance and carbon inclusion through the API, the reads: the desk's parties, pledges,
//! repos and futures contracts, and the inclusion register's methodologies, submissions and
//! per-pilot credit totals, as the finance journal holds them (`Platform::finance`). The writes
//! are `api_finance_commands`.
//!
//! Scope, from `ets_access::allows` alone: an item involving registry accounts is shown to a
//! caller who may read the holdings of one of them (`ReadHoldings`: registry administrators and
//! auditors, the authority of the account's market, the account's representatives); a pilot's
//! totals to callers who may read the pilot's accounts (`ReadAccounts`). The finance operator
//! (`OperateFinance`), who runs the desk and the register, sees all of them. Anonymous callers
//! are 401, signed-in callers with no such role (a verifier, an exchange member only) 403. The
//! methodology catalog is public reference data. Cash in fen, quantities in tonnes, rates in
//! basis points, exact decimals as strings.

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Json;
use crate::Platform;
use axum::extract::State;
use ets_access::{allows, AccountRef, Action, Role};
use ets_finance::desk::{ContractStatus, PledgeStatus, RepoStatus, Settlement};
use ets_finance::inclusion::Status;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use utoipa::ToSchema;

type S = State<Arc<Platform>>;

/// Who sees what: everything (registry-wide readers), or items involving an account the caller
/// may read.
struct Scope {
    all: bool,
}

fn finance_scope(caller: &Caller) -> ApiResult<Scope> {
    caller.signed_in()?;
    if allows(caller.roles(), &Action::ReadRegistry) || allows(caller.roles(), &Action::OperateFinance) {
        return Ok(Scope { all: true });
    }
    let scoped = caller
        .roles()
        .iter()
        .any(|r| matches!(r, Role::MarketAuthority { .. } | Role::AccountRepresentative { .. } | Role::ApprovingRepresentative { .. }));
    if !scoped {
        return Err(ApiError::forbidden(
            "finance and inclusion data is for market authorities, account representatives, auditors and administrators",
        ));
    }
    Ok(Scope { all: false })
}

/// The accounts among `accounts` whose holdings the caller may read (markets from the registry).
fn readable(platform: &Platform, caller: &Caller, scope: &Scope, accounts: BTreeSet<String>) -> BTreeSet<String> {
    if scope.all {
        return accounts;
    }
    let ledger = platform.registry.lock().expect("registry lock");
    let r = ledger.registry();
    accounts
        .into_iter()
        .filter(|number| {
            r.find_account(number).is_some_and(|idx| {
                let account = AccountRef::new(number, &r.market(r.account(idx).market).spec.code);
                allows(caller.roles(), &Action::ReadHoldings { account })
            })
        })
        .collect()
}

// ------------------------------------------------------------------ the desk

#[derive(Serialize, ToSchema)]
pub struct FinanceParty {
    pub party: String,
    pub account: String,
    pub balance_fen: i64,
    /// Initial margin held on open futures positions (part of the balance).
    pub margin_fen: i64,
    /// Reserved for working futures orders (part of the balance).
    pub reserved_fen: i64,
    pub available_fen: i64,
    /// The balance is below the margin held.
    pub shortfall: bool,
}

/// The desk's parties and their cash (fen): balance, margin held, reserved, available.
#[utoipa::path(get, path = "/api/v1/finance/parties", tag = "finance", security(("session" = []), ("bearer" = [])),
    responses((status = 200, body = Vec<FinanceParty>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn finance_parties(State(platform): S, caller: Caller) -> ApiResult<Json<Vec<FinanceParty>>> {
    let scope = finance_scope(&caller)?;
    let rows: Vec<FinanceParty> = {
        let log = platform.finance.lock().expect("finance lock");
        let Some(desk) = log.desk() else { return Ok(Json(Vec::new())) };
        desk.parties()
            .iter()
            .map(|p| FinanceParty {
                party: p.name.clone(),
                account: p.account.clone(),
                balance_fen: p.balance_fen,
                margin_fen: p.margin_fen,
                reserved_fen: p.reserved_fen,
                available_fen: p.available(),
                shortfall: p.balance_fen < p.margin_fen,
            })
            .collect()
    };
    let seen = readable(&platform, &caller, &scope, rows.iter().map(|p| p.account.clone()).collect());
    Ok(Json(rows.into_iter().filter(|p| seen.contains(&p.account)).collect()))
}

#[derive(Serialize, ToSchema)]
pub struct PledgeInfo {
    pub pledge: String,
    pub borrower: String,
    pub borrower_account: String,
    pub lender: String,
    pub lender_account: String,
    pub unit: String,
    /// Units pledged (registry pending transfers to the lender, still the borrower's).
    pub quantity_t: u64,
    /// The registry pending transfers holding the collateral.
    pub pendings: Vec<String>,
    pub loan_fen: i64,
    pub outstanding_fen: i64,
    pub haircut_bp: u32,
    pub maintenance_bp: u32,
    pub topup_days: u16,
    pub maturity: String,
    /// Deadline of the open margin call.
    pub margin_call_due: Option<String>,
    /// active, released or enforced.
    pub status: String,
}

/// Allowance pledges: collateral, loan and outstanding amount (fen), terms, margin calls and
/// status.
#[utoipa::path(get, path = "/api/v1/finance/pledges", tag = "finance", security(("session" = []), ("bearer" = [])),
    responses((status = 200, body = Vec<PledgeInfo>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn finance_pledges(State(platform): S, caller: Caller) -> ApiResult<Json<Vec<PledgeInfo>>> {
    let scope = finance_scope(&caller)?;
    let rows: Vec<PledgeInfo> = {
        let log = platform.finance.lock().expect("finance lock");
        let Some(desk) = log.desk() else { return Ok(Json(Vec::new())) };
        let party = |i: usize| desk.parties().get(i).map(|p| (p.name.clone(), p.account.clone())).unwrap_or_default();
        desk.pledges()
            .iter()
            .map(|(id, p)| {
                let (borrower, borrower_account) = party(p.borrower);
                let (lender, lender_account) = party(p.lender);
                PledgeInfo {
                    pledge: id.clone(),
                    borrower,
                    borrower_account,
                    lender,
                    lender_account,
                    unit: p.unit.to_string(),
                    quantity_t: p.quantity(),
                    pendings: p.pendings.iter().map(|(id, _)| id.clone()).collect(),
                    loan_fen: p.loan_fen,
                    outstanding_fen: p.outstanding_fen,
                    haircut_bp: p.haircut_bp,
                    maintenance_bp: p.maintenance_bp,
                    topup_days: p.topup_days,
                    maturity: p.maturity.to_string(),
                    margin_call_due: p.call.filter(|_| p.status == PledgeStatus::Active).map(|d| d.to_string()),
                    status: match p.status {
                        PledgeStatus::Active => "active",
                        PledgeStatus::Released => "released",
                        PledgeStatus::Enforced => "enforced",
                    }
                    .into(),
                }
            })
            .collect()
    };
    let accounts = rows.iter().flat_map(|p| [p.borrower_account.clone(), p.lender_account.clone()]).collect();
    let seen = readable(&platform, &caller, &scope, accounts);
    Ok(Json(rows.into_iter().filter(|p| seen.contains(&p.borrower_account) || seen.contains(&p.lender_account)).collect()))
}

#[derive(Serialize, ToSchema)]
pub struct RepoInfo {
    pub repo: String,
    pub seller: String,
    pub seller_account: String,
    pub buyer: String,
    pub buyer_account: String,
    pub unit: String,
    pub quantity_t: u64,
    pub repurchase_fen: i64,
    pub repurchase_date: String,
    pub penalty_bp: u32,
    /// open, settled or failed.
    pub status: String,
    /// The parties that failed the second leg.
    pub defaulters: Vec<String>,
}

/// Repurchase agreements: units, repurchase price (fen) and date, status.
#[utoipa::path(get, path = "/api/v1/finance/repos", tag = "finance", security(("session" = []), ("bearer" = [])),
    responses((status = 200, body = Vec<RepoInfo>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn finance_repos(State(platform): S, caller: Caller) -> ApiResult<Json<Vec<RepoInfo>>> {
    let scope = finance_scope(&caller)?;
    let rows: Vec<RepoInfo> = {
        let log = platform.finance.lock().expect("finance lock");
        let Some(desk) = log.desk() else { return Ok(Json(Vec::new())) };
        let party = |i: usize| desk.parties().get(i).map(|p| (p.name.clone(), p.account.clone())).unwrap_or_default();
        desk.repos()
            .iter()
            .map(|(id, r)| {
                let (seller, seller_account) = party(r.seller);
                let (buyer, buyer_account) = party(r.buyer);
                let (status, defaulters) = match &r.status {
                    RepoStatus::Open => ("open", Vec::new()),
                    RepoStatus::Settled => ("settled", Vec::new()),
                    RepoStatus::Failed { defaulters } => ("failed", defaulters.clone()),
                };
                RepoInfo {
                    repo: id.clone(),
                    seller,
                    seller_account,
                    buyer,
                    buyer_account,
                    unit: r.unit.to_string(),
                    quantity_t: r.quantity,
                    repurchase_fen: r.repurchase_fen,
                    repurchase_date: r.repurchase_date.to_string(),
                    penalty_bp: r.penalty_bp,
                    status: status.into(),
                    defaulters,
                }
            })
            .collect()
    };
    let accounts = rows.iter().flat_map(|r| [r.seller_account.clone(), r.buyer_account.clone()]).collect();
    let seen = readable(&platform, &caller, &scope, accounts);
    Ok(Json(rows.into_iter().filter(|r| seen.contains(&r.seller_account) || seen.contains(&r.buyer_account)).collect()))
}

#[derive(Serialize, ToSchema)]
pub struct PositionInfo {
    pub party: String,
    pub account: String,
    /// Net contracts: positive long, negative short.
    pub contracts: i64,
}

#[derive(Serialize, ToSchema)]
pub struct ContractInfo {
    pub contract: String,
    pub unit: String,
    pub size_t: u64,
    pub expiry: String,
    /// physical or cash.
    pub settlement: String,
    pub initial_margin_fen: i64,
    pub position_limit: u64,
    /// The last settlement price, fen per tonne.
    pub settlement_price_fen: i64,
    pub open_interest: u64,
    /// open, delivered or settled.
    pub status: String,
    /// Open positions of parties whose accounts the caller may read.
    pub positions: Vec<PositionInfo>,
}

/// Forward and futures contracts: terms, settlement price, open interest, status, and the open
/// positions the caller may see.
#[utoipa::path(get, path = "/api/v1/finance/contracts", tag = "finance", security(("session" = []), ("bearer" = [])),
    responses((status = 200, body = Vec<ContractInfo>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn finance_contracts(State(platform): S, caller: Caller) -> ApiResult<Json<Vec<ContractInfo>>> {
    let scope = finance_scope(&caller)?;
    let mut rows: Vec<ContractInfo> = {
        let log = platform.finance.lock().expect("finance lock");
        let Some(desk) = log.desk() else { return Ok(Json(Vec::new())) };
        desk.contracts()
            .iter()
            .map(|(code, c)| ContractInfo {
                contract: code.clone(),
                unit: c.spec.unit.to_string(),
                size_t: c.spec.size_t,
                expiry: c.spec.expiry.to_string(),
                settlement: match c.spec.settlement {
                    Settlement::Physical => "physical",
                    Settlement::Cash => "cash",
                }
                .into(),
                initial_margin_fen: c.spec.initial_margin_fen,
                position_limit: c.spec.position_limit,
                settlement_price_fen: c.last_price_fen,
                open_interest: c.open_interest(),
                status: match c.status {
                    ContractStatus::Open => "open",
                    ContractStatus::Delivered => "delivered",
                    ContractStatus::Settled => "settled",
                }
                .into(),
                positions: c
                    .positions
                    .iter()
                    .filter_map(|(i, n)| {
                        desk.parties().get(*i).map(|p| PositionInfo { party: p.name.clone(), account: p.account.clone(), contracts: *n })
                    })
                    .collect(),
            })
            .collect()
    };
    let accounts = rows.iter().flat_map(|c| c.positions.iter().map(|p| p.account.clone())).collect();
    let seen = readable(&platform, &caller, &scope, accounts);
    for c in &mut rows {
        c.positions.retain(|p| seen.contains(&p.account));
    }
    Ok(Json(rows))
}

// ------------------------------------------------------------------ carbon inclusion

#[derive(Serialize, ToSchema)]
pub struct InclusionScheme {
    pub market: String,
    /// The credit's standard, e.g. PHCER.
    pub standard: String,
    pub province: String,
    pub rulebook: String,
    pub sources: String,
    pub uncertain: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct InclusionMethodology {
    pub id: String,
    pub version: u32,
    pub name: String,
    pub activity_unit: String,
    /// t CO2e per activity unit, an exact decimal string.
    pub factor_t_per_unit: String,
    pub project_type: String,
    pub cap_t_per_participant_year: u64,
    pub crediting_from: String,
    pub crediting_to: String,
    pub pilots: Vec<String>,
    pub source: String,
    /// An ets default where the pilots' terms were not found.
    pub uncertain: bool,
}

#[derive(Serialize, ToSchema)]
pub struct InclusionCatalog {
    pub version: u32,
    pub schemes: Vec<InclusionScheme>,
    pub methodologies: Vec<InclusionMethodology>,
}

/// The carbon-inclusion schemes and methodologies (reference data; public): the register's
/// catalog, or the one shipped with ets before the register is set up.
#[utoipa::path(get, path = "/api/v1/inclusion/methodologies", tag = "finance",
    responses((status = 200, body = InclusionCatalog)))]
pub(crate) async fn inclusion_methodologies(State(platform): S, caller: Caller) -> ApiResult<Json<InclusionCatalog>> {
    caller.may(&Action::ReadMarketData)?;
    let catalog = {
        let log = platform.finance.lock().expect("finance lock");
        log.inclusion().map(|r| r.catalog().clone())
    }
    .unwrap_or_else(ets_finance::inclusion::Catalog::builtin);
    Ok(Json(InclusionCatalog {
        version: catalog.version,
        schemes: catalog
            .pilots
            .into_iter()
            .map(|s| InclusionScheme {
                market: s.market,
                standard: s.standard,
                province: s.province,
                rulebook: s.rulebook,
                sources: s.sources,
                uncertain: s.uncertain,
            })
            .collect(),
        methodologies: catalog
            .methodologies
            .into_iter()
            .map(|m| InclusionMethodology {
                id: m.id,
                version: m.version,
                name: m.name,
                activity_unit: m.activity_unit,
                factor_t_per_unit: m.factor_t_per_unit.to_string(),
                project_type: m.project_type,
                cap_t_per_participant_year: m.cap_t_per_participant_year,
                crediting_from: m.crediting_from.to_string(),
                crediting_to: m.crediting_to.to_string(),
                pilots: m.pilots,
                source: m.source,
                uncertain: m.uncertain,
            })
            .collect(),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct SubmissionInfo {
    pub submission: String,
    pub pilot: String,
    pub aggregator: String,
    /// The aggregator's registry account (credits are issued into it).
    pub account: String,
    pub methodology: String,
    pub year: u16,
    pub records: usize,
    pub participants: usize,
    /// Credited tonnes (per participant Σ quantity × factor, rounded down).
    pub credits_t: u64,
    /// The credits' unit once issued, e.g. `PHCER:SOLAR-ROOF:2025`.
    pub unit: String,
    /// submitted, accepted, rejected or issued.
    pub status: String,
    pub verifier: Option<String>,
    pub note: String,
}

/// Aggregators' submissions of participants' activity: credits, verification and issuance.
#[utoipa::path(get, path = "/api/v1/inclusion/submissions", tag = "finance", security(("session" = []), ("bearer" = [])),
    responses((status = 200, body = Vec<SubmissionInfo>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn inclusion_submissions(State(platform): S, caller: Caller) -> ApiResult<Json<Vec<SubmissionInfo>>> {
    let scope = finance_scope(&caller)?;
    let rows: Vec<SubmissionInfo> = {
        let log = platform.finance.lock().expect("finance lock");
        let Some(register) = log.inclusion() else { return Ok(Json(Vec::new())) };
        register
            .submissions()
            .iter()
            .map(|(id, s)| SubmissionInfo {
                submission: id.clone(),
                pilot: s.pilot.clone(),
                aggregator: s.aggregator.clone(),
                account: register.aggregators().get(&s.aggregator).map(|a| a.account.clone()).unwrap_or_default(),
                methodology: s.methodology.clone(),
                year: s.year,
                records: s.records.len(),
                participants: s.credits.len(),
                credits_t: s.credits_t(),
                unit: s.unit(register.catalog()).to_string(),
                status: match s.status {
                    Status::Submitted => "submitted",
                    Status::Accepted => "accepted",
                    Status::Rejected => "rejected",
                    Status::Issued => "issued",
                }
                .into(),
                verifier: s.verifier.clone(),
                note: s.note.clone(),
            })
            .collect()
    };
    let seen = readable(&platform, &caller, &scope, rows.iter().map(|s| s.account.clone()).collect());
    Ok(Json(rows.into_iter().filter(|s| seen.contains(&s.account)).collect()))
}

#[derive(Serialize, ToSchema)]
pub struct PilotCredits {
    pub pilot: String,
    pub standard: String,
    pub issued_t: u64,
    pub transferred_t: u64,
    /// Surrendered for compliance.
    pub surrendered_t: u64,
}

/// Carbon-inclusion credits per pilot: issued, traded and used for compliance (for those who
/// may read the pilot's accounts).
#[utoipa::path(get, path = "/api/v1/inclusion/pilots", tag = "finance", security(("session" = []), ("bearer" = [])),
    responses((status = 200, body = Vec<PilotCredits>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn inclusion_pilots(State(platform): S, caller: Caller) -> ApiResult<Json<Vec<PilotCredits>>> {
    let scope = finance_scope(&caller)?;
    let log = platform.finance.lock().expect("finance lock");
    let Some(register) = log.inclusion() else { return Ok(Json(Vec::new())) };
    let totals: BTreeMap<&String, _> = register.totals().iter().collect();
    Ok(Json(
        register
            .config()
            .pilots
            .keys()
            .filter(|p| scope.all || allows(caller.roles(), &Action::ReadAccounts { market: (*p).clone() }))
            .map(|p| {
                let t = totals.get(p).map(|t| (*t).clone()).unwrap_or_default();
                PilotCredits {
                    pilot: p.clone(),
                    standard: register.catalog().scheme(p).map(|s| s.standard.clone()).unwrap_or_default(),
                    issued_t: t.issued_t,
                    transferred_t: t.transferred_t,
                    surrendered_t: t.surrendered_t,
                }
            })
            .collect(),
    ))
}
