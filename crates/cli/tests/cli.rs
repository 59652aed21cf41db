//! The `ets` command as a user runs it: outputs, exit codes, and for every error path a message
//! that says what was wrong and a database that did not change.

mod common;

use common::Ets;
use std::process::Command;

impl Ets {
    fn new() -> Ets {
        Ets::new_at("registry.db", "2025-10-15")
    }

    /// Everything stored, as text: journal chain, query tables, snapshots.
    fn dump(&self) -> String {
        self.rows(&[
            "SELECT seq || ':' || command_id || ':' || hex(hash) FROM journal ORDER BY seq",
            "SELECT account || ':' || unit || ':' || free || ':' || encumbered FROM holdings ORDER BY account, unit",
            "SELECT number || ':' || status || ':' || representatives FROM accounts ORDER BY number",
            "SELECT account_id || ':' || tx || ':' || kind || ':' || quantity FROM postings ORDER BY account_id, tx",
            "SELECT name || ':' || seq FROM projection_marks ORDER BY name",
            "SELECT seq || ':' || hex(state_hash) FROM snapshots ORDER BY seq",
        ])
    }

    /// A registry with the national market and Beijing, three operators, and allowances.
    fn with_registry() -> Ets {
        let ets = Ets::new();
        ets.ok(&["init"]);
        ets.ok(&["market", "add", "CN", "--as", "admin", "--id", "m-cn"]);
        ets.ok(&["market", "add", "BJ", "--as", "admin", "--id", "m-bj"]);
        ets.ok(&[
            "account",
            "open",
            "--market",
            "CN",
            "--kind",
            "operator",
            "--holder",
            "Huaneng Unit 1",
            "--rep",
            "alice",
            "--as",
            "admin",
            "--id",
            "a1",
        ]);
        ets.ok(&[
            "account",
            "open",
            "--market",
            "CN",
            "--kind",
            "operator",
            "--holder",
            "Datang Unit 2",
            "--rep",
            "bob",
            "--as",
            "admin",
            "--id",
            "a2",
        ]);
        ets.ok(&[
            "account",
            "open",
            "--market",
            "BJ",
            "--kind",
            "operator",
            "--holder",
            "Beijing Cement",
            "--rep",
            "carol",
            "--as",
            "admin",
            "--id",
            "a3",
        ]);
        ets.ok(&["issue", "--unit", "CEA:2024", "--quantity", "10000", "--as", "mee", "--id", "i1"]);
        ets.ok(&[
            "allocate",
            "--from",
            "CN-ISSUANCE",
            "--to",
            "CN-100001",
            "--unit",
            "CEA:2024",
            "--quantity",
            "5000",
            "--as",
            "mee",
            "--id",
            "al1",
        ]);
        ets.ok(&[
            "allocate",
            "--from",
            "CN-ISSUANCE",
            "--to",
            "CN-100002",
            "--unit",
            "CEA:2024",
            "--quantity",
            "1000",
            "--as",
            "mee",
            "--id",
            "al2",
        ]);
        ets
    }

    /// Runs a command that must fail: checks the exit code, that the message names what was
    /// wrong, and that nothing in the database changed.
    fn fails(&self, args: &[&str], code: i32, message_parts: &[&str]) {
        let before = self.dump();
        let r = self.run(args);
        assert_eq!(r.code, code, "ets {args:?}: stderr {}", r.stderr);
        for part in message_parts {
            assert!(r.stderr.contains(part), "ets {args:?}: message {:?} lacks {part:?}", r.stderr);
        }
        assert!(r.stdout.is_empty(), "errors print nothing to stdout: {}", r.stdout);
        assert_eq!(self.dump(), before, "ets {args:?} changed the database");
    }
}

#[test]
fn transfer_then_holdings_and_history() {
    let ets = Ets::with_registry();
    let out = ets.ok(&[
        "transfer",
        "--from",
        "CN-100001",
        "--to",
        "CN-100002",
        "--unit",
        "CEA:2024",
        "--quantity",
        "1,200",
        "--as",
        "alice",
        "--id",
        "t1",
    ]);
    assert!(out.contains("accepted transfer 't1'") && out.contains("transaction T4"), "{out}");
    let holdings = ets.ok(&["holdings", "CN-100002", "--blocks"]);
    assert!(holdings.contains("CEA:2024") && holdings.contains("2,200"), "{holdings}");
    // Serial numbers: 1,000 allocated from 5,001-6,000, then 1,200 from 1-1,200.
    assert!(holdings.contains("CN:5001-6000 CN:1-1200"), "{holdings}");
    let json: serde_json::Value = serde_json::from_str(&ets.ok(&["holdings", "CN-100001", "--json"])).unwrap();
    assert_eq!(json["holdings"][0]["free_t"], 3800);
    let history = ets.ok(&["history", "CN-100001"]);
    assert!(history.contains("allocation") && history.contains("-1,200") && history.contains("CEA:2024: 3,800 t"), "{history}");
}

#[test]
fn history_at_a_date_gives_the_balance_then() {
    let ets = Ets::with_registry();
    let later = Command::new(env!("CARGO_BIN_EXE_ets"))
        .args(["--database", ets.db.to_str().unwrap()])
        .args([
            "transfer",
            "--from",
            "CN-100001",
            "--to",
            "CN-100002",
            "--unit",
            "CEA:2024",
            "--quantity",
            "700",
            "--as",
            "alice",
            "--id",
            "later",
        ])
        .env("ETS_CLOCK", "2025-11-20")
        .output()
        .unwrap();
    assert!(later.status.success());
    let then = ets.ok(&["history", "CN-100001", "--at", "2025-11-19", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&then).unwrap();
    assert_eq!(json["balances"][0]["balance_t"], 5000);
    let now: serde_json::Value = serde_json::from_str(&ets.ok(&["history", "CN-100001", "--at", "2025-11-20", "--json"])).unwrap();
    assert_eq!(now["balances"][0]["balance_t"], 4300);
}

#[test]
fn repeating_an_id_with_the_same_content_changes_nothing() {
    let ets = Ets::with_registry();
    let args =
        ["transfer", "--from", "CN-100001", "--to", "CN-100002", "--unit", "CEA:2024", "--quantity", "10", "--as", "alice", "--id", "same"];
    ets.ok(&args);
    let before = ets.dump();
    let again = ets.ok(&args);
    assert!(again.contains("already applied") && again.contains("transaction T4"), "{again}");
    assert_eq!(ets.dump(), before);
}

#[test]
fn error_unknown_account() {
    let ets = Ets::with_registry();
    ets.fails(
        &["transfer", "--from", "CN-100001", "--to", "CN-999999", "--unit", "CEA:2024", "--quantity", "10", "--as", "alice", "--id", "x"],
        4,
        &["unknown account 'CN-999999'"],
    );
    ets.fails(&["holdings", "CN-424242"], 4, &["unknown account 'CN-424242'"]);
}

#[test]
fn error_insufficient_holdings() {
    let ets = Ets::with_registry();
    ets.fails(
        &["transfer", "--from", "CN-100002", "--to", "CN-100001", "--unit", "CEA:2024", "--quantity", "1001", "--as", "bob", "--id", "x"],
        5,
        &["insufficient holdings", "CN-100002", "1,000 t of CEA:2024 free", "1,001 t requested"],
    );
    ets.fails(
        &["surrender", "--account", "CN-100002", "--unit", "CEA:2024", "--quantity", "5000", "--year", "2024", "--as", "bob", "--id", "y"],
        5,
        &["insufficient holdings"],
    );
}

#[test]
fn error_wrong_market() {
    let ets = Ets::with_registry();
    ets.fails(
        &["transfer", "--from", "CN-100001", "--to", "BJ-100001", "--unit", "CEA:2024", "--quantity", "10", "--as", "alice", "--id", "x"],
        5,
        &["wrong market", "CEA:2024 was issued by CN", "BJ-100001", "market BJ"],
    );
    ets.fails(
        &["issue", "--unit", "BEA:2024", "--quantity", "10", "--as", "mee", "--id", "y"],
        6,
        &["mee is not an authority of market BJ"],
    );
}

#[test]
fn error_malformed_quantity() {
    let ets = Ets::with_registry();
    for (quantity, why) in
        [("12.5", "decimal point"), ("-3", "negative"), ("0", "zero"), ("ten", "'t'"), ("99999999999999999999", "too large")]
    {
        ets.fails(
            &[
                "transfer",
                "--from",
                "CN-100001",
                "--to",
                "CN-100002",
                "--unit",
                "CEA:2024",
                "--quantity",
                quantity,
                "--as",
                "alice",
                "--id",
                "x",
            ],
            3,
            &[&format!("quantity '{quantity}'"), why],
        );
    }
    ets.fails(
        &["transfer", "--from", "CN-100001", "--to", "CN-100002", "--unit", "CEA-2024", "--quantity", "5", "--as", "alice", "--id", "x"],
        3,
        &["unit 'CEA-2024' must be CODE:VINTAGE"],
    );
}

#[test]
fn error_reused_id_with_other_content() {
    let ets = Ets::with_registry();
    ets.ok(&[
        "transfer",
        "--from",
        "CN-100001",
        "--to",
        "CN-100002",
        "--unit",
        "CEA:2024",
        "--quantity",
        "10",
        "--as",
        "alice",
        "--id",
        "t-1",
    ]);
    ets.fails(
        &["transfer", "--from", "CN-100001", "--to", "CN-100002", "--unit", "CEA:2024", "--quantity", "11", "--as", "alice", "--id", "t-1"],
        7,
        &["command id 't-1' was already used", "for a different command"],
    );
}

#[test]
fn error_closed_account() {
    let ets = Ets::with_registry();
    ets.ok(&[
        "account",
        "open",
        "--market",
        "CN",
        "--kind",
        "operator",
        "--holder",
        "Closing Plant",
        "--rep",
        "dan",
        "--as",
        "admin",
        "--id",
        "a4",
    ]);
    ets.ok(&["account", "status", "CN-100003", "closed", "--as", "admin", "--id", "close"]);
    ets.fails(
        &["transfer", "--from", "CN-100001", "--to", "CN-100003", "--unit", "CEA:2024", "--quantity", "10", "--as", "alice", "--id", "x"],
        5,
        &["account CN-100003 is closed"],
    );
    // An account with holdings cannot be closed.
    ets.fails(&["account", "status", "CN-100001", "closed", "--as", "admin", "--id", "y"], 5, &["CN-100001 still holds 5,000 units"]);
}

#[test]
fn error_not_a_representative() {
    let ets = Ets::with_registry();
    ets.fails(
        &["transfer", "--from", "CN-100001", "--to", "CN-100002", "--unit", "CEA:2024", "--quantity", "10", "--as", "bob", "--id", "x"],
        6,
        &["bob is not a representative of account CN-100001"],
    );
}

#[test]
fn missing_database_is_not_created() {
    let ets = Ets::new();
    let r = ets.run(&["holdings", "CN-100001"]);
    assert_eq!(r.code, 4);
    assert!(r.stderr.contains("no registry at") && r.stderr.contains("ets init"), "{}", r.stderr);
    assert!(!ets.db.exists());
}

#[test]
fn json_errors_are_machine_readable() {
    let ets = Ets::with_registry();
    let r = ets.run(&[
        "--json",
        "transfer",
        "--from",
        "CN-100001",
        "--to",
        "CN-9",
        "--unit",
        "CEA:2024",
        "--quantity",
        "1",
        "--as",
        "alice",
        "--id",
        "j",
    ]);
    assert_eq!(r.code, 4);
    let json: serde_json::Value = serde_json::from_str(r.stderr.trim()).unwrap();
    assert_eq!(json["error"]["kind"], "notfound");
    assert_eq!(json["error"]["message"], "unknown account 'CN-9'");
}

#[test]
fn audit_verify_detects_an_altered_record() {
    let ets = Ets::with_registry();
    let ok = ets.ok(&["audit", "verify"]);
    assert!(ok.contains("audit ok: 9 journal records"), "{ok}");
    {
        let conn = rusqlite::Connection::open(&ets.db).unwrap();
        let mut body: Vec<u8> = conn.query_row("SELECT body FROM journal WHERE seq = 7", [], |r| r.get(0)).unwrap();
        let last = body.len() - 1;
        body[last] ^= 0x40;
        conn.execute("UPDATE journal SET body = ?1 WHERE seq = 7", [body]).unwrap();
    }
    let r = ets.run(&["audit", "verify"]);
    assert_eq!(r.code, 8, "{}", r.stderr);
    assert!(r.stderr.contains("record 7 was altered"), "{}", r.stderr);
    // Every other command refuses to work on the altered registry.
    let r = ets.run(&["holdings", "CN-100001"]);
    assert_eq!(r.code, 8);
    assert!(r.stderr.contains("integrity failure") && r.stderr.contains("ets audit verify"), "{}", r.stderr);
}

#[test]
fn pending_freeze_and_reversal_from_the_command_line() {
    let ets = Ets::with_registry();
    ets.ok(&[
        "pending",
        "create",
        "pl-1",
        "--from",
        "CN-100001",
        "--to",
        "CN-100002",
        "--unit",
        "CEA:2024",
        "--quantity",
        "300",
        "--purpose",
        "pledge",
        "--as",
        "alice",
        "--id",
        "p1",
    ]);
    ets.ok(&[
        "freeze",
        "fz-1",
        "--account",
        "CN-100001",
        "--unit",
        "CEA:2024",
        "--quantity",
        "200",
        "--order",
        "court-7",
        "--as",
        "mee",
        "--id",
        "f1",
    ]);
    let json: serde_json::Value = serde_json::from_str(&ets.ok(&["holdings", "CN-100001", "--json"])).unwrap();
    assert_eq!(json["holdings"][0]["free_t"], 4500);
    assert_eq!(json["holdings"][0]["encumbered_t"], 500);
    ets.fails(
        &["transfer", "--from", "CN-100001", "--to", "CN-100002", "--unit", "CEA:2024", "--quantity", "4501", "--as", "alice", "--id", "x"],
        5,
        &["4,500 t of CEA:2024 free (500 more pending or frozen)"],
    );
    ets.ok(&["pending", "void", "pl-1", "--as", "alice", "--id", "v1"]);
    ets.ok(&["unfreeze", "fz-1", "--as", "mee", "--id", "u1"]);
    ets.ok(&["reverse", "T3", "--reason", "allocated to the wrong unit", "--as", "mee", "--id", "r1"]);
    let json: serde_json::Value = serde_json::from_str(&ets.ok(&["holdings", "CN-100002", "--json"])).unwrap();
    assert_eq!(json["holdings"], serde_json::json!([]));
    ets.ok(&["audit", "verify"]);
}

#[test]
fn demo_runs_and_its_registry_verifies() {
    let ets = Ets::new();
    let out = ets.ok(&["demo", "--accounts", "300", "--trades", "500"]);
    for code in ["CN", "BJ", "TJ", "SH", "CQ", "HB", "GD", "SZ", "FJ"] {
        assert!(out.lines().any(|l| l.starts_with(code)), "market {code} missing from summary:\n{out}");
    }
    assert!(out.contains("full replay matches the live state"), "{out}");
    assert!(out.contains("10/10 planted anomalies found; 0 on entities without a plant"), "{out}");
    let verify = ets.ok(&["audit", "verify"]);
    assert!(verify.contains("audit ok"));
    assert!(verify.contains("MRV journal ok"), "{verify}");
    // Running it again replaces its own registry.
    ets.ok(&["demo", "--accounts", "300", "--trades", "500"]);
}

#[test]
fn demo_never_replaces_a_registry_it_did_not_make() {
    let ets = Ets::with_registry();
    let before = ets.dump();
    let r = ets.run(&["demo", "--accounts", "300"]);
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert!(r.stderr.contains("is not a registry made by `ets demo`"), "{}", r.stderr);
    assert_eq!(ets.dump(), before);
}

#[test]
fn malformed_year_is_invalid_input() {
    let ets = Ets::with_registry();
    ets.fails(
        &["surrender", "--account", "CN-100001", "--unit", "CEA:2024", "--quantity", "1", "--year", "24x", "--as", "alice", "--id", "y"],
        3,
        &["year '24x' must be a year"],
    );
    ets.fails(
        &["market", "cap", "CN", "--vintage", "-1", "--tonnes", "5", "--as", "mee", "--id", "c"],
        3,
        &["vintage '-1' must be a year"],
    );
}

/// The same seed gives the same registry, to the hash, on SQLite and on PostgreSQL.
#[test]
fn demo_is_deterministic_across_backends() {
    let head = |out: &str| {
        let line = |prefix: &str| out.lines().find(|l| l.trim_start().starts_with(prefix)).map(str::to_string).expect("head hash line");
        (line("head hash"), line("MRV journal head"))
    };
    let ets = Ets::new();
    let sqlite = head(&ets.ok(&["demo", "--accounts", "300", "--trades", "500", "--seed", "7"]));
    let again = Ets::new();
    assert_eq!(head(&again.ok(&["demo", "--accounts", "300", "--trades", "500", "--seed", "7"])), sqlite);
    if std::env::var("ETS_SKIP_POSTGRES").is_ok_and(|v| v == "1") {
        return;
    }
    let url = std::env::var("ETS_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let schema = format!("ets_cli_demo_{}", std::process::id());
    let output = Command::new(env!("CARGO_BIN_EXE_ets"))
        .args(["--database", &url, "--schema", &schema, "demo", "--accounts", "300", "--trades", "500", "--seed", "7"])
        .env_remove("ETS_DATABASE_URL")
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    if let Ok(mut client) = postgres_client(&url) {
        let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"));
    }
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(head(&stdout), sqlite, "PostgreSQL and SQLite registries differ");
}

fn postgres_client(url: &str) -> Result<postgres::Client, postgres::Error> {
    postgres::Client::connect(url, postgres::NoTls)
}
