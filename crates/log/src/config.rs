//! `LogConfig`: the topic-level configs that shape a partition log, from one typed table.
//!
//! [`TOPIC_CONFIGS`] holds one definition per Kafka topic config (name, type, default, broker
//! synonym, doc). `LogConfig` is built from it; DescribeConfigs and validation read the same table,
//! so there is one way to know a key. Strom differs from Kafka in one default, on purpose:
//! `flush.messages` defaults to 1 (every acknowledged write is fdatasync'd, with group commit)
//! where Kafka defaults to "never" and relies on replication. Raise it to relax durability.

use std::collections::BTreeMap;

use crate::error::{LogError, Result};

/// The value type of a config, with its validation rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ConfigType {
    /// A 64-bit integer at least `min`.
    Long {
        /// Smallest valid value.
        min: i64,
    },
    /// A 32-bit integer at least `min`.
    Int {
        /// Smallest valid value.
        min: i32,
    },
    /// A floating-point number in `[min, max]`.
    Double {
        /// Smallest valid value.
        min: f64,
        /// Largest valid value.
        max: f64,
    },
    /// `true` or `false`.
    Boolean,
    /// One of a fixed set of strings.
    Enum(&'static [&'static str]),
    /// A comma-separated list whose items come from a fixed set.
    List(&'static [&'static str]),
    /// Any string.
    String,
}

impl ConfigType {
    /// Kafka's DescribeConfigs type code (KIP-569): BOOLEAN=1, STRING=2, INT=3, LONG=5, DOUBLE=6, LIST=7.
    pub fn kafka_type_code(&self) -> i8 {
        match self {
            ConfigType::Boolean => 1,
            ConfigType::Enum(_) | ConfigType::String => 2,
            ConfigType::Int { .. } => 3,
            ConfigType::Long { .. } => 5,
            ConfigType::Double { .. } => 6,
            ConfigType::List(_) => 7,
        }
    }

    /// Checks `value`, returning why it is invalid.
    pub fn validate(&self, value: &str) -> std::result::Result<(), String> {
        let v = value.trim();
        match *self {
            ConfigType::Long { min } => match v.parse::<i64>() {
                Ok(n) if n >= min => Ok(()),
                Ok(_) => Err(format!("must be at least {min}")),
                Err(_) => Err("not a valid long".into()),
            },
            ConfigType::Int { min } => match v.parse::<i32>() {
                Ok(n) if n >= min => Ok(()),
                Ok(_) => Err(format!("must be at least {min}")),
                Err(_) => Err("not a valid int".into()),
            },
            ConfigType::Double { min, max } => match v.parse::<f64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(()),
                Ok(_) => Err(format!("must be in [{min}, {max}]")),
                Err(_) => Err("not a valid double".into()),
            },
            ConfigType::Boolean => match v.to_ascii_lowercase().as_str() {
                "true" | "false" => Ok(()),
                _ => Err("must be true or false".into()),
            },
            ConfigType::Enum(options) => {
                if options.iter().any(|o| o.eq_ignore_ascii_case(v)) {
                    Ok(())
                } else {
                    Err(format!("must be one of {options:?}"))
                }
            }
            ConfigType::String => Ok(()),
            ConfigType::List(options) => {
                for item in v.split(',').map(str::trim) {
                    if !options.iter().any(|o| o.eq_ignore_ascii_case(item)) {
                        return Err(format!("items must be among {options:?}"));
                    }
                }
                Ok(())
            }
        }
    }
}

/// One topic-level config key.
#[derive(Debug, Clone, Copy)]
pub struct ConfigDef {
    /// The Kafka topic config name.
    pub name: &'static str,
    /// Type and validation.
    pub kind: ConfigType,
    /// Default when neither the topic nor the broker sets it.
    pub default: &'static str,
    /// The broker-level config that sets the default for all topics (Kafka's synonym).
    pub broker_synonym: Option<&'static str>,
    /// One line of documentation.
    pub doc: &'static str,
}

const MAX: &str = "9223372036854775807";

/// Every topic config Strom knows, in Kafka's names, with Kafka's defaults (but `flush.messages`).
pub const TOPIC_CONFIGS: &[ConfigDef] = &[
    ConfigDef { name: "cleanup.policy", kind: ConfigType::List(&["delete", "compact"]), default: "delete", broker_synonym: Some("log.cleanup.policy"), doc: "delete old segments, compact by key, or both" },
    ConfigDef { name: "compression.type", kind: ConfigType::Enum(&["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"]), default: "producer", broker_synonym: Some("compression.type"), doc: "final compression of the topic's data; producer keeps what the producer sent" },
    ConfigDef { name: "delete.retention.ms", kind: ConfigType::Long { min: 0 }, default: "86400000", broker_synonym: Some("log.cleaner.delete.retention.ms"), doc: "how long tombstones are kept on compacted topics" },
    ConfigDef { name: "file.delete.delay.ms", kind: ConfigType::Long { min: 0 }, default: "60000", broker_synonym: Some("log.segment.delete.delay.ms"), doc: "delay before a deleted segment file is removed" },
    ConfigDef { name: "flush.messages", kind: ConfigType::Long { min: 1 }, default: "1", broker_synonym: Some("log.flush.interval.messages"), doc: "fdatasync after this many messages; 1 (Strom's default) makes every acknowledged write durable" },
    ConfigDef { name: "flush.ms", kind: ConfigType::Long { min: 0 }, default: MAX, broker_synonym: Some("log.flush.interval.ms"), doc: "fdatasync when the oldest unflushed message is this old" },
    ConfigDef { name: "index.interval.bytes", kind: ConfigType::Int { min: 0 }, default: "4096", broker_synonym: Some("log.index.interval.bytes"), doc: "bytes between offset index entries" },
    ConfigDef { name: "max.compaction.lag.ms", kind: ConfigType::Long { min: 1 }, default: MAX, broker_synonym: Some("log.cleaner.max.compaction.lag.ms"), doc: "longest time a message stays uncompacted" },
    ConfigDef { name: "max.message.bytes", kind: ConfigType::Int { min: 0 }, default: "1048588", broker_synonym: Some("message.max.bytes"), doc: "largest record batch accepted" },
    ConfigDef { name: "message.timestamp.after.max.ms", kind: ConfigType::Long { min: 0 }, default: "3600000", broker_synonym: Some("log.message.timestamp.after.max.ms"), doc: "how far in the future a CreateTime timestamp may be" },
    ConfigDef { name: "message.timestamp.before.max.ms", kind: ConfigType::Long { min: 0 }, default: MAX, broker_synonym: Some("log.message.timestamp.before.max.ms"), doc: "how far in the past a CreateTime timestamp may be" },
    ConfigDef { name: "message.timestamp.type", kind: ConfigType::Enum(&["CreateTime", "LogAppendTime"]), default: "CreateTime", broker_synonym: Some("log.message.timestamp.type"), doc: "timestamps from the producer or from the broker's clock" },
    ConfigDef { name: "min.cleanable.dirty.ratio", kind: ConfigType::Double { min: 0.0, max: 1.0 }, default: "0.5", broker_synonym: Some("log.cleaner.min.cleanable.ratio"), doc: "dirty share of the log that triggers cleaning" },
    ConfigDef { name: "min.compaction.lag.ms", kind: ConfigType::Long { min: 0 }, default: "0", broker_synonym: Some("log.cleaner.min.compaction.lag.ms"), doc: "youngest message age the cleaner may compact" },
    ConfigDef { name: "min.insync.replicas", kind: ConfigType::Int { min: 1 }, default: "1", broker_synonym: Some("min.insync.replicas"), doc: "replicas that must acknowledge an acks=all write" },
    ConfigDef { name: "preallocate", kind: ConfigType::Boolean, default: "false", broker_synonym: Some("log.preallocate"), doc: "preallocate segment files" },
    ConfigDef { name: "retention.bytes", kind: ConfigType::Long { min: -1 }, default: "-1", broker_synonym: Some("log.retention.bytes"), doc: "largest size of a partition before old segments are deleted; -1 unlimited" },
    ConfigDef { name: "retention.ms", kind: ConfigType::Long { min: -1 }, default: "604800000", broker_synonym: Some("log.retention.ms"), doc: "age after which old segments are deleted; -1 forever" },
    ConfigDef { name: "segment.bytes", kind: ConfigType::Int { min: 14 }, default: "1073741824", broker_synonym: Some("log.segment.bytes"), doc: "size at which a new segment is rolled" },
    ConfigDef { name: "segment.index.bytes", kind: ConfigType::Int { min: 8 }, default: "10485760", broker_synonym: Some("log.index.size.max.bytes"), doc: "largest offset index; a full index rolls the segment" },
    ConfigDef { name: "segment.jitter.ms", kind: ConfigType::Long { min: 0 }, default: "0", broker_synonym: Some("log.roll.jitter.ms"), doc: "random jitter subtracted from segment.ms" },
    ConfigDef { name: "segment.ms", kind: ConfigType::Long { min: 1 }, default: "604800000", broker_synonym: Some("log.roll.ms"), doc: "age at which a new segment is rolled" },
    ConfigDef { name: "unclean.leader.election.enable", kind: ConfigType::Boolean, default: "false", broker_synonym: Some("unclean.leader.election.enable"), doc: "allow out-of-sync replicas to become leader" },
];

/// Looks up a topic config definition by name.
pub fn topic_config(name: &str) -> Option<&'static ConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}

/// Validates a set of topic config overrides; the first bad key wins.
pub fn validate_topic_configs(overrides: &BTreeMap<String, String>) -> Result<()> {
    for (name, value) in overrides {
        let def = topic_config(name).ok_or_else(|| LogError::InvalidConfig {
            name: name.clone(),
            value: value.clone(),
            reason: "unknown topic config".into(),
        })?;
        def.kind
            .validate(value)
            .map_err(|reason| LogError::InvalidConfig {
                name: name.clone(),
                value: value.clone(),
                reason,
            })?;
    }
    Ok(())
}

/// Timestamp source for appended batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    /// Keep the producer's timestamps.
    CreateTime,
    /// Stamp batches with the broker's clock at append.
    LogAppendTime,
}

/// The typed, validated topic config a `PartitionLog` runs with.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// `segment.bytes`.
    pub segment_bytes: u64,
    /// `segment.ms`.
    pub segment_ms: i64,
    /// `segment.index.bytes`.
    pub segment_index_bytes: u64,
    /// `index.interval.bytes`.
    pub index_interval_bytes: u64,
    /// `retention.ms` (-1 forever).
    pub retention_ms: i64,
    /// `retention.bytes` (-1 unlimited).
    pub retention_bytes: i64,
    /// `flush.messages`.
    pub flush_messages: i64,
    /// `flush.ms`.
    pub flush_ms: i64,
    /// `max.message.bytes`.
    pub max_message_bytes: i32,
    /// `message.timestamp.type`.
    pub message_timestamp_type: TimestampType,
    /// `cleanup.policy` contains `delete`.
    pub delete_enabled: bool,
    /// `cleanup.policy` contains `compact`.
    pub compact_enabled: bool,
    /// `min.insync.replicas`.
    pub min_insync_replicas: i32,
    /// Every value by name: defaults, then broker synonyms, then topic overrides.
    pub values: BTreeMap<String, String>,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig::build(&BTreeMap::new(), &BTreeMap::new())
            .unwrap_or_else(|_| unreachable!("the built-in defaults are valid"))
    }
}

impl LogConfig {
    /// Builds a config from broker-level settings (by broker name, e.g. `log.segment.bytes`) and
    /// topic overrides (by topic name, e.g. `segment.bytes`). Both are validated.
    pub fn build(
        broker: &BTreeMap<String, String>,
        topic: &BTreeMap<String, String>,
    ) -> Result<LogConfig> {
        validate_topic_configs(topic)?;
        let mut values = BTreeMap::new();
        for def in TOPIC_CONFIGS {
            let mut v = def.default.to_string();
            if let Some(b) = def.broker_synonym.and_then(|s| broker.get(s)) {
                def.kind
                    .validate(b)
                    .map_err(|reason| LogError::InvalidConfig {
                        name: def.broker_synonym.unwrap_or(def.name).to_string(),
                        value: b.clone(),
                        reason,
                    })?;
                v = b.clone();
            }
            if let Some(t) = topic.get(def.name) {
                v = t.clone();
            }
            values.insert(def.name.to_string(), v.trim().to_string());
        }
        // Kafka's hour/minute broker variants, lowest precedence below log.retention.ms.
        if !broker.contains_key("log.retention.ms") && !topic.contains_key("retention.ms") {
            if let Some(m) = broker
                .get("log.retention.minutes")
                .and_then(|v| v.parse::<i64>().ok())
            {
                values.insert("retention.ms".into(), (m * 60_000).to_string());
            } else if let Some(h) = broker
                .get("log.retention.hours")
                .and_then(|v| v.parse::<i64>().ok())
            {
                values.insert("retention.ms".into(), (h * 3_600_000).to_string());
            }
        }
        if !broker.contains_key("log.roll.ms") && !topic.contains_key("segment.ms") {
            if let Some(h) = broker
                .get("log.roll.hours")
                .and_then(|v| v.parse::<i64>().ok())
            {
                values.insert("segment.ms".into(), (h * 3_600_000).to_string());
            }
        }
        let long = |k: &str| {
            values
                .get(k)
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(0)
        };
        let policy = values.get("cleanup.policy").cloned().unwrap_or_default();
        Ok(LogConfig {
            segment_bytes: long("segment.bytes").max(14) as u64,
            segment_ms: long("segment.ms"),
            segment_index_bytes: long("segment.index.bytes").max(8) as u64,
            index_interval_bytes: long("index.interval.bytes").max(0) as u64,
            retention_ms: long("retention.ms"),
            retention_bytes: long("retention.bytes"),
            flush_messages: long("flush.messages"),
            flush_ms: long("flush.ms"),
            max_message_bytes: long("max.message.bytes").clamp(0, i64::from(i32::MAX)) as i32,
            message_timestamp_type: if values
                .get("message.timestamp.type")
                .is_some_and(|v| v.eq_ignore_ascii_case("LogAppendTime"))
            {
                TimestampType::LogAppendTime
            } else {
                TimestampType::CreateTime
            },
            delete_enabled: policy.split(',').any(|p| p.trim() == "delete"),
            compact_enabled: policy.split(',').any(|p| p.trim() == "compact"),
            min_insync_replicas: long("min.insync.replicas").clamp(1, i64::from(i32::MAX)) as i32,
            values,
        })
    }

    /// True when acknowledgements wait for fdatasync (`flush.messages` = 1).
    pub fn sync_on_append(&self) -> bool {
        self.flush_messages <= 1
    }

    /// How many bytes one of this topic's compressed batches may inflate to when its records are
    /// read: [`crate::decompression_limit`] of `max.message.bytes`.
    pub fn max_decompressed_bytes(&self) -> usize {
        crate::records::decompression_limit(self.max_message_bytes)
    }

    fn long_value(&self, name: &str, default: i64) -> i64 {
        self.values
            .get(name)
            .and_then(|v| v.trim().parse::<i64>().ok())
            .unwrap_or(default)
    }
    /// `delete.retention.ms`: how long the cleaner keeps tombstones.
    pub fn delete_retention_ms(&self) -> i64 {
        self.long_value("delete.retention.ms", 86_400_000)
    }
    /// `min.compaction.lag.ms`: records younger than this are not compacted.
    pub fn min_compaction_lag_ms(&self) -> i64 {
        self.long_value("min.compaction.lag.ms", 0)
    }
    /// `max.compaction.lag.ms`: a dirty record older than this makes the log cleanable
    /// whatever its dirty ratio.
    pub fn max_compaction_lag_ms(&self) -> i64 {
        self.long_value("max.compaction.lag.ms", i64::MAX)
    }
    /// `min.cleanable.dirty.ratio`.
    pub fn min_cleanable_dirty_ratio(&self) -> f64 {
        self.values
            .get("min.cleanable.dirty.ratio")
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.5)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_precedence() {
        let d = LogConfig::default();
        assert_eq!(d.segment_bytes, 1 << 30);
        assert_eq!(d.retention_ms, 604_800_000);
        assert!(d.sync_on_append());
        let broker = BTreeMap::from([("log.segment.bytes".to_string(), "1000".to_string())]);
        let topic = BTreeMap::from([("retention.ms".to_string(), "-1".to_string())]);
        let c = LogConfig::build(&broker, &topic).expect("valid");
        assert_eq!(c.segment_bytes, 1000);
        assert_eq!(c.retention_ms, -1);
    }

    #[test]
    fn invalid_values_name_the_key() {
        let topic = BTreeMap::from([("segment.bytes".to_string(), "abc".to_string())]);
        match LogConfig::build(&BTreeMap::new(), &topic) {
            Err(LogError::InvalidConfig { name, .. }) => assert_eq!(name, "segment.bytes"),
            other => panic!("{other:?}"),
        }
        let topic = BTreeMap::from([("no.such".to_string(), "1".to_string())]);
        assert!(LogConfig::build(&BTreeMap::new(), &topic).is_err());
        let topic = BTreeMap::from([("cleanup.policy".to_string(), "compact,delete".to_string())]);
        let c = LogConfig::build(&BTreeMap::new(), &topic).expect("valid");
        assert!(c.compact_enabled && c.delete_enabled);
    }

    #[test]
    fn retention_hours_synonym() {
        let broker = BTreeMap::from([("log.retention.hours".to_string(), "1".to_string())]);
        let c = LogConfig::build(&broker, &BTreeMap::new()).expect("valid");
        assert_eq!(c.retention_ms, 3_600_000);
    }
}
