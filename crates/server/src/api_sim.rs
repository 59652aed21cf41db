//! Policy simulation through the API, as `ets sim` offers it: the default calibration, a
//! scenario checked, a scenario run. For signed-in callers.
//!
//! A scenario is the TOML text `ets sim` reads (examples in `examples/sim/`), sent as the string
//! field `scenario` of a JSON body: `{"scenario": "[scenario]\nname = ..."}`. Every problem of
//! the file is named with its key (422). So that a request cannot tie the server up, a scenario
//! larger than the server's limits is refused (422, naming each key and limit) before it runs:
//! see [`Limits`]. Runs go to the blocking pool, at most one per core at a time (more wait).
//! Results are floating point by nature (simulation, not the ledger).

use crate::api_cbam::SignedIn;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Json;
use axum::http::StatusCode;
use ets_sim::calibration::Calibration;
use ets_sim::scenario::Scenario;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::{Arc, OnceLock};
use utoipa::ToSchema;

/// The server's limits on a scenario (the library's own are far larger, for the CLI).
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
pub struct Limits {
    /// Most bytes of scenario text.
    pub scenario_bytes: usize,
    /// Most markets.
    pub markets: usize,
    /// Most firms over all markets (`firms_per_market`, `[market.X] firms`).
    pub firms: usize,
    /// Most Monte Carlo draws (`[monte_carlo] draws`).
    pub draws: usize,
    /// Most (draws + 1) × firms × regimes: the work of the equilibrium solves.
    pub solve_work: usize,
    /// Most years of the banking path (`[banking] years`).
    pub path_years: usize,
    /// Most (draws + 1) × path years² × banking markets: the work of the paths (a path's solve
    /// grows about with the square of its years; 50 years and 100 draws take some 10 s).
    pub path_work: usize,
    /// Most agent-based firms (`[agents] firms`) and trading days (`[agents] days`).
    pub agent_firms: usize,
    pub agent_days: usize,
    /// Most agent firms × days.
    pub agent_work: usize,
}

pub const LIMITS: Limits = Limits {
    scenario_bytes: 64 * 1024,
    markets: 20,
    firms: 20_000,
    draws: 2_000,
    solve_work: 4_000_000,
    path_years: 50,
    path_work: 250_000,
    agent_firms: 5_000,
    agent_days: 366,
    agent_work: 400_000,
};

fn refused(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScenarioRequest {
    /// The scenario file's TOML text, as `ets sim run FILE` reads it.
    #[schema(example = "[scenario]\nname = \"Beijing alone\"\nseed = 1\nmarkets = [\"BJ\"]\n\n[equilibrium]\nregimes = [\"autarky\"]\n")]
    pub scenario: String,
}

/// Parses the scenario (every problem, with its key) and holds it to the server's limits.
fn read(body: &ScenarioRequest) -> ApiResult<Scenario> {
    if body.scenario.len() > LIMITS.scenario_bytes {
        return Err(refused(format!("scenario: {} bytes is more than the server's {} bytes", body.scenario.len(), LIMITS.scenario_bytes)));
    }
    let s = Scenario::parse(&body.scenario).map_err(|errors| refused(errors.0.join("; ")))?;
    let problems = over_limits(&s);
    if !problems.is_empty() {
        return Err(refused(format!("the scenario is larger than this server runs: {}", problems.join("; "))));
    }
    Ok(s)
}

/// Every limit the scenario exceeds, each naming its key.
pub fn over_limits(s: &Scenario) -> Vec<String> {
    let mut out = Vec::new();
    let mut check = |key: &str, value: usize, limit: usize| {
        if value > limit {
            out.push(format!("{key}: {value} is above the server's limit of {limit}"));
        }
    };
    let markets = s.markets.len();
    let firms: usize = s.markets.iter().map(|m| m.firms).fold(0, usize::saturating_add);
    let draws = s.monte_carlo.as_ref().map_or(0, |m| m.draws);
    let regimes = s.equilibrium.as_ref().map_or(0, |e| e.regimes.len()).max(1);
    check("scenario.markets", markets, LIMITS.markets);
    check("firms (over all markets)", firms, LIMITS.firms);
    check("monte_carlo.draws", draws, LIMITS.draws);
    check("(monte_carlo.draws + 1) × firms × regimes", (draws + 1).saturating_mul(firms).saturating_mul(regimes), LIMITS.solve_work);
    if let Some(b) = &s.banking {
        check("banking.years", b.years, LIMITS.path_years);
        let work = (draws + 1).saturating_mul(b.years).saturating_mul(b.years).saturating_mul(b.markets.len().max(1));
        check("(monte_carlo.draws + 1) × banking.years² × banking.markets", work, LIMITS.path_work);
    }
    if let Some(a) = &s.agents {
        check("agents.firms", a.firms, LIMITS.agent_firms);
        check("agents.days", a.days, LIMITS.agent_days);
        check("agents.firms × agents.days", a.firms.saturating_mul(a.days), LIMITS.agent_work);
    }
    out
}

/// At most one simulation per core at a time. The permit goes with the run into the blocking
/// pool, so a client that hangs up does not free it before the run ends.
fn permits() -> Arc<tokio::sync::Semaphore> {
    static PERMITS: OnceLock<Arc<tokio::sync::Semaphore>> = OnceLock::new();
    PERMITS.get_or_init(|| Arc::new(tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(1, |n| n.get())))).clone()
}

// ------------------------------------------------------------------ calibration

#[derive(Serialize, ToSchema)]
pub struct SimParams {
    /// Required abatement as a share of the baseline.
    pub abatement_share: f64,
    pub mac_gamma: f64,
    pub firm_dispersion: f64,
}

#[derive(Serialize, ToSchema)]
pub struct SimMarket {
    pub code: String,
    pub name: String,
    pub rulebook: Option<String>,
    pub cap_mt: f64,
    pub baseline_mt: f64,
    /// The price the market alone clears at (CNY/t).
    pub target_price: f64,
    /// "2024" (observed) or "2020 close × scale".
    pub target_basis: String,
    pub entities: u32,
    pub volume_2024_mt: Option<f64>,
}

#[derive(Serialize, ToSchema)]
pub struct SimCalibration {
    pub params: SimParams,
    /// The 2020 → 2024 pilot price scale.
    pub price_scale: f64,
    pub markets: Vec<SimMarket>,
    /// The server's limits on a scenario sent to check or run.
    pub limits: Limits,
}

/// The default calibration: the national market and the eight pilots (sources and assumptions
/// in `crates/sim/data/calibration-china.toml`), with the server's limits on scenarios.
#[utoipa::path(get, path = "/api/v1/sim/calibration", tag = "simulation", security(("session" = []), ("bearer" = [])),
    responses((status = 200, body = SimCalibration), (status = 401, body = ErrorBody)))]
pub(crate) async fn sim_calibration(caller: Caller) -> ApiResult<Json<SimCalibration>> {
    caller.signed_in()?;
    let c = Calibration::default_set();
    Ok(Json(SimCalibration {
        params: SimParams {
            abatement_share: c.params.abatement_share,
            mac_gamma: c.params.mac_gamma,
            firm_dispersion: c.params.firm_dispersion,
        },
        price_scale: c.price_scale,
        markets: c
            .markets
            .into_iter()
            .map(|m| SimMarket {
                code: m.code,
                name: m.name,
                rulebook: m.rulebook,
                cap_mt: m.cap_mt,
                baseline_mt: m.baseline_mt,
                target_price: m.target_price,
                target_basis: m.target_basis,
                entities: m.entities,
                volume_2024_mt: m.volume_2024_mt,
            })
            .collect(),
        limits: LIMITS,
    }))
}

// ------------------------------------------------------------------ check and run

#[derive(Serialize, ToSchema)]
pub struct ScenarioCheck {
    /// Always `ok` (a scenario with problems is 422).
    pub status: String,
    pub scenario: String,
    pub markets: Vec<String>,
}

/// Checks a scenario without running it: every problem named with its key, and the server's
/// limits (422).
#[utoipa::path(post, path = "/api/v1/sim/check", tag = "simulation", request_body = ScenarioRequest,
    security(("session" = []), ("bearer" = [])),
    responses((status = 200, body = ScenarioCheck), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn sim_check(SignedIn(_caller): SignedIn, Json(body): Json<ScenarioRequest>) -> ApiResult<Json<ScenarioCheck>> {
    let s = crate::api::blocking(move || read(&body)).await?;
    Ok(Json(ScenarioCheck { status: "ok".into(), scenario: s.name.clone(), markets: s.markets.iter().map(|m| m.code.clone()).collect() }))
}

#[derive(Serialize, ToSchema)]
pub struct SimRun {
    /// A few lines for people.
    pub summary: Vec<String>,
    /// The run's `results.json` (as `ets sim run --json`): equilibrium regimes, the path over
    /// time, the agent-based year, Monte Carlo bands, CBAM; the same scenario gives the same
    /// results.
    #[schema(value_type = Object)]
    pub results: Value,
}

/// Runs a scenario (within the server's limits, 422 otherwise) and answers its results.
#[utoipa::path(post, path = "/api/v1/sim/run", tag = "simulation", request_body = ScenarioRequest,
    security(("session" = []), ("bearer" = [])),
    responses((status = 200, body = SimRun), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn sim_run(SignedIn(_caller): SignedIn, Json(body): Json<ScenarioRequest>) -> ApiResult<Json<SimRun>> {
    let s = crate::api::blocking(move || read(&body)).await?;
    let permit = permits().acquire_owned().await.map_err(ApiError::internal)?;
    crate::api::blocking(move || {
        let _permit = permit;
        let results = ets_sim::run::run(&s, &mut |_, _, _| {}).map_err(|e| refused(e.to_string()))?;
        Ok(Json(SimRun { summary: results.summary, results: results.json }))
    })
    .await
}
