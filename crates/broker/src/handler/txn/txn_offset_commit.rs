//! TxnOffsetCommit (v0–v4): a transactional producer's consumer offsets, held by the
//! coordinator until the transaction commits (then written to the group) or aborts (dropped).
//! The group generation / member of v3+ is not checked here (a known gap: Kafka fences a
//! producer whose consumer was kicked out of the group).

use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{ApiKey, TxnOffsetCommitRequest, TxnOffsetCommitResponse};
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
    let r = ctx
        .broker
        .txn
        .txn_offset_commit(
            req.transactional_id.0.as_str(),
            req.group_id.0.as_str(),
            req.producer_id.0,
            req.producer_epoch,
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
