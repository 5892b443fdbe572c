//! WriteTxnMarkers (v0–v1): another broker's transaction coordinator asks this node to end a
//! transaction in the partitions it leads. Two phases as Produce: in request order, each marker
//! is encoded as the coordinator's own control batch (`coordinators::encode_marker`) and
//! appended to every named partition this node leads (NOT_LEADER_OR_FOLLOWER otherwise,
//! UNKNOWN_TOPIC_OR_PARTITION for a partition that does not exist); the response waits until
//! each is complete as an acks=all produce (durable, under the high watermark; else
//! NOT_ENOUGH_REPLICAS / _AFTER_APPEND / REQUEST_TIMED_OUT), with one error code per partition.
//!
//! A marker in `__consumer_offsets` also resolves the producer's pending transactional offsets
//! in the groups coordinated here (Kafka's `GroupCoordinator.onTransactionCompleted`), once it
//! is durable, before the answer.
//!
//! The partitions' producer state refuses a marker of an older producer epoch than the
//! producer's (INVALID_PRODUCER_EPOCH) or from an older coordinator epoch than the producer's
//! last marker (TRANSACTION_COORDINATOR_FENCED).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{WriteTxnMarkersRequest, WriteTxnMarkersResponse};
use strom_coordinator::OFFSETS_TOPIC;

use strom_authorizer::AclOperation;

use super::super::{HandlerFuture, RequestContext};
use crate::coordinators::{append_marker, encode_marker, REPLICATION_TIMEOUT};
use crate::handler::errors::{append_error_code, leader_write_error_code};
use crate::replication::PendingAppend;
use crate::server::codec::ResponseBody;

/// One partition after phase one.
enum Outcome {
    Done(i16),
    Pending(PendingAppend),
}

/// One marker of the request after phase one: (producer id, commit, per topic its partitions).
type MarkerOutcome = (i64, bool, Vec<(String, Vec<(i32, Outcome)>)>);

pub(crate) fn handle(ctx: RequestContext, req: WriteTxnMarkersRequest) -> HandlerFuture {
    let broker = ctx.broker.clone();
    let image = broker.metadata.image();
    let mut markers: Vec<MarkerOutcome> = Vec::with_capacity(req.markers.len());
    // Kafka: only brokers (CLUSTER_ACTION on the cluster) write markers.
    let allowed = ctx.authorized_cluster(AclOperation::ClusterAction);
    for m in req.markers {
        if !allowed {
            let denied = ResponseError::ClusterAuthorizationFailed.code();
            let topics = m
                .topics
                .into_iter()
                .map(|t| {
                    let parts = t
                        .partition_indexes
                        .iter()
                        .map(|&p| (p, Outcome::Done(denied)))
                        .collect();
                    (t.name.0.to_string(), parts)
                })
                .collect();
            markers.push((m.producer_id.0, m.transaction_result, topics));
            continue;
        }
        let batch = encode_marker(
            m.producer_id.0,
            m.producer_epoch,
            m.coordinator_epoch,
            m.transaction_result,
        );
        let mut topics = Vec::with_capacity(m.topics.len());
        for t in m.topics {
            let topic = t.name.0.to_string();
            let parts = t
                .partition_indexes
                .iter()
                .map(|&p| {
                    let outcome = match &batch {
                        Err(_) => Outcome::Done(ResponseError::UnknownServerError.code()),
                        Ok(b) => match append_marker(&broker.leaders, &image, &topic, p, b) {
                            Ok(pending) => Outcome::Pending(pending),
                            Err(e) => {
                                tracing::debug!(topic, partition = p, error = %e, "WriteTxnMarkers refused");
                                Outcome::Done(leader_write_error_code(&e))
                            }
                        },
                    };
                    (p, outcome)
                })
                .collect();
            topics.push((topic, parts));
        }
        markers.push((m.producer_id.0, m.transaction_result, topics));
    }
    Box::pin(async move {
        let mut results = Vec::with_capacity(markers.len());
        for (producer_id, commit, topics) in markers {
            let mut topic_results = Vec::with_capacity(topics.len());
            for (topic, parts) in topics {
                let mut partitions = Vec::with_capacity(parts.len());
                for (p, outcome) in parts {
                    let code = match outcome {
                        Outcome::Done(code) => code,
                        Outcome::Pending(pending) => {
                            match pending.wait_replicated(REPLICATION_TIMEOUT).await {
                                Ok(()) => {
                                    if topic == OFFSETS_TOPIC {
                                        // Never fails: an unloaded partition replays the marker.
                                        let _ = broker
                                            .coordinators
                                            .groups
                                            .complete_transactional_offsets(p, producer_id, commit)
                                            .await;
                                    }
                                    0
                                }
                                Err(e) => append_error_code(&e),
                            }
                        }
                    };
                    partitions.push(
                        WritableTxnMarkerPartitionResult::default()
                            .with_partition_index(p)
                            .with_error_code(code),
                    );
                }
                topic_results.push(
                    WritableTxnMarkerTopicResult::default()
                        .with_name(kafka_protocol::messages::TopicName(topic.into()))
                        .with_partitions(partitions),
                );
            }
            results.push(
                WritableTxnMarkerResult::default()
                    .with_producer_id(kafka_protocol::messages::ProducerId(producer_id))
                    .with_topics(topic_results),
            );
        }
        Some(
            Box::new(WriteTxnMarkersResponse::default().with_markers(results))
                as Box<dyn ResponseBody>,
        )
    })
}
