//! The openraft type configuration of the metadata quorum: what an entry carries (a
//! [`Proposal`]), what applying it answers ([`ApplyOutcome`]), and the id/address conventions.

use std::io::Cursor;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

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

/// The largest proposal one entry may carry (its JSON). openraft bounds every AppendEntries by
/// the heartbeat interval, so an entry must travel, decode and be stored well within it (a 1 MiB
/// entry already misses 50 ms in a debug build and is resent forever); larger proposals are
/// split. Every valid record fits (see the record limits in `metadata`).
pub const MAX_ENTRY_BYTES: usize = 64 << 10;

/// The largest proposal (its JSON, all parts together): about 190,000 partitions of replication
/// factor 3 in one CreateTopics, more than `MAX_PARTITIONS_PER_TOPIC` allows. Larger ones are
/// refused with `QuorumError::TooLarge` before anything is written.
pub const MAX_PROPOSAL_BYTES: usize = 32 << 20;

/// Most parts of one split proposal.
pub const MAX_PROPOSAL_PARTS: u32 = 1024;

/// One Raft entry of application data: records decided against the image at `based_on`.
///
/// Optimistic concurrency: the state machine applies the records only if no entry changed the
/// image after `based_on` (the proposer's view is still current); otherwise the entry is a no-op
/// and the proposer re-decides on a newer image. So `decide` never runs under a cluster-wide
/// lock, and an entry committed twice (a retry after a lost answer) cannot apply twice.
///
/// A proposal larger than one entry (`MAX_ENTRY_BYTES`) travels as several, each a [`ProposalPart`]
/// of one group: the state machine stages the parts and applies all the records at the last one,
/// so readers never see part of it (see `staging`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    /// `MetadataImage::offset` of the image the records were decided on: a real offset, at most
    /// the entry's own index (the image offset just before it); anything else is invalid.
    pub based_on: i64,
    /// The records; applied together or not at all.
    pub records: Vec<MetadataRecord>,
    /// Which part of a split proposal this is; `None` for a whole one (and in every entry
    /// written before proposals were split).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part: Option<ProposalPart>,
}

/// One entry of a proposal split across `count` entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposalPart {
    /// The split proposal (new for each attempt).
    pub group: Uuid,
    /// 0-based, in order.
    pub index: u32,
    /// How many parts; at least 2, at most `MAX_PROPOSAL_PARTS`.
    pub count: u32,
}

/// What applying one entry did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApplyOutcome {
    /// The records are in the image.
    Applied,
    /// Another entry changed the image after `based_on`: nothing applied (for a part, the whole
    /// split proposal is dropped).
    Conflict,
    /// A part of a split proposal other than the last: kept aside, nothing applied yet.
    Staged,
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
