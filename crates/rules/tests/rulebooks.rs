//! The shipped rulebooks load, carry the domain file's national values, drive the engines, and
//! malformed rulebooks are refused with the file, the key and the problem.

use ets_core::{Date, Fen};
use ets_rules::allocation::power::{self, Category, PowerUnit, PreAllocation};
use ets_rules::compliance::{Lot, Penalty, PriceBasis, Units};
use ets_rules::rulebook::{builtin, Allocation, DualTrack, ReservePrice, Rulebook, RulebookError, Status};
use rust_decimal::Decimal;

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn text(name: &str) -> &'static str {
    builtin().iter().find(|(n, _)| *n == name).unwrap_or_else(|| panic!("{name} is not shipped")).1
}

fn load(name: &str) -> Rulebook {
    Rulebook::from_toml(name, text(name)).unwrap_or_else(|e| panic!("{e}"))
}

fn power_rules(name: &str) -> power::PowerRules {
    match load(name).allocation {
        Allocation::Power(p) => p,
        other => panic!("{name}: not the power engine: {other:?}"),
    }
}

#[test]
fn every_shipped_rulebook_loads_and_validates() {
    let mut failures = Vec::new();
    for (name, text) in builtin() {
        match Rulebook::from_toml(name, text) {
            Err(e) => failures.push(e.to_string()),
            Ok(r) => {
                assert_eq!(format!("{}.toml", r.rulebook.id), *name, "the id names the file");
                assert_eq!(r.rulebook.status == Status::Draft, name.contains("draft"), "{name}: status");
                assert!(!r.uncertain.is_empty(), "{name}: every shipped rulebook has uncertain values");
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let markets: Vec<String> = builtin().iter().map(|(n, t)| Rulebook::from_toml(n, t).unwrap().rulebook.market).collect();
    for m in ["CN", "BJ", "TJ", "SH", "CQ", "HB", "GD", "SZ", "FJ", "EU", "WCI"] {
        assert!(markets.iter().any(|x| x == m), "no rulebook for {m}");
    }
}

#[test]
fn national_power_2023_2024_matches_the_domain_file() {
    let r = load("cn-power-2023-2024.toml");
    let p = power_rules("cn-power-2023-2024.toml");
    let b23 = &p.benchmarks[&2023];
    assert_eq!((b23.cat_i, b23.cat_ii, b23.cat_iii, b23.cat_iv), (d("0.7950"), d("0.8090"), d("0.8285"), d("0.3305")));
    assert_eq!((b23.heat_coal, b23.heat_gas), (d("0.1038"), d("0.0536")));
    let b24 = &p.benchmarks[&2024];
    assert_eq!((b24.cat_i, b24.cat_ii, b24.cat_iii, b24.cat_iv), (d("0.7910"), d("0.8049"), d("0.8244"), d("0.3288")));
    assert_eq!((b24.heat_coal, b24.heat_gas), (d("0.1033"), d("0.0533")));
    assert_eq!(p.gap_cap, Some(d("0.20")));
    assert_eq!(p.pre_allocation, PreAllocation::PreviousYearVerified { share: d("0.70") });
    assert_eq!(p.load_factor_categories, vec![Category::I, Category::II]);

    let c = &r.compliance;
    assert_eq!(c.offsets.len(), 1);
    assert_eq!(c.offsets[0].standards, vec!["CCER".to_string()]);
    assert_eq!(c.offsets[0].limit_share, d("0.05"));
    assert_eq!(c.offsets[0].registered_from, Some(Date::parse("2024-01-22").unwrap()));
    let co = c.carry_over.as_ref().expect("the 2023–24 plan has the carry-over");
    assert_eq!((co.base_t, co.rate, co.into_vintage), (d("10000"), d("1.5"), 2025));
    match &c.penalty {
        Penalty::PriceMultiple { min_multiple, max_multiple, price_basis, .. } => {
            assert_eq!((*min_multiple, *max_multiple, *price_basis), (d("5"), d("10"), PriceBasis::MonthBeforeDeadline));
        }
        other => panic!("national penalty: {other:?}"),
    }
    assert_eq!(c.deadline(2024).unwrap(), Date::parse("2025-12-31").unwrap());
    assert!(!c.vintage_usable(2024, 2023), "no borrowing");
    assert!(!c.vintage_usable(2024, 2025), "2019–2024 vintages cut from 2025");

    let t = &r.trading;
    assert_eq!((t.listed_band, t.block_band, t.block_min_t), (Some(d("0.10")), Some(d("0.30")), Some(100_000)));
    assert!(t.participants.entities && !t.participants.institutions && !t.participants.individuals);
}

#[test]
fn the_draft_2025_2026_halves_pre_allocation_and_the_other_periods_keep_70_percent() {
    let draft = power_rules("cn-power-2025-2026-draft.toml");
    assert_eq!(draft.pre_allocation, PreAllocation::PreviousYearVerified { share: d("0.5") });
    assert_eq!(draft.benchmarks[&2025].cat_i, d("0.7902"));
    assert_eq!(draft.benchmarks[&2026].cat_iii, d("0.8080"));
    for name in ["cn-power-2019-2020.toml", "cn-power-2021-2022.toml"] {
        assert_eq!(power_rules(name).pre_allocation, PreAllocation::BaseYearOutput { share: d("0.70") }, "{name}");
    }
    assert_eq!(power_rules("cn-power-2019-2020.toml").benchmarks[&2020].cat_i, d("0.877"));
    assert_eq!(power_rules("cn-power-2021-2022.toml").benchmarks[&2021].cat_iii, d("0.9350"));
}

#[test]
fn the_loaded_rules_drive_the_engines_as_the_worked_examples_say() {
    // china-ets.md §9 example 1 and 5: 3,000,000 MWh × 0.7910 + 2,000,000 GJ × 0.1033 = 2,579,600 t;
    // pre-allocation 70% of 2,500,000 = 1,750,000; true-up +829,600.
    let unit = PowerUnit {
        unit: "U1".into(),
        entity: "E1".into(),
        category: Category::I,
        generated_mwh: d("3000000"),
        supplied_mwh: d("3000000"),
        heat_gj: d("2000000"),
        load_factor: d("0.70"),
        air_cooled: false,
        heat_ratio: Decimal::ZERO,
        verified_t: d("2600000"),
        previous_verified_t: d("2500000"),
        base_year_mwh: Decimal::ZERO,
        base_year_heat_gj: Decimal::ZERO,
    };
    let a = power::allocate(&power_rules("cn-power-2023-2024.toml"), 2024, &[unit]).unwrap();
    assert_eq!((a[0].final_t, a[0].pre_allocated_t, a[0].true_up_t), (2_579_600, 1_750_000, 829_600));

    // Example 9: 5% CCER cap on 2,000,000 t.
    let r = load("cn-power-2023-2024.toml");
    let ccer = Units::Offset {
        project: ets_rules::compliance::Project {
            id: "P1".into(),
            standard: "CCER".into(),
            province: "Gansu".into(),
            project_type: "wind".into(),
            registered: Date::parse("2024-06-01").unwrap(),
        },
        vintage: 2024,
    };
    let lots = [Lot { units: ccer, quantity: 150_000 }, Lot { units: Units::Allowance { vintage: 2024 }, quantity: 1_900_000 }];
    let assessed = r.compliance.assess(2024, d("2000000"), 0, &lots, Fen(0)).unwrap();
    assert_eq!((assessed.offsets_counted_t, assessed.shortfall_t), (100_000, 0));
}

#[test]
fn pilot_specifics_survive_the_file() {
    // Hubei: 1–3× the year's average price, capped at ¥150,000, double deduction.
    let hb = load("hb-2024.toml");
    match &hb.compliance.penalty {
        Penalty::PriceMultiple { min_multiple, max_multiple, cap_fen, deduct_multiple, .. } => {
            assert_eq!((*min_multiple, *max_multiple, *cap_fen, *deduct_multiple), (d("1"), d("3"), Some(15_000_000), d("2")));
        }
        other => panic!("Hubei penalty: {other:?}"),
    }
    assert_eq!(hb.compliance.penalty(100_000, Fen(4_000)).unwrap(), (15_000_000, 200_000, 0));
    // Tianjin: no fine; pilot allowances withdrawn on entry to the national market.
    let tj = load("tj-2025.toml");
    assert!(matches!(tj.compliance.penalty, Penalty::NonMonetary { .. }));
    assert_eq!(tj.compliance.penalty(1_000, Fen(4_000)).unwrap(), (0, 0, 0));
    assert_eq!(tj.dual_track, Some(DualTrack::Withdraw));
    let bj = load("bj-2024.toml");
    let bounds = bj.trading.price_bounds.expect("Beijing's floor and ceiling");
    assert_eq!((bounds.floor_minor, bounds.ceiling_minor), (Some(2_000), Some(15_000)));
    assert!(bj.trading.participants.individuals);
    let sh = load("sh-2024.toml");
    assert_eq!(sh.dual_track, Some(DualTrack::CarryOver { years: 3 }));
    assert_eq!(
        sh.auction.and_then(|a| a.reserve_price),
        Some(ReservePrice::VwapMultiple { multiple: d("1.2"), months: 6 }),
        "Shanghai's floor: 1.2 × the 6-month VWAP"
    );
    assert!(sh.uncertain.contains_key("dual_track"));
    assert_eq!(tj.cap.split.government_reserve_share, Some(d("0.06")));
    match &tj.allocation {
        Allocation::Pilot(p) => assert_eq!(p.first_batch_share, Some(d("0.5"))),
        other => panic!("{other:?}"),
    }
}

#[test]
fn eu_and_wci_penalties() {
    // EU: EUR 100 a tonne, the obligation carried forward; WCI: 4 × the excess, untimely.
    assert_eq!(load("eu-ets-like.toml").compliance.penalty(10, Fen(0)).unwrap(), (100_000, 0, 10));
    assert_eq!(load("wci-like.toml").compliance.penalty(10, Fen(0)).unwrap(), (0, 0, 40));
    let wci = load("wci-like.toml");
    assert_eq!(wci.compliance.offsets[0].limit_share, d("0.04"));
    assert!(matches!(wci.auction.and_then(|a| a.reserve_price), Some(ReservePrice::Escalating { base_minor: 2587, .. })));
}

// --- malformed rulebooks ---------------------------------------------------------------------

const BASE: &str = "cn-power-2023-2024.toml";

/// Applies `edits` (each a unique find → replace) to the national 2023–24 rulebook and returns
/// its errors, which must be refused.
fn errors_of(edits: &[(&str, &str)]) -> Vec<RulebookError> {
    let mut t = text(BASE).to_string();
    for (find, replace) in edits {
        assert_eq!(t.matches(find).count(), 1, "'{find}' must occur once in {BASE}");
        t = t.replace(find, replace);
    }
    match Rulebook::from_toml("bad.toml", &t) {
        Ok(_) => panic!("accepted after {edits:?}"),
        Err(e) => e.0,
    }
}

/// The errors include one on `key` whose problem contains `fragment`, and it displays with the
/// file, the key and the problem.
fn check(edits: &[(&str, &str)], key: &str, fragment: &str) -> RulebookError {
    let errors = errors_of(edits);
    let Some(e) = errors.iter().find(|e| e.key == key && e.problem.contains(fragment)) else {
        panic!("no error on '{key}' containing '{fragment}' in:\n{}", errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))
    };
    let shown = e.to_string();
    assert!(shown.starts_with("bad.toml: "), "{shown}");
    assert!(shown.contains(&format!(": {key}: ")), "{shown}");
    assert!(shown.contains(fragment), "{shown}");
    e.clone()
}

fn line_of(find: &str) -> usize {
    text(BASE).lines().position(|l| l.contains(find)).expect("line") + 1
}

#[test]
fn an_unknown_key_is_named() {
    let e = check(&[("gas_exemption = true", "gas_exemption = true\ncolour = \"red\"")], "allocation.colour", "unknown field `colour`");
    assert_eq!(e.line, Some(line_of("gas_exemption = true") + 1));
    check(&[("[trading.participants]", "[trading.participants]\nrobots = true")], "trading.participants.robots", "unknown field");
    check(&[("kind = \"price_multiple\"", "kind = \"price_multiple\"\nmercy = true")], "compliance.penalty.mercy", "unknown field `mercy`");
    check(&[("\n[uncertain]\n", "\n[extras]\nx = 1\n[uncertain]\n")], "extras", "unknown field `extras`");
}

#[test]
fn a_wrong_type_is_named() {
    let e = check(&[("version = 1", "version = \"one\"")], "rulebook.version", "invalid type");
    assert_eq!(e.line, Some(line_of("version = 1")));
    check(&[("gas_exemption = true", "gas_exemption = \"yes\"")], "allocation.gas_exemption", "invalid type");
    check(&[("deadline_day = 31", "deadline_day = -1")], "compliance.deadline_day", "invalid value");
    check(&[("rounding = \"down\"", "rounding = \"sideways\"")], "allocation.rounding", "unknown variant `sideways`");
    check(&[("engine = \"power\"", "engine = \"magic\"")], "allocation.engine", "unknown engine 'magic'");
}

#[test]
fn a_float_instead_of_a_decimal_string_is_named() {
    let e = check(&[("gap_cap = \"0.20\"", "gap_cap = 0.20")], "allocation.gap_cap", "decimals are kept exact");
    assert!(e.problem.contains("\"0.2\""), "{e}");
    check(&[("cat_i = \"0.7950\"", "cat_i = 0.7950")], "allocation.benchmarks.2023.cat_i", "decimals are kept exact");
    // Inside tables serde reads as a whole (tagged enums): the key is still found.
    check(&[("share = \"0.70\"", "share = 0.70")], "allocation.pre_allocation.share", "decimals are kept exact");
    check(&[("applied_multiple = \"5\"", "applied_multiple = 5.5")], "compliance.penalty.applied_multiple", "decimals are kept exact");
}

#[test]
fn a_missing_key_is_named() {
    check(&[("obligation_rounding = \"up\"\n", "")], "compliance.obligation_rounding", "missing field");
    check(&[("min_multiple = \"5\"\n", "")], "compliance.penalty.min_multiple", "missing field");
}

#[test]
fn shares_and_bands_outside_zero_to_one_are_refused() {
    check(&[("gap_cap = \"0.20\"", "gap_cap = \"1.20\"")], "allocation.gap_cap", "within [0, 1]");
    check(&[("share = \"0.70\"", "share = \"-0.1\"")], "allocation.pre_allocation.share", "within [0, 1]");
    check(&[("listed_band = \"0.10\"", "listed_band = \"10\"")], "trading.listed_band", "within [0, 1]");
    check(&[("limit_share = \"0.05\"", "limit_share = \"5\"")], "compliance.offsets[0].limit_share", "within [0, 1]");
    check(
        &[("kind = \"output_based\"", "kind = \"absolute\"\nsplit = { auction_share = \"0.7\", government_reserve_share = \"0.5\" }")],
        "cap.split",
        "more than 100%",
    );
}

#[test]
fn benchmark_years_outside_the_period_are_refused() {
    let e = check(
        &[("[allocation.benchmarks.2024]", "[allocation.benchmarks.2027]")],
        "allocation.benchmarks.2027",
        "outside the period 2023–2024",
    );
    assert_eq!(e.line, Some(line_of("[allocation.benchmarks.2024]")));
    // The year it replaced is now missing: both problems are reported at once.
    check(&[("[allocation.benchmarks.2024]", "[allocation.benchmarks.2027]")], "allocation.benchmarks", "no benchmarks for 2024");
    check(&[("first_year = 2023", "first_year = 2025")], "rulebook.first_year", "starts in 2025 after it ends in 2024");
}

#[test]
fn a_penalty_multiple_outside_its_range_is_refused() {
    check(
        &[("applied_multiple = \"5\"", "applied_multiple = \"11\"")],
        "compliance.penalty.applied_multiple",
        "outside the rule's range [5, 10]",
    );
    check(&[("max_multiple = \"10\"", "max_multiple = \"4\"")], "compliance.penalty.max_multiple", "below the minimum 5");
}

#[test]
fn an_uncertain_key_that_does_not_exist_is_refused() {
    let edit = ("\n[uncertain]\n", "\n[uncertain]\n\"allocation.colour\" = { source = \"ets\", why = \"a test\" }\n");
    check(&[edit], "uncertain.\"allocation.colour\"", "'allocation.colour' is not a key of this file");
    let edit = ("\n[uncertain]\n", "\n[uncertain]\n\"allocation.gap_cap\" = { source = \"NOWHERE\", why = \"a test\" }\n");
    check(&[edit], "uncertain.\"allocation.gap_cap\".source", "'NOWHERE' is neither in [rulebook].sources nor `ets`");
}

#[test]
fn bad_toml_syntax_names_the_table_the_key_and_the_line() {
    let e = check(&[("gap_cap = \"0.20\"", "gap_cap = \"0.20")], "allocation.gap_cap", "TOML syntax");
    assert_eq!(e.line, Some(line_of("gap_cap = \"0.20\"")));
    let e = check(&[("cat_iv = \"0.3288\"", "cat_iv = 0.32.88")], "allocation.benchmarks.2024.cat_iv", "TOML syntax");
    assert_eq!(e.line, Some(line_of("cat_iv = \"0.3288\"")));
}

#[test]
fn other_semantic_problems_are_refused_all_at_once() {
    let errors = errors_of(&[
        ("market = \"CN\"", "market = \"cn\""),
        ("deadline_month = 12", "deadline_month = 2"),
        ("deadline_day = 31", "deadline_day = 30"),
        ("standards = [\"CCER\"]", "standards = []"),
        ("block_min_t = 100000", "block_min_t = 50000"),
    ]);
    let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
    for key in ["rulebook.market", "compliance.deadline_day", "compliance.offsets[0].standards", "trading.listed_max_order_t"] {
        assert!(keys.contains(&key), "no error on {key}: {errors:?}");
    }
    assert!(errors.iter().all(|e| e.file == "bad.toml"));
    let edit = (
        "[compliance.vintages]",
        "[[compliance.offsets]]\nstandards = [\"CCER\"]\nlimit_share = \"0.01\"\nbasis = \"obligation\"\n\n[compliance.vintages]",
    );
    check(&[edit], "compliance.offsets[1].standards", "standard 'CCER' is already in compliance.offsets[0]");
}

#[test]
fn diff_lists_what_the_draft_changes() {
    let old = load("cn-power-2023-2024.toml");
    let new = load("cn-power-2025-2026-draft.toml");
    let changes = old.diff(&new);
    let find = |key: &str| changes.iter().find(|(k, _, _)| k == key).map(|(_, a, b)| (a.as_str(), b.as_str()));
    assert_eq!(find("allocation.pre_allocation.share"), Some(("0.70", "0.5")));
    assert_eq!(find("allocation.benchmarks.2024.cat_i"), Some(("0.7910", "(absent)")));
    assert_eq!(find("allocation.benchmarks.2025.cat_i"), Some(("(absent)", "0.7902")));
    assert_eq!(find("allocation.benchmarks.2026.heat_coal"), Some(("(absent)", "0.1021")));
    assert_eq!(find("allocation.load_factor.formula"), Some(("exponential", "draft2526")));
    assert_eq!(find("rulebook.status"), Some(("final", "draft")));
    // Unchanged values are not listed, nor decimals equal in value.
    assert_eq!(find("allocation.gap_cap"), None);
    assert_eq!(find("compliance.offsets[0].limit_share"), None);
    assert!(old.diff(&old).is_empty());
}
