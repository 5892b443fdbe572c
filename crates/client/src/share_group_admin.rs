//! Share-group (KIP-932) administration on [`Client`]: ListGroups with the `share` type filter
//! (on every broker, each lists the groups it coordinates) and ShareGroupDescribe (at the group's
//! coordinator). Deleting a share group is DeleteGroups, as for any group
//! (`Client::delete_group`).

use kafka_protocol::messages::{ApiKey, ShareGroupDescribeRequest};
use kafka_protocol::ResponseError;

use crate::client::Client;
use crate::error::ClientError;
use crate::group_admin::{check, gid, GroupListing};
use crate::metadata::TopicPartition;

/// One member of ShareGroupDescribe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareMemberDescription {
    /// Member id.
    pub member_id: String,
    /// Its epoch.
    pub member_epoch: i32,
    /// Assigned partitions (a partition may be assigned to several members).
    pub assignment: Vec<TopicPartition>,
}

/// ShareGroupDescribe of one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareGroupDescription {
    /// The group id.
    pub group_id: String,
    /// "Empty", "Stable", or "Dead" for a group that does not exist.
    pub state: String,
    /// The group epoch.
    pub group_epoch: i32,
    /// Members.
    pub members: Vec<ShareMemberDescription>,
}

impl Client {
    /// The share groups of the cluster, sorted by id (ListGroups v5 with the `share` type).
    pub async fn list_share_groups(&self) -> Result<Vec<GroupListing>, ClientError> {
        self.list_groups_of_types(&["share"]).await
    }

    /// ShareGroupDescribe of `group`; an unknown group is described as "Dead" with no members.
    pub async fn describe_share_group(
        &self,
        group: &str,
    ) -> Result<ShareGroupDescription, ClientError> {
        self.with_coordinator(group, |conn| async move {
            let version = conn.version(ApiKey::ShareGroupDescribe)?;
            let req = ShareGroupDescribeRequest::default().with_group_ids(vec![gid(group)]);
            let resp = conn.send(version, &req).await?;
            let g = resp.groups.into_iter().next().ok_or_else(|| {
                ClientError::broker(
                    format!("describe share group {group}"),
                    -1,
                    Some("no group"),
                )
            })?;
            if g.error_code == ResponseError::GroupIdNotFound.code() {
                return Ok(ShareGroupDescription {
                    group_id: group.to_owned(),
                    state: "Dead".into(),
                    group_epoch: -1,
                    members: Vec::new(),
                });
            }
            check(|| format!("describe share group {group}"), g.error_code)?;
            let members = g
                .members
                .into_iter()
                .map(|m| ShareMemberDescription {
                    member_id: m.member_id.to_string(),
                    member_epoch: m.member_epoch,
                    assignment: m
                        .assignment
                        .topic_partitions
                        .into_iter()
                        .flat_map(|t| {
                            let name = t.topic_name.0.to_string();
                            t.partitions
                                .into_iter()
                                .map(move |p| TopicPartition::new(name.clone(), p))
                        })
                        .collect(),
                })
                .collect();
            Ok(ShareGroupDescription {
                group_id: g.group_id.0.to_string(),
                state: g.group_state.to_string(),
                group_epoch: g.group_epoch,
                members,
            })
        })
        .await
    }
}
