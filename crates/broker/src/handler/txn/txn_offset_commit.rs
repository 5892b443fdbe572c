//! TxnOffsetCommit (v0–v5): a transactional producer's consumer offsets, written at once to the
//! group's `__consumer_offsets` partition inside the producer's transaction (pending until the
//! COMMIT marker lands there; dropped on ABORT). From v3 the group member, generation and
//! instance id are checked against the group as Kafka does.
//!
//! Served by the group's coordinator, which may not be the transaction's: it first asks the
//! transaction coordinator (`txn_verifier`, KIP-890 part 1) whether the group's
//! `__consumer_offsets` partition is in the producer's open transaction (AddOffsetsToTxn put it
//! there; from v5, Transactions V2, it adds it), which also fences a producer with an old epoch. Verification errors are mapped as
//! Kafka's `maybeConvertOffsetCommitError`.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};
use strom_coordinator::txn::{TxnCommitMember, TxnError};
use strom_coordinator::{PartitionCommit, OFFSETS_TOPIC};

use strom_authorizer::AclOperation;

use super::super::RequestContext;
use super::code;
use crate::txn_verifier::{self, TxnCheck, TxnProducer};

pub(crate) async fn handle(
    ctx: RequestContext,
    req: TxnOffsetCommitRequest,
) -> TxnOffsetCommitResponse {
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
    // Kafka: WRITE on the transactional id, READ on the group, READ on each topic; any refusal
    // answers every partition (nothing is written).
    let refusal = if !super::end_txn::may_write(&ctx, &req.transactional_id.0) {
        Some(ResponseError::TransactionalIdAuthorizationFailed)
    } else if !ctx.authorized_group(AclOperation::Read, &req.group_id.0) {
        Some(ResponseError::GroupAuthorizationFailed)
    } else if req
        .topics
        .iter()
        .any(|t| !ctx.authorized_topic(AclOperation::Read, &t.name.0))
    {
        Some(ResponseError::TopicAuthorizationFailed)
    } else {
        None
    };
    let c = match refusal {
        Some(e) => e.code(),
        None => commit(&ctx, &req, &member, offsets).await,
    };
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

/// Verifies the transaction, then writes the offsets; the error code for every partition.
async fn commit(
    ctx: &RequestContext,
    req: &TxnOffsetCommitRequest,
    member: &TxnCommitMember,
    offsets: Vec<PartitionCommit>,
) -> i16 {
    let broker = &ctx.broker;
    let group_id = req.group_id.0.as_str();
    if group_id.is_empty() {
        return ResponseError::InvalidRequest.code();
    }
    let offsets_partition = (
        OFFSETS_TOPIC.to_string(),
        broker.coordinators.groups.partition_for(group_id),
    );
    let producer = TxnProducer {
        transactional_id: req.transactional_id.0.as_str(),
        producer_id: req.producer_id.0,
        epoch: req.producer_epoch,
    };
    // v5 is Transactions V2: no AddOffsetsToTxn came first, the partition joins here.
    let check = TxnCheck::for_request(ctx.api_version >= 5);
    let verified = txn_verifier::verify(broker, check, producer, &[offsets_partition]).await;
    if let Some(c) = verified.first().copied().filter(|c| *c != 0) {
        tracing::debug!(
            group_id,
            transactional_id = producer.transactional_id,
            code = c,
            "TxnOffsetCommit not verified"
        );
        return offset_commit_error(c);
    }
    let stored = broker
        .coordinators
        .groups
        .store_transactional_offsets(
            group_id,
            (producer.producer_id, producer.epoch),
            member,
            &offsets,
        )
        .await;
    stored
        .err()
        .map_or(0, |e| code(&TxnError::Group(e), ctx.api_version >= 3))
}

/// Kafka's mapping of a verification error for TxnOffsetCommit clients.
fn offset_commit_error(code: i16) -> i16 {
    let mapped = match ResponseError::try_from_code(code) {
        // Retried by every client without a coordinator lookup.
        Some(ResponseError::NetworkException) => ResponseError::CoordinatorLoadInProgress,
        Some(ResponseError::ProducerFenced) => ResponseError::InvalidProducerEpoch,
        Some(
            ResponseError::UnknownTopicOrPartition
            | ResponseError::NotEnoughReplicas
            | ResponseError::NotEnoughReplicasAfterAppend,
        ) => ResponseError::CoordinatorNotAvailable,
        Some(ResponseError::NotLeaderOrFollower | ResponseError::KafkaStorageError) => {
            ResponseError::NotCoordinator
        }
        _ => return code,
    };
    mapped.code()
}
