//! Fetch (v4–v16): reads below the high watermark (READ_COMMITTED: below the last stable offset,
//! with the aborted transactions of the range so the consumer can drop their batches); long-polls until `min_bytes` are available or
//! `max_wait_ms` passes, woken by high-watermark changes of the partitions asked for (never by a
//! timer). Sessionless (KIP-227 answered with session id 0: clients then send full requests).
//!
//! Only a partition's leader answers (NOT_LEADER_OR_FOLLOWER elsewhere; the requester's
//! `current_leader_epoch` checked as Kafka does). A follower's fetch (replica id set) reads up to
//! the log end, reports the follower's progress to the partition's `LeaderState` (which may move
//! the high watermark or ask the controller to add it to the ISR), long-polls on log-end changes,
//! and gets a diverging epoch instead of records when its log forked from ours (KIP-320).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, EpochEndOffset, FetchableTopicResponse, LeaderIdAndEpoch, NodeEndpoint,
    PartitionData,
};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, ProducerId, TopicName};
use kafka_protocol::protocol::Encodable;
use kafka_protocol::protocol::StrBytes;
use strom_authorizer::AclOperation;
use strom_log::{FileSlice, LogError, ReadBound, TopicPartition};
use uuid::Uuid;

use super::errors::log_error_code;
use super::leader_hints::LeaderHints;
use super::RequestContext;
use crate::metadata::MetadataImage;
use crate::server::codec::ResponseBody;
use crate::server::splice_buf::{placeholder, SpliceBuf};

/// One requested partition, resolved against metadata.
struct Wanted {
    topic_index: usize,
    partition: i32,
    fetch_offset: i64,
    max_bytes: i32,
    tp: Option<TopicPartition>,
    unknown_code: i16,
    current_leader_epoch: i32,
    last_fetched_epoch: i32,
    /// Decided before reading: an error code, or the follower's log diverged at (epoch, end).
    early: Option<Early>,
    /// The partition's leader and leader epoch, when this broker is not it (KIP-951 hint).
    leader_hint: Option<(i32, i32)>,
    /// The topic's counters, for a consumer's fetch from this leader (bytes out).
    counters: Option<Arc<strom_metrics::TopicCounters>>,
}

#[derive(Debug, Clone, Copy)]
enum Early {
    Error(i16),
    Diverging(i32, i64),
}

/// Fetch, under the consumer's `consumer_byte_rate`: a response that takes the client over its
/// quota is not sent; an empty one with the throttle time is, and the connection is muted for
/// it, as Kafka does (KIP-219). Followers are not subject to client quotas.
pub(crate) async fn handle(ctx: RequestContext, req: FetchRequest) -> FetchResponseWithFiles {
    let replica_id = if ctx.api_version >= 15 {
        req.replica_state.replica_id.0
    } else {
        req.replica_id.0
    };
    let out = read_and_wait(ctx.clone(), req).await;
    let quota = &ctx.broker.quotas.fetch;
    if replica_id >= 0 || !quota.quotas_enabled() {
        return out;
    }
    let bytes: u64 = out.files.iter().map(FileSlice::len).sum();
    let bytes = usize::try_from(bytes).unwrap_or(usize::MAX);
    let throttle_ms = ctx.record_quota(quota, bytes);
    if throttle_ms == 0 {
        return out;
    }
    // The records are not sent, so they do not count.
    let now = strom_log::now_ms_unsigned();
    let client_id = ctx.client_id.as_ref().map_or("", |c| c.as_str());
    let user = crate::quota_managers::quota_user(&ctx.session);
    quota.unrecord(user, client_id, bytes as f64, now);
    ctx.mute_for(throttle_ms);
    FetchResponseWithFiles {
        response: FetchResponse::default()
            .with_throttle_time_ms(i32::try_from(throttle_ms).unwrap_or(i32::MAX))
            .with_session_id(0),
        files: Vec::new(),
    }
}

/// The fetch itself: resolve, check, read, and long-poll until `min_bytes` or `max_wait_ms`.
async fn read_and_wait(ctx: RequestContext, req: FetchRequest) -> FetchResponseWithFiles {
    let broker = ctx.broker.clone();
    let v = ctx.api_version;
    if v >= 7 && (req.session_id != 0 || req.session_epoch > 0) {
        // We keep no sessions: tell the client to start over with a full, sessionless fetch.
        return FetchResponseWithFiles {
            response: FetchResponse::default()
                .with_error_code(ResponseError::FetchSessionIdNotFound.code())
                .with_session_id(0),
            files: Vec::new(),
        };
    }
    let image = broker.metadata.image();
    let (topics, mut wanted) = resolve(&image, &req, v);
    let response_max = req.max_bytes.clamp(0, broker.config.fetch_max_bytes).max(1) as u64;
    let deadline =
        tokio::time::Instant::now() + Duration::from_millis(req.max_wait_ms.max(0) as u64);
    let replica_id = if v >= 15 {
        req.replica_state.replica_id.0
    } else {
        req.replica_id.0
    };
    let follower = FollowerClaim {
        replica_id,
        broker_epoch: (v >= 15).then_some(req.replica_state.replica_epoch),
    };
    authorize(&ctx, &topics, &mut wanted, replica_id);
    check_leadership(&ctx, &image, &mut wanted, follower);
    let hints = hint_leaders(&ctx, &image, &mut wanted);
    let node_endpoints = if v >= 16 {
        hints.endpoints(&image, &broker.endpoints, &ctx.session.listener)
    } else {
        Vec::new()
    };
    let bound = if replica_id >= 0 {
        ReadBound::LogEnd
    } else if req.isolation_level == READ_COMMITTED {
        ReadBound::LastStable
    } else {
        ReadBound::HighWatermark
    };
    loop {
        // Subscribe before reading so an append between the read and the wait still wakes us.
        // Followers wait for new records; consumers for the high watermark to cover them.
        let mut watches: Vec<_> = wanted
            .iter()
            .filter(|w| w.early.is_none())
            .filter_map(|w| w.tp.as_ref().and_then(|tp| broker.replicas.log(tp)))
            .map(|l| {
                if replica_id >= 0 {
                    l.subscribe_log_end()
                } else {
                    l.subscribe_high_watermark()
                }
            })
            .collect();
        let (parts, bytes) = read_all(&ctx, &wanted, response_max, bound);
        let now = tokio::time::Instant::now();
        if bytes >= req.min_bytes.max(0) as u64
            || now >= deadline
            || watches.is_empty()
            || wanted.iter().any(|w| w.early.is_some())
            || parts.iter().any(|(p, _)| p.error_code != 0)
        {
            return build(v, topics, &wanted, parts, node_endpoints);
        }
        let changed = wait_any(
            watches
                .iter_mut()
                .map(|w| Box::pin(w.changed()) as Pin<Box<dyn Future<Output = _> + Send>>)
                .collect(),
        );
        if tokio::time::timeout_at(deadline, changed).await.is_err() {
            let (parts, _) = read_all(&ctx, &wanted, response_max, bound);
            return build(v, topics, &wanted, parts, node_endpoints);
        }
    }
}

/// The request's topics (by name, or by id from v13) and partitions, resolved against `image`.
fn resolve(
    image: &MetadataImage,
    req: &FetchRequest,
    v: i16,
) -> (Vec<(Option<String>, Uuid)>, Vec<Wanted>) {
    let mut topics: Vec<(Option<String>, Uuid)> = Vec::new();
    let mut wanted = Vec::new();
    let unknown_code = if v >= 13 {
        ResponseError::UnknownTopicId.code()
    } else {
        ResponseError::UnknownTopicOrPartition.code()
    };
    for t in &req.topics {
        let (name, id) = if v >= 13 {
            (
                image.topic_by_id(&t.topic_id).map(|x| x.name.clone()),
                t.topic_id,
            )
        } else {
            let n = t.topic.0.to_string();
            let id = image.topic(&n).map_or(Uuid::nil(), |x| x.id);
            (Some(n), id)
        };
        let topic_index = topics.len();
        for p in &t.partitions {
            let exists = name
                .as_ref()
                .and_then(|n| image.topic(n))
                .is_some_and(|ti| ti.partitions.contains_key(&p.partition));
            wanted.push(Wanted {
                topic_index,
                partition: p.partition,
                fetch_offset: p.fetch_offset,
                max_bytes: p.partition_max_bytes,
                tp: exists
                    .then(|| TopicPartition::new(name.clone().unwrap_or_default(), p.partition)),
                unknown_code,
                current_leader_epoch: p.current_leader_epoch,
                last_fetched_epoch: if v >= 12 { p.last_fetched_epoch } else { -1 },
                early: None,
                leader_hint: None,
                counters: None,
            });
        }
        topics.push((name, id));
    }
    (topics, wanted)
}

/// Kafka's Fetch authorization: a follower's fetch needs CLUSTER_ACTION on the cluster, a
/// consumer's READ on each topic; a refused partition answers TOPIC_AUTHORIZATION_FAILED
/// whether or not its topic exists, and is neither read nor waited on.
fn authorize(
    ctx: &RequestContext,
    topics: &[(Option<String>, Uuid)],
    wanted: &mut [Wanted],
    replica_id: i32,
) {
    let allowed: Vec<bool> = if replica_id >= 0 {
        let ok = ctx.authorized_cluster(AclOperation::ClusterAction);
        vec![ok; topics.len()]
    } else {
        topics
            .iter()
            .map(|(name, _)| {
                // An unknown topic id has no name to authorize: it stays UNKNOWN_TOPIC_ID.
                name.as_deref()
                    .is_none_or(|n| ctx.authorized_topic(AclOperation::Read, n))
            })
            .collect()
    };
    for w in wanted.iter_mut() {
        if !allowed.get(w.topic_index).copied().unwrap_or(false) {
            w.tp = None;
            w.unknown_code = ResponseError::TopicAuthorizationFailed.code();
        }
    }
}

/// KIP-951 (v12+): partitions refused because another broker leads them name that leader.
fn hint_leaders(ctx: &RequestContext, image: &MetadataImage, wanted: &mut [Wanted]) -> LeaderHints {
    let mut hints = LeaderHints::default();
    if ctx.api_version < 12 {
        return hints;
    }
    for w in wanted.iter_mut() {
        if !matches!(w.early, Some(Early::Error(_))) {
            continue;
        }
        let Some(part) = w.tp.as_ref().and_then(|tp| {
            image
                .topic(&tp.topic)
                .and_then(|t| t.partitions.get(&tp.partition))
        }) else {
            continue;
        };
        w.leader_hint = hints.note(part, ctx.broker.config.node_id);
    }
    hints
}

/// Decides, before any read, what only the partition's leader can answer: leadership and leader
/// epoch, a follower's divergence, and a follower's progress (which moves the high watermark).
fn check_leadership(
    ctx: &RequestContext,
    image: &MetadataImage,
    wanted: &mut [Wanted],
    follower: FollowerClaim,
) {
    let now = strom_log::now_ms();
    let replica_id = follower.replica_id;
    // Who the follower is, checked once per request; whether it replicates each partition, below.
    let proven = if replica_id >= 0 {
        follower.check_broker(ctx, image)
    } else {
        Ok(())
    };
    let mut refused = 0usize;
    for w in wanted.iter_mut() {
        let Some(tp) = &w.tp else { continue };
        let Some(partition) = ctx.broker.replicas.partition(tp) else {
            w.early = Some(Early::Error(ResponseError::NotLeaderOrFollower.code()));
            continue;
        };
        if let Err(e) = partition.check_leader_epoch(w.current_leader_epoch) {
            w.early = Some(Early::Error(e.code()));
            continue;
        }
        if replica_id < 0 {
            w.counters = Some(partition.topic_metrics.clone());
            continue;
        }
        if proven.is_err() || !follower.replicates(image, tp) {
            // A fetch that only claims to be a follower's must not move the high watermark.
            refused += 1;
            w.early = Some(Early::Error(ResponseError::NotLeaderOrFollower.code()));
            continue;
        }
        let leader_end = partition
            .log
            .end_offset_for_leader_epoch(w.last_fetched_epoch);
        if let Some((epoch, end)) = strom_cluster::replication::diverging_epoch(
            w.fetch_offset,
            w.last_fetched_epoch,
            leader_end,
        ) {
            w.early = Some(Early::Diverging(epoch, end));
            continue;
        }
        if let Some(req) = partition.on_follower_fetch(replica_id, w.fetch_offset, now) {
            crate::replication::send_isr_change(&ctx.broker.metadata, partition, req);
        }
    }
    if refused > 0 {
        let why = proven.err().unwrap_or("not a replica of the partitions");
        tracing::warn!(replica_id, peer = %ctx.session.peer, partitions = refused, why, "refusing a replica fetch");
    }
}

/// Who a fetch says it comes from: a consumer (replica id < 0) or a follower replica, which
/// must prove its current broker epoch (KIP-903, Fetch v15+).
#[derive(Debug, Clone, Copy)]
struct FollowerClaim {
    replica_id: i32,
    broker_epoch: Option<i64>,
}

impl FollowerClaim {
    /// A follower's fetch is served only from another broker, at the broker epoch of its
    /// current registration. Strom brokers replicate with Fetch v15+; an older follower fetch
    /// cannot prove its epoch.
    fn check_broker(
        &self,
        ctx: &RequestContext,
        image: &MetadataImage,
    ) -> Result<(), &'static str> {
        let Some(epoch) = self.broker_epoch else {
            return Err("a replica fetch needs Fetch v15+ (KIP-903 broker epoch)");
        };
        if self.replica_id == ctx.broker.config.node_id {
            return Err("the replica id is this broker's");
        }
        match image.brokers.get(&self.replica_id) {
            Some(b) if crate::replication::broker_epoch(&b.registration.incarnation) == epoch => {
                Ok(())
            }
            Some(_) => Err("stale or wrong broker epoch"),
            None => Err("not a registered broker"),
        }
    }

    /// Whether the follower is an assigned replica of `tp`.
    fn replicates(&self, image: &MetadataImage, tp: &TopicPartition) -> bool {
        image
            .topic(&tp.topic)
            .and_then(|t| t.partitions.get(&tp.partition))
            .is_some_and(|p| p.replicas.contains(&self.replica_id))
    }
}

/// `isolation_level` of a transactional consumer.
const READ_COMMITTED: i8 = 1;

/// Completes when any of the futures does.
pub(super) async fn wait_any<T>(mut futs: Vec<Pin<Box<dyn Future<Output = T> + Send + '_>>>) {
    std::future::poll_fn(|cx| {
        for f in futs.iter_mut() {
            if f.as_mut().poll(cx).is_ready() {
                return Poll::Ready(());
            }
        }
        Poll::Pending
    })
    .await
}

/// Reads every wanted partition within `response_max` bytes; returns the partitions' data (with
/// the file range of their records) and the bytes of records found.
fn read_all(
    ctx: &RequestContext,
    wanted: &[Wanted],
    response_max: u64,
    bound: ReadBound,
) -> (Vec<(PartitionData, Option<FileSlice>)>, u64) {
    let mut total = 0u64;
    let mut out = Vec::with_capacity(wanted.len());
    for w in wanted {
        let base = PartitionData::default()
            .with_partition_index(w.partition)
            .with_high_watermark(-1)
            .with_last_stable_offset(-1)
            .with_preferred_read_replica(BrokerId(-1));
        let part = match &w.tp {
            None => (base.with_error_code(w.unknown_code), None),
            Some(tp) => match w.early {
                Some(early) => (early_answer(ctx, tp, w, early, base), None),
                None => {
                    let limit = (w.max_bytes.max(0) as u64).min(response_max.saturating_sub(total));
                    // Like Kafka: the first partition with data may exceed the limits by one
                    // whole batch, so a batch larger than max_bytes never stalls a consumer.
                    let min_one = total == 0;
                    let part = read_one(ctx, tp, w, limit, min_one, bound, base);
                    total += part.0.records.as_ref().map_or(0, |r| r.len() as u64);
                    part
                }
            },
        };
        out.push(part);
    }
    (out, total)
}

/// `log_start_offset` exists from v5.
fn log_start(ctx: &RequestContext, offset: i64) -> i64 {
    if ctx.api_version >= 5 {
        offset
    } else {
        -1
    }
}

/// A partition decided before reading: an error (with the leader hint, and the offsets for
/// OFFSET_OUT_OF_RANGE), or a follower's diverging epoch.
fn early_answer(
    ctx: &RequestContext,
    tp: &TopicPartition,
    w: &Wanted,
    early: Early,
    base: PartitionData,
) -> PartitionData {
    let log = ctx.broker.replicas.log(tp);
    match early {
        Early::Error(code) => {
            let base = match w.leader_hint {
                Some((leader, epoch)) => base.with_current_leader(
                    LeaderIdAndEpoch::default()
                        .with_leader_id(BrokerId(leader))
                        .with_leader_epoch(epoch),
                ),
                None => base,
            };
            let base = match log {
                Some(l) if code == ResponseError::OffsetOutOfRange.code() => base
                    .with_high_watermark(l.high_watermark())
                    .with_log_start_offset(log_start(ctx, l.log_start_offset())),
                _ => base,
            };
            base.with_error_code(code)
        }
        Early::Diverging(epoch, end) => base
            .with_high_watermark(log.map_or(-1, |l| l.high_watermark()))
            .with_diverging_epoch(
                EpochEndOffset::default()
                    .with_epoch(epoch)
                    .with_end_offset(end),
            )
            .with_records(Some(Bytes::new())),
    }
}

/// Reads one partition up to `limit` bytes below `bound`. Records stay in the segment file: a
/// placeholder of the right length goes into the response and the connection sendfiles the
/// range in its place.
fn read_one(
    ctx: &RequestContext,
    tp: &TopicPartition,
    w: &Wanted,
    limit: u64,
    min_one: bool,
    bound: ReadBound,
    base: PartitionData,
) -> (PartitionData, Option<FileSlice>) {
    let Some(log) = ctx.broker.replicas.log(tp) else {
        return (
            base.with_error_code(ResponseError::NotLeaderOrFollower.code()),
            None,
        );
    };
    let info = match log.read(w.fetch_offset, limit, bound, min_one) {
        Ok(info) => info,
        Err(e @ LogError::OffsetOutOfRange { .. }) => {
            tracing::debug!(partition = %tp, error = %e, "fetch out of range");
            return (
                base.with_error_code(ResponseError::OffsetOutOfRange.code())
                    .with_high_watermark(log.high_watermark())
                    .with_last_stable_offset(log.last_stable_offset())
                    .with_log_start_offset(log_start(ctx, log.log_start_offset()))
                    .with_records(Some(Bytes::new())),
                None,
            );
        }
        Err(e) => {
            tracing::warn!(partition = %tp, error = %e, "fetch failed");
            return (base.with_error_code(log_error_code(&e)), None);
        }
    };
    let (records, file) = match info.records {
        None => (Bytes::new(), None),
        Some(slice) => match placeholder(slice.len() as usize) {
            Some(p) => (p, Some(slice)),
            None => match slice.read_to_vec() {
                Ok(v) => (Bytes::from(v), None),
                Err(e) => {
                    tracing::error!(partition = %tp, error = %e, "fetch read failed");
                    return (base.with_error_code(log_error_code(&e)), None);
                }
            },
        },
    };
    let stable = log.last_stable_offset();
    let aborted = if bound == ReadBound::LastStable {
        log.aborted_transactions(w.fetch_offset, stable)
            .into_iter()
            .map(|a| {
                AbortedTransaction::default()
                    .with_producer_id(ProducerId(a.producer_id))
                    .with_first_offset(a.first_offset)
            })
            .collect()
    } else {
        Vec::new()
    };
    (
        base.with_high_watermark(info.high_watermark)
            .with_last_stable_offset(stable)
            .with_log_start_offset(log_start(ctx, info.log_start_offset))
            .with_aborted_transactions(Some(aborted))
            .with_records(Some(records)),
        file,
    )
}

/// A Fetch response whose records are file ranges, in encoding order.
#[derive(Debug)]
pub(crate) struct FetchResponseWithFiles {
    response: FetchResponse,
    files: Vec<FileSlice>,
}

impl ResponseBody for FetchResponseWithFiles {
    fn encode_body(&self, buf: &mut SpliceBuf, version: i16) -> anyhow::Result<()> {
        self.response.encode(buf, version)
    }
    fn file_slices(&self) -> &[FileSlice] {
        &self.files
    }
}

fn build(
    v: i16,
    topics: Vec<(Option<String>, Uuid)>,
    wanted: &[Wanted],
    parts: Vec<(PartitionData, Option<FileSlice>)>,
    node_endpoints: Vec<NodeEndpoint>,
) -> FetchResponseWithFiles {
    // Partitions are grouped by topic in request order, so encoding order is `wanted` order.
    let mut files = Vec::new();
    let mut responses: Vec<FetchableTopicResponse> = topics
        .into_iter()
        .map(|(name, id)| {
            let t = FetchableTopicResponse::default();
            if v < 13 {
                t.with_topic(TopicName(StrBytes::from_string(name.unwrap_or_default())))
            } else {
                t.with_topic_id(id)
            }
        })
        .collect();
    for (w, (p, file)) in wanted.iter().zip(parts) {
        if let (Some(c), Some(r)) = (&w.counters, &p.records) {
            c.record_fetch(r.len() as u64);
        }
        if let Some(t) = responses.get_mut(w.topic_index) {
            t.partitions.push(p);
            files.extend(file);
        }
    }
    FetchResponseWithFiles {
        response: FetchResponse::default()
            .with_session_id(0)
            .with_responses(responses)
            .with_node_endpoints(node_endpoints),
        files,
    }
}
