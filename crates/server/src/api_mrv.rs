//! MRV steps through the API: one endpoint takes any command of the MRV workflow (the JSON the
//! MRV journal stores, tagged by `type`), checks the caller's role for that kind of step, and
//! runs it in the MRV core under the caller's user name, which then applies its own rules (the
//! entity's representatives report, the assigned verifier's staff give opinions, officials
//! accept). Every step is journaled in the MRV journal before the answer.

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Json;
use crate::Platform;
use axum::extract::State;
use axum::http::StatusCode;
use ets_access::{Action, EntityRef};
use ets_mrv::state::{Command, MrvState};
use ets_mrv::verification::RejectKind;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

type S = State<Arc<Platform>>;

#[derive(Deserialize, ToSchema)]
pub struct MrvCommandRequest {
    /// The client's id for this step: a retry with the same id is answered, not repeated.
    pub id: String,
    /// An MRV command as the MRV journal stores it, tagged by `type`: `submit_monthly`,
    /// `submit_report`, `resubmit_report`, `set_plan`, `add_installation`, `add_unit`,
    /// `assign_verifier` (the entity's representatives; the last also the authority); `accept`, `return`, `cover`,
    /// `end_coverage`, `migrate`, `register_entity` (the market's authority); `record_finding`,
    /// `resolve_non_conformity`, `give_opinion` (verifiers); `add_official`,
    /// `register_verifier` (registry administrators).
    #[schema(value_type = Object)]
    pub command: serde_json::Value,
}

#[derive(Serialize, ToSchema)]
pub struct MrvStep {
    pub id: String,
    /// The MRV journal's sequence number of the record.
    pub seq: u64,
    /// True when the id had been used for this very step: nothing new was written.
    pub repeated: bool,
    /// What the step did, one line per event.
    pub events: Vec<String>,
}

/// The entity a step acts for, with its compliance account (whose representatives report).
fn entity_ref(state: &MrvState, platform: &Platform, entity: &str) -> ApiResult<EntityRef> {
    state.entity(entity).ok_or_else(|| ApiError::not_found(format!("no MRV entity {entity}")))?;
    let number = state
        .coverage(entity)
        .iter()
        .find_map(|c| c.account.clone())
        .ok_or_else(|| ApiError::forbidden(format!("{entity} has no compliance account: nobody reports for it through the API")))?;
    let account = crate::api::account_ref(platform, &number)?;
    Ok(EntityRef { entity: entity.to_string(), account })
}

fn report_entity(state: &MrvState, report: &str) -> ApiResult<String> {
    state.workflow().report(report).map(|r| r.entity.clone()).ok_or_else(|| ApiError::not_found(format!("no report {report}")))
}

/// The markets whose authority may review `entity`.
fn review(state: &MrvState, entity: &str) -> ApiResult<Vec<Action>> {
    let e = state.entity(entity).ok_or_else(|| ApiError::not_found(format!("no MRV entity {entity}")))?;
    Ok(e.markets.iter().map(|m| Action::ReviewMrv { market: m.clone() }).collect())
}

/// What a step needs: any one of the actions, or every one.
enum Need {
    Any(Vec<Action>),
    All(Vec<Action>),
}

impl Need {
    fn met(&self, caller: &Caller) -> bool {
        let allows = |a: &Action| ets_access::allows(caller.roles(), a);
        match self {
            Need::Any(actions) => actions.iter().any(allows),
            Need::All(actions) => !actions.is_empty() && actions.iter().all(allows),
        }
    }
}

/// A coverage's registry account must exist and belong to the market it covers (compliance
/// reads that account's allocations and surrenders).
fn coverage_account(platform: &Platform, account: Option<&str>, market: &str) -> ApiResult<()> {
    if let Some(number) = account {
        let r = crate::api::account_ref(platform, number)?;
        if r.market != market {
            return Err(ApiError::refused(format!("account {number} is in market {}, not {market}", r.market)));
        }
    }
    Ok(())
}

/// What the caller needs for `command`.
fn needs(state: &MrvState, platform: &Platform, command: &Command) -> ApiResult<Need> {
    let submit = |entity: &str| entity_ref(state, platform, entity).map(|entity| vec![Action::SubmitMrv { entity }]);
    match command {
        Command::SubmitMonthly { entity, .. } | Command::SubmitReport { entity, .. } => submit(entity).map(Need::Any),
        Command::SetPlan { plan, .. } => submit(&plan.entity).map(Need::Any),
        Command::AddInstallation { installation } => submit(&installation.entity).map(Need::Any),
        Command::AddUnit { unit } => {
            let entity = state
                .installations()
                .find(|i| i.id == unit.installation)
                .map(|i| i.entity.clone())
                .ok_or_else(|| ApiError::not_found(format!("no installation {}", unit.installation)))?;
            submit(&entity).map(Need::Any)
        }
        Command::ResubmitReport { report, .. } => submit(&report_entity(state, report)?).map(Need::Any),
        // The entity engages its verifier (the authority may too, where it procures verification).
        Command::AssignVerifier { report, .. } => {
            let entity = report_entity(state, report)?;
            let mut any = submit(&entity).unwrap_or_default();
            any.extend(review(state, &entity)?);
            Ok(Need::Any(any))
        }
        Command::Accept { report } | Command::Return { report, .. } => review(state, &report_entity(state, report)?).map(Need::Any),
        Command::RecordFinding { .. } | Command::ResolveNonConformity { .. } | Command::GiveOpinion { .. } => {
            Ok(Need::Any(vec![Action::VerifyMrv]))
        }
        Command::Cover { coverage, .. } => Ok(Need::All(vec![Action::ReviewMrv { market: coverage.market.clone() }])),
        Command::EndCoverage { market, .. } => Ok(Need::All(vec![Action::ReviewMrv { market: market.clone() }])),
        // A move takes the entity from one market to another: both authorities' business.
        Command::Migrate { from_market, to_market, .. } => {
            Ok(Need::All(vec![Action::ReviewMrv { market: from_market.clone() }, Action::ReviewMrv { market: to_market.clone() }]))
        }
        // Registering an entity in several markets takes the authority of each.
        Command::RegisterEntity { entity } => {
            Ok(Need::All(entity.markets.iter().map(|m| Action::ReviewMrv { market: m.clone() }).collect()))
        }
        Command::AddOfficial { .. } | Command::RegisterVerifier { .. } => Ok(Need::All(vec![Action::AdministerRegistry])),
    }
}

/// Runs one step of the MRV workflow as the caller.
#[utoipa::path(post, path = "/api/v1/mrv/commands", tag = "mrv", request_body = MrvCommandRequest, security(("session" = []), ("bearer" = [])),
    responses((status = 201, body = MrvStep), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn mrv_command(
    State(platform): S,
    caller: Caller,
    Json(body): Json<MrvCommandRequest>,
) -> ApiResult<(StatusCode, axum::Json<MrvStep>)> {
    let user = caller.signed_in()?.user.clone();
    let id = crate::api::client_command_id(&user, &body.id)?;
    let command: Command = serde_json::from_value(body.command).map_err(|e| ApiError::refused(format!("command: {e}")))?;
    crate::api::blocking(move || {
        let mut mrv = platform.mrv.lock().expect("mrv lock");
        let need = needs(mrv.state(), &platform, &command).map_err(|e| crate::api::unless_may_know(&caller, e, true))?;
        if !need.met(&caller) {
            return Err(ApiError::forbidden(format!("{user}'s roles do not allow this MRV step ({})", command_name(&command))));
        }
        // Only for a caller allowed the step: whether an account exists and where.
        match &command {
            Command::Cover { coverage, .. } => coverage_account(&platform, coverage.account.as_deref(), &coverage.market)?,
            Command::Migrate { to_market, account, .. } => coverage_account(&platform, account.as_deref(), to_market)?,
            _ => {}
        }
        let receipt = mrv.submit(&id, &user, platform.now(), &command, &[]).map_err(|e| match e {
            ets_store::MrvError::Rejected(r) => {
                let status = match r.kind {
                    RejectKind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
                    RejectKind::NotFound => StatusCode::NOT_FOUND,
                    // The caller's roles allow the kind of step (checked above); the MRV rules
                    // refuse this person for this report or entity: a refusal, not a 403.
                    RejectKind::Forbidden => StatusCode::UNPROCESSABLE_ENTITY,
                    RejectKind::OutOfOrder | RejectKind::Conflict | RejectKind::Inconsistent => StatusCode::CONFLICT,
                };
                let kind = match status {
                    StatusCode::NOT_FOUND => "not-found",
                    StatusCode::CONFLICT => "conflict",
                    _ => "refused",
                };
                ApiError::new(status, kind, r.message)
            }
            ets_store::MrvError::Store(e) => e.into(),
        })?;
        Ok((
            StatusCode::CREATED,
            axum::Json(MrvStep {
                id: body.id,
                seq: receipt.seq,
                repeated: receipt.repeated,
                events: receipt.events.iter().map(|e| format!("{e:?}")).collect(),
            }),
        ))
    })
    .await
}

fn command_name(command: &Command) -> String {
    serde_json::to_value(command).ok().and_then(|v| v["type"].as_str().map(String::from)).unwrap_or_default()
}
