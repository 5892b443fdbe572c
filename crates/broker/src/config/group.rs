//! [`GROUP_CONFIGS`]: the dynamic configs of one group (Kafka's `GroupConfig`, KIP-848 and
//! KIP-932), set with IncrementalAlterConfigs on a GROUP resource and listed by DescribeConfigs.
//! Each has a broker key giving its default and two broker keys bounding it, as in Kafka (a group
//! may not ask for a session longer than the broker allows).

use std::collections::BTreeMap;

use strom_log::ConfigType;

use super::BrokerConfig;

/// A bound of a group config: the broker key that sets it, and Kafka's default for that key.
pub(crate) type Bound = (&'static str, i64);

/// One group config key.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GroupConfigDef {
    /// Kafka name.
    pub(crate) name: &'static str,
    /// Type.
    pub(crate) kind: ConfigType,
    /// The broker key of its default, or the default itself (`None` broker key).
    pub(crate) default_key: Option<&'static str>,
    /// The default when there is no broker key.
    pub(crate) default: &'static str,
    /// Broker keys of the inclusive bounds (numbers only), with their defaults.
    pub(crate) bounds: Option<(Bound, Bound)>,
    /// Allowed values (strings only).
    pub(crate) values: &'static [&'static str],
    /// One line of documentation.
    pub(crate) doc: &'static str,
}

const INT: ConfigType = ConfigType::Int { min: 1 };

/// Every group config Strom accepts.
pub(crate) const GROUP_CONFIGS: &[GroupConfigDef] = &[
    GroupConfigDef {
        name: "consumer.session.timeout.ms",
        kind: INT,
        default_key: Some("group.consumer.session.timeout.ms"),
        default: "45000",
        bounds: Some((
            ("group.consumer.min.session.timeout.ms", 45_000),
            ("group.consumer.max.session.timeout.ms", 60_000),
        )),
        values: &[],
        doc: "a consumer group member (KIP-848) without a heartbeat this long is removed",
    },
    GroupConfigDef {
        name: "consumer.heartbeat.interval.ms",
        kind: INT,
        default_key: Some("group.consumer.heartbeat.interval.ms"),
        default: "5000",
        bounds: Some((
            ("group.consumer.min.heartbeat.interval.ms", 5_000),
            ("group.consumer.max.heartbeat.interval.ms", 15_000),
        )),
        values: &[],
        doc: "how often consumer group members (KIP-848) heartbeat",
    },
    GroupConfigDef {
        name: "share.session.timeout.ms",
        kind: INT,
        default_key: None,
        default: "45000",
        bounds: Some((
            ("group.share.min.session.timeout.ms", 45_000),
            ("group.share.max.session.timeout.ms", 60_000),
        )),
        values: &[],
        doc: "a share group member without a heartbeat this long is removed",
    },
    GroupConfigDef {
        name: "share.heartbeat.interval.ms",
        kind: INT,
        default_key: None,
        default: "5000",
        bounds: Some((
            ("group.share.min.heartbeat.interval.ms", 5_000),
            ("group.share.max.heartbeat.interval.ms", 15_000),
        )),
        values: &[],
        doc: "how often share group members heartbeat",
    },
    GroupConfigDef {
        name: "share.record.lock.duration.ms",
        kind: INT,
        default_key: None,
        default: "30000",
        bounds: Some((
            ("group.share.min.record.lock.duration.ms", 15_000),
            ("group.share.max.record.lock.duration.ms", 60_000),
        )),
        values: &[],
        doc: "how long a share group member holds an acquired record before it is offered again",
    },
    GroupConfigDef {
        name: "share.auto.offset.reset",
        kind: ConfigType::String,
        default_key: None,
        default: "latest",
        bounds: None,
        values: &["latest", "earliest"],
        doc: "where a share group starts reading a partition it has no state for",
    },
    GroupConfigDef {
        name: "share.isolation.level",
        kind: ConfigType::String,
        default_key: None,
        default: "read_uncommitted",
        bounds: None,
        values: &["read_uncommitted", "read_committed"],
        doc: "whether a share group sees records of open and aborted transactions",
    },
];

/// The definition of a group config key.
pub(crate) fn group_config(name: &str) -> Option<&'static GroupConfigDef> {
    GROUP_CONFIGS.iter().find(|d| d.name == name)
}

impl GroupConfigDef {
    /// The value a group without an override has on this broker.
    pub(crate) fn default_value(&self, config: &BrokerConfig) -> String {
        self.default_key
            .and_then(|k| config.value(k))
            .unwrap_or(self.default)
            .to_string()
    }

    /// Checks `value` for this key within the broker's `bounds` (Kafka's messages).
    pub(crate) fn validate(&self, value: &str, bounds: &GroupConfigBounds) -> Result<(), String> {
        self.kind.validate(value)?;
        if !self.values.is_empty() && !self.values.contains(&value.trim()) {
            return Err(format!("must be one of {:?}", self.values));
        }
        if let Some(((lo_key, lo), (hi_key, hi))) = self.bounds {
            let lo = bounds.get(lo_key, lo);
            let hi = bounds.get(hi_key, hi);
            let v: i64 = value
                .trim()
                .parse()
                .map_err(|_| "not a number".to_string())?;
            if v < lo {
                return Err(format!(
                    "{} must be greater than or equal to {lo_key} {lo}",
                    self.name
                ));
            }
            if v > hi {
                return Err(format!(
                    "{} must be less than or equal to {hi_key} {hi}",
                    self.name
                ));
            }
        }
        Ok(())
    }
}

/// The broker's bounds of group configs (`group.*.min.*` / `group.*.max.*` as set at start).
#[derive(Debug, Clone, Default)]
pub(crate) struct GroupConfigBounds(BTreeMap<&'static str, i64>);

impl GroupConfigBounds {
    /// The bounds `config` sets explicitly; the others keep Kafka's defaults.
    pub(crate) fn from_config(config: &BrokerConfig) -> GroupConfigBounds {
        let keys = GROUP_CONFIGS
            .iter()
            .filter_map(|d| d.bounds)
            .flat_map(|((lo, _), (hi, _))| [lo, hi]);
        GroupConfigBounds(
            keys.filter_map(|k| config.parsed::<i64>(k).map(|v| (k, v)))
                .collect(),
        )
    }

    fn get(&self, key: &str, default: i64) -> i64 {
        self.0.get(key).copied().unwrap_or(default)
    }
}
