//! Replication policy: the pure, deterministic rules of Kafka's replication protocol, kept free
//! of I/O so the controller, the broker's data plane and the simulation tests share one copy.
//!
//! `election` owns the controller's partition decisions (leader election on fencing and
//! unfencing, AlterPartition validation, preferred leader election, replica placement).

pub mod election;

pub use election::{
    alter_partition, elect_preferred, on_broker_fenced, on_broker_unfenced, place_replicas,
    AlterPartitionError, AlterPartitionRequest, NO_LEADER,
};
