//! Registry pages: the accounts the caller may read, one account's holdings (by unit, with
//! serial blocks), history and trusted list, and the four-eyes transfers with their forms.

use super::{cross_origin, error_page, html_response, layout, time, tonnes, Banner, Viewer, S};
use crate::api::{self, Decision, TransferInfo, TransferRequest};
use crate::error::ApiError;
use crate::Platform;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Form;
use ets_access::{allows, AccountRef, Action};
use maud::{html, Markup};
use serde::Deserialize;
use std::sync::Arc;

/// Rows shown at most: accounts in the list, transactions of an account, serial blocks of one
/// holding.
const ACCOUNTS_SHOWN: usize = 500;
const TRANSACTIONS_SHOWN: usize = 200;
const BLOCKS_SHOWN: usize = 12;

#[derive(Deserialize)]
pub(crate) struct AccountsQuery {
    market: Option<String>,
}

/// `/registry`: registry-wide readers see every account, a market authority its market's,
/// a representative their own.
pub(crate) async fn accounts(State(platform): S, viewer: Viewer, Query(q): Query<AccountsQuery>) -> Response {
    if let Some(r) = viewer.refusal(!viewer.rights.accounts.is_empty(), "the registry") {
        return r;
    }
    let market = q.market.filter(|m| !m.is_empty());
    let rows: Vec<api::AccountInfo> = {
        let ledger = platform.registry.lock().expect("registry lock");
        let r = ledger.registry();
        viewer
            .rights
            .accounts
            .iter()
            .filter(|a| market.as_ref().is_none_or(|m| a.market == *m))
            .filter_map(|a| r.find_account(&a.number).map(|idx| api::account_info(r, r.account(idx))))
            .collect()
    };
    let markets: Vec<&super::MarketName> =
        viewer.rights.markets.iter().filter(|m| viewer.rights.accounts.iter().any(|a| a.market == m.code)).collect();
    let body = html! {
        h1 { "Registry" }
        @if markets.len() > 1 {
            p {
                "Market: "
                a href="/registry" { "all" }
                @for m in &markets { " · " a href=(format!("/registry?market={}", m.code)) { (m.name) } }
            }
        }
        div.card {
            table #accounts {
                thead { tr {
                    th { "Account" } th { "Market" } th { "Kind" } th { "Holder" } th { "Status" } th { "Representatives" } th.n { "Units held (t)" }
                } }
                tbody {
                    @for a in rows.iter().take(ACCOUNTS_SHOWN) {
                        tr {
                            td { a href=(format!("/registry/accounts/{}", a.number)) { (a.number) } }
                            td { (a.market) } td { (a.kind) } td { (a.holder) } td { (a.status) }
                            td { (a.representatives.join(", ")) }
                            td.n { (tonnes(a.units_held_t)) }
                        }
                    }
                }
            }
            @if rows.len() > ACCOUNTS_SHOWN {
                p.muted { "The first " (ACCOUNTS_SHOWN) " of " (rows.len()) " accounts; choose a market to narrow the list." }
            }
        }
    };
    html_response(StatusCode::OK, layout(Some(&viewer), "/registry", "Registry", body))
}

/// `/registry/accounts/{number}`: holdings by unit with serial blocks, history newest first,
/// and the trusted list, for those who may read the account's holdings.
pub(crate) async fn account(State(platform): S, viewer: Viewer, Path(number): Path<String>) -> Response {
    if viewer.caller.principal.is_none() {
        return axum::response::IntoResponse::into_response(axum::response::Redirect::to("/login"));
    }
    api::blocking(move || Ok(account_page(&platform, &viewer, &number, Banner::None))).await.unwrap_or_else(|e| error_page(None, e))
}

/// The account page, with the outcome of a form above it.
fn account_page(platform: &Platform, viewer: &Viewer, number: &str, banner: Banner) -> Response {
    let detail = match api::account_detail(platform, &viewer.caller, number) {
        Ok(d) => d,
        Err(e) => return error_page(Some(viewer), e),
    };
    let trusted = match api::trusted_list_for(platform, &viewer.caller, number) {
        Ok(t) => t,
        Err(e) => return error_page(Some(viewer), e),
    };
    let history = match api::transactions_of(platform, number) {
        Ok(h) => h,
        Err(e) => return error_page(Some(viewer), e),
    };
    let a = &detail.account;
    let account = AccountRef::new(&a.number, &a.market);
    let roles = viewer.caller.roles();
    let manages = allows(roles, &Action::ManageTrustedList { account: account.clone() });
    let approves = allows(roles, &Action::ApproveTrustedList { account });
    let body = html! {
        (banner.render())
        h1 { "Account " (a.number) }
        div.card {
            div.figures {
                div { span { "Market" } b { (viewer.rights.market_name(&a.market)) } }
                div { span { "Kind" } b { (a.kind) } }
                div { span { "Holder" } b { (a.holder) " (" (a.holder_type) ")" } }
                div { span { "Status" } b { (a.status) } }
                div { span { "Representatives" } b { (a.representatives.join(", ")) } }
                div { span { "Units held" } b { (tonnes(a.units_held_t)) " t" } }
            }
            @if viewer.rights.propose_from.iter().any(|p| p.number == a.number) {
                p { a href="/transfers" { "Propose a transfer from this account" } }
            }
        }
        h2 { "Holdings" }
        div.card {
            table #holdings {
                thead { tr { th { "Unit" } th.n { "Total (t)" } th.n { "Free (t)" } th.n { "Encumbered (t)" } th { "Free serial blocks" } } }
                tbody {
                    @for h in &detail.holdings {
                        tr {
                            td { (h.unit) } td.n { (tonnes(h.total_t)) } td.n { (tonnes(h.free_t)) } td.n { (tonnes(h.encumbered_t)) }
                            td.blocks {
                                (h.blocks.iter().take(BLOCKS_SHOWN).cloned().collect::<Vec<_>>().join(", "))
                                @if h.blocks.len() > BLOCKS_SHOWN { " … and " (h.blocks.len() - BLOCKS_SHOWN) " more blocks" }
                            }
                        }
                    }
                    @if detail.holdings.is_empty() { tr { td colspan="5" .muted { "No holdings." } } }
                }
            }
            p.muted { "Encumbered units are owned but not movable: in pending transfers (exchange settlement, pledges, approvals) or frozen." }
        }
        h2 { "History, newest first" }
        div.card {
            table #history {
                thead { tr { th.n { "Tx" } th { "Time" } th { "Kind" } th { "From" } th { "To" } th { "Unit" } th.n { "Quantity (t)" } } }
                tbody {
                    @for t in history.iter().take(TRANSACTIONS_SHOWN) {
                        tr {
                            td.n { (t.tx) } td { (time(t.at_ms)) } td { (t.kind) }
                            td { (t.from.as_deref().map_or(html! { "–" }, |n| account_link(viewer, n))) }
                            td { (t.to.as_deref().map_or(html! { "–" }, |n| account_link(viewer, n))) }
                            td { (t.unit) } td.n { (tonnes(t.quantity_t)) }
                        }
                    }
                    @if history.is_empty() { tr { td colspan="7" .muted { "No transactions." } } }
                }
            }
            @if history.len() > TRANSACTIONS_SHOWN { p.muted { "The newest " (TRANSACTIONS_SHOWN) " of " (history.len()) " transactions." } }
        }
        h2 { "Trusted account list" }
        div.card {
            table #trusted {
                thead { tr { th { "Account" } th { "Trusted from" } th { "In effect" } @if manages { th {} } } }
                tbody {
                    @for e in &trusted.entries {
                        tr {
                            td { (e.account) } td { (time(e.effective_at_ms)) } td { (if e.effective { "yes" } else { "not yet" }) }
                            @if manages {
                                td { form.inline method="post" action=(format!("/registry/accounts/{}/trusted/{}/remove", a.number, e.account)) {
                                    button.secondary.remove type="submit" { "Remove" } } }
                            }
                        }
                    }
                    @if trusted.entries.is_empty() { tr { td colspan="4" .muted { "No trusted accounts: transfers wait for the delay and stay under the limit." } } }
                }
            }
            @let open: Vec<_> = trusted.proposals.iter().filter(|p| p.status == "awaiting-approval").collect();
            @if !open.is_empty() {
                h3 { "Additions awaiting a second representative's approval" }
                table #trusted-proposals {
                    thead { tr { th { "Proposal" } th { "Account to trust" } @if approves { th {} } } }
                    tbody {
                        @for p in &open {
                            tr {
                                td { (p.id) } td { (p.trusted) }
                                @if approves {
                                    td { form.inline method="post" action=(format!("/registry/trusted/{}/approve", p.id)) {
                                        button.approve type="submit" { "Approve" } } }
                                }
                            }
                        }
                    }
                }
            }
            @if manages {
                form.stack #trusted-form method="post" action=(format!("/registry/accounts/{}/trusted", a.number)) {
                    label { "Add an account to the trusted list " input name="trusted" required placeholder="CN-100003"; }
                    button type="submit" { "Propose" }
                }
                p.muted { "An addition takes effect after a second representative approves it and the configured working days pass; a removal is immediate." }
            }
        }
    };
    html_response(banner.status(), layout(Some(viewer), "/registry", &format!("Account {}", a.number), body))
}

#[derive(Deserialize)]
pub(crate) struct TrustedForm {
    trusted: String,
}

/// What a trusted-list form asks for.
enum TrustedChange {
    Propose(String),
    Approve(String),
    Remove(String),
}

/// Carries out a trusted-list form through the API's path and shows the account page again.
async fn trusted_change(
    platform: Arc<Platform>,
    headers: HeaderMap,
    viewer: Viewer,
    number: Option<String>,
    change: TrustedChange,
) -> Response {
    if let Some(r) = cross_origin(&headers) {
        return r;
    }
    if let Some(r) = viewer.refusal(viewer.caller.principal.is_some(), "trusted lists") {
        return r;
    }
    api::blocking(move || {
        // An approval names only the proposal: its account is the page to return to.
        let number = number.or_else(|| match &change {
            TrustedChange::Approve(id) => {
                platform.access.lock().expect("access lock").access().controls().trusted_proposal(id).map(|p| p.account.number.clone())
            }
            _ => None,
        });
        let outcome = match &change {
            TrustedChange::Propose(t) => {
                api::propose_trusted_for(&platform, &viewer.caller, number.as_deref().unwrap_or_default(), t.trim())
            }
            TrustedChange::Approve(id) => api::approve_trusted_for(&platform, &viewer.caller, id),
            TrustedChange::Remove(t) => api::remove_trusted_for(&platform, &viewer.caller, number.as_deref().unwrap_or_default(), t),
        };
        let (number, banner) = match outcome {
            Ok(list) => {
                let done = match &change {
                    TrustedChange::Propose(t) => {
                        format!("Proposed adding {} to the trusted list: it waits for a second representative's approval.", t.trim())
                    }
                    TrustedChange::Approve(id) => {
                        let effective = list.proposals.iter().find(|p| &p.id == id).and_then(|p| p.effective_at_ms);
                        format!("Approved {id}: in effect from {}.", effective.map_or("the next working day".to_string(), time))
                    }
                    TrustedChange::Remove(t) => format!("Removed {t} from the trusted list."),
                };
                (list.account, Banner::Done(done))
            }
            Err(e) => (number.unwrap_or_default(), Banner::Refused(e)),
        };
        if number.is_empty() {
            return Ok(error_page(Some(&viewer), banner_error(banner)));
        }
        Ok(account_page(&platform, &viewer, &number, banner))
    })
    .await
    .unwrap_or_else(|e| error_page(None, e))
}

fn banner_error(banner: Banner) -> ApiError {
    match banner {
        Banner::Refused(e) => e,
        _ => ApiError::not_found("no such trusted-list proposal"),
    }
}

/// `POST /registry/accounts/{number}/trusted`: proposes an addition (`api::propose_trusted_for`).
pub(crate) async fn propose_trusted(
    State(platform): S,
    headers: HeaderMap,
    viewer: Viewer,
    Path(number): Path<String>,
    Form(form): Form<TrustedForm>,
) -> Response {
    trusted_change(platform, headers, viewer, Some(number), TrustedChange::Propose(form.trusted)).await
}

/// `POST /registry/trusted/{id}/approve`: a second representative approves an addition.
pub(crate) async fn approve_trusted(State(platform): S, headers: HeaderMap, viewer: Viewer, Path(id): Path<String>) -> Response {
    trusted_change(platform, headers, viewer, None, TrustedChange::Approve(id)).await
}

/// `POST /registry/accounts/{number}/trusted/{trusted}/remove`: removes an entry at once.
pub(crate) async fn remove_trusted(
    State(platform): S,
    headers: HeaderMap,
    viewer: Viewer,
    Path((number, trusted)): Path<(String, String)>,
) -> Response {
    trusted_change(platform, headers, viewer, Some(number), TrustedChange::Remove(trusted)).await
}

/// An account number, linked to its page when the caller may read it.
fn account_link(viewer: &Viewer, number: &str) -> Markup {
    html! {
        @if viewer.rights.account(number).is_some() {
            a href=(format!("/registry/accounts/{number}")) { (number) }
        } @else {
            (number)
        }
    }
}

fn transfer_actions(viewer: &Viewer, t: &TransferInfo) -> Markup {
    let Some(from) = viewer.rights.account(&t.from) else {
        return html! {};
    };
    let roles = viewer.caller.roles();
    let open = t.status == "awaiting-approval" || t.status == "approved";
    let may_approve = t.status == "awaiting-approval"
        && allows(roles, &Action::ApproveTransfer { account: from.clone() })
        && viewer.user() != Some(t.initiator.as_str());
    let may_cancel = open && allows(roles, &Action::ProposeTransfer { account: from.clone() });
    html! {
        @if may_approve {
            form.inline method="post" action=(format!("/transfers/{}/approve", t.id)) { button.approve type="submit" { "Approve" } }
            " "
            form.inline method="post" action=(format!("/transfers/{}/reject", t.id)) { button.secondary.reject type="submit" { "Reject" } }
            " "
        }
        @if may_cancel {
            form.inline method="post" action=(format!("/transfers/{}/cancel", t.id)) { button.secondary.cancel type="submit" { "Cancel" } }
        }
    }
}

fn transfers_page(platform: &Platform, viewer: &Viewer, banner: Banner) -> Response {
    let list = match api::visible_transfers(platform, &viewer.caller) {
        Ok(list) => list,
        Err(e) => return error_page(Some(viewer), e),
    };
    let units: Vec<String> = {
        let ledger = platform.registry.lock().expect("registry lock");
        let r = ledger.registry();
        let mut units: Vec<String> = viewer
            .rights
            .propose_from
            .iter()
            .filter_map(|a| r.find_account(&a.number))
            .flat_map(|idx| r.holdings_of(idx).into_iter().filter(|(_, h)| h.free_total() > 0).map(|(u, _)| r.unit_name(u)))
            .collect();
        units.sort();
        units.dedup();
        units
    };
    let rules = platform.access.lock().expect("access lock").access().rules().untrusted_transfer_limit_t;
    let body = html! {
        h1 { "Transfers" }
        (banner.render())
        p.muted {
            "Every transfer needs two people: one representative proposes, another (or the approving representative) approves. "
            "To a trusted account it then executes at once while the registry is open; to any other account after the delay of the next working days, "
            "and only up to " (tonnes(rules)) " t."
        }
        @if !viewer.rights.propose_from.is_empty() {
            div.card #propose {
                h2 { "Propose a transfer" }
                form.stack method="post" action="/transfers" {
                    label { "From" select name="from" { @for a in &viewer.rights.propose_from { option value=(a.number) { (a.number) } } } }
                    label { "To account" input type="text" name="to" required placeholder="CN-100003"; }
                    label { "Unit" input type="text" name="unit" list="units" required placeholder=(units.first().map_or("CEA:2025", String::as_str)); }
                    datalist #units { @for u in &units { option value=(u) {} } }
                    label { "Quantity (t)" input type="number" name="quantity_t" min="1" required; }
                    button type="submit" { "Propose" }
                }
            }
        }
        div.card {
            table #transfers {
                thead { tr {
                    th { "Proposal" } th { "From" } th { "To" } th { "Unit" } th.n { "Quantity (t)" } th { "Proposed by" } th { "Proposed" }
                    th { "Status" } th { "Executes" } th {}
                } }
                tbody {
                    @for t in list.iter().rev() {
                        tr id=(format!("transfer-{}", t.id)) {
                            td { (t.id) } td { (account_link(viewer, &t.from)) } td { (account_link(viewer, &t.to)) } td { (t.unit) } td.n { (tonnes(t.quantity_t)) }
                            td { (t.initiator) } td { (time(t.proposed_at_ms)) }
                            td.status {
                                (t.status)
                                @if let Some(approver) = &t.approver { br; span.muted { "approved by " (approver) } }
                                @if let Some(detail) = &t.detail { br; span.muted { (detail) } }
                            }
                            td { (t.release_at_ms.map_or("–".to_string(), time)) }
                            td { (transfer_actions(viewer, t)) }
                        }
                    }
                    @if list.is_empty() { tr { td colspan="10" .muted { "No transfer proposals you may see." } } }
                }
            }
        }
    };
    html_response(banner.status(), layout(Some(viewer), "/transfers", "Transfers", body))
}

/// `/transfers`: the proposals the caller may see, the propose form for representatives, and
/// Approve/Reject/Cancel where the caller may decide.
pub(crate) async fn transfers(State(platform): S, viewer: Viewer) -> Response {
    if let Some(r) = viewer.refusal(!viewer.rights.accounts.is_empty(), "transfers") {
        return r;
    }
    let p = platform.clone();
    api::blocking(move || Ok(transfers_page(&p, &viewer, Banner::None))).await.unwrap_or_else(|e| error_page(None, e))
}

#[derive(Deserialize)]
pub(crate) struct ProposeForm {
    from: String,
    to: String,
    unit: String,
    quantity_t: String,
}

/// `POST /transfers`: proposes through the API's path (`api::propose`).
pub(crate) async fn propose(State(platform): S, headers: HeaderMap, viewer: Viewer, Form(form): Form<ProposeForm>) -> Response {
    if let Some(r) = cross_origin(&headers) {
        return r;
    }
    if let Some(r) = viewer.refusal(viewer.caller.principal.is_some(), "transfers") {
        return r;
    }
    let p = platform.clone();
    api::blocking(move || {
        let outcome = form
            .quantity_t
            .trim()
            .parse::<u64>()
            .map_err(|_| ApiError::invalid(format!("quantity '{}' must be whole tonnes", form.quantity_t)))
            .and_then(|quantity_t| {
                let request =
                    TransferRequest { from: form.from.trim().into(), to: form.to.trim().into(), unit: form.unit.trim().into(), quantity_t };
                api::propose(&p, &viewer.caller, request)
            });
        let banner = match outcome {
            Ok(t) => Banner::Done(format!(
                "Proposed {}: {} t of {} from {} to {}. It waits for a second representative's approval.",
                t.id,
                tonnes(t.quantity_t),
                t.unit,
                t.from,
                t.to
            )),
            Err(e) => Banner::Refused(e),
        };
        Ok(transfers_page(&p, &viewer, banner))
    })
    .await
    .unwrap_or_else(|e| error_page(None, e))
}

/// `POST /transfers/{id}/{approve|reject|cancel}`: decides through the API's path
/// (`api::decide`): an approval that releases at once moves the units before the answer.
pub(crate) async fn decide(
    State(platform): S,
    headers: HeaderMap,
    viewer: Viewer,
    Path((id, decision)): Path<(String, String)>,
) -> Response {
    if let Some(r) = cross_origin(&headers) {
        return r;
    }
    if let Some(r) = viewer.refusal(viewer.caller.principal.is_some(), "transfers") {
        return r;
    }
    let decision = match decision.as_str() {
        "approve" => Decision::Approve,
        "reject" => Decision::Reject,
        "cancel" => Decision::Cancel,
        other => return error_page(Some(&viewer), ApiError::not_found(format!("no decision {other}: approve, reject or cancel"))),
    };
    let p: Arc<Platform> = platform.clone();
    api::blocking(move || {
        let banner = match api::decide(&p, &viewer.caller, &id, decision) {
            Ok(t) => Banner::Done(match (decision, t.status.as_str()) {
                (Decision::Approve, "released") => format!("Approved {}: released, the units have moved.", t.id),
                (Decision::Approve, _) => {
                    format!("Approved {}: it executes at {}.", t.id, t.release_at_ms.map_or("the next release".to_string(), time))
                }
                (Decision::Reject, _) => format!("Rejected {}: it will not execute.", t.id),
                (Decision::Cancel, _) => format!("Cancelled {}.", t.id),
            }),
            Err(e) => Banner::Refused(e),
        };
        Ok(transfers_page(&p, &viewer, banner))
    })
    .await
    .unwrap_or_else(|e| error_page(None, e))
}
