//! Share-group (KIP-932) administration on [`Client`]: ListGroups with the `share` type filter
//! (on every broker, each lists the groups it coordinates), ShareGroupDescribe and the share-group
//! offset APIs (Describe/Alter/DeleteShareGroupOffsets) at the group's coordinator. Deleting a
//! share group is DeleteGroups, as for any group (`Client::delete_group`).

use std::collections::BTreeMap;

use kafka_protocol::messages::alter_share_group_offsets_request::{
    AlterShareGroupOffsetsRequestPartition, AlterShareGroupOffsetsRequestTopic,
};
use kafka_protocol::messages::delete_share_group_offsets_request::DeleteShareGroupOffsetsRequestTopic;
use kafka_protocol::messages::describe_share_group_offsets_request::DescribeShareGroupOffsetsRequestGroup;
use kafka_protocol::messages::{
    AlterShareGroupOffsetsRequest, ApiKey, DeleteShareGroupOffsetsRequest,
    DescribeShareGroupOffsetsRequest, ShareGroupDescribeRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
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

fn topic_name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_owned()))
}

impl Client {
    /// DescribeShareGroupOffsets of every share partition of `group` that has state: its start
    /// offset (SPSO), sorted.
    pub async fn describe_share_group_offsets(
        &self,
        group: &str,
    ) -> Result<BTreeMap<TopicPartition, i64>, ClientError> {
        self.with_coordinator(group, |conn| async move {
            let version = conn.version(ApiKey::DescribeShareGroupOffsets)?;
            let req = DescribeShareGroupOffsetsRequest::default().with_groups(vec![
                DescribeShareGroupOffsetsRequestGroup::default()
                    .with_group_id(gid(group))
                    .with_topics(None),
            ]);
            let resp = conn.send(version, &req).await?;
            let context = || format!("describe share group offsets of {group}");
            let g = resp
                .groups
                .into_iter()
                .next()
                .ok_or_else(|| ClientError::broker(context(), -1, Some("no group")))?;
            check(context, g.error_code)?;
            let mut out = BTreeMap::new();
            for t in g.topics {
                let name = t.topic_name.0.to_string();
                for p in t.partitions {
                    check(context, p.error_code)?;
                    out.insert(
                        TopicPartition::new(name.clone(), p.partition_index),
                        p.start_offset,
                    );
                }
            }
            Ok(out)
        })
        .await
    }

    /// AlterShareGroupOffsets: each partition's share-partition start offset moves to the given
    /// offset (the group must be empty).
    pub async fn alter_share_group_offsets(
        &self,
        group: &str,
        offsets: &BTreeMap<TopicPartition, i64>,
    ) -> Result<(), ClientError> {
        let mut by_topic: BTreeMap<&str, Vec<AlterShareGroupOffsetsRequestPartition>> =
            BTreeMap::new();
        for (tp, offset) in offsets {
            by_topic.entry(&tp.topic).or_default().push(
                AlterShareGroupOffsetsRequestPartition::default()
                    .with_partition_index(tp.partition)
                    .with_start_offset(*offset),
            );
        }
        let topics: Vec<AlterShareGroupOffsetsRequestTopic> = by_topic
            .into_iter()
            .map(|(t, ps)| {
                AlterShareGroupOffsetsRequestTopic::default()
                    .with_topic_name(topic_name(t))
                    .with_partitions(ps)
            })
            .collect();
        self.with_coordinator(group, |conn| {
            let topics = topics.clone();
            async move {
                let version = conn.version(ApiKey::AlterShareGroupOffsets)?;
                let req = AlterShareGroupOffsetsRequest::default()
                    .with_group_id(gid(group))
                    .with_topics(topics);
                let resp = conn.send(version, &req).await?;
                let context = || format!("alter share group offsets of {group}");
                check(context, resp.error_code)?;
                for t in &resp.responses {
                    for p in &t.partitions {
                        check(context, p.error_code)?;
                    }
                }
                Ok(())
            }
        })
        .await
    }

    /// DeleteShareGroupOffsets: forgets `group`'s state on every partition of `topics` (the group
    /// must be empty); the next member starts there at `share.auto.offset.reset`.
    pub async fn delete_share_group_offsets(
        &self,
        group: &str,
        topics: &[String],
    ) -> Result<(), ClientError> {
        self.with_coordinator(group, |conn| async move {
            let version = conn.version(ApiKey::DeleteShareGroupOffsets)?;
            let req = DeleteShareGroupOffsetsRequest::default()
                .with_group_id(gid(group))
                .with_topics(
                    topics
                        .iter()
                        .map(|t| {
                            DeleteShareGroupOffsetsRequestTopic::default()
                                .with_topic_name(topic_name(t))
                        })
                        .collect(),
                );
            let resp = conn.send(version, &req).await?;
            let context = || format!("delete share group offsets of {group}");
            check(context, resp.error_code)?;
            for t in &resp.responses {
                check(context, t.error_code)?;
            }
            Ok(())
        })
        .await
    }
}
