//! Strom's group coordinator: Kafka consumer groups (the classic protocol) and committed
//! offsets, as record-emitting state machines.
//!
//! Each group is a [`GroupState`] machine (Empty → PreparingRebalance → CompletingRebalance →
//! Stable → Dead) driven by JoinGroup/SyncGroup/Heartbeat/LeaveGroup and by timers (session
//! expiry, rebalance timeout, `group.initial.rebalance.delay.ms`). State changes that must
//! survive a restart (committed offsets, a generation's members and assignment, deletions) are
//! records in `__consumer_offsets`, in Kafka's own key/value schemas (see `record.rs`), on the
//! partition `abs(hashCode(group)) % offsets.topic.num.partitions`, exactly as Kafka places them.
//! A response that depends on a record is sent only after the record is durable. A node
//! coordinates the partitions it leads: when it becomes leader the broker replays the partition
//! into its groups (`read_partition`, `replay`, `install`; [`GroupCoordinator::load_partition`]
//! does all three), and unloads it when leadership moves away.
//!
//! Concurrency: one mutex per group, held only for in-memory transitions; records are queued in
//! transition order on one appender task per partition and awaited with no lock held; timers are
//! tasks. See `coordinator.rs` and `writer.rs`.
//!
//! This crate must not depend on crates/broker or crates/log: storage is reached only through the
//! [`PartitionWriter`] trait, which the broker implements ([`InMemoryWriter`] for tests).
//!
//! KIP-848 consumer groups (ConsumerGroupHeartbeat, server-side assignors) are in `consumer/`,
//! beside the classic groups and sharing their offsets and appenders.
//!
//! KIP-932 share groups: membership in `share.rs`; share-partition state in
//! `__share_group_state` through the share coordinator (`share_state.rs`).
//!
//! Not yet here: compaction of `__consumer_offsets`.
//!
//! The transaction coordinator ([`txn`]) lives here too: the same record-emitting design over
//! `__transaction_state`, and TxnOffsetCommit offsets land in the groups on commit.

mod api;
mod classic;
mod config;
mod consumer;
mod coordinator;
#[cfg(test)]
mod durability_tests;
mod error;
mod group;
mod offset_writes;
mod offsets;
mod rebalance;
mod record;
mod share;
mod share_state;
#[cfg(test)]
mod tests;
pub mod txn;
mod writer;

pub use api::GroupState;
pub use api::{
    GroupDescription, GroupListing, JoinGroupRequest, JoinGroupResponse, JoinedMember,
    MemberDescription, MemberIdentity, OffsetCommitRequest, PartitionCommit, Protocol,
    SyncGroupRequest, SyncGroupResult,
};
pub use config::GroupCoordinatorConfig;
pub use consumer::{
    ConsumerGroupConfig, ConsumerGroupCoordinator, ConsumerGroupDescription,
    ConsumerMemberDescription, DescribedPartitions, HeartbeatRequest, HeartbeatResponse,
    LoadedConsumerGroups, MemberState, TopicInfo, TopicMetadata, ASSIGNORS,
};
pub use coordinator::{GroupCoordinator, LoadedGroups};
pub use error::{GroupError, WriteError};
pub use offsets::{DeletedOffsets, FetchedOffsets};
pub use record::{partition_for, OffsetAndMetadata, Record};
pub use share::{
    ShareGroupCoordinator, ShareGroupDescription, ShareGroupFailure, ShareMemberDescription,
};
pub use share_state::{
    LoadedShareStates, ShareCoordinator, SharePartitionKey, ShareStateFailure, SHARE_STATE_TOPIC,
};
pub use writer::{AppendFuture, InMemoryWriter, LogEntry, PartitionWriter};

/// The internal topic holding committed offsets and group metadata.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Kafka's internal topics (Kafka's `Topic.isInternal`): the coordinators' state, written only by
/// the broker. Clients may read them, but not produce to, delete records of, delete, add
/// partitions to, reconfigure or create them: a client-made `__consumer_offsets` of the wrong
/// shape would lose groups.
pub fn is_internal_topic(name: &str) -> bool {
    name == OFFSETS_TOPIC || name == txn::TRANSACTION_STATE_TOPIC || name == SHARE_STATE_TOPIC
}
