//! Replication policy: the pure, deterministic, clock-free rules of Kafka's replication protocol,
//! kept free of I/O so the controller, the broker's data plane and the simulation tests share
//! one copy.
//!
//! `leader` owns what a partition leader decides from its followers' fetches (follower
//! progress, ISR shrink/expand, high watermark); `election` owns the controller's partition
//! decisions (leader election on fencing and unfencing, AlterPartition validation, preferred
//! leader election, replica placement); `divergence` owns log reconciliation between a leader
//! and a follower (diverging epochs and the follower's truncation offset).

pub mod divergence;
pub mod election;
pub mod leader;

pub use divergence::{
    diverging_epoch, end_offset_for_epoch, truncation_offset, UNDEFINED_EPOCH,
    UNDEFINED_EPOCH_OFFSET,
};
pub use election::{
    alter_partition, elect_preferred, on_broker_fenced, on_broker_unfenced, place_replicas,
    AlterPartitionError, AlterPartitionRequest, NO_LEADER,
};
pub use leader::{FollowerFetchOutcome, FollowerProgress, LeaderState};
