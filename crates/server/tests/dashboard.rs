//! The dashboard through the router (no sockets): what each role's pages show and hide, the
//! login form and its cookie, the origin check on forms, four-eyes transfers through the forms,
//! orders through the order form, and well-formed SVG charts.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::{cet, World, A, B, C, CLEARING};
use http_body_util::BodyExt;
use tower::ServiceExt;

struct Page {
    status: StatusCode,
    location: Option<String>,
    set_cookie: Option<String>,
    body: String,
}

const HOST: &str = "ets.example:8080";

/// A dashboard request as a browser sends it: the session cookie, and for a POST a form body
/// with this server's origin.
async fn fetch(w: &World, method: Method, uri: &str, secret: Option<&str>, form: Option<&str>) -> Page {
    let mut request = Request::builder().method(method.clone()).uri(uri).header("host", HOST);
    if let Some(secret) = secret {
        request = request.header("cookie", format!("theme=dark; ets_session={secret}"));
    }
    if method == Method::POST {
        request = request.header("origin", format!("http://{HOST}")).header("content-type", "application/x-www-form-urlencoded");
    }
    let request = request.body(form.map_or_else(Body::empty, |f| Body::from(f.to_string()))).unwrap();
    let response = w.app.clone().oneshot(request).await.unwrap();
    let header = |name: &str| response.headers().get(name).map(|v| v.to_str().unwrap().to_string());
    let (status, location, set_cookie) = (response.status(), header("location"), header("set-cookie"));
    let body = String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    Page { status, location, set_cookie, body }
}

async fn get(w: &World, uri: &str, secret: Option<&str>) -> Page {
    fetch(w, Method::GET, uri, secret, None).await
}

async fn post(w: &World, uri: &str, secret: Option<&str>, form: &str) -> Page {
    fetch(w, Method::POST, uri, secret, Some(form)).await
}

fn assert_redirected_to_login(page: &Page, what: &str) {
    assert_eq!((page.status, page.location.as_deref()), (StatusCode::SEE_OTHER, Some("/login")), "{what}");
}

/// Every `<svg>…</svg>` in the page, each parsed as XML.
fn svgs(body: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(start) = rest.find("<svg") {
        let end = rest[start..].find("</svg>").expect("an svg element closes") + start + "</svg>".len();
        let svg = &rest[start..end];
        roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("SVG is not well-formed: {e}\n{svg}"));
        out.push(svg.to_string());
        rest = &rest[end..];
    }
    out
}

/// The navigation's links.
fn nav(body: &str) -> Vec<String> {
    let start = body.find("<nav>").expect("a nav");
    let end = body[start..].find("</nav>").unwrap() + start;
    body[start..end].split("href=\"").skip(1).map(|s| s[..s.find('"').unwrap()].to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_sees_the_market_and_is_sent_to_sign_in_for_the_rest() {
    let w = World::new();
    let page = get(&w, "/", None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Market overview") && page.body.contains("CEA-2025"), "{}", page.body);
    assert!(page.body.contains("session-note"), "the demonstration clock is announced");
    assert!(page.body.contains("2025-06-04"), "the open trading day");
    let charts = svgs(&page.body);
    assert_eq!(charts.len(), 1, "one chart for the one instrument");
    assert!(charts[0].contains("CEA-2025 closing prices"));
    assert_eq!(nav(&page.body), vec!["/", "/exchange", "/auctions"]);
    assert!(page.body.contains("href=\"/login\""));
    for uri in ["/registry", &format!("/registry/accounts/{A}"), "/transfers", "/compliance", "/mrv"] {
        assert_redirected_to_login(&get(&w, uri, None).await, uri);
    }
    let exchange = get(&w, "/exchange", None).await;
    assert_eq!(exchange.status, StatusCode::OK);
    assert!(exchange.body.contains("book-CEA-2025") && !exchange.body.contains("order-form"));
    assert_eq!(get(&w, "/auctions", None).await.status, StatusCode::OK);
    // A form posted by the public: sign in first.
    assert_redirected_to_login(&post(&w, "/transfers", None, "from=CN-100002&to=CN-100003&unit=CEA:2025&quantity_t=1").await, "propose");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_form_sets_a_strict_session_cookie_and_sign_out_ends_it() {
    let w = World::new();
    let login = get(&w, "/login", None).await;
    assert!(login.status == StatusCode::OK && login.body.contains("name=\"password\""));
    let wrong = post(&w, "/login", None, "user=alice&password=not+the+password").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("role=\"alert\"") && wrong.body.contains("value=\"alice\""), "{}", wrong.body);
    let ok = post(&w, "/login", None, &format!("user=alice&password={}", common::PASSWORD.replace(' ', "+"))).await;
    assert_eq!((ok.status, ok.location.as_deref()), (StatusCode::SEE_OTHER, Some("/")));
    let cookie = ok.set_cookie.expect("a session cookie");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && cookie.contains("Path=/"), "{cookie}");
    let secret = cookie.strip_prefix("ets_session=").unwrap().split(';').next().unwrap().to_string();
    let home = get(&w, "/", Some(&secret)).await;
    assert!(home.body.contains("<b id=\"user\">alice</b>"), "{}", home.body);
    assert_eq!(nav(&home.body), vec!["/", "/exchange", "/auctions", "/registry", "/transfers", "/compliance", "/mrv"]);
    // The journal records the sign-in like the API's.
    let admin = w.login("admin").await;
    let (_, audit) = w.get("/api/v1/audit?limit=1000", Some(&admin)).await;
    assert!(audit.as_array().unwrap().iter().any(|r| r["command"] == "login" && r["user"] == "alice"), "{audit}");

    let out = post(&w, "/logout", Some(&secret), "").await;
    assert_eq!((out.status, out.location.as_deref()), (StatusCode::SEE_OTHER, Some("/")));
    assert!(out.set_cookie.unwrap().contains("Max-Age=0"));
    // The old cookie no longer holds: sent back to sign in, and the cookie cleared.
    let after = get(&w, "/registry", Some(&secret)).await;
    assert_redirected_to_login(&after, "after sign-out");
    assert!(after.set_cookie.unwrap().contains("Max-Age=0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_from_another_origin_are_refused() {
    let w = World::new();
    let secret = w.login("alice").await;
    let form = format!("from={A}&to={B}&unit=CEA:2025&quantity_t=10");
    for (origin, referer) in
        [(Some("http://evil.example"), None), (None, Some("http://evil.example/page")), (None, None), (Some("null"), None)]
    {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri("/transfers")
            .header("host", HOST)
            .header("cookie", format!("ets_session={secret}"))
            .header("content-type", "application/x-www-form-urlencoded");
        if let Some(o) = origin {
            request = request.header("origin", o);
        }
        if let Some(r) = referer {
            request = request.header("referer", r);
        }
        let response = w.app.clone().oneshot(request.body(Body::from(form.clone())).unwrap()).await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "origin {origin:?} referer {referer:?}");
    }
    // A same-origin Referer without Origin is accepted.
    let request = Request::builder()
        .method(Method::POST)
        .uri("/transfers")
        .header("host", HOST)
        .header("referer", format!("http://{HOST}/transfers"))
        .header("cookie", format!("ets_session={secret}"))
        .header("content-type", "application/x-www-form-urlencoded");
    let response = w.app.clone().oneshot(request.body(Body::from(form)).unwrap()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (_, transfers) = w.get("/api/v1/transfers", Some(&secret)).await;
    assert_eq!(transfers.as_array().unwrap().len(), 1, "only the same-origin form proposed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_sees_the_accounts_and_pages_its_roles_allow() {
    let w = World::new();
    let all = [CLEARING, A, B, C];
    // user, accounts listed, navigation
    let cases: [(&str, Vec<&str>, Vec<&str>); 8] = [
        ("admin", all.to_vec(), vec!["/registry", "/transfers", "/compliance", "/mrv"]),
        ("auditor", all.to_vec(), vec!["/registry", "/transfers", "/compliance", "/mrv"]),
        ("regulator-cn", vec![CLEARING, A, B], vec!["/registry", "/transfers", "/compliance", "/mrv"]),
        ("regulator-bj", vec![C], vec!["/registry", "/transfers", "/compliance", "/mrv"]),
        ("alice", vec![A], vec!["/registry", "/transfers", "/compliance", "/mrv"]),
        ("approver", vec![A], vec!["/registry", "/transfers", "/compliance"]),
        ("carol", vec![C], vec!["/registry", "/transfers", "/compliance", "/mrv"]),
        ("verifier", vec![], vec!["/mrv"]),
    ];
    for (user, accounts, pages) in cases {
        let secret = w.login(user).await;
        let home = get(&w, "/", Some(&secret)).await;
        let mut expected_nav = vec!["/", "/exchange", "/auctions"];
        expected_nav.extend(&pages);
        assert_eq!(nav(&home.body), expected_nav, "{user}'s navigation");
        let registry = get(&w, "/registry", Some(&secret)).await;
        if accounts.is_empty() {
            assert_eq!(registry.status, StatusCode::FORBIDDEN, "{user}");
            assert!(registry.body.contains("may not see the registry"), "{}", registry.body);
        } else {
            assert_eq!(registry.status, StatusCode::OK, "{user}");
        }
        for number in all {
            let link = format!("href=\"/registry/accounts/{number}\"");
            assert_eq!(registry.body.contains(&link), accounts.contains(&number), "{user} and {number}");
            let detail = get(&w, &format!("/registry/accounts/{number}"), Some(&secret)).await;
            let expected = if accounts.contains(&number) { StatusCode::OK } else { StatusCode::FORBIDDEN };
            assert_eq!(detail.status, expected, "{user} opening {number}");
        }
        // Every page in the navigation opens; those left out answer 403.
        for uri in ["/registry", "/transfers", "/compliance", "/mrv"] {
            let status = get(&w, uri, Some(&secret)).await.status;
            let expected = if pages.contains(&uri) { StatusCode::OK } else { StatusCode::FORBIDDEN };
            assert_eq!(status, expected, "{user} {uri}");
        }
    }
    // The national authority sees every covered national entity's standing and not the BJ
    // market; alice sees her own entity only; carol sees BJ, where nobody is covered.
    let cn = w.login("regulator-cn").await;
    let page = get(&w, "/compliance", Some(&cn)).await;
    assert!(page.body.contains("compliance-CN") && !page.body.contains("compliance-BJ"));
    let rows =
        |body: &str| -> Vec<String> { body.split("<tr class=\"").skip(1).map(|r| r.split("</tr>").next().unwrap().to_string()).collect() };
    let cn_rows = rows(&page.body);
    assert_eq!(cn_rows.len(), 2, "{}", page.body);
    assert!(cn_rows[0].starts_with("shortfall") && cn_rows[1].starts_with("not-assessed"), "{cn_rows:?}");
    assert!(cn_rows[0].contains("CN-E0001") && cn_rows[0].contains(&format!("href=\"/registry/accounts/{A}\"")));
    assert!(page.body.contains("cn-power-2025-2026-draft") && page.body.contains("¥74.63"), "rulebook and fine price shown");
    let alice = w.login("alice").await;
    let own = get(&w, "/compliance", Some(&alice)).await;
    let own_rows = rows(&own.body);
    assert_eq!(own_rows.len(), 1);
    assert_eq!(own_rows[0], cn_rows[0], "alice sees her entity's row as the authority does");
    assert!(own.body.contains("Your accounts' entities only"));
    let carol = w.login("carol").await;
    let bj = get(&w, "/compliance", Some(&carol)).await;
    assert!(bj.body.contains("compliance-BJ") && !bj.body.contains("compliance-CN") && bj.body.contains("No covered entity to show"));

    // MRV: the verifier's queue (CN-E0002's submitted report) for the verifier, the
    // authority's for the authority; both see the year's accepted report.
    let verifier = w.login("verifier").await;
    let page = get(&w, "/mrv", Some(&verifier)).await;
    assert!(page.body.contains("card verifier") && !page.body.contains("card authority"), "{}", page.body);
    let queue = &page.body[page.body.find("id=\"verifier-queue\"").expect("the verifier's queue")..];
    assert!(queue.split("</table>").next().unwrap().contains(common::PENDING_REPORT), "{queue}");
    for page in [page, get(&w, "/mrv", Some(&cn)).await] {
        assert!(page.body.contains("accepted: <strong>1</strong>") && page.body.contains("submitted: <strong>1</strong>"), "{}", page.body);
        assert!(page.body.contains("CN-E0001-2025") && page.body.contains("CN-E0002-2025"));
    }
    assert!(get(&w, "/mrv", Some(&cn)).await.body.contains("card authority"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_page_shows_holdings_blocks_history_and_the_trusted_list() {
    let w = World::new();
    let alice = w.login("alice").await;
    let page = get(&w, &format!("/registry/accounts/{A}"), Some(&alice)).await;
    assert_eq!(page.status, StatusCode::OK);
    let holdings = &page.body[page.body.find("id=\"holdings\"").unwrap()..page.body.find("id=\"history\"").unwrap()];
    // 100,000 t allocated, 20,000 t lodged with the exchange (encumbered).
    for figure in ["CEA:2025", "100,000", "80,000", "20,000"] {
        assert!(holdings.contains(figure), "{figure} in {holdings}");
    }
    assert!(holdings.contains("class=\"blocks\""));
    let history = &page.body[page.body.find("id=\"history\"").unwrap()..page.body.find("id=\"trusted\"").unwrap()];
    assert!(history.contains("allocation") && history.contains("CN-ISSUANCE"), "{history}");
    assert!(page.body.contains("Propose a transfer from this account"));
    // The approving representative reads the account but may not propose.
    let approver = w.login("approver").await;
    let page = get(&w, &format!("/registry/accounts/{A}"), Some(&approver)).await;
    assert!(page.status == StatusCode::OK && !page.body.contains("Propose a transfer from this account"));
    // An unknown account is 403 to alice, as an existing one she does not represent would be.
    assert_eq!(get(&w, "/registry/accounts/CN-999999", Some(&alice)).await.status, StatusCode::FORBIDDEN);
    let admin = w.login("admin").await;
    assert_eq!(get(&w, "/registry/accounts/CN-999999", Some(&admin)).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_proposed_and_approved_through_the_forms_moves_units_after_the_delay() {
    let w = World::new();
    // Friday 14:00 CET, after the cut-off: released at 12:00 CET on the third working day after
    // (Monday 9 June is a holiday), Wednesday 11 June, as in the API's test.
    w.set_time(cet("2025-06-06", 14, 0));
    let (alice, approver, bob) = (w.login("alice").await, w.login("approver").await, w.login("bob").await);
    let before = (w.held(A), w.held(B));

    let refused = post(&w, "/transfers", Some(&alice), &format!("from={A}&to={B}&unit=CEA:2025&quantity_t=999999999")).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("Refused:") && refused.body.contains("free to transfer"), "{}", refused.body);

    let proposed = post(&w, "/transfers", Some(&alice), &format!("from={A}&to={B}&unit=CEA:2025&quantity_t=1000")).await;
    assert_eq!(proposed.status, StatusCode::OK, "{}", proposed.body);
    assert!(proposed.body.contains("Proposed t-"), "{}", proposed.body);
    let (_, list) = w.get("/api/v1/transfers", Some(&alice)).await;
    let id = list[0]["id"].as_str().unwrap().to_string();
    let approve = format!("action=\"/transfers/{id}/approve\"");
    // The initiator cannot approve her own proposal: no button for her; the approver has one;
    // bob (B's representative) does not see A's proposal at all.
    assert!(!proposed.body.contains(&approve));
    assert!(proposed.body.contains(&format!("action=\"/transfers/{id}/cancel\"")));
    let page = get(&w, "/transfers", Some(&approver)).await;
    assert!(page.body.contains(&approve) && !page.body.contains("id=\"propose\""), "{}", page.body);
    assert!(!get(&w, "/transfers", Some(&bob)).await.body.contains(&id));
    // Alice posting the approval anyway is refused by the access controls.
    let self_approval = post(&w, &format!("/transfers/{id}/approve"), Some(&alice), "").await;
    assert!(self_approval.status.is_client_error() && self_approval.body.contains("Refused:"), "{}", self_approval.body);

    w.set_time(cet("2025-06-06", 14, 5));
    let approved = post(&w, &format!("/transfers/{id}/approve"), Some(&approver), "").await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.body);
    assert!(approved.body.contains(&format!("Approved {id}: it executes at 2025-06-11 11:00 UTC")), "{}", approved.body);
    // Before the delay nothing moves: the 1,000 t are set aside in A (still A's), B is unchanged.
    assert_eq!((w.held(A), w.held(B)), (((before.0).0 - 1_000, (before.0).1), before.1), "nothing moves before the delay");

    w.set_time(cet("2025-06-11", 12, 0));
    assert_eq!(w.platform.tick().unwrap(), vec![id.clone()]);
    assert_eq!(w.held(A), (before.0 .0 - 1_000, before.0 .1 - 1_000));
    assert_eq!(w.held(B), (before.1 .0 + 1_000, before.1 .1 + 1_000));
    // Days later the sessions have expired: sign in again.
    let (approver, bob) = (w.login("approver").await, w.login("bob").await);
    let page = get(&w, "/transfers", Some(&approver)).await;
    let row = &page.body[page.body.find(&format!("id=\"transfer-{id}\"")).unwrap()..];
    assert!(row[..row.find("</tr>").unwrap()].contains("released"));
    let history = get(&w, &format!("/registry/accounts/{B}"), Some(&bob)).await;
    assert!(history.body.contains("transfer"), "the transfer is in B's history");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_place_orders_through_the_order_form_and_see_refusals() {
    let w = World::new();
    let bob = w.login("bob").await;
    let page = get(&w, "/exchange", Some(&bob)).await;
    assert!(page.body.contains("id=\"order-form\""));
    let placed = post(&w, "/exchange/orders", Some(&bob), "member=bob&instrument=CEA-2025&side=buy&price=80.00&qty_t=100&tif=gtc").await;
    assert_eq!(placed.status, StatusCode::OK, "{}", placed.body);
    assert!(placed.body.contains("100 t resting in the book"), "{}", placed.body);
    let refused = post(&w, "/exchange/orders", Some(&bob), "member=bob&instrument=CEA-2025&side=buy&price=80.001&qty_t=1&tif=gtc").await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.body.contains("at most two decimals"), "{}", refused.body);
    // Acting for another member is refused by the policy.
    let other = post(&w, "/exchange/orders", Some(&bob), "member=alice&instrument=CEA-2025&side=sell&price=80.00&qty_t=1&tif=gtc").await;
    assert_eq!(other.status, StatusCode::FORBIDDEN, "{}", other.body);
    // The book is published after the stored batch: the bid shows on the public page.
    let mut shown = false;
    for _ in 0..50 {
        let page = get(&w, "/exchange", None).await;
        if page.body.contains("¥80.00") {
            shown = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(shown, "the resting bid appears in the public book");
    // A registry-only role has no order form.
    let approver = w.login("approver").await;
    assert!(!get(&w, "/exchange", Some(&approver)).await.body.contains("id=\"order-form\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_draws_the_closing_price_series_as_well_formed_svg() {
    let w = World::new();
    let open = w.trade_history(12);
    let page = get(&w, "/", None).await;
    assert!(page.body.contains(&format!("<b id=\"trading-day\">{open}</b>")), "{}", page.body);
    let charts = svgs(&page.body);
    assert_eq!(charts.len(), 1);
    let doc = roxmltree::Document::parse(&charts[0]).unwrap();
    let points = doc.descendants().find(|n| n.has_tag_name("polyline")).unwrap().attribute("points").unwrap().split(' ').count();
    // The day the fixture opened (no trade: the previous close) and the twelve traded days.
    assert_eq!(points, 13);
    assert_eq!(doc.descendants().filter(|n| n.attribute("class") == Some("vol")).count(), 13);
    // The last close: day 11's price, 80.00 + 11 × 0.15 + 0.90 (the swing) = ¥82.55.
    assert!(page.body.contains("<b class=\"close\">¥82.55</b>"), "{}", page.body);
    let exchange = get(&w, "/exchange", None).await;
    assert!(exchange.body.contains("¥82.55"), "the last trade is listed");
}

/// The auctions page: an open auction with the bid form for members and the clearing button for
/// its market's authority; a member bids through the form (a refusal shown, nothing placed); the
/// authority clears it; the result row names no winner; a cancelled auction says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_auctions_page_takes_bids_clears_and_publishes_each_result() {
    let w = World::new();
    let page = get(&w, "/auctions", None).await;
    assert!(page.body.contains("No primary auction has been run.") && page.body.contains("No auction is taking bids."));
    let regulator = w.login("regulator-cn").await;
    let open = |id: &str, volume: u64| serde_json::json!({"auction": id, "instrument": "CEA-2025", "volume_t": volume, "reserve_price_fen": 7_000});
    let (status, result) = w.call(Method::POST, "/api/v1/auctions", Some(&regulator), Some(open("cn-2025-1", 5_000))).await;
    assert_eq!(status, StatusCode::CREATED, "{result}");
    // The public sees the offer and no form; bob the bid form; the authority the clear button.
    let public = get(&w, "/auctions", None).await;
    assert!(public.body.contains("cn-2025-1") && !public.body.contains("action=\"/auctions/cn-2025-1/bids\""));
    assert!(!public.body.contains("action=\"/auctions/cn-2025-1/clear\""));
    let bob = w.login("bob").await;
    assert!(get(&w, "/auctions", Some(&bob)).await.body.contains("action=\"/auctions/cn-2025-1/bids\""));
    assert!(get(&w, "/auctions", Some(&regulator)).await.body.contains("action=\"/auctions/cn-2025-1/clear\""));
    // Bids through the form: a price below the reserve is refused and shown; two bids placed.
    let refused = post(&w, "/auctions/cn-2025-1/bids", Some(&bob), "member=bob&price=69.00&qty_t=3000").await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("below the reserve price"), "{}", refused.body);
    for form in ["member=bob&price=79.00&qty_t=3000", "member=bob&price=76.00&qty_t=3000"] {
        let done = post(&w, "/auctions/cn-2025-1/bids", Some(&bob), form).await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.body);
        assert!(done.body.contains("set aside until the auction clears"), "{}", done.body);
    }
    // bob cannot clear it; the authority does.
    assert_eq!(post(&w, "/auctions/cn-2025-1/clear", Some(&bob), "").await.status, StatusCode::FORBIDDEN);
    let cleared = post(&w, "/auctions/cn-2025-1/clear", Some(&regulator), "").await;
    assert!(cleared.body.contains("Auction cn-2025-1 cleared at ¥76.00: 5,000 t sold to 1 bidder(s)."), "{}", cleared.body);
    let page = get(&w, "/auctions", None).await;
    let row = page
        .body
        .split("<tr class=\"cleared\">")
        .nth(1)
        .unwrap_or_else(|| panic!("a cleared row in {}", page.body))
        .split("</tr>")
        .next()
        .unwrap();
    for cell in ["cn-2025-1", "CEA-2025", "5,000", "¥70.00", "6,000", "¥76.00"] {
        assert!(row.contains(cell), "{cell} in {row}");
    }
    assert!(!row.contains("bob"), "the public result names no winner");
    // Cleared 10% or more below the secondary market's close (¥80.00): cancelled, with why.
    let (status, _) = w.call(Method::POST, "/api/v1/auctions", Some(&regulator), Some(open("cn-2025-2", 1_000))).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = w
        .call(Method::POST, "/api/v1/auctions/cn-2025-2/bids", Some(&bob), Some(serde_json::json!({"price_fen": 7_100, "qty_t": 1_000})))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, result) = w.call(Method::POST, "/api/v1/auctions/cn-2025-2/clear", Some(&regulator), None).await;
    assert_eq!((status, result["outcome"].as_str()), (StatusCode::OK, Some("cancelled")));
    let page = get(&w, "/auctions", None).await;
    let row = page.body.split("<tr class=\"cancelled\">").nth(1).expect("a cancelled row").split("</tr>").next().unwrap();
    assert!(row.contains("cn-2025-2") && row.contains("below the secondary market"), "{row}");
    // The authority is told it may open auctions; the public is not.
    assert!(get(&w, "/auctions", Some(&regulator)).await.body.contains("You may open auctions in"));
    assert!(!page.body.contains("You may open auctions in"));
}

/// The trusted list through the account page's forms: a representative proposes, cannot approve
/// its own proposal, a second representative approves (in effect only after the working-day
/// delay), the representative removes it at once; someone else's account's list is not theirs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trusted_list_is_kept_through_the_account_page_forms() {
    let w = World::new();
    let alice = w.login("alice").await;
    let approver = w.login("approver").await;
    let page = get(&w, &format!("/registry/accounts/{A}"), Some(&alice)).await;
    assert!(page.body.contains("id=\"trusted-form\""), "alice keeps A's list");
    let page = get(&w, &format!("/registry/accounts/{A}"), Some(&approver)).await;
    assert!(!page.body.contains("id=\"trusted-form\""), "the approving representative only approves");

    let proposed = post(&w, &format!("/registry/accounts/{A}/trusted"), Some(&alice), &format!("trusted={B}")).await;
    assert_eq!(proposed.status, StatusCode::OK, "{}", proposed.body);
    assert!(proposed.body.contains(&format!("Proposed adding {B} to the trusted list")), "{}", proposed.body);
    let proposals = &proposed.body[proposed.body.find("id=\"trusted-proposals\"").expect("the proposal listed")..];
    let id = proposals.split("action=\"/registry/trusted/").nth(1).unwrap().split('/').next().unwrap().to_string();

    // Her own proposal: the four-eyes rule refuses her approval, nothing changes.
    let own = post(&w, &format!("/registry/trusted/{id}/approve"), Some(&alice), "").await;
    assert!(own.status.is_client_error(), "{}", own.status);
    assert!(own.body.contains("Refused:"), "{}", own.body);
    let (_, list) = w.get(&format!("/api/v1/accounts/{A}/trusted"), Some(&alice)).await;
    assert_eq!(list["entries"], serde_json::json!([]));

    let approved = post(&w, &format!("/registry/trusted/{id}/approve"), Some(&approver), "").await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.body);
    assert!(approved.body.contains(&format!("Approved {id}: in effect from")), "{}", approved.body);
    let trusted = &approved.body[approved.body.find("id=\"trusted\"").unwrap()..];
    let row = trusted.split("<tr>").nth(2).expect("an entry row");
    assert!(row.contains(B) && row.contains("not yet"), "{row}");

    // Bob is no representative of A: refused, A's list unchanged.
    let bob = w.login("bob").await;
    let refused = post(&w, &format!("/registry/accounts/{A}/trusted"), Some(&bob), &format!("trusted={C}")).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);

    let removed = post(&w, &format!("/registry/accounts/{A}/trusted/{B}/remove"), Some(&alice), "").await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);
    assert!(removed.body.contains(&format!("Removed {B} from the trusted list.")));
    let (_, list) = w.get(&format!("/api/v1/accounts/{A}/trusted"), Some(&alice)).await;
    assert_eq!(list["entries"], serde_json::json!([]), "removal is immediate");
}
