//! `ets inclusion` end to end on the demo's registry: the README's walkthrough runs as written,
//! credits beyond Guangdong's offset limit or outside its rules are refused, and bad
//! submissions are refused with every problem named; no refusal writes anything.

mod common;

use common::Ets;
use std::fmt::Write;

fn walkthrough() -> Vec<(String, bool)> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let section = readme.split("## Carbon inclusion with `ets inclusion`").nth(1).expect("section");
    let block = section.split("```sh").nth(1).unwrap().split("```").next().unwrap();
    block
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("ets "))
        .map(|l| (l.split(" #").next().unwrap().trim().to_string(), l.contains("# refused")))
        .collect()
}

/// Arguments of a walkthrough line; the example file is found from the repository root.
fn args(line: &str) -> Vec<String> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../");
    line.split_whitespace().skip(1).map(|a| if a.starts_with("examples/") { format!("{root}{a}") } else { a.to_string() }).collect()
}

fn run(ets: &Ets, line: &str) -> common::Run {
    let a = args(line);
    ets.run(&a.iter().map(String::as_str).collect::<Vec<_>>())
}

impl Ets {
    fn stored(&self) -> String {
        self.rows(&[
            "SELECT seq || ':' || command_id || ':' || hex(hash) FROM journal ORDER BY seq",
            "SELECT seq || ':' || command_id || ':' || hex(hash) FROM finance_journal ORDER BY seq",
        ])
    }
}

fn demo() -> Ets {
    let ets = Ets::new_at("inclusion.db", "2026-04-20");
    ets.ok(&["demo", "--accounts", "300", "--trades", "500"]);
    ets
}

#[test]
fn the_readme_walkthrough_runs_as_written() {
    let ets = Ets::new_at("inclusion.db", "2026-04-20");
    let mut outputs = Vec::new();
    for (line, refused) in walkthrough() {
        let before = ets.stored();
        let r = run(&ets, &line);
        if refused {
            assert_eq!(r.code, 5, "{line}: {}", r.stderr);
            assert!(r.stdout.is_empty());
            assert_eq!(ets.stored(), before, "{line} wrote something");
        } else {
            assert_eq!(r.code, 0, "{line}: {}", r.stderr);
        }
        outputs.push((line, r.stdout, r.stderr));
    }
    let find = |prefix: &str| outputs.iter().find(|(l, _, _)| l.starts_with(prefix)).cloned().unwrap();
    assert!(find("ets inclusion methodologies").1.contains("HOUSEHOLD-FOREST   Household forestry"));
    assert!(find("ets inclusion submit GD-SOLAR-7")
        .1
        .contains("40 record(s) of 10 participant(s) pass the checks: 78 t of credits claimed"));
    let dup = find("ets inclusion submit GD-SOLAR-8").2;
    assert!(
        dup.contains("80 problem(s)")
            && dup.contains("record 1 ('WT-H00-Q1', participant WT-H00): duplicate: its evidence was already used"),
        "{dup}"
    );
    assert!(find("ets inclusion issue").1.contains("78 t of PHCER:SOLAR-ROOF:2025 issued to GD-100019"));
    assert!(find("ets inclusion transfer --from GD-100019 --to GD-100017").2.contains("does not admit institution holders to trading"));
    let surrender = find("ets inclusion surrender").1;
    assert!(
        surrender.contains("GD-100001 surrendered 50 t of PHCER:SOLAR-ROOF:2025 for 2025; offsets now counted: 6,418 t"),
        "{surrender}"
    );
    let report = find("ets inclusion report").1;
    assert!(report.contains("GD     PHCER     12,815    12,787                 12,787"), "{report}");
    let comply = find("ets comply").1;
    assert!(comply.contains("GD-E0001  GD-100001   2,418,965   2,412,597    6,418            0          0  compliant"), "{comply}");
    let audit = ets.ok(&["audit", "verify"]);
    assert!(audit.contains("finance journal ok") && audit.contains("3 inclusion submissions"), "{audit}");
}

/// A household-forestry submission of `households` × 112 mu (100 t each, the cap).
fn forest_file(ets: &Ets, name: &str, households: usize) -> String {
    let mut text = String::from("record,participant,date,quantity,evidence_sha256\n");
    for h in 0..households {
        writeln!(text, "B-{h:05},B{h:05},2025-11-30,112,{:064x}", 0xF0_0000 + h).unwrap();
    }
    let path = ets.path(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn credits_beyond_the_offset_limit_or_outside_the_pilots_rules_are_refused() {
    let ets = demo();
    let file = forest_file(&ets, "forest.csv", 2_400);
    let out = ets.ok(&[
        "inclusion",
        "submit",
        "F-BIG",
        "--as",
        "gd-green-platform",
        "--methodology",
        "HOUSEHOLD-FOREST",
        "--year",
        "2025",
        "--records",
        &file,
    ]);
    assert!(out.contains("240,000 t of credits claimed"), "{out}");
    ets.ok(&["inclusion", "verify", "F-BIG", "--as", "gd-verifier", "--accept"]);
    ets.ok(&["inclusion", "issue", "F-BIG", "--as", "gd-eeb"]);
    let unit = "PHCER:HOUSEHOLD-FOREST:2025";
    ets.ok(&[
        "inclusion",
        "transfer",
        "--from",
        "GD-100019",
        "--to",
        "GD-100001",
        "--unit",
        unit,
        "--quantity",
        "240000",
        "--as",
        "gd-green-platform",
    ]);
    // GD-E0001 verified 2,418,965 t: CCER + PHCER count up to 241,896 t; 6,368 t are in already.
    let surrender = |q: &str| {
        ets.run(&["inclusion", "surrender", "--account", "GD-100001", "--unit", unit, "--quantity", q, "--year", "2025", "--as", "gd-op1"])
    };
    let before = ets.stored();
    let r = surrender("240000");
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert!(
        r.stderr.contains("only 235528 of 240000 t of PHCER:HOUSEHOLD-FOREST:2025 would count for GD 2025 under gd-2024"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("beyond the limit of 10"), "{}", r.stderr);
    assert_eq!(ets.stored(), before);
    assert!(ets
        .ok(&[
            "inclusion",
            "surrender",
            "--account",
            "GD-100001",
            "--unit",
            unit,
            "--quantity",
            "235528",
            "--year",
            "2025",
            "--as",
            "gd-op1"
        ])
        .contains("offsets now counted: 241,896 t"));
    let before = ets.stored();
    let r = surrender("1");
    assert_eq!(r.code, 5);
    assert!(r.stderr.contains("only 0 of 1 t"), "{}", r.stderr);
    assert_eq!(ets.stored(), before);
    // Locality: Guangdong's credits do not count in Beijing (bj-2024 accepts no PHCER).
    let r = ets.run(&[
        "inclusion",
        "surrender",
        "--account",
        "BJ-100001",
        "--unit",
        unit,
        "--quantity",
        "1",
        "--year",
        "2025",
        "--as",
        "bj-op1",
    ]);
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert!(
        r.stderr.contains("does not count for BJ compliance under bj-2024: PHCER offsets are not accepted in this market"),
        "{}",
        r.stderr
    );
    // Not a covered entity's account: no obligation to meet.
    let r = ets.run(&[
        "inclusion",
        "surrender",
        "--account",
        "GD-100019",
        "--unit",
        unit,
        "--quantity",
        "1",
        "--year",
        "2025",
        "--as",
        "gd-green-platform",
    ]);
    assert_eq!(r.code, 5);
    assert!(r.stderr.contains("GD-100019 is not the account of an entity GD covers in 2025"), "{}", r.stderr);
    assert_eq!(ets.stored(), before);
}

#[test]
fn bad_submissions_name_every_problem_and_write_nothing() {
    let ets = demo();
    let before = ets.stored();
    let good = forest_file(&ets, "one.csv", 1);
    let over = ets.path("over.csv");
    std::fs::write(&over, format!("record,participant,date,quantity,evidence_sha256\nX-1,P1,2025-05-01,120,{:064x}\n", 7)).unwrap();
    let bad = ets.path("bad.csv");
    std::fs::write(&bad, "record,participant,date,quantity,evidence_sha256\nX-1,P1,2025-02-30,1,ab\nX-2,P2,2025-03-01,1.2.3,ab\nX-3,P3\n")
        .unwrap();
    let submit = |m: &str, file: &str| {
        ets.run(&["inclusion", "submit", "S-BAD", "--as", "gd-green-platform", "--methodology", m, "--year", "2025", "--records", file])
    };
    let r = submit("SOLAR-WIND", &good);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.stderr.contains("unknown methodology 'SOLAR-WIND' (known: SOLAR-ROOF, APPLIANCE-EFF"), "{}", r.stderr);
    let r = submit("HOUSEHOLD-FOREST", over.to_str().unwrap());
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert!(
        r.stderr.contains("participant P1: 108 t in this submission exceeds HOUSEHOLD-FOREST's cap of 100 t per participant in 2025"),
        "{}",
        r.stderr
    );
    let r = submit("HOUSEHOLD-FOREST", bad.to_str().unwrap());
    assert_eq!(r.code, 3, "{}", r.stderr);
    for says in [
        "bad.csv: row 2, column date",
        "bad.csv: row 3, column quantity: '1.2.3' is not a decimal number",
        "bad.csv: row 4: 2 fields, expected 5",
    ] {
        assert!(r.stderr.contains(says), "'{}' does not say '{says}'", r.stderr);
    }
    let r = ets.run(&["inclusion", "verify", "GD-SOLAR-1", "--as", "gd-green-platform", "--accept"]);
    assert_eq!(r.code, 6, "{}", r.stderr);
    assert_eq!(ets.stored(), before, "a refusal wrote something");
}
