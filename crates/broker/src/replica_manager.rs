//! `ReplicaManager`: the partitions this broker hosts and their logs. It keeps the set of local
//! logs in step with the metadata image (create on new partitions, delete on removed topics) and
//! builds each topic's `LogConfig` from broker defaults plus topic overrides.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use strom_log::{LogConfig, LogError, LogManager, PartitionLog, TopicPartition};

use crate::metadata::{MetadataImage, TopicImage};

/// This broker's partitions.
#[derive(Debug)]
pub struct ReplicaManager {
    logs: Arc<LogManager>,
    broker_overrides: BTreeMap<String, String>,
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
            broker_overrides,
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
        LogConfig::build(&self.broker_overrides, topic_overrides)
    }

    /// Broker-level settings that shape topic configs.
    pub fn broker_overrides(&self) -> &BTreeMap<String, String> {
        &self.broker_overrides
    }

    /// The log of a partition hosted here.
    pub fn log(&self, tp: &TopicPartition) -> Option<Arc<PartitionLog>> {
        self.logs.get(tp)
    }

    /// Brings local logs in line with `image`: creates missing ones, applies config changes,
    /// deletes logs of partitions that no longer exist.
    pub fn sync(&self, image: &MetadataImage) -> Result<(), LogError> {
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
            LogConfig::build(&self.broker_overrides, &BTreeMap::new()).unwrap_or_default()
        })
    }
}
