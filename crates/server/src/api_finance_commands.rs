//! Carbon finance and carbon inclusion through the API, the writes: one endpoint per journal
//! machine takes a command, checks the caller's roles for its kind, and runs it through the
//! finance journal (`ets_store::FinanceLog`: decided, journaled, then its registry instructions
//! carried out) before answering, as `ets finance` and `ets inclusion` do.
//!
//! The desk (`POST /api/v1/finance/commands`, a desk command as the finance journal stores it):
//! - the finance operator (`OperateFinance`) sets the desk up (`Init`, naming the market whose
//!   first authority is the registrar), admits parties, records deposits, registers pledges and
//!   repos (bilateral agreements registered on both parties' application), marks prices, lists
//!   contracts, registers bilateral trades, sets settlement prices and runs the end of day, as
//!   the desk's operator; it may also act for any party;
//! - a party acts for itself (withdraw, top up or repay its pledge as borrower, place and
//!   cancel its orders) when the caller's user name is the party's and it represents the
//!   party's registry account (`ProposeTransfer`), under its own name;
//! - the registrar (the market authority named at set-up) is no caller: the desk releases and
//!   enforces pledges under its name in the registry.
//!
//! Carbon inclusion (`POST /api/v1/inclusion/commands`): the finance operator sets up the
//! register and registers aggregators and verifiers (as the register's operator); an aggregator
//! submits for itself (its user name, representing its account); an accredited verifier
//! (`VerifyMrv`) verifies, under its own name (the register checks it is registered); the
//! pilot's authority (`IssueUnits`) issues, as the pilot's registry authority; an account's
//! representative transfers and surrenders from it, under its own name. A surrender's verified
//! emissions, allocation and earlier surrenders are read here, from MRV and the registry.
//!
//! Retries: the command id is the client's, in the user's namespace (one namespace for both
//! endpoints: they share the finance journal); a retry with the same command is answered
//! `repeated`, another command under a used id is 409. A desk command's business date is part
//! of it: by default the later of today and the desk's date; the operator may name any, a party
//! none later than the default (to retry on a later day), so no party moves the desk's date
//! forward for everyone. Refusals write nothing. Locks: the finance journal, then MRV (surrenders), then the registry, the order
//! every handler takes them in.

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Json;
use crate::Platform;
use axum::extract::State;
use axum::http::StatusCode;
use ets_access::{allows, AccountRef, Action, Role};
use ets_core::Date;
use ets_finance::desk::{self, Command as D, Desk};
use ets_finance::inclusion::{self, ActivityRecord, Catalog, Command as I};
use ets_registry::{AccountKind, AccountStatus, Registry, UnitRef};
use ets_store::{FinanceLog, FinanceReceipt, Ledger, StoreError};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

type S = State<Arc<Platform>>;

#[derive(Deserialize, ToSchema)]
pub struct FinanceCommandRequest {
    /// The client's id for this command: a retry with the same id is answered, not repeated.
    pub id: String,
    /// The business date (YYYY-MM-DD): by default the later of today and the desk's date. The
    /// finance operator sets any; a party none later than the default (a retry on a later day
    /// names the date the result gave, or it is another command: 409).
    pub date: Option<String>,
    /// A desk command as the finance journal stores it, e.g. `{"Deposit": {"party": "cn-op1",
    /// "amount_fen": 100000}}`, `{"Repay": {"pledge": "P1", "amount_fen": 5000}}`, `"EndOfDay"`;
    /// or `{"Init": {"operator": "desk", "registrar_market": "CN"}}` to set the desk up.
    #[schema(value_type = Object)]
    pub command: serde_json::Value,
}

#[derive(Serialize, ToSchema)]
pub struct FinanceResult {
    pub id: String,
    /// The desk (or register) actor it ran as.
    pub actor: String,
    /// True when the id had been used for this very command: nothing new was written.
    pub repeated: bool,
    /// The finance journal's sequence number after it.
    pub seq: u64,
    /// The business date it ran on (desk commands).
    pub date: Option<String>,
    /// What it did, as the finance journal's events.
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<serde_json::Value>,
    /// The registry commands it carried out, by id, in order.
    pub registry_commands: Vec<String>,
}

fn not_set_up() -> ApiError {
    ApiError::conflict("the finance desk is not set up: the finance operator sets it up first ({\"Init\": ...})")
}

fn register_not_set_up() -> ApiError {
    ApiError::conflict("carbon inclusion is not set up: the finance operator sets it up first ({\"Init\": ...})")
}

/// A not-found for the operator, else as `unless_may_know` says (no existence oracle).
fn may_know(caller: &Caller, e: ApiError) -> ApiError {
    if allows(caller.roles(), &Action::OperateFinance) {
        e
    } else {
        crate::api::unless_may_know(caller, e, false)
    }
}

fn account_of(registry: &Registry, number: &str) -> ApiResult<AccountRef> {
    let idx = registry.find_account(number).ok_or_else(|| ApiError::not_found(format!("no account {number}")))?;
    Ok(AccountRef::new(number, &registry.market(registry.account(idx).market).spec.code))
}

/// Whether `actor` is one of the account's representatives in the registry (the registry's
/// own check on the units the desk or the register moves under that name).
fn represents(registry: &Registry, actor: &str, number: &str) -> bool {
    registry.find_account(number).is_some_and(|idx| registry.account(idx).representatives.iter().any(|r| r == actor))
}

/// The registry's own conditions on an account the desk or the register moves units out of
/// (`send`) or into, checked before a command is journaled, so that no journaled command leaves
/// a registry instruction the registry refuses: a holding (operator or trading) account, open
/// to send, not closed to receive.
fn can_move(registry: &Registry, number: &str, send: bool) -> ApiResult<()> {
    let idx = registry.find_account(number).ok_or_else(|| ApiError::not_found(format!("no account {number}")))?;
    let a = registry.account(idx);
    if !matches!(a.kind, AccountKind::Operator | AccountKind::Trading) {
        return Err(ApiError::refused(format!("account {number} is a {} account, not a holding account", a.kind.name())));
    }
    match a.status {
        AccountStatus::Open => Ok(()),
        AccountStatus::Blocked if !send => Ok(()),
        status => Err(ApiError::refused(format!(
            "account {number} is {}: it may not {} units",
            status.name(),
            if send { "send" } else { "receive" }
        ))),
    }
}

fn has_representative_role(caller: &Caller) -> bool {
    caller.roles().iter().any(|r| matches!(r, Role::AccountRepresentative { .. }))
}

/// A set-up's storage refusal (set up already, by a concurrent request) as 409 with its reason.
fn set_up_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Conflict(m) => ApiError::conflict(m),
        e => e.into(),
    }
}

/// The answer to a set-up (of the desk or the register) by `operator`.
fn set_up(id: String, operator: String, repeated: bool, log: &FinanceLog) -> (StatusCode, axum::Json<FinanceResult>) {
    let seq = log.head().0;
    (
        StatusCode::CREATED,
        axum::Json(FinanceResult { id, actor: operator, repeated, seq, date: None, events: Vec::new(), registry_commands: Vec::new() }),
    )
}

fn store_error(e: StoreError, conflict: fn() -> ApiError) -> ApiError {
    match e {
        StoreError::Conflict(_) => conflict(),
        e => e.into(),
    }
}

// ------------------------------------------------------------------ the desk

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeskInit {
    operator: Option<String>,
    registrar_market: String,
}

enum DeskRequest {
    Init(DeskInit),
    Command(D),
}

fn desk_request(value: serde_json::Value) -> ApiResult<DeskRequest> {
    if let Some(init) = value.as_object().filter(|o| o.len() == 1).and_then(|o| o.get("Init")) {
        return serde_json::from_value(init.clone()).map(DeskRequest::Init).map_err(|e| ApiError::refused(format!("command: Init: {e}")));
    }
    serde_json::from_value(value).map(DeskRequest::Command).map_err(|e| ApiError::refused(format!("command: {e}")))
}

/// Who runs a desk command: the desk's operator, or the caller as the party it acts for.
enum RunAs {
    Operator,
    Caller,
}

/// The party a command acts for where a party may act for itself; None for the operator's
/// commands.
fn acting_party(desk: &Desk, command: &D) -> ApiResult<Option<String>> {
    let borrower = |pledge: &str| {
        desk.pledge(pledge)
            .map(|p| desk.parties()[p.borrower].name.clone())
            .ok_or_else(|| ApiError::not_found(format!("no pledge '{pledge}'")))
    };
    Ok(match command {
        D::Withdraw { party, .. } | D::PlaceOrder { party, .. } => Some(party.clone()),
        D::TopUp { pledge, .. } | D::Repay { pledge, .. } => Some(borrower(pledge)?),
        D::CancelOrder { order } => Some(
            desk.orders()
                .get(order)
                .map(|o| desk.parties()[o.party].name.clone())
                .ok_or_else(|| ApiError::not_found(format!("no working order {order}")))?,
        ),
        _ => None,
    })
}

/// The role check of a desk command (see the module's description).
fn desk_needs(desk: Option<&Desk>, registry: &Registry, caller: &Caller, user: &str, command: &D) -> ApiResult<RunAs> {
    let operator = allows(caller.roles(), &Action::OperateFinance);
    let party_kind =
        matches!(command, D::Withdraw { .. } | D::PlaceOrder { .. } | D::TopUp { .. } | D::Repay { .. } | D::CancelOrder { .. });
    if !party_kind {
        caller.may(&Action::OperateFinance)?;
        desk.ok_or_else(not_set_up)?;
        return Ok(RunAs::Operator);
    }
    let forbidden = || ApiError::forbidden(format!("{user} may act on the finance desk only for itself, as the party it represents"));
    // A party named in the command: nobody but the party itself (or the operator) learns more.
    if let D::Withdraw { party, .. } | D::PlaceOrder { party, .. } = command {
        if party != user && !operator {
            return Err(forbidden());
        }
    } else if !operator && !has_representative_role(caller) {
        return Err(forbidden());
    }
    let named_self = matches!(command, D::Withdraw { party, .. } | D::PlaceOrder { party, .. } if party == user);
    let desk = match desk {
        Some(d) => d,
        None if operator || named_self => return Err(not_set_up()),
        None => return Err(may_know(caller, ApiError::not_found("no such pledge or working order: the finance desk is not set up"))),
    };
    let party = acting_party(desk, command).map_err(|e| may_know(caller, e))?.expect("a party's kind of command");
    if party == user {
        let account = desk.party(&party).map(|p| p.account.clone()).ok_or_else(|| ApiError::not_found(format!("no party '{party}'")))?;
        let account = account_of(registry, &account)?;
        if allows(caller.roles(), &Action::ProposeTransfer { account }) {
            return Ok(RunAs::Caller);
        }
    }
    if operator {
        Ok(RunAs::Operator)
    } else {
        Err(forbidden())
    }
}

/// The registry's conditions for admitting a party: its account exists, the party's name is one
/// of the account's representatives, and the desk's registrar is an authority of the account's
/// market (it releases and enforces the party's pledges).
fn admissible(desk: &Desk, registry: &Registry, party: &str, account: &str) -> ApiResult<()> {
    let idx = registry.find_account(account).ok_or_else(|| ApiError::not_found(format!("no account {account}")))?;
    can_move(registry, account, true)?;
    if !represents(registry, party, account) {
        return Err(ApiError::refused(format!(
            "party {party} must be a representative of account {account} in the registry (the desk moves its units under that name)"
        )));
    }
    let market = registry.market(registry.account(idx).market);
    if !market.spec.authorities.iter().any(|a| a == desk.registrar()) {
        return Err(ApiError::refused(format!(
            "account {account} is in market {}, whose authorities do not include the desk's registrar {}: its pledges could not be released or enforced",
            market.spec.code,
            desk.registrar()
        )));
    }
    Ok(())
}

fn desk_refusal(r: desk::Reject) -> ApiError {
    use desk::RejectKind as K;
    match r.kind {
        K::NotFound => ApiError::not_found(r.message),
        // The caller's roles allow the kind of command (checked before): the desk refuses this
        // actor for this item, a refusal.
        K::Forbidden | K::Invalid | K::Rule | K::Insufficient => ApiError::refused(r.message),
        K::Conflict => ApiError::conflict(r.message),
    }
}

/// Runs one finance-desk command as the caller (see the module's description for who may run
/// what). The command is journaled and its registry instructions carried out before the answer.
#[utoipa::path(post, path = "/api/v1/finance/commands", tag = "finance", request_body = FinanceCommandRequest, security(("session" = []), ("bearer" = [])),
    responses((status = 201, body = FinanceResult), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn finance_command(
    State(platform): S,
    caller: Caller,
    Json(body): Json<FinanceCommandRequest>,
) -> ApiResult<(StatusCode, axum::Json<FinanceResult>)> {
    let user = caller.signed_in()?.user.clone();
    let id = crate::api::client_command_id(&user, &body.id)?;
    let request = desk_request(body.command)?;
    let date = body.date.as_deref().map(|d| Date::parse(d).map_err(|e| ApiError::refused(format!("date: {e}")))).transpose()?;
    crate::api::blocking(move || {
        let mut log = platform.finance.lock().expect("finance lock");
        let mut ledger = platform.registry.lock().expect("registry lock");
        let command = match request {
            DeskRequest::Init(init) => return init_desk(&platform, &caller, &mut log, &ledger, body.id, init),
            DeskRequest::Command(c) => c,
        };
        let run_as = desk_needs(log.desk(), ledger.registry(), &caller, &user, &command)?;
        let desk = log.desk().ok_or_else(not_set_up)?;
        let registry = ledger.registry();
        match &command {
            D::AddParty { party, account } => admissible(desk, registry, party, account)?,
            D::PlaceOrder { order: 0, .. } => return Err(ApiError::refused("order: give a client order id of 1 or more")),
            _ => {}
        }
        let actor = match run_as {
            RunAs::Operator => desk.operator().to_string(),
            RunAs::Caller => user.clone(),
        };
        // The business date: the operator's to set; by default today, or the desk's date where
        // the desk is ahead (a demo's desk runs in the future).
        let today = platform.now().date().max(desk.today().unwrap_or(Date(i32::MIN)));
        // A party may name an earlier date (to retry a command on the date it first ran) but
        // not move the desk's date forward for everyone.
        let date = match (date, &run_as) {
            (Some(d), RunAs::Operator) => d,
            (Some(d), RunAs::Caller) if d <= today => d,
            (Some(_), RunAs::Caller) => {
                return Err(ApiError::forbidden(format!("only the finance operator moves the desk's business date past {today}")))
            }
            (None, _) => today,
        };
        let envelope = desk::Envelope { id, actor: actor.clone(), date, command };
        let receipt = log.submit_desk(&envelope, &mut ledger, platform.now()).map_err(|e| store_error(e, not_set_up))?;
        let (repeated, events, registry_commands) = match receipt {
            Ok(FinanceReceipt::Accepted(outcome)) => (
                false,
                outcome.events.iter().map(|e| serde_json::to_value(e).expect("events serialise")).collect(),
                outcome.instructions.into_iter().map(|i| i.id).collect(),
            ),
            Ok(FinanceReceipt::Repeated) => (true, Vec::new(), Vec::new()),
            Err(r) => return Err(desk_refusal(r)),
        };
        Ok((
            StatusCode::CREATED,
            axum::Json(FinanceResult {
                id: body.id,
                actor,
                repeated,
                seq: log.head().0,
                date: Some(date.to_string()),
                events,
                registry_commands,
            }),
        ))
    })
    .await
}

/// Sets the desk up: its operator's name and, as registrar, the first authority of a market.
/// A retry of the same set-up is answered as repeated.
fn init_desk(
    platform: &Platform,
    caller: &Caller,
    log: &mut FinanceLog,
    ledger: &Ledger,
    id: String,
    init: DeskInit,
) -> ApiResult<(StatusCode, axum::Json<FinanceResult>)> {
    caller.may(&Action::OperateFinance)?;
    let operator = init.operator.unwrap_or_else(|| "desk".into());
    ets_core::check_identifier("operator", &operator).map_err(ApiError::refused)?;
    let r = ledger.registry();
    let market =
        r.find_market(&init.registrar_market).ok_or_else(|| ApiError::not_found(format!("no market {}", init.registrar_market)))?;
    let registrar = r
        .market(market)
        .spec
        .authorities
        .first()
        .cloned()
        .ok_or_else(|| ApiError::refused(format!("market {} has no authority to act as registrar", init.registrar_market)))?;
    let repeated = match log.desk() {
        Some(d) if d.operator() == operator && d.registrar() == registrar => true,
        Some(d) => {
            return Err(ApiError::conflict(format!(
                "the finance desk is already set up, operated by {} with registrar {}",
                d.operator(),
                d.registrar()
            )))
        }
        None => false,
    };
    if !repeated {
        log.init_desk(&operator, &registrar, platform.now()).map_err(set_up_error)?;
    }
    Ok(set_up(id, operator, repeated, log))
}

// ------------------------------------------------------------------ carbon inclusion

#[derive(Deserialize, ToSchema)]
pub struct InclusionCommandRequest {
    /// The client's id for this command: a retry with the same id is answered, not repeated.
    pub id: String,
    /// One of `{"Init": {"operator": "inclusion"}}`, `{"AddAggregator": {"aggregator",
    /// "pilot", "account"}}`, `{"AddVerifier": {"verifier"}}`, `{"Submit": {"submission",
    /// "aggregator", "methodology", "year", "records": [{"record", "participant", "date",
    /// "quantity", "evidence_sha256"}]}}`, `{"Verify": {"submission", "accept", "note"}}`,
    /// `{"Issue": {"submission"}}`, `{"Transfer": {"from", "to", "unit", "quantity"}}`,
    /// `{"Surrender": {"account", "unit", "quantity", "year"}}`; a unit as
    /// `{"code": "PHCER", "project": "SOLAR-ROOF", "vintage": 2025}`, quantities in tonnes,
    /// activity quantities exact decimals (strings).
    #[schema(value_type = Object)]
    pub command: serde_json::Value,
}

/// The API's inclusion commands: the register's, but for a surrender, whose verified emissions,
/// allocation and earlier surrenders the server reads itself.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
enum InclusionRequest {
    Init {
        operator: Option<String>,
    },
    AddAggregator {
        aggregator: String,
        pilot: String,
        account: String,
    },
    AddVerifier {
        verifier: String,
    },
    Submit {
        submission: String,
        aggregator: String,
        methodology: String,
        year: u16,
        records: Vec<ActivityRecord>,
    },
    Verify {
        submission: String,
        accept: bool,
        #[serde(default)]
        note: String,
    },
    Issue {
        submission: String,
    },
    Transfer {
        from: String,
        to: String,
        unit: UnitRef,
        quantity: u64,
    },
    Surrender {
        account: String,
        unit: UnitRef,
        quantity: u64,
        year: u16,
    },
}

fn inclusion_refusal(r: inclusion::Reject) -> ApiError {
    use inclusion::RejectKind as K;
    match r.kind {
        K::NotFound => ApiError::not_found(r.message),
        // The caller's roles allow the kind of step (checked before); the register refuses this
        // person for it (an unregistered verifier, one's own submission): a refusal.
        K::Forbidden | K::Invalid | K::Rule | K::Insufficient => ApiError::refused(r.message),
        K::Conflict => ApiError::conflict(r.message),
    }
}

/// The caller, representing `number` by role (`ProposeTransfer`) and in the registry.
fn representative_of(registry: &Registry, caller: &Caller, user: &str, number: &str) -> ApiResult<()> {
    let account = account_of(registry, number).map_err(|e| crate::api::unless_may_know(caller, e, false))?;
    caller.may(&Action::ProposeTransfer { account })?;
    if !represents(registry, user, number) {
        return Err(ApiError::refused(format!("{user} is not a representative of account {number} in the registry")));
    }
    Ok(())
}

/// Runs one carbon-inclusion command as the caller (see the module's description for who may
/// run what). The command is journaled and its registry instructions carried out before the
/// answer.
#[utoipa::path(post, path = "/api/v1/inclusion/commands", tag = "finance", request_body = InclusionCommandRequest, security(("session" = []), ("bearer" = [])),
    responses((status = 201, body = FinanceResult), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn inclusion_command(
    State(platform): S,
    caller: Caller,
    Json(body): Json<InclusionCommandRequest>,
) -> ApiResult<(StatusCode, axum::Json<FinanceResult>)> {
    let user = caller.signed_in()?.user.clone();
    let id = crate::api::client_command_id(&user, &body.id)?;
    let request: InclusionRequest = serde_json::from_value(body.command).map_err(|e| ApiError::refused(format!("command: {e}")))?;
    crate::api::blocking(move || {
        let mut log = platform.finance.lock().expect("finance lock");
        if let InclusionRequest::Init { operator } = request {
            let ledger = platform.registry.lock().expect("registry lock");
            return init_inclusion(&platform, &caller, &mut log, &ledger, body.id, operator);
        }
        // Surrenders read MRV: taken before the registry, as every handler does.
        let mrv = matches!(request, InclusionRequest::Surrender { .. }).then(|| platform.mrv.lock().expect("mrv lock"));
        let mut ledger = platform.registry.lock().expect("registry lock");
        let registry = ledger.registry();
        let register = log.inclusion();
        let (actor, command) = match request {
            InclusionRequest::Init { .. } => unreachable!("answered above"),
            InclusionRequest::AddAggregator { aggregator, pilot, account } => {
                caller.may(&Action::OperateFinance)?;
                let register = register.ok_or_else(register_not_set_up)?;
                if registry.find_account(&account).is_some() {
                    can_move(registry, &account, true)?;
                    if !represents(registry, &aggregator, &account) {
                        return Err(ApiError::refused(format!(
                            "aggregator {aggregator} must be a representative of account {account} in the registry (it sells its credits under that name)"
                        )));
                    }
                }
                (register.config().operator.clone(), I::AddAggregator { aggregator, pilot, account })
            }
            InclusionRequest::AddVerifier { verifier } => {
                caller.may(&Action::OperateFinance)?;
                (register.ok_or_else(register_not_set_up)?.config().operator.clone(), I::AddVerifier { verifier })
            }
            InclusionRequest::Submit { submission, aggregator, methodology, year, records } => {
                if aggregator != user {
                    return Err(ApiError::forbidden(format!("{user} may submit only as itself, not for aggregator {aggregator}")));
                }
                let register = register.ok_or_else(register_not_set_up)?;
                let account = register
                    .aggregators()
                    .get(&aggregator)
                    .map(|a| a.account.clone())
                    .ok_or_else(|| ApiError::not_found(format!("no aggregator '{aggregator}'")))?;
                caller.may(&Action::ProposeTransfer { account: account_of(registry, &account)? })?;
                (user.clone(), I::Submit { submission, aggregator, methodology, year, records })
            }
            InclusionRequest::Verify { submission, accept, note } => {
                caller.may(&Action::VerifyMrv)?;
                register.ok_or_else(register_not_set_up)?;
                (user.clone(), I::Verify { submission, accept, note })
            }
            InclusionRequest::Issue { submission } => {
                if !caller.roles().iter().any(|r| matches!(r, Role::MarketAuthority { .. })) {
                    caller.signed_in()?;
                    return Err(ApiError::forbidden(format!("{user} may not issue: a pilot's authority issues its credits")));
                }
                let register = register.ok_or_else(register_not_set_up)?;
                let pilot = register
                    .submissions()
                    .get(&submission)
                    .map(|s| s.pilot.clone())
                    .ok_or_else(|| crate::api::unless_may_know(&caller, ApiError::not_found(format!("no submission '{submission}'")), false))?;
                caller.may(&Action::IssueUnits { market: pilot.clone() })?;
                let authority = register.config().pilots.get(&pilot).map(|p| p.authority.clone()).ok_or_else(register_not_set_up)?;
                // The credits are allocated into the aggregator's account.
                let aggregator = &register.submissions()[&submission].aggregator;
                if let Some(a) = register.aggregators().get(aggregator) {
                    can_move(registry, &a.account, false)?;
                }
                (authority, I::Issue { submission })
            }
            InclusionRequest::Transfer { from, to, unit, quantity } => {
                representative_of(registry, &caller, &user, &from)?;
                register.ok_or_else(register_not_set_up)?;
                can_move(registry, &from, true)?;
                can_move(registry, &to, false)?;
                (user.clone(), I::Transfer { from, to, unit, quantity })
            }
            InclusionRequest::Surrender { account, unit, quantity, year } => {
                representative_of(registry, &caller, &user, &account)?;
                let register = register.ok_or_else(register_not_set_up)?;
                surrenders(registry, &account, &unit)?;
                let mrv = mrv.as_ref().expect("locked for a surrender");
                let (verified_t, allocation_t, already) = surrender_context(&platform, registry, mrv.state(), register.catalog(), &account, year)?;
                (user.clone(), I::Surrender { account, unit, quantity, year, verified_t, allocation_t, already })
            }
        };
        let envelope = inclusion::Envelope { id, actor: actor.clone(), command };
        let receipt = log.submit_inclusion(&envelope, &mut ledger, platform.now()).map_err(|e| store_error(e, register_not_set_up))?;
        let (repeated, events, registry_commands) = match receipt {
            Ok(FinanceReceipt::Accepted(outcome)) => (
                false,
                outcome.events.iter().map(|e| serde_json::to_value(e).expect("events serialise")).collect(),
                outcome.instructions.into_iter().map(|i| i.id).collect(),
            ),
            Ok(FinanceReceipt::Repeated) => (true, Vec::new(), Vec::new()),
            Err(r) => return Err(inclusion_refusal(r)),
        };
        Ok((
            StatusCode::CREATED,
            axum::Json(FinanceResult { id: body.id, actor, repeated, seq: log.head().0, date: None, events, registry_commands }),
        ))
    })
    .await
}

/// The registry's conditions on a surrender of `unit` from `number` (checked before the
/// command is journaled): an open operator account of a market that accepts the unit's issuer.
fn surrenders(registry: &Registry, number: &str, unit: &UnitRef) -> ApiResult<()> {
    can_move(registry, number, true)?;
    let idx = registry.find_account(number).expect("checked");
    let a = registry.account(idx);
    if a.kind != AccountKind::Operator {
        return Err(ApiError::refused(format!(
            "account {number} is a {} account; only operator holding accounts surrender",
            a.kind.name()
        )));
    }
    if let Ok(u) = registry.unit_named(unit) {
        let issuer = registry.unit(u).spec.issuer;
        if !registry.market(a.market).accepts_units_of(a.market, issuer) {
            return Err(ApiError::refused(format!(
                "{unit} was issued by market {}; market {} does not accept it for surrender",
                registry.market(issuer).spec.code,
                registry.market(a.market).spec.code
            )));
        }
    }
    Ok(())
}

/// What a surrender is judged against, as `ets inclusion surrender` reads it: the entity's
/// verified emissions for the year (MRV coverage of the account's market), its allocation of
/// the year's vintage and what it surrendered for the year already (the registry).
fn surrender_context(
    platform: &Platform,
    registry: &Registry,
    mrv: &ets_mrv::state::MrvState,
    catalog: &Catalog,
    account: &str,
    year: u16,
) -> ApiResult<(rust_decimal::Decimal, u64, Vec<ets_rules::compliance::Lot>)> {
    let idx = registry.find_account(account).ok_or_else(|| ApiError::not_found(format!("no account {account}")))?;
    let market = registry.market(registry.account(idx).market).spec.code.clone();
    let covered = ets_compliance::covered(mrv, &market, i32::from(year));
    let c = covered.iter().find(|c| c.account.as_deref() == Some(account)).ok_or_else(|| {
        ApiError::refused(format!("account {account} is not the account of an entity {market} covers in {year} (MRV coverage)"))
    })?;
    let verified = c.verified_t.ok_or_else(|| {
        ApiError::refused(format!("{} has no accepted {year} emissions report: its obligation is not known yet", c.entity))
    })?;
    let mut projects = platform.compliance.projects.clone();
    projects.extend(platform.compliance.market_projects.get(&market).cloned().unwrap_or_default());
    projects.extend(catalog.projects_of(&market));
    let (already, unknown) = ets_compliance::surrendered(registry, idx, year, &projects);
    if let Some((t, why)) = unknown.first() {
        return Err(ApiError::refused(format!("{account} already surrendered {t} t for {year} that cannot be judged ({why})")));
    }
    Ok((verified, ets_compliance::allocated_to(registry, idx, year), already))
}

/// Sets the register up for every pilot of the shipped catalog the registry has, operated by
/// `operator`. A retry of the same set-up is answered as repeated.
fn init_inclusion(
    platform: &Platform,
    caller: &Caller,
    log: &mut FinanceLog,
    ledger: &Ledger,
    id: String,
    operator: Option<String>,
) -> ApiResult<(StatusCode, axum::Json<FinanceResult>)> {
    caller.may(&Action::OperateFinance)?;
    let operator = operator.unwrap_or_else(|| "inclusion".into());
    ets_core::check_identifier("operator", &operator).map_err(ApiError::refused)?;
    let repeated = match log.inclusion() {
        Some(r) if r.config().operator == operator => true,
        Some(r) => return Err(ApiError::conflict(format!("carbon inclusion is already set up, operated by {}", r.config().operator))),
        None => false,
    };
    if !repeated {
        let config = inclusion::config_from_registry(&operator, Catalog::builtin(), ledger.registry()).map_err(ApiError::refused)?;
        if config.pilots.is_empty() {
            return Err(ApiError::refused("no pilot with a carbon-inclusion scheme is in the registry"));
        }
        log.init_inclusion(config, platform.now()).map_err(set_up_error)?;
    }
    Ok(set_up(id, operator, repeated, log))
}
