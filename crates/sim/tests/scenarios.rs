//! Scenario files end to end: the calibrated first run, determinism, and bad files.

use ets_sim::run::run;
use ets_sim::scenario::Scenario;

fn results(text: &str) -> ets_sim::run::Results {
    let s = Scenario::parse(text).unwrap_or_else(|e| panic!("{e}"));
    run(&s, &mut |_, _, _| {}).unwrap()
}

fn errors(text: &str) -> Vec<String> {
    Scenario::parse(text).expect_err("the scenario should be refused").0
}

const FIRST_RUN: &str = r#"
[scenario]
name = "first run"
[equilibrium]
regimes = ["autarky", "integrated"]
"#;

fn autarky_prices(r: &ets_sim::run::Results) -> Vec<(String, f64)> {
    r.json["equilibrium"]["regimes"][0]["markets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["code"].as_str().unwrap().to_string(), m["price"].as_f64().unwrap()))
        .collect()
}

#[test]
fn first_run_reproduces_the_observed_price_ordering() {
    let r = results(FIRST_RUN);
    let prices = autarky_prices(&r);
    let price = |code: &str| prices.iter().find(|p| p.0 == code).unwrap().1;
    // 18 Dec 2020 weekly closes (economics.md §3.2): BJ 64.70 > SH 41.50 > GD 28.36 > HB 27.78
    // > TJ 25.00 > SZ 24.01 > CQ 23.64 > FJ 8.87.
    let pilots_2020 = ["BJ", "SH", "GD", "HB", "TJ", "SZ", "CQ", "FJ"];
    for w in pilots_2020.windows(2) {
        assert!(price(w[0]) > price(w[1]), "{} {} should be above {} {}", w[0], price(w[0]), w[1], price(w[1]));
    }
    // 2024 averages (§3.2, §5.1): BJ 102 > CN 95.96 > GD 51.37 > HB 41.63.
    for w in ["BJ", "CN", "GD", "HB"].windows(2) {
        assert!(price(w[0]) > price(w[1]), "{} above {}", w[0], w[1]);
    }
    // Each autarky price is the observed one (2024) or the scaled 2020 close, through the
    // solver: within 0.01%.
    for (code, observed) in
        [("CN", 95.96), ("BJ", 102.0), ("GD", 51.37), ("HB", 41.63), ("SH", 41.50 * 93.0 / 56.14), ("FJ", 8.87 * 93.0 / 56.14)]
    {
        assert!((price(code) - observed).abs() < 1e-4 * observed, "{code}: {} vs {observed}", price(code));
    }
    // The integrated price lies between the cheapest and the dearest market and is dominated
    // by the large national market (economics.md §2.1).
    let integrated = r.json["equilibrium"]["regimes"][1]["markets"][0]["price"].as_f64().unwrap();
    assert!(integrated > price("FJ") && integrated < price("BJ"));
    assert!((integrated - price("CN")).abs() < (integrated - price("GD")).abs());
    assert!(r.json["equilibrium"]["gain_vs_autarky"]["integrated"].as_f64().unwrap() > 0.0);
}

fn bytes(r: &ets_sim::run::Results) -> Vec<u8> {
    let mut out = serde_json::to_vec(&r.json).unwrap();
    for (name, content) in &r.files {
        out.extend(name.as_bytes());
        out.extend(content.as_bytes());
    }
    out
}

const EVERYTHING: &str = r#"
[scenario]
name = "everything"
seed = 11
markets = ["CN", "GD", "HB"]
firms_per_market = 20
[market.GD]
offsets = { price = 30, supply_mt = 2 }
[equilibrium]
regimes = ["autarky", "integrated", "linked", "restricted"]
exchange_rates = { GD = 0.9 }
[equilibrium.restricted]
a = ["CN"]
b = ["GD", "HB"]
quota_mt = 1
rent_to = "regulator"
[banking]
markets = ["GD"]
years = 5
cap_decline = 0.02
discount_rate = 0.05
[agents]
market = "HB"
firms = 50
days = 60
[monte_carlo]
draws = 20
[[monte_carlo.uncertain]]
parameter = "mac_level"
distribution = "lognormal"
sigma = 0.2
[cbam]
see_t_per_t = 3.509
sefa_t_per_t = 1.33575
cbam_price_eur = 75.36
cny_per_eur = 7.8
paid_share = 0.3
markets = ["CN"]
"#;

#[test]
fn same_scenario_and_seed_give_identical_bytes_and_another_seed_differs() {
    let a = bytes(&results(EVERYTHING));
    let b = bytes(&results(EVERYTHING));
    assert_eq!(a, b);
    let c = bytes(&results(&EVERYTHING.replace("seed = 11", "seed = 12")));
    assert_ne!(a, c);
    let r = results(EVERYTHING);
    let names: Vec<&str> = r.files.iter().map(|f| f.0.as_str()).collect();
    for f in [
        "equilibrium.csv",
        "participants.csv",
        "prices.svg",
        "costs.svg",
        "flows.svg",
        "banking.csv",
        "banking_prices.svg",
        "agents_daily.csv",
        "agents_price.svg",
        "monte_carlo.csv",
        "monte_carlo_prices.svg",
        "monte_carlo_path.svg",
        "cbam.csv",
        "cbam.svg",
    ] {
        assert!(names.contains(&f), "{f} missing from {names:?}");
    }
}

#[test]
fn monte_carlo_is_reproducible_for_a_seed_and_differs_for_another() {
    let mc = |seed: u64| {
        let r = results(&format!("{FIRST_RUN}\n[monte_carlo]\ndraws = 50\n[[monte_carlo.uncertain]]\nparameter = \"mac_level\"\ndistribution = \"uniform\"\nlow = 0.5\nhigh = 1.5\n").replace("name = \"first run\"", &format!("name = \"mc\"\nseed = {seed}")));
        r.json["monte_carlo"].clone()
    };
    assert_eq!(mc(1), mc(1));
    assert_ne!(mc(1), mc(2));
    let m = mc(1);
    let gain = m["metrics"].as_array().unwrap().iter().find(|x| x["metric"] == "integrated.gain_vs_autarky").unwrap();
    assert!(
        gain["low"].as_f64().unwrap() <= gain["median"].as_f64().unwrap()
            && gain["median"].as_f64().unwrap() <= gain["high"].as_f64().unwrap()
    );
}

#[test]
fn a_tighter_cap_raises_the_price_and_a_paid_share_does_not() {
    let base = autarky_prices(&results(FIRST_RUN));
    let tight = autarky_prices(&results(&format!("{FIRST_RUN}\n[market.GD]\ncap_scale = 0.99\n")));
    let gd = |p: &[(String, f64)]| p.iter().find(|x| x.0 == "GD").unwrap().1;
    assert!(gd(&tight) > gd(&base) * 1.4, "{} vs {}", gd(&tight), gd(&base));
    let paid = autarky_prices(&results(&format!("{FIRST_RUN}\n[market.GD]\nauction_share = 0.5\n")));
    assert!((gd(&paid) - gd(&base)).abs() < 1e-9);
}

#[test]
fn bad_scenario_files_name_the_key_and_the_problem() {
    let e = errors("[scenario]\nname = \"x\"\n[market.GD]\ncap_mt = -5\n[equilibrium]\n");
    assert!(e.iter().any(|m| m == "market.GD.cap_mt: must be a number ≥ 0, found -5"), "{e:?}");
    let e = errors("[scenario]\nname = \"x\"\nseeed = 3\n[equilibrium]\n");
    assert!(e.iter().any(|m| m.starts_with("scenario.seeed: unknown key")), "{e:?}");
    let e = errors("[scenario]\nname = \"x\"\n[equilibrium]\nregimes = [\"autarky\", \"merged\"]\n");
    assert!(
        e.contains(&"equilibrium.regimes[1]: must be autarky, integrated, linked or restricted, found \"merged\"".to_string()),
        "{e:?}"
    );
    let e = errors("[scenario]\nname = \"x\"\n[market.XX]\nbaseline_mt = 10\ncap_mt = 9\n[equilibrium]\n");
    assert!(e.iter().any(|m| m.starts_with("market.XX.mac: missing")), "{e:?}");
    let e = errors("[scenario]\nname = \"x\"\n[market.GD]\nmac = { kind = \"stepped\", measures = [[10, 0]] }\n[equilibrium]\n");
    assert!(e.iter().any(|m| m == "market.GD.mac.measures[0][1]: potential must be > 0 Mt, found 0"), "{e:?}");
    let e = errors("[scenario]\nname = \"x\"\n[banking]\nmarkets = [\"ZZ\"]\ncaps_mt = [1, 2]\nyears = 3\n");
    assert!(e.iter().any(|m| m.starts_with("banking.markets: unknown market ZZ")), "{e:?}");
    assert!(e.iter().any(|m| m == "banking.caps_mt: has 2 values for 3 years"), "{e:?}");
    let e = errors("[scenario]\nname = \"x\"\n[equilibrium]\n[market.GD]\nrulebook = \"gd-2099\"\n");
    assert!(e.iter().any(|m| m.starts_with("market.GD.rulebook: no shipped rulebook 'gd-2099'")), "{e:?}");
    let e = errors("[scenario]\nname = \"x\"\n[equilibrium]\nregimes = \"autarky\"\n");
    assert!(e.contains(&"equilibrium.regimes: must be a list of strings, found a string".to_string()), "{e:?}");
    let e = errors("[scenario\nname = 1");
    assert!(e[0].starts_with("line 1: TOML syntax"), "{e:?}");
    let e = errors("[scenario]\nname = \"x\"\n");
    assert!(e.iter().any(|m| m.starts_with("scenario: nothing to run")), "{e:?}");
    // Several problems are all reported at once.
    let e = errors("[scenario]\nname = \"x\"\nseed = -1\n[market.GD]\nauction_share = 2\n[equilibrium]\n[monte_carlo]\ndraws = 1\n");
    assert!(e.len() >= 4, "{e:?}");
}

#[test]
fn rulebooks_supply_offset_limits_bands_and_banking() {
    let s = Scenario::parse("[scenario]\nname = \"x\"\nmarkets = [\"BJ\", \"GD\"]\n[market.GD]\noffsets = { price = 20 }\n[equilibrium]\n")
        .unwrap();
    let gd = &s.markets[1];
    assert_eq!(gd.offsets.unwrap().limit_share, 0.10);
    assert_eq!(gd.listed_band, Some(0.10));
    // Beijing's rulebook has the ¥20 floor and ¥150 ceiling.
    assert_eq!(s.markets[0].floor, Some((20.0, None)));
    assert_eq!(s.markets[0].ceiling, Some((150.0, None)));
}
