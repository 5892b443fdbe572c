//! The settings a share partition and a share group obey, named and defaulted as Kafka's
//! (`ShareGroupConfig`, `GroupCoordinatorConfig`, `GroupConfig`, `ShareCoordinatorConfig`).
//!
//! The broker resolves each value (a group's dynamic `share.*` config over the broker's
//! `group.share.*` default, clamped to Kafka's min/max) and hands the result in; this crate only
//! obeys it, so the resolution rules live in one place, next to the other configs.

/// `group.share.delivery.count.limit`: deliveries before a record is archived.
pub const DELIVERY_COUNT_LIMIT_DEFAULT: i16 = 5;
/// `group.share.partition.max.record.locks`: records in flight per share partition.
pub const PARTITION_MAX_RECORD_LOCKS_DEFAULT: u32 = 2000;
/// `group.share.record.lock.duration.ms`: how long an acquisition lock lasts.
pub const RECORD_LOCK_DURATION_MS_DEFAULT: u64 = 30_000;
/// `group.share.session.timeout.ms`.
pub const SESSION_TIMEOUT_MS_DEFAULT: u64 = 45_000;
/// `group.share.heartbeat.interval.ms`.
pub const HEARTBEAT_INTERVAL_MS_DEFAULT: u64 = 5_000;
/// `group.share.max.size`.
pub const MAX_SIZE_DEFAULT: usize = 200;
/// `share.coordinator.snapshot.update.records.per.snapshot`.
pub const UPDATE_RECORDS_PER_SNAPSHOT_DEFAULT: u32 = 500;

/// What one share partition obeys. Changeable at any time (`SharePartition::set_config`), as
/// Kafka's group configs are dynamic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharePartitionConfig {
    /// `share.delivery.count.limit` / `group.share.delivery.count.limit` (default 5): a record
    /// released, or whose lock expires, after this many deliveries is archived instead.
    pub delivery_count_limit: i16,
    /// `share.partition.max.record.locks` / `group.share.partition.max.record.locks` (default
    /// 2000): no new records are acquired while SPEO − SPSO reaches this.
    pub max_in_flight_records: u32,
    /// `share.record.lock.duration.ms` / `group.share.record.lock.duration.ms` (default 30 s).
    pub record_lock_duration_ms: u64,
    /// `share.renew.acknowledge.enable` (default true): whether RENEW (KIP-1222) is accepted.
    pub renew_acknowledge_enable: bool,
}

impl Default for SharePartitionConfig {
    fn default() -> Self {
        SharePartitionConfig {
            delivery_count_limit: DELIVERY_COUNT_LIMIT_DEFAULT,
            max_in_flight_records: PARTITION_MAX_RECORD_LOCKS_DEFAULT,
            record_lock_duration_ms: RECORD_LOCK_DURATION_MS_DEFAULT,
            renew_acknowledge_enable: true,
        }
    }
}

/// `share.auto.offset.reset`: where a share partition with no durable state starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AutoOffsetReset {
    /// `earliest`: the log start offset.
    Earliest,
    /// `latest` (Kafka's default): the log end offset, so only records produced from now on.
    #[default]
    Latest,
}

impl AutoOffsetReset {
    /// Parses Kafka's value (`earliest`, `latest`; case-insensitive as Kafka's validator).
    /// Kafka's `by_duration:<ISO-8601>` needs a timestamp lookup: the broker resolves it to an
    /// offset and starts the partition there with `SharePartition::new`.
    pub fn parse(value: &str) -> Option<AutoOffsetReset> {
        if value.eq_ignore_ascii_case("earliest") {
            Some(AutoOffsetReset::Earliest)
        } else if value.eq_ignore_ascii_case("latest") {
            Some(AutoOffsetReset::Latest)
        } else {
            None
        }
    }

    /// The start offset this strategy picks, given the log's start and end offsets.
    pub fn start_offset(self, log_start_offset: i64, log_end_offset: i64) -> i64 {
        match self {
            AutoOffsetReset::Earliest => log_start_offset,
            AutoOffsetReset::Latest => log_end_offset,
        }
    }
}

/// What one share group obeys (the coordinator side).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShareGroupConfig {
    /// `group.share.session.timeout.ms` (default 45 s): a member not heard from for this long is
    /// removed.
    pub session_timeout_ms: u64,
    /// `group.share.heartbeat.interval.ms` (default 5 s): sent back in every heartbeat response.
    pub heartbeat_interval_ms: u64,
    /// `group.share.max.size` (default 200).
    pub max_size: usize,
}

impl Default for ShareGroupConfig {
    fn default() -> Self {
        ShareGroupConfig {
            session_timeout_ms: SESSION_TIMEOUT_MS_DEFAULT,
            heartbeat_interval_ms: HEARTBEAT_INTERVAL_MS_DEFAULT,
            max_size: MAX_SIZE_DEFAULT,
        }
    }
}
