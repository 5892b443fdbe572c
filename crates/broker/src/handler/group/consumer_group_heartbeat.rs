//! ConsumerGroupHeartbeat (API 68, v0–v1; v1 adds `subscribed_topic_regex`): the KIP-848 member
//! heartbeat. Decodes into the coordinator's value type, passes a snapshot of the metadata image
//! as the topic view, and answers once the group's records are durable.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
use strom_authorizer::AclOperation;
use strom_coordinator::HeartbeatRequest;

use super::{code, s, wire};
use crate::coordinators::ImageTopics;
use crate::handler::RequestContext;

pub(crate) async fn handle(
    ctx: RequestContext,
    req: ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse {
    // Kafka: READ on the group, and DESCRIBE on every subscribed topic named.
    let refuse = |e: ResponseError, message: String| {
        ConsumerGroupHeartbeatResponse::default()
            .with_error_code(e.code())
            .with_error_message(Some(wire(message)))
            .with_member_epoch(-1)
    };
    if !ctx.authorized_group(AclOperation::Read, &req.group_id.0) {
        return refuse(
            ResponseError::GroupAuthorizationFailed,
            "Group authorization failed.".into(),
        );
    }
    if let Some(names) = &req.subscribed_topic_names {
        let denied: Vec<&str> = names
            .iter()
            .map(|t| t.0.as_str())
            .filter(|t| !ctx.authorized_topic(AclOperation::Describe, t))
            .collect();
        if !denied.is_empty() {
            return refuse(
                ResponseError::TopicAuthorizationFailed,
                format!("Topic authorization failed for topics {denied:?}"),
            );
        }
    }
    if ctx
        .broker
        .coordinators
        .share_groups
        .is_share_group(&req.group_id.0)
    {
        // One namespace: a share group's id is not a consumer group's (Kafka's answer).
        return refuse(
            ResponseError::GroupIdNotFound,
            format!("Group {} is not a consumer group.", req.group_id.0),
        );
    }
    let hb = HeartbeatRequest {
        group_id: req.group_id.0.to_string(),
        member_id: s(&req.member_id),
        member_epoch: req.member_epoch,
        instance_id: req.instance_id.as_ref().map(s),
        rack_id: req.rack_id.as_ref().map(s),
        rebalance_timeout_ms: req.rebalance_timeout_ms,
        subscribed_topic_names: req
            .subscribed_topic_names
            .as_ref()
            .map(|ts| ts.iter().map(|t| t.0.to_string()).collect()),
        subscribed_topic_regex: req.subscribed_topic_regex.as_ref().map(s),
        server_assignor: req.server_assignor.as_ref().map(s),
        owned_partitions: req.topic_partitions.as_ref().map(|tps| {
            tps.iter()
                .map(|tp| (tp.topic_id, tp.partitions.clone()))
                .collect()
        }),
        // As Kafka reports members: the request's client id, the peer as "/<ip>".
        client_id: ctx
            .client_id
            .as_ref()
            .map_or_else(String::new, |c| c.to_string()),
        client_host: format!("/{}", ctx.session.peer.ip()),
        session_timeout_ms: group_config(&ctx, &req.group_id.0, "consumer.session.timeout.ms"),
        heartbeat_interval_ms: group_config(
            &ctx,
            &req.group_id.0,
            "consumer.heartbeat.interval.ms",
        ),
    };
    let topics = ImageTopics(ctx.broker.metadata.image());
    match ctx
        .broker
        .coordinators
        .consumer_groups
        .heartbeat(hb, &topics)
        .await
    {
        Ok(r) => ConsumerGroupHeartbeatResponse::default()
            .with_member_id(Some(wire(r.member_id)))
            .with_member_epoch(r.member_epoch)
            .with_heartbeat_interval_ms(r.heartbeat_interval_ms)
            .with_assignment(r.assignment.map(|a| {
                Assignment::default().with_topic_partitions(
                    a.into_iter()
                        .map(|(id, ps)| {
                            TopicPartitions::default()
                                .with_topic_id(id)
                                .with_partitions(ps)
                        })
                        .collect(),
                )
            })),
        Err(e) => ConsumerGroupHeartbeatResponse::default()
            .with_error_code(code(&e))
            .with_error_message(Some(wire(e.to_string())))
            .with_member_epoch(-1),
    }
}

/// A group's dynamic config `key` (IncrementalAlterConfigs on the GROUP resource), if set.
fn group_config(ctx: &RequestContext, group: &str, key: &str) -> Option<i32> {
    ctx.broker
        .metadata
        .image()
        .group_configs
        .get(group)
        .and_then(|c| c.get(key))
        .and_then(|v| v.parse().ok())
}
