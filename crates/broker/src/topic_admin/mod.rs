//! `TopicAdmin`: changes to topics through the metadata quorum — create (CreateTopics, Metadata
//! auto-creation, the internal topics), delete, add partitions (`partitions.rs`) and alter topic
//! and broker configs (`configs.rs`).
//!
//! Each change is validated against the current image inside `Quorum::propose`, emitted as
//! metadata records (durable and replicated before the answer), and the new image is published
//! to this broker at once (`MetadataPublisher`): local logs exist and configs apply before the
//! client hears back.

mod configs;
mod partitions;

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use uuid::Uuid;

use strom_cluster::metadata::{MAX_PARTITIONS_PER_CLUSTER, MAX_PARTITIONS_PER_TOPIC};

use crate::metadata::{
    ConfigResourceType, MetadataImage, MetadataRecord, Quorum, QuorumError, TopicImage,
};
use crate::metadata_publisher::MetadataPublisher;
use crate::replica_manager::ReplicaManager;

pub use configs::{ConfigAlteration, ConfigOp};

/// A topic to create.
#[derive(Debug, Clone)]
pub struct NewTopic {
    /// Name.
    pub name: String,
    /// Partition count (-1 = `num.partitions`).
    pub partitions: i32,
    /// Replication factor (-1 = `default.replication.factor`).
    pub replication_factor: i16,
    /// Config overrides.
    pub configs: BTreeMap<String, String>,
}

/// A per-topic failure with Kafka's code and a message.
#[derive(Debug, Clone)]
pub struct TopicError {
    /// Kafka error code.
    pub code: i16,
    /// Human-readable reason.
    pub message: String,
}

impl TopicError {
    pub(crate) fn new(e: ResponseError, message: impl Into<String>) -> Self {
        TopicError {
            code: e.code(),
            message: message.into(),
        }
    }
}

pub use strom_cluster::metadata::validate_topic_name;

pub(crate) use strom_coordinator::is_internal_topic;

/// The refusal of a client's change to an internal topic.
pub(crate) fn internal_topic_error(code: ResponseError, name: &str, what: &str) -> TopicError {
    TopicError::new(code, format!("Cannot {what} internal topic {name}"))
}

/// Cluster defaults of new topics (`num.partitions`, `default.replication.factor`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct TopicDefaults {
    pub(crate) num_partitions: i32,
    pub(crate) replication_factor: i16,
}

/// Topic changes through the metadata quorum.
#[derive(Debug)]
pub struct TopicAdmin {
    quorum: Arc<Quorum>,
    replicas: Arc<ReplicaManager>,
    publisher: Arc<MetadataPublisher>,
    defaults: TopicDefaults,
    node_id: i32,
    /// The broker's bounds of group configs (IncrementalAlterConfigs on GROUP resources).
    group_bounds: crate::config::GroupConfigBounds,
}

impl TopicAdmin {
    pub(crate) fn new(
        quorum: Arc<Quorum>,
        replicas: Arc<ReplicaManager>,
        publisher: Arc<MetadataPublisher>,
        defaults: TopicDefaults,
        node_id: i32,
        group_bounds: crate::config::GroupConfigBounds,
    ) -> Self {
        TopicAdmin {
            group_bounds,
            quorum,
            replicas,
            publisher,
            defaults,
            node_id,
        }
    }

    /// Proposes what `decide` builds from the current image — the records, and one result per
    /// item — then publishes the new image here. When the proposal fails, each of the `items`
    /// is answered KAFKA_STORAGE_ERROR.
    async fn propose_each<T: Send + 'static>(
        &self,
        items: usize,
        decide: impl FnMut(&MetadataImage) -> (Vec<MetadataRecord>, Vec<Result<T, TopicError>>),
    ) -> Vec<Result<T, TopicError>> {
        match self.quorum.propose(decide).await {
            Ok((results, image)) => {
                self.publisher.publish(&image);
                results
            }
            Err(e) => {
                let code = match &e {
                    // Refused by the metadata rules or the proposal size: the request's fault.
                    QuorumError::Invalid(_) | QuorumError::TooLarge { .. } => {
                        tracing::info!(error = %e, "metadata change refused");
                        ResponseError::PolicyViolation
                    }
                    _ => {
                        tracing::error!(error = %e, "metadata write failed");
                        ResponseError::KafkaStorageError
                    }
                };
                let err = TopicError::new(code, e.to_string());
                (0..items).map(|_| Err(err.clone())).collect()
            }
        }
    }

    /// Broker ids that are registered and not fenced (before this node's own registration is
    /// applied: this one).
    pub fn live_brokers(&self) -> Vec<i32> {
        let image = self.quorum.image();
        let live: Vec<i32> = image.live_brokers().map(|b| b.id()).collect();
        if live.is_empty() {
            vec![self.node_id]
        } else {
            live
        }
    }

    /// Creates topics (or only validates them). One result per input, in order.
    pub async fn create_topics(
        &self,
        topics: Vec<NewTopic>,
        validate_only: bool,
    ) -> Vec<Result<TopicImage, TopicError>> {
        self.create(topics, validate_only, false).await
    }

    /// [`TopicAdmin::create_topics`]; `internal`: the broker creating its coordinators' topics.
    async fn create(
        &self,
        topics: Vec<NewTopic>,
        validate_only: bool,
        internal: bool,
    ) -> Vec<Result<TopicImage, TopicError>> {
        let live = self.live_brokers();
        let results = self
            .propose_each(topics.len(), |image: &MetadataImage| {
                let mut records = Vec::new();
                let mut results = Vec::new();
                let mut seen: Vec<String> = Vec::new();
                let mut budget = PartitionBudget::of(image);
                for t in &topics {
                    let r = self.plan_topic(image, t, &seen, &live, internal, &mut budget);
                    match r {
                        Ok(recs) => {
                            seen.push(t.name.clone());
                            if !validate_only {
                                records.extend(recs.iter().cloned());
                            }
                            results.push(Ok(recs));
                        }
                        Err(e) => results.push(Err(e)),
                    }
                }
                (records, results)
            })
            .await;
        results
            .into_iter()
            .zip(&topics)
            .map(|(r, t)| {
                r.map(|recs| {
                    let mut img = MetadataImage::default();
                    for rec in &recs {
                        img.apply(rec);
                    }
                    img.topic(&t.name).cloned().unwrap_or_else(|| TopicImage {
                        name: t.name.clone(),
                        id: Uuid::nil(),
                        partitions: Default::default(),
                        configs: Default::default(),
                    })
                })
            })
            .collect()
    }

    /// Creates a compacted internal topic (`__consumer_offsets`, `__transaction_state`) if
    /// missing; true if it exists now, false when it could not be created (fewer than
    /// `replication_factor` live brokers, or the creation failed). A topic found with another
    /// partition count than `partitions` is kept as it is (logged): placement uses
    /// `partitions`.
    pub(crate) async fn ensure_internal_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
    ) -> bool {
        if self.quorum.image().topic(name).is_some() {
            return true;
        }
        let live = self.live_brokers().len();
        if usize::try_from(replication_factor).unwrap_or(usize::MAX) > live {
            tracing::debug!(
                topic = name,
                replication_factor,
                live,
                "not creating internal topic: too few live brokers"
            );
            return false;
        }
        let topic = NewTopic {
            name: name.to_string(),
            partitions,
            replication_factor,
            configs: BTreeMap::from([("cleanup.policy".to_string(), "compact".to_string())]),
        };
        for r in self.create(vec![topic], false, true).await {
            match r {
                Ok(_) => tracing::info!(
                    topic = name,
                    partitions,
                    replication_factor,
                    "created internal topic"
                ),
                // Created meanwhile by a concurrent request.
                Err(e) if e.code == ResponseError::TopicAlreadyExists.code() => {}
                Err(e) => {
                    tracing::error!(topic = name, error = %e.message, "creating internal topic failed");
                }
            }
        }
        let image = self.quorum.image();
        let Some(topic) = image.topic(name) else {
            return false;
        };
        if topic.partitions.len() != usize::try_from(partitions).unwrap_or(0) {
            tracing::warn!(
                topic = name,
                existing = topic.partitions.len(),
                configured = partitions,
                "internal topic partition count differs from its configured count; keys are placed by the configured count"
            );
        }
        true
    }

    /// Deletes topics by name; one result per input.
    pub async fn delete_topics(&self, names: Vec<String>) -> Vec<Result<Uuid, TopicError>> {
        self.propose_each(names.len(), |image: &MetadataImage| {
            let mut records = Vec::new();
            let results = names
                .iter()
                .map(|n| match image.topic(n) {
                    Some(_) if is_internal_topic(n) => Err(internal_topic_error(
                        ResponseError::TopicAuthorizationFailed,
                        n,
                        "delete",
                    )),
                    Some(t) => {
                        records.push(MetadataRecord::RemoveTopic { topic_id: t.id });
                        Ok(t.id)
                    }
                    None => Err(TopicError::new(
                        ResponseError::UnknownTopicOrPartition,
                        format!("topic {n} does not exist"),
                    )),
                })
                .collect();
            (records, results)
        })
        .await
    }
}

/// How many partitions one request may still create: at most [`MAX_PARTITIONS_PER_REQUEST`], and
/// no more than the cluster has room for under `MAX_PARTITIONS_PER_CLUSTER`. Checked before any
/// record is built, so a count read off the wire never sizes an allocation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PartitionBudget {
    request: i64,
    cluster: i64,
}

/// Most partitions one CreateTopics or CreatePartitions request may create, all topics together.
pub(crate) const MAX_PARTITIONS_PER_REQUEST: i32 = MAX_PARTITIONS_PER_TOPIC;

impl PartitionBudget {
    pub(crate) fn of(image: &MetadataImage) -> Self {
        let used = i64::try_from(image.partition_count()).unwrap_or(i64::MAX);
        PartitionBudget {
            request: i64::from(MAX_PARTITIONS_PER_REQUEST),
            cluster: i64::try_from(MAX_PARTITIONS_PER_CLUSTER)
                .unwrap_or(i64::MAX)
                .saturating_sub(used),
        }
    }
}

/// `count` new partitions of one topic whose total becomes `total`, within the limits (Kafka's
/// codes: INVALID_PARTITIONS for one topic's count, POLICY_VIOLATION for the request's or the
/// cluster's); takes them from `budget`.
pub(crate) fn check_partition_limits(
    total: i32,
    budget: &mut PartitionBudget,
) -> Result<(), TopicError> {
    check_added_partitions(total, total, budget)
}

/// As [`check_partition_limits`] for `added` new partitions of a topic that will have `total`.
pub(crate) fn check_added_partitions(
    added: i32,
    total: i32,
    budget: &mut PartitionBudget,
) -> Result<(), TopicError> {
    if total > MAX_PARTITIONS_PER_TOPIC {
        return Err(TopicError::new(
            ResponseError::InvalidPartitions,
            format!(
                "Number of partitions {total} exceeds the limit of {MAX_PARTITIONS_PER_TOPIC} per topic."
            ),
        ));
    }
    let added = i64::from(added);
    if added > budget.request {
        return Err(TopicError::new(
            ResponseError::PolicyViolation,
            format!("The request would create more than {MAX_PARTITIONS_PER_REQUEST} partitions."),
        ));
    }
    if added > budget.cluster {
        return Err(TopicError::new(
            ResponseError::PolicyViolation,
            format!("The cluster would have more than {MAX_PARTITIONS_PER_CLUSTER} partitions."),
        ));
    }
    budget.request -= added;
    budget.cluster -= added;
    Ok(())
}

/// A new partition's record: `replicas` in order, the first the leader, all in sync, epoch 0.
fn new_partition(topic_id: Uuid, partition: i32, replicas: Vec<i32>) -> MetadataRecord {
    MetadataRecord::Partition {
        topic_id,
        partition,
        leader: replicas.first().copied().unwrap_or(-1),
        isr: replicas.clone(),
        replicas,
        leader_epoch: 0,
        partition_epoch: 0,
    }
}

impl TopicAdmin {
    /// Checks one topic against the image and builds its records.
    fn plan_topic(
        &self,
        image: &MetadataImage,
        t: &NewTopic,
        seen: &[String],
        live: &[i32],
        internal: bool,
        budget: &mut PartitionBudget,
    ) -> Result<Vec<MetadataRecord>, TopicError> {
        let (default_partitions, default_rf) = (
            self.defaults.num_partitions,
            self.defaults.replication_factor,
        );
        let replicas = &self.replicas;
        if is_internal_topic(&t.name) && !internal {
            return Err(TopicError::new(
                ResponseError::InvalidRequest,
                format!("Creation of internal topic {} is prohibited.", t.name),
            ));
        }
        validate_topic_name(&t.name)
            .map_err(|m| TopicError::new(ResponseError::InvalidTopicException, m.to_string()))?;
        if image.topic(&t.name).is_some() || seen.contains(&t.name) {
            return Err(TopicError::new(
                ResponseError::TopicAlreadyExists,
                format!("Topic '{}' already exists.", t.name),
            ));
        }
        // '.' and '_' collide in metric names; Kafka refuses such pairs.
        let norm = t.name.replace('.', "_");
        if let Some(other) = image.topics().find(|o| o.name.replace('.', "_") == norm) {
            return Err(TopicError::new(
                ResponseError::InvalidTopicException,
                format!(
                    "Topic '{}' collides with existing topic '{}'",
                    t.name, other.name
                ),
            ));
        }
        let partitions = if t.partitions == -1 {
            default_partitions
        } else {
            t.partitions
        };
        if partitions < 1 {
            return Err(TopicError::new(
                ResponseError::InvalidPartitions,
                "Number of partitions must be larger than 0.",
            ));
        }
        check_partition_limits(partitions, budget)?;
        let rf = if t.replication_factor == -1 {
            default_rf
        } else {
            t.replication_factor
        };
        if rf < 1 {
            return Err(TopicError::new(
                ResponseError::InvalidReplicationFactor,
                "Replication factor must be larger than 0.",
            ));
        }
        if rf as usize > live.len() {
            return Err(TopicError::new(
                ResponseError::InvalidReplicationFactor,
                format!("Unable to replicate the partition {rf} time(s): The target replication factor of {rf} cannot be reached because only {} broker(s) are registered.", live.len()),
            ));
        }
        replicas
            .log_config(&t.configs)
            .map_err(|e| TopicError::new(ResponseError::InvalidConfig, e.to_string()))?;
        let topic_id = Uuid::new_v4();
        let mut recs = vec![MetadataRecord::Topic {
            name: t.name.clone(),
            topic_id,
        }];
        // Kafka starts the round robin at a random broker; the random topic id serves.
        let start = topic_id.as_bytes()[0] as usize;
        let placement =
            strom_cluster::replication::place_replicas(partitions, rf as usize, live, start);
        for (p, reps) in (0..partitions).zip(placement) {
            recs.push(new_partition(topic_id, p, reps));
        }
        for (k, v) in &t.configs {
            recs.push(MetadataRecord::Config {
                resource_type: ConfigResourceType::Topic,
                resource_name: t.name.clone(),
                name: k.clone(),
                value: Some(v.clone()),
            });
        }
        Ok(recs)
    }
}
