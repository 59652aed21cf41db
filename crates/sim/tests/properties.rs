//! Properties under random inputs (issue 8 acceptance) and cases economics.md does not write
//! down: clearing on a step, floors and ceilings, MSR thresholds over time, a bank constraint
//! that binds, borrowing.

use ets_sim::equilibrium::{solve, Regime};
use ets_sim::intertemporal::Intertemporal;
use ets_sim::mac::Mac;
use ets_sim::market::{Market, Participant, Trigger, TriggerKind, UNLIMITED_MT};
use ets_sim::msr::Msr;
use proptest::prelude::*;

fn close(actual: f64, expected: f64, tolerance: f64, what: &str) {
    assert!((actual - expected).abs() <= tolerance, "{what}: {actual} is not {expected} ± {tolerance}");
}

fn curve() -> impl Strategy<Value = Mac> {
    prop_oneof![
        (0.05f64..20.0).prop_map(|c| Mac::linear(c).unwrap()),
        (0.05f64..5.0, 0.5f64..3.0).prop_map(|(b, g)| Mac::power(b, g).unwrap()),
        prop::collection::vec((0.0f64..150.0, 0.5f64..30.0), 1..6).prop_map(|mut m| {
            // One expensive measure so that any requirement can be met.
            m.push((400.0, 250.0));
            Mac::stepped(&m).unwrap()
        }),
    ]
}

fn participant() -> impl Strategy<Value = Participant> {
    (20.0f64..200.0, 0.6f64..1.05, curve())
        .prop_map(|(baseline, share, mac)| Participant::new("p", baseline, baseline * share, mac).unwrap())
}

fn markets() -> impl Strategy<Value = Vec<Market>> {
    prop::collection::vec(prop::collection::vec(participant(), 1..5), 2..6)
        .prop_map(|ms| ms.into_iter().enumerate().map(|(i, ps)| Market::new(format!("M{i}"), ps)).collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn integration_never_raises_total_cost(markets in markets()) {
        let aut = solve(&markets, &Regime::Autarky).unwrap();
        let int = solve(&markets, &Regime::Integrated).unwrap();
        let scale = aut.total_abatement_cost.abs().max(1.0);
        prop_assert!(int.total_cost <= aut.total_cost + 1e-7 * scale, "integrated {} > autarky {}", int.total_cost, aut.total_cost);
        // The allowances add up: integrated emissions equal the caps when the price is positive.
        let caps: f64 = markets.iter().map(|m| m.cap_mt()).sum();
        if int.markets[0].price > 1e-9 {
            prop_assert!((int.total_emissions_mt - caps).abs() < 1e-6 * caps);
        }
    }

    #[test]
    fn every_participant_weakly_gains_from_trade(markets in markets()) {
        let aut = solve(&markets, &Regime::Autarky).unwrap();
        let int = solve(&markets, &Regime::Integrated).unwrap();
        for (a, i) in aut.markets.iter().zip(&int.markets) {
            // Each market gains from joining (its costs, permit payments included).
            prop_assert!(i.total_cost <= a.total_cost + 1e-7 * a.total_cost.abs().max(1.0), "{}: {} > {}", a.code, i.total_cost, a.total_cost);
        }
        for regime in [&aut, &int] {
            for firms in &regime.participants {
                for f in firms {
                    // Each firm gains against meeting its allocation alone.
                    let alone = f.no_trade_cost.unwrap();
                    prop_assert!(f.total_cost <= alone + 1e-7 * alone.abs().max(1.0), "{} > {}", f.total_cost, alone);
                }
            }
        }
    }

    #[test]
    fn a_floor_below_the_price_changes_nothing(markets in markets(), below in 0.0f64..0.99) {
        let before = solve(&markets, &Regime::Integrated).unwrap();
        let price = before.markets[0].price;
        // A floor strictly below the price (at a zero price a floor at zero is a tie, not below).
        prop_assume!(price > 0.0);
        let mut floored = markets.clone();
        for m in &mut floored {
            let cap = m.cap_mt();
            m.triggers.push(Trigger { kind: TriggerKind::Withhold, price: price * below, quantity_mt: cap });
        }
        let after = solve(&floored, &Regime::Integrated).unwrap();
        // The same to the solver's precision (the floor turns the closed form into a search).
        let same = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(1.0);
        prop_assert!(same(after.markets[0].price, price), "{} vs {}", after.markets[0].price, price);
        prop_assert!(same(after.total_cost, before.total_cost));
        prop_assert!(same(after.total_emissions_mt, before.total_emissions_mt));
        prop_assert!(after.markets.iter().all(|m| m.withheld_mt == 0.0));
    }

    #[test]
    fn discounted_prices_are_equal_while_a_bank_is_held(
        caps in prop::collection::vec(40.0f64..130.0, 2..7),
        slope in 0.2f64..5.0,
        gamma in 0.6f64..2.0,
        rate in 0.0f64..0.12,
        initial in 0.0f64..30.0,
    ) {
        let n = caps.len();
        let periods = caps.iter().map(|c| Market::new("X", vec![Participant::new("X", 100.0, *c, Mac::power(slope, gamma).unwrap()).unwrap()])).collect();
        let model = Intertemporal { labels: (0..n).map(|t| t.to_string()).collect(), periods, discount_rate: rate, banking: true, borrowing_limit_mt: 0.0, initial_bank_mt: initial, msr: None };
        let out = model.solve().unwrap();
        for t in 0..n {
            prop_assert!(out.periods[t].bank_mt >= -1e-6, "bank {} at {t}", out.periods[t].bank_mt);
        }
        for t in 0..n - 1 {
            if out.periods[t].bank_mt > 1e-6 {
                let (a, b) = (out.periods[t].present_price, out.periods[t + 1].present_price);
                prop_assert!((a - b).abs() <= 1e-7 * a.max(1.0), "period {t}: {a} vs {b}");
            } else {
                // Constraint binding (no borrowing): the discounted price can only fall,
                // p_{t+1} ≤ (1 + r) p_t (economics.md §4.1).
                prop_assert!(out.periods[t + 1].present_price <= out.periods[t].present_price * (1.0 + 1e-9));
            }
        }
        if out.periods[n - 1].price > 1e-9 {
            prop_assert!(out.periods[n - 1].bank_mt.abs() < 1e-6);
        }
    }
}

fn one(mac: Mac, baseline: f64, cap: f64) -> Market {
    Market::new("X", vec![Participant::new("X", baseline, cap, mac).unwrap()])
}

#[test]
fn clearing_at_a_step_takes_the_marginal_measures_pro_rata() {
    // Measures at 10 (5 Mt), 20 (5 Mt + another firm's 15 Mt), 30; 17 Mt are needed: at 20 the
    // left limit abates 5, the right 25; 12 more come pro rata from the two 20-measures
    // (θ = 12/20 = 0.6): 3 and 9 Mt.
    let a = Participant::new("a", 100.0, 91.0, Mac::stepped(&[(10.0, 5.0), (20.0, 5.0), (30.0, 5.0)]).unwrap()).unwrap();
    let b = Participant::new("b", 100.0, 92.0, Mac::stepped(&[(20.0, 15.0), (40.0, 5.0)]).unwrap()).unwrap();
    let out = solve(&[Market::new("X", vec![a, b])], &Regime::Autarky).unwrap();
    assert_eq!(out.markets[0].price, 20.0);
    let p = &out.participants[0];
    close(p[0].abatement_mt, 5.0 + 3.0, 1e-9, "a");
    close(p[1].abatement_mt, 9.0, 1e-9, "b");
    close(out.total_abatement_mt, 17.0, 1e-9, "total");
    close(out.total_abatement_cost, 10.0 * 5.0 + 20.0 * 12.0, 1e-9, "cost");
}

#[test]
fn a_flat_range_of_clearing_prices_gives_the_lowest() {
    // Exactly the first measure's 5 Mt are needed: every price in [10, 20) clears; 10 is chosen.
    let out = solve(&[one(Mac::stepped(&[(10.0, 5.0), (20.0, 5.0)]).unwrap(), 100.0, 95.0)], &Regime::Autarky).unwrap();
    assert_eq!(out.markets[0].price, 10.0);
    close(out.total_abatement_mt, 5.0, 1e-12, "abatement");
}

#[test]
fn a_binding_floor_holds_the_price_and_withholds_the_surplus() {
    // c = 1, 10 Mt to abate: price 10. A hard floor at 15 (the whole supply can be withheld):
    // price 15, abatement 15, 5 Mt withheld.
    let mut m = one(Mac::linear(1.0).unwrap(), 100.0, 90.0);
    m.triggers.push(Trigger { kind: TriggerKind::Withhold, price: 15.0, quantity_mt: 90.0 });
    let out = solve(&[m.clone()], &Regime::Autarky).unwrap();
    assert_eq!(out.markets[0].price, 15.0);
    close(out.markets[0].withheld_mt, 5.0, 1e-9, "withheld");
    close(out.total_abatement_mt, 15.0, 1e-9, "abatement");
    // An emissions-containment reserve of only 2 Mt: the price falls below the trigger once it
    // is used up: abatement 12 → price 12.
    m.triggers[0].quantity_mt = 2.0;
    let out = solve(&[m], &Regime::Autarky).unwrap();
    close(out.markets[0].price, 12.0, 1e-9, "price with a 2 Mt reserve");
}

#[test]
fn a_ceiling_and_a_cost_containment_reserve() {
    // Price 10 without intervention. A ceiling at 8 (unlimited): price 8, 2 Mt released.
    let mut m = one(Mac::linear(1.0).unwrap(), 100.0, 90.0);
    m.triggers.push(Trigger { kind: TriggerKind::Release, price: 8.0, quantity_mt: UNLIMITED_MT });
    let out = solve(&[m.clone()], &Regime::Autarky).unwrap();
    assert_eq!(out.markets[0].price, 8.0);
    close(out.markets[0].released_mt, 2.0, 1e-6, "released");
    // A reserve of 1 Mt at 8: all of it is sold and the price settles at 9.
    m.triggers[0].quantity_mt = 1.0;
    let out = solve(&[m], &Regime::Autarky).unwrap();
    close(out.markets[0].price, 9.0, 1e-9, "price");
    close(out.markets[0].released_mt, 1.0, 1e-12, "released");
}

#[test]
fn offsets_within_their_limit() {
    // c = 1, 20 Mt to abate, baseline 100; offsets at 5 CNY/t up to 10% of emissions, plenty:
    // a = p, e = 100 − p, offsets 0.1 e, demand 0.9 e = 80 → e = 88.89, p = 11.11.
    let mut m = one(Mac::linear(1.0).unwrap(), 100.0, 80.0);
    m.offsets = Some(ets_sim::market::Offsets { price: 5.0, supply_mt: f64::INFINITY, limit_share: 0.10 });
    let out = solve(&[m.clone()], &Regime::Autarky).unwrap();
    close(out.markets[0].price, 100.0 - 800.0 / 9.0, 1e-9, "price");
    close(out.markets[0].offset_cost, 5.0 * 0.1 * 800.0 / 9.0, 1e-9, "offsets at their price");
    // Only 3 Mt of credits: they are scarce, the price is 17 and credits cost the allowance price.
    m.offsets = Some(ets_sim::market::Offsets { price: 5.0, supply_mt: 3.0, limit_share: 0.10 });
    let out = solve(&[m.clone()], &Regime::Autarky).unwrap();
    close(out.markets[0].price, 17.0, 1e-9, "scarce");
    close(out.markets[0].offset_cost, 3.0 * 17.0, 1e-9, "scarce credits at the allowance price");
    // Credits dearer than the allowance price are not used.
    m.offsets = Some(ets_sim::market::Offsets { price: 50.0, supply_mt: f64::INFINITY, limit_share: 0.10 });
    let out = solve(&[m], &Regime::Autarky).unwrap();
    close(out.markets[0].price, 20.0, 1e-9, "unused");
    assert_eq!(out.markets[0].offsets_mt, 0.0);
}

#[test]
fn linking_with_an_exchange_rate() {
    // Ex 1's BJ and HB linked at 2 HB allowances per BJ allowance (rate_BJ = 1, rate_HB = 0.5):
    // p_HB = p_BJ/2. Clearing: (10 − p/10) + 0.5(20 − p/4) = 0 with p = p_BJ ... solve by hand:
    // BJ net demand 10 − p/10, HB net demand 20 − (p/2)/2 in HB units, weighted 0.5:
    // 10 − p/10 + 10 − p/8 = 0 → p = 20/(0.225) = 88.888…
    let m =
        |code: &str, c: f64, a: f64| Market::new(code, vec![Participant::new(code, 100.0 + a, 100.0, Mac::linear(c).unwrap()).unwrap()]);
    let markets = vec![m("BJ", 10.0, 10.0), m("HB", 2.0, 20.0)];
    let out = solve(&markets, &Regime::Linked { rates: vec![1.0, 0.5] }).unwrap();
    close(out.markets[0].price, 20.0 / 0.225, 1e-9, "p_BJ");
    close(out.markets[1].price, 10.0 / 0.225, 1e-9, "p_HB");
    // BJ buys 1.11 Mt-equivalents: HB sells twice as many of its own allowances.
    close(out.markets[0].net_import_mt, -0.5 * out.markets[1].net_import_mt, 1e-9, "flows");
    assert!(out.markets[0].method == "closed_form");
}

fn banking(caps: &[f64], msr: Option<Msr>, rate: f64) -> Intertemporal {
    Intertemporal {
        labels: (0..caps.len()).map(|t| format!("{}", 2025 + t)).collect(),
        periods: caps.iter().map(|c| one(Mac::linear(1.0).unwrap(), 100.0, *c)).collect(),
        discount_rate: rate,
        banking: true,
        borrowing_limit_mt: 0.0,
        initial_bank_mt: 0.0,
        msr,
    }
}

#[test]
fn the_bank_constraint_binds_and_splits_the_path() {
    // Scarce first year, generous later: caps (50, 100, 60). Banking can't move allowances
    // back: year 1 is alone at p = 50; years 2–3 share a bank: a2 + a3 = 40, a3 = 1.05 a2.
    let out = banking(&[50.0, 100.0, 60.0], None, 0.05).solve().unwrap();
    close(out.periods[0].price, 50.0, 1e-9, "year 1");
    assert!(out.periods[0].constraint_binds);
    close(out.periods[0].bank_mt, 0.0, 1e-9, "no bank after year 1");
    let a2 = 40.0 / 2.05;
    close(out.periods[1].price, a2, 1e-9, "year 2");
    close(out.periods[2].price, 1.05 * a2, 1e-9, "year 3");
    close(out.periods[1].bank_mt, 100.0 - (100.0 - a2), 1e-9, "bank after year 2");
    // With borrowing allowed the three years share one Hotelling path.
    let mut b = banking(&[50.0, 100.0, 60.0], None, 0.05);
    b.borrowing_limit_mt = f64::INFINITY;
    let out = b.solve().unwrap();
    let p0 = 90.0 / (1.0 + 1.05 + 1.05 * 1.05);
    close(out.periods[0].price, p0, 1e-9, "borrowing: year 1");
    assert!(out.periods[0].bank_mt < 0.0);
    close(out.periods[2].bank_mt, 0.0, 1e-9, "borrowing repaid");
    // A borrowing limit of 10 Mt binds in year 1.
    let mut c = banking(&[50.0, 100.0, 60.0], None, 0.05);
    c.borrowing_limit_mt = 10.0;
    let out = c.solve().unwrap();
    close(out.periods[0].bank_mt, -10.0, 1e-9, "limit binds");
    close(out.periods[0].price, 40.0, 1e-9, "year 1 with 10 Mt borrowed");
}

#[test]
fn a_floor_in_a_banking_market() {
    // Slack caps: without a floor the price is 0 throughout and a bank is left over.
    let slack = banking(&[120.0, 120.0], None, 0.05).solve().unwrap();
    assert_eq!(slack.periods[1].price, 0.0);
    close(slack.periods[1].bank_mt, 40.0, 1e-9, "unused bank");
    // A hard floor at 5 in both years: abatement 5 each year, the rest withheld.
    let mut model = banking(&[120.0, 120.0], None, 0.05);
    for p in &mut model.periods {
        p.triggers.push(Trigger { kind: TriggerKind::Withhold, price: 5.0, quantity_mt: 120.0 });
    }
    let out = model.solve().unwrap();
    assert!(out.periods.iter().all(|p| p.price >= 5.0 - 1e-9), "{:?}", out.periods);
    close(out.periods[0].abatement_mt + out.periods[1].abatement_mt, out.periods.iter().map(|p| p.price).sum::<f64>(), 1e-9, "a = p");
}

#[test]
fn msr_takes_in_a_surplus_and_raises_early_prices() {
    // A 4-year market whose early years are generous: caps (1,100, 1,100, 700, 700) against a
    // baseline of 1,000 with c = 1, no discounting. Without the reserve: one price of 100
    // (400 Mt of abatement over 4 years), bank peaking at 400 after year 2.
    let big = |caps: &[f64], msr| Intertemporal {
        labels: (0..caps.len()).map(|t| t.to_string()).collect(),
        periods: caps.iter().map(|c| one(Mac::linear(1.0).unwrap(), 1000.0, *c)).collect(),
        discount_rate: 0.0,
        banking: true,
        borrowing_limit_mt: 0.0,
        initial_bank_mt: 0.0,
        msr,
    };
    let caps = [1100.0, 1100.0, 700.0, 700.0];
    let free = big(&caps, None).solve().unwrap();
    close(free.periods[0].price, 100.0, 1e-9, "no MSR");
    close(free.periods[1].bank_mt, 400.0, 1e-9, "bank");
    // The bank (TNAC) stays below 833 Mt: the default reserve never acts.
    let msr = big(&caps, Some(Msr::default())).solve().unwrap();
    assert_eq!(msr.msr_converged, Some(true));
    close(msr.periods[0].price, 100.0, 1e-9, "MSR below threshold changes nothing");
    // With the upper threshold at 100 Mt (the 24% rule, no band) it takes allowances in, and
    // holdings above 400 would be cancelled: prices rise.
    let low = Msr { upper_mt: 100.0, lower_mt: 50.0, band_top_mt: None, ..Msr::default() };
    let tight = big(&caps, Some(low)).solve().unwrap();
    assert_eq!(tight.msr_converged, Some(true));
    assert!(tight.periods[0].price > 100.0 + 1.0, "{:?}", tight.periods);
    let intake: f64 = tight.periods.iter().map(|p| p.msr.unwrap().intake_mt).sum();
    assert!(intake > 0.0);
    // TNAC of year t drives year t + 1: intake in year 1 = 24% of the bank after year 0.
    close(tight.periods[1].msr.unwrap().intake_mt, 0.24 * tight.periods[0].bank_mt, 1e-6, "intake rule");
    close(
        tight.cumulative_emissions_mt,
        caps.iter().sum::<f64>() - intake + tight.periods.iter().map(|p| p.msr.unwrap().release_mt).sum::<f64>(),
        1e-6,
        "cap minus net intake",
    );
}
