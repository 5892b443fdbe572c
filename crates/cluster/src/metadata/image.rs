//! `MetadataImage`: the state the metadata records build, immutable once published (readers hold
//! an `Arc` to a consistent snapshot; a change makes a new image).
//!
//! Records are applied only after they pass [`MetadataImage::check`]: a record that breaks
//! Kafka's rules (a topic name such as `../x`, a leader outside the replicas) is skipped with an
//! error log, never applied, whatever wrote it (an old log, a forged entry).

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use strom_security::{ScramCredential, ScramMechanism};
use uuid::Uuid;

use super::acls::Acls;
use super::broker::BrokerImage;
use super::client_quotas::ClientQuotas;
use super::record::{ConfigResourceType, MetadataRecord};
use super::scram::{ScramCredentialInfo, ScramCredentials};
use super::validate::{check_partition, check_scram_credential, InvalidRecord};

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
    /// Dynamic group configs by group id (absent from snapshots written before them).
    #[serde(default)]
    pub group_configs: BTreeMap<String, BTreeMap<String, String>>,
    /// SCRAM credentials by user and mechanism (absent from snapshots written before them).
    #[serde(default)]
    scram_credentials: ScramCredentials,
    /// ACLs by id (absent from snapshots written before them).
    #[serde(default)]
    acls: Acls,
    /// Client quotas by entity (absent from snapshots written before them).
    #[serde(default)]
    client_quotas: ClientQuotas,
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
    /// How many topics there are.
    pub fn topic_count(&self) -> usize {
        self.topics.len()
    }
    /// How many partitions the cluster has (walks every topic: O(topics)). With
    /// [`MAX_PARTITIONS_PER_CLUSTER`](super::MAX_PARTITIONS_PER_CLUSTER), what CreateTopics and
    /// CreatePartitions check before building records.
    pub fn partition_count(&self) -> usize {
        self.topics.values().map(|t| t.partitions.len()).sum()
    }

    /// A user's SCRAM credential for `mechanism` (what `strom_security::ScramCredentialStore`
    /// answers).
    pub fn scram_credential(
        &self,
        mechanism: ScramMechanism,
        user: &str,
    ) -> Option<ScramCredential> {
        self.scram_credentials.credential(mechanism, user)
    }
    /// The users that have SCRAM credentials, sorted (DescribeUserScramCredentials without users).
    pub fn scram_users(&self) -> impl Iterator<Item = &str> {
        self.scram_credentials.users()
    }
    /// A user's SCRAM mechanisms and iteration counts; empty when the user has none (Kafka then
    /// answers RESOURCE_NOT_FOUND).
    pub fn scram_credential_infos(
        &self,
        user: &str,
    ) -> impl Iterator<Item = ScramCredentialInfo> + '_ {
        self.scram_credentials.infos(user)
    }
    /// True when `user` has a credential of the Kafka mechanism type (for `check`).
    pub(crate) fn has_scram_credential(&self, user: &str, mechanism: i8) -> bool {
        self.scram_credentials.contains(user, mechanism)
    }
    /// How many SCRAM credentials there are (walks the users).
    pub(crate) fn scram_credential_count(&self) -> usize {
        self.scram_credentials.len()
    }

    /// Every ACL, by id.
    pub fn acls(&self) -> &Acls {
        &self.acls
    }
    /// Every client quota, by entity.
    pub fn client_quotas(&self) -> &ClientQuotas {
        &self.client_quotas
    }

    /// Applies `records` together if they pass [`MetadataImage::check`], else none of them.
    pub fn apply_records(&mut self, records: &[MetadataRecord]) -> Result<(), InvalidRecord> {
        self.check(records)?;
        for r in records {
            self.apply_unchecked(r);
        }
        Ok(())
    }

    /// Applies one record if it passes [`MetadataImage::check`]; an invalid one is skipped with
    /// an error log (replay must go on). For planning on a scratch copy of the image.
    pub fn apply(&mut self, record: &MetadataRecord) {
        if let Err(e) = self.apply_records(std::slice::from_ref(record)) {
            tracing::error!(error = %e, ?record, "invalid metadata record skipped");
        }
    }

    /// Drops what no valid record could have made (topics with a name or id that breaks the
    /// rules, partitions and SCRAM credentials that do): a snapshot written before the rules were checked on apply
    /// may hold them. Each drop is logged; returns how many there were.
    pub(crate) fn drop_invalid(&mut self) -> usize {
        let mut dropped = 0;
        let bad_topics: Vec<(String, Uuid)> = self
            .topics
            .values()
            .filter(|t| {
                let r = MetadataRecord::Topic {
                    name: t.name.clone(),
                    topic_id: t.id,
                };
                r.validate().is_err() || self.names_by_id.get(&t.id) != Some(&t.name)
            })
            .map(|t| (t.name.clone(), t.id))
            .collect();
        for (name, id) in bad_topics {
            tracing::error!(topic = ?name, %id, "invalid topic in the metadata snapshot dropped");
            self.topics.remove(&name);
            if self.names_by_id.get(&id) == Some(&name) {
                self.names_by_id.remove(&id);
            }
            dropped += 1;
        }
        let topics = &self.topics;
        self.names_by_id.retain(|_, name| topics.contains_key(name));
        for t in self.topics.values_mut() {
            t.partitions.retain(|p, img| {
                let epochs = [img.leader_epoch, img.partition_epoch];
                let r = check_partition(*p, &img.replicas, &img.isr, img.leader, epochs);
                let ok = r.is_ok();
                if !ok {
                    tracing::error!(topic = %t.name, partition = p, "invalid partition in the metadata snapshot dropped");
                    dropped += 1;
                }
                ok
            });
        }
        dropped += self.scram_credentials.retain(|user, mechanism, c| {
            let ok = check_scram_credential(user, mechanism, c).is_ok();
            if !ok {
                // The user name is not logged: it failed the rules, so it may hold anything.
                tracing::error!(
                    mechanism,
                    "invalid SCRAM credential in the metadata snapshot dropped"
                );
            }
            ok
        });
        dropped
    }

    /// Applies one record that passed `check`. Unknown references are ignored: a record about a
    /// removed topic does nothing.
    fn apply_unchecked(&mut self, record: &MetadataRecord) {
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
                    ConfigResourceType::Group => {
                        self.group_configs.entry(resource_name.clone()).or_default()
                    }
                };
                match value {
                    Some(v) => {
                        target.insert(name.clone(), v.clone());
                    }
                    None => {
                        target.remove(name);
                    }
                }
                // A group without overrides keeps no entry (group ids are client-chosen).
                if *resource_type == ConfigResourceType::Group {
                    self.group_configs.retain(|_, configs| !configs.is_empty());
                }
            }
            MetadataRecord::RemoveTopic { topic_id } => {
                if let Some(name) = self.names_by_id.remove(topic_id) {
                    self.topics.remove(&name);
                }
            }
            MetadataRecord::RegisterBroker { broker_id, .. } => {
                if let Some(registration) = record.registration() {
                    self.brokers.insert(
                        *broker_id,
                        BrokerImage {
                            registration,
                            fenced: true,
                        },
                    );
                }
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
            MetadataRecord::UserScramCredential {
                name,
                mechanism,
                credential,
            } => {
                self.scram_credentials
                    .upsert(name, *mechanism, credential.clone());
            }
            MetadataRecord::RemoveUserScramCredential { name, mechanism } => {
                self.scram_credentials.remove(name, *mechanism);
            }
            MetadataRecord::AccessControlEntry { id, binding } => {
                self.acls.insert(*id, binding.clone());
            }
            MetadataRecord::RemoveAccessControlEntry { id } => self.acls.remove(id),
            MetadataRecord::ClientQuota {
                entity,
                key,
                value,
                remove,
            } => self
                .client_quotas
                .set(entity, key, (!remove).then_some(*value)),
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
