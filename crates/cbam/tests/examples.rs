//! The worked examples of shared/domain/cbam.md §9 (E1–E4), each with its hand-computed figures,
//! and the cases the examples do not write down: the threshold edge, electricity and hydrogen,
//! EU-origin precursors, cycles, the floor at zero, Column A against Column B, the mark-up by
//! year, the common errors cbam.md warns about, and bad input.

use ets_cbam::liability::{declare, ActualData, Declaration, DeclarationResult, ImportLine, LiabilityParams, Method};
use ets_cbam::see::{compute, InstallationInput, InstallationResult, SeeParams};
use ets_cbam::{CbamError, Reference};
use ets_core::Date;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use std::str::FromStr;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn reference() -> Reference {
    Reference::builtin().unwrap()
}

fn installation(processes: Value, purchased: Value) -> InstallationInput {
    serde_json::from_value(json!({
        "installation": {"id": "CN-I-1", "name": "Test works", "country": "CN", "operator": "Test Steel Co."},
        "reporting_period": {"start": "2025-01-01", "end": "2025-12-31"},
        "electricity_ef": {"t_co2_per_mwh": "0.6", "source": "E1 illustrative"},
        "processes": processes,
        "purchased_precursors": purchased,
    }))
    .unwrap()
}

fn see(input: &InstallationInput) -> Result<InstallationResult, CbamError> {
    compute(input, &reference(), SeeParams::default())
}

fn line(id: &str, cn: &str, country: &str, mass: &str, on: &str) -> ImportLine {
    ImportLine {
        id: id.into(),
        cn: cn.into(),
        country: country.into(),
        net_mass_t: d(mass),
        imported_on: Date::parse(on).unwrap(),
        method: Method::Default,
        route: None,
        actual: None,
        priced_on: None,
    }
}

fn actual(mut l: ImportLine, see: &str, benchmark: &str) -> ImportLine {
    l.method = Method::Actual;
    l.actual = Some(ActualData { see_t_per_t: d(see), benchmark_t_per_t: Some(d(benchmark)), carbon_price_eur_per_t: None });
    l
}

fn declare_year(year: i32, lines: Vec<ImportLine>) -> Result<DeclarationResult, CbamError> {
    declare(&Declaration { importer: "EU-IMP".into(), year, lines }, &reference(), &LiabilityParams::default())
}

// ------------------------------------------------------------------------------ E1

#[test]
fn e1_simple_good_see_is_attributed_emissions_over_activity_level() {
    // AttrEm_dir = 50,000 t; AL = 25,000 t -> SEE = 2.000.
    let r = see(&installation(
        json!([{"id": "clinker", "cn": "25231000", "activity_level_t": "25000", "direct_emissions_t": "50000"}]),
        json!([]),
    ))
    .unwrap();
    assert_eq!(r.processes[0].see.direct, d("2.000"));
}

#[test]
fn e1_indirect_counts_for_cement_not_for_steel() {
    // Direct SEE 0.85, electricity 0.11 MWh/t, EF 0.6 t/MWh: cement 0.85 + 0.066 = 0.916;
    // a steel-type good ignores the indirect part.
    let r = see(&installation(
        json!([
            {"id": "cement", "cn": "25232900", "activity_level_t": "1000", "direct_emissions_t": "850", "electricity_mwh": "110"},
            {"id": "steel", "cn": "72081000", "route": "C", "activity_level_t": "1000", "direct_emissions_t": "850", "electricity_mwh": "110"}
        ]),
        json!([]),
    ))
    .unwrap();
    let cement = r.process("cement").unwrap();
    assert_eq!((cement.see.direct, cement.see.indirect, cement.see.counted), (d("0.85"), d("0.066"), d("0.916")));
    let steel = r.process("steel").unwrap();
    assert_eq!(steel.see.indirect, d("0.066"), "the indirect channel is still reported");
    assert_eq!(steel.see.counted, d("0.85"), "but only direct emissions count for steel");
}

// ------------------------------------------------------------------------------ E2

fn e2(slab_country: &str) -> InstallationInput {
    installation(
        json!([{"id": "hrc", "cn": "72081000", "route": "C", "activity_level_t": "100000", "direct_emissions_t": "4000",
                "precursors": [{"purchased": "slab", "mass_t": "105000"}]}]),
        json!([{"id": "slab", "cn": "72071116", "country": slab_country, "route": "C", "see_direct": "2.0", "verified": true}]),
    )
}

#[test]
fn e2_complex_good_adds_precursor_embedded_emissions() {
    // EE_InpMat = 105,000 × 2.0 = 210,000; SEE = (4,000 + 210,000) / 100,000 = 2.140.
    let r = see(&e2("IN")).unwrap();
    assert_eq!(r.processes[0].see.direct, d("2.140"));
    assert_eq!(r.processes[0].see.counted, d("2.140"));
    assert_eq!(r.processes[0].see.own_direct, d("0.04"), "the slab's emissions are not the installation's own");
}

#[test]
fn e2b_eu_origin_precursor_counts_zero() {
    // Same slab of EU origin: SEE = 4,000 / 100,000 = 0.040.
    let r = see(&e2("DE")).unwrap();
    assert_eq!(r.processes[0].see.direct, d("0.040"));
    assert_eq!(r.processes[0].precursors[0].kind, "eu_origin");
    // Annex III exempt origin (Norway) likewise.
    assert_eq!(see(&e2("NO")).unwrap().processes[0].see.direct, d("0.040"));
    // And the precursor brings no free-allocation benchmark either: Column A of 7208 alone.
    assert_eq!(see(&e2("DE")).unwrap().processes[0].see.benchmark, Some(d("0.044")));
}

// ------------------------------------------------------------------------------ E3

fn e3_base() -> Vec<ImportLine> {
    vec![
        actual(line("steel", "72081000", "CN", "30", "2026-02-01"), "2.0", "0.5"),
        actual(line("alu", "76011000", "CN", "15", "2026-02-01"), "2.0", "0.5"),
        actual(line("cement", "25232900", "CN", "4", "2026-02-01"), "0.9", "0.5"),
    ]
}

#[test]
fn e3_importer_a_49_t_is_exempt() {
    let r = declare_year(2026, e3_base()).unwrap();
    assert_eq!(r.threshold.mass_counted_t, d("49"));
    assert!(r.threshold.exempt);
    assert_eq!(r.certificates, Decimal::ZERO);
    assert!(r.lines.iter().all(|l| l.exempt));
}

#[test]
fn e3_importer_b_51_t_puts_all_51_t_in_scope() {
    let mut lines = e3_base();
    lines.push(actual(line("fert", "31021010", "CN", "2", "2026-02-01"), "3.0", "1.0"));
    let r = declare_year(2026, lines).unwrap();
    assert_eq!(r.threshold.mass_counted_t, d("51"));
    assert!(!r.threshold.exempt);
    assert!(r.lines.iter().all(|l| !l.exempt && l.certificates > Decimal::ZERO));
    // steel: 30 × (2.0 − 0.975 × 0.5) = 30 × 1.5125 = 45.375
    assert_eq!(r.lines[0].certificates, d("45.375"));
}

#[test]
fn e3_importer_c_hydrogen_does_not_count_and_is_always_in_scope() {
    let mut lines = e3_base();
    lines.push(line("h2", "28041000", "AU", "1", "2026-02-01"));
    let r = declare_year(2026, lines).unwrap();
    assert_eq!(r.threshold.mass_counted_t, d("49"), "hydrogen is not counted towards the threshold");
    assert!(r.threshold.exempt);
    let h2 = &r.lines[3];
    assert!(!h2.exempt);
    // AU default 10.82 × 1.10 = 11.902; SEFA = 0.975 × 5.089 = 4.961775; 1 t -> 6.940225.
    assert_eq!(h2.certificates, d("6.940225"));
    assert_eq!(r.certificates, d("6.940225"));
}

#[test]
fn threshold_edge_50_t_is_exempt_and_50_001_is_not() {
    let mut at = e3_base();
    at.push(actual(line("one", "72081000", "CN", "1", "2026-02-01"), "2.0", "0.5"));
    let r = declare_year(2026, at.clone()).unwrap();
    assert_eq!(r.threshold.mass_counted_t, d("50"));
    assert!(r.threshold.exempt, "50 t is not above 50 t");
    at[3].net_mass_t = d("1.001");
    let r = declare_year(2026, at).unwrap();
    assert!(!r.threshold.exempt, "50.001 t exceeds the threshold");
    assert!(r.certificates > Decimal::ZERO);
}

#[test]
fn electricity_has_no_threshold_and_no_free_allocation_adjustment() {
    let mut l = actual(line("power", "27160000", "RS", "10", "2026-03-01"), "0.8", "0");
    l.actual.as_mut().unwrap().benchmark_t_per_t = None; // not needed for electricity
    let r = declare_year(2026, vec![l]).unwrap();
    assert!(r.threshold.exempt, "no threshold goods at all");
    let p = &r.lines[0];
    assert!(!p.exempt);
    assert_eq!((p.faa_t, p.benchmark_column), (Decimal::ZERO, "none"));
    assert_eq!(p.certificates, d("8.0"));
    assert_eq!(p.cost_eur, d("602.88")); // 8 × 75.36
}

// ------------------------------------------------------------------------------ E4

#[test]
fn e4_china_hrc_on_default_values_q1_2026() {
    // SEE = 3.19 × 1.10 = 3.509; SEFA = 0.975 × 1.0 × 1.370 = 1.33575; per t 2.17325;
    // 1,000 t -> 2,173.25 certificates; cost 2,173.25 × 75.36 = EUR 163,776.12.
    let r = declare_year(2026, vec![line("hrc", "72081000", "CN", "1000", "2026-02-10")]).unwrap();
    let l = &r.lines[0];
    assert_eq!(l.see_t_per_t, d("3.509"));
    assert_eq!(l.sefa_t_per_t, d("1.33575"));
    assert_eq!(l.benchmark_column, "B");
    assert_eq!(l.certificates, d("2173.25"));
    assert_eq!(l.price_period, "2026-Q1");
    assert_eq!(l.cost_eur, d("163776.12"));
    assert_eq!(r.cost_eur, d("163776.12"));
}

// ------------------------------------------------------------------------------ common errors

#[test]
fn common_error_phase_in_is_not_a_multiplier_on_embedded_emissions() {
    let r = declare_year(2026, vec![line("hrc", "72081000", "CN", "1000", "2026-02-10")]).unwrap();
    // The wrong formula, embedded × phase-in (2.5 %), would give 87.725.
    assert_ne!(r.certificates, d("3509") * d("0.025"));
    // 2030: 3.19 × 1.30 = 4.147; 0.515 × 1.370 = 0.70555; 1,000 t -> 3,441.45 (not 4,147 × 48.5 % = 2,011.295).
    let mut p = LiabilityParams::default();
    p.prices.insert("2030-W07".into(), d("80"));
    let r = declare(
        &Declaration { importer: "X".into(), year: 2030, lines: vec![line("hrc", "72081000", "CN", "1000", "2030-02-12")] },
        &reference(),
        &p,
    )
    .unwrap();
    assert_eq!(r.lines[0].price_period, "2030-W07");
    assert_eq!(r.certificates, d("3441.45"));
    assert_eq!(r.cost_eur, d("275316.00"));
}

#[test]
fn common_error_complex_goods_subtract_precursor_benchmarks_not_column_a_only() {
    // Benchmark per t of HRC from E2: Column A 0.044 + 1.05 × Column B of the slab 1.364 = 1.4762.
    let r = see(&e2("IN")).unwrap();
    let hrc = &r.processes[0];
    assert_eq!(hrc.see.benchmark, Some(d("1.4762")));
    // 1,000 t in Q1 2026: 2,140 − 1,000 × 0.975 × 1.4762 = 2,140 − 1,439.295 = 700.705
    // (Column A alone would leave 2,140 − 42.9 = 2,097.1).
    let l = ImportLine {
        method: Method::Actual,
        actual: Some(ActualData::from_process(hrc)),
        ..line("hrc", "72081000", "IN", "1000", "2026-01-20")
    };
    let d26 = declare_year(2026, vec![l]).unwrap();
    assert_eq!(d26.lines[0].faa_t, d("1439.295"));
    assert_eq!(d26.certificates, d("700.705"));
    assert_eq!(d26.cost_eur, d("52805.13"));
}

#[test]
fn column_a_for_actual_simple_goods_column_b_for_defaults() {
    let r = see(&installation(
        json!([{"id": "hrc", "cn": "72081000", "route": "C", "activity_level_t": "1000", "direct_emissions_t": "2000"}]),
        json!([]),
    ))
    .unwrap();
    assert_eq!(r.processes[0].see.benchmark, Some(d("0.044")), "simple good on actual data: Column A");
    let a = declare_year(
        2026,
        vec![ImportLine {
            method: Method::Actual,
            actual: Some(ActualData::from_process(&r.processes[0])),
            ..line("a", "72081000", "CN", "1", "2026-01-05")
        }],
    )
    .unwrap();
    assert_eq!(a.lines[0].sefa_t_per_t, d("0.0429"));
    let b = declare_year(2026, vec![line("b", "72081000", "CN", "1", "2026-01-05")]).unwrap();
    assert_eq!(b.lines[0].sefa_t_per_t, d("1.33575"));
}

#[test]
fn default_value_mark_up_by_year() {
    let mut p = LiabilityParams::default();
    for w in ["2027-W07", "2028-W07", "2029-W07", "2033-W07"] {
        p.prices.insert(w.into(), d("70"));
    }
    let see_in = |year: i32, cn: &str, country: &str| {
        let on = format!("{year}-02-15");
        let r =
            declare(&Declaration { importer: "X".into(), year, lines: vec![line("l", cn, country, "1", &on)] }, &reference(), &p).unwrap();
        r.lines[0].see_t_per_t
    };
    assert_eq!(see_in(2027, "72081000", "CN"), d("3.828")); // 3.19 × 1.20
    assert_eq!(see_in(2028, "72081000", "CN"), d("4.147")); // 3.19 × 1.30
    assert_eq!(see_in(2033, "72081000", "CN"), d("4.147")); // stays at 30 %
    assert_eq!(see_in(2027, "28041000", "BR"), d("12.984")); // hydrogen 10.82 × 1.20
}

#[test]
fn floor_at_zero_per_line() {
    // Actual SEE 0.5 below the relief 0.975 × 1.0: the line would be −0.475 per t.
    let lines = vec![
        actual(line("low", "72081000", "CN", "100", "2026-01-05"), "0.5", "1.0"),
        actual(line("high", "72081000", "CN", "100", "2026-01-05"), "2.0", "1.0"),
    ];
    let r = declare_year(2026, lines).unwrap();
    assert_eq!(r.lines[0].certificates, Decimal::ZERO);
    assert!(r.lines[0].floored);
    assert_eq!(r.lines[1].certificates, d("102.5"));
    assert_eq!(r.certificates, d("102.5"), "a negative line does not offset another");
}

#[test]
fn carbon_price_paid_reduces_certificates_only_with_actual_data() {
    let mut l = actual(line("hrc", "72081000", "CN", "1000", "2026-01-05"), "2.0", "1.0");
    l.actual.as_mut().unwrap().carbon_price_eur_per_t = Some(d("7.536"));
    // Reduction = 1,000 × 7.536 / 75.36 = 100; certificates = 2,000 − 975 − 100 = 925.
    let r = declare_year(2026, vec![l]).unwrap();
    assert_eq!(r.lines[0].carbon_price_reduction_t, d("100"));
    assert_eq!(r.certificates, d("925"));
    // On defaults there is nowhere to put a carbon price: an actual block is refused.
    let mut bad = line("hrc", "72081000", "CN", "1000", "2026-01-05");
    bad.actual = Some(ActualData { see_t_per_t: d("2"), benchmark_t_per_t: None, carbon_price_eur_per_t: Some(d("5")) });
    let e = declare_year(2026, vec![bad]).unwrap_err();
    assert_eq!(e.field(), Some("lines[0].actual"));
}

#[test]
fn quarterly_holding_from_2027_on_defaults_without_mark_up_net_of_faa() {
    let mut p = LiabilityParams::default();
    p.prices.insert("2027-W07".into(), d("70"));
    p.prices.insert("2027-W32".into(), d("70"));
    let lines = vec![line("q1", "72081000", "CN", "100", "2027-02-15"), line("q3", "72081000", "CN", "100", "2027-08-10")];
    let r = declare(&Declaration { importer: "X".into(), year: 2027, lines }, &reference(), &p).unwrap();
    let h = r.holding.unwrap();
    // Q1: 100 × 3.19 = 319; FAA 100 × 0.95 × 1.370 = 130.15; 50 % of 188.85 = 94.425.
    assert_eq!((h[0].embedded_default_t, h[0].faa_t, h[0].required), (d("319"), d("130.15"), d("94.425")));
    assert_eq!(h[1].required, d("94.425"));
    assert_eq!(h[2].required, d("188.85"));
    // No holding in 2026.
    assert!(declare_year(2026, vec![line("q1", "72081000", "CN", "100", "2026-02-15")]).unwrap().holding.unwrap().is_empty());
}

// ------------------------------------------------------------------------------ precursors, attribution, cycles

#[test]
fn steel_from_purchased_sinter_includes_the_sinters_indirect_emissions() {
    // Sinter (direct + indirect counts) into pig iron (direct only): 2 t sinter per t iron.
    // Sinter BR default: 0.190 direct + 0.010 indirect -> the iron counts 2 × 0.200 = 0.4 from it.
    let r = see(&installation(
        json!([{"id": "iron", "cn": "72011011", "activity_level_t": "1000", "direct_emissions_t": "1500", "electricity_mwh": "100",
                "precursors": [{"purchased": "sinter", "mass_t": "2000"}]}]),
        json!([{"id": "sinter", "cn": "26011200", "country": "BR"}]),
    ))
    .unwrap();
    let iron = &r.processes[0];
    assert_eq!(iron.see.counted, d("1.9")); // 1.5 + 0.4; the iron's own 0.06 indirect is not counted
    assert_eq!(iron.see.direct, d("1.88")); // 1.5 + 2 × 0.190
    assert_eq!(iron.see.indirect, d("0.08")); // (100 × 0.6 + 2000 × 0.010) / 1000
}

#[test]
fn own_precursor_chain_recurses() {
    // sinter -> iron -> slab: each own process feeds the next.
    let r = see(&installation(
        json!([
            {"id": "slab", "cn": "72071116", "route": "C", "activity_level_t": "900", "direct_emissions_t": "90",
             "precursors": [{"process": "iron", "mass_t": "1000"}]},
            {"id": "iron", "cn": "72011011", "activity_level_t": "1000", "direct_emissions_t": "1500",
             "precursors": [{"process": "sinter", "mass_t": "1500"}]},
            {"id": "sinter", "cn": "26011200", "activity_level_t": "1500", "direct_emissions_t": "300", "electricity_mwh": "50"}
        ]),
        json!([]),
    ))
    .unwrap();
    // sinter: direct 0.2, indirect 50 × 0.6 / 1500 = 0.02, counted 0.22.
    assert_eq!(r.process("sinter").unwrap().see.counted, d("0.22"));
    // iron: (1500 + 1500 × 0.22) / 1000 = 1.83 counted.
    assert_eq!(r.process("iron").unwrap().see.counted, d("1.83"));
    // slab: (90 + 1000 × 1.83) / 900 = 2.1333... (12 places, half-even)
    assert_eq!(r.process("slab").unwrap().see.counted, d("2.133333333333"));
}

#[test]
fn precursor_cycles_are_reported_with_their_path() {
    let e = see(&installation(
        json!([
            {"id": "a", "cn": "72071116", "route": "C", "activity_level_t": "1", "direct_emissions_t": "1", "precursors": [{"process": "b", "mass_t": "1"}]},
            {"id": "b", "cn": "72081000", "route": "C", "activity_level_t": "1", "direct_emissions_t": "1", "precursors": [{"process": "c", "mass_t": "1"}]},
            {"id": "c", "cn": "72081000", "route": "C", "activity_level_t": "1", "direct_emissions_t": "1", "precursors": [{"process": "a", "mass_t": "1"}]}
        ]),
        json!([]),
    ))
    .unwrap_err();
    assert_eq!(e, CbamError::Cycle { path: vec!["a".into(), "b".into(), "c".into(), "a".into()] });
    assert!(e.to_string().contains("a -> b -> c -> a"));
}

#[test]
fn attribution_with_heat_exports_and_shares_of_the_installation() {
    let mut input = installation(
        json!([
            {"id": "hrc", "cn": "72081000", "route": "C", "activity_level_t": "1000", "share_of_installation": "0.25", "heat_exported_t": "50"},
            {"id": "slab", "cn": "72071116", "route": "C", "activity_level_t": "2000", "share_of_installation": "0.75", "heat_imported_t": "50"}
        ]),
        json!([]),
    );
    input.direct_emissions_t = Some(d("4000"));
    let r = see(&input).unwrap();
    assert_eq!(r.process("hrc").unwrap().attributed_direct_t, d("950.00"));
    assert_eq!(r.process("slab").unwrap().attributed_direct_t, d("3050.00"));
    input.processes[0].share_of_installation = Some(d("0.20"));
    let e = see(&input).unwrap_err();
    assert!(e.to_string().contains("add up to 3800.00 t but the installation's direct_emissions_t is 4000 t"), "{e}");
}

// ------------------------------------------------------------------------------ bad input

#[test]
fn bad_input_names_the_field_and_the_reason() {
    let check = |r: Result<_, CbamError>, field: &str, reason: &str| {
        let e = r.err().unwrap_or_else(|| panic!("expected an error for {field}"));
        assert_eq!(e.field(), Some(field), "{e}");
        assert!(e.to_string().contains(reason), "{e}");
    };
    // Unknown CN code.
    check(declare_year(2026, vec![line("x", "84713000", "CN", "1", "2026-01-05")]).map(|_| ()), "lines[0].cn", "not a CBAM good");
    // Negative quantity.
    check(declare_year(2026, vec![line("x", "72081000", "CN", "-5", "2026-01-05")]).map(|_| ()), "lines[0].net_mass_t", "negative");
    // A year outside the rules.
    check(declare_year(2025, vec![line("x", "72081000", "CN", "1", "2025-01-05")]).map(|_| ()), "year", "before the definitive period");
    check(declare_year(2035, vec![]).map(|_| ()), "year", "after 2034");
    // An import date outside the declaration year.
    check(
        declare_year(2026, vec![line("x", "72081000", "CN", "1", "2027-01-05")]).map(|_| ()),
        "lines[0].imported_on",
        "not in the declaration year",
    );
    // A price not published.
    check(
        declare_year(2026, vec![line("x", "72081000", "CN", "1", "2026-05-05")]).map(|_| ()),
        "lines[0].imported_on",
        "no certificate price for 2026-Q2",
    );
    // Missing precursor data: a purchased precursor that is not listed, and one without data or default.
    let missing = installation(
        json!([{"id": "hrc", "cn": "72081000", "activity_level_t": "1", "direct_emissions_t": "1", "precursors": [{"purchased": "slab", "mass_t": "1"}]}]),
        json!([]),
    );
    check(see(&missing).map(|_| ()), "processes[0].precursors[0].purchased", "missing precursor data");
    let no_default = installation(
        json!([{"id": "c", "cn": "25232900", "activity_level_t": "1", "direct_emissions_t": "1"}]),
        json!([{"id": "k", "cn": "25231000", "country": "VN"}]),
    );
    check(see(&no_default).map(|_| ()), "purchased_precursors[0].see_direct", "missing precursor data");
    // Negative activity data.
    let neg = installation(json!([{"id": "c", "cn": "25232900", "activity_level_t": "1", "direct_emissions_t": "-1"}]), json!([]));
    check(see(&neg).map(|_| ()), "processes[0].direct_emissions_t", "negative");
    let zero_al = installation(json!([{"id": "c", "cn": "25232900", "activity_level_t": "0", "direct_emissions_t": "1"}]), json!([]));
    check(see(&zero_al).map(|_| ()), "processes[0].activity_level_t", "greater than zero");
    // Route needed where the benchmark depends on it and the default value does not say.
    check(declare_year(2026, vec![line("x", "72081000", "IN", "1", "2026-01-05")]).map(|_| ()), "lines[0].route", "give the route");
}

#[test]
fn unverified_precursor_actual_data_falls_back_to_the_default_value() {
    let input = installation(
        json!([{"id": "hrc", "cn": "72081000", "route": "C", "activity_level_t": "100000", "direct_emissions_t": "4000",
                "precursors": [{"purchased": "slab", "mass_t": "105000"}]}]),
        json!([{"id": "slab", "cn": "72071116", "country": "CN", "see_direct": "2.0", "verified": false}]),
    );
    let r = see(&input).unwrap();
    // China 7207 11 16 default 3.17 (no mark-up in a communication by default): (4,000 + 105,000 × 3.17) / 100,000 = 3.3685.
    assert_eq!(r.processes[0].see.direct, d("3.3685"));
    assert!(r.warnings.iter().any(|w| w.contains("verification report")));
    // With the 2026 mark-up on precursor defaults (a parameter): 3.17 × 1.1 = 3.487 -> 3.70135.
    let marked = compute(&input, &reference(), SeeParams { precursor_markup_year: Some(2026) }).unwrap();
    assert_eq!(marked.processes[0].see.direct, d("3.70135"));
}
