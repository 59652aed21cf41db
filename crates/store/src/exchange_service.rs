//! The exchange journal behind a pipelined single writer, as `LedgerService` is for the
//! registry. The executor thread takes whatever orders have queued up (up to a batch limit),
//! decides them on the venue and seals them into the next journal record; the storage thread
//! stores each record in one transaction, then carries out the batch's registry instructions
//! (settlement deliveries), and only then answers its commands. While batch k is being stored,
//! batch k+1 is being decided, so the two cores share the work; nothing is answered early.
//!
//! If a write fails, that batch and every batch behind it are answered with the error (they
//! were decided on top of it), and the service refuses further commands; `stop` then rebuilds
//! the venue from what storage holds. A failure to carry out instructions after the record is
//! stored loses nothing: reopening re-derives them and `ExchangeLog::reconcile` submits them.

use crate::backend::{Backend, StoreError};
use crate::exchange_log::{ExchangeLog, ExchangeReceipt, ExchangeState, PreparedExchangeBatch};
use ets_core::Timestamp;
use ets_exchange::venue::{Envelope, Reject, Venue};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Most commands in one batch (one journal record); a single larger group is taken whole.
pub const EXCHANGE_BATCH_MAX: usize = 16_384;
/// Most groups of commands waiting for the executor; submitters block beyond it.
const QUEUE_MAX: usize = 1_024;
/// Sealed batches waiting for the storage thread: memory runs at most this far ahead of disk.
const BATCHES_IN_FLIGHT_MAX: usize = 2;

/// Carries out a stored batch's registry instructions (on a `Ledger`, or through a
/// `LedgerService`), at the batch's latest command time.
pub type CarryOut = Box<dyn FnMut(Timestamp, &[ets_registry::Envelope]) -> Result<(), StoreError> + Send>;

/// Market data from the venue as a batch left it, made on the executor thread; the
/// publication it returns runs on the storage thread once the batch is stored, so nothing is
/// published that could still be lost.
pub type Publisher = Box<dyn FnMut(&Venue) -> Publication + Send>;
pub type Publication = Box<dyn FnOnce() + Send>;

/// Why a command submitted to the service was not accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExchangeSubmitError {
    /// The venue refused it; nothing changed.
    Rejected(Reject),
    /// The journal or the registry could not be written; see `ExchangeService`.
    Store(StoreError),
}

pub type Answers = Vec<Result<ExchangeReceipt, ExchangeSubmitError>>;
type Decisions = Vec<Result<ExchangeReceipt, Reject>>;

/// Where a group's answers go: a channel for `submit_all`, anything (an async task's
/// one-shot channel, say) for `submit_then`. Called once, from the storage thread.
pub type Reply = Box<dyn FnOnce(Answers) + Send>;

struct Job {
    envelopes: Vec<Envelope>,
    reply: Reply,
}

struct Sealed {
    replies: Vec<(Reply, Decisions)>,
    prepared: PreparedExchangeBatch,
    publication: Option<Publication>,
}

/// The answers to one submitted group of commands, available once they are durable and
/// carried out.
pub struct ExchangeSubmission(Receiver<Answers>, usize);

impl ExchangeSubmission {
    pub fn wait_all(self) -> Answers {
        let n = self.1;
        self.0.recv().unwrap_or_else(|_| (0..n).map(|_| Err(ExchangeSubmitError::Store(stopped()))).collect())
    }
}

fn stopped() -> StoreError {
    StoreError::Io("the exchange writer stopped".into())
}

pub struct ExchangeService {
    sender: SyncSender<Job>,
    executor: JoinHandle<ExchangeState>,
    storage: JoinHandle<(Box<dyn Backend>, CarryOut)>,
    failure: Arc<Mutex<Option<StoreError>>>,
}

impl ExchangeService {
    /// Starts the executor and storage threads over an opened exchange journal.
    pub fn start(log: ExchangeLog, carry_out: CarryOut, batch_max: usize) -> ExchangeService {
        ExchangeService::start_publishing(log, carry_out, batch_max, None)
    }

    /// `start`, and after every stored batch, what `publish` made of the venue.
    pub fn start_publishing(log: ExchangeLog, carry_out: CarryOut, batch_max: usize, publish: Option<Publisher>) -> ExchangeService {
        let mut publish = publish;
        assert!((1..=EXCHANGE_BATCH_MAX).contains(&batch_max), "batch_max must be 1..={EXCHANGE_BATCH_MAX}");
        let (mut state, mut backend) = log.split();
        let mut carry_out = carry_out;
        let (sender, jobs) = mpsc::sync_channel::<Job>(QUEUE_MAX);
        let (to_storage, sealed) = mpsc::sync_channel::<Sealed>(BATCHES_IN_FLIGHT_MAX);
        let failure: Arc<Mutex<Option<StoreError>>> = Arc::new(Mutex::new(None));

        let failed = failure.clone();
        let executor = std::thread::Builder::new()
            .name("ets-exchange-executor".into())
            .spawn(move || {
                let mut batch: Vec<Job> = Vec::new();
                while let Ok(first) = jobs.recv() {
                    let commands = crate::writer::gather(first, &jobs, |job| job.envelopes.len(), batch_max, &mut batch);
                    if let Some(error) = failed.lock().expect("failure lock").clone() {
                        for job in batch.drain(..) {
                            (job.reply)(job.envelopes.iter().map(|_| Err(ExchangeSubmitError::Store(error.clone()))).collect());
                        }
                        continue;
                    }
                    let (groups, decided) = if batch.len() == 1 {
                        let job = batch.pop().expect("one job");
                        let decided = state.prepare(&job.envelopes);
                        (vec![(job.reply, job.envelopes.len())], decided)
                    } else {
                        let mut envelopes = Vec::with_capacity(commands);
                        let mut groups = Vec::with_capacity(batch.len());
                        for job in batch.drain(..) {
                            groups.push((job.reply, job.envelopes.len()));
                            envelopes.extend(job.envelopes);
                        }
                        let decided = state.prepare(&envelopes);
                        (groups, decided)
                    };
                    let (results, prepared) = match decided {
                        Ok(decided) => decided,
                        Err(error) => {
                            // Nothing was decided (the venue is not set up): nothing to write.
                            for (reply, n) in groups {
                                reply((0..n).map(|_| Err(ExchangeSubmitError::Store(error.clone()))).collect());
                            }
                            continue;
                        }
                    };
                    let publication = match (&mut publish, state.venue(), &prepared.sealed) {
                        (Some(publish), Some(venue), Some(_)) => Some(publish(venue)),
                        _ => None,
                    };
                    let mut results = results.into_iter();
                    let replies = groups.into_iter().map(|(reply, n)| (reply, results.by_ref().take(n).collect())).collect();
                    if let Err(mpsc::SendError(sealed)) = to_storage.send(Sealed { replies, prepared, publication }) {
                        for (reply, results) in sealed.replies {
                            reply(results.iter().map(|_| Err(ExchangeSubmitError::Store(stopped()))).collect());
                        }
                    }
                }
                state
            })
            .expect("spawn exchange executor");

        let failed = failure.clone();
        let storage = std::thread::Builder::new()
            .name("ets-exchange-storage".into())
            .spawn(move || {
                while let Ok(Sealed { replies, prepared, publication }) = sealed.recv() {
                    let earlier = failed.lock().expect("failure lock").clone();
                    let outcome = match earlier {
                        Some(error) => Err(error),
                        None => {
                            let stored = prepared.commit(backend.as_mut()).and_then(|()| carry_out(prepared.at, &prepared.instructions));
                            if let Err(error) = &stored {
                                failed.lock().expect("failure lock").get_or_insert_with(|| error.clone());
                            }
                            stored
                        }
                    };
                    match outcome {
                        Ok(()) => {
                            if let Some(publication) = publication {
                                publication();
                            }
                            for (reply, results) in replies {
                                reply(results.into_iter().map(|r| r.map_err(ExchangeSubmitError::Rejected)).collect());
                            }
                        }
                        Err(error) => {
                            for (reply, results) in replies {
                                reply(results.iter().map(|_| Err(ExchangeSubmitError::Store(error.clone()))).collect());
                            }
                        }
                    }
                }
                (backend, carry_out)
            })
            .expect("spawn exchange storage");
        ExchangeService { sender, executor, storage, failure }
    }

    /// Submits a group of commands; they are decided in order and answered together once
    /// journaled and carried out.
    pub fn submit_all(&self, envelopes: Vec<Envelope>) -> ExchangeSubmission {
        let n = envelopes.len();
        let (reply, answer) = mpsc::channel();
        self.submit_then(
            envelopes,
            Box::new(move |answers| {
                let _ = reply.send(answers);
            }),
        );
        ExchangeSubmission(answer, n)
    }

    /// Queues a group of commands; `reply` gets their answers once they are durable and carried
    /// out. Waits while the queue is full (use `try_submit_then` where waiting would block an
    /// async runtime's worker).
    pub fn submit_then(&self, envelopes: Vec<Envelope>, reply: Reply) {
        let n = envelopes.len();
        if let Err(mpsc::SendError(job)) = self.sender.send(Job { envelopes, reply }) {
            (job.reply)((0..n).map(|_| Err(ExchangeSubmitError::Store(stopped()))).collect());
        }
    }

    /// `submit_then` if the queue has room; otherwise the commands and the reply come back.
    #[allow(clippy::result_large_err)]
    pub fn try_submit_then(&self, envelopes: Vec<Envelope>, reply: Reply) -> Result<(), (Vec<Envelope>, Reply)> {
        let n = envelopes.len();
        match self.sender.try_send(Job { envelopes, reply }) {
            Ok(()) => Ok(()),
            Err(mpsc::TrySendError::Full(job)) => Err((job.envelopes, job.reply)),
            Err(mpsc::TrySendError::Disconnected(job)) => {
                (job.reply)((0..n).map(|_| Err(ExchangeSubmitError::Store(stopped()))).collect());
                Ok(())
            }
        }
    }

    /// Stops accepting commands, finishes what is queued and hands back the journal (rebuilt
    /// from storage if a write failed) and the carry-out.
    pub fn stop(self) -> Result<(ExchangeLog, CarryOut), StoreError> {
        drop(self.sender);
        let state = self.executor.join().expect("exchange executor panicked");
        let (backend, carry_out) = self.storage.join().expect("exchange storage thread panicked");
        let failed = self.failure.lock().expect("failure lock").is_some();
        Ok((ExchangeLog::join(state, backend, failed)?, carry_out))
    }
}
