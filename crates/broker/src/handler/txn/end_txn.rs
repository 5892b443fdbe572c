//! EndTxn (v0–v5) and AddOffsetsToTxn (v0–v4): commit or abort a producer's transaction; add a
//! consumer group's offsets to it. The response waits for the markers and the Complete record.
//! EndTxn v5 is Transactions V2 (KIP-890 part 2): the epoch is bumped at every end and the
//! response carries the producer id and epoch the producer continues with.

use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, EndTxnRequest, EndTxnResponse, ProducerId,
};

use kafka_protocol::error::ResponseError;
use strom_authorizer::{AclOperation, ResourceType};

use super::super::RequestContext;
use super::code;

/// Kafka: every transaction API needs WRITE on its transactional id.
pub(super) fn may_write(ctx: &RequestContext, transactional_id: &str) -> bool {
    ctx.authorized(
        AclOperation::Write,
        ResourceType::TransactionalId,
        transactional_id,
    )
}

pub(crate) async fn end_txn(ctx: RequestContext, req: EndTxnRequest) -> EndTxnResponse {
    if !may_write(&ctx, &req.transactional_id.0) {
        return EndTxnResponse::default()
            .with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code());
    }
    let r = ctx
        .broker
        .coordinators
        .txn
        .end_txn(
            req.transactional_id.0.as_str(),
            req.producer_id.0,
            req.producer_epoch,
            req.committed,
            ctx.api_version >= 5,
        )
        .await;
    match r {
        // producer_id/producer_epoch in the response exist from v5.
        Ok((pid, epoch)) if ctx.api_version >= 5 => EndTxnResponse::default()
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch),
        Ok(_) => EndTxnResponse::default(),
        Err(e) => {
            tracing::debug!(transactional_id = %req.transactional_id.0.as_str(), error = %e, "EndTxn failed");
            EndTxnResponse::default().with_error_code(code(&e, ctx.api_version >= 2))
        }
    }
}

pub(crate) async fn add_offsets(
    ctx: RequestContext,
    req: AddOffsetsToTxnRequest,
) -> AddOffsetsToTxnResponse {
    // Kafka: WRITE on the transactional id, then READ on the group.
    if !may_write(&ctx, &req.transactional_id.0) {
        return AddOffsetsToTxnResponse::default()
            .with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code());
    }
    if !ctx.authorized_group(AclOperation::Read, &req.group_id.0) {
        return AddOffsetsToTxnResponse::default()
            .with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    let r = ctx
        .broker
        .coordinators
        .txn
        .add_offsets(
            req.transactional_id.0.as_str(),
            req.producer_id.0,
            req.producer_epoch,
            req.group_id.0.as_str(),
        )
        .await;
    AddOffsetsToTxnResponse::default()
        .with_error_code(r.err().map_or(0, |e| code(&e, ctx.api_version >= 2)))
}
