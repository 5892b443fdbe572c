//! ListGroups (v0–v5, state filter v4+, type filter v5+), DescribeGroups (v0–v6) and
//! DeleteGroups (v0–v2), over classic groups, KIP-848 consumer groups (type `consumer`) and
//! share groups (type `share`).
//! Listing shows the groups the principal may DESCRIBE (all with DESCRIBE on the cluster);
//! describing needs DESCRIBE on the group, deleting DELETE.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{
    DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse,
    GroupId, ListGroupsRequest, ListGroupsResponse,
};
use strom_authorizer::{AclOperation, ResourceType};
use strom_coordinator::GroupError;

use super::{code, wire};
use crate::handler::RequestContext;

pub(crate) fn list(ctx: &RequestContext, req: ListGroupsRequest) -> ListGroupsResponse {
    let v = ctx.api_version;
    let wanted: Vec<&str> = if v >= 4 {
        req.states_filter.iter().map(|s| s.as_str()).collect()
    } else {
        Vec::new()
    };
    let state_ok =
        |st: &str| wanted.is_empty() || wanted.iter().any(|w| w.eq_ignore_ascii_case(st));
    let type_ok = |ty: &str| {
        v < 5
            || req.types_filter.is_empty()
            || req
                .types_filter
                .iter()
                .any(|t| t.as_str().eq_ignore_ascii_case(ty))
    };
    let listed = |id: String, protocol_type: &str, state: &str, ty: &str| {
        let out = ListedGroup::default()
            .with_group_id(GroupId(wire(id)))
            .with_protocol_type(wire(protocol_type));
        // group_state exists from v4, group_type from v5.
        let out = if v >= 4 {
            out.with_group_state(wire(state))
        } else {
            out
        };
        if v >= 5 {
            out.with_group_type(wire(ty))
        } else {
            out
        }
    };
    // Kafka: DESCRIBE on the cluster lists every group; otherwise those the principal may
    // DESCRIBE.
    let all = ctx.authorized_cluster(AclOperation::Describe);
    let visible = |id: &str| all || ctx.authorized_group(AclOperation::Describe, id);
    let consumers = &ctx.broker.coordinators.consumer_groups;
    let mut groups = Vec::new();
    if type_ok("classic") {
        for g in ctx.broker.coordinators.groups.list_groups(&[]) {
            // A consumer group's offsets live in an Empty classic entry: list it once, below.
            if state_ok(g.state.as_str())
                && !consumers.is_consumer_group(&g.group_id)
                && visible(&g.group_id)
            {
                groups.push(listed(
                    g.group_id,
                    &g.protocol_type,
                    g.state.as_str(),
                    "classic",
                ));
            }
        }
    }
    if type_ok("consumer") {
        for (id, state) in consumers.list_groups() {
            if state_ok(state) && visible(&id) {
                groups.push(listed(id, "consumer", state, "consumer"));
            }
        }
    }
    if type_ok("share") {
        let now = strom_log::now_ms_unsigned();
        for (id, state) in ctx.broker.coordinators.share_groups.list_groups(now) {
            if state_ok(state) && visible(&id) {
                groups.push(listed(id, "share", state, "share"));
            }
        }
    }
    // Kafka: the groups of partitions still loading are missing, and the answer says so.
    let error_code = if ctx.broker.coordinators.groups.load_in_progress() {
        ResponseError::CoordinatorLoadInProgress.code()
    } else {
        0
    };
    ListGroupsResponse::default()
        .with_error_code(error_code)
        .with_groups(groups)
}

pub(crate) fn describe(ctx: &RequestContext, req: DescribeGroupsRequest) -> DescribeGroupsResponse {
    let v = ctx.api_version;
    let groups = req
        .groups
        .into_iter()
        .map(|id| {
            let out = DescribedGroup::default().with_group_id(id.clone());
            // Kafka: DESCRIBE on the group; its authorized operations when asked (v3+).
            if !ctx.authorized_group(AclOperation::Describe, &id.0) {
                return out.with_error_code(ResponseError::GroupAuthorizationFailed.code());
            }
            let out = if v >= 3 && req.include_authorized_operations {
                out.with_authorized_operations(ctx.broker.authorization.authorized_operations(
                    &ctx.session,
                    ResourceType::Group,
                    &id.0,
                ))
            } else {
                out
            };
            // KIP-1043: v6 reports an unknown group as GROUP_ID_NOT_FOUND with a message;
            // older versions, which have no error message field, as a Dead group with no error.
            let not_found = |out: DescribedGroup, message: String| {
                if v >= 6 {
                    out.with_error_code(ResponseError::GroupIdNotFound.code())
                        .with_error_message(Some(wire(message)))
                        .with_group_state(wire("Dead"))
                } else {
                    out.with_group_state(wire("Dead"))
                }
            };
            if ctx
                .broker
                .coordinators
                .consumer_groups
                .is_consumer_group(id.0.as_str())
            {
                // Kafka: DescribeGroups only describes classic groups; a consumer group is
                // unknown to it (librdkafka's rd_kafka_list_groups describes every listed group
                // with v0, so it must get an answer that v0 can carry).
                return not_found(out, format!("Group {} is not a classic group.", id.0));
            }
            match ctx.broker.coordinators.groups.describe_group(id.0.as_str()) {
                Ok(d) => out
                    .with_group_state(wire(d.state.as_str()))
                    .with_protocol_type(wire(d.protocol_type))
                    .with_protocol_data(wire(d.protocol_name))
                    .with_members(
                        d.members
                            .into_iter()
                            .map(|m| {
                                DescribedGroupMember::default()
                                    .with_member_id(wire(m.member_id))
                                    // group_instance_id exists from v4.
                                    .with_group_instance_id(
                                        m.group_instance_id.filter(|_| v >= 4).map(wire),
                                    )
                                    .with_client_id(wire(m.client_id))
                                    .with_client_host(wire(m.client_host))
                                    .with_member_metadata(m.metadata)
                                    .with_member_assignment(m.assignment)
                            })
                            .collect(),
                    ),
                Err(GroupError::GroupIdNotFound) => {
                    not_found(out, format!("Group {} not found.", id.0))
                }
                Err(e) => out.with_error_code(code(&e)),
            }
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}

/// A deleted share group's state in `__share_group_state`, on every partition of every topic (a
/// share partition's state exists wherever the group ever fetched), so a group made again under
/// the same id starts at its reset position, as in Kafka.
async fn delete_share_state(ctx: &RequestContext, group: &str) -> Result<(), GroupError> {
    let image = ctx.broker.metadata.image();
    let partitions: Vec<(uuid::Uuid, i32)> = image
        .topics()
        .filter(|t| !strom_coordinator::is_internal_topic(&t.name))
        .flat_map(|t| t.partitions.keys().map(move |p| (t.id, *p)))
        .collect();
    ctx.broker
        .share_partitions
        .delete_state(group, &partitions)
        .await
        .map_err(|code| {
            tracing::warn!(group, code, "deleting a share group's state failed");
            GroupError::CoordinatorNotAvailable
        })
}

pub(crate) async fn delete(ctx: RequestContext, req: DeleteGroupsRequest) -> DeleteGroupsResponse {
    // Kafka: DELETE on each group; a refused one is not touched.
    let allowed: Vec<bool> = req
        .groups_names
        .iter()
        .map(|g| ctx.authorized_group(AclOperation::Delete, &g.0))
        .collect();
    let ids: Vec<String> = req
        .groups_names
        .iter()
        .zip(&allowed)
        .map(|(g, ok)| if *ok { g.0.to_string() } else { String::new() })
        .collect();
    // A consumer or share group is deleted first (NON_EMPTY_GROUP with members); its offsets
    // (if any) are in the classic store, whose GROUP_ID_NOT_FOUND then only means "no offsets".
    let mut consumer = Vec::with_capacity(ids.len());
    let now = strom_log::now_ms_unsigned();
    for id in &ids {
        let shares = &ctx.broker.coordinators.share_groups;
        if !id.is_empty() && shares.is_share_group(id) {
            let deleted = match shares.delete_group(id, now) {
                Ok(()) => delete_share_state(&ctx, id).await,
                Err(e) => Err(e),
            };
            consumer.push(Some(deleted));
            continue;
        }
        consumer.push(
            if ctx
                .broker
                .coordinators
                .consumer_groups
                .is_consumer_group(id)
            {
                Some(
                    ctx.broker
                        .coordinators
                        .consumer_groups
                        .delete_group(id)
                        .await,
                )
            } else {
                None
            },
        );
    }
    let classic_ids: Vec<String> = ids
        .iter()
        .zip(&consumer)
        .map(|(id, c)| match c {
            Some(Err(_)) => String::new(), // not touched: answers INVALID_GROUP_ID, replaced below
            _ => id.clone(),
        })
        .collect();
    let results: Vec<Result<(), GroupError>> = ctx
        .broker
        .coordinators
        .groups
        .delete_groups(&classic_ids)
        .await
        .into_iter()
        .zip(consumer)
        .map(|(r, c)| match (c, r) {
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(())), Err(GroupError::GroupIdNotFound)) => Ok(()),
            (_, r) => r,
        })
        .collect();
    DeleteGroupsResponse::default().with_results(
        req.groups_names
            .into_iter()
            .zip(results)
            .zip(allowed)
            .map(|((g, r), ok)| {
                let code = match ok {
                    true => r.err().as_ref().map_or(0, code),
                    false => ResponseError::GroupAuthorizationFailed.code(),
                };
                DeletableGroupResult::default()
                    .with_group_id(g)
                    .with_error_code(code)
            })
            .collect(),
    )
}
