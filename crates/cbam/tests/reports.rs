//! The carbon price paid in China read from the registry, the communication (JSON and xlsx round
//! trips), the QReport XML (parsed back) and the 2026–2034 scenario.

use ets_cbam::carbon_price::{carbon_price_paid, Purchase};
use ets_cbam::communication::Communication;
use ets_cbam::liability::LiabilityParams;
use ets_cbam::qreport::{self, QReportInput};
use ets_cbam::scenario::{self, ScenarioActual, ScenarioInput};
use ets_cbam::see::{compute, InstallationInput, SeeParams};
use ets_cbam::Reference;
use ets_core::Tonnes;
use ets_registry::*;
use rust_decimal::Decimal;
use serde_json::json;
use std::str::FromStr;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

// ------------------------------------------------------------------------------ registry

struct Reg {
    r: Registry,
    n: u64,
}

impl Reg {
    fn ok(&mut self, actor: &str, command: Command) {
        self.n += 1;
        let env = Envelope { id: format!("c{}", self.n), actor: actor.into(), command };
        assert!(matches!(self.r.execute(&env), Ok(Outcome::Accepted { .. })), "{env:?}");
    }
}

/// CN market; CN-100001 the exporter (alice), CN-100002 a seller (bob). The exporter gets
/// `free` t of CEA:2025 free, buys `auction` t from the reserve and `bought` t from bob.
fn registry(free: u64, auction: u64, bought: u64) -> Registry {
    let mut g = Reg { r: Registry::new(), n: 0 };
    g.ok("admin", Command::InitRegistry { admins: vec!["admin".into()] });
    g.ok(
        "admin",
        Command::AddMarket(MarketSpec {
            code: "CN".into(),
            name: "national".into(),
            level: MarketLevel::National,
            allowance_code: "CEA".into(),
            offset_standards: vec![],
            individuals_may_trade: false,
            authorities: vec!["mee".into()],
        }),
    );
    for rep in ["alice", "bob"] {
        g.ok(
            "mee",
            Command::OpenAccount {
                market: "CN".into(),
                kind: AccountKind::Operator,
                holder: rep.into(),
                holder_type: HolderType::Entity,
                representatives: vec![rep.into()],
            },
        );
    }
    let cea = UnitRef::allowance("CEA", 2025);
    g.ok("mee", Command::Issue { unit: cea.clone(), quantity: Tonnes(free + 10_000), to: None });
    g.ok("mee", Command::Allocate { from: "CN-ISSUANCE".into(), to: "CN-100001".into(), unit: cea.clone(), quantity: Tonnes(free) });
    g.ok("mee", Command::Allocate { from: "CN-ISSUANCE".into(), to: "CN-100002".into(), unit: cea.clone(), quantity: Tonnes(5_000) });
    if auction > 0 {
        g.ok("mee", Command::Issue { unit: cea.clone(), quantity: Tonnes(auction), to: Some("CN-RESERVE".into()) });
        g.ok("mee", Command::Allocate { from: "CN-RESERVE".into(), to: "CN-100001".into(), unit: cea.clone(), quantity: Tonnes(auction) });
    }
    if bought > 0 {
        g.ok("bob", Command::Transfer { from: "CN-100002".into(), to: "CN-100001".into(), unit: cea, quantity: Tonnes(bought) });
    }
    g.r
}

#[test]
fn carbon_price_counts_only_allowances_bought_beyond_free_allocation() {
    // Emissions 1,200 t, free 1,000 t, bought 300 t at CNY 80: only the 200 t shortfall counts.
    let r = registry(1_000, 0, 300);
    let p = carbon_price_paid(&r, "CN-100001", 2025, d("1200"), &[Purchase { quantity_t: 300, price_cny: d("80") }]).unwrap();
    assert_eq!((p.free_allocated_t, p.bought_t, p.paid_t), (1_000, 300, d("200")));
    assert_eq!(p.paid_cny, d("16000.00"));
    assert_eq!(p.per_t_co2e_cny, d("13.333333333333"));
    // Auction purchases from the reserve count as bought, at their price.
    let r = registry(1_000, 100, 100);
    let p = carbon_price_paid(
        &r,
        "CN-100001",
        2025,
        d("1200"),
        &[Purchase { quantity_t: 100, price_cny: d("70") }, Purchase { quantity_t: 100, price_cny: d("90") }],
    )
    .unwrap();
    assert_eq!((p.bought_t, p.paid_t, p.average_price_cny, p.paid_cny), (200, d("200"), d("80"), d("16000.00")));
}

#[test]
fn common_error_no_deduction_for_a_price_free_allocation_covered() {
    // Free allocation equals emissions: allowances bought anyway were not needed, nothing was
    // effectively paid for the emissions.
    let r = registry(1_000, 0, 200);
    let p = carbon_price_paid(&r, "CN-100001", 2025, d("1000"), &[Purchase { quantity_t: 200, price_cny: d("80") }]).unwrap();
    assert_eq!(p.paid_t, Decimal::ZERO);
    assert_eq!(p.per_t_co2e_cny, Decimal::ZERO);
    // No purchases at all: nothing paid whatever the shortfall.
    let r = registry(500, 0, 0);
    assert_eq!(carbon_price_paid(&r, "CN-100001", 2025, d("1000"), &[]).unwrap().paid_cny, Decimal::ZERO);
}

#[test]
fn carbon_price_purchases_must_match_the_registry() {
    let r = registry(1_000, 0, 100);
    let e = carbon_price_paid(&r, "CN-100001", 2025, d("1200"), &[Purchase { quantity_t: 300, price_cny: d("80") }]).unwrap_err();
    assert_eq!(e.field(), Some("purchases"));
    assert!(e.to_string().contains("registry shows 100 t of CEA:2025 bought into CN-100001"), "{e}");
    assert_eq!(carbon_price_paid(&r, "CN-999999", 2025, d("1"), &[]).unwrap_err().field(), Some("account"));
}

// ------------------------------------------------------------------------------ communication

fn example_installation() -> InstallationInput {
    let text = include_str!("../../../examples/cbam/steel-installation.json");
    serde_json::from_str(text).unwrap()
}

#[test]
fn shipped_example_installation_computes() {
    let input = example_installation();
    let r = compute(&input, &Reference::builtin().unwrap(), SeeParams::default()).unwrap();
    let hrc = r.process("hot-rolling").unwrap();
    // By hand: sinter 0.2 + 48,000 × 0.5703 / 1.6 Mt = 0.217109 (direct + indirect count for sinter);
    // iron (1,150,000 + 1.4 Mt × 0.217109 + 0.2 Mt × 0.200 BR pellets) / 1 Mt = 1.4939526;
    // slab (180,000 + 1 Mt × 1.4939526) / 1.05 Mt = 1.594240571429 (12 places);
    // HRC (50,000 + 1.03 Mt × 1.594240571429 + 20,000 × 2.05) / 1 Mt = 1.73306778857187 -> 1.733067788572.
    assert_eq!(r.process("sintering").unwrap().see.counted, d("0.217109"));
    assert_eq!(r.process("ironmaking").unwrap().see.counted, d("1.4939526"));
    assert_eq!(hrc.see.counted, d("1.733067788572"));
    // Benchmark: Column A 0.044 + (1.03 + 0.02) × Column B of slab 1.364 = 1.4762 (pig iron has no
    // benchmark in the data, so the own slab falls back to Column B, with a warning).
    assert_eq!(hrc.see.benchmark, Some(d("1.4762")));
    assert!(r.warnings.iter().any(|w| w.contains("precursor 'steelmaking' is Column B")), "{:?}", r.warnings);
    assert!(hrc.carbon_price_eur_per_t.is_some());
}

#[test]
fn communication_round_trips_through_json_and_xlsx() {
    let input = example_installation();
    let r = compute(&input, &Reference::builtin().unwrap(), SeeParams::default()).unwrap();
    let c = Communication::build(&input, &r);
    assert_eq!(Communication::from_json(&c.to_json()).unwrap(), c);
    let bytes = c.to_xlsx().unwrap();
    let back = Communication::from_xlsx(&bytes).unwrap();
    assert_eq!(back, c);
    // A workbook that is not ours is refused with a reason.
    let e = Communication::from_xlsx(b"not a zip").unwrap_err();
    assert_eq!(e.field(), Some("workbook"));
}

#[test]
fn xlsx_cell_errors_name_sheet_cell_and_column() {
    let input = example_installation();
    let r = compute(&input, &Reference::builtin().unwrap(), SeeParams::default()).unwrap();
    let mut c = Communication::build(&input, &r);
    // A decimal with more digits than a double holds is written as text and read back exactly.
    c.products[0].see_direct = d("1.2345678901234567890123");
    assert_eq!(Communication::from_xlsx(&c.to_xlsx().unwrap()).unwrap().products[0].see_direct, c.products[0].see_direct);
}

// ------------------------------------------------------------------------------ QReport

fn qreport_input() -> QReportInput {
    serde_json::from_value(json!({
        "draft_report_id": "DR-2025-Q4-001",
        "submission_date": "2026-01-20",
        "period": "Q4",
        "year": 2025,
        "declarant": {"id": "NL123456789", "name": "Steel & Co <EU> B.V.", "role": "01", "country": "NL", "city": "Rotterdam"},
        "competent_authority": "NL-NCA",
        "signature": {"date": "2026-01-20", "place": "Rotterdam", "signature": "J. \"Jan\" Jansen", "position": "CFO"},
        "goods": [{
            "cn": "72081000", "description": "Hot-rolled coil", "origin": "CN", "net_mass_t": "1000", "procedure": "40",
            "installation_id": "CN-I-1", "installation_name": "Hebei works", "operator_id": "OP-1", "operator_name": "Hebei Steel",
            "see_direct": "2.14", "see_indirect": "0.3", "determination_type": "01", "methodology": "TOM02"
        }]
    }))
    .unwrap()
}

#[test]
fn qreport_xml_parses_back_with_its_values_and_escaping() {
    use quick_xml::events::Event;
    let xml = qreport::write(&qreport_input(), &Reference::builtin().unwrap()).unwrap();
    let mut reader = quick_xml::Reader::from_str(&xml);
    let mut path: Vec<String> = Vec::new();
    let mut found: Vec<(String, String)> = Vec::new();
    loop {
        match reader.read_event().unwrap() {
            Event::Start(e) => path.push(e.name().as_ref().to_string()),
            Event::End(_) => {
                path.pop();
            }
            Event::Text(t) => found.push((path.join("/"), t.xml10_content().into_owned())),
            Event::GeneralRef(r) => {
                // quick-xml reports entity references separately; resolve the predefined ones.
                let ch = match r.as_ref() {
                    "amp" => "&",
                    "lt" => "<",
                    "gt" => ">",
                    "quot" => "\"",
                    "apos" => "'",
                    other => panic!("unexpected entity {other:?}"),
                };
                let key = path.join("/");
                match found.last_mut() {
                    Some((k, v)) if *k == key => v.push_str(ch),
                    _ => found.push((key, ch.to_string())),
                }
            }
            Event::Eof => break,
            _ => {}
        }
        // Text after an entity continues the same value.
        if let Some(i) = found.len().checked_sub(2) {
            if found[i].0 == found[i + 1].0 {
                let (_, tail) = found.remove(i + 1);
                found[i].1.push_str(&tail);
            }
        }
    }
    let get = |p: &str| found.iter().find(|(k, _)| k == p).map(|(_, v)| v.clone()).unwrap_or_else(|| panic!("no {p} in {xml}"));
    assert_eq!(get("QReport/Year"), "2025");
    assert_eq!(get("QReport/ReportingPeriod"), "Q4");
    assert_eq!(get("QReport/Declarant/Name"), "Steel & Co <EU> B.V.");
    assert_eq!(get("QReport/Signatures/ReportConfirmation/Signature"), "J. \"Jan\" Jansen");
    assert_eq!(get("QReport/Signatures/ReportConfirmation/SignatureDate"), "20260120");
    assert_eq!(get("QReport/ImportedGood/CommodityCode/HsCode"), "720810");
    assert_eq!(get("QReport/ImportedGood/CommodityCode/CnCode"), "00");
    // 1,000 t × (2.14 + 0.3) = 2,440 t.
    assert_eq!(get("QReport/TotalEmissions"), "2440");
    assert_eq!(get("QReport/ImportedGood/TotalEmissions/TotalDirect"), "2140");
    assert_eq!(get("QReport/ImportedGood/GoodsEmissions/DirectEmissions/SpecificEmbeddedEmissions"), "2.14");
    assert!(xml.contains("Steel &amp; Co &lt;EU&gt; B.V."));
}

#[test]
fn qreport_only_for_past_transitional_periods() {
    let r = Reference::builtin().unwrap();
    let mut q = qreport_input();
    q.year = 2026;
    assert!(qreport::write(&q, &r).unwrap_err().to_string().contains("not a transitional period"));
    q.year = 2023;
    q.period = "Q3".into();
    assert!(qreport::write(&q, &r).is_err());
    q.period = "Q4".into();
    assert!(qreport::write(&q, &r).is_ok());
    q.goods[0].cn = "7208".into();
    assert_eq!(qreport::write(&q, &r).unwrap_err().field(), Some("goods[0].cn"));
}

// ------------------------------------------------------------------------------ scenario

#[test]
fn scenario_2026_to_2034_default_against_actual_with_domestic_prices() {
    let input = ScenarioInput {
        cn: "72081000".into(),
        country: "CN".into(),
        route: None,
        net_mass_t: d("1000"),
        actual: Some(ScenarioActual { see_t_per_t: d("2.14"), benchmark_t_per_t: d("1.4762"), own_direct_t_per_t: d("2.14") }),
        certificate_price_eur: d("75.36"),
        domestic_prices_cny: vec![d("0"), d("100")],
        eur_per_cny: d("0.13"),
        first_year: 2026,
        last_year: 2034,
    };
    let years = scenario::run(&input, &Reference::builtin().unwrap(), &LiabilityParams::default()).unwrap();
    assert_eq!(years.len(), 9);
    // 2026 default is E4.
    let y26 = &years[0];
    assert_eq!((y26.cases[0].case.as_str(), y26.cases[0].certificates_per_t, y26.cases[0].eur), ("default", d("2.17325"), d("163776.12")));
    // Actual at CNY 0: 2.14 − 0.975 × 1.4762 = 0.700705 per t.
    assert_eq!(y26.cases[1].certificates_per_t, d("0.700705"));
    // At CNY 100: 100 × 2.14 × 0.13 = EUR 27.82 per t, / 75.36 = 0.369161... certificates less.
    assert!(y26.cases[2].certificates_per_t < y26.cases[1].certificates_per_t);
    // 2034: no free allocation; default 3.19 × 1.3 = 4.147 per t.
    let y34 = &years[8];
    assert_eq!(y34.cbam_factor, Decimal::ZERO);
    assert_eq!(y34.cases[0].certificates_per_t, d("4.147"));
    assert_eq!(y34.cases[1].certificates_per_t, d("2.14"));
    // The liability only grows as free allocation phases out.
    for w in years.windows(2) {
        assert!(w[1].cases[0].certificates_per_t >= w[0].cases[0].certificates_per_t);
    }
}
