//! ShareGroupHeartbeat (API 76, v1) and ShareGroupDescribe (API 77, v1): share group (KIP-932)
//! membership with server-side assignment, over `strom_coordinator::ShareGroupCoordinator`.
//! Answered only when `group.share.enable` is on (UNSUPPORTED_VERSION otherwise, and not
//! advertised), since ShareFetch/ShareAcknowledge are not served yet. Heartbeats need READ on the
//! group and DESCRIBE on each subscribed topic; describing needs DESCRIBE on the group.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::share_group_describe_response::{
    Assignment as DescribedAssignment, DescribedGroup, Member,
    TopicPartitions as DescribedPartitions,
};
use kafka_protocol::messages::share_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{
    ShareGroupDescribeRequest, ShareGroupDescribeResponse, ShareGroupHeartbeatRequest,
    ShareGroupHeartbeatResponse, TopicName,
};
use strom_authorizer::{AclOperation, ResourceType};
use strom_coordinator::ShareGroupFailure;

use super::{code, wire};
use crate::handler::RequestContext;

/// Whether share groups are served (`group.share.enable`).
pub(crate) fn enabled(ctx: &RequestContext) -> bool {
    crate::internal_topics::share_groups_enabled(&ctx.broker.config)
}

/// ShareGroupHeartbeat: first makes sure `__share_group_state` exists (a cluster creates it on
/// first use, as `__consumer_offsets` on the first FindCoordinator), so the members' fetches find
/// a share coordinator.
pub(crate) async fn heartbeat(
    ctx: RequestContext,
    req: ShareGroupHeartbeatRequest,
) -> ShareGroupHeartbeatResponse {
    if enabled(&ctx) {
        let topic =
            crate::internal_topics::share_state(&ctx.broker.config, &ctx.broker.coordinators);
        if !crate::internal_topics::ensure(&ctx.broker.topic_admin, &topic).await {
            return ShareGroupHeartbeatResponse::default()
                .with_error_code(ResponseError::CoordinatorNotAvailable.code())
                .with_error_message(Some(wire(
                    "__share_group_state does not exist yet".to_string(),
                )))
                .with_member_epoch(-1);
        }
    }
    membership(&ctx, req)
}

fn membership(
    ctx: &RequestContext,
    req: ShareGroupHeartbeatRequest,
) -> ShareGroupHeartbeatResponse {
    let refuse = |e: ResponseError, message: String| {
        ShareGroupHeartbeatResponse::default()
            .with_error_code(e.code())
            .with_error_message(Some(wire(message)))
            .with_member_epoch(-1)
    };
    if !enabled(ctx) {
        return refuse(
            ResponseError::UnsupportedVersion,
            "Share groups are not enabled (group.share.enable).".into(),
        );
    }
    if !ctx.authorized_group(AclOperation::Read, &req.group_id.0) {
        return refuse(
            ResponseError::GroupAuthorizationFailed,
            "Group authorization failed.".into(),
        );
    }
    let subscribed: Option<Vec<String>> = req
        .subscribed_topic_names
        .as_ref()
        .map(|ts| ts.iter().map(|t| t.0.to_string()).collect());
    if let Some(names) = &subscribed {
        let denied: Vec<&String> = names
            .iter()
            .filter(|t| !ctx.authorized_topic(AclOperation::Describe, t))
            .collect();
        if !denied.is_empty() {
            return refuse(
                ResponseError::TopicAuthorizationFailed,
                format!("Topic authorization failed for topics {denied:?}"),
            );
        }
    }
    let image = ctx.broker.metadata.image();
    let outcome = ctx.broker.coordinators.share_groups.heartbeat(
        &req.group_id.0,
        &req.member_id,
        req.member_epoch,
        subscribed.as_deref(),
        strom_log::now_ms_unsigned(),
        |topic| {
            image
                .topic(topic)
                .map(|t| u32::try_from(t.partitions.len()).unwrap_or(u32::MAX))
        },
    );
    match outcome {
        Ok(o) => {
            let assignment = o.assignment.map(|a| {
                Assignment::default().with_topic_partitions(
                    a.into_iter()
                        .filter_map(|(topic, parts)| {
                            let id = image.topic(&topic)?.id;
                            Some(
                                TopicPartitions::default()
                                    .with_topic_id(id)
                                    .with_partitions(parts.into_iter().collect()),
                            )
                        })
                        .collect(),
                )
            });
            ShareGroupHeartbeatResponse::default()
                .with_member_id(Some(wire(o.member_id)))
                .with_member_epoch(o.member_epoch)
                .with_heartbeat_interval_ms(
                    i32::try_from(o.heartbeat_interval_ms).unwrap_or(i32::MAX),
                )
                .with_assignment(assignment)
        }
        Err(ShareGroupFailure::Coordinator(e)) => ShareGroupHeartbeatResponse::default()
            .with_error_code(code(&e))
            .with_error_message(Some(wire(e.to_string())))
            .with_member_epoch(-1),
        Err(ShareGroupFailure::Group(e)) => ShareGroupHeartbeatResponse::default()
            .with_error_code(e.code())
            .with_error_message(Some(wire(e.to_string())))
            .with_member_epoch(-1),
    }
}

pub(crate) fn describe(
    ctx: &RequestContext,
    req: ShareGroupDescribeRequest,
) -> ShareGroupDescribeResponse {
    let image = ctx.broker.metadata.image();
    let groups = req
        .group_ids
        .into_iter()
        .map(|id| {
            let out = DescribedGroup::default()
                .with_group_id(id.clone())
                .with_authorized_operations(i32::MIN);
            if !enabled(ctx) {
                return out.with_error_code(ResponseError::UnsupportedVersion.code());
            }
            if !ctx.authorized_group(AclOperation::Describe, &id.0) {
                return out.with_error_code(ResponseError::GroupAuthorizationFailed.code());
            }
            let ops = if req.include_authorized_operations {
                ctx.broker.authorization.authorized_operations(
                    &ctx.session,
                    ResourceType::Group,
                    &id.0,
                )
            } else {
                i32::MIN
            };
            match ctx
                .broker
                .coordinators
                .share_groups
                .describe(&id.0, strom_log::now_ms_unsigned())
            {
                Ok(d) => out
                    .with_authorized_operations(ops)
                    .with_group_state(wire(d.state))
                    .with_group_epoch(d.group_epoch)
                    .with_assignment_epoch(d.assignment_epoch)
                    .with_assignor_name(wire("simple"))
                    .with_members(
                        d.members
                            .into_iter()
                            .map(|m| {
                                let parts = m
                                    .assignment
                                    .into_iter()
                                    .filter_map(|(topic, ps)| {
                                        let tid = image.topic(&topic)?.id;
                                        Some(
                                            DescribedPartitions::default()
                                                .with_topic_id(tid)
                                                .with_topic_name(TopicName(wire(topic)))
                                                .with_partitions(ps),
                                        )
                                    })
                                    .collect();
                                Member::default()
                                    .with_member_id(wire(m.member_id))
                                    .with_member_epoch(m.member_epoch)
                                    .with_subscribed_topic_names(
                                        m.subscribed_topic_names
                                            .into_iter()
                                            .map(|t| TopicName(wire(t)))
                                            .collect(),
                                    )
                                    .with_assignment(
                                        DescribedAssignment::default().with_topic_partitions(parts),
                                    )
                            })
                            .collect(),
                    ),
                Err(e) => out
                    .with_error_code(code(&e))
                    .with_error_message(Some(wire(format!(
                        "Group {} not found or not a share group.",
                        id.0
                    ))))
                    .with_group_state(wire("Dead")),
            }
        })
        .collect();
    ShareGroupDescribeResponse::default().with_groups(groups)
}
