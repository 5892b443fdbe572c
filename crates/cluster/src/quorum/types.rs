//! The openraft type configuration of the metadata quorum: what an entry carries (a
//! [`Proposal`]), what applying it answers ([`ApplyOutcome`]), and the id/address conventions.

use std::io::Cursor;

use serde::{Deserialize, Serialize};

use crate::metadata::MetadataRecord;

/// Raft node id. Kafka node ids are `i32`; openraft wants an unsigned id, so a node `n` is `n as
/// u64` (node ids are never negative: `--node-id` is validated by the broker).
pub type NodeId = u64;

openraft::declare_raft_types!(
    /// The metadata quorum's Raft types.
    pub TypeConfig:
        D = Proposal,
        R = ApplyOutcome,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// One Raft entry of application data: records decided against the image at `based_on`.
///
/// Optimistic concurrency: the state machine applies the records only if no entry changed the
/// image after `based_on` (the proposer's view is still current); otherwise the entry is a no-op
/// and the proposer re-decides on a newer image. So `decide` never runs under a cluster-wide
/// lock, and an entry committed twice (a retry after a lost answer) cannot apply twice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    /// `MetadataImage::offset` of the image the records were decided on: a real offset, at most
    /// the entry's own index (the image offset just before it); anything else is invalid.
    pub based_on: i64,
    /// The records; applied together or not at all.
    pub records: Vec<MetadataRecord>,
}

/// What applying one entry did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApplyOutcome {
    /// The records are in the image.
    Applied,
    /// Another entry changed the image after `based_on`: nothing applied.
    Conflict,
    /// `based_on` is not an offset before the entry, or the records break the metadata rules
    /// (`MetadataImage::check`): nothing applied, the entry skipped with an error log. Only a
    /// forged entry or one written before the rules were checked gets here: proposals are
    /// checked before they are appended.
    Invalid,
    /// Not a proposal (blank or membership entry).
    NotProposal,
}

/// The Raft id of a Kafka node id.
pub(crate) fn raft_id(node_id: i32) -> NodeId {
    // Negative ids are refused by QuorumConfig validation; this keeps the cast total.
    u64::try_from(node_id).unwrap_or(u64::MAX)
}

/// The Kafka node id of a Raft id.
pub(crate) fn kafka_id(id: NodeId) -> i32 {
    i32::try_from(id).unwrap_or(-1)
}
