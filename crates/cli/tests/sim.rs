//! `ets sim`: scenario files through the binary.

mod common;

use common::Ets;
use std::path::PathBuf;

fn example(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/sim").join(name).display().to_string()
}

#[test]
fn every_shipped_example_runs() {
    let ets = Ets::new_at("unused.db", "2026-01-01");
    for name in ["integration.toml", "linking.toml", "banking-msr.toml", "cbam-steel.toml", "agents-pilot.toml"] {
        let out = ets.ok(&["sim", "run", &example(name), "--quiet"]);
        assert!(out.starts_with("scenario: "), "{name}: {out}");
    }
    // The simulator touches no database.
    assert!(!ets.db.exists());
}

#[test]
fn run_writes_json_csv_and_svg_and_is_byte_identical() {
    let ets = Ets::new_at("unused.db", "2026-01-01");
    let dir_a = ets.path("a");
    let dir_b = ets.path("b");
    let out = ets.ok(&["sim", "run", &example("linking.toml"), "--out", dir_a.to_str().unwrap()]);
    assert!(out.contains("gain vs autarky"), "{out}");
    assert!(out.contains("wrote "), "{out}");
    ets.ok(&["sim", "run", &example("linking.toml"), "--out", dir_b.to_str().unwrap()]);
    let mut names: Vec<String> = std::fs::read_dir(&dir_a).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["costs.svg", "equilibrium.csv", "flows.svg", "participants.csv", "prices.svg", "results.json"]);
    for n in &names {
        assert_eq!(std::fs::read(dir_a.join(n)).unwrap(), std::fs::read(dir_b.join(n)).unwrap(), "{n} differs between two runs");
    }
    let svg = std::fs::read_to_string(dir_a.join("prices.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir_a.join("results.json")).unwrap()).unwrap();
    let regimes = json["equilibrium"]["regimes"].as_array().unwrap();
    assert_eq!(regimes.len(), 4);
    assert_eq!(regimes[3]["quota"]["binding"], true);
}

#[test]
fn json_output_and_the_first_run_ordering() {
    let ets = Ets::new_at("unused.db", "2026-01-01");
    let v = ets.json(&["sim", "run", &example("integration.toml"), "--quiet"]);
    let autarky = v["equilibrium"]["regimes"][0]["markets"].as_array().unwrap();
    let price = |code: &str| autarky.iter().find(|m| m["code"] == code).unwrap()["price"].as_f64().unwrap();
    assert!(price("BJ") > price("CN") && price("CN") > price("GD") && price("GD") > price("HB"));
    assert!(price("SH") > price("GD") && price("HB") > price("TJ") && price("CQ") > price("FJ"));
    assert!(v["equilibrium"]["gain_vs_autarky"]["integrated"].as_f64().unwrap() > 0.0);
    assert_eq!(v["monte_carlo"]["draws"], 500);
}

#[test]
fn bad_scenarios_fail_with_the_file_key_and_problem_and_write_nothing() {
    let ets = Ets::new_at("unused.db", "2026-01-01");
    let bad = ets.path("bad.toml");
    std::fs::write(
        &bad,
        "[scenario]\nname = \"bad\"\n[market.GD]\ncap_mt = \"lots\"\n[equilibrium]\nregimes = [\"autarky\", \"merged\"]\n",
    )
    .unwrap();
    let out_dir = ets.path("out");
    let r = ets.run(&["sim", "run", bad.to_str().unwrap(), "--out", out_dir.to_str().unwrap()]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("bad.toml: market.GD.cap_mt: must be a number, found a string"), "{}", r.stderr);
    assert!(
        r.stderr.contains("bad.toml: equilibrium.regimes[1]: must be autarky, integrated, linked or restricted, found \"merged\""),
        "{}",
        r.stderr
    );
    assert!(!out_dir.exists());
    // --json errors are JSON on stderr.
    let r = ets.run(&["--json", "sim", "check", bad.to_str().unwrap()]);
    assert_eq!(r.code, 3);
    let e: serde_json::Value = serde_json::from_str(r.stderr.trim()).unwrap();
    assert!(e["error"]["message"].as_str().unwrap().contains("market.GD.cap_mt"));
    // A missing file is "not found".
    let r = ets.run(&["sim", "run", ets.path("nope.toml").to_str().unwrap()]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.stderr.contains("cannot read scenario"));
    // A model without a solution is refused with the market named.
    std::fs::write(&bad, "[scenario]\nname = \"x\"\nmarkets = [\"A\"]\ncalibration = \"none\"\n[market.A]\nbaseline_mt = 100\ncap_mt = 50\nmac = { kind = \"stepped\", measures = [[10, 5]] }\n[equilibrium]\n").unwrap();
    let r = ets.run(&["sim", "run", bad.to_str().unwrap()]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("A: no price up to"), "{}", r.stderr);
}

#[test]
fn check_and_calibration() {
    let ets = Ets::new_at("unused.db", "2026-01-01");
    let out = ets.ok(&["sim", "check", &example("banking-msr.toml")]);
    assert!(out.contains(": ok: "), "{out}");
    let out = ets.ok(&["sim", "calibration"]);
    for code in ["CN", "BJ", "TJ", "SH", "CQ", "HB", "GD", "SZ", "FJ"] {
        assert!(out.lines().any(|l| l.starts_with(code)), "{code} missing:\n{out}");
    }
    let v = ets.json(&["sim", "calibration"]);
    assert_eq!(v["markets"].as_array().unwrap().len(), 9);
}
