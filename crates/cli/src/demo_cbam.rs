//! The CBAM part of `ets demo`: what the national market's carbon price is worth at the EU border.
//!
//! The demo's national market has power entities only (no steel works with MRV data), so:
//! 1. the carbon price effectively paid is read from the demo registry for the national
//!    operator that bought the most allowances at the compliance auction beyond its free
//!    allocation (`ets_cbam::carbon_price`), at ¥74.63 a tonne (the price the cycle uses);
//! 2. that effective price is applied to the shipped example steel works
//!    (`examples/cbam/steel-installation.json`, illustrative data): its communication to EU
//!    importers and the 2026–2034 liability of 10,000 t a year of hot-rolled coil, on default
//!    values against its actual data, with no domestic price, the demo's effective price and a
//!    full ¥74.63 on every tonne.

use crate::demo_cycle::CycleDemo;
use crate::output::table;
use crate::{CliError, ExitCode, Output};
use ets_cbam::carbon_price::{carbon_price_paid, Purchase};
use ets_cbam::communication::Communication;
use ets_cbam::liability::LiabilityParams;
use ets_cbam::scenario::{self, ScenarioActual, ScenarioInput};
use ets_cbam::see::{compute, CarbonPricePaid, InstallationInput, SeeParams};
use ets_cbam::Reference;
use ets_store::Ledger;
use rust_decimal::Decimal;

const EXAMPLE: &str = include_str!("../../../examples/cbam/steel-installation.json");
/// The national price of the demo cycle (china-ets.md §1.3, 2025 year-end close), in yuan.
const CEA_PRICE_CNY: Decimal = Decimal::from_parts(7463, 0, 0, false, 2);
/// EUR per CNY assumed by the demo (a parameter of the scenario, not data).
const EUR_PER_CNY: Decimal = Decimal::from_parts(128, 0, 0, false, 3);
/// EU certificate price assumed every year: the Q1 2026 price.
const CERTIFICATE_EUR: Decimal = Decimal::from_parts(7536, 0, 0, false, 2);
const EXPORT_T: i64 = 10_000;

pub struct CbamDemo {
    lines: Vec<String>,
    table: String,
}

fn internal(e: impl std::fmt::Display) -> CliError {
    CliError::new(ExitCode::Internal, format!("CBAM demo: {e}"))
}

pub fn run(ledger: &Ledger, cycle: &CycleDemo) -> Result<CbamDemo, CliError> {
    let reference = Reference::builtin().map_err(internal)?;
    let registry = ledger.registry();
    let year = cycle.year as u16;
    // 1. The national operator that bought the most beyond its free allocation.
    let mut best: Option<ets_cbam::carbon_price::DomesticCarbonPrice> = None;
    for row in cycle.markets.iter().filter(|m| m.market == "CN").flat_map(|m| &m.rows) {
        let (Some(account), Some(obligation)) = (row["account"].as_str(), row["obligation_t"].as_u64()) else { continue };
        let Ok(probe) = carbon_price_paid(registry, account, year, Decimal::from(obligation), &[]) else { continue };
        let bought = probe.bought_t.saturating_sub(probe.sold_t);
        if bought == 0 {
            continue;
        }
        let p = carbon_price_paid(
            registry,
            account,
            year,
            Decimal::from(obligation),
            &[Purchase { quantity_t: bought, price_cny: CEA_PRICE_CNY }],
        )
        .map_err(internal)?;
        if best.as_ref().is_none_or(|b| p.per_t_co2e_cny > b.per_t_co2e_cny) {
            best = Some(p);
        }
    }
    let effective = best.as_ref().map_or(Decimal::ZERO, |b| b.per_t_co2e_cny);
    let mut lines = Vec::new();
    match &best {
        Some(b) => lines.push(format!(
            "carbon price paid: {} ({}) emitted {} t, got {} t free and bought {} t at ¥{}: effectively ¥{} per t CO2 (free allowances are a rebate)",
            b.account, b.compliance_year, b.verified_emissions_t, b.free_allocated_t, b.paid_t, CEA_PRICE_CNY, effective.round_dp(4)
        )),
        None => lines.push("carbon price paid: no national operator bought allowances beyond its free allocation: ¥0 per t".into()),
    }

    // 2. The example steel works with that price.
    let mut input: InstallationInput = serde_json::from_str(EXAMPLE).map_err(internal)?;
    input.carbon_price = Some(CarbonPricePaid {
        per_t_co2e: effective.round_dp(4),
        currency: "CNY".into(),
        eur_per_unit: EUR_PER_CNY,
        instrument: "CEA bought beyond free allocation (demo registry)".into(),
        legal_act: "China national ETS".into(),
    });
    let result = compute(&input, &reference, SeeParams::default()).map_err(internal)?;
    let communication = Communication::build(&input, &result);
    let json_bytes = communication.to_json().len();
    let xlsx_bytes = communication.to_xlsx().map_err(internal)?.len();
    let hrc = result.process("hot-rolling").ok_or_else(|| internal("the example has no hot-rolling process"))?;
    lines.push(format!(
        "communication of {} ({}): {} products; hot-rolled coil CN {}: SEE counted {} t CO2/t (direct channel {}, indirect channel {}: for steel only the purchased and own sinter's electricity counts), benchmark {} t/t, carbon price due EUR {}/t; JSON {} bytes, xlsx {} bytes",
        input.installation.id,
        input.installation.name,
        communication.products.len(),
        hrc.cn,
        hrc.see.counted.round_dp(4),
        hrc.see.direct.round_dp(4),
        hrc.see.indirect.round_dp(4),
        hrc.see.benchmark.map_or("-".into(), |b| b.to_string()),
        hrc.carbon_price_eur_per_t.unwrap_or_default(),
        json_bytes,
        xlsx_bytes
    ));
    let benchmark = hrc.see.benchmark.ok_or_else(|| internal("no benchmark for hot-rolled coil"))?;
    let scenario_input = ScenarioInput {
        cn: hrc.cn.clone(),
        country: "CN".into(),
        route: hrc.route.clone(),
        net_mass_t: Decimal::from(EXPORT_T),
        actual: Some(ScenarioActual { see_t_per_t: hrc.see.counted, benchmark_t_per_t: benchmark, own_direct_t_per_t: hrc.see.own_direct }),
        certificate_price_eur: CERTIFICATE_EUR,
        domestic_prices_cny: vec![Decimal::ZERO, effective.round_dp(4), CEA_PRICE_CNY],
        eur_per_cny: EUR_PER_CNY,
        first_year: 2026,
        last_year: 2034,
    };
    let years = scenario::run(&scenario_input, &reference, &LiabilityParams::default()).map_err(internal)?;
    let names = ["default", "actual, ¥0", "actual, demo ¥", "actual, ¥74.63 on all"];
    let mut header = vec!["YEAR", "CBAM_FACTOR"];
    header.extend(names);
    let rows: Vec<Vec<String>> = years
        .iter()
        .map(|y| {
            let mut row = vec![y.year.to_string(), y.cbam_factor.to_string()];
            row.extend(y.cases.iter().map(|c| c.eur.to_string()));
            row
        })
        .collect();
    Ok(CbamDemo { lines, table: table(&header, &rows) })
}

impl CbamDemo {
    /// Printed after the summary (text only: the demo's JSON document is left as it is).
    pub fn print(&self, out: &Output) {
        if out.is_json() {
            return;
        }
        println!("\nCBAM (EU border, illustrative steel works; cbam-v1 reference data):");
        for l in &self.lines {
            println!("  {l}");
        }
        println!(
            "  liability in EUR of {EXPORT_T} t hot-rolled coil a year at EUR {CERTIFICATE_EUR} per certificate (EUR/CNY {EUR_PER_CNY}):"
        );
        for l in self.table.lines() {
            println!("    {l}");
        }
        println!("  try: ets cbam scenario --product 72081000 --installation examples/cbam/steel-installation.json --process hot-rolling --domestic-price 0 --domestic-price 74.63");
    }
}
