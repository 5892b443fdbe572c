//! ConsumerGroupDescribe (API 69, v0–v1): epochs, assignor, and each member's subscription,
//! current and target assignment of KIP-848 consumer groups. A classic group id answers
//! GROUP_ID_NOT_FOUND, as Kafka does.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment, DescribedGroup, Member, TopicPartitions,
};
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, TopicName,
};
use strom_authorizer::{AclOperation, ResourceType};
use strom_coordinator::{DescribedPartitions, GroupError};

use super::{code, wire};
use crate::handler::RequestContext;

fn assignment(parts: DescribedPartitions) -> Assignment {
    Assignment::default().with_topic_partitions(
        parts
            .into_iter()
            .map(|(id, name, ps)| {
                TopicPartitions::default()
                    .with_topic_id(id)
                    .with_topic_name(TopicName(wire(name)))
                    .with_partitions(ps)
            })
            .collect(),
    )
}

pub(crate) fn handle(
    ctx: &RequestContext,
    req: ConsumerGroupDescribeRequest,
) -> ConsumerGroupDescribeResponse {
    let groups = req
        .group_ids
        .into_iter()
        .map(|id| {
            // Kafka: DESCRIBE on the group; its authorized operations when asked.
            if !ctx.authorized_group(AclOperation::Describe, &id.0) {
                return DescribedGroup::default()
                    .with_group_id(id)
                    .with_error_code(ResponseError::GroupAuthorizationFailed.code())
                    .with_authorized_operations(i32::MIN);
            }
            let ops = if req.include_authorized_operations {
                ctx.broker.authorization.authorized_operations(
                    &ctx.session,
                    ResourceType::Group,
                    &id.0,
                )
            } else {
                i32::MIN // Kafka's "not asked" sentinel
            };
            let out = DescribedGroup::default()
                .with_group_id(id.clone())
                .with_authorized_operations(ops);
            match ctx
                .broker
                .coordinators
                .consumer_groups
                .describe_group(id.0.as_str())
            {
                Ok(d) => out
                    .with_group_state(wire(d.state))
                    .with_group_epoch(d.group_epoch)
                    .with_assignment_epoch(d.assignment_epoch)
                    .with_assignor_name(wire(d.assignor_name))
                    .with_members(
                        d.members
                            .into_iter()
                            .map(|m| {
                                Member::default()
                                    .with_member_id(wire(m.member_id))
                                    .with_instance_id(m.instance_id.map(wire))
                                    .with_rack_id(m.rack_id.map(wire))
                                    .with_member_epoch(m.member_epoch)
                                    .with_client_id(wire(m.client_id))
                                    .with_client_host(wire(m.client_host))
                                    .with_subscribed_topic_names(
                                        m.subscribed_topic_names
                                            .into_iter()
                                            .map(|t| TopicName(wire(t)))
                                            .collect(),
                                    )
                                    .with_subscribed_topic_regex(m.subscribed_topic_regex.map(wire))
                                    .with_assignment(assignment(m.assignment))
                                    .with_target_assignment(assignment(m.target_assignment))
                                    // v1: 1 = consumer protocol member.
                                    .with_member_type(if ctx.api_version >= 1 { 1 } else { -1 })
                            })
                            .collect(),
                    ),
                Err(GroupError::GroupIdNotFound) => out
                    .with_error_code(ResponseError::GroupIdNotFound.code())
                    .with_error_message(Some(wire(format!(
                        "Group {} not found or not a consumer group.",
                        id.0
                    ))))
                    .with_group_state(wire("Dead")),
                Err(e) => out.with_error_code(code(&e)),
            }
        })
        .collect();
    ConsumerGroupDescribeResponse::default().with_groups(groups)
}
