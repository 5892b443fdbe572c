//! Loading and unloading a `__consumer_offsets` partition as its leadership comes and goes:
//! read its log (disk), replay the records into groups and pending transactional offsets
//! (pure), install them (memory only), and drop them again on unload. Split so the broker can
//! read off the async workers and decide at install time whether the load is still wanted.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use strom_log::now_ms;

use super::{GroupCoordinator, LoadedGroups, Owned};
use crate::api::GroupState;
use crate::api::Protocol;
use crate::error::WriteError;
use crate::group::{ClassicGroup, GroupRef, Member};
use crate::record::{partition_for, CoordinatorRecord, GroupValue};
use crate::writer::{Appender, LogEntry};

impl GroupCoordinator {
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
                    ..
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
