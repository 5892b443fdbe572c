//! EndTxn (v0–v5) and AddOffsetsToTxn (v0–v4): commit or abort a producer's transaction; add a
//! consumer group's offsets to it. The response waits for the markers and the Complete record.
//! EndTxn v5 is Transactions V2 (KIP-890 part 2): the epoch is bumped at every end and the
//! response carries the producer id and epoch the producer continues with.

use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, ApiKey, EndTxnRequest, EndTxnResponse,
    ProducerId,
};

use super::super::{decode, later, ApiHandler};
use super::code;

pub(crate) const HANDLER: ApiHandler = ApiHandler {
    api_key: ApiKey::EndTxn,
    min_version: 0,
    max_version: 5,
    min_served: 0,
    handle: |ctx, body| {
        let req: EndTxnRequest = decode(ApiKey::EndTxn, ctx.api_version, body)?;
        Ok(later(async move {
            let r = ctx
                .broker
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
        }))
    },
};

pub(crate) const ADD_OFFSETS_HANDLER: ApiHandler = ApiHandler {
    api_key: ApiKey::AddOffsetsToTxn,
    min_version: 0,
    max_version: 4,
    min_served: 0,
    handle: |ctx, body| {
        let req: AddOffsetsToTxnRequest = decode(ApiKey::AddOffsetsToTxn, ctx.api_version, body)?;
        Ok(later(async move {
            let r = ctx
                .broker
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
        }))
    },
};
