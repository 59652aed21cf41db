//! The exchange's operations through the API (what `ets exchange ...` does on the command line):
//! - the exchange operator (`OperateExchange`, the `exchange-operator` role and nobody else)
//!   opens and closes the trading day (closing settles: the venue's registry instructions are
//!   carried out by the exchange's writer before the answer), admits members with their
//!   registry account per market, credits cash deposits, pays out withdrawals and lists
//!   instruments; its commands run at the venue as the venue's operator;
//! - members (`PlaceOrder` of the member) propose, confirm and withdraw block trades, open a
//!   one-way bidding, bid in another member's, close their own, and unlodge free units;
//! - reads: the trading day and each instrument's rules (public, as market data), and the
//!   members' books, block deals and biddings (the operator and auditors all of them, a
//!   member its own).
//!
//! Every handler checks the caller's permission before it looks anything up, so a caller who
//! may not act learns nothing about which members, deals or biddings exist.

use crate::api::{member_of, submit_exchange};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Json, Path, Query};
use crate::view::{bar_view, side_text, trade_view, BarView, BiddingView, BlockView, MarketView, MemberView, TradeView};
use crate::{ExchangeTime, Platform};
use axum::extract::State;
use axum::http::StatusCode;
use ets_access::{allows, Action, Role};
use ets_core::Date;
use ets_exchange::venue::{
    BiddingPricing, CloseRule, Command as X, Envelope as XEnvelope, Event as XEvent, InstrumentSpec, Outcome, Style, Window,
};
use ets_exchange::{Mode, Side};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

type S = State<Arc<Platform>>;

fn view_of(platform: &Platform) -> Arc<MarketView> {
    platform.market.read().expect("market view").clone()
}

fn operator_of(platform: &Platform) -> ApiResult<String> {
    platform.operator.clone().ok_or_else(|| ApiError::unavailable("no exchange is set up in this database"))
}

fn side_of(text: &str) -> ApiResult<Side> {
    match text {
        "buy" => Ok(Side::Buy),
        "sell" => Ok(Side::Sell),
        other => Err(ApiError::invalid(format!("side must be buy or sell, not {other}"))),
    }
}

/// A client-chosen id for a deal or bidding (it appears in paths), or a fresh one.
fn id_or_fresh(platform: &Platform, what: &str, given: Option<String>, prefix: &str) -> ApiResult<String> {
    match given {
        None => Ok(platform.command_id(prefix)),
        Some(id) if !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) => Ok(id),
        Some(_) => Err(ApiError::invalid(format!("{what}: 1 to 64 letters, digits, '-', '_' or '.'"))),
    }
}

fn positive_qty(qty: u64) -> ApiResult<()> {
    if qty == 0 {
        return Err(ApiError::invalid("qty_t must be at least 1"));
    }
    Ok(())
}

fn positive_price(what: &str, price: i64) -> ApiResult<()> {
    if price <= 0 {
        return Err(ApiError::invalid(format!("{what} must be positive")));
    }
    Ok(())
}

/// A member trades an instrument only if it holds a registry account in the instrument's
/// market that takes units by transfer (an operator or trading account, not closed):
/// settlement delivers bought units there, and a delivery the registry refused would stop the
/// exchange's writer (the venue takes the account for granted; members admitted through the
/// API may hold accounts in some markets only, and the reserve's member sells at primary
/// auctions only). An instrument the exchange does not list passes, for the venue to answer.
pub(crate) fn require_account(platform: &Platform, member: &str, instrument: &str) -> ApiResult<()> {
    let directory = platform.directory();
    let Some((market, _)) = directory.instruments.get(instrument) else { return Ok(()) };
    let Some(number) = directory.accounts.get(&(member.to_string(), market.clone())) else {
        return Err(ApiError::refused(format!("member {member} has no registry account in market {market}: it cannot trade {instrument}")));
    };
    let ledger = platform.registry.lock().expect("registry lock");
    let r = ledger.registry();
    let takes_units = r.find_account(number).map(|a| r.account(a)).is_some_and(|a| {
        matches!(a.kind, ets_registry::AccountKind::Operator | ets_registry::AccountKind::Trading)
            && a.status != ets_registry::AccountStatus::Closed
    });
    if takes_units {
        return Ok(());
    }
    Err(ApiError::refused(format!(
        "member {member}'s account {number} in market {market} cannot receive units by transfer: it cannot trade {instrument}"
    )))
}

fn trades_of(outcome: &Outcome) -> Vec<TradeView> {
    outcome
        .events
        .iter()
        .filter_map(|e| match e {
            XEvent::Traded(t) => Some(trade_view(t)),
            _ => None,
        })
        .collect()
}

/// A registry instruction the venue issued and the exchange's writer carried out.
#[derive(Serialize, ToSchema)]
pub struct InstructionView {
    /// The registry command id (`xch-N`).
    pub id: String,
    /// `deliver-pending` (lodged units delivered out of their pending transfer) or `transfer`
    /// (from the clearing account).
    pub command: String,
    /// The pending transfer delivered from, for `deliver-pending`.
    pub pending: Option<String>,
    /// The account delivered from, for `transfer`.
    pub from: Option<String>,
    pub to: String,
    pub quantity_t: u64,
}

fn instructions_of(outcome: &Outcome) -> Vec<InstructionView> {
    use ets_registry::Command as R;
    outcome
        .instructions
        .iter()
        .map(|i| {
            let (pending, from, to, quantity) = match &i.command {
                R::DeliverPending { pending, quantity, to } => (Some(pending.clone()), None, to.clone(), quantity.0),
                R::Transfer { from, to, quantity, .. } => (None, Some(from.clone()), to.clone(), quantity.0),
                R::Allocate { from, to, quantity, .. } => (None, Some(from.clone()), to.clone(), quantity.0),
                _ => (None, None, String::new(), 0),
            };
            InstructionView { id: i.id.clone(), command: i.command.name().into(), pending, from, to, quantity_t: quantity }
        })
        .collect()
}

/// Whose exchange books the caller may read.
enum Readable {
    /// Every member's: the policy grants the caller `ReadOrders` whoever the member is (the
    /// exchange operator, auditors). Asked of the empty name, which no member can have.
    All,
    /// Its own members' (exchange members).
    Own(Vec<String>),
}

impl Readable {
    fn of(caller: &Caller) -> ApiResult<Readable> {
        let anyone = Action::ReadOrders { member: String::new() };
        if allows(caller.roles(), &anyone) {
            return Ok(Readable::All);
        }
        let own: Vec<String> = caller
            .roles()
            .iter()
            .filter_map(|r| match r {
                Role::ExchangeMember { member } if allows(caller.roles(), &Action::ReadOrders { member: member.clone() }) => {
                    Some(member.clone())
                }
                _ => None,
            })
            .collect();
        if own.is_empty() {
            // 401 without a credential, 403 with one.
            caller.may(&anyone)?;
        }
        Ok(Readable::Own(own))
    }

    fn sees(&self, member: &str) -> bool {
        match self {
            Readable::All => true,
            Readable::Own(own) => own.iter().any(|m| m == member),
        }
    }
}

// ------------------------------------------------------------------ reads

#[derive(Serialize, ToSchema)]
pub struct PriceBand {
    pub low_fen: i64,
    pub high_fen: i64,
}

#[derive(Serialize, ToSchema)]
pub struct InstrumentRules {
    pub code: String,
    pub market: String,
    /// The registry unit it delivers, e.g. `CEA:2025`.
    pub unit: String,
    /// `agreement` (listed orders match by price-time priority, or a taker picks a resting
    /// order among the best levels; block deals negotiated) or `continuous` (with call auctions).
    pub style: String,
    /// Prices are whole ticks of this many fen.
    pub tick_fen: i64,
    /// Quantities are whole lots of this many tonnes.
    pub lot_t: u64,
    pub previous_close_fen: i64,
    /// Listed (and call) trading's band around the previous close: the prices allowed today.
    pub listed_band_bp: u32,
    pub listed_band: PriceBand,
    /// Block trading's and one-way bidding's band.
    pub block_band_bp: u32,
    pub block_band: PriceBand,
    /// The smallest block deal, and the first size listed trading refuses.
    pub block_min_t: u64,
    /// The largest listed order.
    pub max_order_t: u64,
    /// The most a member may hold through the venue, if limited.
    pub position_limit_t: Option<u64>,
    /// Local trading sessions, `hh:mm-hh:mm`, at UTC + `utc_offset_minutes`.
    pub listed_sessions: Vec<String>,
    pub block_sessions: Vec<String>,
    pub opening_call: Option<String>,
    pub closing_call: Option<String>,
    pub utc_offset_minutes: i32,
    /// The trading modes it offers: `listed`, `agreement`, `call`, `block`, `bidding`.
    pub modes: Vec<String>,
    /// Settlement lag in trading days (0 = T+0).
    pub settlement_days: u8,
    /// `listed-vwap` (the day's listed trades' volume-weighted average) or `closing-auction`.
    pub close_rule: String,
    /// One-way bidding fills: `pay-as-bid` or `uniform`.
    pub bidding_pricing: String,
}

#[derive(Serialize, ToSchema)]
pub struct TradingDay {
    /// The open trading day, if one is open.
    pub open_day: Option<String>,
    /// The trading day the operator's next opening takes by default.
    pub next_trading_day: Option<String>,
    /// `live` (commands carry the wall clock) or `demo-session` (the demo clock walks the
    /// server's uptime through the open day's sessions).
    pub clock: String,
    /// What the exchange's commands would carry as their time now: listed trading's.
    pub exchange_time_ms: i64,
    pub instruments: Vec<InstrumentRules>,
}

fn rules_of(spec: &InstrumentSpec, previous_close: i64) -> InstrumentRules {
    let band = |mode| {
        let (low_fen, high_fen) = spec.rules.band(mode, previous_close);
        PriceBand { low_fen, high_fen }
    };
    let mut modes = vec!["listed"];
    if spec.style == Style::Agreement {
        modes.push("agreement");
    }
    if spec.opening_call.is_some() || spec.closing_call.is_some() {
        modes.push("call");
    }
    if !spec.block.is_empty() {
        modes.push("block");
    }
    modes.push("bidding");
    InstrumentRules {
        code: spec.code.clone(),
        market: spec.market.clone(),
        unit: spec.unit.to_string(),
        style: match spec.style {
            Style::Agreement => "agreement",
            Style::Continuous => "continuous",
        }
        .into(),
        tick_fen: 1,
        lot_t: 1,
        previous_close_fen: previous_close,
        listed_band_bp: spec.rules.listed_band_bp,
        listed_band: band(Mode::Listed),
        block_band_bp: spec.rules.block_band_bp,
        block_band: band(Mode::Block),
        block_min_t: spec.rules.block_min_t,
        max_order_t: spec.max_order_t,
        position_limit_t: spec.position_limit_t,
        listed_sessions: spec.listed.iter().map(Window::to_string).collect(),
        block_sessions: spec.block.iter().map(Window::to_string).collect(),
        opening_call: spec.opening_call.map(|w| w.to_string()),
        closing_call: spec.closing_call.map(|w| w.to_string()),
        utc_offset_minutes: spec.utc_offset_minutes,
        modes: modes.into_iter().map(String::from).collect(),
        settlement_days: spec.settlement_days,
        close_rule: match spec.close_rule {
            CloseRule::ListedVwap => "listed-vwap",
            CloseRule::ClosingAuction => "closing-auction",
        }
        .into(),
        bidding_pricing: match spec.bidding_pricing {
            BiddingPricing::PayAsBid => "pay-as-bid",
            BiddingPricing::Uniform => "uniform",
        }
        .into(),
    }
}

fn trading_day(platform: &Platform) -> TradingDay {
    let view = view_of(platform);
    let instruments = view
        .desk
        .specs
        .values()
        .map(|spec| {
            let close = view.instruments.get(&spec.code).map_or(spec.reference_price, |i| i.previous_close_fen);
            rules_of(spec, close)
        })
        .collect();
    TradingDay {
        open_day: view.desk.open_day.map(|d| d.to_string()),
        next_trading_day: view.desk.next_trading_day.map(|d| d.to_string()),
        clock: match platform.exchange_time {
            ExchangeTime::Live => "live",
            ExchangeTime::Session { .. } => "demo-session",
        }
        .into(),
        exchange_time_ms: platform.exchange_time.at(platform.now(), view.desk.open_day),
        instruments,
    }
}

/// The trading day (open or not, the next one) and each listed instrument's rules: tick and
/// lot, today's price bands, the block minimum, sessions, trading modes, settlement lag, the
/// closing-price rule. Public, as market data.
#[utoipa::path(get, path = "/api/v1/exchange/day", tag = "exchange", responses((status = 200, body = TradingDay)))]
pub(crate) async fn exchange_day(State(platform): S, caller: Caller) -> ApiResult<Json<TradingDay>> {
    caller.may(&Action::ReadMarketData)?;
    Ok(Json(trading_day(&platform)))
}

/// Exchange members: each one's registry account per market, cash (balance, reserved, owed,
/// free) and positions. The exchange operator and auditors see every member; a member only
/// itself.
#[utoipa::path(get, path = "/api/v1/exchange/members", tag = "exchange", security(("session" = []), ("bearer" = [])),
    responses((status = 200, body = Vec<MemberView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn members(State(platform): S, caller: Caller) -> ApiResult<Json<Vec<MemberView>>> {
    let readable = Readable::of(&caller)?;
    let view = view_of(&platform);
    Ok(Json(view.desk.members.iter().filter(|m| readable.sees(&m.member)).map(|m| MemberView::clone(m)).collect()))
}

/// Block deals proposed and waiting for confirmation: every one for the operator and
/// auditors; a member those it proposed or that are addressed to it.
#[utoipa::path(get, path = "/api/v1/exchange/blocks", tag = "exchange", security(("session" = []), ("bearer" = [])),
    responses((status = 200, body = Vec<BlockView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn blocks(State(platform): S, caller: Caller) -> ApiResult<Json<Vec<BlockView>>> {
    let readable = Readable::of(&caller)?;
    let view = view_of(&platform);
    Ok(Json(view.desk.blocks.iter().filter(|b| readable.sees(&b.proposer) || readable.sees(&b.counterparty)).cloned().collect()))
}

/// Open one-way biddings, for members to bid in: their terms for every reader; the bids
/// themselves all for the operator and auditors, a member only its own.
#[utoipa::path(get, path = "/api/v1/exchange/biddings", tag = "exchange", security(("session" = []), ("bearer" = [])),
    responses((status = 200, body = Vec<BiddingView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn biddings(State(platform): S, caller: Caller) -> ApiResult<Json<Vec<BiddingView>>> {
    let readable = Readable::of(&caller)?;
    let view = view_of(&platform);
    let list = view
        .desk
        .biddings
        .iter()
        .map(|b| {
            let mut b = b.clone();
            b.bids.retain(|bid| readable.sees(&bid.member));
            b
        })
        .collect();
    Ok(Json(list))
}

// ------------------------------------------------------------------ the operator

/// Runs an operator command at the venue (after the caller's `OperateExchange` check).
async fn as_operator(platform: &Arc<Platform>, prefix: &str, at_ms: i64, command: X) -> ApiResult<Outcome> {
    let operator = operator_of(platform)?;
    let id = platform.command_id(prefix);
    submit_exchange(platform.clone(), XEnvelope { id, actor: operator, at_ms, command }).await
}

#[derive(Deserialize, ToSchema)]
pub struct OpenDayRequest {
    /// `YYYY-MM-DD`; the next trading day if absent.
    pub date: Option<String>,
}

/// Opens a trading day (the exchange operator). 409 while a day is open or for a day not after
/// the last one traded; 422 on a weekend or holiday. With the demo clock, commands then carry
/// the session time on the new day.
#[utoipa::path(post, path = "/api/v1/exchange/day/open", tag = "exchange operator", request_body = OpenDayRequest,
    security(("session" = []), ("bearer" = [])),
    responses((status = 200, body = TradingDay), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(crate) async fn open_day(State(platform): S, caller: Caller, Json(body): Json<OpenDayRequest>) -> ApiResult<Json<TradingDay>> {
    caller.may(&Action::OperateExchange)?;
    let desk = view_of(&platform).desk.clone();
    if let Some(day) = desk.open_day {
        return Err(ApiError::conflict(format!("trading day {day} is already open: close it first")));
    }
    let date = match body.date {
        Some(text) => Date::parse(&text).map_err(|e| ApiError::invalid(format!("date: {}", e.0)))?,
        None => desk.next_trading_day.ok_or_else(|| ApiError::invalid("no day has traded yet: name the date to open"))?,
    };
    let at_ms = platform.exchange_time.at(platform.now(), Some(date));
    as_operator(&platform, "open", at_ms, X::OpenDay { date }).await?;
    Ok(Json(trading_day(&platform)))
}

#[derive(Serialize, ToSchema)]
pub struct ClosingBar {
    pub instrument: String,
    pub bar: BarView,
}

#[derive(Serialize, ToSchema)]
pub struct DayClosed {
    pub date: String,
    /// Each instrument's bar with its closing price.
    pub bars: Vec<ClosingBar>,
    /// Resting orders cancelled and block deals withdrawn at the close.
    pub orders_cancelled: usize,
    pub blocks_withdrawn: usize,
    /// Biddings closed (filled from their bids) at the close, and the trades they made.
    pub biddings_closed: usize,
    pub trades: Vec<TradeView>,
    /// Trades settled delivery versus payment, and their value.
    pub settled_trades: u64,
    pub settled_value_fen: i64,
    /// The registry instructions of the settlement, carried out before this answer.
    pub deliveries: Vec<InstructionView>,
}

/// Closes the trading day (the exchange operator): resting orders are cancelled, open deals
/// withdrawn and biddings closed, the closing prices fixed, and every trade due settles:
/// cash between members and units in the registry (delivered before the answer). 409 when
/// no day is open.
#[utoipa::path(post, path = "/api/v1/exchange/day/close", tag = "exchange operator", security(("session" = []), ("bearer" = [])),
    responses((status = 200, body = DayClosed), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub(crate) async fn close_day(State(platform): S, caller: Caller) -> ApiResult<Json<DayClosed>> {
    caller.may(&Action::OperateExchange)?;
    let Some(date) = view_of(&platform).desk.open_day else {
        return Err(ApiError::conflict("no trading day is open: there is nothing to close"));
    };
    let at_ms = platform.exchange_now();
    let outcome = match as_operator(&platform, "close", at_ms, X::CloseDay).await {
        // Closed by another request in the meantime: the venue finds no day open.
        Err(e) if e.status == StatusCode::UNPROCESSABLE_ENTITY => return Err(ApiError::conflict(e.message)),
        other => other?,
    };
    let mut closed = DayClosed {
        date: date.to_string(),
        bars: Vec::new(),
        orders_cancelled: 0,
        blocks_withdrawn: 0,
        biddings_closed: 0,
        trades: trades_of(&outcome),
        settled_trades: 0,
        settled_value_fen: 0,
        deliveries: instructions_of(&outcome),
    };
    for event in &outcome.events {
        match event {
            XEvent::OrderDone { .. } => closed.orders_cancelled += 1,
            XEvent::BlockWithdrawn { .. } => closed.blocks_withdrawn += 1,
            XEvent::BiddingClosed { .. } => closed.biddings_closed += 1,
            XEvent::DayClosed { bars } => {
                closed.bars = bars.iter().map(|(code, bar)| ClosingBar { instrument: code.clone(), bar: bar_view(bar) }).collect()
            }
            XEvent::Settled { trades, value_fen, .. } => {
                closed.settled_trades = *trades;
                closed.settled_value_fen = *value_fen;
            }
            _ => {}
        }
    }
    Ok(Json(closed))
}

#[derive(Deserialize, ToSchema)]
pub struct NewMember {
    /// The member's name: its users act for it with the role `exchange-member:<member>`.
    pub member: String,
    /// Market → the member's registry account there (open, in that market).
    pub accounts: BTreeMap<String, String>,
}

/// Admits a member (the exchange operator) with its registry account per market; each account
/// must exist, be open and belong to the market it is named for.
#[utoipa::path(post, path = "/api/v1/exchange/members", tag = "exchange operator", request_body = NewMember, security(("session" = []), ("bearer" = [])),
    responses((status = 201, body = MemberView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(crate) async fn admit_member(
    State(platform): S,
    caller: Caller,
    Json(body): Json<NewMember>,
) -> ApiResult<(StatusCode, Json<MemberView>)> {
    caller.may(&Action::OperateExchange)?;
    ets_core::check_identifier("member", &body.member).map_err(ApiError::invalid)?;
    if body.accounts.is_empty() {
        return Err(ApiError::invalid("accounts: name the member's registry account in at least one market"));
    }
    let clearing = view_of(&platform).desk.directory.clearing.clone();
    {
        let ledger = platform.registry.lock().expect("registry lock");
        let r = ledger.registry();
        for (market, number) in &body.accounts {
            r.find_market(market).ok_or_else(|| ApiError::not_found(format!("no market {market}")))?;
            let idx = r.find_account(number).ok_or_else(|| ApiError::not_found(format!("no account {number}")))?;
            let account = r.account(idx);
            let in_market = &r.market(account.market).spec.code;
            if in_market != market {
                return Err(ApiError::refused(format!("account {number} is in market {in_market}, not {market}")));
            }
            if account.status != ets_registry::AccountStatus::Open {
                return Err(ApiError::refused(format!("account {number} is {}, not open", account.status.name())));
            }
            if clearing.get(market) == Some(number) {
                return Err(ApiError::refused(format!("account {number} is the exchange's clearing account in {market}")));
            }
        }
    }
    let at_ms = platform.exchange_now();
    as_operator(&platform, "admit", at_ms, X::AddMember { member: body.member.clone(), accounts: body.accounts.clone() }).await?;
    let member = view_of(&platform).desk.members.iter().find(|m| m.member == body.member).map(|m| MemberView::clone(m));
    let member = member.ok_or_else(|| ApiError::internal(format!("member {} missing from the published view", body.member)))?;
    Ok((StatusCode::CREATED, Json(member)))
}

#[derive(Deserialize, ToSchema)]
pub struct CashRequest {
    pub amount_fen: i64,
}

#[derive(Serialize, ToSchema)]
pub struct CashMovement {
    pub member: String,
    /// Positive for a deposit, negative for a withdrawal.
    pub delta_fen: i64,
    pub balance_fen: i64,
}

async fn move_cash(platform: &Arc<Platform>, caller: &Caller, member: String, amount_fen: i64, deposit: bool) -> ApiResult<CashMovement> {
    caller.may(&Action::OperateExchange)?;
    if amount_fen <= 0 {
        return Err(ApiError::invalid("amount_fen must be positive"));
    }
    let at_ms = platform.exchange_now();
    let command =
        if deposit { X::Deposit { member: member.clone(), amount_fen } } else { X::WithdrawCash { member: member.clone(), amount_fen } };
    let outcome = as_operator(platform, if deposit { "deposit" } else { "withdraw" }, at_ms, command).await?;
    outcome
        .events
        .iter()
        .find_map(|e| match e {
            XEvent::Cash { member: m, delta_fen, balance_fen } if *m == member => {
                Some(CashMovement { member: m.clone(), delta_fen: *delta_fen, balance_fen: *balance_fen })
            }
            _ => None,
        })
        .ok_or_else(|| ApiError::internal("the venue moved no cash"))
}

/// Credits a member's cash deposit (the exchange operator): money that arrived at the
/// exchange's settlement bank for the member.
#[utoipa::path(post, path = "/api/v1/exchange/members/{member}/deposits", tag = "exchange operator", params(("member" = String, Path)),
    request_body = CashRequest, security(("session" = []), ("bearer" = [])),
    responses((status = 201, body = CashMovement), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(crate) async fn deposit(
    State(platform): S,
    caller: Caller,
    Path(member): Path<String>,
    Json(body): Json<CashRequest>,
) -> ApiResult<(StatusCode, Json<CashMovement>)> {
    Ok((StatusCode::CREATED, Json(move_cash(&platform, &caller, member, body.amount_fen, true).await?)))
}

/// Pays out a withdrawal of a member's free cash (the exchange operator); 422 beyond what is
/// free (not reserved for orders, bids and deals, nor owed for units bought).
#[utoipa::path(post, path = "/api/v1/exchange/members/{member}/withdrawals", tag = "exchange operator", params(("member" = String, Path)),
    request_body = CashRequest, security(("session" = []), ("bearer" = [])),
    responses((status = 201, body = CashMovement), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(crate) async fn withdraw(
    State(platform): S,
    caller: Caller,
    Path(member): Path<String>,
    Json(body): Json<CashRequest>,
) -> ApiResult<(StatusCode, Json<CashMovement>)> {
    Ok((StatusCode::CREATED, Json(move_cash(&platform, &caller, member, body.amount_fen, false).await?)))
}

#[derive(Deserialize, ToSchema)]
pub struct ListingRequest {
    /// The allowance to list, `CODE:VINTAGE` (e.g. `CEA:2026`); the market is the one whose
    /// allowances carry the code. The instrument's code is `CODE-VINTAGE`.
    pub unit: String,
    /// The previous close before its first trading day, in fen.
    pub reference_price_fen: i64,
}

/// Lists an allowance vintage for trading (the exchange operator), under its market's trading
/// rules from the rulebook governing the vintage's year (price bands, block trading and its
/// minimum, largest order, closing price; the national rules where the rulebook is silent or
/// the market has none), in the national sessions, T+0. The market needs a clearing account at
/// the exchange; a rulebook the exchange cannot apply (another currency, tick or lot) is 422.
#[utoipa::path(post, path = "/api/v1/exchange/instruments", tag = "exchange operator", request_body = ListingRequest,
    security(("session" = []), ("bearer" = [])),
    responses((status = 201, body = InstrumentRules), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(crate) async fn list_instrument(
    State(platform): S,
    caller: Caller,
    Json(body): Json<ListingRequest>,
) -> ApiResult<(StatusCode, Json<InstrumentRules>)> {
    caller.may(&Action::OperateExchange)?;
    let unit = ets_registry::UnitRef::parse(&body.unit).map_err(ApiError::invalid)?;
    if unit.project.is_some() {
        return Err(ApiError::invalid("only allowances (CODE:VINTAGE) are listed, not offsets"));
    }
    positive_price("reference_price_fen", body.reference_price_fen)?;
    let market = {
        let ledger = platform.registry.lock().expect("registry lock");
        let r = ledger.registry();
        r.markets()
            .iter()
            .find(|m| m.spec.allowance_code == unit.code)
            .map(|m| m.spec.code.clone())
            .ok_or_else(|| ApiError::not_found(format!("no market issues allowances coded {}", unit.code)))?
    };
    // The market's trading rules come from the rulebook its compliance is assessed under for
    // the vintage's year (the shipped one covering it, or the one the server was started with).
    let rulebook = platform.compliance.rulebook(&market, i32::from(unit.vintage));
    let code = format!("{}-{}", unit.code, unit.vintage);
    let spec =
        crate::listing::instrument_spec(rulebook.as_ref(), &market, unit, code, body.reference_price_fen).map_err(ApiError::refused)?;
    let at_ms = platform.exchange_now();
    as_operator(&platform, "list", at_ms, X::ListInstrument(spec.clone())).await?;
    Ok((StatusCode::CREATED, Json(rules_of(&spec, spec.reference_price))))
}

// ------------------------------------------------------------------ members: block trades

#[derive(Deserialize, IntoParams)]
pub struct MemberQuery {
    /// Which member to act for, when the credential carries several.
    pub member: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct BlockRequest {
    /// The deal's id (1 to 64 letters, digits, '-', '_', '.'); a fresh one if absent.
    pub deal: Option<String>,
    /// The member the deal is offered to: it executes when that member confirms.
    pub counterparty: String,
    pub instrument: String,
    /// The proposer's side: `buy` or `sell`.
    pub side: String,
    pub price_fen: i64,
    pub qty_t: u64,
    /// Which member to act for, when the credential carries several.
    pub member: Option<String>,
}

/// Proposes a block deal to another member, in a block session, within the block band and
/// of at least the block minimum. What the proposer sells (lodged units) or pays (cash) is
/// reserved until the counterparty confirms or either withdraws.
#[utoipa::path(post, path = "/api/v1/exchange/blocks", tag = "exchange", request_body = BlockRequest, security(("session" = []), ("bearer" = [])),
    responses((status = 201, body = BlockView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(crate) async fn propose_block(
    State(platform): S,
    caller: Caller,
    Json(body): Json<BlockRequest>,
) -> ApiResult<(StatusCode, Json<BlockView>)> {
    let member = member_of(&caller, body.member.as_deref())?;
    caller.may(&Action::PlaceOrder { member: member.clone() })?;
    let side = side_of(&body.side)?;
    positive_qty(body.qty_t)?;
    positive_price("price_fen", body.price_fen)?;
    let deal = id_or_fresh(&platform, "deal", body.deal, "blk")?;
    require_account(&platform, &member, &body.instrument)?;
    let at_ms = platform.exchange_block_now(&body.instrument);
    let command = X::ProposeBlock {
        deal: deal.clone(),
        member: member.clone(),
        counterparty: body.counterparty.clone(),
        instrument: body.instrument.clone(),
        side,
        price: body.price_fen,
        qty: body.qty_t,
    };
    submit_exchange(platform.clone(), XEnvelope { id: platform.command_id("xb"), actor: member.clone(), at_ms, command }).await?;
    let view = BlockView {
        deal,
        proposer: member,
        counterparty: body.counterparty,
        instrument: body.instrument,
        side: side_text(side).into(),
        price_fen: body.price_fen,
        qty_t: body.qty_t,
    };
    Ok((StatusCode::CREATED, Json(view)))
}

#[derive(Serialize, ToSchema)]
pub struct BlockTrade {
    pub deal: String,
    pub trade: TradeView,
}

/// Confirms a block deal addressed to the caller's member: it trades at once at the deal's
/// price (checked again against today's band and the session), settling like any trade.
#[utoipa::path(post, path = "/api/v1/exchange/blocks/{deal}/confirm", tag = "exchange", params(("deal" = String, Path), MemberQuery),
    security(("session" = []), ("bearer" = [])),
    responses((status = 201, body = BlockTrade), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(crate) async fn confirm_block(
    State(platform): S,
    caller: Caller,
    Path(deal): Path<String>,
    Query(q): Query<MemberQuery>,
) -> ApiResult<(StatusCode, Json<BlockTrade>)> {
    let member = member_of(&caller, q.member.as_deref())?;
    caller.may(&Action::PlaceOrder { member: member.clone() })?;
    let known = view_of(&platform).desk.blocks.iter().find(|b| b.deal == deal).map(|b| (b.instrument.clone(), b.counterparty.clone()));
    // Not naming the counterparty: deal ids can be guessed, and who deals with whom is private.
    if known.as_ref().is_some_and(|(_, c)| *c != member) {
        return Err(ApiError::forbidden(format!("block deal {deal} is not addressed to {member}")));
    }
    let instrument = known.map(|(i, _)| i);
    if let Some(i) = &instrument {
        require_account(&platform, &member, i)?;
    }
    let at_ms = instrument.map_or_else(|| platform.exchange_now(), |i| platform.exchange_block_now(&i));
    let command = X::ConfirmBlock { deal: deal.clone(), member: member.clone() };
    let outcome = submit_exchange(platform.clone(), XEnvelope { id: platform.command_id("xc"), actor: member, at_ms, command }).await?;
    let trade = trades_of(&outcome).into_iter().next().ok_or_else(|| ApiError::internal("a confirmed block deal made no trade"))?;
    Ok((StatusCode::CREATED, Json(BlockTrade { deal, trade })))
}

/// Withdraws a block deal not yet confirmed (its proposer or its counterparty); the
/// proposer's reservation is released.
#[utoipa::path(delete, path = "/api/v1/exchange/blocks/{deal}", tag = "exchange", params(("deal" = String, Path), MemberQuery),
    security(("session" = []), ("bearer" = [])),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(crate) async fn withdraw_block(
    State(platform): S,
    caller: Caller,
    Path(deal): Path<String>,
    Query(q): Query<MemberQuery>,
) -> ApiResult<StatusCode> {
    let member = member_of(&caller, q.member.as_deref())?;
    caller.may(&Action::PlaceOrder { member: member.clone() })?;
    let at_ms = platform.exchange_now();
    let command = X::WithdrawBlock { deal, member: member.clone() };
    submit_exchange(platform.clone(), XEnvelope { id: platform.command_id("xw"), actor: member, at_ms, command }).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ------------------------------------------------------------------ members: one-way bidding

#[derive(Deserialize, ToSchema)]
pub struct BiddingRequest {
    /// The bidding's id (1 to 64 letters, digits, '-', '_', '.'); a fresh one if absent.
    pub bidding: Option<String>,
    pub instrument: String,
    /// `sell` to offer units to the best bids, `buy` to ask for them.
    pub side: String,
    pub qty_t: u64,
    /// The worst price accepted: bids below it (for an offer) or above it (for a demand) are refused.
    pub limit_price_fen: i64,
    /// Which member to act for, when the credential carries several.
    pub member: Option<String>,
}

/// Opens a one-way bidding on an open trading day: the member offers (or asks for) a quantity,
/// reserved at its limit, and other members bid until it is closed.
#[utoipa::path(post, path = "/api/v1/exchange/biddings", tag = "exchange", request_body = BiddingRequest, security(("session" = []), ("bearer" = [])),
    responses((status = 201, body = BiddingView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(crate) async fn open_bidding(
    State(platform): S,
    caller: Caller,
    Json(body): Json<BiddingRequest>,
) -> ApiResult<(StatusCode, Json<BiddingView>)> {
    let member = member_of(&caller, body.member.as_deref())?;
    caller.may(&Action::PlaceOrder { member: member.clone() })?;
    let side = side_of(&body.side)?;
    positive_qty(body.qty_t)?;
    positive_price("limit_price_fen", body.limit_price_fen)?;
    let bidding = id_or_fresh(&platform, "bidding", body.bidding, "bid")?;
    require_account(&platform, &member, &body.instrument)?;
    let at_ms = platform.exchange_now();
    let command = X::OpenBidding {
        bidding: bidding.clone(),
        member: member.clone(),
        instrument: body.instrument.clone(),
        side,
        qty: body.qty_t,
        limit_price: body.limit_price_fen,
    };
    submit_exchange(platform.clone(), XEnvelope { id: platform.command_id("xo"), actor: member.clone(), at_ms, command }).await?;
    let view = BiddingView {
        bidding,
        initiator: member,
        instrument: body.instrument,
        side: side_text(side).into(),
        qty_t: body.qty_t,
        limit_price_fen: body.limit_price_fen,
        bid_count: 0,
        bids: Vec::new(),
    };
    Ok((StatusCode::CREATED, Json(view)))
}

#[derive(Deserialize, ToSchema)]
pub struct BidRequest {
    pub price_fen: i64,
    pub qty_t: u64,
    /// Which member to act for, when the credential carries several.
    pub member: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct BidPlaced {
    pub bidding: String,
    pub member: String,
    /// The bid's place in arrival order (the tie-break between equal prices).
    pub index: usize,
    pub price_fen: i64,
    pub qty_t: u64,
}

/// Bids in another member's one-way bidding: what the bid would buy (cash at its price) or
/// sell (lodged units) is reserved until the bidding closes.
#[utoipa::path(post, path = "/api/v1/exchange/biddings/{bidding}/bids", tag = "exchange", params(("bidding" = String, Path)),
    request_body = BidRequest, security(("session" = []), ("bearer" = [])),
    responses((status = 201, body = BidPlaced), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(crate) async fn bid(
    State(platform): S,
    caller: Caller,
    Path(bidding): Path<String>,
    Json(body): Json<BidRequest>,
) -> ApiResult<(StatusCode, Json<BidPlaced>)> {
    let member = member_of(&caller, body.member.as_deref())?;
    caller.may(&Action::PlaceOrder { member: member.clone() })?;
    positive_qty(body.qty_t)?;
    positive_price("price_fen", body.price_fen)?;
    if let Some(b) = view_of(&platform).desk.biddings.iter().find(|b| b.bidding == bidding) {
        require_account(&platform, &member, &b.instrument)?;
    }
    let at_ms = platform.exchange_now();
    let command = X::Bid { bidding: bidding.clone(), member: member.clone(), price: body.price_fen, qty: body.qty_t };
    let outcome =
        submit_exchange(platform.clone(), XEnvelope { id: platform.command_id("xd"), actor: member.clone(), at_ms, command }).await?;
    let index = outcome
        .events
        .iter()
        .find_map(|e| match e {
            XEvent::BidAccepted { bid, .. } => Some(*bid),
            _ => None,
        })
        .ok_or_else(|| ApiError::internal("an accepted bid has no place"))?;
    Ok((StatusCode::CREATED, Json(BidPlaced { bidding, member, index, price_fen: body.price_fen, qty_t: body.qty_t })))
}

#[derive(Serialize, ToSchema)]
pub struct BiddingClosed {
    pub bidding: String,
    pub filled_t: u64,
    /// One trade per winning bid, best price first.
    pub trades: Vec<TradeView>,
}

/// Closes a one-way bidding: its initiator (as the member) or the exchange operator. Bids fill
/// best price first (then by arrival) up to the quantity; what is left is released.
#[utoipa::path(post, path = "/api/v1/exchange/biddings/{bidding}/close", tag = "exchange", params(("bidding" = String, Path), MemberQuery),
    security(("session" = []), ("bearer" = [])),
    responses((status = 200, body = BiddingClosed), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(crate) async fn close_bidding(
    State(platform): S,
    caller: Caller,
    Path(bidding): Path<String>,
    Query(q): Query<MemberQuery>,
) -> ApiResult<Json<BiddingClosed>> {
    let as_member = q.member.is_some() || caller.may(&Action::OperateExchange).is_err();
    let actor = if as_member {
        let member = member_of(&caller, q.member.as_deref())?;
        caller.may(&Action::PlaceOrder { member: member.clone() })?;
        member
    } else {
        operator_of(&platform)?
    };
    let at_ms = platform.exchange_now();
    let command = X::CloseBidding { bidding: bidding.clone() };
    let outcome = submit_exchange(platform.clone(), XEnvelope { id: platform.command_id("xe"), actor, at_ms, command }).await?;
    let filled_t = outcome
        .events
        .iter()
        .find_map(|e| match e {
            XEvent::BiddingClosed { filled, .. } => Some(*filled),
            _ => None,
        })
        .unwrap_or(0);
    Ok(Json(BiddingClosed { bidding, filled_t, trades: trades_of(&outcome) }))
}

// ------------------------------------------------------------------ members: unlodging

#[derive(Deserialize, ToSchema)]
pub struct UnlodgeRequest {
    pub instrument: String,
    pub qty_t: u64,
    /// Which member to act for, when the credential carries several.
    pub member: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Unlodgement {
    pub member: String,
    pub instrument: String,
    pub unlodged_t: u64,
    /// The registry deliveries back into the member's account, carried out before this answer.
    pub deliveries: Vec<InstructionView>,
}

/// Returns free lodged units (not backing orders, offers or deals, not sold) to the member's
/// registry account.
#[utoipa::path(post, path = "/api/v1/exchange/unlodgements", tag = "exchange", request_body = UnlodgeRequest, security(("session" = []), ("bearer" = [])),
    responses((status = 201, body = Unlodgement), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(crate) async fn unlodge(
    State(platform): S,
    caller: Caller,
    Json(body): Json<UnlodgeRequest>,
) -> ApiResult<(StatusCode, Json<Unlodgement>)> {
    let member = member_of(&caller, body.member.as_deref())?;
    caller.may(&Action::PlaceOrder { member: member.clone() })?;
    positive_qty(body.qty_t)?;
    let at_ms = platform.exchange_now();
    let command = X::Unlodge { member: member.clone(), instrument: body.instrument.clone(), qty: body.qty_t };
    let outcome =
        submit_exchange(platform.clone(), XEnvelope { id: platform.command_id("xu"), actor: member.clone(), at_ms, command }).await?;
    let deliveries = instructions_of(&outcome);
    Ok((StatusCode::CREATED, Json(Unlodgement { member, instrument: body.instrument, unlodged_t: body.qty_t, deliveries })))
}
