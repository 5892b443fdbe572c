//! `BrokerConfig`: the broker's settings, in Kafka's config names, from one typed table.
//!
//! [`BROKER_CONFIGS`] (in `table.rs`) defines every broker key Strom reads (name, type, default,
//! doc), plus the broker-level synonyms of topic configs (`log.segment.bytes`, `log.retention.ms`, ...) taken from
//! `strom_log::TOPIC_CONFIGS`. `--set name=value` and `--config server.properties` go through
//! [`BrokerConfig::from_properties`]; an unknown key or a bad value is an error naming the key.
//! A few keys common in Kafka `server.properties` files are accepted without effect (thread pool
//! sizes, socket buffers, ZooKeeper-era settings), listed in [`ACCEPTED_WITHOUT_EFFECT`].

use std::collections::BTreeMap;
use std::path::PathBuf;

mod group;
mod table;

pub(crate) use group::{group_config, GroupConfigBounds, GROUP_CONFIGS};
pub use table::{
    broker_config_kind, BrokerConfigDef, ACCEPTED_WITHOUT_EFFECT, BROKER_CONFIGS,
    STANDARD_AUTHORIZER,
};

/// A start-up configuration error, naming the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The key is not a broker config Strom knows.
    #[error("unknown broker config {0:?}")]
    Unknown(String),
    /// The value failed validation.
    #[error("invalid value {value:?} for broker config {name}: {reason}")]
    Invalid {
        /// Key.
        name: String,
        /// Value.
        value: String,
        /// Why.
        reason: String,
    },
    /// A `--set` argument without `=`.
    #[error("expected name=value, got {0:?}")]
    Syntax(String),
    /// The properties file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// File.
        path: PathBuf,
        /// Error.
        #[source]
        source: std::io::Error,
    },
}

/// The broker's typed configuration.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// `node.id`.
    pub node_id: i32,
    /// Address to bind the Kafka listener to.
    pub listen: String,
    /// Host and port given to clients.
    pub advertised: Option<String>,
    /// `log.dirs`.
    pub log_dirs: Vec<PathBuf>,
    /// `num.partitions`.
    pub num_partitions: i32,
    /// `auto.create.topics.enable`.
    pub auto_create_topics: bool,
    /// `default.replication.factor`.
    pub default_replication_factor: i16,
    /// `socket.request.max.bytes`.
    pub socket_request_max_bytes: usize,
    /// `connections.max.idle.ms`.
    pub connections_max_idle_ms: u64,
    /// `request.log.slow.ms`: requests slower than this are logged at info (0: off).
    pub request_log_slow_ms: u64,
    /// `max.connections`.
    pub max_connections: usize,
    /// `max.connections.per.ip`.
    pub max_connections_per_ip: usize,
    /// `max.connections.per.ip.overrides` (`ip:count,...`).
    pub max_connections_per_ip_overrides: String,
    /// `queued.max.request.bytes` (< 0: no broker-wide limit).
    pub queued_max_request_bytes: i64,
    /// `log.retention.check.interval.ms`.
    pub retention_check_interval_ms: u64,
    /// `log.flush.offset.checkpoint.interval.ms`.
    pub checkpoint_interval_ms: u64,
    /// `log.flush.scheduler.interval.ms`.
    pub flush_scheduler_interval_ms: u64,
    /// `fetch.max.bytes`.
    pub fetch_max_bytes: i32,
    /// `cluster.id`, if set.
    pub cluster_id: Option<String>,
    /// `producer.id.expiration.ms`.
    pub producer_id_expiration_ms: i64,
    /// `producer.id.expiration.check.interval.ms`.
    pub producer_id_expiration_check_interval_ms: u64,
    /// The controller listener (`listeners` entry named CONTROLLER), if this node has one.
    pub controller_listen: Option<String>,
    /// `controller.quorum.voters` as (id, host:port); empty = a one-node cluster of itself.
    pub voters: Vec<(i32, String)>,
    /// `process.roles` contains `controller`: this node votes in the quorum.
    pub is_controller: bool,
    /// `broker.session.timeout.ms`.
    pub broker_session_timeout_ms: u64,
    /// `broker.heartbeat.interval.ms`.
    pub broker_heartbeat_interval_ms: u64,
    /// `replica.lag.time.max.ms`.
    pub replica_lag_time_max_ms: i64,
    /// `replica.fetch.wait.max.ms`.
    pub replica_fetch_wait_max_ms: i32,
    /// `replica.fetch.max.bytes`.
    pub replica_fetch_max_bytes: i32,
    /// `replica.fetch.backoff.ms`.
    pub replica_fetch_backoff_ms: u64,
    /// `auto.leader.rebalance.enable`.
    pub auto_leader_rebalance: bool,
    /// `leader.imbalance.check.interval.seconds`, in ms.
    pub leader_imbalance_check_interval_ms: u64,
    /// `offsets.topic.replication.factor`.
    pub offsets_topic_replication_factor: i16,
    /// `transaction.state.log.replication.factor`.
    pub transaction_state_replication_factor: i16,
    /// `transaction.partition.verification.enable` (KIP-890 part 1).
    pub transaction_partition_verification: bool,
    /// Every key set explicitly (for DescribeConfigs and topic-config synonyms).
    pub explicit: BTreeMap<String, String>,
    /// `listeners`, `advertised.listeners`, `listener.security.protocol.map`,
    /// `inter.broker.listener.name`, `controller.listener.names`.
    pub listeners: strom_security::ListenerConfig,
    /// The explicit keys as the security crate reads them (`ssl.*`, `sasl.*`, and their
    /// `listener.name.<name>.` forms), for each listener's TLS and SASL.
    pub security: strom_security::Properties,
    /// `connections.max.reauth.ms` (KIP-368): 0 = no re-authentication required.
    pub connections_max_reauth_ms: i64,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig::from_properties(&BTreeMap::new())
            .unwrap_or_else(|_| unreachable!("defaults are valid"))
    }
}

/// The value of `key` in `props`, else the default of its row in [`BROKER_CONFIGS`]: the one
/// rule for reading a broker key by name (start-up parsing and [`BrokerConfig::value`]).
fn lookup<'a>(props: &'a BTreeMap<String, String>, key: &str) -> Option<&'a str> {
    props.get(key).map(String::as_str).or_else(|| {
        BROKER_CONFIGS
            .iter()
            .find(|d| d.name == key)
            .and_then(|d| d.default)
    })
}

/// Parses Kafka `.properties` text: `key=value` or `key: value`, `#`/`!` comments.
pub fn parse_properties(text: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') || l.starts_with('!') {
            continue;
        }
        let (k, v) = l
            .split_once('=')
            .or_else(|| l.split_once(':'))
            .ok_or_else(|| ConfigError::Syntax(l.to_string()))?;
        out.insert(k.trim().to_string(), v.trim().to_string());
    }
    Ok(out)
}

/// Keys read by the security crate rather than the config table: TLS (`ssl.*`), SASL
/// (`sasl.*`), their per-listener forms (`listener.name.<name>.<key>`), and the inter-broker
/// login choices. Their values are checked when a listener is built.
fn is_security_key(key: &str) -> bool {
    key.starts_with("ssl.")
        || key.starts_with("sasl.")
        || key.starts_with("listener.name.")
        || matches!(
            key,
            "security.inter.broker.protocol"
                | "listener.security.protocol.map"
                | "inter.broker.listener.name"
                | "controller.listener.names"
        )
}

/// The explicit keys for the security crate, with Strom's listener conventions made Kafka's:
/// a bare `host:port` listener is `PLAINTEXT://host:port`, and a listener named `CONTROLLER`
/// (`--controller-listen`) is the controller listener unless `controller.listener.names` says
/// otherwise. `process.roles` is left out: a Strom broker-only node also binds a controller
/// listener (the quorum replicates the metadata log to it), which Kafka's listener rules forbid.
fn security_properties(
    props: &BTreeMap<String, String>,
    listeners: &str,
) -> strom_security::Properties {
    let with_scheme = |v: &str| {
        v.split(',')
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| {
                if l.contains("://") {
                    l.to_string()
                } else {
                    format!("PLAINTEXT://{l}")
                }
            })
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut out: strom_security::Properties = props
        .iter()
        .filter(|(k, _)| k.as_str() != "process.roles")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let listeners = with_scheme(listeners);
    if !props.contains_key("controller.listener.names")
        && listeners.split(',').any(|l| l.starts_with("CONTROLLER://"))
    {
        out.insert("controller.listener.names", "CONTROLLER");
        let map = props
            .get("listener.security.protocol.map")
            .cloned()
            .unwrap_or_else(|| {
                "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL".into()
            });
        if !map.split(',').any(|e| e.trim().starts_with("CONTROLLER:")) {
            out.insert(
                "listener.security.protocol.map",
                format!("{map},CONTROLLER:PLAINTEXT"),
            );
        }
    }
    out.insert("listeners", listeners);
    if let Some(a) = props.get("advertised.listeners") {
        out.insert("advertised.listeners", with_scheme(a));
    }
    out
}

/// Parses `controller.quorum.voters`: `id@host:port,...`.
pub(crate) fn parse_voters(v: &str) -> Result<Vec<(i32, String)>, String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            let (id, addr) = s
                .split_once('@')
                .ok_or_else(|| format!("expected id@host:port, got {s:?}"))?;
            let id: i32 = id
                .trim()
                .parse()
                .map_err(|_| format!("bad voter id in {s:?}"))?;
            if !addr.contains(':') {
                return Err(format!("expected host:port in {s:?}"));
            }
            Ok((id, addr.trim().to_string()))
        })
        .collect()
}

impl BrokerConfig {
    /// Builds and validates a config from explicit key/values.
    pub fn from_properties(props: &BTreeMap<String, String>) -> Result<BrokerConfig, ConfigError> {
        for (k, v) in props {
            if is_security_key(k) {
                // Read and checked by the security crate when the listener is built.
                continue;
            }
            if ACCEPTED_WITHOUT_EFFECT.contains(&k.as_str()) {
                tracing::info!(key = %k, "config accepted for compatibility; it has no effect in Strom");
                continue;
            }
            let kind = broker_config_kind(k).ok_or_else(|| ConfigError::Unknown(k.clone()))?;
            kind.validate(v).map_err(|reason| ConfigError::Invalid {
                name: k.clone(),
                value: v.clone(),
                reason,
            })?;
        }
        let get = |k: &str| lookup(props, k).map(str::to_string);
        let num = |k: &str| {
            get(k)
                .and_then(|v| v.trim().parse::<i64>().ok())
                .unwrap_or(0)
        };
        let security = security_properties(props, &get("listeners").unwrap_or_default());
        let listener_config =
            strom_security::ListenerConfig::from_props(&security).map_err(|e| {
                ConfigError::Invalid {
                    name: e.key().to_string(),
                    value: security.get(e.key()).unwrap_or_default().to_string(),
                    reason: e.to_string(),
                }
            })?;
        let client_listener = listener_config
            .listeners
            .iter()
            .find(|l| !listener_config.is_controller_listener(&l.name))
            .ok_or_else(|| ConfigError::Invalid {
                name: "listeners".into(),
                value: get("listeners").unwrap_or_default(),
                reason: "no listener for clients (every listener is a controller listener)".into(),
            })?;
        let listen = client_listener.bind_address();
        let controller_listen = listener_config
            .listeners
            .iter()
            .find(|l| listener_config.is_controller_listener(&l.name))
            .map(|l| l.bind_address());
        let advertised = listener_config
            .advertised_listeners
            .iter()
            .find(|l| l.name == client_listener.name)
            .filter(|l| l.host.is_some() && l.port != 0)
            .map(|l| l.bind_address());
        let voters = match get("controller.quorum.voters") {
            Some(v) => parse_voters(&v).map_err(|reason| ConfigError::Invalid {
                name: "controller.quorum.voters".into(),
                value: v.clone(),
                reason,
            })?,
            None => Vec::new(),
        };
        let bool_of = |k: &str| get(k).is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        let dirs = props
            .get("log.dirs")
            .or_else(|| props.get("log.dir"))
            .cloned()
            .or_else(|| get("log.dirs"))
            .unwrap_or_default();
        Ok(BrokerConfig {
            node_id: props
                .get("node.id")
                .or_else(|| props.get("broker.id"))
                .and_then(|v| v.parse().ok())
                .unwrap_or(1),
            listen,
            advertised,
            log_dirs: dirs
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
                .collect(),
            num_partitions: num("num.partitions") as i32,
            auto_create_topics: get("auto.create.topics.enable")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
            default_replication_factor: num("default.replication.factor")
                .clamp(1, i64::from(i16::MAX)) as i16,
            socket_request_max_bytes: num("socket.request.max.bytes").max(1) as usize,
            connections_max_idle_ms: num("connections.max.idle.ms").max(1) as u64,
            request_log_slow_ms: num("request.log.slow.ms").max(0) as u64,
            max_connections: usize::try_from(num("max.connections").max(1)).unwrap_or(usize::MAX),
            max_connections_per_ip: usize::try_from(num("max.connections.per.ip").max(1))
                .unwrap_or(usize::MAX),
            max_connections_per_ip_overrides: get("max.connections.per.ip.overrides")
                .unwrap_or_default(),
            queued_max_request_bytes: num("queued.max.request.bytes"),
            retention_check_interval_ms: num("log.retention.check.interval.ms").max(1) as u64,
            checkpoint_interval_ms: num("log.flush.offset.checkpoint.interval.ms").max(1) as u64,
            flush_scheduler_interval_ms: num("log.flush.scheduler.interval.ms").max(1) as u64,
            fetch_max_bytes: num("fetch.max.bytes").clamp(1024, i64::from(i32::MAX)) as i32,
            cluster_id: props.get("cluster.id").cloned(),
            producer_id_expiration_ms: num("producer.id.expiration.ms").max(1),
            producer_id_expiration_check_interval_ms: num(
                "producer.id.expiration.check.interval.ms",
            )
            .max(1) as u64,
            controller_listen,
            voters,
            is_controller: get("process.roles")
                .is_some_and(|r| r.split(',').any(|x| x.trim() == "controller")),
            broker_session_timeout_ms: num("broker.session.timeout.ms").max(1) as u64,
            broker_heartbeat_interval_ms: num("broker.heartbeat.interval.ms").max(1) as u64,
            replica_lag_time_max_ms: num("replica.lag.time.max.ms").max(1),
            replica_fetch_wait_max_ms: num("replica.fetch.wait.max.ms").clamp(0, 60_000) as i32,
            replica_fetch_max_bytes: num("replica.fetch.max.bytes").clamp(1, i64::from(i32::MAX))
                as i32,
            replica_fetch_backoff_ms: num("replica.fetch.backoff.ms").max(0) as u64,
            auto_leader_rebalance: bool_of("auto.leader.rebalance.enable"),
            leader_imbalance_check_interval_ms: num("leader.imbalance.check.interval.seconds")
                .max(1) as u64
                * 1000,
            offsets_topic_replication_factor: num("offsets.topic.replication.factor")
                .clamp(1, i64::from(i16::MAX)) as i16,
            transaction_state_replication_factor: num("transaction.state.log.replication.factor")
                .clamp(1, i64::from(i16::MAX))
                as i16,
            transaction_partition_verification: bool_of(
                "transaction.partition.verification.enable",
            ),
            explicit: props.clone(),
            listeners: listener_config,
            security,
            connections_max_reauth_ms: num("connections.max.reauth.ms").max(0),
        })
    }

    /// The value of `key`: set explicitly, else its default in [`BROKER_CONFIGS`].
    pub fn value(&self, key: &str) -> Option<&str> {
        lookup(&self.explicit, key).map(str::trim)
    }

    /// [`BrokerConfig::value`] parsed as `T` (`None` when unset without default, or unparsable:
    /// keys were validated at start-up, so that means the table has no default).
    pub fn parsed<T: std::str::FromStr>(&self, key: &str) -> Option<T> {
        self.value(key).and_then(|v| v.parse().ok())
    }

    /// The broker-level settings that shape topic configs (synonyms like `log.segment.bytes`).
    pub fn log_overrides(&self) -> &BTreeMap<String, String> {
        &self.explicit
    }

    /// The log cleaner settings (`log.cleaner.*`).
    pub fn cleaner_config(&self) -> strom_log::CleanerConfig {
        let d = strom_log::CleanerConfig::default();
        strom_log::CleanerConfig {
            enabled: self
                .value("log.cleaner.enable")
                .map_or(d.enabled, |v| v.eq_ignore_ascii_case("true")),
            threads: self
                .parsed::<usize>("log.cleaner.threads")
                .map_or(d.threads, |n| n.max(1)),
            backoff: self
                .parsed("log.cleaner.backoff.ms")
                .map_or(d.backoff, std::time::Duration::from_millis),
            io_max_bytes_per_second: self
                .parsed("log.cleaner.io.max.bytes.per.second")
                .unwrap_or(d.io_max_bytes_per_second),
            dedupe_buffer_size: self
                .parsed("log.cleaner.dedupe.buffer.size")
                .unwrap_or(d.dedupe_buffer_size),
        }
    }

    /// The controller quorum settings of this node.
    pub fn quorum_config(&self) -> Result<strom_cluster::quorum::QuorumConfig, ConfigError> {
        let dir = self
            .log_dirs
            .first()
            .cloned()
            .unwrap_or_else(|| "./data".into());
        let mut q = strom_cluster::quorum::QuorumConfig::new(self.node_id, dir);
        q.controller_listen = match &self.controller_listen {
            Some(a) => Some(a.parse().map_err(|_| ConfigError::Invalid {
                name: "listeners".into(),
                value: a.clone(),
                reason: "the CONTROLLER listener must be an IP:port".into(),
            })?),
            None => None,
        };
        q.voters = self.voters.clone();
        q.voter = self.is_controller;
        q.session_timeout_ms = self.broker_session_timeout_ms;
        q.leader_imbalance_check_interval_ms = self.leader_imbalance_check_interval_ms;
        q.auto_leader_rebalance = self.auto_leader_rebalance;
        q.unclean_leader_election_default = self
            .explicit
            .get("unclean.leader.election.enable")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        // The quorum's own listener, and its connections to the other nodes, speak the first
        // controller listener's protocol (Kafka: the first of controller.listener.names):
        // PLAINTEXT, or SSL where each peer's certificate proves its node id.
        if let Some(name) = self.listeners.controller_listener_names.first() {
            let protocol = self
                .listeners
                .protocol_map
                .get(name)
                .copied()
                .unwrap_or(strom_security::SecurityProtocol::Plaintext);
            let props = strom_security::ListenerProps::new(&self.security, name);
            q.tls = strom_cluster::quorum::ControllerTls::from_listener(&props, protocol).map_err(
                |e| ConfigError::Invalid {
                    name: e.key().to_string(),
                    value: self.security.get(e.key()).unwrap_or_default().to_string(),
                    reason: e.to_string(),
                },
            )?;
        }
        Ok(q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults() {
        let c = BrokerConfig::default();
        assert_eq!(c.listen, "127.0.0.1:9092");
        assert_eq!(c.num_partitions, 1);
        assert!(c.auto_create_topics);
        assert_eq!(c.socket_request_max_bytes, 104_857_600);
        assert_eq!(c.log_dirs, vec![PathBuf::from("./data")]);
    }

    #[test]
    fn unknown_and_invalid_keys_are_named() {
        let e = BrokerConfig::from_properties(&props(&[("no.such.key", "1")])).unwrap_err();
        assert!(e.to_string().contains("no.such.key"));
        let e = BrokerConfig::from_properties(&props(&[("num.partitions", "zero")])).unwrap_err();
        assert!(e.to_string().contains("num.partitions"));
        let e = BrokerConfig::from_properties(&props(&[("log.segment.bytes", "-5")])).unwrap_err();
        assert!(e.to_string().contains("log.segment.bytes"));
    }

    #[test]
    fn named_listeners_and_the_controller_listener() {
        let c = BrokerConfig::from_properties(&props(&[
            (
                "listeners",
                "PLAINTEXT://127.0.0.1:9092,SASL_SSL://127.0.0.1:9093,CONTROLLER://127.0.0.1:9094",
            ),
            ("inter.broker.listener.name", "SASL_SSL"),
        ]))
        .expect("valid");
        assert_eq!(c.listen, "127.0.0.1:9092");
        assert_eq!(c.controller_listen.as_deref(), Some("127.0.0.1:9094"));
        assert_eq!(c.listeners.listeners.len(), 3);
        // The shorthand of `--listen`: a bare host:port is PLAINTEXT.
        let c = BrokerConfig::from_properties(&props(&[("listeners", "127.0.0.1:7777")]))
            .expect("valid");
        assert_eq!(c.listen, "127.0.0.1:7777");
    }

    #[test]
    fn properties_file_and_listeners() {
        let p = parse_properties(
            "# c\nlisteners=PLAINTEXT://0.0.0.0:9999\nadvertised.listeners=PLAINTEXT://broker1:9999\nnum.partitions = 3\nnum.io.threads=8\n",
        )
        .expect("parse");
        let c = BrokerConfig::from_properties(&p).expect("valid");
        assert_eq!(c.listen, "0.0.0.0:9999");
        assert_eq!(c.advertised.as_deref(), Some("broker1:9999"));
        // Kafka's rule: 0.0.0.0 binds everywhere but is no address to give clients.
        let e = BrokerConfig::from_properties(&props(&[("listeners", "PLAINTEXT://0.0.0.0:9999")]))
            .unwrap_err();
        assert!(e.to_string().contains("0.0.0.0"), "{e}");
        assert_eq!(c.num_partitions, 3);
    }
}
