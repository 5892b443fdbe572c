//! `SharePartitionManager`: the share-partition state (KIP-932) of the partitions this broker
//! leads — one `strom_share::SharePartition` per (share group, partition), loaded on first use
//! from its durable state through the `SharePersister` (or, never initialized, started at the
//! group's `share.auto.offset.reset` position and written at once, so a restart does not resolve
//! `latest` again) — and the share sessions of ShareFetch (KIP-932's KIP-227-like epochs: 0
//! opens, -1 closes, each request the next number).
//!
//! Durability: every change an operation makes that must survive this leader (acknowledgements,
//! releases, expiries, archived records, a moved start offset: `StateChanges`) is written through
//! the persister before the operation answers. The writes of one share partition are serialized
//! in the order the changes were made (`SharePartitionEntry::update`); a write that fails drops
//! the in-memory state, so the next use reloads what is durable instead of serving changes that
//! never were. A new leader epoch of the partition also reloads (another leader may have written
//! meanwhile). Acquisition locks are swept whenever a partition is touched.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use parking_lot::Mutex;
use strom_coordinator::SharePartitionKey;
use strom_log::{PartitionLog, TopicPartition};
use strom_share::{AutoOffsetReset, SharePartition, SharePartitionConfig, StateChanges};
use uuid::Uuid;

use crate::share_persister::SharePersister;

/// One share partition of this leader: its state, loaded once, and the order of its writes.
#[derive(Debug)]
pub(crate) struct SharePartitionEntry {
    key: SharePartitionKey,
    /// The partition leader epoch the state was loaded under.
    leader_epoch: i32,
    state: tokio::sync::OnceCell<Mutex<SharePartition>>,
    /// Held from a change until it is durable: the share partition's writes in change order.
    writes: tokio::sync::Mutex<()>,
}

/// One share partition's entry, shared by whoever acquires or acknowledges.
pub(crate) type SharePartitionRef = Arc<SharePartitionEntry>;

/// A share session's partitions, by topic id and index.
pub(crate) type SessionPartitions = BTreeSet<(Uuid, i32)>;

/// Why a ShareFetch/ShareAcknowledge session step failed (Kafka's codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionError {
    /// SHARE_SESSION_NOT_FOUND.
    NotFound,
    /// INVALID_SHARE_SESSION_EPOCH.
    InvalidEpoch,
}

#[derive(Debug)]
struct Session {
    /// The epoch the next request must carry.
    next_epoch: i32,
    partitions: SessionPartitions,
}

/// Share partitions and share sessions of this broker.
#[derive(Debug)]
pub(crate) struct SharePartitionManager {
    persister: SharePersister,
    partitions: Mutex<HashMap<(String, TopicPartition), SharePartitionRef>>,
    sessions: Mutex<HashMap<(String, String), Session>>,
}

/// Where a share partition's state comes from when it is first used here.
pub(crate) struct ShareSource<'a> {
    pub(crate) group: &'a str,
    pub(crate) topic_id: Uuid,
    pub(crate) tp: &'a TopicPartition,
    pub(crate) log: &'a PartitionLog,
    pub(crate) leader_epoch: i32,
    pub(crate) config: SharePartitionConfig,
    pub(crate) reset: AutoOffsetReset,
}

/// Kafka's key for `share.auto.offset.reset`.
pub(crate) fn reset_of(value: Option<&str>) -> AutoOffsetReset {
    match value {
        Some(v) if v.eq_ignore_ascii_case("earliest") => AutoOffsetReset::Earliest,
        _ => AutoOffsetReset::Latest,
    }
}

impl SharePartitionManager {
    pub(crate) fn new(persister: SharePersister) -> Self {
        SharePartitionManager {
            persister,
            partitions: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// The state of a share partition led here, loaded on first use (and again under a new
    /// leader epoch); an error code if its durable state cannot be read now.
    pub(crate) async fn partition(&self, src: ShareSource<'_>) -> Result<SharePartitionRef, i16> {
        let map_key = (src.group.to_string(), src.tp.clone());
        let entry = {
            let mut partitions = self.partitions.lock();
            let fresh = || {
                Arc::new(SharePartitionEntry {
                    key: SharePartitionKey {
                        group_id: src.group.to_string(),
                        topic_id: src.topic_id,
                        partition: src.tp.partition,
                    },
                    leader_epoch: src.leader_epoch,
                    state: tokio::sync::OnceCell::new(),
                    writes: tokio::sync::Mutex::new(()),
                })
            };
            let entry = partitions.entry(map_key).or_insert_with(fresh);
            if entry.leader_epoch != src.leader_epoch || entry.key.topic_id != src.topic_id {
                *entry = fresh();
            }
            entry.clone()
        };
        entry
            .state
            .get_or_try_init(|| self.load(&entry.key, &src))
            .await?;
        Ok(entry)
    }

    /// Reads the durable state, or starts at the reset position and makes that durable.
    async fn load(
        &self,
        key: &SharePartitionKey,
        src: &ShareSource<'_>,
    ) -> Result<Mutex<SharePartition>, i16> {
        let persisted = self.persister.read(key, src.leader_epoch).await?;
        let start = src.log.log_start_offset();
        let end = src.log.high_watermark();
        let state = SharePartition::initialize(
            src.config,
            src.leader_epoch,
            persisted.as_ref(),
            src.reset,
            start,
            end,
        )
        .map_err(|e| e.code())?;
        if persisted.is_none() {
            let first = StateChanges::received(
                state.state_epoch(),
                src.leader_epoch,
                state.start_offset(),
                Vec::new(),
            );
            self.persister.write(key, &first).await?;
        }
        Ok(Mutex::new(state))
    }

    /// Runs `change` on the state of `entry`, then makes what it changed durable before
    /// returning its result; a failed write drops the state (the next use reloads it) and is
    /// the error.
    pub(crate) async fn update<T>(
        &self,
        entry: &SharePartitionRef,
        change: impl FnOnce(&mut SharePartition) -> (T, StateChanges),
    ) -> Result<T, i16> {
        let _order = entry.writes.lock().await;
        let Some(state) = entry.state.get() else {
            return Err(kafka_protocol::error::ResponseError::UnknownServerError.code());
        };
        let (out, changes) = change(&mut state.lock());
        if changes.is_empty() {
            return Ok(out);
        }
        if let Err(code) = self.persister.write(&entry.key, &changes).await {
            tracing::warn!(key = %entry.key.coordinator_key(), code, "share-state write failed; reloading the share partition on next use");
            self.forget(entry);
            return Err(code);
        }
        Ok(out)
    }

    /// Drops `entry` if it is still the one in use.
    fn forget(&self, entry: &SharePartitionRef) {
        let mut partitions = self.partitions.lock();
        partitions.retain(|_, e| !Arc::ptr_eq(e, entry));
    }

    /// The durable state of a share partition (DescribeShareGroupOffsets), `None` if never
    /// initialized.
    pub(crate) async fn durable_state(
        &self,
        key: &SharePartitionKey,
    ) -> Result<Option<strom_share::ShareSnapshot>, i16> {
        self.persister.read(key, -1).await
    }

    /// AlterShareGroupOffsets for one share partition: a fresh state at `start_offset` under the
    /// next state epoch (a leader still holding the older state is fenced on its next write and
    /// reloads), and this leader's copy dropped.
    pub(crate) async fn reset(
        &self,
        key: &SharePartitionKey,
        start_offset: i64,
    ) -> Result<(), i16> {
        let current = self.persister.read(key, -1).await?;
        let epoch = current.map_or(0, |s| s.state_epoch.saturating_add(1));
        let snapshot = strom_share::ShareSnapshot::new(epoch, -1, start_offset);
        self.persister.initialize(key, &snapshot).await?;
        self.partitions.lock().retain(|_, e| e.key != *key);
        Ok(())
    }

    /// Deletes the durable state of `group` on each of `partitions` (DeleteGroups of a share
    /// group, DeleteShareGroupOffsets) and what this leader holds of them; the first error code.
    pub(crate) async fn delete_state(
        &self,
        group: &str,
        partitions: &[(Uuid, i32)],
    ) -> Result<(), i16> {
        for (topic_id, partition) in partitions {
            let key = SharePartitionKey {
                group_id: group.to_string(),
                topic_id: *topic_id,
                partition: *partition,
            };
            self.partitions.lock().retain(|_, e| e.key != key);
            self.persister.delete(&key).await?;
        }
        Ok(())
    }

    /// Applies one ShareFetch's session step for (`group`, `member`): epoch 0 opens a session
    /// with `add`, -1 closes it, any other must be the session's next epoch and adds `add`,
    /// removes `forget`. The session's partitions after the step.
    pub(crate) fn session_step(
        &self,
        group: &str,
        member: &str,
        epoch: i32,
        add: &[(Uuid, i32)],
        forget: &[(Uuid, i32)],
    ) -> Result<SessionPartitions, SessionError> {
        let key = (group.to_string(), member.to_string());
        let mut sessions = self.sessions.lock();
        match epoch {
            0 => {
                let partitions: SessionPartitions = add.iter().copied().collect();
                sessions.insert(
                    key,
                    Session {
                        next_epoch: 1,
                        partitions: partitions.clone(),
                    },
                );
                Ok(partitions)
            }
            -1 => sessions
                .remove(&key)
                .map(|s| s.partitions)
                .ok_or(SessionError::NotFound),
            _ => {
                let session = sessions.get_mut(&key).ok_or(SessionError::NotFound)?;
                if session.next_epoch != epoch {
                    return Err(SessionError::InvalidEpoch);
                }
                session.next_epoch = epoch.checked_add(1).unwrap_or(1);
                session.partitions.extend(add.iter().copied());
                for f in forget {
                    session.partitions.remove(f);
                }
                Ok(session.partitions.clone())
            }
        }
    }

    /// Checks a ShareAcknowledge's epoch against the session without advancing it past what
    /// ShareFetch expects (Kafka: an acknowledge also advances the epoch).
    pub(crate) fn acknowledge_step(
        &self,
        group: &str,
        member: &str,
        epoch: i32,
    ) -> Result<(), SessionError> {
        self.session_step(group, member, epoch, &[], &[]).map(drop)
    }

    /// A member's acquired records go back (its session closed), durably.
    pub(crate) async fn release_member(&self, group: &str, member: &str) {
        let partitions: Vec<SharePartitionRef> = self
            .partitions
            .lock()
            .iter()
            .filter(|((g, _), _)| g == group)
            .map(|(_, p)| p.clone())
            .collect();
        for p in partitions {
            if p.state.get().is_some() {
                // A failed write is logged and reloads the partition; the locks expire anyway.
                let _ = self
                    .update(&p, |state| ((), state.release_member(member)))
                    .await;
            }
        }
    }
}
