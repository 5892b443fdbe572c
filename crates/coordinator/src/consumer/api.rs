//! The KIP-848 consumer-group API of the coordinator: its configuration, the topic-metadata seam
//! the broker implements ([`TopicMetadata`]), and the request/response value types of
//! ConsumerGroupHeartbeat (API 68) and ConsumerGroupDescribe (API 69), free of wire types.

use std::time::Duration;

use uuid::Uuid;

/// Settings of consumer (KIP-848) groups, from the broker's config table.
#[derive(Debug, Clone)]
pub struct ConsumerGroupConfig {
    /// `group.consumer.heartbeat.interval.ms` (Kafka default 5 s).
    pub heartbeat_interval_ms: i32,
    /// `group.consumer.session.timeout.ms` (Kafka default 45 s).
    pub session_timeout_ms: i32,
    /// `group.consumer.assignors`: served assignors, the first is the default (`uniform,range`).
    pub assignors: Vec<String>,
    /// How often expired sessions and overdue revocations are checked.
    pub timer_tick: Duration,
    /// `group.consumer.max.size`: members of one consumer group.
    pub max_size: usize,
}

impl Default for ConsumerGroupConfig {
    fn default() -> Self {
        ConsumerGroupConfig {
            heartbeat_interval_ms: 5000,
            session_timeout_ms: 45_000,
            assignors: vec!["uniform".into(), "range".into()],
            timer_tick: Duration::from_millis(250),
            max_size: usize::MAX,
        }
    }
}

/// A topic as the assignors need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// Topic name.
    pub name: String,
    /// Topic id.
    pub id: Uuid,
    /// Partition count.
    pub partitions: i32,
}

/// A consistent view of the cluster's topics, provided by the broker on each heartbeat (so the
/// coordinator never depends on the broker's metadata types).
pub trait TopicMetadata {
    /// A topic by name.
    fn topic(&self, name: &str) -> Option<TopicInfo>;
    /// Every topic name a regex subscription may match (internal topics excluded).
    fn topic_names(&self) -> Vec<String>;
}

/// A ConsumerGroupHeartbeat request. `None` fields mean "unchanged since the last heartbeat".
#[derive(Debug, Clone, Default)]
pub struct HeartbeatRequest {
    /// Group id.
    pub group_id: String,
    /// Member id (KIP-1082: chosen by the client; empty asks the coordinator for one).
    pub member_id: String,
    /// 0 to join, -1 to leave, -2 for a static member's temporary leave, else the current epoch.
    pub member_epoch: i32,
    /// Static membership id.
    pub instance_id: Option<String>,
    /// Rack id.
    pub rack_id: Option<String>,
    /// Rebalance timeout; -1 = unchanged.
    pub rebalance_timeout_ms: i32,
    /// Subscribed topic names.
    pub subscribed_topic_names: Option<Vec<String>>,
    /// Subscribed topic regex (RE2/J syntax; served with the `regex` crate's common subset).
    pub subscribed_topic_regex: Option<String>,
    /// Preferred server-side assignor.
    pub server_assignor: Option<String>,
    /// Partitions the member owns (topic id, partitions); `None` = unchanged.
    pub owned_partitions: Option<Vec<(Uuid, Vec<i32>)>>,
    /// Client id from the request header.
    pub client_id: String,
    /// Client address.
    pub client_host: String,
    /// The group's dynamic `consumer.session.timeout.ms`, overriding the broker's.
    pub session_timeout_ms: Option<i32>,
    /// The group's dynamic `consumer.heartbeat.interval.ms`, overriding the broker's.
    pub heartbeat_interval_ms: Option<i32>,
}

/// A successful ConsumerGroupHeartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatResponse {
    /// The member id (generated if the request had none).
    pub member_id: String,
    /// The member's epoch (-1 / -2 after a leave).
    pub member_epoch: i32,
    /// How often to heartbeat.
    pub heartbeat_interval_ms: i32,
    /// The partitions the member must own now, sent on join and whenever they change.
    pub assignment: Option<Vec<(Uuid, Vec<i32>)>>,
}

/// One partition set of a described member (topic id, name, partitions).
pub type DescribedPartitions = Vec<(Uuid, String, Vec<i32>)>;

/// A described member of a consumer group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerMemberDescription {
    /// Member id.
    pub member_id: String,
    /// Static id.
    pub instance_id: Option<String>,
    /// Rack id.
    pub rack_id: Option<String>,
    /// Member epoch.
    pub member_epoch: i32,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Subscribed topic names.
    pub subscribed_topic_names: Vec<String>,
    /// Subscribed regex.
    pub subscribed_topic_regex: Option<String>,
    /// Current assignment.
    pub assignment: DescribedPartitions,
    /// Target assignment.
    pub target_assignment: DescribedPartitions,
}

/// A described consumer group (ConsumerGroupDescribe).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupDescription {
    /// Kafka's state name: `Empty`, `Assigning`, `Reconciling` or `Stable`.
    pub state: &'static str,
    /// Group epoch.
    pub group_epoch: i32,
    /// Target assignment epoch.
    pub assignment_epoch: i32,
    /// The assignor in use.
    pub assignor_name: String,
    /// Members, by member id.
    pub members: Vec<ConsumerMemberDescription>,
}
