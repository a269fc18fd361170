//! The gateway's audit trail: administrative actions are appended to the store's
//! hash-chained audit log through one bounded queue and one writer task (so concurrent
//! admin calls never contend on the chain head), then forwarded (JSON lines file, syslog).
//!
//! Guarantees, decided here and documented in the README:
//! - Authenticated admin calls are refused with 503 `audit_unavailable` *before* they act
//!   when the queue is full ([`AuditTrail::has_room`], checked by the admin middleware),
//!   so nothing is done unaudited. A call that was let in waits for room and for its
//!   record to be stored ([`AuditTrail::append`]): nothing accepted is lost.
//! - Unauthenticated attempts on the admin API are audited best effort
//!   ([`AuditTrail::try_append`]): a full queue skips them, counted in
//!   `portcullis_queue_dropped_total{queue="audit"}` and logged, so a flood of bad keys
//!   cannot lock operators out.
//! - A record the store refuses after retries is logged as an ALERT and counted the same way.
//! - Shutdown drains the queue: every accepted record is stored and forwarded.
//! - Forwarding happens after the record is stored, with its chain hashes, each
//!   destination on its own task behind a bounded queue: a failing or slow destination is
//!   logged (and skips records when its queue is full) and never holds the store writer.

mod forward;
pub mod syslog;
#[cfg(test)]
mod tests;

pub use forward::{ForwardError, Forwarder};

use portcullis_config::AuditConfig;
use portcullis_store::{AuditRecord, NewAuditEntry, Store};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::JoinHandle;

/// Store attempts per record before it is reported lost.
const ATTEMPTS: u32 = 3;

/// One queued record and, when the caller waits, where to say it was stored.
struct Pending {
    entry: NewAuditEntry,
    done: Option<oneshot::Sender<bool>>,
}

/// Handle of the audit queue and its writer task.
pub struct AuditTrail {
    sender: mpsc::Sender<Pending>,
    dropped: Arc<AtomicU64>,
    close: Arc<Notify>,
    task: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl AuditTrail {
    /// Opens the forwarding destinations and starts the writer. Fails when a destination
    /// cannot be opened (an unwritable file), so a misconfiguration is found at start.
    pub async fn start(config: &AuditConfig, store: Store) -> Result<AuditTrail, ForwardError> {
        let mut forwarders = Vec::with_capacity(config.forward.len());
        for destination in &config.forward {
            forwarders.push(Forwarder::open(destination).await?);
        }
        Ok(AuditTrail::with_forwarders(
            config.queue_capacity.max(1),
            store,
            forwarders,
        ))
    }

    /// A trail with explicit capacity and destinations (tests).
    pub fn with_forwarders(
        capacity: usize,
        store: Store,
        forwarders: Vec<Forwarder>,
    ) -> AuditTrail {
        let (sender, receiver) = mpsc::channel(capacity);
        let close = Arc::new(Notify::new());
        let dropped = Arc::new(AtomicU64::new(0));
        let writer = Writer {
            store,
            forwarders: forwarders.into_iter().map(Destination::start).collect(),
            dropped: dropped.clone(),
        };
        let task = tokio::spawn(writer.run(receiver, close.clone()));
        AuditTrail {
            sender,
            dropped,
            close,
            task: std::sync::Mutex::new(Some(task)),
        }
    }

    /// Whether a record can be queued right now (admin calls are refused when not).
    pub fn has_room(&self) -> bool {
        self.sender.capacity() > 0
    }

    /// Queues `entry`, waiting for room, then waits until it is stored. Returns false
    /// when it could not be stored (logged and counted by the writer) or the trail is
    /// shut down.
    pub async fn append(&self, entry: NewAuditEntry) -> bool {
        let (done, stored) = oneshot::channel();
        let pending = Pending {
            entry,
            done: Some(done),
        };
        if self.sender.send(pending).await.is_err() {
            self.lost("audit trail closed");
            return false;
        }
        stored.await.unwrap_or(false)
    }

    /// Queues `entry` without waiting; when the queue is full it is skipped, counted and
    /// logged. Returns whether it was queued.
    pub fn try_append(&self, entry: NewAuditEntry) -> bool {
        let pending = Pending { entry, done: None };
        match self.sender.try_send(pending) {
            Ok(()) => true,
            Err(_) => {
                self.lost("audit queue full");
                false
            }
        }
    }

    fn lost(&self, why: &str) {
        let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::error!(dropped_total = n, "ALERT: {why}; audit record not written");
    }

    /// Records waiting in the queue.
    pub fn depth(&self) -> usize {
        self.sender.max_capacity() - self.sender.capacity()
    }

    /// Records skipped (queue full) or lost (store refused them after retries).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Stores and forwards everything queued so far, then stops the writer.
    pub async fn shutdown(&self) {
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(task) = task {
            self.close.notify_one();
            let _ = task.await;
        }
    }
}

/// Records waiting for one forwarding destination, at most; beyond, records are skipped
/// for that destination (logged) so a slow collector never holds the store writer.
const FORWARD_QUEUE: usize = 4096;
/// Longest wait at shutdown for a destination to take what is queued for it.
const FORWARD_GRACE: Duration = Duration::from_secs(5);

/// One destination on its own task behind a bounded queue.
struct Destination {
    sender: mpsc::Sender<AuditRecord>,
    task: JoinHandle<()>,
    skipped: u64,
}

impl Destination {
    fn start(mut forwarder: Forwarder) -> Destination {
        let (sender, mut receiver) = mpsc::channel::<AuditRecord>(FORWARD_QUEUE);
        let task = tokio::spawn(async move {
            while let Some(record) = receiver.recv().await {
                forwarder.send(&record).await;
            }
            forwarder.flush().await;
        });
        Destination {
            sender,
            task,
            skipped: 0,
        }
    }

    fn push(&mut self, record: &AuditRecord) {
        if self.sender.try_send(record.clone()).is_err() {
            self.skipped += 1;
            if self.skipped % 1000 == 1 {
                tracing::error!(skipped_total = self.skipped, "audit forwarding behind: records skipped for a destination (they are in the store)");
            }
        }
    }

    async fn finish(self) {
        let Destination {
            sender, mut task, ..
        } = self;
        drop(sender);
        if tokio::time::timeout(FORWARD_GRACE, &mut task)
            .await
            .is_err()
        {
            task.abort();
            tracing::error!("audit forwarding still pending at shutdown was abandoned (the records are in the store)");
        }
    }
}

/// The writer task's state.
struct Writer {
    store: Store,
    forwarders: Vec<Destination>,
    dropped: Arc<AtomicU64>,
}

impl Writer {
    async fn run(mut self, mut receiver: mpsc::Receiver<Pending>, close: Arc<Notify>) {
        loop {
            tokio::select! {
                biased;
                pending = receiver.recv() => match pending {
                    Some(p) => self.write(p).await,
                    None => break,
                },
                _ = close.notified() => {
                    receiver.close();
                    while let Some(p) = receiver.recv().await {
                        self.write(p).await;
                    }
                    break;
                }
            }
        }
        for destination in self.forwarders.drain(..) {
            destination.finish().await;
        }
    }

    async fn write(&mut self, p: Pending) {
        let stored = self.store_with_retries(&p.entry).await;
        if let Some(done) = p.done {
            let _ = done.send(stored.is_some());
        }
        if let Some(record) = stored {
            for destination in &mut self.forwarders {
                destination.push(&record);
            }
        }
    }

    async fn store_with_retries(&self, entry: &NewAuditEntry) -> Option<AuditRecord> {
        for attempt in 1..=ATTEMPTS {
            match self.store.append_audit_record(entry).await {
                Ok(record) => return Some(record),
                Err(e) if attempt < ATTEMPTS => {
                    tracing::warn!(attempt, error = %e, action = %entry.action, "audit append failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                }
                Err(e) => {
                    let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                    tracing::error!(error = %e, action = %entry.action, actor = %entry.actor, dropped_total = n, "ALERT: cannot write the audit log; record lost");
                }
            }
        }
        None
    }
}
