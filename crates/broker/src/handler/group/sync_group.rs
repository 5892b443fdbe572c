//! SyncGroup (v0–v5): the leader's assignment is made durable, then every member gets its own
//! bytes back unchanged; followers wait (no lock held) for the leader.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use strom_authorizer::AclOperation;
use strom_coordinator::SyncGroupRequest as Sync;

use super::{code, s, wire};
use crate::handler::RequestContext;

pub(crate) async fn handle(ctx: RequestContext, req: SyncGroupRequest) -> SyncGroupResponse {
    let v = ctx.api_version;
    let sync = Sync {
        group_id: req.group_id.0.to_string(),
        generation_id: req.generation_id,
        member_id: s(&req.member_id),
        group_instance_id: req.group_instance_id.as_ref().map(s),
        protocol_type: req.protocol_type.as_ref().map(s),
        protocol_name: req.protocol_name.as_ref().map(s),
        assignments: req
            .assignments
            .into_iter()
            .map(|a| (s(&a.member_id), a.assignment))
            .collect(),
    };
    // Kafka: READ on the group.
    if !ctx.authorized_group(AclOperation::Read, &sync.group_id) {
        return SyncGroupResponse::default()
            .with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    match ctx.broker.coordinators.groups.sync_group(sync).await {
        Ok(r) => SyncGroupResponse::default()
            // protocol_type and protocol_name exist from v5.
            .with_protocol_type(r.protocol_type.filter(|_| v >= 5).map(wire))
            .with_protocol_name(r.protocol_name.filter(|_| v >= 5).map(wire))
            .with_assignment(r.assignment),
        Err(e) => SyncGroupResponse::default().with_error_code(code(&e)),
    }
}
