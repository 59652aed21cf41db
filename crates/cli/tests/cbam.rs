//! `ets cbam` as a user runs it, on the shipped example files: scope, SEE, the communication
//! (JSON and xlsx, read back by `ets cbam import`, opened by LibreOffice when installed), the
//! liability of the example declaration (E4 among its lines), scenarios, QReport, the carbon
//! price from a registry, and bad input naming the field and leaving no file behind.

mod common;

use common::Ets;
use serde_json::Value;
use std::path::PathBuf;

fn example(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/cbam").join(name).to_str().unwrap().to_string()
}

fn ets() -> Ets {
    Ets::new_at("cbam.db", "2026-04-10")
}

#[test]
fn goods_lists_the_scope_with_what_counts() {
    let e = ets();
    let v = e.json(&["cbam", "goods"]);
    let goods = v["goods"].as_array().unwrap();
    let sinter = goods.iter().find(|g| g["cn"] == "26011200").unwrap();
    assert_eq!(sinter["counts"], "direct_and_indirect");
    let h2 = goods.iter().find(|g| g["cn"] == "28041000").unwrap();
    assert_eq!((h2["counts"].as_str(), h2["threshold_mass"].as_bool()), (Some("direct"), Some(false)));
    assert!(v["excluded"].as_array().unwrap().iter().any(|x| x["cn"] == "7204"));
    let text = e.ok(&["cbam", "goods", "--sector", "cement"]);
    assert!(text.contains("25231000") && !text.contains("72081000"), "{text}");
    let r = e.run(&["cbam", "goods", "--sector", "glass"]);
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("--sector 'glass'"));
}

#[test]
fn see_of_the_example_installation() {
    let e = ets();
    let v = e.json(&["cbam", "see", "--file", &example("steel-installation.json")]);
    let hrc = v["processes"].as_array().unwrap().iter().find(|p| p["id"] == "hot-rolling").unwrap().clone();
    assert_eq!(hrc["see"]["counted"], "1.733067788572");
    assert_eq!(hrc["see"]["benchmark"], "1.4762");
    let text = e.ok(&["cbam", "see", "--file", &example("steel-installation.json")]);
    assert!(text.contains("hot-rolling") && text.contains("SEE_COUNTED"), "{text}");
}

#[test]
fn communication_xlsx_round_trips_through_the_importer_and_opens_in_libreoffice() {
    let e = ets();
    let xlsx = e.path("communication.xlsx");
    let json_file = e.path("communication.json");
    e.ok(&["cbam", "communication", "--file", &example("steel-installation.json"), "--format", "xlsx", "--out", xlsx.to_str().unwrap()]);
    e.ok(&[
        "cbam",
        "communication",
        "--file",
        &example("steel-installation.json"),
        "--format",
        "json",
        "--out",
        json_file.to_str().unwrap(),
    ]);
    let from_xlsx = e.json(&["cbam", "import", "--file", xlsx.to_str().unwrap()]);
    let from_json: Value = serde_json::from_str(&std::fs::read_to_string(&json_file).unwrap()).unwrap();
    // Same content whichever way it travelled (decimals compared as numbers: Excel keeps no trailing zeros).
    let norm = |v: &Value| -> Value {
        let mut v = v.clone();
        fn walk(v: &mut Value) {
            match v {
                Value::String(s) => {
                    if let Ok(d) = s.parse::<rust_decimal::Decimal>() {
                        *s = d.normalize().to_string();
                    }
                }
                Value::Array(a) => a.iter_mut().for_each(walk),
                Value::Object(o) => o.values_mut().for_each(walk),
                _ => {}
            }
        }
        walk(&mut v);
        v
    };
    assert_eq!(norm(&from_xlsx), norm(&from_json));
    assert_eq!(from_xlsx["format"], "ets-cbam-communication/1");
    assert!(!from_xlsx["products"].as_array().unwrap().is_empty());

    // LibreOffice, where installed (Debian package libreoffice-calc-nogui): a headless conversion
    // of the products sheet to CSV must succeed and show the products.
    let Ok(status) = std::process::Command::new("soffice").arg("--version").output() else {
        eprintln!("soffice not installed: LibreOffice check skipped (apt-get install libreoffice-calc-nogui)");
        return;
    };
    assert!(status.status.success());
    let outdir = e.path("lo");
    let profile = format!("-env:UserInstallation=file://{}", e.path("lo-profile").display());
    let run = std::process::Command::new("soffice")
        .args([
            profile.as_str(),
            "--headless",
            "--convert-to",
            "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,5",
        ])
        .arg("--outdir")
        .arg(&outdir)
        .arg(&xlsx)
        .output()
        .unwrap();
    assert!(run.status.success(), "soffice failed: {}", String::from_utf8_lossy(&run.stderr));
    let products = std::fs::read_to_string(outdir.join("communication-Summary_Products.csv")).unwrap_or_else(|_| {
        panic!(
            "no products sheet converted; files: {:?}",
            std::fs::read_dir(&outdir).unwrap().map(|f| f.unwrap().file_name()).collect::<Vec<_>>()
        )
    });
    assert!(products.contains("hot-rolling") && products.contains("72081000"), "{products}");
}

#[test]
fn liability_of_the_example_declaration() {
    let e = ets();
    let v = e.json(&["cbam", "liability", "--file", &example("declaration-2026.json")]);
    let lines = v["lines"].as_array().unwrap();
    // E4: 1,000 t China HRC on defaults in Q1 2026.
    assert_eq!((lines[0]["certificates"].as_str(), lines[0]["cost_eur"].as_str()), (Some("2173.25"), Some("163776.12")));
    assert_eq!(v["threshold"]["exempt"], false);
    // Hydrogen from Australia: 2 × (10.82 × 1.1 − 0.975 × 5.089) = 13.88045.
    assert_eq!(lines[2]["certificates"], "13.88045");
    let text = e.ok(&["cbam", "liability", "--file", &example("declaration-2026.json"), "--rounding", "up"]);
    assert!(text.contains("163776.12") && text.contains("quarterly holding: none in 2026"), "{text}");
}

#[test]
fn scenario_default_against_actual_with_domestic_prices() {
    let e = ets();
    let v = e.json(&[
        "cbam",
        "scenario",
        "--product",
        "72081000",
        "--installation",
        &example("steel-installation.json"),
        "--process",
        "hot-rolling",
        "--domestic-price",
        "0",
        "--domestic-price",
        "100",
        "--mass",
        "1000",
    ]);
    let years = v["years"].as_array().unwrap();
    assert_eq!(years.len(), 9);
    assert_eq!(years[0]["cases"][0]["eur"], "163776.12");
    let text = e.ok(&["cbam", "scenario", "--product", "72081000", "--domestic-price", "50"]);
    assert!(text.contains("2034") && text.contains("default: EUR/T"), "{text}");
}

#[test]
fn qreport_writes_xml() {
    let e = ets();
    let out = e.path("q.xml");
    e.ok(&["cbam", "qreport", "--file", &example("qreport-2025-q4.json"), "--out", out.to_str().unwrap()]);
    let xml = std::fs::read_to_string(&out).unwrap();
    assert!(xml.starts_with("<?xml") && xml.contains("<ReportingPeriod>Q4</ReportingPeriod>"));
    assert!(xml.contains("Example Iron &amp; Steel Co., Ltd."));
    if std::process::Command::new("xmllint").arg("--version").output().is_ok() {
        let r = std::process::Command::new("xmllint").arg("--noout").arg(&out).output().unwrap();
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    }
}

#[test]
fn bad_input_names_the_field_and_writes_nothing() {
    let e = ets();
    let write = |name: &str, text: &str| {
        let p = e.path(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let decl = std::fs::read_to_string(example("declaration-2026.json")).unwrap();
    let cases = [
        (
            decl.replace(
                "\"72081000\", \"country\": \"CN\", \"net_mass_t\": \"1000\"",
                "\"84713000\", \"country\": \"CN\", \"net_mass_t\": \"1000\"",
            ),
            "lines[0].cn: CN 84713000 is not a CBAM good",
        ),
        (decl.replace("\"net_mass_t\": \"1000\"", "\"net_mass_t\": \"-1000\""), "lines[0].net_mass_t: -1000 is negative"),
        (decl.replace("\"year\": 2026", "\"year\": 2025"), "year: 2025 is before the definitive period"),
    ];
    for (text, needle) in cases {
        let f = write("bad.json", &text);
        let r = e.run(&["cbam", "liability", "--file", &f]);
        assert_eq!(r.code, 3, "{}", r.stderr);
        assert!(r.stderr.contains(needle), "expected '{needle}' in {}", r.stderr);
    }
    // Missing precursor data: the communication is not written.
    let inst = std::fs::read_to_string(example("steel-installation.json"))
        .unwrap()
        .replace("\"purchased\": \"slab-vn\"", "\"purchased\": \"slab-xx\"");
    let f = write("inst.json", &inst);
    let out = e.path("c.xlsx");
    let r = e.run(&["cbam", "communication", "--file", &f, "--format", "xlsx", "--out", out.to_str().unwrap()]);
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("processes[3].precursors[1].purchased: missing precursor data: 'slab-xx'"), "{}", r.stderr);
    assert!(!out.exists(), "nothing is written on error");
    // A cycle.
    let cyc = std::fs::read_to_string(example("steel-installation.json")).unwrap().replace("{ \"id\": \"sintering\", \"cn\": \"26011200\", \"activity_level_t\": \"1600000\", \"direct_emissions_t\": \"320000\", \"electricity_mwh\": \"48000\" }", "{ \"id\": \"sintering\", \"cn\": \"26011200\", \"activity_level_t\": \"1600000\", \"direct_emissions_t\": \"320000\", \"electricity_mwh\": \"48000\", \"precursors\": [ { \"process\": \"hot-rolling\", \"mass_t\": \"1\" } ] }");
    let r = e.run(&["cbam", "see", "--file", &write("cyc.json", &cyc)]);
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("precursor cycle"), "{}", r.stderr);
    // A price period not in the data, then given as a parameter.
    let q2 = decl.replace("2026-02-10", "2026-05-10");
    let f = write("q2.json", &q2);
    let r = e.run(&["cbam", "liability", "--file", &f]);
    assert!(r.code == 3 && r.stderr.contains("no certificate price for 2026-Q2"), "{}", r.stderr);
    e.ok(&["cbam", "liability", "--file", &f, "--price", "2026-Q2=72.50"]);
}

#[test]
fn carbon_price_from_the_registry() {
    let e = ets();
    e.ok(&["init"]);
    e.ok(&["market", "add", "CN", "--as", "admin"]);
    let auth = e.json(&["market", "list"])[0]["authorities"][0].as_str().unwrap().to_string();
    e.ok(&["account", "open", "--market", "CN", "--kind", "operator", "--holder", "Steel Co", "--rep", "alice", "--as", &auth]);
    e.ok(&["account", "open", "--market", "CN", "--kind", "operator", "--holder", "Power Co", "--rep", "bob", "--as", &auth]);
    e.ok(&["issue", "--unit", "CEA:2025", "--quantity", "10000", "--as", &auth]);
    e.ok(&["allocate", "--from", "CN-ISSUANCE", "--to", "CN-100001", "--unit", "CEA:2025", "--quantity", "1000", "--as", &auth]);
    e.ok(&["allocate", "--from", "CN-ISSUANCE", "--to", "CN-100002", "--unit", "CEA:2025", "--quantity", "1000", "--as", &auth]);
    e.ok(&["transfer", "--from", "CN-100002", "--to", "CN-100001", "--unit", "CEA:2025", "--quantity", "300", "--as", "bob"]);
    let v = e.json(&[
        "cbam",
        "carbon-price",
        "--account",
        "CN-100001",
        "--year",
        "2025",
        "--emissions",
        "1200",
        "--purchase",
        "300@80",
        "--eur-per-cny",
        "0.128",
    ]);
    assert_eq!((v["free_allocated_t"].as_u64(), v["bought_t"].as_u64(), v["paid_t"].as_str()), (Some(1000), Some(300), Some("200")));
    assert_eq!(v["paid_cny"], "16000.00");
    let r = e.run(&["cbam", "carbon-price", "--account", "CN-100001", "--year", "2025", "--emissions", "1200", "--purchase", "900@80"]);
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("registry shows 300 t"), "{}", r.stderr);
}

#[test]
fn demo_prints_the_cbam_section() {
    let e = ets();
    let out = e.ok(&["demo", "--accounts", "300", "--trades", "500"]);
    let at = out.find("CBAM (EU border").unwrap_or_else(|| panic!("no CBAM section in {out}"));
    let cbam = &out[at..];
    assert!(cbam.contains("carbon price paid: ") && cbam.contains("hot-rolled coil CN 72081000"), "{cbam}");
    // Nine years, 2026 to 2034; the default case of 2026 is E4's per-tonne figure × 10,000 t.
    assert!(cbam.contains("1637761.20") && cbam.contains("    2034 "), "{cbam}");
}
