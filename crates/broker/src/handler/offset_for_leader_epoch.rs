//! OffsetForLeaderEpoch (v2–v4) for consumers checking for log truncation after a leader change.
//! Leader epochs only grow with leadership changes; a single node stays at the epoch it was
//! created with, so the end offset of the current epoch is the log end offset, and a consumer
//! asking for an earlier epoch gets the same (nothing was truncated).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use strom_authorizer::AclOperation;
use strom_log::TopicPartition;

use super::RequestContext;

pub(crate) fn handle(
    ctx: &RequestContext,
    req: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let image = ctx.broker.metadata.image();
    // Kafka: a follower's request needs CLUSTER_ACTION, a client's DESCRIBE on each topic.
    let follower_allowed =
        req.replica_id.0 >= 0 && ctx.authorized_cluster(AclOperation::ClusterAction);
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let name = t.topic.0.to_string();
            let allowed = if req.replica_id.0 >= 0 {
                follower_allowed
            } else {
                ctx.authorized_topic(AclOperation::Describe, &name)
            };
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let res = EpochEndOffset::default()
                        .with_partition(p.partition)
                        .with_leader_epoch(-1)
                        .with_end_offset(-1);
                    if !allowed {
                        return res.with_error_code(ResponseError::TopicAuthorizationFailed.code());
                    }
                    let Some(part) = image
                        .topic(&name)
                        .and_then(|x| x.partitions.get(&p.partition))
                    else {
                        return res.with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    let Some(log) = ctx
                        .broker
                        .replicas
                        .log(&TopicPartition::new(name.clone(), p.partition))
                    else {
                        return res.with_error_code(ResponseError::NotLeaderOrFollower.code());
                    };
                    let current = part.leader_epoch;
                    if p.current_leader_epoch >= 0 && p.current_leader_epoch < current {
                        return res.with_error_code(ResponseError::FencedLeaderEpoch.code());
                    }
                    if p.current_leader_epoch > current {
                        return res.with_error_code(ResponseError::UnknownLeaderEpoch.code());
                    }
                    if p.leader_epoch > current {
                        return res; // UNDEFINED_EPOCH: -1 / -1
                    }
                    // Consumers compare against what they may read: the high watermark.
                    let end = if req.replica_id.0 >= 0 {
                        log.log_end_offset()
                    } else {
                        log.high_watermark()
                    };
                    res.with_leader_epoch(current).with_end_offset(end)
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(t.topic)
                .with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
