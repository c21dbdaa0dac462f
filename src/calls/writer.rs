//! The batched writer: what webhooks record (calls, steps, answers, queue joins and leaves,
//! call ends) goes through one task per instance, which applies everything waiting in one
//! transaction ("group commit"). Under a surge a batch carries dozens of webhooks' writes
//! for the cost of one, and a webhook never queues for a database connection of its own.
//!
//! A webhook waits for its batch only within its time budget ([`super::Calls`]); past that,
//! or while the database is failing, the caller is answered from memory and the writes stay
//! queued here (bounded: [`MAX_WAITING`]) and are retried until the database takes them.
//! One write the database refuses outright (never seen in practice: every write is an
//! idempotent insert or update) is logged and dropped, so it cannot hold up the others.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::ops::Metrics;
use crate::store::{Applied, CallWrite, Store, StoreError};

/// Writes held while the database is failing; beyond this the oldest are dropped (they are
/// statistics and call progress: a request for a call back is kept by the outbox instead).
pub const MAX_WAITING: usize = 100_000;
/// Webhooks' writes applied in one transaction at most.
const MAX_BATCH: usize = 512;
/// Waits between tries while the database is failing.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// What became of one webhook's writes ([`Store::apply_writes`]).
pub type Written = Result<Vec<Applied>, String>;

struct Job {
    writes: Vec<CallWrite>,
    done: Option<oneshot::Sender<Written>>,
}

/// The handle webhooks hold; the task ends once every handle is gone and the queue is empty.
#[derive(Debug)]
pub struct Writer {
    queue: mpsc::UnboundedSender<Job>,
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    /// Writes submitted and not yet applied (or dropped).
    waiting: AtomicUsize,
    /// False from a failed batch until the next one succeeds.
    healthy: AtomicBool,
    metrics: Arc<Metrics>,
}

impl Shared {
    fn set_waiting(&self, change: impl Fn(usize) -> usize) {
        let before = self
            .waiting
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |w| Some(change(w)))
            .unwrap_or_else(|w| w);
        self.metrics.call_writes_waiting(change(before));
    }
}

impl Writer {
    /// Starts the writer task over `store`.
    pub fn start(store: Arc<dyn Store>, metrics: Arc<Metrics>) -> Self {
        let (queue, jobs) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            waiting: AtomicUsize::new(0),
            healthy: AtomicBool::new(true),
            metrics,
        });
        tokio::spawn(run(store, jobs, shared.clone()));
        Self { queue, shared }
    }

    /// Queues `writes`; the receiver hears once they are applied. Never waits.
    pub fn submit(&self, writes: Vec<CallWrite>) -> oneshot::Receiver<Written> {
        let (done, heard) = oneshot::channel();
        let n = writes.len();
        if self.waiting() >= MAX_WAITING {
            tracing::error!(
                writes = n,
                "the database has been failing too long: call records dropped"
            );
            self.shared.metrics.call_writes_dropped(n);
            let _ = done.send(Err("too many writes waiting for the database".into()));
            return heard;
        }
        self.shared.set_waiting(|w| w + n);
        if self
            .queue
            .send(Job {
                writes,
                done: Some(done),
            })
            .is_err()
        {
            // Only after the task ended (the runtime is shutting down).
            self.shared.set_waiting(|w| w.saturating_sub(n));
        }
        heard
    }

    /// Writes submitted and not yet applied.
    pub fn waiting(&self) -> usize {
        self.shared.waiting.load(Ordering::Relaxed)
    }

    /// False while the database is refusing the writes (they wait here meanwhile).
    pub fn healthy(&self) -> bool {
        self.shared.healthy.load(Ordering::Relaxed)
    }

    /// Waits, up to `grace`, until everything submitted so far is applied (at shutdown);
    /// true when it was.
    pub async fn flush(&self, grace: Duration) -> bool {
        let (done, heard) = oneshot::channel();
        if self
            .queue
            .send(Job {
                writes: Vec::new(),
                done: Some(done),
            })
            .is_err()
        {
            return self.waiting() == 0;
        }
        matches!(tokio::time::timeout(grace, heard).await, Ok(Ok(Ok(_))))
    }
}

async fn run(store: Arc<dyn Store>, mut jobs: mpsc::UnboundedReceiver<Job>, shared: Arc<Shared>) {
    let mut held: Vec<Job> = Vec::new();
    let mut backoff = FIRST_BACKOFF;
    loop {
        if held.is_empty() {
            match jobs.recv().await {
                Some(job) => held.push(job),
                None => return,
            }
        }
        let mut count: usize = held.iter().map(|j| j.writes.len()).sum();
        while count < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => {
                    count += job.writes.len();
                    held.push(job);
                }
                Err(_) => break,
            }
        }
        match apply(store.as_ref(), &held).await {
            Ok(results) => {
                for (job, result) in held.drain(..).zip(results) {
                    finish(&shared, job, Ok(result));
                }
                shared.healthy.store(true, Ordering::Relaxed);
                backoff = FIRST_BACKOFF;
            }
            Err(e) => {
                // One at a time: a write the database refuses must not hold up the others.
                let mut kept = Vec::new();
                let mut any_applied = false;
                let mut refused = Vec::new();
                for job in held.drain(..) {
                    match store.apply_writes(&job.writes).await {
                        Ok(result) => {
                            any_applied = true;
                            finish(&shared, job, Ok(result));
                        }
                        Err(e) => refused.push((job, e)),
                    }
                }
                if any_applied {
                    // The database works: what it refused now it would refuse again.
                    for (job, e) in refused {
                        tracing::error!(error = %e, writes = job.writes.len(), "call records refused by the database; dropped");
                        shared.metrics.call_writes_dropped(job.writes.len());
                        finish(&shared, job, Err(e.to_string()));
                    }
                    shared.healthy.store(true, Ordering::Relaxed);
                    backoff = FIRST_BACKOFF;
                    continue;
                }
                if shared.healthy.swap(false, Ordering::Relaxed) {
                    tracing::error!(error = %e, "the database is not taking call records; holding them and trying again");
                }
                for (job, _) in refused {
                    // A webhook still waiting hears now; the writes stay for the next try.
                    let mut job = job;
                    if let Some(done) = job.done.take() {
                        let _ = done.send(Err(e.to_string()));
                    }
                    kept.push(job);
                }
                held = kept;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Applies every job's writes in one transaction; each job's share of the results.
async fn apply(store: &dyn Store, jobs: &[Job]) -> Result<Vec<Vec<Applied>>, StoreError> {
    let writes: Vec<CallWrite> = jobs.iter().flat_map(|j| j.writes.clone()).collect();
    let fresh = store.apply_writes(&writes).await?;
    let mut rest = fresh.into_iter();
    Ok(jobs
        .iter()
        .map(|j| rest.by_ref().take(j.writes.len()).collect())
        .collect())
}

fn finish(shared: &Shared, mut job: Job, result: Written) {
    let n = job.writes.len();
    shared.set_waiting(|w| w.saturating_sub(n));
    if let Some(done) = job.done.take() {
        let _ = done.send(result);
    }
}
