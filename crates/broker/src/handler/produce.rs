//! Produce (v3–v12 served; advertised from v0 because librdkafka only enables compression when
//! Produce v0 is advertised, KAFKA-18659). Two phases: batches are validated and appended in
//! request order inside `handle`; the returned future waits for durability (group commit) before
//! answering. acks=0 gets no response at all. Idempotent batches are checked against the
//! partition's producer state inside the append: a retry gets its original offsets (and waits for
//! their durability), a gap or stale epoch its Kafka error code (`errors.rs`). A batch refused
//! for some of its records (v8+) names them in `record_errors` (KIP-467), so the client fails
//! those records and not the whole batch alike.
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
use kafka_protocol::messages::produce_request::PartitionProduceData;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, LeaderIdAndEpoch, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{BrokerId, ProduceRequest, ProduceResponse, TransactionalId};
use strom_log::{
    now_ms, validate_batches, LogError, ValidatedBatches, ValidationError, VerificationGuard,
};

use strom_authorizer::{AclOperation, ResourceType};

use super::errors::{append_error_code, validation_error_code};
use super::leader_hints::LeaderHints;
use super::{HandlerFuture, RequestContext};
use crate::metadata::{MetadataImage, TopicImage};
use crate::replication::{AppendError, Partition, PendingAppend, TxnVerification};
use crate::server::codec::ResponseBody;
use crate::txn_verifier::{self, TxnCheck, TxnProducer};
use strom_coordinator::is_internal_topic;

/// A partition after the checks: an error now, or batches ready to append (maybe after their
/// transaction's verification).
enum Checked {
    Done(PartitionProduceResponse),
    Ready(Ready),
}

/// A partition after the append: an error, or an append to complete.
enum Outcome {
    Done(PartitionProduceResponse),
    Appended(PendingAppend, PartitionProduceResponse),
}

/// Batches that passed every check but the append itself.
struct Ready {
    idx: i32,
    partition: Arc<Partition>,
    validated: ValidatedBatches,
    /// KIP-890: the guard of a verification this append waits for, and the partition's place
    /// in the verification's answer.
    guard: Option<(VerificationGuard, usize)>,
}

type TopicOutcomes<T> = Vec<(kafka_protocol::messages::TopicName, Vec<T>)>;

/// What phase one decided for a whole request.
struct Phase1 {
    topics: TopicOutcomes<Checked>,
    hints: LeaderHints,
    /// The transaction to verify before appending, if any.
    verify: Option<ToVerify>,
}

/// The producer (id, epoch) whose transaction must be verified first, and the partitions to ask
/// the coordinator about.
type ToVerify = ((i64, i16), Vec<(String, i32)>);

/// KIP-951 hints and what naming their endpoints takes (the client's listener).
struct Hints {
    hints: LeaderHints,
    image: Arc<MetadataImage>,
    endpoints: crate::endpoints::Endpoints,
    listener: String,
}

/// What every partition's checks share.
struct Checks<'a> {
    ctx: &'a RequestContext,
    image: &'a MetadataImage,
    acks: i16,
    now: i64,
    /// KIP-890 part 1 applies (Produce v12 always: the client relies on the leader).
    verify_enabled: bool,
    transactional_id: &'a Option<TransactionalId>,
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

/// KIP-467 (v8+): each record that refused the batch, by index, so the client fails those
/// records with the partition's error and the rest of the batch apart from them.
fn with_record_errors(
    r: PartitionProduceResponse,
    version: i16,
    e: &ValidationError,
) -> PartitionProduceResponse {
    let ValidationError::Records { errors, .. } = e else {
        return r;
    };
    if version < 8 {
        return r;
    }
    r.with_record_errors(
        errors
            .iter()
            .map(|e| {
                BatchIndexAndErrorMessage::default()
                    .with_batch_index(e.batch_index)
                    .with_batch_index_error_message(Some(e.message.clone().into()))
            })
            .collect(),
    )
}

pub(crate) fn handle(ctx: RequestContext, req: ProduceRequest) -> HandlerFuture {
    let image = ctx.broker.metadata.image();
    let (v, acks) = (ctx.api_version, req.acks);
    // `producer_byte_rate`: the request's record bytes count against the client's quota; the
    // answer carries the throttle time and the connection is muted for it (KIP-219).
    let bytes: usize = req
        .topic_data
        .iter()
        .flat_map(|t| &t.partition_data)
        .map(|p| p.records.as_ref().map_or(0, |r| r.len()))
        .sum();
    let throttle_ms = ctx.record_quota(&ctx.broker.quotas.produce, bytes);
    let timeout = Duration::from_millis(u64::try_from(req.timeout_ms).unwrap_or(0));
    let checks = Checks {
        ctx: &ctx,
        image: &image,
        acks,
        now: now_ms(),
        verify_enabled: ctx.broker.config.transaction_partition_verification || v >= 12,
        transactional_id: &req.transactional_id,
    };
    let Phase1 {
        topics,
        hints,
        verify,
    } = checks.run(req.topic_data);
    let verify_enabled = checks.verify_enabled;
    let hints = Hints {
        hints,
        image,
        endpoints: ctx.broker.endpoints.clone(),
        listener: ctx.session.listener.clone(),
    };
    let Some(((producer_id, epoch), to_verify)) = verify else {
        let topics = append_all(topics, v, verify_enabled, &[]);
        ctx.mute_for(throttle_ms);
        return Box::pin(respond(topics, v, acks, timeout, hints, throttle_ms));
    };
    let release = ctx.hold_connection();
    ctx.mute_for(throttle_ms);
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
            Ok(topics) => respond(topics, v, acks, timeout, hints, throttle_ms).await,
            Err(e) => {
                tracing::error!(error = %e, "a verified produce failed; no response");
                None
            }
        }
    })
}

impl Checks<'_> {
    /// Phase one, in request order: every partition checked, nothing appended yet.
    fn run(
        &self,
        topic_data: Vec<kafka_protocol::messages::produce_request::TopicProduceData>,
    ) -> Phase1 {
        let mut out = Phase1 {
            topics: Vec::with_capacity(topic_data.len()),
            hints: LeaderHints::default(),
            verify: None,
        };
        // Kafka's order: the transactional id first (WRITE on it), then WRITE on each topic,
        // before whether the topic exists.
        let txn_denied = self
            .transactional_id
            .as_ref()
            .filter(|t| !t.0.is_empty())
            .is_some_and(|t| {
                !self
                    .ctx
                    .authorized(AclOperation::Write, ResourceType::TransactionalId, &t.0)
            });
        for topic in topic_data {
            let name = topic.name.0.to_string();
            let timage = self.image.topic(&name);
            let denied = if txn_denied {
                Some(ResponseError::TransactionalIdAuthorizationFailed)
            } else if !self.ctx.authorized_topic(AclOperation::Write, &name) {
                Some(ResponseError::TopicAuthorizationFailed)
            } else {
                None
            };
            let outcomes = topic
                .partition_data
                .into_iter()
                .map(|p| match denied {
                    Some(e) => Checked::Done(error(self.ctx.api_version, p.index, e.code(), None)),
                    None => self.partition(&name, timage, p, &mut out),
                })
                .collect();
            out.topics.push((topic.name, outcomes));
        }
        out
    }

    /// One partition's checks: acks, existence, leadership (with a KIP-951 hint), the batches'
    /// validation, min.insync.replicas for acks=all, and whether its transaction needs
    /// verifying first.
    fn partition(
        &self,
        name: &str,
        timage: Option<&TopicImage>,
        p: PartitionProduceData,
        out: &mut Phase1,
    ) -> Checked {
        let (v, idx) = (self.ctx.api_version, p.index);
        let fail = |e: ResponseError, message: Option<String>| {
            Checked::Done(error(v, idx, e.code(), message))
        };
        if !matches!(self.acks, -1..=1) {
            return fail(ResponseError::InvalidRequiredAcks, None);
        }
        let Some(pimage) = timage.and_then(|t| t.partitions.get(&idx)) else {
            return fail(ResponseError::UnknownTopicOrPartition, None);
        };
        if is_internal_topic(name) {
            // Kafka's rule: only the broker writes its coordinators' state.
            return fail(
                ResponseError::InvalidTopicException,
                Some(format!("Cannot append to internal topic {name}")),
            );
        }
        let partition = self
            .ctx
            .broker
            .replicas
            .partition(&strom_log::TopicPartition::new(name, idx))
            .filter(|p| p.is_leader());
        let Some(partition) = partition else {
            let mut r = error(v, idx, ResponseError::NotLeaderOrFollower.code(), None);
            // KIP-951: tell v10+ clients who leads now, so they skip a Metadata round trip.
            if v >= 10 {
                if let Some((leader, epoch)) =
                    out.hints.note(pimage, self.ctx.broker.config.node_id)
                {
                    r = r.with_current_leader(
                        LeaderIdAndEpoch::default()
                            .with_leader_id(BrokerId(leader))
                            .with_leader_epoch(epoch),
                    );
                }
            }
            return Checked::Done(r);
        };
        let log = &partition.log;
        let Some(records) = p.records else {
            return fail(ResponseError::CorruptMessage, Some("no records".into()));
        };
        let validated = match validate_batches(records, &log.config(), self.now) {
            Ok(v) => v,
            Err(e) => {
                tracing::debug!(partition = %log.topic_partition(), principal = %self.ctx.session.principal_text(), client_id = ?self.ctx.client_id, error = %e, "rejected produce batch");
                let r = error(v, idx, validation_error_code(&e), Some(e.to_string()));
                return Checked::Done(with_record_errors(r, v, &e));
            }
        };
        if self.acks == -1 && partition.check_min_insync().is_err() {
            let min_isr = log.config().min_insync_replicas;
            return fail(
                ResponseError::NotEnoughReplicas,
                Some(format!(
                    "the in-sync replicas are fewer than min.insync.replicas={min_isr}"
                )),
            );
        }
        let guard = match transactional_producer(self.transactional_id, &validated) {
            Some(producer) if self.verify_enabled => match log.start_txn_verification(producer.0) {
                None => None,
                Some(guard) => {
                    let (verifying, parts) =
                        out.verify.get_or_insert_with(|| (producer, Vec::new()));
                    if *verifying != producer {
                        return fail(
                            ResponseError::InvalidProducerIdMapping,
                            Some("one producer per transactional request".into()),
                        );
                    }
                    parts.push((name.to_string(), idx));
                    Some((guard, parts.len() - 1))
                }
            },
            _ => None,
        };
        Checked::Ready(Ready {
            idx,
            partition,
            validated,
            guard,
        })
    }
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
        Checked::Ready(r) => match r.guard.as_ref().and_then(|(_, slot)| verified.get(*slot)) {
            Some(&code) if code != 0 => {
                let (code, message) = txn_verifier::for_produce(code);
                Outcome::Done(error(v, r.idx, code, message))
            }
            _ => append(r, v, verify),
        },
    };
    topics
        .into_iter()
        .map(|(name, checked)| (name, checked.into_iter().map(outcome).collect()))
        .collect()
}

/// One partition's append, as its leader.
fn append(r: Ready, v: i16, verify: bool) -> Outcome {
    let verification = if verify {
        TxnVerification::Guarded(r.guard.map(|(g, _)| g))
    } else {
        TxnVerification::Off
    };
    match r.partition.append_as_leader(&r.validated, verification) {
        Ok(pending) => {
            let info = pending.info();
            let response = PartitionProduceResponse::default()
                .with_index(r.idx)
                .with_base_offset(info.first_offset)
                .with_log_append_time_ms(info.log_append_time)
                .with_log_start_offset(if v >= 5 { info.log_start_offset } else { -1 });
            Outcome::Appended(pending, response)
        }
        Err(e) => {
            let tp = r.partition.log.topic_partition();
            // Sequence and epoch refusals are the client's business, not the broker's.
            if matches!(
                e,
                AppendError::Log(LogError::Producer(_)) | AppendError::NotLeader
            ) {
                tracing::debug!(partition = %tp, error = %e, "append refused");
            } else {
                tracing::warn!(partition = %tp, error = %e, "append failed");
            }
            Outcome::Done(error(v, r.idx, append_error_code(&e), Some(e.to_string())))
        }
    }
}

/// Phase two: waits for each append to complete as `acks` asks (durable here for acks=1,
/// replicated to the ISR for acks=all) and builds the response.
async fn respond(
    topics: TopicOutcomes<Outcome>,
    v: i16,
    acks: i16,
    timeout: Duration,
    hints: Hints,
    throttle_ms: u64,
) -> Option<Box<dyn ResponseBody>> {
    let Hints {
        hints,
        image,
        endpoints,
        listener,
    } = hints;
    let mut responses = Vec::with_capacity(topics.len());
    for (name, outcomes) in topics {
        let mut parts = Vec::with_capacity(outcomes.len());
        for o in outcomes {
            parts.push(match o {
                Outcome::Done(r) => r,
                Outcome::Appended(pending, response) => {
                    let done = match acks {
                        0 => Ok(()),
                        1 => pending.wait_durable().await.map_err(AppendError::Log),
                        _ => pending.wait_replicated(timeout).await,
                    };
                    match done {
                        Ok(()) => response,
                        Err(e @ AppendError::Log(_)) => error(
                            v,
                            response.index,
                            append_error_code(&e),
                            Some(e.to_string()),
                        ),
                        Err(e @ AppendError::TimedOut | e @ AppendError::NotLeader) => error(
                            v,
                            response.index,
                            append_error_code(&e),
                            Some("not replicated in time".into()),
                        ),
                        Err(e) => error(v, response.index, append_error_code(&e), None),
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
    Some(Box::new(
        ProduceResponse::default()
            .with_responses(responses)
            .with_throttle_time_ms(i32::try_from(throttle_ms).unwrap_or(i32::MAX))
            .with_node_endpoints(hints.endpoints(&image, &endpoints, &listener)),
    ) as Box<dyn ResponseBody>)
}
