//! Committed offsets: OffsetCommit (with Kafka's generation and member checks), OffsetFetch,
//! OffsetDelete, and `offsets.retention.minutes` expiry. Offsets live in their group's
//! `ClassicGroup` (same mutex); every change is an OffsetCommit record (or tombstone) queued
//! under that mutex and awaited after it is released.
//!
//! Memory follows the log, as Kafka's `pendingOffsetCommits`: a commit or OffsetDelete changes
//! `ClassicGroup::offsets` only once its record is durable, so OffsetFetch never returns a commit
//! that a failed write lost. Each queued change takes a sequence number under the group mutex (so
//! sequence order is log order) and [`OffsetWrites`] applies a durable change only if no later
//! change of that partition was applied first: concurrent commits settle as the log does. The
//! apply runs in a spawned task, so a request dropped mid-wait (client gone) still applies its
//! durable commit. Expiry skips partitions with a commit in flight (Kafka does the same).

use std::collections::BTreeSet;

use crate::api::OffsetCommitRequest;
use crate::classic::refresh;
use strom_log::now_ms;

use crate::api::GroupState;
use crate::coordinator::GroupCoordinator;
use crate::error::{GroupError, WriteError};
use crate::group::GroupRef;
use crate::record::{CoordinatorRecord, OffsetAndMetadata};
use crate::writer::{wait, PendingWrite};

/// Per topic, per partition: the committed offset, if any.
pub type FetchedOffsets = Vec<(String, Vec<(i32, Option<OffsetAndMetadata>)>)>;

/// Per topic, per partition: the outcome of an OffsetDelete.
pub type DeletedOffsets = Vec<(String, Vec<(i32, Result<(), GroupError>)>)>;

/// A queued offset change: the partition, its sequence number, and the new value (`None`
/// deletes).
pub(crate) type OffsetChange = ((String, i32), u64, Option<OffsetAndMetadata>);

/// Per-partition results, and the write (with the changes it carries) to await.
type CommitOutcome = (
    Vec<Result<(), GroupError>>,
    Option<(GroupRef, PendingWrite, Vec<OffsetChange>)>,
);

/// Awaits `pending` in a task of its own, then applies `changes` to the group if durable.
/// Resolves to the write's outcome.
pub(crate) async fn apply_when_durable(
    group: GroupRef,
    pending: PendingWrite,
    changes: Vec<OffsetChange>,
) -> Result<(), GroupError> {
    let task = tokio::spawn(async move {
        let result = wait(pending).await;
        let mut guard = group.lock();
        let g = &mut *guard;
        for (key, seq, value) in changes {
            if g.offset_writes.finish(&key, seq, result.is_ok()) && g.state != GroupState::Dead {
                match value {
                    Some(v) => {
                        g.offsets.insert(key, v);
                    }
                    None => {
                        g.offsets.remove(&key);
                    }
                }
            }
        }
        result
    });
    task.await
        .unwrap_or(Err(GroupError::Write(WriteError::Closed)))
}

impl GroupCoordinator {
    /// OffsetCommit: one result per partition of `req.offsets`, after the records are durable.
    /// A group-level failure (unknown member, stale generation, …) is the `Err`.
    pub async fn commit_offsets(
        &self,
        req: OffsetCommitRequest,
    ) -> Result<Vec<Result<(), GroupError>>, GroupError> {
        let (results, pending) = self.commit_inner(&req)?;
        if let Some((group, p, changes)) = pending {
            if let Err(e) = apply_when_durable(group, p, changes).await {
                return Ok(results.into_iter().map(|r| r.and(Err(e.clone()))).collect());
            }
        }
        Ok(results)
    }

    fn commit_inner(&self, req: &OffsetCommitRequest) -> Result<CommitOutcome, GroupError> {
        if req.group_id.is_empty() {
            return Err(GroupError::InvalidGroupId);
        }
        let inner = &self.inner;
        let group = match inner.group(&req.group_id) {
            Some(g) => g,
            None if req.generation_id < 0 => inner.get_or_create(&req.group_id)?,
            None => {
                self.check_owned(&req.group_id)?;
                return Err(GroupError::IllegalGeneration);
            }
        };
        let mut guard = group.lock();
        let g = &mut *guard;
        if g.state == GroupState::Dead {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        if g.is_fenced(req.group_instance_id.as_deref(), &req.member_id) {
            return Err(GroupError::FencedInstanceId);
        }
        if req.generation_id < 0 && g.state == GroupState::Empty {
            // A simple (manual-assignment) commit: no membership to check.
        } else if g.state == GroupState::CompletingRebalance {
            return Err(GroupError::RebalanceInProgress);
        } else if !g.members.contains_key(&req.member_id) {
            return Err(GroupError::UnknownMemberId);
        } else if req.generation_id != g.generation_id {
            return Err(GroupError::IllegalGeneration);
        } else {
            refresh(g, &req.member_id);
        }
        let now = now_ms();
        let mut results = Vec::with_capacity(req.offsets.len());
        let mut records = Vec::new();
        let mut changes = Vec::new();
        for c in &req.offsets {
            if c.metadata.len() > inner.config.offset_metadata_max_bytes {
                results.push(Err(GroupError::OffsetMetadataTooLarge));
                continue;
            }
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
            results.push(Ok(()));
        }
        let pending = (!records.is_empty())
            .then(|| (group.clone(), inner.enqueue(g.partition, &records), changes));
        Ok((results, pending))
    }

    /// OffsetFetch: the committed offsets of the listed partitions (`None` = every committed
    /// partition). An unknown group has no offsets; that is not an error.
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        topics: Option<&[(String, Vec<i32>)]>,
    ) -> Result<FetchedOffsets, GroupError> {
        self.check_owned(group_id)?;
        let group = self.inner.group(group_id);
        let guard = group.as_ref().map(|g| g.lock());
        let offsets = guard
            .as_ref()
            .filter(|g| g.state != GroupState::Dead)
            .map(|g| &g.offsets);
        Ok(match topics {
            Some(list) => list
                .iter()
                .map(|(t, parts)| {
                    let found = parts
                        .iter()
                        .map(|p| {
                            let v = offsets.and_then(|o| o.get(&(t.clone(), *p)).cloned());
                            (*p, v)
                        })
                        .collect();
                    (t.clone(), found)
                })
                .collect(),
            None => {
                let mut out: FetchedOffsets = Vec::new();
                for ((t, p), v) in offsets.into_iter().flatten() {
                    match out.last_mut() {
                        Some((topic, parts)) if topic == t => parts.push((*p, Some(v.clone()))),
                        _ => out.push((t.clone(), vec![(*p, Some(v.clone()))])),
                    }
                }
                out
            }
        })
    }

    /// OffsetDelete: removes committed offsets of topics the group does not subscribe to (any
    /// topic of an Empty group). Answers after the tombstones are durable.
    pub async fn delete_offsets(
        &self,
        group_id: &str,
        topics: &[(String, Vec<i32>)],
    ) -> Result<DeletedOffsets, GroupError> {
        if group_id.is_empty() {
            return Err(GroupError::InvalidGroupId);
        }
        self.check_owned(group_id)?;
        let group = self
            .inner
            .group(group_id)
            .ok_or(GroupError::GroupIdNotFound)?;
        let (mut out, pending) = {
            let mut guard = group.lock();
            let g = &mut *guard;
            let subscribed: Option<BTreeSet<String>> = match g.state {
                GroupState::Dead => return Err(GroupError::GroupIdNotFound),
                GroupState::Empty => None,
                _ => match g.subscribed_topics() {
                    Some(s) => Some(s),
                    None => return Err(GroupError::NonEmptyGroup),
                },
            };
            let mut records = Vec::new();
            let mut changes = Vec::new();
            let mut out: DeletedOffsets = Vec::new();
            for (t, parts) in topics {
                let mut results = Vec::with_capacity(parts.len());
                for p in parts {
                    if subscribed.as_ref().is_some_and(|s| s.contains(t)) {
                        results.push((*p, Err(GroupError::GroupSubscribedToTopic)));
                        continue;
                    }
                    let key = (t.clone(), *p);
                    if g.offsets.contains_key(&key) || g.offset_writes.is_pending(&key) {
                        let seq = g.offset_writes.begin(&key);
                        changes.push((key, seq, None));
                        records.push(CoordinatorRecord::OffsetCommit {
                            group: g.group_id.clone(),
                            topic: t.clone(),
                            partition: *p,
                            value: None,
                        });
                    }
                    results.push((*p, Ok(())));
                }
                out.push((t.clone(), results));
            }
            let pending = (!records.is_empty()).then(|| self.inner.enqueue(g.partition, &records));
            (out, pending.map(|p| (p, changes)))
        };
        if let Some((p, changes)) = pending {
            if let Err(e) = apply_when_durable(group, p, changes).await {
                for (_, parts) in &mut out {
                    for (_, r) in parts.iter_mut() {
                        if r.is_ok() {
                            *r = Err(e.clone());
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// Drops offsets older than `offsets.retention.minutes` (Kafka's rules: an Empty group's
    /// offsets expire from the time it became Empty, a simple group's from each commit, and a
    /// Stable consumer group's only for topics no member subscribes to, KIP-496). An Empty group
    /// left without offsets is deleted. Returns how many offsets expired.
    pub fn expire_offsets(&self, now: i64) -> usize {
        let retention =
            i64::try_from(self.inner.config.offsets_retention.as_millis()).unwrap_or(i64::MAX);
        let mut expired_total = 0;
        for group in self.inner.all_groups() {
            // Offsets an open transaction will commit are not expired (Kafka's rule), and a group
            // with such offsets is not deleted. Read before locking the group (lock order).
            let id = group.lock().group_id.clone();
            let txn_pending = self.inner.pending_txn_partitions(&id);
            let dead = {
                let mut guard = group.lock();
                let g = &mut *guard;
                if g.state == GroupState::Dead {
                    continue;
                }
                let expired: Vec<(String, i32)> = match (&g.protocol_type, g.state) {
                    (Some(_), GroupState::Empty) => g
                        .offsets
                        .iter()
                        .filter(|(k, _)| {
                            !g.offset_writes.is_pending(k) && !txn_pending.contains(*k)
                        })
                        .filter(|_| g.state_timestamp_ms.saturating_add(retention) <= now)
                        .map(|(k, _)| k.clone())
                        .collect(),
                    (None, _) => g
                        .offsets
                        .iter()
                        .filter(|(k, _)| {
                            !g.offset_writes.is_pending(k) && !txn_pending.contains(*k)
                        })
                        .filter(|(_, v)| v.commit_timestamp_ms.saturating_add(retention) <= now)
                        .map(|(k, _)| k.clone())
                        .collect(),
                    (Some(_), GroupState::Stable) => match g.subscribed_topics() {
                        Some(subs) => g
                            .offsets
                            .iter()
                            .filter(|(k, _)| {
                                !g.offset_writes.is_pending(k) && !txn_pending.contains(*k)
                            })
                            .filter(|((t, _), v)| {
                                !subs.contains(t)
                                    && v.commit_timestamp_ms.saturating_add(retention) <= now
                            })
                            .map(|(k, _)| k.clone())
                            .collect(),
                        None => Vec::new(),
                    },
                    _ => Vec::new(),
                };
                let mut records: Vec<CoordinatorRecord> = Vec::new();
                for (t, p) in expired {
                    g.offsets.remove(&(t.clone(), p));
                    records.push(CoordinatorRecord::OffsetCommit {
                        group: g.group_id.clone(),
                        topic: t,
                        partition: p,
                        value: None,
                    });
                }
                expired_total += records.len();
                let dead = g.state == GroupState::Empty
                    && g.offsets.is_empty()
                    && g.offset_writes.pending_keys().next().is_none()
                    && txn_pending.is_empty();
                if dead {
                    g.transition(GroupState::Dead, now);
                    records.push(CoordinatorRecord::GroupMetadata {
                        group: g.group_id.clone(),
                        value: None,
                    });
                }
                if !records.is_empty() {
                    tracing::info!(group = %g.group_id, records = records.len(), deleted = dead, "offsets expired");
                    drop(self.inner.enqueue(g.partition, &records));
                }
                dead
            };
            if dead {
                let id = group.lock().group_id.clone();
                self.inner.remove_if_same(&id, &group);
            }
        }
        expired_total
    }
}
