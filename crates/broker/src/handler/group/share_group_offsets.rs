//! The share-group offset APIs of KIP-932, answered by the group's coordinator:
//! DescribeShareGroupOffsets (90: each share partition's start offset, SPSO),
//! AlterShareGroupOffsets (91: a new start offset, `kafka-share-groups --reset-offsets`) and
//! DeleteShareGroupOffsets (92: forget a topic's share-partition state). The state itself is the
//! share coordinator's, reached through `SharePartitionManager` (`SharePersister`).
//!
//! Kafka's rules: Alter and Delete need an empty group (NON_EMPTY_GROUP); authorization is
//! DESCRIBE (describe), READ (alter) or DELETE (delete) on the group and DESCRIBE/READ on each
//! topic; an unknown topic is UNKNOWN_TOPIC_OR_PARTITION. Describing with no topics lists every
//! share partition of the group that has state.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_share_group_offsets_response::{
    AlterShareGroupOffsetsResponsePartition, AlterShareGroupOffsetsResponseTopic,
};
use kafka_protocol::messages::delete_share_group_offsets_response::DeleteShareGroupOffsetsResponseTopic;
use kafka_protocol::messages::describe_share_group_offsets_response::{
    DescribeShareGroupOffsetsResponseGroup, DescribeShareGroupOffsetsResponsePartition,
    DescribeShareGroupOffsetsResponseTopic,
};
use kafka_protocol::messages::{
    AlterShareGroupOffsetsRequest, AlterShareGroupOffsetsResponse, DeleteShareGroupOffsetsRequest,
    DeleteShareGroupOffsetsResponse, DescribeShareGroupOffsetsRequest,
    DescribeShareGroupOffsetsResponse, TopicName,
};
use strom_authorizer::AclOperation;
use strom_coordinator::SharePartitionKey;
use uuid::Uuid;

use super::share_group::enabled;
use super::{code, wire};
use crate::handler::RequestContext;

/// The group-level checks: share groups on, `operation` on the group, owned here, and (for
/// Alter/Delete) empty.
fn admit(
    ctx: &RequestContext,
    group: &str,
    operation: AclOperation,
    must_be_empty: bool,
) -> Result<(), i16> {
    if !enabled(ctx) {
        return Err(ResponseError::UnsupportedVersion.code());
    }
    if !ctx.authorized_group(operation, group) {
        return Err(ResponseError::GroupAuthorizationFailed.code());
    }
    let shares = &ctx.broker.coordinators.share_groups;
    let checked = if must_be_empty {
        shares.check_empty(group, strom_log::now_ms_unsigned())
    } else {
        shares.check_owned(group)
    };
    checked.map_err(|e| code(&e))
}

/// A topic of the request: its id and partitions, or the code all its partitions get.
fn topic(
    ctx: &RequestContext,
    name: &str,
    operation: AclOperation,
) -> Result<(Uuid, Vec<i32>), i16> {
    if !ctx.authorized_topic(operation, name) {
        return Err(ResponseError::TopicAuthorizationFailed.code());
    }
    let image = ctx.broker.metadata.image();
    match image.topic(name) {
        Some(t) if !strom_coordinator::is_internal_topic(name) => {
            Ok((t.id, t.partitions.keys().copied().collect()))
        }
        _ => Err(ResponseError::UnknownTopicOrPartition.code()),
    }
}

fn key(group: &str, topic_id: Uuid, partition: i32) -> SharePartitionKey {
    SharePartitionKey {
        group_id: group.to_string(),
        topic_id,
        partition,
    }
}

async fn describe_group(
    ctx: &RequestContext,
    group: &str,
    topics: Option<Vec<(String, Vec<i32>)>>,
) -> DescribeShareGroupOffsetsResponseGroup {
    let base = DescribeShareGroupOffsetsResponseGroup::default()
        .with_group_id(kafka_protocol::messages::GroupId(wire(group)));
    if let Err(code) = admit(ctx, group, AclOperation::Describe, false) {
        return base.with_error_code(code);
    }
    // No topics named: every topic's partitions, keeping those the group has state for.
    let all = topics.is_none();
    let topics = topics.unwrap_or_else(|| {
        let image = ctx.broker.metadata.image();
        image
            .topics()
            .filter(|t| !strom_coordinator::is_internal_topic(&t.name))
            .filter(|t| ctx.authorized_topic(AclOperation::Describe, &t.name))
            .map(|t| (t.name.clone(), t.partitions.keys().copied().collect()))
            .collect()
    });
    let shares = &ctx.broker.share_partitions;
    let mut out = Vec::with_capacity(topics.len());
    for (name, partitions) in topics {
        let resolved = topic(ctx, &name, AclOperation::Describe);
        let topic_id = resolved.as_ref().map_or(Uuid::nil(), |(id, _)| *id);
        let mut described = Vec::with_capacity(partitions.len());
        for p in partitions {
            let entry = DescribeShareGroupOffsetsResponsePartition::default()
                .with_partition_index(p)
                .with_start_offset(-1)
                .with_leader_epoch(-1);
            let entry = match &resolved {
                Err(code) => entry.with_error_code(*code),
                Ok((_, known)) if !known.contains(&p) => {
                    entry.with_error_code(ResponseError::UnknownTopicOrPartition.code())
                }
                Ok((id, _)) => match shares.durable_state(&key(group, *id, p)).await {
                    Err(code) => entry.with_error_code(code),
                    Ok(None) if all => continue,
                    Ok(None) => entry,
                    Ok(Some(s)) => entry
                        .with_start_offset(s.start_offset)
                        .with_leader_epoch(s.leader_epoch),
                },
            };
            described.push(entry);
        }
        if all && described.is_empty() {
            continue;
        }
        out.push(
            DescribeShareGroupOffsetsResponseTopic::default()
                .with_topic_name(TopicName(wire(name)))
                .with_topic_id(topic_id)
                .with_partitions(described),
        );
    }
    base.with_topics(out)
}

pub(crate) async fn describe(
    ctx: RequestContext,
    req: DescribeShareGroupOffsetsRequest,
) -> DescribeShareGroupOffsetsResponse {
    let mut groups = Vec::with_capacity(req.groups.len());
    for g in req.groups {
        let topics = g.topics.map(|ts| {
            ts.into_iter()
                .map(|t| (t.topic_name.0.to_string(), t.partitions))
                .collect()
        });
        groups.push(describe_group(&ctx, &g.group_id.0, topics).await);
    }
    DescribeShareGroupOffsetsResponse::default().with_groups(groups)
}

pub(crate) async fn alter(
    ctx: RequestContext,
    req: AlterShareGroupOffsetsRequest,
) -> AlterShareGroupOffsetsResponse {
    let group = req.group_id.0.to_string();
    if let Err(code) = admit(&ctx, &group, AclOperation::Read, true) {
        return AlterShareGroupOffsetsResponse::default().with_error_code(code);
    }
    let shares = &ctx.broker.share_partitions;
    let mut responses = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let resolved = topic(&ctx, &t.topic_name.0, AclOperation::Read);
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in &t.partitions {
            let code = match &resolved {
                Err(code) => *code,
                Ok((_, known)) if !known.contains(&p.partition_index) => {
                    ResponseError::UnknownTopicOrPartition.code()
                }
                Ok(_) if p.start_offset < 0 => ResponseError::InvalidRequest.code(),
                Ok((id, _)) => shares
                    .reset(&key(&group, *id, p.partition_index), p.start_offset)
                    .await
                    .map_or_else(|code| code, |()| 0),
            };
            partitions.push(
                AlterShareGroupOffsetsResponsePartition::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(code),
            );
        }
        responses.push(
            AlterShareGroupOffsetsResponseTopic::default()
                .with_topic_name(t.topic_name)
                .with_topic_id(resolved.map_or(Uuid::nil(), |(id, _)| id))
                .with_partitions(partitions),
        );
    }
    AlterShareGroupOffsetsResponse::default().with_responses(responses)
}

pub(crate) async fn delete(
    ctx: RequestContext,
    req: DeleteShareGroupOffsetsRequest,
) -> DeleteShareGroupOffsetsResponse {
    let group = req.group_id.0.to_string();
    if let Err(code) = admit(&ctx, &group, AclOperation::Delete, true) {
        return DeleteShareGroupOffsetsResponse::default().with_error_code(code);
    }
    let mut responses = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let resolved = topic(&ctx, &t.topic_name.0, AclOperation::Read);
        let code = match &resolved {
            Err(code) => *code,
            Ok((id, partitions)) => {
                let keys: Vec<(Uuid, i32)> = partitions.iter().map(|p| (*id, *p)).collect();
                ctx.broker
                    .share_partitions
                    .delete_state(&group, &keys)
                    .await
                    .map_or_else(|code| code, |()| 0)
            }
        };
        responses.push(
            DeleteShareGroupOffsetsResponseTopic::default()
                .with_topic_name(t.topic_name)
                .with_topic_id(resolved.map_or(Uuid::nil(), |(id, _)| id))
                .with_error_code(code),
        );
    }
    DeleteShareGroupOffsetsResponse::default().with_responses(responses)
}
