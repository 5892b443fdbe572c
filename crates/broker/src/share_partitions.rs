//! `SharePartitionManager`: the share-partition state (KIP-932) of the partitions this broker
//! leads — one `strom_share::SharePartition` per (share group, partition), made on first use
//! from the group's `share.auto.offset.reset` — and the share sessions of ShareFetch (KIP-932's
//! KIP-227-like epochs: 0 opens, -1 closes, each request the next number).
//!
//! Not durable yet: the state lives in memory (Kafka keeps it in `__share_group_state`), so a
//! restart or a leader change starts a share group over from its `share.auto.offset.reset`
//! position. Acquisition locks are swept whenever a partition is touched.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use parking_lot::Mutex;
use strom_log::{PartitionLog, TopicPartition};
use strom_share::{AutoOffsetReset, SharePartition, SharePartitionConfig};
use uuid::Uuid;

/// One share partition's state, locked by whoever acquires or acknowledges.
pub(crate) type SharePartitionRef = Arc<Mutex<SharePartition>>;

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
#[derive(Debug, Default)]
pub(crate) struct SharePartitionManager {
    partitions: Mutex<HashMap<(String, TopicPartition), SharePartitionRef>>,
    sessions: Mutex<HashMap<(String, String), Session>>,
}

/// Kafka's key for `share.auto.offset.reset`.
pub(crate) fn reset_of(value: Option<&str>) -> AutoOffsetReset {
    match value {
        Some(v) if v.eq_ignore_ascii_case("earliest") => AutoOffsetReset::Earliest,
        _ => AutoOffsetReset::Latest,
    }
}

impl SharePartitionManager {
    /// The state of `group` on `tp`, made on first use at the reset position.
    pub(crate) fn partition(
        &self,
        group: &str,
        tp: &TopicPartition,
        log: &PartitionLog,
        leader_epoch: i32,
        config: SharePartitionConfig,
        reset: AutoOffsetReset,
    ) -> SharePartitionRef {
        let key = (group.to_string(), tp.clone());
        let mut partitions = self.partitions.lock();
        partitions
            .entry(key)
            .or_insert_with(|| {
                let start = log.log_start_offset();
                let end = log.high_watermark();
                let state =
                    SharePartition::initialize(config, leader_epoch, None, reset, start, end)
                        .unwrap_or_else(|_| SharePartition::new(config, leader_epoch, 0, end));
                Arc::new(Mutex::new(state))
            })
            .clone()
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

    /// A member's acquired records go back (its session closed).
    pub(crate) fn release_member(&self, group: &str, member: &str) {
        let partitions: Vec<SharePartitionRef> = self
            .partitions
            .lock()
            .iter()
            .filter(|((g, _), _)| g == group)
            .map(|(_, p)| p.clone())
            .collect();
        for p in partitions {
            p.lock().release_member(member);
        }
    }
}
