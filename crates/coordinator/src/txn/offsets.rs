//! The group coordinator's side of TxnOffsetCommit, as Kafka's *pending transactional offset
//! commits*: the offsets are written at once to the group's `__consumer_offsets` partition as
//! OffsetCommit records inside the producer's transaction (a transactional batch with its
//! producer id and epoch), so they are durable before TxnOffsetCommit is answered. They stay
//! pending (invisible to OffsetFetch) until the transaction's COMMIT marker is durable in that
//! partition, then become the group's offsets; an ABORT marker drops them. Start-up replay
//! (`GroupCoordinator::load_partition`) does the same from the log; offsets still pending after
//! replay are resolved when the transaction coordinator completes the transaction.

use std::collections::{BTreeMap, HashMap};

use crate::api::GroupState;
use crate::api::PartitionCommit;
use crate::error::GroupError;
use crate::record::{partition_for, CoordinatorRecord, OffsetAndMetadata};
use crate::writer::wait;
use crate::GroupCoordinator;
use strom_log::now_ms;

/// Pending transactional offsets: producer id → group → (topic, partition) → offset.
pub(crate) type PendingTxnOffsets = HashMap<i64, BTreeMap<String, GroupTxnOffsets>>;

/// One group's pending offsets of one producer: (topic, partition) → offset.
pub(crate) type GroupTxnOffsets = BTreeMap<(String, i32), OffsetAndMetadata>;

/// The group membership a TxnOffsetCommit v3+ carries (v0–v2: `member_id` empty, generation -1).
#[derive(Debug, Clone, Default)]
pub struct TxnCommitMember {
    /// Member id ("" = not given).
    pub member_id: String,
    /// Generation (-1 = not given).
    pub generation_id: i32,
    /// Static member's instance id.
    pub group_instance_id: Option<String>,
}

impl GroupCoordinator {
    /// Writes a transaction's offsets for `group_id` as pending transactional offsets of
    /// `producer`; completes once durable. Checks the member and generation against a classic
    /// group as Kafka does (FENCED_INSTANCE_ID, UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION).
    pub async fn store_transactional_offsets(
        &self,
        group_id: &str,
        producer: (i64, i16),
        member: &TxnCommitMember,
        offsets: &[PartitionCommit],
    ) -> Result<(), GroupError> {
        if offsets.is_empty() {
            return Ok(());
        }
        let group = self.inner.get_or_create(group_id)?;
        let (pending, values) = {
            let mut guard = group.lock();
            let g = &mut *guard;
            if g.state == GroupState::Dead {
                return Err(GroupError::CoordinatorNotAvailable);
            }
            if g.is_fenced(member.group_instance_id.as_deref(), &member.member_id) {
                return Err(GroupError::FencedInstanceId);
            }
            // Only a classic group's membership is known here (KIP-848 groups keep theirs in
            // the consumer-group coordinator; their offsets only live here).
            if g.protocol_type.is_some() {
                if !member.member_id.is_empty() && !g.members.contains_key(&member.member_id) {
                    return Err(GroupError::UnknownMemberId);
                }
                if member.generation_id >= 0 && member.generation_id != g.generation_id {
                    return Err(GroupError::IllegalGeneration);
                }
            }
            let now = now_ms();
            let mut records = Vec::with_capacity(offsets.len());
            let mut values = Vec::with_capacity(offsets.len());
            for c in offsets {
                if c.metadata.len() > self.inner.config.offset_metadata_max_bytes {
                    return Err(GroupError::OffsetMetadataTooLarge);
                }
                let value = OffsetAndMetadata {
                    offset: c.offset,
                    leader_epoch: c.leader_epoch,
                    metadata: c.metadata.clone(),
                    commit_timestamp_ms: now,
                };
                values.push(((c.topic.clone(), c.partition), value.clone()));
                records.push(CoordinatorRecord::OffsetCommit {
                    group: g.group_id.clone(),
                    topic: c.topic.clone(),
                    partition: c.partition,
                    value: Some(value),
                });
            }
            (
                self.inner
                    .enqueue_transactional(g.partition, &records, producer),
                values,
            )
        };
        wait(pending).await?;
        let mut all = self.inner.pending_txn.lock();
        let group = all
            .entry(producer.0)
            .or_default()
            .entry(group_id.to_string())
            .or_default();
        group.extend(values);
        Ok(())
    }

    /// Whether `producer_id` has pending transactional offsets (tests).
    #[cfg(test)]
    pub(crate) fn has_pending_transactional_offsets(&self, producer_id: i64) -> bool {
        self.inner.pending_txn.lock().contains_key(&producer_id)
    }

    /// The transaction of `producer_id` has its COMMIT (`commit`) or ABORT marker durable in
    /// `__consumer_offsets` partition `partition`: its pending offsets of the groups there become
    /// the groups' offsets, or are dropped. Resolves once applied to memory. Called by the
    /// transaction coordinator for the partitions it marked itself and by WriteTxnMarkers for
    /// markers another node's coordinator sent here.
    pub async fn complete_transactional_offsets(
        &self,
        partition: i32,
        producer_id: i64,
        commit: bool,
    ) -> Result<(), GroupError> {
        let n = self.inner.config.offsets_topic_partitions;
        let resolved: Vec<(String, GroupTxnOffsets)> = {
            let mut all = self.inner.pending_txn.lock();
            let Some(groups) = all.get_mut(&producer_id) else {
                return Ok(());
            };
            let here: Vec<String> = groups
                .keys()
                .filter(|g| partition_for(g, n) == partition)
                .cloned()
                .collect();
            let out = here
                .into_iter()
                .filter_map(|g| groups.remove(&g).map(|o| (g, o)))
                .collect();
            if groups.is_empty() {
                all.remove(&producer_id);
            }
            out
        };
        if !commit {
            return Ok(());
        }
        for (group_id, offsets) in resolved {
            // Unloaded meanwhile: the marker is in the log, and the next load replays it.
            let Ok(group) = self.inner.get_or_create(&group_id) else {
                continue;
            };
            let mut guard = group.lock();
            let g = &mut *guard;
            if g.state == GroupState::Dead {
                continue;
            }
            for (key, value) in offsets {
                // Registered as a change like any commit, so an OffsetCommit queued earlier and
                // completing later does not overwrite it.
                let seq = g.offset_writes.begin(&key);
                g.offset_writes.finish(&key, seq, true);
                g.offsets.insert(key, value);
            }
        }
        Ok(())
    }
}
