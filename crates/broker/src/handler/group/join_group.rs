//! JoinGroup (v0–v9): hands the request to the coordinator and waits (no lock held) until the
//! rebalance's join phase completes. v4+ first joins get MEMBER_ID_REQUIRED (KIP-394).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use strom_authorizer::AclOperation;
use strom_coordinator::{JoinGroupRequest as Join, Protocol};

use super::{code, s, wire};
use crate::handler::RequestContext;

pub(crate) async fn handle(ctx: RequestContext, req: JoinGroupRequest) -> JoinGroupResponse {
    let v = ctx.api_version;
    let join = Join {
        group_id: req.group_id.0.to_string(),
        member_id: s(&req.member_id),
        group_instance_id: req.group_instance_id.as_ref().map(s),
        protocol_type: s(&req.protocol_type),
        protocols: req
            .protocols
            .iter()
            .map(|p| Protocol {
                name: s(&p.name),
                metadata: p.metadata.clone(),
            })
            .collect(),
        session_timeout_ms: req.session_timeout_ms,
        // v0 has no rebalance timeout: Kafka uses the session timeout.
        rebalance_timeout_ms: if v >= 1 {
            req.rebalance_timeout_ms
        } else {
            req.session_timeout_ms
        },
        // As Kafka reports members: the request's client id, the peer as "/<ip>".
        client_id: ctx
            .client_id
            .as_ref()
            .map_or_else(String::new, |c| c.to_string()),
        client_host: format!("/{}", ctx.session.peer.ip()),
        require_known_member_id: v >= 4,
    };
    // Kafka: READ on the group.
    if !ctx.authorized_group(AclOperation::Read, &join.group_id) {
        return JoinGroupResponse::default()
            .with_error_code(ResponseError::GroupAuthorizationFailed.code())
            .with_generation_id(-1)
            .with_protocol_name(if v < 7 { Some(wire("")) } else { None })
            .with_member_id(wire(join.member_id));
    }
    if ctx
        .broker
        .coordinators
        .share_groups
        .is_share_group(&join.group_id)
    {
        // One namespace: a share group's id is not a classic group's (Kafka's answer).
        return JoinGroupResponse::default()
            .with_error_code(ResponseError::InconsistentGroupProtocol.code())
            .with_generation_id(-1)
            .with_protocol_name(if v < 7 { Some(wire("")) } else { None })
            .with_member_id(wire(join.member_id));
    }
    // One namespace (KIP-848): a consumer group with members cannot be joined with the classic
    // protocol; an empty one is dropped so the classic group takes the id over.
    let consumers = &ctx.broker.coordinators.consumer_groups;
    if consumers.is_consumer_group(&join.group_id) {
        let r = if consumers.has_members(&join.group_id) {
            Err(strom_coordinator::GroupError::InconsistentGroupProtocol)
        } else {
            consumers.delete_group(&join.group_id).await
        };
        if let Err(e) = r {
            return JoinGroupResponse::default()
                .with_error_code(code(&e))
                .with_generation_id(-1)
                .with_protocol_name(if v < 7 { Some(wire("")) } else { None })
                .with_member_id(wire(join.member_id));
        }
    }
    let r = ctx.broker.coordinators.groups.join_group(join).await;
    let members = r
        .members
        .into_iter()
        .map(|m| {
            JoinGroupResponseMember::default()
                .with_member_id(wire(m.member_id))
                // group_instance_id exists from v5.
                .with_group_instance_id(m.group_instance_id.filter(|_| v >= 5).map(wire))
                .with_metadata(m.metadata)
        })
        .collect();
    JoinGroupResponse::default()
        .with_error_code(r.error.as_ref().map_or(0, code))
        .with_generation_id(r.generation_id)
        // protocol_type exists from v7; protocol_name is nullable only from v7.
        .with_protocol_type(r.protocol_type.filter(|_| v >= 7).map(wire))
        .with_protocol_name(match r.protocol_name {
            Some(p) => Some(wire(p)),
            None if v < 7 => Some(wire("")),
            None => None,
        })
        .with_leader(wire(r.leader))
        .with_member_id(wire(r.member_id))
        .with_members(members)
}
