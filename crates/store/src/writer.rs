//! The ledger behind a pipelined single writer. Callers on any thread submit commands. The
//! executor thread takes whatever has queued up (up to a batch limit), runs it through the
//! state machine and seals it; the storage thread commits each sealed batch in one transaction
//! and only then answers its commands. While batch k is being committed, batch k+1 is being
//! executed: the two cores each do half of the work. Throughput comes from batching and
//! pipelining, never from answering early.
//!
//! If a commit fails, that batch and every batch behind it are answered with the error (their
//! state was built on the failed one), and the writer refuses further commands; `stop` then
//! rebuilds the state from what storage holds.

use crate::ledger::{Ledger, PreparedBatch, SubmitError, Submitted};
use crate::StoreError;
use ets_core::Timestamp;
use ets_registry::{Envelope, Rejection};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Most commands in one batch (one storage transaction); a single larger group is taken whole.
pub const BATCH_MAX: usize = 8_192;
/// Most groups of commands waiting for the executor; submitters block beyond it (back-pressure).
pub const QUEUE_MAX: usize = 8_192;
/// How long the storage thread waits with nothing to commit before it writes the trailing
/// query tables (postings, holdings).
pub const IDLE_FLUSH_AFTER: std::time::Duration = std::time::Duration::from_millis(100);
/// Sealed batches waiting for the storage thread: memory may run at most this far ahead of disk.
pub const BATCHES_IN_FLIGHT_MAX: usize = 2;

type Answers = Vec<Result<Submitted, SubmitError>>;
type Reply = Sender<Answers>;

/// A group of commands from one caller, answered together (as a client library batches).
struct Job {
    envelopes: Vec<Envelope>,
    reply: Reply,
}

struct Sealed {
    replies: Vec<(Reply, Vec<Result<Submitted, Rejection>>)>,
    prepared: Option<PreparedBatch>,
}

/// The answers to a submitted group of commands, in order, available once they are durable.
pub struct Submission(Receiver<Answers>, usize);

impl Submission {
    pub fn wait_all(self) -> Answers {
        let n = self.1;
        self.0.recv().unwrap_or_else(|_| (0..n).map(|_| Err(stopped())).collect())
    }

    /// The answer of a single-command submission.
    pub fn wait(self) -> Result<Submitted, SubmitError> {
        self.wait_all().pop().unwrap_or_else(|| Err(stopped()))
    }
}

fn stopped() -> SubmitError {
    SubmitError::Store(StoreError::Io("the ledger writer stopped".into()))
}

/// Takes `first` and whatever else has queued up, until `batch_max` commands: the batching of
/// both pipelined writers. Returns how many commands the batch holds.
pub(crate) fn gather<J>(first: J, jobs: &Receiver<J>, commands_of: impl Fn(&J) -> usize, batch_max: usize, batch: &mut Vec<J>) -> usize {
    let mut commands = commands_of(&first);
    batch.push(first);
    while commands < batch_max {
        match jobs.try_recv() {
            Ok(job) => {
                commands += commands_of(&job);
                batch.push(job);
            }
            Err(_) => break,
        }
    }
    commands
}

pub struct LedgerService {
    sender: SyncSender<Job>,
    executor: JoinHandle<Ledger>,
    storage: JoinHandle<Box<dyn crate::Backend>>,
    failure: Arc<Mutex<Option<StoreError>>>,
}

impl LedgerService {
    /// Starts the executor and storage threads. `clock` stamps each batch; it is the only clock.
    pub fn start(ledger: Ledger, mut clock: impl FnMut() -> Timestamp + Send + 'static, batch_max: usize) -> LedgerService {
        assert!((1..=BATCH_MAX).contains(&batch_max), "batch_max must be 1..={BATCH_MAX}");
        let (mut ledger, mut backend, mut history) = ledger.split();
        let (sender, jobs) = mpsc::sync_channel::<Job>(QUEUE_MAX);
        let (to_storage, sealed) = mpsc::sync_channel::<Sealed>(BATCHES_IN_FLIGHT_MAX);
        let failure: Arc<Mutex<Option<StoreError>>> = Arc::new(Mutex::new(None));

        let failed = failure.clone();
        let executor = std::thread::Builder::new()
            .name("ets-ledger-executor".into())
            .spawn(move || {
                let mut batch: Vec<Job> = Vec::new();
                while let Ok(first) = jobs.recv() {
                    let commands = gather(first, &jobs, |job| job.envelopes.len(), batch_max, &mut batch);
                    if let Some(error) = failed.lock().expect("failure lock").clone() {
                        for job in batch.drain(..) {
                            let _ = job.reply.send(job.envelopes.iter().map(|_| Err(SubmitError::Store(error.clone()))).collect());
                        }
                        continue;
                    }
                    let mut envelopes = Vec::with_capacity(commands);
                    let mut groups = Vec::with_capacity(batch.len());
                    for job in batch.drain(..) {
                        groups.push((job.reply, job.envelopes.len()));
                        envelopes.extend(job.envelopes);
                    }
                    let (results, prepared) = ledger.prepare(clock(), &envelopes);
                    let mut results = results.into_iter();
                    let replies = groups.into_iter().map(|(reply, n)| (reply, results.by_ref().take(n).collect())).collect();
                    if let Err(mpsc::SendError(sealed)) = to_storage.send(Sealed { replies, prepared }) {
                        for (reply, results) in sealed.replies {
                            let _ = reply.send(results.iter().map(|_| Err(stopped())).collect());
                        }
                    }
                }
                ledger
            })
            .expect("spawn ledger executor");

        let failed = failure.clone();
        let storage = std::thread::Builder::new()
            .name("ets-ledger-storage".into())
            .spawn(move || {
                let mut next = sealed.recv().ok();
                while let Some(Sealed { replies, mut prepared }) = next.take() {
                    let earlier = failed.lock().expect("failure lock").clone();
                    let outcome = match (earlier, &prepared) {
                        (Some(error), _) => Err(error),
                        (None, None) => Ok(()),
                        (None, Some(batch)) => batch.commit(backend.as_mut()),
                    };
                    match outcome {
                        Ok(()) => {
                            for (reply, results) in replies {
                                let _ = reply.send(results.into_iter().map(|r| r.map_err(SubmitError::Rejected)).collect());
                            }
                            if let Some(batch) = prepared.as_mut() {
                                history.push(batch.take_trailing());
                            }
                        }
                        Err(error) => {
                            failed.lock().expect("failure lock").get_or_insert_with(|| error.clone());
                            for (reply, results) in replies {
                                let _ = reply.send(results.iter().map(|_| Err(SubmitError::Store(error.clone()))).collect());
                            }
                        }
                    }
                    // History rows go out in large batches, or whenever the writer is idle.
                    next = match sealed.try_recv() {
                        Ok(batch) => Some(batch),
                        // Idle for a moment: write the trailing tables now. (Flushing at every
                        // momentary gap would undo their batching.)
                        Err(mpsc::TryRecvError::Empty) => match sealed.recv_timeout(IDLE_FLUSH_AFTER) {
                            Ok(batch) => Some(batch),
                            Err(mpsc::RecvTimeoutError::Timeout) => {
                                let _ = history.flush(backend.as_mut());
                                sealed.recv().ok()
                            }
                            Err(mpsc::RecvTimeoutError::Disconnected) => None,
                        },
                        Err(mpsc::TryRecvError::Disconnected) => None,
                    };
                    if history.is_full() {
                        let _ = history.flush(backend.as_mut());
                    }
                }
                let _ = history.flush(backend.as_mut());
                backend
            })
            .expect("spawn ledger storage");
        LedgerService { sender, executor, storage, failure }
    }

    pub fn submit(&self, envelope: Envelope) -> Submission {
        self.submit_all(vec![envelope])
    }

    /// Submits a group of commands; they are executed in order, and answered together once
    /// durable. One reply channel per group instead of per command.
    pub fn submit_all(&self, envelopes: Vec<Envelope>) -> Submission {
        let n = envelopes.len();
        let (reply, answer) = mpsc::channel();
        if let Err(mpsc::SendError(job)) = self.sender.send(Job { envelopes, reply }) {
            let _ = job.reply.send((0..n).map(|_| Err(stopped())).collect());
        }
        Submission(answer, n)
    }

    /// Stops accepting commands, finishes what is queued and hands the ledger back.
    pub fn stop(self) -> Ledger {
        drop(self.sender);
        let ledger = self.executor.join().expect("ledger executor panicked");
        let backend = self.storage.join().expect("ledger storage thread panicked");
        let failure = self.failure.lock().expect("failure lock").clone();
        ledger.join(backend, failure)
    }
}
