//! `Accumulator` (Kafka's `RecordAccumulator`): per-partition batches being filled and batches
//! sealed for the sender, and `ProducerShared`, the state the `Producer` handles and the sender
//! task share (accumulator, buffer and in-flight accounting, failures since the last flush).
//!
//! Concurrency: `Accumulator` is behind a mutex locked briefly by `send` and the sender, never
//! across `.await`; counters are atomics paired with `Notify`s for waiting.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::batch::ProducerBatch;
use crate::client::Client;
use crate::error::ClientError;
use crate::partitioner::StickyPartitioner;
use crate::producer_config::ProducerConfig;

/// Per-topic batching state.
#[derive(Debug)]
pub(crate) struct TopicBatches {
    pub(crate) name: Arc<str>,
    pub(crate) num_partitions: i32,
    pub(crate) sticky: StickyPartitioner,
    /// The open (not yet sealed) batch of each partition.
    pub(crate) open: Vec<Option<ProducerBatch>>,
}

/// Batches being filled and batches sealed but not yet dispatched.
#[derive(Debug, Default)]
pub(crate) struct Accumulator {
    pub(crate) topics: HashMap<String, TopicBatches>,
    pub(crate) ready: VecDeque<ProducerBatch>,
    pub(crate) flush_requested: bool,
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

    pub(crate) fn has_open(&self) -> bool {
        self.topics
            .values()
            .any(|t| t.open.iter().any(Option::is_some))
    }
}

/// Failures since the last `flush`.
#[derive(Debug, Default)]
pub(crate) struct FailureLog {
    pub(crate) failed: u64,
    pub(crate) first: Option<ClientError>,
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
    pub(crate) buffered: AtomicUsize,
    /// Signalled when `buffered` drops.
    pub(crate) space: Notify,
    /// Batches not yet completed (open, ready, or in flight).
    pub(crate) outstanding: AtomicUsize,
    /// Signalled when `outstanding` reaches zero.
    pub(crate) idle: Notify,
    pub(crate) failures: Mutex<FailureLog>,
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
