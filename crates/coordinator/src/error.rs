//! `GroupError` and `WriteError`: the coordinator's one error type and the writer seam's.
//! The broker maps each variant to its Kafka error code in one place (its group handlers).

/// Why a group request failed. Each variant is one Kafka error code.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GroupError {
    /// This node does not own the group's `__consumer_offsets` partition.
    #[error("this node is not the coordinator for the group")]
    NotCoordinator,
    /// The coordinator cannot serve (shutting down, partition unavailable).
    #[error("the coordinator is not available")]
    CoordinatorNotAvailable,
    /// This node leads the group's partition but is still replaying it.
    #[error("the coordinator is loading the group's partition")]
    CoordinatorLoadInProgress,
    /// The group has `group.max.size` (or `group.consumer.max.size`) members already.
    #[error("the group has reached its maximum size")]
    GroupMaxSizeReached,
    /// The group id is empty or otherwise invalid.
    #[error("invalid group id")]
    InvalidGroupId,
    /// The member id is not a member of the group.
    #[error("unknown member id")]
    UnknownMemberId,
    /// KIP-394: the first JoinGroup must be repeated with the member id handed back.
    #[error("a member id is required; rejoin with the one given")]
    MemberIdRequired,
    /// The generation is not the group's current one.
    #[error("illegal generation")]
    IllegalGeneration,
    /// The group is rebalancing; rejoin.
    #[error("the group is rebalancing")]
    RebalanceInProgress,
    /// Protocol type or protocols do not match the group's.
    #[error("inconsistent group protocol")]
    InconsistentGroupProtocol,
    /// The session timeout is outside `group.min/max.session.timeout.ms`.
    #[error("session timeout outside the broker's allowed range")]
    InvalidSessionTimeout,
    /// KIP-345: another member holds this `group.instance.id`.
    #[error("the static member was fenced by a newer instance")]
    FencedInstanceId,
    /// The group does not exist.
    #[error("group not found")]
    GroupIdNotFound,
    /// The group still has members.
    #[error("the group is not empty")]
    NonEmptyGroup,
    /// OffsetDelete on a topic the group is subscribed to.
    #[error("the group is subscribed to the topic")]
    GroupSubscribedToTopic,
    /// The commit metadata string exceeds `offset.metadata.max.bytes`.
    #[error("offset metadata too large")]
    OffsetMetadataTooLarge,
    /// KIP-848: the member epoch is not the member's (rejoin with epoch 0).
    #[error("the member epoch is fenced")]
    FencedMemberEpoch,
    /// KIP-848 OffsetCommit: the member epoch is not the member's current one.
    #[error("the member epoch is stale")]
    StaleMemberEpoch,
    /// KIP-848: another member still holds this instance id.
    #[error("the instance id is still used by another member")]
    UnreleasedInstanceId,
    /// KIP-848: the requested server-side assignor is not served.
    #[error("unsupported assignor")]
    UnsupportedAssignor,
    /// KIP-848: the subscription regex does not compile.
    #[error("invalid regular expression")]
    InvalidRegularExpression,
    /// A request field is missing or out of range.
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    /// The records could not be made durable.
    #[error("writing __consumer_offsets: {0}")]
    Write(#[from] WriteError),
}

/// Why the broker could not append to or read a `__consumer_offsets` partition.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    /// The partition is not hosted or not writable here.
    #[error("partition {0} of __consumer_offsets is not available")]
    NotAvailable(i32),
    /// This node no longer leads the partition (or stopped coordinating it): the client must
    /// find the coordinator again.
    #[error("this node is no longer the leader of partition {0}")]
    NotCoordinator(i32),
    /// The records exceed the partition's size limits.
    #[error("records too large for __consumer_offsets")]
    TooLarge,
    /// The log failed (I/O, offline directory).
    #[error(transparent)]
    Storage(std::sync::Arc<dyn std::error::Error + Send + Sync>),
    /// A stored record did not decode.
    #[error("corrupt record in partition {partition} at offset {offset}: {reason}")]
    Corrupt {
        /// Partition of `__consumer_offsets`.
        partition: i32,
        /// Offset of the record.
        offset: i64,
        /// What failed.
        reason: &'static str,
    },
    /// The coordinator is shutting down.
    #[error("the coordinator is shutting down")]
    Closed,
}
