//! OffsetFetch (v1–v9, v8+ batching groups) and OffsetDelete (v0). A partition with no commit
//! answers offset -1 and empty metadata, as Kafka does; `topics = null` (v2+) means all.

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
use strom_coordinator::{FetchedOffsets, GroupError};

use super::{code, wire};
use crate::handler::RequestContext;

fn fetch(
    ctx: &RequestContext,
    group: &str,
    topics: Option<Vec<(String, Vec<i32>)>>,
) -> Result<FetchedOffsets, GroupError> {
    ctx.broker
        .coordinators
        .groups
        .fetch_offsets(group, topics.as_deref())
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
                    Err(e) => out.with_error_code(code(&e)),
                    Ok(found) => out.with_topics(
                        found
                            .into_iter()
                            .map(|(t, parts)| {
                                OffsetFetchResponseTopics::default()
                                    .with_name(TopicName(wire(t)))
                                    .with_partitions(
                                        parts
                                            .into_iter()
                                            .map(|(p, o)| {
                                                let (off, epoch, meta) = o
                                                    .map_or((-1, -1, String::new()), |o| {
                                                        (o.offset, o.leader_epoch, o.metadata)
                                                    });
                                                OffsetFetchResponsePartitions::default()
                                                    .with_partition_index(p)
                                                    .with_committed_offset(off)
                                                    .with_committed_leader_epoch(epoch)
                                                    .with_metadata(Some(wire(meta)))
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
                        .with_partitions(parts.into_iter().map(|(p, o)| part(p, o, 0)).collect())
                })
                .collect(),
        ),
        Err(e) => {
            let c = code(&e);
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
                .collect(),
        ),
    }
}
