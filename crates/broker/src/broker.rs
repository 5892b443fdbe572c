//! `Broker`: wires this node's parts together and hands them to the handlers. Built bottom-up,
//! each part given only what it needs (no part holds the `Broker`):
//!
//! ```text
//! ReplicaManager (logs, roles) ── LocalLeaders (who leads; the leader's internal writes)
//!        │                               │
//!        │                  Coordinators (groups, transactions) ── ProducerIdManager (quorum)
//!        │                               │
//!        └──────── MetadataPublisher (image → replicas → coordinators)
//!                                        │
//!                               TopicAdmin (topic changes through the quorum)
//! ```
//!
//! Start-up opens storage, applies the current image, creates the internal topics on a single
//! node and waits (bounded) for the coordinators' loads; shutdown stops fetchers, coordinators
//! and storage in that order.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use strom_log::{LogManager, LogManagerConfig};
use uuid::Uuid;

use crate::authorization::Authorization;
use crate::config::BrokerConfig;
use crate::coordinators::Coordinators;
use crate::endpoints::Endpoints;
use crate::inter_broker::BrokerConnections;
use crate::listener_tls::ListenerTls;
use crate::local_leaders::LocalLeaders;
use crate::metadata::{MetadataImage, Quorum};
use crate::metadata_publisher::MetadataPublisher;
use crate::producer_ids::ProducerIdManager;
use crate::quota_managers::QuotaManagers;
use crate::replica_manager::ReplicaManager;
use crate::share_partitions::SharePartitionManager;
use crate::share_persister::SharePersister;
use crate::topic_admin::{TopicAdmin, TopicDefaults};

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

/// This node's parts, as the handlers use them.
#[derive(Debug)]
pub struct Broker {
    /// Static configuration.
    pub config: BrokerConfig,
    /// Cluster metadata: the controller quorum and its image.
    pub metadata: Arc<Quorum>,
    /// This process's registration incarnation (new at every start).
    pub incarnation: Uuid,
    /// Set once shutdown begins (heartbeats stop).
    shutting_down: AtomicBool,
    /// Local partitions: logs and replication roles.
    pub replicas: Arc<ReplicaManager>,
    /// Who leads what, and the leader's internal writes.
    pub(crate) leaders: Arc<LocalLeaders>,
    /// Cluster id (from meta.properties).
    pub cluster_id: String,
    /// Host and port advertised to clients on the first listener.
    pub advertised: (String, i32),
    /// Every listener's advertised endpoint, and other brokers' (`endpoints.rs`).
    pub(crate) endpoints: Endpoints,
    /// Group and transaction coordinators.
    pub coordinators: Arc<Coordinators>,
    /// Producer ids for InitProducerId (durably reserved in the metadata log).
    pub producer_ids: Arc<ProducerIdManager>,
    /// Applies metadata images to this node.
    pub(crate) publisher: Arc<MetadataPublisher>,
    /// Topic changes through the quorum.
    pub topic_admin: TopicAdmin,
    /// Connections to other brokers for transaction verification (`txn_verifier`).
    pub(crate) verification_connections: BrokerConnections,
    /// The TLS listeners' acceptors, reloaded by dynamic config updates (`listener_tls.rs`).
    pub(crate) listener_tls: ListenerTls,
    /// ACL decisions (`authorization.rs`), kept current by the publisher.
    pub(crate) authorization: Arc<Authorization>,
    /// Client quotas (`quota_managers.rs`), kept current by the publisher.
    pub(crate) quotas: Arc<QuotaManagers>,
    /// Share-partition state and share sessions (KIP-932) of the partitions led here.
    pub(crate) share_partitions: SharePartitionManager,
    /// Hot-path metric cells (request, topic, ISR, connection, flush counters); the gauges of
    /// `/metrics` are computed from the parts above at scrape time (`BrokerCollector`).
    pub metrics: Arc<strom_metrics::BrokerMetrics>,
}

impl Broker {
    /// Opens storage and builds the parts. The caller binds the listener and passes the bound
    /// address. Called inside `block_in_place` on the runtime (`BrokerServer::start`).
    pub(crate) fn open(
        config: BrokerConfig,
        bound: &[(String, SocketAddr)],
        metadata: Arc<Quorum>,
    ) -> Result<Arc<Broker>, StartError> {
        let cluster_id = crate::meta_properties::read_or_create_cluster_id(&config)
            .map_err(StartError::MetaProperties)?;
        let endpoints = Endpoints::new(&config, bound);
        let inter_broker = inter_broker_security(&config)?;
        let advertised = endpoints.default_own();
        let incarnation = Uuid::new_v4();
        let metrics = Arc::new(strom_metrics::BrokerMetrics::default());
        let replicas = Arc::new(open_replicas(
            &config,
            &metadata.image(),
            &endpoints,
            &incarnation,
            &inter_broker,
            &metrics,
        )?);
        let leaders = Arc::new(LocalLeaders::new(
            replicas.clone(),
            metadata.clone(),
            config.node_id,
            endpoints.clone(),
            inter_broker.clone(),
        ));
        let producer_ids = Arc::new(ProducerIdManager::new(metadata.clone(), config.node_id));
        let coordinators = Coordinators::new(&config, &leaders, producer_ids.clone());
        let authorization = Arc::new(Authorization::new(&config));
        let quotas = Arc::new(QuotaManagers::new(&config));
        let publisher = Arc::new(MetadataPublisher::new(
            metadata.clone(),
            replicas.clone(),
            coordinators.clone(),
            authorization.clone(),
            quotas.clone(),
        ));
        let topic_admin = TopicAdmin::new(
            metadata.clone(),
            replicas.clone(),
            publisher.clone(),
            TopicDefaults {
                num_partitions: config.num_partitions,
                replication_factor: config.default_replication_factor,
            },
            config.node_id,
            crate::config::GroupConfigBounds::from_config(&config),
        );
        crate::replication::start_isr_expiration(
            Arc::downgrade(&replicas),
            metadata.clone(),
            config.replica_lag_time_max_ms,
        );
        publisher.publish(&metadata.image());
        let (coordinators_for_shares, leaders_for_shares) = (coordinators.clone(), leaders.clone());
        let broker = Arc::new(Broker {
            verification_connections: BrokerConnections::new(
                config.node_id,
                "txn-verification",
                inter_broker,
            ),
            config,
            metadata,
            incarnation,
            shutting_down: AtomicBool::new(false),
            replicas,
            leaders,
            cluster_id,
            advertised,
            endpoints,
            coordinators,
            producer_ids,
            publisher,
            topic_admin,
            listener_tls: ListenerTls::default(),
            authorization,
            quotas,
            share_partitions: SharePartitionManager::new(SharePersister::new(
                coordinators_for_shares,
                leaders_for_shares,
            )),
            metrics,
        });
        tokio::runtime::Handle::current().block_on(crate::internal_topics::start(
            &broker.config,
            &broker.topic_admin,
            &broker.coordinators,
        ));
        Ok(broker)
    }

    /// Applies a metadata image to this broker: local logs and replication roles, then the
    /// coordinators of internal topics whose leadership moved here or away.
    pub(crate) fn apply_image(&self, image: &Arc<MetadataImage>) {
        self.publisher.publish(image);
    }

    /// Ready to serve clients (the `/ready` probe): the logs are loaded (they are once a
    /// `Broker` exists), this process's registration is in the image and unfenced, and shutdown
    /// has not begun.
    pub fn is_ready(&self) -> bool {
        let image = self.metadata.image();
        let registered = image
            .brokers
            .get(&self.config.node_id)
            .is_some_and(|b| !b.fenced && b.registration.incarnation == self.incarnation);
        registered && !self.shutting_down()
    }

    /// True once shutdown has begun.
    pub(crate) fn shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    /// Marks the start of shutdown (heartbeats stop, controlled shutdown follows).
    pub(crate) fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
    }

    /// Clean shutdown of storage: flush, indexes, checkpoints, clean-shutdown markers. The
    /// quorum is shut down by the server after this.
    pub fn shutdown(&self) {
        self.replicas.stop_fetchers();
        self.coordinators.shutdown();
        if let Err(e) = self.replicas.log_manager().shutdown() {
            tracing::error!(error = %e, "log shutdown failed");
        }
    }
}

/// Opens the partition logs of the configured directories under a replica manager.
fn open_replicas(
    config: &BrokerConfig,
    image: &Arc<MetadataImage>,
    endpoints: &Endpoints,
    incarnation: &Uuid,
    inter_broker: &Arc<strom_client::Security>,
    metrics: &Arc<strom_metrics::BrokerMetrics>,
) -> Result<ReplicaManager, StartError> {
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
        flush_metrics: metrics.flush.clone(),
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
    Ok(ReplicaManager::new(
        logs,
        overrides,
        crate::replication::FetcherConfig {
            node_id: config.node_id,
            broker_epoch: crate::replication::broker_epoch(incarnation),
            security: inter_broker.clone(),
            max_wait_ms: config.replica_fetch_wait_max_ms,
            max_bytes_per_partition: config.replica_fetch_max_bytes,
            backoff: Duration::from_millis(config.replica_fetch_backoff_ms),
        },
        endpoints.clone(),
        metrics.clone(),
    ))
}

/// The TLS and SASL of this broker's connections to the others: the inter-broker listener's
/// protocol, its `ssl.*` keys and `sasl.mechanism.inter.broker.protocol` with that mechanism's
/// JAAS `username`/`password` (Kafka's keys); plaintext when there is no such listener.
fn inter_broker_security(config: &BrokerConfig) -> Result<Arc<strom_client::Security>, StartError> {
    if config.listeners.inter_broker_listener_name.is_none() {
        return Ok(Arc::new(strom_client::Security::plaintext()));
    }
    let invalid = |e: strom_security::ConfigError| {
        StartError::Config(crate::config::ConfigError::Invalid {
            name: e.key().to_string(),
            value: String::new(),
            reason: e.to_string(),
        })
    };
    let client =
        strom_security::ClientSecurity::for_inter_broker(&config.security, &config.listeners)
            .map_err(invalid)?;
    Ok(Arc::new(
        strom_client::Security::try_from(client).map_err(invalid)?,
    ))
}
