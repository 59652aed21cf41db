//! Market data as the exchange publishes it: made from the venue after each stored batch and
//! swapped in whole, so a reader never sees a half-applied batch and never waits for the
//! matching engine. Prices are in fen (0.01 yuan), quantities in tonnes.

use crate::VenueDirectory;
use ets_core::Date;
use ets_exchange::auction::AuctionRules;
use ets_exchange::venue::{AuctionOutcome, AuctionRecord, DayBar, InstrumentSpec, OpenAuction, Trade, TradeKind, Venue};
use ets_exchange::Side;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use utoipa::ToSchema;

/// How many price levels per side, and how many recent trades per instrument, are published.
pub const DEPTH_LEVELS: usize = 5;
pub const RECENT_TRADES: usize = 50;

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Level {
    pub price_fen: i64,
    pub qty_t: u64,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct TradeView {
    pub id: u64,
    pub kind: String,
    pub buyer: String,
    pub seller: String,
    pub price_fen: i64,
    pub qty_t: u64,
    pub date: String,
    pub settles: String,
}

/// One trading day of an instrument. `close_fen` is the market's closing price (national: the
/// volume-weighted average of the day's listed trades, the previous close if none).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct BarView {
    pub date: String,
    pub open_fen: Option<i64>,
    pub high_fen: Option<i64>,
    pub low_fen: Option<i64>,
    pub close_fen: i64,
    pub listed_volume_t: u64,
    pub block_volume_t: u64,
    pub other_volume_t: u64,
    pub value_fen: i64,
    pub trades: u64,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct InstrumentView {
    pub code: String,
    pub market: String,
    pub unit: String,
    pub previous_close_fen: i64,
    pub best_bid: Option<Level>,
    pub best_ask: Option<Level>,
    pub bids: Vec<Level>,
    pub asks: Vec<Level>,
    /// Today's bar so far, while a trading day is open.
    pub today: Option<BarView>,
    pub recent_trades: Vec<TradeView>,
    /// Closed days, oldest first (shared between publications until a day closes).
    #[schema(value_type = Vec<BarView>)]
    pub bars: Arc<Vec<BarView>>,
}

/// A primary auction's published result (as the EU's auction platforms publish them: what was
/// offered and bid, by how many, and the outcome; not who won what).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct AuctionView {
    pub auction: String,
    pub instrument: String,
    pub market: String,
    pub date: Option<String>,
    pub volume_t: u64,
    pub reserve_price_fen: i64,
    /// Bids are whole multiples of this many tonnes.
    pub lot_t: u64,
    /// Bids, bidders and tonnes bid: published once the window has closed (bids are sealed).
    pub bids: usize,
    pub bidders: usize,
    pub bid_t: u64,
    /// `open` (taking bids), `cleared` or `cancelled`.
    pub outcome: String,
    pub clearing_price_fen: Option<i64>,
    pub sold_t: Option<u64>,
    pub successful_bidders: Option<usize>,
    /// Why a cancelled auction was cancelled.
    pub reason: Option<String>,
}

/// An auction taking bids: what is offered, on what terms (bids are sealed until it clears).
pub fn open_auction_view(venue: &Venue, auction: &str, a: &OpenAuction) -> AuctionView {
    let market = venue.spec(&a.instrument).map(|s| s.market.clone()).unwrap_or_default();
    offer_view(auction, &a.instrument, &market, a.opened.map(|d| d.to_string()), a.volume, &a.rules)
}

pub fn offer_view(auction: &str, instrument: &str, market: &str, date: Option<String>, volume_t: u64, rules: &AuctionRules) -> AuctionView {
    AuctionView {
        auction: auction.to_string(),
        instrument: instrument.to_string(),
        market: market.to_string(),
        date,
        volume_t,
        reserve_price_fen: rules.reserve_price,
        lot_t: rules.lot_t,
        bids: 0,
        bidders: 0,
        bid_t: 0,
        outcome: "open".into(),
        clearing_price_fen: None,
        sold_t: None,
        successful_bidders: None,
        reason: None,
    }
}

pub fn auction_view(venue: &Venue, r: &AuctionRecord) -> AuctionView {
    let (outcome, price, sold, winners, reason) = match &r.outcome {
        AuctionOutcome::Cleared { price, sold, allocations } => ("cleared", Some(*price), Some(*sold), Some(allocations.len()), None),
        AuctionOutcome::Cancelled { reason } => ("cancelled", None, None, None, Some(reason.clone())),
    };
    AuctionView {
        auction: r.auction.clone(),
        instrument: r.instrument.clone(),
        market: venue.spec(&r.instrument).map(|s| s.market.clone()).unwrap_or_default(),
        date: r.date.map(|d| d.to_string()),
        volume_t: r.volume,
        reserve_price_fen: r.reserve_price,
        lot_t: r.lot,
        bids: r.bids,
        bidders: r.bidders,
        bid_t: r.bid_qty,
        outcome: outcome.into(),
        clearing_price_fen: price,
        sold_t: sold,
        successful_bidders: winners,
        reason,
    }
}

#[derive(Clone, Debug, Default, Serialize, ToSchema)]
pub struct MarketView {
    /// The open trading day, if any.
    pub day: Option<String>,
    pub trades_total: u64,
    pub instruments: BTreeMap<String, InstrumentView>,
    /// Primary auctions run, in id order.
    pub auctions: Vec<AuctionView>,
    /// Primary auctions taking bids, in id order.
    pub open_auctions: Vec<AuctionView>,
    /// The exchange's own books (members' cash and positions, block deals, biddings), the
    /// instruments' specifications and where the venue's units are in the registry: for the
    /// operator's and the members' endpoints, never served as market data.
    #[serde(skip)]
    pub desk: Desk,
    /// Each instrument's JSON as GET /api/v1/instruments/{code} answers it, made by the first
    /// request after a publication and shared by every later one until the next (a view is
    /// never changed once published). Serialising the ~50 KB view on every request was most
    /// of that endpoint's cost.
    #[serde(skip)]
    json: BTreeMap<String, OnceLock<axum::body::Bytes>>,
}

fn level((price_fen, qty_t): (i64, u64)) -> Level {
    Level { price_fen, qty_t }
}

pub fn trade_view(t: &Trade) -> TradeView {
    let kind = match t.kind {
        TradeKind::Listed => "listed",
        TradeKind::Agreement => "agreement",
        TradeKind::Block => "block",
        TradeKind::Bidding => "bidding",
        TradeKind::Call => "call",
    };
    TradeView {
        id: t.id,
        kind: kind.into(),
        buyer: t.buyer.to_string(),
        seller: t.seller.to_string(),
        price_fen: t.price,
        qty_t: t.qty,
        date: t.date.to_string(),
        settles: t.settles.to_string(),
    }
}

pub fn bar_view(b: &DayBar) -> BarView {
    BarView {
        date: b.date.to_string(),
        open_fen: b.open,
        high_fen: b.high,
        low_fen: b.low,
        close_fen: b.close,
        listed_volume_t: b.listed_volume,
        block_volume_t: b.block_volume,
        other_volume_t: b.other_volume,
        value_fen: b.value_fen,
        trades: b.trades,
    }
}

impl MarketView {
    /// The view of `venue`, reusing `previous`'s bar lists where no day has closed since.
    pub fn of(venue: &Venue, previous: Option<&MarketView>) -> MarketView {
        let trades = venue.trades();
        let mut recent: BTreeMap<&str, Vec<TradeView>> = BTreeMap::new();
        let codes = venue.instrument_codes();
        // Walk back from the newest trade until every instrument has its recent trades (or the
        // start of history): cheap when trading is lively, bounded by history when it is not.
        let mut missing = codes.len();
        for t in trades.iter().rev() {
            if missing == 0 {
                break;
            }
            let list = recent.entry(&t.instrument).or_default();
            if list.len() < RECENT_TRADES {
                list.push(trade_view(t));
                if list.len() == RECENT_TRADES {
                    missing -= 1;
                }
            }
        }
        let mut instruments = BTreeMap::new();
        for code in &codes {
            let spec = venue.spec(code).expect("listed");
            let bars = venue.bars(code);
            let reused = previous.and_then(|p| p.instruments.get(code)).filter(|i| i.bars.len() == bars.len()).map(|i| i.bars.clone());
            let book = venue.book(code).expect("listed");
            instruments.insert(
                code.clone(),
                InstrumentView {
                    code: code.clone(),
                    market: spec.market.clone(),
                    unit: spec.unit.to_string(),
                    previous_close_fen: venue.previous_close(code).unwrap_or(spec.reference_price),
                    best_bid: book.best_bid().map(level),
                    best_ask: book.best_ask().map(level),
                    bids: book.depth(Side::Buy, DEPTH_LEVELS).into_iter().map(level).collect(),
                    asks: book.depth(Side::Sell, DEPTH_LEVELS).into_iter().map(level).collect(),
                    today: venue.day().and(venue.today(code)).map(bar_view),
                    recent_trades: recent.remove(code.as_str()).unwrap_or_default(),
                    bars: reused.unwrap_or_else(|| Arc::new(bars.iter().map(bar_view).collect())),
                },
            );
        }
        let json = codes.iter().map(|c| (c.clone(), OnceLock::new())).collect();
        let auctions = venue.auctions().map(|r| auction_view(venue, r)).collect();
        let open_auctions = venue.open_auctions().map(|(id, a)| open_auction_view(venue, id, a)).collect();
        let desk = Desk::of(venue, previous.map(|p| &p.desk));
        MarketView {
            day: venue.day().map(|d| d.to_string()),
            trades_total: trades.len() as u64,
            instruments,
            auctions,
            open_auctions,
            desk,
            json,
        }
    }

    /// The instrument's view as JSON (serialised once per publication), or None if unlisted.
    pub fn instrument_json(&self, code: &str) -> Option<axum::body::Bytes> {
        let instrument = self.instruments.get(code)?;
        let serialise = || axum::body::Bytes::from(serde_json::to_vec(instrument).expect("an instrument view serialises"));
        Some(match self.json.get(code) {
            Some(cell) => cell.get_or_init(serialise).clone(),
            None => serialise(),
        })
    }
}

/// A member's cash at the exchange, in fen: `free_fen` is what it may bid, buy or withdraw.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CashView {
    pub balance_fen: i64,
    /// Backing open buy orders, bids and proposed block purchases.
    pub reserved_fen: i64,
    /// The price of units bought and not yet settled.
    pub owed_fen: i64,
    pub free_fen: i64,
}

/// A member's units of one instrument at the exchange, in tonnes.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PositionView {
    pub instrument: String,
    /// Lodged from the member's registry account and not yet delivered.
    pub lodged_t: u64,
    /// Of the lodged units, backing open sell orders, offers and proposed block sales.
    pub reserved_t: u64,
    /// Sold, awaiting delivery at settlement.
    pub owed_t: u64,
    /// Bought, awaiting delivery at settlement.
    pub receivable_t: u64,
    /// Lodged and free to sell or unlodge.
    pub free_t: u64,
}

/// An exchange member: its registry account per market, its cash and its positions.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct MemberView {
    pub member: String,
    /// Market → the member's registry account there.
    pub accounts: BTreeMap<String, String>,
    pub cash: CashView,
    pub positions: Vec<PositionView>,
}

/// A block deal proposed and waiting for its counterparty's confirmation.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct BlockView {
    pub deal: String,
    pub proposer: String,
    pub counterparty: String,
    pub instrument: String,
    /// The proposer's side: `buy` or `sell`.
    pub side: String,
    pub price_fen: i64,
    pub qty_t: u64,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct BidView {
    pub member: String,
    pub price_fen: i64,
    pub qty_t: u64,
}

/// An open one-way bidding: the initiator offers (`sell`) or asks for (`buy`) `qty_t`; bids
/// compete and fill best price first when it closes.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct BiddingView {
    pub bidding: String,
    pub initiator: String,
    pub instrument: String,
    /// The initiator's side: `buy` or `sell`.
    pub side: String,
    pub qty_t: u64,
    /// The worst price the initiator accepts.
    pub limit_price_fen: i64,
    /// How many bids it holds.
    pub bid_count: usize,
    /// The bids the reader may see (all of them for the operator and auditors, a member's own).
    pub bids: Vec<BidView>,
}

pub fn side_text(side: Side) -> &'static str {
    match side {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}

/// The exchange's books as the venue left them after a stored batch (see `MarketView::desk`).
#[derive(Clone, Debug, Default)]
pub struct Desk {
    pub open_day: Option<Date>,
    /// The first trading day after the open day, or after the last closed one.
    pub next_trading_day: Option<Date>,
    /// Shared between publications while no instrument is listed.
    pub specs: Arc<BTreeMap<String, InstrumentSpec>>,
    /// Shared between publications while no instrument is listed and no member admitted.
    pub directory: Arc<VenueDirectory>,
    pub members: Vec<Arc<MemberView>>,
    pub blocks: Vec<BlockView>,
    pub biddings: Vec<BiddingView>,
}

impl Desk {
    pub fn of(venue: &Venue, previous: Option<&Desk>) -> Desk {
        let codes = venue.instrument_codes();
        let specs = match previous.filter(|p| p.specs.len() == codes.len()) {
            Some(p) => p.specs.clone(),
            None => Arc::new(codes.iter().map(|c| (c.clone(), venue.spec(c).expect("listed").clone())).collect()),
        };
        // A member whose accounts, cash and positions are as last published keeps its view:
        // a batch of orders touches a few members, and rebuilding every member's view after
        // each one cost the exchange's writer time in proportion to the membership.
        let before: BTreeMap<&str, &Arc<MemberView>> =
            previous.map(|p| p.members.iter().map(|m| (m.member.as_str(), m)).collect()).unwrap_or_default();
        let mut accounts_changed = previous.is_none_or(|p| p.members.len() != venue.member_count());
        let members: Vec<Arc<MemberView>> = venue
            .member_books()
            .map(|(name, accounts, cash, positions)| {
                let live = positions.filter(|(_, (l, r, o, rc))| l + r + o + rc > 0);
                if let Some(old) = before.get(name) {
                    let same_cash = (old.cash.balance_fen, old.cash.reserved_fen, old.cash.owed_fen) == cash;
                    let same_positions = old.positions.len() == live.clone().count()
                        && old
                            .positions
                            .iter()
                            .zip(live.clone())
                            .all(|(p, (code, q))| p.instrument == code && (p.lodged_t, p.reserved_t, p.owed_t, p.receivable_t) == q);
                    if same_cash && same_positions && old.accounts == *accounts {
                        return Arc::clone(old);
                    }
                    accounts_changed |= old.accounts != *accounts;
                }
                let (balance, reserved, owed) = cash;
                Arc::new(MemberView {
                    member: name.to_string(),
                    accounts: accounts.clone(),
                    cash: CashView { balance_fen: balance, reserved_fen: reserved, owed_fen: owed, free_fen: balance - reserved - owed },
                    positions: live
                        .map(|(code, (lodged, reserved, owed, receivable))| PositionView {
                            instrument: code.to_string(),
                            lodged_t: lodged,
                            reserved_t: reserved,
                            owed_t: owed,
                            receivable_t: receivable,
                            free_t: lodged - reserved - owed,
                        })
                        .collect(),
                })
            })
            .collect();
        let directory = match previous.filter(|p| p.specs.len() == codes.len() && !accounts_changed) {
            Some(p) => p.directory.clone(),
            None => Arc::new(VenueDirectory::of(venue)),
        };
        let blocks = venue
            .block_deals()
            .map(|(id, d)| BlockView {
                deal: id.to_string(),
                proposer: d.proposer.clone(),
                counterparty: d.counterparty.clone(),
                instrument: d.instrument.clone(),
                side: side_text(d.side).into(),
                price_fen: d.price,
                qty_t: d.qty,
            })
            .collect();
        let biddings = venue
            .open_biddings()
            .map(|(id, b)| BiddingView {
                bidding: id.to_string(),
                initiator: b.initiator.clone(),
                instrument: b.instrument.clone(),
                side: side_text(b.side).into(),
                qty_t: b.qty,
                limit_price_fen: b.limit_price,
                bid_count: b.bids.len(),
                bids: b
                    .bids
                    .iter()
                    .map(|(member, price, qty)| BidView { member: member.clone(), price_fen: *price, qty_t: *qty })
                    .collect(),
            })
            .collect();
        let last_closed = codes.iter().filter_map(|c| venue.bars(c).last()).map(|b| b.date).max();
        let next_trading_day = venue.day().or(last_closed).map(|d| venue.trading_day_after(d));
        Desk { open_day: venue.day(), next_trading_day, specs, directory, members, blocks, biddings }
    }
}
