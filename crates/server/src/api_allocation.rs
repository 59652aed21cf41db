//! Rulebooks and allocation runs through the API.
//!
//! - `GET /api/v1/rulebooks` and `GET /api/v1/rulebooks/{id}`: the shipped rulebooks, public
//!   like the rules they publish (thresholds, benchmarks, offset limits, price bands), each
//!   with the keys whose values are uncertain and why.
//! - `POST /api/v1/allocations`: a year's free allocation under a market's rulebook
//!   (`ets_compliance::allocation`, the engine `ets allocate` runs): the power engine from the
//!   MRV register's verified data, the industry and pilot engines from the records in the body.
//!   Computing it is for whoever may read the market's compliance (its authority, registry
//!   administrators, auditors); issuing it into the registry (`"issue": true`) for the market's
//!   authority only. The issue is all or nothing: the commands are tried against the
//!   registry first and nothing is written if any is refused. Its command ids are those of
//!   `ets allocate --issue` (`alloc-{rulebook}-{year}-issue`, `alloc-{rulebook}-{year}-{entity}`),
//!   and this endpoint runs as the market's first registry authority (as `ets allocate --issue
//!   --as` that authority does), so issuing the same allocation again changes nothing, and issuing different
//!   figures under the same rulebook and year is a conflict.

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Json, Path};
use crate::Platform;
use axum::extract::State;
use axum::http::StatusCode;
use ets_access::Action;
use ets_compliance::allocation::{self, AllocationError};
use ets_registry::Envelope;
use ets_rules::rulebook::Rulebook;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

type S = State<Arc<Platform>>;

/// A shipped rulebook, in brief.
#[derive(Serialize, ToSchema)]
pub struct RulebookSummary {
    pub id: String,
    pub market: String,
    pub title: String,
    pub first_year: i32,
    pub last_year: i32,
    pub version: u32,
    /// `power`, `industry` or `pilot`: the allocation engine.
    pub engine: String,
    /// Keys whose values are uncertain in the sources (each is a parameter with its default).
    pub uncertain: Vec<String>,
}

fn summary(rb: &Rulebook) -> RulebookSummary {
    RulebookSummary {
        id: rb.rulebook.id.clone(),
        market: rb.rulebook.market.clone(),
        title: rb.rulebook.title.clone(),
        first_year: rb.rulebook.first_year,
        last_year: rb.rulebook.last_year,
        version: rb.rulebook.version,
        engine: allocation::engine_name(&rb.allocation).into(),
        uncertain: rb.uncertain.keys().cloned().collect(),
    }
}

fn shipped(id: &str) -> ApiResult<Rulebook> {
    ets_compliance::shipped()
        .iter()
        .find(|rb| rb.rulebook.id == id)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("no shipped rulebook {id}")))
}

/// The rulebooks shipped with ets, by market and first year.
#[utoipa::path(get, path = "/api/v1/rulebooks", tag = "compliance", responses((status = 200, body = Vec<RulebookSummary>)))]
pub(crate) async fn rulebooks() -> Json<Vec<RulebookSummary>> {
    let mut all: Vec<RulebookSummary> = ets_compliance::shipped().iter().map(summary).collect();
    all.sort_by(|a, b| (&a.market, a.first_year, &a.id).cmp(&(&b.market, b.first_year, &b.id)));
    Json(all)
}

/// One shipped rulebook, whole, as JSON (the TOML file's sections and keys).
#[utoipa::path(get, path = "/api/v1/rulebooks/{id}", tag = "compliance", params(("id" = String, Path, example = "cn-power-2023-2024")),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
pub(crate) async fn rulebook(Path(id): Path<String>) -> ApiResult<Json<serde_json::Value>> {
    let rb = shipped(&id)?;
    Ok(Json(serde_json::to_value(&rb).map_err(ApiError::internal)?))
}

#[derive(Deserialize, ToSchema)]
pub struct AllocationRequest {
    /// The market, e.g. `CN`.
    pub market: String,
    /// The allocation (vintage) year.
    pub year: i32,
    /// A shipped rulebook id of the market; default the one its compliance is assessed under.
    pub rulebook: Option<String>,
    /// The engine's inputs, a JSON array: industry units for the industry engine, entities for
    /// the pilot engine, or power units instead of the MRV register for the power engine.
    #[schema(value_type = Option<Vec<Object>>)]
    pub data: Option<serde_json::Value>,
    /// Issue the allocation into the registry (the market's authority); default: compute only.
    #[serde(default)]
    pub issue: bool,
}

/// One entity's allocation.
#[derive(Serialize, ToSchema)]
pub struct AllocatedView {
    pub entity: String,
    pub final_t: u64,
    /// Allocated ahead of verified data (power: the pre-allocation; pilots: the first batch).
    pub pre_allocated_t: u64,
    /// The final allocation less the pre-allocation (negative: given back).
    pub true_up_t: i64,
    /// What the engine adds: gap-cap top-up, balance-value adjustment, method.
    pub note: String,
}

#[derive(Serialize, ToSchema)]
pub struct SkippedView {
    pub entity: String,
    pub why: String,
}

/// The rulebook's cap and how it splits, in tonnes.
#[derive(Serialize, ToSchema)]
pub struct CapView {
    pub cap_t: u64,
    pub free_t: u64,
    pub auction_t: u64,
    pub new_entrant_reserve_t: u64,
    pub price_stability_reserve_t: u64,
    pub government_reserve_t: u64,
}

/// What issuing wrote to the registry.
#[derive(Serialize, ToSchema)]
pub struct IssuedView {
    /// The registry authority it ran as.
    pub actor: String,
    /// Registry commands: the issue of the total, then one allocation per entity.
    pub commands: usize,
    /// Commands written now.
    pub new: usize,
    /// Commands already in the registry from an earlier issue of the same allocation.
    pub repeated: usize,
    /// The registry journal's sequence number after it.
    pub seq: u64,
}

#[derive(Serialize, ToSchema)]
pub struct AllocationView {
    pub rulebook: String,
    pub market: String,
    pub year: i32,
    pub total_t: u64,
    pub cap: Option<CapView>,
    pub entities: Vec<AllocatedView>,
    /// Covered entities the engine could not allocate to, and why.
    pub skipped: Vec<SkippedView>,
    /// Present when the allocation was issued.
    pub issued: Option<IssuedView>,
}

impl From<AllocationError> for ApiError {
    fn from(e: AllocationError) -> ApiError {
        match e {
            AllocationError::Invalid(m) => ApiError::invalid(m),
            AllocationError::Refused(m) => ApiError::refused(m),
        }
    }
}

/// Computes a year's free allocation under a market's rulebook and, with `issue`, issues it
/// into the registry (see the module's description for who may do which).
#[utoipa::path(post, path = "/api/v1/allocations", tag = "compliance", request_body = AllocationRequest, security(("session" = []), ("bearer" = [])),
    responses((status = 200, body = AllocationView, description = "computed"), (status = 201, body = AllocationView, description = "issued"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn allocate(
    State(platform): S,
    caller: Caller,
    Json(body): Json<AllocationRequest>,
) -> ApiResult<(StatusCode, axum::Json<AllocationView>)> {
    caller.signed_in()?;
    let market = body.market.clone();
    let needed = if body.issue { Action::IssueUnits { market: market.clone() } } else { Action::ReadCompliance { market: market.clone() } };
    caller.may(&needed)?;
    let data = match &body.data {
        None => None,
        Some(v @ serde_json::Value::Array(_)) => Some(v.to_string()),
        Some(_) => return Err(ApiError::invalid("data must be a JSON array of the engine's records")),
    };
    crate::api::blocking(move || {
        if platform.registry.lock().expect("registry lock").registry().find_market(&market).is_none() {
            return Err(ApiError::not_found(format!("no market {market}")));
        }
        let rb = match &body.rulebook {
            Some(id) => shipped(id)?,
            None => platform
                .compliance
                .rulebook(&market, body.year)
                .ok_or_else(|| ApiError::not_found(format!("no rulebook governs {market} in {}", body.year)))?,
        };
        if rb.rulebook.market != market {
            return Err(ApiError::invalid(format!("rulebook {} is market {}'s, not {market}'s", rb.rulebook.id, rb.rulebook.market)));
        }
        // The MRV lock is taken before the registry's, as everywhere both are held.
        let mrv = platform.mrv.lock().expect("mrv lock");
        // The engines were written for the operator's files; on a caller's records a panic in
        // their arithmetic is caught here, inside the lock's scope, so it answers 400 and does
        // not poison the MRV lock for everyone.
        let computed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            allocation::allocate(&rb, mrv.state(), body.year, data.as_deref())
        }));
        let run = match computed {
            Ok(run) => run?,
            Err(_) => return Err(ApiError::invalid("the engine could not compute this allocation: its figures overflow exact arithmetic")),
        };
        let issued = if body.issue {
            let mut ledger = platform.registry.lock().expect("registry lock");
            let commands = allocation::issue_commands(ledger.registry(), mrv.state(), &run)?;
            let r = ledger.registry();
            let m = r.find_market(&market).expect("checked above");
            let actor =
                r.market(m).spec.authorities.first().cloned().ok_or_else(|| ApiError::conflict(format!("{market} has no authority")))?;
            let envelopes: Vec<Envelope> =
                commands.into_iter().map(|(id, command)| Envelope { id, actor: actor.clone(), command }).collect();
            // All or nothing: a refusal part-way (a cap, a frozen account) leaves the registry
            // as it was rather than with the total issued and some entities allocated.
            if let Err((i, rejection)) = r.trial(&envelopes) {
                // A refused command whose id the registry knows: the id was used for another command.
                let reused = r.command_receipt(&envelopes[i].id).is_some();
                let mut e = ApiError::from(rejection);
                e.message = if reused {
                    // The ids are the allocation's own: the year was issued with other
                    // figures (a report accepted since, other records).
                    format!(
                        "{}: {} {} was issued before with different figures (or by another of the market's authorities); nothing was issued (change an issued allocation with registry commands: allocate the difference, or withdraw)",
                        envelopes[i].id, run.rulebook, run.year
                    )
                } else {
                    format!("{}: {}; nothing was issued", envelopes[i].id, e.message)
                };
                return Err(e);
            }
            let results = ledger.submit_batch(platform.now(), &envelopes)?;
            let mut new = 0;
            for result in results {
                match result {
                    Ok(s) if !s.duplicate => new += 1,
                    Ok(_) => {}
                    // The trial above ran the same commands on the same state.
                    Err(rejection) => return Err(ApiError::internal(format!("refused after its trial passed: {}", rejection.message))),
                }
            }
            Some(IssuedView { actor, commands: envelopes.len(), new, repeated: envelopes.len() - new, seq: ledger.registry().seq() })
        } else {
            None
        };
        let view = AllocationView {
            rulebook: run.rulebook,
            market: run.market,
            year: run.year,
            total_t: run.total_t,
            cap: run.cap.map(|v| CapView {
                cap_t: v.cap_t,
                free_t: v.free_t,
                auction_t: v.auction_t,
                new_entrant_reserve_t: v.new_entrant_reserve_t,
                price_stability_reserve_t: v.price_stability_reserve_t,
                government_reserve_t: v.government_reserve_t,
            }),
            entities: run
                .entities
                .into_iter()
                .map(|a| AllocatedView {
                    entity: a.entity,
                    final_t: a.final_t,
                    pre_allocated_t: a.pre_allocated_t,
                    true_up_t: a.true_up_t,
                    note: a.note,
                })
                .collect(),
            skipped: run.skipped.into_iter().map(|(entity, why)| SkippedView { entity, why }).collect(),
            issued,
        };
        let status = if view.issued.is_some() { StatusCode::CREATED } else { StatusCode::OK };
        Ok((status, axum::Json(view)))
    })
    .await
}
