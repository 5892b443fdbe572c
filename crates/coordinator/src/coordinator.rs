//! `GroupCoordinator`: the groups of the `__consumer_offsets` partitions this node has loaded,
//! their replay and unload as partition leadership comes and goes, and the admin operations
//! (ListGroups, DescribeGroups, DeleteGroups).
//!
//! A partition is absent (NOT_COORDINATOR), loading (COORDINATOR_LOAD_IN_PROGRESS) or loaded;
//! loading and unloading are in `coordinator/load.rs`.
//!
//! Concurrency: a `RwLock`ed map from group id to a per-group `Mutex<ClassicGroup>`. Locks are
//! only held for in-memory work and never nested except map → group (in `get_or_create`);
//! durable writes are queued on the partition's appender while the group lock is held (so they
//! reach the log in transition order) and awaited after it is released. Slow storage for one
//! partition therefore delays only the responses of that partition's groups, never another
//! group's state transitions. Timers are tokio tasks holding a `Weak` to the coordinator.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Weak};

use parking_lot::{Mutex, RwLock};

use strom_log::now_ms;

use crate::api::GroupState;
use crate::api::{GroupDescription, GroupListing, MemberDescription};
use crate::config::GroupCoordinatorConfig;
use crate::error::{GroupError, WriteError};
use crate::group::{ClassicGroup, GroupRef};
use crate::record::{partition_for, CoordinatorRecord, Record};
use crate::writer::{wait, Appender, PartitionWriter, PendingWrite};

mod load;

/// A `__consumer_offsets` partition this node coordinates.
#[derive(Debug)]
enum Owned {
    /// Being replayed: its groups answer COORDINATOR_LOAD_IN_PROGRESS.
    Loading,
    /// Served, through its single appender.
    Loaded(Arc<Appender>),
}

/// A replayed `__consumer_offsets` partition, not yet served ([`GroupCoordinator::replay`],
/// then [`GroupCoordinator::install`]).
#[derive(Debug)]
pub struct LoadedGroups {
    partition: i32,
    groups: HashMap<String, ClassicGroup>,
    pending: crate::txn::PendingTxnOffsets,
}

/// The consumer-group coordinator of this node. Cheap to share (`Arc` inside); thread-safe.
#[derive(Debug, Clone)]
pub struct GroupCoordinator {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) config: GroupCoordinatorConfig,
    writer: Arc<dyn PartitionWriter>,
    groups: RwLock<HashMap<String, GroupRef>>,
    /// The `__consumer_offsets` partitions coordinated here (led by this node).
    partitions: RwLock<HashMap<i32, Owned>>,
    expiry: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Pending transactional offsets (durable in `__consumer_offsets` inside the producer's
    /// transaction, not yet resolved by a marker).
    pub(crate) pending_txn: Mutex<crate::txn::PendingTxnOffsets>,
}

impl GroupCoordinator {
    /// A coordinator with no partitions loaded. Must be called inside a tokio runtime (timers
    /// and appenders are tasks); starts the offset-expiry task.
    pub fn new(config: GroupCoordinatorConfig, writer: Arc<dyn PartitionWriter>) -> Self {
        let inner = Arc::new(Inner {
            config,
            writer,
            groups: RwLock::new(HashMap::new()),
            partitions: RwLock::new(HashMap::new()),
            expiry: Mutex::new(None),
            pending_txn: Mutex::new(HashMap::new()),
        });
        let weak = Arc::downgrade(&inner);
        let every = inner.config.offsets_retention_check_interval;
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { break };
                GroupCoordinator { inner }.expire_offsets(now_ms());
            }
        });
        *inner.expiry.lock() = Some(task);
        GroupCoordinator { inner }
    }

    /// The configuration.
    pub fn config(&self) -> &GroupCoordinatorConfig {
        &self.inner.config
    }

    /// The `__consumer_offsets` partition of a group.
    pub fn partition_for(&self, group_id: &str) -> i32 {
        partition_for(group_id, self.inner.config.offsets_topic_partitions)
    }

    /// Stops the background tasks.
    pub fn shutdown(&self) {
        if let Some(t) = self.inner.expiry.lock().take() {
            t.abort();
        }
        self.inner.partitions.write().clear();
    }

    /// ListGroups: every live group matching the state filter (empty = all).
    pub fn list_groups(&self, states: &[GroupState]) -> Vec<GroupListing> {
        let groups: Vec<GroupRef> = self.inner.groups.read().values().cloned().collect();
        let mut out: Vec<GroupListing> = groups
            .iter()
            .filter_map(|g| {
                let g = g.lock();
                let keep =
                    g.state != GroupState::Dead && (states.is_empty() || states.contains(&g.state));
                keep.then(|| GroupListing {
                    group_id: g.group_id.clone(),
                    protocol_type: g.protocol_type.clone().unwrap_or_default(),
                    state: g.state,
                })
            })
            .collect();
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        out
    }

    /// DescribeGroups for one group.
    pub fn describe_group(&self, group_id: &str) -> Result<GroupDescription, GroupError> {
        self.check_owned(group_id)?;
        let group = self
            .inner
            .group(group_id)
            .ok_or(GroupError::GroupIdNotFound)?;
        let g = group.lock();
        if g.state == GroupState::Dead {
            return Err(GroupError::GroupIdNotFound);
        }
        let stable = g.state == GroupState::Stable;
        let protocol = g.protocol_name.clone().unwrap_or_default();
        Ok(GroupDescription {
            state: g.state,
            protocol_type: g.protocol_type.clone().unwrap_or_default(),
            protocol_name: if stable {
                protocol.clone()
            } else {
                String::new()
            },
            members: g
                .members
                .values()
                .map(|m| MemberDescription {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: if stable {
                        m.metadata_for(&protocol)
                    } else {
                        Default::default()
                    },
                    assignment: if stable {
                        m.assignment.clone()
                    } else {
                        Default::default()
                    },
                })
                .collect(),
        })
    }

    /// DeleteGroups: one result per id; only Empty groups can be deleted. Offsets and the group
    /// are tombstoned; the answer waits for the tombstones to be durable.
    pub async fn delete_groups(&self, group_ids: &[String]) -> Vec<Result<(), GroupError>> {
        let mut pending: Vec<Result<PendingWrite, GroupError>> = Vec::new();
        for id in group_ids {
            pending.push(self.delete_one(id));
        }
        let mut out = Vec::with_capacity(pending.len());
        for p in pending {
            out.push(match p {
                Ok(w) => wait(w).await,
                Err(e) => Err(e),
            });
        }
        out
    }

    fn delete_one(&self, group_id: &str) -> Result<PendingWrite, GroupError> {
        if group_id.is_empty() {
            return Err(GroupError::InvalidGroupId);
        }
        self.check_owned(group_id)?;
        let group = self
            .inner
            .group(group_id)
            .ok_or(GroupError::GroupIdNotFound)?;
        // Kafka refuses to delete a group an open transaction has offsets for: its COMMIT marker
        // would bring them back after the tombstones.
        if !self.inner.pending_txn_partitions(group_id).is_empty() {
            return Err(GroupError::NonEmptyGroup);
        }
        let pending = {
            let mut g = group.lock();
            match g.state {
                GroupState::Dead => return Err(GroupError::GroupIdNotFound),
                GroupState::Empty => {}
                _ => return Err(GroupError::NonEmptyGroup),
            }
            let records = tombstones_for(&g);
            g.offsets.clear();
            g.transition(GroupState::Dead, now_ms());
            self.inner.enqueue(g.partition, &records)
        };
        self.inner.remove_if_same(group_id, &group);
        Ok(pending)
    }

    /// Fails with NOT_COORDINATOR unless the group's partition is loaded here
    /// (COORDINATOR_LOAD_IN_PROGRESS while it is being loaded).
    pub fn check_owned(&self, group_id: &str) -> Result<(), GroupError> {
        self.inner.check_partition(self.partition_for(group_id))
    }

    /// Whether `partition` is loaded and served here.
    pub fn is_loaded(&self, partition: i32) -> bool {
        self.inner.check_partition(partition).is_ok()
    }

    /// Whether some partition led here is still loading (ListGroups reports it).
    pub fn load_in_progress(&self) -> bool {
        self.inner
            .partitions
            .read()
            .values()
            .any(|p| matches!(p, Owned::Loading))
    }
}

/// Tombstones for a group and all its offsets (including commits still in flight).
pub(crate) fn tombstones_for(g: &ClassicGroup) -> Vec<CoordinatorRecord> {
    let keys: std::collections::BTreeSet<&(String, i32)> = g
        .offsets
        .keys()
        .chain(g.offset_writes.pending_keys())
        .collect();
    let mut records: Vec<CoordinatorRecord> = keys
        .into_iter()
        .map(|(t, p)| CoordinatorRecord::OffsetCommit {
            group: g.group_id.clone(),
            topic: t.clone(),
            partition: *p,
            value: None,
        })
        .collect();
    records.push(CoordinatorRecord::GroupMetadata {
        group: g.group_id.clone(),
        value: None,
    });
    records
}

impl Inner {
    /// The partitions of `group_id` with transactional offsets not yet resolved by a marker.
    pub(crate) fn pending_txn_partitions(&self, group_id: &str) -> BTreeSet<(String, i32)> {
        self.pending_txn
            .lock()
            .values()
            .filter_map(|groups| groups.get(group_id))
            .flat_map(|offsets| offsets.keys().cloned())
            .collect()
    }

    fn check_partition(&self, partition: i32) -> Result<(), GroupError> {
        match self.partitions.read().get(&partition) {
            Some(Owned::Loaded(_)) => Ok(()),
            Some(Owned::Loading) => Err(GroupError::CoordinatorLoadInProgress),
            None => Err(GroupError::NotCoordinator),
        }
    }

    /// The appender of a loaded partition.
    fn appender(&self, partition: i32) -> Option<Arc<Appender>> {
        match self.partitions.read().get(&partition) {
            Some(Owned::Loaded(a)) => Some(a.clone()),
            _ => None,
        }
    }

    pub(crate) fn group(&self, group_id: &str) -> Option<GroupRef> {
        self.groups.read().get(group_id).cloned()
    }

    /// The live group, created Empty if absent (or Dead).
    pub(crate) fn get_or_create(&self, group_id: &str) -> Result<GroupRef, GroupError> {
        let partition = partition_for(group_id, self.config.offsets_topic_partitions);
        self.check_partition(partition)?;
        if let Some(g) = self.group(group_id) {
            if g.lock().state != GroupState::Dead {
                return Ok(g);
            }
        }
        let mut groups = self.groups.write();
        if let Some(g) = groups.get(group_id) {
            if g.lock().state != GroupState::Dead {
                return Ok(g.clone());
            }
        }
        let g: GroupRef = Arc::new(Mutex::new(ClassicGroup::new(
            group_id.to_string(),
            partition,
            now_ms(),
        )));
        groups.insert(group_id.to_string(), g.clone());
        Ok(g)
    }

    pub(crate) fn remove_if_same(&self, group_id: &str, group: &GroupRef) {
        let mut groups = self.groups.write();
        if groups.get(group_id).is_some_and(|g| Arc::ptr_eq(g, group)) {
            groups.remove(group_id);
        }
    }

    pub(crate) fn all_groups(&self) -> Vec<GroupRef> {
        self.groups.read().values().cloned().collect()
    }

    /// Queues records on the partition's appender (call with the group lock held, for order).
    pub(crate) fn enqueue(&self, partition: i32, records: &[CoordinatorRecord]) -> PendingWrite {
        let encoded: Vec<Record> = records.iter().map(CoordinatorRecord::encode).collect();
        self.enqueue_records(partition, encoded)
    }

    /// Queues records as one transactional batch of producer (id, epoch).
    pub(crate) fn enqueue_transactional(
        &self,
        partition: i32,
        records: &[CoordinatorRecord],
        producer: (i64, i16),
    ) -> PendingWrite {
        let encoded: Vec<Record> = records.iter().map(CoordinatorRecord::encode).collect();
        match self.appender(partition) {
            Some(a) => a.enqueue_transactional(encoded, producer),
            None => unloaded(partition),
        }
    }

    /// Queues already-encoded records (KIP-848 groups share the partition's appender).
    pub(crate) fn enqueue_records(&self, partition: i32, encoded: Vec<Record>) -> PendingWrite {
        match self.appender(partition) {
            Some(a) => a.enqueue(encoded),
            None => unloaded(partition),
        }
    }

    pub(crate) fn weak(self: &Arc<Self>) -> Weak<Inner> {
        Arc::downgrade(self)
    }
}

/// The outcome of a write queued on a partition that was unloaded meanwhile.
fn unloaded(partition: i32) -> PendingWrite {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let _ = tx.send(Err(Arc::new(WriteError::NotCoordinator(partition))));
    rx
}
