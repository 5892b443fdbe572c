//! `ConsumerGroupCoordinator`: the KIP-848 consumer groups of the loaded `__consumer_offsets`
//! partitions — heartbeats, describe/list, the session and revocation timers, start-up replay —
//! and the rules that keep classic and consumer groups in one namespace.
//!
//! It sits beside the classic [`GroupCoordinator`] and shares its appenders (so records of both
//! kinds reach a partition in transition order) and its committed offsets: a consumer group's
//! offsets live in the classic coordinator's offset store, which sees them as simple commits once
//! this coordinator has checked the member and its epoch ([`ConsumerGroupCoordinator::commit_offsets`]).
//!
//! Concurrency: as the classic side, a `RwLock`ed map of per-group `Mutex`es held only for
//! in-memory transitions; records are queued under the group lock and awaited after it is
//! released. One timer task sweeps expired sessions and overdue revocations every
//! `timer_tick`. Memory is updated before the records are durable; a failed write is reported to
//! the caller (who retries or rejoins) but not rolled back.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use tokio::time::Instant;

use super::api::{
    ConsumerGroupConfig, ConsumerGroupDescription, ConsumerMemberDescription, DescribedPartitions,
    HeartbeatRequest, HeartbeatResponse, TopicMetadata,
};
use super::assignor::Assignment;
use super::group::ConsumerGroup;
use super::heartbeat::{heartbeat, remove_member, Env};
use super::reconcile::MemberState;
use super::record::{is_consumer_record, replay, ConsumerRecord};
use crate::api::GroupState;
use crate::api::OffsetCommitRequest;
use crate::coordinator::GroupCoordinator;
use crate::error::{GroupError, WriteError};
use crate::record::partition_for;
use crate::writer::{wait, LogEntry, PartitionWriter, PendingWrite};

type ConsumerGroupRef = Arc<Mutex<ConsumerGroup>>;

/// The consumer groups replayed from one `__consumer_offsets` partition, not yet served.
#[derive(Debug)]
pub struct LoadedConsumerGroups {
    partition: i32,
    groups: HashMap<String, ConsumerGroup>,
}

/// KIP-848 consumer groups of this node. Cheap to clone; thread-safe.
#[derive(Debug, Clone)]
pub struct ConsumerGroupCoordinator {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: ConsumerGroupConfig,
    classic: GroupCoordinator,
    writer: Arc<dyn PartitionWriter>,
    groups: RwLock<HashMap<String, ConsumerGroupRef>>,
    timer: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl ConsumerGroupCoordinator {
    /// A coordinator beside `classic`, reading `writer` at load. Must be called inside a tokio
    /// runtime (starts the timer task).
    pub fn new(
        config: ConsumerGroupConfig,
        classic: GroupCoordinator,
        writer: Arc<dyn PartitionWriter>,
    ) -> Self {
        let inner = Arc::new(Inner {
            config,
            classic,
            writer,
            groups: RwLock::new(HashMap::new()),
            timer: Mutex::new(None),
        });
        let weak = Arc::downgrade(&inner);
        let every = inner.config.timer_tick;
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { break };
                ConsumerGroupCoordinator { inner }.expire(Instant::now());
            }
        });
        *inner.timer.lock() = Some(task);
        ConsumerGroupCoordinator { inner }
    }

    /// The configuration.
    pub fn config(&self) -> &ConsumerGroupConfig {
        &self.inner.config
    }

    /// Replays the consumer-group records of `partition` (call after the classic coordinator's
    /// `load_partition`, which starts the partition's appender). Loaded members get a fresh
    /// session timeout.
    pub fn load_partition(&self, partition: i32) -> Result<(), WriteError> {
        let entries = self.inner.writer.read_log(partition)?;
        let loaded = self.replay(partition, &entries);
        self.install(loaded);
        Ok(())
    }

    /// Replays the consumer-group records among `entries` of `partition`, without serving them.
    pub fn replay(&self, partition: i32, entries: &[LogEntry]) -> LoadedConsumerGroups {
        let deadline = Instant::now() + std::time::Duration::from_millis(self.session_ms());
        let mut loaded: HashMap<String, ConsumerGroup> = HashMap::new();
        let records = entries.iter().filter_map(|e| match e {
            LogEntry::Record { record, .. } if is_consumer_record(record) => Some(record),
            _ => None,
        });
        for r in records {
            match ConsumerRecord::decode(r) {
                Ok(rec) => replay(&mut loaded, partition, rec, deadline),
                Err(reason) => {
                    tracing::warn!(
                        partition,
                        reason,
                        "skipping undecodable consumer group record"
                    )
                }
            }
        }
        LoadedConsumerGroups {
            partition,
            groups: loaded,
        }
    }

    /// Adds replayed groups (before the classic coordinator's `install`, which starts serving
    /// the partition). Groups left from an earlier load of the partition are replaced.
    pub fn install(&self, loaded: LoadedConsumerGroups) {
        self.unload_partition(loaded.partition);
        let mut groups = self.inner.groups.write();
        for (id, g) in loaded.groups {
            groups.insert(id, Arc::new(Mutex::new(g)));
        }
    }

    /// Stops serving `partition`'s consumer groups.
    pub fn unload_partition(&self, partition: i32) {
        self.inner
            .groups
            .write()
            .retain(|_, g| g.lock().partition != partition);
    }

    /// Stops the timer task.
    pub fn shutdown(&self) {
        if let Some(t) = self.inner.timer.lock().take() {
            t.abort();
        }
    }

    fn session_ms(&self) -> u64 {
        u64::try_from(self.inner.config.session_timeout_ms).unwrap_or(0)
    }

    fn group(&self, group_id: &str) -> Option<ConsumerGroupRef> {
        self.inner.groups.read().get(group_id).cloned()
    }

    fn enqueue(&self, partition: i32, records: &[ConsumerRecord]) -> Option<PendingWrite> {
        (!records.is_empty()).then(|| {
            let encoded = records.iter().map(ConsumerRecord::encode).collect();
            self.inner.classic.inner.enqueue_records(partition, encoded)
        })
    }

    /// ConsumerGroupHeartbeat: answers once the records of the transition are durable.
    pub async fn heartbeat(
        &self,
        req: HeartbeatRequest,
        topics: &(dyn TopicMetadata + Sync),
    ) -> Result<HeartbeatResponse, GroupError> {
        let (resp, pending) = self.heartbeat_inner(&req, topics)?;
        if let Some(p) = pending {
            wait(p).await?;
        }
        Ok(resp)
    }

    fn heartbeat_inner(
        &self,
        req: &HeartbeatRequest,
        topics: &(dyn TopicMetadata + Sync),
    ) -> Result<(HeartbeatResponse, Option<PendingWrite>), GroupError> {
        if req.group_id.is_empty() {
            return Err(GroupError::InvalidRequest("empty group id"));
        }
        self.inner.classic.check_owned(&req.group_id)?;
        let group = match self.group(&req.group_id) {
            Some(g) => g,
            None if req.member_epoch == 0 => {
                // One namespace: a classic group with members cannot be joined with this protocol.
                if self
                    .classic_state(&req.group_id)
                    .is_some_and(|s| s != GroupState::Empty)
                {
                    return Err(GroupError::GroupIdNotFound);
                }
                let partition = self.inner.classic.partition_for(&req.group_id);
                let mut groups = self.inner.groups.write();
                groups
                    .entry(req.group_id.clone())
                    .or_insert_with(|| {
                        Arc::new(Mutex::new(ConsumerGroup::new(
                            req.group_id.clone(),
                            partition,
                        )))
                    })
                    .clone()
            }
            None => return Err(GroupError::UnknownMemberId),
        };
        let mut g = group.lock();
        if g.dead {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        // The group's own configs (IncrementalAlterConfigs on the GROUP) win over the broker's.
        let overridden;
        let config = if req.session_timeout_ms.is_some() || req.heartbeat_interval_ms.is_some() {
            let base = &self.inner.config;
            overridden = ConsumerGroupConfig {
                session_timeout_ms: req.session_timeout_ms.unwrap_or(base.session_timeout_ms),
                heartbeat_interval_ms: req
                    .heartbeat_interval_ms
                    .unwrap_or(base.heartbeat_interval_ms),
                ..base.clone()
            };
            &overridden
        } else {
            &self.inner.config
        };
        let env = Env {
            config,
            topics,
            now: Instant::now(),
        };
        let (resp, records) = heartbeat(&mut g, req, &env)?;
        let pending = self.enqueue(g.partition, &records);
        Ok((resp, pending))
    }

    fn classic_state(&self, group_id: &str) -> Option<GroupState> {
        self.inner
            .classic
            .inner
            .group(group_id)
            .map(|g| g.lock().state)
            .filter(|s| *s != GroupState::Dead)
    }

    /// Fences members whose session expired or whose revocation is overdue.
    fn expire(&self, now: Instant) {
        let groups: Vec<ConsumerGroupRef> = self.inner.groups.read().values().cloned().collect();
        for group in groups {
            let mut g = group.lock();
            let expired: Vec<String> = g
                .members
                .values()
                .filter(|m| m.deadline <= now || m.revocation_deadline.is_some_and(|d| d <= now))
                .map(|m| m.member_id.clone())
                .collect();
            if expired.is_empty() {
                continue;
            }
            let mut records = Vec::new();
            for id in &expired {
                tracing::info!(group = %g.group_id, member = %id, "consumer group member expired");
                records.extend(remove_member(&mut g, id));
            }
            // Durability is not awaited: a lost expiry is redone after a restart.
            drop(self.enqueue(g.partition, &records));
        }
    }

    /// Whether `group_id` is a live consumer group.
    pub fn is_consumer_group(&self, group_id: &str) -> bool {
        self.group(group_id).is_some_and(|g| !g.lock().dead)
    }

    /// Whether `group_id` is a consumer group with members.
    pub fn has_members(&self, group_id: &str) -> bool {
        self.group(group_id)
            .is_some_and(|g| !g.lock().dead && !g.lock().members.is_empty())
    }

    /// Removes an empty consumer group (tombstoning its records): DeleteGroups, or a classic
    /// JoinGroup taking over the id. Fails with NON_EMPTY_GROUP if it has members.
    pub async fn delete_group(&self, group_id: &str) -> Result<(), GroupError> {
        let pending = {
            let Some(group) = self.group(group_id) else {
                return Err(GroupError::GroupIdNotFound);
            };
            let mut g = group.lock();
            if !g.members.is_empty() {
                return Err(GroupError::NonEmptyGroup);
            }
            g.dead = true;
            let records = [
                ConsumerRecord::TargetEpoch {
                    group: g.group_id.clone(),
                    epoch: None,
                },
                ConsumerRecord::Group {
                    group: g.group_id.clone(),
                    value: None,
                },
            ];
            let pending = self.enqueue(g.partition, &records);
            drop(g);
            let mut groups = self.inner.groups.write();
            if groups.get(group_id).is_some_and(|x| Arc::ptr_eq(x, &group)) {
                groups.remove(group_id);
            }
            pending
        };
        match pending {
            Some(p) => wait(p).await,
            None => Ok(()),
        }
    }

    /// OffsetCommit for any group: a consumer group's member is checked here (member id, and its
    /// epoch: the current one, or the previous one while its epoch bump is in flight — else
    /// STALE_MEMBER_EPOCH), then the commit is stored by the classic offset store as a simple
    /// commit. Other groups go straight to the classic coordinator.
    pub async fn commit_offsets(
        &self,
        mut req: OffsetCommitRequest,
    ) -> Result<Vec<Result<(), GroupError>>, GroupError> {
        if let Some(group) = self.group(&req.group_id) {
            let g = group.lock();
            if !g.dead {
                let simple = req.generation_id < 0 && req.member_id.is_empty();
                if simple && !g.members.is_empty() {
                    return Err(GroupError::UnknownMemberId);
                }
                if !simple {
                    let m = g
                        .members
                        .get(&req.member_id)
                        .ok_or(GroupError::UnknownMemberId)?;
                    let e = req.generation_id;
                    if e != m.current.member_epoch && e != m.current.previous_member_epoch {
                        return Err(GroupError::StaleMemberEpoch);
                    }
                }
                drop(g);
                req.generation_id = -1;
                req.member_id = String::new();
                req.group_instance_id = None;
            }
        }
        self.inner.classic.commit_offsets(req).await
    }

    /// Consumer groups for ListGroups: (group id, state name), sorted by id.
    pub fn list_groups(&self) -> Vec<(String, &'static str)> {
        let groups: Vec<ConsumerGroupRef> = self.inner.groups.read().values().cloned().collect();
        let mut out: Vec<(String, &'static str)> = groups
            .iter()
            .filter_map(|g| {
                let g = g.lock();
                (!g.dead).then(|| (g.group_id.clone(), g.state()))
            })
            .collect();
        out.sort();
        out
    }

    /// ConsumerGroupDescribe for one group.
    pub fn describe_group(&self, group_id: &str) -> Result<ConsumerGroupDescription, GroupError> {
        self.inner.classic.check_owned(group_id)?;
        let group = self.group(group_id).ok_or(GroupError::GroupIdNotFound)?;
        let g = group.lock();
        if g.dead {
            return Err(GroupError::GroupIdNotFound);
        }
        let describe = |a: &Assignment| -> DescribedPartitions {
            a.iter()
                .map(|(t, ps)| {
                    let name = g
                        .subscribed
                        .get(t)
                        .map(|(n, _)| n.clone())
                        .unwrap_or_default();
                    (*t, name, ps.iter().copied().collect())
                })
                .collect()
        };
        let empty = Assignment::new();
        Ok(ConsumerGroupDescription {
            state: g.state(),
            group_epoch: g.group_epoch,
            assignment_epoch: g.assignment_epoch,
            assignor_name: g.assignor.clone(),
            members: g
                .members
                .values()
                .map(|m| ConsumerMemberDescription {
                    member_id: m.member_id.clone(),
                    instance_id: m.instance_id.clone(),
                    rack_id: m.rack_id.clone(),
                    member_epoch: m.current.member_epoch,
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    subscribed_topic_names: m.subscribed_topic_names.clone(),
                    subscribed_topic_regex: m.subscribed_topic_regex.clone(),
                    assignment: describe(&m.current.assigned),
                    target_assignment: describe(g.target.get(&m.member_id).unwrap_or(&empty)),
                })
                .collect(),
        })
    }

    /// The reconciliation state of a member (tests and diagnostics).
    pub fn member_state(&self, group_id: &str, member_id: &str) -> Option<MemberState> {
        let g = self.group(group_id)?;
        let g = g.lock();
        g.members.get(member_id).map(|m| m.current.state)
    }

    /// The `__consumer_offsets` partition of a group.
    pub fn partition_for(&self, group_id: &str) -> i32 {
        partition_for(
            group_id,
            self.inner.classic.config().offsets_topic_partitions,
        )
    }

    #[cfg(test)]
    pub(crate) fn with_group<R>(
        &self,
        group_id: &str,
        f: impl FnOnce(&ConsumerGroup) -> R,
    ) -> Option<R> {
        self.group(group_id).map(|g| f(&g.lock()))
    }
}
