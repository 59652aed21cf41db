//! Seeded sample data: plausible monthly data of coal generating units and a whole MRV year
//! (registration, plans, monthly submissions, reports) with planted anomalies, for `ets demo`,
//! benchmarks and tests. Deterministic for a seed; no external randomness.
//!
//! A clean year keeps every value inside the plausible ranges of the factor data, quantities
//! within ±15% of a base, one lab report per month sampled in the month and dated 1–35 days after
//! month end, submissions 10–30 days after month end, heat rates of 8.8–10.0 GJ/MWh and
//! calibrations valid all year: the anomaly queue must be empty for it. Each planted anomaly
//! ([`Plant`]) breaks one rule and names the check that must find it.

use crate::entity::{Cooling, EmissionUnit, Entity, Installation, PowerCategory, Sector, UnitKind};
use crate::monthly::{Carbon, Fuel, LabMeasurement, MonthlyRecord, RecordFields, YearMonth};
use crate::plan::{Determination, Frequency, Instrument, MonitoringPlan, Parameter, ParameterPlan, Regime, SourceStream, StreamKind};
use crate::quality;
use crate::state::{self, Command, Evidence};
use crate::verification::{OpinionKind, Verifier};
use ets_core::{Date, Timestamp};
use rust_decimal::Decimal;
use std::collections::BTreeSet;

/// SplitMix64: small, deterministic, good enough for sample data.
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi` (modulo bias is irrelevant here).
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as i64
    }
}

/// Clean values per fuel: (base quantity range t, NCV range ×100, CC range ×100000, OF ×100).
type Profile = ((i64, i64), (i64, i64), (i64, i64), i64);

fn profile(fuel: Fuel) -> Profile {
    match fuel {
        Fuel::Coal => ((80_000, 120_000), (1900, 2200), (2550, 2800), 99),
        Fuel::NaturalGas => ((5_000, 8_000), (4700, 4900), (1500, 1556), 99),
        Fuel::FuelOil => ((1_000, 2_000), (4000, 4150), (2080, 2140), 98),
        Fuel::Diesel => ((100, 300), (4250, 4320), (1980, 2040), 98),
    }
}

fn day(y: i32, m: u32, d: u32) -> Date {
    Date::from_ymd(y, m, d).expect("valid sample date")
}

/// A clean reporting year for one unit: every stream has 12 measured months.
pub fn clean_year(seed: u64, entity: &str, unit: &str, year: i32, streams: &[(&str, Fuel)]) -> Vec<MonthlyRecord> {
    let mut rng = SplitMix64::new(seed);
    let mut out = Vec::new();
    for (s, &(stream, fuel)) in streams.iter().enumerate() {
        let ((qlo, qhi), (nlo, nhi), (clo, chi), of) = profile(fuel);
        let base = rng.range(qlo, qhi);
        for m in 1..=12u32 {
            let month = YearMonth::new(year, m).expect("valid month");
            let quantity = base * rng.range(85, 115) / 100;
            let sample = day(year, m, rng.range(3, 25) as u32);
            let report = month.last_day().plus_days(rng.range(1, 35) as i32);
            let lab = LabMeasurement::new(Decimal::new(rng.range(clo, chi), 5), format!("LAB-{unit}-{s}-{year}{m:02}"), report, sample)
                .expect("valid sample measurement");
            out.push(
                MonthlyRecord::new(RecordFields {
                    entity: entity.into(),
                    unit: unit.into(),
                    source_stream: stream.into(),
                    month,
                    fuel,
                    quantity_t: Decimal::from(quantity),
                    ncv_gj_per_t: Decimal::new(rng.range(nlo, nhi), 2),
                    carbon: Carbon::Measured(lab),
                    oxidation_factor: Decimal::new(of, 2),
                })
                .expect("valid sample record"),
            );
        }
    }
    out
}

/// An anomaly planted in a sample year, and the check that must find it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Plant {
    pub entity: String,
    pub unit: String,
    /// The check constant of [`crate::quality`] or [`crate::state`].
    pub check: &'static str,
    /// The month it is in (`None` for annual checks).
    pub month: Option<YearMonth>,
}

/// The kinds of anomaly a sample year can carry, in the order they are planted.
pub const PLANTABLE: [&str; 10] = [
    quality::REUSED_REPORT,
    quality::REPORT_BEFORE_SAMPLE,
    quality::CC_RANGE,
    quality::SAMPLE_OUTSIDE_MONTH,
    quality::QUANTITY_JUMP,
    state::LATE_SUBMISSION,
    state::CALIBRATION_LAPSED,
    state::PLANNED_MEASUREMENT_MISSING,
    state::HEAT_RATE,
    state::INTENSITY_OUTLIER,
];

/// Where sample entities are.
#[derive(Clone, Debug)]
pub struct Market {
    pub code: String,
    pub province: String,
    pub entities: usize,
}

/// A generated MRV year: the commands to run (actor, time, command) in order, and what was planted.
#[derive(Clone, Debug, Default)]
pub struct Scenario {
    pub commands: Vec<(String, Timestamp, Command)>,
    pub planted: Vec<Plant>,
    /// Reports whose entity carries no planted anomaly: submitted, verified and accepted.
    pub accepted_reports: Vec<String>,
}

pub const AUTHORITY: &str = "mee-official";
pub const VERIFIER: &str = "VER-1";
pub const VERIFIER_STAFF: &str = "ver1-auditor";

fn at(date: Date, hour: i64) -> Timestamp {
    Timestamp(date.start().0 + hour * 3_600_000)
}

/// The representative of sample entity `i` of a market (the registry demo's operator names).
pub fn representative(market: &str, i: usize) -> String {
    format!("{}-op{}", market.to_lowercase(), i + 1)
}

pub fn entity_id(market: &str, i: usize) -> String {
    format!("{market}-E{:04}", i + 1)
}

/// Builds a year of MRV for coal power entities in `markets`, with one of each [`PLANTABLE`]
/// anomaly planted in the first `plants` entities (one anomaly per entity, so they do not mask
/// each other). Entities without a plant get their annual report verified and accepted.
pub fn scenario(seed: u64, year: i32, markets: &[Market], plants: usize) -> Scenario {
    let mut rng = SplitMix64::new(seed);
    let mut sc = Scenario::default();
    let start = day(year - 1, 11, 1);
    let authority = AUTHORITY.to_string();
    sc.commands.push((authority.clone(), at(start, 9), Command::AddOfficial { person: authority.clone() }));
    sc.commands.push((
        authority.clone(),
        at(start, 10),
        Command::RegisterVerifier {
            verifier: Verifier {
                id: VERIFIER.into(),
                accredited: true,
                staff: [VERIFIER_STAFF.to_string()].into(),
                prepared_for_entities: BTreeSet::new(),
                prepared_in_provinces: BTreeSet::new(),
            },
        },
    ));
    let mut n = 0usize;
    for market in markets {
        for i in 0..market.entities {
            let plant = (n < plants.min(PLANTABLE.len())).then(|| PLANTABLE[n]);
            n += 1;
            entity_year(&mut sc, &mut rng, seed, year, market, i, plant);
        }
    }
    sc.commands.sort_by_key(|(_, t, _)| *t);
    sc
}

fn measured(parameter: Parameter, standard: &str, instrument: Option<&str>) -> ParameterPlan {
    ParameterPlan {
        parameter,
        determination: Determination::Measured {
            standard: standard.into(),
            frequency: Frequency::Monthly,
            lab: instrument.is_none().then(|| "CMA-LAB-01".to_string()),
            instrument: instrument.map(String::from),
        },
    }
}

fn entity_year(sc: &mut Scenario, rng: &mut SplitMix64, seed: u64, year: i32, market: &Market, i: usize, plant: Option<&'static str>) {
    let entity = entity_id(&market.code, i);
    let rep = representative(&market.code, i);
    let registered = day(year - 1, 11, 2);
    sc.commands.push((
        AUTHORITY.into(),
        at(registered, 9),
        Command::RegisterEntity {
            entity: Entity {
                id: entity.clone(),
                name: format!("{} power company {:04}", market.province, i + 1),
                sector: Sector::Power,
                province: market.province.clone(),
                markets: [market.code.clone()].into(),
                representatives: [rep.clone()].into(),
            },
        },
    ));
    let installation = format!("{entity}-PLANT");
    sc.commands.push((
        rep.clone(),
        at(registered, 10),
        Command::AddInstallation {
            installation: Installation { id: installation.clone(), entity: entity.clone(), name: "power plant".into(), eu_category: None },
        },
    ));
    let units = if rng.range(0, 2) == 0 { 2 } else { 1 };
    let mut unit_ids = Vec::new();
    for u in 0..units {
        let id = format!("{entity}-U{}", u + 1);
        let capacity = [300, 350, 600, 660, 1000][rng.range(0, 4) as usize];
        sc.commands.push((
            rep.clone(),
            at(registered, 11),
            Command::AddUnit {
                unit: EmissionUnit {
                    id: id.clone(),
                    installation: installation.clone(),
                    kind: UnitKind::GeneratingUnit {
                        capacity_mw: Decimal::from(capacity),
                        category: if capacity >= 400 { PowerCategory::I } else { PowerCategory::II },
                        cooling: if rng.range(0, 1) == 0 { Cooling::Water } else { Cooling::Air },
                        supplies_heat: false,
                    },
                },
            },
        ));
        unit_ids.push(id);
    }
    let lapse = plant == Some(state::CALIBRATION_LAPSED);
    let plan = MonitoringPlan {
        entity: entity.clone(),
        year,
        regime: Regime::ChinaDataQuality,
        source_streams: unit_ids
            .iter()
            .map(|u| SourceStream {
                id: "coal".into(),
                unit: u.clone(),
                kind: StreamKind::FuelCombustion { fuel: Fuel::Coal },
                tier: None,
                parameters: vec![
                    measured(Parameter::ActivityData, "JJG 195", Some(&format!("{u}-BELT"))),
                    measured(Parameter::NetCalorificValue, "GB/T 213", None),
                    measured(Parameter::CarbonContent, "GB/T 476", None),
                    measured(Parameter::OxidationFactor, "DL/T 567", None),
                ],
            })
            .collect(),
        instruments: unit_ids
            .iter()
            .enumerate()
            .map(|(k, u)| Instrument {
                id: format!("{u}-BELT"),
                description: "coal belt scale".into(),
                uncertainty: Decimal::new(15, 3),
                calibrated_on: day(year - 1, 10, 15),
                calibration_due: if lapse && k == 0 { day(year, 8, 20) } else { day(year + 1, 10, 15) },
            })
            .collect(),
    };
    sc.commands.push((rep.clone(), at(day(year - 1, 12, 20), 10), Command::SetPlan { plan, reason: None }));
    let first_unit = unit_ids[0].clone();
    let mut planted_month = None;
    for (u, unit) in unit_ids.iter().enumerate() {
        let mut records = clean_year(seed ^ rng.next_u64(), &entity, unit, year, &[("coal", Fuel::Coal)]);
        // Heat rate of the unit: 8.8–10.0 GJ/MWh clean; the intensity outlier runs at 12.5.
        let heat_rate =
            if plant == Some(state::INTENSITY_OUTLIER) && u == 0 { Decimal::new(125, 1) } else { Decimal::new(rng.range(880, 1000), 2) };
        let target = u == 0;
        if target {
            planted_month = plant_in_records(plant, &mut records);
        }
        for (m, record) in records.into_iter().enumerate() {
            let month = record.month();
            let heat = record.quantity_t() * record.ncv_gj_per_t();
            let mut rate = heat_rate;
            if target && plant == Some(state::HEAT_RATE) && m == 6 {
                rate = Decimal::new(30, 0);
            }
            let production = (heat / rate).round_dp(0);
            let mut days_after = rng.range(10, 30) as i32;
            if target && plant == Some(state::LATE_SUBMISSION) && m == 4 {
                days_after = 55;
            }
            let file = format!("{unit}-{month}-coal-lab-report.pdf");
            let evidence = vec![Evidence { name: file.clone(), sha256: pseudo_sha256(&file), bytes: 48_000 + rng.range(0, 4_000) as u64 }];
            sc.commands.push((
                rep.clone(),
                at(month.last_day().plus_days(days_after), 10),
                Command::SubmitMonthly {
                    entity: entity.clone(),
                    unit: unit.clone(),
                    month,
                    records: vec![record],
                    production: Some(production),
                    evidence,
                    reason: None,
                },
            ));
        }
    }
    if let Some(check) = plant {
        let month = match check {
            state::LATE_SUBMISSION => Some(YearMonth::new(year, 5).expect("valid")),
            state::HEAT_RATE => Some(YearMonth::new(year, 7).expect("valid")),
            state::CALIBRATION_LAPSED => Some(YearMonth::new(year, 8).expect("valid")),
            state::INTENSITY_OUTLIER => None,
            _ => planted_month,
        };
        sc.planted.push(Plant { entity: entity.clone(), unit: first_unit, check, month });
    } else {
        let report = format!("{entity}-{year}");
        let filed = day(year + 1, 3, 10);
        sc.commands.push((rep.clone(), at(filed, 10), Command::SubmitReport { report: report.clone(), entity: entity.clone(), year }));
        sc.commands.push((rep, at(filed, 11), Command::AssignVerifier { report: report.clone(), verifier: VERIFIER.into() }));
        sc.commands.push((
            VERIFIER_STAFF.into(),
            at(day(year + 1, 5, 20), 10),
            Command::GiveOpinion { report: report.clone(), stated: Some(OpinionKind::Unqualified) },
        ));
        sc.commands.push((AUTHORITY.into(), at(day(year + 1, 6, 25), 10), Command::Accept { report: report.clone() }));
        sc.accepted_reports.push(report);
    }
}

/// Changes the clean records to carry the record-level anomaly; returns its month.
fn plant_in_records(plant: Option<&str>, records: &mut [MonthlyRecord]) -> Option<YearMonth> {
    let edit = |r: &MonthlyRecord, f: &mut dyn FnMut(&mut RecordFields)| {
        let mut fields = r.fields().clone();
        f(&mut fields);
        MonthlyRecord::new(fields).expect("planted record stays valid")
    };
    let lab = |r: &MonthlyRecord| r.measurement().expect("clean records are measured").clone();
    let (m, new) = match plant? {
        quality::REUSED_REPORT => {
            let earlier = lab(&records[2]);
            let r = edit(&records[3], &mut |f| {
                let l = match &f.carbon {
                    Carbon::Measured(l) => l.clone(),
                    Carbon::Missing => unreachable!(),
                };
                f.carbon = Carbon::Measured(
                    LabMeasurement::new(l.cc_tc_per_gj(), earlier.report_id(), l.report_date(), l.sample_date()).expect("valid"),
                );
            });
            (3, r)
        }
        quality::REPORT_BEFORE_SAMPLE => {
            let r = edit(&records[5], &mut |f| {
                let l = match &f.carbon {
                    Carbon::Measured(l) => l.clone(),
                    Carbon::Missing => unreachable!(),
                };
                let sample = l.sample_date();
                f.carbon =
                    Carbon::Measured(LabMeasurement::new(l.cc_tc_per_gj(), l.report_id(), sample.plus_days(-2), sample).expect("valid"));
            });
            (5, r)
        }
        quality::CC_RANGE => {
            let r = edit(&records[8], &mut |f| {
                let l = match &f.carbon {
                    Carbon::Measured(l) => l.clone(),
                    Carbon::Missing => unreachable!(),
                };
                // An edited element-carbon report: carbon content far below any coal's.
                f.carbon = Carbon::Measured(
                    LabMeasurement::new(Decimal::new(1500, 5), l.report_id(), l.report_date(), l.sample_date()).expect("valid"),
                );
            });
            (8, r)
        }
        quality::SAMPLE_OUTSIDE_MONTH => {
            let r = edit(&records[9], &mut |f| {
                let l = match &f.carbon {
                    Carbon::Measured(l) => l.clone(),
                    Carbon::Missing => unreachable!(),
                };
                let sample = f.month.first_day().plus_days(-20);
                f.carbon = Carbon::Measured(LabMeasurement::new(l.cc_tc_per_gj(), l.report_id(), l.report_date(), sample).expect("valid"));
            });
            (9, r)
        }
        quality::QUANTITY_JUMP => (10, edit(&records[10], &mut |f| f.quantity_t *= Decimal::from(5))),
        state::PLANNED_MEASUREMENT_MISSING => (1, edit(&records[1], &mut |f| f.carbon = Carbon::Missing)),
        _ => return None,
    };
    let month = new.month();
    records[m] = new;
    Some(month)
}

/// A stand-in for a real file's SHA-256 in generated data: the hash of its name.
pub fn pseudo_sha256(name: &str) -> String {
    use sha2::{Digest, Sha256};
    ets_core::chain::hex(&Sha256::digest(name.as_bytes()))
}
