//! End to end: orders through the exchange journal on SQLite (every batch committed before it
//! is acknowledged), matched, and settled into the registry ledger at the day's close. The
//! orders go through `ExchangeService`, which decides batch k+1 while batch k is written.
//!
//! `cargo bench -p ets-store --bench exchange` (CI size: 200,000 orders);
//! `ETS_BENCH_SCALE=full` for 2,000,000 orders. Prints orders/s including settlement.

use ets_core::{Date, Timestamp, Tonnes};
use ets_exchange::venue::{Command, Envelope, InstrumentSpec};
use ets_exchange::{Side, Tif};
use ets_registry::{AccountKind, Command as R, HolderType, MarketLevel, MarketSpec, PendingPurpose};
use ets_store::{submit_instructions, ExchangeLog, ExchangeService, ExchangeSubmitError, Ledger, LedgerOptions, Location, VenueConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

const MEMBERS: usize = 200;
const BATCH: usize = 10_000;

fn main() {
    let full = std::env::var("ETS_BENCH_SCALE").is_ok_and(|v| v == "full");
    let orders: usize = if full { 2_000_000 } else { 200_000 };
    let dir = tempfile::tempdir().expect("tempdir");
    let location = Location::Sqlite(dir.path().join("bench.db"));
    let mut ledger = Ledger::open(&location, LedgerOptions::default()).expect("ledger");
    let mut n = 0;
    let mut reg = |ledger: &mut Ledger, actor: &str, command: R| {
        n += 1;
        let env = ets_registry::Envelope { id: format!("setup-{n}"), actor: actor.into(), command };
        ledger.submit(Timestamp(0), &env).unwrap_or_else(|e| panic!("{env:?}: {e:?}"));
    };
    reg(&mut ledger, "admin", R::InitRegistry { admins: vec!["admin".into()] });
    let spec = MarketSpec {
        code: "CN".into(),
        name: "national".into(),
        level: MarketLevel::National,
        allowance_code: "CEA".into(),
        offset_standards: vec![],
        individuals_may_trade: false,
        authorities: vec!["auth".into()],
    };
    reg(&mut ledger, "admin", R::AddMarket(spec));
    let open = |ledger: &mut Ledger, reg: &mut dyn FnMut(&mut Ledger, &str, R), kind, rep: &str| {
        reg(
            ledger,
            "auth",
            R::OpenAccount {
                market: "CN".into(),
                kind,
                holder: rep.into(),
                holder_type: HolderType::Entity,
                representatives: vec![rep.into()],
            },
        );
        ledger.registry().accounts().last().expect("opened").number.clone()
    };
    let clearing = open(&mut ledger, &mut reg, AccountKind::Trading, "exchange");
    let unit = ets_registry::UnitRef::allowance("CEA", 2025);
    reg(&mut ledger, "auth", R::Issue { unit: unit.clone(), quantity: Tonnes(1_000_000_000), to: None });
    let issuance = ledger.registry().account(ledger.registry().markets()[0].issuance).number.clone();
    let mut accounts = Vec::new();
    for m in 0..MEMBERS {
        let name = format!("m{m}");
        let account = open(&mut ledger, &mut reg, AccountKind::Operator, &name);
        reg(
            &mut ledger,
            "auth",
            R::Allocate { from: issuance.clone(), to: account.clone(), unit: unit.clone(), quantity: Tonnes(4_000_000) },
        );
        reg(
            &mut ledger,
            &name,
            R::CreatePending {
                pending: format!("lodge-{m}"),
                from: account.clone(),
                to: clearing.clone(),
                unit: unit.clone(),
                quantity: Tonnes(4_000_000),
                purpose: PendingPurpose::Settlement,
            },
        );
        accounts.push((name, account));
    }
    let mut log = ExchangeLog::open(location.open().expect("backend")).expect("exchange log");
    log.init(
        VenueConfig { operator: "exchange".into(), clearing: BTreeMap::from([("CN".into(), clearing)]), holidays: BTreeSet::new() },
        Timestamp(0),
    )
    .expect("init");
    let day = Date::from_ymd(2025, 6, 2).expect("date");
    let t0 = day.start().0 + 90 * 60_000; // 09:30 local
    let mut id = 0u64;
    let mut env = |actor: &str, at_ms: i64, command: Command| {
        id += 1;
        Envelope { id: format!("c{id}"), actor: actor.into(), at_ms, command }
    };
    let mut setup = vec![env("exchange", t0, Command::ListInstrument(InstrumentSpec::national(2025, 8_000)))];
    for (m, (name, account)) in accounts.iter().enumerate() {
        setup.push(env(
            "exchange",
            t0,
            Command::AddMember { member: name.clone(), accounts: BTreeMap::from([("CN".into(), account.clone())]) },
        ));
        setup.push(env("exchange", t0, Command::Deposit { member: name.clone(), amount_fen: 400_000_000_000 }));
        setup.push(env(
            "exchange",
            t0,
            Command::Lodge { member: name.clone(), instrument: "CEA-2025".into(), qty: 4_000_000, pending: format!("lodge-{m}") },
        ));
    }
    setup.push(env("exchange", t0, Command::OpenDay { date: day }));
    for r in log.submit_batch(&setup, &mut ledger).expect("setup") {
        r.expect("setup accepted");
    }
    // The flow: limit orders around 80.00 inside the band, a fifth of them crossing, and
    // cancels of earlier orders; one trading session, settled at the close.
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut flow = Vec::with_capacity(orders);
    for k in 0..orders {
        let m = &accounts[rng.gen_range(0..MEMBERS)].0;
        let at = t0 + (k as i64 * 7_200_000 / orders as i64);
        if k > 10 && rng.gen_bool(0.2) {
            flow.push(env(m, at, Command::Cancel { order: rng.gen_range(1..k as u64) }));
            continue;
        }
        let side = if rng.gen_bool(0.5) { Side::Buy } else { Side::Sell };
        let offset = rng.gen_range(-50..=50) + if side == Side::Buy { 10 } else { -10 };
        flow.push(env(
            m,
            at,
            Command::Place {
                order: k as u64 + 1,
                member: m.clone(),
                instrument: "CEA-2025".into(),
                side,
                price: Some(8_000 + offset),
                qty: rng.gen_range(1..500),
                tif: Tif::Gtc,
            },
        ));
    }
    // The same flow through a copy of the venue in memory only: the state machine's share.
    let mut memory = ets_exchange::venue::Venue::new("exchange", BTreeMap::from([("CN".into(), "x".into())]), BTreeSet::new());
    for e in &setup {
        memory.execute(e).expect("setup in memory");
    }
    let started = Instant::now();
    for e in &flow {
        let _ = memory.execute(e);
    }
    let in_memory = started.elapsed().as_secs_f64();
    let commands = flow.len();
    let places = flow.iter().filter(|e| matches!(e.command, Command::Place { .. })).count();
    println!("venue in memory: {} commands in {:.2} s, {:.0} commands/s", flow.len(), in_memory, flow.len() as f64 / in_memory);
    drop(memory);
    // Groups of commands as a gateway would hand them over; made before the clock starts.
    let groups: Vec<Vec<Envelope>> = flow.chunks(BATCH).map(<[Envelope]>::to_vec).collect();
    let close = env("exchange", t0 + 6 * 3_600_000, Command::CloseDay);
    drop(flow);
    let ledger = Arc::new(Mutex::new(ledger));
    let settle = ledger.clone();
    let carry_out = Box::new(move |at, instructions: &[ets_registry::Envelope]| {
        submit_instructions(&mut settle.lock().expect("ledger"), at, instructions)
    });
    let started = Instant::now();
    let service = ExchangeService::start(log, carry_out, BATCH);
    // Every group is queued at once; the answers come back in order, each once durable.
    let pending: Vec<_> = groups.into_iter().map(|group| service.submit_all(group)).collect();
    let mut accepted = 0usize;
    for submission in pending {
        for answer in submission.wait_all() {
            match answer {
                Ok(_) => accepted += 1,
                Err(ExchangeSubmitError::Rejected(_)) => {}
                Err(ExchangeSubmitError::Store(e)) => panic!("store: {e}"),
            }
        }
    }
    let trading = started.elapsed().as_secs_f64();
    service.submit_all(vec![close]).wait_all().pop().expect("one").expect("closed");
    let (log, _) = service.stop().expect("stop");
    let elapsed = started.elapsed().as_secs_f64();
    let ledger = ledger.lock().expect("ledger");
    let venue = log.venue().expect("venue");
    println!(
        "exchange end to end on SQLite: {commands} commands ({accepted} accepted), {} trades, settled: {:.2} s, {:.0} commands/s, {:.0} new orders/s",
        venue.trades().len(),
        elapsed,
        commands as f64 / elapsed,
        places as f64 / elapsed
    );
    println!("  of which: orders {trading:.2} s, close and settlement {:.2} s", elapsed - trading);
    venue.check_invariants().expect("invariants");
    ledger.registry().check_invariants().expect("registry invariants");
}
