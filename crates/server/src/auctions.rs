//! Primary auctions: their published results (public, like market data) and running one for a
//! market's authority. The units come from the market's reserve (or issuance) account through
//! the exchange member that holds it; bids are covered by the bidders' cash at the exchange;
//! winners receive their units as an allocation from that account.

use crate::api::submit_exchange;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Json;
use crate::view::AuctionView;
use crate::Platform;
use axum::extract::State;
use axum::http::StatusCode;
use ets_access::Action;
use ets_exchange::auction::{AuctionRules, Bid, Undersubscribed};
use ets_exchange::venue::{Command as X, Envelope as XEnvelope, Event as XEvent};
use ets_registry::Command as RegistryCommand;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

type S = State<Arc<Platform>>;

/// The most bids one auction takes through the API.
pub const MAX_BIDS: usize = 10_000;

/// Published results of every primary auction run.
#[utoipa::path(get, path = "/api/v1/auctions", tag = "market data", responses((status = 200, body = Vec<AuctionView>)))]
pub(crate) async fn auctions(State(platform): S, caller: Caller) -> ApiResult<axum::Json<Vec<AuctionView>>> {
    caller.may(&Action::ReadMarketData)?;
    let view = platform.market.read().expect("market view").clone();
    Ok(axum::Json(view.auctions.clone()))
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct BidRequest {
    /// The bidding exchange member.
    pub member: String,
    pub price_fen: i64,
    pub qty_t: u64,
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct AuctionRequest {
    /// The auction's id (an auction id runs once).
    pub auction: String,
    pub instrument: String,
    pub volume_t: u64,
    /// No sale below this price.
    pub reserve_price_fen: i64,
    /// Bids in whole multiples of this many tonnes (default 1).
    pub lot_t: Option<u64>,
    /// The most one bidder may win, as a percentage of the volume (default: no limit).
    pub bidder_limit_percent: Option<u32>,
    /// Sell what is bid when bids fall short of the volume (default: cancel, the EU rule).
    #[serde(default)]
    pub sell_undersubscribed: bool,
    /// The seed that orders tied bids (default 0).
    pub seed: Option<u64>,
    pub bids: Vec<BidRequest>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct AuctionAward {
    pub member: String,
    pub account: String,
    pub qty_t: u64,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct AuctionResult {
    #[serde(flatten)]
    pub result: AuctionView,
    /// Who won what (for the authority; the public result does not name winners).
    pub awards: Vec<AuctionAward>,
    /// The account the units came from.
    pub from_account: String,
}

/// Runs a primary auction of a market's allowances: uniform price, bids covered by the bidders'
/// cash at the exchange, delivery from the market's reserve account. The market's authority only.
#[utoipa::path(post, path = "/api/v1/auctions", tag = "exchange", request_body = AuctionRequest, security(("session" = []), ("bearer" = [])),
    responses((status = 201, body = AuctionResult), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn run_auction(
    State(platform): S,
    caller: Caller,
    Json(body): Json<AuctionRequest>,
) -> ApiResult<(StatusCode, axum::Json<AuctionResult>)> {
    let operator = platform.operator.clone().ok_or_else(|| ApiError::unavailable("no exchange is set up in this database"))?;
    let (market, unit) = platform
        .directory()
        .instruments
        .get(&body.instrument)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("no instrument {}", body.instrument)))?;
    caller.may(&Action::RunAuction { market: market.clone() })?;
    let user = caller.user().unwrap_or("unknown").to_string();
    if body.auction.is_empty()
        || body.auction.len() > 64
        || !body.auction.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ApiError::invalid("auction: 1 to 64 letters, digits, '-' or '_'"));
    }
    if body.bids.is_empty() || body.bids.len() > MAX_BIDS {
        return Err(ApiError::invalid(format!("bids: 1 to {MAX_BIDS} bids, not {}", body.bids.len())));
    }
    if body.volume_t == 0 {
        return Err(ApiError::invalid("volume_t must be positive"));
    }
    if body.reserve_price_fen <= 0 {
        return Err(ApiError::invalid("reserve_price_fen must be positive"));
    }
    if body.bidder_limit_percent.is_some_and(|p| p == 0 || p > 100) {
        return Err(ApiError::invalid("bidder_limit_percent is from 1 to 100"));
    }
    for (i, b) in body.bids.iter().enumerate() {
        if b.price_fen <= 0 || b.qty_t == 0 {
            return Err(ApiError::invalid(format!("bids[{i}]: price_fen and qty_t must be positive")));
        }
    }
    // One auction at a time from check to delivery; see `Platform::auction_lock`.
    let _auction = platform.auction_lock.lock().await;
    // The seller: the exchange member whose account in the market is its reserve (or issuance)
    // account, holding the volume free; the registry's authority delivers from it.
    let directory = platform.directory();
    let (seller, from_account, authority, awards_to) = {
        let ledger = platform.registry.lock().expect("registry lock");
        let r = ledger.registry();
        let m = r.find_market(&market).ok_or_else(|| ApiError::not_found(format!("no market {market}")))?;
        let authority =
            r.market(m).spec.authorities.first().cloned().ok_or_else(|| ApiError::conflict(format!("{market} has no authority")))?;
        let source = directory.accounts.iter().filter(|((_, mk), _)| *mk == market).find(|(_, number)| {
            r.find_account(number)
                .is_some_and(|a| matches!(r.account(a).kind, ets_registry::AccountKind::Reserve | ets_registry::AccountKind::Issuance))
        });
        let Some(((seller, _), from_account)) = source else {
            return Err(ApiError::conflict(format!(
                "no exchange member holds {market}'s reserve or issuance account: the exchange cannot deliver auctioned units"
            )));
        };
        let free =
            r.find_account(from_account).zip(r.unit_named(&unit).ok()).and_then(|(a, u)| r.holding(a, u)).map_or(0, |h| h.free_total());
        if free < body.volume_t {
            return Err(ApiError::refused(format!(
                "{from_account} holds {free} t of {unit} free, less than the {} t offered",
                body.volume_t
            )));
        }
        let awards_to: std::collections::BTreeMap<String, String> =
            directory.accounts.iter().filter(|((_, mk), _)| *mk == market).map(|((member, _), a)| (a.clone(), member.clone())).collect();
        (seller.clone(), from_account.clone(), authority, awards_to)
    };
    let rules = AuctionRules {
        lot_t: body.lot_t.unwrap_or(1).max(1),
        reserve_price: body.reserve_price_fen,
        bidder_limit_bp: body.bidder_limit_percent.map(|p| p * 100),
        undersubscribed: if body.sell_undersubscribed { Undersubscribed::SellWhatIsBid } else { Undersubscribed::Cancel },
        cancel_below_secondary_bp: Some(1_000),
    };
    let bids = body.bids.iter().map(|b| Bid { bidder: b.member.clone(), price: b.price_fen, qty: b.qty_t }).collect();
    let command = X::PrimaryAuction {
        auction: body.auction.clone(),
        instrument: body.instrument.clone(),
        seller,
        authority_actor: authority,
        volume: body.volume_t,
        rules,
        bids,
        secondary_reference: None,
        seed: body.seed.unwrap_or(0),
    };
    let at_ms = platform.exchange_now();
    // The journal's command id names who ran it (the exchange's operator submits it).
    let id = format!("auction-{}-by-{user}", body.auction);
    let outcome = submit_exchange(platform.clone(), XEnvelope { id, actor: operator, at_ms, command }).await?;
    let awards: Vec<AuctionAward> = outcome
        .instructions
        .iter()
        .filter_map(|i| match &i.command {
            RegistryCommand::Allocate { to, quantity, .. } => {
                Some(AuctionAward { member: awards_to.get(to).cloned().unwrap_or_default(), account: to.clone(), qty_t: quantity.0 })
            }
            _ => None,
        })
        .collect();
    let mut result = AuctionView {
        auction: body.auction.clone(),
        instrument: body.instrument.clone(),
        market,
        date: platform.market.read().expect("market view").day.clone(),
        volume_t: body.volume_t,
        reserve_price_fen: body.reserve_price_fen,
        bids: body.bids.len(),
        bidders: body.bids.iter().map(|b| b.member.as_str()).collect::<std::collections::BTreeSet<_>>().len(),
        bid_t: body.bids.iter().map(|b| b.qty_t).sum(),
        outcome: String::new(),
        clearing_price_fen: None,
        sold_t: None,
        successful_bidders: None,
        reason: None,
    };
    for event in &outcome.events {
        match event {
            XEvent::AuctionCleared { price, sold, .. } => {
                result.outcome = "cleared".into();
                result.clearing_price_fen = Some(*price);
                result.sold_t = Some(*sold);
                result.successful_bidders = Some(awards.len());
            }
            XEvent::AuctionCancelled { reason, .. } => {
                result.outcome = "cancelled".into();
                result.reason = Some(reason.clone());
            }
            _ => {}
        }
    }
    Ok((StatusCode::CREATED, axum::Json(AuctionResult { result, awards, from_account })))
}
