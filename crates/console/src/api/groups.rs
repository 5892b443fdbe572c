//! Consumer groups (list with state, members and total lag; one group's per-partition committed
//! offset, log end, lag and member; resetting its offsets) and share groups (list, members).

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::Path;
use axum::Json;
use serde::{Deserialize, Serialize};
use strom_client::{
    Client, GroupDescription, GroupListing, OffsetSpec, ShareGroupDescription, TopicPartition,
};

use super::{ApiError, ApiResult};
use crate::lag::{partition_lags, total_lag, PartitionLag};
use crate::messages;
use crate::state::Kafka;

/// ListGroups' protocol type of KIP-932 share groups, which have their own pages.
const SHARE: &str = "share";
/// How many groups the list describes at once.
const DESCRIBE_CONCURRENCY: usize = 16;

#[derive(Serialize)]
pub(crate) struct GroupRow {
    group_id: String,
    state: String,
    protocol_type: String,
    /// `None` (with `error`) when the group could not be described: one group the principal
    /// may not describe does not hide the others.
    members: Option<usize>,
    total_lag: Option<i64>,
    error: Option<String>,
}

/// Everything a group page shows, read with as few requests as the client allows.
struct GroupLags {
    description: GroupDescription,
    rows: Vec<PartitionLag>,
}

async fn group_lags(client: &Client, group: &str) -> Result<GroupLags, ApiError> {
    let description = client.describe_group(group).await?;
    let committed = client.fetch_group_offsets(group, None).await?;
    let mut owners = BTreeMap::new();
    for m in &description.members {
        for tp in &m.assignment {
            owners.insert(tp.clone(), format!("{} ({})", m.client_id, m.member_id));
        }
    }
    let tps: Vec<TopicPartition> = committed
        .keys()
        .chain(owners.keys())
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let ends = messages::list(client, &tps, OffsetSpec::Latest).await?;
    Ok(GroupLags {
        rows: partition_lags(&committed, &ends, &owners),
        description,
    })
}

pub(crate) async fn list(kafka: Kafka) -> ApiResult<Vec<GroupRow>> {
    let client = kafka.client().await?;
    let listed: Vec<GroupListing> = client
        .list_groups()
        .await?
        .into_iter()
        .filter(|g| g.protocol_type != SHARE)
        .collect();
    // Groups are described a few at a time: each needs its coordinator, and a page of many
    // groups should not wait for them one by one, nor open hundreds of requests at once.
    let mut rows = Vec::with_capacity(listed.len());
    for chunk in listed.chunks(DESCRIBE_CONCURRENCY) {
        let mut tasks = tokio::task::JoinSet::new();
        for (i, g) in chunk.iter().enumerate() {
            let client = client.clone();
            let id = g.group_id.clone();
            tasks.spawn(async move { (i, group_lags(&client, &id).await) });
        }
        let mut done: Vec<Option<Result<GroupLags, ApiError>>> =
            (0..chunk.len()).map(|_| None).collect();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((i, result)) => done[i] = Some(result),
                Err(e) => tracing::warn!(error = %e, "describing a group failed"),
            }
        }
        for (g, result) in chunk.iter().zip(done) {
            let (members, lag, error) = match result {
                Some(Ok(lags)) => (
                    Some(lags.description.members.len()),
                    Some(total_lag(&lags.rows)),
                    None,
                ),
                Some(Err(e)) => (None, None, Some(e.message)),
                None => (None, None, Some("describing the group failed".to_owned())),
            };
            rows.push(GroupRow {
                total_lag: lag,
                members,
                error,
                state: g.state.clone(),
                protocol_type: g.protocol_type.clone(),
                group_id: g.group_id.clone(),
            });
        }
    }
    Ok(Json(rows))
}

#[derive(Serialize)]
struct Member {
    member_id: String,
    group_instance_id: Option<String>,
    client_id: String,
    client_host: String,
    assignment: Vec<String>,
}

#[derive(Serialize)]
pub(crate) struct GroupPage {
    group_id: String,
    state: String,
    protocol_type: String,
    protocol: String,
    members: Vec<Member>,
    partitions: Vec<PartitionLag>,
    total_lag: i64,
}

pub(crate) async fn describe(kafka: Kafka, Path(group): Path<String>) -> ApiResult<GroupPage> {
    let client = kafka.client().await?;
    let GroupLags { description, rows } = group_lags(&client, &group).await?;
    Ok(Json(GroupPage {
        total_lag: total_lag(&rows),
        group_id: description.group_id,
        state: description.state,
        protocol_type: description.protocol_type,
        protocol: description.protocol,
        members: description
            .members
            .into_iter()
            .map(|m| Member {
                assignment: m.assignment.iter().map(ToString::to_string).collect(),
                member_id: m.member_id,
                group_instance_id: m.group_instance_id,
                client_id: m.client_id,
                client_host: m.client_host,
            })
            .collect(),
        partitions: rows,
    }))
}

/// Where `reset-offsets` moves a group's committed offsets on every partition of one topic.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase", tag = "to", content = "value")]
pub(crate) enum ResetTo {
    Earliest,
    Latest,
    /// An offset, clamped into each partition's log.
    Offset(i64),
    /// The first record at or after this time (ms since the epoch); the log end if none.
    Timestamp(i64),
}

#[derive(Deserialize)]
pub(crate) struct ResetRequest {
    topic: String,
    #[serde(flatten)]
    to: ResetTo,
}

#[derive(Serialize)]
pub(crate) struct ResetResult {
    offsets: Vec<(i32, i64)>,
}

/// Commits new offsets as an admin (the broker refuses while the group has members:
/// UNKNOWN_MEMBER_ID / NON_EMPTY_GROUP; and unless the principal may READ the group).
pub(crate) async fn reset_offsets(
    kafka: Kafka,
    Path(group): Path<String>,
    Json(req): Json<ResetRequest>,
) -> ApiResult<ResetResult> {
    let client = kafka.client().await?;
    let meta = client.topic_metadata(&req.topic, false).await?;
    let tps: Vec<TopicPartition> = meta.topic_partitions().collect();
    let (starts, ends) = messages::log_ranges(&client, &tps).await?;
    let found = match req.to {
        ResetTo::Timestamp(ts) => messages::list(&client, &tps, OffsetSpec::Timestamp(ts)).await?,
        _ => Default::default(),
    };
    let mut offsets = BTreeMap::new();
    for tp in tps {
        let start = starts.get(&tp).copied().unwrap_or(0);
        let end = ends.get(&tp).copied().unwrap_or(0);
        let target = match req.to {
            ResetTo::Earliest => start,
            ResetTo::Latest => end,
            ResetTo::Offset(o) => o.clamp(start, end.max(start)),
            ResetTo::Timestamp(_) => found.get(&tp).copied().filter(|o| *o >= 0).unwrap_or(end),
        };
        offsets.insert(tp, target);
    }
    client.commit_group_offsets(&group, &offsets).await?;
    Ok(Json(ResetResult {
        offsets: offsets
            .into_iter()
            .map(|(tp, o)| (tp.partition, o))
            .collect(),
    }))
}

#[derive(Serialize)]
pub(crate) struct ShareGroupRow {
    group_id: String,
    state: String,
}

pub(crate) async fn list_share(kafka: Kafka) -> ApiResult<Vec<ShareGroupRow>> {
    let client = kafka.client().await?;
    // Brokers without ListGroups v5 have no share groups to list.
    let groups = client.list_share_groups().await.unwrap_or_default();
    Ok(Json(
        groups
            .into_iter()
            .map(|g| ShareGroupRow {
                group_id: g.group_id,
                state: g.state,
            })
            .collect(),
    ))
}

#[derive(Serialize)]
struct ShareMember {
    member_id: String,
    member_epoch: i32,
    assignment: Vec<String>,
}

#[derive(Serialize)]
pub(crate) struct ShareGroupPage {
    group_id: String,
    state: String,
    group_epoch: i32,
    members: Vec<ShareMember>,
}

pub(crate) async fn describe_share(
    kafka: Kafka,
    Path(group): Path<String>,
) -> ApiResult<ShareGroupPage> {
    let client = kafka.client().await?;
    let ShareGroupDescription {
        group_id,
        state,
        group_epoch,
        members,
    } = client.describe_share_group(&group).await?;
    Ok(Json(ShareGroupPage {
        group_id,
        state,
        group_epoch,
        members: members
            .into_iter()
            .map(|m| ShareMember {
                assignment: m.assignment.iter().map(ToString::to_string).collect(),
                member_id: m.member_id,
                member_epoch: m.member_epoch,
            })
            .collect(),
    }))
}
