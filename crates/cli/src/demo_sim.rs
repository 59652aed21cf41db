//! The demo's policy simulation: the calibrated national market and eight pilots, each alone
//! and integrated into one market (ets-sim, issue 8). Well under a second.

use serde_json::{json, Value};

/// The scenario the demo runs (the same as `examples/sim/integration.toml` without Monte Carlo).
const SCENARIO: &str = r#"
[scenario]
name = "demo: national market and eight pilots, autarky vs integration"
seed = 1
firms_per_market = 20

[equilibrium]
regimes = ["autarky", "integrated"]
"#;

pub struct SimDemo {
    pub lines: Vec<String>,
    pub json: Value,
}

pub fn run() -> SimDemo {
    let scenario = ets_sim::scenario::Scenario::parse(SCENARIO).expect("the demo scenario is valid");
    let out = match ets_sim::run::run(&scenario, &mut |_, _, _| {}) {
        Ok(r) => r,
        Err(e) => return SimDemo { lines: vec![format!("policy simulation not run: {e}")], json: json!({"error": e.to_string()}) },
    };
    let regimes = out.json["equilibrium"]["regimes"].as_array().cloned().unwrap_or_default();
    let total = |i: usize, key: &str| regimes.get(i).and_then(|r| r[key].as_f64()).unwrap_or(f64::NAN);
    let (aut_cost, int_cost) = (total(0, "total_abatement_cost"), total(1, "total_abatement_cost"));
    let int_price = regimes.get(1).and_then(|r| r["markets"][0]["price"].as_f64()).unwrap_or(f64::NAN);
    let prices: Vec<String> = regimes
        .first()
        .and_then(|r| r["markets"].as_array())
        .map(|ms| {
            ms.iter().map(|m| format!("{} {:.2}", m["code"].as_str().unwrap_or("?"), m["price"].as_f64().unwrap_or(f64::NAN))).collect()
        })
        .unwrap_or_default();
    let gain = aut_cost - int_cost;
    let lines = vec![
        "policy simulation (calibrated on economics.md prices; `ets sim run examples/sim/integration.toml`):".to_string(),
        format!("  each market alone: prices {} CNY/t; abatement cost {:.1} M CNY", prices.join(", "), aut_cost),
        format!("  integrated: one price {int_price:.2} CNY/t; abatement cost {int_cost:.1} M CNY"),
        format!("  gain from integration: {gain:.1} M CNY a year ({:.1}% of the cost alone)", 100.0 * gain / aut_cost),
    ];
    SimDemo {
        lines,
        json: json!({"autarky_abatement_cost": aut_cost, "integrated_abatement_cost": int_cost, "integrated_price": int_price, "gain": gain,
                     "autarky_prices": regimes.first().map(|r| r["markets"].as_array().map(|ms| ms.iter().map(|m| json!({"market": m["code"], "price": m["price"]})).collect::<Vec<_>>())).unwrap_or_default()}),
    }
}
