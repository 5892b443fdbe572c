//! `ReplicaManager`: the partitions this broker hosts, their logs and replication roles. It keeps
//! them in step with the metadata image (create on new partitions, delete on removed topics,
//! become leader or follower as the image says, starting and stopping replica fetchers) and builds
//! each topic's `LogConfig` from broker defaults plus topic overrides.
//!
//! Broker-level settings that shape topic configs come from the static config, overlaid by the
//! dynamic cluster-wide defaults and then this broker's dynamic configs from the metadata image
//! (Kafka's precedence); each `sync` recomputes them, so an altered config applies live.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use strom_log::{now_ms, LogConfig, LogError, LogManager, PartitionLog, TopicPartition};

use crate::endpoints::Endpoints;
use crate::metadata::{MetadataImage, TopicImage};
use crate::replication::{
    BrokerAddress, FetcherConfig, Partition, ReplicaFetcherManager, Transition,
};

/// A partition whose leadership moved on this broker (the coordinators follow the leadership
/// of their internal topics' partitions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LeadershipChange {
    pub(crate) tp: TopicPartition,
    pub(crate) leader_epoch: i32,
    pub(crate) is_leader: bool,
}

/// This broker's partitions.
#[derive(Debug)]
pub struct ReplicaManager {
    logs: Arc<LogManager>,
    /// The static config's explicit keys.
    static_overrides: BTreeMap<String, String>,
    /// Static, overlaid by dynamic broker configs from the last synced image.
    broker_overrides: RwLock<BTreeMap<String, String>>,
    node_id: i32,
    partitions: RwLock<HashMap<TopicPartition, Arc<Partition>>>,
    fetchers: ReplicaFetcherManager,
    /// The last image synced (fetchers look up leader addresses in it).
    image: Arc<RwLock<Arc<MetadataImage>>>,
    /// One sync at a time: role changes must apply in image order.
    syncing: Mutex<()>,
    /// The process's metric cells; each new `Partition` takes its topic's counters from it.
    metrics: Arc<strom_metrics::BrokerMetrics>,
}

impl ReplicaManager {
    pub(crate) fn new(
        logs: Arc<LogManager>,
        broker_overrides: BTreeMap<String, String>,
        fetcher: FetcherConfig,
        endpoints: Endpoints,
        metrics: Arc<strom_metrics::BrokerMetrics>,
    ) -> Self {
        let image: Arc<RwLock<Arc<MetadataImage>>> = Arc::default();
        let node_id = fetcher.node_id;
        let img = image.clone();
        // Followers fetch from their leaders on the inter-broker listener.
        let address: BrokerAddress = Arc::new(move |id| {
            let image = img.read().clone();
            match image.brokers.get(&id) {
                Some(b) => Some(endpoints.inter_broker_addr(b)),
                // Ourselves before registration (one node).
                None if id == node_id => {
                    let (host, port) = endpoints.own_on(endpoints.inter_broker_listener());
                    Some(format!("{host}:{port}"))
                }
                None => None,
            }
        });
        ReplicaManager {
            logs,
            static_overrides: broker_overrides.clone(),
            broker_overrides: RwLock::new(broker_overrides),
            node_id,
            partitions: RwLock::new(HashMap::new()),
            fetchers: ReplicaFetcherManager::new(fetcher, address),
            image,
            syncing: Mutex::new(()),
            metrics,
        }
    }

    /// This broker's id.
    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    /// A hosted partition with its role.
    pub(crate) fn partition(&self, tp: &TopicPartition) -> Option<Arc<Partition>> {
        self.partitions.read().get(tp).cloned()
    }

    /// Every hosted partition.
    pub(crate) fn all_partitions(&self) -> Vec<Arc<Partition>> {
        self.partitions.read().values().cloned().collect()
    }

    /// Stops replica fetchers (shutdown).
    pub(crate) fn stop_fetchers(&self) {
        self.fetchers.shutdown();
    }

    /// The storage layer.
    pub fn log_manager(&self) -> &Arc<LogManager> {
        &self.logs
    }

    /// The log config of a topic with these overrides.
    pub fn log_config(
        &self,
        topic_overrides: &BTreeMap<String, String>,
    ) -> Result<LogConfig, LogError> {
        LogConfig::build(&self.broker_overrides.read(), topic_overrides)
    }

    /// Broker-level settings that shape topic configs (static overlaid by dynamic).
    pub fn broker_overrides(&self) -> BTreeMap<String, String> {
        self.broker_overrides.read().clone()
    }

    /// The broker-level settings `image` implies for this node: static config, then dynamic
    /// cluster defaults (`""`), then dynamic configs of this broker id.
    pub fn effective_broker_overrides(&self, image: &MetadataImage) -> BTreeMap<String, String> {
        let mut merged = self.static_overrides.clone();
        for name in [String::new(), self.node_id.to_string()] {
            if let Some(dynamic) = image.broker_configs.get(&name) {
                merged.extend(dynamic.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
        merged
    }

    /// The log of a partition hosted here.
    pub fn log(&self, tp: &TopicPartition) -> Option<Arc<PartitionLog>> {
        self.logs.get(tp)
    }

    /// Brings local logs and roles in line with `image`: creates missing logs, applies config
    /// changes, becomes leader or follower as the image says, and — only when the image is
    /// `confirmed` current (the quorum caught up with its leader) — deletes logs of partitions
    /// that are no longer hosted here. Returns the leadership changes.
    pub(crate) fn sync(
        &self,
        image: &Arc<MetadataImage>,
        confirmed: bool,
    ) -> Result<Vec<LeadershipChange>, LogError> {
        let _one = self.syncing.lock();
        *self.image.write() = image.clone();
        let merged = self.effective_broker_overrides(image);
        if LogConfig::build(&merged, &BTreeMap::new()).is_ok() {
            *self.broker_overrides.write() = merged;
        }
        let mut wanted = HashSet::new();
        let mut changes = Vec::new();
        let now = now_ms();
        for topic in image.topics() {
            let config = Arc::new(self.topic_config(topic));
            for (p, part) in &topic.partitions {
                if !part.replicas.contains(&self.node_id) {
                    continue;
                }
                let tp = TopicPartition::new(topic.name.clone(), *p);
                let log = match self.logs.get(&tp) {
                    Some(log) => {
                        if *log.config() != *config {
                            log.set_config(config.clone());
                        }
                        log
                    }
                    None => self.logs.get_or_create(&tp, config.clone())?,
                };
                let partition = self
                    .partitions
                    .write()
                    .entry(tp.clone())
                    .or_insert_with(|| {
                        Arc::new(Partition::new(
                            tp.clone(),
                            topic.id,
                            log,
                            self.node_id,
                            self.metrics.clone(),
                        ))
                    })
                    .clone();
                let was_leader = partition.is_leader();
                match partition.apply(part, now) {
                    Transition::Unchanged | Transition::LeaderUpdated => {}
                    Transition::BecameLeader(epoch) => {
                        tracing::debug!(partition = %tp, leader_epoch = epoch, "became leader");
                        self.fetchers.remove(&tp);
                        changes.push(LeadershipChange {
                            tp: tp.clone(),
                            leader_epoch: epoch,
                            is_leader: true,
                        });
                    }
                    Transition::BecameFollower {
                        leader,
                        leader_epoch,
                    } => {
                        tracing::debug!(partition = %tp, leader, leader_epoch, "became follower");
                        if leader >= 0 {
                            self.fetchers.add(
                                tp.clone(),
                                topic.id,
                                partition.log.clone(),
                                leader,
                                leader_epoch,
                            );
                        } else {
                            self.fetchers.remove(&tp);
                        }
                        if was_leader {
                            changes.push(LeadershipChange {
                                tp: tp.clone(),
                                leader_epoch,
                                is_leader: false,
                            });
                        }
                    }
                }
                wanted.insert(tp);
            }
        }
        let unwanted: Vec<TopicPartition> = self
            .logs
            .all_logs()
            .iter()
            .map(|l| l.topic_partition().clone())
            .filter(|tp| !wanted.contains(tp))
            .collect();
        if !confirmed {
            // The image may be older than the logs (a node that restarted while the quorum
            // moved on, or before it caught up): what it lacks may be data it never heard of.
            if !unwanted.is_empty() {
                tracing::info!(
                    logs = unwanted.len(),
                    "keeping local logs the metadata image does not name until the image is confirmed current"
                );
            }
            return Ok(changes);
        }
        for tp in unwanted {
            tracing::info!(partition = %tp, "deleting log of removed partition");
            self.fetchers.remove(&tp);
            if let Some(p) = self.partitions.write().remove(&tp) {
                if p.is_leader() {
                    changes.push(LeadershipChange {
                        tp: tp.clone(),
                        leader_epoch: -1,
                        is_leader: false,
                    });
                }
            }
            self.logs.delete(&tp)?;
        }
        Ok(changes)
    }

    /// A topic's effective config (an invalid stored override falls back to defaults, logged).
    pub fn topic_config(&self, topic: &TopicImage) -> LogConfig {
        self.log_config(&topic.configs).unwrap_or_else(|e| {
            tracing::warn!(topic = %topic.name, error = %e, "stored topic config invalid; using defaults");
            LogConfig::build(&self.broker_overrides.read(), &BTreeMap::new()).unwrap_or_default()
        })
    }
}
