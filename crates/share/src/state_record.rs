//! The durable form of a share partition, with the semantics of Kafka's `__share_group_state`:
//! [`ShareSnapshot`] (a whole state, `ShareSnapshotValue`) and [`ShareUpdate`] (the batches that
//! changed, `ShareUpdateValue`), both [`ShareStateRecord`]s serialized as JSON into the broker's
//! internal topic; [`StateChanges`], what one share-partition operation must make durable; and
//! [`ShareStateLog`], the writer/replayer for one share partition (Kafka's `ShareCoordinatorShard`
//! for one key), which decides when to write a snapshot instead of an update.
//!
//! What survives: the start offset (SPSO) and, at and above it, every record that is ACKNOWLEDGED
//! or ARCHIVED, and every AVAILABLE record with its delivery count. ACQUIRED is never durable, as
//! in Kafka (acquisition writes nothing): after a failover an acquired record is AVAILABLE again
//! with the delivery count of its last durable state, so its in-progress delivery is not counted.
//! An offset with no durable batch above the start offset is an AVAILABLE record never delivered
//! (Kafka's "gap" in the read state); AVAILABLE with delivery count 0 is therefore written as
//! nothing, so there is one durable form for one state.
//!
//! Merging (`ShareSnapshot::apply_update`) overlays the newer batches on the older: Kafka's
//! `PersisterStateBatchCombiner` instead lets the higher (delivery count, state id) win, which is
//! the same for a log written in order (a record's count and state only grow) and needs a sweep
//! line; we have the order, so the overlay is exact and simpler.
//!
//! Snapshot rule (`ShareStateLog::write`): after `share.coordinator.snapshot.update.records.per.snapshot`
//! (default 500) updates the next write is a snapshot, so loading one share partition replays at
//! most one snapshot and that many updates.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::UPDATE_RECORDS_PER_SNAPSHOT_DEFAULT;
use crate::error::ShareStateError;
use crate::record_state::RecordState;

/// A durable range of records with one state (`PersisterStateBatch`). `delivery_state` is
/// AVAILABLE, ACKNOWLEDGED or ARCHIVED; an ACQUIRED one read back counts as AVAILABLE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersisterStateBatch {
    /// First offset of the range.
    pub first_offset: i64,
    /// Last offset of the range (inclusive).
    pub last_offset: i64,
    /// The state of every record of the range.
    pub delivery_state: RecordState,
    /// How many times each record of the range was delivered.
    pub delivery_count: i16,
}

/// A whole share-partition state (`ShareSnapshotValue`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareSnapshot {
    /// Incremented by each snapshot; the updates that follow carry it.
    pub snapshot_epoch: i32,
    /// Incremented when the state is re-initialized (AlterShareGroupOffsets): fences writers that
    /// loaded the older state.
    pub state_epoch: i32,
    /// The partition leader epoch of the last writer: fences deposed leaders.
    pub leader_epoch: i32,
    /// The share-partition start offset (SPSO).
    pub start_offset: i64,
    /// Non-overlapping, ascending, all at or above `start_offset`.
    pub state_batches: Vec<PersisterStateBatch>,
}

/// The batches that changed since the last record (`ShareUpdateValue`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareUpdate {
    /// The epoch of the snapshot this update follows.
    pub snapshot_epoch: i32,
    /// The writer's partition leader epoch.
    pub leader_epoch: i32,
    /// The start offset after the change.
    pub start_offset: i64,
    /// The changed ranges, in their new state.
    pub state_batches: Vec<PersisterStateBatch>,
}

/// One record of the share-state topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum ShareStateRecord {
    /// `ShareSnapshot` (Kafka record type 0).
    Snapshot(ShareSnapshot),
    /// `ShareUpdate` (Kafka record type 1).
    Update(ShareUpdate),
}

impl ShareStateRecord {
    /// The JSON the broker stores as the record's value.
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }

    /// Parses a stored value.
    pub fn from_json(bytes: &[u8]) -> Result<ShareStateRecord, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// What one share-partition operation changed that must be durable before the operation is
/// answered (acknowledgements) or before the next change is written (expiries, releases,
/// acquisitions that archived records): the unit of a [`ShareUpdate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateChanges {
    /// The share partition's state epoch (fencing).
    pub state_epoch: i32,
    /// The share partition's leader epoch (fencing).
    pub leader_epoch: i32,
    /// The start offset after the operation.
    pub start_offset: i64,
    /// The changed ranges at or above `start_offset`, in their durable form, coalesced.
    pub state_batches: Vec<PersisterStateBatch>,
    pub(crate) start_offset_moved: bool,
}

impl StateChanges {
    pub(crate) fn new(
        state_epoch: i32,
        leader_epoch: i32,
        start_offset: i64,
        state_batches: Vec<PersisterStateBatch>,
        start_offset_moved: bool,
    ) -> StateChanges {
        StateChanges {
            state_epoch,
            leader_epoch,
            start_offset,
            state_batches,
            start_offset_moved,
        }
    }

    /// Changes as another node sent them (WriteShareGroupState): whether the start offset moved
    /// is not known there, so it is taken as moved (the record carries it either way).
    pub fn received(
        state_epoch: i32,
        leader_epoch: i32,
        start_offset: i64,
        state_batches: Vec<PersisterStateBatch>,
    ) -> StateChanges {
        StateChanges::new(state_epoch, leader_epoch, start_offset, state_batches, true)
    }

    /// Nothing durable changed: no write is needed (an acquisition of new records, a RENEW).
    pub fn is_empty(&self) -> bool {
        self.state_batches.is_empty() && !self.start_offset_moved
    }

    /// Whether the start offset moved.
    pub fn start_offset_moved(&self) -> bool {
        self.start_offset_moved
    }
}

impl ShareSnapshot {
    /// An empty state starting at `start_offset`.
    pub fn new(state_epoch: i32, leader_epoch: i32, start_offset: i64) -> ShareSnapshot {
        ShareSnapshot {
            snapshot_epoch: 0,
            state_epoch,
            leader_epoch,
            start_offset,
            state_batches: Vec::new(),
        }
    }

    /// Replays an update on this state: the start offset never moves back, the leader epoch
    /// never goes down, the changed batches overlay the older ones.
    pub fn apply_update(&mut self, update: &ShareUpdate) -> Result<(), ShareStateError> {
        if update.snapshot_epoch != self.snapshot_epoch {
            return Err(ShareStateError::SnapshotEpochMismatch {
                update: update.snapshot_epoch,
                current: self.snapshot_epoch,
            });
        }
        self.start_offset = self.start_offset.max(update.start_offset);
        self.leader_epoch = self.leader_epoch.max(update.leader_epoch);
        self.state_batches = merge_state_batches(
            &self.state_batches,
            &update.state_batches,
            self.start_offset,
        )?;
        Ok(())
    }

    /// Records at or above the start offset whose delivery is complete (ACKNOWLEDGED or
    /// ARCHIVED): Kafka 4.2's `DeliveryCompleteCount` (KIP-1226), for lag.
    pub fn delivery_complete_count(&self) -> u64 {
        self.state_batches
            .iter()
            .filter(|batch| batch.delivery_state.is_terminal())
            .map(|batch| batch.last_offset.abs_diff(batch.first_offset) + 1)
            .sum()
    }

    /// The same state in normal form: batches checked, sorted, clipped at the start offset,
    /// coalesced, never-delivered AVAILABLE ranges dropped.
    pub fn normalized(&self) -> Result<ShareSnapshot, ShareStateError> {
        Ok(ShareSnapshot {
            state_batches: merge_state_batches(&[], &self.state_batches, self.start_offset)?,
            ..self.clone()
        })
    }
}

/// Overlays `newer` on `older` (later batches of `newer` win over earlier ones too), drops what is
/// below `start_offset`, drops AVAILABLE ranges never delivered, reads ACQUIRED as AVAILABLE, and
/// coalesces equal neighbours. The result is non-overlapping and ascending.
pub fn merge_state_batches(
    older: &[PersisterStateBatch],
    newer: &[PersisterStateBatch],
    start_offset: i64,
) -> Result<Vec<PersisterStateBatch>, ShareStateError> {
    // first offset → (last offset, state, count); ranges never overlap.
    let mut ranges: BTreeMap<i64, (i64, RecordState, i16)> = BTreeMap::new();
    for batch in older.iter().chain(newer) {
        if batch.last_offset < batch.first_offset {
            return Err(ShareStateError::InvalidStateBatch {
                first_offset: batch.first_offset,
                last_offset: batch.last_offset,
                delivery_state: batch.delivery_state.id(),
            });
        }
        let (first, last) = (batch.first_offset, batch.last_offset);
        // Cut whatever overlaps first..=last out of the existing ranges.
        let overlapping: Vec<i64> = ranges
            .range(..=last)
            .rev()
            .take_while(|(_, (end, _, _))| *end >= first)
            .map(|(start, _)| *start)
            .collect();
        for start in overlapping {
            if let Some((end, state, count)) = ranges.remove(&start) {
                if start < first {
                    ranges.insert(start, (first - 1, state, count));
                }
                if end > last {
                    ranges.insert(last + 1, (end, state, count));
                }
            }
        }
        let state = match batch.delivery_state {
            RecordState::Acquired => RecordState::Available,
            other => other,
        };
        ranges.insert(first, (last, state, batch.delivery_count));
    }

    let mut out: Vec<PersisterStateBatch> = Vec::with_capacity(ranges.len());
    for (first, (last, state, count)) in ranges {
        if last < start_offset || (state == RecordState::Available && count <= 0) {
            continue;
        }
        push_coalesced(
            &mut out,
            PersisterStateBatch {
                first_offset: first.max(start_offset),
                last_offset: last,
                delivery_state: state,
                delivery_count: count,
            },
        );
    }
    Ok(out)
}

/// Appends `batch`, extending the last one when it continues it with the same state and count.
pub(crate) fn push_coalesced(out: &mut Vec<PersisterStateBatch>, batch: PersisterStateBatch) {
    if let Some(tail) = out.last_mut() {
        if tail.last_offset.checked_add(1) == Some(batch.first_offset)
            && tail.delivery_state == batch.delivery_state
            && tail.delivery_count == batch.delivery_count
        {
            tail.last_offset = batch.last_offset;
            return;
        }
    }
    out.push(batch);
}

/// The durable state of one share partition as its records are written and replayed, and the
/// choice of the next record: Kafka's `ShareCoordinatorShard` reduced to one key.
///
/// The broker asks for the record of a change ([`ShareStateLog::write`]), appends it durably, then
/// [`replay`](ShareStateLog::replay)s it, the same call it uses when loading the topic, so the
/// state here is always what the log holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareStateLog {
    state: Option<ShareSnapshot>,
    updates_since_snapshot: u32,
    updates_per_snapshot: u32,
}

impl Default for ShareStateLog {
    fn default() -> Self {
        ShareStateLog::new(UPDATE_RECORDS_PER_SNAPSHOT_DEFAULT)
    }
}

impl ShareStateLog {
    /// An empty log; a snapshot follows every `updates_per_snapshot` updates (0: every write is a
    /// snapshot).
    pub fn new(updates_per_snapshot: u32) -> ShareStateLog {
        ShareStateLog {
            state: None,
            updates_since_snapshot: 0,
            updates_per_snapshot,
        }
    }

    /// The state as of the last replayed record; `None` before the first snapshot.
    pub fn state(&self) -> Option<&ShareSnapshot> {
        self.state.as_ref()
    }

    /// Updates replayed since the last snapshot.
    pub fn updates_since_snapshot(&self) -> u32 {
        self.updates_since_snapshot
    }

    /// Applies a record read from (or just appended to) the share-state topic.
    pub fn replay(&mut self, record: &ShareStateRecord) -> Result<(), ShareStateError> {
        match record {
            ShareStateRecord::Snapshot(snapshot) => {
                self.state = Some(snapshot.normalized()?);
                self.updates_since_snapshot = 0;
            }
            ShareStateRecord::Update(update) => {
                let Some(state) = &mut self.state else {
                    return Err(ShareStateError::UpdateWithoutSnapshot(
                        update.snapshot_epoch,
                    ));
                };
                state.apply_update(update)?;
                self.updates_since_snapshot = self.updates_since_snapshot.saturating_add(1);
            }
        }
        Ok(())
    }

    /// The record that starts a fresh history for this share partition: the first
    /// initialization, or AlterShareGroupOffsets / DeleteShareGroupOffsets (give the new state
    /// epoch in `snapshot`). Kafka's `InitializeShareGroupState`.
    pub fn initialize(&self, snapshot: ShareSnapshot) -> ShareStateRecord {
        let snapshot_epoch = self
            .state
            .as_ref()
            .map_or(0, |state| state.snapshot_epoch.saturating_add(1));
        ShareStateRecord::Snapshot(ShareSnapshot {
            snapshot_epoch,
            ..snapshot
        })
    }

    /// The record that makes `changes` durable: an update, or a snapshot of the merged state once
    /// `updates_per_snapshot` updates were written since the last one. Refused for a deposed
    /// leader or an outdated state epoch. Does not change the log: replay the record once
    /// appended.
    pub fn write(&self, changes: &StateChanges) -> Result<ShareStateRecord, ShareStateError> {
        let Some(state) = &self.state else {
            // Nothing written yet: the first record is a snapshot of the changes alone.
            let snapshot = ShareSnapshot {
                snapshot_epoch: 0,
                state_epoch: changes.state_epoch,
                leader_epoch: changes.leader_epoch,
                start_offset: changes.start_offset,
                state_batches: changes.state_batches.clone(),
            };
            return Ok(ShareStateRecord::Snapshot(snapshot.normalized()?));
        };
        if changes.leader_epoch < state.leader_epoch {
            return Err(ShareStateError::FencedLeaderEpoch {
                requested: changes.leader_epoch,
                current: state.leader_epoch,
            });
        }
        if changes.state_epoch < state.state_epoch {
            return Err(ShareStateError::FencedStateEpoch {
                requested: changes.state_epoch,
                current: state.state_epoch,
            });
        }
        let start_offset = state.start_offset.max(changes.start_offset);
        if self.updates_since_snapshot >= self.updates_per_snapshot {
            let mut next = state.clone();
            next.snapshot_epoch = next.snapshot_epoch.saturating_add(1);
            next.leader_epoch = changes.leader_epoch;
            next.start_offset = start_offset;
            next.state_batches =
                merge_state_batches(&state.state_batches, &changes.state_batches, start_offset)?;
            return Ok(ShareStateRecord::Snapshot(next));
        }
        Ok(ShareStateRecord::Update(ShareUpdate {
            snapshot_epoch: state.snapshot_epoch,
            leader_epoch: changes.leader_epoch,
            start_offset,
            state_batches: merge_state_batches(&[], &changes.state_batches, start_offset)?,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(first: i64, last: i64, state: RecordState, count: i16) -> PersisterStateBatch {
        PersisterStateBatch {
            first_offset: first,
            last_offset: last,
            delivery_state: state,
            delivery_count: count,
        }
    }

    fn changes(start: i64, batches: Vec<PersisterStateBatch>) -> StateChanges {
        StateChanges::new(0, 0, start, batches, false)
    }

    #[test]
    fn merge_overlays_clips_and_coalesces() {
        let older = [
            batch(0, 9, RecordState::Available, 1),
            batch(10, 19, RecordState::Acknowledged, 1),
        ];
        let newer = [
            batch(5, 12, RecordState::Archived, 2),
            batch(13, 14, RecordState::Archived, 2),
        ];
        let merged = merge_state_batches(&older, &newer, 3).unwrap_or_default();
        assert_eq!(
            merged,
            vec![
                batch(3, 4, RecordState::Available, 1),
                batch(5, 14, RecordState::Archived, 2),
                batch(15, 19, RecordState::Acknowledged, 1),
            ]
        );
    }

    #[test]
    fn merge_drops_never_delivered_and_reads_acquired_as_available() {
        let merged = merge_state_batches(
            &[],
            &[
                batch(0, 4, RecordState::Available, 0),
                batch(5, 6, RecordState::Acquired, 3),
            ],
            0,
        )
        .unwrap_or_default();
        assert_eq!(merged, vec![batch(5, 6, RecordState::Available, 3)]);
    }

    #[test]
    fn merge_refuses_an_inverted_batch() {
        let result = merge_state_batches(&[], &[batch(5, 4, RecordState::Archived, 1)], 0);
        assert!(matches!(
            result,
            Err(ShareStateError::InvalidStateBatch { .. })
        ));
    }

    #[test]
    fn a_snapshot_follows_every_n_updates() {
        let mut log = ShareStateLog::new(2);
        let first = log.initialize(ShareSnapshot::new(0, 1, 0));
        assert!(log.replay(&first).is_ok());
        let mut kinds = Vec::new();
        for i in 0..6 {
            let c = StateChanges::new(
                0,
                1,
                i,
                vec![batch(i, i, RecordState::Acknowledged, 1)],
                true,
            );
            let Ok(record) = log.write(&c) else {
                panic!("write refused")
            };
            kinds.push(matches!(record, ShareStateRecord::Snapshot(_)));
            assert!(log.replay(&record).is_ok());
        }
        assert_eq!(kinds, vec![false, false, true, false, false, true]);
        let state = log
            .state()
            .cloned()
            .unwrap_or_else(|| ShareSnapshot::new(0, 0, 0));
        assert_eq!(state.snapshot_epoch, 2);
        assert_eq!(state.start_offset, 5);
        assert_eq!(
            state.state_batches,
            vec![batch(5, 5, RecordState::Acknowledged, 1)]
        );
    }

    #[test]
    fn writes_from_a_deposed_leader_or_old_state_epoch_are_fenced() {
        let mut log = ShareStateLog::new(10);
        assert!(log
            .replay(&log.initialize(ShareSnapshot::new(3, 7, 0)))
            .is_ok());
        let mut stale_leader = changes(0, Vec::new());
        stale_leader.state_epoch = 3;
        stale_leader.leader_epoch = 6;
        assert_eq!(log.write(&stale_leader).map_err(|e| e.code()), Err(74));
        let mut stale_state = changes(0, Vec::new());
        stale_state.state_epoch = 2;
        stale_state.leader_epoch = 7;
        assert_eq!(log.write(&stale_state).map_err(|e| e.code()), Err(124));
    }

    #[test]
    fn the_start_offset_never_moves_back() {
        let mut log = ShareStateLog::new(10);
        assert!(log
            .replay(&log.initialize(ShareSnapshot::new(0, 0, 50)))
            .is_ok());
        let record = log.write(&changes(10, vec![batch(10, 60, RecordState::Archived, 1)]));
        let Ok(ShareStateRecord::Update(update)) = record else {
            panic!("expected an update")
        };
        assert_eq!(update.start_offset, 50);
        assert_eq!(
            update.state_batches,
            vec![batch(50, 60, RecordState::Archived, 1)]
        );
    }

    #[test]
    fn an_update_needs_its_snapshot() {
        let mut log = ShareStateLog::new(10);
        let update = ShareStateRecord::Update(ShareUpdate {
            snapshot_epoch: 0,
            leader_epoch: 0,
            start_offset: 0,
            state_batches: Vec::new(),
        });
        assert_eq!(
            log.replay(&update),
            Err(ShareStateError::UpdateWithoutSnapshot(0))
        );
        assert!(log
            .replay(&log.initialize(ShareSnapshot::new(0, 0, 0)))
            .is_ok());
        let wrong_epoch = ShareStateRecord::Update(ShareUpdate {
            snapshot_epoch: 1,
            leader_epoch: 0,
            start_offset: 0,
            state_batches: Vec::new(),
        });
        assert!(matches!(
            log.replay(&wrong_epoch),
            Err(ShareStateError::SnapshotEpochMismatch { .. })
        ));
    }

    #[test]
    fn json_round_trip() {
        let record = ShareStateRecord::Snapshot(ShareSnapshot {
            snapshot_epoch: 1,
            state_epoch: 2,
            leader_epoch: 3,
            start_offset: 4,
            state_batches: vec![batch(4, 9, RecordState::Acknowledged, 2)],
        });
        let json = record.to_json().unwrap_or_default();
        let text = String::from_utf8_lossy(&json);
        assert!(text.contains("\"type\":\"Snapshot\""), "{text}");
        assert!(text.contains("\"delivery_state\":2"), "{text}");
        assert_eq!(ShareStateRecord::from_json(&json).ok(), Some(record));
        assert!(ShareStateRecord::from_json(b"{\"type\":\"Nope\"}").is_err());
    }

    #[test]
    fn delivery_complete_count_counts_terminal_records() {
        let snapshot = ShareSnapshot {
            state_batches: vec![
                batch(0, 4, RecordState::Acknowledged, 1),
                batch(5, 6, RecordState::Available, 1),
                batch(7, 7, RecordState::Archived, 5),
            ],
            ..ShareSnapshot::new(0, 0, 0)
        };
        assert_eq!(snapshot.delivery_complete_count(), 6);
    }
}
