//! `MetadataImage`: the state the metadata records build, immutable once published (readers hold
//! an `Arc` to a consistent snapshot; a change makes a new image).

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::record::{ConfigResourceType, MetadataRecord};

/// One partition's replica state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartitionImage {
    /// Replica broker ids.
    pub replicas: Vec<i32>,
    /// In-sync replicas.
    pub isr: Vec<i32>,
    /// Leader broker id.
    pub leader: i32,
    /// Leader epoch.
    pub leader_epoch: i32,
    /// Partition epoch (bumped on every change).
    pub partition_epoch: i32,
}

/// One registered broker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BrokerImage {
    /// Broker id.
    pub id: i32,
    /// Incarnation of the last registration.
    pub incarnation: Uuid,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: i32,
    /// Rack.
    pub rack: Option<String>,
    /// Controller quorum address, or empty.
    pub controller_addr: String,
    /// Votes in the quorum.
    pub voter: bool,
    /// Fenced: heartbeats lapsed or not yet started.
    pub fenced: bool,
}

/// One topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicImage {
    /// Name.
    pub name: String,
    /// Id.
    pub id: Uuid,
    /// Partitions by index.
    pub partitions: BTreeMap<i32, PartitionImage>,
    /// Topic config overrides.
    pub configs: BTreeMap<String, String>,
}

/// Everything the metadata log says, at one offset. Serializable: it is the quorum's snapshot.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MetadataImage {
    topics: BTreeMap<String, TopicImage>,
    names_by_id: HashMap<Uuid, String>,
    /// Registered brokers by id.
    pub brokers: BTreeMap<i32, BrokerImage>,
    /// Dynamic broker configs by broker ("" = cluster-wide default).
    pub broker_configs: BTreeMap<String, BTreeMap<String, String>>,
    /// Offset of the last applied record + 1.
    pub offset: i64,
    /// First producer id not yet reserved by any broker (from `ProducerIds` records).
    pub next_producer_id: i64,
}

impl MetadataImage {
    /// A topic by name.
    pub fn topic(&self, name: &str) -> Option<&TopicImage> {
        self.topics.get(name)
    }
    /// A topic by id.
    pub fn topic_by_id(&self, id: &Uuid) -> Option<&TopicImage> {
        self.names_by_id.get(id).and_then(|n| self.topics.get(n))
    }
    /// Brokers that are registered and not fenced, by id.
    pub fn live_brokers(&self) -> impl Iterator<Item = &BrokerImage> {
        self.brokers.values().filter(|b| !b.fenced)
    }
    /// All topics, sorted by name.
    pub fn topics(&self) -> impl Iterator<Item = &TopicImage> {
        self.topics.values()
    }

    /// Applies one record (replay). Unknown references are ignored: a record about a removed
    /// topic can follow its removal in a racing history and must not break replay.
    pub fn apply(&mut self, record: &MetadataRecord) {
        match record {
            MetadataRecord::Topic { name, topic_id } => {
                self.names_by_id.insert(*topic_id, name.clone());
                self.topics.insert(
                    name.clone(),
                    TopicImage {
                        name: name.clone(),
                        id: *topic_id,
                        partitions: BTreeMap::new(),
                        configs: BTreeMap::new(),
                    },
                );
            }
            MetadataRecord::Partition {
                topic_id,
                partition,
                replicas,
                isr,
                leader,
                leader_epoch,
                partition_epoch,
            } => {
                if let Some(t) = self
                    .names_by_id
                    .get(topic_id)
                    .and_then(|n| self.topics.get_mut(n))
                {
                    t.partitions.insert(
                        *partition,
                        PartitionImage {
                            replicas: replicas.clone(),
                            isr: isr.clone(),
                            leader: *leader,
                            leader_epoch: *leader_epoch,
                            partition_epoch: *partition_epoch,
                        },
                    );
                }
            }
            MetadataRecord::Config {
                resource_type,
                resource_name,
                name,
                value,
            } => {
                let target = match resource_type {
                    ConfigResourceType::Topic => match self.topics.get_mut(resource_name) {
                        Some(t) => &mut t.configs,
                        None => return,
                    },
                    ConfigResourceType::Broker => self
                        .broker_configs
                        .entry(resource_name.clone())
                        .or_default(),
                };
                match value {
                    Some(v) => {
                        target.insert(name.clone(), v.clone());
                    }
                    None => {
                        target.remove(name);
                    }
                }
            }
            MetadataRecord::RemoveTopic { topic_id } => {
                if let Some(name) = self.names_by_id.remove(topic_id) {
                    self.topics.remove(&name);
                }
            }
            MetadataRecord::RegisterBroker {
                broker_id,
                incarnation,
                host,
                port,
                rack,
                controller_addr,
                voter,
            } => {
                self.brokers.insert(
                    *broker_id,
                    BrokerImage {
                        id: *broker_id,
                        incarnation: *incarnation,
                        host: host.clone(),
                        port: *port,
                        rack: rack.clone(),
                        controller_addr: controller_addr.clone(),
                        voter: *voter,
                        fenced: true,
                    },
                );
            }
            MetadataRecord::FenceBroker { broker_id } => {
                if let Some(b) = self.brokers.get_mut(broker_id) {
                    b.fenced = true;
                }
            }
            MetadataRecord::UnfenceBroker { broker_id } => {
                if let Some(b) = self.brokers.get_mut(broker_id) {
                    b.fenced = false;
                }
            }
            MetadataRecord::ProducerIds {
                next_producer_id, ..
            } => {
                self.next_producer_id = self.next_producer_id.max(*next_producer_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_builds_topics_configs_and_removal() {
        let id = Uuid::new_v4();
        let mut img = MetadataImage::default();
        img.apply(&MetadataRecord::Topic {
            name: "a".into(),
            topic_id: id,
        });
        img.apply(&MetadataRecord::Partition {
            topic_id: id,
            partition: 0,
            replicas: vec![1],
            isr: vec![1],
            leader: 1,
            leader_epoch: 0,
            partition_epoch: 0,
        });
        img.apply(&MetadataRecord::Config {
            resource_type: ConfigResourceType::Topic,
            resource_name: "a".into(),
            name: "retention.ms".into(),
            value: Some("5".into()),
        });
        let t = img.topic("a").expect("topic");
        assert_eq!(t.partitions.len(), 1);
        assert_eq!(t.configs.get("retention.ms").map(String::as_str), Some("5"));
        assert_eq!(img.topic_by_id(&id).map(|t| t.name.as_str()), Some("a"));
        img.apply(&MetadataRecord::RemoveTopic { topic_id: id });
        assert!(img.topic("a").is_none());
    }
}
