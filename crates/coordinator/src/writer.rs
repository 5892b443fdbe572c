//! The seam to storage: [`PartitionWriter`], which the broker implements over the partition logs
//! of `__consumer_offsets`, and the per-partition appender task that orders and batches writes.
//!
//! Group state transitions run under a group's mutex and must reach the log in the order they
//! happened, but the mutex must not be held across I/O. So a transition only *enqueues* its
//! records on its partition's [`Appender`] (an unbounded channel: no I/O, no await) while still
//! holding the mutex; the appender task drains everything queued, appends it with one
//! `PartitionWriter::append` call (one fsync for many commits), and completes each request's
//! oneshot once durable. The request awaits that oneshot with no lock held.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};

use crate::error::WriteError;
use crate::record::Record;

/// A boxed future returned by [`PartitionWriter::append`].
pub type AppendFuture<'a> = Pin<Box<dyn Future<Output = Result<i64, WriteError>> + Send + 'a>>;

/// Appends to and reads the partitions of `__consumer_offsets`. Implemented by the broker; the
/// coordinator never sees a log directly.
pub trait PartitionWriter: Send + Sync + fmt::Debug + 'static {
    /// Appends `records` as one batch to `partition`; completes with the last offset once the
    /// records are durable. Calls for one partition are never concurrent.
    fn append(&self, partition: i32, records: Vec<Record>) -> AppendFuture<'_>;

    /// Every record of `partition`, oldest first (start-up replay).
    fn read_all(&self, partition: i32) -> Result<Vec<Record>, WriteError>;
}

/// A [`PartitionWriter`] in memory, for tests: records are "durable" at once.
#[derive(Debug, Default)]
pub struct InMemoryWriter {
    partitions: Mutex<std::collections::BTreeMap<i32, Vec<Record>>>,
    /// When set, appends fail (fault injection).
    fail: std::sync::atomic::AtomicBool,
}

impl InMemoryWriter {
    /// An empty writer.
    pub fn new() -> Arc<InMemoryWriter> {
        Arc::new(InMemoryWriter::default())
    }

    /// Makes later appends fail (`true`) or succeed again.
    pub fn set_failing(&self, fail: bool) {
        self.fail.store(fail, std::sync::atomic::Ordering::SeqCst);
    }

    /// All records of a partition.
    pub fn records(&self, partition: i32) -> Vec<Record> {
        self.partitions
            .lock()
            .get(&partition)
            .cloned()
            .unwrap_or_default()
    }
}

impl PartitionWriter for InMemoryWriter {
    fn append(&self, partition: i32, records: Vec<Record>) -> AppendFuture<'_> {
        Box::pin(async move {
            if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(WriteError::NotAvailable(partition));
            }
            let mut parts = self.partitions.lock();
            let log = parts.entry(partition).or_default();
            log.extend(records);
            Ok(log.len() as i64 - 1)
        })
    }

    fn read_all(&self, partition: i32) -> Result<Vec<Record>, WriteError> {
        Ok(self.records(partition))
    }
}

/// The outcome of one enqueued write.
pub(crate) type WriteResult = Result<(), Arc<WriteError>>;

/// A write queued on an [`Appender`]: await it with no lock held.
pub(crate) type PendingWrite = oneshot::Receiver<WriteResult>;

struct Request {
    records: Vec<Record>,
    done: oneshot::Sender<WriteResult>,
}

/// The single writer of one `__consumer_offsets` partition (a task). Thread-safe: `enqueue`
/// never blocks.
pub(crate) struct Appender {
    tx: mpsc::UnboundedSender<Request>,
}

impl fmt::Debug for Appender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Appender").finish_non_exhaustive()
    }
}

impl Appender {
    /// Starts the appender task of `partition` on the current runtime.
    pub(crate) fn spawn(writer: Arc<dyn PartitionWriter>, partition: i32) -> Appender {
        let (tx, mut rx) = mpsc::unbounded_channel::<Request>();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while let Ok(more) = rx.try_recv() {
                    batch.push(more);
                }
                let mut records = Vec::new();
                let mut waiters = Vec::with_capacity(batch.len());
                for r in batch {
                    records.extend(r.records);
                    waiters.push(r.done);
                }
                let result = writer.append(partition, records).await;
                let result: WriteResult = match result {
                    Ok(_) => Ok(()),
                    Err(e) => {
                        tracing::error!(partition, error = %e, "__consumer_offsets append failed");
                        Err(Arc::new(e))
                    }
                };
                for w in waiters {
                    let _ = w.send(result.clone());
                }
            }
        });
        Appender { tx }
    }

    /// Queues `records` in order; the receiver completes once they are durable.
    pub(crate) fn enqueue(&self, records: Vec<Record>) -> PendingWrite {
        let (done, rx) = oneshot::channel();
        if let Err(mpsc::error::SendError(r)) = self.tx.send(Request { records, done }) {
            let _ = r.done.send(Err(Arc::new(WriteError::Closed)));
        }
        rx
    }
}

/// Awaits a queued write.
pub(crate) async fn wait(pending: PendingWrite) -> Result<(), crate::GroupError> {
    match pending.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(crate::GroupError::Write((*e).clone())),
        Err(_) => Err(crate::GroupError::Write(WriteError::Closed)),
    }
}
