//! Issue 9 acceptance scenarios, run into a real registry: the pledge default scenario, release
//! on repayment, calls cleared by top-up or cash, repos settled and failed, futures variation
//! margin and physical delivery, and bad input that changes nothing.

mod common;

use common::*;
use ets_core::Tonnes;
use ets_finance::desk::{ContractSpec, ContractStatus, EnforceReason, PledgeStatus, RepoStatus};
use ets_finance::{Command, Event, RejectKind, Settlement, Side, Tif};
use ets_registry::Command as R;

fn pledge(id: &str, quantity: u64, loan_fen: i64) -> Command {
    Command::Pledge {
        pledge: id.into(),
        lender: "alpha".into(),
        borrower: "bravo".into(),
        unit: unit(),
        quantity,
        loan_fen,
        haircut_bp: 3_000,
        maintenance_bp: 12_000,
        topup_days: 3,
        maturity: day0().plus_days(90),
    }
}

fn mark(close_fen: i64) -> Command {
    Command::Mark { unit: unit(), close_fen }
}

#[test]
fn default_scenario_price_fall_call_unmet_enforcement_lender_gets_collateral_exactly() {
    let mut h = Harness::new();
    h.ok(OP, mark(10_000)); // ¥100.00
    let out = h.ok(OP, pledge("P1", 10_000, 50_000_000));
    assert!(matches!(&out.instructions[0].command, R::CreatePending { quantity: Tonnes(10_000), .. }));
    // Locked: still owned by the borrower, not free, not movable.
    assert_eq!(h.units("bravo"), (ALLOCATED - 10_000, ALLOCATED));
    let to = h.accounts["charlie"].clone();
    let from = h.accounts["bravo"].clone();
    assert!(h.reg("bravo", R::Transfer { from, to, unit: unit(), quantity: Tonnes(ALLOCATED) }).is_err());
    assert_eq!(h.cash("bravo"), DEPOSIT + 50_000_000);
    assert_eq!(h.cash("alpha"), DEPOSIT - 50_000_000);

    // 10,000 t × ¥80 × 70% = ¥560,000 < 120% × ¥500,000: a margin call, deadline in 3 days.
    h.next_day(1);
    let out = h.ok(OP, mark(8_000));
    let deadline = h.date.plus_days(3);
    assert!(out.events.contains(&Event::MarginCall { pledge: "P1".into(), deadline }));
    assert_eq!(h.desk.pledge("P1").unwrap().call, Some(deadline));
    assert_eq!(h.desk.margin_calls(), vec![("P1".to_string(), deadline)]);
    assert_eq!(h.desk.encumbrance()[&("bravo".to_string(), unit().to_string())], 10_000);
    for _ in 0..2 {
        h.next_day(1);
        let out = h.ok(OP, Command::EndOfDay);
        assert!(out.instructions.is_empty(), "enforced before the deadline");
    }
    h.next_day(1);
    let out = h.ok(OP, Command::EndOfDay);
    assert!(out.events.iter().any(|e| matches!(e, Event::PledgeEnforced { reason: EnforceReason::MarginCallUnmet, quantity: 10_000, .. })));
    assert!(matches!(&out.instructions[..], [i] if matches!(&i.command, R::PostPending { .. })));
    assert_eq!(h.desk.pledge("P1").unwrap().status, PledgeStatus::Enforced);
    assert_eq!(h.units("alpha"), (ALLOCATED + 10_000, ALLOCATED + 10_000));
    assert_eq!(h.units("bravo"), (ALLOCATED - 10_000, ALLOCATED - 10_000));
    assert!(h.registry.pending("pledge:P1:1").is_none());
    h.registry.check_invariants().unwrap();
}

#[test]
fn repayment_releases_and_calls_clear_by_top_up_or_cash() {
    let mut h = Harness::new();
    h.ok(OP, mark(10_000));
    h.ok(OP, pledge("P1", 10_000, 50_000_000));
    h.ok(OP, pledge("P2", 10_000, 50_000_000));
    h.next_day(1);
    h.ok(OP, mark(8_000));
    assert!(h.desk.pledge("P1").unwrap().call.is_some() && h.desk.pledge("P2").unwrap().call.is_some());
    // P1: top-up of 1,000 t → 11,000 × 8,000 × 0.7 = 61.6m ≥ 60m.
    let out = h.ok("bravo", Command::TopUp { pledge: "P1".into(), quantity: 1_000 });
    assert!(out.events.contains(&Event::CallCleared { pledge: "P1".into() }));
    assert_eq!(h.registry.pending("pledge:P1:2").map(|p| p.blocks.iter().map(|b| b.len()).sum::<u64>()), Some(1_000));
    // P2: repay ¥50,000 → 56m ≥ 1.2 × 45m = 54m.
    let out = h.ok("bravo", Command::Repay { pledge: "P2".into(), amount_fen: 5_000_000 });
    assert!(out.events.contains(&Event::CallCleared { pledge: "P2".into() }));
    h.next_day(5);
    h.ok(OP, Command::EndOfDay);
    assert_eq!(h.desk.pledge("P1").unwrap().status, PledgeStatus::Active);
    // Full repayment releases every pending.
    let bravo_cash = h.cash("bravo");
    let out = h.ok("bravo", Command::Repay { pledge: "P1".into(), amount_fen: 50_000_000 });
    assert_eq!(out.instructions.iter().filter(|i| matches!(i.command, R::VoidPending { .. })).count(), 2);
    assert_eq!(h.cash("bravo"), bravo_cash - 50_000_000);
    assert_eq!(h.desk.pledge("P1").unwrap().status, PledgeStatus::Released);
    assert_eq!(h.units("bravo"), (ALLOCATED - 10_000, ALLOCATED));
    // P2 unpaid at maturity is enforced.
    h.date = day0().plus_days(90);
    let out = h.ok(OP, Command::EndOfDay);
    assert!(out.events.iter().any(|e| matches!(e, Event::PledgeEnforced { reason: EnforceReason::UnpaidAtMaturity, .. })));
    assert_eq!(h.units("alpha"), (ALLOCATED + 10_000, ALLOCATED + 10_000));
}

fn repo(id: &str, quantity: u64) -> Command {
    Command::Repo {
        repo: id.into(),
        seller: "charlie".into(),
        buyer: "delta".into(),
        unit: unit(),
        quantity,
        start_fen: 90_000_000,
        repurchase_fen: 91_000_000,
        repurchase_date: day0().plus_days(7),
        penalty_bp: 500,
    }
}

#[test]
fn repo_two_legs_settle_delivery_versus_payment() {
    let mut h = Harness::new();
    h.ok(OP, repo("R1", 10_000));
    assert_eq!(h.units("delta").0, ALLOCATED + 10_000);
    assert_eq!(h.cash("charlie"), DEPOSIT + 90_000_000);
    h.next_day(7);
    let out = h.ok(OP, Command::EndOfDay);
    assert!(out.events.contains(&Event::RepoSettled { repo: "R1".into() }));
    assert_eq!(h.units("charlie").0, ALLOCATED);
    assert_eq!(h.units("delta").0, ALLOCATED);
    assert_eq!(h.cash("charlie"), DEPOSIT - 1_000_000);
    assert_eq!(h.cash("delta"), DEPOSIT + 1_000_000);
}

#[test]
fn repo_second_leg_fails_cleanly_and_the_remedy_is_applied() {
    let mut h = Harness::new();
    h.ok(OP, repo("R1", 10_000));
    // The buyer sells on everything it holds: it cannot deliver the second leg.
    let (from, to) = (h.accounts["delta"].clone(), h.accounts["alpha"].clone());
    h.reg("delta", R::Transfer { from, to, unit: unit(), quantity: Tonnes(ALLOCATED + 10_000) }).unwrap();
    h.next_day(7);
    let out = h.ok(OP, Command::EndOfDay);
    // 5% of ¥910,000 from the defaulting buyer; the seller keeps the first leg's cash.
    assert!(out.events.contains(&Event::RepoFailed { repo: "R1".into(), defaulters: vec!["delta".into()], penalty_fen: 4_550_000 }));
    assert!(out.instructions.is_empty());
    assert_eq!(h.desk.repo("R1").unwrap().status, RepoStatus::Failed { defaulters: vec!["delta".into()] });
    assert_eq!(h.cash("charlie"), DEPOSIT + 90_000_000 + 4_550_000);
    assert_eq!(h.cash("delta"), DEPOSIT - 90_000_000 - 4_550_000);
    assert_eq!(h.units("charlie").0, ALLOCATED - 10_000);
}

fn future(settlement: Settlement) -> ContractSpec {
    ContractSpec {
        code: "CEA-F2506".into(),
        unit: unit(),
        size_t: 1_000,
        expiry: day0().plus_days(10),
        settlement,
        initial_margin_fen: 1_000_000,
        position_limit: 50,
        reference_price_fen: 10_000,
        delivery_penalty_bp: 1_000,
    }
}

fn trade(buyer: &str, seller: &str, contracts: u64, price_fen: i64) -> Command {
    Command::Trade { contract: "CEA-F2506".into(), buyer: buyer.into(), seller: seller.into(), contracts, price_fen }
}

#[test]
fn futures_variation_margin_sums_to_price_change_times_position_and_delivery_is_exact() {
    let mut h = Harness::new();
    h.ok(OP, Command::ListContract(future(Settlement::Physical)));
    h.ok(OP, trade("alpha", "bravo", 10, 10_250));
    h.ok(OP, trade("charlie", "alpha", 4, 10_300));
    assert_eq!(h.desk.contract("CEA-F2506").unwrap().open_interest(), 10);
    let prices = [10_400, 9_800, 10_100, 10_050];
    let mut vm = std::collections::BTreeMap::<String, i64>::new();
    for p in prices {
        h.next_day(2);
        let out = h.ok(OP, Command::SettlePrice { contract: "CEA-F2506".into(), price_fen: p });
        for e in &out.events {
            if let Event::VariationMargin { party, fen, .. } = e {
                *vm.entry(party.clone()).or_default() += fen;
            }
        }
        assert!(out.events.contains(&Event::SettlementPrice { contract: "CEA-F2506".into(), price_fen: p, open_interest: 10 }));
        let data = &h.desk.market_data()[0];
        assert_eq!((data.settlement_price_fen, data.open_interest), (p, 10));
    }
    // Positions after trading: alpha +6, bravo −10, charlie +4, all marked at the reference.
    let change = 10_050 - 10_000;
    assert_eq!(vm["alpha"], change * 6 * 1_000);
    assert_eq!(vm["bravo"], -change * 10 * 1_000);
    assert_eq!(vm["charlie"], change * 4 * 1_000);
    // Each side's total P&L is (final − trade price) × contracts × size, exactly.
    assert_eq!(h.cash("alpha") - DEPOSIT, (10_050 - 10_250) * 10 * 1_000 - (10_050 - 10_300) * 4 * 1_000);
    assert_eq!(h.cash("bravo") - DEPOSIT, -(10_050 - 10_250) * 10 * 1_000);
    let cash: Vec<i64> = PARTIES.iter().map(|p| h.cash(p)).collect();
    // Expiry: bravo delivers 6,000 t to alpha and 4,000 t to charlie at exactly ¥100.50.
    h.date = day0().plus_days(10);
    let out = h.ok(OP, Command::EndOfDay);
    assert_eq!(h.desk.contract("CEA-F2506").unwrap().status, ContractStatus::Delivered);
    let delivered: Vec<_> = out.events.iter().filter(|e| matches!(e, Event::Delivered { .. })).collect();
    assert_eq!(delivered.len(), 2);
    assert_eq!(h.units("alpha").0, ALLOCATED + 6_000);
    assert_eq!(h.units("charlie").0, ALLOCATED + 4_000);
    assert_eq!(h.units("bravo").0, ALLOCATED - 10_000);
    assert_eq!(h.cash("alpha"), cash[0] - 6_000 * 10_050);
    assert_eq!(h.cash("bravo"), cash[1] + 10_000 * 10_050);
    assert_eq!(h.cash("charlie"), cash[2] - 4_000 * 10_050);
    assert!(h.desk.parties().iter().all(|p| p.margin_fen == 0));
}

#[test]
fn cash_settled_futures_expire_with_no_units_moving() {
    let mut h = Harness::new();
    h.ok(OP, Command::ListContract(future(Settlement::Cash)));
    h.ok(OP, trade("alpha", "bravo", 5, 10_000));
    h.next_day(10);
    h.ok(OP, Command::SettlePrice { contract: "CEA-F2506".into(), price_fen: 11_000 });
    let out = h.ok(OP, Command::EndOfDay);
    assert!(out.instructions.is_empty());
    assert_eq!(h.desk.contract("CEA-F2506").unwrap().status, ContractStatus::Settled);
    assert_eq!(h.cash("alpha"), DEPOSIT + 1_000 * 5 * 1_000);
    assert_eq!(h.cash("bravo"), DEPOSIT - 1_000 * 5 * 1_000);
}

#[test]
fn bad_input_is_refused_with_a_clear_error_and_changes_nothing() {
    let mut h = Harness::new();
    // A pledge larger than free holdings.
    let e = h.send(OP, pledge("P1", ALLOCATED + 1, 1_000)).unwrap_err();
    assert_eq!(e.kind, RejectKind::Insufficient);
    assert_eq!(e.message, "bravo holds 100000 t of CEA:2025 freely, fewer than the 100001 t to pledge");
    // Only the desk operator registers a pledge (both parties' agreement).
    assert_eq!(h.send("bravo", pledge("P1", 1, 1_000)).unwrap_err().kind, RejectKind::Forbidden);
    // Prices out of range.
    let e = h.send(OP, Command::Mark { unit: unit(), close_fen: 0 }).unwrap_err();
    assert_eq!(e.message, "a price must be between 1 and 100000000 fen per tonne, not 0");
    // Pledged units are not free for a second pledge.
    h.ok(OP, pledge("P1", 60_000, 1_000));
    let e = h.send(OP, pledge("P2", 50_000, 1_000)).unwrap_err();
    assert_eq!(e.kind, RejectKind::Insufficient);
    // A repo on frozen units.
    let account = h.accounts["charlie"].clone();
    h.reg(AUTH, R::Freeze { freeze: "F1".into(), account, unit: unit(), quantity: Tonnes(ALLOCATED), order: "court-1".into() }).unwrap();
    let e = h.send(OP, repo("R1", 1)).unwrap_err();
    assert_eq!(e.kind, RejectKind::Insufficient);
    assert!(e.message.contains("frozen"), "{}", e.message);
    // A futures trade beyond the position limit.
    h.ok(OP, Command::ListContract(future(Settlement::Physical)));
    h.ok(OP, trade("alpha", "bravo", 50, 10_000));
    let e = h.send(OP, trade("alpha", "delta", 1, 10_000)).unwrap_err();
    assert_eq!(e.kind, RejectKind::Rule);
    assert_eq!(e.message, "alpha would hold 51 contracts of CEA-F2506, beyond the position limit of 50");
    // Not enough cash for the initial margin.
    h.ok("delta", Command::Withdraw { party: "delta".into(), amount_fen: DEPOSIT - 500_000 });
    let e = h.send(OP, trade("delta", "charlie", 1, 10_000)).unwrap_err();
    assert_eq!(e.kind, RejectKind::Insufficient);
    // Someone else's pledge, repayment of more than owed, a date going backwards.
    assert_eq!(h.send("charlie", Command::TopUp { pledge: "P1".into(), quantity: 1 }).unwrap_err().kind, RejectKind::Forbidden);
    assert_eq!(h.send("bravo", Command::Repay { pledge: "P1".into(), amount_fen: 1_001 }).unwrap_err().kind, RejectKind::Invalid);
    h.date = day0().plus_days(-1);
    assert_eq!(h.send(OP, Command::EndOfDay).unwrap_err().kind, RejectKind::Invalid);
}

fn order(order: u64, party: &str, side: Side, price_fen: i64, contracts: u64) -> Command {
    Command::PlaceOrder { contract: "CEA-F2506".into(), order, party: party.into(), side, price_fen, contracts, tif: Tif::Gtc }
}

#[test]
fn futures_order_book_matches_reserves_and_enforces_the_position_limit_with_working_orders() {
    let mut h = Harness::new();
    h.ok(OP, Command::ListContract(future(Settlement::Physical)));
    let out = h.ok("alpha", order(1, "alpha", Side::Buy, 10_100, 10));
    assert!(out.events.contains(&Event::OrderRested { order: 1, contracts: 10 }));
    // Initial margin plus the worst difference to the last settlement price, per contract.
    assert_eq!(h.desk.party("alpha").unwrap().reserved_fen, 10 * (1_000_000 + 100 * 1_000));
    let out = h.ok("bravo", order(2, "bravo", Side::Sell, 10_000, 6));
    assert!(out.events.contains(&Event::Traded {
        contract: "CEA-F2506".into(),
        buyer: "alpha".into(),
        seller: "bravo".into(),
        contracts: 6,
        price_fen: 10_100
    }));
    assert_eq!(h.desk.contract("CEA-F2506").unwrap().open_interest(), 6);
    assert_eq!(h.desk.party("alpha").unwrap().reserved_fen, 4 * (1_000_000 + 100 * 1_000));
    assert_eq!(h.desk.party("alpha").unwrap().margin_fen, 6 * 1_000_000);
    // Brought to the last settlement price (the reference, ¥100.00) at once.
    assert_eq!(h.cash("alpha"), DEPOSIT - 100 * 6 * 1_000);
    assert_eq!(h.cash("bravo"), DEPOSIT + 100 * 6 * 1_000);
    // Position 6 + working 4 + 41 > 50: refused, nothing changes.
    let e = h.send("alpha", order(3, "alpha", Side::Buy, 10_000, 41)).unwrap_err();
    assert_eq!(e.kind, RejectKind::Rule);
    assert_eq!(e.message, "alpha could hold 51 contracts of CEA-F2506 with this order, beyond the position limit of 50");
    // A bilateral trade counts working orders too.
    assert_eq!(h.send(OP, trade("alpha", "charlie", 41, 10_000)).unwrap_err().kind, RejectKind::Rule);
    // Someone else's order cannot be cancelled by bravo; alpha can.
    assert_eq!(h.send("bravo", Command::CancelOrder { order: 1 }).unwrap_err().kind, RejectKind::Forbidden);
    let out = h.ok("alpha", Command::CancelOrder { order: 1 });
    assert!(out.events.contains(&Event::OrderDone { order: 1, cancelled: 4 }));
    assert_eq!(h.desk.party("alpha").unwrap().reserved_fen, 0);
    // Working orders are cancelled at expiry.
    h.ok("charlie", order(4, "charlie", Side::Buy, 9_000, 3));
    h.date = day0().plus_days(10);
    let out = h.ok(OP, Command::EndOfDay);
    assert!(out.events.contains(&Event::OrderDone { order: 4, cancelled: 3 }));
    assert!(h.desk.orders().is_empty());
    assert_eq!(h.units("alpha").0, ALLOCATED + 6_000);
}

#[test]
fn physical_delivery_failure_is_recorded_and_the_defaulter_pays_the_penalty() {
    let mut h = Harness::new();
    h.ok(OP, Command::ListContract(future(Settlement::Physical)));
    h.ok(OP, trade("alpha", "bravo", 2, 10_000));
    // The short gives away its units before expiry: it cannot deliver 2,000 t.
    let (from, to) = (h.accounts["bravo"].clone(), h.accounts["charlie"].clone());
    h.reg("bravo", R::Transfer { from, to, unit: unit(), quantity: Tonnes(ALLOCATED - 1_000) }).unwrap();
    h.date = day0().plus_days(10);
    h.ok(OP, Command::SettlePrice { contract: "CEA-F2506".into(), price_fen: 10_000 });
    let out = h.ok(OP, Command::EndOfDay);
    // 10% of 2,000 t × ¥100.00 = ¥20,000 from bravo to alpha; no units move.
    assert!(out.events.contains(&Event::DeliveryFailed {
        contract: "CEA-F2506".into(),
        short: "bravo".into(),
        long: "alpha".into(),
        tonnes: 2_000,
        defaulters: vec!["bravo".into()],
        penalty_fen: 2_000_000,
    }));
    assert!(out.instructions.is_empty());
    assert_eq!(h.cash("alpha"), DEPOSIT + 2_000_000);
    assert_eq!(h.cash("bravo"), DEPOSIT - 2_000_000);
    assert_eq!(h.desk.contract("CEA-F2506").unwrap().status, ContractStatus::Delivered);
    assert_eq!(h.units("alpha").0, ALLOCATED);
}

#[test]
fn variation_margin_beyond_the_cash_is_a_recorded_shortfall_that_blocks_new_risk() {
    let mut h = Harness::new();
    h.ok(OP, Command::ListContract(future(Settlement::Cash)));
    h.ok("delta", Command::Withdraw { party: "delta".into(), amount_fen: DEPOSIT - 11_000_000 });
    h.ok(OP, trade("delta", "alpha", 10, 10_000));
    // ¥2.00 down on 10,000 t: −¥20,000 against ¥110,000 cash and ¥100,000 margin.
    let out = h.ok(OP, Command::SettlePrice { contract: "CEA-F2506".into(), price_fen: 9_800 });
    assert!(out.events.contains(&Event::MarginShortfall { party: "delta".into(), balance_fen: 9_000_000, required_fen: 10_000_000 }));
    assert_eq!(h.send(OP, trade("delta", "bravo", 1, 9_800)).unwrap_err().kind, RejectKind::Insufficient);
    assert_eq!(h.send("delta", order(9, "delta", Side::Buy, 9_800, 1)).unwrap_err().kind, RejectKind::Insufficient);
    // Reducing the position is allowed.
    h.ok(OP, trade("bravo", "delta", 5, 9_800));
    assert_eq!(h.desk.contract("CEA-F2506").unwrap().positions.len(), 3);
}
