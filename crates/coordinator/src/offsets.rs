//! Committed offsets: OffsetCommit (with Kafka's generation and member checks), OffsetFetch,
//! OffsetDelete, and `offsets.retention.minutes` expiry. Offsets live in their group's
//! `ClassicGroup` (same mutex); every change is an OffsetCommit record (or tombstone) queued
//! under that mutex and awaited after it is released.
//!
//! Known simplification: a commit is applied in memory when queued, not when durable, so if the
//! write fails (the log directory went offline) memory is ahead of disk until restart; the
//! client is told the commit failed.

use std::collections::BTreeSet;

use crate::api::OffsetCommitRequest;
use crate::classic::refresh;
use crate::coordinator::{now_ms, GroupCoordinator};
use crate::error::GroupError;
use crate::group::GroupState;
use crate::record::{CoordinatorRecord, OffsetAndMetadata};
use crate::writer::{wait, PendingWrite};

/// Per topic, per partition: the committed offset, if any.
pub type FetchedOffsets = Vec<(String, Vec<(i32, Option<OffsetAndMetadata>)>)>;

/// Per topic, per partition: the outcome of an OffsetDelete.
pub type DeletedOffsets = Vec<(String, Vec<(i32, Result<(), GroupError>)>)>;

/// Per-partition results, and the write to await.
type CommitOutcome = (Vec<Result<(), GroupError>>, Option<PendingWrite>);

impl GroupCoordinator {
    /// OffsetCommit: one result per partition of `req.offsets`, after the records are durable.
    /// A group-level failure (unknown member, stale generation, …) is the `Err`.
    pub async fn commit_offsets(
        &self,
        req: OffsetCommitRequest,
    ) -> Result<Vec<Result<(), GroupError>>, GroupError> {
        let (results, pending) = self.commit_inner(&req)?;
        if let Some(p) = pending {
            if let Err(e) = wait(p).await {
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
            g.offsets
                .insert((c.topic.clone(), c.partition), value.clone());
            records.push(CoordinatorRecord::OffsetCommit {
                group: g.group_id.clone(),
                topic: c.topic.clone(),
                partition: c.partition,
                value: Some(value),
            });
            results.push(Ok(()));
        }
        let pending = (!records.is_empty()).then(|| inner.enqueue(g.partition, &records));
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
            let mut out: DeletedOffsets = Vec::new();
            for (t, parts) in topics {
                let mut results = Vec::with_capacity(parts.len());
                for p in parts {
                    if subscribed.as_ref().is_some_and(|s| s.contains(t)) {
                        results.push((*p, Err(GroupError::GroupSubscribedToTopic)));
                        continue;
                    }
                    if g.offsets.remove(&(t.clone(), *p)).is_some() {
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
            (out, pending)
        };
        if let Some(p) = pending {
            if let Err(e) = wait(p).await {
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
                        .filter(|_| g.state_timestamp_ms.saturating_add(retention) <= now)
                        .map(|(k, _)| k.clone())
                        .collect(),
                    (None, _) => g
                        .offsets
                        .iter()
                        .filter(|(_, v)| v.commit_timestamp_ms.saturating_add(retention) <= now)
                        .map(|(k, _)| k.clone())
                        .collect(),
                    (Some(_), GroupState::Stable) => match g.subscribed_topics() {
                        Some(subs) => g
                            .offsets
                            .iter()
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
                let dead = g.state == GroupState::Empty && g.offsets.is_empty();
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
