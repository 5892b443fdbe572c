//! FindCoordinator (v0–v6): every group's coordinator is this node (single node; later the
//! leader of the group's `__consumer_offsets` partition). v4+ answers a batch of keys.
//! Transaction keys (type 1) are answered with this node too; share groups (2) do not exist yet.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{ApiKey, BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use super::wire;
use crate::handler::{decode, ready, ApiHandler, RequestContext};

pub(crate) const HANDLER: ApiHandler = ApiHandler {
    api_key: ApiKey::FindCoordinator,
    min_version: 0,
    max_version: 6,
    min_served: 0,
    handle: |ctx, body| {
        let req: FindCoordinatorRequest = decode(ApiKey::FindCoordinator, ctx.api_version, body)?;
        Ok(ready(handle(&ctx, req)))
    },
};

const GROUP: i8 = 0;
const TRANSACTION: i8 = 1;

/// (node, host, port, error code, message) for one key.
fn lookup(
    ctx: &RequestContext,
    key_type: i8,
    key: &str,
) -> (i32, String, i32, i16, Option<String>) {
    let (host, port) = ctx.broker.advertised.clone();
    if key_type == TRANSACTION {
        if key.is_empty() {
            return (
                -1,
                String::new(),
                -1,
                ResponseError::InvalidRequest.code(),
                Some("empty transactional id".into()),
            );
        }
        // Single node: every `__transaction_state` partition is led here.
        return match ctx.broker.txn.check_available() {
            Ok(()) => (ctx.broker.config.node_id, host, port, 0, None),
            Err(e) => (
                -1,
                String::new(),
                -1,
                crate::handler::txn::code(&e, true),
                Some(e.to_string()),
            ),
        };
    }
    if key_type != GROUP {
        return (
            -1,
            String::new(),
            -1,
            ResponseError::InvalidRequest.code(),
            Some("unsupported coordinator key type".into()),
        );
    }
    if key.is_empty() {
        return (
            -1,
            String::new(),
            -1,
            ResponseError::InvalidRequest.code(),
            Some("empty group id".into()),
        );
    }
    match ctx.broker.groups.check_owned(key) {
        Ok(()) => (ctx.broker.config.node_id, host, port, 0, None),
        Err(e) => (-1, String::new(), -1, super::code(&e), Some(e.to_string())),
    }
}

fn handle(ctx: &RequestContext, req: FindCoordinatorRequest) -> FindCoordinatorResponse {
    let v = ctx.api_version;
    if v >= 4 {
        let coordinators = req
            .coordinator_keys
            .iter()
            .map(|k| {
                let (node, host, port, code, msg) = lookup(ctx, req.key_type, k.as_str());
                Coordinator::default()
                    .with_key(k.clone())
                    .with_node_id(BrokerId(node))
                    .with_host(wire(host))
                    .with_port(port)
                    .with_error_code(code)
                    .with_error_message(msg.map(StrBytes::from_string))
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let key_type = if v >= 1 { req.key_type } else { GROUP };
    let (node, host, port, code, msg) = lookup(ctx, key_type, req.key.as_str());
    FindCoordinatorResponse::default()
        .with_node_id(BrokerId(node))
        .with_host(wire(host))
        .with_port(port)
        .with_error_code(code)
        // error_message exists from v1.
        .with_error_message(msg.filter(|_| v >= 1).map(StrBytes::from_string))
}
