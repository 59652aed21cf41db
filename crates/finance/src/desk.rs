//! The finance desk: parties with a cash ledger, pledges, repos and futures contracts, as one
//! deterministic state machine (see the crate documentation for the design).

use ets_core::Date;
use ets_exchange::book::{Command as BookCommand, Event as BookEvent, OrderBook};
pub use ets_exchange::{Side, Tif};
use ets_registry::{Command as RegistryCommand, PendingPurpose, Registry, UnitRef};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Basis points in one.
pub const BP: i128 = 10_000;

/// Read-only view of registry holdings: the units `account` holds freely (not pending, not
/// frozen) of `unit`. The shell passes the registry after applying every instruction the desk
/// emitted before.
pub trait Holdings {
    fn free(&self, account: &str, unit: &UnitRef) -> u64;
}

impl Holdings for Registry {
    fn free(&self, account: &str, unit: &UnitRef) -> u64 {
        let Some(a) = self.find_account(account) else { return 0 };
        let Ok(u) = self.unit_named(unit) else { return 0 };
        self.holding(a, u).map_or(0, |h| h.free_total())
    }
}

/// A fixed table of free holdings keyed by (account, unit text), for tests and benches.
impl Holdings for BTreeMap<(String, String), u64> {
    fn free(&self, account: &str, unit: &UnitRef) -> u64 {
        self.get(&(account.to_string(), unit.to_string())).copied().unwrap_or(0)
    }
}

/// How a futures/forward contract settles at expiry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Settlement {
    /// Shorts deliver the contracted units into the longs' registry accounts against the final
    /// settlement price.
    Physical,
    /// Nothing but the final variation margin moves.
    Cash,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContractSpec {
    /// e.g. `CEA-2025-F2512`.
    pub code: String,
    pub unit: UnitRef,
    /// Tonnes per contract.
    pub size_t: u64,
    /// Last trading day; the contract expires (delivers or settles) at its end of day.
    pub expiry: Date,
    pub settlement: Settlement,
    /// Initial margin per contract held, fen.
    pub initial_margin_fen: i64,
    /// Most contracts a party may hold long or short.
    pub position_limit: u64,
    /// Settlement price before the first daily settlement, fen per tonne.
    pub reference_price_fen: i64,
    /// Physical delivery failure: the defaulting side pays this share of the delivery value.
    pub delivery_penalty_bp: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// A party and its registry account (the party's name is the account's representative).
    AddParty {
        party: String,
        account: String,
    },
    Deposit {
        party: String,
        amount_fen: i64,
    },
    Withdraw {
        party: String,
        amount_fen: i64,
    },
    /// The borrower pledges `quantity` units to the lender as collateral for a loan of
    /// `loan_fen`, paid at once from the lender's cash to the borrower's.
    Pledge {
        pledge: String,
        lender: String,
        borrower: String,
        unit: UnitRef,
        quantity: u64,
        loan_fen: i64,
        /// Valuation haircut.
        haircut_bp: u32,
        /// The haircut collateral value must stay at least this share of the outstanding loan.
        maintenance_bp: u32,
        /// Days after a margin call to top up or repay.
        topup_days: u16,
        /// The loan falls due at the end of this day.
        maturity: Date,
    },
    /// More units pledged (another pending transfer).
    TopUp {
        pledge: String,
        quantity: u64,
    },
    /// Cash repayment of part or all of the outstanding loan; full repayment releases the units.
    Repay {
        pledge: String,
        amount_fen: i64,
    },
    /// The day's closing price of a unit: values every pledge of it.
    Mark {
        unit: UnitRef,
        close_fen: i64,
    },
    /// A sale of units now for `start_fen` with the agreed repurchase at `repurchase_fen` on
    /// `repurchase_date`.
    Repo {
        repo: String,
        seller: String,
        buyer: String,
        unit: UnitRef,
        quantity: u64,
        start_fen: i64,
        repurchase_fen: i64,
        repurchase_date: Date,
        /// If the second leg fails, the defaulting side pays this share of `repurchase_fen`.
        penalty_bp: u32,
    },
    ListContract(ContractSpec),
    /// A bilateral (or exchange-reported) trade of `contracts` at `price_fen` per tonne.
    Trade {
        contract: String,
        buyer: String,
        seller: String,
        contracts: u64,
        price_fen: i64,
    },
    /// A limit order on the contract's order book (price-time priority, self-trade prevention,
    /// GTC/IOC/FOK; the exchange's matching core). Pre-trade: the position limit counts the
    /// party's working orders on the same side; cash is reserved for the initial margin and the
    /// worst price difference to the last settlement price.
    PlaceOrder {
        contract: String,
        order: u64,
        party: String,
        side: Side,
        price_fen: i64,
        contracts: u64,
        tif: Tif,
    },
    CancelOrder {
        order: u64,
    },
    /// The day's settlement price: variation margin on every open position.
    SettlePrice {
        contract: String,
        price_fen: i64,
    },
    /// Processes what falls due at the end of the envelope's date: margin-call deadlines and
    /// maturities of pledges, second legs of repos, futures expiry.
    EndOfDay,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub id: String,
    pub actor: String,
    /// The business date; never earlier than the previous accepted envelope's.
    pub date: Date,
    pub command: Command,
}

/// A registry command the desk needs carried out, with its deterministic id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instruction {
    pub id: String,
    pub actor: String,
    pub command: RegistryCommand,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EnforceReason {
    MarginCallUnmet,
    UnpaidAtMaturity,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    PartyAdded {
        party: String,
    },
    Cash {
        party: String,
        delta_fen: i64,
        balance_fen: i64,
    },
    PledgeRegistered {
        pledge: String,
        quantity: u64,
        loan_fen: i64,
    },
    PledgeToppedUp {
        pledge: String,
        quantity: u64,
        total: u64,
    },
    Valued {
        pledge: String,
        value_fen: i64,
        required_fen: i64,
    },
    MarginCall {
        pledge: String,
        deadline: Date,
    },
    CallCleared {
        pledge: String,
    },
    Repaid {
        pledge: String,
        amount_fen: i64,
        outstanding_fen: i64,
    },
    PledgeReleased {
        pledge: String,
        quantity: u64,
    },
    PledgeEnforced {
        pledge: String,
        quantity: u64,
        lender: String,
        reason: EnforceReason,
    },
    RepoOpened {
        repo: String,
    },
    RepoSettled {
        repo: String,
    },
    /// The second leg failed; the non-defaulting side keeps its first-leg asset and receives the
    /// penalty.
    RepoFailed {
        repo: String,
        defaulters: Vec<String>,
        penalty_fen: i64,
    },
    ContractListed {
        contract: String,
    },
    Traded {
        contract: String,
        buyer: String,
        seller: String,
        contracts: u64,
        price_fen: i64,
    },
    OrderAccepted {
        order: u64,
    },
    OrderRested {
        order: u64,
        contracts: u64,
    },
    /// The order left the book: filled, or `cancelled` contracts taken off.
    OrderDone {
        order: u64,
        cancelled: u64,
    },
    VariationMargin {
        contract: String,
        party: String,
        fen: i64,
    },
    /// Cash below the initial margin held (after variation margin).
    MarginShortfall {
        party: String,
        balance_fen: i64,
        required_fen: i64,
    },
    SettlementPrice {
        contract: String,
        price_fen: i64,
        open_interest: u64,
    },
    Delivered {
        contract: String,
        short: String,
        long: String,
        tonnes: u64,
        cash_fen: i64,
    },
    DeliveryFailed {
        contract: String,
        short: String,
        long: String,
        tonnes: u64,
        defaulters: Vec<String>,
        penalty_fen: i64,
    },
    ContractExpired {
        contract: String,
        settlement: Settlement,
        price_fen: i64,
    },
}

/// Why the desk refused a command. Nothing changed.
pub type Reject = ets_core::Rejection<RejectKind>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectKind {
    NotFound,
    Forbidden,
    Invalid,
    /// A product rule: position limit, maintenance level, expiry.
    Rule,
    /// Not enough cash or free units.
    Insufficient,
    Conflict,
}

fn no<T>(kind: RejectKind, message: impl Into<String>) -> Result<T, Reject> {
    Err(Reject { kind, message: message.into() })
}

/// What an accepted command did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub events: Vec<Event>,
    pub instructions: Vec<Instruction>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Party {
    pub name: String,
    pub account: String,
    pub balance_fen: i64,
    /// Initial margin held on open futures positions (part of the balance).
    pub margin_fen: i64,
    /// Cash reserved for working futures orders (part of the balance).
    pub reserved_fen: i64,
}

impl Party {
    pub fn available(&self) -> i64 {
        self.balance_fen - self.margin_fen - self.reserved_fen
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PledgeStatus {
    Active,
    Released,
    Enforced,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PledgeState {
    pub lender: usize,
    pub borrower: usize,
    pub unit: UnitRef,
    /// The registry pending transfers holding the collateral, with their quantities.
    pub pendings: Vec<(String, u64)>,
    pub loan_fen: i64,
    pub outstanding_fen: i64,
    pub haircut_bp: u32,
    pub maintenance_bp: u32,
    pub topup_days: u16,
    pub maturity: Date,
    /// Deadline of the open margin call.
    pub call: Option<Date>,
    pub status: PledgeStatus,
}

impl PledgeState {
    pub fn quantity(&self) -> u64 {
        self.pendings.iter().map(|(_, q)| q).sum()
    }

    /// (haircut value, required value) at `close`, fen.
    fn valuation(&self, close: i64) -> (i128, i128) {
        let value = self.quantity() as i128 * close as i128 * (BP - self.haircut_bp as i128);
        let required = self.outstanding_fen as i128 * self.maintenance_bp as i128;
        (value, required)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RepoStatus {
    Open,
    Settled,
    Failed { defaulters: Vec<String> },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoState {
    pub seller: usize,
    pub buyer: usize,
    pub unit: UnitRef,
    pub quantity: u64,
    pub repurchase_fen: i64,
    pub repurchase_date: Date,
    pub penalty_bp: u32,
    pub status: RepoStatus,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ContractStatus {
    Open,
    Delivered,
    Settled,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContractState {
    pub spec: ContractSpec,
    /// The last settlement price: every open position is marked at it.
    pub last_price_fen: i64,
    /// Net contracts per party index (+ long, − short); no zero entries.
    pub positions: BTreeMap<usize, i64>,
    pub status: ContractStatus,
}

impl ContractState {
    pub fn open_interest(&self) -> u64 {
        self.positions.values().filter(|p| **p > 0).map(|p| *p as u64).sum()
    }
}

/// One contract's line of market data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContractData {
    pub contract: String,
    pub settlement_price_fen: i64,
    pub open_interest: u64,
    pub status: ContractStatus,
}

/// A working futures order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenOrder {
    pub contract: String,
    pub party: usize,
    pub side: Side,
    pub price_fen: i64,
    pub remaining: u64,
    /// Cash reserved per remaining contract.
    pub reserve_each_fen: i64,
}

/// One contract's order book; equal when the resting orders are.
#[derive(Clone, Debug, Default)]
struct Book(OrderBook);

impl PartialEq for Book {
    fn eq(&self, other: &Book) -> bool {
        [Side::Buy, Side::Sell].into_iter().all(|side| self.0.orders(side) == other.0.orders(side))
    }
}

impl Eq for Book {}

/// The desk. `Clone + PartialEq` so that callers can check a refused command changed nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desk {
    operator: String,
    registrar: String,
    today: Option<Date>,
    parties: Vec<Party>,
    party_ix: BTreeMap<String, usize>,
    pledges: BTreeMap<String, PledgeState>,
    repos: BTreeMap<String, RepoState>,
    contracts: BTreeMap<String, ContractState>,
    /// Last closing price per unit (unit text).
    closes: BTreeMap<String, i64>,
    deposits_fen: i64,
    seq: u64,
    books: BTreeMap<String, Book>,
    orders: BTreeMap<u64, OpenOrder>,
    order_ids: BTreeSet<u64>,
    /// Working (buy, sell) contracts per (party, contract).
    working: BTreeMap<(usize, String), (u64, u64)>,
}

/// Largest price (fen per tonne) the desk accepts: ¥1,000,000 a tonne.
pub const MAX_PRICE_FEN: i64 = 100_000_000;
/// Largest notional in tonnes of one futures position (size × position limit), and of a pledge
/// or repo: a billion tonnes. With `MAX_PRICE_FEN` every value stays far inside `i64`.
pub const MAX_TONNES: u64 = 1_000_000_000;

/// Largest id of a pledge, repo or contract (the registry pending id adds a prefix and suffix).
pub const ID_MAX: usize = 40;

fn check_id(what: &str, id: &str) -> Result<(), Reject> {
    ets_core::check_identifier(what, id).or_else(|m| no(RejectKind::Invalid, m))?;
    if id.len() > ID_MAX {
        return no(RejectKind::Invalid, format!("{what} '{id}' is longer than {ID_MAX} characters"));
    }
    Ok(())
}

fn check_price(price: i64) -> Result<(), Reject> {
    if price <= 0 || price > MAX_PRICE_FEN {
        return no(RejectKind::Invalid, format!("a price must be between 1 and {MAX_PRICE_FEN} fen per tonne, not {price}"));
    }
    Ok(())
}

fn narrow(v: i128, what: &str) -> Result<i64, Reject> {
    i64::try_from(v).or_else(|_| no(RejectKind::Invalid, format!("{what} overflows")))
}

/// Units already promised within one command, per (account, unit text).
type Used = BTreeMap<(String, String), u64>;

impl Desk {
    /// `operator` runs the desk (parties, prices, end of day); `registrar` is the actor under
    /// which pledges are released and enforced in the registry (the market authority).
    pub fn new(operator: &str, registrar: &str) -> Desk {
        Desk {
            operator: operator.to_string(),
            registrar: registrar.to_string(),
            today: None,
            parties: Vec::new(),
            party_ix: BTreeMap::new(),
            pledges: BTreeMap::new(),
            repos: BTreeMap::new(),
            contracts: BTreeMap::new(),
            closes: BTreeMap::new(),
            deposits_fen: 0,
            seq: 0,
            books: BTreeMap::new(),
            orders: BTreeMap::new(),
            order_ids: BTreeSet::new(),
            working: BTreeMap::new(),
        }
    }

    pub fn operator(&self) -> &str {
        &self.operator
    }

    /// The registry actor under which pledges are released and enforced.
    pub fn registrar(&self) -> &str {
        &self.registrar
    }

    /// The business date of the last accepted command (later commands may not be earlier).
    pub fn today(&self) -> Option<Date> {
        self.today
    }

    pub fn party(&self, name: &str) -> Option<&Party> {
        self.party_ix.get(name).map(|i| &self.parties[*i])
    }

    pub fn parties(&self) -> &[Party] {
        &self.parties
    }

    pub fn pledge(&self, id: &str) -> Option<&PledgeState> {
        self.pledges.get(id)
    }

    pub fn pledges(&self) -> &BTreeMap<String, PledgeState> {
        &self.pledges
    }

    pub fn repo(&self, id: &str) -> Option<&RepoState> {
        self.repos.get(id)
    }

    pub fn repos(&self) -> &BTreeMap<String, RepoState> {
        &self.repos
    }

    pub fn contract(&self, code: &str) -> Option<&ContractState> {
        self.contracts.get(code)
    }

    pub fn contracts(&self) -> &BTreeMap<String, ContractState> {
        &self.contracts
    }

    pub fn orders(&self) -> &BTreeMap<u64, OpenOrder> {
        &self.orders
    }

    pub fn deposits_fen(&self) -> i64 {
        self.deposits_fen
    }

    pub fn execute(&mut self, env: &Envelope, holdings: &dyn Holdings) -> Result<Outcome, Reject> {
        if let Some(today) = self.today {
            if env.date < today {
                return no(RejectKind::Invalid, format!("date {:?} is before the desk's date {:?}", env.date, today));
            }
        }
        let mut out = Outcome::default();
        self.dispatch(env, holdings, &mut out)?;
        self.today = Some(env.date);
        debug_assert_eq!(self.check_invariants(), Ok(()));
        Ok(out)
    }

    fn require_operator(&self, actor: &str) -> Result<(), Reject> {
        if actor != self.operator {
            return no(RejectKind::Forbidden, format!("{actor} may not do this: only the desk operator {} may", self.operator));
        }
        Ok(())
    }

    fn require_party_or_operator(&self, actor: &str, party: &str) -> Result<(), Reject> {
        if actor != self.operator && actor != party {
            return no(RejectKind::Forbidden, format!("{actor} may not act for {party}"));
        }
        Ok(())
    }

    fn ix(&self, party: &str) -> Result<usize, Reject> {
        self.party_ix.get(party).copied().ok_or_else(|| Reject { kind: RejectKind::NotFound, message: format!("no party '{party}'") })
    }

    fn instruct(&mut self, out: &mut Outcome, actor: &str, command: RegistryCommand) {
        self.seq += 1;
        out.instructions.push(Instruction { id: format!("fin-{}", self.seq), actor: actor.to_string(), command });
    }

    fn cash(&mut self, out: &mut Outcome, party: usize, delta: i64) {
        let p = &mut self.parties[party];
        p.balance_fen += delta;
        out.events.push(Event::Cash { party: p.name.clone(), delta_fen: delta, balance_fen: p.balance_fen });
    }

    fn pay(&mut self, out: &mut Outcome, from: usize, to: usize, amount: i64) {
        if amount != 0 {
            self.cash(out, from, -amount);
            self.cash(out, to, amount);
        }
    }

    fn free_units(&self, holdings: &dyn Holdings, used: &Used, party: usize, unit: &UnitRef) -> u64 {
        let account = &self.parties[party].account;
        let used = used.get(&(account.clone(), unit.to_string())).copied().unwrap_or(0);
        holdings.free(account, unit).saturating_sub(used)
    }

    fn dispatch(&mut self, env: &Envelope, holdings: &dyn Holdings, out: &mut Outcome) -> Result<(), Reject> {
        let actor = env.actor.as_str();
        let date = env.date;
        match &env.command {
            Command::AddParty { party, account } => {
                self.require_operator(actor)?;
                check_id("party", party)?;
                ets_core::check_identifier("account", account).or_else(|m| no(RejectKind::Invalid, m))?;
                if self.party_ix.contains_key(party) {
                    return no(RejectKind::Conflict, format!("party '{party}' exists"));
                }
                self.party_ix.insert(party.clone(), self.parties.len());
                self.parties.push(Party { name: party.clone(), account: account.clone(), balance_fen: 0, margin_fen: 0, reserved_fen: 0 });
                out.events.push(Event::PartyAdded { party: party.clone() });
            }
            Command::Deposit { party, amount_fen } => {
                self.require_operator(actor)?;
                let p = self.ix(party)?;
                if *amount_fen <= 0 {
                    return no(RejectKind::Invalid, "a deposit must be positive");
                }
                self.deposits_fen = self
                    .deposits_fen
                    .checked_add(*amount_fen)
                    .ok_or_else(|| Reject { kind: RejectKind::Invalid, message: "deposits overflow".into() })?;
                self.cash(out, p, *amount_fen);
            }
            Command::Withdraw { party, amount_fen } => {
                self.require_party_or_operator(actor, party)?;
                let p = self.ix(party)?;
                if *amount_fen <= 0 {
                    return no(RejectKind::Invalid, "a withdrawal must be positive");
                }
                if self.parties[p].available() < *amount_fen {
                    return no(
                        RejectKind::Insufficient,
                        format!("{party} has {} fen available, not {amount_fen}", self.parties[p].available()),
                    );
                }
                self.deposits_fen -= amount_fen;
                self.cash(out, p, -amount_fen);
            }
            Command::Pledge { pledge, lender, borrower, unit, quantity, loan_fen, haircut_bp, maintenance_bp, topup_days, maturity } => {
                // A bilateral agreement: the desk operator registers it on both parties' signed
                // application (as a pledge registration institution does).
                self.require_operator(actor)?;
                check_id("pledge", pledge)?;
                if self.pledges.contains_key(pledge) {
                    return no(RejectKind::Conflict, format!("pledge '{pledge}' exists"));
                }
                let (l, b) = (self.ix(lender)?, self.ix(borrower)?);
                if l == b {
                    return no(RejectKind::Invalid, "lender and borrower must differ");
                }
                if *quantity == 0 || *loan_fen <= 0 || *quantity > MAX_TONNES {
                    return no(RejectKind::Invalid, format!("a pledge needs a positive quantity (at most {MAX_TONNES} t) and loan"));
                }
                if *haircut_bp as i128 >= BP || *maintenance_bp == 0 {
                    return no(RejectKind::Invalid, "the haircut must be below 10000 bp and the maintenance level positive");
                }
                if *maturity <= date {
                    return no(RejectKind::Invalid, "the maturity must be after today");
                }
                let free = self.free_units(holdings, &Used::new(), b, unit);
                if free < *quantity {
                    return no(
                        RejectKind::Insufficient,
                        format!("{borrower} holds {free} t of {unit} freely, fewer than the {quantity} t to pledge"),
                    );
                }
                if self.parties[l].available() < *loan_fen {
                    return no(
                        RejectKind::Insufficient,
                        format!("{lender} has {} fen available, not the loan of {loan_fen}", self.parties[l].available()),
                    );
                }
                let pending = format!("pledge:{pledge}:1");
                let state = PledgeState {
                    lender: l,
                    borrower: b,
                    unit: unit.clone(),
                    pendings: vec![(pending.clone(), *quantity)],
                    loan_fen: *loan_fen,
                    outstanding_fen: *loan_fen,
                    haircut_bp: *haircut_bp,
                    maintenance_bp: *maintenance_bp,
                    topup_days: *topup_days,
                    maturity: *maturity,
                    call: None,
                    status: PledgeStatus::Active,
                };
                if let Some(close) = self.closes.get(&unit.to_string()) {
                    let (value, required) = state.valuation(*close);
                    if value < required {
                        return no(
                            RejectKind::Rule,
                            format!("{quantity} t of {unit} at {close} fen with the haircut is below the maintenance level of the loan"),
                        );
                    }
                }
                let (from, to) = (self.parties[b].account.clone(), self.parties[l].account.clone());
                self.instruct(
                    out,
                    borrower,
                    RegistryCommand::CreatePending {
                        pending,
                        from,
                        to,
                        unit: unit.clone(),
                        quantity: ets_core::Tonnes(*quantity),
                        purpose: PendingPurpose::Pledge,
                    },
                );
                self.pay(out, l, b, *loan_fen);
                self.pledges.insert(pledge.clone(), state);
                out.events.push(Event::PledgeRegistered { pledge: pledge.clone(), quantity: *quantity, loan_fen: *loan_fen });
            }
            Command::TopUp { pledge, quantity } => {
                let p = self
                    .pledges
                    .get(pledge)
                    .ok_or_else(|| Reject { kind: RejectKind::NotFound, message: format!("no pledge '{pledge}'") })?;
                let borrower = self.parties[p.borrower].name.clone();
                self.require_party_or_operator(actor, &borrower)?;
                if p.status != PledgeStatus::Active {
                    return no(RejectKind::Rule, format!("pledge '{pledge}' is no longer active"));
                }
                if *quantity == 0 {
                    return no(RejectKind::Invalid, "a top-up needs a positive quantity");
                }
                let free = self.free_units(holdings, &Used::new(), p.borrower, &p.unit);
                if free < *quantity {
                    return no(
                        RejectKind::Insufficient,
                        format!("{borrower} holds {free} t of {} freely, fewer than the {quantity} t to pledge", p.unit),
                    );
                }
                let pending = format!("pledge:{pledge}:{}", p.pendings.len() + 1);
                let (from, to, unit) = (self.parties[p.borrower].account.clone(), self.parties[p.lender].account.clone(), p.unit.clone());
                self.instruct(
                    out,
                    &borrower,
                    RegistryCommand::CreatePending {
                        pending: pending.clone(),
                        from,
                        to,
                        unit,
                        quantity: ets_core::Tonnes(*quantity),
                        purpose: PendingPurpose::Pledge,
                    },
                );
                let p = self.pledges.get_mut(pledge).expect("checked");
                p.pendings.push((pending, *quantity));
                out.events.push(Event::PledgeToppedUp { pledge: pledge.clone(), quantity: *quantity, total: p.quantity() });
                self.revalue(pledge, date, out);
            }
            Command::Repay { pledge, amount_fen } => {
                let p = self
                    .pledges
                    .get(pledge)
                    .ok_or_else(|| Reject { kind: RejectKind::NotFound, message: format!("no pledge '{pledge}'") })?;
                let borrower = self.parties[p.borrower].name.clone();
                self.require_party_or_operator(actor, &borrower)?;
                if p.status != PledgeStatus::Active {
                    return no(RejectKind::Rule, format!("pledge '{pledge}' is no longer active"));
                }
                if *amount_fen <= 0 || *amount_fen > p.outstanding_fen {
                    return no(RejectKind::Invalid, format!("a repayment must be between 1 and the outstanding {} fen", p.outstanding_fen));
                }
                if self.parties[p.borrower].available() < *amount_fen {
                    return no(
                        RejectKind::Insufficient,
                        format!("{borrower} has {} fen available, not {amount_fen}", self.parties[p.borrower].available()),
                    );
                }
                let (b, l) = (p.borrower, p.lender);
                self.pay(out, b, l, *amount_fen);
                let p = self.pledges.get_mut(pledge).expect("checked");
                p.outstanding_fen -= amount_fen;
                let outstanding = p.outstanding_fen;
                out.events.push(Event::Repaid { pledge: pledge.clone(), amount_fen: *amount_fen, outstanding_fen: outstanding });
                if outstanding == 0 {
                    p.status = PledgeStatus::Released;
                    p.call = None;
                    let quantity = p.quantity();
                    let pendings: Vec<String> = p.pendings.iter().map(|(id, _)| id.clone()).collect();
                    let registrar = self.registrar.clone();
                    for pending in pendings {
                        self.instruct(out, &registrar, RegistryCommand::VoidPending { pending });
                    }
                    out.events.push(Event::PledgeReleased { pledge: pledge.clone(), quantity });
                } else {
                    self.revalue(pledge, date, out);
                }
            }
            Command::Mark { unit, close_fen } => {
                self.require_operator(actor)?;
                check_price(*close_fen)?;
                self.closes.insert(unit.to_string(), *close_fen);
                let ids: Vec<String> = self
                    .pledges
                    .iter()
                    .filter(|(_, p)| p.status == PledgeStatus::Active && p.unit == *unit)
                    .map(|(id, _)| id.clone())
                    .collect();
                for id in ids {
                    self.revalue(&id, date, out);
                }
            }
            Command::Repo { repo, seller, buyer, unit, quantity, start_fen, repurchase_fen, repurchase_date, penalty_bp } => {
                // Registered by the operator on both parties' confirmations, like a pledge.
                self.require_operator(actor)?;
                check_id("repo", repo)?;
                if self.repos.contains_key(repo) {
                    return no(RejectKind::Conflict, format!("repo '{repo}' exists"));
                }
                let (s, b) = (self.ix(seller)?, self.ix(buyer)?);
                if s == b {
                    return no(RejectKind::Invalid, "seller and buyer must differ");
                }
                if *quantity == 0 || *quantity > MAX_TONNES || *start_fen <= 0 || *repurchase_fen <= 0 || *penalty_bp as i128 > BP {
                    return no(RejectKind::Invalid, "a repo needs a positive quantity and prices, and a penalty of at most 10000 bp");
                }
                if *repurchase_date <= date {
                    return no(RejectKind::Invalid, "the repurchase date must be after today");
                }
                let free = self.free_units(holdings, &Used::new(), s, unit);
                if free < *quantity {
                    return no(RejectKind::Insufficient, format!("{seller} holds {free} t of {unit} freely (frozen and pending units excluded), fewer than the {quantity} t to sell"));
                }
                if self.parties[b].available() < *start_fen {
                    return no(
                        RejectKind::Insufficient,
                        format!("{buyer} has {} fen available, not {start_fen}", self.parties[b].available()),
                    );
                }
                let (from, to) = (self.parties[s].account.clone(), self.parties[b].account.clone());
                self.instruct(
                    out,
                    seller,
                    RegistryCommand::Transfer { from, to, unit: unit.clone(), quantity: ets_core::Tonnes(*quantity) },
                );
                self.pay(out, b, s, *start_fen);
                self.repos.insert(
                    repo.clone(),
                    RepoState {
                        seller: s,
                        buyer: b,
                        unit: unit.clone(),
                        quantity: *quantity,
                        repurchase_fen: *repurchase_fen,
                        repurchase_date: *repurchase_date,
                        penalty_bp: *penalty_bp,
                        status: RepoStatus::Open,
                    },
                );
                out.events.push(Event::RepoOpened { repo: repo.clone() });
            }
            Command::ListContract(spec) => {
                self.require_operator(actor)?;
                check_id("contract", &spec.code)?;
                if self.contracts.contains_key(&spec.code) {
                    return no(RejectKind::Conflict, format!("contract '{}' exists", spec.code));
                }
                if spec.size_t == 0
                    || spec.initial_margin_fen < 0
                    || spec.position_limit == 0
                    || spec.reference_price_fen <= 0
                    || spec.delivery_penalty_bp as i128 > BP
                {
                    return no(
                        RejectKind::Invalid,
                        "a contract needs a positive size, limit and reference price, a non-negative margin, a penalty of at most 10000 bp",
                    );
                }
                if spec.size_t.checked_mul(spec.position_limit).is_none_or(|t| t > MAX_TONNES)
                    || spec.initial_margin_fen as i128 > MAX_PRICE_FEN as i128 * spec.size_t as i128
                {
                    return no(
                        RejectKind::Invalid,
                        format!("size × position limit must be at most {MAX_TONNES} t, the margin at most the largest price × size"),
                    );
                }
                check_price(spec.reference_price_fen)?;
                if spec.expiry < date {
                    return no(RejectKind::Invalid, "the contract has expired");
                }
                self.contracts.insert(
                    spec.code.clone(),
                    ContractState {
                        spec: spec.clone(),
                        last_price_fen: spec.reference_price_fen,
                        positions: BTreeMap::new(),
                        status: ContractStatus::Open,
                    },
                );
                self.books.insert(spec.code.clone(), Book::default());
                out.events.push(Event::ContractListed { contract: spec.code.clone() });
            }
            Command::Trade { contract, buyer, seller, contracts, price_fen } => {
                self.require_operator(actor)?;
                self.trade(contract, buyer, seller, *contracts, *price_fen, date, out)?;
            }
            Command::PlaceOrder { contract, order, party, side, price_fen, contracts, tif } => {
                self.require_party_or_operator(actor, party)?;
                self.place_order(contract, *order, party, *side, *price_fen, *contracts, *tif, date, out)?;
            }
            Command::CancelOrder { order } => {
                let o = self
                    .orders
                    .get(order)
                    .ok_or_else(|| Reject { kind: RejectKind::NotFound, message: format!("no working order {order}") })?;
                let party = self.parties[o.party].name.clone();
                self.require_party_or_operator(actor, &party)?;
                let contract = o.contract.clone();
                let mut events = Vec::new();
                self.books
                    .get_mut(&contract)
                    .expect("book")
                    .0
                    .execute(&BookCommand::Cancel { id: *order }, &mut events)
                    .expect("working order rests");
                self.book_events(&contract, &events, out);
            }
            Command::SettlePrice { contract, price_fen } => {
                self.require_operator(actor)?;
                let c = self
                    .contracts
                    .get(contract)
                    .ok_or_else(|| Reject { kind: RejectKind::NotFound, message: format!("no contract '{contract}'") })?;
                if c.status != ContractStatus::Open {
                    return no(RejectKind::Rule, format!("contract '{contract}' has expired"));
                }
                check_price(*price_fen)?;
                self.settle_price(contract, *price_fen, out);
            }
            Command::EndOfDay => {
                self.require_operator(actor)?;
                self.end_of_day(date, holdings, out);
            }
        }
        Ok(())
    }

    /// Values an active pledge at its unit's last close; opens or clears the margin call.
    fn revalue(&mut self, id: &str, date: Date, out: &mut Outcome) {
        let p = self.pledges.get_mut(id).expect("pledge");
        let Some(close) = self.closes.get(&p.unit.to_string()) else { return };
        let (value, required) = p.valuation(*close);
        out.events.push(Event::Valued { pledge: id.to_string(), value_fen: (value / BP) as i64, required_fen: (required / BP) as i64 });
        if value < required {
            if p.call.is_none() {
                let deadline = date.plus_days(p.topup_days as i32);
                p.call = Some(deadline);
                out.events.push(Event::MarginCall { pledge: id.to_string(), deadline });
            }
        } else if p.call.take().is_some() {
            out.events.push(Event::CallCleared { pledge: id.to_string() });
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn trade(
        &mut self,
        contract: &str,
        buyer: &str,
        seller: &str,
        n: u64,
        price: i64,
        date: Date,
        out: &mut Outcome,
    ) -> Result<(), Reject> {
        let c = self
            .contracts
            .get(contract)
            .ok_or_else(|| Reject { kind: RejectKind::NotFound, message: format!("no contract '{contract}'") })?;
        let (b, s) = (self.ix(buyer)?, self.ix(seller)?);
        if c.status != ContractStatus::Open || date > c.spec.expiry {
            return no(RejectKind::Rule, format!("contract '{contract}' no longer trades"));
        }
        if b == s || n == 0 {
            return no(RejectKind::Invalid, "a trade needs two different parties and a positive number of contracts");
        }
        check_price(price)?;
        let limit = c.spec.position_limit as i128;
        let n128 = n as i128;
        let size = c.spec.size_t as i128;
        let im = c.spec.initial_margin_fen as i128;
        let old_b = c.positions.get(&b).copied().unwrap_or(0) as i128;
        let old_s = c.positions.get(&s).copied().unwrap_or(0) as i128;
        let (new_b, new_s) = (old_b + n128, old_s - n128);
        for (who, ix, new) in [(buyer, b, new_b), (seller, s, new_s)] {
            let (buying, selling) = self.working.get(&(ix, contract.to_string())).copied().unwrap_or((0, 0));
            if new + buying as i128 > limit || new - (selling as i128) < -limit {
                return no(
                    RejectKind::Rule,
                    format!("{who} would hold {new} contracts of {contract}, beyond the position limit of {limit}"),
                );
            }
        }
        // The trade is brought to the last settlement price at once.
        let adjust = narrow((price as i128 - c.last_price_fen as i128) * n128 * size, "trade value")?;
        for (ix, who, old, new, delta) in [(b, buyer, old_b, new_b, -(adjust as i128)), (s, seller, old_s, new_s, adjust as i128)] {
            let p = &self.parties[ix];
            let margin = p.margin_fen as i128 - im * old.abs() + im * new.abs();
            let after = p.balance_fen as i128 + delta - margin - p.reserved_fen as i128;
            if new.abs() > old.abs() && after < 0 {
                return no(
                    RejectKind::Insufficient,
                    format!("{who} lacks {} fen of initial margin and price difference for this trade", -after),
                );
            }
        }
        narrow(im * (new_b.abs() - old_b.abs()), "margin")?;
        narrow(im * (new_s.abs() - old_s.abs()), "margin")?;
        self.apply_trade(contract, b, s, n, price, out);
        Ok(())
    }

    /// Books a trade (checked by the caller): margin, the difference to the last settlement
    /// price, positions.
    fn apply_trade(&mut self, contract: &str, b: usize, s: usize, n: u64, price: i64, out: &mut Outcome) {
        let c = &self.contracts[contract];
        let im = c.spec.initial_margin_fen;
        let adjust = (price - c.last_price_fen) * n as i64 * c.spec.size_t as i64;
        let old_b = c.positions.get(&b).copied().unwrap_or(0);
        let old_s = c.positions.get(&s).copied().unwrap_or(0);
        let (new_b, new_s) = (old_b + n as i64, old_s - n as i64);
        let (im_b, im_s) = (im * (new_b.abs() - old_b.abs()), im * (new_s.abs() - old_s.abs()));
        self.parties[b].margin_fen += im_b;
        self.parties[s].margin_fen += im_s;
        self.pay(out, b, s, adjust);
        let c = self.contracts.get_mut(contract).expect("checked");
        for (ix, new) in [(b, new_b), (s, new_s)] {
            if new == 0 {
                c.positions.remove(&ix);
            } else {
                c.positions.insert(ix, new);
            }
        }
        out.events.push(Event::Traded {
            contract: contract.to_string(),
            buyer: self.parties[b].name.clone(),
            seller: self.parties[s].name.clone(),
            contracts: n,
            price_fen: price,
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn place_order(
        &mut self,
        contract: &str,
        order: u64,
        party: &str,
        side: Side,
        price: i64,
        n: u64,
        tif: Tif,
        date: Date,
        out: &mut Outcome,
    ) -> Result<(), Reject> {
        let c = self
            .contracts
            .get(contract)
            .ok_or_else(|| Reject { kind: RejectKind::NotFound, message: format!("no contract '{contract}'") })?;
        let p = self.ix(party)?;
        if c.status != ContractStatus::Open || date > c.spec.expiry {
            return no(RejectKind::Rule, format!("contract '{contract}' no longer trades"));
        }
        if n == 0 {
            return no(RejectKind::Invalid, "an order needs a positive number of contracts");
        }
        check_price(price)?;
        if self.order_ids.contains(&order) {
            return no(RejectKind::Conflict, format!("order id {order} is already in use"));
        }
        let limit = c.spec.position_limit as i128;
        let pos = c.positions.get(&p).copied().unwrap_or(0) as i128;
        let (buying, selling) = self.working.get(&(p, contract.to_string())).copied().unwrap_or((0, 0));
        let worst = match side {
            Side::Buy => pos + buying as i128 + n as i128,
            Side::Sell => pos - selling as i128 - n as i128,
        };
        if worst.abs() > limit {
            return no(
                RejectKind::Rule,
                format!("{party} could hold {worst} contracts of {contract} with this order, beyond the position limit of {limit}"),
            );
        }
        // Initial margin plus the worst difference to the last settlement price, per contract.
        let adverse = match side {
            Side::Buy => (price - c.last_price_fen).max(0),
            Side::Sell => (c.last_price_fen - price).max(0),
        };
        let each = c.spec.initial_margin_fen as i128 + adverse as i128 * c.spec.size_t as i128;
        let total = each * n as i128;
        if (self.parties[p].available() as i128) < total {
            return no(
                RejectKind::Insufficient,
                format!("{party} has {} fen available, not the {total} fen this order reserves", self.parties[p].available()),
            );
        }
        let each = narrow(each, "reservation")?;
        self.parties[p].reserved_fen += each * n as i64;
        self.order_ids.insert(order);
        let w = self.working.entry((p, contract.to_string())).or_default();
        match side {
            Side::Buy => w.0 += n,
            Side::Sell => w.1 += n,
        }
        self.orders.insert(
            order,
            OpenOrder { contract: contract.to_string(), party: p, side, price_fen: price, remaining: n, reserve_each_fen: each },
        );
        let mut events = Vec::new();
        let cmd = BookCommand::Place { id: order, owner: p as u32, side, price: Some(price), qty: n, tif };
        self.books.get_mut(contract).expect("book").0.execute(&cmd, &mut events).expect("checked before");
        self.book_events(contract, &events, out);
        Ok(())
    }

    /// Takes `n` contracts off a working order: releases its reservation and working quantity.
    fn reduce_order(&mut self, order: u64, n: u64) {
        let o = self.orders.get_mut(&order).expect("working order");
        o.remaining -= n;
        let (p, side, each) = (o.party, o.side, o.reserve_each_fen);
        let key = (p, o.contract.clone());
        let w = self.working.get_mut(&key).expect("working");
        match side {
            Side::Buy => w.0 -= n,
            Side::Sell => w.1 -= n,
        }
        if *w == (0, 0) {
            self.working.remove(&key);
        }
        self.parties[p].reserved_fen -= each * n as i64;
    }

    fn book_events(&mut self, contract: &str, events: &[BookEvent], out: &mut Outcome) {
        for e in events {
            match *e {
                BookEvent::Accepted { id } => out.events.push(Event::OrderAccepted { order: id }),
                BookEvent::Rested { id, qty } => out.events.push(Event::OrderRested { order: id, contracts: qty }),
                BookEvent::Trade { maker, taker, price, qty } => {
                    self.reduce_order(maker, qty);
                    self.reduce_order(taker, qty);
                    let (m, t) = (&self.orders[&maker], &self.orders[&taker]);
                    let (b, s) = if m.side == Side::Buy { (m.party, t.party) } else { (t.party, m.party) };
                    self.apply_trade(contract, b, s, qty, price, out);
                    for id in [maker, taker] {
                        if self.orders[&id].remaining == 0 {
                            self.orders.remove(&id);
                            out.events.push(Event::OrderDone { order: id, cancelled: 0 });
                        }
                    }
                }
                BookEvent::Cancelled { id, qty } => {
                    self.reduce_order(id, qty);
                    if self.orders[&id].remaining == 0 {
                        self.orders.remove(&id);
                    }
                    out.events.push(Event::OrderDone { order: id, cancelled: qty });
                }
                BookEvent::Amended { .. } => unreachable!("the desk does not amend"),
            }
        }
    }

    fn settle_price(&mut self, contract: &str, price: i64, out: &mut Outcome) {
        let c = self.contracts.get_mut(contract).expect("checked");
        let step = (price - c.last_price_fen) * c.spec.size_t as i64;
        c.last_price_fen = price;
        out.events.reserve(c.positions.len() * 2);
        for (&ix, &pos) in &c.positions {
            let vm = step * pos;
            let p = &mut self.parties[ix];
            p.balance_fen += vm;
            out.events.push(Event::VariationMargin { contract: contract.to_string(), party: p.name.clone(), fen: vm });
            if p.balance_fen < p.margin_fen {
                out.events.push(Event::MarginShortfall { party: p.name.clone(), balance_fen: p.balance_fen, required_fen: p.margin_fen });
            }
        }
        out.events.push(Event::SettlementPrice { contract: contract.to_string(), price_fen: price, open_interest: c.open_interest() });
    }

    fn end_of_day(&mut self, date: Date, holdings: &dyn Holdings, out: &mut Outcome) {
        // Pledges: unmet calls and unpaid maturities are enforced.
        let due: Vec<(String, EnforceReason)> = self
            .pledges
            .iter()
            .filter(|(_, p)| p.status == PledgeStatus::Active)
            .filter_map(|(id, p)| {
                if p.call.is_some_and(|d| d <= date) {
                    Some((id.clone(), EnforceReason::MarginCallUnmet))
                } else if p.maturity <= date {
                    Some((id.clone(), EnforceReason::UnpaidAtMaturity))
                } else {
                    None
                }
            })
            .collect();
        let registrar = self.registrar.clone();
        for (id, reason) in due {
            let p = self.pledges.get_mut(&id).expect("pledge");
            p.status = PledgeStatus::Enforced;
            p.call = None;
            let quantity = p.quantity();
            let lender = self.parties[p.lender].name.clone();
            let pendings: Vec<String> = p.pendings.iter().map(|(pid, _)| pid.clone()).collect();
            for pending in pendings {
                self.instruct(out, &registrar, RegistryCommand::PostPending { pending });
            }
            out.events.push(Event::PledgeEnforced { pledge: id, quantity, lender, reason });
        }
        let mut used = Used::new();
        // Repos: second legs.
        let due: Vec<String> = self
            .repos
            .iter()
            .filter(|(_, r)| r.status == RepoStatus::Open && r.repurchase_date <= date)
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            let r = self.repos[&id].clone();
            let buyer_ok = self.free_units(holdings, &used, r.buyer, &r.unit) >= r.quantity;
            let seller_ok = self.parties[r.seller].available() >= r.repurchase_fen;
            let (seller, buyer) = (self.parties[r.seller].name.clone(), self.parties[r.buyer].name.clone());
            let status = if buyer_ok && seller_ok {
                let (from, to) = (self.parties[r.buyer].account.clone(), self.parties[r.seller].account.clone());
                *used.entry((from.clone(), r.unit.to_string())).or_default() += r.quantity;
                self.instruct(
                    out,
                    &buyer,
                    RegistryCommand::Transfer { from, to, unit: r.unit.clone(), quantity: ets_core::Tonnes(r.quantity) },
                );
                self.pay(out, r.seller, r.buyer, r.repurchase_fen);
                out.events.push(Event::RepoSettled { repo: id.clone() });
                RepoStatus::Settled
            } else {
                let mut defaulters = Vec::new();
                if !buyer_ok {
                    defaulters.push(buyer);
                }
                if !seller_ok {
                    defaulters.push(seller);
                }
                let penalty = if defaulters.len() == 1 {
                    let (d, other) = if buyer_ok { (r.seller, r.buyer) } else { (r.buyer, r.seller) };
                    let due = (r.repurchase_fen as i128 * r.penalty_bp as i128 / BP) as i64;
                    let paid = due.min(self.parties[d].available().max(0));
                    self.pay(out, d, other, paid);
                    paid
                } else {
                    0
                };
                out.events.push(Event::RepoFailed { repo: id.clone(), defaulters: defaulters.clone(), penalty_fen: penalty });
                RepoStatus::Failed { defaulters }
            };
            self.repos.get_mut(&id).expect("repo").status = status;
        }
        // Futures: expiry.
        let due: Vec<String> = self
            .contracts
            .iter()
            .filter(|(_, c)| c.status == ContractStatus::Open && c.spec.expiry <= date)
            .map(|(id, _)| id.clone())
            .collect();
        for code in due {
            self.expire(&code, holdings, &mut used, out);
        }
    }

    fn expire(&mut self, code: &str, holdings: &dyn Holdings, used: &mut Used, out: &mut Outcome) {
        let working: Vec<u64> = self.orders.iter().filter(|(_, o)| o.contract == code).map(|(id, _)| *id).collect();
        for id in working {
            let n = self.orders[&id].remaining;
            self.reduce_order(id, n);
            self.orders.remove(&id);
            out.events.push(Event::OrderDone { order: id, cancelled: n });
        }
        self.books.insert(code.to_string(), Book::default());
        let c = self.contracts.get_mut(code).expect("contract");
        let positions = std::mem::take(&mut c.positions);
        let spec = c.spec.clone();
        let price = c.last_price_fen;
        c.status = match spec.settlement {
            Settlement::Physical => ContractStatus::Delivered,
            Settlement::Cash => ContractStatus::Settled,
        };
        for (&ix, &pos) in &positions {
            self.parties[ix].margin_fen -= spec.initial_margin_fen * pos.abs();
        }
        if spec.settlement == Settlement::Physical {
            let mut longs: Vec<(usize, u64)> = positions.iter().filter(|(_, p)| **p > 0).map(|(i, p)| (*i, *p as u64)).collect();
            let mut shorts: Vec<(usize, u64)> = positions.iter().filter(|(_, p)| **p < 0).map(|(i, p)| (*i, p.unsigned_abs())).collect();
            let (mut li, mut si) = (0, 0);
            while li < longs.len() && si < shorts.len() {
                let q = longs[li].1.min(shorts[si].1);
                let (l, s) = (longs[li].0, shorts[si].0);
                let tonnes = q * spec.size_t;
                let cash = price * tonnes as i64;
                let short_ok = self.free_units(holdings, used, s, &spec.unit) >= tonnes;
                let long_ok = self.parties[l].available() >= cash;
                let (short, long) = (self.parties[s].name.clone(), self.parties[l].name.clone());
                if short_ok && long_ok {
                    let (from, to) = (self.parties[s].account.clone(), self.parties[l].account.clone());
                    *used.entry((from.clone(), spec.unit.to_string())).or_default() += tonnes;
                    self.instruct(
                        out,
                        &short,
                        RegistryCommand::Transfer { from, to, unit: spec.unit.clone(), quantity: ets_core::Tonnes(tonnes) },
                    );
                    self.pay(out, l, s, cash);
                    out.events.push(Event::Delivered { contract: code.to_string(), short, long, tonnes, cash_fen: cash });
                } else {
                    let mut defaulters = Vec::new();
                    if !short_ok {
                        defaulters.push(short.clone());
                    }
                    if !long_ok {
                        defaulters.push(long.clone());
                    }
                    let penalty = if defaulters.len() == 1 {
                        let (d, other) = if short_ok { (l, s) } else { (s, l) };
                        let due = (cash as i128 * spec.delivery_penalty_bp as i128 / BP) as i64;
                        let paid = due.min(self.parties[d].available().max(0));
                        self.pay(out, d, other, paid);
                        paid
                    } else {
                        0
                    };
                    out.events.push(Event::DeliveryFailed {
                        contract: code.to_string(),
                        short,
                        long,
                        tonnes,
                        defaulters,
                        penalty_fen: penalty,
                    });
                }
                longs[li].1 -= q;
                shorts[si].1 -= q;
                if longs[li].1 == 0 {
                    li += 1;
                }
                if shorts[si].1 == 0 {
                    si += 1;
                }
            }
        }
        out.events.push(Event::ContractExpired { contract: code.to_string(), settlement: spec.settlement, price_fen: price });
    }

    /// Market data of every contract: the last settlement price and the open interest.
    pub fn market_data(&self) -> Vec<ContractData> {
        self.contracts
            .iter()
            .map(|(code, c)| ContractData {
                contract: code.clone(),
                settlement_price_fen: c.last_price_fen,
                open_interest: c.open_interest(),
                status: c.status,
            })
            .collect()
    }

    /// Units pledged (encumbered) per (borrower, unit) in active pledges.
    pub fn encumbrance(&self) -> BTreeMap<(String, String), u64> {
        let mut out = BTreeMap::new();
        for p in self.pledges.values().filter(|p| p.status == PledgeStatus::Active) {
            *out.entry((self.parties[p.borrower].name.clone(), p.unit.to_string())).or_default() += p.quantity();
        }
        out
    }

    /// Open margin calls: pledge and deadline.
    pub fn margin_calls(&self) -> Vec<(String, Date)> {
        self.pledges.iter().filter_map(|(id, p)| p.call.map(|d| (id.clone(), d))).collect()
    }

    /// Recomputes the desk's invariants from scratch.
    pub fn check_invariants(&self) -> Result<(), String> {
        let total: i128 = self.parties.iter().map(|p| p.balance_fen as i128).sum();
        if total != self.deposits_fen as i128 {
            return Err(format!("cash balances add up to {total}, net deposits are {}", self.deposits_fen));
        }
        let mut margin = vec![0i64; self.parties.len()];
        for (code, c) in &self.contracts {
            if c.status != ContractStatus::Open && !c.positions.is_empty() {
                return Err(format!("expired contract {code} has positions"));
            }
            if c.positions.values().sum::<i64>() != 0 {
                return Err(format!("contract {code}: longs and shorts differ"));
            }
            for (&ix, &pos) in &c.positions {
                if pos == 0 || pos.unsigned_abs() > c.spec.position_limit {
                    return Err(format!("contract {code}: position {pos} of party {ix}"));
                }
                margin[ix] += c.spec.initial_margin_fen * pos.abs();
            }
        }
        let mut reserved = vec![0i64; self.parties.len()];
        let mut working: BTreeMap<(usize, String), (u64, u64)> = BTreeMap::new();
        for o in self.orders.values() {
            reserved[o.party] += o.reserve_each_fen * o.remaining as i64;
            let w = working.entry((o.party, o.contract.clone())).or_default();
            match o.side {
                Side::Buy => w.0 += o.remaining,
                Side::Sell => w.1 += o.remaining,
            }
        }
        if working != self.working {
            return Err("working order quantities differ from the orders".into());
        }
        for (p, r) in self.parties.iter().zip(reserved) {
            if p.reserved_fen != r {
                return Err(format!("{} has {} fen reserved, orders need {r}", p.name, p.reserved_fen));
            }
        }
        for (code, book) in &self.books {
            let resting: u64 = [Side::Buy, Side::Sell].into_iter().flat_map(|side| book.0.orders(side)).map(|o| o.3).sum();
            let ours: u64 = self.orders.values().filter(|o| &o.contract == code).map(|o| o.remaining).sum();
            if resting != ours {
                return Err(format!("contract {code}: the book rests {resting} contracts, the desk's orders {ours}"));
            }
        }
        for (p, m) in self.parties.iter().zip(margin) {
            if p.margin_fen != m {
                return Err(format!("{} holds {} fen of margin, positions need {m}", p.name, p.margin_fen));
            }
        }
        for (id, p) in &self.pledges {
            let active = p.status == PledgeStatus::Active;
            if active && (p.outstanding_fen <= 0 || p.pendings.is_empty()) || !active && p.call.is_some() {
                return Err(format!("pledge {id} is inconsistent"));
            }
        }
        Ok(())
    }
}

impl From<ets_registry::RejectKind> for RejectKind {
    /// A registry refusal met by one of the desk's instructions (a trial before journaling).
    fn from(kind: ets_registry::RejectKind) -> RejectKind {
        match kind {
            ets_registry::RejectKind::Invalid => RejectKind::Invalid,
            ets_registry::RejectKind::NotFound => RejectKind::NotFound,
            ets_registry::RejectKind::Forbidden => RejectKind::Forbidden,
            ets_registry::RejectKind::Refused => RejectKind::Rule,
            ets_registry::RejectKind::Conflict => RejectKind::Conflict,
        }
    }
}
