//! A desk wired to a real registry: every accepted command's instructions are applied to the
//! registry at once (each must be accepted), and a refused command must change nothing.
#![allow(dead_code)]

use ets_core::{Date, Tonnes};
use ets_finance::{Command, Desk, Envelope, Instruction, Outcome, Reject};
use ets_registry::{AccountKind, Command as R, HolderType, MarketLevel, MarketSpec, Registry, UnitRef};
use std::collections::BTreeMap;

pub const OP: &str = "desk";
pub const AUTH: &str = "cn-auth";
pub const PARTIES: [&str; 4] = ["alpha", "bravo", "charlie", "delta"];
pub const ALLOCATED: u64 = 100_000;
pub const DEPOSIT: i64 = 10_000_000_000;

pub fn unit() -> UnitRef {
    UnitRef::allowance("CEA", 2025)
}

/// 2025-06-02, a Monday.
pub fn day0() -> Date {
    Date::from_ymd(2025, 6, 2).unwrap()
}

/// One step after set-up, for replay.
#[derive(Clone, Debug)]
pub enum Step {
    Desk(Envelope, Result<Outcome, Reject>),
    Registry(String, R),
}

pub struct Harness {
    pub registry: Registry,
    pub desk: Desk,
    pub accounts: BTreeMap<String, String>,
    pub date: Date,
    n: u64,
    reg_n: u64,
    /// Every instruction applied, in order.
    pub applied: Vec<Instruction>,
    /// Every step after set-up, with the desk's results.
    pub steps: Vec<Step>,
}

impl Harness {
    pub fn new() -> Harness {
        let mut h = Harness {
            registry: Registry::new(),
            desk: Desk::new(OP, AUTH),
            accounts: BTreeMap::new(),
            date: day0(),
            n: 0,
            reg_n: 0,
            applied: Vec::new(),
            steps: Vec::new(),
        };
        h.reg("admin", R::InitRegistry { admins: vec!["admin".into()] }).unwrap();
        h.reg(
            "admin",
            R::AddMarket(MarketSpec {
                code: "CN".into(),
                name: "national".into(),
                level: MarketLevel::National,
                allowance_code: "CEA".into(),
                offset_standards: vec!["CCER".into()],
                individuals_may_trade: false,
                authorities: vec![AUTH.into()],
            }),
        )
        .unwrap();
        for p in PARTIES {
            h.reg(
                AUTH,
                R::OpenAccount {
                    market: "CN".into(),
                    kind: AccountKind::Operator,
                    holder: p.into(),
                    holder_type: HolderType::Entity,
                    representatives: vec![p.into()],
                },
            )
            .unwrap();
            h.accounts.insert(p.to_string(), h.registry.accounts().last().unwrap().number.clone());
        }
        let issuance = h.registry.account(h.registry.markets()[0].issuance).number.clone();
        h.reg(AUTH, R::Issue { unit: unit(), quantity: Tonnes(10_000_000), to: None }).unwrap();
        for p in PARTIES {
            let to = h.accounts[p].clone();
            h.reg(AUTH, R::Allocate { from: issuance.clone(), to, unit: unit(), quantity: Tonnes(ALLOCATED) }).unwrap();
            h.ok(OP, Command::AddParty { party: p.into(), account: h.accounts[p].clone() });
            h.ok(OP, Command::Deposit { party: p.into(), amount_fen: DEPOSIT });
        }
        h.steps.clear();
        h
    }

    /// Runs the recorded steps again from a fresh set-up: the same results, instructions, desk
    /// and registry state (the desk is deterministic given its journal and the registry).
    pub fn replay_matches(&self) {
        let mut r = Harness::new();
        for step in &self.steps {
            match step {
                Step::Desk(env, result) => {
                    r.date = env.date;
                    let got = r.send(&env.actor, env.command.clone());
                    assert_eq!(&got, result, "replay of {env:?}");
                }
                Step::Registry(actor, command) => {
                    let _ = r.reg(actor, command.clone());
                }
            }
        }
        assert_eq!(r.desk, self.desk);
        assert_eq!(r.applied, self.applied);
        assert_eq!(r.registry.snapshot(), self.registry.snapshot());
    }

    pub fn reg(&mut self, actor: &str, command: R) -> Result<(), String> {
        self.reg_n += 1;
        self.steps.push(Step::Registry(actor.to_string(), command.clone()));
        let env = ets_registry::Envelope { id: format!("test-{}", self.reg_n), actor: actor.into(), command };
        self.registry.execute(&env).map(|_| ()).map_err(|e| e.to_string())
    }

    pub fn send(&mut self, actor: &str, command: Command) -> Result<Outcome, Reject> {
        self.n += 1;
        let env = Envelope { id: format!("d{}", self.n), actor: actor.into(), date: self.date, command };
        let before = self.desk.clone();
        let registry_seq = self.registry.seq();
        let result = self.desk.execute(&env, &self.registry);
        match &result {
            Ok(outcome) => {
                for ins in &outcome.instructions {
                    let e = ets_registry::Envelope { id: ins.id.clone(), actor: ins.actor.clone(), command: ins.command.clone() };
                    self.registry.execute(&e).unwrap_or_else(|err| panic!("instruction {e:?} refused: {err}"));
                    self.applied.push(ins.clone());
                }
            }
            Err(_) => {
                assert_eq!(before, self.desk, "a refused command changed the desk");
                assert_eq!(registry_seq, self.registry.seq());
            }
        }
        self.desk.check_invariants().unwrap();
        self.steps.push(Step::Desk(env, result.clone()));
        result
    }

    pub fn ok(&mut self, actor: &str, command: Command) -> Outcome {
        let c = command.clone();
        self.send(actor, command).unwrap_or_else(|e| panic!("{c:?} refused: {e}"))
    }

    /// (free, total) units of the test unit held by a party.
    pub fn units(&self, party: &str) -> (u64, u64) {
        let a = self.registry.find_account(&self.accounts[party]).unwrap();
        let u = self.registry.unit_named(&unit()).unwrap();
        self.registry.holding(a, u).map_or((0, 0), |h| (h.free_total(), h.total()))
    }

    pub fn cash(&self, party: &str) -> i64 {
        self.desk.party(party).unwrap().balance_fen
    }

    pub fn next_day(&mut self, days: i32) {
        self.date = self.date.plus_days(days);
    }
}
