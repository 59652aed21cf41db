//! The trading venue: instruments, members, their cash and lodged units, the trading modes,
//! market data and settlement, as one deterministic state machine.
//!
//! `Venue::execute(envelope)` decides a command against the current state and either applies it
//! (returning its events and the registry instructions it implies) or refuses it with a reason,
//! changing nothing. The venue never reads a clock (the envelope carries the time) and never
//! touches the registry: it *emits* registry commands with deterministic ids, which the shell
//! applies in order (an outbox: replaying the venue's journal yields the same instructions, so
//! the shell can re-apply any the registry has not seen after a crash, and the registry's
//! idempotent command ids make that exactly-once).
//!
//! Money and units:
//! - Each member has a cash ledger in fen: `balance`, of which `reserved` backs open buy orders,
//!   bids and proposed block deals, and `owed` is the price of bought units not yet settled.
//! - Units to sell are *lodged*: the member's registry account puts them in a pending transfer
//!   to the exchange's clearing account (still owned, no longer movable). Of the lodged units,
//!   `reserved` back open sell orders and `owed` are sold and await delivery.
//! - A trade moves reservation into obligation on both sides at once. Settlement (at the close
//!   of the trade's settlement day: T+0 or T+1 by the instrument's rule) is delivery versus
//!   payment in one step: cash from buyer to seller, and registry instructions that deliver the
//!   sellers' units to the clearing account and from it to the buyers, netted per member.
//!   Nothing is sold twice (an order reserves what it sells) or paid twice (an order reserves
//!   what it pays).

use crate::auction::{self, AuctionRules};
use crate::book::{self, OrderBook, Side, Tif};
use crate::rules::{yuan, Mode, TradingRules};
use ets_core::Date;
use ets_registry::{Command as RegistryCommand, UnitRef};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

pub type OrderId = u64;

/// Minutes after local midnight, [from, to).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub from_min: u16,
    pub to_min: u16,
}

impl Window {
    pub const fn new(from: (u16, u16), to: (u16, u16)) -> Window {
        Window { from_min: from.0 * 60 + from.1, to_min: to.0 * 60 + to.1 }
    }

    fn contains(&self, minute: u16) -> bool {
        (self.from_min..self.to_min).contains(&minute)
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}-{:02}:{:02}", self.from_min / 60, self.from_min % 60, self.to_min / 60, self.to_min % 60)
    }
}

/// How an instrument trades continuously.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Style {
    /// China's agreement trading: listed orders match by price-time priority, or a taker picks a
    /// counterparty's order among the best levels; block deals are negotiated.
    Agreement,
    /// An international continuous double auction with opening and closing call auctions.
    Continuous,
}

/// The closing price as the market defines it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CloseRule {
    /// Volume-weighted average of the day's listed trades; block and bidding trades excluded;
    /// the previous close when nothing traded (national market, `[SEEE-ZH]`).
    ListedVwap,
    /// The closing call auction's price, else the last trade, else the previous close.
    ClosingAuction,
}

/// How a one-way bidding session prices its fills.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BiddingPricing {
    /// Each winning bid pays its own price (ets default; the SEEE rule is not verified, U).
    PayAsBid,
    /// Every winning bid pays the lowest winning price.
    Uniform,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstrumentSpec {
    /// Trading code, e.g. `CEA-2025`.
    pub code: String,
    /// The registry unit it delivers.
    pub unit: UnitRef,
    /// The registry market whose accounts trade it.
    pub market: String,
    pub style: Style,
    pub rules: TradingRules,
    /// Continuous (listed) trading windows.
    pub listed: Vec<Window>,
    /// Block trading windows.
    pub block: Vec<Window>,
    /// Call auction windows (Continuous style): orders collect, then `Uncross` at the window end.
    pub opening_call: Option<Window>,
    pub closing_call: Option<Window>,
    /// Local time = UTC + this.
    pub utc_offset_minutes: i32,
    /// Settlement lag in trading days: 0 = T+0 (same day), 1 = T+1.
    pub settlement_days: u8,
    /// Largest single order (tonnes); block orders are exempt.
    pub max_order_t: u64,
    /// Most a member may hold of this instrument through the venue (lodged + bought + open
    /// buy orders), `None` for no limit.
    pub position_limit_t: Option<u64>,
    /// The previous close before the first trading day (ticks).
    pub reference_price: i64,
    pub close_rule: CloseRule,
    pub bidding_pricing: BiddingPricing,
    /// How many of the counterparty's best price levels a listed-agreement taker may choose from.
    pub agreement_levels: usize,
}

impl InstrumentSpec {
    /// A national allowance vintage under the SEEE rules (china-ets.md §4).
    pub fn national(vintage: u16, reference_price: i64) -> InstrumentSpec {
        InstrumentSpec {
            code: format!("CEA-{vintage}"),
            unit: UnitRef::allowance("CEA", vintage),
            market: "CN".into(),
            style: Style::Agreement,
            rules: TradingRules::NATIONAL,
            listed: vec![Window::new((9, 30), (11, 30)), Window::new((13, 0), (15, 0))],
            block: vec![Window::new((13, 0), (15, 0))],
            opening_call: None,
            closing_call: None,
            utc_offset_minutes: 8 * 60,
            settlement_days: 0,
            max_order_t: TradingRules::NATIONAL.block_min_t - 1,
            position_limit_t: None,
            reference_price,
            close_rule: CloseRule::ListedVwap,
            bidding_pricing: BiddingPricing::PayAsBid,
            agreement_levels: 5,
        }
    }
}

/// A trade's origin; only `Listed` and `Call` trades form the listed close.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TradeKind {
    Listed,
    Agreement,
    Block,
    Bidding,
    Call,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trade {
    pub id: u64,
    // Shared names: a trade copies no strings.
    pub instrument: Arc<str>,
    pub kind: TradeKind,
    pub buyer: Arc<str>,
    pub seller: Arc<str>,
    pub price: i64,
    pub qty: u64,
    pub date: Date,
    pub settles: Date,
}

impl Trade {
    pub fn value_fen(&self) -> i64 {
        self.price * self.qty as i64
    }
}

/// A day's market data for one instrument.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayBar {
    pub date: Date,
    pub open: Option<i64>,
    pub high: Option<i64>,
    pub low: Option<i64>,
    pub last: Option<i64>,
    pub close: i64,
    pub previous_close: i64,
    /// Tonnes traded by listed (and call) trading, the basis of the close.
    pub listed_volume: u64,
    pub listed_value_fen: i64,
    pub block_volume: u64,
    pub other_volume: u64,
    pub value_fen: i64,
    pub trades: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    ListInstrument(InstrumentSpec),
    /// A member and its registry account per market.
    AddMember {
        member: String,
        accounts: BTreeMap<String, String>,
    },
    /// Cash arrived at the exchange's settlement bank for the member.
    Deposit {
        member: String,
        amount_fen: i64,
    },
    WithdrawCash {
        member: String,
        amount_fen: i64,
    },
    /// The member's registry account lodged `qty` units in pending transfer `pending` to the
    /// clearing account (the shell creates the pending first, then journals this).
    Lodge {
        member: String,
        instrument: String,
        qty: u64,
        pending: String,
    },
    /// Unlodge free units: they go back to the member's account.
    Unlodge {
        member: String,
        instrument: String,
        qty: u64,
    },
    OpenDay {
        date: Date,
    },
    /// Cancels the day's resting orders, fixes the close, settles what is due.
    CloseDay,
    /// A listed (or continuous) order. `price: None` is a market order (IOC/FOK), protected at the band.
    Place {
        order: OrderId,
        member: String,
        instrument: String,
        side: Side,
        price: Option<i64>,
        qty: u64,
        tif: Tif,
    },
    Cancel {
        order: OrderId,
    },
    Amend {
        order: OrderId,
        qty: u64,
    },
    /// Listed agreement: the taker picks a resting order among the counterparty's best levels
    /// and trades `qty` of it at that order's price.
    Take {
        order: OrderId,
        member: String,
        maker: OrderId,
        qty: u64,
    },
    /// A block deal proposed by `member` to `counterparty`; `side` is the proposer's.
    ProposeBlock {
        deal: String,
        member: String,
        counterparty: String,
        instrument: String,
        side: Side,
        price: i64,
        qty: u64,
    },
    ConfirmBlock {
        deal: String,
        member: String,
    },
    WithdrawBlock {
        deal: String,
        member: String,
    },
    /// One-way bidding: `member` offers (`side` Sell) or asks for (`side` Buy) `qty`; bids compete.
    OpenBidding {
        bidding: String,
        member: String,
        instrument: String,
        side: Side,
        qty: u64,
        /// The worst price the initiator accepts.
        limit_price: i64,
    },
    Bid {
        bidding: String,
        member: String,
        price: i64,
        qty: u64,
    },
    CloseBidding {
        bidding: String,
    },
    /// Ends a call auction: matches the collected orders at one price.
    Uncross {
        instrument: String,
    },
    /// A primary auction of units from `from_account` (the authority's), bids covered by cash.
    PrimaryAuction {
        auction: String,
        instrument: String,
        /// The authority member, who receives the proceeds and whose account delivers.
        seller: String,
        authority_actor: String,
        volume: u64,
        rules: AuctionRules,
        bids: Vec<auction::Bid>,
        /// The secondary-market reference price, for the cancellation test; `None` uses the
        /// instrument's last close.
        secondary_reference: Option<i64>,
        seed: u64,
    },
    /// Opens a primary auction's bidding window: `volume` units of `instrument` that the seller
    /// (the member holding the market's reserve account) has set aside in the registry's pending
    /// transfer `pending` to the clearing account (the shell creates it first). Members bid
    /// themselves with `AuctionBid`; the operator clears with `ClearAuction`.
    OpenAuction {
        auction: String,
        instrument: String,
        seller: String,
        volume: u64,
        rules: AuctionRules,
        pending: String,
        /// The secondary-market reference price for the cancellation test; `None` uses the
        /// instrument's last close at clearing.
        secondary_reference: Option<i64>,
        /// Orders tied bids; fixed when the window opens, published with the result.
        seed: u64,
    },
    /// A member's sealed bid, its value set aside from the member's free cash (the bid
    /// guarantee) until the auction clears or the bid is withdrawn.
    AuctionBid {
        auction: String,
        member: String,
        price: i64,
        qty: u64,
    },
    /// The member takes back one of its bids while the window is open.
    WithdrawAuctionBid {
        auction: String,
        member: String,
        bid: usize,
    },
    /// Closes the window and clears: winners pay the uniform clearing price to the seller and
    /// receive their units out of the pending; what is not sold goes back to the seller.
    ClearAuction {
        auction: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub id: String,
    pub actor: String,
    /// Milliseconds since the epoch, UTC.
    pub at_ms: i64,
    pub command: Command,
}

/// A registry command the venue needs carried out, with its deterministic id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instruction {
    pub id: String,
    pub actor: String,
    pub command: RegistryCommand,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    InstrumentListed {
        code: String,
    },
    MemberAdded {
        member: String,
    },
    Cash {
        member: String,
        delta_fen: i64,
        balance_fen: i64,
    },
    Lodged {
        member: String,
        instrument: String,
        qty: u64,
    },
    Unlodged {
        member: String,
        instrument: String,
        qty: u64,
    },
    DayOpened {
        date: Date,
    },
    OrderAccepted {
        order: OrderId,
    },
    OrderRested {
        order: OrderId,
        qty: u64,
    },
    OrderDone {
        order: OrderId,
        cancelled: u64,
    },
    OrderAmended {
        order: OrderId,
        qty: u64,
    },
    Traded(Trade),
    BlockProposed {
        deal: String,
    },
    BlockWithdrawn {
        deal: String,
    },
    BiddingOpened {
        bidding: String,
    },
    BidAccepted {
        bidding: String,
        bid: usize,
    },
    BiddingClosed {
        bidding: String,
        filled: u64,
    },
    AuctionCleared {
        auction: String,
        price: i64,
        sold: u64,
    },
    AuctionCancelled {
        auction: String,
        reason: String,
    },
    DayClosed {
        bars: Vec<(String, DayBar)>,
    },
    Settled {
        date: Date,
        trades: u64,
        value_fen: i64,
    },
    AuctionOpened {
        auction: String,
    },
    AuctionBidAccepted {
        auction: String,
        member: String,
        bid: usize,
    },
    AuctionBidWithdrawn {
        auction: String,
        member: String,
        bid: usize,
    },
    /// The window closed with these standing bids (before the clearing's outcome).
    AuctionBidsClosed {
        auction: String,
        bids: usize,
        bidders: usize,
        bid_qty: u64,
    },
}

/// Why the venue refused a command. Nothing changed.
pub type Reject = ets_core::Rejection<RejectKind>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectKind {
    NotFound,
    Forbidden,
    Invalid,
    /// A trading rule: band, size, mode, session, limit.
    Rule,
    /// Not enough cash or free units.
    Insufficient,
    Conflict,
}

fn no<T>(kind: RejectKind, message: impl Into<String>) -> Result<T, Reject> {
    Err(Reject { kind, message: message.into() })
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Cash {
    balance: i64,
    reserved: i64,
    owed: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Position {
    /// Lodged units not yet delivered, with the pendings that hold them (FIFO).
    lodged: u64,
    lodgements: Vec<(String, u64)>,
    reserved: u64,
    /// Sold, awaiting delivery.
    owed: u64,
    /// Bought, awaiting delivery.
    receivable: u64,
    /// Open buy orders' quantity (for the position limit).
    buying: u64,
}

impl Position {
    fn free(&self) -> u64 {
        self.lodged - self.reserved - self.owed
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Member {
    name: Arc<str>,
    accounts: BTreeMap<String, String>,
    cash: Cash,
    positions: BTreeMap<String, Position>,
}

/// What an open order holds back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct OpenOrder {
    // Shared names: an order costs no string copies.
    member: Arc<str>,
    instrument: Arc<str>,
    side: Side,
    /// Limit (or protection) price: cash is reserved at this price for buys.
    price: i64,
    remaining: u64,
}

/// A proposed block deal, waiting for its counterparty; `side` is the proposer's.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BlockDeal {
    pub proposer: String,
    pub counterparty: String,
    pub instrument: String,
    pub side: Side,
    pub price: i64,
    pub qty: u64,
}

/// An open one-way bidding: the initiator's offer (or demand) and the bids so far, as
/// (member, price, quantity) in arrival order.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Bidding {
    pub initiator: String,
    pub instrument: String,
    pub side: Side,
    pub qty: u64,
    pub limit_price: i64,
    pub bids: Vec<(String, i64, u64)>,
}

struct Instrument {
    code: Arc<str>,
    spec: InstrumentSpec,
    book: OrderBook,
    previous_close: i64,
    /// Orders collected during a call auction, in arrival order.
    call: Vec<OrderId>,
    day: DayBar,
    closing_auction_price: Option<i64>,
    bars: Vec<DayBar>,
}

/// (instrument, member) in a settlement run.
type SettlementKey = (Arc<str>, Arc<str>);
/// (tonnes sold, tonnes bought, fen paid, fen received) in a settlement run.
type SettlementSums = (u64, u64, i64, i64);

/// Limits on everything (TIGER_STYLE): the venue refuses rather than grows without bound.
pub const MAX_OPEN_ORDERS: usize = 10_000_000;
pub const MAX_BIDS_PER_BIDDING: usize = 100_000;
pub const MAX_BIDS_PER_AUCTION: usize = 100_000;
/// Bids one member may place in one auction, withdrawn ones included: the auction's limit
/// counts every bid placed (a withdrawn bid keeps its number), so without this one member
/// could fill it by bidding and withdrawing and shut the others out.
pub const MAX_BIDS_PER_MEMBER_PER_AUCTION: u32 = 1_000;

pub struct Venue {
    operator: String,
    /// Clearing account per market.
    clearing: BTreeMap<String, String>,
    holidays: BTreeSet<Date>,
    instruments: BTreeMap<String, Instrument>,
    members: BTreeMap<String, Member>,
    /// Book owner ids (the matching core knows members by number).
    member_numbers: BTreeMap<String, u32>,
    orders: BTreeMap<OrderId, OpenOrder>,
    // Only looked up, never iterated: a hash set keeps the state machine deterministic.
    used_order_ids: ahash::AHashSet<OrderId>,
    blocks: BTreeMap<String, BlockDeal>,
    biddings: BTreeMap<String, Bidding>,
    /// Primary auctions run, by id, with their outcome (results are published).
    auctions: BTreeMap<String, AuctionRecord>,
    /// Primary auctions whose bidding window is open.
    open_auctions: BTreeMap<String, OpenAuction>,
    day: Option<Date>,
    /// Indexes into `trades` of the trades not settled yet.
    unsettled: Vec<usize>,
    trades: Vec<Trade>,
    next_trade: u64,
    instruction_seq: u64,
    deposits_fen: i64,
    settled_cash_fen: i64,
    /// The matching core's events of one command; kept to reuse its allocation.
    scratch: Vec<book::Event>,
}

/// A primary auction as the platform publishes it: what was offered, how many bid, and the
/// outcome (clearing price and quantity sold with each winner's share, or why it was cancelled).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuctionRecord {
    pub auction: String,
    pub instrument: String,
    /// The trading day it was run on, if one was open.
    pub date: Option<Date>,
    pub volume: u64,
    pub reserve_price: i64,
    /// Bids were whole multiples of this many tonnes.
    pub lot: u64,
    pub bids: usize,
    pub bidders: usize,
    /// Tonnes bid in all.
    pub bid_qty: u64,
    pub outcome: AuctionOutcome,
}

/// A primary auction whose bidding window is open.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenAuction {
    pub instrument: String,
    pub seller: String,
    pub volume: u64,
    pub rules: AuctionRules,
    /// The registry pending transfer (seller's account to the clearing account) holding the volume.
    pub pending: String,
    pub secondary_reference: Option<i64>,
    seed: u64,
    /// The trading day the window opened on, if one was open.
    pub opened: Option<Date>,
    /// Bids in arrival order; a withdrawn bid stays as `None`, so bid numbers never shift.
    bids: Vec<Option<auction::Bid>>,
    /// Bids placed per member, withdrawn ones included.
    placed: BTreeMap<String, u32>,
}

impl OpenAuction {
    /// The member's bids still standing: (bid number, price, quantity). Bids are sealed: nobody
    /// else's are shown.
    pub fn bids_of(&self, member: &str) -> Vec<(usize, i64, u64)> {
        self.bids.iter().enumerate().filter_map(|(i, b)| b.as_ref().filter(|b| b.bidder == member).map(|b| (i, b.price, b.qty))).collect()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuctionOutcome {
    Cleared { price: i64, sold: u64, allocations: BTreeMap<String, u64> },
    Cancelled { reason: String },
}

/// What an accepted command did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub events: Vec<Event>,
    pub instructions: Vec<Instruction>,
}

impl Venue {
    /// `operator` is the exchange's actor name (also the representative of the clearing
    /// accounts); `clearing` names the clearing account per market.
    pub fn new(operator: &str, clearing: BTreeMap<String, String>, holidays: BTreeSet<Date>) -> Venue {
        Venue {
            operator: operator.to_string(),
            clearing,
            holidays,
            instruments: BTreeMap::new(),
            members: BTreeMap::new(),
            member_numbers: BTreeMap::new(),
            orders: BTreeMap::new(),
            used_order_ids: ahash::AHashSet::new(),
            blocks: BTreeMap::new(),
            biddings: BTreeMap::new(),
            auctions: BTreeMap::new(),
            open_auctions: BTreeMap::new(),
            day: None,
            unsettled: Vec::new(),
            trades: Vec::new(),
            next_trade: 1,
            instruction_seq: 0,
            deposits_fen: 0,
            settled_cash_fen: 0,
            scratch: Vec::new(),
        }
    }

    pub fn operator(&self) -> &str {
        &self.operator
    }

    pub fn day(&self) -> Option<Date> {
        self.day
    }

    pub fn trades(&self) -> &[Trade] {
        &self.trades
    }

    pub fn instrument_codes(&self) -> Vec<String> {
        self.instruments.keys().cloned().collect()
    }

    pub fn spec(&self, code: &str) -> Option<&InstrumentSpec> {
        self.instruments.get(code).map(|i| &i.spec)
    }

    pub fn book(&self, code: &str) -> Option<&OrderBook> {
        self.instruments.get(code).map(|i| &i.book)
    }

    pub fn previous_close(&self, code: &str) -> Option<i64> {
        self.instruments.get(code).map(|i| i.previous_close)
    }

    pub fn bars(&self, code: &str) -> &[DayBar] {
        self.instruments.get(code).map_or(&[], |i| &i.bars)
    }

    pub fn today(&self, code: &str) -> Option<&DayBar> {
        self.instruments.get(code).map(|i| &i.day)
    }

    /// (balance, reserved, owed) in fen.
    pub fn cash(&self, member: &str) -> Option<(i64, i64, i64)> {
        self.members.get(member).map(|m| (m.cash.balance, m.cash.reserved, m.cash.owed))
    }

    /// (lodged, reserved, owed, receivable) in tonnes.
    pub fn position(&self, member: &str, instrument: &str) -> (u64, u64, u64, u64) {
        self.members
            .get(member)
            .and_then(|m| m.positions.get(instrument))
            .map_or((0, 0, 0, 0), |p| (p.lodged, p.reserved, p.owed, p.receivable))
    }

    /// The member's registry account in a market.
    pub fn member_account(&self, member: &str, market: &str) -> Option<String> {
        self.members.get(member).and_then(|m| m.accounts.get(market).cloned())
    }

    /// The member's registry account per market.
    pub fn member_accounts(&self, member: &str) -> Option<&BTreeMap<String, String>> {
        self.members.get(member).map(|m| &m.accounts)
    }

    /// The block deals proposed and not yet confirmed or withdrawn, by deal id.
    pub fn block_deals(&self) -> impl Iterator<Item = (&str, &BlockDeal)> {
        self.blocks.iter().map(|(id, d)| (id.as_str(), d))
    }

    /// The open one-way biddings, by id.
    pub fn open_biddings(&self) -> impl Iterator<Item = (&str, &Bidding)> {
        self.biddings.iter().map(|(id, b)| (id.as_str(), b))
    }

    /// The first trading day after `date` (weekends and the venue's holidays skipped).
    pub fn trading_day_after(&self, date: Date) -> Date {
        self.next_trading_day(date, 1)
    }

    pub fn clearing_account(&self, market: &str) -> Option<String> {
        self.clearing.get(market).cloned()
    }

    /// The primary auctions run, in id order.
    pub fn auctions(&self) -> impl Iterator<Item = &AuctionRecord> {
        self.auctions.values()
    }

    /// The primary auctions taking bids, by id.
    pub fn open_auctions(&self) -> impl Iterator<Item = (&str, &OpenAuction)> {
        self.open_auctions.iter().map(|(id, a)| (id.as_str(), a))
    }

    pub fn open_auction(&self, auction: &str) -> Option<&OpenAuction> {
        self.open_auctions.get(auction)
    }

    /// A run auction's record.
    pub fn auction(&self, auction: &str) -> Option<&AuctionRecord> {
        self.auctions.get(auction)
    }

    pub fn members(&self) -> Vec<String> {
        self.members.keys().cloned().collect()
    }

    pub fn member_count(&self) -> usize {
        self.members.len()
    }

    /// Each member in name order with its registry accounts per market, its cash (balance,
    /// reserved, owed) in fen and its positions (instrument, (lodged, reserved, owed,
    /// receivable)) in instrument order, empty ones included: the exchange's books in one pass,
    /// without copies, for views that rebuild only what changed.
    #[allow(clippy::type_complexity)]
    pub fn member_books(
        &self,
    ) -> impl Iterator<Item = (&str, &BTreeMap<String, String>, (i64, i64, i64), impl Iterator<Item = (&str, (u64, u64, u64, u64))> + Clone)>
    {
        self.members.iter().map(|(name, m)| {
            let positions = m.positions.iter().map(|(code, p)| (code.as_str(), (p.lodged, p.reserved, p.owed, p.receivable)));
            (name.as_str(), &m.accounts, (m.cash.balance, m.cash.reserved, m.cash.owed), positions)
        })
    }

    /// The member's remaining quantity on an open order.
    pub fn open_order(&self, order: OrderId) -> Option<(String, String, Side, i64, u64)> {
        self.orders.get(&order).map(|o| (o.member.to_string(), o.instrument.to_string(), o.side, o.price, o.remaining))
    }

    /// Volume-weighted average of the listed closes over the last `days` bars (Shanghai's
    /// auction floor basis), weighted by listed volume; `None` without listed trades.
    pub fn listed_vwap(&self, code: &str, days: usize) -> Option<i64> {
        let bars = self.bars(code);
        let recent = &bars[bars.len().saturating_sub(days)..];
        let volume: u64 = recent.iter().map(|b| b.listed_volume).sum();
        let value: i128 = recent.iter().map(|b| i128::from(b.listed_value_fen)).sum();
        (volume > 0).then(|| (value / i128::from(volume)) as i64)
    }

    pub fn execute(&mut self, envelope: &Envelope) -> Result<Outcome, Reject> {
        let mut out = Outcome::default();
        self.dispatch(envelope, &mut out)?;
        debug_assert_eq!(self.check_invariants(), Ok(()));
        Ok(out)
    }

    fn dispatch(&mut self, env: &Envelope, out: &mut Outcome) -> Result<(), Reject> {
        let actor = env.actor.as_str();
        match &env.command {
            Command::ListInstrument(spec) => {
                self.require_operator(actor)?;
                if self.instruments.contains_key(&spec.code) {
                    return no(RejectKind::Conflict, format!("instrument {} is already listed", spec.code));
                }
                validate_spec(spec)?;
                if !self.clearing.contains_key(&spec.market) {
                    return no(RejectKind::Invalid, format!("no clearing account for market {}", spec.market));
                }
                let day = DayBar::empty(self.day.unwrap_or(Date(0)), spec.reference_price);
                self.instruments.insert(
                    spec.code.clone(),
                    Instrument {
                        code: spec.code.as_str().into(),
                        spec: spec.clone(),
                        book: OrderBook::new(),
                        previous_close: spec.reference_price,
                        call: Vec::new(),
                        day,
                        closing_auction_price: None,
                        bars: Vec::new(),
                    },
                );
                out.events.push(Event::InstrumentListed { code: spec.code.clone() });
            }
            Command::AddMember { member, accounts } => {
                self.require_operator(actor)?;
                ets_core::check_identifier("member", member).map_err(|e| Reject { kind: RejectKind::Invalid, message: e })?;
                if self.members.contains_key(member) {
                    return no(RejectKind::Conflict, format!("member {member} already exists"));
                }
                let number = self.member_numbers.len() as u32;
                self.member_numbers.insert(member.clone(), number);
                self.members
                    .insert(member.clone(), Member { name: member.as_str().into(), accounts: accounts.clone(), ..Member::default() });
                out.events.push(Event::MemberAdded { member: member.clone() });
            }
            Command::Deposit { member, amount_fen } => {
                self.require_operator(actor)?;
                positive_fen(*amount_fen)?;
                let m = self.member_mut(member)?;
                m.cash.balance = m.cash.balance.checked_add(*amount_fen).ok_or_else(|| overflow("cash"))?;
                let balance = m.cash.balance;
                self.deposits_fen += amount_fen;
                out.events.push(Event::Cash { member: member.clone(), delta_fen: *amount_fen, balance_fen: balance });
            }
            Command::WithdrawCash { member, amount_fen } => {
                self.require_member_or_operator(actor, member)?;
                positive_fen(*amount_fen)?;
                let m = self.member_mut(member)?;
                let free = m.cash.balance - m.cash.reserved - m.cash.owed;
                if free < *amount_fen {
                    return no(
                        RejectKind::Insufficient,
                        format!("member {member} has ¥{} free cash; ¥{} requested", fen(free), fen(*amount_fen)),
                    );
                }
                m.cash.balance -= amount_fen;
                let balance = m.cash.balance;
                self.deposits_fen -= amount_fen;
                out.events.push(Event::Cash { member: member.clone(), delta_fen: -amount_fen, balance_fen: balance });
            }
            Command::Lodge { member, instrument, qty, pending } => {
                self.require_operator(actor)?;
                positive_qty(*qty)?;
                self.instrument(instrument)?;
                let p = self.member_mut(member)?.positions.entry(instrument.clone()).or_default();
                p.lodged += qty;
                p.lodgements.push((pending.clone(), *qty));
                out.events.push(Event::Lodged { member: member.clone(), instrument: instrument.clone(), qty: *qty });
            }
            Command::Unlodge { member, instrument, qty } => {
                self.require_member_or_operator(actor, member)?;
                positive_qty(*qty)?;
                let account = self.account_for(member, instrument)?;
                let free = self.free_lodged(member, instrument);
                if free < *qty {
                    return no(
                        RejectKind::Insufficient,
                        format!("member {member} has {free} t of {instrument} free to unlodge; {qty} t requested"),
                    );
                }
                let p = self.position_mut(member, instrument);
                let deliveries = take_lodged(p, *qty);
                for (pending, q) in deliveries {
                    let id = self.next_instruction_id();
                    out.instructions.push(Instruction {
                        id,
                        actor: self.operator.clone(),
                        command: RegistryCommand::DeliverPending { pending, quantity: ets_core::Tonnes(q), to: account.clone() },
                    });
                }
                out.events.push(Event::Unlodged { member: member.clone(), instrument: instrument.clone(), qty: *qty });
            }
            Command::OpenDay { date } => {
                self.require_operator(actor)?;
                if let Some(day) = self.day {
                    return no(RejectKind::Conflict, format!("trading day {day} is still open: close it first"));
                }
                if !self.is_trading_day(*date) {
                    return no(RejectKind::Rule, format!("{date} is not a trading day (weekend or holiday)"));
                }
                if let Some(last) = self.instruments.values().filter_map(|i| i.bars.last()).map(|b| b.date).max() {
                    if *date <= last {
                        return no(RejectKind::Conflict, format!("{date} is not after the last trading day {last}"));
                    }
                }
                self.day = Some(*date);
                for ins in self.instruments.values_mut() {
                    ins.day = DayBar::empty(*date, ins.previous_close);
                    ins.closing_auction_price = None;
                }
                out.events.push(Event::DayOpened { date: *date });
            }
            Command::CloseDay => {
                self.require_operator(actor)?;
                let date = self.open_day()?;
                self.close_day(date, out);
            }
            Command::Place { order, member, instrument, side, price, qty, tif } => {
                self.require_member(actor, member)?;
                self.place(env.at_ms, *order, member, instrument, *side, *price, *qty, *tif, out)?;
            }
            Command::Cancel { order } => {
                let o = self
                    .orders
                    .get(order)
                    .ok_or_else(|| Reject { kind: RejectKind::NotFound, message: format!("no open order {order}") })?;
                let (member, instrument) = (o.member.clone(), o.instrument.clone());
                self.require_member_or_operator(actor, &member)?;
                let ins = self.instruments.get_mut(&*instrument).expect("listed");
                if let Some(pos) = ins.call.iter().position(|id| id == order) {
                    ins.call.remove(pos);
                    let left = self.orders[order].remaining;
                    self.finish_order(*order, left, out);
                } else {
                    let mut events = std::mem::take(&mut self.scratch);
                    ins.book.execute(&book::Command::Cancel { id: *order }, &mut events).expect("open order rests in its book");
                    self.apply_book_events(&instrument, *order, &events, env.at_ms, out);
                    events.clear();
                    self.scratch = events;
                }
            }
            Command::Amend { order, qty } => {
                let o = self
                    .orders
                    .get(order)
                    .ok_or_else(|| Reject { kind: RejectKind::NotFound, message: format!("no open order {order}") })?;
                let (member, instrument, side, price, old) = (o.member.to_string(), o.instrument.to_string(), o.side, o.price, o.remaining);
                self.require_member_or_operator(actor, &member)?;
                positive_qty(*qty)?;
                if *qty > old {
                    // An increase needs the extra reservation and re-queues the order.
                    self.reserve(&member, &instrument, side, price, qty - old)?;
                } else {
                    self.release(&member, &instrument, side, price, old - qty);
                }
                let ins = self.instruments.get_mut(&instrument).expect("listed");
                if !ins.call.contains(order) {
                    let mut events = Vec::new();
                    ins.book.execute(&book::Command::Amend { id: *order, qty: *qty }, &mut events).expect("open order rests");
                }
                self.orders.get_mut(order).expect("open").remaining = *qty;
                out.events.push(Event::OrderAmended { order: *order, qty: *qty });
            }
            Command::Take { order, member, maker, qty } => {
                self.require_member(actor, member)?;
                self.take(env.at_ms, *order, member, *maker, *qty, out)?;
            }
            Command::ProposeBlock { deal, member, counterparty, instrument, side, price, qty } => {
                self.require_member(actor, member)?;
                ets_core::check_identifier("deal", deal).map_err(|e| Reject { kind: RejectKind::Invalid, message: e })?;
                if self.blocks.contains_key(deal) {
                    return no(RejectKind::Conflict, format!("block deal {deal} already exists"));
                }
                if member == counterparty {
                    return no(RejectKind::Invalid, "a block deal needs two different members");
                }
                self.member(counterparty)?;
                self.check_order(env.at_ms, instrument, Mode::Block, *price, *qty)?;
                self.check_position_limit(member, instrument, *side, *qty)?;
                self.reserve(member, instrument, *side, *price, *qty)?;
                self.blocks.insert(
                    deal.clone(),
                    BlockDeal {
                        proposer: member.clone(),
                        counterparty: counterparty.clone(),
                        instrument: instrument.clone(),
                        side: *side,
                        price: *price,
                        qty: *qty,
                    },
                );
                out.events.push(Event::BlockProposed { deal: deal.clone() });
            }
            Command::ConfirmBlock { deal, member } => {
                self.require_member(actor, member)?;
                let d = self
                    .blocks
                    .get(deal)
                    .ok_or_else(|| Reject { kind: RejectKind::NotFound, message: format!("no block deal {deal}") })?
                    .clone();
                if &d.counterparty != member {
                    // Not naming the counterparty: deal ids can be guessed, who trades with whom is private.
                    return no(RejectKind::Forbidden, format!("block deal {deal} is not addressed to {member}"));
                }
                // The band and session are checked again at confirmation: the day may have moved.
                self.check_order(env.at_ms, &d.instrument, Mode::Block, d.price, d.qty)?;
                let their = d.side.opposite();
                self.check_position_limit(member, &d.instrument, their, d.qty)?;
                self.reserve(member, &d.instrument, their, d.price, d.qty)?;
                self.blocks.remove(deal);
                let (buyer, seller) = if d.side == Side::Buy { (&d.proposer, member) } else { (member, &d.proposer) };
                self.trade(&d.instrument, TradeKind::Block, buyer, seller, d.price, d.price, d.qty, out);
            }
            Command::WithdrawBlock { deal, member } => {
                let d = self
                    .blocks
                    .get(deal)
                    .ok_or_else(|| Reject { kind: RejectKind::NotFound, message: format!("no block deal {deal}") })?
                    .clone();
                if &d.proposer != member && &d.counterparty != member {
                    return no(RejectKind::Forbidden, format!("{member} is not a party to block deal {deal}"));
                }
                self.require_member_or_operator(actor, member)?;
                self.release(&d.proposer, &d.instrument, d.side, d.price, d.qty);
                self.blocks.remove(deal);
                out.events.push(Event::BlockWithdrawn { deal: deal.clone() });
            }
            Command::OpenBidding { bidding, member, instrument, side, qty, limit_price } => {
                self.require_member(actor, member)?;
                ets_core::check_identifier("bidding", bidding).map_err(|e| Reject { kind: RejectKind::Invalid, message: e })?;
                if self.biddings.contains_key(bidding) {
                    return no(RejectKind::Conflict, format!("bidding {bidding} already exists"));
                }
                self.open_day()?;
                positive_qty(*qty)?;
                self.check_band(instrument, Mode::Block, *limit_price)?;
                self.reserve(member, instrument, *side, *limit_price, *qty)?;
                self.biddings.insert(
                    bidding.clone(),
                    Bidding {
                        initiator: member.clone(),
                        instrument: instrument.clone(),
                        side: *side,
                        qty: *qty,
                        limit_price: *limit_price,
                        bids: Vec::new(),
                    },
                );
                out.events.push(Event::BiddingOpened { bidding: bidding.clone() });
            }
            Command::Bid { bidding, member, price, qty } => {
                self.require_member(actor, member)?;
                let b = self
                    .biddings
                    .get(bidding)
                    .ok_or_else(|| Reject { kind: RejectKind::NotFound, message: format!("no open bidding {bidding}") })?;
                if &b.initiator == member {
                    return no(RejectKind::Forbidden, "the initiator cannot bid in its own bidding");
                }
                if b.bids.len() >= MAX_BIDS_PER_BIDDING {
                    return no(RejectKind::Rule, format!("bidding {bidding} has the most bids allowed ({MAX_BIDS_PER_BIDDING})"));
                }
                let (instrument, side, limit) = (b.instrument.clone(), b.side, b.limit_price);
                positive_qty(*qty)?;
                let acceptable = if side == Side::Sell { *price >= limit } else { *price <= limit };
                if !acceptable {
                    return no(RejectKind::Rule, format!("bid price {} is worse than the bidding's limit {}", yuan(*price), yuan(limit)));
                }
                self.check_band(&instrument, Mode::Block, *price)?;
                self.reserve(member, &instrument, side.opposite(), *price, *qty)?;
                let b = self.biddings.get_mut(bidding).expect("exists");
                b.bids.push((member.clone(), *price, *qty));
                out.events.push(Event::BidAccepted { bidding: bidding.clone(), bid: b.bids.len() - 1 });
            }
            Command::CloseBidding { bidding } => {
                let b = self
                    .biddings
                    .get(bidding)
                    .ok_or_else(|| Reject { kind: RejectKind::NotFound, message: format!("no open bidding {bidding}") })?;
                if actor != self.operator && actor != b.initiator {
                    return no(RejectKind::Forbidden, format!("only the initiator or {} may close bidding {bidding}", self.operator));
                }
                let b = self.biddings.remove(bidding).expect("exists");
                let filled = self.close_bidding(&b, out);
                out.events.push(Event::BiddingClosed { bidding: bidding.clone(), filled });
            }
            Command::Uncross { instrument } => {
                self.require_operator(actor)?;
                self.open_day()?;
                self.uncross(instrument, env.at_ms, out)?;
            }
            Command::PrimaryAuction { auction, instrument, seller, authority_actor, volume, rules, bids, secondary_reference, seed } => {
                self.require_operator(actor)?;
                self.primary_auction(auction, instrument, seller, authority_actor, *volume, rules, bids, *secondary_reference, *seed, out)?;
            }
            Command::OpenAuction { auction, instrument, seller, volume, rules, pending, secondary_reference, seed } => {
                self.require_operator(actor)?;
                if self.auctions.contains_key(auction) || self.open_auctions.contains_key(auction) {
                    return no(RejectKind::Conflict, format!("auction {auction} already exists"));
                }
                positive_qty(*volume)?;
                self.account_for(seller, instrument)?;
                check_auction_rules(rules)?;
                let open = OpenAuction {
                    instrument: instrument.clone(),
                    seller: seller.clone(),
                    volume: *volume,
                    rules: rules.clone(),
                    pending: pending.clone(),
                    secondary_reference: *secondary_reference,
                    seed: *seed,
                    opened: self.day,
                    bids: Vec::new(),
                    placed: BTreeMap::new(),
                };
                self.open_auctions.insert(auction.clone(), open);
                out.events.push(Event::AuctionOpened { auction: auction.clone() });
            }
            Command::AuctionBid { auction, member, price, qty } => {
                self.require_member(actor, member)?;
                let a = self.open_auctions.get(auction).ok_or_else(|| not_open(auction))?;
                if *member == a.seller {
                    return no(RejectKind::Rule, format!("member {member} sells in auction {auction} and may not bid in it"));
                }
                self.account_for(member, &a.instrument)?;
                positive_qty(*qty)?;
                if qty % a.rules.lot_t != 0 {
                    return no(RejectKind::Rule, format!("{qty} t is not a multiple of the auction's {} t lot", a.rules.lot_t));
                }
                if *price < a.rules.reserve_price {
                    return no(
                        RejectKind::Rule,
                        format!("price {} is below the reserve price {}", yuan(*price), yuan(a.rules.reserve_price)),
                    );
                }
                if a.bids.len() >= MAX_BIDS_PER_AUCTION {
                    return no(RejectKind::Rule, format!("auction {auction} has the most bids allowed ({MAX_BIDS_PER_AUCTION})"));
                }
                if a.placed.get(member).is_some_and(|n| *n >= MAX_BIDS_PER_MEMBER_PER_AUCTION) {
                    return no(
                        RejectKind::Rule,
                        format!(
                            "member {member} has placed the most bids allowed in auction {auction} ({MAX_BIDS_PER_MEMBER_PER_AUCTION}, withdrawn ones included)"
                        ),
                    );
                }
                let cost = value(*price, *qty)?;
                let m = self.member_mut(member)?;
                let free = m.cash.balance - m.cash.reserved - m.cash.owed;
                if free < cost {
                    return no(
                        RejectKind::Insufficient,
                        format!("the bid guarantee of ¥{} is not covered: member {member} has ¥{} free cash", fen(cost), fen(free)),
                    );
                }
                m.cash.reserved += cost;
                let a = self.open_auctions.get_mut(auction).expect("open");
                a.bids.push(Some(auction::Bid { bidder: member.clone(), price: *price, qty: *qty }));
                *a.placed.entry(member.clone()).or_default() += 1;
                out.events.push(Event::AuctionBidAccepted { auction: auction.clone(), member: member.clone(), bid: a.bids.len() - 1 });
            }
            Command::WithdrawAuctionBid { auction, member, bid } => {
                self.require_member(actor, member)?;
                let a = self.open_auctions.get_mut(auction).ok_or_else(|| not_open(auction))?;
                let Some(b) = a.bids.get(*bid).and_then(Option::as_ref).filter(|b| b.bidder == *member) else {
                    return no(RejectKind::NotFound, format!("member {member} has no standing bid {bid} in auction {auction}"));
                };
                let cost = b.price * b.qty as i64;
                a.bids[*bid] = None;
                self.member_mut(member)?.cash.reserved -= cost;
                out.events.push(Event::AuctionBidWithdrawn { auction: auction.clone(), member: member.clone(), bid: *bid });
            }
            Command::ClearAuction { auction } => {
                self.require_operator(actor)?;
                let a = self.open_auctions.get(auction).ok_or_else(|| not_open(auction))?;
                // Every lookup that can fail comes before the first change.
                let mut accounts = BTreeMap::new();
                for b in a.bids.iter().flatten() {
                    accounts.insert(b.bidder.clone(), self.account_for(&b.bidder, &a.instrument)?);
                }
                let a = self.open_auctions.remove(auction).expect("open");
                self.clear_auction(auction, a, &accounts, out);
            }
        }
        Ok(())
    }

    // ------------------------------------------------------------------ permissions and lookups

    fn require_operator(&self, actor: &str) -> Result<(), Reject> {
        if actor == self.operator {
            Ok(())
        } else {
            no(RejectKind::Forbidden, format!("only the exchange operator {} may do this, not {actor}", self.operator))
        }
    }

    fn require_member(&self, actor: &str, member: &str) -> Result<(), Reject> {
        self.member(member)?;
        if actor == member {
            Ok(())
        } else {
            no(RejectKind::Forbidden, format!("{actor} may not act for member {member}"))
        }
    }

    fn require_member_or_operator(&self, actor: &str, member: &str) -> Result<(), Reject> {
        self.member(member)?;
        if actor == member || actor == self.operator {
            Ok(())
        } else {
            no(RejectKind::Forbidden, format!("{actor} may not act for member {member}"))
        }
    }

    fn member(&self, member: &str) -> Result<&Member, Reject> {
        self.members.get(member).ok_or_else(|| Reject { kind: RejectKind::NotFound, message: format!("unknown member {member}") })
    }

    fn member_mut(&mut self, member: &str) -> Result<&mut Member, Reject> {
        self.members.get_mut(member).ok_or_else(|| Reject { kind: RejectKind::NotFound, message: format!("unknown member {member}") })
    }

    fn instrument(&self, code: &str) -> Result<&Instrument, Reject> {
        self.instruments.get(code).ok_or_else(|| {
            let known: Vec<&str> = self.instruments.keys().map(String::as_str).collect();
            Reject { kind: RejectKind::NotFound, message: format!("unknown instrument {code} (listed: {})", known.join(", ")) }
        })
    }

    /// Lodged units of the member's free to sell or unlodge (0 without a position).
    fn free_lodged(&self, member: &str, instrument: &str) -> u64 {
        self.members.get(member).and_then(|m| m.positions.get(instrument)).map_or(0, Position::free)
    }

    fn position_mut(&mut self, member: &str, instrument: &str) -> &mut Position {
        let positions = &mut self.members.get_mut(member).expect("member checked").positions;
        // No key allocation on the hot path: the position usually exists.
        if !positions.contains_key(instrument) {
            positions.insert(instrument.to_string(), Position::default());
        }
        positions.get_mut(instrument).expect("inserted")
    }

    fn account_for(&self, member: &str, instrument: &str) -> Result<String, Reject> {
        let market = &self.instrument(instrument)?.spec.market;
        self.member(member)?.accounts.get(market).cloned().ok_or_else(|| Reject {
            kind: RejectKind::Invalid,
            message: format!("member {member} has no registry account in market {market}"),
        })
    }

    fn open_day(&self) -> Result<Date, Reject> {
        self.day.ok_or_else(|| Reject { kind: RejectKind::Rule, message: "the market is closed: no trading day is open".into() })
    }

    pub fn is_trading_day(&self, date: Date) -> bool {
        // 1970-01-01 was a Thursday: (days + 3) mod 7 is 0 on Mondays.
        let weekday = (date.0 + 3).rem_euclid(7);
        weekday < 5 && !self.holidays.contains(&date)
    }

    fn next_trading_day(&self, date: Date, lag: u8) -> Date {
        let mut d = date;
        for _ in 0..lag {
            d = d.plus_days(1);
            while !self.is_trading_day(d) {
                d = d.plus_days(1);
            }
        }
        d
    }

    fn next_instruction_id(&mut self) -> String {
        self.instruction_seq += 1;
        format!("xch-{}", self.instruction_seq)
    }

    // ------------------------------------------------------------------ pre-trade rules

    fn check_session(&self, at_ms: i64, ins: &Instrument, mode: Mode) -> Result<(), Reject> {
        let date = self.open_day()?;
        let local = at_ms + i64::from(ins.spec.utc_offset_minutes) * 60_000;
        let day = Date(local.div_euclid(86_400_000) as i32);
        let minute = (local.rem_euclid(86_400_000) / 60_000) as u16;
        if day != date {
            return no(RejectKind::Rule, format!("the order's time is on {day}, but the trading day is {date}"));
        }
        let spec = &ins.spec;
        let windows = || -> Box<dyn Iterator<Item = &Window> + '_> {
            match mode {
                Mode::Listed => Box::new(spec.listed.iter().chain(spec.opening_call.iter()).chain(spec.closing_call.iter())),
                Mode::Block => Box::new(spec.block.iter()),
            }
        };
        let name = if mode == Mode::Listed { "listed" } else { "block" };
        if windows().any(|w| w.contains(minute)) {
            return Ok(());
        }
        let list: Vec<String> = windows().map(Window::to_string).collect();
        no(
            RejectKind::Rule,
            format!(
                "{} trading in {} is closed at {:02}:{:02} local time (sessions: {})",
                name,
                ins.spec.code,
                minute / 60,
                minute % 60,
                if list.is_empty() { "none".into() } else { list.join(", ") }
            ),
        )
    }

    fn in_call(&self, at_ms: i64, ins: &Instrument) -> bool {
        let minute = ((at_ms + i64::from(ins.spec.utc_offset_minutes) * 60_000).rem_euclid(86_400_000) / 60_000) as u16;
        ins.spec.opening_call.is_some_and(|w| w.contains(minute)) || ins.spec.closing_call.is_some_and(|w| w.contains(minute))
    }

    fn check_band(&self, instrument: &str, mode: Mode, price: i64) -> Result<(), Reject> {
        let ins = self.instrument(instrument)?;
        let (low, high) = ins.spec.rules.band(mode, ins.previous_close);
        if price <= 0 || price < low || price > high {
            return no(
                RejectKind::Rule,
                format!(
                    "{mode:?} price {} is outside the band [{}, {}] around the previous close {}",
                    yuan(price),
                    yuan(low),
                    yuan(high),
                    yuan(ins.previous_close)
                ),
            );
        }
        Ok(())
    }

    fn check_order(&self, at_ms: i64, instrument: &str, mode: Mode, price: i64, qty: u64) -> Result<(), Reject> {
        let ins = self.instrument(instrument)?;
        positive_qty(qty)?;
        self.check_session(at_ms, ins, mode)?;
        let r = ins.spec.rules;
        ins.spec
            .rules
            .check(mode, ins.previous_close, price, qty)
            .map_err(|e| Reject { kind: RejectKind::Rule, message: e.to_string() })?;
        if mode == Mode::Listed && qty > ins.spec.max_order_t && qty < r.block_min_t {
            return no(RejectKind::Rule, format!("an order of {qty} t is above the largest order of {} t", ins.spec.max_order_t));
        }
        Ok(())
    }

    fn check_position_limit(&self, member: &str, instrument: &str, side: Side, qty: u64) -> Result<(), Reject> {
        let Some(limit) = self.instrument(instrument)?.spec.position_limit_t else { return Ok(()) };
        if side == Side::Sell {
            return Ok(());
        }
        let would = match self.member(member)?.positions.get(instrument) {
            Some(p) => p.lodged + p.receivable + p.buying + qty,
            None => qty,
        };
        if would > limit {
            return no(
                RejectKind::Rule,
                format!("member {member} would hold up to {would} t of {instrument}, above the position limit of {limit} t"),
            );
        }
        Ok(())
    }

    /// Reserves what an order sells (units) or pays (cash at `price`).
    fn reserve(&mut self, member: &str, instrument: &str, side: Side, price: i64, qty: u64) -> Result<(), Reject> {
        match side {
            Side::Sell => {
                // Looked up before any position is made: a refusal changes nothing.
                let free = self.free_lodged(member, instrument);
                if free < qty {
                    return no(
                        RejectKind::Insufficient,
                        format!("member {member} has {free} t of {instrument} lodged and free to sell; {qty} t needed"),
                    );
                }
                self.position_mut(member, instrument).reserved += qty;
            }
            Side::Buy => {
                let cost = value(price, qty)?;
                let m = self.member_mut(member)?;
                let free = m.cash.balance - m.cash.reserved - m.cash.owed;
                if free < cost {
                    return no(RejectKind::Insufficient, format!("member {member} has ¥{} free cash; ¥{} needed", fen(free), fen(cost)));
                }
                m.cash.reserved += cost;
                self.position_mut(member, instrument).buying += qty;
            }
        }
        Ok(())
    }

    fn release(&mut self, member: &str, instrument: &str, side: Side, price: i64, qty: u64) {
        match side {
            Side::Sell => self.position_mut(member, instrument).reserved -= qty,
            Side::Buy => {
                self.members.get_mut(member).expect("member").cash.reserved -= price * qty as i64;
                self.position_mut(member, instrument).buying -= qty;
            }
        }
    }

    // ------------------------------------------------------------------ orders

    #[allow(clippy::too_many_arguments)]
    fn place(
        &mut self,
        at_ms: i64,
        order: OrderId,
        member: &str,
        instrument: &str,
        side: Side,
        price: Option<i64>,
        qty: u64,
        tif: Tif,
        out: &mut Outcome,
    ) -> Result<(), Reject> {
        if self.used_order_ids.contains(&order) {
            return no(RejectKind::Conflict, format!("order id {order} is already used"));
        }
        if self.orders.len() >= MAX_OPEN_ORDERS {
            return no(RejectKind::Rule, format!("the venue holds the most open orders allowed ({MAX_OPEN_ORDERS})"));
        }
        let ins = self.instrument(instrument)?;
        if price.is_none() && tif == Tif::Gtc {
            return no(RejectKind::Invalid, "a market order cannot rest: use IOC or FOK");
        }
        // A market order is protected at the band's edge: it reserves and trades at most there.
        let (low, high) = ins.spec.rules.band(Mode::Listed, ins.previous_close);
        let limit = price.unwrap_or(if side == Side::Buy { high } else { low });
        self.check_order(at_ms, instrument, Mode::Listed, limit, qty)?;
        let ins = self.instrument(instrument)?;
        let calling = self.in_call(at_ms, ins);
        if calling && tif != Tif::Gtc {
            return no(RejectKind::Rule, "during a call auction only limit orders that rest (GTC) are accepted");
        }
        self.check_position_limit(member, instrument, side, qty)?;
        self.reserve(member, instrument, side, limit, qty)?;
        self.used_order_ids.insert(order);
        self.orders.insert(
            order,
            OpenOrder {
                member: self.members[member].name.clone(),
                instrument: self.instruments[instrument].code.clone(),
                side,
                price: limit,
                remaining: qty,
            },
        );
        out.events.push(Event::OrderAccepted { order });
        let owner = self.member_numbers[member];
        let ins = self.instruments.get_mut(instrument).expect("listed");
        if calling {
            ins.call.push(order);
            out.events.push(Event::OrderRested { order, qty });
            return Ok(());
        }
        let mut events = std::mem::take(&mut self.scratch);
        let command = book::Command::Place { id: order, owner, side, price: Some(limit), qty, tif };
        ins.book.execute(&command, &mut events).expect("validated order");
        self.apply_book_events(instrument, order, &events, at_ms, out);
        events.clear();
        self.scratch = events;
        Ok(())
    }

    fn apply_book_events(&mut self, instrument: &str, _taker: OrderId, events: &[book::Event], _at_ms: i64, out: &mut Outcome) {
        for e in events {
            match *e {
                book::Event::Trade { maker, taker, price, qty } => {
                    let t = &self.orders[&taker];
                    let (buy, sell) = if t.side == Side::Buy { (taker, maker) } else { (maker, taker) };
                    let (b, s) = (&self.orders[&buy], &self.orders[&sell]);
                    let (buyer, seller, reserved_price) = (b.member.clone(), s.member.clone(), b.price);
                    self.fill(buy, qty);
                    self.fill(sell, qty);
                    self.trade(instrument, TradeKind::Listed, &buyer, &seller, reserved_price, price, qty, out);
                }
                book::Event::Rested { id, qty } => out.events.push(Event::OrderRested { order: id, qty }),
                book::Event::Cancelled { id, qty } => self.finish_order(id, qty, out),
                book::Event::Accepted { .. } | book::Event::Amended { .. } => {}
            }
        }
    }

    /// An order's remaining quantity went down by `qty` through a trade.
    fn fill(&mut self, order: OrderId, qty: u64) {
        let o = self.orders.get_mut(&order).expect("filled order is open");
        o.remaining -= qty;
        if o.remaining == 0 {
            self.orders.remove(&order);
        }
    }

    /// The rest of an order leaves: its reservation is released.
    fn finish_order(&mut self, order: OrderId, cancelled: u64, out: &mut Outcome) {
        if let Some(o) = self.orders.get(&order).cloned() {
            debug_assert_eq!(o.remaining, cancelled);
            self.release(&o.member, &o.instrument, o.side, o.price, o.remaining);
            self.orders.remove(&order);
        }
        out.events.push(Event::OrderDone { order, cancelled });
    }

    /// Books a trade: the buyer's reservation at `reserved_price` becomes an obligation at
    /// `price`; the seller's reserved units become owed.
    #[allow(clippy::too_many_arguments)]
    fn trade(
        &mut self,
        instrument: &str,
        kind: TradeKind,
        buyer: &str,
        seller: &str,
        reserved_price: i64,
        price: i64,
        qty: u64,
        out: &mut Outcome,
    ) {
        let date = self.day.expect("trades happen on an open day");
        let ins = &self.instruments[instrument];
        let (lag, code) = (ins.spec.settlement_days, ins.code.clone());
        let settles = self.next_trading_day(date, lag);
        let value = price * qty as i64;
        {
            let b = self.members.get_mut(buyer).expect("buyer");
            b.cash.reserved -= reserved_price * qty as i64;
            b.cash.owed += value;
        }
        {
            let p = self.position_mut(buyer, instrument);
            p.buying -= qty;
            p.receivable += qty;
        }
        {
            let s = self.position_mut(seller, instrument);
            s.reserved -= qty;
            s.owed += qty;
        }
        let trade = Trade {
            id: self.next_trade,
            instrument: code,
            kind,
            buyer: self.members[buyer].name.clone(),
            seller: self.members[seller].name.clone(),
            price,
            qty,
            date,
            settles,
        };
        self.next_trade += 1;
        self.instruments.get_mut(instrument).expect("listed").day.record(&trade);
        self.unsettled.push(self.trades.len());
        out.events.push(Event::Traded(trade.clone()));
        self.trades.push(trade);
    }

    fn take(&mut self, at_ms: i64, order: OrderId, member: &str, maker: OrderId, qty: u64, out: &mut Outcome) -> Result<(), Reject> {
        if self.used_order_ids.contains(&order) {
            return no(RejectKind::Conflict, format!("order id {order} is already used"));
        }
        let m = self
            .orders
            .get(&maker)
            .cloned()
            .ok_or_else(|| Reject { kind: RejectKind::NotFound, message: format!("no open order {maker} to take") })?;
        let ins = self.instrument(&m.instrument)?;
        if ins.spec.style != Style::Agreement {
            return no(RejectKind::Rule, format!("{} does not trade by listed agreement", ins.spec.code));
        }
        if &*m.member == member {
            return no(RejectKind::Rule, "a member cannot take its own order");
        }
        let levels = ins.book.depth(m.side, ins.spec.agreement_levels);
        if !levels.iter().any(|(p, _)| *p == m.price) {
            return no(
                RejectKind::Rule,
                format!("order {maker} at {} is not among the best {} price levels", yuan(m.price), ins.spec.agreement_levels),
            );
        }
        if qty > m.remaining {
            return no(RejectKind::Rule, format!("order {maker} offers {} t; {qty} t cannot be taken from it", m.remaining));
        }
        let instrument = m.instrument.to_string();
        self.check_order(at_ms, &instrument, Mode::Listed, m.price, qty)?;
        let side = m.side.opposite();
        self.check_position_limit(member, &instrument, side, qty)?;
        self.reserve(member, &instrument, side, m.price, qty)?;
        self.used_order_ids.insert(order);
        out.events.push(Event::OrderAccepted { order });
        let ins = self.instruments.get_mut(&instrument).expect("listed");
        let mut events = Vec::new();
        let command = if qty == m.remaining {
            book::Command::Cancel { id: maker }
        } else {
            book::Command::Amend { id: maker, qty: m.remaining - qty }
        };
        ins.book.execute(&command, &mut events).expect("maker rests");
        self.fill(maker, qty);
        let (buyer, seller) =
            if side == Side::Buy { (member.to_string(), m.member.to_string()) } else { (m.member.to_string(), member.to_string()) };
        let reserved_price = m.price;
        self.trade(&instrument, TradeKind::Agreement, &buyer, &seller, reserved_price, m.price, qty, out);
        out.events.push(Event::OrderDone { order, cancelled: 0 });
        Ok(())
    }

    fn close_bidding(&mut self, b: &Bidding, out: &mut Outcome) -> u64 {
        // Best price first (highest for an offer to sell), then arrival.
        let mut order: Vec<usize> = (0..b.bids.len()).collect();
        order.sort_by_key(|&i| (if b.side == Side::Sell { -b.bids[i].1 } else { b.bids[i].1 }, i));
        let mut left = b.qty;
        let mut fills = Vec::new();
        for &i in &order {
            let q = b.bids[i].2.min(left);
            left -= q;
            fills.push((i, q));
        }
        let uniform = fills.iter().filter(|(_, q)| *q > 0).map(|(i, _)| b.bids[*i].1).next_back();
        let filled = b.qty - left;
        for (i, q) in fills {
            let (bidder, bid_price, bid_qty) = b.bids[i].clone();
            let bidder_side = b.side.opposite();
            if q > 0 {
                let price = match b.instruments_pricing(self) {
                    BiddingPricing::PayAsBid => bid_price,
                    BiddingPricing::Uniform => uniform.expect("a fill"),
                };
                let (buyer, seller) = if bidder_side == Side::Buy { (&bidder, &b.initiator) } else { (&b.initiator, &bidder) };
                // The initiator reserved at its limit, the bidder at its bid.
                let buyer_reserved = if bidder_side == Side::Buy { bid_price } else { b.limit_price };
                // A seller's reserved units are tonnes; a buyer's cash is released above the price.
                let (buyer, seller) = (buyer.clone(), seller.clone());
                self.trade(&b.instrument, TradeKind::Bidding, &buyer, &seller, buyer_reserved, price, q, out);
            }
            if bid_qty > q {
                self.release(&bidder, &b.instrument, bidder_side, bid_price, bid_qty - q);
            }
        }
        if left > 0 {
            self.release(&b.initiator, &b.instrument, b.side, b.limit_price, left);
        }
        filled
    }

    /// Matches the call auction's orders at one price: the price that trades the most; then
    /// the least imbalance; then the one nearest the previous close (then the lower).
    fn uncross(&mut self, instrument: &str, at_ms: i64, out: &mut Outcome) -> Result<(), Reject> {
        let ins = self.instrument(instrument)?;
        if ins.spec.style != Style::Continuous {
            return no(RejectKind::Rule, format!("{instrument} has no call auctions"));
        }
        let calls: Vec<(OrderId, OpenOrder)> = ins.call.iter().map(|id| (*id, self.orders[id].clone())).collect();
        let reference = ins.previous_close;
        let closing = ins.spec.closing_call.is_some_and(|w| {
            let minute = ((at_ms + i64::from(ins.spec.utc_offset_minutes) * 60_000).rem_euclid(86_400_000) / 60_000) as u16;
            minute >= w.from_min
        });
        let mut prices: Vec<i64> = calls.iter().map(|(_, o)| o.price).collect();
        prices.sort_unstable();
        prices.dedup();
        let mut best: Option<(u64, u64, i64, i64)> = None; // (volume, imbalance, distance, price)
        for &p in &prices {
            let demand: u64 = calls.iter().filter(|(_, o)| o.side == Side::Buy && o.price >= p).map(|(_, o)| o.remaining).sum();
            let supply: u64 = calls.iter().filter(|(_, o)| o.side == Side::Sell && o.price <= p).map(|(_, o)| o.remaining).sum();
            let volume = demand.min(supply);
            if volume == 0 {
                continue;
            }
            let key = (volume, demand.abs_diff(supply), (p - reference).abs(), p);
            let better = match best {
                None => true,
                Some(b) => {
                    key.0 > b.0 || (key.0 == b.0 && (key.1 < b.1 || (key.1 == b.1 && (key.2 < b.2 || (key.2 == b.2 && key.3 < b.3)))))
                }
            };
            if better {
                best = Some(key);
            }
        }
        let ins = self.instruments.get_mut(instrument).expect("listed");
        let collected = std::mem::take(&mut ins.call);
        if let Some((volume, _, _, price)) = best {
            // Price-time priority on each side: better price first, then arrival.
            let mut buys: Vec<(OrderId, OpenOrder)> =
                calls.iter().filter(|(_, o)| o.side == Side::Buy && o.price >= price).cloned().collect();
            let mut sells: Vec<(OrderId, OpenOrder)> =
                calls.iter().filter(|(_, o)| o.side == Side::Sell && o.price <= price).cloned().collect();
            let pos = |id: &OrderId| collected.iter().position(|x| x == id).expect("collected");
            buys.sort_by_key(|(id, o)| (-o.price, pos(id)));
            sells.sort_by_key(|(id, o)| (o.price, pos(id)));
            let (mut bi, mut si, mut left) = (0, 0, volume);
            let mut bleft: Vec<u64> = buys.iter().map(|(_, o)| o.remaining).collect();
            let mut sleft: Vec<u64> = sells.iter().map(|(_, o)| o.remaining).collect();
            while left > 0 {
                let q = bleft[bi].min(sleft[si]).min(left);
                let (b, s) = (&buys[bi], &sells[si]);
                let (bid, b_member, b_price, sid, s_member) = (b.0, b.1.member.to_string(), b.1.price, s.0, s.1.member.to_string());
                self.fill(bid, q);
                self.fill(sid, q);
                self.trade(instrument, TradeKind::Call, &b_member, &s_member, b_price, price, q, out);
                bleft[bi] -= q;
                sleft[si] -= q;
                left -= q;
                if bleft[bi] == 0 {
                    bi += 1;
                }
                if sleft[si] == 0 {
                    si += 1;
                }
            }
            if closing {
                self.instruments.get_mut(instrument).expect("listed").closing_auction_price = Some(price);
            }
        }
        // What did not trade goes on to the continuous book (it cannot cross there: the
        // uncrossing price took every crossing quantity) or, after the closing call, expires.
        for id in collected {
            let Some(o) = self.orders.get(&id).cloned() else { continue };
            if closing {
                self.finish_order(id, o.remaining, out);
            } else {
                let owner = self.member_numbers[&*o.member];
                let mut events = Vec::new();
                let command = book::Command::Place { id, owner, side: o.side, price: Some(o.price), qty: o.remaining, tif: Tif::Gtc };
                self.instruments.get_mut(instrument).expect("listed").book.execute(&command, &mut events).expect("valid");
                self.apply_book_events(instrument, id, &events, at_ms, out);
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn primary_auction(
        &mut self,
        auction: &str,
        instrument: &str,
        seller: &str,
        authority_actor: &str,
        volume: u64,
        rules: &AuctionRules,
        bids: &[auction::Bid],
        secondary_reference: Option<i64>,
        seed: u64,
        out: &mut Outcome,
    ) -> Result<(), Reject> {
        if self.auctions.contains_key(auction) || self.open_auctions.contains_key(auction) {
            return no(RejectKind::Conflict, format!("auction {auction} was already run"));
        }
        positive_qty(volume)?;
        let from_account = self.account_for(seller, instrument)?;
        let ins = self.instrument(instrument)?;
        let unit = ins.spec.unit.clone();
        let reference = secondary_reference.or(Some(ins.previous_close));
        // Bid guarantees: every bid must be covered by the bidder's free cash, counted over all
        // of the bidder's bids, before the auction clears.
        let mut covered: BTreeMap<&str, i64> = BTreeMap::new();
        let mut valid_bids = Vec::new();
        let mut problems = Vec::new();
        for (i, b) in bids.iter().enumerate() {
            let Ok(m) = self.member(&b.bidder) else {
                problems.push(format!("bid {}: unknown member {}", i + 1, b.bidder));
                continue;
            };
            self.account_for(&b.bidder, instrument)
                .map_err(|e| Reject { kind: e.kind, message: format!("bid {}: {}", i + 1, e.message) })?;
            let cost = value(b.price, b.qty)?;
            let free = m.cash.balance - m.cash.reserved - m.cash.owed;
            let used = covered.entry(b.bidder.as_str()).or_insert(0);
            if *used + cost > free {
                problems.push(format!(
                    "bid {} of {}: ¥{} is not covered by the bid guarantee (¥{} free)",
                    i + 1,
                    b.bidder,
                    fen(cost),
                    fen(free - *used)
                ));
                continue;
            }
            *used += cost;
            valid_bids.push(b.clone());
        }
        if !problems.is_empty() {
            return no(RejectKind::Insufficient, problems.join("; "));
        }
        let mut record = AuctionRecord {
            auction: auction.to_string(),
            instrument: instrument.to_string(),
            date: self.day,
            volume,
            reserve_price: rules.reserve_price,
            lot: rules.lot_t,
            bids: valid_bids.len(),
            bidders: valid_bids.iter().map(|b| b.bidder.as_str()).collect::<BTreeSet<_>>().len(),
            bid_qty: valid_bids.iter().map(|b| b.qty).sum(),
            outcome: AuctionOutcome::Cancelled { reason: String::new() },
        };
        match auction::clear(volume, &valid_bids, rules, seed, reference) {
            Err(c) => {
                record.outcome = AuctionOutcome::Cancelled { reason: c.to_string() };
                out.events.push(Event::AuctionCancelled { auction: auction.to_string(), reason: c.to_string() })
            }
            Ok(r) => {
                // Winners' accounts before the first change: a refusal changes nothing.
                let mut accounts = BTreeMap::new();
                for bidder in r.allocations.keys() {
                    accounts.insert(bidder.clone(), self.account_for(bidder, instrument)?);
                }
                self.pay_for_awards(auction, seller, &r, out, |bidder, q| {
                    // Auction delivery from the authority's account, recorded as allocation.
                    let to = accounts[bidder].clone();
                    (
                        authority_actor.to_string(),
                        RegistryCommand::Allocate { from: from_account.clone(), to, unit: unit.clone(), quantity: ets_core::Tonnes(q) },
                    )
                });
                record.outcome = AuctionOutcome::Cleared { price: r.clearing_price, sold: r.sold, allocations: r.allocations };
            }
        }
        self.auctions.insert(auction.to_string(), record);
        Ok(())
    }

    /// A cleared auction's money and units: each winner pays the clearing price, the seller
    /// receives the proceeds, and `delivery` names the registry instruction (actor, command)
    /// that delivers a winner's units.
    fn pay_for_awards(
        &mut self,
        auction: &str,
        seller: &str,
        r: &auction::AuctionResult,
        out: &mut Outcome,
        delivery: impl Fn(&str, u64) -> (String, RegistryCommand),
    ) {
        let mut proceeds = 0;
        for (bidder, q) in &r.allocations {
            let cost = r.clearing_price * *q as i64;
            proceeds += cost;
            let m = self.members.get_mut(bidder).expect("bidder is a member");
            m.cash.balance -= cost;
            out.events.push(Event::Cash { member: bidder.clone(), delta_fen: -cost, balance_fen: m.cash.balance });
            let (actor, command) = delivery(bidder, *q);
            let id = self.next_instruction_id();
            out.instructions.push(Instruction { id, actor, command });
        }
        let s = self.members.get_mut(seller).expect("seller is a member");
        s.cash.balance += proceeds;
        out.events.push(Event::Cash { member: seller.to_string(), delta_fen: proceeds, balance_fen: s.cash.balance });
        out.events.push(Event::AuctionCleared { auction: auction.to_string(), price: r.clearing_price, sold: r.sold });
    }

    /// Clears an auction whose window has closed. The bid guarantees are released; winners pay
    /// the clearing price out of them; units go from the pending to the winners' accounts, and
    /// what is not sold goes back to the seller's account.
    fn clear_auction(&mut self, auction: &str, a: OpenAuction, accounts: &BTreeMap<String, String>, out: &mut Outcome) {
        let bids: Vec<auction::Bid> = a.bids.into_iter().flatten().collect();
        for b in &bids {
            self.members.get_mut(&b.bidder).expect("bidder is a member").cash.reserved -= b.price * b.qty as i64;
        }
        let reference = a.secondary_reference.or_else(|| self.instruments.get(&a.instrument).map(|i| i.previous_close));
        let mut record = AuctionRecord {
            auction: auction.to_string(),
            instrument: a.instrument.clone(),
            date: self.day.or(a.opened),
            volume: a.volume,
            reserve_price: a.rules.reserve_price,
            lot: a.rules.lot_t,
            bids: bids.len(),
            bidders: bids.iter().map(|b| b.bidder.as_str()).collect::<BTreeSet<_>>().len(),
            bid_qty: bids.iter().map(|b| b.qty).sum(),
            outcome: AuctionOutcome::Cancelled { reason: String::new() },
        };
        out.events.push(Event::AuctionBidsClosed {
            auction: auction.to_string(),
            bids: record.bids,
            bidders: record.bidders,
            bid_qty: record.bid_qty,
        });
        let cleared = if bids.is_empty() {
            Err(auction::Cancellation::NoValidBids)
        } else {
            auction::clear(a.volume, &bids, &a.rules, a.seed, reference)
        };
        let mut sold = 0;
        match cleared {
            Err(c) => {
                record.outcome = AuctionOutcome::Cancelled { reason: c.to_string() };
                out.events.push(Event::AuctionCancelled { auction: auction.to_string(), reason: c.to_string() });
            }
            Ok(r) => {
                let (operator, pending) = (self.operator.clone(), a.pending.clone());
                self.pay_for_awards(auction, &a.seller, &r, out, |bidder, q| {
                    let to = accounts[bidder].clone();
                    (operator.clone(), RegistryCommand::DeliverPending { pending: pending.clone(), quantity: ets_core::Tonnes(q), to })
                });
                sold = r.sold;
                record.outcome = AuctionOutcome::Cleared { price: r.clearing_price, sold: r.sold, allocations: r.allocations };
            }
        }
        if sold < a.volume {
            let id = self.next_instruction_id();
            out.instructions.push(Instruction {
                id,
                actor: self.operator.clone(),
                command: RegistryCommand::VoidPending { pending: a.pending.clone() },
            });
        }
        self.auctions.insert(auction.to_string(), record);
    }

    // ------------------------------------------------------------------ close and settlement

    fn close_day(&mut self, date: Date, out: &mut Outcome) {
        // Orders are day orders: whatever rests is cancelled and its reservation released.
        let open: Vec<(OrderId, u64)> = self.orders.iter().map(|(id, o)| (*id, o.remaining)).collect();
        for (id, remaining) in open {
            let instrument = self.orders[&id].instrument.clone();
            let ins = self.instruments.get_mut(&*instrument).expect("listed");
            if let Some(pos) = ins.call.iter().position(|x| *x == id) {
                ins.call.remove(pos);
            } else {
                let mut events = Vec::new();
                ins.book.execute(&book::Command::Cancel { id }, &mut events).expect("open order rests");
            }
            self.finish_order(id, remaining, out);
        }
        let deals: Vec<String> = self.blocks.keys().cloned().collect();
        for deal in deals {
            let d = self.blocks.remove(&deal).expect("deal");
            self.release(&d.proposer, &d.instrument, d.side, d.price, d.qty);
            out.events.push(Event::BlockWithdrawn { deal });
        }
        let biddings: Vec<String> = self.biddings.keys().cloned().collect();
        for bidding in biddings {
            let b = self.biddings.remove(&bidding).expect("bidding");
            let filled = self.close_bidding(&b, out);
            out.events.push(Event::BiddingClosed { bidding, filled });
        }
        let mut bars = Vec::new();
        for (code, ins) in self.instruments.iter_mut() {
            let mut bar = ins.day.clone();
            bar.close = match ins.spec.close_rule {
                CloseRule::ListedVwap => {
                    if bar.listed_volume > 0 {
                        // Rounded half up to the tick.
                        let v = i128::from(bar.listed_value_fen);
                        let q = i128::from(bar.listed_volume);
                        ((2 * v + q) / (2 * q)) as i64
                    } else {
                        ins.previous_close
                    }
                }
                CloseRule::ClosingAuction => ins.closing_auction_price.or(bar.last).unwrap_or(ins.previous_close),
            };
            ins.previous_close = bar.close;
            ins.bars.push(bar.clone());
            bars.push((code.clone(), bar));
        }
        out.events.push(Event::DayClosed { bars });
        self.settle(date, out);
        self.day = None;
    }

    /// Delivery versus payment of every trade due on or before `date`, netted per member.
    fn settle(&mut self, date: Date, out: &mut Outcome) {
        let (due, later): (Vec<usize>, Vec<usize>) =
            std::mem::take(&mut self.unsettled).into_iter().partition(|&t| self.trades[t].settles <= date);
        self.unsettled = later;
        if due.is_empty() {
            return;
        }
        // Per (instrument, member): gross sold, gross bought, cash paid, cash received. Summed in
        // a hash map (one probe per side of a trade), then applied in key order.
        let mut sums: ahash::AHashMap<SettlementKey, SettlementSums> = ahash::AHashMap::new();
        let mut value_total = 0i64;
        for &i in &due {
            let t = &self.trades[i];
            let v = t.value_fen();
            value_total += v;
            let s = sums.entry((t.instrument.clone(), t.seller.clone())).or_default();
            s.0 += t.qty;
            s.3 += v;
            let b = sums.entry((t.instrument.clone(), t.buyer.clone())).or_default();
            b.1 += t.qty;
            b.2 += v;
        }
        let mut gross: Vec<(SettlementKey, SettlementSums)> = sums.into_iter().collect();
        gross.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for ((instrument, member), (_, bought, paid, received)) in &gross {
            let m = self.members.get_mut(&**member).expect("member");
            m.cash.owed -= paid;
            m.cash.balance += received - paid;
            if *bought > 0 {
                m.positions.get_mut(&**instrument).expect("position").receivable -= bought;
            }
        }
        let due_count = due.len();
        // Netted per member: a net seller delivers the difference from its lodgements into
        // clearing; a net buyer receives the difference from clearing into its account; what a
        // member both sold and bought stays lodged (the units bought replace the units sold).
        // Deliveries into clearing come first, so clearing never goes short.
        let mut receipts = Vec::new();
        for ((instrument, member), (sold, bought, _, _)) in gross {
            let market = self.instruments[&*instrument].spec.market.clone();
            let clearing = self.clearing[&market].clone();
            let account = self.members[&*member].accounts.get(&market).cloned();
            let p = self.position_mut(&member, &instrument);
            p.owed -= sold;
            if sold > bought {
                for (pending, q) in take_lodged(p, sold - bought) {
                    let id = self.next_instruction_id();
                    out.instructions.push(Instruction {
                        id,
                        actor: self.operator.clone(),
                        command: RegistryCommand::DeliverPending { pending, quantity: ets_core::Tonnes(q), to: clearing.clone() },
                    });
                }
            } else if bought > sold {
                let account = account.expect("members trade only where they hold an account");
                receipts.push((clearing, account, instrument, bought - sold));
            }
        }
        for (clearing, account, instrument, q) in receipts {
            let unit = self.instruments[&*instrument].spec.unit.clone();
            let id = self.next_instruction_id();
            out.instructions.push(Instruction {
                id,
                actor: self.operator.clone(),
                command: RegistryCommand::Transfer { from: clearing, to: account, unit, quantity: ets_core::Tonnes(q) },
            });
        }
        self.settled_cash_fen += value_total;
        out.events.push(Event::Settled { date, trades: due_count as u64, value_fen: value_total });
    }

    // ------------------------------------------------------------------ invariants and hash

    /// Conservation: cash is neither created nor destroyed by trading (balances add up to net
    /// deposits plus auction proceeds paid out of balances, which net to zero); units owed by
    /// sellers equal units receivable by buyers, per instrument; nothing is negative; every
    /// reservation is backed by an open order, deal or bid.
    pub fn check_invariants(&self) -> Result<(), String> {
        let total: i64 = self.members.values().map(|m| m.cash.balance).sum();
        if total != self.deposits_fen {
            return Err(format!("cash balances add up to {total} fen, net deposits are {}", self.deposits_fen));
        }
        for (name, m) in &self.members {
            if m.cash.balance < 0 || m.cash.reserved < 0 || m.cash.owed < 0 || m.cash.reserved + m.cash.owed > m.cash.balance {
                return Err(format!("member {name}: cash {:?} is inconsistent", m.cash));
            }
        }
        for code in self.instruments.keys() {
            let owed: u64 = self.members.values().filter_map(|m| m.positions.get(code)).map(|p| p.owed).sum();
            let receivable: u64 = self.members.values().filter_map(|m| m.positions.get(code)).map(|p| p.receivable).sum();
            if owed != receivable {
                return Err(format!("{code}: {owed} t owed by sellers but {receivable} t receivable by buyers"));
            }
            let unsettled: u64 = self.unsettled.iter().map(|&t| &self.trades[t]).filter(|t| *t.instrument == **code).map(|t| t.qty).sum();
            if unsettled != owed {
                return Err(format!("{code}: {unsettled} t in unsettled trades but {owed} t owed"));
            }
            for (name, m) in &self.members {
                if let Some(p) = m.positions.get(code) {
                    let lodged: u64 = p.lodgements.iter().map(|(_, q)| q).sum();
                    if lodged != p.lodged || p.reserved + p.owed > p.lodged {
                        return Err(format!("member {name} {code}: position {p:?} is inconsistent"));
                    }
                    let open_sells: u64 = self
                        .orders
                        .values()
                        .filter(|o| &*o.member == name && &*o.instrument == code && o.side == Side::Sell)
                        .map(|o| o.remaining)
                        .sum::<u64>()
                        + self
                            .blocks
                            .values()
                            .filter(|d| &d.proposer == name && &d.instrument == code && d.side == Side::Sell)
                            .map(|d| d.qty)
                            .sum::<u64>()
                        + self.biddings.values().map(|b| b.reserved_units(name, code)).sum::<u64>();
                    if open_sells != p.reserved {
                        return Err(format!("member {name} {code}: {} t reserved but {open_sells} t on open sell orders", p.reserved));
                    }
                }
            }
        }
        Ok(())
    }

    /// A SHA-256 over everything that decides future behaviour: books in priority order, open
    /// orders, cash, positions, deals, biddings, closes, bars and unsettled trades.
    pub fn state_hash(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        let mut put = |bytes: &[u8]| {
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        };
        put(&postcard::to_allocvec(&(&self.day, self.next_trade, self.instruction_seq, self.deposits_fen)).expect("encode"));
        for (code, ins) in &self.instruments {
            put(code.as_bytes());
            put(&postcard::to_allocvec(&(ins.previous_close, &ins.call, &ins.day, &ins.bars, ins.closing_auction_price)).expect("encode"));
            put(&postcard::to_allocvec(&(ins.book.orders(Side::Buy), ins.book.orders(Side::Sell))).expect("encode"));
        }
        put(&postcard::to_allocvec(&self.orders).expect("encode"));
        for (name, m) in &self.members {
            put(name.as_bytes());
            put(&postcard::to_allocvec(&(&m.cash, &m.positions)).expect("encode"));
        }
        put(&postcard::to_allocvec(&(
            &self.blocks.keys().collect::<Vec<_>>(),
            &self.biddings.keys().collect::<Vec<_>>(),
            &self.open_auctions,
            &self.unsettled,
            self.trades.len(),
        ))
        .expect("encode"));
        h.finalize().into()
    }
}

impl Bidding {
    fn instruments_pricing(&self, venue: &Venue) -> BiddingPricing {
        venue.instruments[&self.instrument].spec.bidding_pricing
    }

    /// Units this bidding holds reserved for `member` (the initiator's offer, or bids to sell).
    fn reserved_units(&self, member: &str, instrument: &str) -> u64 {
        if self.instrument != instrument {
            return 0;
        }
        let mut q = 0;
        if self.initiator == member && self.side == Side::Sell {
            q += self.qty;
        }
        if self.side == Side::Buy {
            q += self.bids.iter().filter(|(b, _, _)| b == member).map(|(_, _, q)| q).sum::<u64>();
        }
        q
    }
}

impl DayBar {
    fn empty(date: Date, previous_close: i64) -> DayBar {
        DayBar {
            date,
            open: None,
            high: None,
            low: None,
            last: None,
            close: previous_close,
            previous_close,
            listed_volume: 0,
            listed_value_fen: 0,
            block_volume: 0,
            other_volume: 0,
            value_fen: 0,
            trades: 0,
        }
    }

    fn record(&mut self, t: &Trade) {
        match t.kind {
            TradeKind::Listed | TradeKind::Call | TradeKind::Agreement => {
                // Open = first listed trade; high/low/last from listed trading.
                self.open.get_or_insert(t.price);
                self.high = Some(self.high.map_or(t.price, |h| h.max(t.price)));
                self.low = Some(self.low.map_or(t.price, |l| l.min(t.price)));
                self.last = Some(t.price);
                self.listed_volume += t.qty;
                self.listed_value_fen += t.value_fen();
            }
            TradeKind::Block => self.block_volume += t.qty,
            TradeKind::Bidding => self.other_volume += t.qty,
        }
        self.value_fen += t.value_fen();
        self.trades += 1;
    }
}

fn validate_spec(spec: &InstrumentSpec) -> Result<(), Reject> {
    let mut problems = Vec::new();
    if spec.reference_price <= 0 {
        problems.push("reference_price must be positive".to_string());
    }
    if spec.listed.is_empty() && spec.style == Style::Agreement {
        problems.push("an agreement-style instrument needs listed sessions".to_string());
    }
    for w in spec.listed.iter().chain(&spec.block).chain(spec.opening_call.iter()).chain(spec.closing_call.iter()) {
        if w.from_min >= w.to_min || w.to_min > 24 * 60 {
            problems.push(format!("session {w} is empty or past midnight"));
        }
    }
    if spec.style == Style::Continuous && spec.opening_call.is_none() && spec.closing_call.is_none() {
        problems.push("a continuous instrument needs an opening or a closing call".to_string());
    }
    if spec.settlement_days > 5 {
        problems.push(format!("settlement after {} days is not supported (at most T+5)", spec.settlement_days));
    }
    if spec.agreement_levels == 0 {
        problems.push("agreement_levels must be at least 1".to_string());
    }
    if spec.rules.listed_band_bp >= 10_000 || spec.rules.block_band_bp >= 10_000 {
        problems.push("price bands must be below 100%".to_string());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        no(RejectKind::Invalid, format!("instrument {}: {}", spec.code, problems.join("; ")))
    }
}

/// Takes `qty` units out of the lodgements, oldest first: (pending, quantity) to deliver.
fn take_lodged(p: &mut Position, qty: u64) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut left = qty;
    while left > 0 {
        let (pending, held) = p.lodgements.first_mut().expect("lodged units back every free unit");
        let q = (*held).min(left);
        out.push((pending.clone(), q));
        *held -= q;
        left -= q;
        if *held == 0 {
            p.lodgements.remove(0);
        }
    }
    p.lodged -= qty;
    out
}

fn not_open(auction: &str) -> Reject {
    Reject { kind: RejectKind::NotFound, message: format!("no auction {auction} is taking bids") }
}

fn check_auction_rules(rules: &AuctionRules) -> Result<(), Reject> {
    if rules.lot_t == 0 {
        return no(RejectKind::Invalid, "an auction's lot must be at least 1 t");
    }
    if rules.reserve_price <= 0 {
        return no(RejectKind::Invalid, "an auction's reserve price must be positive");
    }
    if rules.bidder_limit_bp.is_some_and(|bp| bp == 0 || bp > 10_000) || rules.cancel_below_secondary_bp.is_some_and(|bp| bp > 10_000) {
        return no(RejectKind::Invalid, "an auction's limits are from 1 to 10,000 basis points");
    }
    Ok(())
}

fn positive_qty(qty: u64) -> Result<(), Reject> {
    if qty == 0 {
        no(RejectKind::Invalid, "a quantity must be at least 1 t")
    } else {
        Ok(())
    }
}

fn positive_fen(amount: i64) -> Result<(), Reject> {
    if amount <= 0 {
        no(RejectKind::Invalid, "an amount must be positive")
    } else {
        Ok(())
    }
}

fn value(price: i64, qty: u64) -> Result<i64, Reject> {
    i64::try_from(qty).ok().and_then(|q| price.checked_mul(q)).ok_or_else(|| overflow("order value"))
}

fn overflow(what: &str) -> Reject {
    Reject { kind: RejectKind::Invalid, message: format!("{what} is too large") }
}

fn fen(amount: i64) -> String {
    ets_core::Fen(amount).to_string()
}
