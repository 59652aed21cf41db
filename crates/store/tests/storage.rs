//! One storage test suite, run against SQLite and PostgreSQL alike.
//!
//! PostgreSQL tests connect to ETS_TEST_POSTGRES_URL (default
//! postgres://postgres@127.0.0.1:5432/test) and each works in a schema of its own, dropped at
//! the end. They fail when the server cannot be reached: set ETS_SKIP_POSTGRES=1 to skip them
//! on a machine without one (CI never sets it).

use ets_core::{Date, Timestamp, Tonnes};
use ets_registry::{AccountKind, Command, Envelope, HolderType, MarketLevel, MarketSpec, PendingPurpose, RejectKind, TxId, UnitRef};
use ets_store::{Backend, Ledger, LedgerOptions, LedgerService, Location, PostgresBackend, SqliteBackend, StoreError, SubmitError};
use std::sync::atomic::{AtomicU32, Ordering};

struct Db {
    location: Location,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Location::Postgres { url, schema: Some(schema) } = &self.location {
            if let Ok(mut client) = postgres::Client::connect(url, postgres::NoTls) {
                let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"));
            }
        }
    }
}

impl Db {
    /// Another empty database of the same backend.
    fn fresh_like(db: &Db) -> Db {
        match db.location {
            Location::Sqlite(_) => sqlite(),
            Location::Postgres { .. } => postgres(),
        }
        .expect("the backend in use is available")
    }
}

fn sqlite() -> Option<Db> {
    let dir = tempfile::tempdir().expect("temp dir");
    Some(Db { location: Location::Sqlite(dir.path().join("registry.db")), _dir: Some(dir) })
}

fn postgres() -> Option<Db> {
    if std::env::var("ETS_SKIP_POSTGRES").is_ok_and(|v| v == "1") {
        eprintln!("ETS_SKIP_POSTGRES=1: PostgreSQL half skipped");
        return None;
    }
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let url = std::env::var("ETS_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let schema = format!("ets_test_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst));
    Some(Db { location: Location::Postgres { url, schema: Some(schema) }, _dir: None })
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn sqlite() {
                    if let Some(db) = super::sqlite() { super::$name(&db) }
                }
                #[test]
                fn postgres() {
                    if let Some(db) = super::postgres() { super::$name(&db) }
                }
            }
        )*
    };
}

on_both_backends!(
    reload_replays_to_the_same_state,
    repeated_id_is_idempotent_across_restarts,
    rejected_command_writes_nothing,
    second_writer_gets_conflict_and_recovers,
    snapshot_plus_tail_equals_full_replay,
    damaged_snapshot_is_skipped,
    audit_names_an_altered_record,
    audit_names_a_missing_record,
    audit_detects_a_tampered_query_table,
    audit_detects_tampered_postings,
    history_is_point_in_time,
    history_is_caught_up_after_a_crash,
    service_answers_groups_in_order_once_durable,
    record_times_never_go_backwards,
    migrations_are_versioned_and_run_once,
    mrv_journal_rebuilds_the_state_and_is_idempotent,
    mrv_audit_detects_altered_records_and_evidence,
    exchange_journal_replays_and_redoes_undone_settlement_once,
    exchange_journal_detects_an_altered_record,
    exchange_service_pipelines_batches_and_answers_once_durable,
    access_journal_replays_to_the_same_state,
    access_journal_detects_an_altered_record,
    access_refusal_writes_nothing,
    access_failed_append_reloads_from_storage,
    finance_journal_replays_and_redoes_undone_instructions_once,
    finance_journal_detects_an_altered_record,
    finance_command_the_registry_would_refuse_is_not_journaled,
);

fn at(day: &str) -> Timestamp {
    Date::parse(day).unwrap().start()
}

fn open(db: &Db) -> Ledger {
    Ledger::open(&db.location, LedgerOptions { snapshot_every: 0 }).expect("open ledger")
}

fn env(id: &str, actor: &str, command: Command) -> Envelope {
    Envelope { id: id.into(), actor: actor.into(), command }
}

fn cea() -> UnitRef {
    UnitRef::allowance("CEA", 2024)
}

/// A small registry touching every kind of operation; returns the ledger.
fn scenario(db: &Db) -> Ledger {
    let mut ledger = open(db);
    let spec = MarketSpec {
        code: "CN".into(),
        name: "National".into(),
        level: MarketLevel::National,
        allowance_code: "CEA".into(),
        offset_standards: vec!["CCER".into()],
        individuals_may_trade: false,
        authorities: vec!["mee".into()],
    };
    let mut commands = vec![
        env("init", "admin", Command::InitRegistry { admins: vec!["admin".into()] }),
        env("cn", "admin", Command::AddMarket(spec)),
        env("cap", "mee", Command::SetCap { market: "CN".into(), vintage: 2024, cap: Tonnes(1_000_000) }),
    ];
    for i in 0..4 {
        commands.push(env(
            &format!("open-{i}"),
            "admin",
            Command::OpenAccount {
                market: "CN".into(),
                kind: if i < 3 { AccountKind::Operator } else { AccountKind::Trading },
                holder: format!("Entity {i}"),
                holder_type: if i < 3 { HolderType::Entity } else { HolderType::Institution },
                representatives: vec![format!("rep{i}")],
            },
        ));
    }
    commands.push(env("issue", "mee", Command::Issue { unit: cea(), quantity: Tonnes(900_000), to: None }));
    for i in 0..3 {
        commands.push(env(
            &format!("alloc-{i}"),
            "mee",
            Command::Allocate { from: "CN-ISSUANCE".into(), to: format!("CN-10000{}", i + 1), unit: cea(), quantity: Tonnes(100_000) },
        ));
    }
    let results = ledger.submit_batch(at("2025-09-30"), &commands).unwrap();
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    let day2 = vec![
        env("t1", "rep0", Command::Transfer { from: "CN-100001".into(), to: "CN-100002".into(), unit: cea(), quantity: Tonnes(12_345) }),
        env("t2", "rep1", Command::Transfer { from: "CN-100002".into(), to: "CN-100004".into(), unit: cea(), quantity: Tonnes(5_000) }),
        env(
            "p1",
            "rep2",
            Command::CreatePending {
                pending: "settle-1".into(),
                from: "CN-100003".into(),
                to: "CN-100001".into(),
                unit: cea(),
                quantity: Tonnes(7_000),
                purpose: PendingPurpose::Settlement,
            },
        ),
        env(
            "p2",
            "rep2",
            Command::CreatePending {
                pending: "pledge-1".into(),
                from: "CN-100003".into(),
                to: "CN-100004".into(),
                unit: cea(),
                quantity: Tonnes(3_000),
                purpose: PendingPurpose::Pledge,
            },
        ),
        env(
            "f1",
            "mee",
            Command::Freeze {
                freeze: "fz".into(),
                account: "CN-100002".into(),
                unit: cea(),
                quantity: Tonnes(1_000),
                order: "court-1".into(),
            },
        ),
    ];
    assert!(ledger.submit_batch(at("2025-10-15"), &day2).unwrap().iter().all(|r| r.is_ok()));
    let day3 = vec![
        env("p1-post", "mee", Command::PostPending { pending: "settle-1".into() }),
        env("p2-void", "rep3", Command::VoidPending { pending: "pledge-1".into() }),
        env("s1", "rep0", Command::Surrender { account: "CN-100001".into(), unit: cea(), quantity: Tonnes(50_000), compliance_year: 2024 }),
        env("c1", "rep3", Command::Cancel { account: "CN-100004".into(), unit: cea(), quantity: Tonnes(1_000) }),
        env("rev", "mee", Command::Reverse { tx: TxId(5), reason: "wrong account".into() }),
        env("uf", "mee", Command::Unfreeze { freeze: "fz".into() }),
    ];
    let results = ledger.submit_batch(at("2025-12-20"), &day3).unwrap();
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    ledger
}

fn reload_replays_to_the_same_state(db: &Db) {
    let ledger = scenario(db);
    let (hash, seq, head) = (ledger.registry().state_hash(), ledger.registry().seq(), ledger.head_hash());
    drop(ledger);
    let mut reopened = open(db);
    assert_eq!(reopened.registry().seq(), seq);
    assert_eq!(reopened.registry().state_hash(), hash);
    assert_eq!(reopened.head_hash(), head);
    let report = reopened.audit().expect("audit passes");
    assert_eq!(report.records, seq);
    assert!(report.holdings_checked >= 4);
    // The query tables agree with the registry.
    let holdings = reopened.backend().holdings(Some("CN-100001")).unwrap();
    assert_eq!(holdings.len(), 1);
    // Allocation, less transfer t1 (reversed later), plus the posted settlement, less the surrender.
    assert_eq!(holdings[0].free, 100_000 - 12_345 + 7_000 - 50_000 + 12_345);
}

fn repeated_id_is_idempotent_across_restarts(db: &Db) {
    let ledger = scenario(db);
    let seq = ledger.registry().seq();
    drop(ledger);
    let mut ledger = open(db);
    let again =
        env("t1", "rep0", Command::Transfer { from: "CN-100001".into(), to: "CN-100002".into(), unit: cea(), quantity: Tonnes(12_345) });
    let submitted = ledger.submit(at("2026-01-05"), &again).unwrap();
    assert!(submitted.duplicate);
    assert_eq!(submitted.receipt.tx, Some(TxId(5)));
    assert_eq!(ledger.backend().last_seq().unwrap(), seq);
    let other = env("t1", "rep0", Command::Transfer { from: "CN-100001".into(), to: "CN-100002".into(), unit: cea(), quantity: Tonnes(1) });
    match ledger.submit(at("2026-01-05"), &other) {
        Err(SubmitError::Rejected(r)) => assert_eq!(r.kind, RejectKind::Conflict),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(ledger.backend().last_seq().unwrap(), seq);
}

fn rejected_command_writes_nothing(db: &Db) {
    let mut ledger = scenario(db);
    let before = (ledger.backend().last_seq().unwrap(), ledger.backend().holdings(None).unwrap(), ledger.registry().state_hash());
    let batch = vec![
        env(
            "bad-1",
            "rep0",
            Command::Transfer { from: "CN-100001".into(), to: "CN-100002".into(), unit: cea(), quantity: Tonnes(10_000_000) },
        ),
        env("bad-2", "rep0", Command::Transfer { from: "CN-100001".into(), to: "CN-999999".into(), unit: cea(), quantity: Tonnes(1) }),
    ];
    let results = ledger.submit_batch(at("2026-01-05"), &batch).unwrap();
    assert_eq!(results[0].as_ref().unwrap_err().kind, RejectKind::Refused);
    assert_eq!(results[1].as_ref().unwrap_err().kind, RejectKind::NotFound);
    let after = (ledger.backend().last_seq().unwrap(), ledger.backend().holdings(None).unwrap(), ledger.registry().state_hash());
    assert_eq!(before, after);
}

fn second_writer_gets_conflict_and_recovers(db: &Db) {
    let ledger = scenario(db);
    drop(ledger);
    let mut first = open(db);
    let mut second = open(db);
    let t = |id: &str| {
        env(id, "rep0", Command::Transfer { from: "CN-100001".into(), to: "CN-100002".into(), unit: cea(), quantity: Tonnes(10) })
    };
    first.submit(at("2026-01-05"), &t("w1")).unwrap();
    match second.submit(at("2026-01-05"), &t("w2")) {
        Err(SubmitError::Store(StoreError::Conflict(_))) => {}
        other => panic!("expected a write conflict, got {other:?}"),
    }
    // The loser reloaded from storage: it now sees the winner's record and can go on.
    assert_eq!(second.registry().seq(), first.registry().seq());
    second.submit(at("2026-01-05"), &t("w2")).unwrap();
    drop((first, second));
    let mut reopened = open(db);
    reopened.audit().expect("audit after concurrent writers");
}

fn snapshot_plus_tail_equals_full_replay(db: &Db) {
    let mut ledger = scenario(db);
    ledger.snapshot().unwrap();
    let more =
        env("after", "rep0", Command::Transfer { from: "CN-100001".into(), to: "CN-100003".into(), unit: cea(), quantity: Tonnes(99) });
    ledger.submit(at("2026-01-06"), &more).unwrap();
    let hash = ledger.registry().state_hash();
    drop(ledger);
    let mut reopened = open(db);
    assert_eq!(reopened.registry().state_hash(), hash);
    let report = reopened.audit().unwrap();
    assert_eq!(report.snapshots_checked, 1);
    assert_eq!(report.state_hash, hash);
}

fn damaged_snapshot_is_skipped(db: &Db) {
    let mut ledger = scenario(db);
    let hash = ledger.registry().state_hash();
    let seq = ledger.registry().seq();
    // A snapshot whose stored hash does not match its body must never be loaded.
    let mut body = ledger.registry().snapshot().encode();
    let last = body.len() - 1;
    body[last] ^= 0xff;
    ledger.backend().save_snapshot(seq, hash, &body).unwrap();
    drop(ledger);
    let mut reopened = open(db);
    assert_eq!(reopened.registry().state_hash(), hash, "loaded from the journal instead");
    let err = reopened.audit().unwrap_err();
    assert!(err.to_string().contains(&format!("snapshot at record {seq}")), "{err}");
}

/// Runs raw SQL against the test database, bypassing ets: what an attacker with file access does.
fn tamper(db: &Db, sql: &str) {
    match &db.location {
        Location::Sqlite(path) => {
            let backend = SqliteBackend::open(path).unwrap();
            backend.connection().execute_batch(sql).unwrap();
        }
        Location::Postgres { url, schema } => {
            let mut backend = PostgresBackend::open(url, schema.as_deref()).unwrap();
            backend.client().batch_execute(sql).unwrap();
        }
    }
}

fn audit_of(db: &Db) -> Result<ets_store::AuditReport, StoreError> {
    let mut backend: Box<dyn Backend> = db.location.open().unwrap();
    ets_store::audit(backend.as_mut())
}

fn audit_names_an_altered_record(db: &Db) {
    drop(scenario(db));
    assert!(audit_of(db).is_ok());
    // Flip one bit of record 9's body, as an edit of the database file would.
    match &db.location {
        Location::Sqlite(path) => {
            let backend = SqliteBackend::open(path).unwrap();
            let conn = backend.connection();
            let mut body: Vec<u8> = conn.query_row("SELECT body FROM journal WHERE seq = 9", [], |r| r.get(0)).unwrap();
            body[10] ^= 1;
            conn.execute("UPDATE journal SET body = ?1 WHERE seq = 9", [body]).unwrap();
        }
        Location::Postgres { .. } => tamper(db, "UPDATE journal SET body = set_byte(body, 10, get_byte(body, 10) # 1) WHERE seq = 9"),
    }
    let err = audit_of(db).unwrap_err();
    assert_eq!(err, StoreError::Corrupt("record 9 was altered: its content does not match its hash".into()));
    // The ledger refuses to start on an altered journal.
    assert!(matches!(Ledger::open(&db.location, LedgerOptions::default()), Err(StoreError::Corrupt(_))));
}

fn audit_names_a_missing_record(db: &Db) {
    drop(scenario(db));
    tamper(db, "DELETE FROM journal WHERE seq = 4");
    let err = audit_of(db).unwrap_err();
    assert_eq!(err, StoreError::Corrupt("record 4 is missing (next stored record is 5)".into()));
}

fn audit_detects_a_tampered_query_table(db: &Db) {
    drop(scenario(db));
    tamper(db, "UPDATE holdings SET free = free + 1000 WHERE account = 'CN-100002'");
    let err = audit_of(db).unwrap_err().to_string();
    assert!(err.contains("holdings table differs") && err.contains("CN-100002"), "{err}");
}

fn history_is_point_in_time(db: &Db) {
    let mut ledger = scenario(db);
    let all = ledger.transactions("CN-100001", None).unwrap();
    let before_trading = ledger.transactions("CN-100001", Some(Date::parse("2025-10-14").unwrap().end_exclusive())).unwrap();
    assert_eq!(before_trading.len(), 1, "only the allocation");
    assert_eq!(before_trading[0].kind, "allocation");
    assert!(all.len() > before_trading.len());
    let balance: i64 = all
        .iter()
        .map(|t| match (t.from_account.as_deref(), t.to_account.as_deref()) {
            (Some("CN-100001"), _) => -(t.quantity as i64),
            (_, Some("CN-100001")) => t.quantity as i64,
            _ => 0,
        })
        .sum();
    let account = ledger.registry().find_account("CN-100001").unwrap();
    let held: u64 = ledger.registry().holdings_of(account).iter().map(|(_, h)| h.total()).sum();
    assert_eq!(balance as u64, held);
    let surrender = all.iter().find(|t| t.kind == "surrender").unwrap();
    assert_eq!(surrender.compliance_year, Some(2024));
    assert_eq!(surrender.to_account.as_deref(), Some("CN-SURRENDER"));
}

fn migrations_are_versioned_and_run_once(db: &Db) {
    drop(scenario(db));
    let mut backend = db.location.open().unwrap();
    assert_eq!(backend.schema_version().unwrap(), 5);
    drop(backend);
    let mut again = db.location.open().unwrap();
    assert_eq!(again.schema_version().unwrap(), 5);
    assert!(again.last_seq().unwrap() > 0, "reopening kept the data");
    tamper(db, "INSERT INTO schema_migrations (version, name) VALUES (99, 'from the future')");
    match db.location.open() {
        Err(StoreError::Incompatible(m)) => assert!(m.contains("newer than this program"), "{m}"),
        other => panic!("expected a refusal of a newer schema, got {:?}", other.map(|_| ())),
    }
}

fn history_is_caught_up_after_a_crash(db: &Db) {
    let mut ledger = scenario(db);
    let expected = ledger.transactions("CN-100002", None).unwrap();
    let more =
        env("late", "rep0", Command::Transfer { from: "CN-100001".into(), to: "CN-100002".into(), unit: cea(), quantity: Tonnes(7) });
    ledger.submit(at("2026-02-01"), &more).unwrap();
    // A crash before the held-back history rows are written: the journal has the transfer,
    // the transactions table does not.
    std::mem::forget(ledger);
    let mut backend = db.location.open().unwrap();
    assert_eq!(backend.transactions("CN-100002", None).unwrap(), expected);
    assert!(backend.trailing_through().unwrap() < backend.last_seq().unwrap());
    drop(backend);
    // The audit checks trailing tables against the journal at their mark.
    audit_of(db).expect("trailing tables are consistent at their mark");
    // Opening catches the table up from the journal.
    let mut reopened = open(db);
    let rows = reopened.transactions("CN-100002", None).unwrap();
    assert_eq!(rows.len(), expected.len() + 1);
    assert_eq!((rows.last().unwrap().quantity, rows.last().unwrap().at), (7, at("2026-02-01")));
    assert_eq!(reopened.backend().trailing_through().unwrap(), reopened.registry().seq());
}

fn service_answers_groups_in_order_once_durable(db: &Db) {
    let ledger = scenario(db);
    let seq = ledger.registry().seq();
    let service = LedgerService::start(ledger, || at("2026-03-01"), 64);
    let t = |id: String, q: u64| {
        env(&id, "rep0", Command::Transfer { from: "CN-100001".into(), to: "CN-100002".into(), unit: cea(), quantity: Tonnes(q) })
    };
    // Three groups in flight at once; the second holds a transfer that must be refused.
    let first = service.submit_all((0..100).map(|i| t(format!("g1-{i}"), 1)).collect());
    let second = service.submit_all(vec![t("g2-0".into(), 2), t("g2-1".into(), 10_000_000), t("g2-2".into(), 3)]);
    let single = service.submit(t("g3".into(), 4));
    let first = first.wait_all();
    assert_eq!(first.len(), 100);
    let seqs: Vec<u64> = first.iter().map(|r| r.as_ref().unwrap().receipt.seq).collect();
    assert_eq!(seqs, (seq + 1..=seq + 100).collect::<Vec<_>>(), "answers in submission order");
    let second = second.wait_all();
    assert!(second[0].is_ok() && second[2].is_ok());
    match &second[1] {
        Err(SubmitError::Rejected(r)) => assert_eq!(r.kind, RejectKind::Refused),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(single.wait().unwrap().receipt.seq, seq + 103);
    let ledger = service.stop();
    assert_eq!(ledger.registry().seq(), seq + 103);
    drop(ledger);
    // Everything answered is durable, and the trailing tables catch up.
    let mut reopened = open(db);
    assert_eq!(reopened.registry().seq(), seq + 103);
    let rows = reopened.transactions("CN-100002", Some(at("2026-03-02"))).unwrap();
    assert_eq!(rows.iter().filter(|r| r.at == at("2026-03-01")).count(), 103);
    reopened.audit().unwrap();
}

fn record_times_never_go_backwards(db: &Db) {
    let mut ledger = scenario(db);
    let t = |id: &str| {
        env(id, "rep0", Command::Transfer { from: "CN-100001".into(), to: "CN-100002".into(), unit: cea(), quantity: Tonnes(1) })
    };
    ledger.submit(at("2026-05-01"), &t("later")).unwrap();
    // A clock stepped back (or a back-dated entry) is stamped with the last record's time.
    ledger.submit(at("2026-04-01"), &t("earlier")).unwrap();
    drop(ledger);
    let mut reopened = open(db);
    reopened.submit(at("2026-03-01"), &t("after-restart")).unwrap();
    let rows = reopened.transactions("CN-100001", None).unwrap();
    let last: Vec<Timestamp> = rows.iter().rev().take(3).map(|r| r.at).collect();
    assert_eq!(last, vec![at("2026-05-01"); 3]);
    assert!(rows.windows(2).all(|w| w[0].at <= w[1].at), "history follows journal order");
}

fn audit_detects_tampered_postings(db: &Db) {
    drop(scenario(db));
    assert!(audit_of(db).is_ok());
    tamper(db, "UPDATE postings SET quantity = quantity + 1 WHERE tx = 5 AND incoming");
    let err = audit_of(db).unwrap_err().to_string();
    assert!(err.contains("postings of account CN-100002") && err.contains("CEA:2024"), "{err}");
    tamper(db, "UPDATE postings SET quantity = quantity - 1 WHERE tx = 5 AND incoming");
    tamper(db, "DELETE FROM postings WHERE tx = 6");
    let err = audit_of(db).unwrap_err().to_string();
    assert!(err.contains("the postings table has"), "{err}");
}

fn mrv_open(db: &Db) -> ets_store::MrvLog {
    ets_store::MrvLog::open(db.location.open().unwrap(), ets_mrv::FactorSet::builtin().unwrap(), Default::default()).unwrap()
}

/// A small sample MRV year (3 entities), run through the MRV journal.
fn mrv_scenario(db: &Db) -> (ets_store::MrvLog, ets_mrv::sample::Scenario) {
    let markets = [ets_mrv::sample::Market { code: "CN".into(), province: "Hebei".into(), entities: 3 }];
    let sc = ets_mrv::sample::scenario(3, 2024, &markets, 1);
    let mut log = mrv_open(db);
    for (i, (actor, at, c)) in sc.commands.iter().enumerate() {
        log.submit(&format!("mrv-{i}"), actor, *at, c, &[]).unwrap_or_else(|e| panic!("{e}"));
    }
    (log, sc)
}

fn mrv_journal_rebuilds_the_state_and_is_idempotent(db: &Db) {
    use ets_mrv::state::Command;
    let (log, sc) = mrv_scenario(db);
    let before = format!("{:?}", log.state());
    let head = log.head();
    assert_eq!(head.0 as usize, sc.commands.len());
    drop(log);
    let mut log = mrv_open(db);
    assert_eq!(format!("{:?}", log.state()), before, "reopening replays to the same state");
    assert_eq!(log.head(), head);
    // A retried command returns the recorded result and writes nothing.
    let (actor, when, c) = &sc.commands[5];
    let again = log.submit("mrv-5", actor, *when, c, &[]).unwrap();
    assert!(again.repeated);
    assert_eq!(again.seq, 6);
    assert_eq!(log.head(), head);
    // The same id for another command is refused.
    match log.submit("mrv-5", "mee-official", *when, &Command::AddOfficial { person: "x".into() }, &[]) {
        Err(ets_store::MrvError::Rejected(r)) => assert!(r.message.contains("already used"), "{}", r.message),
        other => panic!("expected a refusal, got {other:?}"),
    }
    // A refused command writes nothing.
    let refused = log.submit("mrv-x", "nobody", *when, &Command::AddOfficial { person: "y".into() }, &[]);
    assert!(matches!(refused, Err(ets_store::MrvError::Rejected(_))));
    assert_eq!(mrv_open(db).head(), head);
    // A batch is all or nothing: its third command is refused, so the first two are not written.
    let item = |id: &str, person: &str| ets_store::MrvSubmission {
        command_id: id.into(),
        actor: "mee-official".into(),
        at: *when,
        command: Command::AddOfficial { person: person.into() },
    };
    let batch = [item("b-1", "p1"), item("b-2", "p2"), item("b-3", "p1")];
    match log.submit_batch(&batch, &[]) {
        Err((Some(2), ets_store::MrvError::Rejected(r))) => assert!(r.message.contains("already an official"), "{}", r.message),
        other => panic!("expected the third command refused, got {other:?}"),
    }
    assert_eq!(mrv_open(db).head(), head);
    assert!(!log.state().officials().contains("p1"));
    // Evidence bytes are stored with the submission that lists them, and only then.
    let entity = log.state().entities().next().unwrap().id.clone();
    let unit = log.state().units_of(&entity).next().unwrap().id.clone();
    let rep = log.state().entity(&entity).unwrap().representatives.iter().next().unwrap().clone();
    let month = ets_mrv::monthly::YearMonth::new(2024, 3).unwrap();
    let latest = log.state().monthly_versions(&unit, month).last().unwrap().clone();
    let content = b"lab report, corrected".to_vec();
    let file = ets_store::EvidenceFile { sha256: ets_store::sha256_hex(&content), name: "lab.pdf".into(), content };
    let correction = Command::SubmitMonthly {
        entity,
        unit: unit.clone(),
        month,
        records: latest.records.clone(),
        production: latest.production,
        evidence: vec![ets_mrv::state::Evidence { name: "lab.pdf".into(), sha256: file.sha256.clone(), bytes: file.content.len() as u64 }],
        reason: Some("lab re-issued the report".into()),
    };
    let mut unlisted = file.clone();
    unlisted.content.push(b'!');
    unlisted.sha256 = ets_store::sha256_hex(&unlisted.content);
    assert!(log.submit("mrv-corr", &rep, at("2024-06-01"), &correction, &[unlisted]).is_err());
    let r = log.submit("mrv-corr", &rep, at("2024-06-01"), &correction, std::slice::from_ref(&file)).unwrap();
    assert!(!r.repeated);
    assert!(r.at >= head_at(&sc), "journal times never go backwards");
    assert_eq!(log.backend().mrv_evidence(&file.sha256).unwrap(), Some(file));
    assert_eq!(mrv_open(db).state().monthly_versions(&unit, month).len(), 2);
    let audit = log.audit().unwrap();
    assert_eq!(audit.records, head.0 + 1);
    assert_eq!(audit.evidence_files, 1);
    let blob = if matches!(db.location, Location::Postgres { .. }) { "'\\x00'::bytea" } else { "x'00'" };
    tamper(db, &format!("UPDATE mrv_evidence SET content = {blob}"));
    match log.audit() {
        Err(StoreError::Corrupt(m)) => assert!(m.contains("was altered"), "{m}"),
        other => panic!("expected altered evidence to be found, got {other:?}"),
    }
}

fn head_at(sc: &ets_mrv::sample::Scenario) -> Timestamp {
    sc.commands.iter().map(|c| c.1).max().unwrap()
}

fn mrv_audit_detects_altered_records_and_evidence(db: &Db) {
    let (mut log, _) = mrv_scenario(db);
    assert!(log.audit().is_ok());
    drop(log);
    // Altering a stored body (a quantity in record 20) breaks the chain at that record.
    let is_pg = matches!(db.location, Location::Postgres { .. });
    let body = if is_pg {
        "convert_to(replace(convert_from(body, 'UTF8'), '\"quantity_t\":\"', '\"quantity_t\":\"1'), 'UTF8')"
    } else {
        "CAST(replace(CAST(body AS TEXT), '\"quantity_t\":\"', '\"quantity_t\":\"1') AS BLOB)"
    };
    tamper(db, &format!("UPDATE mrv_journal SET body = {body} WHERE seq = 20"));
    match ets_store::MrvLog::open(db.location.open().unwrap(), ets_mrv::FactorSet::builtin().unwrap(), Default::default()) {
        Err(StoreError::Corrupt(m)) => assert!(m.contains("record 20 was altered"), "{m}"),
        other => panic!("expected the altered record to be named, got {:?}", other.map(|_| ())),
    }
}

// ---------------------------------------------------------------- exchange journal

mod exchange_setup {
    use super::*;
    use ets_exchange::venue::{Command as X, Envelope as XEnvelope, InstrumentSpec};
    use ets_exchange::{Side, Tif};
    use ets_store::{ExchangeLog, VenueConfig};
    use std::collections::{BTreeMap, BTreeSet};

    pub struct Market {
        pub ledger: Ledger,
        pub log: ExchangeLog,
        pub accounts: Vec<String>,
        n: u64,
    }

    pub fn day() -> Date {
        Date::from_ymd(2025, 6, 2).unwrap()
    }

    pub fn at(h: i64, m: i64) -> i64 {
        day().start().0 + (h * 60 + m - 8 * 60) * 60_000
    }

    impl Market {
        pub fn open(db: &Db) -> Market {
            let mut ledger = Ledger::open(&db.location, LedgerOptions::default()).unwrap();
            let mut n = 0;
            let mut reg = |ledger: &mut Ledger, actor: &str, command: Command| {
                n += 1;
                ledger.submit(Timestamp(n), &Envelope { id: format!("xs-{n}"), actor: actor.into(), command }).unwrap();
            };
            reg(&mut ledger, "admin", Command::InitRegistry { admins: vec!["admin".into()] });
            reg(
                &mut ledger,
                "admin",
                Command::AddMarket(MarketSpec {
                    code: "CN".into(),
                    name: "national".into(),
                    level: MarketLevel::National,
                    allowance_code: "CEA".into(),
                    offset_standards: vec![],
                    individuals_may_trade: false,
                    authorities: vec!["auth".into()],
                }),
            );
            let mut accounts = Vec::new();
            for (kind, rep) in [(AccountKind::Trading, "exchange"), (AccountKind::Operator, "alpha"), (AccountKind::Operator, "bravo")] {
                reg(
                    &mut ledger,
                    "auth",
                    Command::OpenAccount {
                        market: "CN".into(),
                        kind,
                        holder: rep.into(),
                        holder_type: HolderType::Entity,
                        representatives: vec![rep.into()],
                    },
                );
                accounts.push(ledger.registry().accounts().last().unwrap().number.clone());
            }
            let unit = UnitRef::allowance("CEA", 2025);
            reg(&mut ledger, "auth", Command::Issue { unit: unit.clone(), quantity: Tonnes(100_000), to: None });
            reg(
                &mut ledger,
                "auth",
                Command::Allocate { from: "CN-ISSUANCE".into(), to: accounts[1].clone(), unit: unit.clone(), quantity: Tonnes(10_000) },
            );
            reg(
                &mut ledger,
                "alpha",
                Command::CreatePending {
                    pending: "lodge-1".into(),
                    from: accounts[1].clone(),
                    to: accounts[0].clone(),
                    unit,
                    quantity: Tonnes(10_000),
                    purpose: PendingPurpose::Settlement,
                },
            );
            let mut log = ExchangeLog::open(db.location.open().unwrap()).unwrap();
            let config = VenueConfig {
                operator: "exchange".into(),
                clearing: BTreeMap::from([("CN".into(), accounts[0].clone())]),
                holidays: BTreeSet::new(),
            };
            log.init(config, Timestamp(at(8, 0))).unwrap();
            let mut m = Market { ledger, log, accounts, n: 0 };
            let members = [("alpha", 1), ("bravo", 2)]
                .map(|(name, i)| X::AddMember { member: name.into(), accounts: BTreeMap::from([("CN".into(), m.accounts[i].clone())]) });
            let mut setup = vec![X::ListInstrument(InstrumentSpec::national(2025, 8_000))];
            setup.extend(members);
            setup.push(X::Deposit { member: "bravo".into(), amount_fen: 100_000_000 });
            setup.push(X::Lodge { member: "alpha".into(), instrument: "CEA-2025".into(), qty: 10_000, pending: "lodge-1".into() });
            setup.push(X::OpenDay { date: day() });
            for c in setup {
                m.send("exchange", at(9, 0), c, true);
            }
            m
        }

        pub fn envelope(&mut self, actor: &str, at_ms: i64, command: X) -> XEnvelope {
            self.n += 1;
            XEnvelope { id: format!("x{}", self.n), actor: actor.into(), at_ms, command }
        }

        pub fn send(&mut self, actor: &str, at_ms: i64, command: X, carry_out: bool) {
            let e = self.envelope(actor, at_ms, command);
            let r = self.log.submit_batch_then(std::slice::from_ref(&e), &mut self.ledger, carry_out).unwrap();
            assert!(r[0].is_ok(), "{e:?}: {r:?}");
        }

        pub fn trade(&mut self) {
            let sell = X::Place {
                order: 1,
                member: "alpha".into(),
                instrument: "CEA-2025".into(),
                side: Side::Sell,
                price: Some(8_000),
                qty: 3_000,
                tif: Tif::Gtc,
            };
            let buy = X::Place {
                order: 2,
                member: "bravo".into(),
                instrument: "CEA-2025".into(),
                side: Side::Buy,
                price: Some(8_000),
                qty: 1_000,
                tif: Tif::Gtc,
            };
            self.send("alpha", at(10, 0), sell, true);
            self.send("bravo", at(10, 1), buy, true);
        }

        pub fn held(&self, i: usize) -> u64 {
            let r = self.ledger.registry();
            let a = r.find_account(&self.accounts[i]).unwrap();
            let u = r.unit_named(&UnitRef::allowance("CEA", 2025)).unwrap();
            r.holding(a, u).map_or(0, |h| h.total())
        }
    }
}

fn exchange_journal_replays_and_redoes_undone_settlement_once(db: &Db) {
    use ets_exchange::venue::Command as X;
    let mut m = exchange_setup::Market::open(db);
    m.trade();
    // The close is journaled, but the process "dies" before the registry instructions.
    m.send("exchange", exchange_setup::at(15, 30), X::CloseDay, false);
    let hash = m.log.venue().unwrap().state_hash();
    assert_eq!((m.held(1), m.held(2)), (10_000, 0), "settlement not carried out yet");
    drop(m.log);
    drop(m.ledger);
    // Restart: the replay reaches the same state and re-derives the instructions.
    let mut ledger = Ledger::open(&db.location, LedgerOptions::default()).unwrap();
    let mut log = ets_store::ExchangeLog::open(db.location.open().unwrap()).unwrap();
    assert_eq!(log.venue().unwrap().state_hash(), hash);
    assert_eq!(log.venue().unwrap().trades().len(), 1);
    assert_eq!(log.reconcile(&mut ledger, Timestamp(exchange_setup::at(16, 0))).unwrap(), 2, "a delivery into clearing and one out of it");
    let r = ledger.registry();
    let held = |n: &str| {
        let a = r.find_account(n).unwrap();
        r.holding(a, r.unit_named(&UnitRef::allowance("CEA", 2025)).unwrap()).map_or(0, |h| h.total())
    };
    assert_eq!((held("CN-100002"), held("CN-100003"), held("CN-100001")), (9_000, 1_000, 0));
    r.check_invariants().unwrap();
    // Exactly once: nothing left to redo, here or after another restart.
    assert_eq!(log.reconcile(&mut ledger, Timestamp(exchange_setup::at(16, 1))).unwrap(), 0);
    drop(log);
    let mut log = ets_store::ExchangeLog::open(db.location.open().unwrap()).unwrap();
    assert_eq!(log.reconcile(&mut ledger, Timestamp(exchange_setup::at(16, 2))).unwrap(), 0);
    assert_eq!(log.audit().unwrap().1, hash);
    // A retried command id: the same command is a repeat, another command a conflict.
    let again = ets_exchange::venue::Envelope { id: "x6".into(), actor: "alpha".into(), at_ms: 0, command: X::CloseDay };
    let r = log.submit_batch(std::slice::from_ref(&again), &mut ledger).unwrap();
    assert!(matches!(&r[0], Err(e) if e.message == "command id 'x6' was already used for another command"), "{r:?}");
}

fn exchange_journal_detects_an_altered_record(db: &Db) {
    let mut m = exchange_setup::Market::open(db);
    m.trade();
    drop(m);
    match &db.location {
        Location::Sqlite(_) => tamper(db, "UPDATE exchange_journal SET body = CAST(body || x'00' AS BLOB) WHERE seq = 3"),
        Location::Postgres { .. } => {
            tamper(db, "UPDATE exchange_journal SET body = set_byte(body, 3, get_byte(body, 3) # 1) WHERE seq = 3")
        }
    }
    match ets_store::ExchangeLog::open(db.location.open().unwrap()) {
        Err(StoreError::Corrupt(msg)) => assert!(msg.contains("exchange journal"), "{msg}"),
        other => panic!("expected corruption, got {:?}", other.map(|_| ())),
    }
}

fn exchange_service_pipelines_batches_and_answers_once_durable(db: &Db) {
    use ets_exchange::venue::Command as X;
    use ets_exchange::{Side, Tif};
    use ets_store::{ExchangeReceipt, ExchangeService, ExchangeSubmitError};
    use std::sync::{Arc, Mutex};
    let mut m = exchange_setup::Market::open(db);
    let place = |order, member: &str, side, qty| X::Place {
        order,
        member: member.into(),
        instrument: "CEA-2025".into(),
        side,
        price: Some(8_000),
        qty,
        tif: Tif::Gtc,
    };
    let sell = m.envelope("alpha", exchange_setup::at(10, 0), place(1, "alpha", Side::Sell, 3_000));
    let buy = m.envelope("bravo", exchange_setup::at(10, 1), place(2, "bravo", Side::Buy, 1_000));
    let too_big = m.envelope("bravo", exchange_setup::at(10, 2), place(3, "bravo", Side::Buy, 20_000));
    let close = m.envelope("exchange", exchange_setup::at(15, 30), X::CloseDay);
    let exchange_setup::Market { ledger, log, accounts, .. } = m;
    let ledger = Arc::new(Mutex::new(ledger));
    let settle = ledger.clone();
    let service = ExchangeService::start(
        log,
        Box::new(move |at, instructions| ets_store::submit_instructions(&mut settle.lock().unwrap(), at, instructions)),
        2,
    );
    // Three groups queued before any answer is read: each is answered in order, once stored.
    let first = service.submit_all(vec![sell.clone()]);
    let second = service.submit_all(vec![buy.clone(), too_big]);
    let third = service.submit_all(vec![buy.clone(), close]);
    assert!(matches!(first.wait_all()[..], [Ok(ExchangeReceipt::Accepted(_))]));
    let second = second.wait_all();
    assert!(
        matches!(&second[0], Ok(ExchangeReceipt::Accepted(o)) if o.events.iter().any(|e| matches!(e, ets_exchange::venue::Event::Traded(_))))
    );
    assert!(matches!(&second[1], Err(ExchangeSubmitError::Rejected(r)) if r.message.contains("free cash")), "{second:?}");
    let third = third.wait_all();
    assert_eq!(third[0], Ok(ExchangeReceipt::Repeated), "a retried id with the same command is not traded twice");
    assert!(matches!(&third[1], Ok(ExchangeReceipt::Accepted(_))));
    let (mut log, _) = service.stop().unwrap();
    let hash = log.venue().unwrap().state_hash();
    assert_eq!(log.venue().unwrap().trades().len(), 1);
    // The close's settlement was carried out into the registry before the close was answered.
    let mut ledger = Arc::try_unwrap(ledger).ok().unwrap().into_inner().unwrap();
    let held = |ledger: &Ledger, n: &str| {
        let r = ledger.registry();
        let a = r.find_account(n).unwrap();
        r.holding(a, r.unit_named(&UnitRef::allowance("CEA", 2025)).unwrap()).map_or(0, |h| h.total())
    };
    assert_eq!((held(&ledger, &accounts[1]), held(&ledger, &accounts[2]), held(&ledger, &accounts[0])), (9_000, 1_000, 0));
    assert_eq!(log.undone(ledger.registry()), 0);
    // Replayed from storage: the same venue, and a retry recognised as the same command.
    assert_eq!(log.audit().unwrap().1, hash);
    drop(log);
    let mut log = ets_store::ExchangeLog::open(db.location.open().unwrap()).unwrap();
    assert_eq!(log.venue().unwrap().state_hash(), hash);
    assert_eq!(log.submit_batch(&[buy], &mut ledger).unwrap(), vec![Ok(ExchangeReceipt::Repeated)]);
    // A service over a journal that was never set up refuses every command and writes nothing.
    drop(log);
    let empty = Db::fresh_like(db);
    let service =
        ExchangeService::start(ets_store::ExchangeLog::open(empty.location.open().unwrap()).unwrap(), Box::new(|_, _| Ok(())), 16);
    let answers = service.submit_all(vec![sell]).wait_all();
    assert!(matches!(&answers[..], [Err(ExchangeSubmitError::Store(StoreError::Conflict(m)))] if m.contains("not set up")), "{answers:?}");
    let (log, _) = service.stop().unwrap();
    assert_eq!(log.head().0, 0);
}

mod access_setup {
    use super::*;
    use ets_access::{AccountRef, Actor, Command as A, ControlRules, Envelope as AEnvelope, PasswordRules, Record, Refusal, Role};
    use ets_store::AccessLog;

    pub const PASSWORD: &str = "correct horse battery staple";

    /// Default rules with cheap Argon2id parameters (tests hash many passwords).
    pub fn rules() -> ControlRules {
        ControlRules {
            password: PasswordRules { memory_kib: 64, iterations: 1, parallelism: 1, ..PasswordRules::default() },
            ..ControlRules::default()
        }
    }

    /// `hh:mm` UTC on Monday 30 Nov 2026 (09:00 CET is within opening hours).
    pub fn at(h: i64, m: i64) -> Timestamp {
        Timestamp(Date::parse("2026-11-30").unwrap().start().0 + (h * 60 + m) * 60_000)
    }

    pub fn open(db: &Db) -> AccessLog {
        AccessLog::open(db.location.open().unwrap(), rules()).expect("open the access journal")
    }

    pub fn send(log: &mut AccessLog, at: Timestamp, actor: &Actor, command: A) -> Result<Record, Refusal> {
        log.execute(&AEnvelope { at, origin: "127.0.0.1".into(), actor: actor.clone(), command }).expect("storage")
    }

    pub fn login(log: &mut AccessLog, at: Timestamp, user: &str) -> Actor {
        let session = format!("s-{user}");
        let secret = format!("test-secret-{user:0>32}");
        let command = A::Login { user: user.into(), password: PASSWORD.into(), session: session.clone(), secret: secret.into() };
        send(log, at, &Actor::Anonymous, command).unwrap();
        Actor::Session(session)
    }

    pub struct People {
        pub root: Actor,
        pub alice: Actor,
        pub bob: Actor,
    }

    /// Bootstraps root, who creates alice and bob (both representatives of A1); all log in.
    pub fn people(log: &mut AccessLog) -> People {
        let t = at(8, 0);
        send(log, t, &Actor::System, A::Bootstrap { user: "root".into(), password: PASSWORD.into(), salt: [1; 16] }).unwrap();
        let root = login(log, t, "root");
        for (user, salt) in [("alice", 2), ("bob", 3)] {
            let roles = vec![Role::AccountRepresentative { account: "A1".into() }];
            send(log, t, &root, A::CreateUser { user: user.into(), roles, password: PASSWORD.into(), salt: [salt; 16] }).unwrap();
        }
        People { root, alice: login(log, t, "alice"), bob: login(log, t, "bob") }
    }

    pub fn propose(id: &str, quantity: u64) -> A {
        A::ProposeTransfer {
            proposal: id.into(),
            from: AccountRef::new("A1", "M1"),
            to: AccountRef::new("A2", "M1"),
            unit: UnitRef::allowance("CEA", 2025),
            quantity: Tonnes(quantity),
        }
    }
}

fn access_journal_replays_to_the_same_state(db: &Db) {
    use access_setup::*;
    use ets_access::{Actor, Command as A, Event, LoginFailure, TransferStatus};
    let mut log = open(db);
    assert_eq!(log.head(), (0, [0; 32]));
    let p = people(&mut log);
    assert_eq!(log.head().0, 6, "bootstrap, two users created, three logins");
    // A quiet tick changes nothing but the clock and is not journaled.
    assert!(send(&mut log, at(8, 1), &Actor::System, A::Tick).unwrap().events.is_empty());
    assert_eq!(log.head().0, 6);
    // A failed login is refused, but its failure counts: it is journaled.
    let wrong =
        A::Login { user: "alice".into(), password: "not her password at all".into(), session: "s-x".into(), secret: "x".repeat(40).into() };
    let refused = send(&mut log, at(8, 5), &Actor::Anonymous, wrong).unwrap_err();
    let failed = refused.record.expect("a failed login is recorded");
    assert!(failed.events.iter().any(|e| matches!(e, Event::LoginFailed { reason: LoginFailure::WrongPassword, .. })));
    assert_eq!(log.head().0, 7);
    // Four eyes: alice proposes, bob approves, a tick at the release time releases.
    send(&mut log, at(8, 10), &p.alice, propose("t1", 500)).unwrap();
    send(&mut log, at(8, 20), &p.bob, A::ApproveTransfer { proposal: "t1".into() }).unwrap();
    let release = match &log.access().controls().transfer("t1").unwrap().status {
        TransferStatus::Approved { release_at, .. } => *release_at,
        other => panic!("expected an approved transfer, got {other:?}"),
    };
    let tick = send(&mut log, release, &Actor::System, A::Tick).unwrap();
    assert!(tick.events.iter().any(|e| matches!(e, Event::TransferReleased { proposal, .. } if proposal == "t1")));
    assert_eq!(log.head().0, 10);
    let _ = p.root;
    // Reopen: the replay reaches the same state and head.
    let (state, head) = (log.access().clone(), log.head());
    drop(log);
    let mut again = open(db);
    assert!(*again.access() == state, "the replayed access state differs");
    assert_eq!(again.head(), head);
    assert_eq!(again.audit().unwrap(), head);
    // The audit endpoint's pages.
    let all = again.records(0, 100).unwrap();
    assert_eq!(all.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(), (1..=10).collect::<Vec<_>>());
    assert_eq!(all[6].1, *failed);
    assert_eq!(all[9].1, tick);
    let page = again.records(3, 2).unwrap();
    assert_eq!(page.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(), vec![4, 5]);
    assert_eq!(page[0].1, all[3].1);
    assert!(again.records(10, 5).unwrap().is_empty());
    let replayed = ets_access::Access::replay(rules(), all.iter().map(|(_, r)| r)).unwrap();
    assert!(replayed == state);
    // The reopened log goes on from where the journal ends.
    let relogin = A::Login { user: "bob".into(), password: PASSWORD.into(), session: "s-bob-2".into(), secret: "y".repeat(40).into() };
    send(&mut again, Timestamp(release.0 + 1), &Actor::Anonymous, relogin).unwrap();
    assert_eq!(again.head().0, 11);
    drop(again);
    assert_eq!(open(db).head().0, 11);
}

fn access_journal_detects_an_altered_record(db: &Db) {
    use access_setup::*;
    let mut log = open(db);
    people(&mut log);
    drop(log);
    match &db.location {
        Location::Sqlite(_) => tamper(db, "UPDATE access_journal SET body = CAST(body || x'00' AS BLOB) WHERE seq = 3"),
        Location::Postgres { .. } => tamper(db, "UPDATE access_journal SET body = set_byte(body, 3, get_byte(body, 3) # 1) WHERE seq = 3"),
    }
    match ets_store::AccessLog::open(db.location.open().unwrap(), rules()) {
        Err(StoreError::Corrupt(msg)) => assert!(msg.contains("access journal") && msg.contains('3'), "{msg}"),
        other => panic!("expected corruption, got {:?}", other.map(|_| ())),
    }
    // A removed record breaks the chain too.
    tamper(db, "DELETE FROM access_journal WHERE seq = 3");
    assert!(matches!(ets_store::AccessLog::open(db.location.open().unwrap(), rules()), Err(StoreError::Corrupt(_))));
}

fn access_refusal_writes_nothing(db: &Db) {
    use access_setup::*;
    use ets_access::{Actor, Command as A, RejectKind, Role};
    let mut log = open(db);
    let p = people(&mut log);
    send(&mut log, at(8, 10), &p.alice, propose("t1", 500)).unwrap();
    let (state, head) = (log.access().clone(), log.head());
    // Refusals that change nothing: approving one's own proposal, managing users without the
    // role, a second bootstrap, a command from before the last record.
    let own = send(&mut log, at(8, 11), &p.alice, A::ApproveTransfer { proposal: "t1".into() }).unwrap_err();
    assert!(own.record.is_none());
    let roles = vec![Role::RegistryAdmin];
    let create = A::CreateUser { user: "mallory".into(), roles, password: PASSWORD.into(), salt: [9; 16] };
    assert_eq!(send(&mut log, at(8, 12), &p.bob, create).unwrap_err().rejection.kind, RejectKind::Forbidden);
    let again = A::Bootstrap { user: "root2".into(), password: PASSWORD.into(), salt: [4; 16] };
    assert!(send(&mut log, at(8, 13), &Actor::System, again).is_err());
    assert!(send(&mut log, at(7, 0), &p.bob, A::ApproveTransfer { proposal: "t1".into() }).is_err());
    assert_eq!(log.head(), head);
    assert!(*log.access() == state);
    drop(log);
    let mut reopened = open(db);
    assert_eq!(reopened.head(), head);
    assert!(*reopened.access() == state);
    assert_eq!(reopened.records(0, 100).unwrap().len() as u64, head.0);
}

fn access_failed_append_reloads_from_storage(db: &Db) {
    use access_setup::*;
    use ets_access::Command as A;
    let mut first = open(db);
    let p = people(&mut first);
    let mut second = open(db);
    send(&mut first, at(8, 10), &p.alice, propose("t1", 500)).unwrap();
    // The second writer decides against a stale state; its append is refused and it reloads.
    let stale = ets_access::Envelope { at: at(8, 11), origin: "127.0.0.1".into(), actor: p.bob.clone(), command: propose("t2", 700) };
    match second.execute(&stale) {
        Err(StoreError::Conflict(m)) => assert!(m.contains("access journal"), "{m}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert!(*second.access() == *first.access(), "memory was rebuilt from storage");
    assert_eq!(second.head(), first.head());
    assert!(second.access().controls().transfer("t2").is_none());
    // Now current, it writes.
    send(&mut second, at(8, 12), &p.bob, A::ApproveTransfer { proposal: "t1".into() }).unwrap();
    assert_eq!(second.head().0, first.head().0 + 1);
    assert_eq!(second.audit().unwrap(), second.head());
}

// ---------------------------------------------------------------- finance journal

mod finance_setup {
    use super::*;
    use ets_finance::desk::{Command as D, Envelope as DEnvelope};
    use ets_finance::inclusion::{self, ActivityRecord, Command as I, Envelope as IEnvelope};
    use ets_store::{FinanceLog, FinanceReceipt};

    pub struct Finance {
        pub ledger: Ledger,
        pub log: FinanceLog,
        pub accounts: Vec<String>,
        n: u64,
    }

    pub fn day() -> Date {
        Date::from_ymd(2025, 6, 2).unwrap()
    }

    impl Finance {
        /// A national market with two entities (alpha, bravo) holding 10,000 CEA each, the
        /// Guangdong pilot with an aggregator; the desk and the inclusion register set up.
        pub fn open(db: &Db) -> Finance {
            let mut ledger = Ledger::open(&db.location, LedgerOptions::default()).unwrap();
            let mut n = 0;
            let mut reg = |ledger: &mut Ledger, actor: &str, command: Command| {
                n += 1;
                ledger.submit(Timestamp(n), &Envelope { id: format!("fs-{n}"), actor: actor.into(), command }).unwrap();
            };
            reg(&mut ledger, "admin", Command::InitRegistry { admins: vec!["admin".into()] });
            for (code, allowance, offsets, auth) in [("CN", "CEA", vec![], "auth"), ("GD", "GDEA", vec!["PHCER".to_string()], "gd-eeb")] {
                let spec = MarketSpec {
                    code: code.into(),
                    name: code.into(),
                    level: if code == "CN" { MarketLevel::National } else { MarketLevel::Pilot },
                    allowance_code: allowance.into(),
                    offset_standards: offsets,
                    individuals_may_trade: false,
                    authorities: vec![auth.into()],
                };
                reg(&mut ledger, "admin", Command::AddMarket(spec));
            }
            let mut accounts = Vec::new();
            for (market, auth, rep) in [("CN", "auth", "alpha"), ("CN", "auth", "bravo"), ("GD", "gd-eeb", "green-app")] {
                let command = Command::OpenAccount {
                    market: market.into(),
                    kind: AccountKind::Operator,
                    holder: rep.into(),
                    holder_type: HolderType::Entity,
                    representatives: vec![rep.into()],
                };
                reg(&mut ledger, auth, command);
                accounts.push(ledger.registry().accounts().last().unwrap().number.clone());
            }
            let unit = UnitRef::allowance("CEA", 2025);
            reg(&mut ledger, "auth", Command::Issue { unit: unit.clone(), quantity: Tonnes(100_000), to: None });
            for to in &accounts[..2] {
                let allocate =
                    Command::Allocate { from: "CN-ISSUANCE".into(), to: to.clone(), unit: unit.clone(), quantity: Tonnes(10_000) };
                reg(&mut ledger, "auth", allocate);
            }
            let mut log = FinanceLog::open(db.location.open().unwrap()).unwrap();
            log.init_desk("desk", "auth", Timestamp(100)).unwrap();
            let config = inclusion::config_from_registry("gd-inclusion", inclusion::Catalog::builtin(), ledger.registry()).unwrap();
            log.init_inclusion(config, Timestamp(101)).unwrap();
            let mut f = Finance { ledger, log, accounts, n: 0 };
            for (p, i) in [("alpha", 0), ("bravo", 1)] {
                let account = f.accounts[i].clone();
                f.desk("desk", D::AddParty { party: p.into(), account }, true);
                f.desk("desk", D::Deposit { party: p.into(), amount_fen: 1_000_000_000 }, true);
            }
            let account = f.accounts[2].clone();
            f.inclusion("gd-inclusion", I::AddAggregator { aggregator: "green-app".into(), pilot: "GD".into(), account });
            f.inclusion("gd-inclusion", I::AddVerifier { verifier: "v1".into() });
            f
        }

        pub fn desk(&mut self, actor: &str, command: D, carry: bool) {
            self.n += 1;
            let e = DEnvelope { id: format!("d{}", self.n), actor: actor.into(), date: day(), command };
            let r = self.log.submit_desk_then(&e, &mut self.ledger, Timestamp(1_000 + self.n as i64), carry).unwrap();
            assert!(matches!(r, Ok(FinanceReceipt::Accepted(_))), "{e:?}: {r:?}");
        }

        pub fn inclusion(&mut self, actor: &str, command: I) {
            self.n += 1;
            let e = IEnvelope { id: format!("i{}", self.n), actor: actor.into(), command };
            let r = self.log.submit_inclusion(&e, &mut self.ledger, Timestamp(1_000 + self.n as i64)).unwrap();
            assert!(matches!(r, Ok(FinanceReceipt::Accepted(_))), "{e:?}: {r:?}");
        }

        /// A pledge of 4,000 t from bravo to alpha, and 9 PHCER credits issued to the aggregator.
        pub fn business(&mut self, carry_pledge: bool) {
            let submit = I::Submit {
                submission: "S1".into(),
                aggregator: "green-app".into(),
                methodology: "HOUSEHOLD-FOREST".into(),
                year: 2025,
                records: vec![ActivityRecord {
                    record: "r1".into(),
                    participant: "p1".into(),
                    date: day(),
                    quantity: "10".parse().unwrap(),
                    evidence_sha256: format!("{:064x}", 1),
                }],
            };
            self.inclusion("green-app", submit);
            self.inclusion("v1", I::Verify { submission: "S1".into(), accept: true, note: String::new() });
            self.inclusion("gd-eeb", I::Issue { submission: "S1".into() });
            self.desk("desk", D::Mark { unit: UnitRef::allowance("CEA", 2025), close_fen: 8_000 }, true);
            let pledge = D::Pledge {
                pledge: "P1".into(),
                lender: "alpha".into(),
                borrower: "bravo".into(),
                unit: UnitRef::allowance("CEA", 2025),
                quantity: 4_000,
                loan_fen: 10_000_000,
                haircut_bp: 3_000,
                maintenance_bp: 12_000,
                topup_days: 3,
                maturity: day().plus_days(30),
            };
            self.desk("desk", pledge, carry_pledge);
        }

        pub fn free(&self, i: usize, unit: &UnitRef) -> u64 {
            ets_finance::Holdings::free(self.ledger.registry(), &self.accounts[i], unit)
        }
    }
}

fn finance_journal_replays_and_redoes_undone_instructions_once(db: &Db) {
    use ets_finance::desk::{Command as D, Envelope as DEnvelope};
    let cea = UnitRef::allowance("CEA", 2025);
    let phcer = UnitRef::offset("PHCER", "HOUSEHOLD-FOREST", 2025);
    let mut f = finance_setup::Finance::open(db);
    // The pledge is journaled, but the process "dies" before its registry pending transfer.
    f.business(false);
    assert_eq!((f.free(1, &cea), f.free(2, &phcer)), (10_000, 9), "credits issued, pledge not yet in the registry");
    let (desk, register, instructions) = (f.log.desk().cloned(), f.log.inclusion().cloned(), f.log.instructions().to_vec());
    drop(f.log);
    // Meanwhile the registry changes (bravo moves units away): replay must not care.
    let (from, to) = (f.accounts[1].clone(), f.accounts[0].clone());
    let t = Command::Transfer { from, to, unit: cea.clone(), quantity: Tonnes(1_000) };
    f.ledger.submit(Timestamp(5_000), &env("away", "bravo", t)).unwrap();
    let mut ledger = f.ledger;
    let mut log = ets_store::FinanceLog::open(db.location.open().unwrap()).unwrap();
    assert_eq!((log.desk().cloned(), log.inclusion().cloned()), (desk, register));
    assert_eq!(log.instructions(), &instructions[..]);
    assert_eq!(log.undone(ledger.registry()), 1);
    assert_eq!(log.reconcile(&mut ledger, Timestamp(6_000)).unwrap(), 1, "the pledge's pending transfer");
    let free = |ledger: &Ledger, i: usize| ets_finance::Holdings::free(ledger.registry(), &f.accounts[i], &cea);
    assert_eq!(free(&ledger, 1), 5_000, "9,000 held, 4,000 pledged");
    assert_eq!(log.reconcile(&mut ledger, Timestamp(6_001)).unwrap(), 0);
    drop(log);
    let mut log = ets_store::FinanceLog::open(db.location.open().unwrap()).unwrap();
    assert_eq!(log.reconcile(&mut ledger, Timestamp(6_002)).unwrap(), 0, "exactly once");
    ledger.registry().check_invariants().unwrap();
    let head = log.audit().unwrap();
    assert_eq!(head.0, log.head().0);
    assert_eq!(log.inclusion().unwrap().totals()["GD"].issued_t, 9);
    // Retries: the same command is a repeat, another command under a used id a conflict.
    let mark = D::Mark { unit: cea.clone(), close_fen: 8_000 };
    let repeat = DEnvelope { id: "d10".into(), actor: "desk".into(), date: finance_setup::day(), command: mark };
    assert!(matches!(log.submit_desk(&repeat, &mut ledger, Timestamp(7_000)).unwrap(), Ok(ets_store::FinanceReceipt::Repeated)));
    let other = DEnvelope { command: D::Mark { unit: cea, close_fen: 1 }, ..repeat };
    let r = log.submit_desk(&other, &mut ledger, Timestamp(7_000)).unwrap().unwrap_err();
    assert_eq!(r.message, "command id 'd10' was already used for another command");
    // A refusal writes nothing.
    let before = log.head();
    let bad = DEnvelope {
        id: "bad".into(),
        actor: "bravo".into(),
        date: finance_setup::day(),
        command: D::Repay { pledge: "P9".into(), amount_fen: 1 },
    };
    assert!(log.submit_desk(&bad, &mut ledger, Timestamp(7_001)).unwrap().is_err());
    assert_eq!(log.head(), before);
}

/// The desk checks the units it reads, not the registry's own rules: a pledge from an account
/// the registry has blocked (it may receive, not send) would be journaled and then refused when
/// carried out, with nothing to undo it. It is refused before the journal instead.
fn finance_command_the_registry_would_refuse_is_not_journaled(db: &Db) {
    use ets_finance::desk::{Command as D, Envelope as DEnvelope};
    let mut f = finance_setup::Finance::open(db);
    let block = Command::SetAccountStatus { account: f.accounts[1].clone(), status: ets_registry::AccountStatus::Blocked };
    f.ledger.submit(Timestamp(900), &env("block-bravo", "admin", block)).unwrap();
    let (head, seq) = (f.log.head(), f.ledger.registry().seq());
    let desk = f.log.desk().cloned();
    let pledge = D::Pledge {
        pledge: "P1".into(),
        lender: "alpha".into(),
        borrower: "bravo".into(),
        unit: UnitRef::allowance("CEA", 2025),
        quantity: 4_000,
        loan_fen: 10_000_000,
        haircut_bp: 3_000,
        maintenance_bp: 12_000,
        topup_days: 3,
        maturity: finance_setup::day().plus_days(30),
    };
    let e = DEnvelope { id: "p-blocked".into(), actor: "desk".into(), date: finance_setup::day(), command: pledge };
    let refused = f.log.submit_desk(&e, &mut f.ledger, Timestamp(1_000)).unwrap().unwrap_err();
    assert_eq!(refused.kind, ets_finance::desk::RejectKind::Rule, "{refused:?}");
    assert!(
        refused.message.contains("the registry would refuse") && refused.message.contains("nothing was recorded"),
        "{}",
        refused.message
    );
    assert_eq!((f.log.head(), f.ledger.registry().seq()), (head, seq), "nothing journaled, nothing in the registry");
    assert_eq!(f.log.desk().cloned(), desk, "the desk as it was");
    assert_eq!(f.log.undone(f.ledger.registry()), 0);
    // Unblocked, the same command goes through under the same id.
    let open = Command::SetAccountStatus { account: f.accounts[1].clone(), status: ets_registry::AccountStatus::Open };
    f.ledger.submit(Timestamp(1_001), &env("open-bravo", "admin", open)).unwrap();
    assert!(matches!(f.log.submit_desk(&e, &mut f.ledger, Timestamp(1_002)).unwrap(), Ok(ets_store::FinanceReceipt::Accepted(_))));
    assert_eq!(f.log.undone(f.ledger.registry()), 0);
}

fn finance_journal_detects_an_altered_record(db: &Db) {
    let mut f = finance_setup::Finance::open(db);
    f.business(true);
    drop(f);
    // Change the pledge's quantity in the stored record: the chain no longer matches.
    let sql = match &db.location {
        Location::Sqlite(_) => "UPDATE finance_journal SET body = CAST(replace(CAST(body AS TEXT), '4000', '9000') AS BLOB) WHERE command_id = 'd11'",
        Location::Postgres { .. } => "UPDATE finance_journal SET body = convert_to(replace(convert_from(body, 'UTF8'), '4000', '9000'), 'UTF8') WHERE command_id = 'd11'",
    };
    tamper(db, sql);
    match ets_store::FinanceLog::open(db.location.open().unwrap()) {
        Err(StoreError::Corrupt(msg)) => assert!(msg.contains("finance journal: record 13 was altered"), "{msg}"),
        other => panic!("expected corruption, got {:?}", other.map(|_| ())),
    }
}
