//! Consumer-group APIs: thin handlers that decode, version-gate and call
//! `strom_coordinator::GroupCoordinator` (classic protocol) or `ConsumerGroupCoordinator`
//! (KIP-848: ConsumerGroupHeartbeat / ConsumerGroupDescribe). This module is the one place
//! coordinator errors become Kafka error codes ([`code`]).
//!
//! Share groups (KIP-932): membership (`share_group.rs`) and the share-group offset APIs
//! (`share_group_offsets.rs`); ShareFetch and ShareAcknowledge are `handler/share_fetch.rs`.

pub(crate) mod consumer_group_describe;
pub(crate) mod consumer_group_heartbeat;
pub(crate) mod find_coordinator;
pub(crate) mod heartbeat;
pub(crate) mod join_group;
pub(crate) mod leave_group;
pub(crate) mod list_groups;
pub(crate) mod offset_commit;
pub(crate) mod offset_fetch;
pub(crate) mod share_group;
pub(crate) mod share_group_offsets;
pub(crate) mod sync_group;

use kafka_protocol::error::ResponseError;
use kafka_protocol::protocol::StrBytes;
use strom_coordinator::{GroupError, WriteError};

/// Kafka error code for a coordinator error (storage failures map as Kafka's coordinator does:
/// retriable NOT_COORDINATOR / COORDINATOR_NOT_AVAILABLE, size errors to their own codes).
pub(crate) fn code(e: &GroupError) -> i16 {
    let r = match e {
        GroupError::NotCoordinator => ResponseError::NotCoordinator,
        GroupError::CoordinatorNotAvailable => ResponseError::CoordinatorNotAvailable,
        GroupError::CoordinatorLoadInProgress => ResponseError::CoordinatorLoadInProgress,
        GroupError::InvalidGroupId => ResponseError::InvalidGroupId,
        GroupError::GroupMaxSizeReached => ResponseError::GroupMaxSizeReached,
        GroupError::UnknownMemberId => ResponseError::UnknownMemberId,
        GroupError::MemberIdRequired => ResponseError::MemberIdRequired,
        GroupError::IllegalGeneration => ResponseError::IllegalGeneration,
        GroupError::RebalanceInProgress => ResponseError::RebalanceInProgress,
        GroupError::InconsistentGroupProtocol => ResponseError::InconsistentGroupProtocol,
        GroupError::InvalidSessionTimeout => ResponseError::InvalidSessionTimeout,
        GroupError::FencedInstanceId => ResponseError::FencedInstanceId,
        GroupError::GroupIdNotFound => ResponseError::GroupIdNotFound,
        GroupError::NonEmptyGroup => ResponseError::NonEmptyGroup,
        GroupError::GroupSubscribedToTopic => ResponseError::GroupSubscribedToTopic,
        GroupError::OffsetMetadataTooLarge => ResponseError::OffsetMetadataTooLarge,
        GroupError::FencedMemberEpoch => ResponseError::FencedMemberEpoch,
        GroupError::StaleMemberEpoch => ResponseError::StaleMemberEpoch,
        GroupError::UnreleasedInstanceId => ResponseError::UnreleasedInstanceId,
        GroupError::UnsupportedAssignor => ResponseError::UnsupportedAssignor,
        GroupError::InvalidRegularExpression => ResponseError::InvalidRegularExpression,
        GroupError::InvalidRequest(_) => ResponseError::InvalidRequest,
        GroupError::Write(w) => match w {
            WriteError::TooLarge => ResponseError::InvalidCommitOffsetSize,
            WriteError::NotAvailable(_) | WriteError::Closed => {
                ResponseError::CoordinatorNotAvailable
            }
            WriteError::NotCoordinator(_) | WriteError::Storage(_) | WriteError::Corrupt { .. } => {
                ResponseError::NotCoordinator
            }
        },
    };
    r.code()
}

/// A protocol string as an owned `String`.
pub(crate) fn s(v: &StrBytes) -> String {
    v.to_string()
}

/// An owned string for the wire.
pub(crate) fn wire(v: impl Into<String>) -> StrBytes {
    StrBytes::from_string(v.into())
}
