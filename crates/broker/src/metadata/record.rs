//! `MetadataRecord`: one change to cluster metadata. Stored as the JSON value of a Kafka record,
//! so the metadata log is readable with any Kafka tool that can dump a segment.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What a config record applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConfigResourceType {
    /// A topic's config.
    Topic,
    /// A broker's dynamic config ("" = cluster default).
    Broker,
}

/// One metadata change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum MetadataRecord {
    /// A topic exists with this id (Kafka's `TopicRecord`).
    Topic {
        /// Topic name.
        name: String,
        /// Topic id.
        topic_id: Uuid,
    },
    /// A partition and its replica state (Kafka's `PartitionRecord`).
    Partition {
        /// Owning topic.
        topic_id: Uuid,
        /// Partition index.
        partition: i32,
        /// Replica broker ids.
        replicas: Vec<i32>,
        /// In-sync replicas.
        isr: Vec<i32>,
        /// Leader broker id.
        leader: i32,
        /// Leader epoch.
        leader_epoch: i32,
    },
    /// A config set (`value: Some`) or deleted (`None`) (Kafka's `ConfigRecord`).
    Config {
        /// Resource type.
        resource_type: ConfigResourceType,
        /// Resource name (topic name, broker id).
        resource_name: String,
        /// Config key.
        name: String,
        /// Value, or `None` to remove the override.
        value: Option<String>,
    },
    /// A topic and its partitions are gone (Kafka's `RemoveTopicRecord`).
    RemoveTopic {
        /// The topic id.
        topic_id: Uuid,
    },
    /// A block of producer ids was handed to a broker (Kafka's `ProducerIdsRecord`): every id
    /// below `next_producer_id` may be in use, the next block starts there.
    ProducerIds {
        /// The broker that reserved the block.
        broker_id: i32,
        /// First id after the reserved block.
        next_producer_id: i64,
    },
}
