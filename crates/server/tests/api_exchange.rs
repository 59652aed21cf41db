//! The exchange's operations through the API: the operator's trading day (opening, closing
//! with settlement into the registry), members and their cash, listings; members' block
//! trades, one-way bidding and unlodging; who may read and do what.

mod common;

use axum::http::{Method, StatusCode};
use common::{World, A, B, C, CLEARING, CN_RESERVE, PASSWORD, RESERVE_T};
use serde_json::{json, Value};

fn member<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array().unwrap().iter().find(|m| m["member"] == name).unwrap_or_else(|| panic!("no member {name} in {list}"))
}

fn position<'a>(m: &'a Value, instrument: &str) -> &'a Value {
    m["positions"].as_array().unwrap().iter().find(|p| p["instrument"] == instrument).unwrap_or(&Value::Null)
}

fn names(list: &Value) -> Vec<String> {
    list.as_array().unwrap().iter().map(|m| m["member"].as_str().unwrap().to_string()).collect()
}

/// Creates a user through the API (as the registry administrator) and signs it in.
async fn user_with(w: &World, admin: &str, user: &str, role: &str) -> String {
    let (status, body) = w.post("/api/v1/users", Some(admin), json!({"user": user, "password": PASSWORD, "roles": [role]})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    w.login(user).await
}

/// A new national member: a trading account opened by the registry administrator, the member
/// admitted by the exchange operator with it, cash deposited, and a user acting for it.
/// Returns the user's secret and the account.
async fn new_member(w: &World, admin: &str, operator: &str, name: &str, cash_fen: i64) -> (String, String) {
    let open =
        json!({"OpenAccount": {"market": "CN", "kind": "Trading", "holder": name, "holder_type": "Entity", "representatives": [name]}});
    let (status, opened) = w.post("/api/v1/registry/commands", Some(admin), json!({"id": format!("open-{name}"), "command": open})).await;
    assert_eq!(status, StatusCode::CREATED, "{opened}");
    let account = opened["account"].as_str().unwrap().to_string();
    let (status, body) = w.post("/api/v1/exchange/members", Some(operator), json!({"member": name, "accounts": {"CN": account}})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    if cash_fen > 0 {
        let uri = format!("/api/v1/exchange/members/{name}/deposits");
        let (status, body) = w.post(&uri, Some(operator), json!({"amount_fen": cash_fen})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    (user_with(w, admin, name, &format!("exchange-member:{name}")).await, account)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_trade_is_proposed_confirmed_and_settled_at_the_close() {
    let w = World::new();
    let (alice, bob, operator, admin) = (w.login("alice").await, w.login("bob").await, w.login("operator").await, w.login("admin").await);
    // A block deal needs 100,000 t at least: alice lodges the 80,000 t of A not lodged yet.
    let (status, body) = w.post("/api/v1/lodgements", Some(&alice), json!({"instrument": "CEA-2025", "qty_t": 80_000})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Below the block minimum, and outside the block band (±30% of ¥80.00): refused.
    let deal = |qty: u64, price: i64| json!({"deal": "d1", "counterparty": "bob", "instrument": "CEA-2025", "side": "sell", "price_fen": price, "qty_t": qty});
    let (status, body) = w.post("/api/v1/exchange/blocks", Some(&alice), deal(1_000, 8_200)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["message"].as_str().unwrap().contains("block"), "{body}");
    let (status, body) = w.post("/api/v1/exchange/blocks", Some(&alice), deal(100_000, 10_500)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["message"].as_str().unwrap().contains("band"), "{body}");
    let (status, body) = w
        .post(
            "/api/v1/exchange/blocks",
            Some(&alice),
            json!({"counterparty": "bob", "instrument": "CEA-2025", "side": "hold", "price_fen": 8_200, "qty_t": 100_000}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // Proposed: alice's 100,000 t are reserved until bob confirms (the demo clock walks the
    // block session for block deals).
    let (status, proposed) = w.post("/api/v1/exchange/blocks", Some(&alice), deal(100_000, 8_200)).await;
    assert_eq!(status, StatusCode::CREATED, "{proposed}");
    assert_eq!(proposed["deal"], "d1");
    assert_eq!(proposed["proposer"], "alice");
    let (status, again) = w.post("/api/v1/exchange/blocks", Some(&alice), deal(100_000, 8_200)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");
    let (_, members) = w.get("/api/v1/exchange/members", Some(&alice)).await;
    assert_eq!(position(member(&members, "alice"), "CEA-2025")["reserved_t"], 100_000);
    for secret in [&alice, &bob, &operator] {
        let (status, blocks) = w.get("/api/v1/exchange/blocks", Some(secret)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(blocks.as_array().unwrap().len(), 1, "{blocks}");
        assert_eq!(blocks[0]["counterparty"], "bob");
    }
    // A third member may not confirm a deal addressed to bob; carol (no member) may not even
    // look at deals.
    let (dave, _) = new_member(&w, &admin, &operator, "dave", 1_000_000_000).await;
    let (status, blocks) = w.get("/api/v1/exchange/blocks", Some(&dave)).await;
    assert_eq!((status, blocks), (StatusCode::OK, json!([])));
    let (status, body) = w.post("/api/v1/exchange/blocks/d1/confirm", Some(&dave), json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let carol = w.login("carol").await;
    let (status, _) = w.get("/api/v1/exchange/blocks", Some(&carol)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = w.post("/api/v1/exchange/blocks/d1/confirm", Some(&carol), json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // Bob confirms: it trades at once at the deal's price.
    let (status, confirmed) = w.post("/api/v1/exchange/blocks/d1/confirm", Some(&bob), json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{confirmed}");
    let trade = &confirmed["trade"];
    assert_eq!((trade["kind"].as_str(), trade["buyer"].as_str(), trade["seller"].as_str()), (Some("block"), Some("bob"), Some("alice")));
    assert_eq!((trade["price_fen"].as_i64(), trade["qty_t"].as_u64()), (Some(8_200), Some(100_000)));
    let (status, body) = w.post("/api/v1/exchange/blocks/d1/confirm", Some(&bob), json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (_, blocks) = w.get("/api/v1/exchange/blocks", Some(&operator)).await;
    assert_eq!(blocks, json!([]));
    // Not settled yet: bob owes the price, alice owes the units; the registry has not moved.
    let value = 8_200 * 100_000;
    let (_, members) = w.get("/api/v1/exchange/members", Some(&operator)).await;
    let (a, b) = (member(&members, "alice"), member(&members, "bob"));
    assert_eq!(b["cash"]["owed_fen"], value);
    assert_eq!(b["cash"]["balance_fen"], 100_000_000_000i64);
    assert_eq!(position(b, "CEA-2025")["receivable_t"], 100_000);
    assert_eq!(a["cash"]["balance_fen"], 0);
    assert_eq!(position(a, "CEA-2025")["owed_t"], 100_000);
    assert_eq!(w.held(A), (0, 100_000));
    assert_eq!(w.held(B), (50_000, 50_000));
    // The operator closes the day: delivery versus payment, into the registry before the answer.
    let (status, closed) = w.post("/api/v1/exchange/day/close", Some(&operator), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{closed}");
    assert_eq!(closed["date"], "2025-06-04");
    assert_eq!(closed["settled_trades"], 1);
    assert_eq!(closed["settled_value_fen"], value);
    let deliveries = closed["deliveries"].as_array().unwrap();
    assert!(deliveries.iter().any(|d| d["command"] == "deliver-pending" && d["to"] == CLEARING), "{closed}");
    assert!(deliveries.iter().any(|d| d["command"] == "transfer" && d["from"] == CLEARING && d["to"] == B && d["quantity_t"] == 100_000));
    assert_eq!(closed["bars"][0]["bar"]["block_volume_t"], 100_000);
    assert_eq!(w.held(A), (0, 0));
    assert_eq!(w.held(B), (150_000, 150_000));
    assert_eq!(w.held(CLEARING), (0, 0));
    let (_, members) = w.get("/api/v1/exchange/members", Some(&operator)).await;
    let (a, b) = (member(&members, "alice"), member(&members, "bob"));
    assert_eq!(a["cash"]["balance_fen"], value);
    assert_eq!(b["cash"]["balance_fen"], 100_000_000_000i64 - value);
    assert_eq!(b["cash"]["owed_fen"], 0);
    assert_eq!(position(a, "CEA-2025"), &Value::Null, "alice has nothing left at the exchange");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawn_block_deal_releases_the_reservation() {
    let w = World::new();
    let (bob, alice) = (w.login("bob").await, w.login("alice").await);
    // Bob proposes to buy 100,000 t from alice: ¥820,000,000 of his cash is reserved.
    let body =
        json!({"deal": "d2", "counterparty": "alice", "instrument": "CEA-2025", "side": "buy", "price_fen": 8_200, "qty_t": 100_000});
    let (status, proposed) = w.post("/api/v1/exchange/blocks", Some(&bob), body).await;
    assert_eq!(status, StatusCode::CREATED, "{proposed}");
    let (_, members) = w.get("/api/v1/exchange/members", Some(&bob)).await;
    assert_eq!(names(&members), ["bob"]);
    assert_eq!(members[0]["cash"]["reserved_fen"], 820_000_000);
    // Alice (the counterparty) withdraws it; bob's cash is free again.
    let (status, _) = w.call(Method::DELETE, "/api/v1/exchange/blocks/d2", Some(&alice), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, members) = w.get("/api/v1/exchange/members", Some(&bob)).await;
    assert_eq!(members[0]["cash"]["reserved_fen"], 0);
    let (status, _) = w.call(Method::DELETE, "/api/v1/exchange/blocks/d2", Some(&alice), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_way_bidding_with_two_bidders_fills_best_price_first() {
    let w = World::new();
    let (alice, bob, operator, admin) = (w.login("alice").await, w.login("bob").await, w.login("operator").await, w.login("admin").await);
    // The second bidder: a member admitted for it, with ¥1,000,000 deposited by the operator.
    let (desk, desk_account) = new_member(&w, &admin, &operator, "erin", 100_000_000).await;
    // The national reserve's member sells at primary auctions only: its reserve account takes
    // no units by transfer, so it may not bid (settlement could not deliver to it).
    let reserve = user_with(&w, &admin, "reserve-desk", "exchange-member:cn-reserve").await;
    let (status, cash) = w.post("/api/v1/exchange/members/cn-reserve/deposits", Some(&operator), json!({"amount_fen": 100_000_000})).await;
    assert_eq!(status, StatusCode::CREATED, "{cash}");
    assert_eq!(cash["balance_fen"], 100_000_000);
    // Alice offers 10,000 t at ¥79.00 at worst.
    let offer = json!({"bidding": "b1", "instrument": "CEA-2025", "side": "sell", "qty_t": 10_000, "limit_price_fen": 7_900});
    let (status, opened) = w.post("/api/v1/exchange/biddings", Some(&alice), offer.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{opened}");
    assert_eq!(opened["initiator"], "alice");
    let (status, _) = w.post("/api/v1/exchange/biddings", Some(&alice), offer).await;
    assert_eq!(status, StatusCode::CONFLICT);
    // Refusals: the initiator bids in its own bidding; a bid below the limit; no such bidding.
    let (status, body) = w.post("/api/v1/exchange/biddings/b1/bids", Some(&alice), json!({"price_fen": 8_000, "qty_t": 1_000})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = w.post("/api/v1/exchange/biddings/b1/bids", Some(&bob), json!({"price_fen": 7_800, "qty_t": 1_000})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, _) = w.post("/api/v1/exchange/biddings/b9/bids", Some(&bob), json!({"price_fen": 8_000, "qty_t": 1_000})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = w.post("/api/v1/exchange/biddings/b1/bids", Some(&reserve), json!({"price_fen": 8_000, "qty_t": 1_000})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["message"].as_str().unwrap().contains("cannot receive units by transfer"), "{body}");
    // Two bids: bob 6,000 t at ¥81.00, erin 6,000 t at ¥80.00 (more than her cash allows is
    // refused).
    let (status, body) = w.post("/api/v1/exchange/biddings/b1/bids", Some(&desk), json!({"price_fen": 8_000, "qty_t": 20_000})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, first) = w.post("/api/v1/exchange/biddings/b1/bids", Some(&bob), json!({"price_fen": 8_100, "qty_t": 6_000})).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["index"], 0);
    let (status, second) = w.post("/api/v1/exchange/biddings/b1/bids", Some(&desk), json!({"price_fen": 8_000, "qty_t": 6_000})).await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    assert_eq!(second["index"], 1);
    // Bob sees the bidding and his own bid only; the operator sees both bids.
    let (_, seen) = w.get("/api/v1/exchange/biddings", Some(&bob)).await;
    assert_eq!(seen[0]["bid_count"], 2);
    assert_eq!(seen[0]["bids"], json!([{"member": "bob", "price_fen": 8_100, "qty_t": 6_000}]));
    let (_, seen) = w.get("/api/v1/exchange/biddings", Some(&operator)).await;
    assert_eq!(seen[0]["bids"].as_array().unwrap().len(), 2);
    // Only the initiator (or the operator) closes it.
    let (status, _) = w.post("/api/v1/exchange/biddings/b1/close", Some(&bob), json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, closed) = w.post("/api/v1/exchange/biddings/b1/close", Some(&alice), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{closed}");
    assert_eq!(closed["filled_t"], 10_000);
    let trades: Vec<(String, i64, u64)> = closed["trades"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["buyer"].as_str().unwrap().to_string(), t["price_fen"].as_i64().unwrap(), t["qty_t"].as_u64().unwrap()))
        .collect();
    assert_eq!(trades, [("bob".to_string(), 8_100, 6_000), ("erin".to_string(), 8_000, 4_000)]);
    let (_, open) = w.get("/api/v1/exchange/biddings", Some(&operator)).await;
    assert_eq!(open, json!([]));
    // Erin's unfilled 2,000 t are released; she owes what she bought.
    let (_, mine) = w.get("/api/v1/exchange/members", Some(&desk)).await;
    assert_eq!(names(&mine), ["erin"]);
    assert_eq!(mine[0]["cash"]["reserved_fen"], 0);
    assert_eq!(mine[0]["cash"]["owed_fen"], 8_000 * 4_000);
    // Settled at the close: units from A to B and to erin's account.
    let (status, closed) = w.post("/api/v1/exchange/day/close", Some(&operator), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{closed}");
    assert_eq!(closed["settled_trades"], 2);
    assert_eq!(w.held(A), (80_000, 90_000));
    assert_eq!(w.held(B), (56_000, 56_000));
    assert_eq!(w.held(&desk_account), (4_000, 4_000));
    assert_eq!(w.held(CN_RESERVE), (RESERVE_T, RESERVE_T));
    let (_, members) = w.get("/api/v1/exchange/members", Some(&operator)).await;
    assert_eq!(member(&members, "alice")["cash"]["balance_fen"], 8_100 * 6_000 + 8_000 * 4_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_opens_and_closes_the_day_and_nobody_else_does() {
    let w = World::new();
    let operator = w.login("operator").await;
    let mut others = vec![(None, StatusCode::UNAUTHORIZED)];
    for user in ["alice", "bob", "admin", "auditor", "regulator-cn"] {
        others.push((Some(w.login(user).await), StatusCode::FORBIDDEN));
    }
    for (secret, expected) in &others {
        let (status, body) = w.post("/api/v1/exchange/day/open", secret.as_deref(), json!({})).await;
        assert_eq!(status, *expected, "{body}");
        let (status, body) = w.post("/api/v1/exchange/day/close", secret.as_deref(), json!({})).await;
        assert_eq!(status, *expected, "{body}");
    }
    let (status, day) = w.get("/api/v1/exchange/day", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(day["open_day"], "2025-06-04");
    assert_eq!(day["clock"], "demo-session");
    let rules = &day["instruments"][0];
    assert_eq!(rules["code"], "CEA-2025");
    assert_eq!(rules["listed_band"], json!({"low_fen": 7_200, "high_fen": 8_800}));
    assert_eq!(rules["block_band"], json!({"low_fen": 5_600, "high_fen": 10_400}));
    assert_eq!(rules["block_min_t"], 100_000);
    assert_eq!(rules["block_sessions"], json!(["13:00-15:00"]));
    assert!(rules["modes"].as_array().unwrap().contains(&json!("block")));
    // Open while open: 409, with why.
    let (status, body) = w.post("/api/v1/exchange/day/open", Some(&operator), json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["message"].as_str().unwrap().contains("already open"), "{body}");
    let (status, closed) = w.post("/api/v1/exchange/day/close", Some(&operator), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{closed}");
    assert_eq!(closed["settled_trades"], 0);
    let (status, body) = w.post("/api/v1/exchange/day/close", Some(&operator), json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["message"].as_str().unwrap().contains("no trading day is open"), "{body}");
    // Closed: members cannot trade.
    let alice = &others[1].0.clone().unwrap();
    let order = json!({"instrument": "CEA-2025", "side": "sell", "price_fen": 8_100, "qty_t": 100});
    let (status, _) = w.post("/api/v1/orders", Some(alice), order.clone()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, day) = w.get("/api/v1/exchange/day", None).await;
    assert_eq!((day["open_day"].clone(), day["next_trading_day"].clone()), (Value::Null, json!("2025-06-05")));
    // A Saturday, a malformed date, a day already traded: refused.
    let (status, _) = w.post("/api/v1/exchange/day/open", Some(&operator), json!({"date": "2025-06-07"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = w.post("/api/v1/exchange/day/open", Some(&operator), json!({"date": "June 5"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = w.post("/api/v1/exchange/day/open", Some(&operator), json!({"date": "2025-06-04"})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    // The next trading day by default; the demo clock follows it, so members trade again.
    let (status, day) = w.post("/api/v1/exchange/day/open", Some(&operator), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{day}");
    assert_eq!(day["open_day"], "2025-06-05");
    let at = day["exchange_time_ms"].as_i64().unwrap();
    assert_eq!(ets_core::Timestamp(at).date(), common::date("2025-06-05"));
    let (status, placed) = w.post("/api/v1/orders", Some(alice), order).await;
    assert_eq!(status, StatusCode::CREATED, "{placed}");
    let (_, health) = w.get("/api/v1/health", None).await;
    assert_eq!(health["exchange_day"], "2025-06-05");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_admits_members_moves_their_cash_and_lists_instruments() {
    let w = World::new();
    let (operator, alice, bob, auditor, admin) =
        (w.login("operator").await, w.login("alice").await, w.login("bob").await, w.login("auditor").await, w.login("admin").await);
    // Deposits: the operator's; a member cannot credit itself; a non-operator learns nothing of
    // which members exist (403, not 404).
    let (status, cash) = w.post("/api/v1/exchange/members/alice/deposits", Some(&operator), json!({"amount_fen": 5_000_000})).await;
    assert_eq!(status, StatusCode::CREATED, "{cash}");
    assert_eq!((cash["delta_fen"].as_i64(), cash["balance_fen"].as_i64()), (Some(5_000_000), Some(5_000_000)));
    let (status, _) = w.post("/api/v1/exchange/members/alice/deposits", Some(&operator), json!({"amount_fen": 0})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = w.post("/api/v1/exchange/members/nobody/deposits", Some(&operator), json!({"amount_fen": 1})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for secret in [&alice, &admin] {
        let (status, _) = w.post("/api/v1/exchange/members/alice/deposits", Some(secret), json!({"amount_fen": 1})).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = w.post("/api/v1/exchange/members/nobody/deposits", Some(secret), json!({"amount_fen": 1})).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    // Withdrawals: up to the free cash.
    let (status, cash) = w.post("/api/v1/exchange/members/alice/withdrawals", Some(&operator), json!({"amount_fen": 2_000_000})).await;
    assert_eq!(status, StatusCode::CREATED, "{cash}");
    assert_eq!((cash["delta_fen"].as_i64(), cash["balance_fen"].as_i64()), (Some(-2_000_000), Some(3_000_000)));
    let (status, body) = w.post("/api/v1/exchange/members/alice/withdrawals", Some(&operator), json!({"amount_fen": 3_000_001})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, _) = w.post("/api/v1/exchange/members/alice/withdrawals", Some(&alice), json!({"amount_fen": 1})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Admission: accounts must exist, be in the market named, and not be the clearing account.
    let admit = |accounts: Value| json!({"member": "dave", "accounts": accounts});
    for (accounts, expected) in [
        (json!({}), StatusCode::BAD_REQUEST),
        (json!({"CN": "CN-999999"}), StatusCode::NOT_FOUND),
        (json!({"XX": C}), StatusCode::NOT_FOUND),
        (json!({"CN": C}), StatusCode::UNPROCESSABLE_ENTITY),
        (json!({"CN": CLEARING}), StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        let (status, body) = w.post("/api/v1/exchange/members", Some(&operator), admit(accounts.clone())).await;
        assert_eq!(status, expected, "{accounts}: {body}");
    }
    let (status, _) = w.post("/api/v1/exchange/members", Some(&alice), admit(json!({"BJ": C}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, dave) = w.post("/api/v1/exchange/members", Some(&operator), admit(json!({"BJ": C}))).await;
    assert_eq!(status, StatusCode::CREATED, "{dave}");
    assert_eq!(dave["accounts"], json!({"BJ": C}));
    assert_eq!(dave["cash"]["balance_fen"], 0);
    let (status, _) = w.post("/api/v1/exchange/members", Some(&operator), admit(json!({"BJ": C}))).await;
    assert_eq!(status, StatusCode::CONFLICT);
    // Dave holds no national account: it may not trade the national allowance (settlement
    // would have nowhere to deliver).
    let (status, _) = w.post("/api/v1/exchange/members/dave/deposits", Some(&operator), json!({"amount_fen": 100_000_000})).await;
    assert_eq!(status, StatusCode::CREATED);
    let dave = user_with(&w, &admin, "dave", "exchange-member:dave").await;
    let buy = json!({"instrument": "CEA-2025", "side": "buy", "price_fen": 8_000, "qty_t": 10});
    let (status, body) = w.post("/api/v1/orders", Some(&dave), buy).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["message"].as_str().unwrap().contains("no registry account in market CN"), "{body}");
    // Who sees whom: the operator and auditors every member, a member itself only.
    for secret in [&operator, &auditor] {
        let (status, list) = w.get("/api/v1/exchange/members", Some(secret)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(names(&list), ["alice", "bob", "cn-reserve", "dave"]);
    }
    let (_, list) = w.get("/api/v1/exchange/members", Some(&alice)).await;
    assert_eq!(names(&list), ["alice"]);
    assert_eq!(list[0]["accounts"], json!({"CN": A}));
    assert_eq!(list[0]["cash"]["free_fen"], 3_000_000);
    assert_eq!(position(&list[0], "CEA-2025")["lodged_t"], 20_000);
    let (_, list) = w.get("/api/v1/exchange/members", Some(&bob)).await;
    assert_eq!(names(&list), ["bob"]);
    let (status, _) = w.get("/api/v1/exchange/members", Some(&admin)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = w.get("/api/v1/exchange/members", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Listing: the next national vintage; again is a conflict; a market without a clearing
    // account, an unknown allowance and a malformed unit are refused.
    let (status, listed) =
        w.post("/api/v1/exchange/instruments", Some(&operator), json!({"unit": "CEA:2026", "reference_price_fen": 8_100})).await;
    assert_eq!(status, StatusCode::CREATED, "{listed}");
    assert_eq!((listed["code"].as_str(), listed["market"].as_str()), (Some("CEA-2026"), Some("CN")));
    assert_eq!(listed["listed_band"], json!({"low_fen": 7_290, "high_fen": 8_910}));
    let (_, instruments) = w.get("/api/v1/instruments", None).await;
    assert_eq!(instruments.as_array().unwrap().iter().map(|i| i["code"].as_str().unwrap()).collect::<Vec<_>>(), ["CEA-2025", "CEA-2026"]);
    let (_, day) = w.get("/api/v1/exchange/day", None).await;
    assert_eq!(day["instruments"].as_array().unwrap().len(), 2);
    for (body, expected) in [
        (json!({"unit": "CEA:2026", "reference_price_fen": 8_100}), StatusCode::CONFLICT),
        (json!({"unit": "BEA:2026", "reference_price_fen": 8_100}), StatusCode::BAD_REQUEST),
        (json!({"unit": "XYZ:2026", "reference_price_fen": 8_100}), StatusCode::NOT_FOUND),
        (json!({"unit": "CEA", "reference_price_fen": 8_100}), StatusCode::BAD_REQUEST),
        (json!({"unit": "CEA:2027", "reference_price_fen": 0}), StatusCode::BAD_REQUEST),
    ] {
        let (status, answer) = w.post("/api/v1/exchange/instruments", Some(&operator), body.clone()).await;
        assert_eq!(status, expected, "{body}: {answer}");
    }
    let (status, _) = w.post("/api/v1/exchange/instruments", Some(&admin), json!({"unit": "CEA:2027", "reference_price_fen": 8_100})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Members trade the new listing at once: bob bids for it.
    let (status, body) =
        w.post("/api/v1/orders", Some(&bob), json!({"instrument": "CEA-2026", "side": "buy", "price_fen": 8_100, "qty_t": 10})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["resting_t"], 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_unlodges_free_units_back_to_its_account() {
    let w = World::new();
    let (alice, bob) = (w.login("alice").await, w.login("bob").await);
    assert_eq!(w.held(A), (80_000, 100_000));
    // 3,000 t rest on a sell order: of alice's 20,000 t lodged, 17,000 t are free.
    let (status, _) =
        w.post("/api/v1/orders", Some(&alice), json!({"instrument": "CEA-2025", "side": "sell", "price_fen": 8_500, "qty_t": 3_000})).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = w.post("/api/v1/exchange/unlodgements", Some(&alice), json!({"instrument": "CEA-2025", "qty_t": 17_001})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = w.post("/api/v1/exchange/unlodgements", Some(&alice), json!({"instrument": "CEA-2025", "qty_t": 0})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, done) = w.post("/api/v1/exchange/unlodgements", Some(&alice), json!({"instrument": "CEA-2025", "qty_t": 5_000})).await;
    assert_eq!(status, StatusCode::CREATED, "{done}");
    assert_eq!(done["unlodged_t"], 5_000);
    assert_eq!(done["deliveries"][0]["command"], "deliver-pending");
    assert_eq!(done["deliveries"][0]["to"], A);
    assert_eq!(w.held(A), (85_000, 100_000));
    let (_, mine) = w.get("/api/v1/exchange/members", Some(&alice)).await;
    assert_eq!(position(&mine[0], "CEA-2025")["lodged_t"], 15_000);
    // Bob has nothing lodged; alice cannot unlodge for bob.
    let (status, _) = w.post("/api/v1/exchange/unlodgements", Some(&bob), json!({"instrument": "CEA-2025", "qty_t": 1})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) =
        w.post("/api/v1/exchange/unlodgements", Some(&alice), json!({"instrument": "CEA-2025", "qty_t": 1, "member": "bob"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}
