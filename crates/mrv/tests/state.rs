//! The MRV state machine: registration, plans, versioned monthly submissions, annual reports
//! computed from them, verification, replay, and the anomaly queue over sample years.

use ets_core::{Date, Timestamp};
use ets_mrv::entity::{Cooling, EmissionUnit, Entity, Installation, PowerCategory, Sector, UnitKind};
use ets_mrv::monthly::{unit_year_emissions, Fuel, MissingCarbonRule, MonthlyRecord, YearMonth};
use ets_mrv::sample::{self, Market};
use ets_mrv::state::{self, command_digest, Command, Event, MrvParams, MrvRecord, MrvState, MRV_JOURNAL_FORMAT};
use ets_mrv::verification::{Finding, OpinionKind, RejectKind, ReportState, Verifier};
use ets_mrv::{quality, FactorSet};
use rust_decimal::Decimal;
use std::collections::BTreeSet;

const YEAR: i32 = 2024;

fn t(y: i32, m: u32, d: u32) -> Timestamp {
    Date::from_ymd(y, m, d).unwrap().start()
}

fn new_state() -> MrvState {
    MrvState::new(FactorSet::builtin().unwrap(), MrvParams::default())
}

struct World {
    s: MrvState,
    log: Vec<Event>,
}

impl World {
    fn run(&mut self, actor: &str, at: Timestamp, c: Command) -> Result<Vec<Event>, ets_mrv::verification::Rejection> {
        let r = self.s.execute(actor, at, &c);
        if let Ok(events) = &r {
            self.log.extend(events.iter().cloned());
        }
        r
    }

    fn ok(&mut self, actor: &str, at: Timestamp, c: Command) -> Vec<Event> {
        self.run(actor, at, c).unwrap_or_else(|e| panic!("refused: {e}"))
    }

    fn refused(&mut self, actor: &str, at: Timestamp, c: Command) -> (RejectKind, String) {
        let before = format!("{:?}", self.s);
        let e = self.run(actor, at, c).expect_err("must be refused");
        assert_eq!(before, format!("{:?}", self.s), "a refused command changed the state");
        (e.kind, e.message)
    }
}

/// An official, a verifier, entity E1 (rep alice) with one unit U1 and its 2024 plan.
fn world() -> World {
    let mut w = World { s: new_state(), log: Vec::new() };
    let day = t(2023, 11, 1);
    w.ok("gov", day, Command::AddOfficial { person: "gov".into() });
    w.ok(
        "gov",
        day,
        Command::RegisterVerifier {
            verifier: Verifier {
                id: "V1".into(),
                accredited: true,
                staff: ["vera".to_string()].into(),
                prepared_for_entities: BTreeSet::new(),
                prepared_in_provinces: BTreeSet::new(),
            },
        },
    );
    w.ok("gov", day, Command::RegisterEntity { entity: entity("E1", "alice") });
    w.ok("alice", day, Command::AddInstallation { installation: installation("E1") });
    w.ok("alice", day, Command::AddUnit { unit: unit("E1", "U1") });
    w.ok("alice", t(2023, 12, 20), Command::SetPlan { plan: plan("E1", &["U1"]), reason: None });
    w
}

fn entity(id: &str, rep: &str) -> Entity {
    Entity {
        id: id.into(),
        name: format!("{id} power"),
        sector: Sector::Power,
        province: "Guangdong".into(),
        markets: ["CN".to_string()].into(),
        representatives: [rep.to_string()].into(),
    }
}

fn installation(entity: &str) -> Installation {
    Installation { id: format!("{entity}-PLANT"), entity: entity.into(), name: "plant".into(), eu_category: None }
}

fn unit(entity: &str, id: &str) -> EmissionUnit {
    EmissionUnit {
        id: id.into(),
        installation: format!("{entity}-PLANT"),
        kind: UnitKind::GeneratingUnit {
            capacity_mw: Decimal::from(600),
            category: PowerCategory::I,
            cooling: Cooling::Water,
            supplies_heat: false,
        },
    }
}

fn plan(entity: &str, units: &[&str]) -> ets_mrv::plan::MonitoringPlan {
    use ets_mrv::plan::*;
    let measured = |parameter, instrument: Option<&str>| ParameterPlan {
        parameter,
        determination: Determination::Measured {
            standard: "GB/T 213".into(),
            frequency: Frequency::Monthly,
            lab: Some("LAB".into()),
            instrument: instrument.map(String::from),
        },
    };
    MonitoringPlan {
        entity: entity.into(),
        year: YEAR,
        regime: Regime::ChinaDataQuality,
        source_streams: units
            .iter()
            .map(|u| SourceStream {
                id: "coal".into(),
                unit: (*u).into(),
                kind: StreamKind::FuelCombustion { fuel: Fuel::Coal },
                tier: None,
                parameters: vec![
                    measured(Parameter::ActivityData, Some("BELT")),
                    measured(Parameter::NetCalorificValue, None),
                    measured(Parameter::CarbonContent, None),
                    measured(Parameter::OxidationFactor, None),
                ],
            })
            .collect(),
        instruments: vec![Instrument {
            id: "BELT".into(),
            description: "belt scale".into(),
            uncertainty: Decimal::new(15, 3),
            calibrated_on: Date::from_ymd(2023, 10, 1).unwrap(),
            calibration_due: Date::from_ymd(2025, 10, 1).unwrap(),
        }],
    }
}

fn records(entity: &str, unit: &str, seed: u64) -> Vec<MonthlyRecord> {
    sample::clean_year(seed, entity, unit, YEAR, &[("coal", Fuel::Coal)])
}

fn monthly(entity: &str, unit: &str, r: &MonthlyRecord, reason: Option<&str>) -> Command {
    Command::SubmitMonthly {
        entity: entity.into(),
        unit: unit.into(),
        month: r.month(),
        records: vec![r.clone()],
        production: Some(Decimal::from(100_000)),
        evidence: vec![state::Evidence { name: "lab.pdf".into(), sha256: sample::pseudo_sha256(&r.month().to_string()), bytes: 10 }],
        reason: reason.map(String::from),
    }
}

fn submit_year(w: &mut World, entity: &str, unit: &str, rep: &str, recs: &[MonthlyRecord]) {
    for r in recs {
        w.ok(rep, r.month().last_day().plus_days(10).start(), monthly(entity, unit, r, None));
    }
}

#[test]
fn a_year_goes_from_monthly_data_to_verified_emissions() {
    let mut w = world();
    let recs = records("E1", "U1", 7);
    submit_year(&mut w, "E1", "U1", "alice", &recs);
    let expected = unit_year_emissions(&recs, &MissingCarbonRule::default(), w.s.factors()).unwrap().annual_co2_t;
    assert!(expected > Decimal::from(100_000), "{expected}");

    let filed = t(2025, 3, 10);
    w.ok("alice", filed, Command::SubmitReport { report: "R1".into(), entity: "E1".into(), year: YEAR });
    let report = w.s.report("R1").unwrap();
    assert_eq!(report.current().reported_emissions_t, expected, "the report's figure is computed from the monthly data");
    assert_eq!(report.province, "Guangdong");
    w.ok("alice", filed, Command::AssignVerifier { report: "R1".into(), verifier: "V1".into() });
    w.ok("vera", t(2025, 5, 1), Command::GiveOpinion { report: "R1".into(), stated: Some(OpinionKind::Unqualified) });
    assert_eq!(w.s.verified_emissions("E1", YEAR), None, "not verified before acceptance");
    w.ok("gov", t(2025, 6, 1), Command::Accept { report: "R1".into() });
    assert_eq!(w.s.verified_emissions("E1", YEAR), Some(expected));
    assert_eq!(w.s.report("R1").unwrap().state, ReportState::Accepted);
}

#[test]
fn corrections_are_new_versions_with_a_reason_and_the_latest_counts() {
    let mut w = world();
    let mut recs = records("E1", "U1", 8);
    submit_year(&mut w, "E1", "U1", "alice", &recs);
    let before = w.s.annual("E1", YEAR).unwrap().total_t;
    let mut fields = recs[4].fields().clone();
    fields.quantity_t += Decimal::from(1_000);
    let corrected = MonthlyRecord::new(fields).unwrap();
    let late = t(2024, 7, 30);
    let (kind, msg) = w.refused("alice", late, monthly("E1", "U1", &corrected, None));
    assert_eq!(kind, RejectKind::Invalid);
    assert!(msg.contains("version 2") && msg.contains("reason"), "{msg}");
    w.ok("alice", late, monthly("E1", "U1", &corrected, Some("belt scale re-read")));
    let versions = w.s.monthly_versions("U1", corrected.month());
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0].records[0], recs[4], "version 1 is kept as it was");
    assert_eq!(versions[1].reason.as_deref(), Some("belt scale re-read"));
    recs[4] = corrected;
    let expected = unit_year_emissions(&recs, &MissingCarbonRule::default(), w.s.factors()).unwrap().annual_co2_t;
    let after = w.s.annual("E1", YEAR).unwrap().total_t;
    assert_eq!(after, expected);
    assert!(after > before);
}

#[test]
fn out_of_order_and_unauthorised_steps_are_refused() {
    let mut w = world();
    let recs = records("E1", "U1", 9);
    // Another person, the verifier's staff and an official may not submit the entity's data.
    for actor in ["mallory", "vera", "gov"] {
        let (kind, _) = w.refused(actor, t(2024, 2, 10), monthly("E1", "U1", &recs[0], None));
        assert_eq!(kind, RejectKind::Forbidden, "{actor}");
    }
    // Only officials register entities, and a second official needs an official.
    assert_eq!(w.refused("alice", t(2024, 1, 1), Command::RegisterEntity { entity: entity("E2", "bob") }).0, RejectKind::Forbidden);
    assert_eq!(w.refused("alice", t(2024, 1, 1), Command::AddOfficial { person: "alice".into() }).0, RejectKind::Forbidden);
    // No data without a plan for the year.
    let mut fields = recs[0].fields().clone();
    fields.month = YearMonth::new(2025, 1).unwrap();
    let next_year = MonthlyRecord::new(fields).unwrap();
    let (kind, msg) = w.refused("alice", t(2025, 2, 10), monthly("E1", "U1", &next_year, None));
    assert_eq!(kind, RejectKind::OutOfOrder);
    assert!(msg.contains("no monitoring plan for 2025"), "{msg}");
    // A stream the plan does not declare.
    let mut fields = recs[0].fields().clone();
    fields.source_stream = "gas".into();
    let (kind, msg) = w.refused("alice", t(2024, 2, 10), monthly("E1", "U1", &MonthlyRecord::new(fields).unwrap(), None));
    assert_eq!(kind, RejectKind::Invalid);
    assert!(msg.contains("'gas' is not in the 2024 monitoring plan"), "{msg}");
    // A report before the year is complete lists what is missing.
    submit_year(&mut w, "E1", "U1", "alice", &recs[..11]);
    let (kind, msg) = w.refused("alice", t(2025, 1, 5), Command::SubmitReport { report: "R1".into(), entity: "E1".into(), year: YEAR });
    assert_eq!(kind, RejectKind::OutOfOrder);
    assert!(msg.contains("U1/coal 2024-12"), "{msg}");
    w.ok("alice", t(2025, 1, 20), monthly("E1", "U1", &recs[11], None));
    w.ok("alice", t(2025, 3, 1), Command::SubmitReport { report: "R1".into(), entity: "E1".into(), year: YEAR });
    // Acceptance before the opinion, an opinion by a non-assigned person, findings by the entity.
    assert_eq!(w.refused("gov", t(2025, 3, 2), Command::Accept { report: "R1".into() }).0, RejectKind::OutOfOrder);
    w.ok("gov", t(2025, 3, 2), Command::AssignVerifier { report: "R1".into(), verifier: "V1".into() });
    let finding = Finding::NonConformity { text: "belt scale seal broken".into() };
    assert_eq!(
        w.refused("alice", t(2025, 3, 3), Command::RecordFinding { report: "R1".into(), finding: finding.clone() }).0,
        RejectKind::Forbidden
    );
    w.ok("vera", t(2025, 3, 3), Command::RecordFinding { report: "R1".into(), finding });
    // An open non-conformity makes the opinion qualified; the authority must return it.
    w.ok("vera", t(2025, 3, 4), Command::GiveOpinion { report: "R1".into(), stated: Some(OpinionKind::Qualified) });
    assert_eq!(w.refused("gov", t(2025, 3, 5), Command::Accept { report: "R1".into() }).0, RejectKind::Inconsistent);
    w.ok("gov", t(2025, 3, 5), Command::Return { report: "R1".into(), reason: "fix the scale".into() });
    w.ok("alice", t(2025, 3, 6), Command::ResubmitReport { report: "R1".into(), reason: "scale resealed".into() });
    assert_eq!(w.s.report("R1").unwrap().versions.len(), 2);
}

#[test]
fn conflicted_verifiers_are_refused() {
    let mut w = world();
    w.ok(
        "gov",
        t(2024, 1, 1),
        Command::RegisterVerifier {
            verifier: Verifier {
                id: "V2".into(),
                accredited: true,
                staff: ["victor".to_string()].into(),
                prepared_for_entities: BTreeSet::new(),
                prepared_in_provinces: ["Guangdong".to_string()].into(),
            },
        },
    );
    submit_year(&mut w, "E1", "U1", "alice", &records("E1", "U1", 10));
    w.ok("alice", t(2025, 3, 1), Command::SubmitReport { report: "R1".into(), entity: "E1".into(), year: YEAR });
    let (kind, msg) = w.refused("gov", t(2025, 3, 2), Command::AssignVerifier { report: "R1".into(), verifier: "V2".into() });
    assert_eq!(kind, RejectKind::Conflict);
    assert!(msg.contains("Guangdong"), "{msg}");
}

#[test]
fn late_submissions_are_accepted_and_marked() {
    let mut w = world();
    let recs = records("E1", "U1", 11);
    // January's evidence is due 40 days after 31 January: 11 March 2024 (29 days of a leap
    // February, then 11); February's 40 days after 29 February: 9 April. Deadlines end at
    // midnight in Beijing (UTC+8): 16:00 UTC. One millisecond before is on time.
    let beijing_midnight = Timestamp(t(2024, 3, 12).0 - 8 * 3_600_000);
    w.ok("alice", Timestamp(beijing_midnight.0 - 1), monthly("E1", "U1", &recs[0], None));
    w.ok("alice", t(2024, 4, 10), monthly("E1", "U1", &recs[1], None));
    let jan = &w.s.monthly_versions("U1", recs[0].month())[0];
    assert_eq!(jan.due, Date::from_ymd(2024, 3, 11).unwrap());
    assert!(!jan.late);
    let feb = &w.s.monthly_versions("U1", recs[1].month())[0];
    assert_eq!(feb.due, Date::from_ymd(2024, 4, 9).unwrap());
    assert!(feb.late);
    let queue = w.s.entity_anomalies("E1", YEAR).unwrap();
    assert!(queue.iter().any(|a| a.check == state::LATE_SUBMISSION && a.month == Some(recs[1].month())), "{queue:#?}");
    assert!(!queue.iter().any(|a| a.check == state::LATE_SUBMISSION && a.month == Some(recs[0].month())));
    // At Beijing midnight itself a correction of January is late.
    w.ok("alice", beijing_midnight, monthly("E1", "U1", &recs[0], Some("re-read")));
    assert!(w.s.monthly_versions("U1", recs[0].month())[1].late);
}

#[test]
fn replaying_the_events_rebuilds_the_same_state() {
    let mut w = world();
    submit_year(&mut w, "E1", "U1", "alice", &records("E1", "U1", 12));
    w.ok("alice", t(2025, 3, 1), Command::SubmitReport { report: "R1".into(), entity: "E1".into(), year: YEAR });
    let mut replayed = new_state();
    for e in &w.log {
        // Through the journal encoding, as the shell stores them.
        let record = MrvRecord {
            format: MRV_JOURNAL_FORMAT,
            seq: 1,
            at: t(2025, 1, 1),
            command_id: "c".into(),
            actor: "a".into(),
            digest: String::new(),
            events: vec![e.clone()],
        };
        let back = MrvRecord::decode(&record.encode()).unwrap();
        replayed.apply(&back.events[0]);
    }
    assert_eq!(format!("{:?}", replayed), format!("{:?}", w.s));
    assert_eq!(replayed.annual("E1", YEAR).unwrap(), w.s.annual("E1", YEAR).unwrap());
}

#[test]
fn a_tampered_record_body_does_not_decode_into_invalid_data() {
    let mut w = world();
    let recs = records("E1", "U1", 13);
    let events = w.ok("alice", t(2024, 2, 10), monthly("E1", "U1", &recs[0], None));
    let record = MrvRecord {
        format: MRV_JOURNAL_FORMAT,
        seq: 1,
        at: t(2024, 2, 10),
        command_id: "c".into(),
        actor: "alice".into(),
        digest: String::new(),
        events,
    };
    let text = String::from_utf8(record.encode()).unwrap();
    // An oxidation factor above 1 fails the record's checked constructor on decode.
    let of = recs[0].oxidation_factor().to_string();
    let bad = text.replace(&format!("\"oxidation_factor\":\"{of}\""), "\"oxidation_factor\":\"1.5\"");
    assert_ne!(bad, text);
    assert!(MrvRecord::decode(bad.as_bytes()).unwrap_err().contains("oxidation factor"));
}

#[test]
fn the_digest_tells_commands_and_actors_apart() {
    let c = Command::AddOfficial { person: "gov".into() };
    assert_eq!(command_digest("gov", &c), command_digest("gov", &c));
    assert_ne!(command_digest("gov", &c), command_digest("gov2", &c));
    assert_ne!(command_digest("gov", &c), command_digest("gov", &Command::AddOfficial { person: "gov2".into() }));
}

fn run_scenario(sc: &sample::Scenario) -> MrvState {
    let mut s = new_state();
    for (actor, at, c) in &sc.commands {
        s.execute(actor, *at, c).unwrap_or_else(|e| panic!("sample command refused: {e}\n{c:?}"));
    }
    s
}

fn markets(n: usize) -> Vec<Market> {
    vec![
        Market { code: "CN".into(), province: "Shandong".into(), entities: n },
        Market { code: "GD".into(), province: "Guangdong".into(), entities: 4 },
    ]
}

#[test]
fn every_planted_anomaly_is_found_where_it_was_planted() {
    let sc = sample::scenario(42, YEAR, &markets(16), sample::PLANTABLE.len());
    assert_eq!(sc.planted.len(), sample::PLANTABLE.len());
    let s = run_scenario(&sc);
    let queue = s.anomalies(YEAR).unwrap();
    for p in &sc.planted {
        assert!(
            queue.iter().any(|a| a.entity == p.entity && a.unit == p.unit && a.check == p.check && a.month == p.month),
            "planted {p:?} not found; queue of {}: {:#?}",
            p.entity,
            queue.iter().filter(|a| a.entity == p.entity).collect::<Vec<_>>()
        );
    }
    let planted: BTreeSet<&str> = sc.planted.iter().map(|p| p.entity.as_str()).collect();
    let elsewhere: Vec<_> = queue.iter().filter(|a| !planted.contains(a.entity.as_str())).collect();
    assert!(elsewhere.is_empty(), "entities without plants have findings: {elsewhere:#?}");
    // Critical findings (the fraud patterns) come first in the queue.
    assert_eq!(queue[0].severity, quality::Severity::Critical);
    for r in &sc.accepted_reports {
        assert_eq!(s.report(r).unwrap().state, ReportState::Accepted, "{r}");
    }
}

#[test]
fn clean_generated_years_have_an_empty_queue() {
    for seed in 0..20 {
        let sc = sample::scenario(seed, YEAR, &markets(8), 0);
        let s = run_scenario(&sc);
        let queue = s.anomalies(YEAR).unwrap();
        assert!(queue.is_empty(), "seed {seed}: {queue:#?}");
        assert_eq!(sc.accepted_reports.len(), 12);
        for e in s.entities() {
            assert!(s.verified_emissions(&e.id, YEAR).is_some(), "{}", e.id);
        }
    }
}

#[test]
fn year_on_year_jumps_are_found() {
    let mut w = world();
    let mut plan_2023 = plan("E1", &["U1"]);
    plan_2023.year = 2023;
    plan_2023.instruments[0].calibrated_on = Date::from_ymd(2022, 10, 1).unwrap();
    w.ok("alice", t(2022, 12, 20), Command::SetPlan { plan: plan_2023, reason: None });
    let last_year = sample::clean_year(5, "E1", "U1", 2023, &[("coal", Fuel::Coal)]);
    submit_year(&mut w, "E1", "U1", "alice", &last_year);
    // This year the unit burns (and emits) twice as much as last year.
    let doubled: Vec<MonthlyRecord> = records("E1", "U1", 5)
        .iter()
        .map(|r| {
            let mut f = r.fields().clone();
            f.quantity_t *= Decimal::TWO;
            MonthlyRecord::new(f).unwrap()
        })
        .collect();
    submit_year(&mut w, "E1", "U1", "alice", &doubled);
    let queue = w.s.entity_anomalies("E1", YEAR).unwrap();
    assert!(queue.iter().any(|a| a.check == state::YEAR_ON_YEAR_JUMP), "{queue:#?}");
    assert!(!w.s.entity_anomalies("E1", 2023).unwrap().iter().any(|a| a.check == state::YEAR_ON_YEAR_JUMP));
}

fn coverage(market: &str, from: i32, to: Option<i32>, gases: &[&str]) -> ets_mrv::entity::Coverage {
    ets_mrv::entity::Coverage {
        market: market.into(),
        sector: Sector::Power,
        gases: gases.iter().map(|g| g.to_string()).collect(),
        from_year: from,
        to_year: to,
        account: Some(format!("{market}-100001")),
    }
}

#[test]
fn no_entity_is_covered_twice_for_a_sector_and_gas() {
    let mut w = world();
    let day = t(2024, 1, 1);
    w.ok("gov", day, Command::Cover { entity: "E1".into(), coverage: coverage("GD", 2016, None, &["CO2"]) });
    // The national market cannot cover it for CO2 while Guangdong does.
    let (kind, msg) = w.refused("gov", day, Command::Cover { entity: "E1".into(), coverage: coverage("CN", 2021, None, &["CO2"]) });
    assert_eq!(kind, RejectKind::Conflict);
    assert!(msg.contains("already covered in GD for power / CO2 2016–on"), "{msg}");
    // Another gas is no double coverage.
    w.ok("gov", day, Command::Cover { entity: "E1".into(), coverage: coverage("CN", 2021, None, &["CF4"]) });
    // Only officials set coverage; a representative cannot.
    assert_eq!(
        w.refused("alice", day, Command::Cover { entity: "E1".into(), coverage: coverage("BJ", 2021, None, &["N2O"]) }).0,
        RejectKind::Forbidden
    );
    // Migration ends Guangdong's CO2 coverage with 2024; the national market takes CO2 over
    // from 2025 beside its CF4 coverage.
    w.ok(
        "gov",
        day,
        Command::Migrate {
            entity: "E1".into(),
            from_market: "GD".into(),
            to_market: "CN".into(),
            year: 2025,
            account: None,
            reason: "threshold".into(),
            sector: None,
        },
    );
    let gases_in = |market: &str, year: i32| -> Vec<String> {
        w.s.coverage("E1").iter().filter(|c| c.market == market && c.covers_year(year)).flat_map(|c| c.gases.iter().cloned()).collect()
    };
    assert_eq!(gases_in("CN", 2025), vec!["CF4".to_string(), "CO2".to_string()]);
    assert_eq!(gases_in("GD", 2024), vec!["CO2".to_string()]);
    assert!(gases_in("GD", 2025).is_empty());
    // Covering CO2 in Guangdong again from 2025 would now clash with the national market.
    let (kind, msg) = w.refused("gov", day, Command::Cover { entity: "E1".into(), coverage: coverage("GD", 2025, None, &["CO2"]) });
    assert_eq!(kind, RejectKind::Conflict);
    assert!(msg.contains("already covered in CN for power / CO2 2025–on"), "{msg}");
}

#[test]
fn migration_moves_coverage_without_a_gap_or_an_overlap() {
    let mut w = world();
    let day = t(2025, 1, 10);
    w.ok("gov", day, Command::Cover { entity: "E1".into(), coverage: coverage("GD", 2016, None, &["CO2"]) });
    let migrate = |to: &str, year: i32| Command::Migrate {
        entity: "E1".into(),
        from_market: "GD".into(),
        to_market: to.into(),
        year,
        account: Some("CN-100042".into()),
        reason: "power sector in the national market".into(),
        sector: None,
    };
    assert_eq!(w.refused("alice", day, migrate("CN", 2025)).0, RejectKind::Forbidden);
    assert_eq!(w.refused("gov", day, migrate("GD", 2025)).0, RejectKind::Invalid);
    assert_eq!(w.refused("gov", day, migrate("CN", 2016)).0, RejectKind::OutOfOrder, "nothing left in GD before 2016");
    w.ok("gov", day, migrate("CN", 2025));
    let c = w.s.coverage("E1");
    assert_eq!((c[0].market.as_str(), c[0].to_year), ("GD", Some(2024)));
    assert_eq!((c[1].market.as_str(), c[1].from_year, c[1].to_year), ("CN", 2025, None));
    assert_eq!(c[1].account.as_deref(), Some("CN-100042"));
    for year in 2016..2035 {
        let markets: Vec<&str> = c.iter().filter(|c| c.covers_year(year)).map(|c| c.market.as_str()).collect();
        assert_eq!(markets.len(), 1, "{year}: {markets:?}");
    }
    assert_eq!(w.s.covered("GD", 2024).len(), 1);
    assert_eq!(w.s.covered("GD", 2025).len(), 0);
    assert_eq!(w.s.covered("CN", 2025).len(), 1);
    // Migrating again from GD in 2026: GD no longer covers it.
    assert_eq!(w.refused("gov", day, migrate("CN", 2026)).0, RejectKind::NotFound);
}

#[test]
fn migration_ends_the_coverage_it_moves_among_several() {
    let mut w = world();
    let day = t(2025, 1, 10);
    let mut steel = coverage("TJ", 2015, Some(2020), &["CO2"]);
    steel.sector = Sector::Steel;
    steel.account = Some("TJ-100009".into());
    w.ok("gov", day, Command::Cover { entity: "E1".into(), coverage: steel });
    w.ok("gov", day, Command::Cover { entity: "E1".into(), coverage: coverage("TJ", 2016, None, &["CO2"]) });
    w.ok(
        "gov",
        day,
        Command::Migrate {
            entity: "E1".into(),
            from_market: "TJ".into(),
            to_market: "CN".into(),
            year: 2021,
            account: Some("CN-100001".into()),
            reason: "national coverage".into(),
            sector: None,
        },
    );
    // The power coverage ended; the steel one is untouched; one market a year for power.
    let c = w.s.coverage("E1");
    assert_eq!((c[0].sector, c[0].to_year), (Sector::Steel, Some(2020)));
    assert_eq!((c[1].sector, c[1].to_year), (Sector::Power, Some(2020)));
    for year in 2016..2030 {
        let power: Vec<&str> = c.iter().filter(|c| c.sector == Sector::Power && c.covers_year(year)).map(|c| c.market.as_str()).collect();
        assert_eq!(power.len(), 1, "{year}: {power:?}");
    }
}

#[test]
fn an_account_covers_one_entity_and_reported_years_are_frozen() {
    let mut w = world();
    let day = t(2024, 1, 2);
    w.ok("gov", day, Command::RegisterEntity { entity: entity("E2", "bob") });
    w.ok("gov", day, Command::Cover { entity: "E1".into(), coverage: coverage("CN", 2021, None, &["CO2"]) });
    let (kind, msg) = w.refused("gov", day, Command::Cover { entity: "E2".into(), coverage: coverage("CN", 2021, None, &["CO2"]) });
    assert_eq!(kind, RejectKind::Conflict);
    assert!(msg.contains("account CN-100001 already covers 'E1'"), "{msg}");
    // Once a report is in, its year's data and plan are frozen; a second report is refused.
    let recs = records("E1", "U1", 21);
    submit_year(&mut w, "E1", "U1", "alice", &recs);
    w.ok("alice", t(2025, 3, 1), Command::SubmitReport { report: "R1".into(), entity: "E1".into(), year: YEAR });
    let (kind, msg) = w.refused("alice", t(2025, 3, 2), monthly("E1", "U1", &recs[0], Some("late fix")));
    assert_eq!(kind, RejectKind::OutOfOrder);
    assert!(msg.contains("under verification"), "{msg}");
    assert_eq!(
        w.refused("alice", t(2025, 3, 2), Command::SetPlan { plan: plan("E1", &["U1"]), reason: Some("x".into()) }).0,
        RejectKind::OutOfOrder
    );
    assert_eq!(
        w.refused("alice", t(2025, 3, 2), Command::SubmitReport { report: "R2".into(), entity: "E1".into(), year: YEAR }).0,
        RejectKind::Inconsistent
    );
    // Returned: the data reopen, are corrected, and the report is resubmitted.
    w.ok("gov", t(2025, 3, 3), Command::AssignVerifier { report: "R1".into(), verifier: "V1".into() });
    w.ok("vera", t(2025, 3, 4), Command::RecordFinding { report: "R1".into(), finding: Finding::NonConformity { text: "seal".into() } });
    w.ok("vera", t(2025, 3, 5), Command::GiveOpinion { report: "R1".into(), stated: None });
    w.ok("gov", t(2025, 3, 6), Command::Return { report: "R1".into(), reason: "fix January".into() });
    w.ok("alice", t(2025, 3, 7), monthly("E1", "U1", &recs[0], Some("January re-read")));
    w.ok("alice", t(2025, 3, 8), Command::ResubmitReport { report: "R1".into(), reason: "January fixed".into() });
    w.ok("alice", t(2025, 3, 8), Command::AssignVerifier { report: "R1".into(), verifier: "V1".into() });
    w.ok("vera", t(2025, 3, 9), Command::GiveOpinion { report: "R1".into(), stated: Some(OpinionKind::Unqualified) });
    w.ok("gov", t(2025, 3, 10), Command::Accept { report: "R1".into() });
    // Accepted: frozen for good.
    assert_eq!(w.refused("alice", t(2025, 4, 1), monthly("E1", "U1", &recs[1], Some("after"))).0, RejectKind::OutOfOrder);
    assert_eq!(w.s.verified_emissions("E1", YEAR), Some(w.s.annual("E1", YEAR).unwrap().total_t));
}
