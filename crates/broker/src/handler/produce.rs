//! Produce (v3–v12 served; advertised from v0 because librdkafka only enables compression when
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
//!
//! Transactions (KIP-890 part 1): a producer's first transactional batch in a partition (no open
//! transaction of its own there) is appended only after its transaction coordinator confirmed
//! the partition is in the transaction (`txn_verifier`), with the log's verification guard
//! (`strom_log::VerificationGuard`). Such a request appends after that round trip, and holds
//! its connection's next request until it has appended, so the producer's order is kept.
//! Produce v12 means Transactions V2 (KIP-890 part 2): the leader adds the partition to the
//! transaction instead of asking whether it is in.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{
    LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, ProduceRequest, ProduceResponse, TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use strom_log::{
    now_ms, validate_batches, LogError, TopicPartition, ValidatedBatches, VerificationGuard,
};

use super::errors::{log_error_code, validation_error_code};
use super::{decode, ApiHandler, HandlerFuture, RequestContext};
use crate::metadata::MetadataImage;
use crate::replication::Partition;
use crate::server::codec::ResponseBody;
use crate::txn_verifier::{self, TxnCheck, TxnProducer};

pub(crate) const HANDLER: ApiHandler = ApiHandler {
    api_key: ApiKey::Produce,
    min_version: 0,
    max_version: 12,
    min_served: 3,
    handle: |ctx, body| {
        let req: ProduceRequest = decode(ApiKey::Produce, ctx.api_version, body)?;
        Ok(handle(ctx, req))
    },
};

/// A partition after the checks: an error now, or batches ready to append (maybe after their
/// transaction's verification).
enum Checked {
    Done(PartitionProduceResponse),
    Ready(Ready),
}

/// A partition after the append: an error, or an append waiting to become durable.
enum Outcome {
    Done(PartitionProduceResponse),
    Durable {
        partition: Arc<Partition>,
        wait_for: Option<i64>,
        end: i64,
        response: PartitionProduceResponse,
    },
}

/// Batches that passed every check but the append itself.
struct Ready {
    idx: i32,
    partition: Arc<Partition>,
    leader_epoch: i32,
    validated: ValidatedBatches,
    /// KIP-890: the guard of a verification this append waits for, and the partition's place
    /// in the verification's answer.
    guard: Option<(VerificationGuard, usize)>,
}

type TopicOutcomes<T> = Vec<(TopicName, Vec<T>)>;

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
    // Produce v12 (Transactions V2) must add the partition whatever the setting: the client
    // relies on the leader for it.
    let verify_enabled = broker.config.transaction_partition_verification || v >= 12;
    let mut topics: TopicOutcomes<Checked> = Vec::with_capacity(req.topic_data.len());
    let mut new_leaders: Vec<i32> = Vec::new();
    // The producer whose transaction must be verified, and the partitions to ask about.
    let mut verifying: Option<(i64, i16)> = None;
    let mut to_verify: Vec<(String, i32)> = Vec::new();
    for topic in req.topic_data {
        let name = topic.name.0.to_string();
        let timage = image.topic(&name);
        let mut outcomes = Vec::with_capacity(topic.partition_data.len());
        for p in topic.partition_data {
            let idx = p.index;
            if !(acks == -1 || acks == 0 || acks == 1) {
                outcomes.push(Checked::Done(error(
                    v,
                    idx,
                    ResponseError::InvalidRequiredAcks.code(),
                    None,
                )));
                continue;
            }
            let Some(pimage) = timage.and_then(|t| t.partitions.get(&idx)) else {
                outcomes.push(Checked::Done(error(
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
                outcomes.push(Checked::Done(r));
                continue;
            };
            let log = &partition.log;
            let Some(records) = p.records else {
                outcomes.push(Checked::Done(error(
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
                    outcomes.push(Checked::Done(error(
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
                    outcomes.push(Checked::Done(error(
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
            let guard = match transactional_producer(&req.transactional_id, &validated) {
                Some(producer) if verify_enabled => {
                    let guard = log.start_txn_verification(producer.0);
                    if guard.is_some() {
                        match verifying {
                            None => verifying = Some(producer),
                            Some(p) if p != producer => {
                                outcomes.push(Checked::Done(error(
                                    v,
                                    idx,
                                    ResponseError::InvalidProducerIdMapping.code(),
                                    Some("one producer per transactional request".into()),
                                )));
                                continue;
                            }
                            Some(_) => {}
                        }
                        to_verify.push((name.clone(), idx));
                    }
                    guard.map(|g| (g, to_verify.len() - 1))
                }
                _ => None,
            };
            outcomes.push(Checked::Ready(Ready {
                idx,
                partition,
                leader_epoch,
                validated,
                guard,
            }));
        }
        topics.push((topic.name, outcomes));
    }
    let timeout = Duration::from_millis(u64::try_from(req.timeout_ms).unwrap_or(0));
    let Some((producer_id, epoch)) = verifying else {
        let topics = append_all(topics, v, verify_enabled, &[]);
        return Box::pin(respond(topics, v, acks, timeout, new_leaders, image));
    };
    let release = ctx.hold_connection();
    let broker = ctx.broker.clone();
    let transactional_id = req
        .transactional_id
        .map(|t| t.0.to_string())
        .unwrap_or_default();
    // Spawned so the verification runs now, not when the connection's writer reaches this
    // response; the next request on the connection is read once the append is done.
    let appended = tokio::spawn(async move {
        let producer = TxnProducer {
            transactional_id: &transactional_id,
            producer_id,
            epoch,
        };
        let check = TxnCheck::for_request(v >= 12);
        let codes = txn_verifier::verify(&broker, check, producer, &to_verify).await;
        let topics = append_all(topics, v, verify_enabled, &codes);
        drop(release);
        topics
    });
    Box::pin(async move {
        match appended.await {
            Ok(topics) => respond(topics, v, acks, timeout, new_leaders, image).await,
            Err(e) => {
                tracing::error!(error = %e, "a verified produce failed; no response");
                None
            }
        }
    })
}

/// The transactional producer of a request's batches: its (producer id, epoch) when the first
/// batch is transactional and the request names a transactional id.
fn transactional_producer(
    transactional_id: &Option<TransactionalId>,
    validated: &ValidatedBatches,
) -> Option<(i64, i16)> {
    transactional_id.as_ref().filter(|t| !t.0.is_empty())?;
    let b = validated.first_batch()?;
    (b.is_transactional() && b.producer_id() >= 0).then(|| (b.producer_id(), b.producer_epoch()))
}

/// Appends every ready partition, in request order; `verified` is the coordinator's code for
/// each partition that was verified (non-zero: not appended).
fn append_all(
    topics: TopicOutcomes<Checked>,
    v: i16,
    verify: bool,
    verified: &[i16],
) -> TopicOutcomes<Outcome> {
    let outcome = |c: Checked| match c {
        Checked::Done(r) => Outcome::Done(r),
        Checked::Ready(r) => match r.guard.and_then(|(_, slot)| verified.get(slot)) {
            Some(&code) if code != 0 => {
                let (code, message) = txn_verifier::for_produce(code);
                Outcome::Done(error(v, r.idx, code, message))
            }
            _ => append(&r, v, verify),
        },
    };
    topics
        .into_iter()
        .map(|(name, checked)| (name, checked.into_iter().map(outcome).collect()))
        .collect()
}

/// One partition's append (leader, epoch-stamped).
fn append(r: &Ready, v: i16, verify: bool) -> Outcome {
    let log = &r.partition.log;
    let appended = if verify {
        log.append_verified(&r.validated, r.leader_epoch, r.guard.map(|(g, _)| g))
    } else {
        log.append(&r.validated, r.leader_epoch)
    };
    match appended {
        Ok(info) => {
            let response = PartitionProduceResponse::default()
                .with_index(r.idx)
                .with_base_offset(info.first_offset)
                .with_log_append_time_ms(info.log_append_time)
                .with_log_start_offset(if v >= 5 { info.log_start_offset } else { -1 });
            Outcome::Durable {
                wait_for: info.needs_flush.then_some(info.last_offset + 1),
                end: info.last_offset + 1,
                partition: r.partition.clone(),
                response,
            }
        }
        Err(e) => {
            // Sequence and epoch refusals are the client's business, not the broker's.
            if matches!(e, LogError::Producer(_)) {
                tracing::debug!(partition = %log.topic_partition(), error = %e, "idempotent batch refused");
            } else {
                tracing::warn!(partition = %log.topic_partition(), error = %e, "append failed");
            }
            Outcome::Done(error(v, r.idx, log_error_code(&e), Some(e.to_string())))
        }
    }
}

/// Phase two: waits for each append's durability (and replication for acks=all) and builds the
/// response.
async fn respond(
    topics: TopicOutcomes<Outcome>,
    v: i16,
    acks: i16,
    timeout: Duration,
    new_leaders: Vec<i32>,
    image: Arc<MetadataImage>,
) -> Option<Box<dyn ResponseBody>> {
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
                        Err(e) => error(v, response.index, log_error_code(&e), Some(e.to_string())),
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
                .with_node_id(BrokerId(b.id()))
                .with_host(StrBytes::from_string(b.registration.host.clone()))
                .with_port(b.registration.port)
                .with_rack(b.registration.rack.clone().map(StrBytes::from_string))
        })
        .collect();
    Some(Box::new(
        ProduceResponse::default()
            .with_responses(responses)
            .with_node_endpoints(node_endpoints),
    ) as Box<dyn ResponseBody>)
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
