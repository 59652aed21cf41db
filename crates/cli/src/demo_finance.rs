//! The demo's carbon finance (issue 9), through the finance journal like `ets finance` and
//! `ets inclusion`:
//! - carbon inclusion in Guangdong, before the pilot's surrender: a platform pools households'
//!   rooftop solar and household forestry, a verifier accepts, the authority issues PHCER, the
//!   platform sells them to the two covered entities, which surrender them for 2025 within the
//!   gd-2024 offset limit (the cycle's surrender plan then needs fewer allowances);
//! - the finance desk after the trading year: three pledges on national allowances (one
//!   released, one enforced after an unmet margin call, one topped up and still active), a repo
//!   and a forward month traded on its book to physical delivery.
//!
//! Deterministic: fixed seeds and dates, no clock.

use crate::output::Output;
use crate::{CliError, ExitCode};
use ets_core::{Date, Fen, Timestamp, Tonnes};
use ets_finance::desk::{self, Command as D, ContractSpec, EnforceReason, Event as DEvent, Settlement};
use ets_finance::inclusion::{self, ActivityRecord, Catalog, Command as I, Event as IEvent};
use ets_finance::{Side, Tif};
use ets_registry::{AccountKind, Command, Envelope, HolderType, UnitRef};
use ets_store::{FinanceLog, FinanceReceipt, Ledger, Location};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

const PILOT: &str = "GD";
const OPERATOR: &str = "gd-inclusion";
const PLATFORM: &str = "gd-green-platform";
const VERIFIER: &str = "gd-verifier";
const SOLAR_HOUSEHOLDS: usize = 400;
const FOREST_HOUSEHOLDS: usize = 200;

fn at(d: Date) -> Timestamp {
    Timestamp(d.start().0 + 10 * 3_600_000)
}

fn day(y: i32, m: u32, d: u32) -> Date {
    Date::from_ymd(y, m, d).expect("demo date")
}

fn refused(what: &str, message: &str) -> CliError {
    CliError::new(ExitCode::Internal, format!("demo finance command {what} was refused: {message}"))
}

pub struct InclusionDemo {
    pub participants: usize,
    pub records: usize,
    pub submissions: usize,
    pub refused: String,
    pub issued_t: u64,
    pub platform_account: String,
    /// (entity account, tonnes surrendered, offsets then counted).
    pub surrendered: Vec<(String, u64, u64)>,
}

fn send_inclusion(
    log: &mut FinanceLog,
    ledger: &mut Ledger,
    id: &str,
    actor: &str,
    command: I,
    date: Date,
) -> Result<Vec<IEvent>, CliError> {
    let e = inclusion::Envelope { id: id.into(), actor: actor.into(), command };
    match log.submit_inclusion(&e, ledger, at(date))? {
        Ok(FinanceReceipt::Accepted(o)) => Ok(o.events),
        Ok(FinanceReceipt::Repeated) => Ok(Vec::new()),
        Err(r) => Err(refused(id, &r.message)),
    }
}

fn evidence(text: &str) -> String {
    ets_store::sha256_hex(text.as_bytes())
}

/// Carbon inclusion in Guangdong for `year`; called by the compliance cycle after coverage and
/// before the pilots' surrenders.
pub fn inclusion(location: &Location, ledger: &mut Ledger, mrv: &ets_mrv::state::MrvState, year: i32) -> Result<InclusionDemo, CliError> {
    let mut log = FinanceLog::open(location.open()?)?;
    let y = year as u16;
    let registry = ledger.registry();
    let market = registry.find_market(PILOT).ok_or_else(|| CliError::new(ExitCode::Internal, "the demo has no Guangdong market"))?;
    let authority = registry.market(market).spec.authorities[0].clone();
    // The platform's account: a trading account of an institution (issuance is to it; trading
    // onward is to holders gd-2024 admits, covered entities).
    let open = Command::OpenAccount {
        market: PILOT.into(),
        kind: AccountKind::Trading,
        holder: "Guangdong green-life platform (carbon inclusion aggregator)".into(),
        holder_type: HolderType::Institution,
        representatives: vec![PLATFORM.into()],
    };
    let receipt = ledger
        .submit(at(day(year + 1, 2, 1)), &Envelope { id: "inclusion-open-platform".into(), actor: authority.clone(), command: open })
        .map_err(|e| CliError::new(ExitCode::Internal, format!("demo: opening the platform's account: {e:?}")))?
        .receipt;
    let platform_account = ledger.registry().account(receipt.account.expect("an opened account")).number.clone();
    let config = inclusion::config_from_registry(OPERATOR, Catalog::builtin(), ledger.registry())
        .map_err(|m| CliError::new(ExitCode::Internal, m))?;
    log.init_inclusion(config, at(day(year + 1, 2, 1)))?;
    let d = day(year + 1, 2, 2);
    let add = I::AddAggregator { aggregator: PLATFORM.into(), pilot: PILOT.into(), account: platform_account.clone() };
    send_inclusion(&mut log, ledger, "inclusion-aggregator", OPERATOR, add, d)?;
    send_inclusion(&mut log, ledger, "inclusion-verifier", OPERATOR, I::AddVerifier { verifier: VERIFIER.into() }, d)?;

    // Households' activity: quarterly rooftop-solar meter readings and a year of forest growth.
    let mut rng = ChaCha8Rng::seed_from_u64(0x7468_6168);
    let mut solar = Vec::new();
    for h in 0..SOLAR_HOUSEHOLDS {
        for (q, end) in [(1, day(year, 3, 31)), (2, day(year, 6, 30)), (3, day(year, 9, 30)), (4, day(year, 12, 31))] {
            let kwh = rng.gen_range(600..4_500);
            solar.push(ActivityRecord {
                record: format!("S{year}-H{h:04}-Q{q}"),
                participant: format!("H{h:04}"),
                date: end,
                quantity: kwh.into(),
                evidence_sha256: evidence(&format!("meter H{h:04} {year} Q{q} {kwh} kWh")),
            });
        }
    }
    let forest: Vec<ActivityRecord> = (0..FOREST_HOUSEHOLDS)
        .map(|h| {
            let mu = rng.gen_range(10..110);
            ActivityRecord {
                record: format!("F{year}-H{h:04}"),
                participant: format!("F{h:04}"),
                date: day(year, 12, 31),
                quantity: mu.into(),
                evidence_sha256: evidence(&format!("forest survey F{h:04} {year} {mu} mu")),
            }
        })
        .collect();
    let records = solar.len() + forest.len();
    let mut issued_t = 0;
    let d = day(year + 1, 3, 2);
    for (id, methodology, records) in [("GD-SOLAR-1", "SOLAR-ROOF", solar.clone()), ("GD-FOREST-1", "HOUSEHOLD-FOREST", forest)] {
        let submit = I::Submit { submission: id.into(), aggregator: PLATFORM.into(), methodology: methodology.into(), year: y, records };
        send_inclusion(&mut log, ledger, &format!("inclusion-submit-{id}"), PLATFORM, submit, d)?;
        let verify = I::Verify { submission: id.into(), accept: true, note: "evidence sampled: 5% of records".into() };
        send_inclusion(&mut log, ledger, &format!("inclusion-verify-{id}"), VERIFIER, verify, day(year + 1, 3, 16))?;
        for e in send_inclusion(
            &mut log,
            ledger,
            &format!("inclusion-issue-{id}"),
            &authority,
            I::Issue { submission: id.into() },
            day(year + 1, 3, 20),
        )? {
            if let IEvent::Issued { quantity, .. } = e {
                issued_t += quantity;
            }
        }
    }
    // The platform submits the first quarter again: refused, nothing recorded.
    let again = I::Submit {
        submission: "GD-SOLAR-2".into(),
        aggregator: PLATFORM.into(),
        methodology: "SOLAR-ROOF".into(),
        year: y,
        records: solar[..8].to_vec(),
    };
    let e = inclusion::Envelope { id: "inclusion-submit-GD-SOLAR-2".into(), actor: PLATFORM.into(), command: again };
    let refused = match log.submit_inclusion(&e, ledger, at(day(year + 1, 3, 25)))? {
        Err(r) => r.message.lines().take(2).map(str::trim).collect::<Vec<_>>().join(" "),
        Ok(_) => return Err(CliError::new(ExitCode::Internal, "demo: a duplicate submission was accepted")),
    };

    // The platform sells the credits to Guangdong's covered entities, which surrender them.
    let catalog = log.inclusion().expect("set up").catalog().clone();
    let covered = ets_compliance::covered(mrv, PILOT, year);
    let buyers: Vec<(String, String)> =
        covered.iter().filter(|c| c.verified_t.is_some()).filter_map(|c| Some((c.entity.clone(), c.account.clone()?))).collect();
    let mut surrendered = Vec::new();
    for (i, (entity, account)) in buyers.iter().enumerate() {
        let rep = mrv.entity(entity).and_then(|e| e.representatives.iter().next().cloned()).expect("a representative");
        for (methodology, share) in [("SOLAR-ROOF", 2), ("HOUSEHOLD-FOREST", 2)] {
            let unit = UnitRef::offset("PHCER", methodology, y);
            let held = ets_finance::Holdings::free(ledger.registry(), &platform_account, &unit);
            let quantity = if i + 1 == buyers.len() { held } else { held / share };
            if quantity == 0 {
                continue;
            }
            let t = I::Transfer { from: platform_account.clone(), to: account.clone(), unit: unit.clone(), quantity };
            send_inclusion(&mut log, ledger, &format!("inclusion-sell-{entity}-{methodology}"), PLATFORM, t, day(year + 1, 4, 1))?;
            let (verified_t, allocation_t, already) =
                crate::inclusion::context(ledger, mrv, &catalog, account, y, ets_compliance::ProjectCatalog::new())?;
            let s = I::Surrender { account: account.clone(), unit, quantity, year: y, verified_t, allocation_t, already };
            for e in
                send_inclusion(&mut log, ledger, &format!("inclusion-surrender-{entity}-{methodology}"), &rep, s, day(year + 1, 4, 15))?
            {
                if let IEvent::Surrendered { quantity, offsets_counted_t, .. } = e {
                    match surrendered.iter_mut().find(|(a, _, _)| a == account) {
                        Some(row) => *row = (account.clone(), row.1 + quantity, offsets_counted_t),
                        None => surrendered.push((account.clone(), quantity, offsets_counted_t)),
                    }
                }
            }
        }
    }
    Ok(InclusionDemo {
        participants: SOLAR_HOUSEHOLDS + FOREST_HOUSEHOLDS,
        records,
        submissions: 2,
        refused,
        issued_t,
        platform_account,
        surrendered,
    })
}

impl InclusionDemo {
    pub fn json(&self) -> Value {
        json!({"pilot": PILOT, "participants": self.participants, "records": self.records, "submissions": self.submissions,
               "refused_submission": self.refused, "issued_t": self.issued_t, "aggregator_account": self.platform_account,
               "surrendered": self.surrendered.iter().map(|(a, t, c)| json!({"account": a, "surrendered_t": t, "offsets_counted_t": c})).collect::<Vec<_>>()})
    }

    pub fn print(&self, db: &str) {
        let used: u64 = self.surrendered.iter().map(|s| s.1).sum();
        println!(
            "carbon inclusion (碳普惠, Guangdong PHCER): {} households, {} activity records in {} submissions, verified and issued: {} t to {}",
            self.participants,
            self.records,
            self.submissions,
            Tonnes(self.issued_t),
            self.platform_account
        );
        println!("  a resubmission of the first quarter was refused: {}", self.refused);
        for (account, t, counted) in &self.surrendered {
            println!("  {account} bought and surrendered {} t for compliance; its offsets counted under gd-2024: {} t (limit 10% of verified emissions)", Tonnes(*t), Tonnes(*counted));
        }
        println!("  {} t used for compliance in all", Tonnes(used));
        println!("  try: ets {db} inclusion report   ets {db} inclusion methodologies");
    }
}

// ---------------------------------------------------------------------------------- the desk

pub struct FinanceDemo {
    pub unit: UnitRef,
    pub pledges: Vec<String>,
    pub repo: String,
    pub forward: String,
    pub journal_records: u64,
}

struct Desk<'a> {
    log: FinanceLog,
    ledger: &'a mut Ledger,
    n: u64,
    date: Date,
}

impl Desk<'_> {
    fn send(&mut self, actor: &str, command: D) -> Result<Vec<DEvent>, CliError> {
        self.n += 1;
        let e = desk::Envelope { id: format!("demo-fin-{}", self.n), actor: actor.into(), date: self.date, command };
        match self.log.submit_desk(&e, self.ledger, at(self.date))? {
            Ok(FinanceReceipt::Accepted(o)) => Ok(o.events),
            Ok(FinanceReceipt::Repeated) => Ok(Vec::new()),
            Err(r) => Err(refused(&e.id, &r.message)),
        }
    }
}

const OP: &str = "desk";

/// The desk after the trading year: parties are the four largest free holders of national
/// allowances of `vintage`.
pub fn desk(location: &Location, ledger: &mut Ledger, vintage: u16) -> Result<FinanceDemo, CliError> {
    let unit = UnitRef::allowance("CEA", vintage);
    let registry = ledger.registry();
    let u = registry.unit_named(&unit).map_err(|r| CliError::new(ExitCode::Internal, r.message))?;
    let mut holders: Vec<(u64, String, String)> = registry
        .accounts()
        .iter()
        .enumerate()
        .filter(|(_, a)| a.kind == AccountKind::Operator && !a.representatives.is_empty())
        .filter_map(|(i, a)| {
            let h = registry.holding(ets_registry::AccountIdx(i as u32), u)?;
            Some((h.free_total(), a.number.clone(), a.representatives[0].clone()))
        })
        .collect();
    holders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    holders.truncate(4);
    if holders.len() < 4 || holders[3].0 < 40_000 {
        return Err(CliError::new(ExitCode::Internal, format!("demo: too few holders of {unit} for the finance desk")));
    }
    let cn = registry.find_market("CN").expect("CN");
    let registrar = registry.market(cn).spec.authorities[0].clone();
    let mut log = FinanceLog::open(location.open()?)?;
    let day0 = day(2027, 1, 4);
    log.init_desk(OP, &registrar, at(day0))?;
    let mut k = Desk { log, ledger, n: 0, date: day0 };
    let p: Vec<String> = holders.iter().map(|h| h.2.clone()).collect();
    for h in &holders {
        k.send(OP, D::AddParty { party: h.2.clone(), account: h.1.clone() })?;
        k.send(OP, D::Deposit { party: h.2.clone(), amount_fen: 5_000_000_000 })?;
    }
    // Pledges at ¥96.00: haircut 30%, maintenance 120%, three days to answer a call.
    k.send(OP, D::Mark { unit: unit.clone(), close_fen: 9_600 })?;
    let pledge = |id: &str, lender: &str, borrower: &str, quantity: u64, loan_fen: i64| D::Pledge {
        pledge: id.into(),
        lender: lender.into(),
        borrower: borrower.into(),
        unit: unit.clone(),
        quantity,
        loan_fen,
        haircut_bp: 3_000,
        maintenance_bp: 12_000,
        topup_days: 3,
        maturity: day(2027, 6, 30),
    };
    k.send(OP, pledge("P1", &p[0], &p[1], 20_000, 100_000_000))?;
    k.send(OP, pledge("P2", &p[0], &p[2], 30_000, 100_000_000))?;
    k.send(OP, pledge("P3", &p[1], &p[3], 10_000, 55_000_000))?;
    // A repo: 15,000 t for ¥1,350,000, bought back for ¥1,357,500 a week later.
    let repo = D::Repo {
        repo: "R1".into(),
        seller: p[0].clone(),
        buyer: p[2].clone(),
        unit: unit.clone(),
        quantity: 15_000,
        start_fen: 135_000_000,
        repurchase_fen: 135_750_000,
        repurchase_date: day(2027, 1, 11),
        penalty_bp: 500,
    };
    k.send(OP, repo)?;
    // A forward month on the desk's book, physically delivered at the end of January.
    let forward = format!("CEA-{vintage}-F2701");
    let spec = ContractSpec {
        code: forward.clone(),
        unit: unit.clone(),
        size_t: 1_000,
        expiry: day(2027, 1, 29),
        settlement: Settlement::Physical,
        initial_margin_fen: 1_000_000,
        position_limit: 100,
        reference_price_fen: 9_500,
        delivery_penalty_bp: 1_000,
    };
    k.send(OP, D::ListContract(spec))?;
    // Day 1: the price falls to ¥80.00: P1 and P3 are called.
    k.date = day(2027, 1, 5);
    k.send(OP, D::Mark { unit: unit.clone(), close_fen: 8_000 })?;
    let order = |order: u64, party: &str, side: Side, price_fen: i64, contracts: u64| D::PlaceOrder {
        contract: forward.clone(),
        order,
        party: party.into(),
        side,
        price_fen,
        contracts,
        tif: Tif::Gtc,
    };
    k.send(&p[0].clone(), order(1, &p[0], Side::Sell, 8_100, 10))?;
    k.send(&p[1].clone(), order(2, &p[1], Side::Buy, 8_100, 6))?;
    k.send(&p[2].clone(), order(3, &p[2], Side::Buy, 8_150, 4))?;
    k.send(OP, D::SettlePrice { contract: forward.clone(), price_fen: 8_050 })?;
    k.send(OP, D::EndOfDay)?;
    // Day 2: the borrower of P1 tops up; P3's borrower does not.
    k.date = day(2027, 1, 6);
    k.send(&p[1].clone(), D::TopUp { pledge: "P1".into(), quantity: 2_000 })?;
    k.send(OP, D::EndOfDay)?;
    let mut enforced = 0;
    for (d, price) in [(7, 8_120), (8, 8_200), (11, 8_310)] {
        k.date = day(2027, 1, d);
        k.send(OP, D::SettlePrice { contract: forward.clone(), price_fen: price })?;
        for e in k.send(OP, D::EndOfDay)? {
            if let DEvent::PledgeEnforced { quantity, reason: EnforceReason::MarginCallUnmet, .. } = e {
                enforced += quantity;
            }
        }
    }
    // P2 repaid in full: its units are released.
    k.date = day(2027, 1, 15);
    k.send(&p[2].clone(), D::Repay { pledge: "P2".into(), amount_fen: 100_000_000 })?;
    // Expiry: shorts deliver into the longs' registry accounts at the final settlement price.
    k.date = day(2027, 1, 29);
    k.send(OP, D::SettlePrice { contract: forward.clone(), price_fen: 8_400 })?;
    let mut delivered = Vec::new();
    for e in k.send(OP, D::EndOfDay)? {
        if let DEvent::Delivered { short, long, tonnes, cash_fen, .. } = e {
            delivered.push(format!("{short} delivered {} t to {long} for ¥{}", Tonnes(tonnes), Fen(cash_fen)));
        }
    }
    let desk = k.log.desk().expect("set up");
    let pl = |id: &str| desk.pledge(id).expect("registered");
    let pledges = vec![
        format!("P1 {} → {}: price fell, margin call met by a top-up; {} t still pledged", p[1], p[0], Tonnes(pl("P1").quantity())),
        format!("P2 {} → {}: repaid, {} t released", p[2], p[0], Tonnes(pl("P2").quantity())),
        format!("P3 {} → {}: margin call unmet, {} t enforced to the lender", p[3], p[1], Tonnes(enforced)),
    ];
    let repo = format!(
        "R1 {} sold 15,000 t to {} for ¥1,350,000.00, bought back for ¥1,357,500.00: {:?}",
        p[0],
        p[2],
        desk.repo("R1").expect("opened").status
    );
    let forward = format!(
        "{forward}: 10 contracts of 1,000 t traded at ¥81.00, daily settlement to ¥84.00, then physical delivery: {}",
        delivered.join("; ")
    );
    Ok(FinanceDemo { unit, pledges, repo, forward, journal_records: k.log.head().0 })
}

impl FinanceDemo {
    pub fn json(&self) -> Value {
        json!({"unit": self.unit.to_string(), "pledges": self.pledges, "repo": self.repo, "forward": self.forward, "finance_journal_records": self.journal_records})
    }

    pub fn print(&self, out: &Output, db: &str) {
        if out.is_json() {
            return;
        }
        println!("finance desk ({}; finance journal: {} records):", self.unit, self.journal_records);
        for p in &self.pledges {
            println!("  pledge {p}");
        }
        println!("  repo {}", self.repo);
        println!("  forward {}", self.forward);
        println!("  try: ets {db} finance report");
    }
}
