//! `ProducerStateManager`: per partition, what each idempotent producer last wrote, so a retried
//! batch is answered with its original offsets instead of being written twice, and which
//! transactions are open here (Kafka's class of the same name).
//!
//! For every producer id it keeps the epoch and the metadata of the last
//! [`NUM_BATCHES_TO_RETAIN`] batches (first and last sequence, first and last offset, timestamp):
//! a client has at most five requests in flight per partition, so any retry it can send is among
//! them. An append of a batch with `producerId ≥ 0` is checked in Kafka's order:
//!
//! 1. same epoch and the same sequence range as a retained batch → a duplicate: nothing is
//!    appended, the caller answers with the retained offsets;
//! 2. an epoch older than the producer's → `INVALID_PRODUCER_EPOCH`;
//! 3. unknown producer with a first sequence other than 0 → `UNKNOWN_PRODUCER_ID` (an expired
//!    producer; the client resets its sequence), first sequence 0 starts a fresh entry;
//! 4. a newer epoch must start at sequence 0, the same epoch must continue at last sequence + 1
//!    (wrapping from `i32::MAX` to 0) → otherwise `OUT_OF_ORDER_SEQUENCE_NUMBER`.
//!
//! Transactions: the first transactional batch of a producer opens a transaction at its first
//! offset (`ongoing`); a control batch (COMMIT/ABORT marker, written by the transaction
//! coordinator, sequence -1) closes it and may carry a newer epoch (fencing: the entry's batches
//! are cleared, the producer restarts at sequence 0). The smallest open first offset is the
//! partition's first unstable offset, which bounds the last stable offset (LSO). A closed
//! transaction is reported as a [`CompletedTxn`] so the log can index aborted ones.
//!
//! Time: an entry's timestamp is the max timestamp of its last batch (after LogAppendTime
//! stamping), as in Kafka, so state rebuilt from the log equals state built live. Producers idle for
//! `producer.id.expiration.ms` by that clock are removed ([`ProducerStateManager::remove_expired`]).
//!
//! Thread-safety: none inside. `PartitionLog` keeps it behind a mutex and checks, appends and
//! applies under its appender lock, so two retries of one batch cannot both be appended. The
//! check ([`ProducerStateManager::check_append`]) does not mutate; [`ProducerStateManager::apply`]
//! commits its result only once the bytes are written.

use std::collections::{BTreeMap, VecDeque};

use crate::producer_batch::{increment_sequence, BatchMetadata, ControlType, ProducerBatch};

/// Batches remembered per producer (Kafka's `ProducerStateEntry.NUM_BATCHES_TO_RETAIN`).
pub const NUM_BATCHES_TO_RETAIN: usize = 5;

/// What is known about one producer id in one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerStateEntry {
    /// Current epoch.
    pub epoch: i16,
    /// The last batches, oldest first, at most [`NUM_BATCHES_TO_RETAIN`].
    pub batches: VecDeque<BatchMetadata>,
    /// Timestamp of the last batch (drives expiration).
    pub last_timestamp: i64,
    /// Coordinator epoch of the last transaction marker (-1: none yet): a marker from an older
    /// coordinator epoch is a zombie coordinator's (TRANSACTION_COORDINATOR_FENCED).
    pub coordinator_epoch: i32,
}

impl ProducerStateEntry {
    /// Sequence of the last record written, if any.
    pub fn last_seq(&self) -> Option<i32> {
        self.batches.back().map(|b| b.last_seq)
    }

    fn push(&mut self, b: BatchMetadata) {
        if self.batches.len() >= NUM_BATCHES_TO_RETAIN {
            self.batches.pop_front();
        }
        self.last_timestamp = b.timestamp;
        self.batches.push_back(b);
    }

    fn find_duplicate(&self, epoch: i16, first_seq: i32, last_seq: i32) -> Option<BatchMetadata> {
        if epoch != self.epoch {
            return None;
        }
        self.batches
            .iter()
            .find(|b| b.first_seq == first_seq && b.last_seq == last_seq)
            .copied()
    }
}

/// A transaction closed by a marker in this partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompletedTxn {
    /// Producer id.
    pub producer_id: i64,
    /// First offset of the transaction's data here.
    pub first_offset: i64,
    /// Offset of the marker.
    pub last_offset: i64,
    /// True for ABORT.
    pub aborted: bool,
}

/// Why an idempotent batch was refused; the broker maps each to a Kafka error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProducerStateError {
    /// A gap or an unexpected sequence: OUT_OF_ORDER_SEQUENCE_NUMBER.
    #[error("out of order sequence for producer {producer_id} epoch {epoch}: got {found}, expected {expected}")]
    OutOfOrderSequence {
        /// Producer id.
        producer_id: i64,
        /// Epoch of the batch.
        epoch: i16,
        /// First sequence of the batch.
        found: i32,
        /// The sequence the broker expected.
        expected: i32,
    },
    /// The batch's epoch is older than the producer's: INVALID_PRODUCER_EPOCH.
    #[error("producer {producer_id} epoch {epoch} is older than the current epoch {current}")]
    InvalidProducerEpoch {
        /// Producer id.
        producer_id: i64,
        /// Epoch of the batch.
        epoch: i16,
        /// The producer's epoch here.
        current: i16,
    },
    /// No state for the producer and a sequence other than 0: UNKNOWN_PRODUCER_ID.
    #[error("unknown producer {producer_id} (expired?) sending sequence {sequence}")]
    UnknownProducerId {
        /// Producer id.
        producer_id: i64,
        /// First sequence of the batch.
        sequence: i32,
    },
    /// A transaction marker from a coordinator epoch older than the last marker's:
    /// TRANSACTION_COORDINATOR_FENCED.
    #[error("producer {producer_id}: marker from coordinator epoch {coordinator_epoch}, older than {current}")]
    TransactionCoordinatorFenced {
        /// Producer id.
        producer_id: i64,
        /// The marker's coordinator epoch.
        coordinator_epoch: i32,
        /// The coordinator epoch of the producer's last marker here.
        current: i32,
    },
    /// A transactional producer's first batch here without a verification the transaction
    /// coordinator confirmed (KIP-890 part 1): INVALID_TXN_STATE.
    #[error("producer {producer_id} has no verified open transaction in this partition")]
    UnverifiedTransaction {
        /// Producer id.
        producer_id: i64,
    },
}

/// The result of [`ProducerStateManager::check_append`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AppendCheck {
    /// Append the batches, then [`ProducerStateManager::apply`] these updated entries.
    Append(PendingProducerState),
    /// A retry of a batch already in the log: append nothing, answer with these offsets.
    Duplicate(BatchMetadata),
}

/// Entries as they will be once an append is written (only the producers it touches).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PendingProducerState {
    updated: BTreeMap<i64, ProducerStateEntry>,
    /// Transactions opened by this append: producer id → first offset.
    started: BTreeMap<i64, i64>,
    /// Transactions closed by markers in this append.
    pub(crate) completed: Vec<CompletedTxn>,
    /// Producers with a transactional batch (data or marker) in this append: their pending
    /// verification (KIP-890) is spent once it is written.
    pub(crate) transactional: Vec<i64>,
}

impl PendingProducerState {
    pub(crate) fn is_empty(&self) -> bool {
        self.updated.is_empty() && self.started.is_empty() && self.completed.is_empty()
    }

    /// Producers whose transaction starts in this partition with this append.
    pub(crate) fn started_transactions(&self) -> impl Iterator<Item = i64> + '_ {
        self.started.keys().copied()
    }
}

/// Producer state of one partition. See the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerStateManager {
    producers: BTreeMap<i64, ProducerStateEntry>,
    /// Open transactions: producer id → first offset of its transaction here.
    ongoing: BTreeMap<i64, i64>,
    /// `producer.id.expiration.ms`.
    expiration_ms: i64,
}

/// Kafka's default `producer.id.expiration.ms` (one day).
pub const DEFAULT_PRODUCER_ID_EXPIRATION_MS: i64 = 86_400_000;

impl Default for ProducerStateManager {
    fn default() -> Self {
        ProducerStateManager::new(DEFAULT_PRODUCER_ID_EXPIRATION_MS)
    }
}

impl ProducerStateManager {
    /// Empty state; producers idle for `expiration_ms` are removed by `remove_expired`.
    pub fn new(expiration_ms: i64) -> Self {
        ProducerStateManager {
            producers: BTreeMap::new(),
            ongoing: BTreeMap::new(),
            expiration_ms,
        }
    }

    /// `producer.id.expiration.ms`.
    pub fn expiration_ms(&self) -> i64 {
        self.expiration_ms
    }

    /// The entry of one producer.
    pub fn entry(&self, producer_id: i64) -> Option<&ProducerStateEntry> {
        self.producers.get(&producer_id)
    }

    /// Every producer, by id.
    pub fn entries(&self) -> &BTreeMap<i64, ProducerStateEntry> {
        &self.producers
    }

    /// Open transactions: producer id → first offset.
    pub fn ongoing_txns(&self) -> &BTreeMap<i64, i64> {
        &self.ongoing
    }

    /// The first offset of the oldest open transaction (bounds the last stable offset).
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.ongoing.values().min().copied()
    }

    /// Number of producers.
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    /// True when no producer is known.
    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Checks batches about to be appended with offsets from `first_offset`, without changing
    /// anything. Non-idempotent batches pass untouched. A duplicate anywhere makes the whole
    /// append a duplicate (Kafka answers the same way).
    pub(crate) fn check_append(
        &self,
        batches: &[ProducerBatch],
        first_offset: i64,
    ) -> Result<AppendCheck, ProducerStateError> {
        let mut pending = PendingProducerState::default();
        let mut offset = first_offset;
        for b in batches {
            let first = offset;
            offset += i64::from(b.last_offset_delta.max(0)) + 1;
            if !b.is_idempotent() {
                continue;
            }
            if b.transactional && !pending.transactional.contains(&b.producer_id) {
                pending.transactional.push(b.producer_id);
            }
            if let Some(kind) = b.control {
                self.check_marker(b, kind, first, &mut pending)?;
                continue;
            }
            if b.transactional
                && !pending.started.contains_key(&b.producer_id)
                && !self.ongoing.contains_key(&b.producer_id)
            {
                pending.started.insert(b.producer_id, first);
            }
            let current = pending
                .updated
                .get(&b.producer_id)
                .or_else(|| self.producers.get(&b.producer_id));
            let last_seq = b.last_sequence();
            let next = match current {
                Some(e) => {
                    if let Some(dup) = e.find_duplicate(b.epoch, b.base_sequence, last_seq) {
                        return Ok(AppendCheck::Duplicate(dup));
                    }
                    if b.epoch < e.epoch {
                        return Err(ProducerStateError::InvalidProducerEpoch {
                            producer_id: b.producer_id,
                            epoch: b.epoch,
                            current: e.epoch,
                        });
                    }
                    if b.epoch > e.epoch {
                        if b.base_sequence != 0 {
                            return Err(ProducerStateError::OutOfOrderSequence {
                                producer_id: b.producer_id,
                                epoch: b.epoch,
                                found: b.base_sequence,
                                expected: 0,
                            });
                        }
                        ProducerStateEntry {
                            epoch: b.epoch,
                            batches: VecDeque::with_capacity(NUM_BATCHES_TO_RETAIN),
                            last_timestamp: b.max_timestamp,
                            coordinator_epoch: e.coordinator_epoch,
                        }
                    } else {
                        let expected = e.last_seq().map_or(0, |s| increment_sequence(s, 1));
                        if b.base_sequence != expected {
                            return Err(ProducerStateError::OutOfOrderSequence {
                                producer_id: b.producer_id,
                                epoch: b.epoch,
                                found: b.base_sequence,
                                expected,
                            });
                        }
                        e.clone()
                    }
                }
                None => {
                    if b.base_sequence != 0 {
                        return Err(ProducerStateError::UnknownProducerId {
                            producer_id: b.producer_id,
                            sequence: b.base_sequence,
                        });
                    }
                    ProducerStateEntry {
                        epoch: b.epoch,
                        batches: VecDeque::with_capacity(NUM_BATCHES_TO_RETAIN),
                        last_timestamp: b.max_timestamp,
                        coordinator_epoch: -1,
                    }
                }
            };
            let mut next = next;
            next.push(b.metadata(first));
            pending.updated.insert(b.producer_id, next);
        }
        Ok(AppendCheck::Append(pending))
    }

    /// A transaction marker: an older producer epoch is refused, as is an older coordinator
    /// epoch (a zombie coordinator: TRANSACTION_COORDINATOR_FENCED); a newer producer epoch
    /// fences the producer (its batches are forgotten, it restarts at sequence 0).
    fn check_marker(
        &self,
        b: &ProducerBatch,
        kind: ControlType,
        offset: i64,
        pending: &mut PendingProducerState,
    ) -> Result<(), ProducerStateError> {
        let current = pending
            .updated
            .get(&b.producer_id)
            .or_else(|| self.producers.get(&b.producer_id));
        let mut entry = match current {
            Some(e) if b.epoch < e.epoch => {
                return Err(ProducerStateError::InvalidProducerEpoch {
                    producer_id: b.producer_id,
                    epoch: b.epoch,
                    current: e.epoch,
                })
            }
            Some(e) if b.epoch == e.epoch => e.clone(),
            _ => ProducerStateEntry {
                epoch: b.epoch,
                batches: VecDeque::new(),
                last_timestamp: b.max_timestamp,
                coordinator_epoch: current.map_or(-1, |e| e.coordinator_epoch),
            },
        };
        if kind != ControlType::Other {
            if b.coordinator_epoch < entry.coordinator_epoch {
                return Err(ProducerStateError::TransactionCoordinatorFenced {
                    producer_id: b.producer_id,
                    coordinator_epoch: b.coordinator_epoch,
                    current: entry.coordinator_epoch,
                });
            }
            entry.coordinator_epoch = b.coordinator_epoch;
        }
        entry.last_timestamp = entry.last_timestamp.max(b.max_timestamp);
        pending.updated.insert(b.producer_id, entry);
        if kind == ControlType::Other {
            return Ok(());
        }
        let first = pending
            .started
            .remove(&b.producer_id)
            .or_else(|| self.ongoing.get(&b.producer_id).copied());
        if let Some(first_offset) = first {
            pending.completed.push(CompletedTxn {
                producer_id: b.producer_id,
                first_offset,
                last_offset: offset,
                aborted: kind == ControlType::Abort,
            });
        }
        Ok(())
    }

    /// Commits a checked append once its bytes are written.
    pub(crate) fn apply(&mut self, pending: PendingProducerState) {
        self.producers.extend(pending.updated);
        for c in &pending.completed {
            self.ongoing.remove(&c.producer_id);
        }
        self.ongoing.extend(pending.started);
    }

    /// Applies a batch read back from the log (recovery): no checks, the log is the truth. A
    /// newer epoch replaces the entry; a batch from an older epoch is ignored. Returns the
    /// transaction a marker closed, if any.
    pub fn replay(&mut self, batch: &ProducerBatch, base_offset: i64) -> Option<CompletedTxn> {
        if !batch.is_idempotent() {
            return None;
        }
        if let Some(kind) = batch.control {
            let entry =
                self.producers
                    .entry(batch.producer_id)
                    .or_insert_with(|| ProducerStateEntry {
                        epoch: batch.epoch,
                        batches: VecDeque::new(),
                        last_timestamp: batch.max_timestamp,
                        coordinator_epoch: -1,
                    });
            if batch.epoch > entry.epoch {
                entry.epoch = batch.epoch;
                entry.batches.clear();
            }
            entry.last_timestamp = entry.last_timestamp.max(batch.max_timestamp);
            if kind == ControlType::Other {
                return None;
            }
            entry.coordinator_epoch = batch.coordinator_epoch;
            let first_offset = self.ongoing.remove(&batch.producer_id)?;
            return Some(CompletedTxn {
                producer_id: batch.producer_id,
                first_offset,
                last_offset: base_offset,
                aborted: kind == ControlType::Abort,
            });
        }
        if batch.transactional {
            self.ongoing.entry(batch.producer_id).or_insert(base_offset);
        }
        let entry = self
            .producers
            .entry(batch.producer_id)
            .or_insert_with(|| ProducerStateEntry {
                epoch: batch.epoch,
                batches: VecDeque::with_capacity(NUM_BATCHES_TO_RETAIN),
                last_timestamp: batch.max_timestamp,
                coordinator_epoch: -1,
            });
        if batch.epoch < entry.epoch {
            return None;
        }
        if batch.epoch > entry.epoch {
            entry.epoch = batch.epoch;
            entry.batches.clear();
        }
        entry.push(batch.metadata(base_offset));
        None
    }

    /// The changes batches copied from a leader make (a follower append): applied as
    /// [`ProducerStateManager::replay`] applies them, without refusing anything, since the leader
    /// already decided. `batches` are (base offset, producer fields) in log order.
    pub(crate) fn replicated_append(
        &self,
        batches: &[(i64, ProducerBatch)],
    ) -> PendingProducerState {
        let mut scratch = ProducerStateManager::new(self.expiration_ms);
        for (_, b) in batches.iter().filter(|(_, b)| b.is_idempotent()) {
            if let Some(e) = self.producers.get(&b.producer_id) {
                scratch
                    .producers
                    .entry(b.producer_id)
                    .or_insert_with(|| e.clone());
            }
            if let Some(first) = self.ongoing.get(&b.producer_id) {
                scratch.ongoing.insert(b.producer_id, *first);
            }
        }
        let before = scratch.ongoing.clone();
        let mut completed = Vec::new();
        for (base, b) in batches {
            completed.extend(scratch.replay(b, *base));
        }
        // `apply` closes the completed transactions first, then opens the started ones.
        let started = scratch
            .ongoing
            .into_iter()
            .filter(|(pid, first)| before.get(pid) != Some(first))
            .collect();
        let mut transactional: Vec<i64> = batches
            .iter()
            .filter(|(_, b)| b.is_idempotent() && b.transactional)
            .map(|(_, b)| b.producer_id)
            .collect();
        transactional.dedup();
        PendingProducerState {
            updated: scratch.producers,
            started,
            completed,
            transactional,
        }
    }

    /// Removes producers whose last batch is `producer.id.expiration.ms` or more older than
    /// `now`. Returns how many were removed.
    pub fn remove_expired(&mut self, now: i64) -> usize {
        let before = self.producers.len();
        let limit = self.expiration_ms;
        let ongoing = &self.ongoing;
        self.producers.retain(|pid, e| {
            ongoing.contains_key(pid) || now.saturating_sub(e.last_timestamp) < limit
        });
        before - self.producers.len()
    }

    /// Inserts an entry as read from a snapshot.
    pub(crate) fn insert(&mut self, producer_id: i64, entry: ProducerStateEntry) {
        self.producers.insert(producer_id, entry);
    }

    /// Records an open transaction as read from a snapshot.
    pub(crate) fn insert_ongoing(&mut self, producer_id: i64, first_offset: i64) {
        self.ongoing.insert(producer_id, first_offset);
    }
}

#[cfg(test)]
#[path = "producer_state_tests.rs"]
mod tests;
