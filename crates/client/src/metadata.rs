//! `ClusterMetadata`: the client's view of brokers, topics, partitions and leaders, built from a
//! Metadata response. Snapshots are immutable and shared as `Arc`s; a refresh builds a new one.

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::messages::MetadataResponse;
use uuid::Uuid;

/// A (topic, partition) pair.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
}

impl TopicPartition {
    /// Builds a `TopicPartition`.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// One broker as advertised in Metadata or DescribeCluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    /// node.id
    pub id: i32,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: i32,
    /// broker.rack, if set.
    pub rack: Option<String>,
}

impl BrokerInfo {
    /// "host:port", for connecting.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// One partition's replica placement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMetadata {
    /// Partition index.
    pub partition: i32,
    /// Leader broker id; `None` while there is no leader (election in progress).
    pub leader: Option<i32>,
    /// Leader epoch (-1 if unknown).
    pub leader_epoch: i32,
    /// Assigned replicas.
    pub replicas: Vec<i32>,
    /// In-sync replicas.
    pub isr: Vec<i32>,
    /// Replicas that are offline.
    pub offline_replicas: Vec<i32>,
    /// Partition-level error code (0 = none).
    pub error_code: i16,
}

/// One topic's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMetadata {
    /// Topic name.
    pub name: String,
    /// Topic id (nil when the broker predates topic ids).
    pub id: Uuid,
    /// Internal topics (`__consumer_offsets`).
    pub is_internal: bool,
    /// Topic-level error code (0 = none).
    pub error_code: i16,
    /// Partitions, sorted by index.
    pub partitions: Vec<PartitionMetadata>,
}

impl TopicMetadata {
    /// The partition with index `partition`.
    pub fn partition(&self, partition: i32) -> Option<&PartitionMetadata> {
        // Indexes are dense in practice; fall back to a search if not.
        usize::try_from(partition)
            .ok()
            .and_then(|i| self.partitions.get(i))
            .filter(|p| p.partition == partition)
            .or_else(|| self.partitions.iter().find(|p| p.partition == partition))
    }

    /// Every partition of the topic as a `TopicPartition`, in metadata order.
    pub fn topic_partitions(&self) -> impl Iterator<Item = TopicPartition> + '_ {
        self.partitions
            .iter()
            .map(|p| TopicPartition::new(&self.name, p.partition))
    }
}

/// A snapshot of the cluster as seen by the client.
#[derive(Debug, Clone, Default)]
pub struct ClusterMetadata {
    /// Cluster id, when the broker sends one.
    pub cluster_id: Option<String>,
    /// The active controller, when known.
    pub controller_id: Option<i32>,
    /// Brokers by id.
    pub brokers: BTreeMap<i32, BrokerInfo>,
    /// Topics by name. Only topics without a topic-level error are kept.
    pub topics: HashMap<String, TopicMetadata>,
}

impl ClusterMetadata {
    /// Builds a snapshot from a response. Topics that came back with an error
    /// (UNKNOWN_TOPIC_OR_PARTITION, LEADER_NOT_AVAILABLE while being created) are left out.
    pub(crate) fn from_response(response: &MetadataResponse) -> (Self, Vec<(String, i16)>) {
        let brokers = response
            .brokers
            .iter()
            .map(|b| {
                let info = BrokerInfo {
                    id: b.node_id.0,
                    host: b.host.to_string(),
                    port: b.port,
                    rack: b.rack.as_ref().map(ToString::to_string),
                };
                (info.id, info)
            })
            .collect();
        let mut topics = HashMap::new();
        let mut errors = Vec::new();
        for t in &response.topics {
            let Some(name) = t.name.as_ref().map(|n| n.0.to_string()) else {
                continue;
            };
            if t.error_code != 0 {
                errors.push((name, t.error_code));
                continue;
            }
            let mut partitions: Vec<PartitionMetadata> = t
                .partitions
                .iter()
                .map(|p| PartitionMetadata {
                    partition: p.partition_index,
                    leader: (p.leader_id.0 >= 0).then_some(p.leader_id.0),
                    leader_epoch: p.leader_epoch,
                    replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                    isr: p.isr_nodes.iter().map(|b| b.0).collect(),
                    offline_replicas: p.offline_replicas.iter().map(|b| b.0).collect(),
                    error_code: p.error_code,
                })
                .collect();
            partitions.sort_by_key(|p| p.partition);
            topics.insert(
                name.clone(),
                TopicMetadata {
                    name,
                    id: t.topic_id,
                    is_internal: t.is_internal,
                    error_code: 0,
                    partitions,
                },
            );
        }
        let meta = ClusterMetadata {
            cluster_id: response.cluster_id.as_ref().map(ToString::to_string),
            controller_id: (response.controller_id.0 >= 0).then_some(response.controller_id.0),
            brokers,
            topics,
        };
        (meta, errors)
    }

    /// Folds a partial refresh (some topics) into this snapshot: brokers and controller come from
    /// the newer response, refreshed topics are replaced, topics reported missing are dropped.
    pub(crate) fn merged(
        &self,
        newer: ClusterMetadata,
        missing: &[(String, i16)],
        all_topics: bool,
    ) -> Self {
        let mut topics = if all_topics {
            HashMap::new()
        } else {
            self.topics.clone()
        };
        for (name, _) in missing {
            topics.remove(name);
        }
        topics.extend(newer.topics);
        ClusterMetadata { topics, ..newer }
    }

    /// The topic named `name`.
    pub fn topic(&self, name: &str) -> Option<&TopicMetadata> {
        self.topics.get(name)
    }

    /// The leader of `topic`-`partition`, when known.
    pub fn leader(&self, topic: &str, partition: i32) -> Option<i32> {
        self.topic(topic)?.partition(partition)?.leader
    }

    /// The name of the topic with id `id` (Fetch v13 answers by id).
    pub fn topic_name_by_id(&self, id: Uuid) -> Option<&str> {
        self.topics
            .values()
            .find(|t| t.id == id)
            .map(|t| t.name.as_str())
    }
}

/// A topic name as the wire carries it.
pub(crate) fn topic_name(name: &str) -> kafka_protocol::messages::TopicName {
    kafka_protocol::messages::TopicName(kafka_protocol::protocol::StrBytes::from_string(
        name.to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::metadata_response::{
        MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
    };
    use kafka_protocol::messages::{BrokerId, TopicName};
    use kafka_protocol::protocol::StrBytes;

    fn response() -> MetadataResponse {
        MetadataResponse::default()
            .with_brokers(vec![MetadataResponseBroker::default()
                .with_node_id(BrokerId(1))
                .with_host(StrBytes::from_static_str("localhost"))
                .with_port(9092)])
            .with_controller_id(BrokerId(1))
            .with_topics(vec![
                MetadataResponseTopic::default()
                    .with_name(Some(TopicName(StrBytes::from_static_str("t"))))
                    .with_partitions(vec![
                        MetadataResponsePartition::default()
                            .with_partition_index(1)
                            .with_leader_id(BrokerId(-1)),
                        MetadataResponsePartition::default()
                            .with_partition_index(0)
                            .with_leader_id(BrokerId(1))
                            .with_replica_nodes(vec![BrokerId(1)])
                            .with_isr_nodes(vec![BrokerId(1)]),
                    ]),
                MetadataResponseTopic::default()
                    .with_name(Some(TopicName(StrBytes::from_static_str("gone"))))
                    .with_error_code(3),
            ])
    }

    #[test]
    fn builds_snapshot_and_reports_topic_errors() {
        let (meta, errors) = ClusterMetadata::from_response(&response());
        assert_eq!(errors, vec![("gone".to_owned(), 3)]);
        assert_eq!(meta.brokers[&1].addr(), "localhost:9092");
        assert_eq!(meta.controller_id, Some(1));
        assert_eq!(meta.leader("t", 0), Some(1));
        assert_eq!(meta.leader("t", 1), None, "no leader");
        assert_eq!(meta.topic("t").map(|t| t.partitions.len()), Some(2));
        assert!(meta.topic("gone").is_none());
    }

    #[test]
    fn partial_refresh_merges() {
        let (meta, _) = ClusterMetadata::from_response(&response());
        let mut other = meta.clone();
        other.topics.clear();
        let merged = other.merged(meta.clone(), &[], false);
        assert!(merged.topic("t").is_some());
        let dropped = meta.merged(ClusterMetadata::default(), &[("t".to_owned(), 3)], false);
        assert!(dropped.topic("t").is_none());
    }
}
