//! `ets serve --demo` as a user starts it: the real binary on a free port, spoken to over
//! HTTP. The demo's MRV year, exchange and users are served through the API with each role
//! seeing what it may.

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("serve.log");
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_ets"))
            .current_dir(dir.path())
            .args(["--database", "demo.db", "serve", "--demo", "--listen", &format!("127.0.0.1:{port}")])
            .env_remove("ETS_DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start ets serve");
        let server = Server { child, port, log, _dir: dir };
        let started = Instant::now();
        while server.try_request("GET", "/api/v1/health", None, None).is_none() {
            assert!(started.elapsed() < Duration::from_secs(120), "the server did not come up: {}", server.stderr());
            std::thread::sleep(Duration::from_millis(200));
        }
        server
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The demo user whose start-up line contains `purpose`.
    fn user(&self, purpose: &str) -> String {
        let log = self.stderr();
        let line = log
            .lines()
            .find(|l| l.starts_with("  ") && l.contains(purpose))
            .unwrap_or_else(|| panic!("no demo user for {purpose}:\n{log}"));
        line.split_whitespace().next().unwrap().to_string()
    }

    fn try_request(&self, method: &str, path: &str, secret: Option<&str>, body: Option<&Value>) -> Option<(u16, Value)> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let auth = secret.map(|s| format!("Authorization: Bearer {s}\r\n")).unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        let status: u16 = response.split_whitespace().nth(1)?.parse().ok()?;
        let text = response.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        Some((status, serde_json::from_str(text).unwrap_or(Value::Null)))
    }

    fn request(&self, method: &str, path: &str, secret: Option<&str>, body: Option<Value>) -> (u16, Value) {
        self.try_request(method, path, secret, body.as_ref()).unwrap_or_else(|| panic!("{method} {path}: no answer; {}", self.stderr()))
    }

    fn login(&self, user: &str) -> String {
        let (status, body) = self.request("POST", "/api/v1/session", None, Some(json!({"user": user, "password": "ets-demo-password"})));
        assert_eq!(status, 200, "login {user}: {body}");
        body["secret"].as_str().unwrap().to_string()
    }
}

#[test]
fn the_demo_server_serves_each_role_what_it_may_see() {
    let s = Server::start();
    // The demo's trading day is the first after the demo year 2026 and its New Year holiday.
    let (_, health) = s.request("GET", "/api/v1/health", None, None);
    assert_eq!(health["exchange_day"], "2027-01-04", "{health}");
    // The public: market data (the demo's primary auction among it), not MRV.
    let (status, auctions) = s.request("GET", "/api/v1/auctions", None, None);
    assert_eq!(status, 200);
    let outcomes: Vec<(&str, &str, Option<u64>)> = auctions
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["auction"].as_str().unwrap(), a["outcome"].as_str().unwrap(), a["sold_t"].as_u64()))
        .collect();
    assert_eq!(outcomes, vec![("CN-primary-2", "open", None), ("CN-primary-1", "cleared", Some(200_000))], "{auctions}");
    let (status, instruments) = s.request("GET", "/api/v1/instruments", None, None);
    assert_eq!(status, 200);
    assert!(instruments.as_array().unwrap().iter().any(|i| i["code"] == "CEA-2024"), "{instruments}");
    let (status, _) = s.request("GET", "/api/v1/mrv/anomalies?year=2025", None, None);
    assert_eq!(status, 401);

    // The verifier sees the whole anomaly queue (the demo planted ten) and every report.
    let verifier = s.login("verifier");
    let (status, all) = s.request("GET", "/api/v1/mrv/anomalies?year=2025", Some(&verifier), None);
    assert_eq!(status, 200, "{all}");
    let all = all.as_array().unwrap().clone();
    assert!(all.len() >= 10, "{all:?}");
    let (_, reports) = s.request("GET", "/api/v1/mrv/reports?year=2025&state=accepted", Some(&verifier), None);
    let accepted = reports.as_array().unwrap();
    assert!(!accepted.is_empty());
    assert!(accepted.iter().all(|r| r["state"] == "accepted" && r["verified_emissions_t"].is_string()), "{reports}");
    let (status, _) = s.request("GET", "/api/v1/mrv/reports?state=lost", Some(&verifier), None);
    assert_eq!(status, 400);

    // Two reports wait for the demo's verification body; the verifier gives an opinion and the
    // national authority accepts through the API, and the entity's compliance is assessed.
    let (_, queue) = s.request("GET", "/api/v1/mrv/reports?state=assigned", Some(&verifier), None);
    let queue = queue.as_array().unwrap().clone();
    assert_eq!(queue.len(), 2, "{queue:?}");
    let report = queue[0]["id"].as_str().unwrap().to_string();
    let entity = queue[0]["entity"].as_str().unwrap().to_string();
    let opinion = json!({"id": "op-1", "command": {"type": "give_opinion", "report": report, "stated": "Unqualified"}});
    let (status, body) = s.request("POST", "/api/v1/mrv/commands", Some(&verifier), Some(opinion));
    assert_eq!(status, 201, "{body}");
    let regulator = s.login("regulator-cn");
    let (status, body) = s.request(
        "POST",
        "/api/v1/mrv/commands",
        Some(&regulator),
        Some(json!({"id": "acc-1", "command": {"type": "accept", "report": report}})),
    );
    assert_eq!(status, 201, "{body}");
    let (_, cn) = s.request("GET", "/api/v1/compliance/CN?year=2025", Some(&regulator), None);
    let e = cn["entities"].as_array().unwrap().iter().find(|e| e["entity"] == entity.as_str()).unwrap();
    assert!(e["obligation_t"].as_u64().is_some_and(|t| t > 0), "{e}");

    // A pilot's regulator sees only what its market covers; the national one more.
    let pilot = s.login(&s.user("pilot's authority"));
    let (_, pilot_view) = s.request("GET", "/api/v1/mrv/anomalies?year=2025", Some(&pilot), None);
    let national = s.login("regulator-cn");
    let (_, national_view) = s.request("GET", "/api/v1/mrv/anomalies?year=2025", Some(&national), None);
    let entities = |v: &Value| {
        v.as_array().unwrap().iter().map(|a| a["entity"].as_str().unwrap().to_string()).collect::<std::collections::BTreeSet<_>>()
    };
    let everyone = entities(&Value::Array(all.clone()));
    assert!(entities(&pilot_view).is_subset(&everyone));
    assert!(entities(&national_view).is_subset(&everyone));
    assert!(entities(&pilot_view).len() < everyone.len(), "a pilot does not cover every entity");

    // Compliance under the demo's set-up, as `ets demo` assessed it: every covered entity
    // accounted for, the national defaulters fined, Guangdong's carbon-inclusion credits counted
    // as offsets, and a pilot's authority seeing its market only.
    let (status, cn) = s.request("GET", "/api/v1/compliance/CN?year=2025", Some(&national), None);
    assert_eq!(status, 200, "{cn}");
    assert_eq!(cn["rulebook"], "cn-power-2025-2026-draft");
    let n = |v: &Value, k: &str| v[k].as_u64().unwrap();
    assert_eq!(n(&cn, "covered"), n(&cn, "compliant") + n(&cn, "shortfall") + n(&cn, "not_assessed"));
    assert!(n(&cn, "compliant") > 0 && n(&cn, "shortfall") > 0, "the demo has two defaulters: {cn}");
    let fines: i64 = cn["entities"].as_array().unwrap().iter().filter_map(|e| e["fine_fen"].as_i64()).sum();
    assert!(fines > 0 && cn["fines_fen"] == fines, "{cn}");
    let (_, gd) = s.request("GET", "/api/v1/compliance/GD?year=2025", Some(&national), None);
    assert_eq!(gd["error"], "forbidden", "the national authority does not read a pilot's compliance");
    // The allocation `ets demo` issued, computed again through the API under the same rulebook.
    let (status, rulebooks) = s.request("GET", "/api/v1/rulebooks", None, None);
    assert_eq!(status, 200, "{rulebooks}");
    let (status, alloc) = s.request("POST", "/api/v1/allocations", Some(&national), Some(json!({"market": "CN", "year": 2025})));
    assert_eq!(status, 200, "{alloc}");
    assert!(alloc["total_t"].as_u64() > Some(0) && !alloc["entities"].as_array().unwrap().is_empty(), "{alloc}");
    // The report accepted above changed the figures since `ets demo` issued the year under the
    // same ids: issuing again is refused whole, and says how an issued allocation is changed.
    let (status, issued) =
        s.request("POST", "/api/v1/allocations", Some(&national), Some(json!({"market": "CN", "year": 2025, "issue": true})));
    assert_eq!(status, 409, "{issued}");
    assert!(issued["message"].as_str().unwrap().contains("issued before with different figures"), "{issued}");
    let auditor = s.login("auditor");
    let (_, all) = s.request("GET", "/api/v1/compliance?year=2025", Some(&auditor), None);
    let gd = all.as_array().unwrap().iter().find(|m| m["market"] == "GD").expect("GD assessed");
    assert!(
        gd["entities"].as_array().unwrap().iter().all(|e| e["status"] == "compliant" && e["offsets_counted_t"].as_u64() > Some(0)),
        "{gd}"
    );

    // An account representative and exchange member: no MRV queue; a four-eyes transfer.
    let member = s.user("and exchange member: proposes transfers");
    let approver = s.user("approving representative");
    let counterparty_line = s.stderr().lines().find(|l| l.contains("and exchange member") && !l.contains("proposes")).unwrap().to_string();
    let counterparty_account = counterparty_line.split("representative of ").nth(1).unwrap().split_whitespace().next().unwrap().to_string();
    let account = s
        .stderr()
        .lines()
        .find(|l| l.contains("proposes transfers"))
        .unwrap()
        .split("representative of ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let m = s.login(&member);
    let (status, _) = s.request("GET", "/api/v1/mrv/anomalies?year=2025", Some(&m), None);
    assert_eq!(status, 403);
    let (_, before) = s.request("GET", &format!("/api/v1/accounts/{account}"), Some(&m), None);
    let held = |v: &Value| {
        v["holdings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["unit"] == "CEA:2024")
            .map(|h| (h["free_t"].as_u64().unwrap(), h["total_t"].as_u64().unwrap()))
            .unwrap()
    };
    let (free, total) = held(&before);
    let (status, t) = s.request(
        "POST",
        "/api/v1/transfers",
        Some(&m),
        Some(json!({"from": account, "to": counterparty_account, "unit": "CEA:2024", "quantity_t": 100})),
    );
    assert_eq!(status, 201, "{t}");
    let (_, after) = s.request("GET", &format!("/api/v1/accounts/{account}"), Some(&m), None);
    assert_eq!(held(&after), (free - 100, total), "the proposal's units are set aside");
    let (status, _) = s.request("POST", &format!("/api/v1/transfers/{}/approve", t["id"].as_str().unwrap()), Some(&m), Some(json!({})));
    assert_eq!(status, 403, "no self-approval");
    let a = s.login(&approver);
    let (status, t) = s.request("POST", &format!("/api/v1/transfers/{}/approve", t["id"].as_str().unwrap()), Some(&a), Some(json!({})));
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["status"], "approved", "the counterparty is not yet trusted: the transfer waits for its delay");
    assert!(t["release_at_ms"].as_i64().unwrap() > t["proposed_at_ms"].as_i64().unwrap());

    // The member trades on the demo's open day.
    let (_, cea) = s.request("GET", "/api/v1/instruments/CEA-2024", None, None);
    let close = cea["previous_close_fen"].as_i64().unwrap();
    let (status, order) = s.request(
        "POST",
        "/api/v1/orders",
        Some(&m),
        Some(json!({"instrument": "CEA-2024", "side": "buy", "price_fen": close, "qty_t": 10})),
    );
    assert_eq!(status, 201, "{order}");
    // The member bids in the demo's open primary auction; the national authority clears it.
    // It sells what is bid, at the reserve price, when bids fall short of the 100,000 t offered.
    let (status, bid) =
        s.request("POST", "/api/v1/auctions/CN-primary-2/bids", Some(&m), Some(json!({"price_fen": close, "qty_t": 10_000})));
    assert_eq!(status, 201, "{bid}");
    let (status, result) = s.request("POST", "/api/v1/auctions/CN-primary-2/clear", Some(&national), None);
    assert_eq!(status, 200, "{result}");
    assert_eq!((result["outcome"].as_str(), result["sold_t"].as_u64()), (Some("cleared"), Some(10_000)), "{result}");
    assert_eq!(result["clearing_price_fen"], result["reserve_price_fen"], "{result}");
    assert_eq!(result["awards"].as_array().map(Vec::len), Some(1), "{result}");
    // The exchange operator: sees every member, closes the day (resting orders are cancelled,
    // the day's trades settle) and opens the next; the demo clock follows it, so the
    // member trades again. A member may not close the day.
    let operator = s.login(&s.user("the exchange's operator"));
    let (status, members) = s.request("GET", "/api/v1/exchange/members", Some(&operator), None);
    assert_eq!(status, 200, "{members}");
    assert!(members.as_array().unwrap().iter().any(|x| x["member"] == member.as_str()), "{members}");
    let (_, own) = s.request("GET", "/api/v1/exchange/members", Some(&m), None);
    assert_eq!(own.as_array().map(Vec::len), Some(1), "{own}");
    let (status, _) = s.request("POST", "/api/v1/exchange/day/close", Some(&m), None);
    assert_eq!(status, 403);
    let (status, closed) = s.request("POST", "/api/v1/exchange/day/close", Some(&operator), None);
    assert_eq!(status, 200, "{closed}");
    assert_eq!(closed["date"], "2027-01-04");
    assert!(closed["bars"].as_array().unwrap().iter().any(|b| b["instrument"] == "CEA-2024"), "{closed}");
    let (status, day) = s.request("POST", "/api/v1/exchange/day/open", Some(&operator), Some(json!({})));
    assert_eq!(status, 200, "{day}");
    assert_eq!(day["open_day"], "2027-01-05");
    let (status, order) = s.request(
        "POST",
        "/api/v1/orders",
        Some(&m),
        Some(json!({"instrument": "CEA-2024", "side": "buy", "price_fen": close, "qty_t": 10})),
    );
    assert_eq!(status, 201, "{order}");
    // The finance operator: a deposit for one of the demo desk's parties, journaled and
    // answered (a retry answered as repeated); a member may not; and a verifier registered
    // with Guangdong's carbon-inclusion register.
    let finance = s.login(&s.user("the finance desk's"));
    let (status, parties) = s.request("GET", "/api/v1/finance/parties", Some(&finance), None);
    assert_eq!(status, 200, "{parties}");
    let party = parties[0]["party"].as_str().unwrap().to_string();
    let balance = parties[0]["balance_fen"].as_i64().unwrap();
    let deposit = json!({"id": "dep-1", "command": {"Deposit": {"party": party, "amount_fen": 100_000}}});
    let (status, body) = s.request("POST", "/api/v1/finance/commands", Some(&finance), Some(deposit.clone()));
    assert_eq!(status, 201, "{body}");
    assert_eq!((body["actor"].as_str(), body["date"].as_str()), (Some("desk"), Some("2027-01-29")), "the demo desk's date: {body}");
    let (status, body) = s.request("POST", "/api/v1/finance/commands", Some(&finance), Some(deposit.clone()));
    assert_eq!((status, body["repeated"].as_bool()), (201, Some(true)), "{body}");
    let (status, _) = s.request("POST", "/api/v1/finance/commands", Some(&m), Some(deposit));
    assert_eq!(status, 403);
    let (_, parties) = s.request("GET", "/api/v1/finance/parties", Some(&finance), None);
    let after = parties.as_array().unwrap().iter().find(|p| p["party"] == party.as_str()).unwrap();
    assert_eq!(after["balance_fen"].as_i64(), Some(balance + 100_000));
    let verifier_added = json!({"id": "ver-1", "command": {"AddVerifier": {"verifier": "verifier"}}});
    let (status, body) = s.request("POST", "/api/v1/inclusion/commands", Some(&finance), Some(verifier_added));
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["events"], json!([{"VerifierAdded": {"verifier": "verifier"}}]), "{body}");

    // And the access journal has every step, for the auditor.
    let auditor = s.login("auditor");
    let (_, audit) = s.request("GET", "/api/v1/audit?limit=1000", Some(&auditor), None);
    let commands: Vec<&str> = audit.as_array().unwrap().iter().map(|r| r["command"].as_str().unwrap()).collect();
    for c in ["bootstrap", "create-user", "login", "propose-transfer", "approve-transfer", "propose-trusted", "approve-trusted"] {
        assert!(commands.contains(&c), "{c} missing from the audit journal: {commands:?}");
    }
}
