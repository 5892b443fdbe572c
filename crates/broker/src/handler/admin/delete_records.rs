//! DeleteRecords (v0–v2): advances each partition's log start offset (offset -1 means the high
//! watermark) and answers with the new low watermark once the log start offsets are checkpointed,
//! so a restart never resurrects deleted records. Whole segments below go at the next retention
//! pass.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use strom_log::TopicPartition;

use super::super::errors::log_error_code;
use strom_authorizer::AclOperation;

use crate::handler::RequestContext;
use strom_coordinator::is_internal_topic;

pub(crate) async fn handle(
    ctx: RequestContext,
    req: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let image = ctx.broker.metadata.image();
    let mut changed = false;
    let mut topics: Vec<DeleteRecordsTopicResult> = req
        .topics
        .into_iter()
        .map(|t| {
            let name = t.name.0.to_string();
            // Kafka: DELETE on the topic, before whether it exists.
            let allowed = ctx.authorized_topic(AclOperation::Delete, &name);
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let res = DeleteRecordsPartitionResult::default()
                        .with_partition_index(p.partition_index)
                        .with_low_watermark(-1);
                    if !allowed {
                        return res.with_error_code(ResponseError::TopicAuthorizationFailed.code());
                    }
                    if image
                        .topic(&name)
                        .and_then(|t| t.partitions.get(&p.partition_index))
                        .is_none()
                    {
                        return res.with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    }
                    if is_internal_topic(&name) {
                        return res.with_error_code(ResponseError::InvalidTopicException.code());
                    }
                    let tp = TopicPartition::new(name.clone(), p.partition_index);
                    let Some(log) = ctx.broker.replicas.log(&tp) else {
                        return res.with_error_code(ResponseError::NotLeaderOrFollower.code());
                    };
                    let offset = if p.offset == -1 {
                        log.high_watermark()
                    } else {
                        p.offset
                    };
                    if offset < 0 {
                        return res.with_error_code(ResponseError::OffsetOutOfRange.code());
                    }
                    match log.delete_records_before(offset) {
                        Ok(low) => {
                            changed = true;
                            res.with_low_watermark(low)
                        }
                        Err(e) => res.with_error_code(log_error_code(&e)),
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    if changed {
        let logs = ctx.broker.replicas.log_manager().clone();
        let written = tokio::task::spawn_blocking(move || logs.write_log_start_checkpoints()).await;
        let failed = match written {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(log_error_code(&e)),
            Err(_) => Some(ResponseError::KafkaStorageError.code()),
        };
        if let Some(code) = failed {
            tracing::error!("persisting log start offsets after DeleteRecords failed");
            for t in &mut topics {
                for p in &mut t.partitions {
                    if p.error_code == 0 {
                        p.error_code = code;
                        p.low_watermark = -1;
                    }
                }
            }
        }
    }
    DeleteRecordsResponse::default().with_topics(topics)
}
