//! ShareFetch (API 78, v1) and ShareAcknowledge (API 79, v1): the share-group (KIP-932) read
//! path on the partition leader. A fetch first applies the acknowledgements it carries, then for
//! each partition of the member's share session acquires the available records (up to
//! `max_records`) under a time-limited lock and returns their batches with the acquired
//! ranges; without records it waits up to `max_wait_ms` for a new high watermark or a released
//! record (`SharePartitionManager::subscribe_changes`), looking again for expired locks every
//! `LOCK_SWEEP`. The share-partition state is
//! `SharePartitionManager`'s; an acknowledgement is answered only once its change is durable in
//! `__share_group_state`. Behind `group.share.enable`.
//!
//! Authorization (Kafka's): READ on the group, READ on each topic.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::share_acknowledge_response::{
    PartitionData as AckPartitionData, ShareAcknowledgeTopicResponse,
};
use kafka_protocol::messages::share_fetch_response::{
    AcquiredRecords, PartitionData, ShareFetchableTopicResponse,
};
use kafka_protocol::messages::{
    ShareAcknowledgeRequest, ShareAcknowledgeResponse, ShareFetchRequest, ShareFetchResponse,
};
use kafka_protocol::protocol::StrBytes;
use strom_authorizer::AclOperation;
use strom_log::{Batches, ReadBound, TopicPartition};
use strom_share::{AcknowledgeType, AcknowledgementBatch, FetchedBatch, SharePartitionConfig};
use uuid::Uuid;

use super::group::share_group::enabled;
use super::RequestContext;
use crate::share_partitions::{reset_of, SessionError, SharePartitionRef, ShareSource};

/// How often a waiting share fetch looks again for records whose acquisition lock ran out
/// (nothing signals an expiry).
const LOCK_SWEEP: Duration = Duration::from_millis(500);

fn session_code(e: SessionError) -> ResponseError {
    match e {
        SessionError::NotFound => ResponseError::ShareSessionNotFound,
        SessionError::InvalidEpoch => ResponseError::InvalidShareSessionEpoch,
    }
}

/// A group's share-partition settings: the broker's, with the group's lock duration.
fn partition_config(ctx: &RequestContext, group: &str) -> SharePartitionConfig {
    let d = SharePartitionConfig::default();
    let image = ctx.broker.metadata.image();
    let group_lock = image
        .group_configs
        .get(group)
        .and_then(|c| c.get("share.record.lock.duration.ms"))
        .and_then(|v| v.parse().ok());
    SharePartitionConfig {
        delivery_count_limit: ctx
            .broker
            .config
            .parsed("group.share.delivery.count.limit")
            .unwrap_or(d.delivery_count_limit),
        max_in_flight_records: ctx
            .broker
            .config
            .parsed("group.share.partition.max.record.locks")
            .unwrap_or(d.max_in_flight_records),
        record_lock_duration_ms: group_lock.unwrap_or(
            ctx.broker
                .config
                .parsed("group.share.record.lock.duration.ms")
                .unwrap_or(d.record_lock_duration_ms),
        ),
        ..d
    }
}

/// The request's acknowledgement batches in the share crate's form; `None` when a type is not
/// one of Kafka's.
fn batches_of(
    batches: impl Iterator<Item = (i64, i64, Vec<i8>)>,
) -> Option<Vec<AcknowledgementBatch>> {
    batches
        .map(|(first_offset, last_offset, types)| {
            let ack_types = types
                .into_iter()
                .map(AcknowledgeType::from_id)
                .collect::<Option<Vec<_>>>()?;
            Some(AcknowledgementBatch {
                first_offset,
                last_offset,
                ack_types,
            })
        })
        .collect()
}

/// What one partition needs from this request.
struct Wanted {
    topic_id: Uuid,
    partition: i32,
    /// The partition's name, if the topic exists and the principal may READ it.
    tp: Result<TopicPartition, ResponseError>,
}

/// Resolves a topic id and checks READ on it.
fn resolve(ctx: &RequestContext, topic_id: Uuid, partition: i32) -> Wanted {
    let image = ctx.broker.metadata.image();
    let tp = match image.topic_by_id(&topic_id) {
        None => Err(ResponseError::UnknownTopicId),
        Some(t) if !ctx.authorized_topic(AclOperation::Read, &t.name) => {
            Err(ResponseError::TopicAuthorizationFailed)
        }
        Some(t) if !t.partitions.contains_key(&partition) => {
            Err(ResponseError::UnknownTopicOrPartition)
        }
        Some(t) => Ok(TopicPartition::new(t.name.clone(), partition)),
    };
    Wanted {
        topic_id,
        partition,
        tp,
    }
}

/// The state of `group` on `tp` led here (loaded on first use).
async fn share_partition(
    ctx: &RequestContext,
    group: &str,
    topic_id: Uuid,
    tp: &TopicPartition,
) -> Result<
    (
        std::sync::Arc<crate::replication::Partition>,
        SharePartitionRef,
    ),
    i16,
> {
    let Some(partition) = ctx.broker.replicas.partition(tp).filter(|p| p.is_leader()) else {
        return Err(ResponseError::NotLeaderOrFollower.code());
    };
    let state = ctx
        .broker
        .share_partitions
        .partition(ShareSource {
            group,
            topic_id,
            tp,
            log: &partition.log,
            leader_epoch: partition.leader_epoch().unwrap_or(0),
            config: partition_config(ctx, group),
            reset: share_reset(ctx, group),
        })
        .await?;
    Ok((partition, state))
}

/// Applies `batches` of `member` to `group`'s state of the partition (`topic_id`, index) led
/// here, durably; the error code.
async fn acknowledge(
    ctx: &RequestContext,
    group: &str,
    member: &str,
    (topic_id, partition): (Uuid, i32),
    batches: Option<Vec<AcknowledgementBatch>>,
) -> i16 {
    let tp = match resolve(ctx, topic_id, partition).tp {
        Ok(tp) => tp,
        Err(e) => return e.code(),
    };
    let Some(batches) = batches else {
        return ResponseError::InvalidRequest.code();
    };
    let state = match share_partition(ctx, group, topic_id, &tp).await {
        Ok((_, state)) => state,
        Err(code) => return code,
    };
    let now = strom_log::now_ms_unsigned();
    let done = ctx
        .broker
        .share_partitions
        .update(&state, |state| {
            let mut changes = state.expire_locks(now);
            match state.acknowledge(member, &batches, now) {
                Ok(acked) => {
                    changes = merge_changes(changes, acked);
                    (0, changes)
                }
                Err(e) => (e.code(), changes),
            }
        })
        .await;
    done.unwrap_or_else(|code| code)
}

/// One write for two successive changes of a share partition: the later batches win.
fn merge_changes(
    earlier: strom_share::StateChanges,
    later: strom_share::StateChanges,
) -> strom_share::StateChanges {
    if earlier.is_empty() {
        return later;
    }
    if later.is_empty() {
        return earlier;
    }
    let mut batches = earlier.state_batches;
    batches.extend(later.state_batches);
    strom_share::StateChanges::received(
        later.state_epoch,
        later.leader_epoch,
        later.start_offset,
        batches,
    )
}

/// The most a share fetch reads of one partition at a time.
const SHARE_READ_MAX: u64 = 1 << 20;

/// The bytes of the batches from the first to the last that holds an acquired record: what the
/// consumer needs (it delivers only acquired offsets), contiguous in the read.
fn acquired_span(bytes: &[u8], acquired: &[AcquiredRecords]) -> std::ops::Range<usize> {
    let (Some(first), Some(last)) = (
        acquired.iter().map(|r| r.first_offset).min(),
        acquired.iter().map(|r| r.last_offset).max(),
    ) else {
        return 0..0;
    };
    let (mut start, mut end, mut at) = (None, 0, 0);
    for b in Batches::new(bytes).map_while(Result::ok) {
        let next = at + b.size();
        if b.last_offset() >= first && b.base_offset() <= last {
            start.get_or_insert(at);
            end = next;
        }
        at = next;
    }
    start.map_or(0..0, |s| s..end)
}

/// The group's `share.isolation.level` is `read_committed`.
fn read_committed(ctx: &RequestContext, group: &str) -> bool {
    let image = ctx.broker.metadata.image();
    image
        .group_configs
        .get(group)
        .and_then(|c| c.get("share.isolation.level"))
        .is_some_and(|v| v == "read_committed")
}

/// The batches read, those of aborted transactions flagged as a read_committed consumer drops
/// them: a producer's batches from its aborted transaction's first offset through its ABORT
/// marker (`AbortedTxn::last_offset`), marker included. The share partition archives them.
fn fetched_batches(bytes: &[u8], aborted: &[strom_log::AbortedTxn]) -> Vec<FetchedBatch> {
    Batches::new(bytes)
        .map_while(Result::ok)
        .map(|b| FetchedBatch {
            first_offset: b.base_offset(),
            last_offset: b.last_offset(),
            aborted: b.is_transactional()
                && aborted.iter().any(|a| {
                    a.producer_id == b.producer_id()
                        && a.first_offset <= b.base_offset()
                        && b.last_offset() <= a.last_offset
                }),
        })
        .collect()
}

fn share_reset(ctx: &RequestContext, group: &str) -> strom_share::AutoOffsetReset {
    let image = ctx.broker.metadata.image();
    reset_of(
        image
            .group_configs
            .get(group)
            .and_then(|c| c.get("share.auto.offset.reset"))
            .map(String::as_str),
    )
}

/// Reads and acquires records of `tp` for `member`: the batches read and the acquired ranges.
async fn acquire(
    ctx: &RequestContext,
    group: &str,
    member: &str,
    topic_id: Uuid,
    tp: &TopicPartition,
    max_bytes: u64,
    max_records: u32,
) -> Result<(Option<Bytes>, Vec<AcquiredRecords>), i16> {
    let (partition, state) = share_partition(ctx, group, topic_id, tp).await?;
    let bound = if read_committed(ctx, group) {
        ReadBound::LastStable
    } else {
        ReadBound::HighWatermark
    };
    let now = strom_log::now_ms_unsigned();
    let unknown = ResponseError::UnknownServerError.code();
    ctx.broker
        .share_partitions
        .update(&state, |state| {
            let expired = state.expire_locks(now);
            if !state.can_acquire_records() {
                return (Ok((None, Vec::new())), expired);
            }
            let offset = state.next_fetch_offset();
            // Capped: only what is acquired is sent, and a share fetch acquires a few hundred
            // records; reading the client's whole max_bytes each time made every fetch cost
            // the size of the backlog. A batch larger than the cap is still read whole.
            let read = partition
                .log
                .read(offset, max_bytes.min(SHARE_READ_MAX), bound, true);
            let bytes = match read {
                Err(_) => return (Err(unknown), expired),
                Ok(read) => match read.records.filter(|s| !s.is_empty()) {
                    None => return (Ok((None, Vec::new())), expired),
                    Some(slice) => match slice.read_to_vec() {
                        Ok(bytes) => bytes,
                        Err(_) => return (Err(unknown), expired),
                    },
                },
            };
            let aborted = match bound {
                ReadBound::LastStable => partition
                    .log
                    .aborted_transactions(offset, partition.log.last_stable_offset()),
                _ => Vec::new(),
            };
            let fetched = fetched_batches(&bytes, &aborted);
            let acquired = state.acquire(member, offset, &fetched, max_records, now);
            let changes = merge_changes(expired, acquired.changes);
            if acquired.records.is_empty() {
                return (Ok((None, Vec::new())), changes);
            }
            let ranges: Vec<AcquiredRecords> = acquired
                .records
                .iter()
                .map(|r| {
                    AcquiredRecords::default()
                        .with_first_offset(r.first_offset)
                        .with_last_offset(r.last_offset)
                        .with_delivery_count(r.delivery_count)
                })
                .collect();
            let sent = acquired_span(&bytes, &ranges);
            (Ok((Some(Bytes::from(bytes).slice(sent)), ranges)), changes)
        })
        .await?
}

/// What both APIs check first: share groups on, a group and member named, READ on the group.
fn admit(
    ctx: &RequestContext,
    group: Option<&kafka_protocol::messages::GroupId>,
    member: Option<&StrBytes>,
) -> Result<(String, String), ResponseError> {
    if !enabled(ctx) {
        return Err(ResponseError::UnsupportedVersion);
    }
    let (Some(group), Some(member)) = (group, member) else {
        return Err(ResponseError::InvalidRequest);
    };
    if !ctx.authorized_group(AclOperation::Read, &group.0) {
        return Err(ResponseError::GroupAuthorizationFailed);
    }
    Ok((group.0.to_string(), member.to_string()))
}

pub(crate) async fn fetch(ctx: RequestContext, req: ShareFetchRequest) -> ShareFetchResponse {
    let failed = |e: ResponseError| ShareFetchResponse::default().with_error_code(e.code());
    let (group, member) = match admit(&ctx, req.group_id.as_ref(), req.member_id.as_ref()) {
        Ok(gm) => gm,
        Err(e) => return failed(e),
    };
    // Kafka: a session is opened before anything acquired in it can be acknowledged.
    let acks_present = req.topics.iter().any(|t| {
        t.partitions
            .iter()
            .any(|p| !p.acknowledgement_batches.is_empty())
    });
    if req.share_session_epoch == 0 && acks_present {
        return failed(ResponseError::InvalidRequest);
    }
    let add: Vec<(Uuid, i32)> = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |p| (t.topic_id, p.partition_index))
        })
        .collect();
    let forget: Vec<(Uuid, i32)> = req
        .forgotten_topics_data
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t.topic_id, *p)))
        .collect();
    let session = ctx.broker.share_partitions.session_step(
        &group,
        &member,
        req.share_session_epoch,
        &add,
        &forget,
    );
    let session = match session {
        Ok(s) => s,
        Err(e) => return failed(session_code(e)),
    };
    // The acknowledgements it carries, before anything is acquired.
    let mut acks: BTreeMap<(Uuid, i32), i16> = BTreeMap::new();
    for t in &req.topics {
        for p in t
            .partitions
            .iter()
            .filter(|p| !p.acknowledgement_batches.is_empty())
        {
            let batches = batches_of(
                p.acknowledgement_batches
                    .iter()
                    .map(|b| (b.first_offset, b.last_offset, b.acknowledge_types.clone())),
            );
            let at = (t.topic_id, p.partition_index);
            let code = acknowledge(&ctx, &group, &member, at, batches).await;
            acks.insert((t.topic_id, p.partition_index), code);
        }
    }
    let config = partition_config(&ctx, &group);
    let closing = req.share_session_epoch == -1;
    if closing {
        ctx.broker
            .share_partitions
            .release_member(&group, &member)
            .await;
    }
    let wanted: Vec<Wanted> = session.iter().map(|(t, p)| resolve(&ctx, *t, *p)).collect();
    let max_bytes = u64::try_from(req.max_bytes.max(1)).unwrap_or(1 << 20);
    let mut max_records = u32::try_from(req.max_records.max(1)).unwrap_or(500);
    let deadline =
        tokio::time::Instant::now() + Duration::from_millis(req.max_wait_ms.max(0) as u64);
    let mut results: BTreeMap<(Uuid, i32), PartitionData> = BTreeMap::new();
    loop {
        // Subscribe before acquiring, so an append or a release between the two still wakes us.
        let mut watches: Vec<_> = wanted
            .iter()
            .filter_map(|w| w.tp.as_ref().ok())
            .filter_map(|tp| ctx.broker.replicas.log(tp))
            .map(|log| log.subscribe_high_watermark())
            .collect();
        let mut released = ctx.broker.share_partitions.subscribe_changes();
        for w in &wanted {
            let key = (w.topic_id, w.partition);
            let base = PartitionData::default().with_partition_index(w.partition);
            let data = match &w.tp {
                Err(e) => Some(base.with_error_code(e.code())),
                Ok(_) if closing => None,
                Ok(tp) => match acquire(
                    &ctx,
                    &group,
                    &member,
                    w.topic_id,
                    tp,
                    max_bytes,
                    max_records,
                )
                .await
                {
                    Err(code) => Some(base.with_error_code(code)),
                    Ok((None, _)) => None,
                    Ok((Some(records), ranges)) => {
                        let count: i64 = ranges
                            .iter()
                            .map(|r: &AcquiredRecords| r.last_offset - r.first_offset + 1)
                            .sum();
                        max_records = max_records
                            .saturating_sub(u32::try_from(count).unwrap_or(u32::MAX))
                            .max(1);
                        Some(
                            base.with_records(Some(records))
                                .with_acquired_records(ranges),
                        )
                    }
                },
            };
            if let Some(d) = data {
                results.insert(key, d);
            }
        }
        let got_records = results.values().any(|d| d.records.is_some());
        if got_records || closing || tokio::time::Instant::now() >= deadline {
            break;
        }
        // Nothing yet: wait for new records (a higher high watermark), released ones (a state
        // change) or, as locks run out without a signal, the next sweep.
        let mut waits: Vec<Pin<Box<dyn Future<Output = ()> + Send + '_>>> = watches
            .iter_mut()
            .map(|w| Box::pin(async move { drop(w.changed().await) }) as Pin<Box<_>>)
            .collect();
        waits.push(Box::pin(async move { drop(released.changed().await) }));
        let sweep = (tokio::time::Instant::now() + LOCK_SWEEP).min(deadline);
        let _ = tokio::time::timeout_at(sweep, super::fetch::wait_any(waits)).await;
    }
    for ((topic, partition), code) in acks {
        let entry = results
            .entry((topic, partition))
            .or_insert_with(|| PartitionData::default().with_partition_index(partition));
        entry.acknowledge_error_code = code;
    }
    let mut by_topic: BTreeMap<Uuid, Vec<PartitionData>> = BTreeMap::new();
    for ((topic, _), data) in results {
        by_topic.entry(topic).or_default().push(data);
    }
    ShareFetchResponse::default()
        .with_acquisition_lock_timeout_ms(
            i32::try_from(config.record_lock_duration_ms).unwrap_or(i32::MAX),
        )
        .with_responses(
            by_topic
                .into_iter()
                .map(|(topic_id, partitions)| {
                    ShareFetchableTopicResponse::default()
                        .with_topic_id(topic_id)
                        .with_partitions(partitions)
                })
                .collect(),
        )
}

pub(crate) async fn acknowledge_request(
    ctx: RequestContext,
    req: ShareAcknowledgeRequest,
) -> ShareAcknowledgeResponse {
    let failed = |e: ResponseError| ShareAcknowledgeResponse::default().with_error_code(e.code());
    let (group, member) = match admit(&ctx, req.group_id.as_ref(), req.member_id.as_ref()) {
        Ok(gm) => gm,
        Err(e) => return failed(e),
    };
    // Kafka: an acknowledgement cannot open a session.
    if req.share_session_epoch == 0 {
        return failed(ResponseError::InvalidShareSessionEpoch);
    }
    let step =
        ctx.broker
            .share_partitions
            .acknowledge_step(&group, &member, req.share_session_epoch);
    if let Err(e) = step {
        return failed(session_code(e));
    }
    let mut responses = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in &t.partitions {
            let batches = batches_of(
                p.acknowledgement_batches
                    .iter()
                    .map(|b| (b.first_offset, b.last_offset, b.acknowledge_types.clone())),
            );
            let at = (t.topic_id, p.partition_index);
            let code = acknowledge(&ctx, &group, &member, at, batches).await;
            partitions.push(
                AckPartitionData::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(code)
                    .with_error_message(
                        (code != 0).then(|| StrBytes::from_static_str("acknowledgement failed")),
                    ),
            );
        }
        responses.push(
            ShareAcknowledgeTopicResponse::default()
                .with_topic_id(t.topic_id)
                .with_partitions(partitions),
        );
    }
    if req.share_session_epoch == -1 {
        ctx.broker
            .share_partitions
            .release_member(&group, &member)
            .await;
    }
    ShareAcknowledgeResponse::default().with_responses(responses)
}
