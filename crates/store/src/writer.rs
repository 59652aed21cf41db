//! The ledger behind a single writer thread. Callers on any thread submit commands; the writer
//! takes whatever has queued up (up to a batch limit), executes it, commits it in one
//! transaction and only then answers. Throughput comes from batching, never from answering early.

use crate::ledger::{Ledger, SubmitError, Submitted};
use ets_core::Timestamp;
use ets_registry::Envelope;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::thread::JoinHandle;

/// Most commands in one batch (one storage transaction).
pub const BATCH_MAX: usize = 8_192;
/// Most commands waiting for the writer; submitters block beyond it (back-pressure).
pub const QUEUE_MAX: usize = 65_536;

struct Job {
    envelope: Envelope,
    reply: Sender<Result<Submitted, SubmitError>>,
}

/// The answer to one submitted command, available once its batch is durable.
pub struct Submission(Receiver<Result<Submitted, SubmitError>>);

impl Submission {
    pub fn wait(self) -> Result<Submitted, SubmitError> {
        self.0.recv().unwrap_or_else(|_| Err(SubmitError::Store(crate::StoreError::Io("the ledger writer stopped".into()))))
    }
}

pub struct LedgerService {
    sender: SyncSender<Job>,
    thread: JoinHandle<Ledger>,
}

impl LedgerService {
    /// Starts the writer thread. `clock` stamps each batch; it is the only clock involved.
    pub fn start(mut ledger: Ledger, mut clock: impl FnMut() -> Timestamp + Send + 'static, batch_max: usize) -> LedgerService {
        assert!((1..=BATCH_MAX).contains(&batch_max), "batch_max must be 1..={BATCH_MAX}");
        let (sender, receiver) = mpsc::sync_channel::<Job>(QUEUE_MAX);
        let thread = std::thread::Builder::new()
            .name("ets-ledger-writer".into())
            .spawn(move || {
                let mut jobs = Vec::with_capacity(batch_max);
                let mut envelopes = Vec::with_capacity(batch_max);
                while let Ok(first) = receiver.recv() {
                    jobs.push(first);
                    while jobs.len() < batch_max {
                        match receiver.try_recv() {
                            Ok(job) => jobs.push(job),
                            Err(_) => break,
                        }
                    }
                    envelopes.extend(jobs.iter_mut().map(|j| std::mem::replace(&mut j.envelope, placeholder())));
                    match ledger.submit_batch(clock(), &envelopes) {
                        Ok(results) => {
                            for (job, result) in jobs.drain(..).zip(results) {
                                let _ = job.reply.send(result.map_err(SubmitError::Rejected));
                            }
                        }
                        Err(e) => {
                            for job in jobs.drain(..) {
                                let _ = job.reply.send(Err(SubmitError::Store(e.clone())));
                            }
                        }
                    }
                    envelopes.clear();
                }
                ledger
            })
            .expect("spawn ledger writer");
        LedgerService { sender, thread }
    }

    pub fn submit(&self, envelope: Envelope) -> Submission {
        let (reply, answer) = mpsc::channel();
        if let Err(mpsc::SendError(job)) = self.sender.send(Job { envelope, reply }) {
            let _ = job.reply.send(Err(SubmitError::Store(crate::StoreError::Io("the ledger writer stopped".into()))));
        }
        Submission(answer)
    }

    /// Stops accepting commands, finishes what is queued and hands the ledger back.
    pub fn stop(self) -> Ledger {
        drop(self.sender);
        self.thread.join().expect("ledger writer panicked")
    }
}

fn placeholder() -> Envelope {
    Envelope { id: String::new(), actor: String::new(), command: ets_registry::Command::InitRegistry { admins: Vec::new() } }
}
