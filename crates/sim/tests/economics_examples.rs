//! The worked examples of economics.md §7 (and §2.1's formulas), one test each, with the
//! expected values written out as the document states them.

use ets_sim::equilibrium::{closed, solve, Outcome, Regime, RentTo, Restriction};
use ets_sim::mac::Mac;
use ets_sim::market::{Market, Participant};

fn close(actual: f64, expected: f64, tolerance: f64, what: &str) {
    assert!((actual - expected).abs() <= tolerance, "{what}: {actual} is not {expected} ± {tolerance}");
}

/// A market of one participant with MAC c·a that must abate `required` (allocation 100).
fn market(code: &str, mac: Mac, required: f64) -> Market {
    Market::new(code, vec![Participant::new(code, 100.0 + required, 100.0, mac).unwrap()])
}

fn ex1(mac: impl Fn(f64) -> Mac) -> Vec<Market> {
    vec![market("BJ", mac(10.0), 10.0), market("GD", mac(1.25), 40.0), market("HB", mac(2.0), 20.0)]
}

fn check_ex1(aut: &Outcome, linked: &Outcome, tolerance: f64) {
    // Autarky: p = 100, 50, 40; C = 500, 1000, 400; total 1,900.
    for (m, (p, c)) in aut.markets.iter().zip([(100.0, 500.0), (50.0, 1000.0), (40.0, 400.0)]) {
        close(m.price, p, tolerance, &format!("{} autarky price", m.code));
        close(m.abatement_cost, c, tolerance, &format!("{} autarky cost", m.code));
    }
    close(aut.total_abatement_cost, 1900.0, tolerance, "autarky total");
    // Linked: p* = 50; a* = 5, 40, 25; BJ buys 5 Mt, HB sells 5 Mt; C* = 1,750.
    for (m, (a, q)) in linked.markets.iter().zip([(5.0, 5.0), (40.0, 0.0), (25.0, -5.0)]) {
        close(m.price, 50.0, tolerance, &format!("{} linked price", m.code));
        close(m.abatement_mt, a, tolerance, &format!("{} linked abatement", m.code));
        close(m.net_import_mt, q, tolerance, &format!("{} net purchase", m.code));
    }
    close(linked.total_abatement_cost, 1750.0, tolerance, "linked total");
    // Saving 150 (7.89%).
    let saving = aut.total_abatement_cost - linked.total_abatement_cost;
    close(saving, 150.0, tolerance, "saving");
    close(100.0 * saving / aut.total_abatement_cost, 7.89, 0.005, "saving %");
    // Per-region total cost after trade: BJ 375 (gain 125), GD 1,000 (gain 0), HB 375 (gain 25).
    for (i, (total, gain)) in [(375.0, 125.0), (1000.0, 0.0), (375.0, 25.0)].into_iter().enumerate() {
        close(linked.markets[i].total_cost, total, tolerance, "regional total cost");
        close(aut.markets[i].total_cost - linked.markets[i].total_cost, gain, tolerance, "regional gain");
    }
}

#[test]
fn ex1_three_pilots_linear_closed_form() {
    let markets = ex1(|c| Mac::linear(c).unwrap());
    let aut = solve(&markets, &Regime::Autarky).unwrap();
    let linked = solve(&markets, &Regime::Integrated).unwrap();
    assert!(linked.markets.iter().all(|m| m.method == "closed_form"));
    check_ex1(&aut, &linked, 1e-9);
    // The §2.1 formulas give the same numbers.
    let m = [(10.0, 10.0), (1.25, 40.0), (2.0, 20.0)];
    assert_eq!(closed::autarky_prices(&m), vec![100.0, 50.0, 40.0]);
    close(closed::linked_price(&m), 50.0, 1e-12, "p*");
    close(closed::linked_cost(&m), 1750.0, 1e-9, "C*");
    let g = closed::gains(&m);
    close(g[0], 125.0, 1e-9, "G_BJ");
    close(g[1], 0.0, 1e-9, "G_GD");
    close(g[2], 25.0, 1e-9, "G_HB");
    close(closed::autarky_costs(&m).iter().sum::<f64>() - closed::linked_cost(&m), g.iter().sum(), 1e-9, "ΣC_i − C* = ΣG_i");
}

#[test]
fn ex1_three_pilots_through_the_numerical_solver() {
    // A power law with γ = 1 is the same curve, but not linear-only: the bracketing solver runs.
    let markets = ex1(|c| Mac::power(c, 1.0).unwrap());
    let aut = solve(&markets, &Regime::Autarky).unwrap();
    let linked = solve(&markets, &Regime::Integrated).unwrap();
    assert!(linked.markets.iter().all(|m| m.method == "numeric"));
    check_ex1(&aut, &linked, 1e-7);
}

#[test]
fn ex2_textbook_two_firms() {
    // MAC1 = 0.1·A1, MAC2 = A2, each forced to abate 22: TC = 24.2 + 242 = 266.2.
    let firms = vec![
        Participant::new("firm 1", 122.0, 100.0, Mac::linear(0.1).unwrap()).unwrap(),
        Participant::new("firm 2", 122.0, 100.0, Mac::linear(1.0).unwrap()).unwrap(),
    ];
    let no_trade: Vec<f64> = firms.iter().map(|f| f.no_trade_cost().unwrap()).collect();
    close(no_trade[0], 24.2, 1e-9, "firm 1 alone");
    close(no_trade[1], 242.0, 1e-9, "firm 2 alone");
    let market = Market::new("X", firms);
    let out = solve(&[market], &Regime::Autarky).unwrap();
    // Cost-effective 44: p* = 4; A1 = 40, A2 = 4; TC = 80 + 8 = 88.
    close(out.markets[0].price, 4.0, 1e-12, "p*");
    let p = &out.participants[0];
    close(p[0].abatement_mt, 40.0, 1e-9, "A1");
    close(p[1].abatement_mt, 4.0, 1e-9, "A2");
    close(p[0].abatement_cost, 80.0, 1e-9, "TC1");
    close(p[1].abatement_cost, 8.0, 1e-9, "TC2");
    close(out.total_abatement_cost, 88.0, 1e-9, "TC");
    // Saving 178.2 (66.94%); (c1 − c2)²/(c1 + c2)² = 0.81/1.21 = 0.6694.
    let saving = no_trade.iter().sum::<f64>() - out.total_abatement_cost;
    close(saving, 178.2, 1e-9, "saving");
    close(100.0 * saving / 266.2, 66.94, 0.005, "saving %");
    close(0.81 / 1.21, 0.6694, 0.00005, "share formula");
    // Firm 1 sells 18 permits at 4.
    close(p[0].net_purchase_mt, -18.0, 1e-9, "firm 1 sells 18");
    close(p[0].purchase_cost, -72.0, 1e-9, "at 4");
}

#[test]
fn two_market_formulas_and_quota() {
    // §2.1: two markets, G = (p1 − p2)²/(2(c1 + c2)) = ½·q·|p1 − p2|; equal A gives the share
    // (c1 − c2)²/(c1 + c2)². Ex 1's BJ and HB: p = 100 and 40, c = 10 and 2.
    let markets = vec![market("BJ", Mac::linear(10.0).unwrap(), 10.0), market("HB", Mac::linear(2.0).unwrap(), 20.0)];
    let aut = solve(&markets, &Regime::Autarky).unwrap();
    let link = solve(&markets, &Regime::Integrated).unwrap();
    let gain = aut.total_abatement_cost - link.total_abatement_cost;
    close(gain, 60.0 * 60.0 / 24.0, 1e-9, "G two markets");
    let q = link.markets[0].net_import_mt;
    close(gain, 0.5 * q * 60.0, 1e-9, "½·q·|p1 − p2|");
    // Unrestricted flow q* = 5; a quota of 2 binds: p1 = 100 − 10·2 = 80, p2 = 40 + 2·2 = 44,
    // G(2) = 2·60 − 12·4/2 = 96.
    let (p1, p2, g) = closed::quota(10.0, 10.0, 2.0, 20.0, 2.0);
    let r = Restriction { group_a: vec![0], group_b: vec![1], quota_mt: 2.0, rates: vec![1.0, 1.0], rent_to: RentTo::Regulator };
    let out = solve(&markets, &Regime::Restricted(r.clone())).unwrap();
    let quota = out.quota.as_ref().unwrap();
    assert!(quota.binding);
    close(quota.unrestricted_flow_mt, 5.0, 1e-9, "q*");
    close(out.markets[0].price, p1, 1e-9, "importer price");
    close(out.markets[1].price, p2, 1e-9, "exporter price");
    close(p1, 80.0, 1e-12, "p1");
    close(p2, 44.0, 1e-12, "p2");
    close(aut.total_abatement_cost - out.total_abatement_cost, g, 1e-9, "G(q̄)");
    close(g, 96.0, 1e-12, "G(2)");
    close(quota.rent, 2.0 * (80.0 - 44.0), 1e-9, "quota rent");
    // The rent is a transfer: who gets it changes the markets' costs, not the total.
    for rent_to in [RentTo::Importer, RentTo::Exporter] {
        let o = solve(&markets, &Regime::Restricted(Restriction { rent_to, ..r.clone() })).unwrap();
        close(o.total_cost, out.total_cost, 1e-9, "total independent of rent capture");
        let importer_pays = o.markets[0].total_cost - o.markets[0].abatement_cost;
        let expected = if rent_to == RentTo::Importer { 2.0 * 44.0 } else { 2.0 * 80.0 };
        close(importer_pays, expected, 1e-9, "importer's payment");
    }
    // A quota above q* does not bind and changes nothing.
    let loose = solve(&markets, &Regime::Restricted(Restriction { quota_mt: 6.0, ..r })).unwrap();
    assert!(!loose.quota.as_ref().unwrap().binding);
    close(loose.markets[0].price, link.markets[0].price, 1e-12, "non-binding quota");
    close(loose.total_cost, link.total_cost, 1e-9, "non-binding quota cost");
}

fn two_periods(banking: bool) -> ets_sim::intertemporal::Intertemporal {
    // c = 1, r = 5%, E = (100, 100), caps Q = (90, 60).
    let period = |cap: f64| Market::new("X", vec![Participant::new("X", 100.0, cap, Mac::linear(1.0).unwrap()).unwrap()]);
    ets_sim::intertemporal::Intertemporal {
        labels: vec!["t1".into(), "t2".into()],
        periods: vec![period(90.0), period(60.0)],
        discount_rate: 0.05,
        banking,
        borrowing_limit_mt: 0.0,
        initial_bank_mt: 0.0,
        msr: None,
    }
}

#[test]
fn ex6_two_period_banking_hotelling() {
    // No banking: p = (10, 40); PV cost = 50 + 761.905 = 811.905.
    let none = two_periods(false).solve().unwrap();
    close(none.periods[0].price, 10.0, 1e-9, "p1 without banking");
    close(none.periods[1].price, 40.0, 1e-9, "p2 without banking");
    close(none.present_cost, 811.905, 0.0005, "PV cost without banking");
    // Banking: a1 = 50/2.05 = 24.3902, a2 = 25.6098; p = (24.39, 25.61), p2/p1 = 1.05;
    // bank after t1 = 14.39; PV cost = 297.44 + 312.31 = 609.756; saving 202.15 (24.90%).
    let bank = two_periods(true).solve().unwrap();
    let (p1, p2) = (&bank.periods[0], &bank.periods[1]);
    close(p1.abatement_mt, 24.3902, 0.00005, "a1");
    close(p2.abatement_mt, 25.6098, 0.00005, "a2");
    close(p1.price, 24.39, 0.005, "p1");
    close(p2.price, 25.61, 0.005, "p2");
    close(p2.price / p1.price, 1.05, 1e-12, "p2/p1");
    close(p1.bank_mt, 14.39, 0.005, "bank after t1");
    close(p2.bank_mt, 0.0, 1e-9, "bank at the end");
    close(p1.present_cost, 297.44, 0.005, "PV cost t1");
    close(p2.present_cost, 312.31, 0.005, "PV cost t2");
    close(bank.present_cost, 609.756, 0.0005, "PV cost");
    let saving = none.present_cost - bank.present_cost;
    close(saving, 202.15, 0.005, "saving");
    close(100.0 * saving / none.present_cost, 24.90, 0.005, "saving %");
    assert!(!p1.constraint_binds && p2.constraint_binds);
}
