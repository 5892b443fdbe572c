//! [`BROKER_CONFIGS`]: every broker key Strom reads (name, type, default, one line of doc), the
//! keys accepted without effect, and the lookup that also knows topic-config synonyms. Kept apart
//! from the parsing in `mod.rs` because it is data, and long.

use strom_log::{ConfigType, TOPIC_CONFIGS};

/// One broker config key.
#[derive(Debug, Clone, Copy)]
pub struct BrokerConfigDef {
    /// Kafka name.
    pub name: &'static str,
    /// Type and validation.
    pub kind: ConfigType,
    /// Default value, if any.
    pub default: Option<&'static str>,
    /// One line of documentation.
    pub doc: &'static str,
}

const fn def(
    name: &'static str,
    kind: ConfigType,
    default: Option<&'static str>,
    doc: &'static str,
) -> BrokerConfigDef {
    BrokerConfigDef {
        name,
        kind,
        default,
        doc,
    }
}

const STR: ConfigType = ConfigType::String;

/// Kafka's KRaft authorizer class: the one `authorizer.class.name` Strom implements.
pub const STANDARD_AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";

/// Broker keys Strom uses (topic-config synonyms are added from `TOPIC_CONFIGS`).
pub const BROKER_CONFIGS: &[BrokerConfigDef] = &[
    def(
        "node.id",
        ConfigType::Int { min: 0 },
        Some("1"),
        "this node's id",
    ),
    def(
        "broker.id",
        ConfigType::Int { min: 0 },
        None,
        "legacy name of node.id",
    ),
    def(
        "listeners",
        STR,
        Some("PLAINTEXT://127.0.0.1:9092"),
        "the Kafka listener (PLAINTEXT://host:port or host:port)",
    ),
    def(
        "advertised.listeners",
        STR,
        None,
        "the address given to clients in Metadata",
    ),
    def(
        "log.dirs",
        STR,
        Some("./data"),
        "comma-separated data directories",
    ),
    def(
        "log.dir",
        STR,
        None,
        "single data directory (used when log.dirs is unset)",
    ),
    def(
        "num.partitions",
        ConfigType::Int { min: 1 },
        Some("1"),
        "partitions of auto-created topics",
    ),
    def(
        "auto.create.topics.enable",
        ConfigType::Boolean,
        Some("true"),
        "create unknown topics on Metadata/Produce",
    ),
    def(
        "default.replication.factor",
        ConfigType::Int { min: 1 },
        Some("1"),
        "replication factor of auto-created topics",
    ),
    def(
        "socket.request.max.bytes",
        ConfigType::Int { min: 1 },
        Some("104857600"),
        "largest request accepted",
    ),
    def(
        "connections.max.idle.ms",
        ConfigType::Long { min: 1 },
        Some("600000"),
        "connections idle this long are closed, and so is one whose request frame is not complete this long after its first byte",
    ),
    def(
        "request.log.slow.ms",
        ConfigType::Long { min: 0 },
        Some("0"),
        "requests whose response takes at least this long are logged at info (0: off; long-polling fetches wait up to their max.wait.ms)",
    ),
    def(
        "http.listeners",
        STR,
        None,
        "the HTTP endpoint (/health, /ready, /metrics) at HOST:PORT, or none; strom serve defaults to 127.0.0.1:9644 and runs without it when that address is taken",
    ),
    def(
        "connections.max.reauth.ms",
        ConfigType::Long { min: 0 },
        Some("0"),
        "KIP-368: a SASL session lasts at most this long; the client re-authenticates on the same connection (0 = never required)",
    ),
    def(
        "group.share.enable",
        ConfigType::Boolean,
        Some("true"),
        "serve share groups (KIP-932 queues; state durable in __share_group_state, made on first use)",
    ),
    def(
        "group.share.session.timeout.ms",
        ConfigType::Int { min: 1 },
        Some("45000"),
        "a share group member without a heartbeat this long is removed",
    ),
    def(
        "group.share.heartbeat.interval.ms",
        ConfigType::Int { min: 1 },
        Some("5000"),
        "how often share group members heartbeat",
    ),
    def(
        "group.share.max.size",
        ConfigType::Int { min: 1 },
        Some("200"),
        "members of one share group at most",
    ),
    def(
        "group.share.delivery.count.limit",
        ConfigType::Int { min: 2 },
        Some("5"),
        "a share group record delivered this often without acceptance is archived",
    ),
    def(
        "group.share.record.lock.duration.ms",
        ConfigType::Int { min: 1000 },
        Some("30000"),
        "how long a share group member holds an acquired record",
    ),
    def(
        "group.share.min.record.lock.duration.ms",
        ConfigType::Int { min: 1000 },
        Some("15000"),
        "the least share.record.lock.duration.ms a share group may be configured with",
    ),
    def(
        "group.share.max.record.lock.duration.ms",
        ConfigType::Int { min: 1000 },
        Some("60000"),
        "the most share.record.lock.duration.ms a share group may be configured with",
    ),
    def(
        "group.share.partition.max.record.locks",
        ConfigType::Int { min: 100 },
        Some("2000"),
        "records of one share partition in flight at most",
    ),
    def(
        "authorizer.class.name",
        ConfigType::Enum(&["", STANDARD_AUTHORIZER]),
        Some(""),
        "org.apache.kafka.metadata.authorizer.StandardAuthorizer turns ACL authorization on (ACLs in the metadata log); empty = every request allowed",
    ),
    def(
        "super.users",
        STR,
        Some(""),
        "principals allowed everything by the authorizer, `;`-separated (User:admin;User:broker)",
    ),
    def(
        "allow.everyone.if.no.acl.found",
        ConfigType::Boolean,
        Some("false"),
        "the authorizer allows an operation on a resource that has no ACL at all",
    ),
    def(
        "quota.window.num",
        ConfigType::Int { min: 1 },
        Some("11"),
        "samples kept for client quota rates (KIP-13)",
    ),
    def(
        "quota.window.size.seconds",
        ConfigType::Int { min: 1 },
        Some("1"),
        "length of one client quota sample",
    ),
    def(
        "max.connections",
        ConfigType::Int { min: 1 },
        Some("2147483647"),
        "client connections at most, all listeners together (also capped below the process's open-file limit); more are closed at once",
    ),
    def(
        "max.connections.per.ip",
        ConfigType::Int { min: 1 },
        Some("2147483647"),
        "client connections at most from one IP address; more are closed at once",
    ),
    def(
        "max.connections.per.ip.overrides",
        STR,
        Some(""),
        "per-IP exceptions to max.connections.per.ip: ip:count,ip:count",
    ),
    def(
        "queued.max.request.bytes",
        ConfigType::Long { min: -1 },
        Some("1073741824"),
        "bytes of requests read and not yet answered, all connections together (-1: no limit; raised to socket.request.max.bytes if lower); a connection waits to read its next request until there is room",
    ),
    def(
        "log.retention.check.interval.ms",
        ConfigType::Long { min: 1 },
        Some("300000"),
        "how often retention runs",
    ),
    def(
        "log.flush.offset.checkpoint.interval.ms",
        ConfigType::Long { min: 1 },
        Some("60000"),
        "how often recovery points are checkpointed",
    ),
    def(
        "log.flush.scheduler.interval.ms",
        ConfigType::Long { min: 1 },
        Some("100"),
        "how often flush.ms is checked",
    ),
    def(
        "log.retention.hours",
        ConfigType::Int { min: -1 },
        Some("168"),
        "retention in hours (below log.retention.minutes/ms)",
    ),
    def(
        "log.retention.minutes",
        ConfigType::Int { min: -1 },
        None,
        "retention in minutes (below log.retention.ms)",
    ),
    def(
        "log.roll.hours",
        ConfigType::Int { min: 1 },
        Some("168"),
        "segment age in hours (below log.roll.ms)",
    ),
    def(
        "fetch.max.bytes",
        ConfigType::Int { min: 1024 },
        Some("57671680"),
        "largest fetch response",
    ),
    def(
        "cluster.id",
        STR,
        None,
        "cluster id (generated and kept in meta.properties when unset)",
    ),
    def(
        "process.roles",
        ConfigType::List(&["broker", "controller"]),
        Some("broker,controller"),
        "roles of this node",
    ),
    def(
        "controller.quorum.voters",
        STR,
        None,
        "controller voters id@host:port,...",
    ),
    def(
        "broker.session.timeout.ms",
        ConfigType::Int { min: 1 },
        Some("9000"),
        "the controller fences a broker whose heartbeats lapse this long",
    ),
    def(
        "broker.heartbeat.interval.ms",
        ConfigType::Int { min: 1 },
        Some("2000"),
        "how often a broker heartbeats to the active controller",
    ),
    def(
        "replica.lag.time.max.ms",
        ConfigType::Int { min: 1 },
        Some("30000"),
        "a follower not caught up for this long leaves the ISR",
    ),
    def(
        "replica.fetch.wait.max.ms",
        ConfigType::Int { min: 0 },
        Some("500"),
        "longest a follower fetch waits at the leader for new data",
    ),
    def(
        "replica.fetch.max.bytes",
        ConfigType::Int { min: 1 },
        Some("1048576"),
        "bytes a follower fetches per partition per request",
    ),
    def(
        "replica.fetch.backoff.ms",
        ConfigType::Int { min: 0 },
        Some("1000"),
        "pause after a failed follower fetch",
    ),
    def(
        "auto.leader.rebalance.enable",
        ConfigType::Boolean,
        Some("true"),
        "move leadership back to preferred replicas periodically",
    ),
    def(
        "leader.imbalance.check.interval.seconds",
        ConfigType::Int { min: 1 },
        Some("300"),
        "how often the controller checks for leader imbalance",
    ),
    def(
        "offsets.topic.replication.factor",
        ConfigType::Int { min: 1 },
        Some("3"),
        "replication factor of __consumer_offsets (capped by the live brokers at creation)",
    ),
    def(
        "transaction.state.log.replication.factor",
        ConfigType::Int { min: 1 },
        Some("3"),
        "replication factor of __transaction_state (capped by the live brokers at creation)",
    ),
    def(
        "offsets.topic.num.partitions",
        ConfigType::Int { min: 1 },
        Some("50"),
        "partitions of __consumer_offsets (set before first start)",
    ),
    def(
        "share.coordinator.state.topic.num.partitions",
        ConfigType::Int { min: 1 },
        Some("50"),
        "partitions of __share_group_state (set before first start)",
    ),
    def(
        "share.coordinator.state.topic.replication.factor",
        ConfigType::Int { min: 1 },
        Some("3"),
        "replication factor of __share_group_state (capped by the live brokers at creation)",
    ),
    def(
        "share.coordinator.snapshot.update.records.per.snapshot",
        ConfigType::Int { min: 0 },
        Some("500"),
        "share-state updates of one share partition before the next record is a snapshot",
    ),
    def(
        "transaction.state.log.num.partitions",
        ConfigType::Int { min: 1 },
        Some("50"),
        "partitions of __transaction_state (set before first start)",
    ),
    def(
        "transaction.max.timeout.ms",
        ConfigType::Int { min: 1 },
        Some("900000"),
        "largest transaction.timeout.ms a producer may ask for",
    ),
    def(
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        ConfigType::Int { min: 1 },
        Some("10000"),
        "how often open transactions past their timeout are aborted (and idle transactional ids expired)",
    ),
    def(
        "transaction.partition.verification.enable",
        ConfigType::Boolean,
        Some("true"),
        "a partition leader checks with the transaction coordinator before a producer's first transactional batch (KIP-890)",
    ),
    def(
        "transactional.id.expiration.ms",
        ConfigType::Int { min: 1 },
        Some("604800000"),
        "idle transactional ids (no open transaction) unchanged this long are removed",
    ),
    def(
        "offsets.retention.minutes",
        ConfigType::Int { min: 1 },
        Some("10080"),
        "committed offsets of a group are kept this long after it becomes empty",
    ),
    def(
        "offsets.retention.check.interval.ms",
        ConfigType::Long { min: 1 },
        Some("600000"),
        "how often expired committed offsets are removed",
    ),
    def(
        "offset.metadata.max.bytes",
        ConfigType::Int { min: 0 },
        Some("4096"),
        "largest metadata string of an offset commit",
    ),
    def(
        "group.initial.rebalance.delay.ms",
        ConfigType::Int { min: 0 },
        Some("3000"),
        "how long the first rebalance of an empty group waits for more members",
    ),
    def(
        "group.min.session.timeout.ms",
        ConfigType::Int { min: 1 },
        Some("6000"),
        "smallest session timeout a group member may ask for",
    ),
    def(
        "group.max.size",
        ConfigType::Int { min: 1 },
        Some("10000"),
        "members one classic group may have, those still to rejoin with their member id counted; more get GROUP_MAX_SIZE_REACHED (Kafka's default is unlimited)",
    ),
    def(
        "group.consumer.max.size",
        ConfigType::Int { min: 1 },
        Some("10000"),
        "members one KIP-848 consumer group may have; more get GROUP_MAX_SIZE_REACHED (Kafka's default is unlimited)",
    ),
    def(
        "group.max.session.timeout.ms",
        ConfigType::Int { min: 1 },
        Some("1800000"),
        "largest session timeout a group member may ask for",
    ),
    def(
        "group.consumer.heartbeat.interval.ms",
        ConfigType::Int { min: 1 },
        Some("5000"),
        "heartbeat interval given to KIP-848 (group.protocol=consumer) group members",
    ),
    def(
        "group.consumer.session.timeout.ms",
        ConfigType::Int { min: 1 },
        Some("45000"),
        "session timeout of KIP-848 consumer group members",
    ),
    def(
        "group.consumer.assignors",
        ConfigType::List(&["uniform", "range"]),
        Some("uniform,range"),
        "server-side assignors of consumer groups; the first is the default",
    ),
    def(
        "log.cleaner.enable",
        ConfigType::Boolean,
        Some("true"),
        "run the log cleaner (compaction of cleanup.policy=compact topics)",
    ),
    def(
        "log.cleaner.threads",
        ConfigType::Int { min: 1 },
        Some("1"),
        "log cleaner threads",
    ),
    def(
        "log.cleaner.backoff.ms",
        ConfigType::Long { min: 0 },
        Some("15000"),
        "how long a cleaner thread sleeps when no log needs cleaning",
    ),
    def(
        "log.cleaner.io.max.bytes.per.second",
        ConfigType::Double { min: 0.0, max: f64::MAX },
        Some("1.7976931348623157E308"),
        "cap on the cleaner's read+write rate, all threads together",
    ),
    def(
        "log.cleaner.dedupe.buffer.size",
        ConfigType::Long { min: 1 << 20 },
        Some("134217728"),
        "memory for the cleaner's key-to-offset maps, all threads together",
    ),
    def(
        "producer.id.expiration.ms",
        ConfigType::Int { min: 1 },
        Some("86400000"),
        "a partition forgets an idempotent producer idle this long (it then gets UNKNOWN_PRODUCER_ID)",
    ),
    def(
        "producer.id.expiration.check.interval.ms",
        ConfigType::Int { min: 1 },
        Some("600000"),
        "how often expired producer ids are removed",
    ),
];

/// Keys found in Kafka `server.properties` files that Strom accepts and ignores.
pub const ACCEPTED_WITHOUT_EFFECT: &[&str] = &[
    "num.network.threads",
    "num.io.threads",
    "socket.send.buffer.bytes",
    "socket.receive.buffer.bytes",
    "num.recovery.threads.per.data.dir",
    "transaction.state.log.min.isr",
    "zookeeper.connect",
    "zookeeper.connection.timeout.ms",
    "controller.quorum.bootstrap.servers",
    "num.replica.fetchers",
];

/// Looks up a broker key: its own definition, or the topic config it is a synonym of.
pub fn broker_config_kind(name: &str) -> Option<ConfigType> {
    if let Some(d) = BROKER_CONFIGS.iter().find(|d| d.name == name) {
        return Some(d.kind);
    }
    TOPIC_CONFIGS
        .iter()
        .find(|d| d.broker_synonym == Some(name))
        .map(|d| d.kind)
}
