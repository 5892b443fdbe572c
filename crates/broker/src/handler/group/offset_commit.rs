//! OffsetCommit (v2–v9; kafka-protocol 0.18 has no v0/v1 request schema): partitions of unknown
//! topics get UNKNOWN_TOPIC_OR_PARTITION here; the rest go to the coordinator, which checks
//! generation and member (for a KIP-848 group: member id and member epoch, STALE_MEMBER_EPOCH),
//! and answers once the commit records are durable.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};
use strom_coordinator::{OffsetCommitRequest as Commit, PartitionCommit};

use strom_authorizer::AclOperation;

use super::{code, s};
use crate::handler::RequestContext;

pub(crate) async fn handle(ctx: RequestContext, req: OffsetCommitRequest) -> OffsetCommitResponse {
    let v = ctx.api_version;
    let image = ctx.broker.metadata.image();
    // Per partition, in request order: Some(code) decided here, None = sent to the coordinator.
    let mut decided: Vec<Vec<Option<i16>>> = Vec::with_capacity(req.topics.len());
    let mut offsets = Vec::new();
    // Kafka: READ on the group (else every partition GROUP_AUTHORIZATION_FAILED), then READ on
    // each topic (TOPIC_AUTHORIZATION_FAILED), before whether it exists.
    let group_allowed = ctx.authorized_group(AclOperation::Read, &req.group_id.0);
    for t in &req.topics {
        let name = t.name.0.to_string();
        let topic = image.topic(&name);
        let mut parts = Vec::with_capacity(t.partitions.len());
        let refusal = if !group_allowed {
            Some(ResponseError::GroupAuthorizationFailed)
        } else if !ctx.authorized_topic(AclOperation::Read, &name) {
            Some(ResponseError::TopicAuthorizationFailed)
        } else {
            None
        };
        for p in &t.partitions {
            if let Some(e) = refusal {
                parts.push(Some(e.code()));
            } else if topic.is_some_and(|ti| ti.partitions.contains_key(&p.partition_index)) {
                offsets.push(PartitionCommit {
                    topic: name.clone(),
                    partition: p.partition_index,
                    offset: p.committed_offset,
                    // committed_leader_epoch exists from v6.
                    leader_epoch: if v >= 6 { p.committed_leader_epoch } else { -1 },
                    metadata: p.committed_metadata.as_ref().map(s).unwrap_or_default(),
                });
                parts.push(None);
            } else {
                parts.push(Some(ResponseError::UnknownTopicOrPartition.code()));
            }
        }
        decided.push(parts);
    }
    let commit = Commit {
        group_id: req.group_id.0.to_string(),
        generation_id: req.generation_id_or_member_epoch,
        member_id: s(&req.member_id),
        group_instance_id: req.group_instance_id.as_ref().map(s),
        offsets,
    };
    let results: Vec<i16> = if commit.offsets.is_empty() {
        Vec::new()
    } else {
        let n = commit.offsets.len();
        match ctx
            .broker
            .coordinators
            .consumer_groups
            .commit_offsets(commit)
            .await
        {
            Ok(r) => r.iter().map(|r| r.as_ref().err().map_or(0, code)).collect(),
            Err(e) => vec![code(&e); n],
        }
    };
    let mut results = results.into_iter();
    let topics = req
        .topics
        .into_iter()
        .zip(decided)
        .map(|(t, parts)| {
            let partitions = t
                .partitions
                .iter()
                .zip(parts)
                .map(|(p, d)| {
                    let c = d.unwrap_or_else(|| results.next().unwrap_or(0));
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(c)
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}
