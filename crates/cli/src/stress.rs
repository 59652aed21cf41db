//! A deterministic stream of transfers through the batched writer, printing `ack ID SEQ` for each
//! command only after it is durable. The crash test kills this process at random moments and
//! checks that every printed acknowledgement survived. Ids depend only on the seed and position,
//! so a rerun resubmits the same commands and must find the earlier ones already applied.

use crate::{catalog, now, CliError, ExitCode};
use clap::Args;
use ets_core::Tonnes;
use ets_registry::{AccountKind, Command, Envelope, HolderType, UnitRef};
use ets_store::{Ledger, LedgerOptions, LedgerService, Location, SubmitError};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::VecDeque;
use std::io::Write;

#[derive(Args)]
pub struct StressArgs {
    /// Transfers to submit
    #[arg(long, default_value_t = 100_000)]
    transfers: u64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Operator accounts to spread transfers over
    #[arg(long, default_value_t = 200)]
    accounts: u32,
    /// Commands in flight at once (the writer batches what is queued)
    #[arg(long, default_value_t = 1024)]
    window: usize,
}

const ALLOCATION_T: u64 = 1_000_000;

fn setup(accounts: u32) -> Vec<Envelope> {
    let authority = "mee".to_string();
    let mut spec = catalog::market("CN").expect("CN in catalog");
    spec.authorities = vec![authority.clone()];
    let mut out = vec![
        Envelope { id: "stress-init".into(), actor: "admin".into(), command: Command::InitRegistry { admins: vec!["admin".into()] } },
        Envelope { id: "stress-market".into(), actor: "admin".into(), command: Command::AddMarket(spec) },
    ];
    for i in 0..accounts {
        out.push(Envelope {
            id: format!("stress-open-{i}"),
            actor: "admin".into(),
            command: Command::OpenAccount {
                market: "CN".into(),
                kind: AccountKind::Operator,
                holder: format!("Stress entity {i}"),
                holder_type: HolderType::Entity,
                representatives: vec![format!("rep-{i}")],
            },
        });
    }
    let unit = UnitRef::allowance("CEA", 2024);
    out.push(Envelope {
        id: "stress-issue".into(),
        actor: authority.clone(),
        command: Command::Issue { unit: unit.clone(), quantity: Tonnes(ALLOCATION_T * u64::from(accounts)), to: None },
    });
    for i in 0..accounts {
        out.push(Envelope {
            id: format!("stress-allocate-{i}"),
            actor: authority.clone(),
            command: Command::Allocate { from: "CN-ISSUANCE".into(), to: account(i), unit: unit.clone(), quantity: Tonnes(ALLOCATION_T) },
        });
    }
    out
}

fn account(i: u32) -> String {
    format!("CN-{}", 100_001 + i)
}

pub fn run(location: Location, args: &StressArgs) -> Result<(), CliError> {
    if args.accounts < 2 || args.window == 0 {
        return Err(CliError::new(ExitCode::Invalid, "stress needs at least 2 accounts and a window of at least 1"));
    }
    let mut ledger = Ledger::open(&location, LedgerOptions { snapshot_every: 50_000 })?;
    for result in ledger.submit_batch(now()?, &setup(args.accounts))? {
        result.map_err(CliError::from)?;
    }
    let service = LedgerService::start(ledger, || now().expect("clock"), 4096);
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let unit = UnitRef::allowance("CEA", 2024);
    let mut in_flight = VecDeque::with_capacity(args.window);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let settle = |id: String, submission: ets_store::Submission, out: &mut std::io::StdoutLock| -> Result<(), CliError> {
        match submission.wait() {
            Ok(s) => writeln!(out, "ack {id} {}", s.receipt.seq),
            Err(SubmitError::Rejected(r)) => writeln!(out, "rej {id} {}", r.message),
            Err(SubmitError::Store(e)) => return Err(e.into()),
        }
        .and_then(|_| out.flush())
        .map_err(|e| CliError::new(ExitCode::Internal, format!("stdout: {e}")))
    };
    for i in 0..args.transfers {
        let from = rng.gen_range(0..args.accounts);
        let to = (from + rng.gen_range(1..args.accounts)) % args.accounts;
        let quantity = Tonnes(rng.gen_range(1..=1000));
        let id = format!("stress-{}-{i}", args.seed);
        let envelope = Envelope {
            id: id.clone(),
            actor: format!("rep-{from}"),
            command: Command::Transfer { from: account(from), to: account(to), unit: unit.clone(), quantity },
        };
        in_flight.push_back((id, service.submit(envelope)));
        if in_flight.len() >= args.window {
            let (id, submission) = in_flight.pop_front().expect("window is full");
            settle(id, submission, &mut out)?;
        }
    }
    while let Some((id, submission)) = in_flight.pop_front() {
        settle(id, submission, &mut out)?;
    }
    let mut ledger = service.stop();
    ledger.snapshot_if_behind(0)?;
    Ok(())
}
