//! The refusals of this crate, one type per seam, each with the Kafka error code it becomes.
//!
//! The broker answers with [`ShareError::code`], [`ShareStateError::code`] and
//! [`ShareGroupError::code`]; this crate knows no wire types, so the codes are plain `i16`s with
//! Kafka's numbers (`org.apache.kafka.common.protocol.Errors`).

/// `INVALID_REQUEST` (42).
pub const INVALID_REQUEST: i16 = 42;
/// `INVALID_RECORD_STATE` (121): the acknowledgement of delivery could not be completed.
pub const INVALID_RECORD_STATE: i16 = 121;
/// `UNKNOWN_MEMBER_ID` (25).
pub const UNKNOWN_MEMBER_ID: i16 = 25;
/// `FENCED_MEMBER_EPOCH` (110).
pub const FENCED_MEMBER_EPOCH: i16 = 110;
/// `GROUP_MAX_SIZE_REACHED` (81).
pub const GROUP_MAX_SIZE_REACHED: i16 = 81;
/// `FENCED_LEADER_EPOCH` (74).
pub const FENCED_LEADER_EPOCH: i16 = 74;
/// `FENCED_STATE_EPOCH` (124).
pub const FENCED_STATE_EPOCH: i16 = 124;

/// An acknowledgement a share partition refuses (`SharePartition::acknowledge`). The whole
/// acknowledgement is refused: nothing of it was applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShareError {
    /// A record that is not ACQUIRED by this member, or whose acquisition lock expired, or a
    /// RENEW while `share.renew.acknowledge.enable` is off (`INVALID_RECORD_STATE`, as Kafka).
    #[error("{0}")]
    InvalidRecordState(String),
    /// A malformed acknowledgement: offsets past the acquired records, an unknown acknowledge
    /// type, ack types of the wrong length, batches out of order (`INVALID_REQUEST`).
    #[error("{0}")]
    InvalidRequest(String),
}

impl ShareError {
    /// The Kafka error code of this refusal.
    pub fn code(&self) -> i16 {
        match self {
            ShareError::InvalidRecordState(_) => INVALID_RECORD_STATE,
            ShareError::InvalidRequest(_) => INVALID_REQUEST,
        }
    }
}

/// A durable-state write or replay that is refused (`ShareStateLog`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShareStateError {
    /// The writer's leader epoch is older than the one already recorded: a deposed leader.
    #[error("Write request leader epoch {requested} is smaller than last recorded {current}.")]
    FencedLeaderEpoch {
        /// The epoch in the write.
        requested: i32,
        /// The epoch already recorded.
        current: i32,
    },
    /// The writer's state epoch is older than the recorded one: the state was re-initialized
    /// (AlterShareGroupOffsets, DeleteShareGroupOffsets) since the writer loaded it.
    #[error("Write request state epoch {requested} is smaller than last recorded {current}.")]
    FencedStateEpoch {
        /// The epoch in the write.
        requested: i32,
        /// The epoch already recorded.
        current: i32,
    },
    /// An update whose snapshot epoch is not the current snapshot's: written against a state this
    /// log no longer holds, so applying it would mix two histories.
    #[error("Share update of snapshot epoch {update} does not follow snapshot epoch {current}.")]
    SnapshotEpochMismatch {
        /// The update's snapshot epoch.
        update: i32,
        /// The current snapshot epoch.
        current: i32,
    },
    /// An update replayed before any snapshot: every history starts with one, so the log is torn.
    #[error("Share update of snapshot epoch {0} replayed before any snapshot.")]
    UpdateWithoutSnapshot(i32),
    /// A state batch whose last offset is below its first, or a delivery state that is not one of
    /// Kafka's ids (0, 1, 2, 4): a corrupt record.
    #[error("Invalid state batch {first_offset}-{last_offset} (state {delivery_state}).")]
    InvalidStateBatch {
        /// First offset of the batch.
        first_offset: i64,
        /// Last offset of the batch.
        last_offset: i64,
        /// Its delivery state id.
        delivery_state: i8,
    },
}

impl ShareStateError {
    /// The Kafka error code of this refusal.
    pub fn code(&self) -> i16 {
        match self {
            ShareStateError::FencedLeaderEpoch { .. } => FENCED_LEADER_EPOCH,
            ShareStateError::FencedStateEpoch { .. } => FENCED_STATE_EPOCH,
            ShareStateError::SnapshotEpochMismatch { .. }
            | ShareStateError::UpdateWithoutSnapshot(_)
            | ShareStateError::InvalidStateBatch { .. } => INVALID_REQUEST,
        }
    }
}

/// A ShareGroupHeartbeat the group refuses (`ShareGroup::heartbeat`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShareGroupError {
    /// Empty member id, a member epoch below -1, or a join (epoch 0) without subscribed topics.
    #[error("{0}")]
    InvalidRequest(String),
    /// The member is not in the group (left, fenced, or its session expired).
    #[error("Member {member_id} is not a member of group {group_id}.")]
    UnknownMemberId {
        /// The group.
        group_id: String,
        /// The member.
        member_id: String,
    },
    /// The member's epoch is neither its current nor its previous one: it must abandon its
    /// partitions and rejoin with epoch 0.
    #[error(
        "The share group member has epoch {received}, the group coordinator knows {current}. \
         The member must abandon all its partitions and rejoin."
    )]
    FencedMemberEpoch {
        /// The epoch in the heartbeat.
        received: i32,
        /// The member's current epoch.
        current: i32,
    },
    /// `group.share.max.size` members already.
    #[error("The share group has reached its maximum capacity of {0} members.")]
    GroupMaxSizeReached(usize),
}

impl ShareGroupError {
    /// The Kafka error code of this refusal.
    pub fn code(&self) -> i16 {
        match self {
            ShareGroupError::InvalidRequest(_) => INVALID_REQUEST,
            ShareGroupError::UnknownMemberId { .. } => UNKNOWN_MEMBER_ID,
            ShareGroupError::FencedMemberEpoch { .. } => FENCED_MEMBER_EPOCH,
            ShareGroupError::GroupMaxSizeReached(_) => GROUP_MAX_SIZE_REACHED,
        }
    }
}
