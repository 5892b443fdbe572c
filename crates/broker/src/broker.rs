//! `Broker`: the state every handler shares (config, metadata, partitions), plus start-up and
//! shutdown. Topic creation lives here because both CreateTopics and Metadata auto-creation use it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use strom_log::{LogManager, LogManagerConfig};
use uuid::Uuid;

use crate::config::BrokerConfig;
use crate::metadata::{ConfigResourceType, MetadataImage, MetadataRecord, Quorum, TopicImage};
use crate::replica_manager::ReplicaManager;

/// Start-up failures.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The metadata quorum could not start.
    #[error(transparent)]
    Metadata(#[from] crate::metadata::QuorumError),
    /// The partition logs could not be opened.
    #[error(transparent)]
    Log(#[from] strom_log::LogError),
    /// The listener could not be bound.
    #[error("binding {addr}: {source}")]
    Bind {
        /// Address.
        addr: String,
        /// Error.
        #[source]
        source: std::io::Error,
    },
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// meta.properties could not be read or written.
    #[error("meta.properties: {0}")]
    MetaProperties(std::io::Error),
    /// `__consumer_offsets` could not be created or replayed.
    #[error("loading consumer groups: {0}")]
    Groups(#[from] strom_coordinator::WriteError),
}

/// What the handlers share.
#[derive(Debug)]
pub struct Broker {
    /// Static configuration.
    pub config: BrokerConfig,
    /// Cluster metadata: the controller quorum and its image.
    pub metadata: Arc<Quorum>,
    /// This process's registration incarnation (new at every start).
    pub incarnation: Uuid,
    /// Set once shutdown begins (heartbeats stop).
    shutting_down: std::sync::atomic::AtomicBool,
    /// Local partitions.
    pub replicas: ReplicaManager,
    /// Cluster id (from meta.properties).
    pub cluster_id: String,
    /// Host and port advertised to clients.
    pub advertised: (String, i32),
    /// Consumer groups and committed offsets (`__consumer_offsets`).
    pub groups: strom_coordinator::GroupCoordinator,
    /// KIP-848 consumer groups (beside `groups`, sharing its offsets and appenders).
    pub consumer_groups: strom_coordinator::ConsumerGroupCoordinator,
    /// Producer ids for InitProducerId (durably reserved in the metadata log).
    pub producer_ids: crate::producer_ids::ProducerIdManager,
    /// Transactions (`__transaction_state`).
    pub txn: strom_coordinator::txn::TransactionCoordinator,
    /// This broker, for tasks started from `&self` methods.
    this: std::sync::Weak<Broker>,
    /// Which coordinator partitions this node leads (`coordinator_leadership`).
    pub(crate) coordinator_leadership: crate::coordinator_leadership::CoordinatorLeadership,
    /// Connections to other brokers for transaction verification (`txn_verifier`).
    pub(crate) verification_connections: crate::inter_broker::BrokerConnections,
}

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
    fn new(e: ResponseError, message: impl Into<String>) -> Self {
        TopicError {
            code: e.code(),
            message: message.into(),
        }
    }
}

/// Kafka's topic name rule, shared with the metadata records' checks (`strom_cluster`).
pub use strom_cluster::metadata::validate_topic_name;

fn read_or_create_cluster_id(config: &BrokerConfig) -> Result<String, StartError> {
    let dir = config
        .log_dirs
        .first()
        .cloned()
        .unwrap_or_else(|| "./data".into());
    std::fs::create_dir_all(&dir).map_err(StartError::MetaProperties)?;
    let path = dir.join("meta.properties");
    if let Ok(text) = std::fs::read_to_string(&path) {
        if let Ok(p) = crate::config::parse_properties(&text) {
            if let Some(id) = p.get("cluster.id") {
                return Ok(id.clone());
            }
        }
    }
    let id = config.cluster_id.clone().unwrap_or_else(|| {
        // Kafka cluster ids are 22-character URL-safe base64 UUIDs; a hex UUID prefix is fine.
        // Nodes of one quorum must agree without being told (Kafka makes the operator format
        // every node with the same id): derive it from the voter set; a lone node picks one.
        let uuid = if config.voters.is_empty() {
            Uuid::new_v4()
        } else {
            let mut voters: Vec<String> = config
                .voters
                .iter()
                .map(|(id, addr)| format!("{id}@{addr}"))
                .collect();
            voters.sort();
            Uuid::new_v5(&Uuid::NAMESPACE_OID, voters.join(",").as_bytes())
        };
        uuid.simple().to_string()[..22].to_string()
    });
    let text = format!("version=1\nnode.id={}\ncluster.id={id}\n", config.node_id);
    std::fs::write(&path, text).map_err(StartError::MetaProperties)?;
    Ok(id)
}

impl Broker {
    /// Opens metadata and logs. The caller binds the listener and passes the bound address.
    pub(crate) fn open(
        config: BrokerConfig,
        bound: SocketAddr,
        metadata: Arc<Quorum>,
    ) -> Result<Arc<Broker>, StartError> {
        let cluster_id = read_or_create_cluster_id(&config)?;
        let image = metadata.image();
        let overrides = config.log_overrides().clone();
        let lm_config = LogManagerConfig {
            log_dirs: config.log_dirs.clone(),
            retention_check_interval: Duration::from_millis(config.retention_check_interval_ms),
            checkpoint_interval: Duration::from_millis(config.checkpoint_interval_ms),
            flush_check_interval: Duration::from_millis(config.flush_scheduler_interval_ms),
            high_watermark_policy: strom_log::HighWatermarkPolicy::FollowLocal,
            cleaner: config.cleaner_config(),
            producer_id_expiration_ms: config.producer_id_expiration_ms,
            producer_id_expiration_check_interval: Duration::from_millis(
                config.producer_id_expiration_check_interval_ms,
            ),
        };
        let img = image.clone();
        let ov = overrides.clone();
        let logs = LogManager::open(lm_config, &move |topic| {
            let topic_cfg = img
                .topic(topic)
                .map(|t| t.configs.clone())
                .unwrap_or_default();
            Arc::new(strom_log::LogConfig::build(&ov, &topic_cfg).unwrap_or_default())
        })?;
        let advertised = config.advertised_host_port(bound);
        let replicas = ReplicaManager::new(
            logs,
            overrides,
            crate::replication::FetcherConfig {
                node_id: config.node_id,
                max_wait_ms: config.replica_fetch_wait_max_ms,
                max_bytes_per_partition: config.replica_fetch_max_bytes,
                backoff: Duration::from_millis(config.replica_fetch_backoff_ms),
            },
            advertised.clone(),
        );
        // The roles taken here reach the coordinators once the broker exists (below).
        let initial_roles = replicas.sync(&image)?;
        let verification_connections =
            crate::inter_broker::BrokerConnections::new(config.node_id, "txn-verification");
        let broker = Arc::new_cyclic(|weak| {
            // The coordinators' writers hold the broker weakly: they check leadership in the
            // metadata image before every write.
            let groups = strom_coordinator::GroupCoordinator::new(
                crate::group_writer::coordinator_config(&config),
                Arc::new(crate::group_writer::OffsetsTopicWriter::new(weak.clone())),
            );
            let consumer_groups = strom_coordinator::ConsumerGroupCoordinator::new(
                crate::consumer_groups::consumer_group_config(&config),
                groups.clone(),
                Arc::new(crate::group_writer::OffsetsTopicWriter::new(weak.clone())),
            );
            Broker {
                txn: strom_coordinator::txn::TransactionCoordinator::new(
                    crate::txn_coordinator::txn_config(&config),
                    Arc::new(crate::group_writer::OffsetsTopicWriter::for_topic(
                        weak.clone(),
                        strom_coordinator::txn::TRANSACTION_STATE_TOPIC,
                    )),
                    Arc::new(crate::txn_coordinator::LogMarkerWriter::new(
                        weak.clone(),
                        config.node_id,
                    )),
                    Arc::new(crate::txn_coordinator::BrokerProducerIds(weak.clone())),
                    groups.clone(),
                ),
                config,
                metadata,
                replicas,
                cluster_id,
                advertised,
                groups,
                consumer_groups,
                producer_ids: Default::default(),
                incarnation: Uuid::new_v4(),
                shutting_down: Default::default(),
                this: weak.clone(),
                coordinator_leadership: Default::default(),
                verification_connections,
            }
        });
        crate::replication::start_isr_expiration(
            Arc::downgrade(&broker),
            broker.config.replica_lag_time_max_ms,
        );
        broker.tell_coordinators(initial_roles);
        // Called inside `block_in_place` on the runtime (BrokerServer::start).
        tokio::runtime::Handle::current().block_on(crate::internal_topics::start(&broker));
        Ok(broker)
    }

    /// Broker ids that are registered and not fenced (before this node's own registration is
    /// applied: this one).
    pub fn live_brokers(&self) -> Vec<i32> {
        let image = self.metadata.image();
        let live: Vec<i32> = image.live_brokers().map(|b| b.id()).collect();
        if live.is_empty() {
            vec![self.config.node_id]
        } else {
            live
        }
    }

    /// Applies a metadata image to this broker: local logs and replication roles, then the
    /// coordinators of internal topics whose leadership moved here or away.
    pub(crate) fn apply_image(&self, image: &Arc<MetadataImage>) {
        match self.replicas.sync(image) {
            Ok(changes) => self.tell_coordinators(changes),
            Err(e) => tracing::error!(error = %e, "applying metadata to local partitions failed"),
        }
    }

    /// Passes leadership changes to the coordinators (they load or unload internal partitions).
    fn tell_coordinators(&self, changes: Vec<crate::replica_manager::LeadershipChange>) {
        let Some(me) = self.this.upgrade() else {
            return;
        };
        for c in changes {
            crate::coordinator_leadership::on_leadership_change(
                &me,
                &c.tp.topic,
                c.tp.partition,
                c.leader_epoch,
                c.is_leader,
            );
        }
    }

    /// Creates topics (or only validates them). One result per input, in order.
    pub async fn create_topics(
        &self,
        topics: Vec<NewTopic>,
        validate_only: bool,
    ) -> Vec<Result<TopicImage, TopicError>> {
        let live = self.live_brokers();
        let default_partitions = self.config.num_partitions;
        let default_rf = self.config.default_replication_factor;
        let replicas = &self.replicas;
        let decided = self
            .metadata
            .propose(|image: &MetadataImage| {
                let mut records = Vec::new();
                let mut results = Vec::new();
                let mut seen: Vec<String> = Vec::new();
                for t in &topics {
                    let r = plan_topic(
                        image,
                        t,
                        &seen,
                        &live,
                        default_partitions,
                        default_rf,
                        replicas,
                    );
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
        let (results, image) = match decided {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(error = %e, "metadata write failed");
                let err = TopicError::new(ResponseError::KafkaStorageError, e.to_string());
                return topics.iter().map(|_| Err(err.clone())).collect();
            }
        };
        if !validate_only {
            self.apply_image(&image);
        }
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

    /// Creates a compacted internal topic (`__consumer_offsets`, `__transaction_state`) if missing
    /// and returns its partition ids, or `None` when it could not be created (fewer than
    /// `replication_factor` live brokers, or the creation failed). A topic that exists with a
    /// different partition count is kept as it is (logged): placement uses `partitions`.
    pub(crate) async fn ensure_internal_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
    ) -> Option<Vec<i32>> {
        if self.metadata.image().topic(name).is_none() {
            let live = self.live_brokers().len();
            if usize::try_from(replication_factor).unwrap_or(usize::MAX) > live {
                tracing::debug!(
                    topic = name,
                    replication_factor,
                    live,
                    "not creating internal topic: too few live brokers"
                );
                return None;
            }
            let topic = NewTopic {
                name: name.to_string(),
                partitions,
                replication_factor,
                configs: BTreeMap::from([("cleanup.policy".to_string(), "compact".to_string())]),
            };
            for r in self.create_topics(vec![topic], false).await {
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
        }
        let image = self.metadata.image();
        let topic = image.topic(name)?;
        if topic.partitions.len() != usize::try_from(partitions).unwrap_or(0) {
            tracing::warn!(
                topic = name,
                existing = topic.partitions.len(),
                configured = partitions,
                "internal topic partition count differs from its configured count; keys are placed by the configured count"
            );
        }
        Some(topic.partitions.keys().copied().collect())
    }

    /// Deletes topics by name; one result per input.
    pub async fn delete_topics(&self, names: Vec<String>) -> Vec<Result<Uuid, TopicError>> {
        let decided = self
            .metadata
            .propose(|image: &MetadataImage| {
                let mut records = Vec::new();
                let results: Vec<Result<Uuid, TopicError>> = names
                    .iter()
                    .map(|n| match image.topic(n) {
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
            .await;
        match decided {
            Ok((results, image)) => {
                self.apply_image(&image);
                results
            }
            Err(e) => {
                let err = TopicError::new(ResponseError::KafkaStorageError, e.to_string());
                names.iter().map(|_| Err(err.clone())).collect()
            }
        }
    }

    /// True once shutdown has begun.
    pub(crate) fn shutting_down(&self) -> bool {
        self.shutting_down
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Marks the start of shutdown (heartbeats stop, controlled shutdown follows).
    pub(crate) fn begin_shutdown(&self) {
        self.shutting_down
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// Clean shutdown of storage: flush, indexes, checkpoints, clean-shutdown markers. The
    /// quorum is shut down by the server after this.
    pub fn shutdown(&self) {
        self.replicas.stop_fetchers();
        self.consumer_groups.shutdown();
        self.groups.shutdown();
        if let Err(e) = self.replicas.log_manager().shutdown() {
            tracing::error!(error = %e, "log shutdown failed");
        }
    }
}

/// Checks one topic against the image and builds its records.
fn plan_topic(
    image: &MetadataImage,
    t: &NewTopic,
    seen: &[String],
    live: &[i32],
    default_partitions: i32,
    default_rf: i16,
    replicas: &ReplicaManager,
) -> Result<Vec<MetadataRecord>, TopicError> {
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
        recs.push(MetadataRecord::Partition {
            topic_id,
            partition: p,
            leader: reps[0],
            isr: reps.clone(),
            replicas: reps,
            leader_epoch: 0,
            partition_epoch: 0,
        });
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
