//! Scenario files (TOML): which markets, which rulebooks with which changes, which years, which
//! firms or data, which analyses. Reading reports every problem at once, each naming its key
//! (`market.GD.cap_mt: must be a number > 0, found -5`); nothing runs unless the file is clean.
//! The format is documented in README.md ("Policy simulation") and by `examples/sim/*.toml`.

use crate::calibration::{self, Calibration, RuleInfo};
use crate::equilibrium::RentTo;
use crate::mac::Mac;
use crate::market::{Market, Offsets, Participant, Trigger, TriggerKind, UNLIMITED_MT};
use crate::msr::Msr;
use crate::SimError;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use toml::{Table, Value};

/// Limits on what a scenario may ask for (a limit on everything).
pub const FIRMS_PER_MARKET_MAX: usize = 1_000_000;
pub const PERIODS_MAX: usize = 200;
pub const DRAWS_MAX: usize = 100_000;
pub const AGENT_FIRMS_MAX: usize = 200_000;
pub const AGENT_DAYS_MAX: usize = 1_000;

#[derive(Clone, Debug, PartialEq)]
pub enum MacSpec {
    /// Calibrated: the market alone clears at `price` with `required` Mt to abate.
    Calibrated {
        price: f64,
        required: f64,
        gamma: f64,
    },
    Given(Mac),
}

impl MacSpec {
    pub fn build(&self, level: f64) -> Result<Mac, SimError> {
        match self {
            MacSpec::Calibrated { price, required, gamma } => calibration::mac_for(price * level, *required, *gamma),
            MacSpec::Given(m) if level == 1.0 => Ok(m.clone()),
            MacSpec::Given(m) => Ok(match m {
                Mac::Linear { slope } => Mac::Linear { slope: slope * level },
                Mac::Power { beta, gamma, .. } => Mac::power(beta * level, *gamma)?,
                Mac::Stepped(s) => Mac::stepped(&s.measures().iter().map(|(c, q)| (c * level, *q)).collect::<Vec<_>>())?,
            }),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct MarketSpec {
    pub code: String,
    pub name: String,
    pub rules: Option<RuleInfo>,
    pub baseline_mt: f64,
    pub cap_mt: f64,
    pub mac: MacSpec,
    pub auction_share: f64,
    pub offsets: Option<Offsets>,
    pub floor: Option<(f64, Option<f64>)>,
    pub ceiling: Option<(f64, Option<f64>)>,
    pub reserves: Vec<Trigger>,
    pub firms: usize,
    pub listed_band: Option<f64>,
    /// Observed price the calibration targets, if calibrated.
    pub target_price: Option<f64>,
    pub entities: Option<u32>,
}

/// Multipliers applied to one market in a Monte Carlo draw.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Draw {
    pub baseline: f64,
    pub cap: f64,
    pub mac_level: f64,
}

impl Default for Draw {
    fn default() -> Draw {
        Draw { baseline: 1.0, cap: 1.0, mac_level: 1.0 }
    }
}

impl MarketSpec {
    /// The market as participants: one, or `firms` heterogeneous firms (seeded).
    pub fn build(&self, seed: u64, dispersion: f64, draw: Draw) -> Result<Market, SimError> {
        let baseline = self.baseline_mt * draw.baseline;
        let cap = self.cap_mt * draw.cap;
        let mac = self.mac.build(draw.mac_level).map_err(|e| e.context(&self.code))?;
        let free = cap * (1.0 - self.auction_share);
        let participants = if self.firms <= 1 {
            vec![Participant::new(self.code.clone(), baseline, free, mac)?]
        } else {
            let mut rng = ChaCha8Rng::seed_from_u64(seed ^ fnv(&self.code));
            let sizes: Vec<f64> = (0..self.firms).map(|_| lognormal(&mut rng, 0.5)).collect();
            let shares: Vec<f64> = (0..self.firms).map(|_| lognormal(&mut rng, dispersion)).collect();
            let (size_total, share_total): (f64, f64) = (sizes.iter().sum(), shares.iter().sum());
            let mut firms = Vec::with_capacity(self.firms);
            for i in 0..self.firms {
                let w = sizes[i] / size_total;
                firms.push(Participant::new(
                    format!("{}-{:05}", self.code, i + 1),
                    baseline * w,
                    free * w,
                    mac.scaled(shares[i] / share_total),
                )?);
            }
            firms
        };
        let mut market = Market::new(self.code.clone(), participants);
        market.auction_mt = cap * self.auction_share;
        market.offsets = self.offsets;
        if let Some((price, absorb)) = self.floor {
            market.triggers.push(Trigger { kind: TriggerKind::Withhold, price, quantity_mt: absorb.unwrap_or(cap) });
        }
        if let Some((price, release)) = self.ceiling {
            market.triggers.push(Trigger { kind: TriggerKind::Release, price, quantity_mt: release.unwrap_or(UNLIMITED_MT) });
        }
        market.triggers.extend(self.reserves.iter().copied());
        Ok(market)
    }
}

/// FNV-1a of a text: a stable per-market seed offset.
pub fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// A standard normal draw (Box–Muller), from the named generator.
pub fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.gen::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// A lognormal draw with median 1.
pub fn lognormal(rng: &mut ChaCha8Rng, sigma: f64) -> f64 {
    (sigma * normal(rng)).exp()
}

#[derive(Clone, Debug, PartialEq)]
pub enum RegimeSpec {
    Autarky,
    Integrated,
    Linked,
    Restricted,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RestrictedSpec {
    pub a: Vec<String>,
    pub b: Vec<String>,
    pub quota_mt: f64,
    pub rent_to: RentTo,
}

#[derive(Clone, Debug, PartialEq)]
pub struct EquilibriumSpec {
    pub regimes: Vec<RegimeSpec>,
    pub exchange_rates: BTreeMap<String, f64>,
    pub restricted: Option<RestrictedSpec>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PathBound {
    pub price: f64,
    /// Yearly growth of the bound (0.05 = 5%).
    pub growth: f64,
    pub quantity_mt: Option<f64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct BankingSpec {
    pub markets: Vec<String>,
    pub first_year: i32,
    pub years: usize,
    pub discount_rate: f64,
    pub baseline_growth: f64,
    pub cap_decline: f64,
    pub caps_mt: Option<Vec<f64>>,
    pub baselines_mt: Option<Vec<f64>>,
    pub banking: bool,
    pub borrowing_limit_mt: f64,
    pub initial_bank_mt: f64,
    pub floor: Option<PathBound>,
    pub ceiling: Option<PathBound>,
    pub msr: Option<Msr>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct AgentSpec {
    pub market: String,
    pub firms: usize,
    pub days: usize,
    pub listed_band: f64,
    pub participation: f64,
    pub deadline_rush: f64,
    pub learning: f64,
    pub noise: f64,
    pub shock_sd: f64,
    pub start_price: Option<f64>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Distribution {
    Normal { sd: f64 },
    Lognormal { sigma: f64 },
    Uniform { low: f64, high: f64 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parameter {
    Baseline,
    Cap,
    MacLevel,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Uncertain {
    /// A market code, or None for every market (drawn independently per market).
    pub market: Option<String>,
    pub parameter: Parameter,
    pub distribution: Distribution,
}

#[derive(Clone, Debug, PartialEq)]
pub struct MonteCarloSpec {
    pub draws: usize,
    pub confidence: f64,
    pub uncertain: Vec<Uncertain>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CbamSpec {
    pub good: String,
    pub see_t_per_t: f64,
    pub sefa_t_per_t: f64,
    pub cbam_price_eur: f64,
    pub cny_per_eur: f64,
    pub paid_share: f64,
    pub quantity_t: f64,
    pub markets: Vec<String>,
    pub price_max: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    pub name: String,
    pub seed: u64,
    pub calibration: Option<Calibration>,
    pub firm_dispersion: f64,
    pub markets: Vec<MarketSpec>,
    pub equilibrium: Option<EquilibriumSpec>,
    pub banking: Option<BankingSpec>,
    pub agents: Option<AgentSpec>,
    pub monte_carlo: Option<MonteCarloSpec>,
    pub cbam: Option<CbamSpec>,
}

/// Every problem found in a scenario, each "key: problem".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioErrors(pub Vec<String>);

impl std::fmt::Display for ScenarioErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join("\n"))
    }
}

struct Reader {
    errors: Vec<String>,
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a number",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a date",
        Value::Array(_) => "a list",
        Value::Table(_) => "a table",
    }
}

fn join(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_string()
    } else {
        format!("{at}.{key}")
    }
}

impl Reader {
    fn err(&mut self, key: &str, problem: impl std::fmt::Display) {
        self.errors.push(format!("{key}: {problem}"));
    }

    fn keys(&mut self, t: &Table, at: &str, allowed: &[&str]) {
        for k in t.keys() {
            if !allowed.contains(&k.as_str()) {
                self.err(&join(at, k), format!("unknown key (expected one of: {})", allowed.join(", ")));
            }
        }
    }

    fn table<'t>(&mut self, t: &'t Table, at: &str, key: &str) -> Option<&'t Table> {
        match t.get(key)? {
            Value::Table(x) => Some(x),
            other => {
                self.err(&join(at, key), format!("must be a table, found {}", kind(other)));
                None
            }
        }
    }

    fn number_value(&mut self, v: &Value, key: &str) -> Option<f64> {
        match v {
            Value::Integer(i) => Some(*i as f64),
            Value::Float(f) if f.is_finite() => Some(*f),
            Value::Float(f) => {
                self.err(key, format!("must be a finite number, found {f}"));
                None
            }
            other => {
                self.err(key, format!("must be a number, found {}", kind(other)));
                None
            }
        }
    }

    fn number(&mut self, t: &Table, at: &str, key: &str) -> Option<f64> {
        let v = t.get(key)?;
        self.number_value(v, &join(at, key))
    }

    /// A number satisfying `ok` (described by `what`, e.g. "> 0").
    fn checked(&mut self, t: &Table, at: &str, key: &str, what: &str, ok: impl Fn(f64) -> bool) -> Option<f64> {
        let x = self.number(t, at, key)?;
        if ok(x) {
            Some(x)
        } else {
            self.err(&join(at, key), format!("must be a number {what}, found {x}"));
            None
        }
    }

    fn positive(&mut self, t: &Table, at: &str, key: &str) -> Option<f64> {
        self.checked(t, at, key, "> 0", |x| x > 0.0)
    }

    fn non_negative(&mut self, t: &Table, at: &str, key: &str) -> Option<f64> {
        self.checked(t, at, key, "≥ 0", |x| x >= 0.0)
    }

    fn share(&mut self, t: &Table, at: &str, key: &str) -> Option<f64> {
        self.checked(t, at, key, "between 0 and 1", |x| (0.0..=1.0).contains(&x))
    }

    fn integer(&mut self, t: &Table, at: &str, key: &str, low: i64, high: i64) -> Option<i64> {
        match t.get(key)? {
            Value::Integer(i) if (low..=high).contains(i) => Some(*i),
            Value::Integer(i) => {
                self.err(&join(at, key), format!("must be an integer from {low} to {high}, found {i}"));
                None
            }
            other => {
                self.err(&join(at, key), format!("must be an integer, found {}", kind(other)));
                None
            }
        }
    }

    fn string(&mut self, t: &Table, at: &str, key: &str) -> Option<String> {
        match t.get(key)? {
            Value::String(s) => Some(s.clone()),
            other => {
                self.err(&join(at, key), format!("must be a string, found {}", kind(other)));
                None
            }
        }
    }

    fn boolean(&mut self, t: &Table, at: &str, key: &str) -> Option<bool> {
        match t.get(key)? {
            Value::Boolean(b) => Some(*b),
            other => {
                self.err(&join(at, key), format!("must be true or false, found {}", kind(other)));
                None
            }
        }
    }

    fn strings(&mut self, t: &Table, at: &str, key: &str) -> Option<Vec<String>> {
        match t.get(key)? {
            Value::Array(items) => {
                let mut out = Vec::new();
                for (i, v) in items.iter().enumerate() {
                    match v {
                        Value::String(s) => out.push(s.clone()),
                        other => self.err(&format!("{}[{i}]", join(at, key)), format!("must be a string, found {}", kind(other))),
                    }
                }
                Some(out)
            }
            other => {
                self.err(&join(at, key), format!("must be a list of strings, found {}", kind(other)));
                None
            }
        }
    }

    fn numbers(&mut self, t: &Table, at: &str, key: &str) -> Option<Vec<f64>> {
        match t.get(key)? {
            Value::Array(items) => {
                let mut out = Vec::new();
                for (i, v) in items.iter().enumerate() {
                    if let Some(x) = self.number_value(v, &format!("{}[{i}]", join(at, key))) {
                        out.push(x);
                    }
                }
                (out.len() == items.len()).then_some(out)
            }
            other => {
                self.err(&join(at, key), format!("must be a list of numbers, found {}", kind(other)));
                None
            }
        }
    }

    /// `key = 20` or `key = { price = 20, <quantity_key> = 5 }`.
    fn bound(&mut self, t: &Table, at: &str, key: &str, quantity_key: &str) -> Option<(f64, Option<f64>)> {
        let v = t.get(key)?;
        let here = join(at, key);
        match v {
            Value::Table(b) => {
                self.keys(b, &here, &["price", quantity_key]);
                let price = self.non_negative(b, &here, "price");
                if price.is_none() && !b.contains_key("price") {
                    self.err(&join(&here, "price"), "missing");
                }
                let q = self.non_negative(b, &here, quantity_key);
                price.map(|p| (p, q))
            }
            other => {
                let p = self.number_value(other, &here)?;
                if p < 0.0 {
                    self.err(&here, format!("must be a price ≥ 0, found {p}"));
                    return None;
                }
                Some((p, None))
            }
        }
    }
}

const MARKET_KEYS: &[&str] = &[
    "name",
    "rulebook",
    "baseline_mt",
    "cap_mt",
    "cap_scale",
    "intensity",
    "mac",
    "price_target",
    "mac_gamma",
    "auction_share",
    "offsets",
    "price_floor",
    "price_ceiling",
    "reserves",
    "firms",
    "listed_band",
];

impl Scenario {
    /// Reads a scenario. Errors name the key and the problem; all of them are returned.
    pub fn parse(text: &str) -> Result<Scenario, ScenarioErrors> {
        let root: Table = match text.parse::<Table>() {
            Ok(t) => t,
            Err(e) => {
                let line = e.span().map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
                let at = line.map_or(String::new(), |l| format!("line {l}: "));
                return Err(ScenarioErrors(vec![format!("{at}TOML syntax: {}", e.message().trim())]));
            }
        };
        let mut r = Reader { errors: Vec::new() };
        r.keys(&root, "", &["scenario", "market", "equilibrium", "banking", "agents", "monte_carlo", "cbam"]);
        let empty = Table::new();
        let head = r.table(&root, "", "scenario").unwrap_or(&empty);
        if !root.contains_key("scenario") {
            r.err("scenario", "missing: a scenario needs a [scenario] table with at least a name");
        }
        r.keys(head, "scenario", &["name", "seed", "calibration", "markets", "firms_per_market", "firm_dispersion"]);
        let name = r.string(head, "scenario", "name").unwrap_or_default();
        if root.contains_key("scenario") && !head.contains_key("name") {
            r.err("scenario.name", "missing");
        }
        let seed = r.integer(head, "scenario", "seed", 0, i64::MAX).unwrap_or(1) as u64;
        let calibration = match r.string(head, "scenario", "calibration").as_deref() {
            None | Some("default") => Some(Calibration::default_set()),
            Some("none") => None,
            Some(other) => {
                r.err("scenario.calibration", format!("must be \"default\" or \"none\", found \"{other}\""));
                None
            }
        };
        let firms_default = r.integer(head, "scenario", "firms_per_market", 1, FIRMS_PER_MARKET_MAX as i64).unwrap_or(1) as usize;
        let firm_dispersion =
            r.non_negative(head, "scenario", "firm_dispersion").or(calibration.as_ref().map(|c| c.params.firm_dispersion)).unwrap_or(0.8);
        let market_tables = r.table(&root, "", "market").cloned().unwrap_or_default();
        let mut codes: Vec<String> = match r.strings(head, "scenario", "markets") {
            Some(list) => list,
            None => match &calibration {
                Some(c) => c.markets.iter().map(|m| m.code.clone()).collect(),
                None => market_tables.keys().cloned().collect(),
            },
        };
        for code in market_tables.keys() {
            if !codes.contains(code) && head.contains_key("markets") {
                r.err(&format!("market.{code}"), "not in scenario.markets: add it there or remove the table");
            } else if !codes.contains(code) {
                codes.push(code.clone());
            }
        }
        let mut seen = Vec::new();
        for c in &codes {
            if seen.contains(c) {
                r.err("scenario.markets", format!("{c} is listed twice"));
            }
            seen.push(c.clone());
        }
        if codes.is_empty() {
            r.err("scenario.markets", "no markets: list some, or use the default calibration");
        }
        let mut markets = Vec::new();
        for code in &codes {
            let table = match market_tables.get(code) {
                Some(Value::Table(t)) => t.clone(),
                Some(other) => {
                    r.err(&format!("market.{code}"), format!("must be a table, found {}", kind(other)));
                    continue;
                }
                None => Table::new(),
            };
            if let Some(m) = read_market(&mut r, code, &table, calibration.as_ref(), firms_default) {
                markets.push(m);
            }
        }
        let equilibrium = r.table(&root, "", "equilibrium").cloned().map(|t| read_equilibrium(&mut r, &t, &codes));
        let banking = r.table(&root, "", "banking").cloned().map(|t| read_banking(&mut r, &t, &codes, &markets));
        let agents = r.table(&root, "", "agents").cloned().map(|t| read_agents(&mut r, &t, &codes, &markets));
        let monte_carlo = r.table(&root, "", "monte_carlo").cloned().map(|t| read_monte_carlo(&mut r, &t, &codes));
        let cbam = r.table(&root, "", "cbam").cloned().map(|t| read_cbam(&mut r, &t, &codes));
        if equilibrium.is_none() && banking.is_none() && agents.is_none() && cbam.is_none() {
            r.err("scenario", "nothing to run: add [equilibrium], [banking], [agents] or [cbam]");
        }
        if monte_carlo.is_some() && equilibrium.is_none() && banking.is_none() {
            r.err("monte_carlo", "needs [equilibrium] or [banking] to draw over");
        }
        if !r.errors.is_empty() {
            return Err(ScenarioErrors(r.errors));
        }
        Ok(Scenario { name, seed, calibration, firm_dispersion, markets, equilibrium, banking, agents, monte_carlo, cbam })
    }

    pub fn market_index(&self, code: &str) -> Option<usize> {
        self.markets.iter().position(|m| m.code == code)
    }

    /// The markets as participants for one draw (all multipliers 1 outside Monte Carlo).
    pub fn build_markets(&self, draws: &[Draw]) -> Result<Vec<Market>, SimError> {
        self.markets.iter().zip(draws).map(|(m, d)| m.build(self.seed, self.firm_dispersion, *d)).collect()
    }
}

fn read_mac(r: &mut Reader, t: &Table, at: &str) -> Option<Mac> {
    r.keys(t, at, &["kind", "slope", "beta", "gamma", "measures"]);
    let kind = r.string(t, at, "kind");
    match kind.as_deref() {
        Some("linear") => {
            let slope = r.positive(t, at, "slope");
            if !t.contains_key("slope") {
                r.err(&join(at, "slope"), "missing (CNY/t per Mt)");
            }
            slope.and_then(|s| Mac::linear(s).ok())
        }
        Some("power") => {
            let beta = r.positive(t, at, "beta");
            let gamma = r.positive(t, at, "gamma");
            for k in ["beta", "gamma"] {
                if !t.contains_key(k) {
                    r.err(&join(at, k), "missing");
                }
            }
            Mac::power(beta?, gamma?).ok()
        }
        Some("stepped") => {
            let key = join(at, "measures");
            let Some(Value::Array(rows)) = t.get("measures") else {
                r.err(&key, "missing or not a list: give [[cost CNY/t, potential Mt], ...]");
                return None;
            };
            let mut measures = Vec::new();
            for (i, row) in rows.iter().enumerate() {
                let here = format!("{key}[{i}]");
                match row {
                    Value::Array(pair) if pair.len() == 2 => {
                        let cost = r.number_value(&pair[0], &format!("{here}[0]"));
                        let potential = r.number_value(&pair[1], &format!("{here}[1]"));
                        match (cost, potential) {
                            (Some(c), Some(p)) if p > 0.0 => measures.push((c, p)),
                            (Some(_), Some(p)) => r.err(&format!("{here}[1]"), format!("potential must be > 0 Mt, found {p}")),
                            _ => {}
                        }
                    }
                    _ => r.err(&here, "must be [cost CNY/t, potential Mt]"),
                }
            }
            if measures.len() != rows.len() {
                return None;
            }
            match Mac::stepped(&measures) {
                Ok(m) => Some(m),
                Err(e) => {
                    r.err(&key, e);
                    None
                }
            }
        }
        Some(other) => {
            r.err(&join(at, "kind"), format!("must be linear, power or stepped, found \"{other}\""));
            None
        }
        None => {
            if !t.contains_key("kind") {
                r.err(&join(at, "kind"), "missing: linear, power or stepped");
            }
            None
        }
    }
}

fn read_market(r: &mut Reader, code: &str, t: &Table, calibration: Option<&Calibration>, firms_default: usize) -> Option<MarketSpec> {
    let at = format!("market.{code}");
    let errors_before = r.errors.len();
    r.keys(t, &at, MARKET_KEYS);
    let cal = calibration.and_then(|c| c.market(code));
    if cal.is_none() && calibration.is_some() && !t.contains_key("baseline_mt") {
        r.err(&at, format!("{code} is not in the calibration: give baseline_mt, cap_mt and mac"));
    }
    let rulebook_id = r.string(t, &at, "rulebook").or_else(|| cal.and_then(|c| c.rulebook.clone()));
    let rules = match rulebook_id {
        Some(id) => match calibration::rule_info(&id) {
            Ok(info) => Some(info),
            Err(e) => {
                r.err(&join(&at, "rulebook"), e);
                None
            }
        },
        None => None,
    };
    let name = r.string(t, &at, "name").or_else(|| cal.map(|c| c.name.clone())).unwrap_or_else(|| code.to_string());
    let baseline = r.positive(t, &at, "baseline_mt").or(cal.map(|c| c.baseline_mt));
    let mut cap = r.non_negative(t, &at, "cap_mt").or(cal.map(|c| c.cap_mt)).or(rules.as_ref().and_then(|x| x.cap_mt));
    if let Some(i) = r.table(t, &at, "intensity") {
        let here = join(&at, "intensity");
        r.keys(i, &here, &["output", "benchmark"]);
        let output = r.positive(i, &here, "output");
        let benchmark = r.positive(i, &here, "benchmark");
        if t.contains_key("cap_mt") {
            r.err(&here, "give cap_mt or intensity, not both");
        }
        match (output, benchmark) {
            (Some(o), Some(b)) => cap = Some(o * b),
            _ => r.err(&here, "needs output (Mt of product) and benchmark (t CO2 per t)"),
        }
    }
    let gamma = r.positive(t, &at, "mac_gamma").or(calibration.map(|c| c.params.mac_gamma)).unwrap_or(1.0);
    let price_target = r.positive(t, &at, "price_target");
    let given = r.table(t, &at, "mac").cloned().and_then(|m| read_mac(r, &m, &join(&at, "mac")));
    if t.contains_key("mac") && t.contains_key("price_target") {
        r.err(&join(&at, "price_target"), "give mac or price_target, not both");
    }
    let (Some(baseline), Some(cap0)) = (baseline, cap) else {
        if baseline.is_none() && !t.contains_key("baseline_mt") {
            r.err(&join(&at, "baseline_mt"), "missing");
        }
        if cap.is_none() && !t.contains_key("cap_mt") && !t.contains_key("intensity") {
            r.err(&join(&at, "cap_mt"), "missing (or intensity)");
        }
        return None;
    };
    let mac = if let Some(m) = given {
        MacSpec::Given(m)
    } else if let Some(p) = price_target {
        MacSpec::Calibrated { price: p, required: baseline - cap0, gamma }
    } else if let Some(c) = cal {
        // Calibrated on the data set's own cap: a scenario's cap change moves the price.
        MacSpec::Calibrated { price: c.target_price, required: c.baseline_mt - c.cap_mt, gamma }
    } else {
        if !t.contains_key("mac") {
            r.err(&join(&at, "mac"), "missing: give mac = { kind = ... } or price_target");
        }
        return None;
    };
    if let MacSpec::Calibrated { required, .. } = mac {
        if required <= 0.0 {
            r.err(
                &join(&at, "price_target"),
                format!("cannot calibrate to a price: cap {cap0} Mt is not below the baseline {baseline} Mt"),
            );
        }
    }
    let cap_scale = r.positive(t, &at, "cap_scale").unwrap_or(1.0);
    let cap_mt = cap0 * cap_scale;
    let auction_share = r.share(t, &at, "auction_share").unwrap_or(0.0);
    let offsets = r.table(t, &at, "offsets").cloned().and_then(|o| {
        let here = join(&at, "offsets");
        r.keys(&o, &here, &["price", "supply_mt", "limit_share"]);
        let price = r.non_negative(&o, &here, "price");
        if !o.contains_key("price") {
            r.err(&join(&here, "price"), "missing (CNY/t of a credit)");
        }
        let supply_mt = r.non_negative(&o, &here, "supply_mt").unwrap_or(f64::INFINITY);
        let limit = r.share(&o, &here, "limit_share").or(rules.as_ref().and_then(|x| x.offset_limit_share));
        if limit.is_none() && !o.contains_key("limit_share") {
            r.err(&join(&here, "limit_share"), "missing, and the market has no rulebook offset limit");
        }
        Some(Offsets { price: price?, supply_mt, limit_share: limit? })
    });
    let floor = r.bound(t, &at, "price_floor", "absorb_mt").or_else(|| rules.as_ref().and_then(|x| x.floor).map(|p| (p, None)));
    let ceiling = r.bound(t, &at, "price_ceiling", "release_mt").or_else(|| rules.as_ref().and_then(|x| x.ceiling).map(|p| (p, None)));
    if let (Some(f), Some(c)) = (floor, ceiling) {
        if f.0 > c.0 {
            r.err(&join(&at, "price_floor"), format!("floor {} is above the ceiling {}", f.0, c.0));
        }
    }
    let mut reserves = Vec::new();
    match t.get("reserves") {
        None => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let here = format!("{at}.reserves[{i}]");
                let Value::Table(x) = item else {
                    r.err(&here, "must be a table { kind, price, quantity_mt }");
                    continue;
                };
                r.keys(x, &here, &["kind", "price", "quantity_mt"]);
                let kind = match r.string(x, &here, "kind").as_deref() {
                    Some("release") => Some(TriggerKind::Release),
                    Some("withhold") => Some(TriggerKind::Withhold),
                    other => {
                        r.err(&join(&here, "kind"), format!("must be release or withhold, found {other:?}"));
                        None
                    }
                };
                let price = r.non_negative(x, &here, "price");
                let quantity = r.non_negative(x, &here, "quantity_mt");
                for k in ["price", "quantity_mt"] {
                    if !x.contains_key(k) {
                        r.err(&join(&here, k), "missing");
                    }
                }
                if let (Some(kind), Some(price), Some(quantity_mt)) = (kind, price, quantity) {
                    reserves.push(Trigger { kind, price, quantity_mt });
                }
            }
        }
        Some(other) => r.err(&join(&at, "reserves"), format!("must be a list of tables, found {}", kind(other))),
    }
    let firms = r.integer(t, &at, "firms", 1, FIRMS_PER_MARKET_MAX as i64).map_or(firms_default, |f| f as usize);
    let listed_band = r.share(t, &at, "listed_band").or(rules.as_ref().and_then(|x| x.listed_band));
    if r.errors.len() > errors_before {
        return None;
    }
    Some(MarketSpec {
        code: code.to_string(),
        name,
        rules,
        baseline_mt: baseline,
        cap_mt,
        mac,
        auction_share,
        offsets,
        floor,
        ceiling,
        reserves,
        firms,
        listed_band,
        target_price: cal.map(|c| c.target_price),
        entities: cal.map(|c| c.entities),
    })
}

fn known(r: &mut Reader, key: &str, code: &str, codes: &[String]) -> bool {
    if codes.iter().any(|c| c == code) {
        true
    } else {
        r.err(key, format!("unknown market {code} (the scenario has {})", codes.join(", ")));
        false
    }
}

fn read_equilibrium(r: &mut Reader, t: &Table, codes: &[String]) -> EquilibriumSpec {
    let at = "equilibrium";
    r.keys(t, at, &["regimes", "exchange_rates", "restricted"]);
    let mut regimes = Vec::new();
    for (i, name) in r.strings(t, at, "regimes").unwrap_or_else(|| vec!["autarky".into(), "integrated".into()]).iter().enumerate() {
        match name.as_str() {
            "autarky" => regimes.push(RegimeSpec::Autarky),
            "integrated" => regimes.push(RegimeSpec::Integrated),
            "linked" => regimes.push(RegimeSpec::Linked),
            "restricted" => regimes.push(RegimeSpec::Restricted),
            other => {
                r.err(&format!("equilibrium.regimes[{i}]"), format!("must be autarky, integrated, linked or restricted, found \"{other}\""))
            }
        }
    }
    let mut exchange_rates = BTreeMap::new();
    if let Some(rates) = r.table(t, at, "exchange_rates") {
        for (code, v) in rates {
            let key = format!("equilibrium.exchange_rates.{code}");
            if known(r, &key, code, codes) {
                match r.number_value(v, &key) {
                    Some(x) if x > 0.0 => {
                        exchange_rates.insert(code.clone(), x);
                    }
                    Some(x) => r.err(&key, format!("must be a number > 0, found {x}")),
                    None => {}
                }
            }
        }
    }
    let restricted = r.table(t, at, "restricted").cloned().and_then(|x| {
        let here = "equilibrium.restricted";
        r.keys(&x, here, &["a", "b", "quota_mt", "rent_to"]);
        let a = r.strings(&x, here, "a").unwrap_or_default();
        let b = r.strings(&x, here, "b").unwrap_or_default();
        for (side, list) in [("a", &a), ("b", &b)] {
            if list.is_empty() {
                r.err(&join(here, side), "missing: the markets on this side of the link");
            }
            for c in list.iter() {
                known(r, &join(here, side), c, codes);
                if side == "b" && a.contains(c) {
                    r.err(&join(here, "b"), format!("{c} is on both sides"));
                }
            }
        }
        let quota = r.non_negative(&x, here, "quota_mt");
        if !x.contains_key("quota_mt") {
            r.err(&join(here, "quota_mt"), "missing (Mt per year, net, reference units)");
        }
        let rent_to = match r.string(&x, here, "rent_to").as_deref() {
            None | Some("importer") => RentTo::Importer,
            Some("exporter") => RentTo::Exporter,
            Some("regulator") => RentTo::Regulator,
            Some(other) => {
                r.err(&join(here, "rent_to"), format!("must be importer, exporter or regulator, found \"{other}\""));
                RentTo::Importer
            }
        };
        Some(RestrictedSpec { a, b, quota_mt: quota?, rent_to })
    });
    if regimes.contains(&RegimeSpec::Restricted) && restricted.is_none() && !t.contains_key("restricted") {
        r.err("equilibrium.restricted", "missing: the restricted regime needs [equilibrium.restricted] with a, b and quota_mt");
    }
    EquilibriumSpec { regimes, exchange_rates, restricted }
}

fn read_path_bound(r: &mut Reader, t: &Table, at: &str, key: &str, quantity_key: &str) -> Option<PathBound> {
    let here = join(at, key);
    match t.get(key)? {
        Value::Table(b) => {
            r.keys(b, &here, &["price", "growth", quantity_key]);
            let price = r.non_negative(b, &here, "price");
            if !b.contains_key("price") {
                r.err(&join(&here, "price"), "missing");
            }
            let growth = r.checked(b, &here, "growth", "> -1", |g| g > -1.0).unwrap_or(0.0);
            let quantity_mt = r.non_negative(b, &here, quantity_key);
            Some(PathBound { price: price?, growth, quantity_mt })
        }
        other => {
            let p = r.number_value(other, &here)?;
            Some(PathBound { price: p, growth: 0.0, quantity_mt: None })
        }
    }
}

fn read_banking(r: &mut Reader, t: &Table, codes: &[String], markets: &[MarketSpec]) -> BankingSpec {
    let at = "banking";
    r.keys(
        t,
        at,
        &[
            "markets",
            "first_year",
            "years",
            "discount_rate",
            "baseline_growth",
            "cap_decline",
            "caps_mt",
            "baselines_mt",
            "banking",
            "borrowing_limit_mt",
            "initial_bank_mt",
            "price_floor",
            "price_ceiling",
            "msr",
        ],
    );
    let list = r.strings(t, at, "markets").unwrap_or_else(|| codes.first().cloned().into_iter().collect());
    for c in &list {
        known(r, "banking.markets", c, codes);
    }
    if list.is_empty() {
        r.err("banking.markets", "no market");
    }
    let caps_mt = r.numbers(t, at, "caps_mt");
    let baselines_mt = r.numbers(t, at, "baselines_mt");
    let years_default = caps_mt.as_ref().or(baselines_mt.as_ref()).map_or(10, |v| v.len());
    let years = r.integer(t, at, "years", 1, PERIODS_MAX as i64).map_or(years_default, |y| y as usize);
    for (key, v) in [("caps_mt", &caps_mt), ("baselines_mt", &baselines_mt)] {
        if let Some(v) = v {
            if v.len() != years {
                r.err(&join(at, key), format!("has {} values for {years} years", v.len()));
            }
            if v.iter().any(|x| *x < 0.0) {
                r.err(&join(at, key), "values must be ≥ 0");
            }
        }
    }
    let rules: Vec<&RuleInfo> = markets.iter().filter(|m| list.contains(&m.code)).filter_map(|m| m.rules.as_ref()).collect();
    // Rulebooks: banking if every rulebook allows it; borrowing only if every one does.
    let banking_default = rules.iter().all(|x| x.banking);
    let borrowing_default = !rules.is_empty() && rules.iter().all(|x| x.borrowing);
    let borrowing_limit_mt = match t.get("borrowing_limit_mt") {
        None => {
            if borrowing_default {
                f64::INFINITY
            } else {
                0.0
            }
        }
        Some(Value::String(s)) if s == "unlimited" => f64::INFINITY,
        Some(_) => r.non_negative(t, at, "borrowing_limit_mt").unwrap_or(0.0),
    };
    let msr = r.table(t, at, "msr").cloned().map(|m| {
        let here = "banking.msr";
        r.keys(
            &m,
            here,
            &[
                "upper_mt",
                "lower_mt",
                "intake_rate",
                "band_top_mt",
                "release_mt",
                "invalidate_above_mt",
                "lag_years",
                "initial_holdings_mt",
            ],
        );
        let d = Msr::default();
        let optional = |r: &mut Reader, key: &str, default: Option<f64>| match m.get(key) {
            Some(Value::Boolean(false)) => None,
            Some(_) => r.non_negative(&m, here, key),
            None => default,
        };
        let msr = Msr {
            upper_mt: r.non_negative(&m, here, "upper_mt").unwrap_or(d.upper_mt),
            lower_mt: r.non_negative(&m, here, "lower_mt").unwrap_or(d.lower_mt),
            intake_rate: r.share(&m, here, "intake_rate").unwrap_or(d.intake_rate),
            band_top_mt: optional(r, "band_top_mt", d.band_top_mt),
            release_mt: r.non_negative(&m, here, "release_mt").unwrap_or(d.release_mt),
            invalidate_above_mt: optional(r, "invalidate_above_mt", d.invalidate_above_mt),
            lag_years: r.integer(&m, here, "lag_years", 1, 10).map_or(d.lag_years, |l| l as usize),
            initial_holdings_mt: r.non_negative(&m, here, "initial_holdings_mt").unwrap_or(d.initial_holdings_mt),
        };
        if let Err(e) = msr.validate() {
            r.err(here, e);
        }
        msr
    });
    BankingSpec {
        markets: list,
        first_year: r.integer(t, at, "first_year", 1900, 2200).unwrap_or(2025) as i32,
        years,
        discount_rate: r.checked(t, at, "discount_rate", "from 0 to 1", |x| (0.0..=1.0).contains(&x)).unwrap_or(0.05),
        baseline_growth: r.checked(t, at, "baseline_growth", "> -1", |x| x > -1.0).unwrap_or(0.0),
        cap_decline: r.checked(t, at, "cap_decline", "from 0 to 1", |x| (0.0..=1.0).contains(&x)).unwrap_or(0.0),
        caps_mt,
        baselines_mt,
        banking: r.boolean(t, at, "banking").unwrap_or(banking_default),
        borrowing_limit_mt,
        initial_bank_mt: r.number(t, at, "initial_bank_mt").unwrap_or(0.0),
        floor: read_path_bound(r, t, at, "price_floor", "absorb_mt"),
        ceiling: read_path_bound(r, t, at, "price_ceiling", "release_mt"),
        msr,
    }
}

fn read_agents(r: &mut Reader, t: &Table, codes: &[String], markets: &[MarketSpec]) -> AgentSpec {
    let at = "agents";
    r.keys(
        t,
        at,
        &["market", "firms", "days", "listed_band", "participation", "deadline_rush", "learning", "noise", "shock_sd", "start_price"],
    );
    let market = r.string(t, at, "market").or_else(|| codes.first().cloned()).unwrap_or_default();
    known(r, "agents.market", &market, codes);
    let band_default = markets.iter().find(|m| m.code == market).and_then(|m| m.listed_band).unwrap_or(0.10);
    AgentSpec {
        firms: r.integer(t, at, "firms", 2, AGENT_FIRMS_MAX as i64).unwrap_or(200) as usize,
        days: r.integer(t, at, "days", 1, AGENT_DAYS_MAX as i64).unwrap_or(242) as usize,
        listed_band: r.checked(t, at, "listed_band", "between 0.001 and 1", |x| (0.001..=1.0).contains(&x)).unwrap_or(band_default),
        participation: r.share(t, at, "participation").unwrap_or(0.2),
        deadline_rush: r.checked(t, at, "deadline_rush", "≥ 1", |x| x >= 1.0).unwrap_or(4.0),
        learning: r.share(t, at, "learning").unwrap_or(0.3),
        noise: r.checked(t, at, "noise", "from 0 to 0.5", |x| (0.0..=0.5).contains(&x)).unwrap_or(0.05),
        shock_sd: r.checked(t, at, "shock_sd", "from 0 to 0.5", |x| (0.0..=0.5).contains(&x)).unwrap_or(0.02),
        start_price: r.positive(t, at, "start_price"),
        market,
    }
}

fn read_monte_carlo(r: &mut Reader, t: &Table, codes: &[String]) -> MonteCarloSpec {
    let at = "monte_carlo";
    r.keys(t, at, &["draws", "confidence", "uncertain"]);
    let draws = r.integer(t, at, "draws", 2, DRAWS_MAX as i64).unwrap_or(200) as usize;
    let confidence = r.checked(t, at, "confidence", "between 0.5 and 0.999", |x| (0.5..=0.999).contains(&x)).unwrap_or(0.9);
    let mut uncertain = Vec::new();
    match t.get("uncertain") {
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let here = format!("monte_carlo.uncertain[{i}]");
                let Value::Table(x) = item else {
                    r.err(&here, "must be a table");
                    continue;
                };
                r.keys(x, &here, &["market", "parameter", "distribution", "sd", "sigma", "low", "high"]);
                let market = match r.string(x, &here, "market").as_deref() {
                    None | Some("*") => None,
                    Some(c) => {
                        known(r, &join(&here, "market"), c, codes);
                        Some(c.to_string())
                    }
                };
                let parameter = match r.string(x, &here, "parameter").as_deref() {
                    Some("baseline") => Some(Parameter::Baseline),
                    Some("cap") => Some(Parameter::Cap),
                    Some("mac_level") => Some(Parameter::MacLevel),
                    other => {
                        r.err(&join(&here, "parameter"), format!("must be baseline, cap or mac_level, found {other:?}"));
                        None
                    }
                };
                let distribution = match r.string(x, &here, "distribution").as_deref() {
                    Some("normal") => r
                        .checked(x, &here, "sd", "from 0 to 0.5 (relative)", |s| (0.0..=0.5).contains(&s))
                        .map(|sd| Distribution::Normal { sd }),
                    Some("lognormal") => r
                        .checked(x, &here, "sigma", "from 0 to 2", |s| (0.0..=2.0).contains(&s))
                        .map(|sigma| Distribution::Lognormal { sigma }),
                    Some("uniform") => {
                        let low = r.positive(x, &here, "low");
                        let high = r.positive(x, &here, "high");
                        match (low, high) {
                            (Some(l), Some(h)) if l <= h => Some(Distribution::Uniform { low: l, high: h }),
                            (Some(l), Some(h)) => {
                                r.err(&join(&here, "low"), format!("{l} is above high {h}"));
                                None
                            }
                            _ => None,
                        }
                    }
                    other => {
                        r.err(&join(&here, "distribution"), format!("must be normal, lognormal or uniform, found {other:?}"));
                        None
                    }
                };
                let needs = match x.get("distribution").and_then(|d| d.as_str()) {
                    Some("normal") => &["sd"][..],
                    Some("lognormal") => &["sigma"][..],
                    Some("uniform") => &["low", "high"][..],
                    _ => &[][..],
                };
                for k in needs {
                    if !x.contains_key(*k) {
                        r.err(&join(&here, k), "missing");
                    }
                }
                if let (Some(parameter), Some(distribution)) = (parameter, distribution) {
                    uncertain.push(Uncertain { market, parameter, distribution });
                }
            }
        }
        Some(other) => {
            r.err("monte_carlo.uncertain", format!("must be a list of tables ([[monte_carlo.uncertain]]), found {}", kind(other)))
        }
        None => r.err("monte_carlo.uncertain", "missing: at least one [[monte_carlo.uncertain]]"),
    }
    MonteCarloSpec { draws, confidence, uncertain }
}

fn read_cbam(r: &mut Reader, t: &Table, codes: &[String]) -> CbamSpec {
    let at = "cbam";
    r.keys(
        t,
        at,
        &["good", "see_t_per_t", "sefa_t_per_t", "cbam_price_eur", "cny_per_eur", "paid_share", "quantity_t", "markets", "price_max"],
    );
    for k in ["see_t_per_t", "cbam_price_eur", "cny_per_eur"] {
        if !t.contains_key(k) {
            r.err(&join(at, k), "missing");
        }
    }
    let markets = r.strings(t, at, "markets").unwrap_or_default();
    for c in &markets {
        known(r, "cbam.markets", c, codes);
    }
    CbamSpec {
        good: r.string(t, at, "good").unwrap_or_else(|| "good".into()),
        see_t_per_t: r.non_negative(t, at, "see_t_per_t").unwrap_or(0.0),
        sefa_t_per_t: r.non_negative(t, at, "sefa_t_per_t").unwrap_or(0.0),
        cbam_price_eur: r.positive(t, at, "cbam_price_eur").unwrap_or(1.0),
        cny_per_eur: r.positive(t, at, "cny_per_eur").unwrap_or(1.0),
        paid_share: r.share(t, at, "paid_share").unwrap_or(0.0),
        quantity_t: r.positive(t, at, "quantity_t").unwrap_or(1.0),
        markets,
        price_max: r.positive(t, at, "price_max").unwrap_or(300.0),
    }
}
