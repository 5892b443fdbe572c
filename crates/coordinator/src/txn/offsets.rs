//! The group coordinator's side of TxnOffsetCommit: a transaction's offsets, committed when its
//! COMMIT is being completed. They bypass the member/generation check (that was done when the
//! producer sent them) and are otherwise written exactly like an OffsetCommit: OffsetCommit
//! records queued under the group mutex, applied to memory once durable.

use crate::api::PartitionCommit;
use crate::coordinator::now_ms;
use crate::error::GroupError;
use crate::group::GroupState;
use crate::offsets::apply_when_durable;
use crate::record::{CoordinatorRecord, OffsetAndMetadata};
use crate::GroupCoordinator;

impl GroupCoordinator {
    /// Commits a transaction's offsets for `group_id`; completes once durable.
    pub(crate) async fn commit_transactional_offsets(
        &self,
        group_id: &str,
        offsets: &[PartitionCommit],
    ) -> Result<(), GroupError> {
        if offsets.is_empty() {
            return Ok(());
        }
        let group = self.inner.get_or_create(group_id)?;
        let (pending, changes) = {
            let mut guard = group.lock();
            let g = &mut *guard;
            if g.state == GroupState::Dead {
                return Err(GroupError::CoordinatorNotAvailable);
            }
            let now = now_ms();
            let mut records = Vec::with_capacity(offsets.len());
            let mut changes = Vec::with_capacity(offsets.len());
            for c in offsets {
                let value = OffsetAndMetadata {
                    offset: c.offset,
                    leader_epoch: c.leader_epoch,
                    metadata: c.metadata.clone(),
                    commit_timestamp_ms: now,
                };
                let key = (c.topic.clone(), c.partition);
                let seq = g.offset_writes.begin(&key);
                changes.push((key, seq, Some(value.clone())));
                records.push(CoordinatorRecord::OffsetCommit {
                    group: g.group_id.clone(),
                    topic: c.topic.clone(),
                    partition: c.partition,
                    value: Some(value),
                });
            }
            (self.inner.enqueue(g.partition, &records), changes)
        };
        apply_when_durable(group, pending, changes).await
    }
}
