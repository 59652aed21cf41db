//! Carbon inclusion into a real registry: a Guangdong aggregator's submission, verification,
//! issuance of PHCER, trading only to admitted holders, and use for compliance within the
//! gd-2024 rulebook's offset limit and locality rules; bad submissions change nothing.

use ets_core::{Date, Tonnes};
use ets_finance::inclusion::{
    config_from_registry, ActivityRecord, Catalog, Command, Envelope, Inclusion, Outcome, Reject, RejectKind, Status,
};
use ets_registry::{AccountKind, Command as R, HolderType, MarketLevel, MarketSpec, Registry, UnitRef};
use ets_rules::compliance::{Lot, Units};
use rust_decimal::Decimal;

const OP: &str = "gd-inclusion";
const GD_AUTH: &str = "gd-eeb";

struct H {
    registry: Registry,
    inc: Inclusion,
    n: u64,
    aggregator_account: String,
    entity_account: String,
    institution_account: String,
}

fn market(code: &str, allowance: &str, standard: &str, authority: &str, individuals: bool) -> R {
    R::AddMarket(MarketSpec {
        code: code.into(),
        name: code.into(),
        level: MarketLevel::Pilot,
        allowance_code: allowance.into(),
        offset_standards: vec![standard.into()],
        individuals_may_trade: individuals,
        authorities: vec![authority.into()],
    })
}

fn sha(i: u64) -> String {
    format!("{i:064x}")
}

fn rec(id: &str, participant: &str, date: &str, quantity: &str, evidence: u64) -> ActivityRecord {
    ActivityRecord {
        record: id.into(),
        participant: participant.into(),
        date: Date::parse(date).unwrap(),
        quantity: quantity.parse().unwrap(),
        evidence_sha256: sha(evidence),
    }
}

fn phcer(methodology: &str) -> UnitRef {
    UnitRef::offset("PHCER", methodology, 2025)
}

impl H {
    fn new() -> H {
        H::with_catalog(Catalog::builtin())
    }

    fn with_catalog(catalog: Catalog) -> H {
        let mut registry = Registry::new();
        let mut n = 0;
        let mut reg = |registry: &mut Registry, actor: &str, c: R| {
            n += 1;
            registry.execute(&ets_registry::Envelope { id: format!("set-{n}"), actor: actor.into(), command: c }).unwrap()
        };
        reg(&mut registry, "admin", R::InitRegistry { admins: vec!["admin".into()] });
        reg(&mut registry, "admin", market("GD", "GDEA", "PHCER", GD_AUTH, false));
        reg(&mut registry, "admin", market("BJ", "BEA", "BCER", "bj-eeb", true));
        reg(&mut registry, "admin", market("SZ", "SZEA", "SZCER", "sz-eeb", true));
        let mut open = |registry: &mut Registry, m: &str, auth: &str, kind, holder_type, rep: &str| {
            let r = reg(
                registry,
                auth,
                R::OpenAccount { market: m.into(), kind, holder: rep.into(), holder_type, representatives: vec![rep.into()] },
            );
            let ets_registry::Outcome::Accepted { receipt, .. } = r else { panic!("duplicate") };
            registry.account(receipt.account.unwrap()).number.clone()
        };
        let aggregator_account = open(&mut registry, "GD", GD_AUTH, AccountKind::Trading, HolderType::Entity, "green-app");
        let entity_account = open(&mut registry, "GD", GD_AUTH, AccountKind::Operator, HolderType::Entity, "ceramics-co");
        let institution_account = open(&mut registry, "GD", GD_AUTH, AccountKind::Trading, HolderType::Institution, "fund");
        let config = config_from_registry(OP, catalog, &registry).unwrap();
        assert_eq!(config.pilots["GD"].rulebook, "gd-2024");
        let mut h = H { registry, inc: Inclusion::new(config).unwrap(), n: 0, aggregator_account, entity_account, institution_account };
        let acc = h.aggregator_account.clone();
        h.ok(OP, Command::AddAggregator { aggregator: "green-app".into(), pilot: "GD".into(), account: acc });
        h.ok(OP, Command::AddVerifier { verifier: "verifier-1".into() });
        h
    }

    /// Executes, applies the instructions to the registry (each must be accepted); a refusal
    /// must leave the register and the registry unchanged.
    fn send(&mut self, actor: &str, command: Command) -> Result<Outcome, Reject> {
        self.n += 1;
        let before = (self.inc.clone(), self.registry.snapshot());
        let env = Envelope { id: format!("c{}", self.n), actor: actor.into(), command };
        match self.inc.execute(&env, &self.registry) {
            Ok(out) => {
                for i in &out.instructions {
                    self.registry
                        .execute(&ets_registry::Envelope { id: i.id.clone(), actor: i.actor.clone(), command: i.command.clone() })
                        .unwrap_or_else(|r| panic!("instruction {} refused: {}", i.id, r.message));
                }
                self.registry.check_invariants().unwrap();
                Ok(out)
            }
            Err(r) => {
                assert_eq!(self.inc, before.0, "a refusal changed the register");
                assert_eq!(self.registry.snapshot(), before.1);
                Err(r)
            }
        }
    }

    fn ok(&mut self, actor: &str, command: Command) -> Outcome {
        self.send(actor, command).unwrap_or_else(|r| panic!("refused: {}", r.message))
    }

    fn refused(&mut self, actor: &str, command: Command, kind: RejectKind, says: &[&str]) {
        let r = self.send(actor, command).expect_err("should be refused");
        assert_eq!(r.kind, kind, "{}", r.message);
        for s in says {
            assert!(r.message.contains(s), "'{}' does not say '{s}'", r.message);
        }
    }

    fn free(&self, account: &str, unit: &UnitRef) -> u64 {
        use ets_finance::Holdings;
        self.registry.free(account, unit)
    }

    fn submit(&mut self, id: &str, methodology: &str, records: Vec<ActivityRecord>) -> Result<Outcome, Reject> {
        self.send(
            "green-app",
            Command::Submit { submission: id.into(), aggregator: "green-app".into(), methodology: methodology.into(), year: 2025, records },
        )
    }

    /// Submits, verifies and issues household forestry credits: `mu` mu-years per participant
    /// at 0.9 t each, rounded down.
    fn credits(&mut self, id: &str, participants: &[(&str, &str)], first_evidence: u64) -> u64 {
        let records = participants
            .iter()
            .enumerate()
            .map(|(i, (p, mu))| rec(&format!("{id}-{i}"), p, "2025-06-30", mu, first_evidence + i as u64))
            .collect();
        self.submit(id, "HOUSEHOLD-FOREST", records).unwrap();
        self.ok("verifier-1", Command::Verify { submission: id.into(), accept: true, note: "evidence sampled".into() });
        let out = self.ok(GD_AUTH, Command::Issue { submission: id.into() });
        match &out.events[..] {
            [ets_finance::inclusion::Event::Issued { quantity, .. }] => *quantity,
            other => panic!("{other:?}"),
        }
    }

    fn surrender(&mut self, quantity: u64, verified_t: u64, already: Vec<Lot>) -> Result<Outcome, Reject> {
        let account = self.entity_account.clone();
        self.send(
            "ceramics-co",
            Command::Surrender {
                account,
                unit: phcer("HOUSEHOLD-FOREST"),
                quantity,
                year: 2025,
                verified_t: Decimal::from(verified_t),
                allocation_t: verified_t,
                already,
            },
        )
    }

    fn give_entity(&mut self, quantity: u64) {
        let (from, to) = (self.aggregator_account.clone(), self.entity_account.clone());
        self.ok("green-app", Command::Transfer { from, to, unit: phcer("HOUSEHOLD-FOREST"), quantity });
    }
}

#[test]
fn a_submission_is_verified_issued_as_phcer_to_the_aggregator_and_traded_to_an_entity() {
    let mut h = H::new();
    // 0.0005703 t/kWh: 10,000 kWh → 5.703 t → 5 t; 20,000 + 15,000 kWh → 19.9605 t → 19 t.
    let records = vec![
        rec("r1", "p1", "2025-03-31", "10000", 1),
        rec("r2", "p2", "2025-03-31", "20000", 2),
        rec("r3", "p2", "2025-06-30", "15000", 3),
    ];
    let out = h.submit("S1", "SOLAR-ROOF", records).unwrap();
    assert_eq!(
        out.events,
        vec![ets_finance::inclusion::Event::Submitted { submission: "S1".into(), participants: 2, records: 3, credits_t: 24 }]
    );
    // Only an accepted submission is issued; the aggregator may not verify itself.
    h.refused(GD_AUTH, Command::Issue { submission: "S1".into() }, RejectKind::Conflict, &["Submitted", "only accepted"]);
    h.refused(
        "green-app",
        Command::Verify { submission: "S1".into(), accept: true, note: String::new() },
        RejectKind::Forbidden,
        &["not a registered verifier"],
    );
    h.ok("verifier-1", Command::Verify { submission: "S1".into(), accept: true, note: String::new() });
    h.refused("verifier-1", Command::Issue { submission: "S1".into() }, RejectKind::Forbidden, &["gd-eeb"]);
    let out = h.ok(GD_AUTH, Command::Issue { submission: "S1".into() });
    assert!(matches!(&out.instructions[0].command, R::Issue { quantity: Tonnes(24), .. }));
    assert!(matches!(&out.instructions[1].command, R::Allocate { quantity: Tonnes(24), .. }));
    let unit = UnitRef::offset("PHCER", "SOLAR-ROOF", 2025);
    assert_eq!(h.free(&h.aggregator_account.clone(), &unit), 24);
    assert_eq!(h.inc.submissions()["S1"].status, Status::Issued);
    h.refused(GD_AUTH, Command::Issue { submission: "S1".into() }, RejectKind::Conflict, &["Issued"]);

    // gd-2024 admits entities to trading, not institutions.
    let (from, to) = (h.aggregator_account.clone(), h.institution_account.clone());
    h.refused(
        "green-app",
        Command::Transfer { from: from.clone(), to, unit: unit.clone(), quantity: 5 },
        RejectKind::Rule,
        &["gd-2024", "institution"],
    );
    let to = h.entity_account.clone();
    h.refused(
        "green-app",
        Command::Transfer { from: from.clone(), to: to.clone(), unit: unit.clone(), quantity: 25 },
        RejectKind::Insufficient,
        &["24 t"],
    );
    h.ok("green-app", Command::Transfer { from, to: to.clone(), unit: unit.clone(), quantity: 10 });
    assert_eq!(h.free(&to, &unit), 10);
    let totals = &h.inc.totals()["GD"];
    assert_eq!((totals.issued_t, totals.transferred_t, totals.surrendered_t), (24, 10, 0));
}

#[test]
fn credits_count_only_within_the_pilots_offset_limit() {
    let mut h = H::new();
    // 3 × 90 mu × 0.9 = 81 t each, under the 100 t cap; 243 t issued.
    let issued = h.credits("F1", &[("p1", "90"), ("p2", "90"), ("p3", "90")], 100);
    assert_eq!(issued, 243);
    h.give_entity(243);
    // Verified 1,500 t: CCER + PHCER count up to 10% of verified emissions = 150 t.
    h.refused_surrender(200, 1_500, vec![], &["only 150 of 200 t", "beyond the limit of 10", "(150 t)"]);
    let out = h.surrender(120, 1_500, vec![]).unwrap();
    assert!(matches!(&out.instructions[..], [i] if matches!(i.command, R::Surrender { quantity: Tonnes(120), compliance_year: 2025, .. })));
    // What was surrendered already counts: 30 t more fit, 31 do not.
    let project = Catalog::project(h.inc.catalog().scheme("GD").unwrap(), h.inc.catalog().methodology("HOUSEHOLD-FOREST").unwrap());
    let already = vec![Lot { units: Units::Offset { project, vintage: 2025 }, quantity: 120 }];
    h.refused_surrender(31, 1_500, already.clone(), &["only 30 of 31 t"]);
    h.surrender(30, 1_500, already).unwrap();
    assert_eq!(h.free(&h.entity_account.clone(), &phcer("HOUSEHOLD-FOREST")), 93);
    assert_eq!(h.inc.totals()["GD"].surrendered_t, 150);
    // The registry recorded both surrenders for 2025.
    let surrendered: u64 = h
        .registry
        .transactions()
        .iter()
        .filter(|t| t.kind == ets_registry::TxKind::Surrender { compliance_year: 2025 })
        .map(|t| t.blocks.iter().map(|b| b.len()).sum::<u64>())
        .sum();
    assert_eq!(surrendered, 150);
}

impl H {
    fn refused_surrender(&mut self, quantity: u64, verified_t: u64, already: Vec<Lot>, says: &[&str]) {
        let r = self.surrender(quantity, verified_t, already).expect_err("should be refused");
        assert_eq!(r.kind, RejectKind::Rule, "{}", r.message);
        for s in says {
            assert!(r.message.contains(s), "'{}' does not say '{s}'", r.message);
        }
    }
}

#[test]
fn credits_outside_the_pilots_locality_and_project_rules_are_refused() {
    // A catalog where Guangdong credits a small-hydro methodology: gd-2024 excludes hydro.
    let mut catalog = Catalog::builtin();
    let mut hydro = catalog.methodology("HOUSEHOLD-FOREST").unwrap().clone();
    hydro.id = "MICRO-HYDRO".into();
    hydro.project_type = "hydro".into();
    catalog.methodologies.push(hydro);
    let mut h = H::with_catalog(catalog);
    h.submit("H1", "MICRO-HYDRO", vec![rec("h1", "p1", "2025-05-01", "50", 7)]).unwrap();
    h.ok("verifier-1", Command::Verify { submission: "H1".into(), accept: true, note: String::new() });
    h.ok(GD_AUTH, Command::Issue { submission: "H1".into() });
    let (from, to) = (h.aggregator_account.clone(), h.entity_account.clone());
    h.ok("green-app", Command::Transfer { from, to: to.clone(), unit: phcer("MICRO-HYDRO"), quantity: 45 });
    let r = h
        .send(
            "ceramics-co",
            Command::Surrender {
                account: to.clone(),
                unit: phcer("MICRO-HYDRO"),
                quantity: 10,
                year: 2025,
                verified_t: Decimal::from(10_000),
                allocation_t: 10_000,
                already: vec![],
            },
        )
        .unwrap_err();
    assert_eq!(r.kind, RejectKind::Rule);
    assert!(r.message.contains("hydro projects (MICRO-HYDRO) are excluded"), "{}", r.message);

    // Beijing's credits do not count in Guangdong: BCER is not among gd-2024's offsets.
    let r = h
        .send(
            "ceramics-co",
            Command::Surrender {
                account: to,
                unit: UnitRef::offset("BCER", "SOLAR-ROOF", 2025),
                quantity: 1,
                year: 2025,
                verified_t: Decimal::from(10_000),
                allocation_t: 10_000,
                already: vec![],
            },
        )
        .unwrap_err();
    assert!(r.message.contains("BCER offsets are not accepted in this market"), "{}", r.message);
}

#[test]
fn bad_submissions_are_refused_with_every_problem_named_and_change_nothing() {
    let mut h = H::new();
    let r = h.submit("B1", "SOLAR-WIND", vec![rec("a", "p1", "2025-01-01", "1", 1)]).unwrap_err();
    assert_eq!(r.kind, RejectKind::NotFound);
    assert!(r.message.contains("unknown methodology 'SOLAR-WIND'") && r.message.contains("SOLAR-ROOF"), "{}", r.message);

    // Over the cap: 2 t per participant and year for appliances; 4,000 kWh × 0.0005703 = 2.28 → 2 t fits, 6,000 → 3 t does not.
    let r = h.submit("B2", "APPLIANCE-EFF", vec![rec("a", "p1", "2025-02-01", "6000", 1)]).unwrap_err();
    assert_eq!(r.kind, RejectKind::Rule);
    assert!(r.message.contains("participant p1: 3 t in this submission exceeds APPLIANCE-EFF's cap of 2 t"), "{}", r.message);

    // Several problems at once, each named by record.
    let mut records = vec![
        rec("a", "p1", "2025-02-01", "1000", 1),
        rec("a", "p2", "2025-02-01", "1000", 2),
        rec("b", "p3", "2023-12-31", "1000", 3),
        rec("c", "p4", "2025-02-01", "1000", 1),
    ];
    records.push(ActivityRecord { evidence_sha256: String::new(), ..rec("d", "p5", "2025-02-01", "1000", 0) });
    let r = h.submit("B3", "APPLIANCE-EFF", records).unwrap_err();
    for s in [
        "4 problem(s)",
        "record 2 ('a', participant p2): duplicate: record id appears twice",
        "record 3 ('b', participant p3): activity on 2023-12-31 is outside APPLIANCE-EFF's crediting period",
        "record 4 ('c', participant p4): duplicate: its evidence is also used by another record",
        "record 5 ('d', participant p5): no evidence",
    ] {
        assert!(r.message.contains(s), "'{}' does not say '{s}'", r.message);
    }

    // Duplicates across submissions, and the cap counted across them.
    h.submit("G1", "APPLIANCE-EFF", vec![rec("a", "p1", "2025-02-01", "2000", 10)]).unwrap();
    let r = h.submit("G2", "APPLIANCE-EFF", vec![rec("a", "p2", "2025-03-01", "10", 11)]).unwrap_err();
    assert!(r.message.contains("duplicate: record id was already submitted by green-app"), "{}", r.message);
    let r = h.submit("G2", "APPLIANCE-EFF", vec![rec("b", "p2", "2025-03-01", "10", 10)]).unwrap_err();
    assert!(r.message.contains("duplicate: its evidence was already used in an earlier submission"), "{}", r.message);
    let r = h.submit("G2", "APPLIANCE-EFF", vec![rec("b", "p1", "2025-03-01", "4000", 12)]).unwrap_err();
    assert!(r.message.contains("participant p1: 2 t in this submission plus 1 t already submitted exceeds"), "{}", r.message);
    assert!(h.inc.submissions().keys().eq(["G1"]));

    // A rejected submission frees its records for a corrected resubmission.
    h.ok("verifier-1", Command::Verify { submission: "G1".into(), accept: false, note: "meter photo unreadable".into() });
    h.submit("G2", "APPLIANCE-EFF", vec![rec("a", "p1", "2025-02-01", "3500", 10)]).unwrap();
    assert_eq!(h.inc.submissions()["G2"].credits_t(), 1);
}

#[test]
fn the_shipped_catalog_loads_and_a_broken_one_names_every_problem() {
    let c = Catalog::builtin();
    assert!(c.methodologies.len() >= 4 && c.scheme("GD").is_some_and(|s| s.standard == "PHCER"));
    let text = ets_finance::inclusion::BUILTIN_CATALOG
        .replace("\"factor_t_per_unit\": \"0.9\"", "\"factor_t_per_unit\": \"-0.9\"")
        .replace("\"pilots\": [\"GD\"]", "\"pilots\": [\"XX\"]");
    let problems = Catalog::from_json("bad.json", &text).unwrap_err();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].contains("bad.json: methodologies[3] (HOUSEHOLD-FOREST): factor_t_per_unit -0.9"));
    assert!(problems[1].contains("pilot XX has no scheme"));
    let float = ets_finance::inclusion::BUILTIN_CATALOG.replace("\"factor_t_per_unit\": \"0.9\"", "\"factor_t_per_unit\": 0.9");
    assert!(Catalog::from_json("f.json", &float).unwrap_err()[0].contains("decimals are kept exact"));
}

#[test]
fn credits_trade_to_individuals_only_where_the_pilot_admits_them() {
    let mut h = H::new();
    let open = |h: &mut H, market: &str, auth: &str, holder_type, rep: &str| {
        let command = R::OpenAccount {
            market: market.into(),
            kind: AccountKind::Trading,
            holder: rep.into(),
            holder_type,
            representatives: vec![rep.into()],
        };
        h.registry.execute(&ets_registry::Envelope { id: format!("open-{rep}"), actor: auth.into(), command })
    };
    // Guangdong (gd-2024: no individuals) has no individual accounts at all.
    assert!(open(&mut h, "GD", GD_AUTH, HolderType::Individual, "li-wei").is_err());
    // Shenzhen (sz-2022: individuals trade): a platform's credits sold to a person.
    let account =
        |h: &H, rep: &str| h.registry.accounts().iter().find(|a| a.representatives.contains(&rep.to_string())).unwrap().number.clone();
    open(&mut h, "SZ", "sz-eeb", HolderType::Institution, "sz-app").unwrap();
    open(&mut h, "SZ", "sz-eeb", HolderType::Individual, "chen-jing").unwrap();
    let (app, person) = (account(&h, "sz-app"), account(&h, "chen-jing"));
    h.ok(OP, Command::AddAggregator { aggregator: "sz-app".into(), pilot: "SZ".into(), account: app.clone() });
    let submit = Command::Submit {
        submission: "SZ1".into(),
        aggregator: "sz-app".into(),
        methodology: "SOLAR-ROOF".into(),
        year: 2025,
        records: vec![rec("z1", "p1", "2025-04-30", "30000", 50)],
    };
    h.ok("sz-app", submit);
    h.ok("verifier-1", Command::Verify { submission: "SZ1".into(), accept: true, note: String::new() });
    h.ok("sz-eeb", Command::Issue { submission: "SZ1".into() });
    let unit = UnitRef::offset("SZCER", "SOLAR-ROOF", 2025);
    assert_eq!(h.free(&app, &unit), 17);
    h.ok("sz-app", Command::Transfer { from: app, to: person.clone(), unit: unit.clone(), quantity: 5 });
    assert_eq!(h.free(&person, &unit), 5);
    // Shenzhen credits stay in Shenzhen.
    let to = h.entity_account.clone();
    h.refused("chen-jing", Command::Transfer { from: person, to, unit, quantity: 1 }, RejectKind::Rule, &["is in market GD", "stay in SZ"]);
}
