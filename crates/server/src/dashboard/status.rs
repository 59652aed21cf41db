//! Compliance and MRV pages: each covered entity's standing per market (computed from the MRV
//! register, the registry and the market's rulebook, as `GET /api/v1/compliance/{market}`
//! answers), and the MRV queues: reports by verification state, the verifier's and the
//! authority's queues, and the year's ranked anomaly list (as `/api/v1/mrv/*`).

use super::{error_page, html_response, layout, tonnes, yuan, Viewer, S};
use crate::api::{self, ReportInfo, ReportsQuery};
use crate::compliance::{self, MarketCompliance};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use ets_access::{allows, Action};
use maud::{html, Markup};
use serde::Deserialize;

#[derive(Deserialize)]
pub(crate) struct YearQuery {
    year: Option<i32>,
}

fn opt_t(t: Option<u64>) -> String {
    t.map(tonnes).unwrap_or_default()
}

fn market_card(viewer: &Viewer, m: &MarketCompliance) -> Markup {
    html! {
        section.card id=(format!("compliance-{}", m.market)) {
            h3 { (viewer.rights.market_name(&m.market)) " (" (m.market) "), " (m.year) }
            p.muted {
                "Rulebook " code { (m.rulebook) }
                @if let Some(d) = &m.deadline { "; surrender deadline " (d) }
                "; fines at " (m.price_fen.map(yuan).unwrap_or_else(|| "no price".into())) " (" (m.price_source) ")"
                @if m.scope != "market" { ". Your accounts' entities only." }
            }
            table.summary {
                tbody {
                    tr {
                        td { "Covered entities" } td.n { (m.covered) }
                        td { "Compliant" } td.n.compliant { (m.compliant) }
                        td { "Short" } td.n.shortfall { (m.shortfall) }
                        td { "Not assessed" } td.n { (m.not_assessed) }
                    }
                    tr {
                        td { "Obligation" } td.n { (tonnes(m.obligation_t)) }
                        td { "Counted" } td.n { (tonnes(m.surrendered_counted_t)) }
                        td { "Shortfall" } td.n { (tonnes(m.shortfall_t)) }
                        td { "Fines" } td.n { (m.fines_fen.map(yuan).unwrap_or_default()) }
                    }
                }
            }
            @if m.entities.is_empty() {
                p.muted { "No covered entity to show." }
            } @else {
                table.entities {
                    thead { tr {
                        th { "Entity" } th { "Account" } th { "Status" } th.n { "Obligation (t)" } th.n { "Allowances (t)" }
                        th.n { "Offsets (t)" } th.n { "Not counted (t)" } th.n { "Shortfall (t)" } th.n { "Fine" } th.n { "Deducted next year (t)" }
                    } }
                    tbody {
                        @for e in &m.entities {
                            tr class=(e.status.replace(' ', "-")) {
                                td { (e.entity) }
                                td { @if let Some(a) = &e.account { a href=(format!("/registry/accounts/{a}")) { (a) } } }
                                td {
                                    (e.status)
                                    @if let Some(why) = &e.not_assessed { ": " (why) }
                                }
                                td.n { (opt_t(e.obligation_t)) }
                                td.n { (opt_t(e.allowances_counted_t)) }
                                td.n { (opt_t(e.offsets_counted_t)) }
                                td.n title=(e.not_counted.iter().map(|n| n.reason.as_str()).collect::<Vec<_>>().join("; ")) {
                                    @if !e.not_counted.is_empty() { (tonnes(e.not_counted.iter().map(|n| n.quantity_t).sum())) }
                                }
                                td.n { (opt_t(e.shortfall_t)) }
                                td.n { (e.fine_fen.map(yuan).unwrap_or_default()) }
                                td.n { (opt_t(e.next_year_deduction_t)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `/compliance`: each market the caller may read, its totals and every entity it may see.
pub(crate) async fn compliance(State(platform): S, viewer: Viewer, Query(q): Query<YearQuery>) -> Response {
    if let Some(r) = viewer.refusal(!viewer.rights.compliance.is_empty(), "compliance") {
        return r;
    }
    let caller = viewer.caller.clone();
    let markets = viewer.rights.compliance.clone();
    let computed = api::blocking(move || {
        let mut out = Vec::new();
        for m in markets {
            out.push((m.clone(), compliance::market_compliance(&platform, &caller, &m, q.year)));
        }
        Ok(out)
    })
    .await;
    let computed = match computed {
        Ok(c) => c,
        Err(e) => return error_page(Some(&viewer), e),
    };
    let body = html! {
        h1 { "Compliance" }
        p.muted {
            "Each covered entity's obligation (verified emissions), the units its surrenders count for under the market's rulebook, "
            "its shortfall, fine and the deduction from next year's allocation. Pick a year with " code { "?year=" } "."
        }
        @for (market, result) in &computed {
            @match result {
                Ok(m) => (market_card(&viewer, m)),
                Err(e) => section.card id=(format!("compliance-{market}")) {
                    h3 { (viewer.rights.market_name(market)) " (" (market) ")" }
                    p.muted { (e.message) }
                },
            }
        }
    };
    html_response(StatusCode::OK, layout(Some(&viewer), "/compliance", "Compliance", body))
}

fn reports_table(id: &str, reports: &[&ReportInfo]) -> Markup {
    html! {
        @if reports.is_empty() {
            p.muted id=(id) { "Nothing waiting." }
        } @else {
            table id=(id) {
                thead { tr { th { "Report" } th { "Entity" } th { "Year" } th { "Province" } th { "State" } th.n { "Versions" } th.n { "Verified (t CO2e)" } } }
                tbody {
                    @for r in reports {
                        tr { td { (r.id) } td { (r.entity) } td { (r.year) } td { (r.province) } td { (r.state) } td.n { (r.versions) }
                             td.n { (r.verified_emissions_t.clone().unwrap_or_default()) } }
                    }
                }
            }
        }
    }
}

/// How many anomalies the page lists (the API gives them all).
const ANOMALIES_SHOWN: usize = 100;

/// `/mrv`: annual reports by state, the verifier's and the authority's queues, the anomaly list.
pub(crate) async fn mrv(State(platform): S, viewer: Viewer, Query(q): Query<YearQuery>) -> Response {
    if let Some(r) = viewer.refusal(viewer.rights.mrv, "MRV") {
        return r;
    }
    let roles = viewer.caller.roles();
    let verifier = allows(roles, &Action::VerifyMrv);
    let reviews: Vec<String> = viewer
        .rights
        .markets
        .iter()
        .filter(|m| allows(roles, &Action::ReviewMrv { market: m.code.clone() }))
        .map(|m| m.name.clone())
        .collect();
    let caller = viewer.caller.clone();
    let year = q.year;
    let found = api::blocking(move || {
        let reports = match api::reports_for(&platform, &caller, &ReportsQuery { year, state: None }) {
            Ok(r) => r,
            // Representatives report through the API and the CLI; the queues are not theirs.
            Err(e) if e.status == StatusCode::FORBIDDEN => return Ok(None),
            Err(e) => return Err(e),
        };
        let year = year.or_else(|| reports.iter().map(|r| r.year).max());
        let anomalies = match year {
            Some(y) => api::anomalies_for(&platform, &caller, y)?,
            None => Vec::new(),
        };
        Ok(Some((reports, year, anomalies)))
    })
    .await;
    let found = match found {
        Ok(f) => f,
        Err(e) => return error_page(Some(&viewer), e),
    };
    let body = html! {
        h1 { "MRV: monitoring, reporting, verification" }
        @match &found {
            None => div.note {
                "Your entity's monthly data and annual report are submitted through the API and "
                code { "ets mrv" } "; the verification queues are for verifiers and market authorities."
            },
            Some((reports, year, anomalies)) => {
                @let by = |states: &[&str]| reports.iter().filter(|r| states.contains(&r.state.as_str())).collect::<Vec<_>>();
                @if verifier {
                    section.card.verifier {
                        h2 { "Verification queue" }
                        p.muted { "Submitted reports and those assigned to a verification body, awaiting an opinion." }
                        (reports_table("verifier-queue", &by(&["submitted", "assigned"])))
                    }
                }
                @if !reviews.is_empty() {
                    section.card.authority {
                        h2 { "Competent authority's queue (" (reviews.join(", ")) ")" }
                        p.muted { "Verified reports with an opinion, to accept or return." }
                        (reports_table("authority-queue", &by(&["opined"])))
                    }
                }
                section.card {
                    h2 { "Annual reports" @if let Some(y) = year { " " (y) } }
                    @let counts = ["submitted", "assigned", "opined", "accepted", "returned"].map(|s| (s, reports.iter().filter(|r| r.state == s).count()));
                    p { @for (s, n) in counts { span.count { (s) ": " strong { (n) } } " " } }
                    (reports_table("reports", &reports.iter().collect::<Vec<_>>()))
                }
                section.card {
                    h2 { "Anomalies" @if let Some(y) = year { " in " (y) "'s data" } }
                    @if anomalies.is_empty() {
                        p.muted #anomalies { "No anomaly found." }
                    } @else {
                        p.muted { (anomalies.len()) " findings, most severe first"
                            @if anomalies.len() > ANOMALIES_SHOWN { " (the first " (ANOMALIES_SHOWN) " shown; all through " code { "/api/v1/mrv/anomalies" } ")" } "." }
                        table #anomalies {
                            thead { tr { th { "Severity" } th { "Entity" } th { "Unit" } th { "Month" } th { "Check" } th { "Value" } th { "Expected" } th { "Why" } } }
                            tbody {
                                @for a in anomalies.iter().take(ANOMALIES_SHOWN) {
                                    tr class=(a.severity) { td { (a.severity) } td { (a.entity) } td { (a.unit) } td { (a.month.clone().unwrap_or_default()) }
                                        td { (a.check) } td { (a.value) } td { (a.expected) } td { (a.reason) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    html_response(StatusCode::OK, layout(Some(&viewer), "/mrv", "MRV", body))
}
