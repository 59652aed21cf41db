//! What `ets serve --demo` adds to the database `ets demo` made: users for every role (one
//! password, printed at start-up), a second representative for one account so that four-eyes
//! transfers can be tried, a trusted-list entry on its way, and an open trading day whose
//! session the server's uptime walks through (`ExchangeTime::Session`).

use crate::{Clock, ExchangeTime};
use ets_access::{AccountRef, Actor, Command as A, ControlRules, Envelope, Role, Secret};
use ets_core::{Date, Timestamp};
use ets_exchange::auction::Undersubscribed;
use ets_exchange::venue::{Command as X, Envelope as XEnvelope};
use ets_store::{AccessLog, ExchangeLog, Ledger, LedgerOptions, Location, StoreError};
use rand::RngCore;

/// The demo users' password (the demo is for trying things out; never for real data).
pub const DEMO_PASSWORD: &str = "ets-demo-password";

/// One demo user and what it is for.
#[derive(Clone, Debug)]
pub struct DemoUser {
    pub user: String,
    pub roles: Vec<Role>,
    pub purpose: String,
}

#[derive(Clone, Debug)]
pub struct DemoSetup {
    pub users: Vec<DemoUser>,
    /// The account with two representatives, and its counterparty.
    pub account: String,
    pub counterparty: String,
    pub exchange_time: ExchangeTime,
}

fn salt() -> [u8; 16] {
    let mut buf = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    buf
}

/// A throw-away session secret for the set-up's own sessions (logged out at once).
fn secret() -> Secret {
    let mut buf = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    Secret::new(buf.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

fn run(log: &mut AccessLog, at: Timestamp, actor: Actor, command: A) -> Result<(), StoreError> {
    let envelope = Envelope { at, origin: "demo".into(), actor, command };
    match log.execute(&envelope)? {
        Ok(_) => Ok(()),
        Err(refusal) => Err(StoreError::Conflict(format!("demo set-up refused: {}", refusal.rejection.message))),
    }
}

/// Adds the demo's users and controls to `location` (made by `ets demo`) and opens the next
/// trading day. Idempotent in effect: a database set up before is left as it is, but for the
/// demo users it lacks (added by a later version), which are created.
pub fn prepare(location: &Location, rules: &ControlRules, clock: &Clock) -> Result<DemoSetup, StoreError> {
    let now = clock.now();
    let mut ledger = Ledger::open(location, LedgerOptions::default())?;
    let mut exchange = ExchangeLog::open(location.open()?)?;
    let venue = exchange.venue().ok_or_else(|| StoreError::Conflict("the demo database has no exchange: run `ets demo` first".into()))?;
    // The two biggest national-market members: the first gets a second (approving) representative.
    let cea = venue
        .instrument_codes()
        .into_iter()
        .find(|c| venue.spec(c).is_some_and(|s| s.market == "CN"))
        .ok_or_else(|| StoreError::Conflict("the demo exchange lists no national-market instrument".into()))?;
    let members = venue.members();
    let mut cn_members: Vec<(String, String)> =
        members.iter().filter_map(|m| venue.member_account(m, "CN").map(|a| (m.clone(), a))).collect();
    cn_members.sort();
    let [(member_a, account_a), (member_b, account_b), ..] = cn_members.as_slice() else {
        return Err(StoreError::Conflict("the demo exchange has fewer than two national-market members".into()));
    };
    let (member_a, account_a, member_b, account_b) = (member_a.clone(), account_a.clone(), member_b.clone(), account_b.clone());
    let pilot_authority = ledger.registry().markets().get(1).map(|m| m.spec.code.clone()).unwrap_or_else(|| "BJ".into());

    let users = vec![
        DemoUser {
            user: "admin".into(),
            roles: vec![Role::RegistryAdmin],
            purpose: "registry administrator: users, accounts, everything in the registry".into(),
        },
        DemoUser { user: "auditor".into(), roles: vec![Role::Auditor], purpose: "reads everything, changes nothing".into() },
        DemoUser {
            user: "regulator-cn".into(),
            roles: vec![Role::MarketAuthority { market: "CN".into() }],
            purpose: "the national market's authority".into(),
        },
        DemoUser {
            user: format!("regulator-{}", pilot_authority.to_lowercase()),
            roles: vec![Role::MarketAuthority { market: pilot_authority.clone() }],
            purpose: format!("the {pilot_authority} pilot's authority (sees nothing of the national market's accounts)"),
        },
        DemoUser { user: "verifier".into(), roles: vec![Role::Verifier], purpose: "an accredited MRV verifier".into() },
        DemoUser {
            user: member_a.clone(),
            roles: vec![Role::AccountRepresentative { account: account_a.clone() }, Role::ExchangeMember { member: member_a.clone() }],
            purpose: format!("representative of {account_a} and exchange member: proposes transfers, trades {cea}"),
        },
        DemoUser {
            user: format!("{member_a}-approver"),
            roles: vec![Role::ApprovingRepresentative { account: account_a.clone() }],
            purpose: format!("{account_a}'s approving representative: the second pair of eyes"),
        },
        DemoUser {
            user: member_b.clone(),
            roles: vec![Role::AccountRepresentative { account: account_b.clone() }, Role::ExchangeMember { member: member_b.clone() }],
            purpose: format!("representative of {account_b} and exchange member"),
        },
        DemoUser {
            user: "exchange-operator".into(),
            roles: vec![Role::ExchangeOperator],
            purpose: "the exchange's operator: opens and closes (settles) the trading day, admits members, their cash, listings".into(),
        },
        DemoUser {
            user: "finance-operator".into(),
            roles: vec![Role::FinanceOperator],
            purpose: "the finance desk's and the inclusion register's operator: parties, cash, pledges, repos, marks, contracts, end of day; aggregators and verifiers".into(),
        },
    ];

    let mut access = AccessLog::open(location.open()?, rules.clone())?;
    let fresh = access.access().identity().user("admin").is_none();
    if fresh {
        run(&mut access, now, Actor::System, A::Bootstrap { user: "admin".into(), password: Secret::new(DEMO_PASSWORD), salt: salt() })?;
    }
    // Every demo user not there yet (a database set up by an earlier version lacks the newer
    // roles' users), created by the administrator's own session, as a person would.
    let missing: Vec<&DemoUser> = users.iter().skip(1).filter(|u| access.access().identity().user(&u.user).is_none()).collect();
    if !missing.is_empty() {
        let session = format!("s-demo-setup-{}", now.0);
        run(
            &mut access,
            now,
            Actor::Anonymous,
            A::Login { user: "admin".into(), password: Secret::new(DEMO_PASSWORD), session: session.clone(), secret: secret() },
        )?;
        let admin = Actor::Session(session.clone());
        for u in missing {
            run(
                &mut access,
                now,
                admin.clone(),
                A::CreateUser { user: u.user.clone(), roles: u.roles.clone(), password: Secret::new(DEMO_PASSWORD), salt: salt() },
            )?;
        }
        run(&mut access, now, admin, A::Logout { session })?;
    }
    if fresh {
        // A trusted-list addition on its way: proposed and approved now, effective after the
        // working-day delay.
        let login = |access: &mut AccessLog, user: &str, session: &str| {
            run(
                access,
                now,
                Actor::Anonymous,
                A::Login { user: user.into(), password: Secret::new(DEMO_PASSWORD), session: session.into(), secret: secret() },
            )
        };
        login(&mut access, &member_a, "s-demo-a")?;
        login(&mut access, &format!("{member_a}-approver"), "s-demo-b")?;
        let proposal = format!("tal-demo-{}", now.0);
        run(
            &mut access,
            now,
            Actor::Session("s-demo-a".into()),
            A::ProposeTrusted {
                proposal: proposal.clone(),
                account: AccountRef::new(&account_a, "CN"),
                trusted: AccountRef::new(&account_b, "CN"),
            },
        )?;
        run(&mut access, now, Actor::Session("s-demo-b".into()), A::ApproveTrusted { proposal })?;
        for s in ["s-demo-a", "s-demo-b"] {
            run(&mut access, now, Actor::Session(s.into()), A::Logout { session: s.into() })?;
        }
    }

    // An open trading day for the live demo market.
    let venue = exchange.venue().expect("checked");
    let offset_ms = venue.spec(&cea).map_or(480, |s| s.utc_offset_minutes) as i64 * 60_000;
    let day = match venue.day() {
        Some(day) => day,
        None => {
            let last = venue.bars(&cea).last().map_or(now.date(), |b| b.date);
            let mut day = last.plus_days(1);
            while !venue.is_trading_day(day) {
                day = day.plus_days(1);
            }
            let operator = venue.operator().to_string();
            let open = XEnvelope {
                id: format!("serve-open-{day}"),
                actor: operator,
                at_ms: day.start().0 + 9 * 3_600_000 - offset_ms,
                command: X::OpenDay { date: day },
            };
            for r in exchange.submit_batch(&[open], &mut ledger)? {
                r.map_err(|e| StoreError::Conflict(format!("opening the demo trading day: {}", e.message)))?;
            }
            day
        }
    };
    let exchange_time = ExchangeTime::Session { start_ms: session_start(day, offset_ms), length_ms: 110 * 60_000, started_at: now, day };
    primary_auction(&mut exchange, &mut ledger, &cea, &member_a, &member_b, session_start(day, offset_ms), now)?;
    mrv_queues(location, now)?;
    Ok(DemoSetup { users, account: account_a, counterparty: account_b, exchange_time })
}

/// 09:31 local time on `day`: inside the continuous morning session.
fn session_start(day: Date, offset_ms: i64) -> i64 {
    day.start().0 + (9 * 60 + 31) * 60_000 - offset_ms
}

/// The demo's primary auctions, set up once on the open day: the national authority issues
/// 300,000 t into its reserve, which the exchange's `cn-reserve` member offers. The first
/// auction (200,000 t, reserve price 90% of the last close) runs its whole course: the volume
/// set aside in an escrow for the clearing account, the two demo members bid themselves around
/// the close, the operator clears it. The second (100,000 t) stays open for bids, so a demo
/// member can bid through the API or the dashboard and the authority can clear it.
fn primary_auction(
    exchange: &mut ExchangeLog,
    ledger: &mut Ledger,
    cea: &str,
    member_a: &str,
    member_b: &str,
    at_ms: i64,
    now: Timestamp,
) -> Result<(), StoreError> {
    const VOLUMES: [u64; 2] = [200_000, 100_000];
    let venue = exchange.venue().expect("checked");
    if venue.auctions().next().is_some() || venue.open_auctions().next().is_some() {
        return Ok(());
    }
    let spec = venue.spec(cea).expect("listed").clone();
    let close = venue.previous_close(cea).unwrap_or(spec.reference_price);
    let operator = venue.operator().to_string();
    let clearing =
        venue.clearing_account(&spec.market).ok_or_else(|| StoreError::Conflict(format!("no clearing account for {}", spec.market)))?;
    let r = ledger.registry();
    let market = r.find_market(&spec.market).ok_or_else(|| StoreError::Conflict(format!("no market {}", spec.market)))?;
    let authority = r.market(market).spec.authorities[0].clone();
    let reserve = format!("{}-RESERVE", spec.market);
    // The reserve offers what it holds; topped up from the issuance account's unallocated
    // units, else newly issued (within the cap), when it holds less than the volumes.
    let free = |account: &str| {
        r.find_account(account).zip(r.unit_named(&spec.unit).ok()).and_then(|(a, u)| r.holding(a, u)).map_or(0, |h| h.free_total())
    };
    let total: u64 = VOLUMES.iter().sum();
    let issuance = format!("{}-ISSUANCE", spec.market);
    let mut registry_steps = Vec::new();
    if free(&reserve) < total {
        registry_steps.push(if free(&issuance) >= total {
            ets_registry::Command::Allocate {
                from: issuance,
                to: reserve.clone(),
                unit: spec.unit.clone(),
                quantity: ets_core::Tonnes(total),
            }
        } else {
            ets_registry::Command::Issue { unit: spec.unit.clone(), quantity: ets_core::Tonnes(total), to: Some(reserve.clone()) }
        });
    }
    let auction_ids: Vec<String> = (1..=VOLUMES.len()).map(|n| format!("{}-primary-{n}", spec.market)).collect();
    for (id, volume) in auction_ids.iter().zip(VOLUMES) {
        registry_steps.push(ets_registry::Command::CreatePending {
            pending: format!("auction-{id}"),
            from: reserve.clone(),
            to: clearing.clone(),
            unit: spec.unit.clone(),
            quantity: ets_core::Tonnes(volume),
            purpose: ets_registry::PendingPurpose::Escrow,
        });
    }
    for (i, command) in registry_steps.into_iter().enumerate() {
        let envelope = ets_registry::Envelope { id: format!("demo-auction-registry-{i}"), actor: authority.clone(), command };
        match ledger.submit(now, &envelope) {
            Ok(_) => {}
            Err(ets_store::SubmitError::Rejected(r)) => {
                return Err(StoreError::Conflict(format!("the demo auction's reserve: {}", r.message)))
            }
            Err(ets_store::SubmitError::Store(e)) => return Err(e),
        }
    }
    let open = |id: &String, volume: u64, undersubscribed| X::OpenAuction {
        auction: id.clone(),
        instrument: cea.to_string(),
        seller: "cn-reserve".into(),
        volume,
        rules: ets_exchange::auction::AuctionRules { undersubscribed, ..ets_exchange::auction::AuctionRules::eu(close * 9 / 10) },
        pending: format!("auction-{id}"),
        secondary_reference: None,
        seed: 1,
    };
    let bid = |member: &str, price: i64, qty: u64| {
        (member.to_string(), X::AuctionBid { auction: auction_ids[0].clone(), member: member.to_string(), price, qty })
    };
    let mut steps: Vec<(String, X)> = vec![
        (
            operator.clone(),
            X::AddMember { member: "cn-reserve".into(), accounts: std::collections::BTreeMap::from([(spec.market.clone(), reserve)]) },
        ),
        // Cash lodged with the exchange: the bids' guarantees.
        (operator.clone(), X::Deposit { member: member_a.to_string(), amount_fen: 200_000 * (close + 150) }),
        (operator.clone(), X::Deposit { member: member_b.to_string(), amount_fen: 200_000 * (close + 150) }),
        (operator.clone(), open(&auction_ids[0], VOLUMES[0], Undersubscribed::Cancel)),
        bid(member_a, close + 150, 60_000),
        bid(member_b, close + 100, 50_000),
        bid(member_a, close, 70_000),
        bid(member_b, close - 200, 80_000),
        bid(member_a, close - 400, 40_000),
        (operator.clone(), X::ClearAuction { auction: auction_ids[0].clone() }),
        // The second sells what is bid if bids fall short (the WCI rule), at the reserve price.
        (operator.clone(), open(&auction_ids[1], VOLUMES[1], Undersubscribed::SellWhatIsBid)),
    ];
    let envelopes: Vec<XEnvelope> = steps
        .drain(..)
        .enumerate()
        .map(|(i, (actor, command))| XEnvelope { id: format!("demo-auction-{i}"), actor, at_ms, command })
        .collect();
    for r in exchange.submit_batch(&envelopes, ledger)? {
        r.map_err(|e| StoreError::Conflict(format!("the demo auction: {}", e.message)))?;
    }
    Ok(())
}

/// Work waiting in the MRV queues, and the demo's users as MRV persons: `regulator-cn` an
/// official, `verifier` the auditor of a verification body `VER-DEMO`; two national entities
/// whose 2025 data carries a planted anomaly file their annual reports and engage `VER-DEMO`,
/// so the verifier's queue holds them (an opinion, then the authority's acceptance, go through
/// `POST /api/v1/mrv/commands`). Run once: skipped when `regulator-cn` is already an official.
fn mrv_queues(location: &Location, now: Timestamp) -> Result<(), StoreError> {
    use ets_mrv::state::Command as M;
    let factors = ets_mrv::FactorSet::builtin().map_err(|e| StoreError::Corrupt(format!("built-in MRV factors: {e}")))?;
    let mut mrv = ets_store::MrvLog::open(location.open()?, factors, ets_mrv::state::MrvParams::default())?;
    let state = mrv.state();
    let Some(official) = state.officials().iter().next().cloned() else { return Ok(()) };
    if state.officials().contains("regulator-cn") {
        return Ok(());
    }
    // National entities without a report for 2025 (their data carries a planted anomaly).
    let filed: std::collections::BTreeSet<&str> = state.workflow().reports().map(|r| r.entity.as_str()).collect();
    let waiting: Vec<(String, String, i32)> = state
        .entities()
        .filter(|e| e.markets.contains("CN") && !filed.contains(e.id.as_str()))
        .filter_map(|e| e.representatives.iter().next().map(|rep| (e.id.clone(), rep.clone(), 2025)))
        .take(2)
        .collect();
    let verifier = ets_mrv::verification::Verifier {
        id: "VER-DEMO".into(),
        accredited: true,
        staff: ["verifier".to_string()].into(),
        prepared_for_entities: Default::default(),
        prepared_in_provinces: Default::default(),
    };
    let mut steps: Vec<(String, M)> =
        vec![(official.clone(), M::AddOfficial { person: "regulator-cn".into() }), (official, M::RegisterVerifier { verifier })];
    for (entity, rep, year) in &waiting {
        let report = format!("{entity}-{year}");
        steps.push((rep.clone(), M::SubmitReport { report: report.clone(), entity: entity.clone(), year: *year }));
        steps.push((rep.clone(), M::AssignVerifier { report, verifier: "VER-DEMO".into() }));
    }
    let batch: Vec<ets_store::MrvSubmission> = steps
        .into_iter()
        .enumerate()
        .map(|(i, (actor, command))| ets_store::MrvSubmission { command_id: format!("serve-demo-mrv-{i}"), actor, at: now, command })
        .collect();
    mrv.submit_batch(&batch, &[]).map_err(|(i, e)| StoreError::Conflict(format!("demo MRV step {i:?}: {e}")))?;
    Ok(())
}
