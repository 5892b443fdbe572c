//! The coordinators' settings, read from the broker's config ([`BrokerConfig::value`]: explicit
//! keys, else the config table's defaults): the classic group coordinator
//! (`offsets.*`, `group.*`), KIP-848 consumer groups (`group.consumer.*`) and the transaction
//! coordinator (`transaction.*`).

use std::time::Duration;

use strom_coordinator::txn::TransactionCoordinatorConfig;
use strom_coordinator::{ConsumerGroupConfig, GroupCoordinatorConfig};

use crate::config::BrokerConfig;

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// `offsets.*` and `group.*` (classic groups and committed offsets).
pub(crate) fn group_coordinator(config: &BrokerConfig) -> GroupCoordinatorConfig {
    let int = |k: &str, default: i32| config.parsed::<i32>(k).unwrap_or(default);
    let long = |k: &str| config.parsed::<u64>(k).unwrap_or(0);
    GroupCoordinatorConfig {
        offsets_topic_partitions: int("offsets.topic.num.partitions", 50).max(1),
        offsets_retention: ms(long("offsets.retention.minutes").saturating_mul(60_000)),
        offsets_retention_check_interval: ms(long("offsets.retention.check.interval.ms").max(1)),
        initial_rebalance_delay: ms(long("group.initial.rebalance.delay.ms")),
        min_session_timeout_ms: int("group.min.session.timeout.ms", 6000),
        max_session_timeout_ms: int("group.max.session.timeout.ms", 1_800_000),
        offset_metadata_max_bytes: config
            .parsed::<usize>("offset.metadata.max.bytes")
            .unwrap_or(4096),
        max_size: config
            .parsed::<usize>("group.max.size")
            .unwrap_or(usize::MAX),
    }
}

/// `group.consumer.*` (KIP-848 consumer groups).
pub(crate) fn consumer_groups(config: &BrokerConfig) -> ConsumerGroupConfig {
    let d = ConsumerGroupConfig::default();
    let assignors: Vec<String> = config
        .value("group.consumer.assignors")
        .map(|v| {
            v.split(',')
                .map(|a| a.trim().to_ascii_lowercase())
                .filter(|a| strom_coordinator::ASSIGNORS.contains(&a.as_str()))
                .collect()
        })
        .unwrap_or_default();
    ConsumerGroupConfig {
        heartbeat_interval_ms: config
            .parsed("group.consumer.heartbeat.interval.ms")
            .unwrap_or(d.heartbeat_interval_ms),
        session_timeout_ms: config
            .parsed("group.consumer.session.timeout.ms")
            .unwrap_or(d.session_timeout_ms),
        assignors: if assignors.is_empty() {
            d.assignors
        } else {
            assignors
        },
        timer_tick: d.timer_tick,
        max_size: config
            .parsed::<usize>("group.consumer.max.size")
            .unwrap_or(d.max_size),
    }
}

/// `transaction.*` (the transaction coordinator).
pub(crate) fn transactions(config: &BrokerConfig) -> TransactionCoordinatorConfig {
    let d = TransactionCoordinatorConfig::default();
    TransactionCoordinatorConfig {
        partitions: config
            .parsed::<i32>("transaction.state.log.num.partitions")
            .unwrap_or(d.partitions)
            .max(1),
        max_timeout_ms: config
            .parsed("transaction.max.timeout.ms")
            .unwrap_or(d.max_timeout_ms),
        abort_check_interval: config
            .parsed::<u64>("transaction.abort.timed.out.transaction.cleanup.interval.ms")
            .map_or(d.abort_check_interval, |v| ms(v.max(1))),
        transactional_id_expiration_ms: config
            .parsed::<i64>("transactional.id.expiration.ms")
            .unwrap_or(d.transactional_id_expiration_ms)
            .max(1),
    }
}

/// `group.share.*` (KIP-932 share groups).
pub(crate) fn share_groups(config: &BrokerConfig) -> strom_share::ShareGroupConfig {
    let d = strom_share::ShareGroupConfig::default();
    strom_share::ShareGroupConfig {
        session_timeout_ms: config
            .parsed("group.share.session.timeout.ms")
            .unwrap_or(d.session_timeout_ms),
        heartbeat_interval_ms: config
            .parsed("group.share.heartbeat.interval.ms")
            .unwrap_or(d.heartbeat_interval_ms),
        max_size: config.parsed("group.share.max.size").unwrap_or(d.max_size),
    }
}

/// `share.coordinator.state.topic.num.partitions`: partitions of `__share_group_state`.
pub(crate) fn share_state_partitions(config: &BrokerConfig) -> i32 {
    config
        .parsed::<i32>("share.coordinator.state.topic.num.partitions")
        .unwrap_or(50)
        .max(1)
}
