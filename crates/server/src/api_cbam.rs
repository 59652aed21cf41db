//! The EU CBAM interface through the API, as `ets cbam` offers it: reference data (public), and
//! calculators over the caller's own input for any signed-in caller: an installation's specific
//! embedded emissions, the operator's communication (JSON or the Excel workbook), an importer's
//! liability for a year, the 2026–2034 scenario, the transitional QReport XML, and the carbon
//! price paid in China read from the registry (for an account the caller may read).
//!
//! Every figure comes from `ets_cbam` (exact decimals, written as strings); nothing here
//! computes. Bad input is 422 with the library's message, which names the field (a path such as
//! `processes[0].activity_level_t`); a body that does not parse is 422 from the extractor with
//! the serde path. Bodies are bounded by the server's 2 MB request limit and the library's own
//! limits (1,000 processes, 100 precursors a process); a declaration has at most
//! `DECLARATION_LINES_MAX` lines here.

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Json, Query};
use crate::Platform;
use axum::extract::{FromRequestParts, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ets_access::{AccountRef, Action};
use ets_cbam::carbon_price::{carbon_price_paid, Purchase};
use ets_cbam::communication::Communication;
use ets_cbam::liability::{declare, Declaration, LiabilityParams};
use ets_cbam::num::CertificateRounding;
use ets_cbam::scenario::{self, ScenarioActual, ScenarioInput};
use ets_cbam::see::{compute, InstallationInput, SeeParams};
use ets_cbam::{qreport, CbamError, Reference};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use utoipa::{IntoParams, ToSchema};

type S = State<Arc<Platform>>;

/// Most lines in a declaration sent to `POST /api/v1/cbam/liability`.
pub const DECLARATION_LINES_MAX: usize = 10_000;
/// Most certificate prices given with a declaration.
pub const PRICES_MAX: usize = 1_000;
/// Most purchases given to `POST /api/v1/cbam/carbon-price`.
pub const PURCHASES_MAX: usize = 10_000;

pub const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// A signed-in caller, checked before the body is read: an anonymous request is 401 whatever
/// its body, never a 422 about a body it was not entitled to send.
pub(crate) struct SignedIn(pub Caller);

impl FromRequestParts<Arc<Platform>> for SignedIn {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, platform: &Arc<Platform>) -> Result<SignedIn, ApiError> {
        let caller = Caller::from_request_parts(parts, platform).await?;
        caller.signed_in()?;
        Ok(SignedIn(caller))
    }
}

/// The built-in reference data, read once.
fn reference() -> ApiResult<&'static Reference> {
    static REFERENCE: OnceLock<Result<Reference, String>> = OnceLock::new();
    REFERENCE.get_or_init(|| Reference::builtin().map_err(|e| e.to_string())).as_ref().map_err(ApiError::internal)
}

/// Input errors (and overflow, which only huge input reaches) are 422 naming the field; a bad
/// reference data file is ours.
fn cbam_error(e: CbamError) -> ApiError {
    match e {
        CbamError::Data(_) => ApiError::internal(e),
        other => invalid(other.to_string()),
    }
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
}

fn dec(field: &str, text: &str) -> ApiResult<Decimal> {
    ets_cbam::num::parse(field, text).map_err(cbam_error)
}

fn to_value<T: Serialize>(v: &T) -> ApiResult<Value> {
    serde_json::to_value(v).map_err(ApiError::internal)
}

// ------------------------------------------------------------------ reference data

#[derive(Deserialize, IntoParams)]
pub struct GoodsQuery {
    /// cement, fertilisers, iron_steel, aluminium, hydrogen or electricity.
    pub sector: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CbamGood {
    /// A CN prefix (2 to 8 digits): it covers every code below it.
    pub cn: String,
    pub sector: String,
    /// What counts: `direct` or `direct_and_indirect`.
    pub counts: String,
    /// Counts towards the importer's 50 t threshold.
    pub threshold_mass: bool,
    pub description: String,
    pub source: String,
}

#[derive(Serialize, ToSchema)]
pub struct CbamExcluded {
    pub cn: String,
    pub reason: String,
}

#[derive(Serialize, ToSchema)]
pub struct CbamGoods {
    pub data_version: String,
    pub goods: Vec<CbamGood>,
    pub excluded: Vec<CbamExcluded>,
}

/// CBAM goods by CN code and sector, and what counts for each (reference data; public).
#[utoipa::path(get, path = "/api/v1/cbam/goods", tag = "cbam", params(GoodsQuery),
    responses((status = 200, body = CbamGoods), (status = 400, body = ErrorBody)))]
pub(crate) async fn cbam_goods(caller: Caller, Query(q): Query<GoodsQuery>) -> ApiResult<Json<CbamGoods>> {
    caller.may(&Action::ReadMarketData)?;
    let r = reference()?;
    let filter = match q.sector.as_deref() {
        Some(s) => Some(ets_cbam::reference::Sector::parse(s).ok_or_else(|| {
            ApiError::invalid(format!("sector '{s}' must be cement, fertilisers, iron_steel, aluminium, hydrogen or electricity"))
        })?),
        None => None,
    };
    let goods = r
        .goods
        .iter()
        .filter(|g| filter.is_none_or(|f| g.sector == f))
        .map(|g| CbamGood {
            cn: g.cn.clone(),
            sector: g.sector.name().into(),
            counts: g.counts.name().into(),
            threshold_mass: r.sector_rules(g.sector).threshold_mass,
            description: g.description.clone(),
            source: g.source.clone(),
        })
        .collect();
    let excluded = r.excluded.iter().map(|e| CbamExcluded { cn: e.cn.clone(), reason: e.reason.clone() }).collect();
    Ok(Json(CbamGoods { data_version: r.version.clone(), goods, excluded }))
}

// ------------------------------------------------------------------ embedded emissions

#[derive(Deserialize, IntoParams)]
pub struct SeeQuery {
    /// Apply this import year's mark-up to precursor default values (default: none).
    pub precursor_markup_year: Option<i32>,
}

const INSTALLATION: &str = "The installation JSON `ets cbam see --file` reads: `installation`, `reporting_period`, \
    `processes` (each with `id`, `cn`, `activity_level_t` and its direct emissions), optional `purchased_precursors`, \
    `electricity_ef`, `direct_emissions_t`, `carbon_price`. Decimals are strings (\"2.14\") or integers, never floats.";

/// Specific embedded emissions of an installation's goods: per process the direct, indirect and
/// counted SEE (t CO2e/t), the free-allocation benchmark per tonne, the precursors and the
/// carbon price due; exact decimals as strings. A calculator over the caller's input: any
/// signed-in caller; nothing is stored.
#[utoipa::path(post, path = "/api/v1/cbam/see", tag = "cbam", params(SeeQuery),
    request_body(content = Object, description = INSTALLATION),
    security(("session" = []), ("bearer" = [])),
    responses((status = 200, body = Object, description = "The library's result: electricity_ef, processes, purchased, warnings, data_version"),
        (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn cbam_see(
    SignedIn(_caller): SignedIn,
    Query(q): Query<SeeQuery>,
    Json(input): Json<InstallationInput>,
) -> ApiResult<Json<Value>> {
    let r = reference()?;
    if let Some(y) = q.precursor_markup_year {
        r.check_year("precursor_markup_year", y).map_err(cbam_error)?;
    }
    let params = SeeParams { precursor_markup_year: q.precursor_markup_year };
    crate::api::blocking(move || {
        let result = compute(&input, r, params).map_err(cbam_error)?;
        Ok(Json(to_value(&result)?))
    })
    .await
}

#[derive(Deserialize, IntoParams)]
pub struct CommunicationQuery {
    /// `json` (default) or `xlsx` (the Excel workbook, as `ets cbam communication --format xlsx`).
    pub format: Option<String>,
}

/// The operator's emissions communication to EU importers, from the installation JSON: as JSON
/// or (`?format=xlsx`) the Excel workbook. Any signed-in caller; nothing is stored.
#[utoipa::path(post, path = "/api/v1/cbam/communication", tag = "cbam", params(CommunicationQuery),
    request_body(content = Object, description = INSTALLATION),
    security(("session" = []), ("bearer" = [])),
    responses((status = 200, description = "The communication (JSON), or the workbook with ?format=xlsx",
            content((Object = "application/json"), (Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))),
        (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn cbam_communication(
    SignedIn(_caller): SignedIn,
    Query(q): Query<CommunicationQuery>,
    Json(input): Json<InstallationInput>,
) -> ApiResult<Response> {
    let xlsx = match q.format.as_deref() {
        None | Some("json") => false,
        Some("xlsx") => true,
        Some(other) => return Err(ApiError::invalid(format!("format '{other}' must be json or xlsx"))),
    };
    let r = reference()?;
    crate::api::blocking(move || {
        let result = compute(&input, r, SeeParams::default()).map_err(cbam_error)?;
        let c = Communication::build(&input, &result);
        if xlsx {
            // The workbook writer refuses what a sheet cannot hold (a text over 32,767
            // characters): the input's doing, not ours.
            let bytes = c.to_xlsx().map_err(|e| invalid(format!("the workbook cannot hold this installation: {e}")))?;
            let name = format!("attachment; filename=\"cbam-communication-{}.xlsx\"", sanitize(&input.installation.id));
            let disposition = HeaderValue::from_str(&name).map_err(ApiError::internal)?;
            Ok(([(header::CONTENT_TYPE, HeaderValue::from_static(XLSX)), (header::CONTENT_DISPOSITION, disposition)], bytes)
                .into_response())
        } else {
            Ok(Json(to_value(&c)?).into_response())
        }
    })
    .await
}

/// Reads an operator's communication (what `POST /api/v1/cbam/communication` and
/// `ets cbam communication` write) and answers it as JSON, products included: the JSON
/// (`Content-Type: application/json`) or the Excel workbook (the xlsx content type), as
/// `ets cbam import` reads a .json or .xlsx file. Any signed-in caller; nothing is stored. A
/// file that is not a communication is 422 naming what was wrong (the sheet, row and column of
/// a workbook); another content type is 415.
#[utoipa::path(post, path = "/api/v1/cbam/communication/import", tag = "cbam",
    request_body(description = "The communication: its JSON, or the Excel workbook",
        content((Object = "application/json"), (Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))),
    security(("session" = []), ("bearer" = [])),
    responses((status = 200, description = "The communication read, with its products", content((Object = "application/json"))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub(crate) async fn cbam_communication_import(
    SignedIn(_caller): SignedIn,
    headers: axum::http::HeaderMap,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<Json<Value>> {
    let kind = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let essence = kind.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let xlsx = match essence.as_str() {
        "application/json" => false,
        XLSX => true,
        _ => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                format!("Content-Type '{kind}': send the communication as application/json or as {XLSX}"),
            ))
        }
    };
    let bytes = body.map_err(|r| ApiError::new(r.status(), "invalid", format!("the request body: {}", r.body_text())))?;
    crate::api::blocking(move || {
        let c = if xlsx {
            Communication::from_xlsx(&bytes).map_err(|e| invalid(format!("the workbook: {e}")))?
        } else {
            let text = std::str::from_utf8(&bytes).map_err(|e| invalid(format!("the JSON is not UTF-8: {e}")))?;
            Communication::from_json(text).map_err(|e| invalid(format!("the communication: {e}")))?
        };
        Ok(Json(to_value(&c)?))
    })
    .await
}

/// A file-name part: letters, digits, `-`, `_` and `.` only.
fn sanitize(text: &str) -> String {
    let s: String = text.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')).take(64).collect();
    if s.is_empty() {
        "installation".into()
    } else {
        s
    }
}

// ------------------------------------------------------------------ an importer's liability

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LiabilityRequest {
    /// The declaration JSON `ets cbam liability --file` reads: `importer`, `year`, `lines`
    /// (each `id`, `cn`, `country`, `net_mass_t`, `imported_on`, `method`, optional `route`,
    /// `actual`, `priced_on`).
    #[schema(value_type = Object)]
    pub declaration: Declaration,
    /// Certificate prices for periods not in the data, EUR as decimal strings:
    /// `{"2026-Q2": "72.10", "2027-W07": "80"}`.
    #[serde(default)]
    pub prices: BTreeMap<String, String>,
    /// Cross-sectoral correction factor (default: the data's placeholder 1).
    pub cscf: Option<String>,
    /// Reference price (EUR) converting a carbon price paid into certificates (default: the
    /// line's certificate price).
    pub reference_price_eur: Option<String>,
    /// Rounding of the total certificates: none (default), up, down or half-up.
    pub rounding: Option<String>,
}

fn liability_params(body: &LiabilityRequest) -> ApiResult<LiabilityParams> {
    if body.prices.len() > PRICES_MAX {
        return Err(invalid(format!("prices: more than {PRICES_MAX} periods")));
    }
    let mut p = LiabilityParams::default();
    for (period, eur) in &body.prices {
        if !ets_cbam::reference::is_period(period) {
            return Err(invalid(format!("prices: period '{period}' must be YYYY-Qn or YYYY-Www")));
        }
        let v = dec(&format!("prices.{period}"), eur)?;
        if v <= Decimal::ZERO {
            return Err(invalid(format!("prices.{period}: the price must be above zero")));
        }
        p.prices.insert(period.clone(), v);
    }
    p.cscf = body.cscf.as_deref().map(|t| dec("cscf", t)).transpose()?;
    p.reference_price_eur = body.reference_price_eur.as_deref().map(|t| dec("reference_price_eur", t)).transpose()?;
    let rounding = body.rounding.as_deref().unwrap_or("none");
    p.rounding =
        CertificateRounding::parse(rounding).ok_or_else(|| invalid(format!("rounding: '{rounding}' must be none, up, down or half-up")))?;
    Ok(p)
}

/// An importer's CBAM liability for a year: per line the embedded emissions, the
/// free-allocation adjustment, the carbon price deduction, the certificates and their cost
/// (EUR); the 50 t threshold; the quarterly holding. Exact decimals as strings. Any signed-in
/// caller; nothing is stored.
#[utoipa::path(post, path = "/api/v1/cbam/liability", tag = "cbam", request_body = LiabilityRequest,
    security(("session" = []), ("bearer" = [])),
    responses((status = 200, body = Object, description = "The library's declaration result: threshold, lines, embedded_t, faa_t, certificates, certificates_rounded, cost_eur, holding"),
        (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn cbam_liability(SignedIn(_caller): SignedIn, Json(body): Json<LiabilityRequest>) -> ApiResult<Json<Value>> {
    if body.declaration.lines.len() > DECLARATION_LINES_MAX {
        return Err(invalid(format!("declaration.lines: more than {DECLARATION_LINES_MAX} lines")));
    }
    let params = liability_params(&body)?;
    let r = reference()?;
    crate::api::blocking(move || {
        let result = declare(&body.declaration, r, &params).map_err(|e| cbam_error(e.within("declaration")))?;
        Ok(Json(to_value(&result)?))
    })
    .await
}

// ------------------------------------------------------------------ scenario 2026–2034

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CbamScenarioRequest {
    /// 8-digit CN code of the product.
    pub product: String,
    /// Country of origin (default CN).
    pub country: Option<String>,
    /// IR2620 route where the benchmark depends on it.
    pub route: Option<String>,
    /// The installation JSON for actual data, with `process`.
    #[schema(value_type = Option<Object>)]
    pub installation: Option<InstallationInput>,
    /// The installation's process making the product.
    pub process: Option<String>,
    /// EU certificate price assumed every year (EUR; default 75.36, the Q1 2026 price).
    pub price: Option<String>,
    /// Effective domestic carbon prices paid per t CO2 (CNY, net of free allocation).
    #[serde(default)]
    pub domestic_prices: Vec<String>,
    /// EUR per CNY (default 0.128).
    pub eur_per_cny: Option<String>,
    /// Tonnes exported to the EU each year (default 1).
    pub mass: Option<String>,
    /// First year (default 2026).
    pub from: Option<i32>,
    /// Last year (default 2034).
    pub to: Option<i32>,
}

/// Liability per tonne and per year 2026–2034 for a product: default values against actual
/// data, with the domestic carbon price at several levels (as `ets cbam scenario`). Any
/// signed-in caller; nothing is stored.
#[utoipa::path(post, path = "/api/v1/cbam/scenario", tag = "cbam", request_body = CbamScenarioRequest,
    security(("session" = []), ("bearer" = [])),
    responses((status = 200, body = Object, description = "product, country, net_mass_t, certificate_price_eur, eur_per_cny and per year the CBAM factor, mark-up and each case's certificates and EUR"),
        (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn cbam_scenario(SignedIn(_caller): SignedIn, Json(body): Json<CbamScenarioRequest>) -> ApiResult<Json<Value>> {
    let r = reference()?;
    crate::api::blocking(move || {
        let actual = match (&body.installation, &body.process) {
            (Some(input), Some(process)) => {
                let res = compute(input, r, SeeParams::default()).map_err(|e| cbam_error(e.within("installation")))?;
                let p =
                    res.process(process).ok_or_else(|| invalid(format!("process: '{process}' is not a process of the installation")))?;
                let cn = ets_cbam::reference::parse_cn("product", &body.product).map_err(cbam_error)?;
                if p.cn != cn {
                    return Err(invalid(format!("process: '{process}' makes CN {}, not the product {cn}", p.cn)));
                }
                let benchmark =
                    p.see.benchmark.ok_or_else(|| invalid(format!("process: '{process}' has no benchmark per tonne in the data")))?;
                Some(ScenarioActual { see_t_per_t: p.see.counted, benchmark_t_per_t: benchmark, own_direct_t_per_t: p.see.own_direct })
            }
            (None, Some(_)) => return Err(invalid("process: needs installation")),
            (Some(_), None) => return Err(invalid("installation: needs process (the process making the product)")),
            (None, None) => None,
        };
        let price = body.price.clone().unwrap_or_else(|| "75.36".into());
        let eur_per_cny = body.eur_per_cny.clone().unwrap_or_else(|| "0.128".into());
        let mass = body.mass.clone().unwrap_or_else(|| "1".into());
        let country = body.country.clone().unwrap_or_else(|| "CN".into());
        let input = ScenarioInput {
            cn: body.product.clone(),
            country: country.clone(),
            route: body.route.clone(),
            net_mass_t: dec("mass", &mass)?,
            actual,
            certificate_price_eur: dec("price", &price)?,
            domestic_prices_cny: body
                .domestic_prices
                .iter()
                .enumerate()
                .map(|(i, t)| dec(&format!("domestic_prices[{i}]"), t))
                .collect::<ApiResult<_>>()?,
            eur_per_cny: dec("eur_per_cny", &eur_per_cny)?,
            first_year: body.from.unwrap_or(2026),
            last_year: body.to.unwrap_or(2034),
        };
        let years = scenario::run(&input, r, &LiabilityParams::default()).map_err(cbam_error)?;
        Ok(Json(json!({"product": body.product, "country": country, "net_mass_t": mass, "certificate_price_eur": price,
                       "eur_per_cny": eur_per_cny, "years": to_value(&years)?})))
    })
    .await
}

// ------------------------------------------------------------------ QReport

/// The transitional quarterly report XML (Q4 2023 to Q4 2025) from the JSON
/// `ets cbam qreport --file` reads. Any signed-in caller; nothing is stored.
#[utoipa::path(post, path = "/api/v1/cbam/qreport", tag = "cbam",
    request_body(content = Object, description = "The QReport JSON: draft_report_id, submission_date, period (Q1..Q4), year, declarant, competent_authority, signature, remarks, goods"),
    security(("session" = []), ("bearer" = [])),
    responses((status = 200, description = "The QReport XML", content_type = "application/xml", body = String),
        (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn cbam_qreport(SignedIn(_caller): SignedIn, Json(input): Json<qreport::QReportInput>) -> ApiResult<Response> {
    let r = reference()?;
    crate::api::blocking(move || {
        let xml = qreport::write(&input, r).map_err(cbam_error)?;
        Ok(([(header::CONTENT_TYPE, HeaderValue::from_static("application/xml"))], xml).into_response())
    })
    .await
}

// ------------------------------------------------------------------ carbon price paid

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CarbonPricePurchase {
    pub quantity_t: u64,
    /// Price paid per tonne, CNY, as a decimal string.
    pub price_cny: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CarbonPriceRequest {
    /// The operator's national account, e.g. CN-100001.
    pub account: String,
    /// Compliance year (allowance vintage).
    pub year: u16,
    /// Verified direct emissions of the year (t CO2e), a decimal string.
    pub emissions_t: String,
    /// Allowances bought and the price paid for each lot.
    #[serde(default)]
    pub purchases: Vec<CarbonPricePurchase>,
    /// EUR per CNY, to give the price in EUR too.
    pub eur_per_cny: Option<String>,
}

/// The carbon price effectively paid in the account's market for a compliance year, from the
/// registry (allowances bought beyond free allocation) and the prices paid (as
/// `ets cbam carbon-price`): for callers who may read the account's holdings.
#[utoipa::path(post, path = "/api/v1/cbam/carbon-price", tag = "cbam", request_body = CarbonPriceRequest,
    security(("session" = []), ("bearer" = [])),
    responses((status = 200, body = Object, description = "account, market, compliance_year, verified_emissions_t, free_allocated_t, bought_t, sold_t, purchases_listed_t, paid_t, average_price_cny, paid_cny, per_t_co2e_cny, per_t_co2e_eur"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn cbam_carbon_price(
    State(platform): S,
    SignedIn(caller): SignedIn,
    Json(body): Json<CarbonPriceRequest>,
) -> ApiResult<Json<Value>> {
    let account: AccountRef =
        crate::api::account_ref(&platform, &body.account).map_err(|e| crate::api::unless_may_know(&caller, e, false))?;
    caller.may(&Action::ReadHoldings { account })?;
    if body.purchases.len() > PURCHASES_MAX {
        return Err(invalid(format!("purchases: more than {PURCHASES_MAX}")));
    }
    if body.purchases.iter().try_fold(0u64, |a, p| a.checked_add(p.quantity_t)).is_none() {
        return Err(invalid("purchases: the quantities add up to more than 2^64 t"));
    }
    let emissions = dec("emissions_t", &body.emissions_t)?;
    let purchases = body
        .purchases
        .iter()
        .enumerate()
        .map(|(i, p)| Ok(Purchase { quantity_t: p.quantity_t, price_cny: dec(&format!("purchases[{i}].price_cny"), &p.price_cny)? }))
        .collect::<ApiResult<Vec<_>>>()?;
    let fx = body.eur_per_cny.as_deref().map(|t| dec("eur_per_cny", t)).transpose()?;
    if fx.is_some_and(|f| f < Decimal::ZERO) {
        return Err(invalid("eur_per_cny: must not be negative"));
    }
    crate::api::blocking(move || {
        let paid = {
            let ledger = platform.registry.lock().expect("registry lock");
            carbon_price_paid(ledger.registry(), &body.account, body.year, emissions, &purchases).map_err(cbam_error)?
        };
        let mut v = to_value(&paid)?;
        let eur = match fx {
            Some(f) => Some(f.checked_mul(paid.per_t_co2e_cny).ok_or_else(|| invalid("eur_per_cny: too large"))?.round_dp(4)),
            None => None,
        };
        v["per_t_co2e_eur"] = json!(eur.map(|e| e.to_string()));
        Ok(Json(v))
    })
    .await
}

/// The tags of the calculators' and read-only views' operations, for the document.
pub(crate) fn with_tags(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    use utoipa::openapi::tag::TagBuilder;
    let tags = doc.tags.get_or_insert_with(Vec::new);
    for (name, description) in [
        ("cbam", "EU CBAM: reference data (public) and calculators over the caller's input (signed in)"),
        ("simulation", "Policy simulation: the default calibration, scenario checks and runs (signed in, bounded)"),
        ("finance", "Carbon finance (pledges, repos, futures) and carbon inclusion, scoped to the caller's markets and accounts"),
    ] {
        tags.push(TagBuilder::new().name(name).description(Some(description)).build());
    }
    doc
}
