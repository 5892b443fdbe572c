//! KIP-848 consumer groups ("the next-generation consumer rebalance protocol"): membership and
//! assignment move from the client to the coordinator. Members send ConsumerGroupHeartbeat with
//! their subscription (topic names and/or a regex) and owned partitions; the coordinator keeps a
//! group epoch (bumped on every membership, subscription or metadata change), computes a target
//! assignment with a server-side assignor (`uniform`, `range`), and moves each member to it
//! incrementally: revoke before assign, each member's epoch catching up as it converges.
//!
//! Modules: `api` (config, value types, the [`TopicMetadata`] seam the broker implements),
//! `group` (state), `heartbeat` (the transition), `reconcile` (one member's next step),
//! `assignor`, `record` (records in `__consumer_offsets` and replay), `coordinator` (locking,
//! timers, namespace rules, offset-commit validation).
//!
//! Regex subscriptions use the `regex` crate, not RE2/J: the common subset (classes, anchors,
//! alternation, repetition) behaves the same; look-around and back-references are rejected by
//! both. Topics whose names start with `__` never match a regex.

mod api;
mod assignor;
mod coordinator;
mod group;
mod heartbeat;
mod reconcile;
mod record;
#[cfg(test)]
mod tests;

pub use api::{
    ConsumerGroupConfig, ConsumerGroupDescription, ConsumerMemberDescription, DescribedPartitions,
    HeartbeatRequest, HeartbeatResponse, TopicInfo, TopicMetadata,
};
pub use assignor::ASSIGNORS;
pub use coordinator::{ConsumerGroupCoordinator, LoadedConsumerGroups};
pub use reconcile::MemberState;
pub(crate) use record::is_consumer_record;
