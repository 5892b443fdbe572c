//! Produce (v3–v11 served; advertised from v0 because librdkafka only enables compression when
//! Produce v0 is advertised, KAFKA-18659). Two phases: batches are validated and appended in
//! request order inside `handle`; the returned future waits for durability (group commit) before
//! answering. acks=0 gets no response at all. Idempotent batches are checked against the
//! partition's producer state inside the append: a retry gets its original offsets (and waits for
//! their durability), a gap or stale epoch its Kafka error code (`errors.rs`).
//!
//! Only the partition's leader takes writes (NOT_LEADER_OR_FOLLOWER otherwise), stamped with its
//! leader epoch. acks=1 is answered once the leader's copy is durable; acks=all once the high
//! watermark covers the batch (every ISR member holds it durably), refused up front with
//! NOT_ENOUGH_REPLICAS when the ISR is smaller than `min.insync.replicas`, answered
//! NOT_ENOUGH_REPLICAS_AFTER_APPEND when it shrank below that while waiting, REQUEST_TIMED_OUT
//! after the request's `timeout_ms`.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{
    LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ApiKey, BrokerId, ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;
use strom_log::{now_ms, validate_batches, LogError, TopicPartition};

use super::errors::{log_error_code, validation_error_code};
use super::{decode, ApiHandler, HandlerFuture, RequestContext};
use crate::replication::Partition;
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
        partition: Arc<Partition>,
        wait_for: Option<i64>,
        end: i64,
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
    let mut new_leaders: Vec<i32> = Vec::new();
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
            let Some(pimage) = timage.and_then(|t| t.partitions.get(&idx)) else {
                outcomes.push(Outcome::Done(error(
                    v,
                    idx,
                    ResponseError::UnknownTopicOrPartition.code(),
                    None,
                )));
                continue;
            };
            let partition = broker
                .replicas
                .partition(&TopicPartition::new(name.clone(), idx));
            let Some((partition, leader_epoch)) =
                partition.and_then(|p| p.leader_epoch().map(|e| (p, e)))
            else {
                let mut r = error(v, idx, ResponseError::NotLeaderOrFollower.code(), None);
                // KIP-951: tell v10+ clients who leads now, so they skip a Metadata round trip.
                if v >= 10 && pimage.leader >= 0 {
                    r = r.with_current_leader(
                        LeaderIdAndEpoch::default()
                            .with_leader_id(BrokerId(pimage.leader))
                            .with_leader_epoch(pimage.leader_epoch),
                    );
                    if !new_leaders.contains(&pimage.leader) {
                        new_leaders.push(pimage.leader);
                    }
                }
                outcomes.push(Outcome::Done(r));
                continue;
            };
            let log = &partition.log;
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
            if acks == -1 {
                let min_isr = log.config().min_insync_replicas;
                if partition.in_sync_replicas() < usize::try_from(min_isr).unwrap_or(1) {
                    outcomes.push(Outcome::Done(error(
                        v,
                        idx,
                        ResponseError::NotEnoughReplicas.code(),
                        Some(format!(
                            "the in-sync replicas are fewer than min.insync.replicas={min_isr}"
                        )),
                    )));
                    continue;
                }
            }
            match log.append(&validated, leader_epoch) {
                Ok(info) => {
                    let response = PartitionProduceResponse::default()
                        .with_index(idx)
                        .with_base_offset(info.first_offset)
                        .with_log_append_time_ms(info.log_append_time)
                        .with_log_start_offset(if v >= 5 { info.log_start_offset } else { -1 });
                    outcomes.push(Outcome::Durable {
                        wait_for: info.needs_flush.then_some(info.last_offset + 1),
                        end: info.last_offset + 1,
                        partition,
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
    let timeout = Duration::from_millis(u64::try_from(req.timeout_ms).unwrap_or(0));
    Box::pin(async move {
        let mut responses = Vec::with_capacity(topics.len());
        for (name, outcomes) in topics {
            let mut parts = Vec::with_capacity(outcomes.len());
            for o in outcomes {
                parts.push(match o {
                    Outcome::Done(r) => r,
                    Outcome::Durable {
                        partition,
                        wait_for,
                        end,
                        response,
                    } => {
                        let local = match wait_for {
                            Some(offset) if acks != 0 => partition.log.wait_durable(offset).await,
                            _ => Ok(()),
                        };
                        match local {
                            Err(e) => {
                                error(v, response.index, log_error_code(&e), Some(e.to_string()))
                            }
                            Ok(()) if acks == -1 => {
                                wait_replicated(v, &partition, end, timeout, response).await
                            }
                            Ok(()) => response,
                        }
                    }
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
        let node_endpoints = new_leaders
            .iter()
            .filter_map(|id| image.brokers.get(id))
            .map(|b| {
                NodeEndpoint::default()
                    .with_node_id(BrokerId(b.id))
                    .with_host(StrBytes::from_string(b.host.clone()))
                    .with_port(b.port)
                    .with_rack(b.rack.clone().map(StrBytes::from_string))
            })
            .collect();
        Some(Box::new(
            ProduceResponse::default()
                .with_responses(responses)
                .with_node_endpoints(node_endpoints),
        ) as Box<dyn ResponseBody>)
    })
}

/// acks=all: waits until the high watermark covers `end` (every ISR member holds the batch).
async fn wait_replicated(
    v: i16,
    partition: &Partition,
    end: i64,
    timeout: Duration,
    response: PartitionProduceResponse,
) -> PartitionProduceResponse {
    let log = &partition.log;
    if tokio::time::timeout(timeout, log.wait_high_watermark(end))
        .await
        .is_err()
    {
        let code = if partition.is_leader() {
            ResponseError::RequestTimedOut
        } else {
            ResponseError::NotLeaderOrFollower
        };
        return error(
            v,
            response.index,
            code.code(),
            Some("not replicated in time".into()),
        );
    }
    let min_isr = log.config().min_insync_replicas;
    if partition.in_sync_replicas() < usize::try_from(min_isr).unwrap_or(1) {
        // Written and replicated to the ISR, but the ISR is now too small: the client cannot
        // know if it is safe, so it is told (Kafka's NOT_ENOUGH_REPLICAS_AFTER_APPEND).
        return error(
            v,
            response.index,
            ResponseError::NotEnoughReplicasAfterAppend.code(),
            None,
        );
    }
    response
}
