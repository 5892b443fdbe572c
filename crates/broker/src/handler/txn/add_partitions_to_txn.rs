//! AddPartitionsToTxn (v0–v5): partitions join a producer's open transaction before it writes to
//! them. v0–v3 carry one transaction (clients); v4+ a batch, each optionally `verify_only`
//! (KIP-890 part 1, sent by brokers); a v5 add that is not `verify_only` comes from the leader
//! of a partition a Transactions V2 producer wrote to (KIP-890 part 2). Unknown partitions fail the whole transaction's request:
//! UNKNOWN_TOPIC_OR_PARTITION for them, OPERATION_NOT_ATTEMPTED for the rest (as Kafka).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse};

use strom_authorizer::AclOperation;

use super::super::RequestContext;
use super::code;

async fn one(
    ctx: &RequestContext,
    id: &str,
    pid: i64,
    epoch: i16,
    verify_only: bool,
    topics: &[AddPartitionsToTxnTopic],
) -> Vec<AddPartitionsToTxnTopicResult> {
    // Kafka: WRITE on the transactional id, then on each topic; refused, nothing is added and
    // the other partitions answer OPERATION_NOT_ATTEMPTED.
    let id_denied = !super::end_txn::may_write(ctx, id);
    let topic_denied = |t: &str| !id_denied && !ctx.authorized_topic(AclOperation::Write, t);
    if id_denied || topics.iter().any(|t| topic_denied(&t.name.0)) {
        return topics
            .iter()
            .map(|t| {
                let c = if id_denied {
                    ResponseError::TransactionalIdAuthorizationFailed
                } else if topic_denied(&t.name.0) {
                    ResponseError::TopicAuthorizationFailed
                } else {
                    ResponseError::OperationNotAttempted
                };
                let results = t
                    .partitions
                    .iter()
                    .map(|p| {
                        AddPartitionsToTxnPartitionResult::default()
                            .with_partition_index(*p)
                            .with_partition_error_code(c.code())
                    })
                    .collect();
                AddPartitionsToTxnTopicResult::default()
                    .with_name(t.name.clone())
                    .with_results_by_partition(results)
            })
            .collect();
    }
    let image = ctx.broker.metadata.image();
    let exists = |t: &str, p: i32| {
        image
            .topic(t)
            .is_some_and(|x| x.partitions.contains_key(&p))
    };
    let unknown = topics
        .iter()
        .any(|t| t.partitions.iter().any(|p| !exists(t.name.0.as_str(), *p)));
    let mut partitions = Vec::new();
    for t in topics {
        for p in &t.partitions {
            partitions.push((t.name.0.to_string(), *p));
        }
    }
    let outcome = if unknown {
        None
    } else {
        let txn = &ctx.broker.coordinators.txn;
        Some(if verify_only || ctx.api_version < 5 {
            txn.add_partitions(id, pid, epoch, &partitions, verify_only)
                .await
        } else {
            // v5 from a partition leader: a Transactions V2 producer's first write there.
            txn.add_partitions_v2(id, pid, epoch, &partitions).await
        })
    };
    let fenced = ctx.api_version >= 2;
    topics
        .iter()
        .map(|t| {
            let results = t
                .partitions
                .iter()
                .map(|p| {
                    let c = match &outcome {
                        None if !exists(t.name.0.as_str(), *p) => {
                            ResponseError::UnknownTopicOrPartition.code()
                        }
                        None => ResponseError::OperationNotAttempted.code(),
                        Some(Ok(())) => 0,
                        Some(Err(e)) => code(e, fenced),
                    };
                    AddPartitionsToTxnPartitionResult::default()
                        .with_partition_index(*p)
                        .with_partition_error_code(c)
                })
                .collect();
            AddPartitionsToTxnTopicResult::default()
                .with_name(t.name.clone())
                .with_results_by_partition(results)
        })
        .collect()
}

pub(crate) async fn handle(
    ctx: RequestContext,
    req: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse {
    if ctx.api_version <= 3 {
        let results = one(
            &ctx,
            req.v3_and_below_transactional_id.0.as_str(),
            req.v3_and_below_producer_id.0,
            req.v3_and_below_producer_epoch,
            false,
            &req.v3_and_below_topics,
        )
        .await;
        return AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results);
    }
    // Kafka: the batched form (v4+) is the brokers' (verification, KIP-890): CLUSTER_ACTION.
    if !ctx.authorized_cluster(AclOperation::ClusterAction) {
        return AddPartitionsToTxnResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    let mut out = Vec::with_capacity(req.transactions.len());
    for t in &req.transactions {
        let results = one(
            &ctx,
            t.transactional_id.0.as_str(),
            t.producer_id.0,
            t.producer_epoch,
            t.verify_only,
            &t.topics,
        )
        .await;
        out.push(
            AddPartitionsToTxnResult::default()
                .with_transactional_id(t.transactional_id.clone())
                .with_topic_results(results),
        );
    }
    AddPartitionsToTxnResponse::default().with_results_by_transaction(out)
}
