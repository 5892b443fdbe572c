//! The broker's side of KIP-848 consumer groups: the coordinator's settings from the config
//! table (`group.consumer.*`), and [`ImageTopics`], the [`TopicMetadata`] view the coordinator
//! assigns from — a snapshot of the metadata image taken per heartbeat, so a new topic or more
//! partitions are seen on the members' next heartbeat.

use std::sync::Arc;

use strom_coordinator::{ConsumerGroupConfig, TopicInfo, TopicMetadata};

use crate::config::{BrokerConfig, BROKER_CONFIGS};
use crate::metadata::MetadataImage;

/// A metadata image as the coordinator's topic view.
#[derive(Debug)]
pub(crate) struct ImageTopics(pub(crate) Arc<MetadataImage>);

impl TopicMetadata for ImageTopics {
    fn topic(&self, name: &str) -> Option<TopicInfo> {
        self.0.topic(name).map(|t| TopicInfo {
            name: t.name.clone(),
            id: t.id,
            partitions: i32::try_from(t.partitions.len()).unwrap_or(i32::MAX),
        })
    }

    fn topic_names(&self) -> Vec<String> {
        self.0
            .topics()
            .filter(|t| !t.name.starts_with("__"))
            .map(|t| t.name.clone())
            .collect()
    }
}

/// `group.consumer.*` settings.
pub(crate) fn consumer_group_config(config: &BrokerConfig) -> ConsumerGroupConfig {
    let get = |k: &str| -> Option<String> {
        config.explicit.get(k).cloned().or_else(|| {
            BROKER_CONFIGS
                .iter()
                .find(|d| d.name == k)
                .and_then(|d| d.default)
                .map(str::to_string)
        })
    };
    let int = |k: &str, default: i32| -> i32 {
        get(k)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(default)
    };
    let defaults = ConsumerGroupConfig::default();
    let assignors: Vec<String> = get("group.consumer.assignors")
        .map(|v| {
            v.split(',')
                .map(|a| a.trim().to_ascii_lowercase())
                .filter(|a| strom_coordinator::ASSIGNORS.contains(&a.as_str()))
                .collect()
        })
        .unwrap_or_default();
    ConsumerGroupConfig {
        heartbeat_interval_ms: int(
            "group.consumer.heartbeat.interval.ms",
            defaults.heartbeat_interval_ms,
        ),
        session_timeout_ms: int(
            "group.consumer.session.timeout.ms",
            defaults.session_timeout_ms,
        ),
        assignors: if assignors.is_empty() {
            defaults.assignors
        } else {
            assignors
        },
        timer_tick: defaults.timer_tick,
    }
}
