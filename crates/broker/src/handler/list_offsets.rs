//! ListOffsets (v1–v8): earliest (-2), latest (-1), max timestamp (-3), earliest local (-4), or
//! the first offset whose timestamp is ≥ T. With isolation level READ_COMMITTED (v2+), latest is
//! the last stable offset.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use strom_authorizer::AclOperation;
use strom_log::TopicPartition;

use super::errors::log_error_code;
use super::RequestContext;

const EARLIEST: i64 = -2;
const LATEST: i64 = -1;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;

pub(crate) fn handle(ctx: &RequestContext, req: ListOffsetsRequest) -> ListOffsetsResponse {
    // isolation_level exists from v2.
    let read_committed = ctx.api_version >= 2 && req.isolation_level == 1;
    let image = ctx.broker.metadata.image();
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let name = t.name.0.to_string();
            // Kafka: DESCRIBE on the topic, checked before whether it exists.
            let allowed = ctx.authorized_topic(AclOperation::Describe, &name);
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let resp = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_timestamp(-1)
                        .with_offset(-1)
                        .with_leader_epoch(-1);
                    if !allowed {
                        return resp
                            .with_error_code(ResponseError::TopicAuthorizationFailed.code());
                    }
                    let Some(part) = image
                        .topic(&name)
                        .and_then(|t| t.partitions.get(&p.partition_index))
                    else {
                        return resp.with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    let Some(log) = ctx
                        .broker
                        .replicas
                        .log(&TopicPartition::new(name.clone(), p.partition_index))
                    else {
                        return resp.with_error_code(ResponseError::NotLeaderOrFollower.code());
                    };
                    // leader_epoch exists from v4.
                    let resp = if ctx.api_version >= 4 {
                        resp.with_leader_epoch(part.leader_epoch)
                    } else {
                        resp
                    };
                    let found = match p.timestamp {
                        EARLIEST | EARLIEST_LOCAL => Ok(Some((log.log_start_offset(), -1))),
                        LATEST if read_committed => Ok(Some((log.last_stable_offset(), -1))),
                        LATEST => Ok(Some((log.high_watermark(), -1))),
                        MAX_TIMESTAMP => log.max_timestamp_offset(),
                        ts if ts >= 0 => log.offset_for_timestamp(ts),
                        _ => return resp.with_error_code(ResponseError::InvalidRequest.code()),
                    };
                    match found {
                        Ok(Some((offset, ts))) => resp.with_offset(offset).with_timestamp(ts),
                        Ok(None) => resp,
                        Err(e) => resp.with_error_code(log_error_code(&e)),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}
