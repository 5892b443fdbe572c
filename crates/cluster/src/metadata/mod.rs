//! Cluster metadata: the records of `__cluster_metadata` and the immutable image they build.

mod image;
mod record;

pub use image::{BrokerImage, MetadataImage, PartitionImage, TopicImage};
pub use record::{ConfigResourceType, MetadataRecord};
