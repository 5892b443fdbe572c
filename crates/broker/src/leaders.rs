//! Where a partition's leader is, as the metadata image says (this node with its leader epoch,
//! or another broker's endpoint), and when a leader's own write is complete. Shared by the
//! coordinators' writes to internal topics, the transaction marker writer, WriteTxnMarkers and
//! FindCoordinator, so they agree on who leads what.
//!
//! A single node registers no `BrokerImage` for itself yet: a leader id equal to this node's
//! `node.id` is this node, endpoint `Broker::advertised`, whether registered or not.

use strom_log::PartitionLog;

use crate::broker::Broker;
use crate::metadata::MetadataImage;

/// The leader of one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Leader {
    /// This node, at this leader epoch.
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
        return Leader::Here {
            epoch: part.leader_epoch,
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
        Some(b) if !b.fenced => Some((b.host.clone(), b.port)),
        Some(_) => None,
        None if id == broker.config.node_id => Some(broker.advertised.clone()),
        None => None,
    }
}

/// Waits until a leader's append ending below `offset` is complete: durable here (when the
/// append asked for a flush, `needs_flush`) and, in a cluster, covered by the high watermark
/// (replicated to the ISR).
pub(crate) async fn wait_replicated(
    log: &PartitionLog,
    offset: i64,
    needs_flush: bool,
) -> strom_log::Result<()> {
    // TODO(wt-log): `log.wait_high_watermark(offset)` (always) once it lands on main; until then
    // a single node's high watermark is its durable offset.
    if needs_flush {
        log.wait_durable(offset).await?;
    }
    Ok(())
}
