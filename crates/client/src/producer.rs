//! `Producer`: partitions records, accumulates them into per-partition batches, and hands sealed
//! batches to the sender task (`sender.rs`) that ships them to partition leaders.
//!
//! A batch is sealed when it is full (`batch_size`), when it is `linger` old, or on `flush`.
//! Backpressure: `send` waits while more than `buffer_memory` bytes are accumulated or in flight.
//! Ordering: batches of one partition leave in seal order, over one pipelined connection per
//! broker; only a retry (after NOT_LEADER_OR_FOLLOWER and the like) can reorder them, as with the
//! Java client without idempotence.
//! The batches and their accounting are in `accumulator.rs`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::accumulator::{Accumulator, FailureLog, ProducerShared, TopicBatches};
use crate::batch::{DeliveryFuture, PendingRecord, ProducerBatch, BATCH_OVERHEAD};
use crate::client::Client;
use crate::error::ClientError;
use crate::partitioner::{partition_for_key, StickyPartitioner};
pub use crate::producer_config::{Acks, ProducerConfig};

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
