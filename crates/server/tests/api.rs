//! The API end to end through the router (no sockets): every endpoint, the authorization
//! matrix, and the registry's security controls as a user meets them.

mod common;

use axum::http::{Method, StatusCode};
use common::{cet, World, A, B, C};
use serde_json::{json, Value};

const ROLES: [&str; 12] = [
    "public",
    "admin",
    "auditor",
    "regulator-cn",
    "regulator-bj",
    "verifier",
    "alice",
    "approver",
    "bob",
    "carol",
    "operator",
    "finance-op",
];

/// Every role against every endpoint: allowed exactly where intended. Each request is built so
/// that, once allowed, it fails on its content (or harmlessly succeeds), and denied it is 401
/// (no credential) or 403.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_matrix() {
    let w = World::new();
    let mut secrets = std::collections::BTreeMap::new();
    for user in &ROLES[1..] {
        secrets.insert(*user, w.login(user).await);
    }
    let everyone: Vec<&str> = ROLES.to_vec();
    let signed_in: Vec<&str> = ROLES[1..].to_vec();
    let finance: Vec<&str> = ROLES[1..].iter().copied().filter(|r| *r != "verifier" && *r != "operator").collect();
    let finance_writes_before = w.platform.finance.lock().unwrap().head().0;
    let cases: Vec<(Method, String, Option<Value>, Vec<&str>)> = vec![
        (Method::GET, "/api/v1/health".into(), None, everyone.clone()),
        (Method::GET, "/api/v1/me".into(), None, everyone.clone()),
        (Method::GET, "/api/v1/markets".into(), None, everyone.clone()),
        (Method::GET, "/api/v1/instruments".into(), None, everyone.clone()),
        (Method::GET, "/api/v1/instruments/CEA-2025".into(), None, everyone.clone()),
        (Method::GET, "/api/v1/instruments/CEA-2025/trades".into(), None, everyone.clone()),
        (Method::GET, "/api/v1/accounts".into(), None, vec!["admin", "auditor"]),
        (Method::GET, "/api/v1/accounts?market=CN".into(), None, vec!["admin", "auditor", "regulator-cn"]),
        (Method::GET, "/api/v1/accounts?market=BJ".into(), None, vec!["admin", "auditor", "regulator-bj"]),
        (Method::GET, format!("/api/v1/accounts/{A}"), None, vec!["admin", "auditor", "regulator-cn", "alice", "approver"]),
        (Method::GET, format!("/api/v1/accounts/{C}"), None, vec!["admin", "auditor", "regulator-bj", "carol"]),
        (Method::GET, format!("/api/v1/accounts/{A}/transactions"), None, vec!["admin", "auditor", "regulator-cn", "alice", "approver"]),
        (Method::GET, format!("/api/v1/accounts/{B}/trusted"), None, vec!["admin", "auditor", "regulator-cn", "bob"]),
        (Method::GET, "/api/v1/transfers".into(), None, signed_in.clone()),
        // More than A holds: refused (422) once allowed, nothing proposed.
        (
            Method::POST,
            "/api/v1/transfers".into(),
            Some(json!({"from": A, "to": B, "unit": "CEA:2025", "quantity_t": 999_999_999})),
            vec!["alice"],
        ),
        (
            Method::POST,
            "/api/v1/transfers".into(),
            Some(json!({"from": C, "to": A, "unit": "CEA:2025", "quantity_t": 999_999_999})),
            vec!["carol"],
        ),
        // A zero quantity: refused by the venue once allowed.
        (
            Method::POST,
            "/api/v1/orders".into(),
            Some(json!({"instrument": "CEA-2025", "side": "buy", "price_fen": 8000, "qty_t": 0})),
            vec!["alice", "bob"],
        ),
        // Nothing to lodge: invalid once allowed.
        (Method::POST, "/api/v1/lodgements".into(), Some(json!({"instrument": "CEA-2025", "qty_t": 0})), vec!["alice", "bob"]),
        (Method::GET, "/api/v1/users".into(), None, vec!["admin", "auditor"]),
        // An unknown role: invalid once allowed, no user made.
        (
            Method::POST,
            "/api/v1/users".into(),
            Some(json!({"user": "zed", "password": common::PASSWORD, "roles": ["no-such-role"]})),
            vec!["admin"],
        ),
        (Method::GET, "/api/v1/audit".into(), None, vec!["admin", "auditor"]),
        (Method::GET, "/api/v1/mrv/reports".into(), None, vec!["admin", "auditor", "regulator-cn", "regulator-bj", "verifier"]),
        (Method::GET, "/api/v1/mrv/anomalies?year=2025".into(), None, vec!["admin", "auditor", "regulator-cn", "regulator-bj", "verifier"]),
        // Compliance: the market's authority and registry-wide readers, and representatives
        // for their own accounts' entities.
        (
            Method::GET,
            "/api/v1/compliance?year=2025".into(),
            None,
            vec!["admin", "auditor", "regulator-cn", "regulator-bj", "alice", "approver", "bob", "carol"],
        ),
        (Method::GET, "/api/v1/compliance/CN?year=2025".into(), None, vec!["admin", "auditor", "regulator-cn", "alice", "approver", "bob"]),
        (Method::GET, "/api/v1/compliance/BJ?year=2025".into(), None, vec!["admin", "auditor", "regulator-bj", "carol"]),
        (Method::GET, "/api/v1/auctions".into(), None, everyone.clone()),
        // Rulebooks are public; an allocation is computed for the market's authority and
        // registry-wide readers (a year outside the rulebook: 400 once allowed) and issued by
        // the market's authority alone.
        (Method::GET, "/api/v1/rulebooks".into(), None, everyone.clone()),
        (Method::GET, "/api/v1/rulebooks/cn-power-2025-2026-draft".into(), None, everyone.clone()),
        (Method::POST, "/api/v1/allocations".into(), Some(json!({"market": "CN", "year": 1990})), vec!["admin", "auditor", "regulator-cn"]),
        (Method::POST, "/api/v1/allocations".into(), Some(json!({"market": "BJ", "year": 1990})), vec!["admin", "auditor", "regulator-bj"]),
        (Method::POST, "/api/v1/allocations".into(), Some(json!({"market": "CN", "year": 1990, "issue": true})), vec!["regulator-cn"]),
        // Surrendering more than A holds: alice's kind of command (refused by the registry once
        // allowed), nobody else's.
        (
            Method::POST,
            "/api/v1/registry/commands".into(),
            Some(
                json!({"id": "m1", "command": {"Surrender": {"account": A, "unit": {"code": "CEA", "project": null, "vintage": 2025}, "quantity": 999_999_999u64, "compliance_year": 2025}}}),
            ),
            vec!["alice"],
        ),
        // Accepting a report not yet verified: the national authority's kind of step (refused
        // by the MRV rules once allowed: regulator-cn is no MRV official), nobody else's.
        (
            Method::POST,
            "/api/v1/mrv/commands".into(),
            Some(json!({"id": "m1", "command": {"type": "accept", "report": common::PENDING_REPORT}})),
            vec!["regulator-cn"],
        ),
        // No volume: invalid once allowed, nothing opened.
        (
            Method::POST,
            "/api/v1/auctions".into(),
            Some(json!({"auction": "m1", "instrument": "CEA-2025", "volume_t": 0, "reserve_price_fen": 7000})),
            vec!["regulator-cn"],
        ),
        // A bid in no open auction: the members' kind of step (404 once allowed).
        (Method::POST, "/api/v1/auctions/none/bids".into(), Some(json!({"price_fen": 7000, "qty_t": 100})), vec!["alice", "bob"]),
        (Method::DELETE, "/api/v1/auctions/none/bids/0".into(), None, vec!["alice", "bob"]),
        // Clearing an auction that is not open: a market authority's kind of step (404 once allowed).
        (Method::POST, "/api/v1/auctions/none/clear".into(), None, vec!["regulator-cn", "regulator-bj"]),
        // CBAM: reference data is public; the calculators take any signed-in caller (an empty
        // body: 422 once allowed); the carbon price paid reads the account (a zero emission: 422).
        (Method::GET, "/api/v1/cbam/goods".into(), None, everyone.clone()),
        (Method::POST, "/api/v1/cbam/see".into(), Some(json!({})), signed_in.clone()),
        (Method::POST, "/api/v1/cbam/communication".into(), Some(json!({})), signed_in.clone()),
        (Method::POST, "/api/v1/cbam/liability".into(), Some(json!({})), signed_in.clone()),
        (Method::POST, "/api/v1/cbam/scenario".into(), Some(json!({})), signed_in.clone()),
        (Method::POST, "/api/v1/cbam/qreport".into(), Some(json!({})), signed_in.clone()),
        (
            Method::POST,
            "/api/v1/cbam/carbon-price".into(),
            Some(json!({"account": A, "year": 2025, "emissions_t": "0"})),
            vec!["admin", "auditor", "regulator-cn", "alice", "approver"],
        ),
        // Simulation: signed-in callers; a scenario over the server's limits is refused (422).
        (Method::GET, "/api/v1/sim/calibration".into(), None, signed_in.clone()),
        (Method::POST, "/api/v1/sim/check".into(), Some(json!({"scenario": "not [toml"})), signed_in.clone()),
        (
            Method::POST,
            "/api/v1/sim/run".into(),
            Some(json!({"scenario": "[scenario]\nname = \"big\"\nmarkets = [\"BJ\"]\nfirms_per_market = 900000\n"})),
            signed_in.clone(),
        ),
        // Finance and inclusion: market authorities, representatives, auditors, administrators
        // and the finance operator (each sees what involves its markets and accounts; the
        // operator everything); the catalog is public.
        (Method::GET, "/api/v1/finance/parties".into(), None, finance.clone()),
        (Method::GET, "/api/v1/finance/pledges".into(), None, finance.clone()),
        (Method::GET, "/api/v1/finance/repos".into(), None, finance.clone()),
        (Method::GET, "/api/v1/finance/contracts".into(), None, finance.clone()),
        (Method::GET, "/api/v1/inclusion/submissions".into(), None, finance.clone()),
        (Method::GET, "/api/v1/inclusion/pilots".into(), None, finance.clone()),
        (Method::GET, "/api/v1/inclusion/methodologies".into(), None, everyone.clone()),
        // Finance writes (the World has no desk and no inclusion register: once allowed, a
        // command is 409 or refused on its content). The finance operator's kinds: the
        // operator alone.
        (
            Method::POST,
            "/api/v1/finance/commands".into(),
            Some(json!({"id": "m1", "command": {"Deposit": {"party": "alice", "amount_fen": 0}}})),
            vec!["finance-op"],
        ),
        (
            Method::POST,
            "/api/v1/finance/commands".into(),
            Some(json!({"id": "m2", "command": {"Init": {"registrar_market": "XX"}}})),
            vec!["finance-op"],
        ),
        (Method::POST, "/api/v1/finance/commands".into(), Some(json!({"id": "m3", "command": "EndOfDay"})), vec!["finance-op"]),
        // A party's kinds: the party itself (alice) and the operator.
        (
            Method::POST,
            "/api/v1/finance/commands".into(),
            Some(json!({"id": "m4", "command": {"Withdraw": {"party": "alice", "amount_fen": 0}}})),
            vec!["alice", "finance-op"],
        ),
        // A pledge nobody has: the operator learns it is not there; representatives and everyone
        // else are refused without learning it.
        (
            Method::POST,
            "/api/v1/finance/commands".into(),
            Some(json!({"id": "m5", "command": {"Repay": {"pledge": "none", "amount_fen": 1}}})),
            vec!["finance-op"],
        ),
        // Inclusion: the operator registers; an aggregator submits as itself; verifiers verify;
        // a pilot's authority issues; a representative transfers and surrenders from its account.
        (
            Method::POST,
            "/api/v1/inclusion/commands".into(),
            Some(json!({"id": "m1", "command": {"AddVerifier": {"verifier": "v1"}}})),
            vec!["finance-op"],
        ),
        (
            Method::POST,
            "/api/v1/inclusion/commands".into(),
            Some(
                json!({"id": "m2", "command": {"Submit": {"submission": "s", "aggregator": "carol", "methodology": "SOLAR-ROOF", "year": 2025, "records": []}}}),
            ),
            vec!["carol"],
        ),
        (
            Method::POST,
            "/api/v1/inclusion/commands".into(),
            Some(json!({"id": "m3", "command": {"Verify": {"submission": "none", "accept": true}}})),
            vec!["verifier"],
        ),
        (
            Method::POST,
            "/api/v1/inclusion/commands".into(),
            Some(json!({"id": "m4", "command": {"Issue": {"submission": "none"}}})),
            vec!["regulator-cn", "regulator-bj"],
        ),
        (
            Method::POST,
            "/api/v1/inclusion/commands".into(),
            Some(
                json!({"id": "m5", "command": {"Transfer": {"from": A, "to": B, "unit": {"code": "CEA", "project": null, "vintage": 2025}, "quantity": 1}}}),
            ),
            vec!["alice"],
        ),
        (
            Method::POST,
            "/api/v1/inclusion/commands".into(),
            Some(
                json!({"id": "m6", "command": {"Surrender": {"account": C, "unit": {"code": "BEA", "project": null, "vintage": 2025}, "quantity": 1, "year": 2025}}}),
            ),
            vec!["carol"],
        ),
        // Reading a communication: any signed-in caller (an empty JSON object: 422 once allowed).
        (Method::POST, "/api/v1/cbam/communication/import".into(), Some(json!({})), signed_in.clone()),
        // The exchange's operations: the day's rules are market data; the members' books,
        // deals and biddings the operator's and auditors' (a member its own); the operator
        // alone runs the day, members and cash; members trade. Each write once allowed fails
        // on its content (a zero amount or quantity, no such deal or bidding, a day already
        // open), but for closing the day, last: it harmlessly succeeds.
        (Method::GET, "/api/v1/exchange/day".into(), None, everyone.clone()),
        (Method::GET, "/api/v1/exchange/members".into(), None, vec!["auditor", "alice", "bob", "operator"]),
        (Method::GET, "/api/v1/exchange/blocks".into(), None, vec!["auditor", "alice", "bob", "operator"]),
        (Method::GET, "/api/v1/exchange/biddings".into(), None, vec!["auditor", "alice", "bob", "operator"]),
        (Method::POST, "/api/v1/exchange/day/open".into(), Some(json!({"date": "2025-06-07"})), vec!["operator"]),
        (Method::POST, "/api/v1/exchange/members".into(), Some(json!({"member": "zed", "accounts": {}})), vec!["operator"]),
        (Method::POST, "/api/v1/exchange/members/alice/deposits".into(), Some(json!({"amount_fen": 0})), vec!["operator"]),
        (Method::POST, "/api/v1/exchange/members/alice/withdrawals".into(), Some(json!({"amount_fen": 0})), vec!["operator"]),
        (
            Method::POST,
            "/api/v1/exchange/instruments".into(),
            Some(json!({"unit": "CEA:2026", "reference_price_fen": 0})),
            vec!["operator"],
        ),
        (
            Method::POST,
            "/api/v1/exchange/blocks".into(),
            Some(json!({"counterparty": "bob", "instrument": "CEA-2025", "side": "sell", "price_fen": 8000, "qty_t": 0})),
            vec!["alice", "bob"],
        ),
        (Method::POST, "/api/v1/exchange/blocks/no-deal/confirm".into(), None, vec!["alice", "bob"]),
        (Method::DELETE, "/api/v1/exchange/blocks/no-deal".into(), None, vec!["alice", "bob"]),
        (
            Method::POST,
            "/api/v1/exchange/biddings".into(),
            Some(json!({"instrument": "CEA-2025", "side": "sell", "qty_t": 0, "limit_price_fen": 8000})),
            vec!["alice", "bob"],
        ),
        (
            Method::POST,
            "/api/v1/exchange/biddings/no-bidding/bids".into(),
            Some(json!({"price_fen": 8000, "qty_t": 1})),
            vec!["alice", "bob"],
        ),
        (Method::POST, "/api/v1/exchange/biddings/no-bidding/close".into(), None, vec!["alice", "bob", "operator"]),
        (Method::POST, "/api/v1/exchange/unlodgements".into(), Some(json!({"instrument": "CEA-2025", "qty_t": 0})), vec!["alice", "bob"]),
        (Method::POST, "/api/v1/exchange/day/close".into(), None, vec!["operator"]),
    ];
    let mut failures = Vec::new();
    for (method, uri, body, allowed) in &cases {
        for role in ROLES {
            let secret = secrets.get(role).map(String::as_str);
            let (status, answer) = w.call(method.clone(), uri, secret, body.clone()).await;
            let denied = status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN;
            let expected_allowed = allowed.contains(&role);
            if denied == expected_allowed || status.is_server_error() {
                failures.push(format!("{role:>13} {method} {uri}: {status} {answer}"));
            }
            if !expected_allowed && role == "public" && status != StatusCode::UNAUTHORIZED {
                failures.push(format!("public {method} {uri}: expected 401, got {status}"));
            }
        }
    }
    assert!(failures.is_empty(), "authorization differs from the intended matrix:\n{}", failures.join("\n"));
    // Nothing the denied (or content-refused) writes asked for happened.
    let (_, transfers) = w.get("/api/v1/transfers", Some(&secrets["admin"])).await;
    assert_eq!(transfers, json!([]));
    let (_, users) = w.get("/api/v1/users", Some(&secrets["admin"])).await;
    assert!(!users.as_array().unwrap().iter().any(|u| u["user"] == "zed"));
    assert_eq!(w.platform.finance.lock().unwrap().head().0, finance_writes_before, "no finance command was journaled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_and_tokens() {
    let w = World::new();
    // A wrong password is 401 and says nothing about which part was wrong.
    let (status, body) = w.post("/api/v1/session", None, json!({"user": "alice", "password": "wrong password here"})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, _) = w.post("/api/v1/session", None, json!({"user": "nobody", "password": "wrong password here"})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, session) = w.post("/api/v1/session", None, json!({"user": "alice", "password": common::PASSWORD})).await;
    assert_eq!(status, StatusCode::OK, "{session}");
    assert_eq!(session["user"], "alice", "the session names its user");
    let secret = w.login("alice").await;
    let (status, me) = w.get("/api/v1/me", Some(&secret)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["user"], "alice");
    assert_eq!(me["credential"], "session");
    assert_eq!(me["roles"], json!([format!("account-representative:{A}"), "exchange-member:alice"]));
    // A token scoped to one of the user's roles; a role the user lacks is refused.
    let (status, token) =
        w.post("/api/v1/tokens", Some(&secret), json!({"roles": [format!("account-representative:{A}")], "days": 7})).await;
    assert_eq!(status, StatusCode::CREATED, "{token}");
    let token_secret = token["secret"].as_str().unwrap().to_string();
    let (status, _) = w.post("/api/v1/tokens", Some(&secret), json!({"roles": ["registry-admin"]})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, me) = w.get("/api/v1/me", Some(&token_secret)).await;
    assert_eq!((status, me["credential"].as_str()), (StatusCode::OK, Some("token")));
    assert_eq!(me["roles"], json!([format!("account-representative:{A}")]));
    let (status, _) = w.get(&format!("/api/v1/accounts/{A}"), Some(&token_secret)).await;
    assert_eq!(status, StatusCode::OK);
    // The token cannot trade: its scope left the member role out.
    let (status, _) = w
        .post("/api/v1/orders", Some(&token_secret), json!({"instrument": "CEA-2025", "side": "buy", "price_fen": 8000, "qty_t": 1}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Revoked: refused at once.
    let (status, _) = w.call(Method::DELETE, &format!("/api/v1/tokens/{}", token["token"].as_str().unwrap()), Some(&secret), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = w.get(&format!("/api/v1/accounts/{A}"), Some(&token_secret)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Logged out: the session's secret is refused at once, and is not served as the public.
    let (status, _) = w.call(Method::DELETE, "/api/v1/session", Some(&secret), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = w.get("/api/v1/me", Some(&secret)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = w.get("/api/v1/markets", Some(&secret)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_throttling_locks_after_repeated_failures() {
    let w = World::new();
    let auditor = w.login("auditor").await;
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(w.post("/api/v1/session", None, json!({"user": "bob", "password": "not bob's password"})).await.0);
    }
    // The fifth failure locks (it is itself answered as a failed login); then 429.
    assert_eq!(statuses[..5], [StatusCode::UNAUTHORIZED; 5]);
    assert!(statuses[5..].iter().all(|s| *s == StatusCode::TOO_MANY_REQUESTS), "{statuses:?}");
    // Even the right password waits out the lock.
    let (status, _) = w.post("/api/v1/session", None, json!({"user": "bob", "password": common::PASSWORD})).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // The origin is locked too (password spraying across users), whoever tries.
    let (status, _) = w.post("/api/v1/session", None, json!({"user": "carol", "password": common::PASSWORD})).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // Sessions opened before the lock still work; every failure is in the audit journal.
    let (_, records) = w.get("/api/v1/audit?limit=1000", Some(&auditor)).await;
    let failed = records.as_array().unwrap().iter().filter(|r| r["command"] == "login" && r["user"] == "bob").count();
    assert!(failed >= 5, "{records}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn market_data_and_orders_settle_into_the_registry() {
    let w = World::new();
    let (status, markets) = w.get("/api/v1/markets", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(markets.as_array().unwrap().iter().map(|m| m["code"].as_str().unwrap()).collect::<Vec<_>>(), ["CN", "BJ"]);
    assert_eq!(markets[0]["instruments"], json!(["CEA-2025"]));
    let alice = w.login("alice").await;
    let bob = w.login("bob").await;
    // Outside the band: refused with the reason, nothing rests.
    let (status, body) =
        w.post("/api/v1/orders", Some(&alice), json!({"instrument": "CEA-2025", "side": "sell", "price_fen": 9_000, "qty_t": 1_000})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["message"].as_str().unwrap().contains("band"), "{body}");
    let (status, sell) =
        w.post("/api/v1/orders", Some(&alice), json!({"instrument": "CEA-2025", "side": "sell", "price_fen": 8_100, "qty_t": 3_000})).await;
    assert_eq!(status, StatusCode::CREATED, "{sell}");
    assert_eq!(sell["resting_t"], 3_000);
    let (_, book) = w.get("/api/v1/instruments/CEA-2025", None).await;
    assert_eq!(book["best_ask"], json!({"price_fen": 8_100, "qty_t": 3_000}));
    let (status, buy) = w
        .post(
            "/api/v1/orders",
            Some(&bob),
            json!({"instrument": "CEA-2025", "side": "buy", "price_fen": 8_100, "qty_t": 1_000, "tif": "ioc"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{buy}");
    assert_eq!(buy["trades"][0]["qty_t"], 1_000);
    assert_eq!(buy["trades"][0]["price_fen"], 8_100);
    let (_, trades) = w.get("/api/v1/instruments/CEA-2025/trades", None).await;
    assert_eq!(trades.as_array().unwrap().len(), 1);
    let (_, book) = w.get("/api/v1/instruments/CEA-2025", None).await;
    assert_eq!(book["best_ask"], json!({"price_fen": 8_100, "qty_t": 2_000}));
    assert_eq!(book["today"]["listed_volume_t"], 1_000);
    // Bob cannot cancel Alice's order; Alice can.
    let order = sell["order"].as_u64().unwrap();
    let (status, _) = w.call(Method::DELETE, &format!("/api/v1/orders/{order}"), Some(&bob), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = w.call(Method::DELETE, &format!("/api/v1/orders/{order}"), Some(&alice), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (_, book) = w.get("/api/v1/instruments/CEA-2025", None).await;
    assert_eq!(book["best_ask"], Value::Null);
    // Until settlement, the sold units stay in clearing; A's lodged units are encumbered.
    assert_eq!(w.held(A), (80_000, 100_000));
    let (status, detail) = w.get(&format!("/api/v1/accounts/{A}"), Some(&alice)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(detail["holdings"][0]["encumbered_t"], 20_000);
    assert_eq!(detail["holdings"][0]["unit"], "CEA:2025");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_eyes_transfer_to_an_untrusted_account_waits_for_approval_and_the_delay() {
    let w = World::new();
    // Friday 2025-06-06 14:00 CET: after the 12:00 cutoff, before a weekend and the Whit Monday
    // holiday: released at 12:00 CET on the second working day, Wednesday 2025-06-11.
    w.set_time(cet("2025-06-06", 14, 0));
    let alice = w.login("alice").await;
    let approver = w.login("approver").await;
    let bob = w.login("bob").await;
    let (status, t) = w.post("/api/v1/transfers", Some(&alice), json!({"from": A, "to": B, "unit": "CEA:2025", "quantity_t": 5_000})).await;
    assert_eq!(status, StatusCode::CREATED, "{t}");
    assert_eq!(t["status"], "awaiting-approval");
    let id = t["id"].as_str().unwrap().to_string();
    // The initiator cannot approve; the other account's representative cannot either.
    let (status, _) = w.post(&format!("/api/v1/transfers/{id}/approve"), Some(&alice), json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = w.post(&format!("/api/v1/transfers/{id}/approve"), Some(&bob), json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A second proposal that nobody approves.
    let (_, unapproved) =
        w.post("/api/v1/transfers", Some(&alice), json!({"from": A, "to": B, "unit": "CEA:2025", "quantity_t": 700})).await;
    // Both proposals' units are set aside in the registry (still A's, not movable): 20,000 t
    // lodged on the exchange, 5,700 t held for the proposals.
    assert_eq!(w.held(A), (74_300, 100_000));
    w.set_time(cet("2025-06-06", 14, 5));
    let (status, t) = w.post(&format!("/api/v1/transfers/{id}/approve"), Some(&approver), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{t}");
    assert_eq!(t["status"], "approved");
    assert_eq!(t["to_trusted"], false);
    assert_eq!(t["release_at_ms"], cet("2025-06-11", 12, 0).0);
    // A millisecond before: nothing; at the instant: released, exactly once.
    w.set_time(ets_core::Timestamp(cet("2025-06-11", 12, 0).0 - 1));
    assert!(w.tick().is_empty());
    assert_eq!(w.held(A).1, 100_000);
    w.set_time(cet("2025-06-11", 12, 0));
    assert_eq!(w.tick(), vec![id.clone()]);
    assert!(w.tick().is_empty());
    assert_eq!((w.held(A).1, w.held(B).1), (95_000, 55_000));
    // Without its second approval the other never executes, however long we wait.
    w.set_time(cet("2025-07-30", 12, 0));
    assert!(w.tick().is_empty());
    assert_eq!((w.held(A).1, w.held(B).1), (95_000, 55_000));
    let bob = w.login("bob").await;
    let (_, list) = w.get("/api/v1/transfers", Some(&bob)).await;
    assert_eq!(list, json!([]), "bob sees no proposal from A");
    let alice = w.login("alice").await;
    let (_, list) = w.get("/api/v1/transfers", Some(&alice)).await;
    let status_of = |id: &Value| list.as_array().unwrap().iter().find(|t| t["id"] == *id).unwrap()["status"].clone();
    assert_eq!(status_of(&json!(id)), "released");
    assert_eq!(status_of(&unapproved["id"]), "awaiting-approval");
    // The registry's history shows the one transfer.
    let (_, history) = w.get(&format!("/api/v1/accounts/{B}/transactions"), Some(&bob)).await;
    let moved: Vec<&Value> = history.as_array().unwrap().iter().filter(|r| r["kind"] == "pending-post" && r["from"] == A).collect();
    assert_eq!(moved.len(), 1, "{history}");
    assert_eq!(moved[0]["quantity_t"], 5_000);
    // Cancelled: its units are free again.
    let (status, t) = w.post(&format!("/api/v1/transfers/{}/cancel", unapproved["id"].as_str().unwrap()), Some(&alice), json!({})).await;
    assert_eq!((status, t["status"].as_str()), (StatusCode::OK, Some("cancelled")));
    assert_eq!(w.held(A), (75_000, 95_000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_transfer_never_executes_and_frees_its_units() {
    let w = World::new();
    let alice = w.login("alice").await;
    let approver = w.login("approver").await;
    let (_, t) = w.post("/api/v1/transfers", Some(&alice), json!({"from": A, "to": B, "unit": "CEA:2025", "quantity_t": 9_000})).await;
    assert_eq!(w.held(A), (71_000, 100_000));
    // While held, the units cannot be proposed twice.
    let (status, body) =
        w.post("/api/v1/transfers", Some(&alice), json!({"from": A, "to": B, "unit": "CEA:2025", "quantity_t": 71_001})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, t) = w.post(&format!("/api/v1/transfers/{}/reject", t["id"].as_str().unwrap()), Some(&approver), json!({})).await;
    assert_eq!((status, t["status"].as_str()), (StatusCode::OK, Some("rejected")), "{t}");
    assert_eq!(w.held(A), (80_000, 100_000));
    w.set_time(cet("2025-06-30", 12, 0));
    assert!(w.tick().is_empty());
    assert_eq!((w.held(A).1, w.held(B).1), (100_000, 50_000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_limit_transfer_to_an_untrusted_account_is_refused_and_changes_nothing() {
    let w = World::new();
    let alice = w.login("alice").await;
    let (status, body) =
        w.post("/api/v1/transfers", Some(&alice), json!({"from": A, "to": B, "unit": "CEA:2025", "quantity_t": 10_001})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["message"].as_str().unwrap().contains("10000"), "the limit is named: {body}");
    let (_, list) = w.get("/api/v1/transfers", Some(&alice)).await;
    assert_eq!(list, json!([]));
    assert_eq!(w.held(A), (80_000, 100_000), "the hold made for the refused proposal is voided");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusted_list_addition_takes_effect_after_working_days_then_transfers_execute_at_once() {
    let w = World::new();
    // Thursday 2025-06-05 11:00 CET: 4 working days (Fri, Tue, Wed, Thu; the weekend and Whit
    // Monday do not count) → effective Thursday 2025-06-12 12:00 CET.
    w.set_time(cet("2025-06-05", 11, 0));
    let alice = w.login("alice").await;
    let approver = w.login("approver").await;
    let (status, list) = w.post(&format!("/api/v1/accounts/{A}/trusted"), Some(&alice), json!({"trusted": B})).await;
    assert_eq!(status, StatusCode::CREATED, "{list}");
    let id = list["proposals"][0]["id"].as_str().unwrap_or_else(|| panic!("{list}")).to_string();
    let (status, _) = w.post(&format!("/api/v1/trusted/{id}/approve"), Some(&alice), json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "the proposer cannot approve");
    let (status, list) = w.post(&format!("/api/v1/trusted/{id}/approve"), Some(&approver), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["entries"][0]["effective_at_ms"], cet("2025-06-12", 12, 0).0);
    assert_eq!(list["entries"][0]["effective"], false);
    // Still untrusted the day before: an approved transfer waits for the 26-hour rule.
    w.set_time(cet("2025-06-11", 10, 30));
    let alice = w.login("alice").await;
    let approver = w.login("approver").await;
    let (_, t) = w.post("/api/v1/transfers", Some(&alice), json!({"from": A, "to": B, "unit": "CEA:2025", "quantity_t": 1_000})).await;
    let (_, t) = w.post(&format!("/api/v1/transfers/{}/approve", t["id"].as_str().unwrap()), Some(&approver), json!({})).await;
    assert_eq!((t["status"].as_str(), t["to_trusted"].as_bool()), (Some("approved"), Some(false)));
    assert_eq!(w.held(B).1, 50_000);
    // Effective: a transfer to B in opening hours executes on approval.
    w.set_time(cet("2025-06-12", 12, 0));
    let (status, _) = w.get(&format!("/api/v1/accounts/{A}/trusted"), Some(&alice)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "yesterday's session has expired (8 hours)");
    let alice = w.login("alice").await;
    let approver = w.login("approver").await;
    let (_, list) = w.get(&format!("/api/v1/accounts/{A}/trusted"), Some(&alice)).await;
    assert_eq!(list["entries"][0]["effective"], true, "{list}");
    w.tick(); // yesterday's untrusted transfer is due at 12:00 today too
    let (_, t) = w.post("/api/v1/transfers", Some(&alice), json!({"from": A, "to": B, "unit": "CEA:2025", "quantity_t": 2_000})).await;
    let (_, t) = w.post(&format!("/api/v1/transfers/{}/approve", t["id"].as_str().unwrap()), Some(&approver), json!({})).await;
    assert_eq!(t["status"], "released", "{t}");
    assert_eq!(w.held(B).1, 53_000);
    // Removed: effective at once; the next transfer to B waits again.
    let (status, list) = w.call(Method::DELETE, &format!("/api/v1/accounts/{A}/trusted/{B}"), Some(&alice), None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["entries"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_describes_every_route_and_the_explorer_is_served() {
    let w = World::new();
    let (status, doc) = w.get("/api/v1/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{}", doc["openapi"]);
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/api/v1/health",
        "/api/v1/session",
        "/api/v1/tokens",
        "/api/v1/markets",
        "/api/v1/instruments/{code}",
        "/api/v1/accounts/{number}",
        "/api/v1/transfers",
        "/api/v1/transfers/{id}/approve",
        "/api/v1/accounts/{number}/trusted",
        "/api/v1/orders",
        "/api/v1/users",
        "/api/v1/audit",
        "/api/v1/mrv/reports",
        "/api/v1/mrv/anomalies",
        "/api/v1/lodgements",
        "/api/v1/compliance",
        "/api/v1/compliance/{market}",
        "/api/v1/auctions",
        "/api/v1/auctions/{auction}/bids",
        "/api/v1/auctions/{auction}/bids/{bid}",
        "/api/v1/auctions/{auction}/clear",
        "/api/v1/mrv/commands",
        "/api/v1/registry/commands",
        "/api/v1/exchange/day",
        "/api/v1/exchange/day/open",
        "/api/v1/exchange/day/close",
        "/api/v1/exchange/members",
        "/api/v1/exchange/members/{member}/deposits",
        "/api/v1/exchange/members/{member}/withdrawals",
        "/api/v1/exchange/instruments",
        "/api/v1/exchange/blocks",
        "/api/v1/exchange/blocks/{deal}/confirm",
        "/api/v1/exchange/blocks/{deal}",
        "/api/v1/exchange/biddings",
        "/api/v1/exchange/biddings/{bidding}/bids",
        "/api/v1/exchange/biddings/{bidding}/close",
        "/api/v1/exchange/unlodgements",
    ] {
        assert!(paths.contains_key(path), "{path} missing from the document");
    }
    // Operation ids are unique (clients are generated from them; validators refuse duplicates).
    let mut ids = std::collections::BTreeMap::new();
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            if let Some(id) = op.get("operationId").and_then(Value::as_str) {
                if let Some(other) = ids.insert(id.to_string(), format!("{method} {path}")) {
                    panic!("operation id {id} on both {other} and {method} {path}");
                }
            }
        }
    }
    // Every operation names its responses and a tag; every $ref resolves.
    let text = doc.to_string();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for (at, _) in text.match_indices("#/components/schemas/") {
        let name: String = text[at + 21..].chars().take_while(|c| *c != '"').collect();
        assert!(schemas.contains_key(&name), "dangling $ref {name}");
    }
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()), "{method} {path} has no responses");
            assert!(op["tags"].as_array().is_some_and(|t| !t.is_empty()), "{method} {path} has no tag");
        }
    }
    let (status, page) = w.get("/api/v1/docs", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.as_str().unwrap().contains("/api/v1/openapi.json"));
    assert!(!page.as_str().unwrap().contains("https://"), "the explorer loads nothing from the network");
    let (status, body) = w.get("/api/v1/nothing-here", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "not-found");
}

/// The same platform on PostgreSQL: a four-eyes transfer released after its delay, an order,
/// and a restart that finds everything where it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_a_four_eyes_transfer_and_a_restart() {
    if std::env::var("ETS_SKIP_POSTGRES").is_ok_and(|v| v == "1") {
        eprintln!("ETS_SKIP_POSTGRES=1: skipped");
        return;
    }
    let w = World::postgres();
    let alice = w.login("alice").await;
    let approver = w.login("approver").await;
    let (status, t) = w.post("/api/v1/transfers", Some(&alice), json!({"from": A, "to": B, "unit": "CEA:2025", "quantity_t": 4_000})).await;
    assert_eq!(status, StatusCode::CREATED, "{t}");
    let id = t["id"].as_str().unwrap().to_string();
    let (_, t) = w.post(&format!("/api/v1/transfers/{id}/approve"), Some(&approver), json!({})).await;
    assert_eq!(t["release_at_ms"], cet("2025-06-05", 12, 0).0, "approved Wednesday before 12:00: Thursday 12:00");
    let (status, order) =
        w.post("/api/v1/orders", Some(&alice), json!({"instrument": "CEA-2025", "side": "sell", "price_fen": 8_050, "qty_t": 500})).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    w.set_time(cet("2025-06-05", 12, 0));
    assert_eq!(w.tick(), vec![id.clone()]);
    assert_eq!((w.held(A).1, w.held(B).1), (96_000, 54_000));
    // A restart on the same database: the same state, nothing carried out twice.
    let (location, clock) = (w.location.clone(), w.clock.clone());
    let again = std::thread::spawn(move || {
        ets_server::Platform::open(&location, common::rules(), ets_server::Clock::Manual(clock), ets_server::ExchangeTime::Live).unwrap()
    })
    .join()
    .unwrap();
    let ledger = again.registry.lock().unwrap();
    let r = ledger.registry();
    let unit = r.unit_named(&ets_registry::UnitRef::allowance("CEA", 2025)).unwrap();
    let total = |n: &str| r.holding(r.find_account(n).unwrap(), unit).unwrap().total();
    assert_eq!((total(A), total(B)), (96_000, 54_000));
    let access = again.access.lock().unwrap();
    assert!(matches!(access.access().controls().transfer(&id).unwrap().status, ets_access::TransferStatus::Released { .. }));
    assert_eq!(again.market.read().unwrap().instruments["CEA-2025"].best_ask.as_ref().map(|l| l.qty_t), Some(500));
    drop((access, ledger));
    // Closing PostgreSQL connections blocks: off the test's runtime, as the server does at exit.
    std::thread::spawn(move || drop((again, w))).join().unwrap();
}

/// Units set aside for an auction whose opening never reached the exchange's journal (a crash
/// between the registry's write and the exchange's) are given back at the next start; the
/// escrow of an auction the exchange holds open stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_voids_the_escrow_of_an_auction_the_exchange_never_opened() {
    let w = World::new();
    let regulator = w.login("regulator-cn").await;
    let open = json!({"auction": "kept", "instrument": "CEA-2025", "volume_t": 10_000, "reserve_price_fen": 7_000, "lot_t": 100});
    let (status, opened) = w.post("/api/v1/auctions", Some(&regulator), open).await;
    assert_eq!(status, StatusCode::CREATED, "{opened}");
    // The longest escrow id there is: an auction id of 56 characters.
    let lost_id = format!("auction-{}", "l".repeat(56));
    let lost = ets_registry::Command::CreatePending {
        pending: lost_id.clone(),
        from: common::CN_RESERVE.into(),
        to: common::CLEARING.into(),
        unit: ets_registry::UnitRef::allowance("CEA", 2025),
        quantity: ets_core::Tonnes(5_000),
        purpose: ets_registry::PendingPurpose::Escrow,
    };
    w.platform
        .registry
        .lock()
        .unwrap()
        .submit(w.now(), &ets_registry::Envelope { id: "crashed".into(), actor: "cn-auth".into(), command: lost })
        .unwrap();
    let free = |p: &ets_server::Platform| {
        let ledger = p.registry.lock().unwrap();
        let r = ledger.registry();
        let unit = r.unit_named(&ets_registry::UnitRef::allowance("CEA", 2025)).unwrap();
        r.holding(r.find_account(common::CN_RESERVE).unwrap(), unit).unwrap().free_total()
    };
    assert_eq!(free(&w.platform), common::RESERVE_T - 15_000);

    let (location, clock) = (w.location.clone(), w.clock.clone());
    let again = std::thread::spawn(move || {
        ets_server::Platform::open(&location, common::rules(), ets_server::Clock::Manual(clock), ets_server::ExchangeTime::Live).unwrap()
    })
    .join()
    .unwrap();
    assert_eq!(free(&again), common::RESERVE_T - 10_000, "the lost auction's 5,000 t are back in the reserve");
    let ledger = again.registry.lock().unwrap();
    assert!(ledger.registry().pending(&lost_id).is_none());
    assert!(ledger.registry().pending("auction-kept").is_some(), "the open auction keeps its escrow");
    drop(ledger);
    // A second start finds nothing more to do.
    assert_eq!(again.reconcile_auction_escrows().unwrap(), 0);
}

/// Malformed requests are refused as the API's JSON errors, whatever part of the request is
/// wrong, and change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_are_answered_with_json_errors() {
    let w = World::new();
    let alice = w.login("alice").await;
    let raw = |body: &'static str, content_type: Option<&'static str>| {
        let mut r =
            axum::http::Request::builder().method(Method::POST).uri("/api/v1/orders").header("authorization", format!("Bearer {alice}"));
        if let Some(t) = content_type {
            r = r.header("content-type", t);
        }
        r.body(axum::body::Body::from(body)).unwrap()
    };
    for (request, status) in [
        (raw("{\"instrument\": ", Some("application/json")), StatusCode::BAD_REQUEST),
        (raw("{\"instrument\": \"CEA-2025\"}", Some("application/json")), StatusCode::UNPROCESSABLE_ENTITY),
        (raw("{}", None), StatusCode::UNSUPPORTED_MEDIA_TYPE),
    ] {
        use tower::ServiceExt;
        let response = w.app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), status);
        assert_eq!(response.headers()["content-type"], "application/json");
        let body = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert!(body["message"].as_str().unwrap().starts_with("the request body"), "{body}");
    }
    let (status, body) = w.call(Method::DELETE, "/api/v1/orders/-1", Some(&alice), None).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid")), "{body}");
    let (status, body) = w.get("/api/v1/audit?limit=-1", Some(&w.login("auditor").await)).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid")), "{body}");
    let (_, book) = w.get("/api/v1/instruments/CEA-2025", None).await;
    assert_eq!((book["best_bid"].clone(), book["best_ask"].clone()), (Value::Null, Value::Null));
}

/// A member lodges registry units with the exchange through the API and can then sell them;
/// nobody lodges for another member.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_lodges_units_and_sells_them() {
    let w = World::new();
    let bob = w.login("bob").await;
    let alice = w.login("alice").await;
    let sell = json!({"instrument": "CEA-2025", "side": "sell", "price_fen": 8_100, "qty_t": 500});
    let (status, body) = w.post("/api/v1/orders", Some(&bob), sell.clone()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "nothing lodged yet: {body}");
    let (status, _) = w.post("/api/v1/lodgements", Some(&alice), json!({"instrument": "CEA-2025", "qty_t": 1_000, "member": "bob"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = w.post("/api/v1/lodgements", Some(&bob), json!({"instrument": "CEA-2025", "qty_t": 60_000})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "more than B holds: {body}");
    assert_eq!(w.held(B), (50_000, 50_000));
    let (status, lodged) = w.post("/api/v1/lodgements", Some(&bob), json!({"instrument": "CEA-2025", "qty_t": 1_000})).await;
    assert_eq!(status, StatusCode::CREATED, "{lodged}");
    assert_eq!(w.held(B), (49_000, 50_000), "lodged units stay B's, set aside");
    let (status, order) = w.post("/api/v1/orders", Some(&bob), sell).await;
    assert_eq!((status, order["resting_t"].as_u64()), (StatusCode::CREATED, Some(500)), "{order}");
}

/// Compliance status per market and entity: the obligation is the verified emissions of the
/// accepted report rounded up (the CN draft rulebook), what alice surrendered counts, the
/// shortfall is fined at 5 × the set price and deducted next year; each role sees its part.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compliance_status_per_market_and_entity() {
    let w = World::new();
    let regulator = w.login("regulator-cn").await;
    let (status, reports) = w.get("/api/v1/mrv/reports?year=2025&state=accepted", Some(&regulator)).await;
    assert_eq!(status, StatusCode::OK, "{reports}");
    let verified = |entity: &str| -> u64 {
        let r = reports.as_array().unwrap().iter().find(|r| r["entity"] == entity).unwrap();
        let text = r["verified_emissions_t"].as_str().unwrap();
        let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
        whole.parse::<u64>().unwrap() + u64::from(frac.trim_end_matches('0').chars().any(|c| c != '0'))
    };

    let (status, cn) = w.get("/api/v1/compliance/CN?year=2025", Some(&regulator)).await;
    assert_eq!(status, StatusCode::OK, "{cn}");
    assert_eq!(cn["rulebook"], "cn-power-2025-2026-draft");
    assert_eq!(cn["deadline"], "2026-12-31");
    assert_eq!(cn["price_fen"], common::CN_FINE_PRICE_FEN);
    assert_eq!(cn["scope"], "market");
    assert_eq!(cn["covered"], 2);
    let (entity, account) = common::ENTITIES[0];
    let e = cn["entities"].as_array().unwrap().iter().find(|e| e["entity"] == entity).unwrap_or_else(|| panic!("{entity} in {cn}"));
    assert_eq!(e["account"], account);
    let obligation = verified(entity);
    assert!(obligation > 100_000, "{entity}: a power plant's year, not {obligation} t");
    assert_eq!(e["obligation_t"], obligation);
    assert_eq!(e["allowances_counted_t"], common::SURRENDERED_A, "{e}");
    assert_eq!(e["offsets_counted_t"], 0);
    let short = obligation - common::SURRENDERED_A;
    assert_eq!(e["shortfall_t"], short);
    assert_eq!(e["status"], "shortfall");
    let fine = short as i64 * 5 * common::CN_FINE_PRICE_FEN;
    assert_eq!(e["fine_fen"], fine, "{e}");
    assert_eq!(e["next_year_deduction_t"], short);
    // CN-E0002's report is still with the verifier: not assessed, and why.
    let pending = cn["entities"].as_array().unwrap().iter().find(|e| e["entity"] == common::ENTITIES[1].0).unwrap();
    assert_eq!(pending["status"], "not assessed");
    assert_eq!(pending["not_assessed"], "no accepted 2025 report");
    assert_eq!((cn["shortfall"].as_u64(), cn["compliant"].as_u64(), cn["not_assessed"].as_u64()), (Some(1), Some(0), Some(1)));
    assert_eq!(cn["fines_fen"], fine);
    assert_eq!(cn["surrendered_counted_t"], common::SURRENDERED_A);

    // A representative sees its own account's entity only, with the same figures.
    let alice = w.login("alice").await;
    let (_, own) = w.get("/api/v1/compliance/CN?year=2025", Some(&alice)).await;
    assert_eq!(own["scope"], "own accounts");
    let entities: Vec<&str> = own["entities"].as_array().unwrap().iter().map(|e| e["entity"].as_str().unwrap()).collect();
    assert_eq!(entities, vec!["CN-E0001"]);
    assert_eq!(own["entities"][0], cn["entities"].as_array().unwrap().iter().find(|e| e["entity"] == "CN-E0001").unwrap().clone());
    assert_eq!(own["covered"], 1);

    // The year defaults to the latest with an accepted report; a year without reports has
    // nothing assessed; a market without a rulebook for the year is not found.
    let (_, default_year) = w.get("/api/v1/compliance/CN", Some(&regulator)).await;
    assert_eq!(default_year["year"], 2025);
    let (status, later) = w.get("/api/v1/compliance/CN?year=2026", Some(&regulator)).await;
    assert_eq!(status, StatusCode::OK, "{later}");
    assert_eq!(later["not_assessed"], 2);
    assert!(later["entities"][0]["not_assessed"].as_str().unwrap().contains("no accepted 2026 report"));
    let (status, body) = w.get("/api/v1/compliance/CN?year=2019", Some(&regulator)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["rulebook"], "cn-power-2025-2026-draft", "the rulebook set for a market governs every year asked about");
    let (status, body) = w.get("/api/v1/compliance/XX", Some(&regulator)).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::NOT_FOUND, Some("not-found")));
    let (status, body) = w.get("/api/v1/compliance/CN?year=1800", Some(&regulator)).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid")));

    // BJ is assessed under its shipped rulebook (no BJ entity is covered in this world); its
    // authority does not see the national market.
    let bj = w.login("regulator-bj").await;
    let (_, all) = w.get("/api/v1/compliance?year=2025", Some(&bj)).await;
    let markets: Vec<&str> = all.as_array().unwrap().iter().map(|m| m["market"].as_str().unwrap()).collect();
    assert_eq!(markets, vec!["BJ"]);
    assert_eq!(all[0]["rulebook"], "bj-2024");
    assert_eq!(all[0]["price_fen"], Value::Null, "no set price and no BJ instrument: fines are not computed");
    let (status, _) = w.get("/api/v1/compliance/CN", Some(&bj)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

/// The shipped rulebooks are public; a year's allocation under a market's rulebook is computed
/// for its authority and auditors from the MRV register (an entity without an accepted report is
/// left out, with why) and issued by the authority alone: the total into the issuance account,
/// each entity's allowances into its coverage account. Issuing again changes nothing; an issue
/// the registry would refuse part-way writes nothing at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allocation_runs_under_a_rulebook_and_issues_once() {
    let w = World::new();
    let (status, list) = w.get("/api/v1/rulebooks", None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let draft = list.as_array().unwrap().iter().find(|r| r["id"] == "cn-power-2025-2026-draft").unwrap_or_else(|| panic!("{list}"));
    assert_eq!((draft["market"].as_str(), draft["engine"].as_str()), (Some("CN"), Some("power")));
    assert!(list.as_array().unwrap().iter().any(|r| r["market"] == "BJ" && r["engine"] == "pilot"), "{list}");
    let (status, rb) = w.get("/api/v1/rulebooks/cn-power-2025-2026-draft", None).await;
    assert_eq!(status, StatusCode::OK, "{rb}");
    assert_eq!((rb["rulebook"]["id"].as_str(), rb["rulebook"]["first_year"].as_i64()), (Some("cn-power-2025-2026-draft"), Some(2025)));
    let (status, _) = w.get("/api/v1/rulebooks/no-such-rulebook", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let regulator = w.login("regulator-cn").await;
    let holdings = |who: String, account: &'static str| {
        let w = &w;
        async move {
            let (_, v) = w.get(&format!("/api/v1/accounts/{account}"), Some(&who)).await;
            v["holdings"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|h| h["unit"] == "CEA:2025")
                .map(|h| h["total_t"].as_u64().unwrap())
                .sum::<u64>()
        }
    };
    let body = json!({"market": "CN", "year": 2025});
    let (status, computed) = w.post("/api/v1/allocations", Some(&regulator), body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{computed}");
    assert_eq!(computed["rulebook"], "cn-power-2025-2026-draft", "the rulebook compliance is assessed under");
    assert_eq!(computed["issued"], Value::Null);
    let entities = computed["entities"].as_array().unwrap();
    assert_eq!(entities.len(), 1, "{computed}");
    assert_eq!(entities[0]["entity"], "CN-E0001");
    let final_t = entities[0]["final_t"].as_u64().unwrap();
    assert!(final_t > 100_000, "a power plant's year: {computed}");
    assert_eq!(computed["total_t"], final_t);
    let skipped = computed["skipped"].as_array().unwrap();
    assert!(skipped.iter().any(|s| s["entity"] == "CN-E0002"), "no accepted report, left out: {computed}");
    // Computing changed nothing in the registry.
    let a_before = holdings(regulator.clone(), A).await;
    assert_eq!(a_before, 100_000);

    // Who may compute, who may issue.
    let auditor = w.login("auditor").await;
    let (status, by_auditor) = w.post("/api/v1/allocations", Some(&auditor), body.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_auditor["entities"], computed["entities"]);
    let issue = json!({"market": "CN", "year": 2025, "issue": true});
    for who in ["auditor", "regulator-bj", "alice", "admin", "operator"] {
        let secret = w.login(who).await;
        let (status, body) = w.post("/api/v1/allocations", Some(&secret), issue.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{who} issuing: {body}");
    }
    for who in ["regulator-bj", "alice", "verifier"] {
        let secret = w.login(who).await;
        let (status, body) = w.post("/api/v1/allocations", Some(&secret), body.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{who} computing: {body}");
    }
    let (status, _) = w.post("/api/v1/allocations", None, body.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Bad requests: named, nothing computed.
    for (request, status, says) in [
        (json!({"market": "CN", "year": 2030}), StatusCode::BAD_REQUEST, "covers 2025–2026, not 2030"),
        (json!({"market": "CN", "year": 2025, "rulebook": "bj-2024"}), StatusCode::BAD_REQUEST, "market BJ's, not CN's"),
        (json!({"market": "CN", "year": 2025, "data": {"units": []}}), StatusCode::BAD_REQUEST, "JSON array"),
        (json!({"market": "CN", "year": 2025, "data": [{"unit": 1}]}), StatusCode::BAD_REQUEST, "data:"),
        (json!({"market": "CN", "year": 2025, "rulebook": "nope"}), StatusCode::NOT_FOUND, "no shipped rulebook nope"),
        (json!({"market": "XX", "year": 2025}), StatusCode::NOT_FOUND, "no market XX"),
    ] {
        let (got, answer) = w.post("/api/v1/allocations", Some(&auditor), request.clone()).await;
        assert_eq!(got, status, "{request}: {answer}");
        assert!(answer["message"].as_str().unwrap().contains(says), "{request}: {answer}");
    }

    // Records whose figures overflow the engine's exact arithmetic: 400, and the MRV register
    // still answers everyone afterwards.
    let huge = |unit: &str| {
        json!({"unit": unit, "entity": "CN-E0001", "category": "I", "generated_mwh": "0", "supplied_mwh": "0", "heat_gj": "0",
            "load_factor": "0", "air_cooled": false, "heat_ratio": "0", "verified_t": "50000000000000000000000000000", "previous_verified_t": "0"})
    };
    let (status, answer) =
        w.post("/api/v1/allocations", Some(&auditor), json!({"market": "CN", "year": 2025, "data": [huge("U1"), huge("U2")]})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let (status, _) = w.get("/api/v1/mrv/reports?year=2025", Some(&regulator)).await;
    assert_eq!(status, StatusCode::OK, "the MRV lock is not poisoned");

    // Issued: the total into CN-ISSUANCE and out to CN-E0001's coverage account (alice's).
    let issuance_before = holdings(regulator.clone(), "CN-ISSUANCE").await;
    let (status, issued) = w.post("/api/v1/allocations", Some(&regulator), issue.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    assert_eq!((issued["issued"]["commands"].as_u64(), issued["issued"]["new"].as_u64()), (Some(2), Some(2)), "{issued}");
    assert_eq!(issued["issued"]["actor"], "cn-auth");
    assert_eq!(holdings(regulator.clone(), A).await, a_before + final_t);
    assert_eq!(holdings(regulator.clone(), "CN-ISSUANCE").await, issuance_before);
    // Again: nothing new.
    let (status, again) = w.post("/api/v1/allocations", Some(&regulator), issue.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!((again["issued"]["new"].as_u64(), again["issued"]["repeated"].as_u64()), (Some(0), Some(2)), "{again}");
    assert_eq!(holdings(regulator.clone(), A).await, a_before + final_t);
    assert_eq!(again["issued"]["seq"], issued["issued"]["seq"]);

    // 2026: CN-E0001 is covered from a new account that is closed. The total would issue but
    // the allocation into a closed account is refused: nothing is written, not even the issue.
    let at = w.now();
    let number = {
        let mut ledger = w.platform.registry.lock().unwrap();
        let open = ets_registry::Command::OpenAccount {
            market: "CN".into(),
            kind: ets_registry::AccountKind::Operator,
            holder: "dora".into(),
            holder_type: ets_registry::HolderType::Entity,
            representatives: vec!["dora".into()],
        };
        let opened = ledger.submit(at, &ets_registry::Envelope { id: "open-d".into(), actor: "cn-auth".into(), command: open }).unwrap();
        let number = ledger.registry().account(opened.receipt.account.unwrap()).number.clone();
        let close = ets_registry::Command::SetAccountStatus { account: number.clone(), status: ets_registry::AccountStatus::Closed };
        ledger.submit(at, &ets_registry::Envelope { id: "close-d".into(), actor: "admin".into(), command: close }).unwrap();
        number
    };
    {
        use ets_mrv::entity::{Coverage, Sector};
        let coverage = Coverage {
            market: "CN".into(),
            sector: Sector::Power,
            gases: ["CO2".to_string()].into(),
            from_year: 2026,
            to_year: None,
            account: Some(number.clone()),
        };
        let end = ets_mrv::state::Command::EndCoverage { entity: "CN-E0001".into(), market: "CN".into(), last_year: 2025, sector: None };
        let cover = ets_mrv::state::Command::Cover { entity: "CN-E0001".into(), coverage };
        let submissions: Vec<ets_store::MrvSubmission> = [("end", end), ("recover", cover)]
            .into_iter()
            .map(|(id, command)| ets_store::MrvSubmission { command_id: id.into(), actor: ets_mrv::sample::AUTHORITY.into(), at, command })
            .collect();
        w.platform.mrv.lock().unwrap().submit_batch(&submissions, &[]).map_err(|(i, e)| format!("{i:?}: {e:?}")).unwrap();
    }
    let seq = w.platform.registry.lock().unwrap().registry().seq();
    let power_2026 = json!({"market": "CN", "year": 2026, "issue": true, "data": [{
        "unit": "U1", "entity": "CN-E0001", "category": "I", "generated_mwh": "1000000", "supplied_mwh": "950000", "heat_gj": "0",
        "load_factor": "0.8", "air_cooled": false, "heat_ratio": "0", "verified_t": "800000", "previous_verified_t": "800000"}]});
    let (status, refused) = w.post("/api/v1/allocations", Some(&regulator), power_2026).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert!(refused["message"].as_str().unwrap().contains("nothing was issued"), "{refused}");
    assert_eq!(w.platform.registry.lock().unwrap().registry().seq(), seq, "nothing written");
}

/// A primary auction as a bidding window. The national authority opens it, and the volume is set
/// aside from the reserve at once (its own allocation cannot reach it). Exchange members bid for
/// themselves, covered by their own cash; nobody bids or withdraws for another; bids are sealed
/// until the window closes. The authority clears it: one price, units out of the escrow, the
/// rest back to the reserve; the public result names no winner; an id runs once; an
/// undersubscribed auction is cancelled with its reason and the reserve gets its units back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_auction_takes_members_own_bids_then_clears_and_publishes() {
    let w = World::new();
    let regulator = w.login("regulator-cn").await;
    let (alice, bob) = (w.login("alice").await, w.login("bob").await);
    let cea = |v: &Value| -> (u64, u64) {
        v["holdings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h["unit"] == "CEA:2025")
            .map(|h| (h["total_t"].as_u64().unwrap(), h["free_t"].as_u64().unwrap()))
            .fold((0, 0), |(t, f), (a, b)| (t + a, f + b))
    };
    let reserve = || async { cea(&w.get(&format!("/api/v1/accounts/{}", common::CN_RESERVE), Some(&regulator)).await.1) };
    let (_, before_b) = w.get(&format!("/api/v1/accounts/{B}"), Some(&regulator)).await;
    assert_eq!(reserve().await, (common::RESERVE_T, common::RESERVE_T));
    let open = |id: &str, volume: u64| json!({"auction": id, "instrument": "CEA-2025", "volume_t": volume, "reserve_price_fen": 7_000, "lot_t": 100});
    let post = |uri: String, who: &str, body: Value| {
        let who = who.to_string();
        let w = &w;
        async move { w.call(Method::POST, &uri, Some(&who), Some(body)).await }
    };
    let bid = |price: i64, qty: u64| json!({"price_fen": price, "qty_t": qty});

    // More than the reserve holds: refused, nothing set aside, nothing published.
    let (status, body) = post("/api/v1/auctions".into(), &regulator, open("a0", common::RESERVE_T + 1)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["message"].as_str().unwrap().contains("holds 50,000 t of CEA:2025 free; 50,001 t requested"), "{body}");
    assert_eq!(w.get("/api/v1/auctions", None).await.1, json!([]));

    // Opened: the volume leaves the reserve's free units at once.
    let (status, opened) = post("/api/v1/auctions".into(), &regulator, open("a1", 10_000)).await;
    assert_eq!(status, StatusCode::CREATED, "{opened}");
    assert_eq!((opened["outcome"].as_str(), opened["escrow"].as_str()), (Some("open"), Some("auction-a1")));
    assert_eq!(opened["from_account"], common::CN_RESERVE);
    assert_eq!(reserve().await, (common::RESERVE_T, common::RESERVE_T - 10_000));
    let allocate = |qty: u64| json!({"id": format!("alloc-{qty}"), "command": {"Allocate": {"from": common::CN_RESERVE, "to": A, "unit": {"code": "CEA", "project": null, "vintage": 2025}, "quantity": qty}}});
    let (status, body) = post("/api/v1/registry/commands".into(), &regulator, allocate(common::RESERVE_T - 10_000 + 1)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "the authority's own allocation cannot take units set aside: {body}");
    let (status, _) = post("/api/v1/auctions".into(), &regulator, open("a1", 10_000)).await;
    assert_eq!(status, StatusCode::CONFLICT, "an auction id is used once");

    // Bids: members for themselves, covered by their own cash, on the auction's terms.
    let bids = "/api/v1/auctions/a1/bids".to_string();
    let (status, body) = post(bids.clone(), &alice, bid(7_500, 1_000)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "alice has no cash at the exchange: {body}");
    assert!(body["message"].as_str().unwrap().contains("not covered"), "{body}");
    let (status, _) = post(bids.clone(), &bob, json!({"price_fen": 7_500, "qty_t": 1_000, "member": "alice"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "bob cannot bid as alice");
    let (status, _) = post(bids.clone(), &regulator, json!({"price_fen": 7_500, "qty_t": 1_000, "member": "bob"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "the authority cannot bid for a member");
    let (status, body) = post(bids.clone(), &bob, bid(6_900, 1_000)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "below the reserve price: {body}");
    let (status, body) = post(bids.clone(), &bob, bid(7_500, 150)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "not a whole lot: {body}");
    let (status, first) = post(bids.clone(), &bob, bid(7_500, 6_000)).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!((first["bid"].as_u64(), first["guarantee_fen"].as_i64()), (Some(0), Some(45_000_000)));
    let (_, second) = post(bids.clone(), &bob, bid(7_100, 6_000)).await;
    assert_eq!(second["bid"], 1);
    // Withdrawn by its member only, once; then bid again higher.
    let (status, _) = w.call(Method::DELETE, "/api/v1/auctions/a1/bids/1", Some(&alice), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "alice has no bid 1");
    let (status, _) = w.call(Method::DELETE, "/api/v1/auctions/a1/bids/1", Some(&bob), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = w.call(Method::DELETE, "/api/v1/auctions/a1/bids/1", Some(&bob), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, third) = post(bids.clone(), &bob, bid(7_200, 6_000)).await;
    assert_eq!(third["bid"], 2);
    // Sealed: the public sees the offer, not the bids.
    let (_, published) = w.get("/api/v1/auctions", None).await;
    assert_eq!((published[0]["outcome"].as_str(), published[0]["bids"].as_u64()), (Some("open"), Some(0)), "{published}");
    assert!(!published.to_string().contains("bob"), "{published}");

    // Cleared by the market's authority only: 6,000 t at ¥75.00 and 6,000 t at ¥72.00 for
    // 10,000 t clear at ¥72.00, delivered out of the escrow into bob's account.
    let clear = |id: &str| format!("/api/v1/auctions/{id}/clear");
    for who in [&bob, &w.login("regulator-bj").await] {
        let (status, _) = w.call(Method::POST, &clear("a1"), Some(who), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    let (status, result) = w.call(Method::POST, &clear("a1"), Some(&regulator), None).await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(result["outcome"], "cleared");
    assert_eq!((result["clearing_price_fen"].as_i64(), result["sold_t"].as_u64()), (Some(7_200), Some(10_000)));
    assert_eq!(result["awards"], json!([{"member": "bob", "account": B, "qty_t": 10_000}]));
    assert_eq!((result["bids"].as_u64(), result["bidders"].as_u64(), result["bid_t"].as_u64()), (Some(2), Some(1), Some(12_000)));
    let (_, after_b) = w.get(&format!("/api/v1/accounts/{B}"), Some(&regulator)).await;
    assert_eq!(cea(&after_b).0, cea(&before_b).0 + 10_000, "delivered into bob's account");
    assert_eq!(reserve().await, (common::RESERVE_T - 10_000, common::RESERVE_T - 10_000));
    let (status, _) = w.call(Method::POST, &clear("a1"), Some(&regulator), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "cleared once");
    let (status, _) = post(bids.clone(), &bob, bid(7_500, 100)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the window is closed");
    let (status, _) = w.call(Method::POST, &clear("nope"), Some(&regulator), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The public result: what was offered and bid and the outcome, no winner's name.
    let (_, published) = w.get("/api/v1/auctions", None).await;
    let p = &published[0];
    assert_eq!((p["auction"].as_str(), p["market"].as_str(), p["clearing_price_fen"].as_i64()), (Some("a1"), Some("CN"), Some(7_200)));
    assert_eq!((p["successful_bidders"].as_u64(), p["bids"].as_u64()), (Some(1), Some(2)));
    assert!(!p.to_string().contains("bob"), "{p}");

    // Undersubscribed: cancelled with its reason; the reserve gets every unit back, free.
    let (status, _) = post("/api/v1/auctions".into(), &regulator, open("a3", 20_000)).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = post("/api/v1/auctions/a3/bids".into(), &bob, bid(7_500, 100)).await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, result) = w.call(Method::POST, &clear("a3"), Some(&regulator), None).await;
    assert_eq!(result["outcome"], "cancelled", "{result}");
    assert!(result["reason"].as_str().is_some_and(|r| !r.is_empty()), "{result}");
    assert_eq!(result["awards"], json!([]));
    assert_eq!(reserve().await, (common::RESERVE_T - 10_000, common::RESERVE_T - 10_000));

    // Only a market's authority opens one, and only in its market.
    let bj = w.login("regulator-bj").await;
    let (status, _) = post("/api/v1/auctions".into(), &bj, open("a4", 1_000)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = post("/api/v1/auctions".into(), &bob, open("a4", 1_000)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

/// The MRV workflow through the API: the entity's representative engages the verifier, the
/// verifier's auditor gives an opinion, the authority's official accepts; each step needs its
/// role and the MRV rules' person; a retried id is answered, not repeated; the accepted report
/// makes the entity's compliance assessable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mrv_workflow_runs_through_the_api_step_by_step() {
    let w = World::new();
    let rep = w.login("cn-op2").await;
    let auditor = w.login(ets_mrv::sample::VERIFIER_STAFF).await;
    let official = w.login(ets_mrv::sample::AUTHORITY).await;
    let report = common::PENDING_REPORT;
    let step = |id: &str, command: Value| json!({"id": id, "command": command});
    let post = |secret: &str, body: Value| {
        let secret = secret.to_string();
        let w = &w;
        async move { w.call(Method::POST, "/api/v1/mrv/commands", Some(&secret), Some(body)).await }
    };

    // Not yet: the report is only submitted, so nobody may accept it; the representative is
    // not the authority at all.
    let (status, body) = post(&rep, step("a0", json!({"type": "accept", "report": report}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = post(&official, step("a0", json!({"type": "accept", "report": report}))).await;
    assert_eq!(status, StatusCode::CONFLICT, "an unverified report cannot be accepted: {body}");

    let (status, body) =
        post(&rep, step("assign", json!({"type": "assign_verifier", "report": report, "verifier": ets_mrv::sample::VERIFIER}))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // alice represents A, not CN-E0002's account: not her step.
    let alice = w.login("alice").await;
    let (status, _) = post(&alice, step("x", json!({"type": "resubmit_report", "report": report, "reason": "no"}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = post(&auditor, step("opinion", json!({"type": "give_opinion", "report": report, "stated": "Unqualified"}))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, accepted) = post(&official, step("accept", json!({"type": "accept", "report": report}))).await;
    assert_eq!(status, StatusCode::CREATED, "{accepted}");
    assert_eq!(accepted["repeated"], false);
    let (status, again) = post(&official, step("accept", json!({"type": "accept", "report": report}))).await;
    assert_eq!((status, again["repeated"].as_bool(), again["seq"].clone()), (StatusCode::CREATED, Some(true), accepted["seq"].clone()));

    // Moving an entity between markets takes both authorities: neither alone may.
    let migrate = json!({"type": "migrate", "entity": common::ENTITIES[0].0, "from_market": "CN", "to_market": "BJ", "year": 2026,
        "account": null, "reason": "test", "sector": null});
    for who in [official.clone(), w.login("regulator-bj").await] {
        let (status, body) = post(&who, step("mig", migrate.clone())).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    }
    // A coverage's account must be in the market it covers.
    let cover = json!({"type": "cover", "entity": common::ENTITIES[0].0, "coverage": {"market": "CN", "sector": "power", "gases": ["CO2"],
        "from_year": 2021, "to_year": null, "account": C}});
    let (status, body) = post(&official, step("cov", cover)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["message"].as_str().unwrap().contains("is in market BJ, not CN"), "{body}");

    // Bad input names what was wrong; nothing is written.
    let (status, body) = post(&official, step("bad", json!({"type": "no_such_step"}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["message"].as_str().unwrap().contains("no_such_step"), "{body}");
    let (status, _) =
        w.call(Method::POST, "/api/v1/mrv/commands", None, Some(step("anon", json!({"type": "accept", "report": report})))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // The report is accepted, its entity now assessed: bob surrendered nothing.
    let (_, reports) = w.get("/api/v1/mrv/reports?state=accepted", Some(&official)).await;
    let r = reports.as_array().unwrap().iter().find(|r| r["id"] == report).expect("accepted");
    let verified: rust_decimal::Decimal = r["verified_emissions_t"].as_str().unwrap().parse().unwrap();
    let (_, cn) = w.get("/api/v1/compliance/CN?year=2025", Some(&official)).await;
    let e = cn["entities"].as_array().unwrap().iter().find(|e| e["entity"] == common::ENTITIES[1].0).unwrap();
    assert_eq!(e["status"], "shortfall", "{e}");
    assert_eq!(e["obligation_t"].as_u64().map(rust_decimal::Decimal::from), Some(verified.ceil()));
    assert_eq!(e["shortfall_t"], e["obligation_t"]);
    // The audit of who did it is the MRV journal's: each step under the person's name.
    let (_, queue) = w.get("/api/v1/mrv/reports?state=submitted", Some(&auditor)).await;
    assert_eq!(queue, json!([]));
}

/// Registry commands through the API: a representative surrenders for the compliance year (and
/// compliance counts it), a market's authority allocates as the registry's authority, an
/// administrator opens an account; each only where its role reaches; transfers are refused here
/// (four-eyes path); a retried id is answered, not repeated; a refusal changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_commands_run_for_the_role_that_may_run_them() {
    let w = World::new();
    let alice = w.login("alice").await;
    let unit = json!({"code": "CEA", "project": null, "vintage": 2025});
    let run = |secret: String, id: &str, command: Value| {
        let body = json!({"id": id, "command": command});
        let w = &w;
        async move { w.call(Method::POST, "/api/v1/registry/commands", Some(&secret), Some(body)).await }
    };
    let holdings = |v: &Value| {
        v["holdings"].as_array().unwrap().iter().filter(|h| h["unit"] == "CEA:2025").map(|h| h["total_t"].as_u64().unwrap()).sum::<u64>()
    };
    let (_, before) = w.get(&format!("/api/v1/accounts/{A}"), Some(&alice)).await;

    let surrender = json!({"Surrender": {"account": A, "unit": unit, "quantity": 5_000, "compliance_year": 2025}});
    let (status, done) = run(alice.clone(), "s1", surrender.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{done}");
    assert_eq!((done["actor"].as_str(), done["repeated"].as_bool()), (Some("alice"), Some(false)));
    let (status, again) = run(alice.clone(), "s1", surrender.clone()).await;
    assert_eq!((status, again["repeated"].as_bool()), (StatusCode::CREATED, Some(true)));
    let (_, after) = w.get(&format!("/api/v1/accounts/{A}"), Some(&alice)).await;
    assert_eq!(holdings(&after), holdings(&before) - 5_000, "surrendered once");
    let regulator = w.login("regulator-cn").await;
    let (_, cn) = w.get("/api/v1/compliance/CN?year=2025", Some(&regulator)).await;
    let e = cn["entities"].as_array().unwrap().iter().find(|e| e["entity"] == common::ENTITIES[0].0).unwrap();
    assert_eq!(e["allowances_counted_t"], common::SURRENDERED_A + 5_000, "{e}");

    // More than A holds: refused by the registry, nothing moves. Bob is not A's representative.
    let too_much = json!({"Surrender": {"account": A, "unit": unit, "quantity": 10_000_000, "compliance_year": 2025}});
    let (status, body) = run(alice.clone(), "s2", too_much).await;
    assert!(status.is_client_error() && status != StatusCode::FORBIDDEN, "{status} {body}");
    let bob = w.login("bob").await;
    let (status, _) = run(bob, "s3", surrender).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, unchanged) = w.get(&format!("/api/v1/accounts/{A}"), Some(&alice)).await;
    assert_eq!(holdings(&unchanged), holdings(&after));

    // The national authority allocates, as the registry's CN authority; BJ's may not.
    let (_, b_before) = w.get(&format!("/api/v1/accounts/{B}"), Some(&regulator)).await;
    let allocate = json!({"Allocate": {"from": "CN-ISSUANCE", "to": B, "unit": unit, "quantity": 1_000}});
    let (status, done) = run(regulator.clone(), "a1", allocate.clone()).await;
    assert_eq!((status, done["actor"].as_str()), (StatusCode::CREATED, Some("cn-auth")), "{done}");
    let (_, b_after) = w.get(&format!("/api/v1/accounts/{B}"), Some(&regulator)).await;
    assert_eq!(holdings(&b_after), holdings(&b_before) + 1_000);
    let bj = w.login("regulator-bj").await;
    let (status, _) = run(bj, "a2", allocate).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Transfers take the four-eyes path; an administrator opens an account.
    let (status, body) = run(alice.clone(), "t1", json!({"Transfer": {"from": A, "to": B, "unit": unit, "quantity": 1}})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["message"].as_str().unwrap().contains("/api/v1/transfers"), "{body}");
    let admin = w.login("admin").await;
    let open =
        json!({"OpenAccount": {"market": "BJ", "kind": "Trading", "holder": "Dana", "holder_type": "Entity", "representatives": ["dana"]}});
    let (status, opened) = run(admin, "o1", open).await;
    assert_eq!(status, StatusCode::CREATED, "{opened}");
    assert!(opened["account"].as_str().is_some_and(|n| n.starts_with("BJ-")), "{opened}");
    let (status, body) = run(alice, "bad", json!({"NoSuchCommand": {}})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
}

/// The API is no oracle of what exists: a caller whose roles would not allow the request if the
/// account, freeze or report existed gets 403 whether or not it does; those who may know what
/// exists (administrators, auditors, authorities; verifiers for MRV) get 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_things_are_403_to_callers_who_may_not_know_them() {
    let w = World::new();
    let (alice, admin, regulator) = (w.login("alice").await, w.login("admin").await, w.login("regulator-cn").await);
    for uri in ["/api/v1/accounts/CN-999999", "/api/v1/accounts/CN-999999/transactions", "/api/v1/accounts/CN-999999/trusted"] {
        assert_eq!(w.get(uri, Some(&alice)).await.0, StatusCode::FORBIDDEN, "{uri} for alice");
        assert_eq!(w.get(uri, Some(&admin)).await.0, StatusCode::NOT_FOUND, "{uri} for admin");
    }
    // An existing account alice does not represent: the same 403; the public: 401 either way.
    assert_eq!(w.get(&format!("/api/v1/accounts/{B}"), Some(&alice)).await.0, StatusCode::FORBIDDEN);
    assert_eq!(w.get("/api/v1/accounts/CN-999999", None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(w.get(&format!("/api/v1/accounts/{B}"), None).await.0, StatusCode::UNAUTHORIZED);
    // A transfer to an account that may not exist tells alice nothing unless she may propose from B.
    let (status, _) = w
        .call(
            Method::POST,
            "/api/v1/transfers",
            Some(&alice),
            Some(json!({"from": B, "to": "CN-999999", "unit": "CEA:2025", "quantity_t": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // An exchange member's account is not closed under the exchange's deliveries.
    let close = json!({"id": "o-close", "command": {"SetAccountStatus": {"account": A, "status": "Closed"}}});
    let (status, body) = w.call(Method::POST, "/api/v1/registry/commands", Some(&admin), Some(close)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let surrender = |account: &str| json!({"id": format!("o-{account}"), "command": {"Surrender": {"account": account, "unit": {"code": "CEA", "project": null, "vintage": 2025}, "quantity": 1, "compliance_year": 2025}}});
    let (status, _) = w.call(Method::POST, "/api/v1/registry/commands", Some(&alice), Some(surrender("CN-999999"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = w.call(Method::POST, "/api/v1/registry/commands", Some(&alice), Some(surrender(B))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = w.call(Method::POST, "/api/v1/registry/commands", Some(&admin), Some(surrender("CN-999999"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let unfreeze = json!({"id": "o-unfreeze", "command": {"Unfreeze": {"freeze": "no-such-freeze"}}});
    let (status, _) = w.call(Method::POST, "/api/v1/registry/commands", Some(&alice), Some(unfreeze.clone())).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = w.call(Method::POST, "/api/v1/registry/commands", Some(&regulator), Some(unfreeze)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let accept = json!({"id": "o-accept", "command": {"type": "accept", "report": "CN-E9999-2025"}});
    let (status, _) = w.call(Method::POST, "/api/v1/mrv/commands", Some(&alice), Some(accept.clone())).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = w.call(Method::POST, "/api/v1/mrv/commands", Some(&regulator), Some(accept)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
