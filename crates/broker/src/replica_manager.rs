//! `ReplicaManager`: the partitions this broker hosts and their logs. It keeps the set of local
//! logs in step with the metadata image (create on new partitions, delete on removed topics) and
//! builds each topic's `LogConfig` from broker defaults plus topic overrides.
//!
//! Broker-level settings that shape topic configs come from the static config, overlaid by the
//! dynamic cluster-wide defaults and then this broker's dynamic configs from the metadata image
//! (Kafka's precedence); each `sync` recomputes them, so an altered config applies live.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use parking_lot::RwLock;

use strom_log::{LogConfig, LogError, LogManager, PartitionLog, TopicPartition};

use crate::metadata::{MetadataImage, TopicImage};

/// This broker's partitions.
#[derive(Debug)]
pub struct ReplicaManager {
    logs: Arc<LogManager>,
    /// The static config's explicit keys.
    static_overrides: BTreeMap<String, String>,
    /// Static, overlaid by dynamic broker configs from the last synced image.
    broker_overrides: RwLock<BTreeMap<String, String>>,
    node_id: i32,
}

impl ReplicaManager {
    pub(crate) fn new(
        logs: Arc<LogManager>,
        broker_overrides: BTreeMap<String, String>,
        node_id: i32,
    ) -> Self {
        ReplicaManager {
            logs,
            static_overrides: broker_overrides.clone(),
            broker_overrides: RwLock::new(broker_overrides),
            node_id,
        }
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

    /// Brings local logs in line with `image`: creates missing ones, applies config changes,
    /// deletes logs of partitions that no longer exist.
    pub fn sync(&self, image: &MetadataImage) -> Result<(), LogError> {
        let merged = self.effective_broker_overrides(image);
        if LogConfig::build(&merged, &BTreeMap::new()).is_ok() {
            *self.broker_overrides.write() = merged;
        }
        let mut wanted = HashSet::new();
        for topic in image.topics() {
            let config = Arc::new(self.topic_config(topic));
            for (p, part) in &topic.partitions {
                if !part.replicas.contains(&self.node_id) {
                    continue;
                }
                let tp = TopicPartition::new(topic.name.clone(), *p);
                match self.logs.get(&tp) {
                    Some(log) => {
                        if *log.config() != *config {
                            log.set_config(config.clone());
                        }
                    }
                    None => {
                        self.logs.get_or_create(&tp, config.clone())?;
                    }
                }
                wanted.insert(tp);
            }
        }
        for log in self.logs.all_logs() {
            let tp = log.topic_partition().clone();
            if !wanted.contains(&tp) {
                tracing::info!(partition = %tp, "deleting log of removed partition");
                self.logs.delete(&tp)?;
            }
        }
        Ok(())
    }

    /// A topic's effective config (an invalid stored override falls back to defaults, logged).
    pub fn topic_config(&self, topic: &TopicImage) -> LogConfig {
        self.log_config(&topic.configs).unwrap_or_else(|e| {
            tracing::warn!(topic = %topic.name, error = %e, "stored topic config invalid; using defaults");
            LogConfig::build(&self.broker_overrides.read(), &BTreeMap::new()).unwrap_or_default()
        })
    }
}
