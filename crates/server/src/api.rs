//! The JSON API under `/api/v1`. Each handler declares the action it needs (checked by
//! `Caller::may` against `ets_access::allows`, deny by default) and its OpenAPI operation;
//! the document at `/api/v1/openapi.json` is generated from these declarations.
//!
//! Units in names: `_t` tonnes, `_fen` 0.01 yuan, `_ms` milliseconds since the epoch (UTC).

use crate::auth::{Caller, SESSION_COOKIE};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Json, Path, Query};
use crate::view::{InstrumentView, MarketView, TradeView};
use crate::Platform;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ets_access::{AccountRef, Action, Actor, Command as A, Envelope as AccessEnvelope, Role, Secret, TransferStatus, TrustedStatus};
use ets_core::{Timestamp, Tonnes};
use ets_exchange::venue::{Command as X, Envelope as XEnvelope, Event as XEvent};
use ets_exchange::{Side, Tif};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

type S = State<Arc<Platform>>;

#[derive(OpenApi)]
#[openapi(
    info(title = "ets API", description = "Multi-level emissions trading: registry, exchange, identity and the registry's security controls. Quantities in tonnes (_t), money in fen (_fen, 0.01 yuan), times in ms since the epoch (_ms)."),
    modifiers(&Security),
    components(schemas(ErrorBody)),
    tags(
        (name = "session", description = "Sign in and out; API tokens"),
        (name = "market data", description = "Public: prices, books, trades, closing prices"),
        (name = "registry", description = "Accounts, holdings, history"),
        (name = "controls", description = "Four-eyes transfers and trusted account lists"),
        (name = "exchange", description = "Orders, lodgements, block trades and one-way bidding; the trading day's rules; members' books"),
        (name = "exchange operator", description = "The exchange operator's: the trading day (opening, closing and settlement), members, their cash, listings"),
        (name = "administration", description = "Users and the audit journal"),
        (name = "compliance", description = "Each covered entity's obligation, surrenders counted, shortfall, fine and deduction, per market and year; the rulebooks; allocation runs"),
        (name = "mrv", description = "Monitoring, reporting and verification: the verifier's and regulators' queues, the anomaly list"),
    )
)]
struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()));
        components.add_security_scheme("session", SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(SESSION_COOKIE))));
    }
}

/// The API's routes and its OpenAPI document, generated from the handlers below.
pub fn api_router() -> (axum::Router<Arc<Platform>>, utoipa::openapi::OpenApi) {
    let (router, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health))
        .routes(routes!(login, logout))
        .routes(routes!(me))
        .routes(routes!(issue_token))
        .routes(routes!(revoke_token))
        .routes(routes!(markets))
        .routes(routes!(instruments))
        .routes(routes!(instrument))
        .routes(routes!(trades))
        .routes(routes!(accounts))
        .routes(routes!(account))
        .routes(routes!(account_transactions))
        .routes(routes!(list_transfers, propose_transfer))
        .routes(routes!(approve_transfer))
        .routes(routes!(reject_transfer))
        .routes(routes!(cancel_transfer))
        .routes(routes!(trusted_list, propose_trusted))
        .routes(routes!(approve_trusted))
        .routes(routes!(remove_trusted))
        .routes(routes!(place_order))
        .routes(routes!(cancel_order))
        .routes(routes!(lodge))
        // The exchange's operations (api_exchange.rs)
        .routes(routes!(crate::api_exchange::exchange_day))
        .routes(routes!(crate::api_exchange::open_day))
        .routes(routes!(crate::api_exchange::close_day))
        .routes(routes!(crate::api_exchange::members, crate::api_exchange::admit_member))
        .routes(routes!(crate::api_exchange::deposit))
        .routes(routes!(crate::api_exchange::withdraw))
        .routes(routes!(crate::api_exchange::list_instrument))
        .routes(routes!(crate::api_exchange::blocks, crate::api_exchange::propose_block))
        .routes(routes!(crate::api_exchange::confirm_block))
        .routes(routes!(crate::api_exchange::withdraw_block))
        .routes(routes!(crate::api_exchange::biddings, crate::api_exchange::open_bidding))
        .routes(routes!(crate::api_exchange::bid))
        .routes(routes!(crate::api_exchange::close_bidding))
        .routes(routes!(crate::api_exchange::unlodge))
        .routes(routes!(list_users, create_user))
        .routes(routes!(audit))
        .routes(routes!(mrv_reports))
        .routes(routes!(mrv_anomalies))
        .routes(routes!(crate::api_mrv::mrv_command))
        .routes(routes!(crate::api_registry::registry_command))
        .routes(routes!(crate::compliance::compliance_all))
        .routes(routes!(crate::compliance::compliance_market))
        .routes(routes!(crate::api_allocation::rulebooks))
        .routes(routes!(crate::api_allocation::rulebook))
        .routes(routes!(crate::api_allocation::allocate))
        .routes(routes!(crate::auctions::auctions, crate::auctions::open_auction))
        .routes(routes!(crate::auctions::auction_bid))
        .routes(routes!(crate::auctions::withdraw_auction_bid))
        .routes(routes!(crate::auctions::clear_auction))
        // CBAM, simulation, finance and inclusion (api_cbam.rs, api_sim.rs, api_finance.rs)
        .routes(routes!(crate::api_cbam::cbam_goods))
        .routes(routes!(crate::api_cbam::cbam_see))
        .routes(routes!(crate::api_cbam::cbam_communication))
        .routes(routes!(crate::api_cbam::cbam_communication_import))
        .routes(routes!(crate::api_cbam::cbam_liability))
        .routes(routes!(crate::api_cbam::cbam_scenario))
        .routes(routes!(crate::api_cbam::cbam_qreport))
        .routes(routes!(crate::api_cbam::cbam_carbon_price))
        .routes(routes!(crate::api_sim::sim_calibration))
        .routes(routes!(crate::api_sim::sim_check))
        .routes(routes!(crate::api_sim::sim_run))
        .routes(routes!(crate::api_finance::finance_parties))
        .routes(routes!(crate::api_finance::finance_pledges))
        .routes(routes!(crate::api_finance::finance_repos))
        .routes(routes!(crate::api_finance::finance_contracts))
        .routes(routes!(crate::api_finance::inclusion_methodologies))
        .routes(routes!(crate::api_finance::inclusion_submissions))
        .routes(routes!(crate::api_finance::inclusion_pilots))
        .routes(routes!(crate::api_finance_commands::finance_command))
        .routes(routes!(crate::api_finance_commands::inclusion_command))
        .split_for_parts();
    (router, with_refusals(crate::api_cbam::with_tags(doc)))
}

/// Lists on every operation the refusals any request can meet, as the API's JSON error: 400
/// for a malformed path, query or body, 415 and 422 for a body that is not JSON or not of the
/// operation's shape, 401 where a credential is needed or presented and not valid.
fn with_refusals(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
    let error = |what: &str| {
        RefOr::T(
            ResponseBuilder::new()
                .description(what)
                .content("application/json", ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build())
                .build(),
        )
    };
    for (path, item) in doc.paths.paths.iter_mut() {
        let named = path.contains('{');
        let writes = [item.post.is_some(), item.put.is_some(), item.delete.is_some(), item.patch.is_some()];
        let ops = [
            (&mut item.get, false),
            (&mut item.post, writes[0]),
            (&mut item.put, writes[1]),
            (&mut item.delete, writes[2]),
            (&mut item.patch, writes[3]),
        ];
        for (op, write) in ops.into_iter().filter_map(|(op, w)| op.as_mut().map(|op| (op, w))) {
            let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
            let queried = op.parameters.as_ref().is_some_and(|p| !p.is_empty());
            let responses = &mut op.responses.responses;
            responses.entry("400".into()).or_insert_with(|| error("malformed request (path, query or body)"));
            // Any presented credential is checked, so even public operations may answer 401.
            responses
                .entry("401".into())
                .or_insert_with(|| error("the presented credential is not valid (unknown, expired, revoked or logged out)"));
            if secured {
                responses.entry("403".into()).or_insert_with(|| error("the caller's roles do not allow this"));
            }
            if named || queried {
                responses
                    .entry("404".into())
                    .or_insert_with(|| error("a named account, instrument, proposal, order or market does not exist"));
            }
            if write {
                responses.entry("409".into()).or_insert_with(|| error("the command conflicts with one already carried out"));
                responses
                    .entry("422".into())
                    .or_insert_with(|| error("the request breaks a rule of the registry, the exchange or the controls"));
            }
            if op.request_body.is_some() {
                responses.entry("415".into()).or_insert_with(|| error("the body is not JSON (Content-Type)"));
                responses.entry("422".into()).or_insert_with(|| error("the body is JSON of another shape, or the request breaks a rule"));
            }
        }
    }
    doc
}

/// The whole application: the API, its document and explorer, and the dashboard.
pub fn router(platform: Arc<Platform>) -> axum::Router {
    let (api, doc) = api_router();
    let doc = Arc::new(doc.to_pretty_json().expect("the OpenAPI document serialises"));
    api.merge(crate::docs::routes(doc)).merge(crate::dashboard::routes()).fallback(not_found).with_state(platform)
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint; the API is described at /api/v1/openapi.json")
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

fn salt() -> [u8; 16] {
    let mut buf = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    buf
}

/// Runs an access command for `caller` and journals it before answering.
pub(crate) fn access_command(platform: &Platform, caller: &Caller, command: A) -> ApiResult<ets_access::Record> {
    let envelope = AccessEnvelope { at: platform.now(), origin: caller.origin.clone(), actor: caller.actor(), command };
    match platform.access.lock().expect("access lock").execute(&envelope)? {
        Ok(record) => Ok(record),
        Err(refusal) => Err(refusal.rejection.into()),
    }
}

/// The journal id of a client's command: the client's `id` (1 to 32 letters, digits, `-`, `_`,
/// `.`) in the user's own namespace (the user's name length-prefixed, so no two users make the
/// same id), so a retry is recognised and never taken for another user's command.
pub(crate) fn client_command_id(user: &str, id: &str) -> ApiResult<String> {
    if id.is_empty() || id.len() > 32 || !id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
        return Err(ApiError::invalid("id: 1 to 32 letters, digits, '-', '_' or '.'"));
    }
    Ok(format!("api-{}-{user}-{id}", user.len()))
}

pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> ApiResult<T> + Send + 'static) -> ApiResult<T> {
    tokio::task::spawn_blocking(f).await.map_err(ApiError::internal)?
}

// ------------------------------------------------------------------ roles as text

/// Roles as text: `registry-admin`, `auditor`, `verifier`, `public`, `market-authority:CN`,
/// `account-representative:CN-100001`, `approving-representative:CN-100001`,
/// `exchange-member:cn-op1`, `exchange-operator`, `finance-operator`.
pub fn role_text(role: &Role) -> String {
    match role {
        Role::MarketAuthority { market } => format!("market-authority:{market}"),
        Role::RegistryAdmin => "registry-admin".into(),
        Role::AccountRepresentative { account } => format!("account-representative:{account}"),
        Role::ApprovingRepresentative { account } => format!("approving-representative:{account}"),
        Role::Verifier => "verifier".into(),
        Role::ExchangeMember { member } => format!("exchange-member:{member}"),
        Role::Auditor => "auditor".into(),
        Role::Public => "public".into(),
        Role::ExchangeOperator => "exchange-operator".into(),
        Role::FinanceOperator => "finance-operator".into(),
    }
}

pub fn parse_role(text: &str) -> ApiResult<Role> {
    let (kind, scope) = text.split_once(':').map_or((text, None), |(k, s)| (k, Some(s.to_string())));
    let need = |scope: Option<String>| {
        scope.filter(|s| !s.is_empty()).ok_or_else(|| ApiError::invalid(format!("role {kind} needs a scope: {kind}:<name>")))
    };
    Ok(match kind {
        "registry-admin" => Role::RegistryAdmin,
        "auditor" => Role::Auditor,
        "verifier" => Role::Verifier,
        "public" => Role::Public,
        "exchange-operator" => Role::ExchangeOperator,
        "finance-operator" => Role::FinanceOperator,
        "market-authority" => Role::MarketAuthority { market: need(scope)? },
        "account-representative" => Role::AccountRepresentative { account: need(scope)? },
        "approving-representative" => Role::ApprovingRepresentative { account: need(scope)? },
        "exchange-member" => Role::ExchangeMember { member: need(scope)? },
        other => return Err(ApiError::invalid(format!("unknown role {other}"))),
    })
}

// ------------------------------------------------------------------ health

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: String,
    pub time_ms: i64,
    pub registry_records: u64,
    pub exchange_day: Option<String>,
}

/// Liveness and what the server holds.
#[utoipa::path(get, path = "/api/v1/health", tag = "market data", responses((status = 200, body = Health)))]
async fn health(State(platform): S) -> Json<Health> {
    let registry_records = platform.registry.lock().expect("registry lock").registry().seq();
    let exchange_day = platform.market.read().expect("market view").day.clone();
    Json(Health { status: "ok".into(), time_ms: platform.now().0, registry_records, exchange_day })
}

// ------------------------------------------------------------------ session and tokens

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    pub user: String,
    pub password: String,
}

#[derive(Serialize, ToSchema)]
pub struct SessionInfo {
    pub session: String,
    pub user: String,
    pub roles: Vec<String>,
    /// The session's secret: also set as the `ets_session` cookie. Send it as a bearer token.
    pub secret: String,
    pub expires_at_ms: i64,
}

/// Signs in; sets the session cookie. Failed attempts count towards throttling.
#[utoipa::path(post, path = "/api/v1/session", tag = "session", request_body = LoginRequest,
    responses((status = 200, body = SessionInfo), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn login(State(platform): S, caller: Caller, Json(body): Json<LoginRequest>) -> ApiResult<Response> {
    let info = blocking(move || open_session(&platform, caller.origin, body)).await?;
    let mut response = Json(&info).into_response();
    response.headers_mut().insert(header::SET_COOKIE, session_cookie(&info.secret)?);
    Ok(response)
}

/// Signs in (always anonymous, whatever credential came along) and journals it: the session
/// opened, with its secret. Shared by the API and the dashboard's login form.
pub(crate) fn open_session(platform: &Platform, origin: String, body: LoginRequest) -> ApiResult<SessionInfo> {
    let session = format!("s-{}", random_hex(8));
    let secret = random_hex(32);
    let command =
        A::Login { user: body.user, password: Secret::new(body.password), session: session.clone(), secret: Secret::new(secret.clone()) };
    let anonymous = Caller { principal: None, origin };
    access_command(platform, &anonymous, command)?;
    let access = platform.access.lock().expect("access lock");
    let s = access.access().identity().session(&session).ok_or_else(|| ApiError::internal("session missing after login"))?;
    let user = access.access().identity().user(&s.user).ok_or_else(|| ApiError::internal("user missing after login"))?;
    Ok(SessionInfo {
        session: session.clone(),
        // The session's user (the login record names no user: its actor was anonymous).
        user: s.user.clone(),
        roles: user.roles.iter().map(role_text).collect(),
        secret,
        expires_at_ms: s.expires_at.0,
    })
}

/// The `Set-Cookie` value for a session secret: HttpOnly, SameSite=Strict.
pub(crate) fn session_cookie(secret: &str) -> ApiResult<HeaderValue> {
    HeaderValue::from_str(&format!("{SESSION_COOKIE}={secret}; HttpOnly; SameSite=Strict; Path=/")).map_err(ApiError::internal)
}

/// The `Set-Cookie` value that removes the session cookie.
pub(crate) fn cleared_cookie() -> HeaderValue {
    HeaderValue::from_static("ets_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
}

/// Ends the caller's session (not a token's) and journals it.
pub(crate) fn close_session(platform: &Platform, caller: &Caller) -> ApiResult<()> {
    let principal = caller.signed_in()?;
    let Actor::Session(session) = principal.actor.clone() else {
        return Err(ApiError::invalid("an API token is not a session: revoke it with DELETE /api/v1/tokens/{token}"));
    };
    access_command(platform, caller, A::Logout { session })?;
    Ok(())
}

/// Ends the calling session at once; its secret stops working.
#[utoipa::path(delete, path = "/api/v1/session", tag = "session", security(("session" = []), ("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody)))]
async fn logout(State(platform): S, caller: Caller) -> ApiResult<Response> {
    caller.signed_in()?;
    blocking(move || close_session(&platform, &caller)).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(header::SET_COOKIE, cleared_cookie());
    Ok(response)
}

#[derive(Serialize, ToSchema)]
pub struct Me {
    pub user: String,
    pub roles: Vec<String>,
    /// `session`, `token` or `public`.
    pub credential: String,
}

/// Who the caller is and what roles the credential carries.
#[utoipa::path(get, path = "/api/v1/me", tag = "session", responses((status = 200, body = Me)))]
async fn me(caller: Caller) -> Json<Me> {
    let credential = match caller.principal.as_ref().map(|p| &p.actor) {
        Some(Actor::Session(_)) => "session",
        Some(Actor::Token(_)) => "token",
        _ => "public",
    };
    Json(Me {
        user: caller.user().unwrap_or("public").to_string(),
        roles: caller.roles().iter().map(role_text).collect(),
        credential: credential.into(),
    })
}

#[derive(Deserialize, ToSchema)]
pub struct TokenRequest {
    /// The token's roles, a subset of the user's; all of them if absent.
    pub roles: Option<Vec<String>>,
    /// Lifetime in days (default 30).
    pub days: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct TokenInfo {
    pub token: String,
    /// Shown once; only its SHA-256 is kept.
    pub secret: String,
    pub roles: Vec<String>,
    pub expires_at_ms: i64,
}

/// Issues an API token for the signed-in user (only from a session).
#[utoipa::path(post, path = "/api/v1/tokens", tag = "session", request_body = TokenRequest, security(("session" = []), ("bearer" = [])),
    responses((status = 201, body = TokenInfo), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn issue_token(State(platform): S, caller: Caller, Json(body): Json<TokenRequest>) -> ApiResult<(StatusCode, Json<TokenInfo>)> {
    let principal = caller.signed_in()?;
    let roles = match body.roles {
        Some(texts) => texts.iter().map(|t| parse_role(t)).collect::<ApiResult<Vec<Role>>>()?,
        None => principal.roles.clone(),
    };
    let days = i64::from(body.days.unwrap_or(30));
    if !(1..=366).contains(&days) {
        return Err(ApiError::invalid("days must be 1..=366"));
    }
    let expires_at = Timestamp(platform.now().0 + days * 86_400_000);
    let token = format!("k-{}", random_hex(8));
    let secret = random_hex(32);
    let info = TokenInfo {
        token: token.clone(),
        secret: secret.clone(),
        roles: roles.iter().map(role_text).collect(),
        expires_at_ms: expires_at.0,
    };
    blocking(move || access_command(&platform, &caller, A::IssueToken { token, roles, expires_at, secret: Secret::new(secret) })).await?;
    Ok((StatusCode::CREATED, Json(info)))
}

/// Revokes a token at once.
#[utoipa::path(delete, path = "/api/v1/tokens/{token}", tag = "session", params(("token" = String, Path)), security(("session" = []), ("bearer" = [])),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn revoke_token(State(platform): S, caller: Caller, Path(token): Path<String>) -> ApiResult<StatusCode> {
    caller.signed_in()?;
    blocking(move || access_command(&platform, &caller, A::RevokeToken { token })).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ------------------------------------------------------------------ market data

#[derive(Serialize, ToSchema)]
pub struct MarketInfo {
    pub code: String,
    pub name: String,
    pub level: String,
    pub allowance_code: String,
    pub instruments: Vec<String>,
    /// The latest closing price of the market's newest listed instrument.
    pub last_close_fen: Option<i64>,
}

/// The markets: the national market and the pilots.
#[utoipa::path(get, path = "/api/v1/markets", tag = "market data", responses((status = 200, body = Vec<MarketInfo>)))]
async fn markets(State(platform): S, caller: Caller) -> ApiResult<Json<Vec<MarketInfo>>> {
    caller.may(&Action::ReadMarketData)?;
    let view = platform.market.read().expect("market view").clone();
    let registry = platform.registry.lock().expect("registry lock");
    let list = registry
        .registry()
        .markets()
        .iter()
        .map(|m| {
            let instruments: Vec<&InstrumentView> = view.instruments.values().filter(|i| i.market == m.spec.code).collect();
            MarketInfo {
                code: m.spec.code.clone(),
                name: m.spec.name.clone(),
                level: format!("{:?}", m.spec.level).to_lowercase(),
                allowance_code: m.spec.allowance_code.clone(),
                instruments: instruments.iter().map(|i| i.code.clone()).collect(),
                last_close_fen: instruments.last().map(|i| i.bars.last().map_or(i.previous_close_fen, |b| b.close_fen)),
            }
        })
        .collect();
    Ok(Json(list))
}

#[derive(Serialize, ToSchema)]
pub struct InstrumentSummary {
    pub code: String,
    pub market: String,
    pub previous_close_fen: i64,
    pub best_bid_fen: Option<i64>,
    pub best_ask_fen: Option<i64>,
    pub today_volume_t: u64,
}

/// Every listed instrument with its best prices.
#[utoipa::path(get, path = "/api/v1/instruments", tag = "market data", responses((status = 200, body = Vec<InstrumentSummary>)))]
async fn instruments(State(platform): S, caller: Caller) -> ApiResult<Json<Vec<InstrumentSummary>>> {
    caller.may(&Action::ReadMarketData)?;
    let view = platform.market.read().expect("market view").clone();
    Ok(Json(
        view.instruments
            .values()
            .map(|i| InstrumentSummary {
                code: i.code.clone(),
                market: i.market.clone(),
                previous_close_fen: i.previous_close_fen,
                best_bid_fen: i.best_bid.as_ref().map(|l| l.price_fen),
                best_ask_fen: i.best_ask.as_ref().map(|l| l.price_fen),
                today_volume_t: i.today.as_ref().map_or(0, |b| b.listed_volume_t + b.block_volume_t + b.other_volume_t),
            })
            .collect(),
    ))
}

fn instrument_view(view: &MarketView, code: &str) -> ApiResult<InstrumentView> {
    view.instruments.get(code).cloned().ok_or_else(|| {
        let known: Vec<&str> = view.instruments.keys().map(String::as_str).collect();
        ApiError::not_found(format!("no instrument {code} (listed: {})", known.join(", ")))
    })
}

/// One instrument: best bid and offer, five levels of depth, recent trades, today's bar and
/// the daily bars with the closing-price series.
#[utoipa::path(get, path = "/api/v1/instruments/{code}", tag = "market data", params(("code" = String, Path, example = "CEA-2024")),
    responses((status = 200, body = InstrumentView), (status = 404, body = ErrorBody)))]
async fn instrument(State(platform): S, caller: Caller, Path(code): Path<String>) -> ApiResult<Response> {
    caller.may(&Action::ReadMarketData)?;
    let view = platform.market.read().expect("market view").clone();
    // The same bytes as `Json(instrument_view(..))`, serialised once per published view.
    match view.instrument_json(&code) {
        Some(json) => Ok(([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], json).into_response()),
        None => Err(instrument_view(&view, &code).err().unwrap_or_else(|| ApiError::not_found(format!("no instrument {code}")))),
    }
}

/// The instrument's recent trades, newest first.
#[utoipa::path(get, path = "/api/v1/instruments/{code}/trades", tag = "market data", params(("code" = String, Path)),
    responses((status = 200, body = Vec<TradeView>), (status = 404, body = ErrorBody)))]
async fn trades(State(platform): S, caller: Caller, Path(code): Path<String>) -> ApiResult<Json<Vec<TradeView>>> {
    caller.may(&Action::ReadMarketData)?;
    let view = platform.market.read().expect("market view").clone();
    Ok(Json(instrument_view(&view, &code)?.recent_trades))
}

// ------------------------------------------------------------------ registry

#[derive(Serialize, ToSchema)]
pub struct AccountInfo {
    pub number: String,
    pub market: String,
    pub kind: String,
    pub holder: String,
    pub holder_type: String,
    pub status: String,
    pub representatives: Vec<String>,
    pub units_held_t: u64,
}

#[derive(Deserialize, IntoParams)]
pub struct AccountsQuery {
    /// Only this market's accounts (needs the market's authority, or registry-wide reading).
    pub market: Option<String>,
}

/// The market's account reference the access policy needs, from the registry (never from the
/// client, or market scoping would mean nothing).
pub(crate) fn account_ref(platform: &Platform, number: &str) -> ApiResult<AccountRef> {
    let ledger = platform.registry.lock().expect("registry lock");
    let r = ledger.registry();
    let idx = r.find_account(number).ok_or_else(|| ApiError::not_found(format!("no account {number}")))?;
    Ok(AccountRef::new(number, &r.market(r.account(idx).market).spec.code))
}

pub(crate) fn account_info(r: &ets_registry::Registry, a: &ets_registry::Account) -> AccountInfo {
    AccountInfo {
        number: a.number.clone(),
        market: r.market(a.market).spec.code.clone(),
        kind: a.kind.name().into(),
        holder: a.holder.clone(),
        holder_type: a.holder_type.name().into(),
        status: a.status.name().into(),
        representatives: a.representatives.clone(),
        units_held_t: a.units_held,
    }
}

/// Accounts, of one market or all.
#[utoipa::path(get, path = "/api/v1/accounts", tag = "registry", params(AccountsQuery), security(("session" = []), ("bearer" = [])),
    responses((status = 200, body = Vec<AccountInfo>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn accounts(State(platform): S, caller: Caller, Query(q): Query<AccountsQuery>) -> ApiResult<Json<Vec<AccountInfo>>> {
    match &q.market {
        Some(market) => caller.may(&Action::ReadAccounts { market: market.clone() })?,
        None => caller.may(&Action::ReadRegistry)?,
    }
    let ledger = platform.registry.lock().expect("registry lock");
    let r = ledger.registry();
    if let Some(market) = &q.market {
        if r.find_market(market).is_none() {
            return Err(ApiError::not_found(format!("no market {market}")));
        }
    }
    let list = r
        .accounts()
        .iter()
        .filter(|a| q.market.as_ref().is_none_or(|m| r.market(a.market).spec.code == *m))
        .map(|a| account_info(r, a))
        .collect();
    Ok(Json(list))
}

#[derive(Serialize, ToSchema)]
pub struct HoldingInfo {
    pub unit: String,
    pub total_t: u64,
    pub free_t: u64,
    /// In pending transfers (exchange settlement, pledges, approvals) or frozen: owned, not movable.
    pub encumbered_t: u64,
    /// The free units' serial blocks, `first-last`.
    pub blocks: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AccountDetail {
    pub account: AccountInfo,
    pub holdings: Vec<HoldingInfo>,
}

/// An account and its holdings by unit type and vintage, with serial blocks.
#[utoipa::path(get, path = "/api/v1/accounts/{number}", tag = "registry", params(("number" = String, Path, example = "CN-100001")),
    security(("session" = []), ("bearer" = [])),
    responses((status = 200, body = AccountDetail), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn account(State(platform): S, caller: Caller, Path(number): Path<String>) -> ApiResult<Json<AccountDetail>> {
    Ok(Json(account_detail(&platform, &caller, &number)?))
}

/// An account and its holdings, if the caller may read them.
pub(crate) fn account_detail(platform: &Platform, caller: &Caller, number: &str) -> ApiResult<AccountDetail> {
    let account = account_ref(platform, number).map_err(|e| unless_may_know(caller, e, false))?;
    caller.may(&Action::ReadHoldings { account })?;
    let ledger = platform.registry.lock().expect("registry lock");
    let r = ledger.registry();
    let idx = r.find_account(number).ok_or_else(|| ApiError::not_found(format!("no account {number}")))?;
    let holdings = r
        .holdings_of(idx)
        .into_iter()
        .map(|(unit, h)| HoldingInfo {
            unit: r.unit_name(unit),
            total_t: h.total(),
            free_t: h.free_total(),
            encumbered_t: h.encumbered_total,
            blocks: h.free_blocks().map(|b| b.to_string()).collect(),
        })
        .collect();
    Ok(AccountDetail { account: account_info(r, r.account(idx)), holdings })
}

#[derive(Serialize, ToSchema)]
pub struct TransactionInfo {
    pub tx: u64,
    pub at_ms: i64,
    pub kind: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub unit: String,
    pub quantity_t: u64,
}

/// The account's transaction history, newest first.
#[utoipa::path(get, path = "/api/v1/accounts/{number}/transactions", tag = "registry", params(("number" = String, Path)),
    security(("session" = []), ("bearer" = [])),
    responses((status = 200, body = Vec<TransactionInfo>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn account_transactions(State(platform): S, caller: Caller, Path(number): Path<String>) -> ApiResult<Json<Vec<TransactionInfo>>> {
    let account = account_ref(&platform, &number).map_err(|e| unless_may_know(&caller, e, false))?;
    caller.may(&Action::ReadHoldings { account })?;
    Ok(Json(blocking(move || transactions_of(&platform, &number)).await?))
}

/// The account's transaction history, newest first (the caller's right to read it checked
/// before).
pub(crate) fn transactions_of(platform: &Platform, number: &str) -> ApiResult<Vec<TransactionInfo>> {
    let rows = {
        let mut ledger = platform.registry.lock().expect("registry lock");
        ledger.flush_history()?;
        ledger.transactions(number, None)?
    };
    let mut list: Vec<TransactionInfo> = rows
        .into_iter()
        .map(|t| TransactionInfo {
            tx: t.tx,
            at_ms: t.at.0,
            kind: t.kind,
            from: t.from_account,
            to: t.to_account,
            unit: t.unit,
            quantity_t: t.quantity,
        })
        .collect();
    list.sort_by_key(|t| std::cmp::Reverse(t.tx));
    Ok(list)
}

// ------------------------------------------------------------------ four-eyes transfers

#[derive(Deserialize, ToSchema)]
pub struct TransferRequest {
    pub from: String,
    pub to: String,
    /// A unit as the registry names it, e.g. `CEA-2024` or `CCER`.
    pub unit: String,
    pub quantity_t: u64,
}

#[derive(Serialize, ToSchema)]
pub struct TransferInfo {
    pub id: String,
    pub from: String,
    pub to: String,
    pub unit: String,
    pub quantity_t: u64,
    pub initiator: String,
    pub proposed_at_ms: i64,
    /// awaiting-approval, approved, released, rejected, cancelled, terminated.
    pub status: String,
    pub approver: Option<String>,
    /// When an approved transfer executes (trusted: at once in opening hours; otherwise the
    /// delay of the next working days).
    pub release_at_ms: Option<i64>,
    pub to_trusted: Option<bool>,
    pub detail: Option<String>,
}

fn transfer_info(p: &ets_access::TransferProposal) -> TransferInfo {
    let mut info = TransferInfo {
        id: p.id.clone(),
        from: p.from.number.clone(),
        to: p.to.number.clone(),
        unit: p.unit.to_string(),
        quantity_t: p.quantity.0,
        initiator: p.initiator.clone(),
        proposed_at_ms: p.proposed_at.0,
        status: String::new(),
        approver: None,
        release_at_ms: None,
        to_trusted: None,
        detail: None,
    };
    info.status = match &p.status {
        TransferStatus::AwaitingApproval => "awaiting-approval".into(),
        TransferStatus::Approved { approver, trusted, release_at } => {
            info.approver = Some(approver.clone());
            info.to_trusted = Some(*trusted);
            info.release_at_ms = Some(release_at.0);
            "approved".into()
        }
        TransferStatus::Released { at } => {
            info.release_at_ms = Some(at.0);
            "released".into()
        }
        TransferStatus::Rejected { by } => {
            info.detail = Some(format!("rejected by {by}"));
            "rejected".into()
        }
        TransferStatus::Cancelled { by } => {
            info.detail = Some(format!("cancelled by {by}"));
            "cancelled".into()
        }
        TransferStatus::Terminated { reason } => {
            info.detail = Some(reason.clone());
            "terminated".into()
        }
    };
    info
}

fn transfer_of(platform: &Platform, id: &str) -> ApiResult<TransferInfo> {
    let access = platform.access.lock().expect("access lock");
    access.access().controls().transfer(id).map(transfer_info).ok_or_else(|| ApiError::not_found(format!("no transfer proposal {id}")))
}

/// Transfer proposals the caller may see (registry-wide readers: all).
#[utoipa::path(get, path = "/api/v1/transfers", tag = "controls", security(("session" = []), ("bearer" = [])),
    responses((status = 200, body = Vec<TransferInfo>), (status = 401, body = ErrorBody)))]
async fn list_transfers(State(platform): S, caller: Caller) -> ApiResult<Json<Vec<TransferInfo>>> {
    Ok(Json(visible_transfers(&platform, &caller)?))
}

/// The transfer proposals the caller may see: registry-wide readers all, others those from
/// accounts whose holdings they may read.
pub(crate) fn visible_transfers(platform: &Platform, caller: &Caller) -> ApiResult<Vec<TransferInfo>> {
    caller.signed_in()?;
    let access = platform.access.lock().expect("access lock");
    let everything = ets_access::allows(caller.roles(), &Action::ReadRegistry);
    Ok(access
        .access()
        .controls()
        .transfers()
        .filter(|p| everything || ets_access::allows(caller.roles(), &Action::ReadHoldings { account: p.from.clone() }))
        .map(transfer_info)
        .collect())
}

/// Proposes a transfer (a representative of the source account). It executes only after a
/// second representative approves, and then only as the trusted-list and delay rules allow.
#[utoipa::path(post, path = "/api/v1/transfers", tag = "controls", request_body = TransferRequest, security(("session" = []), ("bearer" = [])),
    responses((status = 201, body = TransferInfo), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn propose_transfer(
    State(platform): S,
    caller: Caller,
    Json(body): Json<TransferRequest>,
) -> ApiResult<(StatusCode, Json<TransferInfo>)> {
    Ok((StatusCode::CREATED, Json(blocking(move || propose(&platform, &caller, body)).await?)))
}

/// Proposes a transfer for the caller and journals it; refuses at once what the source does
/// not hold free.
pub(crate) fn propose(platform: &Platform, caller: &Caller, body: TransferRequest) -> ApiResult<TransferInfo> {
    caller.signed_in()?;
    let from = account_ref(platform, &body.from).map_err(|e| unless_may_know(caller, e, false))?;
    caller.may(&Action::ProposeTransfer { account: from.clone() })?;
    let to = account_ref(platform, &body.to)?;
    let unit = ets_registry::UnitRef::parse(&body.unit).map_err(ApiError::invalid)?;
    {
        // A clear refusal now rather than a failed release later.
        let ledger = platform.registry.lock().expect("registry lock");
        let r = ledger.registry();
        let u = r.unit_named(&unit).map_err(ApiError::from)?;
        let free = r.find_account(&from.number).and_then(|a| r.holding(a, u)).map_or(0, |h| h.free_total());
        if body.quantity_t > free {
            return Err(ApiError::refused(format!(
                "account {} holds {free} t of {} free to transfer; {} t proposed",
                from.number, body.unit, body.quantity_t
            )));
        }
    }
    let proposal = platform.command_id("t");
    let initiator = caller.signed_in()?.user.clone();
    // Units first, then the proposal: a journaled proposal always has its units set aside.
    platform.hold_for_proposal(&proposal, &initiator, &from.number, &to.number, &unit, Tonnes(body.quantity_t))?;
    let command = A::ProposeTransfer { proposal: proposal.clone(), from, to, unit, quantity: Tonnes(body.quantity_t) };
    if let Err(refused) = access_command(platform, caller, command) {
        platform.drop_hold(&proposal, &initiator)?;
        return Err(refused);
    }
    transfer_of(platform, &proposal)
}

/// What a representative decides about a transfer proposal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    Approve,
    Reject,
    Cancel,
}

/// Approves, rejects or cancels a proposal for the caller, and carries into the registry what
/// the decision settled: an approval that releases at once (trusted, registry open) posts the
/// proposal's hold before the answer (and anything else due is released too); a rejection or
/// cancellation voids it.
pub(crate) fn decide(platform: &Platform, caller: &Caller, id: &str, decision: Decision) -> ApiResult<TransferInfo> {
    caller.signed_in()?;
    let proposal = id.to_string();
    let command = match decision {
        Decision::Approve => A::ApproveTransfer { proposal },
        Decision::Reject => A::RejectTransfer { proposal },
        Decision::Cancel => A::CancelTransfer { proposal },
    };
    let record = access_command(platform, caller, command)?;
    platform.carry_out_releases(&record)?;
    if decision == Decision::Approve {
        platform.tick()?;
    }
    transfer_of(platform, id)
}

/// Approves a proposal (a different representative of the source account, or its approving
/// representative). A transfer to a trusted account in opening hours executes at once.
#[utoipa::path(post, path = "/api/v1/transfers/{id}/approve", tag = "controls", params(("id" = String, Path)), security(("session" = []), ("bearer" = [])),
    responses((status = 200, body = TransferInfo), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn approve_transfer(State(platform): S, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<TransferInfo>> {
    Ok(Json(blocking(move || decide(&platform, &caller, &id, Decision::Approve)).await?))
}

/// Rejects a proposal (another representative); it never executes.
#[utoipa::path(post, path = "/api/v1/transfers/{id}/reject", tag = "controls", params(("id" = String, Path)), security(("session" = []), ("bearer" = [])),
    responses((status = 200, body = TransferInfo), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn reject_transfer(State(platform): S, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<TransferInfo>> {
    Ok(Json(blocking(move || decide(&platform, &caller, &id, Decision::Reject)).await?))
}

/// Withdraws a proposal before it executes.
#[utoipa::path(post, path = "/api/v1/transfers/{id}/cancel", tag = "controls", params(("id" = String, Path)), security(("session" = []), ("bearer" = [])),
    responses((status = 200, body = TransferInfo), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn cancel_transfer(State(platform): S, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<TransferInfo>> {
    Ok(Json(blocking(move || decide(&platform, &caller, &id, Decision::Cancel)).await?))
}

// ------------------------------------------------------------------ trusted account lists

#[derive(Serialize, ToSchema)]
pub struct TrustedEntryInfo {
    pub account: String,
    pub effective_at_ms: i64,
    /// Whether the entry is in effect now.
    pub effective: bool,
}

#[derive(Serialize, ToSchema)]
pub struct TrustedProposalInfo {
    pub id: String,
    pub account: String,
    pub trusted: String,
    pub status: String,
    pub effective_at_ms: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct TrustedList {
    pub account: String,
    pub entries: Vec<TrustedEntryInfo>,
    pub proposals: Vec<TrustedProposalInfo>,
}

#[derive(Deserialize, ToSchema)]
pub struct TrustedRequest {
    pub trusted: String,
}

fn trusted_list_of(platform: &Platform, number: &str) -> TrustedList {
    let now = platform.now();
    let access = platform.access.lock().expect("access lock");
    let controls = access.access().controls();
    let entries = controls
        .trusted_list(number)
        .into_iter()
        .map(|e| TrustedEntryInfo {
            account: e.account.number.clone(),
            effective_at_ms: e.effective_at.0,
            effective: e.effective_at <= now,
        })
        .collect();
    let proposals = controls
        .trusted_proposals()
        .filter(|p| p.account.number == number)
        .map(|p| {
            let (status, effective_at_ms) = match &p.status {
                TrustedStatus::AwaitingApproval => ("awaiting-approval".to_string(), None),
                TrustedStatus::Approved { effective_at, .. } => ("approved".to_string(), Some(effective_at.0)),
                TrustedStatus::Rejected { .. } => ("rejected".to_string(), None),
                TrustedStatus::Cancelled { .. } => ("cancelled".to_string(), None),
            };
            TrustedProposalInfo {
                id: p.id.clone(),
                account: p.account.number.clone(),
                trusted: p.trusted.number.clone(),
                status,
                effective_at_ms,
            }
        })
        .collect();
    TrustedList { account: number.to_string(), entries, proposals }
}

/// The account's trusted list and the proposals to add to it.
#[utoipa::path(get, path = "/api/v1/accounts/{number}/trusted", tag = "controls", params(("number" = String, Path)), security(("session" = []), ("bearer" = [])),
    responses((status = 200, body = TrustedList), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn trusted_list(State(platform): S, caller: Caller, Path(number): Path<String>) -> ApiResult<Json<TrustedList>> {
    Ok(Json(trusted_list_for(&platform, &caller, &number)?))
}

/// The account's trusted list, if the caller may read the account's holdings.
pub(crate) fn trusted_list_for(platform: &Platform, caller: &Caller, number: &str) -> ApiResult<TrustedList> {
    let account = account_ref(platform, number).map_err(|e| unless_may_know(caller, e, false))?;
    caller.may(&Action::ReadHoldings { account })?;
    Ok(trusted_list_of(platform, number))
}

/// Proposes adding an account to the trusted list. After a second representative approves, it
/// takes effect after the configured number of working days.
#[utoipa::path(post, path = "/api/v1/accounts/{number}/trusted", tag = "controls", params(("number" = String, Path)), request_body = TrustedRequest,
    security(("session" = []), ("bearer" = [])),
    responses((status = 201, body = TrustedList), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn propose_trusted(
    State(platform): S,
    caller: Caller,
    Path(number): Path<String>,
    Json(body): Json<TrustedRequest>,
) -> ApiResult<(StatusCode, Json<TrustedList>)> {
    let p = platform.clone();
    let list = blocking(move || propose_trusted_for(&p, &caller, &number, &body.trusted)).await?;
    Ok((StatusCode::CREATED, Json(list)))
}

/// Proposes `trusted` for `number`'s trusted list as `caller`; the list after it.
pub(crate) fn propose_trusted_for(platform: &Platform, caller: &Caller, number: &str, trusted: &str) -> ApiResult<TrustedList> {
    caller.signed_in()?;
    let account = account_ref(platform, number).map_err(|e| unless_may_know(caller, e, false))?;
    caller.may(&Action::ManageTrustedList { account: account.clone() })?;
    let trusted = account_ref(platform, trusted)?;
    let proposal = platform.command_id("tal");
    access_command(platform, caller, A::ProposeTrusted { proposal, account, trusted })?;
    Ok(trusted_list_of(platform, number))
}

/// Approves a trusted-list addition (a second representative).
#[utoipa::path(post, path = "/api/v1/trusted/{id}/approve", tag = "controls", params(("id" = String, Path)), security(("session" = []), ("bearer" = [])),
    responses((status = 200, body = TrustedList), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn approve_trusted(State(platform): S, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<TrustedList>> {
    blocking(move || approve_trusted_for(&platform, &caller, &id)).await.map(Json)
}

/// Approves trusted-list proposal `id` as `caller`; the account's list after it.
pub(crate) fn approve_trusted_for(platform: &Platform, caller: &Caller, id: &str) -> ApiResult<TrustedList> {
    caller.signed_in()?;
    let number = {
        let access = platform.access.lock().expect("access lock");
        access
            .access()
            .controls()
            .trusted_proposal(id)
            .map(|p| p.account.number.clone())
            .ok_or_else(|| ApiError::not_found(format!("no trusted-list proposal {id}")))?
    };
    access_command(platform, caller, A::ApproveTrusted { proposal: id.to_string() })?;
    Ok(trusted_list_of(platform, &number))
}

/// Removes an account from the trusted list, at once.
#[utoipa::path(delete, path = "/api/v1/accounts/{number}/trusted/{trusted}", tag = "controls", params(("number" = String, Path), ("trusted" = String, Path)),
    security(("session" = []), ("bearer" = [])),
    responses((status = 200, body = TrustedList), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn remove_trusted(
    State(platform): S,
    caller: Caller,
    Path((number, trusted)): Path<(String, String)>,
) -> ApiResult<Json<TrustedList>> {
    blocking(move || remove_trusted_for(&platform, &caller, &number, &trusted)).await.map(Json)
}

/// Removes `trusted` from `number`'s list as `caller` (transfers it held released at once are
/// carried out); the list after it.
pub(crate) fn remove_trusted_for(platform: &Platform, caller: &Caller, number: &str, trusted: &str) -> ApiResult<TrustedList> {
    caller.signed_in()?;
    let account = account_ref(platform, number).map_err(|e| unless_may_know(caller, e, false))?;
    let record = access_command(platform, caller, A::RemoveTrusted { account, trusted: trusted.to_string() })?;
    platform.carry_out_releases(&record)?;
    Ok(trusted_list_of(platform, number))
}

// ------------------------------------------------------------------ orders

#[derive(Deserialize, ToSchema)]
pub struct OrderRequest {
    pub instrument: String,
    /// `buy` or `sell`.
    pub side: String,
    /// Limit price in fen; absent for a market order (IOC or FOK only).
    pub price_fen: Option<i64>,
    pub qty_t: u64,
    /// `gtc` (default), `ioc` or `fok`.
    pub tif: Option<String>,
    /// Which member to act for, when the credential carries several.
    pub member: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct OrderResult {
    pub order: u64,
    pub member: String,
    pub trades: Vec<TradeView>,
    /// What rests in the book after the order (0 if filled or cancelled).
    pub resting_t: u64,
    /// What was cancelled (IOC remainder, FOK that could not fill).
    pub cancelled_t: u64,
}

/// A lookup's "not found" is told only to callers who may know what exists: registry
/// administrators, auditors, market authorities (and, for MRV, verifiers). Anyone else gets the
/// 403 it would get if the thing existed, so the API is no oracle of which accounts, freezes,
/// reports or entities exist.
pub(crate) fn unless_may_know(caller: &Caller, error: ApiError, verifiers_too: bool) -> ApiError {
    if error.status != StatusCode::NOT_FOUND {
        return error;
    }
    if caller.principal.is_none() {
        return ApiError::unauthenticated("this needs a session or an API token");
    }
    let may_know = caller.roles().iter().any(|r| {
        matches!(r, Role::RegistryAdmin | Role::Auditor | Role::MarketAuthority { .. }) || (verifiers_too && *r == Role::Verifier)
    });
    if may_know {
        error
    } else {
        ApiError::forbidden(format!("{}'s roles do not allow this", caller.user().unwrap_or("the public")))
    }
}

pub(crate) fn member_of(caller: &Caller, wanted: Option<&str>) -> ApiResult<String> {
    caller.signed_in()?;
    let members: Vec<&str> = caller
        .roles()
        .iter()
        .filter_map(|r| match r {
            Role::ExchangeMember { member } => Some(member.as_str()),
            _ => None,
        })
        .collect();
    match (wanted, members.as_slice()) {
        (Some(m), _) => Ok(m.to_string()),
        (None, [one]) => Ok(one.to_string()),
        (None, []) => Err(ApiError::forbidden("only exchange members trade: this credential carries no exchange-member role")),
        (None, _) => Err(ApiError::invalid("this credential acts for several members: name one in `member`")),
    }
}

pub(crate) async fn submit_exchange(platform: Arc<Platform>, envelope: XEnvelope) -> ApiResult<ets_exchange::venue::Outcome> {
    let Some(exchange) = platform.exchange.as_ref() else {
        return Err(ApiError::unavailable("no exchange is set up in this database"));
    };
    // The answer comes back on a one-shot channel the storage thread completes, so a request
    // waits without holding a thread; only a full queue (back-pressure) waits on the blocking pool.
    let (tx, rx) = tokio::sync::oneshot::channel();
    let reply: ets_store::ExchangeReply = Box::new(move |answers| {
        let _ = tx.send(answers);
    });
    if let Err((envelopes, reply)) = exchange.try_submit_then(vec![envelope], reply) {
        let p = platform.clone();
        blocking(move || {
            p.exchange.as_ref().expect("checked above").submit_then(envelopes, reply);
            Ok(())
        })
        .await?;
    }
    let answer = rx.await.map_err(|_| ApiError::internal("the exchange writer stopped before answering"))?;
    match answer.into_iter().next() {
        Some(Ok(ets_store::ExchangeReceipt::Accepted(outcome))) => Ok(outcome),
        Some(Ok(ets_store::ExchangeReceipt::Repeated)) => Err(ApiError::conflict("this command was already carried out")),
        Some(Err(ets_store::ExchangeSubmitError::Rejected(r))) => Err(r.into()),
        Some(Err(ets_store::ExchangeSubmitError::Store(e))) => Err(e.into()),
        None => Err(ApiError::internal("the exchange answered nothing")),
    }
}

/// Places an order for the caller's exchange member. Units and cash are reserved at entry;
/// trades settle delivery versus payment into the registry.
#[utoipa::path(post, path = "/api/v1/orders", tag = "exchange", request_body = OrderRequest, security(("session" = []), ("bearer" = [])),
    responses((status = 201, body = OrderResult), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn place_order(State(platform): S, caller: Caller, Json(body): Json<OrderRequest>) -> ApiResult<(StatusCode, Json<OrderResult>)> {
    Ok((StatusCode::CREATED, Json(order(platform, &caller, body).await?)))
}

/// Places an order for the caller's exchange member through the exchange's writer.
pub(crate) async fn order(platform: Arc<Platform>, caller: &Caller, body: OrderRequest) -> ApiResult<OrderResult> {
    let member = member_of(caller, body.member.as_deref())?;
    caller.may(&Action::PlaceOrder { member: member.clone() })?;
    let side = match body.side.as_str() {
        "buy" => Side::Buy,
        "sell" => Side::Sell,
        other => return Err(ApiError::invalid(format!("side must be buy or sell, not {other}"))),
    };
    let tif = match body.tif.as_deref().unwrap_or("gtc") {
        "gtc" => Tif::Gtc,
        "ioc" => Tif::Ioc,
        "fok" => Tif::Fok,
        other => return Err(ApiError::invalid(format!("tif must be gtc, ioc or fok, not {other}"))),
    };
    crate::api_exchange::require_account(&platform, &member, &body.instrument)?;
    let order = platform.next_order_id();
    let at_ms = platform.exchange_now();
    let command =
        X::Place { order, member: member.clone(), instrument: body.instrument, side, price: body.price_fen, qty: body.qty_t, tif };
    let outcome = submit_exchange(platform, XEnvelope { id: format!("o{order}"), actor: member.clone(), at_ms, command }).await?;
    let mut result = OrderResult { order, member, trades: Vec::new(), resting_t: 0, cancelled_t: 0 };
    for event in &outcome.events {
        match event {
            XEvent::Traded(t) => result.trades.push(crate::view::trade_view(t)),
            XEvent::OrderRested { order: o, qty } if *o == order => result.resting_t = *qty,
            XEvent::OrderDone { order: o, cancelled } if *o == order => result.cancelled_t = *cancelled,
            _ => {}
        }
    }
    Ok(result)
}

#[derive(Deserialize, IntoParams)]
pub struct CancelQuery {
    /// Which member to act for, when the credential carries several.
    pub member: Option<String>,
}

/// Cancels the rest of an open order; its reservation is released.
#[utoipa::path(delete, path = "/api/v1/orders/{order}", tag = "exchange", params(("order" = u64, Path), CancelQuery), security(("session" = []), ("bearer" = [])),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn cancel_order(State(platform): S, caller: Caller, Path(order): Path<u64>, Query(q): Query<CancelQuery>) -> ApiResult<StatusCode> {
    let member = member_of(&caller, q.member.as_deref())?;
    caller.may(&Action::PlaceOrder { member: member.clone() })?;
    let at_ms = platform.exchange_now();
    let id = platform.command_id("c");
    submit_exchange(platform, XEnvelope { id, actor: member, at_ms, command: X::Cancel { order } }).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
pub struct LodgeRequest {
    pub instrument: String,
    pub qty_t: u64,
    /// Which member to act for, when the credential carries several.
    pub member: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Lodgement {
    pub member: String,
    pub instrument: String,
    pub lodged_t: u64,
    /// The registry pending transfer that holds the units for the exchange (still the member's).
    pub pending: String,
}

/// Lodges units with the exchange so the member can sell them: a settlement pending from the
/// member's registry account to the clearing account (still the member's, not movable), then
/// the exchange credits them. Refused by either side, nothing stays changed.
#[utoipa::path(post, path = "/api/v1/lodgements", tag = "exchange", request_body = LodgeRequest, security(("session" = []), ("bearer" = [])),
    responses((status = 201, body = Lodgement), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn lodge(State(platform): S, caller: Caller, Json(body): Json<LodgeRequest>) -> ApiResult<(StatusCode, Json<Lodgement>)> {
    let member = member_of(&caller, body.member.as_deref())?;
    caller.may(&Action::PlaceOrder { member: member.clone() })?;
    let operator = platform.operator.clone().ok_or_else(|| ApiError::unavailable("no exchange is set up in this database"))?;
    let d = platform.directory();
    let (market, unit) =
        d.instruments.get(&body.instrument).cloned().ok_or_else(|| ApiError::not_found(format!("no instrument {}", body.instrument)))?;
    let account = d
        .accounts
        .get(&(member.clone(), market.clone()))
        .cloned()
        .ok_or_else(|| ApiError::refused(format!("member {member} has no registry account in market {market} at the exchange")))?;
    let clearing =
        d.clearing.get(&market).cloned().ok_or_else(|| ApiError::unavailable(format!("no clearing account for market {market}")))?;
    if body.qty_t == 0 {
        return Err(ApiError::invalid("qty_t must be at least 1"));
    }
    let pending = platform.command_id("lodge");
    let user = caller.signed_in()?.user.clone();
    let create = ets_registry::Envelope {
        id: pending.clone(),
        actor: user.clone(),
        command: ets_registry::Command::CreatePending {
            pending: pending.clone(),
            from: account,
            to: clearing,
            unit,
            quantity: Tonnes(body.qty_t),
            purpose: ets_registry::PendingPurpose::Settlement,
        },
    };
    let p = platform.clone();
    blocking(move || match p.registry.lock().expect("registry lock").submit(p.now(), &create) {
        Ok(_) => Ok(()),
        Err(ets_store::SubmitError::Rejected(r)) => Err(r.into()),
        Err(ets_store::SubmitError::Store(e)) => Err(e.into()),
    })
    .await?;
    let at_ms = platform.exchange_now();
    let command = X::Lodge { member: member.clone(), instrument: body.instrument.clone(), qty: body.qty_t, pending: pending.clone() };
    if let Err(refused) = submit_exchange(platform.clone(), XEnvelope { id: format!("x-{pending}"), actor: operator, at_ms, command }).await
    {
        let void = ets_registry::Envelope {
            id: format!("void-{pending}"),
            actor: user,
            command: ets_registry::Command::VoidPending { pending: pending.clone() },
        };
        let p = platform.clone();
        blocking(move || {
            p.registry.lock().expect("registry lock").submit(p.now(), &void).map(|_| ()).map_err(|e| ApiError::internal(format!("{e:?}")))
        })
        .await?;
        return Err(refused);
    }
    Ok((StatusCode::CREATED, Json(Lodgement { member, instrument: body.instrument, lodged_t: body.qty_t, pending })))
}

// ------------------------------------------------------------------ users and audit

#[derive(Serialize, ToSchema)]
pub struct UserInfo {
    pub user: String,
    pub roles: Vec<String>,
    pub disabled: bool,
}

#[derive(Deserialize, ToSchema)]
pub struct NewUser {
    pub user: String,
    pub password: String,
    pub roles: Vec<String>,
}

/// Users and their roles (administrators and auditors).
#[utoipa::path(get, path = "/api/v1/users", tag = "administration", security(("session" = []), ("bearer" = [])),
    responses((status = 200, body = Vec<UserInfo>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_users(State(platform): S, caller: Caller) -> ApiResult<Json<Vec<UserInfo>>> {
    if caller.may(&Action::ManageUsers).is_err() {
        caller.may(&Action::ReadAudit)?;
    }
    let access = platform.access.lock().expect("access lock");
    let list = access
        .access()
        .identity()
        .users()
        .map(|u| UserInfo { user: u.name.clone(), roles: u.roles.iter().map(role_text).collect(), disabled: u.disabled })
        .collect();
    Ok(Json(list))
}

/// Creates a user (registry administrators).
#[utoipa::path(post, path = "/api/v1/users", tag = "administration", request_body = NewUser, security(("session" = []), ("bearer" = [])),
    responses((status = 201, body = UserInfo), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_user(State(platform): S, caller: Caller, Json(body): Json<NewUser>) -> ApiResult<(StatusCode, Json<UserInfo>)> {
    caller.may(&Action::ManageUsers)?;
    let roles = body.roles.iter().map(|t| parse_role(t)).collect::<ApiResult<Vec<Role>>>()?;
    let info = UserInfo { user: body.user.clone(), roles: roles.iter().map(role_text).collect(), disabled: false };
    let command = A::CreateUser { user: body.user, roles, password: Secret::new(body.password), salt: salt() };
    blocking(move || access_command(&platform, &caller, command)).await?;
    Ok((StatusCode::CREATED, Json(info)))
}

#[derive(Deserialize, IntoParams)]
pub struct AuditQuery {
    /// Records after this sequence number (default 0).
    pub after: Option<u64>,
    /// At most this many (default 100, at most 1,000).
    pub limit: Option<usize>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditRecord {
    pub seq: u64,
    pub at_ms: i64,
    pub origin: String,
    pub user: Option<String>,
    pub command: String,
    /// The events, as the journal holds them.
    pub events: Vec<String>,
}

/// The access journal: every sign-in, token, proposal, approval and release, with actor,
/// time and origin.
#[utoipa::path(get, path = "/api/v1/audit", tag = "administration", params(AuditQuery), security(("session" = []), ("bearer" = [])),
    responses((status = 200, body = Vec<AuditRecord>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn audit(State(platform): S, caller: Caller, Query(q): Query<AuditQuery>) -> ApiResult<Json<Vec<AuditRecord>>> {
    caller.may(&Action::ReadAudit)?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1_000).contains(&limit) {
        return Err(ApiError::invalid("limit must be 1..=1000"));
    }
    let after = q.after.unwrap_or(0);
    let records = blocking(move || Ok(platform.access.lock().expect("access lock").records(after, limit)?)).await?;
    Ok(Json(
        records
            .into_iter()
            .map(|(seq, r)| AuditRecord {
                seq,
                at_ms: r.at.0,
                origin: r.origin,
                user: r.user,
                command: r.command,
                events: r.events.iter().map(|e| format!("{e:?}")).collect(),
            })
            .collect(),
    ))
}

// ------------------------------------------------------------------ MRV

/// Which entities' MRV data the caller may read: all (verifiers, auditors, administrators),
/// those covered by the markets it is the authority of, or none (403).
enum MrvScope {
    All,
    Markets(Vec<String>),
}

fn mrv_scope(caller: &Caller) -> ApiResult<MrvScope> {
    if ets_access::allows(caller.roles(), &Action::VerifyMrv) || ets_access::allows(caller.roles(), &Action::ReadAudit) {
        return Ok(MrvScope::All);
    }
    let markets: Vec<String> = caller
        .roles()
        .iter()
        .filter_map(|r| match r {
            Role::MarketAuthority { market } if ets_access::allows(caller.roles(), &Action::ReviewMrv { market: market.clone() }) => {
                Some(market.clone())
            }
            _ => None,
        })
        .collect();
    if markets.is_empty() {
        caller.signed_in()?;
        return Err(ApiError::forbidden("MRV data is for verifiers, market authorities, auditors and administrators"));
    }
    Ok(MrvScope::Markets(markets))
}

impl MrvScope {
    fn sees(&self, state: &ets_mrv::state::MrvState, entity: &str) -> bool {
        match self {
            MrvScope::All => true,
            MrvScope::Markets(markets) => state.entity(entity).is_some_and(|e| e.markets.iter().any(|m| markets.contains(m))),
        }
    }
}

#[derive(Deserialize, IntoParams)]
pub struct ReportsQuery {
    /// Only this reporting year.
    pub year: Option<i32>,
    /// Only reports in this state: submitted, assigned, opined, accepted, returned. The
    /// verifier's queue is `submitted` and `assigned`; the regulator's is `opined`.
    pub state: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ReportInfo {
    pub id: String,
    pub entity: String,
    pub year: i32,
    pub province: String,
    pub state: String,
    pub versions: u32,
    /// Verified emissions in t CO2e, as an exact decimal string, once accepted.
    pub verified_emissions_t: Option<String>,
    pub last_step_at_ms: i64,
}

fn report_state(state: &ets_mrv::verification::ReportState) -> &'static str {
    use ets_mrv::verification::ReportState as S;
    match state {
        S::Submitted => "submitted",
        S::Assigned => "assigned",
        S::Opined => "opined",
        S::Accepted => "accepted",
        S::Returned => "returned",
    }
}

/// Annual emission reports and where each is in verification.
#[utoipa::path(get, path = "/api/v1/mrv/reports", tag = "mrv", params(ReportsQuery), security(("session" = []), ("bearer" = [])),
    responses((status = 200, body = Vec<ReportInfo>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn mrv_reports(State(platform): S, caller: Caller, Query(q): Query<ReportsQuery>) -> ApiResult<Json<Vec<ReportInfo>>> {
    blocking(move || reports_for(&platform, &caller, &q)).await.map(Json)
}

/// The reports `caller` may see, filtered by `q`.
pub(crate) fn reports_for(platform: &Platform, caller: &Caller, q: &ReportsQuery) -> ApiResult<Vec<ReportInfo>> {
    let scope = mrv_scope(caller)?;
    const STATES: [&str; 5] = ["submitted", "assigned", "opined", "accepted", "returned"];
    if let Some(s) = &q.state {
        if !STATES.contains(&s.as_str()) {
            return Err(ApiError::invalid(format!("state must be one of {}, not {s}", STATES.join(", "))));
        }
    }
    let mrv = platform.mrv.lock().expect("mrv lock");
    let state = mrv.state();
    let list = state
        .workflow()
        .reports()
        .filter(|r| q.year.is_none_or(|y| r.year == y))
        .filter(|r| q.state.as_deref().is_none_or(|s| report_state(&r.state) == s))
        .filter(|r| scope.sees(state, &r.entity))
        .map(|r| ReportInfo {
            id: r.id.clone(),
            entity: r.entity.clone(),
            year: r.year,
            province: r.province.clone(),
            state: report_state(&r.state).into(),
            versions: r.versions.len() as u32,
            verified_emissions_t: r.verified_emissions_t.map(|d| d.to_string()),
            last_step_at_ms: r.last_step_at.0,
        })
        .collect();
    Ok(list)
}

#[derive(Deserialize, IntoParams)]
pub struct AnomaliesQuery {
    /// The reporting year whose monthly data is checked.
    pub year: i32,
}

#[derive(Serialize, ToSchema)]
pub struct AnomalyInfo {
    pub entity: String,
    pub unit: String,
    pub check: String,
    /// info, warning or critical.
    pub severity: String,
    pub month: Option<String>,
    pub source_stream: Option<String>,
    pub value: String,
    pub expected: String,
    pub reason: String,
}

/// The data-quality engine's ranked anomaly list for a year (most severe first).
#[utoipa::path(get, path = "/api/v1/mrv/anomalies", tag = "mrv", params(AnomaliesQuery), security(("session" = []), ("bearer" = [])),
    responses((status = 200, body = Vec<AnomalyInfo>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn mrv_anomalies(State(platform): S, caller: Caller, Query(q): Query<AnomaliesQuery>) -> ApiResult<Json<Vec<AnomalyInfo>>> {
    blocking(move || anomalies_for(&platform, &caller, q.year)).await.map(Json)
}

/// The year's anomalies on the entities `caller` may see, most severe first.
pub(crate) fn anomalies_for(platform: &Platform, caller: &Caller, year: i32) -> ApiResult<Vec<AnomalyInfo>> {
    let scope = mrv_scope(caller)?;
    if !(1990..=2100).contains(&year) {
        return Err(ApiError::invalid(format!("year {year} is outside 1990..=2100")));
    }
    let mrv = platform.mrv.lock().expect("mrv lock");
    let state = mrv.state();
    let anomalies = state.anomalies(year).map_err(|r| ApiError::invalid(r.message))?;
    Ok(anomalies
        .into_iter()
        .filter(|a| scope.sees(state, &a.entity))
        .map(|a| AnomalyInfo {
            entity: a.entity,
            unit: a.unit,
            check: a.check.into(),
            severity: a.severity.to_string(),
            month: a.month.map(|m| m.to_string()),
            source_stream: a.source_stream,
            value: a.value,
            expected: a.expected,
            reason: a.reason,
        })
        .collect())
}
