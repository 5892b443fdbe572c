//! [`SharePartition`]: the state of one share partition (one share group on one topic-partition)
//! on the partition leader, as Kafka's `SharePartition`: which records are in flight, who holds
//! them and until when, how often each was delivered, and how far the group is done.
//!
//! - SPSO, the start offset ([`SharePartition::start_offset`]): every record below it is done
//!   (ACKNOWLEDGED or ARCHIVED) and forgotten; it moves up as the lowest in-flight records finish,
//!   and in-flight batches below it are dropped, so memory is bounded by the in-flight window.
//! - SPEO, the end offset ([`SharePartition::end_offset`]): the first offset never fetched.
//!   Exclusive here; Kafka keeps the last in-flight offset and special-cases an empty cache.
//! - Between them, an ordered map of [`InFlightBatch`]es (crate::in_flight) keyed by first offset.
//!
//! Operations are Kafka's: `acquire` (ShareFetch), `acknowledge` (ShareAcknowledge, or piggybacked
//! on ShareFetch), `expire_locks` (the acquisition-lock timer), `release_member` (a member left or
//! its share session closed), `update_log_start_offset` (retention, DeleteRecords), `reset_to`
//! (AlterShareGroupOffsets). Each returns [`StateChanges`]: the durable part of what it did, to
//! write (crate::state_record) before answering. Unlike Kafka, which applies a transition only
//! once the write succeeded and rolls it back otherwise, the state here changes at once: the broker
//! runs one owner per share partition, writes the changes in order, and on a failed write drops
//! this state and reloads it from the durable records (as a failover would), so nothing
//! unwritten is ever answered as done.
//!
//! Time is a parameter (`now_ms`): an acquisition lock is a deadline, checked on acknowledgement
//! and swept by `expire_locks` when [`SharePartition::next_lock_deadline`] passes.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::{AutoOffsetReset, SharePartitionConfig};
use crate::error::{ShareError, ShareStateError};
use crate::in_flight::{InFlight, InFlightBatch, InFlightState};
use crate::record_state::{AcknowledgeType, RecordState};
use crate::state_record::{push_coalesced, PersisterStateBatch, ShareSnapshot, StateChanges};

/// One log batch the broker read for a share fetch: its offsets, and whether it must never be
/// delivered (under `share.isolation.level=read_committed`, a batch of an aborted transaction or
/// its abort marker; Kafka archives those at acquisition).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchedBatch {
    /// The batch's base offset.
    pub first_offset: i64,
    /// The batch's last offset.
    pub last_offset: i64,
    /// Aborted transactional data (or its abort marker): archive, never deliver.
    pub aborted: bool,
}

/// A range of records delivered to a member (`ShareFetchResponse` `AcquiredRecords`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcquiredRecords {
    /// First offset of the range.
    pub first_offset: i64,
    /// Last offset of the range.
    pub last_offset: i64,
    /// The delivery count of every record of the range, this delivery included.
    pub delivery_count: i16,
}

/// What one acquisition delivered (Kafka's `ShareAcquiredRecords`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareAcquiredRecords {
    /// The acquired ranges, ascending.
    pub records: Vec<AcquiredRecords>,
    /// Offsets acquired, the sum of the ranges' lengths.
    pub count: u64,
    /// Records archived on the way (past the delivery limit, no longer in the log, aborted): not
    /// needed before answering, but to be written before any later change of this partition.
    pub changes: StateChanges,
}

/// A consumer's answer for a range of offsets (`ShareAcknowledgementBatch`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcknowledgementBatch {
    /// First offset of the range.
    pub first_offset: i64,
    /// Last offset of the range.
    pub last_offset: i64,
    /// One type for the whole range, or one per offset.
    pub ack_types: Vec<AcknowledgeType>,
}

/// One in-flight record, as seen from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InFlightRecord<'a> {
    /// Its offset.
    pub offset: i64,
    /// Its state.
    pub state: RecordState,
    /// Times delivered.
    pub delivery_count: i16,
    /// The member holding it, when ACQUIRED.
    pub member_id: Option<&'a str>,
    /// When its acquisition lock expires, when ACQUIRED.
    pub lock_deadline_ms: Option<u64>,
}

/// The state of one share partition on its leader. See the module documentation.
#[derive(Debug, Clone)]
pub struct SharePartition {
    config: SharePartitionConfig,
    state_epoch: i32,
    leader_epoch: i32,
    start_offset: i64,
    end_offset: i64,
    /// In-flight batches by first offset; non-overlapping, each ending at or above
    /// `start_offset` once `advance_start_offset` ran.
    cached_state: BTreeMap<i64, InFlightBatch>,
    /// The start offset the last [`StateChanges`] carried (or the loaded one), to tell whether
    /// the next one moves it.
    durable_start_offset: i64,
}

impl SharePartition {
    /// An empty share partition starting at `start_offset` (a fresh group, or a start offset
    /// the broker resolved itself, as `by_duration`). Write its [`SharePartition::snapshot`]
    /// before serving it, or a restart would resolve `latest` again, later.
    pub fn new(
        config: SharePartitionConfig,
        leader_epoch: i32,
        state_epoch: i32,
        start_offset: i64,
    ) -> SharePartition {
        SharePartition {
            config,
            state_epoch,
            leader_epoch,
            start_offset,
            end_offset: start_offset,
            cached_state: BTreeMap::new(),
            durable_start_offset: start_offset,
        }
    }

    /// Loads durable state (Kafka's `maybeInitialize` with a `ReadShareGroupState` answer).
    /// AVAILABLE, ACKNOWLEDGED and ARCHIVED ranges come back as they were; offsets between the
    /// start offset and the last durable range that have no durable state (they were acquired,
    /// never answered for) come back AVAILABLE with their last durable delivery count, 0.
    pub fn from_snapshot(
        config: SharePartitionConfig,
        leader_epoch: i32,
        snapshot: &ShareSnapshot,
    ) -> Result<SharePartition, ShareStateError> {
        let normalized = snapshot.normalized()?;
        let mut partition = SharePartition::new(
            config,
            leader_epoch,
            snapshot.state_epoch,
            snapshot.start_offset,
        );
        let mut cursor = snapshot.start_offset;
        for batch in &normalized.state_batches {
            if batch.first_offset > cursor {
                partition.cached_state.insert(
                    cursor,
                    InFlightBatch::new(cursor, batch.first_offset - 1, InFlightState::available(0)),
                );
            }
            let state = match batch.delivery_state {
                RecordState::Acknowledged | RecordState::Archived => {
                    InFlightState::terminal(batch.delivery_state, batch.delivery_count)
                }
                RecordState::Available | RecordState::Acquired => {
                    InFlightState::available(batch.delivery_count)
                }
            };
            partition.cached_state.insert(
                batch.first_offset,
                InFlightBatch::new(batch.first_offset, batch.last_offset, state),
            );
            cursor = batch.last_offset.saturating_add(1);
        }
        partition.end_offset = cursor;
        partition.advance_start_offset();
        Ok(partition)
    }

    /// The share partition a leader starts with: the durable state when there is one (a start
    /// offset of -1 means none, as Kafka's `UNINITIALIZED_START_OFFSET`), else `reset` applied to
    /// the log's start and end offsets. A durable start offset below the log start offset
    /// (retention ran meanwhile) moves up to it.
    pub fn initialize(
        config: SharePartitionConfig,
        leader_epoch: i32,
        persisted: Option<&ShareSnapshot>,
        reset: AutoOffsetReset,
        log_start_offset: i64,
        log_end_offset: i64,
    ) -> Result<SharePartition, ShareStateError> {
        match persisted.filter(|snapshot| snapshot.start_offset >= 0) {
            Some(snapshot) => {
                let mut partition = SharePartition::from_snapshot(config, leader_epoch, snapshot)?;
                // The move is not reported here: the next StateChanges carries it, as the durable
                // start offset is still the snapshot's.
                partition.move_start_offset(log_start_offset);
                partition.advance_start_offset();
                Ok(partition)
            }
            None => Ok(SharePartition::new(
                config,
                leader_epoch,
                0,
                reset.start_offset(log_start_offset, log_end_offset),
            )),
        }
    }

    /// The settings in force.
    pub fn config(&self) -> &SharePartitionConfig {
        &self.config
    }

    /// Changes the settings (a group's dynamic config changed). Locks already granted keep their
    /// deadlines; a lower delivery limit applies at the next release, expiry or acquisition.
    pub fn set_config(&mut self, config: SharePartitionConfig) {
        self.config = config;
    }

    /// SPSO.
    pub fn start_offset(&self) -> i64 {
        self.start_offset
    }

    /// SPEO, exclusive: the first offset never fetched.
    pub fn end_offset(&self) -> i64 {
        self.end_offset
    }

    /// The state epoch (bumped by [`SharePartition::reset_to`]).
    pub fn state_epoch(&self) -> i32 {
        self.state_epoch
    }

    /// The partition leader epoch this state is served under.
    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch
    }

    /// Offsets in flight, SPEO − SPSO: what `max_in_flight_records` bounds.
    pub fn in_flight_count(&self) -> u64 {
        self.end_offset.abs_diff(self.start_offset)
    }

    /// The offset the broker should read the log from for the next share fetch: the first
    /// AVAILABLE in-flight record, else the end offset (Kafka's `nextFetchOffset`).
    pub fn next_fetch_offset(&self) -> i64 {
        for batch in self.cached_state.values() {
            for (first, _, state) in batch.runs(self.start_offset, i64::MAX) {
                if state.state == RecordState::Available {
                    return first;
                }
            }
        }
        self.end_offset
    }

    /// Whether a fetch could acquire anything: an AVAILABLE record in flight, or room under
    /// `max_in_flight_records` for new ones (Kafka's `canAcquireRecords`).
    pub fn can_acquire_records(&self) -> bool {
        self.next_fetch_offset() < self.end_offset
            || self.in_flight_count() < u64::from(self.config.max_in_flight_records)
    }

    /// The earliest acquisition-lock deadline, for the broker's timer; `None` when nothing is
    /// acquired. A scan: the in-flight window is bounded by `max_in_flight_records`.
    pub fn next_lock_deadline(&self) -> Option<u64> {
        self.cached_state
            .values()
            .flat_map(|batch| batch.states())
            .filter_map(|state| state.lock.as_ref().map(|lock| lock.deadline_ms))
            .min()
    }

    /// The record at `offset`, if in flight (it may lie below SPSO inside a batch not yet dropped).
    pub fn record(&self, offset: i64) -> Option<InFlightRecord<'_>> {
        let (_, batch) = self.cached_state.range(..=offset).next_back()?;
        batch.state_at(offset).map(|state| view(offset, state))
    }

    /// Every in-flight record at or above SPSO, ascending.
    pub fn records(&self) -> impl Iterator<Item = InFlightRecord<'_>> + '_ {
        let start = self.start_offset;
        self.cached_state.values().flat_map(move |batch| {
            (batch.first_offset().max(start)..=batch.last_offset())
                .filter_map(move |offset| batch.state_at(offset).map(|state| view(offset, state)))
        })
    }

    /// In-flight records at or above SPSO that are done (Kafka 4.2's `DeliveryCompleteCount`).
    pub fn delivery_complete_count(&self) -> u64 {
        let mut count = 0;
        for batch in self.cached_state.values() {
            for (first, last, state) in batch.runs(self.start_offset, i64::MAX) {
                if state.state.is_terminal() {
                    count += last.abs_diff(first) + 1;
                }
            }
        }
        count
    }

    /// Acquires records for `member_id` from what the broker read at `fetch_offset` (which it took
    /// from [`SharePartition::next_fetch_offset`]): first the AVAILABLE in-flight records the read
    /// covers (released or expired ones), then new records past the end offset, as long as
    /// SPEO − SPSO stays under `max_in_flight_records`. Each acquired record gets one more
    /// delivery and a lock until `now_ms + record_lock_duration_ms`.
    ///
    /// `max_records` is soft, as Kafka's: a whole in-flight batch is acquired whole, and new
    /// records are acquired to the end of the log batch that reaches the limit. Records whose
    /// delivery count already reached the limit (it was lowered) are archived instead. A record
    /// on its last delivery attempt is delivered alone, and records past half the limit in
    /// shrinking groups, so one poison record does not take its batch with it (Kafka's delivery
    /// throttling). In-flight AVAILABLE records between `fetch_offset` and the first fetched batch
    /// are no longer in the log (compaction) and are archived.
    pub fn acquire(
        &mut self,
        member_id: &str,
        fetch_offset: i64,
        fetched: &[FetchedBatch],
        max_records: u32,
        now_ms: u64,
    ) -> ShareAcquiredRecords {
        let mut touched = Vec::new();
        let fetched: Vec<FetchedBatch> = fetched
            .iter()
            .copied()
            .filter(|batch| batch.first_offset <= batch.last_offset)
            .collect();
        let span = fetched
            .iter()
            .map(|batch| batch.first_offset)
            .min()
            .zip(fetched.iter().map(|batch| batch.last_offset).max());
        let Some((span_first, span_last)) = span.filter(|_| max_records > 0) else {
            return self.acquired(Vec::new(), touched);
        };

        if fetch_offset < span_first {
            let lo = fetch_offset.max(self.start_offset);
            self.update_range(
                lo,
                span_first - 1,
                |state| state.state == RecordState::Available,
                |_, _| true,
                |first, last, state| {
                    state.archive();
                    touched.push((first, last));
                },
            );
        }

        let lo = span_first.max(self.start_offset);
        if lo > span_last {
            return self.acquired(Vec::new(), touched);
        }
        let member: Arc<str> = Arc::from(member_id);
        let deadline = now_ms.saturating_add(self.config.record_lock_duration_ms);
        let max = u64::from(max_records);
        let mut records = Vec::new();
        let mut count = 0;

        let cached_hi = span_last.min(self.end_offset.saturating_sub(1));
        let mut stopped = false;
        if lo <= cached_hi {
            stopped = self.acquire_cached(
                lo,
                cached_hi,
                &member,
                deadline,
                max,
                &mut records,
                &mut count,
                &mut touched,
            );
        }

        let new_first = lo.max(self.end_offset);
        let room = u64::from(self.config.max_in_flight_records)
            .saturating_sub(self.in_flight_count())
            .min(max.saturating_sub(count));
        if !stopped && new_first <= span_last && room > 0 {
            let wanted_last = new_first.saturating_add(i64::try_from(room - 1).unwrap_or(i64::MAX));
            // Never split a log batch: take the rest of the one holding the limit.
            let new_last = fetched
                .iter()
                .filter(|batch| {
                    batch.first_offset <= wanted_last && wanted_last <= batch.last_offset
                })
                .map(|batch| batch.last_offset)
                .max()
                .unwrap_or(wanted_last)
                .clamp(new_first, span_last);
            if self.cached_state.is_empty() && new_first > self.start_offset {
                // Nothing in flight and the log has nothing before `new_first`: start there.
                self.start_offset = new_first;
            }
            self.cached_state.insert(
                new_first,
                InFlightBatch::new(
                    new_first,
                    new_last,
                    InFlightState::acquired(Arc::clone(&member), deadline),
                ),
            );
            self.end_offset = new_last.saturating_add(1);
            push_acquired(&mut records, new_first, new_last, 1);
        }

        for aborted in fetched.iter().filter(|batch| batch.aborted) {
            let overlaps: Vec<(i64, i64)> = records
                .iter()
                .map(|r| {
                    (
                        r.first_offset.max(aborted.first_offset),
                        r.last_offset.min(aborted.last_offset),
                    )
                })
                .filter(|(first, last)| first <= last)
                .collect();
            for (first, last) in overlaps {
                self.update_range(
                    first,
                    last,
                    |state| state.state == RecordState::Acquired,
                    |_, _| true,
                    |first, last, state| {
                        state.archive();
                        touched.push((first, last));
                    },
                );
            }
            records = subtract(&records, aborted.first_offset, aborted.last_offset);
        }
        self.acquired(records, touched)
    }

    /// The cached part of [`SharePartition::acquire`]. Returns true when throttling stopped the
    /// acquisition (nothing more, not even new records, in this fetch).
    #[allow(clippy::too_many_arguments)]
    fn acquire_cached(
        &mut self,
        lo: i64,
        hi: i64,
        member: &Arc<str>,
        deadline: u64,
        max: u64,
        records: &mut Vec<AcquiredRecords>,
        count: &mut u64,
        touched: &mut Vec<(i64, i64)>,
    ) -> bool {
        let limit = self.config.delivery_count_limit;
        // Kafka's throttleRecordsDeliveryLimit: half the limit, rounded up, at least 2.
        let throttle_limit = ((limit.saturating_add(1)) / 2).max(2);
        let mut throttle_cap: Option<u64> = None;
        for key in self.overlapping_keys(lo, hi) {
            if *count >= max {
                return false;
            }
            let Some(batch) = self.cached_state.get_mut(&key) else {
                continue;
            };
            let (batch_first, batch_last, batch_len) =
                (batch.first_offset(), batch.last_offset(), batch.len());
            if let InFlight::Batch(state) = &mut batch.states {
                if state.state != RecordState::Available {
                    continue;
                }
                if state.delivery_count >= limit {
                    state.archive();
                    touched.push((batch_first, batch_last));
                    continue;
                }
                let inside = batch_first >= lo && batch_last <= hi;
                if inside && throttle_cap.is_none() && state.delivery_count < throttle_limit {
                    state.acquire(member, deadline);
                    push_acquired(records, batch_first, batch_last, state.delivery_count);
                    *count += batch_len;
                    continue;
                }
                batch.explode();
            }
            let mut stop = false;
            for offset in batch_first.max(lo)..=batch_last.min(hi) {
                let Some(state) = batch.offset_state_mut(offset) else {
                    continue;
                };
                if state.state != RecordState::Available {
                    continue;
                }
                if state.delivery_count >= limit {
                    state.archive();
                    touched.push((offset, offset));
                    continue;
                }
                if state.delivery_count >= throttle_limit && throttle_cap.is_none() {
                    if *count > 0 {
                        // Deliver the struggling records in a fetch of their own.
                        stop = true;
                        break;
                    }
                    let shift =
                        u32::try_from(state.delivery_count - throttle_limit + 1).unwrap_or(0);
                    throttle_cap = Some(batch_len.checked_shr(shift).unwrap_or(0).max(1));
                }
                let last_attempt = limit > 2 && state.delivery_count == limit - 1;
                if last_attempt && *count > 0 {
                    stop = true;
                    break;
                }
                state.acquire(member, deadline);
                push_acquired(records, offset, offset, state.delivery_count);
                *count += 1;
                if last_attempt || throttle_cap.is_some_and(|cap| *count >= cap) {
                    stop = true;
                    break;
                }
                if *count >= max {
                    break;
                }
            }
            batch.maybe_unify();
            if stop {
                return true;
            }
        }
        false
    }

    /// Applies a member's acknowledgements (ShareAcknowledge, or piggybacked on ShareFetch), all
    /// or nothing. Every record named must be ACQUIRED by `member_id` with its lock still running
    /// at `now_ms`, else `INVALID_RECORD_STATE`; ranges past the acquired records, unknown shapes
    /// or unordered batches are `INVALID_REQUEST`; ranges below SPSO are ignored (already done).
    /// ACCEPT → ACKNOWLEDGED; RELEASE → AVAILABLE (ARCHIVED at the delivery limit); REJECT and GAP
    /// → ARCHIVED; RENEW restarts the lock and changes nothing durable.
    pub fn acknowledge(
        &mut self,
        member_id: &str,
        batches: &[AcknowledgementBatch],
        now_ms: u64,
    ) -> Result<StateChanges, ShareError> {
        self.validate_acknowledgements(member_id, batches, now_ms)?;

        let limit = self.config.delivery_count_limit;
        let deadline = now_ms.saturating_add(self.config.record_lock_duration_ms);
        let mut touched = Vec::new();
        for batch in batches {
            if batch.last_offset < self.start_offset {
                continue;
            }
            let first = batch.first_offset.max(self.start_offset);
            let types = &batch.ack_types;
            let type_at = |offset: i64| -> Option<AcknowledgeType> {
                if types.len() == 1 {
                    types.first().copied()
                } else {
                    let index = usize::try_from(offset - batch.first_offset).ok()?;
                    types.get(index).copied()
                }
            };
            let uniform = |from: i64, to: i64| {
                types.len() == 1 || (from..=to).all(|offset| type_at(offset) == type_at(from))
            };
            self.update_range(
                first,
                batch.last_offset,
                |_| true,
                uniform,
                |from, to, state| match type_at(from).and_then(AcknowledgeType::target_state) {
                    Some(target) => {
                        state.complete(target, limit);
                        touched.push((from, to));
                    }
                    None => state.renew(deadline),
                },
            );
        }
        Ok(self.finish(touched))
    }

    fn validate_acknowledgements(
        &self,
        member_id: &str,
        batches: &[AcknowledgementBatch],
        now_ms: u64,
    ) -> Result<(), ShareError> {
        let mut previous_last: Option<i64> = None;
        for batch in batches {
            if batch.last_offset < batch.first_offset {
                return Err(ShareError::InvalidRequest(format!(
                    "Invalid acknowledgement batch {}-{}: the last offset is before the first.",
                    batch.first_offset, batch.last_offset
                )));
            }
            if previous_last.is_some_and(|last| batch.first_offset <= last) {
                return Err(ShareError::InvalidRequest(
                    "Acknowledgement batches must be in ascending order and must not overlap."
                        .to_string(),
                ));
            }
            previous_last = Some(batch.last_offset);
            let span = batch.last_offset.abs_diff(batch.first_offset) + 1;
            let types = u64::try_from(batch.ack_types.len()).unwrap_or(u64::MAX);
            if types == 0 || (types != 1 && types != span) {
                return Err(ShareError::InvalidRequest(format!(
                    "Invalid acknowledge types: {} types for {} offsets.",
                    types, span
                )));
            }
            if !self.config.renew_acknowledge_enable
                && batch.ack_types.contains(&AcknowledgeType::Renew)
            {
                return Err(ShareError::InvalidRecordState(
                    "Renewing acquisition locks is not enabled for the group.".to_string(),
                ));
            }
        }

        let last_cached = self
            .cached_state
            .values()
            .next_back()
            .map(InFlightBatch::last_offset);
        for batch in batches {
            if batch.last_offset < self.start_offset {
                continue;
            }
            let first = batch.first_offset.max(self.start_offset);
            let Some(last_cached) = last_cached else {
                return Err(not_found());
            };
            if first > last_cached {
                return Err(ShareError::InvalidRequest(
                    "Batch record not found. The first offset in request is past acquired records."
                        .to_string(),
                ));
            }
            if batch.last_offset > last_cached {
                return Err(ShareError::InvalidRequest(
                    "Batch record not found. The last offset in request is past acquired records."
                        .to_string(),
                ));
            }
            if self.cached_state.range(..=first).next().is_none() {
                return Err(not_found());
            }
            for key in self.overlapping_keys(first, batch.last_offset) {
                let Some(cached) = self.cached_state.get(&key) else {
                    continue;
                };
                for (offset, _, state) in cached.runs(first, batch.last_offset) {
                    if !state.is_held_by(member_id, now_ms) {
                        return Err(ShareError::InvalidRecordState(refusal(
                            offset, state, member_id, now_ms,
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    /// Sweeps the acquisition locks that expired at or before `now_ms`: their records become
    /// AVAILABLE again, or ARCHIVED at the delivery limit (Kafka's acquisition-lock timeout).
    pub fn expire_locks(&mut self, now_ms: u64) -> StateChanges {
        let limit = self.config.delivery_count_limit;
        let mut touched = Vec::new();
        self.update_range(
            i64::MIN,
            i64::MAX,
            |state| state.lock_expired(now_ms),
            |_, _| true,
            |first, last, state| {
                state.release(limit);
                touched.push((first, last));
            },
        );
        self.finish(touched)
    }

    /// Releases every record `member_id` holds (it left the group, was fenced, or closed its share
    /// session): AVAILABLE again, or ARCHIVED at the delivery limit (Kafka's
    /// `releaseAcquiredRecords`).
    pub fn release_member(&mut self, member_id: &str) -> StateChanges {
        let limit = self.config.delivery_count_limit;
        let mut touched = Vec::new();
        self.update_range(
            i64::MIN,
            i64::MAX,
            |state| matches!(&state.lock, Some(lock) if &*lock.member_id == member_id),
            |_, _| true,
            |first, last, state| {
                state.release(limit);
                touched.push((first, last));
            },
        );
        self.finish(touched)
    }

    /// The log start offset moved past SPSO (retention, DeleteRecords): everything below it is
    /// archived, acquired records included (their later acknowledgements are ignored, as every
    /// acknowledgement below SPSO), and SPSO moves to it. Kafka leaves such acquired records to
    /// their lock; archiving them at once keeps "everything below SPSO is done" true.
    pub fn update_log_start_offset(&mut self, log_start_offset: i64) -> StateChanges {
        self.move_start_offset(log_start_offset);
        self.finish(Vec::new())
    }

    fn move_start_offset(&mut self, log_start_offset: i64) {
        if log_start_offset <= self.start_offset {
            return;
        }
        self.update_range(
            self.start_offset,
            log_start_offset - 1,
            |state| !state.state.is_terminal(),
            |_, _| true,
            |_, _, state| state.archive(),
        );
        self.start_offset = log_start_offset;
        self.end_offset = self.end_offset.max(log_start_offset);
    }

    /// Re-initializes at `offset` (AlterShareGroupOffsets, which Kafka allows on an empty group
    /// only): everything in flight is forgotten and the state epoch moves on, so writers that
    /// loaded the old state are fenced. Returns the snapshot to write as a new history
    /// (`ShareStateLog::initialize`).
    pub fn reset_to(&mut self, offset: i64) -> ShareSnapshot {
        self.cached_state.clear();
        self.start_offset = offset;
        self.end_offset = offset;
        self.durable_start_offset = offset;
        self.state_epoch = self.state_epoch.saturating_add(1);
        self.snapshot()
    }

    /// The durable form of the whole state (snapshot epoch 0: the share-state log numbers its
    /// snapshots). ACQUIRED records appear as their last durable state: AVAILABLE with one
    /// delivery less, nothing if that is none.
    pub fn snapshot(&self) -> ShareSnapshot {
        let mut state_batches = Vec::new();
        self.project(self.start_offset, i64::MAX, &mut state_batches);
        ShareSnapshot {
            snapshot_epoch: 0,
            state_epoch: self.state_epoch,
            leader_epoch: self.leader_epoch,
            start_offset: self.start_offset,
            state_batches,
        }
    }

    fn acquired(
        &mut self,
        records: Vec<AcquiredRecords>,
        touched: Vec<(i64, i64)>,
    ) -> ShareAcquiredRecords {
        let count = records
            .iter()
            .map(|r| r.last_offset.abs_diff(r.first_offset) + 1)
            .sum();
        ShareAcquiredRecords {
            records,
            count,
            changes: self.finish(touched),
        }
    }

    /// Moves SPSO past the done records at the bottom, drops the batches wholly below it, and
    /// reports the durable form of the touched ranges.
    fn finish(&mut self, mut touched: Vec<(i64, i64)>) -> StateChanges {
        self.advance_start_offset();
        touched.sort_unstable();
        let mut merged: Vec<(i64, i64)> = Vec::with_capacity(touched.len());
        for (first, last) in touched {
            match merged.last_mut() {
                Some((_, end)) if first <= end.saturating_add(1) => *end = (*end).max(last),
                _ => merged.push((first, last)),
            }
        }
        let mut state_batches = Vec::new();
        for (first, last) in merged {
            let first = first.max(self.start_offset);
            if first <= last {
                self.project(first, last, &mut state_batches);
            }
        }
        let moved = self.start_offset != self.durable_start_offset;
        self.durable_start_offset = self.start_offset;
        StateChanges::new(
            self.state_epoch,
            self.leader_epoch,
            self.start_offset,
            state_batches,
            moved,
        )
    }

    /// Kafka's `maybeUpdateCachedStateAndOffsets`: SPSO moves to the first record not done.
    fn advance_start_offset(&mut self) {
        while let Some(mut entry) = self.cached_state.first_entry() {
            let batch = entry.get_mut();
            if batch.last_offset() < self.start_offset {
                entry.remove();
                continue;
            }
            // A hole before the first batch holds offsets the log does not have (the batch was
            // acquired from a read that started past them): nothing to wait for.
            self.start_offset = self.start_offset.max(batch.first_offset());
            let pending = batch
                .runs(self.start_offset, i64::MAX)
                .into_iter()
                .find(|(_, _, state)| !state.state.is_terminal())
                .map(|(first, _, _)| first);
            match pending {
                Some(first) => {
                    self.start_offset = first;
                    break;
                }
                None => {
                    self.start_offset = batch.last_offset().saturating_add(1);
                    entry.remove();
                }
            }
        }
        self.end_offset = self.end_offset.max(self.start_offset);
    }

    /// Appends the durable form of `lo..=hi` to `out`.
    fn project(&self, lo: i64, hi: i64, out: &mut Vec<PersisterStateBatch>) {
        for key in self.overlapping_keys(lo, hi) {
            let Some(batch) = self.cached_state.get(&key) else {
                continue;
            };
            for (first, last, state) in batch.runs(lo, hi) {
                if let Some((delivery_state, delivery_count)) = durable_form(state) {
                    push_coalesced(
                        out,
                        PersisterStateBatch {
                            first_offset: first,
                            last_offset: last,
                            delivery_state,
                            delivery_count,
                        },
                    );
                }
            }
        }
    }

    /// First offsets of the batches overlapping `lo..=hi`, ascending.
    fn overlapping_keys(&self, lo: i64, hi: i64) -> Vec<i64> {
        if lo > hi {
            return Vec::new();
        }
        let from = self
            .cached_state
            .range(..=lo)
            .next_back()
            .filter(|(_, batch)| batch.last_offset() >= lo)
            .map_or(lo, |(key, _)| *key);
        self.cached_state
            .range(from..=hi)
            .map(|(key, _)| *key)
            .collect()
    }

    /// Calls `apply` on the states in `lo..=hi` that `needs` selects: once for a whole batch
    /// inside the range when `uniform` says the change is the same over all of it, else once per
    /// offset (the batch is exploded; a batch `needs` does not select is left alone).
    fn update_range(
        &mut self,
        lo: i64,
        hi: i64,
        needs: impl Fn(&InFlightState) -> bool,
        uniform: impl Fn(i64, i64) -> bool,
        mut apply: impl FnMut(i64, i64, &mut InFlightState),
    ) {
        for key in self.overlapping_keys(lo, hi) {
            let Some(batch) = self.cached_state.get_mut(&key) else {
                continue;
            };
            let (batch_first, batch_last) = (batch.first_offset(), batch.last_offset());
            if let InFlight::Batch(state) = &mut batch.states {
                if !needs(state) {
                    continue;
                }
                if batch_first >= lo && batch_last <= hi && uniform(batch_first, batch_last) {
                    apply(batch_first, batch_last, state);
                    continue;
                }
                batch.explode();
            }
            for offset in batch_first.max(lo)..=batch_last.min(hi) {
                if let Some(state) = batch.offset_state_mut(offset) {
                    if needs(state) {
                        apply(offset, offset, state);
                    }
                }
            }
            batch.maybe_unify();
        }
    }
}

/// The durable (state, delivery count) of an in-flight state; `None` when it has none (an
/// AVAILABLE record never delivered). ACQUIRED is not durable: its last durable state was
/// AVAILABLE with one delivery less.
fn durable_form(state: &InFlightState) -> Option<(RecordState, i16)> {
    match state.state {
        RecordState::Available => {
            (state.delivery_count > 0).then_some((RecordState::Available, state.delivery_count))
        }
        RecordState::Acquired => {
            let count = state.delivery_count.saturating_sub(1);
            (count > 0).then_some((RecordState::Available, count))
        }
        RecordState::Acknowledged | RecordState::Archived => {
            Some((state.state, state.delivery_count))
        }
    }
}

fn view(offset: i64, state: &InFlightState) -> InFlightRecord<'_> {
    InFlightRecord {
        offset,
        state: state.state,
        delivery_count: state.delivery_count,
        member_id: state.lock.as_ref().map(|lock| &*lock.member_id),
        lock_deadline_ms: state.lock.as_ref().map(|lock| lock.deadline_ms),
    }
}

fn not_found() -> ShareError {
    ShareError::InvalidRecordState(
        "Batch record not found. The request batch offsets are not found in the cache.".to_string(),
    )
}

/// Why `member_id` may not acknowledge the record at `offset`.
fn refusal(offset: i64, state: &InFlightState, member_id: &str, now_ms: u64) -> String {
    match &state.lock {
        None => format!(
            "The record at offset {offset} cannot be acknowledged. It is not in the acquired state."
        ),
        Some(lock) if &*lock.member_id != member_id => {
            format!("Member {member_id} is not the owner of the record at offset {offset}.")
        }
        Some(lock) if lock.deadline_ms <= now_ms => format!(
            "The acquisition lock of the record at offset {offset} expired at {}.",
            lock.deadline_ms
        ),
        Some(_) => format!("The record at offset {offset} cannot be acknowledged."),
    }
}

/// Appends an acquired range, extending the last one when it continues it with the same delivery
/// count (Kafka's `accumulateAcquiredRecords`).
fn push_acquired(records: &mut Vec<AcquiredRecords>, first: i64, last: i64, delivery_count: i16) {
    if let Some(tail) = records.last_mut() {
        if tail.last_offset.checked_add(1) == Some(first) && tail.delivery_count == delivery_count {
            tail.last_offset = last;
            return;
        }
    }
    records.push(AcquiredRecords {
        first_offset: first,
        last_offset: last,
        delivery_count,
    });
}

/// `records` without the offsets `first..=last`.
fn subtract(records: &[AcquiredRecords], first: i64, last: i64) -> Vec<AcquiredRecords> {
    let mut out = Vec::with_capacity(records.len() + 1);
    for r in records {
        if r.last_offset < first || r.first_offset > last {
            out.push(*r);
            continue;
        }
        if r.first_offset < first {
            out.push(AcquiredRecords {
                last_offset: first - 1,
                ..*r
            });
        }
        if r.last_offset > last {
            out.push(AcquiredRecords {
                first_offset: last + 1,
                ..*r
            });
        }
    }
    out
}
