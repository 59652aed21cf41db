//! Primary auctions as a bidding window: the market's authority opens an auction (the volume is
//! set aside from the market's reserve account in an escrow the registry holds for the
//! exchange's clearing account), exchange members bid themselves (sealed bids, each covered by
//! the member's free cash, withdrawable while the window is open), and the authority clears it:
//! uniform price, units delivered out of the escrow, the rest returned to the reserve. Results
//! are published like market data, without winners' names.

use crate::api::{member_of, submit_exchange};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Json, Path, Query};
use crate::view::AuctionView;
use crate::Platform;
use axum::extract::State;
use axum::http::StatusCode;
use ets_access::{Action, Role};
use ets_core::Tonnes;
use ets_exchange::auction::{AuctionRules, Undersubscribed};
use ets_exchange::venue::{Command as X, Envelope as XEnvelope, Event as XEvent};
use ets_registry::Command as RegistryCommand;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

type S = State<Arc<Platform>>;

/// Primary auctions: those taking bids (`outcome: open`) and the published results of those
/// run, in id order.
#[utoipa::path(get, path = "/api/v1/auctions", tag = "market data", responses((status = 200, body = Vec<AuctionView>)))]
pub(crate) async fn auctions(State(platform): S, caller: Caller) -> ApiResult<axum::Json<Vec<AuctionView>>> {
    caller.may(&Action::ReadMarketData)?;
    let view = platform.market.read().expect("market view").clone();
    Ok(axum::Json(view.open_auctions.iter().chain(view.auctions.iter()).cloned().collect()))
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct AuctionRequest {
    /// The auction's id: 1 to 56 letters, digits, '-' or '_' (an id is used once).
    pub auction: String,
    pub instrument: String,
    pub volume_t: u64,
    /// No sale below this price; bids below it are refused.
    pub reserve_price_fen: i64,
    /// Bids in whole multiples of this many tonnes (default 1).
    pub lot_t: Option<u64>,
    /// The most one bidder may win, as a percentage of the volume (default: no limit).
    pub bidder_limit_percent: Option<u32>,
    /// Sell what is bid when bids fall short of the volume (default: cancel, the EU rule).
    #[serde(default)]
    pub sell_undersubscribed: bool,
    /// The seed that orders tied bids, fixed before any bid (default 0).
    pub seed: Option<u64>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct OpenedAuction {
    #[serde(flatten)]
    pub auction: AuctionView,
    /// The account the units come from.
    pub from_account: String,
    /// The registry pending transfer that holds the volume until the auction clears.
    pub escrow: String,
}

/// Opens a primary auction of a market's allowances for bids. The volume is set aside from the
/// market's reserve (or issuance) account at once, so nothing else can take it before the
/// auction clears. The market's authority only.
#[utoipa::path(post, path = "/api/v1/auctions", tag = "exchange", request_body = AuctionRequest, security(("session" = []), ("bearer" = [])),
    responses((status = 201, body = OpenedAuction), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(crate) async fn open_auction(
    State(platform): S,
    caller: Caller,
    Json(body): Json<AuctionRequest>,
) -> ApiResult<(StatusCode, axum::Json<OpenedAuction>)> {
    caller.signed_in()?;
    let Some((market, unit)) = platform.directory().instruments.get(&body.instrument).cloned() else {
        return Err(if authority_anywhere(&caller) {
            ApiError::not_found(format!("no instrument {}", body.instrument))
        } else {
            not_an_authority(&caller)
        });
    };
    caller.may(&Action::RunAuction { market: market.clone() })?;
    let operator = platform.operator.clone().ok_or_else(|| ApiError::unavailable("no exchange is set up in this database"))?;
    check_auction_id(&body.auction)?;
    if body.volume_t == 0 {
        return Err(ApiError::invalid("volume_t must be positive"));
    }
    if body.reserve_price_fen <= 0 {
        return Err(ApiError::invalid("reserve_price_fen must be positive"));
    }
    if body.lot_t == Some(0) {
        return Err(ApiError::invalid("lot_t must be at least 1"));
    }
    if body.bidder_limit_percent.is_some_and(|p| p == 0 || p > 100) {
        return Err(ApiError::invalid("bidder_limit_percent is from 1 to 100"));
    }
    {
        let view = platform.market.read().expect("market view");
        if view.open_auctions.iter().chain(view.auctions.iter()).any(|a| a.auction == body.auction) {
            return Err(ApiError::conflict(format!("auction {} already exists", body.auction)));
        }
    }
    let escrow = format!("auction-{}", body.auction);
    // The seller is the exchange member whose account in the market is its reserve (or
    // issuance) account; the market's registry authority sets the volume aside from it for the
    // clearing account, in the same registry step as the check that it is free.
    let (seller, from_account, authority) = {
        let p = platform.clone();
        let (market, unit, escrow, volume) = (market.clone(), unit.clone(), escrow.clone(), body.volume_t);
        crate::api::blocking(move || {
            let mut ledger = p.registry.lock().expect("registry lock");
            let r = ledger.registry();
            let m = r.find_market(&market).ok_or_else(|| ApiError::not_found(format!("no market {market}")))?;
            let authority =
                r.market(m).spec.authorities.first().cloned().ok_or_else(|| ApiError::conflict(format!("{market} has no authority")))?;
            let directory = p.directory();
            let source = directory.accounts.iter().filter(|((_, mk), _)| *mk == market).find(|(_, number)| {
                r.find_account(number)
                    .is_some_and(|a| matches!(r.account(a).kind, ets_registry::AccountKind::Reserve | ets_registry::AccountKind::Issuance))
            });
            let Some(((seller, _), from_account)) = source else {
                return Err(ApiError::conflict(format!(
                    "no exchange member holds {market}'s reserve or issuance account: the exchange cannot deliver auctioned units"
                )));
            };
            let (seller, from_account) = (seller.clone(), from_account.clone());
            let clearing = directory
                .clearing
                .get(&market)
                .cloned()
                .ok_or_else(|| ApiError::unavailable(format!("no clearing account for market {market}")))?;
            if r.pending(&escrow).is_some() {
                return Err(ApiError::conflict(format!("auction escrow {escrow} already exists")));
            }
            let envelope = ets_registry::Envelope {
                id: p.command_id("auction-escrow"),
                actor: authority.clone(),
                command: RegistryCommand::CreatePending {
                    pending: escrow,
                    from: from_account.clone(),
                    to: clearing,
                    unit,
                    quantity: Tonnes(volume),
                    purpose: ets_registry::PendingPurpose::Escrow,
                },
            };
            match ledger.submit(p.now(), &envelope) {
                Ok(_) => Ok((seller, from_account, authority)),
                Err(ets_store::SubmitError::Rejected(r)) => Err(r.into()),
                Err(ets_store::SubmitError::Store(e)) => Err(e.into()),
            }
        })
        .await?
    };
    let rules = AuctionRules {
        lot_t: body.lot_t.unwrap_or(1),
        reserve_price: body.reserve_price_fen,
        bidder_limit_bp: body.bidder_limit_percent.map(|p| p * 100),
        undersubscribed: if body.sell_undersubscribed { Undersubscribed::SellWhatIsBid } else { Undersubscribed::Cancel },
        cancel_below_secondary_bp: Some(1_000),
    };
    let command = X::OpenAuction {
        auction: body.auction.clone(),
        instrument: body.instrument.clone(),
        seller,
        volume: body.volume_t,
        rules: rules.clone(),
        pending: escrow.clone(),
        secondary_reference: None,
        seed: body.seed.unwrap_or(0),
    };
    let at_ms = platform.exchange_now();
    let id = platform.command_id("auction-open");
    if let Err(refused) = submit_exchange(platform.clone(), XEnvelope { id, actor: operator, at_ms, command }).await {
        // A failure of the exchange's storage may come after the opening was journaled: the
        // escrow then stays (the start-up reconciliation and the journal decide), never voided
        // under an open auction.
        if !refused.status.is_client_error() {
            return Err(refused);
        }
        // Nothing may stay set aside for an auction the exchange did not open.
        let void = ets_registry::Envelope {
            id: platform.command_id("auction-void"),
            actor: authority,
            command: RegistryCommand::VoidPending { pending: escrow.clone() },
        };
        let p = platform.clone();
        crate::api::blocking(move || {
            p.registry.lock().expect("registry lock").submit(p.now(), &void).map(|_| ()).map_err(|e| ApiError::internal(format!("{e:?}")))
        })
        .await?;
        return Err(refused);
    }
    let date = platform.market.read().expect("market view").day.clone();
    let auction = crate::view::offer_view(&body.auction, &body.instrument, &market, date, body.volume_t, &rules);
    Ok((StatusCode::CREATED, axum::Json(OpenedAuction { auction, from_account, escrow })))
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct BidRequest {
    pub price_fen: i64,
    pub qty_t: u64,
    /// Which member bids, when the credential carries several.
    pub member: Option<String>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct BidReceipt {
    pub auction: String,
    pub member: String,
    /// The bid's number in the auction (to withdraw it).
    pub bid: usize,
    pub price_fen: i64,
    pub qty_t: u64,
    /// The member's cash set aside as the bid's guarantee until the auction clears.
    pub guarantee_fen: i64,
}

/// A member's sealed bid in an open auction, covered by the member's free cash at the exchange
/// (set aside until the auction clears or the bid is withdrawn). Exchange members only, for
/// themselves.
#[utoipa::path(post, path = "/api/v1/auctions/{auction}/bids", tag = "exchange", request_body = BidRequest, params(("auction" = String, Path)),
    security(("session" = []), ("bearer" = [])),
    responses((status = 201, body = BidReceipt), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(crate) async fn auction_bid(
    State(platform): S,
    caller: Caller,
    Path(auction): Path<String>,
    Json(body): Json<BidRequest>,
) -> ApiResult<(StatusCode, axum::Json<BidReceipt>)> {
    Ok((StatusCode::CREATED, axum::Json(place_bid(platform, &caller, auction, body).await?)))
}

/// A bid for the caller's member (the API's and the dashboard's path).
pub(crate) async fn place_bid(platform: Arc<Platform>, caller: &Caller, auction: String, body: BidRequest) -> ApiResult<BidReceipt> {
    let member = member_of(caller, body.member.as_deref())?;
    caller.may(&Action::PlaceOrder { member: member.clone() })?;
    if body.price_fen <= 0 || body.qty_t == 0 {
        return Err(ApiError::invalid("price_fen and qty_t must be positive"));
    }
    // Units won are delivered into the member's account in the market: it must take them.
    let instrument =
        platform.market.read().expect("market view").open_auctions.iter().find(|a| a.auction == auction).map(|a| a.instrument.clone());
    if let Some(instrument) = instrument {
        crate::api_exchange::require_account(&platform, &member, &instrument)?;
    }
    let at_ms = platform.exchange_now();
    let id = platform.command_id("auction-bid");
    let command = X::AuctionBid { auction: auction.clone(), member: member.clone(), price: body.price_fen, qty: body.qty_t };
    let outcome = submit_exchange(platform.clone(), XEnvelope { id, actor: member.clone(), at_ms, command }).await?;
    let bid = outcome
        .events
        .iter()
        .find_map(|e| match e {
            XEvent::AuctionBidAccepted { bid, .. } => Some(*bid),
            _ => None,
        })
        .ok_or_else(|| ApiError::internal("the exchange accepted the bid without numbering it"))?;
    let guarantee_fen = body.price_fen.saturating_mul(body.qty_t as i64);
    Ok(BidReceipt { auction, member, bid, price_fen: body.price_fen, qty_t: body.qty_t, guarantee_fen })
}

#[derive(Deserialize, IntoParams)]
pub struct MemberQuery {
    /// Which member withdraws, when the credential carries several.
    pub member: Option<String>,
}

/// Withdraws one of the member's own bids while the auction is open; its guarantee is released.
#[utoipa::path(delete, path = "/api/v1/auctions/{auction}/bids/{bid}", tag = "exchange", params(("auction" = String, Path), ("bid" = u32, Path), MemberQuery),
    security(("session" = []), ("bearer" = [])),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(crate) async fn withdraw_auction_bid(
    State(platform): S,
    caller: Caller,
    Path((auction, bid)): Path<(String, u32)>,
    Query(query): Query<MemberQuery>,
) -> ApiResult<StatusCode> {
    let member = member_of(&caller, query.member.as_deref())?;
    caller.may(&Action::PlaceOrder { member: member.clone() })?;
    let at_ms = platform.exchange_now();
    let id = platform.command_id("auction-withdraw");
    let command = X::WithdrawAuctionBid { auction, member: member.clone(), bid: bid as usize };
    submit_exchange(platform, XEnvelope { id, actor: member, at_ms, command }).await?;
    Ok(StatusCode::NO_CONTENT)
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
}

/// Closes an auction's window and clears it: uniform price, winners pay out of their guarantees,
/// units are delivered out of the escrow and the rest goes back to the reserve. The authority
/// of the auction's market only.
#[utoipa::path(post, path = "/api/v1/auctions/{auction}/clear", tag = "exchange", params(("auction" = String, Path)),
    security(("session" = []), ("bearer" = [])),
    responses((status = 200, body = AuctionResult), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(crate) async fn clear_auction(State(platform): S, caller: Caller, Path(auction): Path<String>) -> ApiResult<axum::Json<AuctionResult>> {
    Ok(axum::Json(clear(platform, &caller, auction).await?))
}

/// Clears an open auction for its market's authority (the API's and the dashboard's path).
pub(crate) async fn clear(platform: Arc<Platform>, caller: &Caller, auction: String) -> ApiResult<AuctionResult> {
    caller.signed_in()?;
    let open = platform.market.read().expect("market view").open_auctions.iter().find(|a| a.auction == auction).cloned();
    let Some(open) = open else {
        if !authority_anywhere(caller) {
            return Err(not_an_authority(caller));
        }
        let done = platform.market.read().expect("market view").auctions.iter().any(|a| a.auction == auction);
        return Err(if done {
            ApiError::conflict(format!("auction {auction} has already been cleared"))
        } else {
            ApiError::not_found(format!("no auction {auction} is taking bids"))
        });
    };
    caller.may(&Action::RunAuction { market: open.market.clone() })?;
    let operator = platform.operator.clone().ok_or_else(|| ApiError::unavailable("no exchange is set up in this database"))?;
    let at_ms = platform.exchange_now();
    let id = platform.command_id("auction-clear");
    let outcome =
        submit_exchange(platform.clone(), XEnvelope { id, actor: operator, at_ms, command: X::ClearAuction { auction: auction.clone() } })
            .await?;
    let directory = platform.directory();
    let members: std::collections::BTreeMap<&String, &String> =
        directory.accounts.iter().filter(|((_, mk), _)| *mk == open.market).map(|((member, _), a)| (a, member)).collect();
    let awards: Vec<AuctionAward> = outcome
        .instructions
        .iter()
        .filter_map(|i| match &i.command {
            RegistryCommand::DeliverPending { to, quantity, .. } => Some(AuctionAward {
                member: members.get(to).map(|m| m.to_string()).unwrap_or_default(),
                account: to.clone(),
                qty_t: quantity.0,
            }),
            _ => None,
        })
        .collect();
    let (bids, bidders, bid_t) = outcome
        .events
        .iter()
        .find_map(|e| match e {
            XEvent::AuctionBidsClosed { bids, bidders, bid_qty, .. } => Some((*bids, *bidders, *bid_qty)),
            _ => None,
        })
        .unwrap_or_default();
    let mut result = AuctionView { bids, bidders, bid_t, outcome: String::new(), ..open };
    result.date = platform.market.read().expect("market view").day.clone().or(result.date);
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
    Ok(AuctionResult { result, awards })
}

/// A market authority of some market: it may learn whether an auction or instrument exists;
/// anyone else is refused before that is looked up.
fn authority_anywhere(caller: &Caller) -> bool {
    caller.roles().iter().any(|r| matches!(r, Role::MarketAuthority { .. }))
}

fn not_an_authority(caller: &Caller) -> ApiError {
    ApiError::forbidden(format!("{} may not run auctions: a market's authority runs its auctions", caller.user().unwrap_or("the public")))
}

fn check_auction_id(auction: &str) -> ApiResult<()> {
    // The escrow's registry id is `auction-{id}`, within the registry's 64 characters.
    if auction.is_empty() || auction.len() > 56 || !auction.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(ApiError::invalid("auction: 1 to 56 letters, digits, '-' or '_'"));
    }
    Ok(())
}
