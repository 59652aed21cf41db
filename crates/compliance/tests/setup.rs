//! Which rulebook governs a market when the operator names none, and the project catalog's
//! CSV reader.

use ets_compliance::{default_rulebook, parse_projects, Setup};

#[test]
fn the_default_rulebook_covers_the_year_else_the_latest_before_it_and_prefers_power() {
    let id = |market: &str, year: i32| default_rulebook(market, year).map(|rb| rb.rulebook.id);
    assert_eq!(id("CN", 2025).as_deref(), Some("cn-power-2025-2026-draft"), "power over industry for the same years");
    assert_eq!(id("CN", 2024).as_deref(), Some("cn-power-2023-2024"));
    assert_eq!(id("CN", 2020).as_deref(), Some("cn-power-2019-2020"));
    assert_eq!(id("CN", 2030).as_deref(), Some("cn-power-2025-2026-draft"), "the latest before the year when none covers it");
    assert_eq!(id("CN", 2018), None, "no rulebook starts by 2018");
    assert_eq!(id("BJ", 2025).as_deref(), Some("bj-2024"));
    assert_eq!(id("XX", 2025), None);
}

#[test]
fn a_set_rulebook_governs_its_market_and_projects_add_per_market() {
    let mut setup = Setup::default();
    let tj = ets_compliance::shipped().iter().find(|rb| rb.rulebook.id == "tj-2025").unwrap().clone();
    setup.rulebooks.insert("TJ".into(), tj);
    assert_eq!(setup.rulebook("TJ", 2030).unwrap().rulebook.id, "tj-2025");
    assert_eq!(setup.rulebook("CN", 2025).unwrap().rulebook.id, "cn-power-2025-2026-draft");
    setup.projects = parse_projects("p.csv", "id,standard,province,type,registered\nP1,CCER,Gansu,wind,2024-03-02\n").unwrap();
    setup.market_projects.insert(
        "GD".into(),
        parse_projects("gd.csv", "id,standard,province,type,registered\nG1,PHCER,Guangdong,transport,2022-01-01\n").unwrap(),
    );
    assert_eq!(setup.projects_for("GD").keys().collect::<Vec<_>>(), vec!["G1", "P1"]);
    assert_eq!(setup.projects_for("SH").keys().collect::<Vec<_>>(), vec!["P1"]);
}

#[test]
fn a_bad_project_row_names_the_file_and_the_row() {
    let err = parse_projects("p.csv", "id,standard,province,type,registered\nP1,CCER,Gansu,wind\n").unwrap_err();
    assert_eq!(err, "p.csv: row 2: expected id,standard,province,type,registered");
    let err = parse_projects("p.csv", "header\n\nP1,CCER,Gansu,wind,2024-13-01\n").unwrap_err();
    assert!(err.starts_with("p.csv: row 3: "), "{err}");
    let p = parse_projects("p.csv", "header\n P1 , CCER ,Gansu,wind,2024-03-02\n").unwrap();
    assert_eq!(p["P1"].standard, "CCER");
    assert_eq!(p["P1"].registered.to_string(), "2024-03-02");
}
