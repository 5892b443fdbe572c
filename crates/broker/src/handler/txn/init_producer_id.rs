//! InitProducerId (v0–v5): a producer id and epoch for an idempotent producer.
//!
//! Without a transactional id every request gets a new producer id with epoch 0, including a
//! KIP-360 request that names its current id and epoch (Kafka does the same for non-transactional
//! producers). A transactional id goes to the transaction coordinator: same producer id with the
//! epoch bumped (fencing older producers; an open transaction is aborted first).
//! v6 (KIP-939 two-phase commit) is not advertised.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::super::errors::producer_id_error_code;
use strom_authorizer::{AclOperation, ResourceType};

use super::super::RequestContext;

pub(crate) async fn handle(
    ctx: RequestContext,
    req: InitProducerIdRequest,
) -> InitProducerIdResponse {
    // ongoing_txn_* (v6 only) keep their defaults (-1), which every version may carry.
    let failed = |code: i16| {
        InitProducerIdResponse::default()
            .with_error_code(code)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    match req.transactional_id.as_ref().map(|t| t.0.as_str()) {
        Some("") => return failed(ResponseError::InvalidRequest.code()),
        // Kafka: WRITE on the transactional id.
        Some(id) if !ctx.authorized(AclOperation::Write, ResourceType::TransactionalId, id) => {
            return failed(ResponseError::TransactionalIdAuthorizationFailed.code())
        }
        // Kafka (KIP-679): an idempotent producer needs IDEMPOTENT_WRITE on the cluster, or
        // WRITE on some topic.
        None if !ctx.authorized_cluster(AclOperation::IdempotentWrite)
            && !ctx.broker.authorization.authorize_by_resource_type(
                &ctx.session,
                AclOperation::Write,
                ResourceType::Topic,
            ) =>
        {
            return failed(ResponseError::ClusterAuthorizationFailed.code())
        }
        Some(id) => {
            // producer_id/producer_epoch (KIP-360) exist from v3.
            let expected =
                (ctx.api_version >= 3).then_some((req.producer_id.0, req.producer_epoch));
            return match ctx
                .broker
                .coordinators
                .txn
                .init_producer_id(id, req.transaction_timeout_ms, expected)
                .await
            {
                Ok((pid, epoch)) => InitProducerIdResponse::default()
                    .with_producer_id(ProducerId(pid))
                    .with_producer_epoch(epoch),
                Err(e) => {
                    tracing::debug!(transactional_id = id, error = %e, "InitProducerId failed");
                    failed(super::code(&e, ctx.api_version >= 4))
                }
            };
        }
        None => {}
    }
    let broker = &ctx.broker;
    match broker.producer_ids.generate().await {
        Ok(id) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(0),
        Err(e) => {
            tracing::error!(error = %e, "allocating a producer id failed");
            failed(producer_id_error_code(&e))
        }
    }
}
