//! LeaveGroup (v0–v5): one member (v0–v2) or a batch of members by member or instance id (v3+).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};
use strom_authorizer::AclOperation;
use strom_coordinator::MemberIdentity;

use super::{code, s};
use crate::handler::RequestContext;

pub(crate) fn handle(ctx: &RequestContext, req: LeaveGroupRequest) -> LeaveGroupResponse {
    let v = ctx.api_version;
    // Kafka: READ on the group.
    if !ctx.authorized_group(AclOperation::Read, &req.group_id.0) {
        return LeaveGroupResponse::default()
            .with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    let members: Vec<MemberIdentity> = if v >= 3 {
        req.members
            .iter()
            .map(|m| MemberIdentity {
                member_id: s(&m.member_id),
                group_instance_id: m.group_instance_id.as_ref().map(s),
            })
            .collect()
    } else {
        vec![MemberIdentity {
            member_id: s(&req.member_id),
            group_instance_id: None,
        }]
    };
    let results = match ctx
        .broker
        .coordinators
        .groups
        .leave_group(req.group_id.0.as_str(), &members)
    {
        Ok(r) => r,
        Err(e) => return LeaveGroupResponse::default().with_error_code(code(&e)),
    };
    if v < 3 {
        let err = results
            .first()
            .and_then(|r| r.as_ref().err())
            .map_or(0, code);
        return LeaveGroupResponse::default().with_error_code(err);
    }
    let responses = req
        .members
        .into_iter()
        .zip(results)
        .map(|(m, r)| {
            MemberResponse::default()
                .with_member_id(m.member_id)
                .with_group_instance_id(m.group_instance_id)
                .with_error_code(r.err().as_ref().map_or(0, code))
        })
        .collect();
    LeaveGroupResponse::default().with_members(responses)
}
