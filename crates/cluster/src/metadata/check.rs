//! `MetadataImage::check`: the rules that depend on the image, for records applied together (a
//! proposal): a new topic's name and id are free, and the cluster stays within `MAX_TOPICS`,
//! `MAX_PARTITIONS_PER_CLUSTER`, `MAX_BROKERS`, `MAX_SCRAM_CREDENTIALS`, `MAX_ACLS` and
//! `MAX_QUOTA_ENTITIES`. Each record's own rules run first
//! (`MetadataRecord::validate`).
//!
//! The records are checked in order against the image plus what the earlier records of the same
//! set did (an overlay of small maps), so a proposal that creates a topic and its partitions
//! checks as one, without copying the image. A set that fails is applied not at all.
//!
//! References to unknown topics (a `Partition` or `Config` for an id or name that is gone) are
//! not errors: applying them does nothing, as it always did.

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use super::image::MetadataImage;
use super::record::{ConfigResourceType, MetadataRecord};
use super::validate::{
    InvalidRecord, MAX_ACLS, MAX_BROKERS, MAX_CONFIGURED_GROUPS, MAX_PARTITIONS_PER_CLUSTER,
    MAX_QUOTA_ENTITIES, MAX_SCRAM_CREDENTIALS, MAX_TOPICS,
};

/// What the records checked so far changed, on top of the image.
struct Overlay<'a> {
    image: &'a MetadataImage,
    /// Topics created by earlier records: id → name.
    created: HashMap<Uuid, String>,
    created_names: HashSet<String>,
    /// Image topics removed by earlier records.
    removed: HashSet<Uuid>,
    /// Partitions earlier records added (not in the image).
    new_partitions: HashSet<(Uuid, i32)>,
    /// Partition count of the cluster after the earlier records; computed on first need
    /// (walking every topic), since most proposals add none.
    partitions: Option<usize>,
    topics: usize,
    brokers: usize,
    /// SCRAM credentials (user, mechanism type) earlier records set or removed, and whether
    /// each exists after them.
    scram: HashMap<(String, i8), bool>,
    /// SCRAM credential count after the earlier records; computed on first need.
    scram_count: Option<usize>,
    /// ACLs after the earlier records (an upper bound: removals are not subtracted).
    acls: usize,
    /// Quota entities after the earlier records (an upper bound, as `acls`).
    quota_entities: usize,
    /// Groups with dynamic configs after the earlier records (an upper bound, as `acls`).
    configured_groups: usize,
}

impl<'a> Overlay<'a> {
    fn new(image: &'a MetadataImage) -> Overlay<'a> {
        Overlay {
            image,
            created: HashMap::new(),
            created_names: HashSet::new(),
            removed: HashSet::new(),
            new_partitions: HashSet::new(),
            partitions: None,
            topics: image.topic_count(),
            brokers: image.brokers.len(),
            scram: HashMap::new(),
            scram_count: None,
            acls: image.acls().len(),
            quota_entities: image.client_quotas().len(),
            configured_groups: image.group_configs.len(),
        }
    }

    /// True when (user, mechanism) has a credential after the earlier records.
    fn scram_exists(&self, user: &str, mechanism: i8) -> bool {
        match self.scram.get(&(user.to_string(), mechanism)) {
            Some(exists) => *exists,
            None => self.image.has_scram_credential(user, mechanism),
        }
    }

    /// The SCRAM credential count after the earlier records.
    fn scram_count(&mut self) -> &mut usize {
        let image = self.image;
        self.scram_count
            .get_or_insert_with(|| image.scram_credential_count())
    }

    fn image_has_id(&self, id: &Uuid) -> bool {
        self.image.topic_by_id(id).is_some() && !self.removed.contains(id)
    }

    fn name_taken(&self, name: &str) -> bool {
        self.created_names.contains(name)
            || self
                .image
                .topic(name)
                .is_some_and(|t| !self.removed.contains(&t.id))
    }

    fn partitions(&mut self) -> &mut usize {
        let image = self.image;
        self.partitions
            .get_or_insert_with(|| image.partition_count())
    }

    fn check(&mut self, record: &MetadataRecord) -> Result<(), InvalidRecord> {
        record.validate()?;
        match record {
            MetadataRecord::Topic { name, topic_id } => {
                if self.name_taken(name) {
                    return Err(InvalidRecord::TopicExists(name.clone()));
                }
                if self.image_has_id(topic_id) || self.created.contains_key(topic_id) {
                    return Err(InvalidRecord::TopicIdExists(*topic_id));
                }
                self.topics += 1;
                if self.topics > MAX_TOPICS {
                    return Err(InvalidRecord::TooManyTopics { count: self.topics });
                }
                self.created.insert(*topic_id, name.clone());
                self.created_names.insert(name.clone());
            }
            MetadataRecord::Partition {
                topic_id,
                partition,
                ..
            } => {
                let is_new = if self.created.contains_key(topic_id) {
                    self.new_partitions.insert((*topic_id, *partition))
                } else if self.image_has_id(topic_id) {
                    let in_image = self
                        .image
                        .topic_by_id(topic_id)
                        .is_some_and(|t| t.partitions.contains_key(partition));
                    !in_image && self.new_partitions.insert((*topic_id, *partition))
                } else {
                    false // unknown topic: applying it does nothing
                };
                if is_new {
                    let count = self.partitions();
                    *count += 1;
                    let count = *count;
                    if count > MAX_PARTITIONS_PER_CLUSTER {
                        return Err(InvalidRecord::TooManyPartitions { count });
                    }
                }
            }
            MetadataRecord::RemoveTopic { topic_id } => {
                if let Some(name) = self.created.remove(topic_id) {
                    self.created_names.remove(&name);
                    let dropped = self.new_partitions.len();
                    self.new_partitions.retain(|(t, _)| t != topic_id);
                    let dropped = dropped - self.new_partitions.len();
                    self.topics = self.topics.saturating_sub(1);
                    if let Some(c) = self.partitions.as_mut() {
                        *c = c.saturating_sub(dropped);
                    }
                } else if self.image_has_id(topic_id) {
                    let image = self.image;
                    let in_image = image
                        .topic_by_id(topic_id)
                        .map_or(0, |t| t.partitions.len());
                    let added = self.new_partitions.len();
                    self.new_partitions.retain(|(t, _)| t != topic_id);
                    let added = added - self.new_partitions.len();
                    self.removed.insert(*topic_id);
                    self.topics = self.topics.saturating_sub(1);
                    let count = self.partitions();
                    *count = count.saturating_sub(in_image + added);
                }
            }
            MetadataRecord::RegisterBroker { broker_id, .. } => {
                if !self.image.brokers.contains_key(broker_id) {
                    self.brokers += 1;
                    if self.brokers > MAX_BROKERS {
                        return Err(InvalidRecord::TooManyBrokers);
                    }
                }
            }
            MetadataRecord::UserScramCredential {
                name, mechanism, ..
            } => {
                if !self.scram_exists(name, *mechanism) {
                    let count = self.scram_count();
                    if *count >= MAX_SCRAM_CREDENTIALS {
                        return Err(InvalidRecord::TooManyScramCredentials);
                    }
                    *count += 1;
                    self.scram.insert((name.clone(), *mechanism), true);
                }
            }
            MetadataRecord::RemoveUserScramCredential { name, mechanism } => {
                if self.scram_exists(name, *mechanism) {
                    let count = self.scram_count();
                    *count = count.saturating_sub(1);
                    self.scram.insert((name.clone(), *mechanism), false);
                }
            }
            MetadataRecord::AccessControlEntry { id, .. } => {
                // Counted without the set's own removals: a proposal never mixes the two.
                if !self.image.acls().contains(id) {
                    self.acls += 1;
                    if self.acls > MAX_ACLS {
                        return Err(InvalidRecord::TooManyAcls);
                    }
                }
            }
            MetadataRecord::ClientQuota { entity, remove, .. } => {
                let mut key = entity.clone();
                key.sort();
                if !remove && self.image.client_quotas().get(&key).is_none() {
                    self.quota_entities += 1;
                    if self.quota_entities > MAX_QUOTA_ENTITIES {
                        return Err(InvalidRecord::TooManyQuotaEntities);
                    }
                }
            }
            MetadataRecord::Config {
                resource_type: ConfigResourceType::Group,
                resource_name,
                value: Some(_),
                ..
            } if !self.image.group_configs.contains_key(resource_name) => {
                // Counted per new entry (an upper bound, as ACLs): group ids are client-chosen.
                self.configured_groups += 1;
                if self.configured_groups > MAX_CONFIGURED_GROUPS {
                    return Err(InvalidRecord::TooManyConfiguredGroups);
                }
            }
            MetadataRecord::RemoveAccessControlEntry { .. }
            | MetadataRecord::Config { .. }
            | MetadataRecord::FenceBroker { .. }
            | MetadataRecord::UnfenceBroker { .. }
            | MetadataRecord::ProducerIds { .. } => {}
        }
        Ok(())
    }
}

impl MetadataImage {
    /// Checks `records` as one set to apply to this image: each record's own rules
    /// ([`MetadataRecord::validate`]) and those that depend on the image and on the earlier
    /// records of the set. `Ok` means [`MetadataImage::apply_records`] applies them all.
    pub fn check(&self, records: &[MetadataRecord]) -> Result<(), InvalidRecord> {
        let mut overlay = Overlay::new(self);
        records.iter().try_for_each(|r| overlay.check(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::validate::{TopicNameError, MAX_PARTITIONS_PER_TOPIC};

    fn topic(name: &str, id: Uuid) -> MetadataRecord {
        MetadataRecord::Topic {
            name: name.into(),
            topic_id: id,
        }
    }

    fn part(id: Uuid, p: i32) -> MetadataRecord {
        MetadataRecord::Partition {
            topic_id: id,
            partition: p,
            replicas: vec![1, 2],
            isr: vec![2],
            leader: 2,
            leader_epoch: 0,
            partition_epoch: 0,
        }
    }

    #[test]
    fn a_set_is_checked_against_the_image_and_its_own_earlier_records() {
        let mut img = MetadataImage::default();
        let a = Uuid::new_v4();
        img.apply_records(&[topic("a", a), part(a, 0)])
            .expect("valid");
        assert_eq!(
            img.check(&[topic("a", Uuid::new_v4())]),
            Err(InvalidRecord::TopicExists("a".into()))
        );
        assert_eq!(
            img.check(&[topic("b", a)]),
            Err(InvalidRecord::TopicIdExists(a))
        );
        let b = Uuid::new_v4();
        assert_eq!(
            img.check(&[topic("b", b), topic("b", Uuid::new_v4())]),
            Err(InvalidRecord::TopicExists("b".into()))
        );
        // Removed then re-created in one set: the name is free again.
        assert_eq!(
            img.check(&[MetadataRecord::RemoveTopic { topic_id: a }, topic("a", b)]),
            Ok(())
        );
        assert_eq!(
            img.check(&[topic("../x", b)]),
            Err(InvalidRecord::TopicName(TopicNameError::IllegalCharacter {
                name: "../x".into()
            }))
        );
        // A failed set changes nothing.
        let before = img.topic_count();
        let bad = [topic("c", b), part(b, 0), topic("/abs", Uuid::new_v4())];
        assert!(img.apply_records(&bad).is_err());
        assert_eq!(img.topic_count(), before);
        assert!(img.topic("c").is_none());
    }

    fn scram(user: &str) -> MetadataRecord {
        MetadataRecord::UserScramCredential {
            name: user.into(),
            mechanism: 1,
            credential: crate::metadata::StoredScramCredential {
                salt: vec![7; 16].into(),
                stored_key: vec![1; 32].into(),
                server_key: vec![2; 32].into(),
                iterations: 4096,
            },
        }
    }

    #[test]
    fn scram_credentials_are_counted_against_the_limit() {
        let mut img = MetadataImage::default();
        img.apply_records(&[scram("old")]).expect("valid");
        let mut o = Overlay::new(&img);
        o.scram_count = Some(MAX_SCRAM_CREDENTIALS - 1);
        o.check(&scram("a")).expect("the last credential allowed");
        o.check(&scram("a"))
            .expect("a replacement is no new credential");
        o.check(&scram("old")).expect("nor is one the image has");
        let full = Err(InvalidRecord::TooManyScramCredentials);
        assert_eq!(o.check(&scram("b")), full);
        let remove = |user: &str| MetadataRecord::RemoveUserScramCredential {
            name: user.into(),
            mechanism: 1,
        };
        // Removing what does not exist makes no room; removing what does, makes one.
        o.check(&remove("nobody")).expect("valid");
        assert_eq!(o.check(&scram("c")), full);
        o.check(&remove("old")).expect("valid");
        o.check(&scram("c")).expect("room made by the removal");
        assert_eq!(o.check(&scram("d")), full);
        o.check(&remove("a")).expect("valid");
        o.check(&scram("old"))
            .expect("re-created after its removal");
    }

    #[test]
    fn partition_ids_bound_the_topic_and_the_cluster_total_is_counted() {
        let img = MetadataImage::default();
        let t = Uuid::new_v4();
        assert_eq!(
            img.check(&[topic("t", t), part(t, MAX_PARTITIONS_PER_TOPIC)]),
            Err(InvalidRecord::PartitionId(MAX_PARTITIONS_PER_TOPIC))
        );
        let mut o = Overlay::new(&img);
        o.partitions = Some(MAX_PARTITIONS_PER_CLUSTER - 1);
        o.check(&topic("t", t)).expect("topic");
        o.check(&part(t, 0)).expect("the last partition allowed");
        o.check(&part(t, 0))
            .expect("the same partition again is no new one");
        assert_eq!(
            o.check(&part(t, 1)),
            Err(InvalidRecord::TooManyPartitions {
                count: MAX_PARTITIONS_PER_CLUSTER + 1
            })
        );
    }
}
