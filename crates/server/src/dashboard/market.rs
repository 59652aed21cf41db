//! Public pages from the published market view: the market overview (closing-price series and
//! volumes, national market first, the pilots side by side), the exchange's books and trades
//! with an order form for members, and auctions.

use super::chart::{self, LARGE, SMALL};
use super::{cross_origin, html_response, layout, tonnes, yuan, Banner, Viewer, S};
use crate::api::{self, OrderRequest};
use crate::error::ApiError;
use crate::view::{InstrumentView, MarketView};
use crate::{ExchangeTime, Platform};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Form;
use ets_access::Action;
use maud::{html, Markup};
use serde::Deserialize;
use std::sync::Arc;

/// Recent trades shown per instrument on the exchange page.
const TRADES_SHOWN: usize = 20;

fn view_of(platform: &Platform) -> Arc<MarketView> {
    platform.market.read().expect("market view").clone()
}

fn session_note(platform: &Platform) -> Markup {
    let session = matches!(platform.exchange_time, ExchangeTime::Session { .. });
    html! {
        @if session {
            div.note #session-note {
                "Demonstration clock: the exchange's time walks through one trading session from the server's start, "
                "whatever the hour of the real day. Orders carry that session time, not the wall clock."
            }
        }
    }
}

fn last_close(i: &InstrumentView) -> i64 {
    i.bars.last().map_or(i.previous_close_fen, |b| b.close_fen)
}

/// The change of the last close against the close `days` trading days before, in basis points
/// of the earlier close.
fn change_bp(i: &InstrumentView, days: usize) -> Option<i64> {
    let n = i.bars.len();
    if n <= days || days == 0 {
        return None;
    }
    let before = i.bars[n - 1 - days].close_fen;
    (before > 0).then(|| (i.bars[n - 1].close_fen - before) * 10_000 / before)
}

fn change_text(bp: Option<i64>) -> Markup {
    html! {
        @match bp {
            None => span.muted { "–" },
            Some(bp) => span class=(if bp > 0 { "up" } else if bp < 0 { "down" } else { "" }) {
                (if bp > 0 { "+" } else if bp < 0 { "−" } else { "" }) (bp.abs() / 100) "." (format!("{:02}", bp.abs() % 100)) "%"
            },
        }
    }
}

/// Days of the closing-price series listed beside the national chart.
const CLOSES_LISTED: usize = 10;

fn recent_closes(i: &InstrumentView) -> Markup {
    html! {
        table.compact.closes {
            thead { tr { th { "Day" } th.n { "Close" } th.n { "Volume (t)" } } }
            tbody {
                @for b in i.bars.iter().rev().take(CLOSES_LISTED) {
                    tr { td { (b.date) } td.n { (yuan(b.close_fen)) } td.n { (tonnes(b.listed_volume_t + b.block_volume_t + b.other_volume_t)) } }
                }
                @if i.bars.is_empty() { tr { td colspan="3" .muted { "No closed day yet." } } }
            }
        }
    }
}

fn figures(i: &InstrumentView) -> Markup {
    let today_volume = i.today.as_ref().map(|b| b.listed_volume_t + b.block_volume_t + b.other_volume_t);
    html! {
        div.figures {
            div { span { "Last close" } b.close { (yuan(last_close(i))) } }
            div { span { "1 day" } b { (change_text(change_bp(i, 1))) } }
            div { span { "20 days" } b { (change_text(change_bp(i, 20))) } }
            div { span { "Best bid" } b.bid { (i.best_bid.as_ref().map_or("–".to_string(), |l| yuan(l.price_fen))) } }
            div { span { "Best ask" } b.ask { (i.best_ask.as_ref().map_or("–".to_string(), |l| yuan(l.price_fen))) } }
            @if let Some(today) = &i.today {
                div { span { "Today" } b {
                    @match (today.low_fen, today.high_fen) {
                        (Some(lo), Some(hi)) => { (yuan(lo)) "–" (yuan(hi)) },
                        _ => "no trade yet",
                    }
                } }
                div { span { "Today's volume" } b { (tonnes(today_volume.unwrap_or(0))) " t" } }
            }
        }
    }
}

/// `/`: the market overview, for everyone.
pub(crate) async fn overview(State(platform): S, viewer: Viewer) -> Response {
    if let Some(r) = viewer.refusal(ets_access::allows(viewer.caller.roles(), &Action::ReadMarketData), "market data") {
        return r;
    }
    let view = view_of(&platform);
    let rights = &viewer.rights;
    let national_codes: Vec<&str> = rights.markets.iter().filter(|m| m.national).map(|m| m.code.as_str()).collect();
    let (national, pilots): (Vec<&InstrumentView>, Vec<&InstrumentView>) =
        view.instruments.values().partition(|i| national_codes.contains(&i.market.as_str()));
    let body = html! {
        h1 { "Market overview" }
        p.muted {
            @match &view.day {
                Some(day) => { "Trading day " b #trading-day { (day) } " is open. " },
                None => { "No trading day is open. " },
            }
            (view.instruments.len()) (if view.instruments.len() == 1 { " instrument" } else { " instruments" }) " listed, " (tonnes(view.trades_total)) " trades recorded. "
            "Prices in yuan per tonne; closing prices of closed trading days."
        }
        (session_note(&platform))
        @if view.instruments.is_empty() {
            div.card { "No instrument is listed on the exchange yet." }
        }
        @for i in &national {
            section.card.national id=(format!("instrument-{}", i.code)) {
                h2 { (rights.market_name(&i.market)) " · " (i.code) " " span.badge { "national market" } }
                (figures(i))
                div.split {
                    (chart::price_volume(&format!("{} closing prices and daily volume", i.code), &i.bars, LARGE))
                    (recent_closes(i))
                }
            }
        }
        @if !pilots.is_empty() {
            h2 { "Pilot markets" }
            div.grid #pilots {
                @for i in &pilots {
                    section.card.pilot id=(format!("instrument-{}", i.code)) {
                        h3 { (rights.market_name(&i.market)) " · " (i.code) }
                        div.figures {
                            div { span { "Last close" } b.close { (yuan(last_close(i))) } }
                            div { span { "20 days" } b { (change_text(change_bp(i, 20))) } }
                        }
                        (chart::price_volume(&format!("{} closing prices and daily volume", i.code), &i.bars, SMALL))
                    }
                }
            }
            h2 { "Side by side" }
            div.card {
                table #side-by-side {
                    thead { tr {
                        th { "Market" } th { "Instrument" } th.n { "Last close" } th.n { "1 day" } th.n { "20 days" }
                        th.n { "Best bid" } th.n { "Best ask" } th.n { "Trading days" } th.n { "Volume, last 20 days (t)" }
                    } }
                    tbody {
                        @for i in national.iter().chain(pilots.iter()) {
                            tr {
                                td { (rights.market_name(&i.market)) } td { (i.code) }
                                td.n { (yuan(last_close(i))) }
                                td.n { (change_text(change_bp(i, 1))) }
                                td.n { (change_text(change_bp(i, 20))) }
                                td.n.bid { (i.best_bid.as_ref().map_or("–".to_string(), |l| yuan(l.price_fen))) }
                                td.n.ask { (i.best_ask.as_ref().map_or("–".to_string(), |l| yuan(l.price_fen))) }
                                td.n { (i.bars.len()) }
                                td.n { (tonnes(i.bars.iter().rev().take(20).map(|b| b.listed_volume_t + b.block_volume_t + b.other_volume_t).sum())) }
                            }
                        }
                    }
                }
            }
        }
    };
    html_response(axum::http::StatusCode::OK, layout(Some(&viewer), "/", "Market overview", body))
}

fn book(i: &InstrumentView) -> Markup {
    html! {
        table.book {
            thead { tr { th { "Side" } th.n { "Price" } th.n { "Quantity (t)" } } }
            tbody {
                @for l in i.asks.iter().rev() {
                    tr.ask { td { "ask" } td.n { (yuan(l.price_fen)) } td.n { (tonnes(l.qty_t)) } }
                }
                @for l in &i.bids {
                    tr.bid { td { "bid" } td.n { (yuan(l.price_fen)) } td.n { (tonnes(l.qty_t)) } }
                }
                @if i.asks.is_empty() && i.bids.is_empty() {
                    tr { td colspan="3" .muted { "The book is empty." } }
                }
            }
        }
    }
}

fn trades_table(i: &InstrumentView) -> Markup {
    html! {
        table.trades {
            thead { tr { th { "Trade" } th { "Date" } th { "Kind" } th.n { "Price" } th.n { "Quantity (t)" } th { "Buyer" } th { "Seller" } } }
            tbody {
                @for t in i.recent_trades.iter().take(TRADES_SHOWN) {
                    tr { td { (t.id) } td { (t.date) } td { (t.kind) } td.n { (yuan(t.price_fen)) } td.n { (tonnes(t.qty_t)) } td { (t.buyer) } td { (t.seller) } }
                }
                @if i.recent_trades.is_empty() {
                    tr { td colspan="7" .muted { "No trades yet." } }
                }
            }
        }
    }
}

fn order_form(viewer: &Viewer, view: &MarketView) -> Markup {
    html! {
        @if !viewer.rights.members.is_empty() {
            div.card #order-form {
                h2 { "Place an order" }
                form.stack method="post" action="/exchange/orders" {
                    @if viewer.rights.members.len() > 1 {
                        label { "Member" select name="member" { @for m in &viewer.rights.members { option value=(m) { (m) } } } }
                    } @else {
                        input type="hidden" name="member" value=(viewer.rights.members[0]);
                    }
                    label { "Instrument" select name="instrument" { @for code in view.instruments.keys() { option value=(code) { (code) } } } }
                    label { "Side" select name="side" { option value="buy" { "buy" } option value="sell" { "sell" } } }
                    label { "Limit price (¥, empty for a market order)" input type="text" name="price" inputmode="decimal" placeholder="80.00"; }
                    label { "Quantity (t)" input type="number" name="qty_t" min="1" required; }
                    label { "Time in force" select name="tif" { option value="gtc" { "good till cancelled" } option value="ioc" { "immediate or cancel" } option value="fok" { "fill or kill" } } }
                    button type="submit" { "Place order" }
                }
            }
        }
    }
}

fn exchange_page(platform: &Platform, viewer: &Viewer, banner: Banner) -> Response {
    let view = view_of(platform);
    let body = html! {
        h1 { "Exchange" }
        (banner.render())
        (session_note(platform))
        (order_form(viewer, &view))
        @for i in view.instruments.values() {
            section.card id=(format!("book-{}", i.code)) {
                h2 { (viewer.rights.market_name(&i.market)) " · " (i.code) " " span.muted { "previous close " (yuan(i.previous_close_fen)) } }
                div.grid style="grid-template-columns:minmax(260px,1fr) 2fr" {
                    div { h3 { "Order book, best " (crate::view::DEPTH_LEVELS) " levels" } (book(i)) }
                    div { h3 { "Recent trades" } (trades_table(i)) }
                }
            }
        }
        @if view.instruments.is_empty() { div.card { "No instrument is listed on the exchange yet." } }
    };
    html_response(banner.status(), layout(Some(viewer), "/exchange", "Exchange", body))
}

/// `/exchange`: books and trades for everyone; the order form for members.
pub(crate) async fn exchange(State(platform): S, viewer: Viewer) -> Response {
    if let Some(r) = viewer.refusal(ets_access::allows(viewer.caller.roles(), &Action::ReadMarketData), "market data") {
        return r;
    }
    exchange_page(&platform, &viewer, Banner::None)
}

#[derive(Deserialize)]
pub(crate) struct OrderForm {
    member: Option<String>,
    instrument: String,
    side: String,
    /// Yuan with at most two decimals; empty for a market order.
    price: String,
    qty_t: String,
    tif: String,
}

fn order_request(form: OrderForm) -> Result<OrderRequest, ApiError> {
    let price_fen = match form.price.trim() {
        "" => None,
        text => Some(ets_core::Fen::parse_yuan(text).map_err(|e| ApiError::invalid(e.to_string()))?.0),
    };
    let qty_t =
        form.qty_t.trim().parse::<u64>().map_err(|_| ApiError::invalid(format!("quantity '{}' must be whole tonnes", form.qty_t)))?;
    Ok(OrderRequest { instrument: form.instrument, side: form.side, price_fen, qty_t, tif: Some(form.tif), member: form.member })
}

/// `POST /exchange/orders`: places the order through the API's order path; shows the result.
pub(crate) async fn place_order(State(platform): S, headers: HeaderMap, viewer: Viewer, Form(form): Form<OrderForm>) -> Response {
    if let Some(r) = cross_origin(&headers) {
        return r;
    }
    if let Some(r) = viewer.refusal(viewer.caller.principal.is_some(), "the order form") {
        return r;
    }
    let outcome = match order_request(form) {
        Ok(request) => api::order(platform.clone(), &viewer.caller, request).await,
        Err(e) => Err(e),
    };
    let banner = match outcome {
        Ok(r) => {
            let traded: u64 = r.trades.iter().map(|t| t.qty_t).sum();
            Banner::Done(format!(
                "Order {} for {}: {} t traded in {} trade(s), {} t resting in the book, {} t cancelled.",
                r.order,
                r.member,
                tonnes(traded),
                r.trades.len(),
                tonnes(r.resting_t),
                tonnes(r.cancelled_t)
            ))
        }
        Err(e) => Banner::Refused(e),
    };
    exchange_page(&platform, &viewer, banner)
}

/// `/auctions`: call-auction and bidding trades in the published market data, and where the
/// primary auctions are run.
pub(crate) async fn auctions(State(platform): S, viewer: Viewer) -> Response {
    if let Some(r) = viewer.refusal(ets_access::allows(viewer.caller.roles(), &Action::ReadMarketData), "market data") {
        return r;
    }
    auctions_page(&platform, &viewer, Banner::None)
}

#[derive(Deserialize)]
pub(crate) struct BidForm {
    member: Option<String>,
    /// Yuan with at most two decimals.
    price: String,
    qty_t: String,
}

/// `POST /auctions/{auction}/bids`: the member's bid through the API's path; shows the result.
pub(crate) async fn bid(
    State(platform): S,
    headers: HeaderMap,
    viewer: Viewer,
    axum::extract::Path(auction): axum::extract::Path<String>,
    Form(form): Form<BidForm>,
) -> Response {
    if let Some(r) = cross_origin(&headers) {
        return r;
    }
    if let Some(r) = viewer.refusal(viewer.caller.principal.is_some(), "the bid form") {
        return r;
    }
    let request = (|| {
        let price_fen = ets_core::Fen::parse_yuan(form.price.trim()).map_err(|e| ApiError::invalid(e.to_string()))?.0;
        let qty_t =
            form.qty_t.trim().parse::<u64>().map_err(|_| ApiError::invalid(format!("quantity '{}' must be whole tonnes", form.qty_t)))?;
        Ok::<_, ApiError>(crate::auctions::BidRequest { price_fen, qty_t, member: form.member })
    })();
    let outcome = match request {
        Ok(request) => crate::auctions::place_bid(platform.clone(), &viewer.caller, auction, request).await,
        Err(e) => Err(e),
    };
    let banner = match outcome {
        Ok(r) => Banner::Done(format!(
            "Bid {} of {} in {}: {} t at {}; {} of cash set aside until the auction clears.",
            r.bid,
            r.member,
            r.auction,
            tonnes(r.qty_t),
            yuan(r.price_fen),
            yuan(r.guarantee_fen)
        )),
        Err(e) => Banner::Refused(e),
    };
    auctions_page(&platform, &viewer, banner)
}

/// `POST /auctions/{auction}/clear`: the market's authority closes bidding and clears.
pub(crate) async fn clear(
    State(platform): S,
    headers: HeaderMap,
    viewer: Viewer,
    axum::extract::Path(auction): axum::extract::Path<String>,
) -> Response {
    if let Some(r) = cross_origin(&headers) {
        return r;
    }
    if let Some(r) = viewer.refusal(viewer.caller.principal.is_some(), "clearing an auction") {
        return r;
    }
    let banner = match crate::auctions::clear(platform.clone(), &viewer.caller, auction).await {
        Ok(r) => Banner::Done(match (r.result.clearing_price_fen, r.result.sold_t) {
            (Some(price), Some(sold)) => {
                format!("Auction {} cleared at {}: {} t sold to {} bidder(s).", r.result.auction, yuan(price), tonnes(sold), r.awards.len())
            }
            _ => format!("Auction {} {}.", r.result.auction, r.result.reason.as_deref().unwrap_or("cancelled")),
        }),
        Err(e) => Banner::Refused(e),
    };
    auctions_page(&platform, &viewer, banner)
}

fn auctions_page(platform: &Platform, viewer: &Viewer, banner: Banner) -> Response {
    let view = view_of(platform);
    let may_run: Vec<String> = viewer
        .rights
        .markets
        .iter()
        .filter(|m| ets_access::allows(viewer.caller.roles(), &Action::RunAuction { market: m.code.clone() }))
        .map(|m| m.name.clone())
        .collect();
    let auction_trades: Vec<(&str, &crate::view::TradeView)> = view
        .instruments
        .values()
        .flat_map(|i| i.recent_trades.iter().filter(|t| t.kind == "call" || t.kind == "bidding").map(move |t| (i.code.as_str(), t)))
        .collect();
    let body = html! {
        h1 { "Auctions" }
        p.muted {
            "Primary auctions of allowances from a market's reserve: uniform price, bids covered by cash at the exchange, "
            "delivery into the winners' registry accounts. Results are published as the EU's platforms publish them: "
            "what was offered and bid, by how many, and the outcome."
        }
        (banner.render())
        @if !may_run.is_empty() {
            p { "You may open auctions in: " (may_run.join(", ")) ", with " code { "POST /api/v1/auctions" } ", and clear them here once bidding ends." }
        }
        h2 { "Taking bids" }
        div.card {
            table #auctions-open {
                thead { tr {
                    th { "Auction" } th { "Instrument" } th { "Opened" } th.n { "Offered (t)" } th.n { "Reserve" } th.n { "Lot (t)" } th { "" }
                } }
                tbody {
                    @for a in &view.open_auctions {
                        tr.open {
                            td { (a.auction) } td { (a.instrument) } td { (a.date.clone().unwrap_or_default()) } td.n { (tonnes(a.volume_t)) }
                            td.n { (yuan(a.reserve_price_fen)) } td.n { (tonnes(a.lot_t)) }
                            td {
                                @if !viewer.rights.members.is_empty() {
                                    form.inline method="post" action=(format!("/auctions/{}/bids", a.auction)) {
                                        @if viewer.rights.members.len() > 1 {
                                            select name="member" { @for m in &viewer.rights.members { option value=(m) { (m) } } }
                                        } @else {
                                            input type="hidden" name="member" value=(viewer.rights.members[0]);
                                        }
                                        input type="text" name="price" inputmode="decimal" placeholder="price ¥" required;
                                        input type="number" name="qty_t" min=(a.lot_t) step=(a.lot_t) placeholder="tonnes" required;
                                        button type="submit" { "Bid" }
                                    }
                                }
                                @if ets_access::allows(viewer.caller.roles(), &Action::RunAuction { market: a.market.clone() }) {
                                    form.inline method="post" action=(format!("/auctions/{}/clear", a.auction)) {
                                        button type="submit" { "Close and clear" }
                                    }
                                }
                            }
                        }
                    }
                    @if view.open_auctions.is_empty() {
                        tr { td colspan="7" .muted { "No auction is taking bids." } }
                    }
                }
            }
            p.muted { "Bids are sealed: each is covered by the member's free cash at the exchange until the auction clears, and a member may withdraw its own bids until then (" code { "DELETE /api/v1/auctions/{auction}/bids/{bid}" } ")." }
        }
        h2 { "Primary auctions" }
        div.card {
            table #auction-results {
                thead { tr {
                    th { "Auction" } th { "Instrument" } th { "Date" } th.n { "Offered (t)" } th.n { "Reserve" } th.n { "Bids" } th.n { "Bidders" }
                    th.n { "Bid (t)" } th { "Outcome" } th.n { "Clearing price" } th.n { "Sold (t)" } th.n { "Winners" }
                } }
                tbody {
                    @for a in &view.auctions {
                        tr class=(a.outcome) {
                            td { (a.auction) } td { (a.instrument) } td { (a.date.clone().unwrap_or_default()) } td.n { (tonnes(a.volume_t)) }
                            td.n { (yuan(a.reserve_price_fen)) } td.n { (a.bids) } td.n { (a.bidders) } td.n { (tonnes(a.bid_t)) }
                            td { (a.reason.as_deref().unwrap_or(&a.outcome)) }
                            td.n { (a.clearing_price_fen.map(yuan).unwrap_or_default()) }
                            td.n { (a.sold_t.map(tonnes).unwrap_or_default()) }
                            td.n { (a.successful_bidders.map(|n| n.to_string()).unwrap_or_default()) }
                        }
                    }
                    @if view.auctions.is_empty() {
                        tr { td colspan="12" .muted { "No primary auction has been run." } }
                    }
                }
            }
        }
        h2 { "Call-auction and bidding trades in recent market data" }
        div.card {
            table #auction-trades {
                thead { tr { th { "Instrument" } th { "Trade" } th { "Date" } th { "Kind" } th.n { "Price" } th.n { "Quantity (t)" } } }
                tbody {
                    @for (code, t) in &auction_trades {
                        tr { td { (code) } td { (t.id) } td { (t.date) } td { (t.kind) } td.n { (yuan(t.price_fen)) } td.n { (tonnes(t.qty_t)) } }
                    }
                    @if auction_trades.is_empty() {
                        tr { td colspan="6" .muted { "None among the recent trades." } }
                    }
                }
            }
        }
    };
    html_response(banner.status(), layout(Some(viewer), "/auctions", "Auctions", body))
}
