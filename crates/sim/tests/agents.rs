//! The agent-based year through the exchange's order book.

use ets_sim::agents::run;
use ets_sim::mac::Mac;
use ets_sim::scenario::{AgentSpec, Draw, MacSpec, MarketSpec};

fn spec(firms: usize, band: f64) -> AgentSpec {
    AgentSpec {
        market: "GD".into(),
        firms,
        days: 242,
        listed_band: band,
        participation: 0.2,
        deadline_rush: 4.0,
        learning: 0.3,
        noise: 0.05,
        shock_sd: 0.02,
        start_price: None,
    }
}

fn market(firms: usize) -> ets_sim::market::Market {
    // 300 Mt, 2% to abate, linear MAC clearing alone at 50 CNY/t, firms with dispersed curves.
    MarketSpec {
        code: "GD".into(),
        name: "test".into(),
        rules: None,
        baseline_mt: 300.0,
        cap_mt: 294.0,
        mac: MacSpec::Given(Mac::linear(50.0 / 6.0).unwrap()),
        auction_share: 0.0,
        offsets: None,
        floor: None,
        ceiling: None,
        reserves: vec![],
        firms,
        listed_band: Some(0.1),
        target_price: None,
        entities: None,
    }
    .build(7, 0.8, Draw::default())
    .unwrap()
}

#[test]
fn a_liquid_market_trades_near_equilibrium_and_is_reproducible() {
    let m = market(500);
    let a = run(&m, &spec(500, 0.10), 3, 40.0, &mut |_, _| {}).unwrap();
    let b = run(&m, &spec(500, 0.10), 3, 40.0, &mut |_, _| {}).unwrap();
    assert_eq!(a, b);
    assert!((a.equilibrium_price - 50.0).abs() < 1e-9);
    // Starting from 40, the market finds its way to the equilibrium price of 50 (±15%) by the
    // last quarter of the year.
    let tail = &a.days[a.days.len() * 3 / 4..];
    let (v, t): (u64, f64) = tail.iter().fold((0, 0.0), |(v, t), d| (v + d.volume_t, t + d.volume_t as f64 * d.close));
    let late = t / v as f64;
    assert!((late - 50.0).abs() < 7.5, "late VWAP {late}, days {:?}", &a.days[..5]);
    assert!(a.volume_mt > 1.0 && a.trades > 1000, "{} Mt, {} trades", a.volume_mt, a.trades);
    let c = run(&m, &spec(500, 0.10), 4, 40.0, &mut |_, _| {}).unwrap();
    assert_ne!(a.days, c.days);
}

#[test]
fn the_band_limits_each_day_and_slows_the_adjustment() {
    let m = market(300);
    let narrow = run(&m, &spec(300, 0.01), 5, 30.0, &mut |_, _| {}).unwrap();
    let mut previous = 30.0;
    for d in &narrow.days {
        // Every trade is inside the band, so the close (a VWAP) is too.
        assert!(d.close >= d.band_low - 1e-9 && d.close <= d.band_high + 1e-9, "{d:?}");
        assert!((d.close - previous).abs() <= 0.01 * previous + 0.011, "day {}: {previous} → {}", d.day, d.close);
        previous = d.close;
    }
    assert!(narrow.band_hits > 0);
    let wide = run(&m, &spec(300, 0.10), 5, 30.0, &mut |_, _| {}).unwrap();
    // After ten days the wide band has moved further towards equilibrium (50).
    assert!(wide.days[9].close > narrow.days[9].close, "{} vs {}", wide.days[9].close, narrow.days[9].close);
}

#[test]
fn a_thin_market_trades_less_often() {
    let thin = run(&market(8), &spec(8, 0.10), 9, 50.0, &mut |_, _| {}).unwrap();
    let deep = run(&market(400), &spec(400, 0.10), 9, 50.0, &mut |_, _| {}).unwrap();
    assert!(thin.days_without_trades > deep.days_without_trades + 20, "{} vs {}", thin.days_without_trades, deep.days_without_trades);
}
