//! Compliance and MRV: what the server holds today, and where the rest is. Compliance status
//! per entity is computed by the rulebooks (`ets comply`) and the MRV queues live in the MRV
//! journal (`ets mrv`); neither is reachable from the server's `Platform` yet, so these pages
//! say so and show the registry figures the server does hold, never made-up numbers.

use super::{html_response, layout, tonnes, Viewer, S};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use ets_access::{allows, Action};
use maud::html;
use std::collections::BTreeMap;

/// `/compliance`: per market the caller may read, its accounts and the units they hold.
pub(crate) async fn compliance(State(platform): S, viewer: Viewer) -> Response {
    if let Some(r) = viewer.refusal(!viewer.rights.compliance.is_empty(), "compliance") {
        return r;
    }
    // market → account kind → (accounts, units held)
    let mut figures: BTreeMap<String, BTreeMap<String, (u64, u64)>> = BTreeMap::new();
    {
        let ledger = platform.registry.lock().expect("registry lock");
        let r = ledger.registry();
        for a in r.accounts() {
            let market = &r.market(a.market).spec.code;
            if viewer.rights.compliance.contains(market) {
                let entry = figures.entry(market.clone()).or_default().entry(a.kind.name().to_string()).or_default();
                entry.0 += 1;
                entry.1 += a.units_held;
            }
        }
    }
    let body = html! {
        h1 { "Compliance" }
        div.note #pending-note {
            "Compliance status per entity (verified emissions, units surrendered, shortfall and penalty) is computed by the market's rulebook: "
            code { "ets comply --rulebook FILE --year YEAR" } ". "
            "The server does not hold rulebooks or verified emissions yet; once it does, this page lists each entity's status per market."
        }
        h2 { "Accounts in the markets you may read" }
        @for (market, kinds) in &figures {
            section.card id=(format!("compliance-{market}")) {
                h3 { (viewer.rights.market_name(market)) " (" (market) ")" }
                table {
                    thead { tr { th { "Account kind" } th.n { "Accounts" } th.n { "Units held (t)" } } }
                    tbody {
                        @for (kind, (count, units)) in kinds {
                            tr { td { (kind) } td.n { (count) } td.n { (tonnes(*units)) } }
                        }
                    }
                }
            }
        }
    };
    html_response(StatusCode::OK, layout(Some(&viewer), "/compliance", "Compliance", body))
}

/// `/mrv`: the queues each role will see here, and the commands that show them today.
pub(crate) async fn mrv(State(_platform): S, viewer: Viewer) -> Response {
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
    let body = html! {
        h1 { "MRV: monitoring, reporting, verification" }
        div.note #pending-note {
            "Submissions, the verifiers' and the authority's queues and the anomaly list live in the MRV journal, "
            "which the server does not open yet. Until it does, the CLI shows them from the same database."
        }
        div.card {
            table {
                thead { tr { th { "What will appear here" } th { "Today, from the CLI" } } }
                tbody {
                    tr { td { "Annual reports and where each stands (submitted, verified, accepted, returned)" } td { code { "ets mrv reports --year YEAR" } } }
                    @if verifier {
                        tr.verifier { td { "Your verification queue: reports assigned to your body awaiting an opinion" } td { code { "ets mrv reports --year YEAR" } } }
                    }
                    @if !reviews.is_empty() {
                        tr.authority { td { "The competent authority's queue (" (reviews.join(", ")) "): verified reports to accept or return" } td { code { "ets mrv reports --year YEAR" } } }
                        tr.authority { td { "The ranked anomaly list of the year's data-quality checks" } td { code { "ets mrv check --year YEAR" } } }
                    }
                    tr { td { "One entity's monthly submissions and their versions" } td { code { "ets mrv versions --help" } } }
                }
            }
        }
    };
    html_response(StatusCode::OK, layout(Some(&viewer), "/mrv", "MRV", body))
}
