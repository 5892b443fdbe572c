//! [`InFlightBatch`] and [`InFlightState`]: how a share partition holds the records between its
//! start and end offsets, as Kafka's `InFlightBatch` / `InFlightState`.
//!
//! A batch covers `first_offset..=last_offset` and holds one state for all of it while its
//! records move together (the common case: a batch is acquired, then acknowledged, whole). Once
//! something touches only part of it (a fetch that covers part of it, an acknowledgement of a
//! sub-range or with per-offset types) it is exploded into one state per offset, and stays so
//! until its offsets agree again. Kafka marks per-offset mode with `batchState == null`; here it is
//! [`InFlight::PerOffset`], a `Vec` indexed by `offset - first_offset`: offsets are dense inside a
//! batch, so a vector is smaller and faster than Kafka's skip-list map.
//!
//! The acquisition lock is data, not a timer task: a deadline in milliseconds next to the member
//! holding the record. The share partition sweeps expired locks when the broker's timer says so
//! (`SharePartition::expire_locks`), and refuses acknowledgements of expired locks before any
//! sweep (the deadline is compared with the `now` passed in).

use std::sync::Arc;

use crate::record_state::RecordState;

/// Who holds an ACQUIRED record, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AcquisitionLock {
    /// The member the record was delivered to. Shared: every offset of a batch names one member.
    pub(crate) member_id: Arc<str>,
    /// When the lock expires (ms, the caller's clock).
    pub(crate) deadline_ms: u64,
}

/// The state of one record, or of every record of a batch in batch mode.
///
/// Invariant: `lock.is_some()` exactly when `state == Acquired`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InFlightState {
    pub(crate) state: RecordState,
    /// How many times the record was acquired (delivered). Kafka's int16.
    pub(crate) delivery_count: i16,
    pub(crate) lock: Option<AcquisitionLock>,
}

impl InFlightState {
    /// A record that may be acquired, delivered `delivery_count` times already.
    pub(crate) fn available(delivery_count: i16) -> InFlightState {
        InFlightState {
            state: RecordState::Available,
            delivery_count,
            lock: None,
        }
    }

    /// A record acquired just now for the first time.
    pub(crate) fn acquired(member_id: Arc<str>, deadline_ms: u64) -> InFlightState {
        InFlightState {
            state: RecordState::Acquired,
            delivery_count: 1,
            lock: Some(AcquisitionLock {
                member_id,
                deadline_ms,
            }),
        }
    }

    /// A terminal record (loaded from durable state).
    pub(crate) fn terminal(state: RecordState, delivery_count: i16) -> InFlightState {
        InFlightState {
            state,
            delivery_count,
            lock: None,
        }
    }

    /// ACQUIRED and held by `member_id` with a lock still running at `now_ms`.
    pub(crate) fn is_held_by(&self, member_id: &str, now_ms: u64) -> bool {
        matches!(&self.lock, Some(lock) if &*lock.member_id == member_id && lock.deadline_ms > now_ms)
    }

    /// ACQUIRED with a lock that expired at or before `now_ms`.
    pub(crate) fn lock_expired(&self, now_ms: u64) -> bool {
        matches!(&self.lock, Some(lock) if lock.deadline_ms <= now_ms)
    }

    /// AVAILABLE → ACQUIRED: one more delivery, locked for `member_id` until `deadline_ms`.
    pub(crate) fn acquire(&mut self, member_id: &Arc<str>, deadline_ms: u64) {
        self.state = RecordState::Acquired;
        self.delivery_count = self.delivery_count.saturating_add(1);
        self.lock = Some(AcquisitionLock {
            member_id: Arc::clone(member_id),
            deadline_ms,
        });
    }

    /// ACQUIRED → AVAILABLE, or ARCHIVED once the delivery count reached `limit` (Kafka's
    /// `tryUpdateState(AVAILABLE, …)`): lock expiry, RELEASE, a member leaving.
    pub(crate) fn release(&mut self, limit: i16) {
        self.state = if self.delivery_count >= limit {
            RecordState::Archived
        } else {
            RecordState::Available
        };
        self.lock = None;
    }

    /// ACQUIRED → `target`, AVAILABLE going through the delivery-limit rule.
    pub(crate) fn complete(&mut self, target: RecordState, limit: i16) {
        if target == RecordState::Available {
            self.release(limit);
        } else {
            self.state = target;
            self.lock = None;
        }
    }

    /// Any state → ARCHIVED, delivery count unchanged (Kafka's `archive()`).
    pub(crate) fn archive(&mut self) {
        self.state = RecordState::Archived;
        self.lock = None;
    }

    /// Restarts the acquisition lock (KIP-1222 RENEW).
    pub(crate) fn renew(&mut self, deadline_ms: u64) {
        if let Some(lock) = &mut self.lock {
            lock.deadline_ms = deadline_ms;
        }
    }
}

/// One state for the whole batch, or one per offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InFlight {
    Batch(InFlightState),
    /// `states[i]` is the state of `first_offset + i`.
    PerOffset(Vec<InFlightState>),
}

/// A contiguous range of in-flight records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InFlightBatch {
    first_offset: i64,
    last_offset: i64,
    pub(crate) states: InFlight,
}

impl InFlightBatch {
    /// A batch in batch mode. `first_offset <= last_offset` is the caller's invariant.
    pub(crate) fn new(first_offset: i64, last_offset: i64, state: InFlightState) -> InFlightBatch {
        debug_assert!(first_offset <= last_offset);
        InFlightBatch {
            first_offset,
            last_offset,
            states: InFlight::Batch(state),
        }
    }

    pub(crate) fn first_offset(&self) -> i64 {
        self.first_offset
    }

    pub(crate) fn last_offset(&self) -> i64 {
        self.last_offset
    }

    /// Number of offsets in the batch.
    pub(crate) fn len(&self) -> u64 {
        self.last_offset.abs_diff(self.first_offset) + 1
    }

    fn index(&self, offset: i64) -> usize {
        // In range by the callers' checks; a batch never holds more offsets than memory does.
        usize::try_from(offset - self.first_offset).unwrap_or(usize::MAX)
    }

    /// The state of `offset`, if the batch covers it.
    pub(crate) fn state_at(&self, offset: i64) -> Option<&InFlightState> {
        if offset < self.first_offset || offset > self.last_offset {
            return None;
        }
        match &self.states {
            InFlight::Batch(state) => Some(state),
            InFlight::PerOffset(states) => states.get(self.index(offset)),
        }
    }

    /// Mutable state of `offset` in per-offset mode (call [`InFlightBatch::explode`] first).
    pub(crate) fn offset_state_mut(&mut self, offset: i64) -> Option<&mut InFlightState> {
        let index = self.index(offset);
        match &mut self.states {
            InFlight::Batch(_) => None,
            InFlight::PerOffset(states) => states.get_mut(index),
        }
    }

    /// Batch mode → per-offset mode (Kafka's `maybeInitializeOffsetStateUpdate`).
    pub(crate) fn explode(&mut self) {
        if let InFlight::Batch(state) = &self.states {
            let len = usize::try_from(self.len()).unwrap_or(0);
            self.states = InFlight::PerOffset(vec![state.clone(); len]);
        }
    }

    /// Per-offset mode → batch mode when every offset agrees again. Kafka keeps the per-offset
    /// map until the batch leaves the cache; folding it back bounds memory and lets the next
    /// whole-batch fetch or acknowledgement take the fast path.
    pub(crate) fn maybe_unify(&mut self) {
        if let InFlight::PerOffset(states) = &self.states {
            if let Some(first) = states.first() {
                if states.iter().all(|state| state == first) {
                    self.states = InFlight::Batch(first.clone());
                }
            }
        }
    }

    /// The runs of equal state inside `lo..=hi`, as `(first, last, state)`, in offset order. In
    /// batch mode one run; in per-offset mode one per offset (the caller coalesces).
    pub(crate) fn runs(&self, lo: i64, hi: i64) -> Vec<(i64, i64, &InFlightState)> {
        let first = self.first_offset.max(lo);
        let last = self.last_offset.min(hi);
        if first > last {
            return Vec::new();
        }
        match &self.states {
            InFlight::Batch(state) => vec![(first, last, state)],
            InFlight::PerOffset(states) => (first..=last)
                .filter_map(|offset| states.get(self.index(offset)).map(|s| (offset, offset, s)))
                .collect(),
        }
    }

    /// Every state of the batch (one in batch mode).
    pub(crate) fn states(&self) -> Vec<&InFlightState> {
        match &self.states {
            InFlight::Batch(state) => vec![state],
            InFlight::PerOffset(states) => states.iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str) -> Arc<str> {
        Arc::from(name)
    }

    #[test]
    fn release_archives_at_the_delivery_limit() {
        let mut state = InFlightState::available(0);
        for delivery in 1..=5 {
            state.acquire(&member("m"), 100);
            assert_eq!(state.delivery_count, delivery);
            state.release(5);
        }
        assert_eq!(state.state, RecordState::Archived);
        assert_eq!(state.delivery_count, 5);
        assert!(state.lock.is_none());
    }

    #[test]
    fn lock_ownership_and_expiry() {
        let mut state = InFlightState::available(0);
        state.acquire(&member("a"), 100);
        assert!(state.is_held_by("a", 99));
        assert!(
            !state.is_held_by("a", 100),
            "a lock expires at its deadline"
        );
        assert!(!state.is_held_by("b", 0));
        assert!(state.lock_expired(100));
        state.renew(200);
        assert!(state.is_held_by("a", 150));
    }

    #[test]
    fn explode_then_unify() {
        let mut batch = InFlightBatch::new(10, 13, InFlightState::available(1));
        batch.explode();
        assert!(matches!(&batch.states, InFlight::PerOffset(s) if s.len() == 4));
        if let Some(state) = batch.offset_state_mut(12) {
            state.archive();
        }
        assert_eq!(
            batch.state_at(12).map(|s| s.state),
            Some(RecordState::Archived)
        );
        assert_eq!(batch.runs(11, 20).len(), 3);
        batch.maybe_unify();
        assert!(matches!(batch.states, InFlight::PerOffset(_)));
        for offset in [10, 11, 13] {
            if let Some(state) = batch.offset_state_mut(offset) {
                state.archive();
            }
        }
        batch.maybe_unify();
        assert!(matches!(batch.states, InFlight::Batch(_)));
        assert_eq!(batch.state_at(9), None);
        assert_eq!(batch.state_at(14), None);
    }
}
