#![allow(dead_code)]
//! A small platform for the API tests: two markets (CN national, BJ pilot), four accounts, an
//! exchange with two members and an open day, users for every role (the exchange and
//! finance operators included), and a clock the test moves.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use ets_access::{Actor, Command as A, ControlRules, Envelope, PasswordRules, Role, Secret};
use ets_core::{Date, Timestamp, Tonnes};
use ets_exchange::venue::{Command as X, Envelope as XEnvelope, InstrumentSpec};
use ets_registry::{AccountKind, Command as R, HolderType, MarketLevel, MarketSpec, PendingPurpose, UnitRef};
use ets_server::{Clock, ExchangeTime, Platform};
use ets_store::{AccessLog, ExchangeLog, Ledger, LedgerOptions, Location, VenueConfig};
use http_body_util::BodyExt;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use tower::ServiceExt;

pub const PASSWORD: &str = "correct horse battery staple";

/// Account numbers as the registry opens them: clearing, alice's, bob's, carol's (BJ).
pub const CLEARING: &str = "CN-100001";
pub const A: &str = "CN-100002";
pub const B: &str = "CN-100003";
pub const C: &str = "BJ-100001";

pub fn date(text: &str) -> Date {
    Date::parse(text).unwrap()
}

/// `hh:mm` CET (the default registry calendar's zone, UTC+1) on `day`.
pub fn cet(day: &str, hour: i64, minute: i64) -> Timestamp {
    Timestamp(date(day).start().0 + (hour - 1) * 3_600_000 + minute * 60_000)
}

/// Default rules, cheap Argon2id, a holiday on Monday 2025-06-09 (Whit Monday), and a
/// per-transfer limit of 10,000 t to untrusted accounts.
pub fn rules() -> ControlRules {
    let mut rules = ControlRules {
        password: PasswordRules { memory_kib: 64, iterations: 1, parallelism: 1, ..PasswordRules::default() },
        untrusted_transfer_limit_t: 10_000,
        ..ControlRules::default()
    };
    rules.calendar.holidays = BTreeSet::from([date("2025-06-09")]);
    rules
}

/// The national reserve account and what it holds for auctions.
pub const CN_RESERVE: &str = "CN-RESERVE";
pub const RESERVE_T: u64 = 50_000;
/// What alice surrendered from A for 2025.
pub const SURRENDERED_A: u64 = 30_000;
/// The national fine price of the test set-up, ¥74.63.
pub const CN_FINE_PRICE_FEN: i64 = 7_463;
/// The report left submitted (verified and accepted through the API in the tests).
pub const PENDING_REPORT: &str = "CN-E0002-2025";
/// The national entities of the MRV year and their compliance accounts.
pub const ENTITIES: [(&str, &str); 2] = [("CN-E0001", A), ("CN-E0002", B)];

/// Compliance as the server is set up for the tests: CN under the 2025–2026 draft rulebook,
/// fines at ¥74.63; BJ under the shipped default.
pub fn compliance() -> ets_compliance::Setup {
    let mut setup = ets_compliance::Setup::default();
    let rb = ets_compliance::shipped().iter().find(|rb| rb.rulebook.id == "cn-power-2025-2026-draft").unwrap().clone();
    setup.rulebooks.insert("CN".into(), rb);
    setup.prices.insert("CN".into(), ets_core::Fen(CN_FINE_PRICE_FEN));
    setup
}

/// A 2025 MRV year of two national power entities (the MRV crate's sample generator, nothing
/// planted), covered by the national market from alice's and bob's accounts: CN-E0001's report
/// verified and accepted, CN-E0002's submitted and waiting for verification (`PENDING_REPORT`).
fn mrv_year(location: &Location) {
    use ets_mrv::entity::{Coverage, Sector};
    use ets_mrv::sample;
    let mut mrv = ets_store::MrvLog::open(location.open().unwrap(), ets_mrv::FactorSet::builtin().unwrap(), Default::default()).unwrap();
    let sc = sample::scenario(7, 2025, &[sample::Market { code: "CN".into(), province: "Shandong".into(), entities: 2 }], 0);
    assert_eq!(sc.accepted_reports.len(), 2);
    let last = sc.commands.last().unwrap().1;
    let mut batch: Vec<ets_store::MrvSubmission> = sc
        .commands
        .iter()
        .filter(|(_, _, command)| {
            let v = serde_json::to_value(command).unwrap();
            v["report"] != PENDING_REPORT || v["type"] == "submit_report"
        })
        .enumerate()
        .map(|(i, (actor, at, command))| ets_store::MrvSubmission {
            command_id: format!("mrv-{i}"),
            actor: actor.clone(),
            at: *at,
            command: command.clone(),
        })
        .collect();
    for (entity, account) in ENTITIES {
        let coverage = Coverage {
            market: "CN".into(),
            sector: Sector::Power,
            gases: ["CO2".to_string()].into(),
            from_year: 2021,
            to_year: None,
            account: Some(account.into()),
        };
        batch.push(ets_store::MrvSubmission {
            command_id: format!("cover-{entity}"),
            actor: sample::AUTHORITY.into(),
            at: last,
            command: ets_mrv::state::Command::Cover { entity: entity.into(), coverage },
        });
    }
    mrv.submit_batch(&batch, &[]).map_err(|(i, e)| format!("MRV set-up command {i:?}: {e:?}")).unwrap();
}

pub struct World {
    pub platform: Arc<Platform>,
    pub app: axum::Router,
    pub clock: Arc<AtomicI64>,
    pub location: Location,
    _dir: tempfile::TempDir,
}

/// The users and their roles.
pub fn users() -> Vec<(&'static str, Vec<Role>)> {
    vec![
        ("auditor", vec![Role::Auditor]),
        ("regulator-cn", vec![Role::MarketAuthority { market: "CN".into() }]),
        ("regulator-bj", vec![Role::MarketAuthority { market: "BJ".into() }]),
        ("verifier", vec![Role::Verifier]),
        ("alice", vec![Role::AccountRepresentative { account: A.into() }, Role::ExchangeMember { member: "alice".into() }]),
        ("approver", vec![Role::ApprovingRepresentative { account: A.into() }]),
        ("bob", vec![Role::AccountRepresentative { account: B.into() }, Role::ExchangeMember { member: "bob".into() }]),
        ("carol", vec![Role::AccountRepresentative { account: C.into() }]),
        // The MRV year's people under their MRV names: the sample's official, the verification
        // body's auditor, and CN-E0002's representative (B is its compliance account).
        (ets_mrv::sample::AUTHORITY, vec![Role::MarketAuthority { market: "CN".into() }]),
        (ets_mrv::sample::VERIFIER_STAFF, vec![Role::Verifier]),
        ("cn-op2", vec![Role::AccountRepresentative { account: B.into() }]),
        // The exchange's operator: runs the venue as its operator `exchange`.
        ("operator", vec![Role::ExchangeOperator]),
        // The finance desk's and the inclusion register's operator.
        ("finance-op", vec![Role::FinanceOperator]),
    ]
}

fn secret(n: u64) -> Secret {
    Secret::new(format!("{n:064}"))
}

impl World {
    /// The platform at Wednesday 2025-06-04 10:00 CET, on SQLite.
    pub fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let location = Location::Sqlite(dir.path().join("ets.db"));
        World::on(location, dir)
    }

    /// The same on PostgreSQL (`ETS_TEST_POSTGRES_URL`, default the local server's `test`
    /// database), in a schema of its own that is dropped afterwards.
    pub fn postgres() -> World {
        // Set up off the test's runtime: the synchronous PostgreSQL client runs its own.
        std::thread::spawn(World::postgres_here).join().unwrap()
    }

    fn postgres_here() -> World {
        let url = std::env::var("ETS_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let schema = format!(
            "ets_server_test_{}_{}",
            std::process::id(),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
        );
        World::on(Location::Postgres { url, schema: Some(schema) }, tempfile::tempdir().unwrap())
    }

    fn on(location: Location, dir: tempfile::TempDir) -> World {
        let start = cet("2025-06-04", 10, 0);
        let mut ledger = Ledger::open(&location, LedgerOptions::default()).unwrap();
        let mut n = 0;
        let mut reg = |ledger: &mut Ledger, actor: &str, command: R| {
            n += 1;
            ledger.submit(start, &ets_registry::Envelope { id: format!("setup-{n}"), actor: actor.into(), command }).unwrap();
        };
        reg(&mut ledger, "admin", R::InitRegistry { admins: vec!["admin".into()] });
        for (code, level, allowance) in [("CN", MarketLevel::National, "CEA"), ("BJ", MarketLevel::Pilot, "BEA")] {
            let spec = MarketSpec {
                code: code.into(),
                name: code.into(),
                level,
                allowance_code: allowance.into(),
                // Beijing issues its carbon-inclusion credits (BCER).
                offset_standards: if code == "BJ" { vec!["BCER".into()] } else { vec![] },
                individuals_may_trade: false,
                authorities: vec![format!("{}-auth", code.to_lowercase())],
            };
            reg(&mut ledger, "admin", R::AddMarket(spec));
        }
        for (market, kind, rep) in [
            ("CN", AccountKind::Trading, "exchange"),
            ("CN", AccountKind::Operator, "alice"),
            ("CN", AccountKind::Operator, "bob"),
            ("BJ", AccountKind::Operator, "carol"),
        ] {
            let auth = format!("{}-auth", market.to_lowercase());
            reg(
                &mut ledger,
                &auth,
                R::OpenAccount {
                    market: market.into(),
                    kind,
                    holder: rep.into(),
                    holder_type: HolderType::Entity,
                    representatives: vec![rep.into()],
                },
            );
        }
        let numbers: Vec<String> = ledger.registry().accounts().iter().map(|a| a.number.clone()).collect();
        for expected in [CLEARING, A, B, C] {
            assert!(numbers.iter().any(|n| n == expected), "{expected} not in {numbers:?}");
        }
        let unit = UnitRef::allowance("CEA", 2025);
        reg(&mut ledger, "cn-auth", R::Issue { unit: unit.clone(), quantity: Tonnes(1_000_000), to: None });
        for (to, q) in [(A, 100_000), (B, 50_000)] {
            reg(&mut ledger, "cn-auth", R::Allocate { from: "CN-ISSUANCE".into(), to: to.into(), unit: unit.clone(), quantity: Tonnes(q) });
        }
        // The national reserve holds 50,000 t for primary auctions.
        reg(
            &mut ledger,
            "cn-auth",
            R::Allocate { from: "CN-ISSUANCE".into(), to: CN_RESERVE.into(), unit: unit.clone(), quantity: Tonnes(RESERVE_T) },
        );
        // Alice is allocated 30,000 t more and surrenders them for 2025 (counted by compliance;
        // her holdings stay 100,000 t); bob surrenders nothing.
        let extra = R::Allocate { from: "CN-ISSUANCE".into(), to: A.into(), unit: unit.clone(), quantity: Tonnes(SURRENDERED_A) };
        reg(&mut ledger, "cn-auth", extra);
        reg(
            &mut ledger,
            "alice",
            R::Surrender { account: A.into(), unit: unit.clone(), quantity: Tonnes(SURRENDERED_A), compliance_year: 2025 },
        );
        reg(
            &mut ledger,
            "alice",
            R::CreatePending {
                pending: "lodge-a".into(),
                from: A.into(),
                to: CLEARING.into(),
                unit,
                quantity: Tonnes(20_000),
                purpose: PendingPurpose::Settlement,
            },
        );

        let mut exchange = ExchangeLog::open(location.open().unwrap()).unwrap();
        exchange
            .init(
                VenueConfig {
                    operator: "exchange".into(),
                    clearing: BTreeMap::from([("CN".into(), CLEARING.into())]),
                    holidays: BTreeSet::new(),
                },
                start,
            )
            .unwrap();
        let day = date("2025-06-04");
        let at = day.start().0 + 60 * 60_000; // 09:00 Beijing
        let setup = [
            X::ListInstrument(InstrumentSpec::national(2025, 8_000)),
            X::AddMember { member: "alice".into(), accounts: BTreeMap::from([("CN".into(), A.to_string())]) },
            X::AddMember { member: "bob".into(), accounts: BTreeMap::from([("CN".into(), B.to_string())]) },
            // The national authority's member at the exchange, holding the reserve it auctions from.
            X::AddMember { member: "cn-reserve".into(), accounts: BTreeMap::from([("CN".into(), CN_RESERVE.to_string())]) },
            X::Deposit { member: "bob".into(), amount_fen: 100_000_000_000 },
            X::Lodge { member: "alice".into(), instrument: "CEA-2025".into(), qty: 20_000, pending: "lodge-a".into() },
            X::OpenDay { date: day },
        ];
        let envelopes: Vec<XEnvelope> = setup
            .into_iter()
            .enumerate()
            .map(|(i, command)| XEnvelope { id: format!("xs-{i}"), actor: "exchange".into(), at_ms: at, command })
            .collect();
        for r in exchange.submit_batch(&envelopes, &mut ledger).unwrap() {
            r.unwrap();
        }
        drop(exchange);
        drop(ledger);

        let mut access = AccessLog::open(location.open().unwrap(), rules()).unwrap();
        let run = |access: &mut AccessLog, actor: Actor, command: A| {
            let r = access.execute(&Envelope { at: start, origin: "setup".into(), actor, command }).unwrap();
            assert!(r.is_ok(), "{:?}", r.err());
        };
        run(&mut access, Actor::System, A::Bootstrap { user: "admin".into(), password: Secret::new(PASSWORD), salt: [1; 16] });
        run(
            &mut access,
            Actor::Anonymous,
            A::Login { user: "admin".into(), password: Secret::new(PASSWORD), session: "s-setup".into(), secret: secret(1) },
        );
        for (user, roles) in users() {
            run(
                &mut access,
                Actor::Session("s-setup".into()),
                A::CreateUser { user: user.into(), roles, password: Secret::new(PASSWORD), salt: [2; 16] },
            );
        }
        run(&mut access, Actor::Session("s-setup".into()), A::Logout { session: "s-setup".into() });
        drop(access);

        mrv_year(&location);

        let clock = Arc::new(AtomicI64::new(start.0));
        // The exchange's session: 09:31 Beijing on the open day, walked by the test's clock.
        let exchange_time =
            ExchangeTime::Session { start_ms: day.start().0 + 91 * 60_000, length_ms: 110 * 60_000, started_at: start, day };
        let platform = Arc::new(
            Platform::open(&location, rules(), Clock::Manual(clock.clone()), exchange_time).unwrap().with_compliance(compliance()),
        );
        let app = ets_server::api::router(platform.clone());
        World { platform, app, clock, location, _dir: dir }
    }

    /// `Platform::tick`, on a thread of its own, as the server's ticker runs it (blocking I/O
    /// off the async workers).
    pub fn tick(&self) -> Vec<String> {
        let platform = self.platform.clone();
        std::thread::spawn(move || platform.tick()).join().unwrap().unwrap()
    }

    pub fn set_time(&self, at: Timestamp) {
        self.clock.store(at.0, Ordering::SeqCst);
    }

    pub fn now(&self) -> Timestamp {
        Timestamp(self.clock.load(Ordering::SeqCst))
    }

    pub async fn call(&self, method: Method, uri: &str, secret: Option<&str>, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(secret) = secret {
            request = request.header("authorization", format!("Bearer {secret}"));
        }
        let request = match body {
            Some(body) => request.header("content-type", "application/json").body(Body::from(body.to_string())).unwrap(),
            None => request.body(Body::empty()).unwrap(),
        };
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        (status, value)
    }

    pub async fn get(&self, uri: &str, secret: Option<&str>) -> (StatusCode, Value) {
        self.call(Method::GET, uri, secret, None).await
    }

    pub async fn post(&self, uri: &str, secret: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, uri, secret, Some(body)).await
    }

    /// Signs `user` in; returns the session secret.
    pub async fn login(&self, user: &str) -> String {
        let (status, body) = self.post("/api/v1/session", None, serde_json::json!({"user": user, "password": PASSWORD})).await;
        assert_eq!(status, StatusCode::OK, "login {user}: {body}");
        body["secret"].as_str().unwrap().to_string()
    }

    /// Trading history for the charts: closes the open day (2025-06-04), then trades `days`
    /// more weekdays (alice sells to bob at a price that drifts up with a weekly swing, within
    /// the daily band), closes each, and opens the weekday after. Returns that open day.
    pub fn trade_history(&self, days: u32) -> Date {
        let beijing = |day: Date, hour: i64, minute: i64| day.start().0 + (hour - 8) * 3_600_000 + minute * 60_000;
        let next_weekday = |mut day: Date| loop {
            day = day.plus_days(1);
            if (day.0 + 3).rem_euclid(7) < 5 {
                return day;
            }
        };
        let mut day = date("2025-06-04");
        let mut envelopes = Vec::new();
        let mut push = |at_ms: i64, actor: &str, command: X| {
            let id = format!("history-{}", envelopes.len());
            envelopes.push(XEnvelope { id, actor: actor.into(), at_ms, command });
        };
        push(beijing(day, 15, 30), "exchange", X::CloseDay);
        for k in 0..days {
            day = next_weekday(day);
            let swing = [0, 60, -40, 90, -20, 30, -70, 50][k as usize % 8];
            let price = 8_000 + 15 * i64::from(k) + swing;
            let qty = 200 + 40 * u64::from(k % 5);
            let order = 1_000 + 2 * u64::from(k);
            push(beijing(day, 9, 0), "exchange", X::OpenDay { date: day });
            let place = |order, member: &str, side, tif| X::Place {
                order,
                member: member.into(),
                instrument: "CEA-2025".into(),
                side,
                price: Some(price),
                qty,
                tif,
            };
            push(beijing(day, 10, 0), "alice", place(order, "alice", ets_exchange::Side::Sell, ets_exchange::Tif::Gtc));
            push(beijing(day, 10, 1), "bob", place(order + 1, "bob", ets_exchange::Side::Buy, ets_exchange::Tif::Ioc));
            push(beijing(day, 15, 30), "exchange", X::CloseDay);
        }
        day = next_weekday(day);
        push(beijing(day, 9, 0), "exchange", X::OpenDay { date: day });
        let exchange = self.platform.exchange.as_ref().expect("an exchange");
        for answer in exchange.submit_all(envelopes).wait_all() {
            assert!(matches!(answer, Ok(ets_store::ExchangeReceipt::Accepted(_))), "{answer:?}");
        }
        // The view is published after the stored batch: wait for it.
        for _ in 0..200 {
            let view = self.platform.market.read().unwrap().clone();
            if view.instruments["CEA-2025"].bars.len() == days as usize + 1 {
                return day;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("the market view did not publish the history");
    }

    /// Free and total units of CEA-2025 in `account`, from the registry.
    pub fn held(&self, account: &str) -> (u64, u64) {
        let ledger = self.platform.registry.lock().unwrap();
        let r = ledger.registry();
        let a = r.find_account(account).unwrap();
        let u = r.unit_named(&UnitRef::allowance("CEA", 2025)).unwrap();
        r.holding(a, u).map_or((0, 0), |h| (h.free_total(), h.total()))
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if let Location::Postgres { url, schema: Some(schema) } = self.location.clone() {
            // The synchronous PostgreSQL client runs its own runtime: not on a tokio thread.
            let _ = std::thread::spawn(move || {
                if let Ok(mut client) = postgres::Client::connect(&url, postgres::NoTls) {
                    let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"));
                }
            })
            .join();
        }
    }
}
