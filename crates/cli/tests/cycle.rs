//! The compliance cycle from the command line: rulebook checks, a sandbox run that writes
//! nothing, migration from a pilot to the national market under each treatment, and the demo's
//! full cycle.

mod common;

use common::{Ets, Run};
use serde_json::Value;

impl Ets {
    fn new() -> Ets {
        Ets::new_at("ets.db", "2026-01-10")
    }

    /// Everything stored that a write would change.
    fn dump(&self) -> String {
        self.rows(&[
            "SELECT seq || ':' || command_id || ':' || hex(hash) FROM journal ORDER BY seq",
            "SELECT seq || ':' || command_id || ':' || hex(hash) FROM mrv_journal ORDER BY seq",
            "SELECT account || ':' || unit || ':' || free || ':' || encumbered FROM holdings ORDER BY account, unit",
        ])
    }

    fn held(&self, account: &str) -> Vec<(String, u64)> {
        let v = self.json(&["holdings", account]);
        v["holdings"].as_array().unwrap().iter().map(|h| (h["unit"].as_str().unwrap().to_string(), h["free_t"].as_u64().unwrap())).collect()
    }
}

fn demo() -> Ets {
    let ets = Ets::new();
    ets.ok(&["demo", "--accounts", "300", "--trades", "500"]);
    ets
}

#[test]
fn the_demo_runs_a_full_cycle() {
    let ets = Ets::new();
    let v: Value = serde_json::from_str(&ets.ok(&["--json", "demo", "--accounts", "300", "--trades", "500"])).unwrap();
    let c = &v["cycle"];
    assert_eq!(c["rulebook"], "cn-power-2025-2026-draft");
    assert!(c["allocated_t"].as_u64().unwrap() > 0);
    // Two entities default: they are short, fined at 5 × ¥74.63 a tonne and lose it next year.
    let short: Vec<&Value> =
        c["entities"].as_array().unwrap().iter().filter(|e| e["shortfall_t"].as_u64().is_some_and(|s| s > 0)).collect();
    assert_eq!(short.len(), 2, "{c:#}");
    for e in &short {
        let s = e["shortfall_t"].as_i64().unwrap();
        assert_eq!(e["fine_fen"].as_i64().unwrap(), s * 5 * 7_463);
        assert_eq!(e["next_year_deduction_t"].as_i64().unwrap(), s);
    }
    assert_eq!(c["compliant"].as_u64().unwrap() + 2, c["assessed"].as_u64().unwrap());
    // A compliance report for every market, each under its own rulebook.
    let markets = c["markets"].as_array().unwrap();
    assert_eq!(
        markets.iter().map(|m| m["market"].as_str().unwrap()).collect::<Vec<_>>(),
        ["CN", "BJ", "TJ", "SH", "CQ", "HB", "GD", "SZ", "FJ"]
    );
    assert_eq!(markets[2]["rulebook"], "tj-2025");
    assert!(markets.iter().filter(|m| m["market"] != "SZ").all(|m| m["assessed"].as_u64().unwrap() > 0), "{markets:#?}");
    // The migrant is covered once a year, by Tianjin to 2024 and by the national market from 2025.
    let cov = ets.json(&["mrv", "coverage", "list", "--entity", "TJ-E0001"]);
    let cov = cov.as_array().unwrap();
    assert_eq!(cov.len(), 2);
    assert_eq!((cov[0]["coverage"]["market"].as_str(), cov[0]["coverage"]["to_year"].as_i64()), (Some("TJ"), Some(2024)));
    assert_eq!((cov[1]["coverage"]["market"].as_str(), cov[1]["coverage"]["from_year"].as_i64()), (Some("CN"), Some(2025)));
    // The stored cycle agrees with a fresh assessment, and everything still audits.
    let comply = ets.json(&["comply", "--rulebook", "cn-power-2025-2026-draft", "--year", "2025", "--price", "74.63"]);
    assert_eq!(comply["compliant"], c["compliant"]);
    let audit = ets.ok(&["audit", "verify"]);
    assert!(audit.contains("audit ok") && audit.contains("MRV journal ok"), "{audit}");
}

#[test]
fn a_sandbox_run_leaves_the_live_state_unchanged() {
    let ets = demo();
    let before = ets.dump();
    let hash = |e: &Ets| e.json(&["audit", "verify"])["state_hash"].as_str().unwrap().to_string();
    let state = hash(&ets);
    let v = ets.json(&[
        "sandbox",
        "run",
        "--rulebook",
        "cn-power-2025-2026-draft",
        "--year",
        "2025",
        "--set",
        "allocation.gap_cap=\"0.10\"",
        "--set",
        "allocation.benchmarks.2025.cat_i=\"0.8500\"",
        "--price",
        "74.63",
    ]);
    assert!(
        v["experiment"]["allocated_t"].as_u64().unwrap() > v["actual"]["allocated_t"].as_u64().unwrap(),
        "a higher benchmark allocates more: {v:#}"
    );
    assert_eq!(ets.dump(), before, "the sandbox wrote to the database");
    assert_eq!(hash(&ets), state);
    // A change that breaks the rulebook is refused with the key named, and still writes nothing.
    let r = ets.run(&["sandbox", "run", "--rulebook", "cn-power-2025-2026-draft", "--year", "2025", "--set", "allocation.gap_cap=\"1.5\""]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("allocation.gap_cap"), "{}", r.stderr);
    assert_eq!(ets.dump(), before);
}

#[test]
fn rulebook_check_names_the_file_the_key_and_the_problem() {
    let ets = Ets::new();
    let out = ets.ok(&["rulebook", "check", "cn-power-2023-2024", "tj-2025"]);
    assert!(out.contains("cn-power-2023-2024: ok"), "{out}");
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../rules/rulebooks/cn-power-2023-2024.toml")).unwrap();
    let bad = ets.dir.path().join("bad.toml");
    std::fs::write(&bad, text.replacen("gap_cap = \"0.20\"", "gap_cap = 0.2", 1)).unwrap();
    let r = ets.run(&["rulebook", "check", bad.to_str().unwrap()]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("bad.toml") && r.stderr.contains("allocation.gap_cap"), "{}", r.stderr);
    let diff = ets.json(&["rulebook", "diff", "cn-power-2023-2024", "cn-power-2025-2026-draft"]);
    assert!(diff.as_array().unwrap().iter().any(|d| d["key"] == "allocation.pre_allocation.share"), "{diff:#}");
}

/// A registry with CN and TJ, a Tianjin entity holding Tianjin allowances, covered by Tianjin.
fn pilot_entity(treatment: &str) -> (Ets, String) {
    let ets = Ets::new();
    ets.ok(&["init"]);
    ets.ok(&["market", "add", "CN", "--as", "admin"]);
    ets.ok(&["market", "add", "TJ", "--as", "admin"]);
    ets.ok(&["account", "open", "--market", "TJ", "--kind", "operator", "--holder", "Tianjin Power", "--rep", "tom", "--as", "admin"]);
    ets.ok(&[
        "account",
        "open",
        "--market",
        "CN",
        "--kind",
        "operator",
        "--holder",
        "Tianjin Power (national)",
        "--rep",
        "tom",
        "--as",
        "admin",
    ]);
    // Tianjin's authority in data/markets-china.json.
    let tj_authority = "tj-eeb".to_string();
    ets.ok(&["issue", "--unit", "TJEA:2024", "--quantity", "1000", "--as", &tj_authority]);
    ets.ok(&["allocate", "--from", "TJ-ISSUANCE", "--to", "TJ-100001", "--unit", "TJEA:2024", "--quantity", "700", "--as", &tj_authority]);
    ets.ok(&["mrv", "official", "add", "gov", "--as", "gov"]);
    ets.ok(&[
        "mrv",
        "entity",
        "add",
        "TJ-E1",
        "--name",
        "Tianjin Power",
        "--sector",
        "power",
        "--province",
        "Tianjin",
        "--market",
        "TJ",
        "--rep",
        "tom",
        "--as",
        "gov",
    ]);
    ets.ok(&["mrv", "coverage", "add", "TJ-E1", "--market", "TJ", "--from", "2016", "--account", "TJ-100001", "--as", "gov"]);
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../rules/rulebooks/tj-2025.toml")).unwrap();
    let rulebook = ets.dir.path().join("tj.toml");
    std::fs::write(&rulebook, text.replacen("treatment = \"withdraw\"", treatment, 1)).unwrap();
    (ets, rulebook.to_str().unwrap().to_string())
}

fn migrate(ets: &Ets, rulebook: &str) -> Run {
    ets.run(&[
        "market",
        "migrate",
        "--entity",
        "TJ-E1",
        "--from",
        "TJ",
        "--to",
        "CN",
        "--year",
        "2025",
        "--account",
        "CN-100001",
        "--rulebook",
        rulebook,
        "--reason",
        "national coverage",
        "--as",
        "gov",
        "--from-authority",
        "tj-eeb",
        "--to-authority",
        "mee",
    ])
}

#[test]
fn migration_withdraws_the_pilot_allowances_once() {
    let (ets, rulebook) = pilot_entity("treatment = \"withdraw\"");
    let r = migrate(&ets, &rulebook);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(ets.held("TJ-100001").iter().all(|(_, q)| *q == 0), "{:?}", ets.held("TJ-100001"));
    assert_eq!(ets.held("TJ-CANCELLATION"), vec![("TJEA:2024".to_string(), 700)]);
    // Running it again changes nothing (every step is answered as done).
    let before = ets.dump();
    let again = migrate(&ets, &rulebook);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(ets.dump(), before);
    // Units are conserved: issued = circulating + surrendered + cancelled, checked by the audit.
    assert!(ets.ok(&["audit", "verify"]).contains("audit ok"));
    // Tianjin cannot cover the entity for power CO2 again while the national market does.
    let r = ets.run(&["mrv", "coverage", "add", "TJ-E1", "--market", "TJ", "--from", "2025", "--as", "gov"]);
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert!(r.stderr.contains("already covered in CN"), "{}", r.stderr);
}

#[test]
fn migration_converts_or_keeps_pilot_allowances_as_the_rulebook_says() {
    let (ets, rulebook) = pilot_entity("treatment = \"convert\"\nrate = \"0.5\"");
    // Without the national authority nothing is written at all (not even the withdrawal).
    let before = ets.dump();
    let r = ets.run(&[
        "market",
        "migrate",
        "--entity",
        "TJ-E1",
        "--from",
        "TJ",
        "--to",
        "CN",
        "--year",
        "2025",
        "--account",
        "CN-100001",
        "--rulebook",
        &rulebook,
        "--reason",
        "national coverage",
        "--as",
        "gov",
        "--from-authority",
        "tj-eeb",
    ]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert_eq!(ets.dump(), before);
    let r = migrate(&ets, &rulebook);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(ets.held("TJ-CANCELLATION"), vec![("TJEA:2024".to_string(), 700)]);
    assert_eq!(ets.held("CN-100001"), vec![("CEA:2025".to_string(), 350)], "700 × 0.5 national allowances of the first national year");
    // Running it again converts nothing more.
    assert_eq!(migrate(&ets, &rulebook).code, 0);
    assert_eq!(ets.held("CN-100001"), vec![("CEA:2025".to_string(), 350)]);
    assert!(ets.ok(&["audit", "verify"]).contains("audit ok"));

    let (ets, rulebook) = pilot_entity("treatment = \"carry_over\"\nyears = 3");
    let r = migrate(&ets, &rulebook);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(ets.held("TJ-100001"), vec![("TJEA:2024".to_string(), 700)], "kept in Tianjin");
    assert!(ets.held("CN-100001").is_empty());
}

#[test]
fn industry_and_pilot_engines_take_their_inputs_from_a_file() {
    let ets = Ets::new();
    ets.ok(&["init"]);
    let data = ets.dir.path().join("lines.json");
    // Two clinker lines of 100,000 t at intensities 0.80 and 0.90: BP = 0.85, α = ±0.0088...
    std::fs::write(
        &data,
        r#"[{"unit": "L1", "entity": "CEM-1", "sector": "cement", "verified_t": "100000", "intensity": "0.80"},
            {"unit": "L2", "entity": "CEM-2", "sector": "cement", "verified_t": "100000", "intensity": "0.90"}]"#,
    )
    .unwrap();
    let v = ets.json(&["allocate", "--rulebook", "cn-industry-2025-2026-draft", "--year", "2026", "--data", data.to_str().unwrap()]);
    let finals: Vec<u64> = v["entities"].as_array().unwrap().iter().map(|e| e["final_t"].as_u64().unwrap()).collect();
    assert_eq!(finals, vec![100_882, 99_117], "{v:#}");
    // Tianjin grandfathering with the 0.98 control factor: mean(100,000, 120,000) × 0.98.
    std::fs::write(&data, r#"[{"entity": "TJ-1", "sector": "chemicals", "base_emissions_t": ["100000", "120000"]}]"#).unwrap();
    let v = ets.json(&["allocate", "--rulebook", "tj-2025", "--year", "2025", "--data", data.to_str().unwrap()]);
    assert_eq!(v["entities"][0]["final_t"].as_u64(), Some(107_800), "{v:#}");
    assert_eq!(v["cap"]["government_reserve_t"].as_u64(), Some(4_500_000), "6% of the 75 Mt cap");
    // Without --data the industry engine says what it needs; outside the rulebook's years it refuses.
    let r = ets.run(&["allocate", "--rulebook", "cn-industry-2025-2026-draft", "--year", "2026"]);
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("--data"), "{}", r.stderr);
    let r = ets.run(&["allocate", "--rulebook", "tj-2025", "--year", "2030", "--data", data.to_str().unwrap()]);
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("covers 2025–2025, not 2030"), "{}", r.stderr);
}

#[test]
fn carry_over_converts_old_vintages_by_the_formula() {
    let ets = Ets::new();
    let at = |clock: &str, args: &[&str]| {
        let r = ets.run_at(clock, args);
        assert_eq!(r.code, 0, "ets {args:?}: {}", r.stderr);
    };
    at("2024-02-01", &["init"]);
    at("2024-02-01", &["market", "add", "CN", "--as", "admin"]);
    for holder in ["Seller", "Buyer", "Small"] {
        at("2024-02-01", &["account", "open", "--market", "CN", "--kind", "operator", "--holder", holder, "--rep", "rep", "--as", "admin"]);
    }
    at("2024-02-01", &["issue", "--unit", "CEA:2023", "--quantity", "105000", "--as", "mee"]);
    at(
        "2024-02-01",
        &["allocate", "--from", "CN-ISSUANCE", "--to", "CN-100001", "--unit", "CEA:2023", "--quantity", "100000", "--as", "mee"],
    );
    at(
        "2024-02-01",
        &["allocate", "--from", "CN-ISSUANCE", "--to", "CN-100003", "--unit", "CEA:2023", "--quantity", "5000", "--as", "mee"],
    );
    // Inside the window (2024-01-01 to 2025-12-31): 4,000 sold, 1,000 bought back: NS = 3,000.
    at("2025-06-01", &["transfer", "--from", "CN-100001", "--to", "CN-100002", "--unit", "CEA:2023", "--quantity", "4000", "--as", "rep"]);
    at("2025-07-01", &["transfer", "--from", "CN-100002", "--to", "CN-100001", "--unit", "CEA:2023", "--quantity", "1000", "--as", "rep"]);
    // A sale reversed by the authority is no sale.
    let r = ets.run_at(
        "2025-08-01",
        &["--json", "transfer", "--from", "CN-100001", "--to", "CN-100002", "--unit", "CEA:2023", "--quantity", "2000", "--as", "rep"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let tx = serde_json::from_str::<Value>(&r.stdout).unwrap()["tx"].as_u64().unwrap();
    at("2025-08-02", &["reverse", &format!("T{tx}"), "--reason", "entered twice", "--as", "mee"]);
    // After the window: not counted.
    at("2026-01-05", &["transfer", "--from", "CN-100001", "--to", "CN-100002", "--unit", "CEA:2023", "--quantity", "500", "--as", "rep"]);
    // T = 10,000 + 1.5 × 3,000 = 14,500 (holdings 96,500 do not bind).
    let v = ets.json(&["carry-over", "--rulebook", "cn-power-2023-2024", "--account", "CN-100001", "--as", "mee"]);
    assert_eq!((v["net_sales_t"].as_i64(), v["carried_over_t"].as_u64()), (Some(3_000), Some(14_500)), "{v:#}");
    assert_eq!(ets.held("CN-100001"), vec![("CEA:2023".to_string(), 82_000), ("CEA:2025".to_string(), 14_500)]);
    // Holdings bind: 5,000 held, T = 10,000 → 5,000.
    let v = ets.json(&["carry-over", "--rulebook", "cn-power-2023-2024", "--account", "CN-100003", "--as", "mee"]);
    assert_eq!(v["carried_over_t"].as_u64(), Some(5_000));
    assert_eq!(ets.held("CN-CANCELLATION"), vec![("CEA:2023".to_string(), 19_500)]);
    assert!(ets.ok(&["audit", "verify"]).contains("audit ok"));
    // Only the market authority converts.
    let r = ets.run(&["carry-over", "--rulebook", "cn-power-2023-2024", "--account", "CN-100002", "--as", "rep"]);
    assert_eq!(r.code, 6, "{}", r.stderr);
}
