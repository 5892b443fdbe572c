//! Produce (v3–v11 served; advertised from v0 because librdkafka only enables compression when
//! Produce v0 is advertised, KAFKA-18659). Two phases: batches are validated and appended in
//! request order inside `handle`; the returned future waits for durability (group commit) before
//! answering. acks=0 gets no response at all. Idempotent batches are checked against the
//! partition's producer state inside the append: a retry gets its original offsets (and waits for
//! their durability), a gap or stale epoch its Kafka error code (`errors.rs`).

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse};
use strom_log::{now_ms, validate_batches, LogError, PartitionLog, TopicPartition};

use super::errors::{log_error_code, validation_error_code};
use super::{decode, ApiHandler, HandlerFuture, RequestContext};
use crate::server::codec::ResponseBody;

pub(crate) const HANDLER: ApiHandler = ApiHandler {
    api_key: ApiKey::Produce,
    min_version: 0,
    max_version: 11,
    min_served: 3,
    handle: |ctx, body| {
        let req: ProduceRequest = decode(ApiKey::Produce, ctx.api_version, body)?;
        Ok(handle(ctx, req))
    },
};

/// A partition's outcome after phase one: an error now, or an append waiting to become durable.
enum Outcome {
    Done(PartitionProduceResponse),
    Durable {
        log: Arc<PartitionLog>,
        wait_for: Option<i64>,
        response: PartitionProduceResponse,
    },
}

fn error(version: i16, index: i32, code: i16, message: Option<String>) -> PartitionProduceResponse {
    PartitionProduceResponse::default()
        .with_index(index)
        .with_error_code(code)
        .with_base_offset(-1)
        .with_log_append_time_ms(-1)
        .with_log_start_offset(-1)
        // error_message exists from v8.
        .with_error_message(message.filter(|_| version >= 8).map(Into::into))
}

fn handle(ctx: RequestContext, req: ProduceRequest) -> HandlerFuture {
    let broker = &ctx.broker;
    let image = broker.metadata.image();
    let acks = req.acks;
    let v = ctx.api_version;
    let now = now_ms();
    let mut topics: Vec<(kafka_protocol::messages::TopicName, Vec<Outcome>)> =
        Vec::with_capacity(req.topic_data.len());
    for topic in req.topic_data {
        let name = topic.name.0.to_string();
        let timage = image.topic(&name);
        let mut outcomes = Vec::with_capacity(topic.partition_data.len());
        for p in topic.partition_data {
            let idx = p.index;
            if !(acks == -1 || acks == 0 || acks == 1) {
                outcomes.push(Outcome::Done(error(
                    v,
                    idx,
                    ResponseError::InvalidRequiredAcks.code(),
                    None,
                )));
                continue;
            }
            let Some(part) = timage.and_then(|t| t.partitions.get(&idx)) else {
                outcomes.push(Outcome::Done(error(
                    v,
                    idx,
                    ResponseError::UnknownTopicOrPartition.code(),
                    None,
                )));
                continue;
            };
            let Some(log) = broker.replicas.log(&TopicPartition::new(name.clone(), idx)) else {
                outcomes.push(Outcome::Done(error(
                    v,
                    idx,
                    ResponseError::NotLeaderOrFollower.code(),
                    None,
                )));
                continue;
            };
            let Some(records) = p.records else {
                outcomes.push(Outcome::Done(error(
                    v,
                    idx,
                    ResponseError::CorruptMessage.code(),
                    Some("no records".into()),
                )));
                continue;
            };
            let validated = match validate_batches(records, &log.config(), now) {
                Ok(v) => v,
                Err(e) => {
                    tracing::debug!(partition = %log.topic_partition(), error = %e, "rejected produce batch");
                    outcomes.push(Outcome::Done(error(
                        v,
                        idx,
                        validation_error_code(&e),
                        Some(e.to_string()),
                    )));
                    continue;
                }
            };
            match log.append(&validated, part.leader_epoch) {
                Ok(info) => {
                    let response = PartitionProduceResponse::default()
                        .with_index(idx)
                        .with_base_offset(info.first_offset)
                        .with_log_append_time_ms(info.log_append_time)
                        .with_log_start_offset(if v >= 5 { info.log_start_offset } else { -1 });
                    outcomes.push(Outcome::Durable {
                        log,
                        wait_for: info.needs_flush.then_some(info.last_offset + 1),
                        response,
                    });
                }
                Err(e) => {
                    // Sequence and epoch refusals are the client's business, not the broker's.
                    if matches!(e, LogError::Producer(_)) {
                        tracing::debug!(partition = %log.topic_partition(), error = %e, "idempotent batch refused");
                    } else {
                        tracing::warn!(partition = %log.topic_partition(), error = %e, "append failed");
                    }
                    outcomes.push(Outcome::Done(error(
                        v,
                        idx,
                        log_error_code(&e),
                        Some(e.to_string()),
                    )));
                }
            }
        }
        topics.push((topic.name, outcomes));
    }
    Box::pin(async move {
        let mut responses = Vec::with_capacity(topics.len());
        for (name, outcomes) in topics {
            let mut parts = Vec::with_capacity(outcomes.len());
            for o in outcomes {
                parts.push(match o {
                    Outcome::Done(r) => r,
                    Outcome::Durable {
                        log,
                        wait_for,
                        response,
                    } => match wait_for {
                        Some(offset) if acks != 0 => match log.wait_durable(offset).await {
                            Ok(()) => response,
                            Err(e) => {
                                error(v, response.index, log_error_code(&e), Some(e.to_string()))
                            }
                        },
                        _ => response,
                    },
                });
            }
            responses.push(
                TopicProduceResponse::default()
                    .with_name(name)
                    .with_partition_responses(parts),
            );
        }
        if acks == 0 {
            return None;
        }
        Some(
            Box::new(ProduceResponse::default().with_responses(responses)) as Box<dyn ResponseBody>,
        )
    })
}
