//! A deterministic stream of transfers through the batched writer, printing `ack ID SEQ` for each
//! command only after it is durable. The crash test kills this process at random moments and
//! checks that every printed acknowledgement survived. Ids depend only on the seed and position,
//! so a rerun resubmits the same commands and must find the earlier ones already applied.

use crate::{now, CliError, ExitCode};
use clap::Args;
use ets_registry::workload;
use ets_store::{Ledger, LedgerOptions, LedgerService, Location, SubmitError};
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

pub fn run(location: Location, args: &StressArgs) -> Result<(), CliError> {
    if args.accounts < 2 || args.window == 0 {
        return Err(CliError::new(ExitCode::Invalid, "stress needs at least 2 accounts and a window of at least 1"));
    }
    let mut ledger = Ledger::open(&location, LedgerOptions { snapshot_every: 50_000 })?;
    for result in ledger.submit_batch(now()?, &workload::setup(args.accounts, ALLOCATION_T))? {
        result.map_err(CliError::from)?;
    }
    let service = LedgerService::start(ledger, || now().expect("clock"), 4096);
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
    for envelope in workload::Transfers::new(args.accounts, args.seed).take(args.transfers as usize) {
        let id = envelope.id.clone();
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
