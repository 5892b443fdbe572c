//! WriteTxnMarkers to other brokers: the transaction coordinator's channel to the leaders of a
//! transaction's partitions that this node does not lead (Kafka's
//! TransactionMarkerChannelManager, minus its queue: each `write_markers` call sends its own
//! requests, one per leader, all in flight together).
//!
//! Connections: the channel's own `inter_broker::BrokerConnections` pool. The answer per partition decides: done, retry (the leader moved or is not ready:
//! re-read the image), skip (the partition cannot take markers), or fail (the coordinator was
//! fenced or the request is wrong; retrying cannot fix it). Error classes are Kafka's.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{
    ApiKey, ProducerId, TopicName, WriteTxnMarkersRequest, WriteTxnMarkersResponse,
};
use kafka_protocol::protocol::StrBytes;
use strom_client::ClientError;
use strom_coordinator::txn::TxnMarker;
use strom_coordinator::WriteError;

use crate::inter_broker::{by_topic, BrokerConnections};

/// Partitions grouped by leader: broker id → ("host:port", partitions).
pub(crate) type ByLeader = BTreeMap<i32, (String, Vec<(String, i32)>)>;

/// Connections to other brokers for WriteTxnMarkers.
#[derive(Debug)]
pub(crate) struct MarkerChannel {
    conns: BrokerConnections,
}

/// What to do with one partition after its leader answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Done,
    Retry,
    Skip,
    /// With the code that retrying cannot fix.
    Fail(i16),
}

fn verdict(code: i16) -> Verdict {
    if code == 0 {
        return Verdict::Done;
    }
    match ResponseError::try_from_code(code) {
        Some(
            ResponseError::NotLeaderOrFollower
            | ResponseError::UnknownTopicOrPartition
            | ResponseError::LeaderNotAvailable
            | ResponseError::NotEnoughReplicas
            | ResponseError::NotEnoughReplicasAfterAppend
            | ResponseError::RequestTimedOut
            | ResponseError::KafkaStorageError
            | ResponseError::FencedLeaderEpoch
            | ResponseError::UnknownLeaderEpoch,
        ) => Verdict::Retry,
        Some(ResponseError::UnsupportedForMessageFormat) => Verdict::Skip,
        _ => Verdict::Fail(code),
    }
}

impl MarkerChannel {
    pub(crate) fn new(node_id: i32, security: Arc<strom_client::Security>) -> Self {
        MarkerChannel {
            conns: BrokerConnections::new(node_id, "txn-markers", security),
        }
    }

    /// Sends `marker` to each leader for its partitions; returns the partitions to retry.
    pub(crate) async fn send(
        &self,
        marker: &TxnMarker,
        by_leader: ByLeader,
    ) -> Result<Vec<(String, i32)>, WriteError> {
        let mut retry = Vec::new();
        let mut pending = Vec::new();
        for (id, (addr, parts)) in by_leader {
            match self.start(id, &addr, marker, &parts).await {
                Ok(p) => pending.push((id, addr, parts, p)),
                Err(e) => {
                    tracing::debug!(broker = id, addr, error = %e, "sending WriteTxnMarkers failed");
                    self.conns.forget(id);
                    retry.extend(parts);
                }
            }
        }
        for (id, addr, parts, p) in pending {
            match p.wait().await {
                Ok(resp) => retry.extend(settle(marker, id, &parts, &resp)?),
                Err(e) => {
                    tracing::debug!(broker = id, addr, error = %e, "WriteTxnMarkers got no answer");
                    self.conns.forget(id);
                    retry.extend(parts);
                }
            }
        }
        Ok(retry)
    }

    async fn start(
        &self,
        id: i32,
        addr: &str,
        marker: &TxnMarker,
        parts: &[(String, i32)],
    ) -> Result<strom_client::PendingResponse<WriteTxnMarkersResponse>, ClientError> {
        let conn = self.conns.connection(id, addr).await?;
        let version = conn.version(ApiKey::WriteTxnMarkers)?;
        conn.start(version, &request(marker, parts))
    }
}

/// One WriteTxnMarkers request: the marker for `parts`, topics grouped.
fn request(marker: &TxnMarker, parts: &[(String, i32)]) -> WriteTxnMarkersRequest {
    let topics = by_topic(parts)
        .into_iter()
        .map(|(t, ps)| {
            WritableTxnMarkerTopic::default()
                .with_name(TopicName(StrBytes::from_string(t.to_string())))
                .with_partition_indexes(ps)
        })
        .collect();
    WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
        .with_producer_id(ProducerId(marker.producer_id))
        .with_producer_epoch(marker.producer_epoch)
        .with_transaction_result(marker.commit)
        .with_coordinator_epoch(marker.coordinator_epoch)
        .with_topics(topics)])
}

/// The partitions of `parts` to retry after broker `id` answered `resp`.
fn settle(
    marker: &TxnMarker,
    id: i32,
    parts: &[(String, i32)],
    resp: &WriteTxnMarkersResponse,
) -> Result<Vec<(String, i32)>, WriteError> {
    let codes: HashMap<(&str, i32), i16> = resp
        .markers
        .iter()
        .filter(|m| m.producer_id.0 == marker.producer_id)
        .flat_map(|m| &m.topics)
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |p| ((t.name.0.as_str(), p.partition_index), p.error_code))
        })
        .collect();
    let mut retry = Vec::new();
    for (topic, partition) in parts {
        // A partition left out of the answer is retried.
        let verdict = codes
            .get(&(topic.as_str(), *partition))
            .map_or(Verdict::Retry, |c| verdict(*c));
        match verdict {
            Verdict::Done => {}
            Verdict::Retry => retry.push((topic.clone(), *partition)),
            Verdict::Skip => {
                tracing::warn!(
                    topic,
                    partition,
                    broker = id,
                    "skipping a transaction marker the partition cannot take"
                );
            }
            Verdict::Fail(code) => {
                let name = strom_client::KafkaErrorName(code);
                return Err(WriteError::Storage(Arc::new(std::io::Error::other(
                    format!("broker {id} refused the transaction marker for {topic}-{partition}: {name}"),
                ))));
            }
        }
    }
    Ok(retry)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::write_txn_markers_response::{
        WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
    };

    fn marker() -> TxnMarker {
        TxnMarker {
            transactional_id: "t".into(),
            producer_id: 7,
            producer_epoch: 1,
            coordinator_epoch: 3,
            commit: true,
            partitions: vec![("a".into(), 0), ("a".into(), 1), ("b".into(), 0)],
        }
    }

    fn answer(codes: &[(&str, i32, i16)]) -> WriteTxnMarkersResponse {
        let topics = codes
            .iter()
            .map(|(t, p, c)| {
                WritableTxnMarkerTopicResult::default()
                    .with_name(TopicName(StrBytes::from_string((*t).to_string())))
                    .with_partitions(vec![WritableTxnMarkerPartitionResult::default()
                        .with_partition_index(*p)
                        .with_error_code(*c)])
            })
            .collect();
        WriteTxnMarkersResponse::default().with_markers(vec![WritableTxnMarkerResult::default()
            .with_producer_id(ProducerId(7))
            .with_topics(topics)])
    }

    #[test]
    fn requests_group_partitions_by_topic() {
        let m = marker();
        let r = request(&m, &m.partitions);
        let w = &r.markers[0];
        assert_eq!(
            (w.producer_id.0, w.producer_epoch, w.coordinator_epoch),
            (7, 1, 3)
        );
        assert!(w.transaction_result);
        let topics: Vec<(&str, Vec<i32>)> = w
            .topics
            .iter()
            .map(|t| (t.name.0.as_str(), t.partition_indexes.clone()))
            .collect();
        assert_eq!(topics, vec![("a", vec![0, 1]), ("b", vec![0])]);
    }

    #[test]
    fn moved_leaders_are_retried_fenced_coordinators_fail() {
        let m = marker();
        let not_leader = ResponseError::NotLeaderOrFollower.code();
        let retry = settle(
            &m,
            2,
            &m.partitions,
            &answer(&[("a", 0, 0), ("a", 1, not_leader)]),
        )
        .expect("settle");
        // b-0 is missing from the answer: retried too.
        assert_eq!(retry, vec![("a".to_string(), 1), ("b".to_string(), 0)]);
        let fenced = ResponseError::InvalidProducerEpoch.code();
        assert!(settle(&m, 2, &m.partitions[..1], &answer(&[("a", 0, fenced)])).is_err());
    }
}
