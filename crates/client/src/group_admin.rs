//! Consumer-group requests on [`Client`]: FindCoordinator, and the admin operations (ListGroups,
//! DescribeGroups, DeleteGroups, OffsetFetch and OffsetCommit for a group). The group member
//! (`group.rs`) uses the same OffsetFetch/OffsetCommit helpers with its generation.
//!
//! Every group request goes to the group's coordinator; COORDINATOR_LOAD_IN_PROGRESS,
//! COORDINATOR_NOT_AVAILABLE and NOT_COORDINATOR mean "find it again and retry" (bounded by the
//! client's `retries`).

use std::collections::BTreeMap;

use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{
    ApiKey, DeleteGroupsRequest, DescribeGroupsRequest, FindCoordinatorRequest, GroupId,
    ListGroupsRequest, OffsetCommitRequest, OffsetFetchRequest,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::assignor::decode_assignment;
use crate::client::Client;
use crate::connection::Connection;
use crate::error::ClientError;
use crate::metadata::topic_name;
use crate::metadata::TopicPartition;

/// One group of ListGroups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    /// The group id.
    pub group_id: String,
    /// "consumer" for consumer groups.
    pub protocol_type: String,
    /// Kafka's state name ("Stable", "Empty", …); empty from brokers before ListGroups v4.
    pub state: String,
}

/// One member of DescribeGroups.
#[derive(Debug, Clone)]
pub struct GroupMemberDescription {
    /// Member id.
    pub member_id: String,
    /// group.instance.id of a static member.
    pub group_instance_id: Option<String>,
    /// client.id.
    pub client_id: String,
    /// The member's address as the broker saw it.
    pub client_host: String,
    /// Assigned partitions (decoded from the consumer protocol; empty unless Stable).
    pub assignment: Vec<TopicPartition>,
}

/// DescribeGroups for one group.
#[derive(Debug, Clone)]
pub struct GroupDescription {
    /// The group id.
    pub group_id: String,
    /// Kafka's state name ("Dead" for an unknown group).
    pub state: String,
    /// Protocol type ("consumer").
    pub protocol_type: String,
    /// The selected assignor ("range").
    pub protocol: String,
    /// Members.
    pub members: Vec<GroupMemberDescription>,
}

/// The identity a commit is made under: `(-1, "")` for an admin commit to an empty group.
#[derive(Debug, Clone, Default)]
pub(crate) struct CommitIdentity {
    pub(crate) generation: i32,
    pub(crate) member_id: String,
    pub(crate) group_instance_id: Option<String>,
}

/// Codes after which a group (or share) coordinator must be found again: it moved or is loading.
pub(crate) fn is_coordinator_moved(code: i16) -> bool {
    matches!(
        ResponseError::try_from_code(code),
        Some(
            ResponseError::CoordinatorLoadInProgress
                | ResponseError::CoordinatorNotAvailable
                | ResponseError::NotCoordinator
        )
    )
}

/// Whether an error means the coordinator must be looked up again.
pub(crate) fn needs_new_coordinator(e: &ClientError) -> bool {
    e.kafka_code().is_some_and(is_coordinator_moved)
        || matches!(
            e,
            ClientError::Io { .. } | ClientError::ConnectionClosed { .. }
        )
}

pub(crate) fn gid(group: &str) -> GroupId {
    GroupId(StrBytes::from_string(group.to_owned()))
}

/// A broker error code as an error with `context`, or `Ok` for 0.
pub(crate) fn check(context: impl FnOnce() -> String, code: i16) -> Result<(), ClientError> {
    if code == 0 {
        Ok(())
    } else {
        Err(ClientError::broker(context(), code, None))
    }
}

impl Client {
    /// The connection to `group`'s coordinator (FindCoordinator, retried while none is ready).
    pub async fn group_coordinator(&self, group: &str) -> Result<Connection, ClientError> {
        let mut last = None;
        for attempt in 0..=self.config().retries {
            if attempt > 0 {
                self.backoff(attempt).await;
            }
            match self.find_coordinator_once(group).await {
                Ok(conn) => return Ok(conn),
                Err(e) if needs_new_coordinator(&e) || e.is_retriable() => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| ClientError::NoBrokerAvailable(group.to_owned())))
    }

    /// A connection of its own to `group`'s coordinator, for a group member: its JoinGroup may
    /// wait a whole rebalance, which must not hold up fetches pipelined on the shared one.
    pub(crate) async fn dedicated_coordinator(
        &self,
        group: &str,
    ) -> Result<Connection, ClientError> {
        let pooled = self.group_coordinator(group).await?;
        Connection::connect(pooled.addr(), &self.config().connection).await
    }

    async fn find_coordinator_once(&self, group: &str) -> Result<Connection, ClientError> {
        let conn = self.any_connection().await?;
        let version = conn.version(ApiKey::FindCoordinator)?;
        let key = StrBytes::from_string(group.to_owned());
        let req = if version >= 4 {
            FindCoordinatorRequest::default().with_coordinator_keys(vec![key])
        } else {
            FindCoordinatorRequest::default().with_key(key)
        };
        let resp = conn.send(version, &req).await?;
        let context = || format!("find coordinator for group {group}");
        let node = if version >= 4 {
            let c = resp.coordinators.first().ok_or_else(|| {
                ClientError::broker(context(), -1, Some("no coordinator in response"))
            })?;
            check(context, c.error_code)?;
            c.node_id.0
        } else {
            check(context, resp.error_code)?;
            resp.node_id.0
        };
        if !self.metadata().brokers.contains_key(&node) {
            self.refresh_metadata(Some(&[]), false).await?;
        }
        self.connection(node).await
    }

    /// Runs `op` against `group`'s coordinator, finding it again when it moved.
    pub(crate) async fn with_coordinator<T, F, Fut>(
        &self,
        group: &str,
        op: F,
    ) -> Result<T, ClientError>
    where
        F: Fn(Connection) -> Fut,
        Fut: std::future::Future<Output = Result<T, ClientError>>,
    {
        let mut attempt = 0;
        loop {
            let conn = self.group_coordinator(group).await?;
            match op(conn).await {
                Err(e) if needs_new_coordinator(&e) && attempt < self.config().retries => {
                    attempt += 1;
                    self.backoff(attempt).await;
                }
                other => return other,
            }
        }
    }

    /// ListGroups on every broker (each lists the groups it coordinates).
    pub async fn list_groups(&self) -> Result<Vec<GroupListing>, ClientError> {
        self.list_groups_of_types(&[]).await
    }

    /// ListGroups on every broker with a type filter (v5+: `classic`, `consumer`, `share`;
    /// empty = every type).
    pub(crate) async fn list_groups_of_types(
        &self,
        types: &[&'static str],
    ) -> Result<Vec<GroupListing>, ClientError> {
        let meta = self.refresh_metadata(Some(&[]), false).await?;
        let mut out = Vec::new();
        let req = ListGroupsRequest::default()
            .with_types_filter(types.iter().map(|t| StrBytes::from_static_str(t)).collect());
        for id in meta.brokers.keys() {
            let conn = self.connection(*id).await?;
            let version = conn.version(ApiKey::ListGroups)?;
            if !types.is_empty() && version < 5 {
                return Err(ClientError::broker(
                    "list groups by type",
                    ResponseError::UnsupportedVersion.code(),
                    Some("the broker has no ListGroups type filter (v5)"),
                ));
            }
            let resp = conn.send(version, &req).await?;
            check(|| "list groups".to_owned(), resp.error_code)?;
            out.extend(resp.groups.into_iter().map(|g| GroupListing {
                group_id: g.group_id.0.to_string(),
                protocol_type: g.protocol_type.to_string(),
                state: g.group_state.to_string(),
            }));
        }
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        Ok(out)
    }

    /// DescribeGroups for one group; an unknown group is described as "Dead" with no members.
    pub async fn describe_group(&self, group: &str) -> Result<GroupDescription, ClientError> {
        self.with_coordinator(group, |conn| async move {
            let version = conn.version(ApiKey::DescribeGroups)?;
            let req = DescribeGroupsRequest::default().with_groups(vec![gid(group)]);
            let resp = conn.send(version, &req).await?;
            let g = resp.groups.into_iter().next().ok_or_else(|| {
                ClientError::broker(format!("describe group {group}"), -1, Some("no group"))
            })?;
            if g.error_code == ResponseError::GroupIdNotFound.code() {
                return Ok(GroupDescription {
                    group_id: group.to_owned(),
                    state: "Dead".into(),
                    protocol_type: String::new(),
                    protocol: String::new(),
                    members: Vec::new(),
                });
            }
            check(|| format!("describe group {group}"), g.error_code)?;
            let consumer = g.protocol_type.as_str() == crate::assignor::PROTOCOL_TYPE;
            let members = g
                .members
                .into_iter()
                .map(|m| GroupMemberDescription {
                    member_id: m.member_id.to_string(),
                    group_instance_id: m.group_instance_id.map(|s| s.to_string()),
                    client_id: m.client_id.to_string(),
                    client_host: m.client_host.to_string(),
                    assignment: if consumer {
                        decode_assignment(m.member_assignment)
                            .unwrap_or_default()
                            .into_iter()
                            .map(|(t, p)| TopicPartition::new(t, p))
                            .collect()
                    } else {
                        Vec::new()
                    },
                })
                .collect();
            Ok(GroupDescription {
                group_id: g.group_id.0.to_string(),
                state: g.group_state.to_string(),
                protocol_type: g.protocol_type.to_string(),
                protocol: g.protocol_data.to_string(),
                members,
            })
        })
        .await
    }

    /// Deletes groups (each must be Empty: NON_EMPTY_GROUP otherwise).
    pub async fn delete_group(&self, group: &str) -> Result<(), ClientError> {
        self.with_coordinator(group, |conn| async move {
            let version = conn.version(ApiKey::DeleteGroups)?;
            let req = DeleteGroupsRequest::default().with_groups_names(vec![gid(group)]);
            let resp = conn.send(version, &req).await?;
            for r in resp.results {
                check(|| format!("delete group {group}"), r.error_code)?;
            }
            Ok(())
        })
        .await
    }

    /// The committed offsets of `group` (`topics` = `None`: every partition it committed).
    /// Partitions without a commit are left out.
    pub async fn fetch_group_offsets(
        &self,
        group: &str,
        topics: Option<&[(String, Vec<i32>)]>,
    ) -> Result<BTreeMap<TopicPartition, i64>, ClientError> {
        self.with_coordinator(group, |conn| async move {
            fetch_offsets_on(&conn, group, topics).await
        })
        .await
    }

    /// Commits offsets for `group` as an admin (generation -1, no member): the group must have
    /// no members (UNKNOWN_MEMBER_ID otherwise). What `groups reset-offsets` uses.
    pub async fn commit_group_offsets(
        &self,
        group: &str,
        offsets: &BTreeMap<TopicPartition, i64>,
    ) -> Result<(), ClientError> {
        let id = CommitIdentity {
            generation: -1,
            ..Default::default()
        };
        self.with_coordinator(group, |conn| {
            let id = &id;
            async move { commit_offsets_on(&conn, group, id, offsets).await }
        })
        .await
    }
}

/// OffsetFetch (v1–v7 shape) on a known coordinator connection.
pub(crate) async fn fetch_offsets_on(
    conn: &Connection,
    group: &str,
    topics: Option<&[(String, Vec<i32>)]>,
) -> Result<BTreeMap<TopicPartition, i64>, ClientError> {
    let version = conn.version(ApiKey::OffsetFetch)?;
    let req = OffsetFetchRequest::default()
        .with_group_id(gid(group))
        .with_topics(topics.map(|ts| {
            ts.iter()
                .map(|(t, ps)| {
                    OffsetFetchRequestTopic::default()
                        .with_name(topic_name(t))
                        .with_partition_indexes(ps.clone())
                })
                .collect()
        }));
    let resp = conn.send(version, &req).await?;
    check(
        || format!("fetch offsets of group {group}"),
        resp.error_code,
    )?;
    let mut out = BTreeMap::new();
    for t in resp.topics {
        for p in t.partitions {
            check(
                || {
                    format!(
                        "fetch offset {}-{} of group {group}",
                        t.name.0, p.partition_index
                    )
                },
                p.error_code,
            )?;
            if p.committed_offset >= 0 {
                out.insert(
                    TopicPartition::new(t.name.0.to_string(), p.partition_index),
                    p.committed_offset,
                );
            }
        }
    }
    Ok(out)
}

/// OffsetCommit on a known coordinator connection; fails on the first partition error.
pub(crate) async fn commit_offsets_on(
    conn: &Connection,
    group: &str,
    id: &CommitIdentity,
    offsets: &BTreeMap<TopicPartition, i64>,
) -> Result<(), ClientError> {
    if offsets.is_empty() {
        return Ok(());
    }
    let version = conn.version(ApiKey::OffsetCommit)?;
    let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
    for (tp, offset) in offsets {
        let part = OffsetCommitRequestPartition::default()
            .with_partition_index(tp.partition)
            .with_committed_offset(*offset)
            .with_committed_leader_epoch(-1)
            .with_committed_metadata(Some(StrBytes::from_static_str("")));
        match topics.last_mut() {
            Some(t) if t.name.0.as_str() == tp.topic.as_str() => t.partitions.push(part),
            _ => topics.push(
                OffsetCommitRequestTopic::default()
                    .with_name(topic_name(&tp.topic))
                    .with_partitions(vec![part]),
            ),
        }
    }
    let req = OffsetCommitRequest::default()
        .with_group_id(gid(group))
        .with_generation_id_or_member_epoch(id.generation)
        .with_member_id(StrBytes::from_string(id.member_id.clone()))
        .with_group_instance_id(id.group_instance_id.clone().map(StrBytes::from_string))
        .with_retention_time_ms(-1)
        .with_topics(topics);
    let resp = conn.send(version, &req).await?;
    for t in resp.topics {
        for p in t.partitions {
            check(
                || {
                    format!(
                        "commit offset {}-{} of group {group}",
                        t.name.0, p.partition_index
                    )
                },
                p.error_code,
            )?;
        }
    }
    Ok(())
}
