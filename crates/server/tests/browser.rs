//! The dashboard in a real browser: headless Chromium driven over WebDriver (fantoccini and
//! Debian's chromedriver) against the server on a loopback port. Signs in as several roles
//! through the login form, navigates, proposes a transfer as alice and approves it as the
//! second representative, checks what each page shows, and saves a screenshot of the market
//! overview to `target/screenshots/market-overview.png` (CI keeps it).
//!
//! Needs /usr/bin/chromium and /usr/bin/chromedriver: `scripts/install-browser.sh` installs
//! them. Without them the test fails, unless ETS_SKIP_BROWSER=1 is set.

mod common;

use common::{cet, World, A, B, C, PASSWORD};
use fantoccini::{Client, ClientBuilder, Locator};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// chromedriver, killed when the test ends however it ends.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn start_driver() -> (Driver, u16) {
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {CHROMEDRIVER}: {e}"));
    let driver = Driver(child);
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return (driver, port);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not listen on port {port} within 10 s");
}

async fn browser(driver_port: u16, profile: &std::path::Path) -> Client {
    let args = [
        "--headless".to_string(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--no-first-run".into(),
        "--disable-dev-shm-usage".into(),
        "--window-size=1280,1400".into(),
        format!("--user-data-dir={}", profile.display()),
    ];
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("browserName".into(), "chrome".into());
    capabilities.insert("goog:chromeOptions".into(), serde_json::json!({"binary": CHROMIUM, "args": args}));
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{driver_port}"))
        .await
        .expect("a WebDriver session with headless Chromium")
}

/// The page's visible text.
async fn text(client: &Client) -> String {
    client.find(Locator::Css("main")).await.unwrap().text().await.unwrap()
}

async fn nav(client: &Client) -> Vec<String> {
    let mut out = Vec::new();
    for link in client.find_all(Locator::Css("header nav a")).await.unwrap() {
        out.push(link.text().await.unwrap());
    }
    out
}

async fn sign_in(client: &Client, base: &str, user: &str) {
    client.goto(&format!("{base}/login")).await.unwrap();
    client.find(Locator::Id("user-field")).await.unwrap().send_keys(user).await.unwrap();
    client.find(Locator::Id("password-field")).await.unwrap().send_keys(PASSWORD).await.unwrap();
    client.find(Locator::Id("sign-in")).await.unwrap().click().await.unwrap();
    let who = client.wait().for_element(Locator::Id("user")).await.unwrap().text().await.unwrap();
    assert_eq!(who, user, "signed in");
}

async fn sign_out(client: &Client) {
    client.find(Locator::Css("header .who button")).await.unwrap().click().await.unwrap();
    client.wait().for_element(Locator::Css("header .who a[href='/login']")).await.unwrap();
}

async fn goto(client: &Client, base: &str, path: &str) -> String {
    client.goto(&format!("{base}{path}")).await.unwrap();
    text(client).await
}

/// Saves a screenshot of the page as `target/screenshots/{name}.png` (CARGO_TARGET_DIR if set).
async fn screenshot(client: &Client, name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let path = target.join("screenshots").join(format!("{name}.png"));
    let png = client.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, &png).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_navigate_the_dashboard_and_a_transfer_is_proposed_and_approved_in_a_browser() {
    if std::env::var("ETS_SKIP_BROWSER").is_ok_and(|v| v == "1") {
        eprintln!("ETS_SKIP_BROWSER=1: the browser test is skipped");
        return;
    }
    for program in [CHROMEDRIVER, CHROMIUM] {
        assert!(
            std::path::Path::new(program).exists(),
            "{program} is missing: run scripts/install-browser.sh (Debian's chromium and chromium-driver), or set ETS_SKIP_BROWSER=1 to skip the browser test"
        );
    }
    let w = World::new();
    // A few weeks of trading for the charts, then the transfer's working week.
    w.trade_history(30);
    w.set_time(cet("2025-07-21", 10, 0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = w.app.clone();
    tokio::spawn(async move { axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await });

    let (_driver, driver_port) = start_driver().await;
    let profile = tempfile::tempdir().unwrap();
    let client = browser(driver_port, profile.path()).await;
    let outcome = run(&client, &base, &w).await;
    client.close().await.unwrap();
    outcome.unwrap();
}

async fn run(client: &Client, base: &str, w: &World) -> Result<(), String> {
    // The public: the market overview, with its chart; the registry sends it to sign in.
    let overview = goto(client, base, "/").await;
    assert!(overview.contains("Market overview") && overview.contains("CEA-2025"), "{overview}");
    assert_eq!(nav(client).await, ["Market", "Exchange", "Auctions"]);
    let polyline = client.find(Locator::Css("svg.chart polyline.price")).await.unwrap();
    assert_eq!(polyline.attr("points").await.unwrap().unwrap().split(' ').count(), 31);
    let path = screenshot(client, "market-overview").await;
    eprintln!("screenshot of the market overview: {}", path.display());
    client.goto(&format!("{base}/registry")).await.unwrap();
    assert_eq!(client.current_url().await.unwrap().path(), "/login");

    // The Beijing authority sees Beijing's account, not the national market's.
    sign_in(client, base, "regulator-bj").await;
    assert_eq!(nav(client).await, ["Market", "Exchange", "Auctions", "Registry", "Transfers", "Compliance", "MRV"]);
    let registry = goto(client, base, "/registry").await;
    assert!(registry.contains(C) && !registry.contains(A) && !registry.contains(B), "{registry}");
    let forbidden = goto(client, base, &format!("/registry/accounts/{A}")).await;
    assert!(forbidden.contains("Not allowed"), "{forbidden}");
    sign_out(client).await;

    // alice proposes 500 t from her account to bob's through the form.
    sign_in(client, base, "alice").await;
    let before = (w.held(A), w.held(B));
    let account = goto(client, base, &format!("/registry/accounts/{A}")).await;
    assert!(account.contains("Holdings") && account.contains("CEA:2025"), "{account}");
    goto(client, base, "/transfers").await;
    let form = client.find(Locator::Css("#propose form")).await.unwrap();
    form.find(Locator::Css("input[name=to]")).await.unwrap().send_keys(B).await.unwrap();
    form.find(Locator::Css("input[name=unit]")).await.unwrap().send_keys("CEA:2025").await.unwrap();
    form.find(Locator::Css("input[name=quantity_t]")).await.unwrap().send_keys("500").await.unwrap();
    form.find(Locator::Css("button[type=submit]")).await.unwrap().click().await.unwrap();
    let done = client.wait().for_element(Locator::Css("div.ok")).await.unwrap().text().await.unwrap();
    assert!(done.starts_with("Proposed t-") && done.contains("500 t of CEA:2025"), "{done}");
    assert!(client.find_all(Locator::Css("button.approve")).await.unwrap().is_empty(), "no approving one's own proposal");
    sign_out(client).await;

    // The approving representative approves it; it waits for the delay.
    sign_in(client, base, "approver").await;
    goto(client, base, "/transfers").await;
    client.find(Locator::Css("button.approve")).await.unwrap().click().await.unwrap();
    let done = client.wait().for_element(Locator::Css("div.ok")).await.unwrap().text().await.unwrap();
    assert!(done.contains("Approved") && done.contains("it executes at"), "{done}");
    screenshot(client, "transfers").await;
    // Before the delay nothing moves: the 500 t are set aside in A (still A's), B is unchanged.
    assert_eq!((w.held(A), w.held(B)), (((before.0).0 - 500, (before.0).1), before.1), "nothing moves before the delay");
    sign_out(client).await;

    // Released when the access controls say (the delay of the next working days).
    let release_at = {
        let access = w.platform.access.lock().unwrap();
        let proposal = access.access().controls().transfers().last().cloned().unwrap();
        match proposal.status {
            ets_access::TransferStatus::Approved { release_at, trusted: false, .. } => release_at,
            other => return Err(format!("expected an approved transfer to an untrusted account, not {other:?}")),
        }
    };
    assert!(release_at > cet("2025-07-21", 23, 0), "not before the next working day");
    w.set_time(release_at);
    assert_eq!(w.platform.tick().unwrap().len(), 1);
    sign_in(client, base, "bob").await;
    let account = goto(client, base, &format!("/registry/accounts/{B}")).await;
    let total_b = ets_core::Tonnes(before.1 .1 + 500).to_string();
    assert!(account.contains(&total_b), "bob's account shows {total_b} t: {account}");
    screenshot(client, "account").await;
    assert_eq!(w.held(A).1, before.0 .1 - 500);
    let transfers = goto(client, base, "/transfers").await;
    assert!(transfers.contains("No transfer proposals you may see"), "bob does not see A's proposals: {transfers}");
    sign_out(client).await;

    sign_in(client, base, "approver").await;
    let transfers = goto(client, base, "/transfers").await;
    assert!(transfers.contains("released"), "{transfers}");
    Ok(())
}
