//! `ets serve`: the HTTP API, its OpenAPI document and explorer, and the dashboard, on the
//! database `--database` names; `--demo` builds the demo database first and adds users for
//! every role.

use crate::{CliError, ExitCode};
use ets_access::ControlRules;
use ets_server::{Clock, ExchangeTime, Platform};
use ets_store::Location;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Build the demo database first (as `ets demo`; ets-demo.db unless --database is given) and add demo users
    #[arg(long)]
    demo: bool,
    /// Registry security rules as JSON (calendar, delays, limits, throttling); absent fields take the documented defaults
    #[arg(long)]
    rules: Option<PathBuf>,
    /// How often matured transfers are released, in milliseconds
    #[arg(long, default_value_t = 1_000)]
    tick_ms: u64,
    /// The rulebook governing a market's compliance, MARKET=RULEBOOK (a shipped id or a file); repeatable. Markets left out: the shipped rulebook covering the year
    #[arg(long = "rulebook", value_name = "MARKET=RULEBOOK")]
    rulebooks: Vec<String>,
    /// The price a market's fines are computed at, MARKET=YUAN; repeatable. Markets left out: the latest closing price on the exchange
    #[arg(long = "fine-price", value_name = "MARKET=YUAN")]
    fine_prices: Vec<String>,
    /// Offset projects compliance knows (CSV: id,standard,province,type,registered), as `ets comply --projects`
    #[arg(long)]
    projects: Option<String>,
}

fn pair<'a>(flag: &str, text: &'a str) -> Result<(&'a str, &'a str), CliError> {
    text.split_once('=')
        .filter(|(k, v)| !k.is_empty() && !v.is_empty())
        .ok_or_else(|| CliError::new(ExitCode::Invalid, format!("--{flag} {text}: expected MARKET=VALUE")))
}

/// The compliance set-up: `base` (the demo's, or none), each market's carbon-inclusion projects
/// from the database's catalog, and the options' rulebooks, fine prices and projects over them.
fn compliance(location: &Location, args: &ServeArgs, mut setup: ets_compliance::Setup) -> Result<ets_compliance::Setup, CliError> {
    let catalog = crate::inclusion::catalog_of(location)?;
    for scheme in &catalog.pilots {
        setup.market_projects.insert(scheme.market.clone(), catalog.projects_of(&scheme.market));
    }
    setup.projects.extend(crate::cycle::read_projects(args.projects.as_deref())?);
    for text in &args.rulebooks {
        let (market, id) = pair("rulebook", text)?;
        let (_, rb) = crate::cycle::load_rulebook(id)?;
        if rb.rulebook.market != market {
            return Err(CliError::new(
                ExitCode::Invalid,
                format!("--rulebook {text}: rulebook {} is for market {}, not {market}", rb.rulebook.id, rb.rulebook.market),
            ));
        }
        setup.rulebooks.insert(market.to_string(), rb);
    }
    for text in &args.fine_prices {
        let (market, yuan) = pair("fine-price", text)?;
        let price =
            ets_core::Fen::parse_yuan(yuan).map_err(|e| CliError::new(ExitCode::Invalid, format!("--fine-price {text}: {}", e.0)))?;
        setup.prices.insert(market.to_string(), price);
    }
    Ok(setup)
}

fn rules(path: Option<&PathBuf>) -> Result<ControlRules, CliError> {
    let Some(path) = path else { return Ok(ControlRules::default()) };
    let text =
        std::fs::read_to_string(path).map_err(|e| CliError::new(ExitCode::Invalid, format!("cannot read {}: {e}", path.display())))?;
    ControlRules::from_json(&text)
        .map_err(|problems| CliError::new(ExitCode::Invalid, format!("{}: {}", path.display(), problems.join("; "))))
}

pub fn run(location: Option<Location>, explicit: Location, args: &ServeArgs, out: &crate::output::Output) -> Result<(), CliError> {
    let rules = rules(args.rules.as_ref())?;
    let clock = Clock::System;
    let (location, exchange_time) = if args.demo {
        let location = location.unwrap_or_else(|| Location::Sqlite("ets-demo.db".into()));
        crate::demo::run(Some(location.clone()), &crate::demo::DemoArgs::default(), out)?;
        let setup = ets_server::demo::prepare(&location, &rules, &clock)?;
        eprintln!("serve: demo users (password {}):", ets_server::demo::DEMO_PASSWORD);
        for u in &setup.users {
            eprintln!("  {:<22} {}", u.user, u.purpose);
        }
        eprintln!("serve: the demo exchange's clock walks through one trading session from start-up");
        (location, setup.exchange_time)
    } else {
        if let Location::Sqlite(path) = &explicit {
            if !path.exists() {
                return Err(CliError::new(
                    ExitCode::NotFound,
                    format!("no registry at {}; create one with `ets init` or run `ets serve --demo`", path.display()),
                ));
            }
        }
        (explicit, ExchangeTime::Live)
    };
    let base = if args.demo { crate::demo_cycle::compliance_setup()? } else { ets_compliance::Setup::default() };
    let setup = compliance(&location, args, base)?;
    let platform = Arc::new(Platform::open(&location, rules, clock, exchange_time)?.with_compliance(setup));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::new(ExitCode::Internal, format!("cannot start the server runtime: {e}")))?;
    eprintln!("serve: {location} on http://{} (API /api/v1, explorer /api/v1/docs, dashboard /)", args.listen);
    runtime
        .block_on(ets_server::serve(platform, args.listen, std::time::Duration::from_millis(args.tick_ms.max(10))))
        .map_err(|e| CliError::new(ExitCode::Internal, format!("cannot serve on {}: {e}", args.listen)))
}
