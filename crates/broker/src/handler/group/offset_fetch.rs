//! OffsetFetch (v1–v9, v8+ batching groups) and OffsetDelete (v0). A partition with no commit
//! answers offset -1 and empty metadata, as Kafka does; `topics = null` (v2+) means all.
//! Fetching needs DESCRIBE on the group and on each topic; deleting DELETE on the group and READ
//! on each topic.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    OffsetDeleteRequest, OffsetDeleteResponse, OffsetFetchRequest, OffsetFetchResponse, TopicName,
};
use strom_authorizer::AclOperation;
use strom_coordinator::{FetchedOffsets, OffsetAndMetadata};

use super::{code, wire};
use crate::handler::RequestContext;

/// Per topic, per partition: the committed offset (if any) and the partition's error code.
type Answered = Vec<(String, Vec<(i32, Option<OffsetAndMetadata>, i16)>)>;

/// A group's committed offsets as `principal` may see them (Kafka's rules): DESCRIBE on the
/// group, else the group's error is GROUP_AUTHORIZATION_FAILED; DESCRIBE on each topic asked for,
/// else its partitions answer TOPIC_AUTHORIZATION_FAILED; all topics (`None`) lists only the
/// describable ones. `Err` is the group-level error code.
fn fetch(
    ctx: &RequestContext,
    group: &str,
    topics: Option<Vec<(String, Vec<i32>)>>,
) -> Result<Answered, i16> {
    if !ctx.authorized_group(AclOperation::Describe, group) {
        return Err(ResponseError::GroupAuthorizationFailed.code());
    }
    let describable = |t: &str| ctx.authorized_topic(AclOperation::Describe, t);
    let (allowed, denied): (Option<Vec<_>>, Vec<_>) = match topics {
        None => (None, Vec::new()),
        Some(ts) => {
            let (a, d): (Vec<_>, Vec<_>) = ts.into_iter().partition(|(t, _)| describable(t));
            (Some(a), d)
        }
    };
    let found: FetchedOffsets = match &allowed {
        // Nothing left to ask the coordinator: still report a missing coordinator (Kafka).
        Some(a) if a.is_empty() && !denied.is_empty() => Vec::new(),
        _ => ctx
            .broker
            .coordinators
            .groups
            .fetch_offsets(group, allowed.as_deref())
            .map_err(|e| code(&e))?,
    };
    let denied_code = ResponseError::TopicAuthorizationFailed.code();
    Ok(found
        .into_iter()
        .filter(|(t, _)| allowed.is_some() || describable(t))
        .map(|(t, parts)| (t, parts.into_iter().map(|(p, o)| (p, o, 0)).collect()))
        .chain(denied.into_iter().map(|(t, parts)| {
            let parts = parts.into_iter().map(|p| (p, None, denied_code)).collect();
            (t, parts)
        }))
        .collect())
}

pub(crate) fn handle(ctx: &RequestContext, req: OffsetFetchRequest) -> OffsetFetchResponse {
    let v = ctx.api_version;
    if v >= 8 {
        let groups = req
            .groups
            .iter()
            .map(|g| {
                let topics = g.topics.as_ref().map(|ts| {
                    ts.iter()
                        .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
                        .collect()
                });
                let out = OffsetFetchResponseGroup::default().with_group_id(g.group_id.clone());
                match fetch(ctx, g.group_id.0.as_str(), topics) {
                    Err(c) => out.with_error_code(c),
                    Ok(found) => out.with_topics(
                        found
                            .into_iter()
                            .map(|(t, parts)| {
                                OffsetFetchResponseTopics::default()
                                    .with_name(TopicName(wire(t)))
                                    .with_partitions(
                                        parts
                                            .into_iter()
                                            .map(|(p, o, err)| {
                                                let (off, epoch, meta) = o
                                                    .map_or((-1, -1, String::new()), |o| {
                                                        (o.offset, o.leader_epoch, o.metadata)
                                                    });
                                                OffsetFetchResponsePartitions::default()
                                                    .with_partition_index(p)
                                                    .with_committed_offset(off)
                                                    .with_committed_leader_epoch(epoch)
                                                    .with_metadata(Some(wire(meta)))
                                                    .with_error_code(err)
                                            })
                                            .collect(),
                                    )
                            })
                            .collect(),
                    ),
                }
            })
            .collect();
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let topics: Option<Vec<(String, Vec<i32>)>> = req.topics.as_ref().map(|ts| {
        ts.iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
            .collect()
    });
    let part = |p: i32, o: Option<strom_coordinator::OffsetAndMetadata>, err: i16| {
        let (off, epoch, meta) = o.map_or((-1, -1, String::new()), |o| {
            (o.offset, o.leader_epoch, o.metadata)
        });
        OffsetFetchResponsePartition::default()
            .with_partition_index(p)
            .with_committed_offset(off)
            // committed_leader_epoch exists from v5.
            .with_committed_leader_epoch(if v >= 5 { epoch } else { -1 })
            .with_metadata(Some(wire(meta)))
            .with_error_code(err)
    };
    match fetch(ctx, req.group_id.0.as_str(), topics.clone()) {
        Ok(found) => OffsetFetchResponse::default().with_topics(
            found
                .into_iter()
                .map(|(t, parts)| {
                    OffsetFetchResponseTopic::default()
                        .with_name(TopicName(wire(t)))
                        .with_partitions(
                            parts
                                .into_iter()
                                .map(|(p, o, err)| part(p, o, err))
                                .collect(),
                        )
                })
                .collect(),
        ),
        Err(c) => {
            if v >= 2 {
                // error_code at the top exists from v2.
                return OffsetFetchResponse::default().with_error_code(c);
            }
            OffsetFetchResponse::default().with_topics(
                topics
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(t, parts)| {
                        OffsetFetchResponseTopic::default()
                            .with_name(TopicName(wire(t)))
                            .with_partitions(parts.into_iter().map(|p| part(p, None, c)).collect())
                    })
                    .collect(),
            )
        }
    }
}

pub(crate) async fn handle_delete(
    ctx: RequestContext,
    req: OffsetDeleteRequest,
) -> OffsetDeleteResponse {
    let topics: Vec<(String, Vec<i32>)> = req
        .topics
        .iter()
        .map(|t| {
            (
                t.name.0.to_string(),
                t.partitions.iter().map(|p| p.partition_index).collect(),
            )
        })
        .collect();
    // Kafka: DELETE on the group, READ on each topic (refused topics are left alone).
    if !ctx.authorized_group(AclOperation::Delete, &req.group_id.0) {
        return OffsetDeleteResponse::default()
            .with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    let (topics, denied): (Vec<_>, Vec<_>) = topics
        .into_iter()
        .partition(|(t, _)| ctx.authorized_topic(AclOperation::Read, t));
    let denied = denied.into_iter().map(|(t, parts)| {
        let code = ResponseError::TopicAuthorizationFailed.code();
        let parts = parts
            .into_iter()
            .map(|p| {
                OffsetDeleteResponsePartition::default()
                    .with_partition_index(p)
                    .with_error_code(code)
            })
            .collect();
        OffsetDeleteResponseTopic::default()
            .with_name(TopicName(wire(t)))
            .with_partitions(parts)
    });
    let denied: Vec<_> = denied.collect();
    match ctx
        .broker
        .coordinators
        .groups
        .delete_offsets(req.group_id.0.as_str(), &topics)
        .await
    {
        Err(e) => OffsetDeleteResponse::default().with_error_code(code(&e)),
        Ok(out) => OffsetDeleteResponse::default().with_topics(
            out.into_iter()
                .map(|(t, parts)| {
                    OffsetDeleteResponseTopic::default()
                        .with_name(TopicName(wire(t)))
                        .with_partitions(
                            parts
                                .into_iter()
                                .map(|(p, r)| {
                                    OffsetDeleteResponsePartition::default()
                                        .with_partition_index(p)
                                        .with_error_code(r.err().as_ref().map_or(0, code))
                                })
                                .collect(),
                        )
                })
                .chain(denied)
                .collect(),
        ),
    }
}
