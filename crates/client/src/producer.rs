//! `Producer`: partitions records, accumulates them into per-partition batches, and hands sealed
//! batches to the sender task (`sender.rs`) that ships them to partition leaders.
//!
//! A batch is sealed when it is full (`batch_size`), when it is `linger` old, or on `flush`.
//! Backpressure: `send` waits while more than `buffer_memory` bytes are accumulated or in flight.
//! Ordering: batches of one partition leave in seal order, over one pipelined connection per
//! broker; only a retry (after NOT_LEADER_OR_FOLLOWER and the like) can reorder them, as with the
//! Java client without idempotence.
//!
//! Concurrency: `Accumulator` is behind a mutex locked briefly by `send` and the sender, never
//! across `.await`; counters are atomics paired with `Notify`s for waiting.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kafka_protocol::records::Compression;
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::batch::{DeliveryFuture, PendingRecord, ProducerBatch, BATCH_OVERHEAD};
use crate::client::Client;
use crate::error::ClientError;
use crate::partitioner::{partition_for_key, StickyPartitioner};

/// How many replicas must have the records before the broker answers (Kafka: acks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// All in-sync replicas (-1).
    All,
    /// The leader only (1).
    Leader,
    /// No answer at all (0): offsets are reported as -1 and errors are not seen.
    None,
}

impl Acks {
    /// The wire value.
    pub fn as_i16(self) -> i16 {
        match self {
            Acks::All => -1,
            Acks::Leader => 1,
            Acks::None => 0,
        }
    }
}

/// Producer settings (Kafka producer config names in the docs).
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// acks
    pub acks: Acks,
    /// linger.ms: how long a non-full batch waits for more records.
    pub linger: Duration,
    /// batch.size: target encoded size of one batch, in bytes.
    pub batch_size: usize,
    /// compression.type
    pub compression: Compression,
    /// max.in.flight.requests: Produce requests outstanding at once (across brokers).
    pub max_in_flight: usize,
    /// buffer.memory: bytes accumulated or in flight before `send` waits.
    pub buffer_memory: usize,
    /// The broker-side timeout sent in Produce (Kafka: request.timeout.ms).
    pub produce_timeout: Duration,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            acks: Acks::All,
            linger: Duration::from_millis(5),
            batch_size: 16 * 1024,
            compression: Compression::None,
            max_in_flight: 5,
            buffer_memory: 32 * 1024 * 1024,
            produce_timeout: Duration::from_secs(30),
        }
    }
}

/// Per-topic batching state.
#[derive(Debug)]
struct TopicBatches {
    name: Arc<str>,
    num_partitions: i32,
    sticky: StickyPartitioner,
    /// The open (not yet sealed) batch of each partition.
    open: Vec<Option<ProducerBatch>>,
}

/// Batches being filled and batches sealed but not yet dispatched.
#[derive(Debug, Default)]
pub(crate) struct Accumulator {
    topics: HashMap<String, TopicBatches>,
    pub(crate) ready: VecDeque<ProducerBatch>,
    flush_requested: bool,
}

impl Accumulator {
    /// Moves into `ready` every open batch that is due (older than `linger`, or all when flushing
    /// or closing) and returns when the next open batch becomes due.
    pub(crate) fn seal_due(
        &mut self,
        linger: Duration,
        closing: bool,
    ) -> Option<tokio::time::Instant> {
        let now = std::time::Instant::now();
        let all = self.flush_requested || closing;
        self.flush_requested = false;
        let mut next_due: Option<std::time::Instant> = None;
        for topic in self.topics.values_mut() {
            for slot in &mut topic.open {
                let Some(batch) = slot else { continue };
                let due = batch.created + linger;
                if all || due <= now {
                    if let Some(batch) = slot.take() {
                        self.ready.push_back(batch);
                    }
                } else {
                    next_due = Some(next_due.map_or(due, |d| d.min(due)));
                }
            }
        }
        next_due.map(tokio::time::Instant::from_std)
    }

    fn has_open(&self) -> bool {
        self.topics
            .values()
            .any(|t| t.open.iter().any(Option::is_some))
    }
}

/// Failures since the last `flush`.
#[derive(Debug, Default)]
struct FailureLog {
    failed: u64,
    first: Option<ClientError>,
}

/// State shared by `Producer` handles and the sender task.
#[derive(Debug)]
pub(crate) struct ProducerShared {
    pub(crate) client: Client,
    pub(crate) config: ProducerConfig,
    pub(crate) acc: Mutex<Accumulator>,
    /// Wakes the sender: a batch was sealed or opened, a flush was asked, or the producer closed.
    pub(crate) wake: Notify,
    /// Bytes in batches not yet completed: the sum of their `size()` (header included), reserved
    /// as records are appended and released in `complete`, so it returns to zero when idle.
    buffered: AtomicUsize,
    /// Signalled when `buffered` drops.
    space: Notify,
    /// Batches not yet completed (open, ready, or in flight).
    outstanding: AtomicUsize,
    /// Signalled when `outstanding` reaches zero.
    idle: Notify,
    failures: Mutex<FailureLog>,
    pub(crate) closing: AtomicBool,
}

impl ProducerShared {
    /// Completes a batch and releases its accounting.
    pub(crate) fn complete(&self, batch: ProducerBatch, outcome: Result<i64, ClientError>) {
        if let Err(e) = &outcome {
            let mut log = self.failures.lock();
            log.failed += batch.record_count() as u64;
            if log.first.is_none() {
                log.first = Some(e.clone());
            }
        }
        let size = batch.size();
        batch.complete(outcome);
        let before = self.buffered.fetch_sub(size, Ordering::AcqRel);
        // Releasing more than was reserved would wrap the counter and block `send` for good.
        debug_assert!(
            before >= size,
            "buffer accounting underflow: {before} < {size}"
        );
        self.space.notify_waiters();
        if self.outstanding.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.idle.notify_waiters();
            // A closing sender exits once nothing is outstanding.
            self.wake.notify_one();
        }
    }

    pub(crate) fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::Acquire)
    }
}

/// Closes the producer when the last `Producer` clone is dropped: the sender ships what is left
/// and stops.
#[derive(Debug)]
struct Handle {
    shared: Arc<ProducerShared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.closing.store(true, Ordering::Release);
        self.shared.wake.notify_one();
    }
}

/// An asynchronous, batching producer. Cheap to clone; clones share batches and the sender task.
#[derive(Debug, Clone)]
pub struct Producer {
    handle: Arc<Handle>,
}

impl Producer {
    /// Creates a producer on `client` and starts its sender task (needs a tokio runtime).
    pub fn new(client: Client, config: ProducerConfig) -> Producer {
        let shared = Arc::new(ProducerShared {
            client,
            config,
            acc: Mutex::new(Accumulator::default()),
            wake: Notify::new(),
            buffered: AtomicUsize::new(0),
            space: Notify::new(),
            outstanding: AtomicUsize::new(0),
            idle: Notify::new(),
            failures: Mutex::new(FailureLog::default()),
            closing: AtomicBool::new(false),
        });
        tokio::spawn(crate::sender::run(shared.clone()));
        Producer {
            handle: Arc::new(Handle { shared }),
        }
    }

    /// The producer's settings.
    pub fn config(&self) -> &ProducerConfig {
        &self.handle.shared.config
    }

    /// Queues a record and returns a future for its offset. Returns once the record is in a batch;
    /// waits first if `buffer_memory` is exhausted. The topic must exist (or be auto-created by the
    /// broker). Keyed records are partitioned by murmur2 like the Java client.
    pub async fn send(
        &self,
        topic: &str,
        key: Option<Bytes>,
        value: Option<Bytes>,
        headers: Vec<(String, Option<Bytes>)>,
    ) -> Result<DeliveryFuture, ClientError> {
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        self.send_record(
            topic,
            None,
            PendingRecord {
                key,
                value,
                headers,
                timestamp,
            },
        )
        .await
    }

    /// Like [`Producer::send`] to an explicit partition.
    pub async fn send_to(
        &self,
        topic: &str,
        partition: i32,
        key: Option<Bytes>,
        value: Option<Bytes>,
        headers: Vec<(String, Option<Bytes>)>,
    ) -> Result<DeliveryFuture, ClientError> {
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        self.send_record(
            topic,
            Some(partition),
            PendingRecord {
                key,
                value,
                headers,
                timestamp,
            },
        )
        .await
    }

    async fn send_record(
        &self,
        topic: &str,
        partition: Option<i32>,
        record: PendingRecord,
    ) -> Result<DeliveryFuture, ClientError> {
        let shared = &self.handle.shared;
        self.wait_for_space().await;
        let record_size = record.estimated_size();

        // One lock per record on the hot path; the topic is looked up only the first time.
        let mut record = record;
        let mut learned = false;
        let (future, wake) = loop {
            match self.try_append(topic, partition, record, record_size)? {
                Ok(done) => break done,
                Err(returned) if !learned => {
                    record = returned;
                    self.learn_topic(topic).await?;
                    learned = true;
                }
                Err(_) => return Err(ClientError::UnknownTopic(topic.to_owned())),
            }
        };
        if wake {
            shared.wake.notify_one();
        }
        Ok(future)
    }

    /// Fetches a topic's partition count (asking the broker to auto-create it if configured to).
    async fn learn_topic(&self, topic: &str) -> Result<(), ClientError> {
        let shared = &self.handle.shared;
        let meta = shared.client.topic_metadata(topic, true).await?;
        let num_partitions = i32::try_from(meta.partitions.len()).unwrap_or(i32::MAX);
        if num_partitions == 0 {
            return Err(ClientError::UnknownTopic(topic.to_owned()));
        }
        shared
            .acc
            .lock()
            .topics
            .entry(topic.to_owned())
            .or_insert_with(|| TopicBatches {
                name: Arc::from(topic),
                num_partitions,
                sticky: StickyPartitioner::default(),
                open: (0..num_partitions).map(|_| None).collect(),
            });
        Ok(())
    }

    /// Appends under the accumulator lock. `Ok(Err(record))` hands the record back when the topic
    /// is not known yet; `Ok(Ok((future, wake)))` says whether the sender must be woken.
    #[allow(clippy::type_complexity)]
    fn try_append(
        &self,
        topic: &str,
        partition: Option<i32>,
        record: PendingRecord,
        record_size: usize,
    ) -> Result<Result<(DeliveryFuture, bool), PendingRecord>, ClientError> {
        let shared = &self.handle.shared;
        let config = &shared.config;
        let mut acc = shared.acc.lock();
        let acc = &mut *acc;
        let Some(t) = acc.topics.get_mut(topic) else {
            return Ok(Err(record));
        };
        let p = match (partition, &record.key) {
            (Some(p), _) => p,
            (None, Some(key)) => partition_for_key(key, t.num_partitions),
            (None, None) => t
                .sticky
                .partition(t.num_partitions, record_size, config.batch_size),
        };
        let Some(slot) = usize::try_from(p).ok().and_then(|i| t.open.get_mut(i)) else {
            return Err(ClientError::UnknownPartition {
                topic: topic.to_owned(),
                partition: p,
            });
        };
        let mut wake = false;
        // What this append adds to `buffered`: the record, plus the batch header if it opens a
        // batch, so that `complete` releases exactly `batch.size()`.
        let mut reserved = record_size;
        if slot
            .as_ref()
            .is_some_and(|b| !b.has_room(record_size, config.batch_size))
        {
            if let Some(full) = slot.take() {
                acc.ready.push_back(full);
                wake = true;
            }
        }
        let batch = match slot {
            Some(batch) => batch,
            None => {
                shared.outstanding.fetch_add(1, Ordering::AcqRel);
                reserved += BATCH_OVERHEAD;
                // The sender computes linger deadlines from open batches: tell it about this one.
                wake = true;
                // Size the record list for a full batch of records like this one (bounded), so
                // a big batch does not grow by repeated reallocation on the send path.
                let expected = (config.batch_size / record_size.max(1)).clamp(1, 4096);
                slot.insert(ProducerBatch::with_capacity(t.name.clone(), p, expected))
            }
        };
        let future = batch.append(record, record_size);
        if batch.size() >= config.batch_size {
            if let Some(full) = slot.take() {
                acc.ready.push_back(full);
                wake = true;
            }
        }
        shared.buffered.fetch_add(reserved, Ordering::AcqRel);
        Ok(Ok((future, wake)))
    }

    async fn wait_for_space(&self) {
        let shared = &self.handle.shared;
        // Fast path without registering a waiter (which takes the Notify's internal lock).
        if shared.buffered.load(Ordering::Acquire) < shared.config.buffer_memory {
            return;
        }
        loop {
            let notified = shared.space.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if shared.buffered.load(Ordering::Acquire) < shared.config.buffer_memory {
                return;
            }
            notified.await;
        }
    }

    /// Sends everything accumulated and waits until every record sent so far is acknowledged or
    /// failed. Returns `SendFailed` (count and first error) if any record failed since the previous
    /// flush.
    pub async fn flush(&self) -> Result<(), ClientError> {
        let shared = &self.handle.shared;
        {
            let mut acc = shared.acc.lock();
            if acc.has_open() {
                acc.flush_requested = true;
            }
        }
        shared.wake.notify_one();
        loop {
            let notified = shared.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if shared.outstanding() == 0 {
                break;
            }
            notified.await;
        }
        let mut log = shared.failures.lock();
        let failed = std::mem::take(&mut log.failed);
        match log.first.take() {
            Some(first) if failed > 0 => Err(ClientError::SendFailed {
                failed,
                first: Box::new(first),
            }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(topic: &str, p: i32) -> ProducerBatch {
        ProducerBatch::new(Arc::from(topic), p)
    }

    #[test]
    fn seal_due_respects_linger_and_flush() {
        let mut acc = Accumulator::default();
        acc.topics.insert(
            "t".to_owned(),
            TopicBatches {
                name: Arc::from("t"),
                num_partitions: 2,
                sticky: StickyPartitioner::default(),
                open: vec![Some(batch("t", 0)), None],
            },
        );
        let next = acc.seal_due(Duration::from_secs(60), false);
        assert!(acc.ready.is_empty(), "not lingered long enough");
        assert!(next.is_some());
        assert!(acc.has_open());
        assert!(acc.seal_due(Duration::ZERO, false).is_none());
        assert_eq!(acc.ready.len(), 1, "linger 0 seals at once");
        acc.topics.get_mut("t").unwrap().open[1] = Some(batch("t", 1));
        acc.flush_requested = true;
        acc.seal_due(Duration::from_secs(60), false);
        assert_eq!(acc.ready.len(), 2, "flush seals regardless of linger");
        assert!(!acc.flush_requested);
        assert!(!acc.has_open());
    }
}
