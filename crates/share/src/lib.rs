//! Kafka share groups (KIP-932, "queues"; KIP-1222 RENEW), the pure core: what the broker keeps
//! for a share group and for each share partition, with Kafka's names, states and error codes.
//!
//! - [`SharePartition`] (`share_partition.rs`): one share partition on its leader: SPSO, SPEO,
//!   in-flight batches ([`RecordState`] per batch or per offset), acquisition locks, delivery
//!   counts; acquire, acknowledge ([`AcknowledgeType`]), lock expiry, member release.
//! - [`ShareSnapshot`], [`ShareUpdate`], [`ShareStateLog`] (`state_record.rs`): the durable form
//!   (`__share_group_state` semantics) and the rule for writing snapshots so a load is bounded.
//! - [`SimpleAssignor`] (`assignor.rs`): Kafka's share-group assignor; partitions may be shared.
//! - [`ShareGroup`] (`group.rs`): membership by ShareGroupHeartbeat (KIP-848 style epochs).
//!
//! Dependency rule: a pure crate. No strom crate, no I/O, no async, no clock (every time is
//! passed in, in milliseconds), no randomness, no wire types: the broker maps the errors'
//! `code()` to responses and stores [`ShareStateRecord`]s as JSON in its internal topic.

mod assignor;
mod config;
mod error;
mod group;
mod in_flight;
mod record_state;
mod share_partition;
mod state_record;

pub use assignor::{Assignment, MemberSubscriptionAndAssignment, SimpleAssignor};
pub use config::{
    AutoOffsetReset, ShareGroupConfig, SharePartitionConfig, DELIVERY_COUNT_LIMIT_DEFAULT,
    HEARTBEAT_INTERVAL_MS_DEFAULT, MAX_SIZE_DEFAULT, PARTITION_MAX_RECORD_LOCKS_DEFAULT,
    RECORD_LOCK_DURATION_MS_DEFAULT, SESSION_TIMEOUT_MS_DEFAULT,
    UPDATE_RECORDS_PER_SNAPSHOT_DEFAULT,
};
pub use error::{
    ShareError, ShareGroupError, ShareStateError, FENCED_LEADER_EPOCH, FENCED_MEMBER_EPOCH,
    FENCED_STATE_EPOCH, GROUP_MAX_SIZE_REACHED, INVALID_RECORD_STATE, INVALID_REQUEST,
    UNKNOWN_MEMBER_ID,
};
pub use group::{
    HeartbeatOutcome, ShareGroup, ShareGroupMember, ShareGroupState, LEAVE_GROUP_MEMBER_EPOCH,
};
pub use record_state::{AcknowledgeType, RecordState};
pub use share_partition::{
    AcknowledgementBatch, AcquiredRecords, FetchedBatch, InFlightRecord, ShareAcquiredRecords,
    SharePartition,
};
pub use state_record::{
    merge_state_batches, PersisterStateBatch, ShareSnapshot, ShareStateLog, ShareStateRecord,
    ShareUpdate, StateChanges,
};
