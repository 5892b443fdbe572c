//! `ShareCoordinator`: the share coordinator of KIP-932, the durable home of share-partition
//! state in `__share_group_state` (Kafka's `ShareCoordinatorService`). Partition leaders read a
//! share partition's state when they start serving it and write every change that must survive
//! them (acknowledgements, releases, expiries, a moved start offset) before answering; the rules
//! of what a record holds and when a snapshot replaces updates are `strom_share::ShareStateLog`'s.
//!
//! A share partition (group, topic id, partition) lives on the `__share_group_state` partition
//! `abs(hashCode("group:topicId:partition")) % share.coordinator.state.topic.num.partitions`, as
//! Kafka places it. Each record is keyed by the share partition and holds one
//! `ShareStateRecord` (snapshot or update) as JSON; a tombstone deletes the share partition's
//! state (DeleteShareGroupState). Loads and unloads follow the leadership of the topic's
//! partitions, exactly as the group and transaction coordinators do.
//!
//! Bounded loads (Kafka's pruning of redundant records): every record of a partition below the
//! oldest "last snapshot" of its share partitions is redundant and is pruned (`prune_before`,
//! the log start offset moves). A share partition whose last snapshot lags the partition's end
//! by more than `COLD_SNAPSHOT_LAGS` snapshot intervals gets a fresh snapshot (Kafka's cold
//! partition snapshots), so one idle share partition cannot hold the whole history.
//!
//! Concurrency: one async mutex per loaded `__share_group_state` partition, held while a change
//! is appended and becomes durable, so the records of one partition reach the log in the order
//! their changes were made and the in-memory state is only ever what the log holds. Writes to
//! different state partitions proceed in parallel.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use parking_lot::Mutex;
use strom_share::{ShareSnapshot, ShareStateError, ShareStateLog, ShareStateRecord, StateChanges};
use uuid::Uuid;

use crate::error::WriteError;
use crate::record::{partition_for, Record};
use crate::writer::PartitionWriter;

/// The internal topic of share-partition state.
pub const SHARE_STATE_TOPIC: &str = "__share_group_state";

/// Kafka's error codes for the share coordinator's refusals.
const NOT_COORDINATOR: i16 = 16;
const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
const COORDINATOR_NOT_AVAILABLE: i16 = 15;
const UNKNOWN_SERVER_ERROR: i16 = -1;

/// One share partition: a share group's view of one topic partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SharePartitionKey {
    /// The share group.
    pub group_id: String,
    /// The topic's id.
    pub topic_id: Uuid,
    /// The partition index.
    pub partition: i32,
}

impl SharePartitionKey {
    /// Kafka's coordinator key, `group:topicId:partition` (FindCoordinator key type SHARE).
    pub fn coordinator_key(&self) -> String {
        format!("{}:{}:{}", self.group_id, self.topic_id, self.partition)
    }

    /// Parses a coordinator key; `None` if it is not one.
    pub fn parse(key: &str) -> Option<SharePartitionKey> {
        let (rest, partition) = key.rsplit_once(':')?;
        let (group_id, topic_id) = rest.rsplit_once(':')?;
        Some(SharePartitionKey {
            group_id: group_id.to_string(),
            topic_id: Uuid::parse_str(topic_id).ok()?,
            partition: partition.parse().ok()?,
        })
    }

    /// The record key: version 0, the group id (i16 length + UTF-8), the topic id (16 bytes),
    /// the partition (i32).
    fn encode(&self) -> Bytes {
        let group = self.group_id.as_bytes();
        let len = group.len().min(i16::MAX as usize);
        let mut b = BytesMut::with_capacity(2 + 2 + len + 16 + 4);
        b.put_i16(0);
        b.put_i16(len as i16);
        b.put_slice(&group[..len]);
        b.put_slice(self.topic_id.as_bytes());
        b.put_i32(self.partition);
        b.freeze()
    }

    /// Decodes a record key; `None` for anything else (skipped on load).
    fn decode(mut b: &[u8]) -> Option<SharePartitionKey> {
        if b.remaining() < 4 || b.get_i16() != 0 {
            return None;
        }
        let len = usize::try_from(b.get_i16()).ok()?;
        if b.remaining() != len + 16 + 4 {
            return None;
        }
        let group_id = std::str::from_utf8(&b[..len]).ok()?.to_string();
        b.advance(len);
        let topic_id = Uuid::from_slice(&b[..16]).ok()?;
        b.advance(16);
        Some(SharePartitionKey {
            group_id,
            topic_id,
            partition: b.get_i32(),
        })
    }
}

/// Why a share-state request failed; each maps to one Kafka error code.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ShareStateFailure {
    /// This node does not lead the key's `__share_group_state` partition.
    #[error("this node is not the share coordinator for the key")]
    NotCoordinator,
    /// This node leads the partition but is still replaying it.
    #[error("the share coordinator is loading the partition")]
    LoadInProgress,
    /// The state refused the change (a deposed leader, an outdated state epoch, bad batches).
    #[error(transparent)]
    State(#[from] ShareStateError),
    /// The record could not be made durable.
    #[error("writing __share_group_state: {0}")]
    Write(#[from] WriteError),
}

impl ShareStateFailure {
    /// The Kafka error code.
    pub fn code(&self) -> i16 {
        match self {
            ShareStateFailure::NotCoordinator => NOT_COORDINATOR,
            ShareStateFailure::LoadInProgress => COORDINATOR_LOAD_IN_PROGRESS,
            ShareStateFailure::State(e) => e.code(),
            ShareStateFailure::Write(WriteError::NotCoordinator(_)) => NOT_COORDINATOR,
            ShareStateFailure::Write(WriteError::NotAvailable(_) | WriteError::Closed) => {
                COORDINATOR_NOT_AVAILABLE
            }
            ShareStateFailure::Write(_) => UNKNOWN_SERVER_ERROR,
        }
    }
}

/// A cold share partition gets a fresh snapshot once the log moved this many snapshot intervals
/// (`updates_per_snapshot` records) past its last one.
const COLD_SNAPSHOT_LAGS: i64 = 4;

/// One share partition's durable state and where its last snapshot is.
#[derive(Debug)]
struct KeyState {
    log: ShareStateLog,
    /// Offset of the last snapshot record (-1: unknown, pruning waits).
    snapshot_offset: i64,
}

/// The share partitions of one `__share_group_state` partition.
#[derive(Debug, Default)]
struct Shard {
    keys: HashMap<SharePartitionKey, KeyState>,
    /// Records below this are pruned.
    pruned_below: i64,
}

#[derive(Debug)]
enum Owned {
    Loading,
    Loaded(Arc<tokio::sync::Mutex<Shard>>),
}

/// One partition replayed, waiting to be installed.
#[derive(Debug)]
pub struct LoadedShareStates {
    partition: i32,
    shard: Shard,
}

/// The share coordinator of this node. Cheap to clone; thread-safe.
#[derive(Debug, Clone)]
pub struct ShareCoordinator {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    writer: Arc<dyn PartitionWriter>,
    partitions: i32,
    updates_per_snapshot: u32,
    owned: Mutex<HashMap<i32, Owned>>,
}

impl ShareCoordinator {
    /// A coordinator over `partitions` partitions of `__share_group_state`, writing a snapshot
    /// after `updates_per_snapshot` updates of a share partition.
    pub fn new(
        writer: Arc<dyn PartitionWriter>,
        partitions: i32,
        updates_per_snapshot: u32,
    ) -> ShareCoordinator {
        ShareCoordinator {
            inner: Arc::new(Inner {
                writer,
                partitions: partitions.max(1),
                updates_per_snapshot,
                owned: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The number of `__share_group_state` partitions.
    pub fn partitions(&self) -> i32 {
        self.inner.partitions
    }

    /// The `__share_group_state` partition holding `key`.
    pub fn partition_for(&self, key: &SharePartitionKey) -> i32 {
        partition_for(&key.coordinator_key(), self.inner.partitions)
    }

    /// This node became the leader of `partition`: its keys answer LOAD_IN_PROGRESS until
    /// [`ShareCoordinator::install`].
    pub fn begin_load(&self, partition: i32) {
        self.inner.owned.lock().insert(partition, Owned::Loading);
    }

    /// Replays one partition (blocking disk I/O: call off the async workers). Records that do
    /// not decode are logged and skipped, as the other coordinators' loads do.
    pub fn read_partition(&self, partition: i32) -> Result<LoadedShareStates, WriteError> {
        let mut shard = Shard::default();
        for (offset, record) in self.inner.writer.read_records(partition)? {
            let Some(key) = record.key.as_deref().and_then(SharePartitionKey::decode) else {
                tracing::warn!(
                    partition,
                    offset,
                    "skipping a share-state record with an unknown key"
                );
                continue;
            };
            let Some(value) = record.value else {
                shard.keys.remove(&key);
                continue;
            };
            let replayed = ShareStateRecord::from_json(&value)
                .map_err(|e| e.to_string())
                .and_then(|r| {
                    let state = self.key_state(&mut shard, &key);
                    state.log.replay(&r).map_err(|e| e.to_string())?;
                    if matches!(r, ShareStateRecord::Snapshot(_)) {
                        state.snapshot_offset = offset;
                    }
                    Ok(())
                });
            if let Err(error) = replayed {
                tracing::error!(partition, offset, key = %key.coordinator_key(), %error, "skipping a share-state record that does not apply");
            }
        }
        Ok(LoadedShareStates { partition, shard })
    }

    /// Starts serving a replayed partition.
    pub fn install(&self, loaded: LoadedShareStates) {
        self.inner.owned.lock().insert(
            loaded.partition,
            Owned::Loaded(Arc::new(tokio::sync::Mutex::new(loaded.shard))),
        );
    }

    /// This node no longer leads `partition`.
    pub fn unload_partition(&self, partition: i32) {
        self.inner.owned.lock().remove(&partition);
    }

    fn shard(
        &self,
        key: &SharePartitionKey,
    ) -> Result<(i32, Arc<tokio::sync::Mutex<Shard>>), ShareStateFailure> {
        let partition = self.partition_for(key);
        match self.inner.owned.lock().get(&partition) {
            None => Err(ShareStateFailure::NotCoordinator),
            Some(Owned::Loading) => Err(ShareStateFailure::LoadInProgress),
            Some(Owned::Loaded(shard)) => Ok((partition, shard.clone())),
        }
    }

    /// The state of `key` in its shard, empty if new.
    fn key_state<'a>(&self, shard: &'a mut Shard, key: &SharePartitionKey) -> &'a mut KeyState {
        let per_snapshot = self.inner.updates_per_snapshot;
        shard.keys.entry(key.clone()).or_insert_with(|| KeyState {
            log: ShareStateLog::new(per_snapshot),
            snapshot_offset: -1,
        })
    }

    /// ReadShareGroupState: the durable state of `key`, `None` if it was never initialized.
    pub async fn read_state(
        &self,
        key: &SharePartitionKey,
    ) -> Result<Option<ShareSnapshot>, ShareStateFailure> {
        let (_, shard) = self.shard(key)?;
        let shard = shard.lock().await;
        Ok(shard.keys.get(key).and_then(|k| k.log.state().cloned()))
    }

    /// Every share partition of `group_id` this node holds state for, with its state (for
    /// DescribeShareGroupOffsets and deleting a group's state).
    pub async fn group_states(&self, group_id: &str) -> Vec<(SharePartitionKey, ShareSnapshot)> {
        let shards: Vec<Arc<tokio::sync::Mutex<Shard>>> = self
            .inner
            .owned
            .lock()
            .values()
            .filter_map(|o| match o {
                Owned::Loaded(s) => Some(s.clone()),
                Owned::Loading => None,
            })
            .collect();
        let mut out = Vec::new();
        for shard in shards {
            let shard = shard.lock().await;
            out.extend(shard.keys.iter().filter_map(|(k, state)| {
                (k.group_id == group_id)
                    .then(|| state.log.state().map(|s| (k.clone(), s.clone())))
                    .flatten()
            }));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// WriteShareGroupState: makes `changes` durable (an update, or a snapshot when due), then
    /// applies them. Refused for a deposed leader or an outdated state epoch.
    pub async fn write_state(
        &self,
        key: &SharePartitionKey,
        changes: &StateChanges,
    ) -> Result<(), ShareStateFailure> {
        let (partition, shard) = self.shard(key)?;
        let mut shard = shard.lock().await;
        let record = self.key_state(&mut shard, key).log.write(changes)?;
        let end = self.apply(partition, &mut shard, key, record).await?;
        self.prune(partition, &mut shard, end).await
    }

    /// InitializeShareGroupState (and the reset of AlterShareGroupOffsets): a fresh history for
    /// `key` starting with `snapshot`. Refused with an older state epoch than the durable one.
    pub async fn initialize_state(
        &self,
        key: &SharePartitionKey,
        snapshot: ShareSnapshot,
    ) -> Result<(), ShareStateFailure> {
        let (partition, shard) = self.shard(key)?;
        let mut shard = shard.lock().await;
        let log = &self.key_state(&mut shard, key).log;
        if let Some(current) = log.state() {
            if snapshot.state_epoch < current.state_epoch {
                return Err(ShareStateError::FencedStateEpoch {
                    requested: snapshot.state_epoch,
                    current: current.state_epoch,
                }
                .into());
            }
        }
        let record = log.initialize(snapshot);
        let end = self.apply(partition, &mut shard, key, record).await?;
        self.prune(partition, &mut shard, end).await
    }

    /// DeleteShareGroupState: a tombstone; the share partition starts over on next use.
    pub async fn delete_state(&self, key: &SharePartitionKey) -> Result<(), ShareStateFailure> {
        let (partition, shard) = self.shard(key)?;
        let mut shard = shard.lock().await;
        if !shard.keys.contains_key(key) {
            return Ok(());
        }
        let end = self.append(partition, key, None).await?;
        shard.keys.remove(key);
        self.prune(partition, &mut shard, end).await
    }

    /// Appends `record` of `key` durably, then replays it: the state is only ever what the log
    /// holds. The record's offset.
    async fn apply(
        &self,
        partition: i32,
        shard: &mut Shard,
        key: &SharePartitionKey,
        record: ShareStateRecord,
    ) -> Result<i64, ShareStateFailure> {
        let offset = self.append(partition, key, Some(&record)).await?;
        let state = self.key_state(shard, key);
        state.log.replay(&record)?;
        if matches!(record, ShareStateRecord::Snapshot(_)) {
            state.snapshot_offset = offset;
        }
        Ok(offset)
    }

    /// Prunes what no load needs any more: below the oldest last snapshot, after giving the
    /// coldest share partition a fresh snapshot if it lags `end` too far. A failed prune is
    /// logged only (the records stay; a load replays a little more).
    async fn prune(
        &self,
        partition: i32,
        shard: &mut Shard,
        end: i64,
    ) -> Result<(), ShareStateFailure> {
        let lag = COLD_SNAPSHOT_LAGS * i64::from(self.inner.updates_per_snapshot.max(4));
        let oldest = |shard: &Shard| {
            shard
                .keys
                .iter()
                .map(|(k, s)| (s.snapshot_offset, k))
                .min()
                .map(|(o, k)| (o, k.clone()))
        };
        let Some((mut below, coldest)) = oldest(shard) else {
            return Ok(());
        };
        if below >= 0 && end - below > lag {
            let fresh = self
                .key_state(shard, &coldest)
                .log
                .state()
                .cloned()
                .map(|s| self.key_state(shard, &coldest).log.initialize(s));
            if let Some(record) = fresh {
                self.apply(partition, shard, &coldest, record).await?;
                below = oldest(shard).map_or(-1, |(o, _)| o);
            }
        }
        if below > shard.pruned_below {
            match self.inner.writer.prune_before(partition, below) {
                Ok(()) => shard.pruned_below = below,
                Err(error) => {
                    tracing::warn!(partition, below, %error, "pruning __share_group_state failed")
                }
            }
        }
        Ok(())
    }

    async fn append(
        &self,
        partition: i32,
        key: &SharePartitionKey,
        record: Option<&ShareStateRecord>,
    ) -> Result<i64, ShareStateFailure> {
        let value = match record {
            Some(r) => Some(Bytes::from(r.to_json().map_err(|e| {
                WriteError::Storage(Arc::new(std::io::Error::other(e.to_string())))
            })?)),
            None => None,
        };
        self.inner
            .writer
            .append(
                partition,
                vec![Record {
                    key: Some(key.encode()),
                    value,
                }],
            )
            .await
            .map_err(ShareStateFailure::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writer::InMemoryWriter;
    use strom_share::{PersisterStateBatch, RecordState};

    fn key(group: &str, partition: i32) -> SharePartitionKey {
        SharePartitionKey {
            group_id: group.into(),
            topic_id: Uuid::from_u128(7),
            partition,
        }
    }

    fn loaded(
        writer: &Arc<InMemoryWriter>,
        partitions: i32,
        per_snapshot: u32,
    ) -> ShareCoordinator {
        let c = ShareCoordinator::new(writer.clone(), partitions, per_snapshot);
        for p in 0..partitions {
            c.begin_load(p);
            let l = c.read_partition(p).expect("read");
            c.install(l);
        }
        c
    }

    fn acked(start: i64, first: i64, last: i64) -> StateChanges {
        StateChanges::received(
            0,
            3,
            start,
            vec![PersisterStateBatch {
                first_offset: first,
                last_offset: last,
                delivery_state: RecordState::Acknowledged,
                delivery_count: 1,
            }],
        )
    }

    #[test]
    fn keys_round_trip_and_name_kafkas_coordinator_key() {
        let k = key("workers:a", 4);
        assert_eq!(SharePartitionKey::decode(&k.encode()), Some(k.clone()));
        assert_eq!(
            SharePartitionKey::parse(&k.coordinator_key()),
            Some(k.clone())
        );
        assert_eq!(
            k.coordinator_key(),
            "workers:a:00000000-0000-0000-0000-000000000007:4"
        );
        assert_eq!(SharePartitionKey::decode(b"\x00\x01"), None);
    }

    #[tokio::test]
    async fn written_state_survives_a_reload_and_snapshots_bound_the_updates() {
        let writer = InMemoryWriter::new();
        let c = loaded(&writer, 3, 2);
        let k = key("g", 0);
        assert_eq!(c.read_state(&k).await.ok().flatten(), None);
        c.initialize_state(&k, ShareSnapshot::new(0, 3, 10))
            .await
            .expect("initialize");
        for i in 0..5 {
            c.write_state(&k, &acked(10, 10 + i, 10 + i))
                .await
                .expect("write");
        }
        let before = c.read_state(&k).await.ok().flatten().expect("state");
        // The updates overlay each other: one coalesced ACKNOWLEDGED range.
        assert_eq!(before.start_offset, 10);
        assert_eq!(
            before.state_batches,
            vec![PersisterStateBatch {
                first_offset: 10,
                last_offset: 14,
                delivery_state: RecordState::Acknowledged,
                delivery_count: 1,
            }]
        );

        // A new coordinator (another node, or this one restarted) reads the same state.
        let again = loaded(&writer, 3, 2);
        let after = again.read_state(&k).await.ok().flatten().expect("state");
        assert_eq!(after, before);
        let p = c.partition_for(&k);
        let snapshots = writer
            .read_all(p)
            .expect("read")
            .iter()
            .filter(|r| {
                r.value.as_deref().is_some_and(|v| {
                    matches!(
                        ShareStateRecord::from_json(v),
                        Ok(ShareStateRecord::Snapshot(_))
                    )
                })
            })
            .count();
        assert!(
            snapshots >= 2,
            "a snapshot after every 2 updates, got {snapshots}"
        );
    }

    #[tokio::test]
    async fn redundant_records_are_pruned_and_a_cold_share_partition_does_not_hold_them() {
        let writer = InMemoryWriter::new();
        let c = loaded(&writer, 1, 2);
        let (hot, cold) = (key("hot", 0), key("cold", 0));
        c.write_state(&cold, &acked(0, 0, 0)).await.expect("write");
        for i in 0..100 {
            c.write_state(&hot, &acked(0, i, i)).await.expect("write");
        }
        let start = writer.start_offset(0);
        let end = writer
            .read_records(0)
            .expect("read")
            .last()
            .map_or(0, |(o, _)| *o);
        // 2 updates per snapshot, cold after 4 intervals (of at least 4): at most ~16 + a few
        // records kept, although the cold key's only write was the very first record.
        assert!(start > 50, "pruned below {start}");
        assert!(end - start < 40, "kept {} records", end - start);
        let again = loaded(&writer, 1, 2);
        for k in [&hot, &cold] {
            assert_eq!(
                again.read_state(k).await.ok().flatten(),
                c.read_state(k).await.ok().flatten(),
                "{k:?} loads the same after pruning"
            );
        }
        assert!(again.read_state(&cold).await.ok().flatten().is_some());
    }

    #[tokio::test]
    async fn deposed_leaders_and_unowned_partitions_are_refused() {
        let writer = InMemoryWriter::new();
        let c = loaded(&writer, 1, 500);
        let k = key("g", 1);
        c.write_state(&k, &acked(0, 0, 0)).await.expect("write");
        let old = StateChanges::received(0, 2, 0, Vec::new());
        let err = c.write_state(&k, &old).await.expect_err("fenced");
        assert_eq!(err.code(), strom_share::FENCED_LEADER_EPOCH);

        c.unload_partition(0);
        let err = c.read_state(&k).await.expect_err("not here");
        assert_eq!(err.code(), NOT_COORDINATOR);
        c.begin_load(0);
        let err = c.read_state(&k).await.expect_err("loading");
        assert_eq!(err.code(), COORDINATOR_LOAD_IN_PROGRESS);
    }

    #[tokio::test]
    async fn deleted_state_is_gone_after_a_reload() {
        let writer = InMemoryWriter::new();
        let c = loaded(&writer, 2, 500);
        let (a, b) = (key("g", 0), key("g", 1));
        c.write_state(&a, &acked(0, 0, 0)).await.expect("write");
        c.write_state(&b, &acked(0, 0, 0)).await.expect("write");
        assert_eq!(c.group_states("g").await.len(), 2);
        c.delete_state(&a).await.expect("delete");
        let again = loaded(&writer, 2, 500);
        assert_eq!(again.read_state(&a).await.ok().flatten(), None);
        assert!(again.read_state(&b).await.ok().flatten().is_some());
    }
}
