//! Registry administration through the API: one endpoint takes a registry command (the JSON the
//! registry journal stores) and runs it for the caller after a role check per kind:
//! - a market's authority (`IssueUnits`, `ManageMarket` of the market the command touches)
//!   issues, allocates, sets caps, freezes, unfreezes and withdraws; the registry knows the
//!   authority by its own actor name, so the platform submits as the market's first registry
//!   authority, under a command id naming the user (`api-{length}-{user}-{id}`);
//! - an account's representative (`ProposeTransfer` of the account) surrenders for a compliance
//!   year and cancels voluntarily, under its own name (the registry checks it represents);
//! - registry administrators (`AdministerRegistry`) add markets, open accounts, change
//!   statuses and representatives, recognise and link markets, under their own name.
//!
//! Transfers go through `/api/v1/transfers` (four-eyes, trusted lists, delays) and pending
//! transfers are the exchange's and the finance desk's machinery: refused here.

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Json;
use crate::Platform;
use axum::extract::State;
use axum::http::StatusCode;
use ets_access::{AccountRef, Action};
use ets_registry::{Command, Envelope, Registry};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

type S = State<Arc<Platform>>;

#[derive(Deserialize, ToSchema)]
pub struct RegistryCommandRequest {
    /// The client's id for this command: a retry with the same id is answered, not repeated.
    pub id: String,
    /// A registry command as the registry journal stores it, e.g.
    /// `{"Surrender": {"account": "CN-100011", "unit": {"code": "CEA", "project": null,
    /// "vintage": 2025}, "quantity": 1000, "compliance_year": 2025}}`.
    #[schema(value_type = Object)]
    pub command: serde_json::Value,
}

#[derive(Serialize, ToSchema)]
pub struct RegistryResult {
    pub id: String,
    /// The registry actor it ran as.
    pub actor: String,
    /// True when the id had been used for this very command: nothing new was written.
    pub repeated: bool,
    /// The registry journal's sequence number after it.
    pub seq: u64,
    /// The account a command opened, if it opened one.
    pub account: Option<String>,
}

/// Who runs a command: the caller under its own name, or the platform for a market authority.
enum RunAs {
    Caller,
    Authority(String),
}

fn market_of_account(r: &Registry, number: &str) -> ApiResult<String> {
    let idx = r.find_account(number).ok_or_else(|| ApiError::not_found(format!("no account {number}")))?;
    Ok(r.market(r.account(idx).market).spec.code.clone())
}

/// The action a command needs, and who runs it.
fn needs(r: &Registry, command: &Command) -> ApiResult<(Action, RunAs)> {
    let authority = |market: String, action: Action| -> ApiResult<(Action, RunAs)> {
        let m = r.find_market(&market).ok_or_else(|| ApiError::not_found(format!("no market {market}")))?;
        let actor =
            r.market(m).spec.authorities.first().cloned().ok_or_else(|| ApiError::conflict(format!("{market} has no authority")))?;
        Ok((action, RunAs::Authority(actor)))
    };
    let manage = |market: String| authority(market.clone(), Action::ManageMarket { market });
    let representative = |number: &str| -> ApiResult<(Action, RunAs)> {
        let market = market_of_account(r, number)?;
        Ok((Action::ProposeTransfer { account: AccountRef::new(number, &market) }, RunAs::Caller))
    };
    match command {
        Command::Issue { unit, to, .. } => {
            let market = match to {
                Some(account) => market_of_account(r, account)?,
                None => r
                    .markets()
                    .iter()
                    .find(|m| m.spec.allowance_code == unit.code)
                    .map(|m| m.spec.code.clone())
                    .ok_or_else(|| ApiError::refused(format!("{} is no market's allowance: name the account to issue into (`to`)", unit.code)))?,
            };
            authority(market.clone(), Action::IssueUnits { market })
        }
        Command::SetCap { market, .. } => manage(market.clone()),
        Command::Allocate { from, .. } => manage(market_of_account(r, from)?),
        Command::Freeze { account, .. } | Command::Withdraw { account, .. } => manage(market_of_account(r, account)?),
        Command::Unfreeze { freeze } => {
            let f = r.freeze(freeze).ok_or_else(|| ApiError::not_found(format!("no freeze {freeze}")))?;
            manage(r.market(r.account(f.account).market).spec.code.clone())
        }
        Command::Surrender { account, .. } | Command::Cancel { account, .. } => representative(account),
        Command::AddMarket(_)
        | Command::OpenAccount { .. }
        | Command::SetAccountStatus { .. }
        | Command::AddRepresentative { .. }
        | Command::RemoveRepresentative { .. }
        | Command::RecogniseUnits { .. }
        | Command::LinkMarkets { .. } => Ok((Action::AdministerRegistry, RunAs::Caller)),
        Command::Transfer { .. } => Err(ApiError::refused("transfers go through POST /api/v1/transfers (four-eyes approval, trusted lists, delays)")),
        Command::InitRegistry { .. } => Err(ApiError::conflict("the registry is set up already")),
        Command::CreatePending { .. } | Command::PostPending { .. } | Command::VoidPending { .. } | Command::DeliverPending { .. } | Command::Reverse { .. } => {
            Err(ApiError::refused("pending transfers and reversals are the exchange's, the finance desk's and the registry operator's machinery, not an API command"))
        }
    }
}

/// Runs one registry command for the caller (see the module's description for who may run what).
#[utoipa::path(post, path = "/api/v1/registry/commands", tag = "registry", request_body = RegistryCommandRequest, security(("session" = []), ("bearer" = [])),
    responses((status = 201, body = RegistryResult), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn registry_command(
    State(platform): S,
    caller: Caller,
    Json(body): Json<RegistryCommandRequest>,
) -> ApiResult<(StatusCode, axum::Json<RegistryResult>)> {
    let user = caller.signed_in()?.user.clone();
    let id = crate::api::client_command_id(&user, &body.id)?;
    let command: Command = serde_json::from_value(body.command).map_err(|e| ApiError::refused(format!("command: {e}")))?;
    crate::api::blocking(move || {
        let mut ledger = platform.registry.lock().expect("registry lock");
        let (action, run_as) = needs(ledger.registry(), &command).map_err(|e| crate::api::unless_may_know(&caller, e, false))?;
        caller.may(&action)?;
        // An exchange member's account stays open while the exchange may deliver into it
        // (settlement, auction awards): a delivery the registry refused would halt the exchange.
        if let Command::SetAccountStatus { account, status: ets_registry::AccountStatus::Closed } = &command {
            if let Some(((member, _), _)) = platform.directory().accounts.iter().find(|(_, a)| *a == account) {
                return Err(ApiError::conflict(format!(
                    "{account} is exchange member {member}'s account: the exchange delivers into it, so it cannot be closed here"
                )));
            }
        }
        let actor = match run_as {
            RunAs::Caller => user.clone(),
            RunAs::Authority(a) => a,
        };
        let envelope = Envelope { id, actor: actor.clone(), command };
        let submitted = ledger.submit(platform.now(), &envelope).map_err(|e| match e {
            ets_store::SubmitError::Rejected(r) => ApiError::from(r),
            ets_store::SubmitError::Store(e) => e.into(),
        })?;
        let account = submitted.receipt.account.map(|a| ledger.registry().account(a).number.clone());
        let seq = ledger.registry().seq();
        Ok((StatusCode::CREATED, axum::Json(RegistryResult { id: body.id, actor, repeated: submitted.duplicate, seq, account })))
    })
    .await
}
