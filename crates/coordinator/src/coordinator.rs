//! `GroupCoordinator`: the groups of the `__consumer_offsets` partitions this node has loaded,
//! their replay and unload as partition leadership comes and goes, and the admin operations
//! (ListGroups, DescribeGroups, DeleteGroups).
//!
//! A partition is absent (NOT_COORDINATOR), loading (COORDINATOR_LOAD_IN_PROGRESS) or loaded.
//! Loading is split into `read_partition` (disk), `replay` (pure) and `install` (memory only)
//! so the broker can read off the async workers and decide, at install time, whether the load
//! is still wanted (leadership may have moved on meanwhile).
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

use crate::api::Protocol;
use crate::api::{GroupDescription, GroupListing, MemberDescription};
use crate::config::GroupCoordinatorConfig;
use crate::error::{GroupError, WriteError};
use crate::group::{ClassicGroup, GroupRef, GroupState, Member};
use crate::record::{partition_for, CoordinatorRecord, GroupValue, Record};
use crate::writer::{wait, Appender, LogEntry, PartitionWriter, PendingWrite};

/// Wall-clock milliseconds since the epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

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

    /// Replays every record of `partition` into groups and starts serving them (read, replay
    /// and install in one call: tests and tools; the broker runs the read off the runtime).
    pub fn load_partition(&self, partition: i32) -> Result<(), WriteError> {
        let entries = self.read_partition(partition)?;
        let loaded = self.replay(partition, &entries);
        self.install(loaded);
        Ok(())
    }

    /// Marks `partition` as being loaded: its groups answer COORDINATOR_LOAD_IN_PROGRESS until
    /// [`GroupCoordinator::install`]. Anything loaded before is dropped first.
    pub fn begin_load(&self, partition: i32) {
        self.unload_partition(partition);
        self.inner
            .partitions
            .write()
            .insert(partition, Owned::Loading);
    }

    /// Every record and marker of `partition` (blocking disk I/O: call off the async workers).
    pub fn read_partition(&self, partition: i32) -> Result<Vec<LogEntry>, WriteError> {
        self.inner.writer.read_log(partition)
    }

    /// Replays `entries` of `partition` into groups, without serving them yet.
    pub fn replay(&self, partition: i32, entries: &[LogEntry]) -> LoadedGroups {
        let now = now_ms();
        let mut loaded: HashMap<String, ClassicGroup> = HashMap::new();
        // Transactional offset commits per producer, until their COMMIT/ABORT marker.
        let mut pending: crate::txn::PendingTxnOffsets = HashMap::new();
        for (i, e) in entries.iter().enumerate() {
            let (r, producer_id) = match e {
                LogEntry::Record {
                    record,
                    producer_id,
                } => (record, *producer_id),
                LogEntry::Marker {
                    producer_id,
                    commit,
                } => {
                    let Some(groups) = pending.remove(producer_id) else {
                        continue;
                    };
                    if *commit {
                        for (group, offsets) in groups {
                            for ((topic, p), value) in offsets {
                                let rec = CoordinatorRecord::OffsetCommit {
                                    group: group.clone(),
                                    topic,
                                    partition: p,
                                    value: Some(value),
                                };
                                replay(&mut loaded, partition, rec, now);
                            }
                        }
                    }
                    continue;
                }
            };
            if crate::consumer::is_consumer_record(r) {
                continue; // replayed by `ConsumerGroupCoordinator::replay`
            }
            match CoordinatorRecord::decode(r) {
                Ok(CoordinatorRecord::OffsetCommit {
                    group,
                    topic,
                    partition: p,
                    value: Some(value),
                }) if producer_id.is_some() => {
                    pending
                        .entry(producer_id.unwrap_or(-1))
                        .or_default()
                        .entry(group)
                        .or_default()
                        .insert((topic, p), value);
                }
                Ok(rec) => replay(&mut loaded, partition, rec, now),
                Err(reason) => {
                    tracing::warn!(
                        partition,
                        index = i,
                        reason,
                        "skipping undecodable __consumer_offsets record"
                    );
                }
            }
        }
        LoadedGroups {
            partition,
            groups: loaded,
            pending,
        }
    }

    /// Starts serving a replayed partition: its groups, their session timers, its appender.
    pub fn install(&self, loaded: LoadedGroups) {
        let LoadedGroups {
            partition,
            groups: loaded,
            pending,
        } = loaded;
        {
            // Left open: resolved when the transaction coordinator completes the transaction.
            let mut all = self.inner.pending_txn.lock();
            for (pid, groups) in pending {
                all.entry(pid).or_default().extend(groups);
            }
        }
        let mut groups = self.inner.groups.write();
        for (id, g) in loaded {
            if !g.has_metadata && g.offsets.is_empty() {
                continue;
            }
            let members: Vec<String> = g.members.keys().cloned().collect();
            let group: GroupRef = Arc::new(Mutex::new(g));
            for m in members {
                let token = {
                    let mut g = group.lock();
                    let t = g.token();
                    if let Some(mm) = g.members.get_mut(&m) {
                        mm.watch = t;
                    }
                    t
                };
                crate::rebalance::spawn_session_watch(&self.inner, &group, m, token);
            }
            groups.insert(id, group);
        }
        drop(groups);
        // Last: requests are served (check_owned) only once the groups are in place.
        let appender = Arc::new(Appender::spawn(self.inner.writer.clone(), partition));
        self.inner
            .partitions
            .write()
            .insert(partition, Owned::Loaded(appender));
    }

    /// Stops serving `partition`'s groups (pending waiters are answered NOT_COORDINATOR) and
    /// forgets its pending transactional offsets (a later load replays them from the log).
    pub fn unload_partition(&self, partition: i32) {
        self.inner.partitions.write().remove(&partition);
        let n = self.inner.config.offsets_topic_partitions;
        {
            let mut all = self.inner.pending_txn.lock();
            all.retain(|_, groups| {
                groups.retain(|g, _| partition_for(g, n) != partition);
                !groups.is_empty()
            });
        }
        let mut groups = self.inner.groups.write();
        groups.retain(|_, g| {
            let mut g = g.lock();
            if g.partition != partition {
                return true;
            }
            g.state = GroupState::Dead;
            for m in g.members.values_mut() {
                m.join_waiter = None;
                m.sync_waiter = None;
            }
            false
        });
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

/// Applies one stored record to the groups being loaded (start-up replay).
fn replay(
    groups: &mut HashMap<String, ClassicGroup>,
    partition: i32,
    rec: CoordinatorRecord,
    now: i64,
) {
    match rec {
        CoordinatorRecord::OffsetCommit {
            group,
            topic,
            partition: p,
            value,
        } => {
            let g = groups
                .entry(group.clone())
                .or_insert_with(|| ClassicGroup::new(group, partition, now));
            match value {
                Some(v) => {
                    g.offsets.insert((topic, p), v);
                }
                None => {
                    g.offsets.remove(&(topic, p));
                }
            }
        }
        CoordinatorRecord::GroupMetadata { group, value } => {
            let g = groups
                .entry(group.clone())
                .or_insert_with(|| ClassicGroup::new(group, partition, now));
            match value {
                Some(v) => apply_group_value(g, v),
                None => {
                    let offsets = std::mem::take(&mut g.offsets);
                    *g = ClassicGroup::new(g.group_id.clone(), partition, now);
                    g.offsets = offsets;
                }
            }
        }
    }
}

fn apply_group_value(g: &mut ClassicGroup, v: GroupValue) {
    let deadline = tokio::time::Instant::now();
    g.has_metadata = true;
    g.protocol_type = Some(v.protocol_type).filter(|t| !t.is_empty());
    g.generation_id = v.generation;
    g.protocol_name = v.protocol.clone();
    g.leader_id = v.leader;
    g.state_timestamp_ms = v.current_state_timestamp_ms;
    g.members.clear();
    g.static_members.clear();
    let protocol = v.protocol.unwrap_or_default();
    for m in v.members {
        if let Some(i) = &m.group_instance_id {
            g.static_members.insert(i.clone(), m.member_id.clone());
        }
        let session = u64::try_from(m.session_timeout_ms).unwrap_or(0);
        g.members.insert(
            m.member_id.clone(),
            Member {
                member_id: m.member_id,
                group_instance_id: m.group_instance_id,
                client_id: m.client_id,
                client_host: m.client_host,
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                session_timeout_ms: m.session_timeout_ms,
                protocols: vec![Protocol {
                    name: protocol.clone(),
                    metadata: m.subscription,
                }],
                assignment: m.assignment,
                join_waiter: None,
                sync_waiter: None,
                deadline: deadline + std::time::Duration::from_millis(session),
                watch: 0,
            },
        );
    }
    g.state = if g.members.is_empty() {
        GroupState::Empty
    } else {
        GroupState::Stable
    };
}
