//! The ets server: the JSON API under `/api/v1` (with its OpenAPI document generated from the
//! handlers, and an API explorer that works offline), identity and access with the registry's
//! security controls, and the server-rendered dashboard.
//!
//! The shell around the pure cores: `Platform` holds the registry ledger, the access journal
//! (users, sessions, tokens, four-eyes proposals, trusted lists) and the exchange behind its
//! pipelined writer, and owns the clock. Every write is journaled before it is answered.
//! Reads take a shared lock on the state they show; market data is what the exchange last
//! published after a stored batch.

pub mod api;
mod api_allocation;
mod api_cbam;
mod api_exchange;
mod api_finance;
mod api_finance_commands;
mod api_mrv;
mod api_registry;
mod api_sim;
pub mod auctions;
mod auth;
pub mod compliance;
mod dashboard;
pub mod demo;
mod docs;
mod error;
mod extract;
pub mod listing;
pub mod view;

use ets_access::{ControlRules, Event};
use ets_core::Timestamp;
use ets_store::{AccessLog, ExchangeLog, ExchangeService, Ledger, LedgerOptions, Location, StoreError};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use view::MarketView;

pub use error::{ApiError, ErrorBody};

/// Where the time comes from: the wall clock, or (tests) a clock the caller moves.
#[derive(Clone)]
pub enum Clock {
    System,
    Manual(Arc<AtomicI64>),
}

impl Clock {
    pub fn now(&self) -> Timestamp {
        match self {
            Clock::System => {
                let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock after 1970");
                Timestamp(since.as_millis() as i64)
            }
            Clock::Manual(ms) => Timestamp(ms.load(Ordering::SeqCst)),
        }
    }
}

/// The time the exchange's commands carry. `Live` is the clock. `Session` maps the server's
/// uptime into the open trading day's continuous session (from `start_ms` on `day`, the day
/// open at start-up, at most `length_ms`), so a demo market trades at any hour of the real day;
/// it says so on every page. When the exchange operator closes the day and opens another, the
/// same session time is taken on the new day, so the walk never points at a closed day.
#[derive(Clone, Copy, Debug)]
pub enum ExchangeTime {
    Live,
    Session { start_ms: i64, length_ms: i64, started_at: Timestamp, day: ets_core::Date },
}

impl ExchangeTime {
    /// The time of a listed-trading command at `now`, with `open` the venue's open day.
    pub fn at(&self, now: Timestamp, open: Option<ets_core::Date>) -> i64 {
        match *self {
            ExchangeTime::Live => now.0,
            ExchangeTime::Session { start_ms, length_ms, started_at, day } => {
                let shift = open.map_or(0, |d| i64::from(d.0 - day.0) * 86_400_000);
                start_ms + shift + (now.0 - started_at.0).clamp(0, length_ms)
            }
        }
    }

    /// The time of a command that trades in `window` (a block trading session, local minutes
    /// at `utc_offset_minutes`). `Session` walks the uptime through that window on the open
    /// day from a minute after its start, as it walks the continuous session.
    pub fn in_window(
        &self,
        now: Timestamp,
        open: Option<ets_core::Date>,
        window: ets_exchange::venue::Window,
        utc_offset_minutes: i32,
    ) -> i64 {
        match *self {
            ExchangeTime::Live => now.0,
            ExchangeTime::Session { length_ms, started_at, day, .. } => {
                let date = open.unwrap_or(day);
                let from = date.start().0 + (i64::from(window.from_min) - i64::from(utc_offset_minutes)) * 60_000;
                let span = (i64::from(window.to_min) - i64::from(window.from_min)) * 60_000 - 120_000;
                from + 60_000 + (now.0 - started_at.0).clamp(0, length_ms.min(span.max(0)))
            }
        }
    }
}

pub struct Config {
    pub listen: SocketAddr,
    pub location: Location,
    pub rules: ControlRules,
    pub clock: Clock,
    /// How often matured transfers are released (the access `Tick`).
    pub tick_every: std::time::Duration,
}

pub struct Platform {
    pub registry: Arc<Mutex<Ledger>>,
    pub access: Mutex<AccessLog>,
    /// The MRV register (entities, monthly data, reports and their verification).
    pub mrv: Mutex<ets_store::MrvLog>,
    /// The finance journal: the desk (pledges, repos, futures) and the carbon-inclusion
    /// register (read and written by the finance API; locked before MRV and the registry).
    pub finance: Mutex<ets_store::FinanceLog>,
    pub exchange: Option<ExchangeService>,
    pub market: Arc<RwLock<Arc<MarketView>>>,
    pub clock: Clock,
    pub exchange_time: ExchangeTime,
    /// The exchange's operator actor name (for cancels on behalf of the venue, reports).
    pub operator: Option<String>,
    /// Which rulebook governs each market, the offset projects compliance knows and the price
    /// fines are computed at (`with_compliance`; default: the shipped rulebooks, no projects).
    pub compliance: ets_compliance::Setup,
    last_order_id: AtomicU64,
    sequence: AtomicU64,
}

impl Platform {
    /// Opens the registry, the access journal and the exchange journal at `location`.
    pub fn open(location: &Location, rules: ControlRules, clock: Clock, exchange_time: ExchangeTime) -> Result<Platform, StoreError> {
        let mut ledger = Ledger::open(location, LedgerOptions::default())?;
        let access = AccessLog::open(location.open()?, rules)?;
        let factors = ets_mrv::FactorSet::builtin().map_err(|e| StoreError::Corrupt(format!("built-in MRV factors: {e}")))?;
        let mrv = ets_store::MrvLog::open(location.open()?, factors, ets_mrv::state::MrvParams::default())?;
        let mut finance = ets_store::FinanceLog::open(location.open()?)?;
        let mut log = ExchangeLog::open(location.open()?)?;
        // Anything the exchange journal implies that the registry lacks (a crash between the
        // two writes) is carried out before the first request.
        if log.venue().is_some() {
            log.reconcile(&mut ledger, clock.now())?;
        }
        // The same for the finance journal: registry instructions of journaled desk and
        // inclusion commands that an interruption left undone.
        finance.reconcile(&mut ledger, clock.now())?;
        let market = Arc::new(RwLock::new(Arc::new(log.venue().map(|v| MarketView::of(v, None)).unwrap_or_default())));
        let operator = log.venue().map(|v| v.operator().to_string());
        let platform = Platform {
            registry: Arc::new(Mutex::new(ledger)),
            access: Mutex::new(access),
            mrv: Mutex::new(mrv),
            finance: Mutex::new(finance),
            exchange: None,
            market,
            clock,
            exchange_time,
            operator,
            compliance: ets_compliance::Setup::default(),
            last_order_id: AtomicU64::new(0),
            sequence: AtomicU64::new(0),
        };
        let platform = platform.with_exchange(log);
        platform.reconcile_releases().map_err(|e| StoreError::Io(e.message))?;
        platform.reconcile_auction_escrows().map_err(|e| StoreError::Io(e.message))?;
        Ok(platform)
    }

    /// The compliance set-up the server assesses under.
    pub fn with_compliance(mut self, setup: ets_compliance::Setup) -> Platform {
        self.compliance = setup;
        self
    }

    fn with_exchange(mut self, log: ExchangeLog) -> Platform {
        if log.venue().is_none() {
            return self;
        }
        let market = self.market.clone();
        let publish: ets_store::Publisher = Box::new(move |venue| {
            let view = Arc::new(MarketView::of(venue, Some(&market.read().expect("market view").clone())));
            let market = market.clone();
            Box::new(move || *market.write().expect("market view") = view)
        });
        // Settlement goes into the same registry the API reads, under its lock.
        let registry = self.registry.clone();
        let carry_out: ets_store::CarryOut = Box::new(move |at, instructions| {
            if instructions.is_empty() {
                return Ok(());
            }
            ets_store::submit_instructions(&mut registry.lock().expect("registry lock"), at, instructions)
        });
        self.exchange = Some(ExchangeService::start_publishing(log, carry_out, ets_store::EXCHANGE_BATCH_MAX, Some(publish)));
        self
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Where each member's and the clearing house's units are, per market, and what each
    /// instrument trades, as the exchange last published (members admitted and instruments
    /// listed since start-up included).
    pub fn directory(&self) -> Arc<VenueDirectory> {
        self.market.read().expect("market view").desk.directory.clone()
    }

    /// The time a listed-trading command carries now (see `ExchangeTime`).
    pub fn exchange_now(&self) -> i64 {
        let open = self.market.read().expect("market view").desk.open_day;
        self.exchange_time.at(self.now(), open)
    }

    /// The time a block-trading command in `instrument` carries now: in `Session` time, inside
    /// the instrument's first block session of the open day; live, the clock.
    pub fn exchange_block_now(&self, instrument: &str) -> i64 {
        let view = self.market.read().expect("market view").clone();
        let window = view.desk.specs.get(instrument).and_then(|s| s.block.first().map(|w| (*w, s.utc_offset_minutes)));
        match window {
            Some((w, offset)) => self.exchange_time.in_window(self.now(), view.desk.open_day, w, offset),
            None => self.exchange_time.at(self.now(), view.desk.open_day),
        }
    }

    /// A fresh order id: above every id handed out before, in this run or an earlier one
    /// (time-based, 1,024 per millisecond).
    pub fn next_order_id(&self) -> u64 {
        let floor = (self.now().0.max(0) as u64) << 10;
        let mut last = self.last_order_id.load(Ordering::SeqCst);
        loop {
            let next = floor.max(last + 1);
            match self.last_order_id.compare_exchange(last, next, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => return next,
                Err(seen) => last = seen,
            }
        }
    }

    /// A unique command id with a prefix, for the journals' idempotency keys.
    pub fn command_id(&self, prefix: &str) -> String {
        format!("{prefix}-{}-{}", self.now().0, self.sequence.fetch_add(1, Ordering::SeqCst))
    }

    /// Releases matured transfers: the access `Tick`, then each released transfer into the
    /// registry.
    pub fn tick(&self) -> Result<Vec<String>, ApiError> {
        let now = self.now();
        let record = {
            let mut access = self.access.lock().expect("access lock");
            if access.access().due(now).is_empty() {
                return Ok(Vec::new());
            }
            let envelope = ets_access::Envelope {
                at: now,
                origin: "server".into(),
                actor: ets_access::Actor::System,
                command: ets_access::Command::Tick,
            };
            match access.execute(&envelope)? {
                Ok(record) => record,
                Err(refusal) => return Err(refusal.rejection.into()),
            }
        };
        self.carry_out_releases(&record)
    }

    /// Carries out in the registry what an access record decided about transfer proposals:
    /// a released transfer posts its hold (the units set aside when it was proposed); a
    /// rejected, cancelled or terminated one voids it. Registry ids derive from the proposal,
    /// so a retry or a `reconcile_releases` after a crash cannot move units twice.
    pub fn carry_out_releases(&self, record: &ets_access::Record) -> Result<Vec<String>, ApiError> {
        let mut released = Vec::new();
        for event in &record.events {
            match event {
                Event::TransferReleased { proposal, .. } if self.settle_hold(proposal, record.at, true)? => released.push(proposal.clone()),
                Event::TransferReleased { .. } => {}
                Event::TransferRejected { proposal, .. }
                | Event::TransferCancelled { proposal, .. }
                | Event::TransferTerminated { proposal, .. } => {
                    self.settle_hold(proposal, record.at, false)?;
                }
                _ => {}
            }
        }
        Ok(released)
    }

    /// Posts (`release`) or voids the registry hold of a proposal. False if the registry
    /// refused (logged): the proposal's units were not where the hold put them.
    fn settle_hold(&self, proposal: &str, at: Timestamp, release: bool) -> Result<bool, ApiError> {
        let Some(p) = self.access.lock().expect("access lock").access().controls().transfer(proposal).cloned() else {
            return Ok(false);
        };
        let pending = hold_id(proposal);
        let envelope = if release {
            ets_registry::Envelope {
                id: format!("transfer-{proposal}"),
                actor: p.initiator.clone(),
                command: ets_registry::Command::PostPending { pending },
            }
        } else {
            ets_registry::Envelope {
                id: format!("void-{proposal}"),
                actor: p.initiator.clone(),
                command: ets_registry::Command::VoidPending { pending },
            }
        };
        match self.registry.lock().expect("registry lock").submit(at, &envelope) {
            Ok(_) => Ok(true),
            Err(ets_store::SubmitError::Rejected(r)) => {
                eprintln!(
                    "ets serve: the registry refused {} of transfer {proposal}: {}",
                    if release { "the release" } else { "the void" },
                    r.message
                );
                Ok(false)
            }
            Err(ets_store::SubmitError::Store(e)) => Err(e.into()),
        }
    }

    /// Sets aside the units of a transfer proposal in the registry (an `Approval` pending from
    /// the source to the destination, still owned by the source, not movable) before the
    /// proposal is journaled, so an approved transfer cannot fail for want of units.
    pub fn hold_for_proposal(
        &self,
        proposal: &str,
        initiator: &str,
        from: &str,
        to: &str,
        unit: &ets_registry::UnitRef,
        quantity: ets_core::Tonnes,
    ) -> Result<(), ApiError> {
        let envelope = ets_registry::Envelope {
            id: format!("hold-{proposal}"),
            actor: initiator.to_string(),
            command: ets_registry::Command::CreatePending {
                pending: hold_id(proposal),
                from: from.to_string(),
                to: to.to_string(),
                unit: unit.clone(),
                quantity,
                purpose: ets_registry::PendingPurpose::Approval,
            },
        };
        match self.registry.lock().expect("registry lock").submit(self.now(), &envelope) {
            Ok(_) => Ok(()),
            Err(ets_store::SubmitError::Rejected(r)) => Err(r.into()),
            Err(ets_store::SubmitError::Store(e)) => Err(e.into()),
        }
    }

    /// Voids a hold whose proposal was refused (nothing else refers to it).
    pub fn drop_hold(&self, proposal: &str, initiator: &str) -> Result<(), ApiError> {
        let envelope = ets_registry::Envelope {
            id: format!("void-{proposal}"),
            actor: initiator.to_string(),
            command: ets_registry::Command::VoidPending { pending: hold_id(proposal) },
        };
        match self.registry.lock().expect("registry lock").submit(self.now(), &envelope) {
            Ok(_) => Ok(()),
            Err(ets_store::SubmitError::Rejected(r)) => {
                Err(ApiError::internal(format!("voiding the hold of refused proposal {proposal}: {}", r.message)))
            }
            Err(ets_store::SubmitError::Store(e)) => Err(e.into()),
        }
    }

    /// Carries out what the access journal decided and the registry has not recorded (a crash
    /// between the two writes): releases posted, ended proposals' holds voided. Returns how many.
    pub fn reconcile_releases(&self) -> Result<usize, ApiError> {
        let missing: Vec<(String, Timestamp, bool)> = {
            let access = self.access.lock().expect("access lock");
            let ledger = self.registry.lock().expect("registry lock");
            let r = ledger.registry();
            access
                .access()
                .controls()
                .transfers()
                .filter_map(|p| {
                    let held = r.pending(&hold_id(&p.id)).is_some();
                    match &p.status {
                        ets_access::TransferStatus::Released { at } if held => Some((p.id.clone(), *at, true)),
                        ets_access::TransferStatus::Rejected { .. }
                        | ets_access::TransferStatus::Cancelled { .. }
                        | ets_access::TransferStatus::Terminated { .. }
                            if held =>
                        {
                            Some((p.id.clone(), p.proposed_at, false))
                        }
                        _ => None,
                    }
                })
                .collect()
        };
        let mut done = 0;
        for (id, at, release) in missing {
            if self.settle_hold(&id, at.max(self.now()), release)? {
                done += 1;
            }
        }
        Ok(done)
    }
}

impl Platform {
    /// Voids every auction escrow the exchange does not know: units set aside in the registry
    /// (`auction-{id}`, purpose escrow) for an auction whose opening never reached the exchange's
    /// journal (a crash, or a storage failure, between the two writes). An escrow of an auction
    /// that is open, or that has run and whose delivery is still to be carried out, is the
    /// exchange's and stays. Run at start-up, before the first request; returns how many it voided.
    pub fn reconcile_auction_escrows(&self) -> Result<usize, ApiError> {
        let known: std::collections::BTreeSet<String> = {
            let view = self.market.read().expect("market view");
            view.open_auctions.iter().chain(view.auctions.iter()).map(|a| format!("auction-{}", a.auction)).collect()
        };
        let mut ledger = self.registry.lock().expect("registry lock");
        let orphans: Vec<(String, String)> = {
            let r = ledger.registry();
            let mut found: Vec<(String, String)> = r
                .pendings()
                .filter(|(id, p)| p.purpose == ets_registry::PendingPurpose::Escrow && id.starts_with("auction-") && !known.contains(*id))
                .filter_map(|(id, p)| {
                    let market = r.account(p.from).market;
                    r.market(market).spec.authorities.first().map(|a| (id.to_string(), a.clone()))
                })
                .collect();
            found.sort();
            found
        };
        let now = self.now();
        let mut voided = 0;
        for (pending, authority) in orphans {
            // A fresh id (an escrow id may be 64 characters, and an auction id may be used
            // again once its escrow is gone): the void is one command, so once written the
            // escrow is gone and no later start finds it.
            let envelope = ets_registry::Envelope {
                id: self.command_id("escrow-void"),
                actor: authority,
                command: ets_registry::Command::VoidPending { pending: pending.clone() },
            };
            match ledger.submit(now, &envelope) {
                Ok(_) => voided += 1,
                // One escrow the registry will not void must not keep the platform from
                // starting: it is reported, and left for the registry's operator.
                Err(ets_store::SubmitError::Rejected(r)) => {
                    eprintln!("ets serve: could not void the orphaned auction escrow {pending}: {}", r.message)
                }
                Err(ets_store::SubmitError::Store(e)) => return Err(e.into()),
            }
        }
        Ok(voided)
    }
}

/// The registry side of the exchange, as set up: clearing accounts, members' accounts and
/// instruments' units.
#[derive(Clone, Debug, Default)]
pub struct VenueDirectory {
    /// Market → the exchange's clearing account there.
    pub clearing: std::collections::BTreeMap<String, String>,
    /// (member, market) → the member's registry account.
    pub accounts: std::collections::BTreeMap<(String, String), String>,
    /// Instrument → (market, unit).
    pub instruments: std::collections::BTreeMap<String, (String, ets_registry::UnitRef)>,
}

impl VenueDirectory {
    pub(crate) fn of(venue: &ets_exchange::venue::Venue) -> VenueDirectory {
        let mut d = VenueDirectory::default();
        for code in venue.instrument_codes() {
            let spec = venue.spec(&code).expect("listed");
            if let Some(c) = venue.clearing_account(&spec.market) {
                d.clearing.insert(spec.market.clone(), c);
            }
            d.instruments.insert(code.clone(), (spec.market.clone(), spec.unit.clone()));
        }
        let markets: std::collections::BTreeSet<String> = d.instruments.values().map(|(m, _)| m.clone()).collect();
        for member in venue.members() {
            for market in &markets {
                if let Some(a) = venue.member_account(&member, market) {
                    d.accounts.insert((member.clone(), market.clone()), a);
                }
            }
        }
        d
    }
}

/// The registry pending that holds a proposal's units.
pub fn hold_id(proposal: &str) -> String {
    format!("hold-{proposal}")
}

/// Serves until the process is stopped.
pub async fn serve(platform: Arc<Platform>, listen: SocketAddr, tick_every: std::time::Duration) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let ticker = platform.clone();
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(tick_every);
        loop {
            interval.tick().await;
            let p = ticker.clone();
            if let Ok(Err(e)) = tokio::task::spawn_blocking(move || p.tick()).await {
                eprintln!("ets serve: releasing transfers failed: {}", e.message);
            }
        }
    });
    let app = api::router(platform);
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await
}
