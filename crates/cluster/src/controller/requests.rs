//! What the active controller serves and answers, in its own terms: the heartbeat and
//! AlterPartition requests (registration is a `BrokerRegistration`, an election a list of
//! partitions), the reply to a heartbeat, and [`Decided`], a decision with the image offset that
//! shows it.
//!
//! Defined here, by the controller, because it is the one that serves them; the quorum carries
//! them on its RPC (`quorum::wire` wraps them in its `Request`/`Response`, whose JSON is these
//! structs' serde form) and re-exports [`HeartbeatReply`] as `strom_cluster::quorum::HeartbeatReply`.
//! A leaf: it imports only `uuid` and serde.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A broker heartbeat (Kafka's `BrokerHeartbeatRequest`, the parts Strom uses).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Heartbeat {
    pub(crate) broker_id: i32,
    pub(crate) incarnation: Uuid,
    pub(crate) metadata_offset: i64,
    pub(crate) want_shutdown: bool,
}

/// An AlterPartition request on the wire (mirrors `election::AlterPartitionRequest`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AlterPartition {
    pub(crate) topic_id: Uuid,
    pub(crate) partition: i32,
    pub(crate) broker: i32,
    pub(crate) leader_epoch: i32,
    pub(crate) partition_epoch: i32,
    pub(crate) new_isr: Vec<i32>,
}

/// The active controller's answer to a heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatReply {
    /// The broker is fenced (may not lead or join ISRs).
    pub fenced: bool,
    /// Controlled shutdown is complete: the broker may exit.
    pub should_shut_down: bool,
}

/// A controller decision and the image offset that shows its effect, so the caller can wait for
/// its own image to get there before answering its client.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Decided<T> {
    pub(crate) value: T,
    pub(crate) offset: i64,
}
