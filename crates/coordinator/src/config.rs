//! `GroupCoordinatorConfig`: the coordinator's settings, built by the broker from its typed config
//! table (Kafka's key names are given on each field).

use std::time::Duration;

/// Settings of the group coordinator.
#[derive(Debug, Clone)]
pub struct GroupCoordinatorConfig {
    /// `offsets.topic.num.partitions` (Kafka default 50).
    pub offsets_topic_partitions: i32,
    /// `offsets.retention.minutes`, in milliseconds (Kafka default 7 days).
    pub offsets_retention: Duration,
    /// `offsets.retention.check.interval.ms` (Kafka default 10 minutes).
    pub offsets_retention_check_interval: Duration,
    /// `group.initial.rebalance.delay.ms` (Kafka default 3 s).
    pub initial_rebalance_delay: Duration,
    /// `group.min.session.timeout.ms` (Kafka default 6 s).
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms` (Kafka default 30 min).
    pub max_session_timeout_ms: i32,
    /// `offset.metadata.max.bytes` (Kafka default 4096).
    pub offset_metadata_max_bytes: usize,
    /// `group.max.size`: members of one classic group, pending (KIP-394) ones counted, so a
    /// flood of JoinGroups cannot grow a group (and its timers) without bound.
    pub max_size: usize,
}

impl Default for GroupCoordinatorConfig {
    fn default() -> Self {
        GroupCoordinatorConfig {
            offsets_topic_partitions: 50,
            offsets_retention: Duration::from_secs(7 * 24 * 3600),
            offsets_retention_check_interval: Duration::from_secs(600),
            initial_rebalance_delay: Duration::from_millis(3000),
            min_session_timeout_ms: 6000,
            max_session_timeout_ms: 1_800_000,
            offset_metadata_max_bytes: 4096,
            max_size: usize::MAX,
        }
    }
}
