//! `ets demo`: a fresh registry with China's national market and the eight pilots, a few
//! thousand covered entities and institutions of realistic size drawn from a seed, and one
//! compliance year run through it: caps, issuance, free allocation, offsets, trading (some of
//! it settled through pending transfers), a judicial freeze, a correction, voluntary
//! cancellation and surrender. Every step goes through the same ledger as `ets transfer`.
//!
//! The entity sizes are a demo population, not data: medians and spreads are chosen so that
//! each market's entity count and total emissions are of the order reported in
//! shared/domain/china-ets.md (§1.3, §6.1); thresholds are the markets' coverage thresholds.

use crate::output::{table, Output};
use crate::{catalog, CliError, ExitCode};
use clap::Args;
use ets_core::{Date, Timestamp, Tonnes};
use ets_registry::journal::hex;
use ets_registry::{AccountKind, Command, Envelope, HolderType, PendingPurpose, Registry, TxId, UnitRef};
use ets_store::{Ledger, LedgerOptions, Location};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;
use std::time::Instant;

#[derive(Args)]
pub struct DemoArgs {
    /// Seed of the generated population and trades: the same seed gives the same registry
    #[arg(long, default_value_t = 2024)]
    seed: u64,
    /// Covered entities and institutions to open across the nine markets
    #[arg(long, default_value_t = 3000)]
    accounts: u32,
    /// Most secondary-market trades to run (trading stops once every entity that means to comply is covered)
    #[arg(long, default_value_t = 20_000)]
    trades: u32,
}

impl Default for DemoArgs {
    fn default() -> DemoArgs {
        DemoArgs { seed: 2024, accounts: 3000, trades: 20_000 }
    }
}

/// Demo population per market: share of operator accounts, median and log-spread of verified
/// emissions (t CO2e), and the coverage threshold below which no entity is covered.
struct Population {
    code: &'static str,
    share: f64,
    median_t: f64,
    sigma: f64,
    threshold_t: u64,
}

const POPULATION: [Population; 9] = [
    // National: power plants, 26,000 t threshold [MEAS2021] Art. 8; ~2,200 firms, >4 Gt.
    Population { code: "CN", share: 0.55, median_t: 1_200_000.0, sigma: 0.9, threshold_t: 26_000 },
    Population { code: "BJ", share: 0.09, median_t: 35_000.0, sigma: 1.0, threshold_t: 5_000 },
    Population { code: "TJ", share: 0.03, median_t: 400_000.0, sigma: 1.0, threshold_t: 20_000 },
    Population { code: "SH", share: 0.05, median_t: 150_000.0, sigma: 1.1, threshold_t: 20_000 },
    Population { code: "CQ", share: 0.05, median_t: 200_000.0, sigma: 1.0, threshold_t: 20_000 },
    Population { code: "HB", share: 0.04, median_t: 500_000.0, sigma: 0.9, threshold_t: 60_000 },
    Population { code: "GD", share: 0.06, median_t: 250_000.0, sigma: 1.0, threshold_t: 10_000 },
    Population { code: "SZ", share: 0.08, median_t: 20_000.0, sigma: 1.0, threshold_t: 3_000 },
    Population { code: "FJ", share: 0.05, median_t: 120_000.0, sigma: 1.0, threshold_t: 13_000 },
];

const VINTAGE: u16 = 2024;
/// Share of the cap kept in each market's reserve (Shenzhen keeps 2% for price stability, §6.1).
const RESERVE_SHARE_PERCENT: u64 = 2;
/// National CCER limit: 5% of the surrender obligation ([MEAS2021] Art. 29).
const CCER_LIMIT_PERCENT: u64 = 5;

struct Entity {
    market: usize,
    account: String,
    rep: String,
    emissions: u64,
    allocation: u64,
    allowances: u64,
    offsets: u64,
}

struct Demo {
    ledger: Ledger,
    rng: ChaCha8Rng,
    pending: Vec<Envelope>,
    next_id: u64,
    commands: u64,
}

impl Demo {
    fn push(&mut self, actor: &str, command: Command) {
        self.next_id += 1;
        self.pending.push(Envelope { id: format!("demo-{}", self.next_id), actor: actor.to_string(), command });
    }

    /// Submits the queued commands as one durable batch stamped `at`.
    fn flush(&mut self, at: Timestamp) -> Result<(), CliError> {
        let batch = std::mem::take(&mut self.pending);
        for (envelope, result) in batch.iter().zip(self.ledger.submit_batch(at, &batch)?) {
            self.commands += 1;
            if let Err(rejection) = result {
                return Err(CliError::new(
                    ExitCode::Internal,
                    format!("demo command {} ({}) was rejected: {rejection}", envelope.id, envelope.command.name()),
                ));
            }
        }
        Ok(())
    }

    fn registry(&self) -> &Registry {
        self.ledger.registry()
    }
}

fn day(y: i32, m: u32, d: u32) -> Timestamp {
    Timestamp(Date::from_ymd(y, m, d).expect("demo date").start().0 + 10 * 3_600_000)
}

fn lognormal(rng: &mut ChaCha8Rng, median: f64, sigma: f64) -> f64 {
    // Box-Muller; floating point is fine here: this draws a demo population, not a ledger entry.
    let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
    let u2: f64 = rng.gen();
    let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
    median * (sigma * z).exp()
}

fn prepare_location(location: Option<Location>) -> Result<Location, CliError> {
    let location = location.unwrap_or_else(|| Location::Sqlite("ets-demo.db".into()));
    if let Location::Sqlite(path) = &location {
        if path.exists() {
            // Only a registry that `ets demo` made is ever replaced; anything else is left alone.
            if ets_store::SqliteBackend::first_command_id(path).as_deref() != Some(FIRST_COMMAND_ID) {
                return Err(CliError::new(
                    ExitCode::Refused,
                    format!("{} exists and is not a registry made by `ets demo`; choose another --database", path.display()),
                ));
            }
            for suffix in ["", "-wal", "-shm"] {
                let file = format!("{}{suffix}", path.display());
                if std::path::Path::new(&file).exists() {
                    std::fs::remove_file(&file).map_err(|e| CliError::new(ExitCode::Internal, format!("cannot replace {file}: {e}")))?;
                }
            }
            eprintln!("demo: replacing the earlier demo registry at {}", path.display());
        }
    }
    Ok(location)
}

/// The id of the demo's first command: it marks a registry as one the demo made.
const FIRST_COMMAND_ID: &str = "demo-1";

pub fn run(location: Option<Location>, args: &DemoArgs, out: &Output) -> Result<(), CliError> {
    if args.accounts < 100 {
        return Err(CliError::new(ExitCode::Invalid, "the demo needs at least 100 accounts"));
    }
    let location = prepare_location(location)?;
    let started = Instant::now();
    let ledger = Ledger::open(&location, LedgerOptions { snapshot_every: 0 })?;
    if ledger.registry().seq() > 0 {
        return Err(CliError::new(
            ExitCode::Refused,
            format!("{location} already holds a registry; the demo needs an empty one (for PostgreSQL, a new --schema)"),
        ));
    }
    let mut demo = Demo { ledger, rng: ChaCha8Rng::seed_from_u64(args.seed), pending: Vec::new(), next_id: 0, commands: 0 };
    let markets = catalog::china_markets();

    eprintln!("demo: registry at {location}; adding the national market and the eight pilots");
    demo.push("admin", Command::InitRegistry { admins: vec!["admin".into()] });
    for spec in &markets {
        demo.push("admin", Command::AddMarket(spec.clone()));
    }
    // Pilots that accept national CCERs for compliance recognise the national market's units.
    for spec in markets.iter().skip(1) {
        demo.push(&spec.authorities[0], Command::RecogniseUnits { market: spec.code.clone(), issuer: "CN".into() });
    }
    demo.flush(day(2025, 1, 2))?;

    // Entities and institutions.
    let operators_total = args.accounts * 9 / 10;
    let mut entities: Vec<Entity> = Vec::new();
    let mut traders: Vec<(usize, String, String)> = Vec::new();
    for (m, population) in POPULATION.iter().enumerate() {
        let spec = &markets[m];
        assert_eq!(population.code, spec.code, "demo population follows the catalog's market order");
        let count = ((f64::from(operators_total) * population.share).round() as u32).max(3);
        for i in 0..count {
            let emissions = (lognormal(&mut demo.rng, population.median_t, population.sigma) as u64).max(population.threshold_t);
            let rep = format!("{}-op{}", spec.code.to_lowercase(), i + 1);
            demo.push(
                "admin",
                Command::OpenAccount {
                    market: spec.code.clone(),
                    kind: AccountKind::Operator,
                    holder: format!("{} covered entity {:04}", spec.name, i + 1),
                    holder_type: HolderType::Entity,
                    representatives: vec![rep.clone()],
                },
            );
            entities.push(Entity { market: m, account: String::new(), rep, emissions, allocation: 0, allowances: 0, offsets: 0 });
        }
        let institutions = (count / 9).max(2);
        for i in 0..institutions {
            let individual = spec.individuals_may_trade && i % 3 == 2;
            let rep = format!("{}-tr{}", spec.code.to_lowercase(), i + 1);
            demo.push(
                "admin",
                Command::OpenAccount {
                    market: spec.code.clone(),
                    kind: AccountKind::Trading,
                    holder: if individual {
                        format!("{} individual trader {:03}", spec.name, i + 1)
                    } else {
                        format!("{} institution {:03}", spec.name, i + 1)
                    },
                    holder_type: if individual { HolderType::Individual } else { HolderType::Institution },
                    representatives: vec![rep.clone()],
                },
            );
            traders.push((m, String::new(), rep));
        }
    }
    demo.flush(day(2025, 3, 31))?;
    // Account numbers were assigned by the registry, in opening order per market.
    let mut opened: Vec<u32> = vec![0; markets.len()];
    let mut next_number = |m: usize| {
        opened[m] += 1;
        format!("{}-{}", markets[m].code, 100_000 + opened[m])
    };
    let mut e = 0;
    let mut t = 0;
    for m in 0..markets.len() {
        while e < entities.len() && entities[e].market == m {
            entities[e].account = next_number(m);
            e += 1;
        }
        while t < traders.len() && traders[t].0 == m {
            traders[t].1 = next_number(m);
            t += 1;
        }
    }
    eprintln!("demo: opened {} operator and {} trading accounts", entities.len(), traders.len());

    // Caps, issuance and free allocation of the 2024 vintage (allocation issued by 30 Sep 2025, §5).
    let mut caps = vec![0u64; markets.len()];
    for entity in entities.iter_mut() {
        let factor = demo.rng.gen_range(93..=108);
        entity.allocation = entity.emissions * factor / 100;
        entity.allowances = entity.allocation;
        caps[entity.market] += entity.allocation;
    }
    for (m, spec) in markets.iter().enumerate() {
        let allocated = caps[m];
        let reserve = allocated * RESERVE_SHARE_PERCENT / 100;
        caps[m] = allocated + reserve;
        let authority = spec.authorities[0].clone();
        let unit = UnitRef::allowance(&spec.allowance_code, VINTAGE);
        demo.push(&authority, Command::SetCap { market: spec.code.clone(), vintage: VINTAGE, cap: Tonnes(caps[m]) });
        demo.push(&authority, Command::Issue { unit: unit.clone(), quantity: Tonnes(allocated), to: None });
        demo.push(&authority, Command::Issue { unit: unit.clone(), quantity: Tonnes(reserve), to: Some(format!("{}-RESERVE", spec.code)) });
    }
    demo.flush(day(2025, 9, 20))?;
    for entity in &entities {
        let spec = &markets[entity.market];
        demo.push(
            &spec.authorities[0],
            Command::Allocate {
                from: format!("{}-ISSUANCE", spec.code),
                to: entity.account.clone(),
                unit: UnitRef::allowance(&spec.allowance_code, VINTAGE),
                quantity: Tonnes(entity.allocation),
            },
        );
    }
    demo.flush(day(2025, 9, 30))?;
    eprintln!("demo: issued and allocated the {VINTAGE} vintage in all nine markets");

    // Offsets: national CCER projects, Guangdong PHCER and Fujian FFCER, issued to developers.
    let mut developers: Vec<(usize, String, String, UnitRef, u64)> = Vec::new();
    for (m, standard, projects) in [(0usize, "CCER", 12), (6, "PHCER", 3), (8, "FFCER", 2)] {
        let spec = &markets[m];
        let market_traders: Vec<_> = traders.iter().filter(|t| t.0 == m).cloned().collect();
        for p in 0..projects {
            let unit = UnitRef::offset(standard, &format!("{}-P{:03}", spec.code, p + 1), VINTAGE);
            let quantity = demo.rng.gen_range(50_000..500_000u64);
            let (_, account, rep) = &market_traders[p % market_traders.len()];
            demo.push(&spec.authorities[0], Command::Issue { unit: unit.clone(), quantity: Tonnes(quantity), to: None });
            demo.push(
                &spec.authorities[0],
                Command::Allocate {
                    from: format!("{}-ISSUANCE", spec.code),
                    to: account.clone(),
                    unit: unit.clone(),
                    quantity: Tonnes(quantity),
                },
            );
            developers.push((m, account.clone(), rep.clone(), unit, quantity));
        }
    }
    demo.flush(day(2025, 9, 30))?;

    // Trading, Oct 1 - Dec 19: the short buy from the long; a fifth settle via pending transfers.
    let trading_days: Vec<Timestamp> = (0..80).map(|d| Timestamp(day(2025, 10, 1).0 + d * 86_400_000)).collect();
    let mut trades = 0u32;
    let mut traded_t = vec![0u64; markets.len()];
    let mut trade_count = vec![0u32; markets.len()];
    let per_day = args.trades.div_ceil(trading_days.len() as u32);
    // A few entities (about 1 in 150) will not buy what they lack: non-compliance to show.
    let defaulters: Vec<bool> = (0..entities.len()).map(|_| demo.rng.gen_ratio(1, 150)).collect();
    for (d, &at) in trading_days.iter().enumerate() {
        let mut short: Vec<Vec<usize>> = vec![Vec::new(); markets.len()];
        let mut long: Vec<Vec<usize>> = vec![Vec::new(); markets.len()];
        for (i, e) in entities.iter().enumerate() {
            if e.emissions > e.allowances + e.offsets && !defaulters[i] {
                short[e.market].push(i);
            } else if e.allowances > e.emissions {
                long[e.market].push(i);
            }
        }
        let mut attempts = 0;
        let mut today = 0;
        while today < per_day && trades < args.trades && attempts < per_day * 4 {
            attempts += 1;
            let m = pick_market(&mut demo.rng);
            if short[m].is_empty() || long[m].is_empty() {
                continue;
            }
            let buyer = short[m][demo.rng.gen_range(0..short[m].len())];
            let seller = long[m][demo.rng.gen_range(0..long[m].len())];
            let need = entities[buyer].emissions.saturating_sub(entities[buyer].allowances + entities[buyer].offsets);
            let surplus = entities[seller].allowances.saturating_sub(entities[seller].emissions);
            if need == 0 || surplus == 0 {
                continue;
            }
            // Lots of 0.5% to 5% of a typical entity's emissions: several trades per short entity.
            let median = POPULATION[m].median_t as u64;
            let lot = demo.rng.gen_range(median / 200..=median / 20).max(100);
            let quantity = Tonnes(need.min(surplus).min(lot));
            let spec = &markets[m];
            let unit = UnitRef::allowance(&spec.allowance_code, VINTAGE);
            let (from, to, rep) = (entities[seller].account.clone(), entities[buyer].account.clone(), entities[seller].rep.clone());
            let dealers: Vec<&(usize, String, String)> = traders.iter().filter(|t| t.0 == m).collect();
            match trades % 5 {
                // Exchange settlement: units reserved at the trade, delivered when settled.
                0 => {
                    let pending = format!("settle-{}", trades + 1);
                    demo.push(
                        &rep,
                        Command::CreatePending { pending: pending.clone(), from, to, unit, quantity, purpose: PendingPurpose::Settlement },
                    );
                    demo.push(&spec.authorities[0], Command::PostPending { pending });
                }
                // Through a dealer (institution or individual trading account).
                1 | 3 if !dealers.is_empty() => {
                    let (_, dealer, dealer_rep) = dealers[demo.rng.gen_range(0..dealers.len())].clone();
                    demo.push(&rep, Command::Transfer { from, to: dealer.clone(), unit: unit.clone(), quantity });
                    demo.push(&dealer_rep, Command::Transfer { from: dealer, to, unit, quantity });
                }
                _ => demo.push(&rep, Command::Transfer { from, to, unit, quantity }),
            }
            entities[seller].allowances -= quantity.0;
            entities[buyer].allowances += quantity.0;
            traded_t[m] += quantity.0;
            trade_count[m] += 1;
            trades += 1;
            today += 1;
        }
        // National entities short of allowances buy CCERs, up to the 5% limit.
        if d % 10 == 9 {
            buy_offsets(&mut demo, &mut entities, &developers, &defaulters);
        }
        demo.flush(at)?;
    }
    eprintln!("demo: {trades} trades settled in the registry");

    // Institutions buy and cancel voluntarily; a judicial freeze; a mistaken transfer corrected.
    let mut cancelled_t = 0u64;
    let mut cancel_count = 0;
    for (m, account, rep) in traders.iter().filter(|t| t.0 == 0).take(10) {
        let Some(seller) = entities.iter().position(|e| e.market == *m && e.allowances > e.emissions + 20_000) else { continue };
        let spec = &markets[*m];
        let unit = UnitRef::allowance(&spec.allowance_code, VINTAGE);
        demo.push(
            &entities[seller].rep.clone(),
            Command::Transfer { from: entities[seller].account.clone(), to: account.clone(), unit: unit.clone(), quantity: Tonnes(20_000) },
        );
        demo.push(rep, Command::Cancel { account: account.clone(), unit, quantity: Tonnes(10_000) });
        entities[seller].allowances -= 20_000;
        cancelled_t += 10_000;
        cancel_count += 1;
    }
    demo.flush(day(2025, 12, 20))?;

    let long = entities.iter().position(|e| e.market == 0 && e.allowances > e.emissions + 10_000).expect("a long national entity");
    let long_account = entities[long].account.clone();
    let cea = UnitRef::allowance("CEA", VINTAGE);
    demo.push(
        "mee",
        Command::Freeze {
            freeze: "freeze-1".into(),
            account: long_account.clone(),
            unit: cea.clone(),
            quantity: Tonnes(5_000),
            order: "court-order-2025-118".into(),
        },
    );
    let frozen_tx_before = demo.registry().transactions().len() as u64;
    let other = entities.iter().position(|e| e.market == 0 && e.account != long_account).expect("another national entity");
    demo.push(
        &entities[long].rep.clone(),
        Command::Transfer { from: long_account.clone(), to: entities[other].account.clone(), unit: cea.clone(), quantity: Tonnes(1_234) },
    );
    demo.flush(day(2025, 12, 21))?;
    demo.push(
        "mee",
        Command::Reverse { tx: TxId(frozen_tx_before + 1), reason: "transfer to the wrong account, reported by both parties".into() },
    );
    demo.push("mee", Command::Unfreeze { freeze: "freeze-1".into() });
    demo.push(
        "mee",
        Command::Freeze {
            freeze: "freeze-2".into(),
            account: long_account.clone(),
            unit: cea,
            quantity: Tonnes(2_000),
            order: "court-order-2025-131".into(),
        },
    );
    demo.flush(day(2025, 12, 22))?;

    // Surrender for 2024 by 31 Dec 2025 (§3): offsets first within the limit, then allowances.
    let frozen_account = long_account;
    for entity in entities.iter_mut() {
        let spec = &markets[entity.market];
        let mut due = entity.emissions;
        let registry = demo.ledger.registry();
        let account = registry.find_account(&entity.account).expect("opened");
        if entity.offsets > 0 {
            for (u, h) in registry.holdings_of(account) {
                if registry.unit(u).spec.class != ets_registry::UnitClass::Allowance && h.free_total() > 0 {
                    let q = h.free_total().min(due);
                    if q > 0 {
                        let unit = UnitRef::parse(&registry.unit_name(u)).expect("unit name parses");
                        demo.pending.push(Envelope {
                            id: format!("surrender-offset-{}-{}", entity.account, u.0),
                            actor: entity.rep.clone(),
                            command: Command::Surrender {
                                account: entity.account.clone(),
                                unit,
                                quantity: Tonnes(q),
                                compliance_year: VINTAGE,
                            },
                        });
                        due -= q;
                    }
                }
            }
        }
        let unit = UnitRef::allowance(&spec.allowance_code, VINTAGE);
        let free = demo
            .ledger
            .registry()
            .unit_named(&unit)
            .ok()
            .and_then(|u| demo.ledger.registry().holding(account, u))
            .map_or(0, |h| h.free_total());
        let q = free.min(due);
        if q > 0 {
            demo.push(
                &entity.rep.clone(),
                Command::Surrender { account: entity.account.clone(), unit, quantity: Tonnes(q), compliance_year: VINTAGE },
            );
        }
    }
    demo.flush(day(2025, 12, 30))?;
    eprintln!("demo: compliance year {VINTAGE} surrendered");

    let mut ledger = demo.ledger;
    eprintln!("demo: MRV year {}: plans, monthly data, verification", crate::demo_mrv::YEAR);
    let mrv = crate::demo_mrv::run(&location, args.seed)?;
    eprintln!("demo: compliance cycle {}: coverage, a migration, allocation, auction, surrender, assessment", crate::demo_mrv::YEAR);
    let cycle = crate::demo_cycle::run(&location, &mut ledger, crate::demo_mrv::YEAR)?;
    eprintln!("demo: trading year {}: listed, block, settlement into the registry", crate::demo_exchange::YEAR);
    let exchange = crate::demo_exchange::run(&location, &mut ledger, args.seed)?;
    eprintln!("demo: finance desk: pledges, a repo and a forward month to delivery");
    let finance = crate::demo_finance::desk(&location, &mut ledger, 2024)?;
    let sim = crate::sim::demo_sim::run();
    let cbam = crate::cbam::demo_cbam::run(&ledger, &cycle)?;
    ledger.flush_history()?;
    ledger.snapshot()?;
    let elapsed = started.elapsed();
    let audit_started = Instant::now();
    let report = ledger.audit()?;
    let audit_elapsed = audit_started.elapsed();
    summarize(
        out,
        &ledger,
        &entities,
        &traded_t,
        &trade_count,
        &caps,
        &markets,
        demo.commands,
        elapsed,
        cancelled_t,
        cancel_count,
        &frozen_account,
        &location,
        &report,
        audit_elapsed,
        &mrv,
        &cycle,
        &exchange,
        &sim,
        &finance,
    );
    cbam.print(out);
    Ok(())
}

fn pick_market(rng: &mut ChaCha8Rng) -> usize {
    let x: f64 = rng.gen();
    let mut acc = 0.0;
    for (m, p) in POPULATION.iter().enumerate() {
        acc += p.share;
        if x < acc {
            return m;
        }
    }
    0
}

fn buy_offsets(demo: &mut Demo, entities: &mut [Entity], developers: &[(usize, String, String, UnitRef, u64)], defaulters: &[bool]) {
    let mut stock: Vec<u64> = developers
        .iter()
        .map(|d| {
            let registry = demo.ledger.registry();
            let account = registry.find_account(&d.1).expect("developer account");
            registry.unit_named(&d.3).ok().and_then(|u| registry.holding(account, u)).map_or(0, |h| h.free_total())
        })
        .collect();
    for (i, entity) in entities.iter_mut().enumerate() {
        if entity.market != 0 || defaulters[i] {
            continue;
        }
        let need = entity.emissions.saturating_sub(entity.allowances + entity.offsets);
        let room = (entity.emissions * CCER_LIMIT_PERCENT / 100).saturating_sub(entity.offsets);
        let want = need.min(room);
        if want == 0 {
            continue;
        }
        let Some(d) = (0..developers.len()).find(|&d| developers[d].0 == 0 && stock[d] >= want) else { continue };
        stock[d] -= want;
        let (_, account, rep, unit, _) = &developers[d];
        demo.push(rep, Command::Transfer { from: account.clone(), to: entity.account.clone(), unit: unit.clone(), quantity: Tonnes(want) });
        entity.offsets += want;
    }
}

#[allow(clippy::too_many_arguments)]
fn summarize(
    out: &Output,
    ledger: &Ledger,
    entities: &[Entity],
    traded_t: &[u64],
    trade_count: &[u32],
    caps: &[u64],
    markets: &[ets_registry::MarketSpec],
    commands: u64,
    elapsed: std::time::Duration,
    cancelled_t: u64,
    cancel_count: u32,
    frozen_account: &str,
    location: &Location,
    report: &ets_store::AuditReport,
    audit_elapsed: std::time::Duration,
    mrv: &crate::demo_mrv::MrvDemo,
    cycle: &crate::demo_cycle::CycleDemo,
    exchange: &crate::demo_exchange::ExchangeDemo,
    sim: &crate::sim::demo_sim::SimDemo,
    finance: &crate::demo_finance::FinanceDemo,
) {
    let registry = ledger.registry();
    let mut rows = Vec::new();
    let mut values = Vec::new();
    for (m, spec) in markets.iter().enumerate() {
        let ours: Vec<&Entity> = entities.iter().filter(|e| e.market == m).collect();
        let emissions: u64 = ours.iter().map(|e| e.emissions).sum();
        let allocated: u64 = ours.iter().map(|e| e.allocation).sum();
        let mut surrendered = 0u64;
        let mut compliant = 0usize;
        for e in &ours {
            let account = registry.find_account(&e.account).expect("opened");
            let s = registry.surrendered(account, VINTAGE);
            surrendered += s;
            if s >= e.emissions {
                compliant += 1;
            }
        }
        let accounts = registry.accounts().iter().filter(|a| registry.market(a.market).spec.code == spec.code).count();
        let rate = compliant as f64 * 100.0 / ours.len().max(1) as f64;
        rows.push(vec![
            spec.code.clone(),
            accounts.to_string(),
            ours.len().to_string(),
            Tonnes(emissions).to_string(),
            Tonnes(caps[m]).to_string(),
            Tonnes(allocated).to_string(),
            trade_count[m].to_string(),
            Tonnes(traded_t[m]).to_string(),
            Tonnes(surrendered).to_string(),
            format!("{rate:.1}%"),
        ]);
        values.push(json!({"market": spec.code, "accounts": accounts, "covered_entities": ours.len(), "verified_emissions_t": emissions,
                           "cap_t": caps[m], "allocated_t": allocated, "trades": trade_count[m], "traded_t": traded_t[m],
                           "surrendered_t": surrendered, "entities_compliant": compliant}));
    }
    let throughput = commands as f64 / elapsed.as_secs_f64();
    if out.is_json() {
        println!("{}", serde_json::to_string_pretty(&json!({
            "database": location.to_string(), "markets": values, "journal_records": registry.seq(), "commands": commands,
            "transactions": registry.transactions().len(), "serial_blocks": registry.free_block_count(),
            "cancelled_t": cancelled_t, "elapsed_s": elapsed.as_secs_f64(), "head_hash": hex(&ledger.head_hash()), "state_hash": hex(&report.state_hash),
            "mrv": mrv.json(),
            "cycle": cycle.json(),
            "exchange": exchange.json(),
            "sim": sim.json,
            "inclusion": cycle.inclusion.json(),
            "finance": finance.json(),
        })).expect("json"));
        return;
    }
    println!("ets demo: compliance year {VINTAGE} in the national market and eight pilots\n");
    print!(
        "{}",
        table(
            &["MARKET", "ACCOUNTS", "ENTITIES", "EMISSIONS_T", "CAP_T", "ALLOCATED_T", "TRADES", "TRADED_T", "SURRENDERED_T", "COMPLIANT"],
            &rows
        )
    );
    println!();
    println!("voluntary cancellation: {cancel_count} institutions cancelled {} t", Tonnes(cancelled_t));
    println!(
        "judicial freeze: 2,000 t of CEA:{VINTAGE} frozen in {frozen_account} (freeze-2); freeze-1 lifted; one mistaken transfer reversed"
    );
    println!(
        "registry: {} journal records, {} transactions, {} free serial blocks, {} commands in {:.2} s ({:.0} commands/s, durable batches)",
        registry.seq(),
        registry.transactions().len(),
        registry.free_block_count(),
        commands,
        elapsed.as_secs_f64(),
        throughput
    );
    println!(
        "audit: chain of {} records verified, full replay matches the live state ({:.2} s)",
        report.records,
        audit_elapsed.as_secs_f64()
    );
    println!("  head hash  {}\n  state hash {}", hex(&ledger.head_hash()), hex(&report.state_hash));
    let db = match location {
        Location::Sqlite(p) => format!("--database {}", p.display()),
        Location::Postgres { .. } => "--database <url> --schema <schema>".to_string(),
    };
    println!();
    mrv.print(&db);
    println!();
    cycle.print(&db);
    println!();
    exchange.print(&db);
    println!();
    cycle.inclusion.print(&db);
    println!();
    finance.print(out, &db);
    sim.lines.iter().for_each(|l| println!("{l}"));
    println!("\ndatabase: {location}. Try:");
    println!("  ets {db} market list");
    println!("  ets {db} holdings {frozen_account} --blocks");
    println!("  ets {db} history {frozen_account} --at 2025-10-31");
    println!("  ets {db} audit verify");
}
