//! `ets finance` end to end: the README's walkthrough runs as written, refusals name what was
//! wrong and write nothing, and the audit replays the finance journal.

mod common;

use common::Ets;

/// The shell lines of a README walkthrough, without the `export` line and comments, and
/// whether each is marked refused.
pub fn walkthrough(section: &str) -> Vec<(String, bool)> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let section = readme.split(section).nth(1).expect("section");
    let block = section.split("```sh").nth(1).unwrap().split("```").next().unwrap();
    block
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("ets "))
        .map(|l| (l.split(" #").next().unwrap().trim().to_string(), l.contains("# refused")))
        .collect()
}

fn args(line: &str) -> Vec<&str> {
    line.split_whitespace().skip(1).collect()
}

impl Ets {
    /// Everything stored that a write would change.
    fn stored(&self) -> String {
        self.rows(&[
            "SELECT seq || ':' || command_id || ':' || hex(hash) FROM journal ORDER BY seq",
            "SELECT seq || ':' || command_id || ':' || hex(hash) FROM finance_journal ORDER BY seq",
        ])
    }
}

#[test]
fn the_readme_walkthrough_runs_as_written() {
    let ets = Ets::new_at("finance.db", "2025-06-02");
    let mut outputs = Vec::new();
    for (line, refused) in walkthrough("## Carbon finance with `ets finance`") {
        let before = ets.stored();
        let r = ets.run(&args(&line));
        if refused {
            assert_eq!(r.code, 5, "{line}: {}", r.stderr);
            assert!(r.stderr.contains("bravo holds 90000 t of CEA:2025 freely, fewer than the 200000 t to pledge"), "{}", r.stderr);
            assert_eq!(ets.stored(), before, "a refusal wrote something");
        } else {
            assert_eq!(r.code, 0, "{line}: {}", r.stderr);
        }
        outputs.push((line, r.stdout));
    }
    let out = |prefix: &str| outputs.iter().find(|(l, _)| l.starts_with(prefix)).map(|(_, o)| o.clone()).unwrap();
    assert!(out("ets finance mark --unit CEA:2025 --close 80.00").contains("pledge P1: MARGIN CALL, top up or repay by 2025-06-06"));
    assert!(out("ets finance top-up").contains("pledge P1: margin call cleared"));
    assert!(out("ets finance end-of-day --date 2025-06-10").contains("repo R1: second leg settled"));
    let expiry = out("ets finance end-of-day --date 2025-06-27");
    assert!(expiry.contains("CEA-2025-F2506: alpha delivered 3,000 t to bravo against ¥238,500.00"), "{expiry}");
    let report = out("ets finance report");
    assert!(report.contains("CN-100002  bravo  CEA:2025     11,000                    11,000  103,000"), "{report}");
    assert!(report.contains("P1      bravo     alpha   CEA:2025      11,000   500,000.00  2025-09-01  active"), "{report}");
    assert!(report.contains("CEA-2025-F2506  CEA:2025  2025-06-27  physical               79.50              0  delivered"), "{report}");
    // Cash is conserved: the deposits, moved between the two parties.
    let v = ets.json(&["finance", "report"]);
    let cash: i64 =
        v["parties"].as_array().unwrap().iter().map(|p| p["cash"].as_str().unwrap().replace([',', '.'], "").parse::<i64>().unwrap()).sum();
    assert_eq!(cash, 2_000_000_000, "¥20m deposited, in fen");
    assert!(out("ets holdings CN-100002").contains("92,000               11,000  103,000"));
    let audit = out("ets audit verify");
    assert!(audit.contains("finance journal ok: 17 records") && audit.contains("every registry instruction is in the registry"), "{audit}");
}

#[test]
fn refusals_name_what_was_wrong_and_write_nothing() {
    let ets = Ets::new_at("finance.db", "2025-06-02");
    let lines = walkthrough("## Carbon finance with `ets finance`");
    for (line, _) in lines.iter().take_while(|(l, _)| !l.starts_with("ets finance pledge")) {
        ets.ok(&args(line));
    }
    let before = ets.stored();
    let cases: [(&[&str], i32, &str); 8] = [
        (
            &[
                "finance",
                "pledge",
                "P9",
                "--lender",
                "alpha",
                "--borrower",
                "bravo",
                "--unit",
                "CEA:2025",
                "--quantity",
                "10",
                "--loan",
                "0",
                "--maturity",
                "2025-09-01",
            ],
            3,
            "loan '0' must be positive",
        ),
        (
            &[
                "finance",
                "pledge",
                "P9",
                "--lender",
                "alpha",
                "--borrower",
                "bravo",
                "--unit",
                "CEA:2025",
                "--quantity",
                "10",
                "--loan",
                "5",
                "--maturity",
                "2025-13-01",
            ],
            3,
            "maturity",
        ),
        (
            &[
                "finance",
                "pledge",
                "P9",
                "--lender",
                "alpha",
                "--borrower",
                "zulu",
                "--unit",
                "CEA:2025",
                "--quantity",
                "10",
                "--loan",
                "5",
                "--maturity",
                "2025-09-01",
            ],
            4,
            "no party 'zulu'",
        ),
        (&["finance", "deposit", "alpha", "5", "--date", "2025-06-01"], 3, "before the desk's date"),
        (&["finance", "order", "--as", "bravo", "--contract", "NOPE", "--side", "buy", "--price", "81", "--contracts", "1"], 4, "NOPE"),
        (
            &["finance", "order", "--as", "bravo", "--contract", "NOPE", "--side", "up", "--price", "81", "--contracts", "1"],
            3,
            "side 'up' must be buy or sell",
        ),
        (&["finance", "repay", "P1", "--amount", "10", "--as", "bravo"], 4, "P1"),
        (&["finance", "init", "--registrar", "cn-auth"], 7, "already set up"),
    ];
    for (a, code, says) in cases {
        let r = ets.run(a);
        assert_eq!(r.code, code, "{a:?}: {}", r.stderr);
        assert!(r.stderr.contains(says), "{a:?}: '{}' does not say '{says}'", r.stderr);
        assert!(r.stdout.is_empty());
        assert_eq!(ets.stored(), before, "{a:?} wrote something");
    }
    // A retry under the same --id is answered as done and writes nothing; another command under it is refused.
    let deposit = ["finance", "deposit", "alpha", "5", "--id", "dep-7"];
    assert!(ets.ok(&deposit).contains("alpha: cash +¥5.00"));
    let after = ets.stored();
    assert!(ets.ok(&deposit).contains("command dep-7 was already carried out"));
    let r = ets.run(&["finance", "deposit", "alpha", "6", "--id", "dep-7"]);
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert!(r.stderr.contains("command id 'dep-7' was already used for another command"));
    assert_eq!(ets.stored(), after);
    // Without a desk, finance commands say how to set one up.
    let fresh = Ets::new_at("empty.db", "2025-06-02");
    fresh.ok(&["init"]);
    let r = fresh.run(&["finance", "deposit", "alpha", "5"]);
    assert_eq!(r.code, 4);
    assert!(r.stderr.contains("run `ets finance init` first"), "{}", r.stderr);
}

#[test]
fn an_altered_finance_record_fails_the_audit() {
    let ets = Ets::new_at("finance.db", "2025-06-02");
    for (line, refused) in walkthrough("## Carbon finance with `ets finance`") {
        if !refused && !line.starts_with("ets audit") {
            ets.ok(&args(&line));
        }
    }
    let conn = rusqlite::Connection::open(&ets.db).unwrap();
    conn.execute("UPDATE finance_journal SET body = CAST(replace(CAST(body AS TEXT), '10000', '10001') AS BLOB) WHERE seq = 7", [])
        .unwrap();
    drop(conn);
    let r = ets.run(&["audit", "verify"]);
    assert_eq!(r.code, 8, "{}", r.stderr);
    assert!(r.stderr.contains("finance journal: record 7 was altered"), "{}", r.stderr);
}

#[test]
fn the_demo_shows_pledges_a_repo_a_forward_and_inclusion_credits_used_in_guangdong() {
    let ets = Ets::new_at("demo.db", "2026-01-10");
    let v: serde_json::Value = serde_json::from_str(&ets.ok(&["--json", "demo", "--accounts", "300", "--trades", "500"])).unwrap();
    let f = &v["finance"];
    let pledges: Vec<&str> = f["pledges"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    assert!(pledges[0].contains("margin call met by a top-up; 22,000 t still pledged"), "{pledges:?}");
    assert!(pledges[1].contains("repaid, 30,000 t released") && pledges[2].contains("margin call unmet, 10,000 t enforced"), "{pledges:?}");
    assert!(f["repo"].as_str().unwrap().ends_with("Settled"));
    assert!(f["forward"].as_str().unwrap().contains("physical delivery") && f["forward"].as_str().unwrap().contains("delivered 6,000 t"));
    let i = &v["inclusion"];
    assert_eq!(i["pilot"], "GD");
    let issued = i["issued_t"].as_u64().unwrap();
    let used: u64 = i["surrendered"].as_array().unwrap().iter().map(|s| s["surrendered_t"].as_u64().unwrap()).sum();
    assert!(issued > 10_000 && used == issued, "{i:#}");
    assert!(i["refused_submission"].as_str().unwrap().contains("duplicate"));
    // The pilot's assessment counts them as offsets, and the entities stay compliant.
    let gd = v["cycle"]["markets"].as_array().unwrap().iter().find(|m| m["market"] == "GD").unwrap().clone();
    let offsets: u64 = gd["entities"].as_array().unwrap().iter().map(|e| e["offsets_t"].as_u64().unwrap()).sum();
    assert_eq!(offsets, used, "{gd:#}");
    assert_eq!(gd["compliant"], gd["assessed"]);
    // Deterministic: a second demo writes the same finance journal.
    let again = Ets::new_at("demo.db", "2026-01-10");
    again.ok(&["demo", "--accounts", "300", "--trades", "500"]);
    let journal = |e: &Ets| e.rows(&["SELECT seq || ':' || command_id || ':' || hex(hash) FROM finance_journal ORDER BY seq"]);
    assert_eq!(journal(&ets), journal(&again));
    assert_eq!(journal(&ets).lines().count() as u64, f["finance_journal_records"].as_u64().unwrap());
}
