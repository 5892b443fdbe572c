//! Cluster metadata as the broker sees it: the records and image (`strom_cluster::metadata`) and
//! the controller quorum that makes them durable and replicated (`strom_cluster::quorum`). A
//! `strom serve` without voters is a one-node quorum of itself.

pub use strom_cluster::metadata::{
    BrokerImage, ConfigResourceType, MetadataImage, MetadataRecord, PartitionImage, TopicImage,
};
pub use strom_cluster::quorum::{Quorum, QuorumConfig, QuorumError};
