//! The CBAM calculators, the simulation and the finance and inclusion views through the API:
//! real figures reproduced over HTTP (the CBAM worked examples, a simulation run, a pledge's
//! terms), bad input answered 422 naming the field with nothing changed, and each role's access.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::{date, World, A, B, C};
use ets_finance::desk::{self, Command as D, ContractSpec, Settlement};
use ets_finance::inclusion::{self, ActivityRecord, Catalog, Command as I, PilotSetup};
use ets_registry::UnitRef;
use ets_store::FinanceReceipt;
use http_body_util::BodyExt;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::str::FromStr;
use tower::ServiceExt;

const ROLES: [&str; 10] = ["public", "admin", "auditor", "regulator-cn", "regulator-bj", "verifier", "alice", "approver", "bob", "carol"];

const INSTALLATION: &str = include_str!("../../../examples/cbam/steel-installation.json");
const DECLARATION: &str = include_str!("../../../examples/cbam/declaration-2026.json");
const QREPORT: &str = include_str!("../../../examples/cbam/qreport-2025-q4.json");
const LINKING: &str = include_str!("../../../examples/sim/linking.toml");
const CBAM_STEEL: &str = include_str!("../../../examples/sim/cbam-steel.toml");

fn d(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap_or_else(|_| panic!("not a decimal: {text}"))
}

/// The decimal string at `v`, as a decimal (2.140 equals 2.14).
fn dv(v: &Value) -> Decimal {
    d(v.as_str().unwrap_or_else(|| panic!("not a decimal string: {v}")))
}

async fn secrets(w: &World) -> BTreeMap<&'static str, String> {
    let mut s = BTreeMap::new();
    for user in &ROLES[1..] {
        s.insert(*user, w.login(user).await);
    }
    s
}

/// A request whose answer is not JSON: status, content type and bytes.
async fn raw(w: &World, uri: &str, secret: &str, body: &str) -> (StatusCode, String, Vec<u8>) {
    let request = Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header("authorization", format!("Bearer {secret}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = w.app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (status, content_type, response.into_body().collect().await.unwrap().to_bytes().to_vec())
}

fn installation() -> Value {
    serde_json::from_str(INSTALLATION).unwrap()
}

fn process<'a>(see: &'a Value, id: &str) -> &'a Value {
    see["processes"].as_array().unwrap().iter().find(|p| p["id"] == id).unwrap_or_else(|| panic!("no process {id} in {see}"))
}

fn message(body: &Value) -> &str {
    body["message"].as_str().unwrap_or_else(|| panic!("no message in {body}"))
}

// ------------------------------------------------------------------ CBAM

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cbam_goods_are_public_reference_data() {
    let w = World::new();
    let (status, all) = w.get("/api/v1/cbam/goods", None).await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert!(all["data_version"].as_str().is_some_and(|v| !v.is_empty()));
    let (status, cement) = w.get("/api/v1/cbam/goods?sector=cement", None).await;
    assert_eq!(status, StatusCode::OK);
    let goods = cement["goods"].as_array().unwrap();
    assert!(!goods.is_empty() && goods.len() < all["goods"].as_array().unwrap().len());
    assert!(goods.iter().all(|g| g["sector"] == "cement" && g["threshold_mass"] == true), "{cement}");
    assert!(goods.iter().any(|g| g["cn"].as_str().unwrap().starts_with("2523")), "{cement}");
    let (_, electricity) = w.get("/api/v1/cbam/goods?sector=electricity", None).await;
    assert!(electricity["goods"].as_array().unwrap().iter().all(|g| g["threshold_mass"] == false), "{electricity}");
    let (status, body) = w.get("/api/v1/cbam/goods?sector=glass", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message(&body).contains("sector 'glass'"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cbam_see_reproduces_the_worked_examples_and_names_bad_fields() {
    let w = World::new();
    let carol = w.login("carol").await;
    // The example installation, as `ets cbam see` gives it.
    let (status, see) = w.post("/api/v1/cbam/see", Some(&carol), installation()).await;
    assert_eq!(status, StatusCode::OK, "{see}");
    let hrc = process(&see, "hot-rolling");
    assert_eq!(hrc["see"]["counted"], "1.733067788572");
    assert_eq!(hrc["see"]["benchmark"], "1.4762");
    // E2 (cbam.md §9): SEE = (4,000 + 105,000 × 2.0) / 100,000 = 2.140; own direct 0.04.
    let e2 = json!({
        "installation": {"id": "CN-I-1", "name": "Test works", "country": "CN", "operator": "Test Steel Co."},
        "reporting_period": {"start": "2025-01-01", "end": "2025-12-31"},
        "electricity_ef": {"t_co2_per_mwh": "0.6", "source": "E1 illustrative"},
        "processes": [{"id": "hrc", "cn": "72081000", "route": "C", "activity_level_t": "100000", "direct_emissions_t": "4000",
                       "precursors": [{"purchased": "slab", "mass_t": "105000"}]}],
        "purchased_precursors": [{"id": "slab", "cn": "72071116", "country": "IN", "route": "C", "see_direct": "2.0", "verified": true}],
    });
    let (status, r) = w.post("/api/v1/cbam/see", Some(&carol), e2.clone()).await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(dv(&process(&r, "hrc")["see"]["direct"]), d("2.140"));
    assert_eq!(dv(&process(&r, "hrc")["see"]["own_direct"]), d("0.04"));
    // E1: cement counts its indirect emissions, 0.85 + 0.11 × 0.6 = 0.916.
    let mut e1 = e2.clone();
    e1["processes"] =
        json!([{"id": "cement", "cn": "25232900", "activity_level_t": "1000", "direct_emissions_t": "850", "electricity_mwh": "110"}]);
    e1["purchased_precursors"] = json!([]);
    let (_, r) = w.post("/api/v1/cbam/see", Some(&carol), e1.clone()).await;
    assert_eq!(dv(&process(&r, "cement")["see"]["counted"]), d("0.916"));

    // A decimal that is not one: 422 naming the field (the body's serde path).
    let mut bad = e1.clone();
    bad["processes"][0]["activity_level_t"] = json!("abc");
    let (status, body) = w.post("/api/v1/cbam/see", Some(&carol), bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(message(&body).contains("processes[0].activity_level_t"), "{body}");
    // A negative activity level: the library's refusal, naming the field.
    let mut bad = e1.clone();
    bad["processes"][0]["activity_level_t"] = json!("-5");
    let (status, body) = w.post("/api/v1/cbam/see", Some(&carol), bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(message(&body).contains("processes[0].activity_level_t"), "{body}");
    // A float where an exact decimal is needed.
    let mut bad = e1.clone();
    bad["processes"][0]["direct_emissions_t"] = json!(850.5);
    let (status, body) = w.post("/api/v1/cbam/see", Some(&carol), bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(message(&body).contains("processes[0].direct_emissions_t"), "{body}");
    // A precursor cycle is named.
    let mut cycle = e1.clone();
    cycle["processes"] = json!([
        {"id": "a", "cn": "72081000", "route": "C", "activity_level_t": "1", "direct_emissions_t": "1", "precursors": [{"process": "b", "mass_t": "1"}]},
        {"id": "b", "cn": "72071116", "route": "C", "activity_level_t": "1", "direct_emissions_t": "1", "precursors": [{"process": "a", "mass_t": "1"}]}
    ]);
    let (status, body) = w.post("/api/v1/cbam/see", Some(&carol), cycle).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(message(&body).contains("cycle"), "{body}");
    let (status, body) = w.post("/api/v1/cbam/see?precursor_markup_year=1999", Some(&carol), e1.clone()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(message(&body).contains("precursor_markup_year"), "{body}");
    // Anonymous: 401 whatever the body.
    let (status, _) = w.post("/api/v1/cbam/see", None, e1).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = w.post("/api/v1/cbam/see", None, json!("not an installation")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cbam_communication_as_json_and_as_the_workbook() {
    let w = World::new();
    let verifier = w.login("verifier").await;
    let (status, c) = w.post("/api/v1/cbam/communication", Some(&verifier), installation()).await;
    assert_eq!(status, StatusCode::OK, "{c}");
    assert_eq!(c["format"], "ets-cbam-communication/1");
    assert_eq!(c["installation"]["id"], "CN-HB-STEEL-001");
    let hrc = c["products"].as_array().unwrap().iter().find(|p| p["process"] == "hot-rolling").unwrap();
    assert_eq!(dv(&hrc["see_counted"]), d("1.733067788572"));
    let (status, content_type, bytes) = raw(&w, "/api/v1/cbam/communication?format=xlsx", &verifier, INSTALLATION).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet");
    assert!(bytes.starts_with(b"PK"), "a zip container");
    // The workbook reads back as the same communication.
    let back = ets_cbam::communication::Communication::from_xlsx(&bytes).unwrap();
    assert_eq!(back.products.len(), c["products"].as_array().unwrap().len());
    assert_eq!(back.product("hot-rolling").unwrap().see_counted, d("1.733067788572"));
    // A name no sheet cell can hold: refused, not a server error.
    let mut long = installation();
    long["installation"]["name"] = json!("x".repeat(40_000));
    let (status, _, body) = raw(&w, "/api/v1/cbam/communication?format=xlsx", &verifier, &long.to_string()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{}", String::from_utf8_lossy(&body));
    let (status, body) = w.post("/api/v1/cbam/communication?format=pdf", Some(&verifier), installation()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message(&body).contains("format 'pdf'"), "{body}");
    let mut bad = installation();
    bad["processes"][0]["cn"] = json!("99999999");
    let (status, body) = w.post("/api/v1/cbam/communication", Some(&verifier), bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(message(&body).contains("processes[0].cn"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cbam_liability_reproduces_e4_and_the_hydrogen_line() {
    let w = World::new();
    let bob = w.login("bob").await;
    let declaration: Value = serde_json::from_str(DECLARATION).unwrap();
    let (status, r) = w.post("/api/v1/cbam/liability", Some(&bob), json!({"declaration": declaration})).await;
    assert_eq!(status, StatusCode::OK, "{r}");
    let lines = r["lines"].as_array().unwrap();
    // E4: 1,000 t China HRC on defaults in Q1 2026: 2,173.25 certificates, EUR 163,776.12.
    assert_eq!((lines[0]["certificates"].as_str(), lines[0]["cost_eur"].as_str()), (Some("2173.25"), Some("163776.12")));
    assert_eq!(lines[0]["price_period"], "2026-Q1");
    // Hydrogen from Australia: 2 × (10.82 × 1.1 − 0.975 × 5.089) = 13.88045.
    assert_eq!(lines[2]["certificates"], "13.88045");
    assert_eq!(r["threshold"]["exempt"], false);
    // Rounding the total up.
    let (_, up) = w.post("/api/v1/cbam/liability", Some(&bob), json!({"declaration": declaration, "rounding": "up"})).await;
    assert_eq!(dv(&up["certificates_rounded"]), dv(&up["certificates"]).ceil());
    // E3 importer A: 49 t of threshold goods is exempt.
    let e3 = json!({"importer": "EU-IMP", "year": 2026, "lines": [
        {"id": "steel", "cn": "72081000", "country": "CN", "net_mass_t": "30", "imported_on": "2026-02-01", "method": "actual", "actual": {"see_t_per_t": "2.0", "benchmark_t_per_t": "0.5"}},
        {"id": "alu", "cn": "76011000", "country": "CN", "net_mass_t": "15", "imported_on": "2026-02-01", "method": "actual", "actual": {"see_t_per_t": "2.0", "benchmark_t_per_t": "0.5"}},
        {"id": "cement", "cn": "25232900", "country": "CN", "net_mass_t": "4", "imported_on": "2026-02-01", "method": "actual", "actual": {"see_t_per_t": "0.9", "benchmark_t_per_t": "0.5"}}]});
    let (_, a) = w.post("/api/v1/cbam/liability", Some(&bob), json!({"declaration": e3})).await;
    assert_eq!((dv(&a["threshold"]["mass_counted_t"]), a["threshold"]["exempt"].as_bool()), (d("49"), Some(true)));
    assert_eq!(dv(&a["certificates"]), Decimal::ZERO);

    // Bad input: named.
    let mut bad = declaration.clone();
    bad["lines"][1]["net_mass_t"] = json!("-1");
    let (status, body) = w.post("/api/v1/cbam/liability", Some(&bob), json!({"declaration": bad})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(message(&body).contains("declaration.lines[1].net_mass_t"), "{body}");
    let (status, body) = w.post("/api/v1/cbam/liability", Some(&bob), json!({"declaration": declaration, "rounding": "sideways"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(message(&body).contains("rounding"), "{body}");
    let (status, body) =
        w.post("/api/v1/cbam/liability", Some(&bob), json!({"declaration": declaration, "prices": {"2026-Q9": "70"}})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(message(&body).contains("2026-Q9"), "{body}");
    let (status, body) = w.post("/api/v1/cbam/liability", Some(&bob), json!({"declaration": declaration, "cscf": "x"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(message(&body).contains("cscf"), "{body}");
    let (status, body) = w.post("/api/v1/cbam/liability", Some(&bob), json!({"declaration": {"importer": "x"}})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(message(&body).contains("declaration"), "{body}");
    // More lines than the server takes (10,000).
    let mut many = declaration.clone();
    many["lines"] = Value::Array(vec![declaration["lines"][0].clone(); 10_001]);
    let (status, body) = w.post("/api/v1/cbam/liability", Some(&bob), json!({"declaration": many})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(message(&body).contains("declaration.lines"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cbam_scenario_and_qreport() {
    let w = World::new();
    let approver = w.login("approver").await;
    let (status, s) = w
        .post(
            "/api/v1/cbam/scenario",
            Some(&approver),
            json!({"product": "72081000", "installation": installation(), "process": "hot-rolling",
                   "domestic_prices": ["0", "100"], "mass": "1000"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{s}");
    let years = s["years"].as_array().unwrap();
    assert_eq!(years.len(), 9, "2026 to 2034");
    assert_eq!(years[0]["year"], 2026);
    assert_eq!(years[0]["cases"][0]["eur"], "163776.12", "E4 on defaults");
    assert_eq!(years[0]["cases"].as_array().unwrap().len(), 3, "default, actual at CNY 0 and at CNY 100");
    let (status, body) = w.post("/api/v1/cbam/scenario", Some(&approver), json!({"product": "72081000", "from": 2020})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(message(&body).contains("first_year"), "{body}");
    let (status, body) = w.post("/api/v1/cbam/scenario", Some(&approver), json!({"product": "72081000", "process": "hot-rolling"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(message(&body).contains("process"), "{body}");
    let (status, body) = w.post("/api/v1/cbam/scenario", Some(&approver), json!({"product": "72081000", "mass": "0"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(message(&body).contains("net_mass_t"), "{body}");

    let (status, content_type, xml) = raw(&w, "/api/v1/cbam/qreport", &approver, QREPORT).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "application/xml");
    let xml = String::from_utf8(xml).unwrap();
    assert!(xml.starts_with("<?xml") && xml.contains("<ReportingPeriod>Q4</ReportingPeriod>"), "{xml}");
    assert!(xml.contains("Example Iron &amp; Steel Co., Ltd."));
    roxmltree::Document::parse(&xml).unwrap();
    let mut late: Value = serde_json::from_str(QREPORT).unwrap();
    late["year"] = json!(2026);
    let (status, body) = w.post("/api/v1/cbam/qreport", Some(&approver), late).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(message(&body).contains("year"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cbam_carbon_price_paid_reads_the_registry_for_those_who_may_read_the_account() {
    let w = World::new();
    let s = secrets(&w).await;
    // Bob buys 5,000 t of CEA-2025 from Alice (a registry transfer): with 50,000 t allocated
    // free and 52,000 t verified, 2,000 t of the 5,000 bought at CNY 80.5 were paid for.
    {
        let mut ledger = w.platform.registry.lock().unwrap();
        let transfer = ets_registry::Command::Transfer {
            from: A.into(),
            to: B.into(),
            unit: UnitRef::allowance("CEA", 2025),
            quantity: ets_core::Tonnes(5_000),
        };
        ledger.submit(w.now(), &ets_registry::Envelope { id: "buy-5000".into(), actor: "alice".into(), command: transfer }).unwrap();
    }
    let body = json!({"account": B, "year": 2025, "emissions_t": "52000", "purchases": [{"quantity_t": 5000, "price_cny": "80.5"}], "eur_per_cny": "0.128"});
    let (status, p) = w.post("/api/v1/cbam/carbon-price", Some(&s["bob"]), body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{p}");
    assert_eq!((p["free_allocated_t"].as_u64(), p["bought_t"].as_u64(), p["sold_t"].as_u64()), (Some(50_000), Some(5_000), Some(0)));
    assert_eq!(dv(&p["paid_t"]), d("2000"));
    assert_eq!(dv(&p["average_price_cny"]), d("80.5"));
    assert_eq!(dv(&p["paid_cny"]), d("161000"));
    assert!(p["per_t_co2e_cny"].as_str().unwrap().starts_with("3.0961538"), "{p}");
    assert_eq!(dv(&p["per_t_co2e_eur"]), (dv(&p["per_t_co2e_cny"]) * d("0.128")).round_dp(4));
    // Who may: those who may read B's holdings.
    for role in ROLES {
        let (status, answer) = w.post("/api/v1/cbam/carbon-price", s.get(role).map(String::as_str), body.clone()).await;
        let expected = match role {
            "public" => StatusCode::UNAUTHORIZED,
            "admin" | "auditor" | "regulator-cn" | "bob" => StatusCode::OK,
            _ => StatusCode::FORBIDDEN,
        };
        assert_eq!(status, expected, "{role}: {answer}");
    }
    // More listed than the registry shows bought: named.
    let mut bad = body.clone();
    bad["purchases"][0]["quantity_t"] = json!(6_000);
    let (status, answer) = w.post("/api/v1/cbam/carbon-price", Some(&s["bob"]), bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(message(&answer).contains("purchases"), "{answer}");
    let mut bad = body.clone();
    bad["emissions_t"] = json!("lots");
    let (status, answer) = w.post("/api/v1/cbam/carbon-price", Some(&s["bob"]), bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(message(&answer).contains("emissions_t"), "{answer}");
    let mut unknown = body.clone();
    unknown["account"] = json!("CN-999999");
    let (status, _) = w.post("/api/v1/cbam/carbon-price", Some(&s["admin"]), unknown).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cbam_calculators_are_for_signed_in_callers() {
    let w = World::new();
    let s = secrets(&w).await;
    let declaration: Value = serde_json::from_str(DECLARATION).unwrap();
    for role in ROLES {
        let secret = s.get(role).map(String::as_str);
        let (status, _) = w.get("/api/v1/cbam/goods", secret).await;
        assert_eq!(status, StatusCode::OK, "{role}");
        let expected = if role == "public" { StatusCode::UNAUTHORIZED } else { StatusCode::OK };
        let (status, _) = w.post("/api/v1/cbam/see", secret, installation()).await;
        assert_eq!(status, expected, "{role} see");
        let (status, _) = w.post("/api/v1/cbam/communication", secret, installation()).await;
        assert_eq!(status, expected, "{role} communication");
        let (status, _) = w.post("/api/v1/cbam/liability", secret, json!({"declaration": declaration})).await;
        assert_eq!(status, expected, "{role} liability");
        let (status, _) = w.post("/api/v1/cbam/scenario", secret, json!({"product": "72081000", "to": 2026})).await;
        assert_eq!(status, expected, "{role} scenario");
        let (status, _) = w.post("/api/v1/cbam/qreport", secret, serde_json::from_str(QREPORT).unwrap()).await;
        assert_eq!(status, expected, "{role} qreport");
    }
}

// ------------------------------------------------------------------ simulation

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_calibration_check_and_run() {
    let w = World::new();
    let s = secrets(&w).await;
    for role in ROLES {
        let secret = s.get(role).map(String::as_str);
        let expected = if role == "public" { StatusCode::UNAUTHORIZED } else { StatusCode::OK };
        let (status, _) = w.get("/api/v1/sim/calibration", secret).await;
        assert_eq!(status, expected, "{role} calibration");
        let (status, _) = w.post("/api/v1/sim/check", secret, json!({"scenario": LINKING})).await;
        assert_eq!(status, expected, "{role} check");
    }
    let alice = &s["alice"];
    let (_, c) = w.get("/api/v1/sim/calibration", Some(alice)).await;
    let codes: Vec<&str> = c["markets"].as_array().unwrap().iter().map(|m| m["code"].as_str().unwrap()).collect();
    assert_eq!(codes.len(), 9, "the national market and eight pilots: {codes:?}");
    assert!(codes.contains(&"CN") && codes.contains(&"BJ") && codes.contains(&"GD"));
    assert!(c["markets"].as_array().unwrap().iter().all(|m| m["target_price"].as_f64().unwrap() > 0.0));
    assert_eq!(c["limits"]["draws"], 2_000);

    let (status, check) = w.post("/api/v1/sim/check", Some(alice), json!({"scenario": LINKING})).await;
    assert_eq!(status, StatusCode::OK, "{check}");
    assert_eq!(check, json!({"status": "ok", "scenario": "Beijing, Guangdong and Hubei: linking", "markets": ["BJ", "GD", "HB"]}));

    // Every problem named with its key.
    let (status, body) =
        w.post("/api/v1/sim/check", Some(alice), json!({"scenario": "[scenario]\nname = \"x\"\nmarkets = [\"ZZ\"]\nseed = -4\n"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(message(&body).contains("ZZ") && message(&body).contains("seed"), "{body}");
    let (status, body) = w.post("/api/v1/sim/run", Some(alice), json!({"scenario": "not = [toml"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, _) = w.post("/api/v1/sim/run", Some(alice), json!({"text": LINKING})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "the field is `scenario`");

    // Beyond the server's limits: refused before anything runs, naming the keys.
    let big = LINKING.replace("firms_per_market = 50", "firms_per_market = 100000");
    let (status, body) = w.post("/api/v1/sim/run", Some(alice), json!({"scenario": big})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(message(&body).contains("firms"), "{body}");
    let draws = format!("{LINKING}\n[monte_carlo]\ndraws = 50000\n[[monte_carlo.uncertain]]\nmarket = \"BJ\"\nparameter = \"cap\"\ndistribution = \"normal\"\nsd = 0.01\n");
    let (status, body) = w.post("/api/v1/sim/check", Some(alice), json!({"scenario": draws})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(message(&body).contains("monte_carlo.draws: 50000"), "{body}");
    let agents = "[scenario]\nname = \"a\"\nseed = 1\nmarkets = [\"GD\"]\n[agents]\nmarket = \"GD\"\nfirms = 100000\ndays = 242\n";
    let (status, body) = w.post("/api/v1/sim/run", Some(alice), json!({"scenario": agents})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(message(&body).contains("agents.firms"), "{body}");
    // A long banking path under many draws: its solves grow with the square of the years.
    let banking = include_str!("../../../examples/sim/banking-msr.toml").replace("years = 10", "years = 50");
    let (status, body) = w.post("/api/v1/sim/run", Some(alice), json!({"scenario": banking})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(message(&body).contains("banking.years²"), "{body}");
    let (status, body) = w.post("/api/v1/sim/check", Some(alice), json!({"scenario": "#".repeat(70_000)})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(message(&body).contains("bytes"), "{body}");

    // A run: linking, four regimes; integration prices every market alike, and the same
    // scenario gives the same results.
    let (status, run) = w.post("/api/v1/sim/run", Some(alice), json!({"scenario": LINKING})).await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(run["results"]["scenario"], "Beijing, Guangdong and Hubei: linking");
    assert!(run["summary"].as_array().unwrap().iter().any(|l| l.as_str().unwrap().contains("linking")), "{}", run["summary"]);
    let (_, again) = w.post("/api/v1/sim/run", Some(alice), json!({"scenario": LINKING})).await;
    assert_eq!(run, again);
    let text = run["results"].to_string();
    assert!(text.contains("integrated") && text.contains("restricted"), "{text}");
    // CBAM against the domestic price: the run answers a liability per tonne.
    let (status, cbam) = w.post("/api/v1/sim/run", Some(alice), json!({"scenario": CBAM_STEEL})).await;
    assert_eq!(status, StatusCode::OK, "{cbam}");
    assert!(cbam["results"]["cbam"].is_object(), "{}", cbam["results"]);
}

// ------------------------------------------------------------------ finance and inclusion

/// A desk over the World's registry: Alice (A) and Bob (B) as parties; Alice pledges 10,000 t
/// to Bob for a loan of ¥400,000; a repo of 2,000 t from Alice to Bob; a forward month with
/// one trade of 3 contracts (Bob long, Alice short). And a carbon-inclusion register for BJ:
/// Carol's platform (account C) submits two households' rooftop solar, a verifier accepts.
fn set_up_finance(w: &World) {
    let at = w.now();
    let day = date("2025-06-04");
    let mut ledger = w.platform.registry.lock().unwrap();
    let mut log = w.platform.finance.lock().unwrap();
    log.init_desk("desk", "cn-auth", at).unwrap();
    let unit = UnitRef::allowance("CEA", 2025);
    let commands = vec![
        D::AddParty { party: "alice".into(), account: A.into() },
        D::AddParty { party: "bob".into(), account: B.into() },
        D::Deposit { party: "bob".into(), amount_fen: 100_000_000 },
        D::Deposit { party: "alice".into(), amount_fen: 10_000_000 },
        D::Pledge {
            pledge: "p1".into(),
            lender: "bob".into(),
            borrower: "alice".into(),
            unit: unit.clone(),
            quantity: 10_000,
            loan_fen: 40_000_000,
            haircut_bp: 3_000,
            maintenance_bp: 12_000,
            topup_days: 3,
            maturity: date("2025-12-31"),
        },
        D::Repo {
            repo: "r1".into(),
            seller: "alice".into(),
            buyer: "bob".into(),
            unit: unit.clone(),
            quantity: 2_000,
            start_fen: 16_000_000,
            repurchase_fen: 16_200_000,
            repurchase_date: date("2025-09-01"),
            penalty_bp: 500,
        },
        D::ListContract(ContractSpec {
            code: "CEA-2025-F2512".into(),
            unit,
            size_t: 1_000,
            expiry: date("2025-12-15"),
            settlement: Settlement::Physical,
            initial_margin_fen: 1_000_000,
            position_limit: 100,
            reference_price_fen: 8_000,
            delivery_penalty_bp: 1_000,
        }),
        D::Trade { contract: "CEA-2025-F2512".into(), buyer: "bob".into(), seller: "alice".into(), contracts: 3, price_fen: 8_100 },
    ];
    for (i, command) in commands.into_iter().enumerate() {
        let envelope = desk::Envelope { id: format!("fin-setup-{i}"), actor: "desk".into(), date: day, command };
        match log.submit_desk(&envelope, &mut ledger, at).unwrap() {
            Ok(FinanceReceipt::Accepted(_)) => {}
            other => panic!("{envelope:?}: {other:?}"),
        }
    }
    let (file, text) = ets_rules::rulebook::builtin().iter().find(|(f, _)| f.starts_with("bj-2024")).unwrap();
    let rulebook = ets_rules::rulebook::Rulebook::from_toml(file, text).unwrap();
    let config = inclusion::Config {
        operator: "bj-inclusion".into(),
        catalog: Catalog::builtin(),
        pilots: BTreeMap::from([("BJ".to_string(), PilotSetup::new("bj-auth", "BJ-ISSUANCE", &rulebook))]),
    };
    log.init_inclusion(config, at).unwrap();
    let record = |id: &str, participant: &str, kwh: i64| ActivityRecord {
        record: id.into(),
        participant: participant.into(),
        date: date("2025-03-31"),
        quantity: Decimal::from(kwh),
        evidence_sha256: ets_store::sha256_hex(id.as_bytes()),
    };
    let commands = vec![
        ("bj-inclusion", I::AddAggregator { aggregator: "carol-solar".into(), pilot: "BJ".into(), account: C.into() }),
        ("bj-inclusion", I::AddVerifier { verifier: "bj-verifier".into() }),
        (
            "carol-solar",
            I::Submit {
                submission: "s1".into(),
                aggregator: "carol-solar".into(),
                methodology: "SOLAR-ROOF".into(),
                year: 2025,
                // 10,000 kWh × 0.0005703 = 5.703 → 5 t; 20,000 kWh → 11.406 → 11 t.
                records: vec![record("r-1", "H1", 10_000), record("r-2", "H2", 20_000)],
            },
        ),
        ("bj-verifier", I::Verify { submission: "s1".into(), accept: true, note: "meter data checked".into() }),
    ];
    for (i, (actor, command)) in commands.into_iter().enumerate() {
        let envelope = inclusion::Envelope { id: format!("inc-setup-{i}"), actor: actor.into(), command };
        match log.submit_inclusion(&envelope, &mut ledger, at).unwrap() {
            Ok(FinanceReceipt::Accepted(_)) => {}
            other => panic!("{envelope:?}: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finance_views_show_the_desk_and_the_register_within_the_callers_scope() {
    let w = World::new();
    let s = secrets(&w).await;
    // Before the desk is set up: nothing, not an error.
    let (status, empty) = w.get("/api/v1/finance/pledges", Some(&s["admin"])).await;
    assert_eq!((status, empty), (StatusCode::OK, json!([])));
    set_up_finance(&w);
    // The pledge's units are encumbered in the registry; the repo's moved to Bob.
    assert_eq!(w.held(A), (100_000 - 20_000 - 10_000 - 2_000, 98_000));

    let (status, pledges) = w.get("/api/v1/finance/pledges", Some(&s["alice"])).await;
    assert_eq!(status, StatusCode::OK, "{pledges}");
    let p = &pledges[0];
    assert_eq!(
        (p["pledge"].as_str(), p["borrower_account"].as_str(), p["lender_account"].as_str(), p["unit"].as_str()),
        (Some("p1"), Some(A), Some(B), Some("CEA:2025"))
    );
    assert_eq!(
        (p["quantity_t"].as_u64(), p["loan_fen"].as_i64(), p["outstanding_fen"].as_i64()),
        (Some(10_000), Some(40_000_000), Some(40_000_000))
    );
    assert_eq!((p["haircut_bp"].as_u64(), p["maturity"].as_str(), p["status"].as_str()), (Some(3_000), Some("2025-12-31"), Some("active")));
    let (_, repos) = w.get("/api/v1/finance/repos", Some(&s["bob"])).await;
    assert_eq!(repos[0]["repo"], "r1");
    assert_eq!((repos[0]["quantity_t"].as_u64(), repos[0]["repurchase_fen"].as_i64()), (Some(2_000), Some(16_200_000)));
    assert_eq!((repos[0]["repurchase_date"].as_str(), repos[0]["status"].as_str()), (Some("2025-09-01"), Some("open")));
    let (_, parties) = w.get("/api/v1/finance/parties", Some(&s["admin"])).await;
    // Bob lent ¥400,000 and paid ¥160,000 for the repo's first leg; margin 3 × ¥10,000 each.
    let bob = parties.as_array().unwrap().iter().find(|p| p["party"] == "bob").unwrap();
    let alice = parties.as_array().unwrap().iter().find(|p| p["party"] == "alice").unwrap();
    assert_eq!(bob["margin_fen"], 3_000_000);
    assert_eq!(alice["margin_fen"], 3_000_000);
    // The trade was at ¥81 against a ¥80 settlement price: Bob (long) pays ¥1 × 3,000 t.
    assert_eq!(bob["balance_fen"], 100_000_000 - 40_000_000 - 16_000_000 - 300_000);
    assert_eq!(alice["balance_fen"], 10_000_000 + 40_000_000 + 16_000_000 + 300_000);
    assert_eq!(bob["available_fen"], bob["balance_fen"].as_i64().unwrap() - 3_000_000);
    let (_, contracts) = w.get("/api/v1/finance/contracts", Some(&s["bob"])).await;
    let c = &contracts[0];
    assert_eq!(
        (c["contract"].as_str(), c["open_interest"].as_u64(), c["settlement_price_fen"].as_i64()),
        (Some("CEA-2025-F2512"), Some(3), Some(8_000))
    );
    assert_eq!(c["positions"], json!([{"party": "bob", "account": B, "contracts": 3}]), "Bob sees his own position only");
    let (_, contracts) = w.get("/api/v1/finance/contracts", Some(&s["regulator-cn"])).await;
    assert_eq!(contracts[0]["positions"].as_array().unwrap().len(), 2);

    // Inclusion: the submission's credits, rounded down per participant.
    let (status, subs) = w.get("/api/v1/inclusion/submissions", Some(&s["carol"])).await;
    assert_eq!(status, StatusCode::OK, "{subs}");
    assert_eq!(
        subs,
        json!([{"submission": "s1", "pilot": "BJ", "aggregator": "carol-solar", "account": C, "methodology": "SOLAR-ROOF", "year": 2025,
                "records": 2, "participants": 2, "credits_t": 16, "unit": "BCER:SOLAR-ROOF:2025", "status": "accepted",
                "verifier": "bj-verifier", "note": "meter data checked"}])
    );
    let (_, pilots) = w.get("/api/v1/inclusion/pilots", Some(&s["regulator-bj"])).await;
    assert_eq!(pilots, json!([{"pilot": "BJ", "standard": "BCER", "issued_t": 0, "transferred_t": 0, "surrendered_t": 0}]));
    let (status, catalog) = w.get("/api/v1/inclusion/methodologies", None).await;
    assert_eq!(status, StatusCode::OK);
    let solar = catalog["methodologies"].as_array().unwrap().iter().find(|m| m["id"] == "SOLAR-ROOF").unwrap();
    assert_eq!(solar["factor_t_per_unit"], "0.0005703");
    assert!(catalog["schemes"].as_array().unwrap().iter().any(|s| s["market"] == "BJ" && s["standard"] == "BCER"));

    // Who sees what: (pledges, repos, contracts' positions, parties, submissions, pilots).
    for role in ROLES {
        let secret = s.get(role).map(String::as_str);
        let mut counts = Vec::new();
        let mut statuses = Vec::new();
        for uri in ["pledges", "repos", "parties"]
            .map(|u| format!("/api/v1/finance/{u}"))
            .into_iter()
            .chain(["/api/v1/inclusion/submissions".to_string(), "/api/v1/inclusion/pilots".to_string()])
        {
            let (status, body) = w.get(&uri, secret).await;
            statuses.push(status);
            counts.push(body.as_array().map_or(0, Vec::len));
        }
        let (status, contracts) = w.get("/api/v1/finance/contracts", secret).await;
        statuses.push(status);
        counts.push(contracts[0]["positions"].as_array().map_or(0, Vec::len));
        let expected_status = match role {
            "public" => StatusCode::UNAUTHORIZED,
            "verifier" => StatusCode::FORBIDDEN,
            _ => StatusCode::OK,
        };
        assert!(statuses.iter().all(|s| *s == expected_status), "{role}: {statuses:?}");
        let expected: [usize; 6] = match role {
            "admin" | "auditor" => [1, 1, 2, 1, 1, 2],
            "regulator-cn" => [1, 1, 2, 0, 0, 2],
            "regulator-bj" => [0, 0, 0, 1, 1, 0],
            "alice" | "approver" => [1, 1, 1, 0, 0, 1],
            "bob" => [1, 1, 1, 0, 0, 1],
            "carol" => [0, 0, 0, 1, 0, 0],
            _ => [0; 6],
        };
        assert_eq!(counts, expected, "{role}: (pledges, repos, parties, submissions, pilots, positions)");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_describes_the_calculators_and_views() {
    let w = World::new();
    let (_, doc) = w.get("/api/v1/openapi.json", None).await;
    let paths = doc["paths"].as_object().unwrap();
    let operations = [
        ("get", "/api/v1/cbam/goods", "cbam"),
        ("post", "/api/v1/cbam/see", "cbam"),
        ("post", "/api/v1/cbam/communication", "cbam"),
        ("post", "/api/v1/cbam/liability", "cbam"),
        ("post", "/api/v1/cbam/scenario", "cbam"),
        ("post", "/api/v1/cbam/qreport", "cbam"),
        ("post", "/api/v1/cbam/carbon-price", "cbam"),
        ("get", "/api/v1/sim/calibration", "simulation"),
        ("post", "/api/v1/sim/check", "simulation"),
        ("post", "/api/v1/sim/run", "simulation"),
        ("get", "/api/v1/finance/parties", "finance"),
        ("get", "/api/v1/finance/pledges", "finance"),
        ("get", "/api/v1/finance/repos", "finance"),
        ("get", "/api/v1/finance/contracts", "finance"),
        ("get", "/api/v1/inclusion/methodologies", "finance"),
        ("get", "/api/v1/inclusion/submissions", "finance"),
        ("get", "/api/v1/inclusion/pilots", "finance"),
    ];
    for (method, path, tag) in operations {
        let op = &paths.get(path).unwrap_or_else(|| panic!("{path} missing from the document"))[method];
        assert_eq!(op["tags"], json!([tag]), "{method} {path}");
        let responses = op["responses"].as_object().unwrap();
        assert!(responses.contains_key("200") && responses.contains_key("401"), "{method} {path}: {responses:?}");
        if method == "post" {
            assert!(op["requestBody"].is_object() && responses.contains_key("422"), "{method} {path}");
        }
    }
    let tags: Vec<&str> = doc["tags"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert!(["cbam", "simulation", "finance"].iter().all(|t| tags.contains(t)), "{tags:?}");
    let content = &paths["/api/v1/cbam/communication"]["post"]["responses"]["200"]["content"];
    assert!(content["application/json"].is_object() && content[ets_xlsx()].is_object(), "{content}");
    assert!(paths["/api/v1/cbam/qreport"]["post"]["responses"]["200"]["content"]["application/xml"].is_object());
}

fn ets_xlsx() -> &'static str {
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
}
