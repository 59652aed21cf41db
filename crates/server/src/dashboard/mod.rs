//! The dashboard: server-rendered HTML pages (maud) with SVG charts drawn by the server, no
//! JavaScript and nothing loaded from elsewhere (styles inline), so it works offline.
//!
//! Every page reads what the API reads, through the same functions (`api::account_detail`,
//! `api::visible_transfers`, `api::propose`, `api::decide`, `api::order`, ...), so a page shows
//! and does exactly what the caller's roles allow (`ets_access::allows`). Navigation lists only
//! the pages the caller may open; a page the caller may not open answers 403 with a readable
//! page, or sends the public to `/login`.
//!
//! Forms POST with the session cookie (HttpOnly, SameSite=Strict); every dashboard POST must
//! also come from a page of this server: its `Origin` (or, without one, its `Referer`) must name
//! the request's `Host`.

mod chart;
mod market;
mod registry;
mod status;

use crate::api;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::Platform;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Form;
use ets_access::{allows, AccountRef, Action, EntityRef, Role};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use serde::Deserialize;
use std::sync::Arc;

type S = State<Arc<Platform>>;

pub fn routes() -> axum::Router<Arc<Platform>> {
    axum::Router::new()
        .route("/", get(market::overview))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/exchange", get(market::exchange))
        .route("/exchange/orders", post(market::place_order))
        .route("/auctions", get(market::auctions))
        .route("/auctions/{auction}/bids", post(market::bid))
        .route("/auctions/{auction}/clear", post(market::clear))
        .route("/registry", get(registry::accounts))
        .route("/registry/accounts/{number}", get(registry::account))
        .route("/registry/accounts/{number}/trusted", post(registry::propose_trusted))
        .route("/registry/accounts/{number}/trusted/{trusted}/remove", post(registry::remove_trusted))
        .route("/registry/trusted/{id}/approve", post(registry::approve_trusted))
        .route("/transfers", get(registry::transfers).post(registry::propose))
        .route("/transfers/{id}/{decision}", post(registry::decide))
        .route("/compliance", get(status::compliance))
        .route("/mrv", get(status::mrv))
}

/// What the caller may see, worked out once per request from its roles and the registry's
/// markets and accounts (every answer from `ets_access::allows`).
pub(crate) struct Rights {
    pub markets: Vec<MarketName>,
    /// Accounts whose holdings the caller may read.
    pub accounts: Vec<AccountRef>,
    /// Accounts the caller may propose transfers from.
    pub propose_from: Vec<AccountRef>,
    /// Markets whose compliance the caller may read (all of it, or its own entities').
    pub compliance: Vec<String>,
    pub mrv: bool,
    /// Exchange members the caller trades for.
    pub members: Vec<String>,
}

#[derive(Clone, Debug)]
pub(crate) struct MarketName {
    pub code: String,
    pub name: String,
    pub national: bool,
}

/// A dashboard caller: who, and what they may see.
pub(crate) struct Viewer {
    pub caller: Caller,
    pub rights: Rights,
}

impl Rights {
    fn of(platform: &Platform, caller: &Caller) -> Rights {
        let roles = caller.roles();
        let ledger = platform.registry.lock().expect("registry lock");
        let r = ledger.registry();
        let markets: Vec<MarketName> = r
            .markets()
            .iter()
            .map(|m| MarketName {
                code: m.spec.code.clone(),
                name: m.spec.name.clone(),
                national: m.spec.level == ets_registry::MarketLevel::National,
            })
            .collect();
        let mut accounts = Vec::new();
        let mut mrv =
            allows(roles, &Action::VerifyMrv) || markets.iter().any(|m| allows(roles, &Action::ReviewMrv { market: m.code.clone() }));
        if caller.principal.is_some() {
            for a in r.accounts() {
                let account = AccountRef::new(&a.number, &r.market(a.market).spec.code);
                if allows(roles, &Action::ReadHoldings { account: account.clone() }) {
                    mrv =
                        mrv || allows(roles, &Action::ReadMrv { entity: EntityRef { entity: a.holder.clone(), account: account.clone() } });
                    accounts.push(account);
                }
            }
        }
        drop(ledger);
        let propose_from = accounts.iter().filter(|a| allows(roles, &Action::ProposeTransfer { account: (*a).clone() })).cloned().collect();
        // A market's compliance: its authority (and registry-wide readers) see every entity, a
        // representative the entities of the accounts it may read there.
        let compliance = markets
            .iter()
            .filter(|m| allows(roles, &Action::ReadCompliance { market: m.code.clone() }) || accounts.iter().any(|a| a.market == m.code))
            .map(|m| m.code.clone())
            .collect();
        let members = roles
            .iter()
            .filter_map(|role| match role {
                Role::ExchangeMember { member } => Some(member.clone()),
                _ => None,
            })
            .collect();
        Rights { markets, accounts, propose_from, compliance, mrv, members }
    }

    pub fn market_name(&self, code: &str) -> String {
        self.markets.iter().find(|m| m.code == code).map_or_else(|| code.to_string(), |m| m.name.clone())
    }

    pub fn account(&self, number: &str) -> Option<&AccountRef> {
        self.accounts.iter().find(|a| a.number == number)
    }
}

impl FromRequestParts<Arc<Platform>> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, platform: &Arc<Platform>) -> Result<Viewer, Response> {
        match Caller::from_request_parts(parts, platform).await {
            Ok(caller) => {
                let platform = platform.clone();
                let viewer = api::blocking(move || {
                    let rights = Rights::of(&platform, &caller);
                    Ok(Viewer { caller, rights })
                })
                .await;
                viewer.map_err(|e| error_page(None, e))
            }
            // A session that no longer holds (expired, logged out): sign in again.
            Err(e) if e.status == StatusCode::UNAUTHORIZED => {
                let mut response = Redirect::to("/login").into_response();
                response.headers_mut().insert(header::SET_COOKIE, api::cleared_cookie());
                Err(response)
            }
            Err(e) => Err(error_page(None, e)),
        }
    }
}

impl Viewer {
    pub fn user(&self) -> Option<&str> {
        self.caller.user()
    }

    /// The answer when not `allowed`: the public goes to sign in, anyone else gets a 403 page.
    pub fn refusal(&self, allowed: bool, what: &str) -> Option<Response> {
        match (allowed, self.caller.principal.is_some()) {
            (true, _) => None,
            (false, false) => Some(Redirect::to("/login").into_response()),
            (false, true) => Some(error_page(
                Some(self),
                ApiError::forbidden(format!("{} may not see {what}: no role of theirs allows it", self.user().unwrap_or("this user"))),
            )),
        }
    }
}

/// The origin check every dashboard POST passes: the form must come from a page of this
/// server (its `Origin`, or without one its `Referer`, names the `Host` the request went to).
/// The refusal, if it does not.
pub(crate) fn cross_origin(headers: &HeaderMap) -> Option<Response> {
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let refuse = |why: &str| Some(error_page(None, ApiError::forbidden(format!("form refused: {why}"))));
    let Some(host) = text(header::HOST) else {
        return refuse("the request names no Host");
    };
    let from = match (text(header::ORIGIN), text(header::REFERER)) {
        (Some(origin), _) => origin.to_string(),
        (None, Some(referer)) => referer.splitn(4, '/').take(3).collect::<Vec<_>>().join("/"),
        (None, None) => return refuse("it came with neither Origin nor Referer, so it cannot be told from a cross-site request"),
    };
    if from == format!("http://{host}") || from == format!("https://{host}") {
        None
    } else {
        refuse(&format!("it came from {from}, not from this server ({host})"))
    }
}

// ------------------------------------------------------------------ layout

const STYLE: &str = r#"
*{box-sizing:border-box}
body{margin:0;font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","DejaVu Sans",sans-serif;color:#1c2a24;background:#f3f5f4;font-size:14px}
header{background:#12372a;color:#fff;display:flex;align-items:center;gap:18px;padding:0 20px;height:52px}
header .brand{font-weight:700;font-size:17px;letter-spacing:.5px;color:#fff;text-decoration:none}
header nav{display:flex;gap:4px;flex:1}
header nav a{color:#cfe3d9;text-decoration:none;padding:6px 10px;border-radius:4px}
header nav a.current,header nav a:hover{background:#1f5641;color:#fff}
header .who{font-size:12px;color:#cfe3d9;display:flex;align-items:center;gap:8px}
header .who form{margin:0}
header .who button,header .who a{background:none;border:1px solid #6fa58c;color:#fff;border-radius:4px;padding:3px 9px;cursor:pointer;font-size:12px;text-decoration:none}
main{padding:18px 22px;max-width:1280px;margin:0 auto}
h1{font-size:21px;margin:4px 0 12px}
h2{font-size:16px;margin:18px 0 8px}
h3{font-size:14px;margin:0 0 6px}
.card>h2:first-child{margin-top:0}
.split{display:grid;grid-template-columns:3fr 1fr;gap:16px;align-items:start}
@media (max-width:900px){.split{grid-template-columns:1fr}}
table.compact td,table.compact th{padding:3px 6px}
.card{background:#fff;border:1px solid #d8e0dc;border-radius:6px;padding:14px 16px;margin-bottom:14px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(310px,1fr));gap:12px}
.grid .card{margin:0;padding:10px 10px 6px}
.note{background:#fff8e1;border:1px solid #f0d98a;border-radius:6px;padding:8px 12px;margin-bottom:14px}
.ok{background:#e6f4ea;border:1px solid #9fd3ae;border-radius:6px;padding:8px 12px;margin-bottom:14px}
.refused{background:#fdecea;border:1px solid #f0a8a0;border-radius:6px;padding:8px 12px;margin-bottom:14px}
.muted{color:#5d6f66}
.badge{font-size:11px;font-weight:600;color:#1f5641;background:#e3efe9;border-radius:10px;padding:2px 8px;vertical-align:middle}
.figures{display:flex;flex-wrap:wrap;gap:18px;margin:6px 0 2px}
.figures div{min-width:90px}
.figures b{display:block;font-size:16px}
.figures>div>span{font-size:11px;color:#5d6f66;text-transform:uppercase;letter-spacing:.4px}
.up{color:#b3261e}.down{color:#1b7f3a}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #e3e9e6;vertical-align:top}
th{font-size:11px;text-transform:uppercase;letter-spacing:.4px;color:#5d6f66;font-weight:600}
td.n,th.n{text-align:right}
.bid{color:#1b7f3a}.ask{color:#b3261e}
form.inline{display:inline;margin:0}
form.stack{display:flex;flex-wrap:wrap;gap:10px;align-items:flex-end}
label{display:flex;flex-direction:column;font-size:12px;color:#5d6f66;gap:3px}
input,select{font:inherit;padding:5px 7px;border:1px solid #b9c6c0;border-radius:4px;background:#fff}
button{font:inherit;padding:5px 12px;border-radius:4px;border:1px solid #1f5641;background:#1f5641;color:#fff;cursor:pointer}
button.secondary{background:#fff;color:#1f5641}
code{background:#eef2f0;padding:1px 5px;border-radius:3px;font-size:13px}
svg.chart{width:100%;height:auto;display:block;margin-top:6px}
svg.chart text{fill:#5d6f66;font-family:inherit}
svg.chart .frame{fill:#fbfcfb;stroke:#e3e9e6}
svg.chart .grid{stroke:#e3e9e6}
svg.chart .axis{stroke:#b9c6c0}
svg.chart .price{stroke:#1f6f50;stroke-width:1.75;stroke-linejoin:round}
svg.chart .last{fill:#1f6f50}
svg.chart .vol{fill:#9db8ab}
svg.chart .empty{fill:#8a9a92}
.blocks{font-family:ui-monospace,monospace;font-size:12px}
"#;

/// The pages in the navigation, and who may open them.
fn nav_items(rights: &Rights) -> Vec<(&'static str, &'static str)> {
    let mut items = vec![("/", "Market"), ("/exchange", "Exchange"), ("/auctions", "Auctions")];
    if !rights.accounts.is_empty() {
        items.push(("/registry", "Registry"));
        items.push(("/transfers", "Transfers"));
    }
    if !rights.compliance.is_empty() {
        items.push(("/compliance", "Compliance"));
    }
    if rights.mrv {
        items.push(("/mrv", "MRV"));
    }
    items
}

/// A whole page: head, navigation for the caller, and `body`.
pub(crate) fn layout(viewer: Option<&Viewer>, current: &str, title: &str, body: Markup) -> Markup {
    let items =
        viewer.map(|v| nav_items(&v.rights)).unwrap_or_else(|| vec![("/", "Market"), ("/exchange", "Exchange"), ("/auctions", "Auctions")]);
    let user = viewer.and_then(|v| v.user());
    let roles: Vec<String> = viewer.map(|v| v.caller.roles().iter().map(api::role_text).collect()).unwrap_or_default();
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · ets" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    a.brand href="/" { "ets" }
                    nav {
                        @for (href, label) in &items {
                            a href=(href) class=[(*href == current).then_some("current")] { (label) }
                        }
                    }
                    div.who {
                        @if let Some(user) = user {
                            span title=(roles.join(", ")) { "Signed in as " b #user { (user) } }
                            form method="post" action="/logout" { button type="submit" { "Sign out" } }
                        } @else {
                            a href="/login" { "Sign in" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

pub(crate) fn html_response(status: StatusCode, page: Markup) -> Response {
    (status, [(header::CACHE_CONTROL, "no-store")], axum::response::Html(page.into_string())).into_response()
}

/// An error as a page: sign-in for the unauthenticated, otherwise the status and the message.
pub(crate) fn error_page(viewer: Option<&Viewer>, e: ApiError) -> Response {
    if e.status == StatusCode::UNAUTHORIZED && viewer.is_none_or(|v| v.caller.principal.is_none()) {
        return Redirect::to("/login").into_response();
    }
    let heading = match e.status {
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::NOT_FOUND => "Not found",
        s if s.is_server_error() => "Something went wrong",
        _ => "Refused",
    };
    let body = html! {
        h1 { (heading) }
        div.refused { (e.message) }
        p { a href="/" { "Back to the market overview" } }
    };
    html_response(e.status, layout(viewer, "", heading, body))
}

/// The outcome of a form, shown at the top of the page it returns to.
pub(crate) enum Banner {
    None,
    Done(String),
    Refused(ApiError),
}

impl Banner {
    pub fn status(&self) -> StatusCode {
        match self {
            Banner::Refused(e) => e.status,
            _ => StatusCode::OK,
        }
    }

    pub fn render(&self) -> Markup {
        html! {
            @match self {
                Banner::None => {},
                Banner::Done(text) => div.ok role="status" { (text) },
                Banner::Refused(e) => div.refused role="alert" { "Refused: " (e.message) },
            }
        }
    }
}

// ------------------------------------------------------------------ formatting

pub(crate) fn yuan(fen: i64) -> String {
    format!("¥{}", ets_core::Fen(fen))
}

pub(crate) fn tonnes(t: u64) -> String {
    ets_core::Tonnes(t).to_string()
}

/// A time as `2025-06-04 09:00 UTC`.
pub(crate) fn time(ms: i64) -> String {
    let text = ets_core::Timestamp(ms).to_string();
    format!("{} {} UTC", &text[..10], &text[11..16])
}

// ------------------------------------------------------------------ sign in and out

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    user: String,
    password: String,
}

fn login_form(message: Option<&str>, user: &str) -> Markup {
    html! {
        h1 { "Sign in" }
        @if let Some(message) = message { div.refused role="alert" { (message) } }
        div.card style="max-width:380px" {
            form.stack method="post" action="/login" style="flex-direction:column;align-items:stretch" {
                label { "User" input #user-field type="text" name="user" value=(user) autocomplete="username" required; }
                label { "Password" input #password-field type="password" name="password" autocomplete="current-password" required; }
                button #sign-in type="submit" { "Sign in" }
            }
        }
        p.muted { "The market overview, the exchange's books and auctions are public; everything else needs a role." }
    }
}

async fn login_page() -> Response {
    html_response(StatusCode::OK, layout(None, "/login", "Sign in", login_form(None, "")))
}

/// Signs in through the same command as `POST /api/v1/session` and sets the session cookie.
async fn login(State(platform): S, headers: HeaderMap, parts: PeerOrigin, Form(form): Form<LoginForm>) -> Response {
    if let Some(refused) = cross_origin(&headers) {
        return refused;
    }
    let user = form.user.clone();
    let request = api::LoginRequest { user: form.user, password: form.password };
    match api::blocking(move || api::open_session(&platform, parts.0, request)).await {
        Ok(info) => match api::session_cookie(&info.secret) {
            Ok(cookie) => {
                let mut response = Redirect::to("/").into_response();
                response.headers_mut().insert(header::SET_COOKIE, cookie);
                response
            }
            Err(e) => error_page(None, e),
        },
        Err(e) => {
            let status = e.status;
            html_response(status, layout(None, "/login", "Sign in", login_form(Some(&e.message), &user)))
        }
    }
}

async fn logout(State(platform): S, headers: HeaderMap, viewer: Viewer) -> Response {
    if let Some(refused) = cross_origin(&headers) {
        return refused;
    }
    if viewer.caller.principal.is_some() {
        let Viewer { caller, .. } = viewer;
        if let Err(e) = api::blocking(move || api::close_session(&platform, &caller)).await {
            return error_page(None, e);
        }
    }
    let mut response = Redirect::to("/").into_response();
    response.headers_mut().insert(header::SET_COOKIE, api::cleared_cookie());
    response
}

/// Where the request came from, as the access journal records it.
pub(crate) struct PeerOrigin(String);

impl<St: Send + Sync> FromRequestParts<St> for PeerOrigin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &St) -> Result<PeerOrigin, Self::Rejection> {
        Ok(PeerOrigin(crate::auth::origin(parts)))
    }
}
