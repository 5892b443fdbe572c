//! TxnOffsetCommit (v0–v4): a transactional producer's consumer offsets, written at once to the
//! group's `__consumer_offsets` partition inside the producer's transaction (pending until the
//! COMMIT marker lands there; dropped on ABORT). From v3 the group member, generation and
//! instance id are checked against the group as Kafka does.

use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{ApiKey, TxnOffsetCommitRequest, TxnOffsetCommitResponse};
use strom_coordinator::txn::TxnCommitMember;
use strom_coordinator::PartitionCommit;

use super::super::{decode, later, ApiHandler, RequestContext};
use super::code;

pub(crate) const HANDLER: ApiHandler = ApiHandler {
    api_key: ApiKey::TxnOffsetCommit,
    min_version: 0,
    max_version: 4,
    min_served: 0,
    handle: |ctx, body| {
        let req: TxnOffsetCommitRequest = decode(ApiKey::TxnOffsetCommit, ctx.api_version, body)?;
        Ok(later(handle(ctx, req)))
    },
};

async fn handle(ctx: RequestContext, req: TxnOffsetCommitRequest) -> TxnOffsetCommitResponse {
    let mut offsets = Vec::new();
    for t in &req.topics {
        for p in &t.partitions {
            offsets.push(PartitionCommit {
                topic: t.name.0.to_string(),
                partition: p.partition_index,
                offset: p.committed_offset,
                // committed_leader_epoch exists from v2.
                leader_epoch: if ctx.api_version >= 2 {
                    p.committed_leader_epoch
                } else {
                    -1
                },
                metadata: p
                    .committed_metadata
                    .as_ref()
                    .map(|m| m.to_string())
                    .unwrap_or_default(),
            });
        }
    }
    // member_id, generation_id and group_instance_id exist from v3.
    let member = if ctx.api_version >= 3 {
        TxnCommitMember {
            member_id: req.member_id.to_string(),
            generation_id: req.generation_id,
            group_instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
        }
    } else {
        TxnCommitMember {
            member_id: String::new(),
            generation_id: -1,
            group_instance_id: None,
        }
    };
    let r = ctx
        .broker
        .txn
        .txn_offset_commit(
            req.transactional_id.0.as_str(),
            req.group_id.0.as_str(),
            req.producer_id.0,
            req.producer_epoch,
            &member,
            offsets,
        )
        .await;
    let c = r.err().map_or(0, |e| code(&e, ctx.api_version >= 3));
    let topics = req
        .topics
        .iter()
        .map(|t| {
            TxnOffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            TxnOffsetCommitResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(c)
                        })
                        .collect(),
                )
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}
