//! Cluster metadata: records, the in-memory image they build, and the store that makes them
//! durable. The shape is Kafka's `__cluster_metadata`: an append-only log of records replayed into
//! a `MetadataImage`. Single node today; the cluster issue swaps the local log for a Raft log
//! behind the same `MetadataStore::propose` without touching the handlers.

mod store;

pub use store::{MetadataError, MetadataStore};
pub use strom_cluster::metadata::{
    BrokerImage, ConfigResourceType, MetadataImage, MetadataRecord, PartitionImage, TopicImage,
};
