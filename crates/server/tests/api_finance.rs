//! The finance desk's and the carbon-inclusion register's writes through the API, and the CBAM
//! communication import: who may do what, the registry effects, refusals that change nothing,
//! retries answered as repeated, and what survives a restart.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{World, A, B, C};
use ets_registry::UnitRef;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use tower::ServiceExt;

const INSTALLATION: &str = include_str!("../../../examples/cbam/steel-installation.json");

async fn secrets(w: &World, users: &[&'static str]) -> BTreeMap<&'static str, String> {
    let mut s = BTreeMap::new();
    for user in users {
        s.insert(*user, w.login(user).await);
    }
    s
}

fn cea() -> Value {
    json!({"code": "CEA", "project": null, "vintage": 2025})
}

/// Free and total units of `unit` in `account`, from the registry.
fn holding(w: &World, account: &str, unit: &UnitRef) -> (u64, u64) {
    let ledger = w.platform.registry.lock().unwrap();
    let r = ledger.registry();
    let a = r.find_account(account).unwrap();
    let Ok(u) = r.unit_named(unit) else { return (0, 0) };
    r.holding(a, u).map_or((0, 0), |h| (h.free_total(), h.total()))
}

fn journal_head(w: &World) -> u64 {
    w.platform.finance.lock().unwrap().head().0
}

/// What a refused or denied command must leave: the finance journal, the registry and A's and
/// B's holdings as they were.
struct Unchanged {
    finance: u64,
    registry: u64,
    a: (u64, u64),
    b: (u64, u64),
}

impl Unchanged {
    fn now(w: &World) -> Unchanged {
        let unit = UnitRef::allowance("CEA", 2025);
        let registry = w.platform.registry.lock().unwrap().registry().seq();
        Unchanged { finance: journal_head(w), registry, a: holding(w, A, &unit), b: holding(w, B, &unit) }
    }

    fn check(&self, w: &World, what: &str) {
        let after = Unchanged::now(w);
        assert_eq!(
            (after.finance, after.registry, after.a, after.b),
            (self.finance, self.registry, self.a, self.b),
            "{what} changed something"
        );
    }
}

async fn desk(w: &World, secret: &str, id: &str, command: Value) -> (StatusCode, Value) {
    w.post("/api/v1/finance/commands", Some(secret), json!({"id": id, "command": command})).await
}

async fn inclusion(w: &World, secret: &str, id: &str, command: Value) -> (StatusCode, Value) {
    w.post("/api/v1/inclusion/commands", Some(secret), json!({"id": id, "command": command})).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pledge_a_repo_and_futures_through_the_api_move_units_in_the_registry() {
    let w = World::new();
    let s = secrets(&w, &["finance-op", "alice", "bob", "carol", "regulator-cn", "admin", "auditor", "operator"]).await;
    let op = s["finance-op"].as_str();
    let unit = UnitRef::allowance("CEA", 2025);

    // Nothing is set up: the operator's commands are 409 until the desk is.
    let (status, body) = desk(&w, op, "d0", json!({"Deposit": {"party": "alice", "amount_fen": 1}})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    // Only the finance operator sets the desk up; the registrar is the market's authority.
    for who in ["admin", "regulator-cn", "operator", "alice"] {
        let (status, _) = desk(&w, &s[who], "init", json!({"Init": {"registrar_market": "CN"}})).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{who}");
    }
    let (status, body) = desk(&w, op, "init", json!({"Init": {"operator": "desk", "registrar_market": "CN"}})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!((body["actor"].as_str(), body["repeated"].as_bool()), (Some("desk"), Some(false)));
    let (status, body) = desk(&w, op, "init", json!({"Init": {"operator": "desk", "registrar_market": "CN"}})).await;
    assert_eq!((status, body["repeated"].as_bool()), (StatusCode::CREATED, Some(true)), "{body}");
    let (status, _) = desk(&w, op, "init2", json!({"Init": {"operator": "other", "registrar_market": "CN"}})).await;
    assert_eq!(status, StatusCode::CONFLICT);

    // Parties: the representatives of their accounts, in the registrar's market.
    for (id, party, account) in [("party-a", "alice", A), ("party-b", "bob", B)] {
        let (status, body) = desk(&w, op, id, json!({"AddParty": {"party": party, "account": account}})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let before = Unchanged::now(&w);
    let (status, body) = desk(&w, op, "party-c", json!({"AddParty": {"party": "carol", "account": C}})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "carol's account is in BJ, not the registrar's market: {body}");
    assert!(body["message"].as_str().unwrap().contains("registrar"), "{body}");
    let (status, body) = desk(&w, op, "party-m", json!({"AddParty": {"party": "mallory", "account": A}})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "mallory does not represent A: {body}");
    before.check(&w, "refused parties");
    for (id, party, fen) in [("dep-b", "bob", 100_000_000), ("dep-a", "alice", 10_000_000)] {
        let (status, body) = desk(&w, op, id, json!({"Deposit": {"party": party, "amount_fen": fen}})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    // The pledge: registered by the operator; Alice's units are locked in the registry (a
    // pending transfer to Bob, still hers), Bob's loan paid to her.
    let pledge = json!({"Pledge": {"pledge": "p1", "lender": "bob", "borrower": "alice", "unit": cea(), "quantity": 10_000,
        "loan_fen": 40_000_000, "haircut_bp": 3_000, "maintenance_bp": 12_000, "topup_days": 3, "maturity": "2025-12-31"}});
    let (free_a, total_a) = holding(&w, A, &unit);
    assert_eq!((free_a, total_a), (80_000, 100_000), "the World lodged 20,000 t of A's at the exchange");
    let (status, body) = desk(&w, op, "pledge-1", pledge.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["registry_commands"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(holding(&w, A, &unit), (70_000, 100_000), "10,000 t locked, still Alice's");
    assert!(w.platform.registry.lock().unwrap().registry().pending("pledge:p1:1").is_some());
    // A retry is answered, not carried out twice; the id with another command is 409.
    let before = Unchanged::now(&w);
    let (status, body) = desk(&w, op, "pledge-1", pledge).await;
    assert_eq!((status, body["repeated"].as_bool()), (StatusCode::CREATED, Some(true)), "{body}");
    let (status, _) = desk(&w, op, "pledge-1", json!({"Deposit": {"party": "bob", "amount_fen": 1}})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    before.check(&w, "a retried pledge");

    // Refusals and denials change nothing.
    let too_much = json!({"Pledge": {"pledge": "p2", "lender": "bob", "borrower": "alice", "unit": cea(), "quantity": 999_999,
        "loan_fen": 1_000, "haircut_bp": 3_000, "maintenance_bp": 12_000, "topup_days": 3, "maturity": "2025-12-31"}});
    let (status, body) = desk(&w, op, "pledge-2", too_much.clone()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "more than Alice holds freely: {body}");
    let denied: Vec<(&str, Value, StatusCode)> = vec![
        // A party may not register a pledge itself: it binds the lender's cash too.
        ("alice", too_much, StatusCode::FORBIDDEN),
        ("alice", json!({"Deposit": {"party": "alice", "amount_fen": 1}}), StatusCode::FORBIDDEN),
        ("alice", json!({"Withdraw": {"party": "bob", "amount_fen": 1}}), StatusCode::FORBIDDEN),
        // The lender is no borrower: Bob may not top up or repay Alice's pledge.
        ("bob", json!({"TopUp": {"pledge": "p1", "quantity": 1}}), StatusCode::FORBIDDEN),
        ("bob", json!({"Repay": {"pledge": "p1", "amount_fen": 1}}), StatusCode::FORBIDDEN),
        // Carol is nobody's party; a pledge she may not see is not confirmed to exist.
        ("carol", json!({"TopUp": {"pledge": "p1", "quantity": 1}}), StatusCode::FORBIDDEN),
        ("carol", json!({"TopUp": {"pledge": "nope", "quantity": 1}}), StatusCode::FORBIDDEN),
        ("regulator-cn", json!({"Mark": {"unit": cea(), "close_fen": 8_000}}), StatusCode::FORBIDDEN),
        ("auditor", json!("EndOfDay"), StatusCode::FORBIDDEN),
        ("operator", json!({"Deposit": {"party": "alice", "amount_fen": 1}}), StatusCode::FORBIDDEN),
        // The operator learns a pledge is not there.
        ("finance-op", json!({"TopUp": {"pledge": "nope", "quantity": 1}}), StatusCode::NOT_FOUND),
        // Not a desk command.
        ("finance-op", json!({"Explode": {}}), StatusCode::UNPROCESSABLE_ENTITY),
    ];
    for (i, (who, command, expected)) in denied.into_iter().enumerate() {
        let (status, body) = desk(&w, &s[who], &format!("x{i}"), command.clone()).await;
        assert_eq!(status, expected, "{who} {command}: {body}");
    }
    let (status, _) = w.post("/api/v1/finance/commands", None, json!({"id": "x", "command": "EndOfDay"})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Only the operator moves the business date forward.
    let (status, _) = w
        .post(
            "/api/v1/finance/commands",
            Some(&s["alice"]),
            json!({"id": "dated", "date": "2099-01-01", "command": {"Withdraw": {"party": "alice", "amount_fen": 1}}}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    before.check(&w, "refused and denied commands");

    // Alice acts for herself: a top-up locks 2,000 t more, under her own name.
    let (status, body) = desk(&w, &s["alice"], "topup", json!({"TopUp": {"pledge": "p1", "quantity": 2_000}})).await;
    assert_eq!((status, body["actor"].as_str(), body["date"].as_str()), (StatusCode::CREATED, Some("alice"), Some("2025-06-04")), "{body}");
    assert_eq!(holding(&w, A, &unit), (68_000, 100_000));

    // A repo: 2,000 t move from Alice to Bob now.
    let repo = json!({"Repo": {"repo": "r1", "seller": "alice", "buyer": "bob", "unit": cea(), "quantity": 2_000,
        "start_fen": 16_000_000, "repurchase_fen": 16_200_000, "repurchase_date": "2025-09-01", "penalty_bp": 500}});
    let (status, body) = desk(&w, op, "repo-1", repo).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(holding(&w, A, &unit), (66_000, 98_000));
    assert_eq!(holding(&w, B, &unit), (52_000, 52_000));

    // Futures: the operator lists a month; Alice sells and Bob buys on its book, as themselves.
    let spec = json!({"ListContract": {"code": "CEA-2025-F2512", "unit": cea(), "size_t": 1_000, "expiry": "2025-12-15",
        "settlement": "Physical", "initial_margin_fen": 1_000_000, "position_limit": 100, "reference_price_fen": 8_000,
        "delivery_penalty_bp": 1_000}});
    let (status, body) = desk(&w, op, "list", spec).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let order = |order: u64, party: &str, side: &str| {
        json!({"PlaceOrder": {"contract": "CEA-2025-F2512", "order": order, "party": party, "side": side, "price_fen": 8_100,
            "contracts": 3, "tif": "Gtc"}})
    };
    let (status, body) = desk(&w, &s["alice"], "sell", order(1, "alice", "Sell")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _) = desk(&w, &s["alice"], "buy-for-bob", order(2, "bob", "Buy")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "Alice orders for herself only");
    let (status, body) = desk(&w, &s["bob"], "buy", order(2, "bob", "Buy")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(body["events"].as_array().unwrap().iter().any(|e| e.get("Traded").is_some()), "{body}");
    let (status, contracts) = w.get("/api/v1/finance/contracts", Some(op)).await;
    assert_eq!(status, StatusCode::OK, "the operator reads the desk: {contracts}");
    assert_eq!(contracts[0]["open_interest"], 3);
    assert_eq!(contracts[0]["positions"].as_array().unwrap().len(), 2);

    // While Alice's account may not send units (blocked by the administrator), her top-up,
    // which would lock more of them, is refused before anything is journaled (the registry's
    // own rule, found by the trial of its instructions); the end of day, which moves nothing
    // of hers, still runs: one blocked party does not halt the desk.
    let status_of = |status: &str| json!({"id": format!("a-{status}"), "command": {"SetAccountStatus": {"account": A, "status": status}}});
    let (status, body) = w.post("/api/v1/registry/commands", Some(&s["admin"]), status_of("Blocked")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let before = Unchanged::now(&w);
    let (status, body) = desk(&w, &s["alice"], "topup-blocked", json!({"TopUp": {"pledge": "p1", "quantity": 1_000}})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["message"].as_str().unwrap().contains("the registry would refuse"), "{body}");
    before.check(&w, "a top-up refused for a blocked account");
    let (status, body) = desk(&w, op, "eod", json!("EndOfDay")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _) = w.post("/api/v1/registry/commands", Some(&s["admin"]), status_of("Open")).await;
    assert_eq!(status, StatusCode::CREATED);

    // Alice repays in full: the registrar releases her units.
    let (status, body) = desk(&w, &s["alice"], "repay", json!({"Repay": {"pledge": "p1", "amount_fen": 40_000_000}})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["registry_commands"].as_array().unwrap().len(), 2, "both pending transfers voided: {body}");
    assert_eq!(holding(&w, A, &unit), (78_000, 98_000));
    let (_, pledges) = w.get("/api/v1/finance/pledges", Some(&s["alice"])).await;
    assert_eq!(pledges[0]["status"], "released");

    // The next day a retry of her top-up names the date the answer gave: repeated, not a new
    // top-up (without the date it would be another command under a used id).
    w.set_time(common::cet("2025-06-05", 10, 0));
    let alice = w.login("alice").await;
    let retry = |date: Option<&str>| {
        let mut body = json!({"id": "topup", "command": {"TopUp": {"pledge": "p1", "quantity": 2_000}}});
        if let Some(d) = date {
            body["date"] = json!(d);
        }
        body
    };
    let (status, body) = w.post("/api/v1/finance/commands", Some(&alice), retry(Some("2025-06-04"))).await;
    assert_eq!((status, body["repeated"].as_bool()), (StatusCode::CREATED, Some(true)), "{body}");
    let (status, _) = w.post("/api/v1/finance/commands", Some(&alice), retry(None)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(holding(&w, A, &unit), (78_000, 98_000));

    // Everything acknowledged is in the journal: a fresh open replays it.
    let head = journal_head(&w);
    let log = ets_store::FinanceLog::open(w.location.open().unwrap()).unwrap();
    assert_eq!(log.head().0, head);
    let desk_state = log.desk().unwrap();
    assert_eq!(desk_state.pledge("p1").unwrap().status, ets_finance::desk::PledgeStatus::Released);
    assert_eq!(desk_state.contract("CEA-2025-F2512").unwrap().open_interest(), 3);
    assert_eq!(log.undone(w.platform.registry.lock().unwrap().registry()), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn carbon_inclusion_through_the_api_issues_and_moves_credits_in_the_registry() {
    let w = World::new();
    let s = secrets(&w, &["finance-op", "carol", "bob", "verifier", "regulator-bj", "regulator-cn", "admin", "alice"]).await;
    let op = s["finance-op"].as_str();
    let credit = UnitRef::offset("BCER", "SOLAR-ROOF", 2025);
    let (status, _) = inclusion(&w, op, "v0", json!({"AddVerifier": {"verifier": "verifier"}})).await;
    assert_eq!(status, StatusCode::CONFLICT, "not set up yet");
    let (status, _) = inclusion(&w, &s["admin"], "init", json!({"Init": {"operator": "bj-inclusion"}})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = inclusion(&w, op, "init", json!({"Init": {"operator": "bj-inclusion"}})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = inclusion(&w, op, "init", json!({"Init": {"operator": "bj-inclusion"}})).await;
    assert_eq!((status, body["repeated"].as_bool()), (StatusCode::CREATED, Some(true)));

    // The operator registers Carol (C's representative) as an aggregator, and a verifier.
    let (status, body) = inclusion(&w, op, "agg-m", json!({"AddAggregator": {"aggregator": "mallory", "pilot": "BJ", "account": C}})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "mallory does not represent C: {body}");
    let (status, _) =
        inclusion(&w, &s["carol"], "agg", json!({"AddAggregator": {"aggregator": "carol", "pilot": "BJ", "account": C}})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = inclusion(&w, op, "agg", json!({"AddAggregator": {"aggregator": "carol", "pilot": "BJ", "account": C}})).await;
    assert_eq!((status, body["actor"].as_str()), (StatusCode::CREATED, Some("bj-inclusion")), "{body}");
    let (status, body) = inclusion(&w, op, "ver", json!({"AddVerifier": {"verifier": "verifier"}})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // Carol submits two households' rooftop solar: 5 t + 11 t.
    let record = |id: &str, participant: &str, kwh: &str| {
        json!({"record": id, "participant": participant, "date": "2025-03-31", "quantity": kwh,
               "evidence_sha256": ets_store::sha256_hex(id.as_bytes())})
    };
    let submit = json!({"Submit": {"submission": "s1", "aggregator": "carol", "methodology": "SOLAR-ROOF", "year": 2025,
        "records": [record("r-1", "H1", "10000"), record("r-2", "H2", "20000")]}});
    let (status, _) = inclusion(&w, &s["bob"], "sub", submit.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "bob is not the aggregator");
    let (status, body) = inclusion(&w, &s["carol"], "sub", submit.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["events"][0]["Submitted"]["credits_t"], 16, "{body}");
    let (status, body) = inclusion(&w, &s["carol"], "sub", submit).await;
    assert_eq!((status, body["repeated"].as_bool()), (StatusCode::CREATED, Some(true)));

    // Verified by the verifier, issued by Beijing's authority (as bj-auth in the registry).
    let (status, _) = inclusion(&w, &s["carol"], "verify", json!({"Verify": {"submission": "s1", "accept": true}})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) =
        inclusion(&w, &s["verifier"], "verify", json!({"Verify": {"submission": "s1", "accept": true, "note": "ok"}})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _) = inclusion(&w, &s["regulator-cn"], "issue", json!({"Issue": {"submission": "s1"}})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "not CN's credits");
    let (status, _) = inclusion(&w, &s["regulator-cn"], "issue-none", json!({"Issue": {"submission": "none"}})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = inclusion(&w, &s["carol"], "issue", json!({"Issue": {"submission": "s1"}})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(holding(&w, C, &credit), (0, 0));
    let (status, body) = inclusion(&w, &s["regulator-bj"], "issue", json!({"Issue": {"submission": "s1"}})).await;
    assert_eq!((status, body["actor"].as_str()), (StatusCode::CREATED, Some("bj-auth")), "{body}");
    assert_eq!(holding(&w, C, &credit), (16, 16));

    // Carol sells 5 t to a Beijing entity's account (opened by the administrator for bob).
    let open = json!({"id": "open-d", "command": {"OpenAccount": {"market": "BJ", "kind": "Operator", "holder": "Dai Co",
        "holder_type": "Entity", "representatives": ["bob"]}}});
    let (status, opened) = w.post("/api/v1/registry/commands", Some(&s["admin"]), open).await;
    assert_eq!(status, StatusCode::CREATED, "{opened}");
    let d = opened["account"].as_str().unwrap().to_string();
    let unit = json!({"code": "BCER", "project": "SOLAR-ROOF", "vintage": 2025});
    let before = (journal_head(&w), holding(&w, C, &credit));
    let refused: Vec<(&str, Value, StatusCode)> = vec![
        // Beijing's credits stay in Beijing.
        ("carol", json!({"Transfer": {"from": C, "to": A, "unit": unit, "quantity": 5}}), StatusCode::UNPROCESSABLE_ENTITY),
        ("carol", json!({"Transfer": {"from": C, "to": d, "unit": unit, "quantity": 17}}), StatusCode::UNPROCESSABLE_ENTITY),
        ("bob", json!({"Transfer": {"from": C, "to": d, "unit": unit, "quantity": 5}}), StatusCode::FORBIDDEN),
        ("regulator-bj", json!({"Transfer": {"from": C, "to": d, "unit": unit, "quantity": 5}}), StatusCode::FORBIDDEN),
        // C is no covered entity's account: nothing to surrender for.
        ("carol", json!({"Surrender": {"account": C, "unit": unit, "quantity": 1, "year": 2025}}), StatusCode::UNPROCESSABLE_ENTITY),
        ("alice", json!({"Surrender": {"account": C, "unit": unit, "quantity": 1, "year": 2025}}), StatusCode::FORBIDDEN),
    ];
    for (i, (who, command, expected)) in refused.into_iter().enumerate() {
        let (status, body) = inclusion(&w, &s[who], &format!("x{i}"), command.clone()).await;
        assert_eq!(status, expected, "{who} {command}: {body}");
    }
    assert_eq!((journal_head(&w), holding(&w, C, &credit)), before, "refusals change nothing");
    let (status, body) = inclusion(&w, &s["carol"], "sell", json!({"Transfer": {"from": C, "to": d, "unit": unit, "quantity": 5}})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!((holding(&w, C, &credit), holding(&w, &d, &credit)), ((11, 11), (5, 5)));
    let (_, pilots) = w.get("/api/v1/inclusion/pilots", Some(op)).await;
    assert_eq!(pilots, json!([{"pilot": "BJ", "standard": "BCER", "issued_t": 16, "transferred_t": 5, "surrendered_t": 0}]));
}

async fn send(w: &World, secret: Option<&str>, content_type: &str, body: Vec<u8>) -> (StatusCode, Value, String) {
    let mut request = Request::builder().method("POST").uri("/api/v1/cbam/communication/import").header("content-type", content_type);
    if let Some(secret) = secret {
        request = request.header("authorization", format!("Bearer {secret}"));
    }
    let response = w.app.clone().oneshot(request.body(Body::from(body)).unwrap()).await.unwrap();
    let status = response.status();
    let kind = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null), kind)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cbam_communication_exported_as_json_or_xlsx_imports_back() {
    let w = World::new();
    let secret = w.login("carol").await;
    let installation: Value = serde_json::from_str(INSTALLATION).unwrap();
    let (status, exported) = w.post("/api/v1/cbam/communication", Some(&secret), installation.clone()).await;
    assert_eq!(status, StatusCode::OK, "{exported}");
    assert!(!exported["products"].as_array().unwrap().is_empty());

    // The JSON round trip: the same communication back.
    let (status, imported, kind) = send(&w, Some(&secret), "application/json", exported.to_string().into_bytes()).await;
    assert_eq!((status, kind.as_str()), (StatusCode::OK, "application/json"), "{imported}");
    assert_eq!(imported, exported);

    // The workbook round trip: the products the JSON export has.
    let request = Request::builder()
        .method("POST")
        .uri("/api/v1/cbam/communication?format=xlsx")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {secret}"))
        .body(Body::from(installation.to_string()))
        .unwrap();
    let response = w.app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let workbook = response.into_body().collect().await.unwrap().to_bytes().to_vec();
    let xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
    let (status, imported, _) = send(&w, Some(&secret), xlsx, workbook.clone()).await;
    assert_eq!(status, StatusCode::OK, "{imported}");
    assert_eq!(imported["installation"], exported["installation"]);
    let processes =
        |c: &Value| c["products"].as_array().unwrap().iter().map(|p| (p["process"].clone(), p["cn"].clone())).collect::<Vec<_>>();
    assert_eq!(processes(&imported), processes(&exported));

    // Bad input: a clear 422 naming what was wrong; another content type 415; no caller 401.
    let (status, body, _) = send(&w, Some(&secret), xlsx, b"not a workbook".to_vec()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["message"].as_str().unwrap().starts_with("the workbook"), "{body}");
    let (status, body, _) = send(&w, Some(&secret), xlsx, workbook[..workbook.len() / 2].to_vec()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "a truncated workbook: {body}");
    let mut broken = exported.clone();
    broken["products"][0]["see_direct"] = json!("lots");
    let (status, body, _) = send(&w, Some(&secret), "application/json", broken.to_string().into_bytes()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["message"].as_str().unwrap().starts_with("the communication"), "{body}");
    let (status, _, _) = send(&w, Some(&secret), "application/json", b"{\"products\": [".to_vec()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _, _) = send(&w, Some(&secret), "text/csv", b"a,b".to_vec()).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (status, _, _) = send(&w, None, "application/json", exported.to_string().into_bytes()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_the_finance_writes_and_the_import() {
    let w = World::new();
    let (_, doc) = w.get("/api/v1/openapi.json", None).await;
    let paths = doc["paths"].as_object().unwrap();
    for (path, id, tag) in [
        ("/api/v1/finance/commands", "finance_command", "finance"),
        ("/api/v1/inclusion/commands", "inclusion_command", "finance"),
        ("/api/v1/cbam/communication/import", "cbam_communication_import", "cbam"),
    ] {
        let op = &paths[path]["post"];
        assert_eq!((op["operationId"].as_str(), op["tags"].clone()), (Some(id), json!([tag])), "{path}");
        let responses = op["responses"].as_object().unwrap();
        for code in ["400", "401", "403", "415", "422"] {
            assert!(responses.contains_key(code), "{path} lacks {code}: {responses:?}");
        }
    }
    let import = &paths["/api/v1/cbam/communication/import"]["post"];
    let content = import["requestBody"]["content"].as_object().unwrap();
    assert!(content.contains_key("application/json") && content.contains_key(ets_server_xlsx()), "{content:?}");
    for code in ["201", "404", "409"] {
        assert!(paths["/api/v1/finance/commands"]["post"]["responses"].get(code).is_some(), "{code}");
    }
}

fn ets_server_xlsx() -> &'static str {
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
}
