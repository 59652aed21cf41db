//! `ets mrv` as a user runs it: registration, a plan, import (all of it or none of it),
//! corrections, the report's verification, export, evidence and tamper detection, and the
//! demo's anomaly queue.

mod common;

use common::Ets;
use serde_json::Value;
use std::path::Path;

impl Ets {
    fn new() -> Ets {
        Ets::new_at("mrv.db", "2025-03-01")
    }

    /// Runs a command that must fail with `code`, mention every `needle`, and leave the MRV
    /// journal and evidence store exactly as they were.
    fn fails(&self, args: &[&str], code: i32, needles: &[&str]) -> String {
        let before = self.dump();
        let r = self.run_at("2025-03-01", args);
        assert_eq!(r.code, code, "ets {args:?}: stdout {} stderr {}", r.stdout, r.stderr);
        for n in needles {
            assert!(r.stderr.contains(n), "ets {args:?}: expected '{n}' in: {}", r.stderr);
        }
        assert_eq!(self.dump(), before, "ets {args:?} changed the database");
        r.stderr
    }

    fn dump(&self) -> String {
        self.rows(&[
            "SELECT seq || ':' || command_id || ':' || hex(hash) FROM mrv_journal ORDER BY seq",
            "SELECT sha256 || ':' || name || ':' || length(content) FROM mrv_evidence ORDER BY sha256",
        ])
    }

    /// An official, an entity with one coal unit, a verifier, and the entity's 2024 plan.
    fn registered() -> Ets {
        let ets = Ets::new();
        ets.ok(&["mrv", "official", "add", "gov", "--as", "gov"]);
        ets.ok(&[
            "mrv",
            "entity",
            "add",
            "GD-E1",
            "--name",
            "Pearl Power",
            "--sector",
            "power",
            "--province",
            "Guangdong",
            "--market",
            "CN",
            "--rep",
            "alice",
            "--as",
            "gov",
        ]);
        ets.ok(&["mrv", "installation", "add", "P1", "--entity", "GD-E1", "--name", "Plant 1", "--as", "alice"]);
        ets.ok(&[
            "mrv",
            "unit",
            "add",
            "U1",
            "--installation",
            "P1",
            "--kind",
            "generating-unit",
            "--capacity",
            "600",
            "--category",
            "I",
            "--as",
            "alice",
        ]);
        ets.ok(&["mrv", "verifier", "add", "V1", "--staff", "vera", "--as", "gov"]);
        let plan = ets.path("plan.json");
        ets.ok(&["mrv", "template", "plan", "--output", plan.to_str().unwrap()]);
        let mut p: Value = serde_json::from_str(&std::fs::read_to_string(&plan).unwrap()).unwrap();
        p["entity"] = "GD-E1".into();
        p["year"] = 2024.into();
        let streams = p["source_streams"].as_array_mut().unwrap();
        streams.truncate(1);
        streams[0]["unit"] = "U1".into();
        let meter = p["instruments"][0]["id"].clone();
        p["source_streams"][0]["parameters"][0]["determination"]["instrument"] = meter;
        p["instruments"].as_array_mut().unwrap().truncate(1);
        std::fs::write(&plan, serde_json::to_string_pretty(&p).unwrap()).unwrap();
        ets.ok(&["mrv", "plan", "set", plan.to_str().unwrap(), "--as", "alice", "--id", "plan-1"]);
        ets
    }
}

const HEADER: &str = "entity,unit,source_stream,year,month,fuel,quantity_t,ncv_gj_per_t,carbon_content_tc_per_gj,lab_report_id,report_date,sample_date,oxidation_factor";

fn row(month: u32, quantity: u64) -> String {
    format!(
        "GD-E1,U1,coal,2024,{month},coal,{quantity},20.{month:02},0.02{},LAB-24{month:02},2024-{month:02}-28,2024-{month:02}-10,0.99",
        60 + month
    )
}

fn write_csv(path: &Path, rows: &[String]) {
    std::fs::write(path, format!("{HEADER}\n{}\n", rows.join("\n"))).unwrap();
}

fn year_rows() -> Vec<String> {
    (1..=12).map(|m| row(m, 100_000 + u64::from(m) * 1_000)).collect()
}

#[test]
fn a_year_from_import_to_verified_report() {
    let ets = Ets::registered();
    let csv = ets.path("year.csv");
    write_csv(&csv, &year_rows());
    let evidence = ets.path("lab-2024.pdf");
    std::fs::write(&evidence, b"%PDF lab reports 2024").unwrap();
    let out = ets.ok_at(
        "2024-12-20",
        &["mrv", "import", csv.to_str().unwrap(), "--evidence", evidence.to_str().unwrap(), "--as", "alice", "--id", "imp-1"],
    );
    assert!(out.contains("12 submission(s)"), "{out}");
    // Retrying the same import changes nothing.
    let again = ets.ok_at(
        "2024-12-21",
        &["mrv", "import", csv.to_str().unwrap(), "--evidence", evidence.to_str().unwrap(), "--as", "alice", "--id", "imp-1"],
    );
    assert!(again.contains("already imported"), "{again}");

    let calc = ets.json(&["mrv", "calculate", "--entity", "GD-E1", "--year", "2024"]);
    let total = calc["total_co2_t"].as_str().unwrap().to_string();
    // Σ quantity × NCV × CC × 0.99 × 44/12 over the months, by hand for January:
    // 101000 × 20.01 × 0.0261 × 0.99 → carbon 52221.6..., the file's calculation agrees.
    let by_file = ets.json(&["mrv", "calculate", "--file", csv.to_str().unwrap()]);
    assert_eq!(by_file["total_co2_t"].as_str().unwrap(), total, "stored and file calculations agree");

    // Out of order and unauthorised steps are refused with their own exit codes.
    ets.fails(&["mrv", "accept", "R1", "--as", "gov", "--id", "x1"], 4, &["no report 'R1'"]);
    ets.fails(
        &["mrv", "submit", "R1", "--entity", "GD-E1", "--year", "2024", "--as", "vera", "--id", "x2"],
        6,
        &["only its representatives"],
    );
    ets.ok(&["mrv", "submit", "R1", "--entity", "GD-E1", "--year", "2024", "--as", "alice", "--id", "s1"]);
    ets.fails(&["mrv", "accept", "R1", "--as", "gov", "--id", "x3"], 5, &["awaiting a verifier"]);
    ets.ok(&["mrv", "verify", "assign", "R1", "--verifier", "V1", "--as", "alice", "--id", "s2"]);
    ets.fails(&["mrv", "verify", "opinion", "R1", "--as", "alice", "--id", "x4"], 6, &["only staff of the assigned verifier"]);
    ets.ok(&["mrv", "verify", "finding", "R1", "--misstatement", "-1200", "--description", "meter drift", "--as", "vera", "--id", "s3"]);
    ets.fails(&["mrv", "verify", "opinion", "R1", "--stated", "qualified", "--as", "vera", "--id", "x5"], 7, &["qualified"]);
    ets.ok(&["mrv", "verify", "opinion", "R1", "--stated", "unqualified", "--as", "vera", "--id", "s4"]);
    ets.fails(&["mrv", "accept", "R1", "--as", "alice", "--id", "x6"], 6, &["competent authority"]);
    ets.ok(&["mrv", "accept", "R1", "--as", "gov", "--id", "s5"]);

    let report = ets.json(&["mrv", "report", "R1"]);
    assert_eq!(report["state"], "accepted");
    assert_eq!(report["verified_emissions_t"].as_str().unwrap(), total);
    assert_eq!(report["units"][0]["months"].as_array().unwrap().len(), 12);
    assert_eq!(report["units"][0]["months"][0]["evidence"][0]["name"], "lab-2024.pdf");
    let csv_out = ets.ok(&["mrv", "report", "R1", "--format", "csv"]);
    assert_eq!(csv_out.lines().count(), 1 + 12 + 1, "{csv_out}");
    assert!(csv_out.lines().last().unwrap().ends_with(&format!(",total,,,{total}")), "{csv_out}");
    let xlsx = ets.path("R1.xlsx");
    ets.ok(&["mrv", "report", "R1", "--format", "xlsx", "--output", xlsx.to_str().unwrap()]);
    let bytes = std::fs::read(&xlsx).unwrap();
    use calamine::{Data, Reader};
    let mut wb: calamine::Xlsx<_> = calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).unwrap();
    let summary = wb.worksheet_range("report").unwrap();
    assert_eq!(summary.get_value((5, 1)), Some(&Data::Float(total.parse::<f64>().unwrap())), "verified emissions as a number");
    let monthly = wb.worksheet_range("monthly").unwrap();
    assert_eq!(monthly.height(), 1 + 12 + 1);
    assert_eq!(monthly.get_value((1, 1)), Some(&Data::String("2024-01".into())));
    ets.fails(&["mrv", "report", "R1", "--format", "xlsx"], 3, &["give --output"]);

    // The evidence file is recorded; a changed copy is not.
    let found = ets.ok(&["mrv", "evidence", evidence.to_str().unwrap()]);
    assert!(found.contains("U1 2024-12 version 1"), "{found}");
    let forged = ets.path("forged.pdf");
    std::fs::write(&forged, b"%PDF lab reports 2024, edited").unwrap();
    ets.fails(&["mrv", "evidence", forged.to_str().unwrap()], 4, &["is not recorded as evidence"]);

    let audit = ets.ok(&["audit", "verify"]);
    assert!(audit.contains("MRV journal ok: 23 records"), "{audit}");
    assert!(audit.contains("12 monthly submissions; 1 stored evidence files"), "{audit}");
}

#[test]
fn an_import_with_errors_reports_all_of_them_and_writes_nothing() {
    let ets = Ets::registered();
    let mut rows = year_rows();
    rows[1] = rows[1].replace(",0.99", ",1.2");
    rows[4] = rows[4].replace("2024,5,", "2024,13,");
    rows[6] = rows[6].replace(",coal,1", ",lignite,1");
    rows[8] = rows[8].replace("LAB-2409,2024-09-28", "LAB-2409,28/09/2024");
    let bad = ets.path("bad.csv");
    write_csv(&bad, &rows);
    let err = ets.fails(
        &["mrv", "import", bad.to_str().unwrap(), "--as", "alice", "--id", "bad"],
        3,
        &["4 problem(s)", "row 3, column oxidation_factor", "row 6, column month", "row 8, column fuel", "row 10, column report_date"],
    );
    assert!(err.contains("nothing imported"), "{err}");
    // A file valid on its own but not against the plan (a stream the plan lacks) is refused
    // as a whole: nothing of the months before the bad one is written.
    let mut rows = year_rows();
    rows[7] = rows[7].replace("U1,coal,", "U1,gas-1,");
    let off_plan = ets.path("off-plan.csv");
    write_csv(&off_plan, &rows);
    ets.fails(
        &["mrv", "import", off_plan.to_str().unwrap(), "--as", "alice", "--id", "off"],
        3,
        &["2024-08", "'gas-1' is not in the 2024 monitoring plan", "nothing imported"],
    );
    // The dry run finds the same and writes nothing either.
    ets.fails(&["mrv", "import", off_plan.to_str().unwrap(), "--dry-run", "--as", "alice", "--id", "off"], 3, &["would be refused"]);
    // Someone who does not represent the entity cannot import its data.
    let good = ets.path("good.csv");
    write_csv(&good, &year_rows());
    ets.fails(&["mrv", "import", good.to_str().unwrap(), "--as", "mallory", "--id", "m"], 6, &["only its representatives"]);
}

#[test]
fn corrections_need_a_reason_and_keep_every_version() {
    let ets = Ets::registered();
    let csv = ets.path("year.csv");
    write_csv(&csv, &year_rows());
    ets.ok_at("2024-12-20", &["mrv", "import", csv.to_str().unwrap(), "--as", "alice", "--id", "v1"]);
    let march = ets.path("march.csv");
    write_csv(&march, &[row(3, 150_000)]);
    ets.fails(&["mrv", "import", march.to_str().unwrap(), "--as", "alice", "--id", "c1"], 3, &["version 2", "needs a reason"]);
    ets.ok(&["mrv", "import", march.to_str().unwrap(), "--reason", "weighbridge ticket found", "--as", "alice", "--id", "c1"]);
    let versions = ets.json(&["mrv", "submissions", "U1", "2024-03"]);
    let versions = versions.as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["records"][0]["quantity_t"], "103000");
    assert_eq!(versions[1]["records"][0]["quantity_t"], "150000");
    assert_eq!(versions[1]["reason"], "weighbridge ticket found");
    // Submitted 2025-03-01, more than 40 days after 31 March 2024: accepted and marked late.
    assert_eq!(versions[1]["late"], true);
    let queue = ets.json(&["mrv", "check", "--year", "2024"]);
    let checks: Vec<&str> = queue["anomalies"].as_array().unwrap().iter().map(|a| a["check"].as_str().unwrap()).collect();
    assert!(checks.contains(&"late_submission"), "{checks:?}");
}

#[test]
fn tampering_with_the_mrv_journal_or_evidence_is_detected() {
    let ets = Ets::registered();
    let csv = ets.path("year.csv");
    write_csv(&csv, &year_rows());
    let evidence = ets.path("lab.pdf");
    std::fs::write(&evidence, b"lab").unwrap();
    ets.ok_at(
        "2024-12-20",
        &["mrv", "import", csv.to_str().unwrap(), "--evidence", evidence.to_str().unwrap(), "--as", "alice", "--id", "i"],
    );
    ets.ok(&["audit", "verify"]);
    let conn = rusqlite::Connection::open(&ets.db).unwrap();
    conn.execute_batch("UPDATE mrv_evidence SET content = x'00'").unwrap();
    let r = ets.run_at("2025-03-01", &["audit", "verify"]);
    assert_eq!(r.code, 8, "{}", r.stderr);
    assert!(r.stderr.contains("was altered"), "{}", r.stderr);
    conn.execute_batch("UPDATE mrv_evidence SET content = CAST('lab' AS BLOB)").unwrap();
    ets.ok(&["audit", "verify"]);
    // A quantity changed in the stored monthly record breaks the chain at that record.
    conn.execute_batch(
        "UPDATE mrv_journal SET body = CAST(replace(CAST(body AS TEXT), '\"quantity_t\":\"110000\"', '\"quantity_t\":\"11000\"') AS BLOB) WHERE seq = 16",
    )
    .unwrap();
    let r = ets.run_at("2025-03-01", &["audit", "verify"]);
    assert_eq!(r.code, 8, "{}", r.stderr);
    assert!(r.stderr.contains("record 16 was altered"), "{}", r.stderr);
    let r = ets.run_at("2025-03-01", &["mrv", "check", "--year", "2024"]);
    assert_eq!(r.code, 8, "reads refuse a broken journal too: {}", r.stderr);
}

#[test]
fn templates_import_cleanly_and_bad_input_is_named() {
    let ets = Ets::registered();
    let xlsx = ets.path("monthly.xlsx");
    ets.ok(&["mrv", "template", "monthly-xlsx", "--output", xlsx.to_str().unwrap()]);
    // The template's example row is for entity ENT-1: valid as a file, refused against the plans.
    let calc = ets.json(&["mrv", "calculate", "--file", xlsx.to_str().unwrap()]);
    assert_eq!(calc["units"].as_array().unwrap().len(), 1);
    ets.fails(&["mrv", "import", xlsx.to_str().unwrap(), "--as", "alice", "--id", "t"], 4, &["no entity 'ENT-1'"]);
    let txt = ets.path("data.txt");
    std::fs::write(&txt, "x").unwrap();
    ets.fails(&["mrv", "import", txt.to_str().unwrap(), "--as", "alice", "--id", "t"], 3, &["expected a .csv or .xlsx file"]);
    ets.fails(&["mrv", "plan", "show", "GD-E1", "2030"], 4, &["no monitoring plan of 'GD-E1' for 2030"]);
    let bad_plan = ets.path("bad-plan.json");
    std::fs::write(&bad_plan, r#"{"entity":"GD-E1","year":2024,"regime":"eu_monitoring","source_streams":[],"instruments":[]}"#).unwrap();
    ets.fails(&["mrv", "plan", "set", bad_plan.to_str().unwrap(), "--as", "alice", "--id", "p"], 3, &["at least one source stream"]);
}
