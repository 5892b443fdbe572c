//! Where a partition's leader is, as the metadata image says (this node with its leader epoch,
//! or another broker's endpoint), and when a leader's own write is complete (acks=all: durable,
//! under the high watermark, enough in-sync replicas). Shared by the
//! coordinators' writes to internal topics, the transaction marker writer, WriteTxnMarkers and
//! FindCoordinator, so they agree on who leads what.
//!
//! A single node registers no `BrokerImage` for itself yet: a leader id equal to this node's
//! `node.id` is this node, endpoint `Broker::advertised`, whether registered or not.

use std::time::Duration;

use strom_log::{LogError, PartitionLog, TopicPartition};

use crate::broker::Broker;
use crate::metadata::MetadataImage;

/// The leader of one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Leader {
    /// This node, at the leader epoch of the role its replica manager took.
    Here { epoch: i32 },
    /// Another broker, reachable at host:port.
    Remote { id: i32, host: String, port: i32 },
    /// No leader right now, or its broker is fenced or unknown: try again later.
    Unavailable,
    /// The topic or partition does not exist.
    Unknown,
}

/// Who leads `topic`-`partition` in `image`.
pub(crate) fn leader_of(
    broker: &Broker,
    image: &MetadataImage,
    topic: &str,
    partition: i32,
) -> Leader {
    let Some(part) = image
        .topic(topic)
        .and_then(|t| t.partitions.get(&partition))
    else {
        return Leader::Unknown;
    };
    if part.leader == broker.config.node_id {
        // The role the replica manager applied, not the image: appends need its leader state.
        let role = broker
            .replicas
            .partition(&TopicPartition::new(topic, partition))
            .and_then(|p| p.leader_epoch());
        return match role {
            Some(epoch) => Leader::Here { epoch },
            // Not applied yet (or no local replica): leadership is on its way here.
            None => Leader::Unavailable,
        };
    }
    if part.leader < 0 {
        return Leader::Unavailable;
    }
    match endpoint(broker, image, part.leader) {
        Some((host, port)) => Leader::Remote {
            id: part.leader,
            host,
            port,
        },
        None => Leader::Unavailable,
    }
}

/// The client endpoint of broker `id`: registered and unfenced in `image`, or this node.
pub(crate) fn endpoint(broker: &Broker, image: &MetadataImage, id: i32) -> Option<(String, i32)> {
    match image.brokers.get(&id) {
        Some(b) if !b.fenced => Some((b.registration.host.clone(), b.registration.port)),
        Some(_) => None,
        None if id == broker.config.node_id => Some(broker.advertised.clone()),
        None => None,
    }
}

/// How long a coordinator's own write (records, transaction markers) waits for the in-sync
/// replicas: Kafka's `offsets.commit.timeout.ms` default.
pub(crate) const REPLICATION_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a leader's own write did not complete.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Incomplete {
    /// The local append or flush failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// Fewer in-sync replicas than `min.insync.replicas` (before the append).
    #[error("fewer in-sync replicas than min.insync.replicas")]
    NotEnoughReplicas,
    /// Written, but the in-sync replicas shrank below `min.insync.replicas` meanwhile.
    #[error("written, but fewer in-sync replicas than min.insync.replicas now")]
    NotEnoughReplicasAfterAppend,
    /// Not covered by the high watermark within [`REPLICATION_TIMEOUT`].
    #[error("not replicated to the in-sync replicas in time")]
    TimedOut,
}

fn enough_in_sync(broker: &Broker, log: &PartitionLog) -> bool {
    let min = usize::try_from(log.config().min_insync_replicas).unwrap_or(1);
    broker
        .replicas
        .partition(log.topic_partition())
        .is_some_and(|p| p.in_sync_replicas() >= min)
}

/// Before a leader's own write (acks=all): refuses when the ISR is below `min.insync.replicas`.
pub(crate) fn check_in_sync(broker: &Broker, log: &PartitionLog) -> Result<(), Incomplete> {
    if enough_in_sync(broker, log) {
        Ok(())
    } else {
        Err(Incomplete::NotEnoughReplicas)
    }
}

/// Waits until a leader's append ending below `offset` is complete, as acks=all: durable here
/// (when the append asked for a flush, `needs_flush`) and covered by the high watermark, i.e.
/// held by every in-sync replica, with the ISR still at least `min.insync.replicas`.
pub(crate) async fn wait_replicated(
    broker: &Broker,
    log: &PartitionLog,
    offset: i64,
    needs_flush: bool,
) -> Result<(), Incomplete> {
    if needs_flush {
        log.wait_durable(offset).await?;
    }
    tokio::time::timeout(REPLICATION_TIMEOUT, log.wait_high_watermark(offset))
        .await
        .map_err(|_| Incomplete::TimedOut)?;
    if enough_in_sync(broker, log) {
        Ok(())
    } else {
        Err(Incomplete::NotEnoughReplicasAfterAppend)
    }
}
