//! Allocation plus compliance for a whole market: a bench binary (not a timed test).
//!
//!     cargo bench -p ets-rules --bench cycle                        # 10,000 entities, 100,000 units
//!     ETS_BENCH_SCALE=small cargo bench -p ets-rules --bench cycle  # 1,000 entities (CI)
//!
//! 10,000 power entities with 10 generating units each (categories I–IV, loads around the
//! peak-shaving threshold, gas units, some entities short of allowances) are allocated under the
//! shipped 2023–2024 national power rulebook (unit formula, rounding, gas exemption, 20% gap cap,
//! pre-allocation and true-up), then assessed for compliance: each entity surrenders offsets
//! (some ineligible, some beyond the 5% limit) and allowances of several vintages, and its
//! obligation, counted units, shortfall and penalty are computed.

use ets_core::{Date, Fen};
use ets_rules::allocation::power::{allocate, Category, PowerUnit};
use ets_rules::compliance::{Lot, Project, Units};
use ets_rules::rulebook::{builtin, Allocation, Rulebook};
use rust_decimal::Decimal;
use std::time::Instant;

fn main() {
    let entities: usize = if std::env::var("ETS_BENCH_SCALE").as_deref() == Ok("small") { 1_000 } else { 10_000 };
    let per_entity = 10;
    // The shipped 2023–2024 national rulebook: the rules a regulator would run.
    let (file, text) = builtin().iter().find(|(f, _)| f.starts_with("cn-power-2023-2024")).expect("shipped rulebook");
    let rulebook = Rulebook::from_toml(file, text).expect("valid rulebook");
    let Allocation::Power(rules) = &rulebook.allocation else { panic!("a power rulebook") };
    let compliance = &rulebook.compliance;
    // A seeded population (SplitMix64), so that every run measures the same work.
    let mut state = 2024u64;
    let mut next = move |lo: u64, hi: u64| {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        lo + (z ^ (z >> 31)) % (hi - lo + 1)
    };
    let mut units = Vec::with_capacity(entities * per_entity);
    for e in 0..entities {
        for u in 0..per_entity {
            let category = [Category::I, Category::II, Category::III, Category::IV][next(0, 3) as usize];
            let mwh = next(200_000, 4_000_000);
            let intensity = if category == Category::IV { next(300, 420) } else { next(750, 1_050) };
            units.push(PowerUnit {
                unit: format!("E{e:05}-U{u}"),
                entity: format!("E{e:05}"),
                category,
                generated_mwh: Decimal::from(mwh),
                supplied_mwh: Decimal::from(mwh * 94 / 100),
                heat_gj: Decimal::from(next(0, 1) * next(0, 2_000_000)),
                load_factor: Decimal::new(next(40, 95) as i64, 2),
                air_cooled: next(0, 1) == 1,
                heat_ratio: Decimal::ZERO,
                verified_t: Decimal::new((mwh * intensity) as i64, 3),
                previous_verified_t: Decimal::new((mwh * intensity * 98 / 100) as i64, 3),
                base_year_mwh: Decimal::ZERO,
                base_year_heat_gj: Decimal::ZERO,
            });
        }
    }
    let project = |id: &str, kind: &str, registered: &str| Project {
        id: id.into(),
        standard: "CCER".into(),
        province: "Gansu".into(),
        project_type: kind.into(),
        registered: Date::parse(registered).unwrap(),
    };
    let wind = Units::Offset { project: project("W1", "wind", "2024-05-01"), vintage: 2024 };
    let hydro = Units::Offset { project: project("H1", "hydro", "2024-05-01"), vintage: 2024 };

    let started = Instant::now();
    let allocations = allocate(rules, 2024, &units).expect("allocation");
    let allocated = started.elapsed();
    let mut compliant = 0usize;
    let mut fines: i64 = 0;
    for a in &allocations {
        let obligation = compliance.obligation(a.verified_t).unwrap();
        let short = next(0, 9) == 0;
        let allowances = if short { obligation * 9 / 10 } else { obligation };
        let lots = [
            Lot { units: wind.clone(), quantity: obligation / 15 },
            Lot { units: hydro.clone(), quantity: 1_000 },
            Lot { units: Units::Allowance { vintage: 2023 }, quantity: allowances / 3 },
            Lot { units: Units::Allowance { vintage: 2024 }, quantity: allowances - allowances / 3 },
        ];
        let r = compliance.assess(2024, a.verified_t, a.final_t, &lots, Fen(6_236)).unwrap();
        compliant += usize::from(r.compliant);
        fines += r.fine_minor;
    }
    let total = started.elapsed();
    println!("| figure | value | conditions |\n|---|---|---|");
    println!(
        "| power allocation (unit formula, gas exemption, 20% gap cap, pre-allocation, true-up) | {:.1} ms | {entities} entities, {} units |",
        allocated.as_secs_f64() * 1e3,
        units.len()
    );
    println!(
        "| allocation plus compliance assessment (obligation, offsets within limits, vintages, shortfall, penalty) | {:.1} ms | {compliant} of {entities} compliant; fines ¥{} |",
        total.as_secs_f64() * 1e3,
        fines / 100
    );
}
