//! Heartbeat (v0–v4): keeps a member's session alive; REBALANCE_IN_PROGRESS asks it to rejoin.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};
use strom_authorizer::AclOperation;

use super::code;
use crate::handler::RequestContext;

pub(crate) fn handle(ctx: &RequestContext, req: HeartbeatRequest) -> HeartbeatResponse {
    // Kafka: READ on the group.
    if !ctx.authorized_group(AclOperation::Read, &req.group_id.0) {
        return HeartbeatResponse::default()
            .with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    let r = ctx.broker.coordinators.groups.heartbeat(
        req.group_id.0.as_str(),
        req.generation_id,
        req.member_id.as_str(),
        req.group_instance_id.as_ref().map(|i| i.as_str()),
    );
    HeartbeatResponse::default().with_error_code(r.err().as_ref().map_or(0, code))
}
