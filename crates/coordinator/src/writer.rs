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

    /// Appends `records` as one *transactional* batch of producer `producer_id`/`producer_epoch`
    /// (Kafka's pending transactional offset commits); completes once durable. The transaction
    /// is resolved later by a COMMIT/ABORT control marker in the same partition.
    fn append_transactional(
        &self,
        partition: i32,
        producer_id: i64,
        producer_epoch: i16,
        records: Vec<Record>,
    ) -> AppendFuture<'_>;

    /// Every record and transaction marker of `partition`, oldest first (start-up replay that
    /// resolves pending transactional records).
    fn read_log(&self, partition: i32) -> Result<Vec<LogEntry>, WriteError>;

    /// Every data record of `partition` with its offset, oldest first (a replay that needs to
    /// know where each record is, to prune later). Without offsets (the default) each is -1.
    fn read_records(&self, partition: i32) -> Result<Vec<(i64, Record)>, WriteError> {
        Ok(self
            .read_all(partition)?
            .into_iter()
            .map(|r| (-1, r))
            .collect())
    }

    /// Drops the records of `partition` below `offset`, which the coordinator no longer needs
    /// (the share coordinator's records older than every share partition's last snapshot). By
    /// default nothing is dropped.
    fn prune_before(&self, _partition: i32, _offset: i64) -> Result<(), WriteError> {
        Ok(())
    }
}

/// One entry of a `__consumer_offsets` partition as replayed at start-up.
#[derive(Debug, Clone)]
pub enum LogEntry {
    /// A data record; `producer_id` is set when it belongs to a transactional batch.
    Record {
        /// Its offset in the partition (-1 where unknown).
        offset: i64,
        /// The record.
        record: Record,
        /// The producer of its transactional batch, if any.
        producer_id: Option<i64>,
    },
    /// A COMMIT (`commit`) or ABORT control marker of `producer_id`.
    Marker {
        /// The producer whose transaction ends.
        producer_id: i64,
        /// COMMIT or ABORT.
        commit: bool,
    },
}

/// A [`PartitionWriter`] in memory, for tests: records are "durable" at once.
#[derive(Debug, Default)]
pub struct InMemoryWriter {
    partitions: Mutex<std::collections::BTreeMap<i32, Vec<LogEntry>>>,
    /// When set, appends fail (fault injection).
    fail: std::sync::atomic::AtomicBool,
    /// Each partition's first kept offset (`prune_before`).
    starts: Mutex<std::collections::BTreeMap<i32, i64>>,
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

    /// All data records of a partition (transactional or not).
    pub fn records(&self, partition: i32) -> Vec<Record> {
        self.entries(partition)
            .into_iter()
            .filter_map(|e| match e {
                LogEntry::Record { record, .. } => Some(record),
                LogEntry::Marker { .. } => None,
            })
            .collect()
    }

    /// All records and markers of a partition.
    pub fn entries(&self, partition: i32) -> Vec<LogEntry> {
        self.partitions
            .lock()
            .get(&partition)
            .cloned()
            .unwrap_or_default()
    }

    /// The first offset of `partition` still kept (0 unless pruned).
    pub fn start_offset(&self, partition: i32) -> i64 {
        self.starts.lock().get(&partition).copied().unwrap_or(0)
    }

    /// Appends a COMMIT/ABORT marker (what the broker's marker writer does to the log).
    pub fn write_marker(&self, partition: i32, producer_id: i64, commit: bool) {
        self.partitions
            .lock()
            .entry(partition)
            .or_default()
            .push(LogEntry::Marker {
                producer_id,
                commit,
            });
    }

    fn push(
        &self,
        partition: i32,
        producer_id: Option<i64>,
        records: Vec<Record>,
    ) -> Result<i64, WriteError> {
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(WriteError::NotAvailable(partition));
        }
        let mut parts = self.partitions.lock();
        let log = parts.entry(partition).or_default();
        let base = log.len() as i64;
        log.extend(
            records
                .into_iter()
                .enumerate()
                .map(|(i, record)| LogEntry::Record {
                    offset: base + i as i64,
                    record,
                    producer_id,
                }),
        );
        Ok(log.len() as i64 - 1)
    }
}

impl PartitionWriter for InMemoryWriter {
    fn append(&self, partition: i32, records: Vec<Record>) -> AppendFuture<'_> {
        Box::pin(async move { self.push(partition, None, records) })
    }

    fn read_all(&self, partition: i32) -> Result<Vec<Record>, WriteError> {
        Ok(self.records(partition))
    }

    fn append_transactional(
        &self,
        partition: i32,
        producer_id: i64,
        _producer_epoch: i16,
        records: Vec<Record>,
    ) -> AppendFuture<'_> {
        Box::pin(async move { self.push(partition, Some(producer_id), records) })
    }

    fn read_log(&self, partition: i32) -> Result<Vec<LogEntry>, WriteError> {
        Ok(self.entries(partition))
    }

    fn read_records(&self, partition: i32) -> Result<Vec<(i64, Record)>, WriteError> {
        let start = self.start_offset(partition);
        Ok(self
            .entries(partition)
            .into_iter()
            .filter_map(|e| match e {
                LogEntry::Record { record, offset, .. } => Some((offset, record)),
                LogEntry::Marker { .. } => None,
            })
            .filter(|(offset, _)| *offset >= start)
            .collect())
    }

    fn prune_before(&self, partition: i32, offset: i64) -> Result<(), WriteError> {
        let mut starts = self.starts.lock();
        let start = starts.entry(partition).or_insert(0);
        *start = (*start).max(offset);
        Ok(())
    }
}

/// The outcome of one enqueued write.
pub(crate) type WriteResult = Result<(), Arc<WriteError>>;

/// A write queued on an [`Appender`]: await it with no lock held.
pub(crate) type PendingWrite = oneshot::Receiver<WriteResult>;

struct Request {
    records: Vec<Record>,
    /// A transactional batch of this producer (id, epoch): appended on its own.
    txn: Option<(i64, i16)>,
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
                // Runs of plain requests share one append; a transactional one is its own batch.
                let mut batch = batch.into_iter().peekable();
                while let Some(first) = batch.next() {
                    let txn = first.txn;
                    let mut records = first.records;
                    let mut waiters = vec![first.done];
                    if txn.is_none() {
                        while let Some(r) = batch.next_if(|r| r.txn.is_none()) {
                            records.extend(r.records);
                            waiters.push(r.done);
                        }
                    }
                    let result = match txn {
                        None => writer.append(partition, records).await,
                        Some((pid, epoch)) => {
                            writer
                                .append_transactional(partition, pid, epoch, records)
                                .await
                        }
                    };
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
            }
        });
        Appender { tx }
    }

    /// Queues `records` in order; the receiver completes once they are durable.
    pub(crate) fn enqueue(&self, records: Vec<Record>) -> PendingWrite {
        self.enqueue_with(records, None)
    }

    /// Queues `records` as one transactional batch of producer (id, epoch).
    pub(crate) fn enqueue_transactional(
        &self,
        records: Vec<Record>,
        producer: (i64, i16),
    ) -> PendingWrite {
        self.enqueue_with(records, Some(producer))
    }

    fn enqueue_with(&self, records: Vec<Record>, txn: Option<(i64, i16)>) -> PendingWrite {
        let (done, rx) = oneshot::channel();
        if let Err(mpsc::error::SendError(r)) = self.tx.send(Request { records, txn, done }) {
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
