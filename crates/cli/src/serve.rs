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
    let platform = Arc::new(Platform::open(&location, rules, clock, exchange_time)?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::new(ExitCode::Internal, format!("cannot start the server runtime: {e}")))?;
    eprintln!("serve: {location} on http://{} (API /api/v1, explorer /api/v1/docs, dashboard /)", args.listen);
    runtime
        .block_on(ets_server::serve(platform, args.listen, std::time::Duration::from_millis(args.tick_ms.max(10))))
        .map_err(|e| CliError::new(ExitCode::Internal, format!("cannot serve on {}: {e}", args.listen)))
}
