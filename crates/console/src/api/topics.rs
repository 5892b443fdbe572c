//! Topics: the list (partitions, replication, messages, size), one topic (partitions with
//! leader, replicas, ISR and offsets; configs, and changing one), its Messages browse and the
//! produce form.

use std::collections::{BTreeSet, HashMap};

use axum::extract::{Path, Query};
use axum::Json;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use strom_client::{AlterConfigOp, ConfigResource, TopicMetadata, TopicPartition};

use super::cluster::{configs_view, Config};
use super::{ApiError, ApiResult};
use crate::messages::{self, BrowseQuery, Message};
use crate::state::Kafka;

#[derive(Serialize)]
pub(crate) struct TopicRow {
    name: String,
    internal: bool,
    partitions: usize,
    replication_factor: usize,
    /// Records between the log start and end offsets, summed over partitions (compaction and
    /// transaction markers make it an upper bound, as in kafka-ui).
    messages: i64,
    /// Bytes on disk of the leader replicas (`None` if DescribeLogDirs was refused or failed).
    size: Option<i64>,
    under_replicated: usize,
}

/// The log start and end offsets of every partition of `topics`.
async fn offsets(
    client: &strom_client::Client,
    topics: &[TopicMetadata],
) -> Result<(HashMap<TopicPartition, i64>, HashMap<TopicPartition, i64>), ApiError> {
    let tps: Vec<TopicPartition> = topics.iter().flat_map(|t| t.topic_partitions()).collect();
    Ok(messages::log_ranges(client, &tps).await?)
}

/// The size of each partition's leader replica, from DescribeLogDirs of each leader broker.
/// Best effort: the page still shows everything else when a broker refuses (it needs DESCRIBE
/// on the cluster) or is down; those partitions have no size.
async fn leader_sizes(
    client: &strom_client::Client,
    topics: &[TopicMetadata],
) -> HashMap<TopicPartition, i64> {
    let leaders: BTreeSet<i32> = topics
        .iter()
        .flat_map(|t| t.partitions.iter().filter_map(|p| p.leader))
        .filter(|l| *l >= 0)
        .collect();
    let mut sizes = HashMap::new();
    for broker in leaders {
        let dirs = match client.describe_log_dirs(broker).await {
            Ok(dirs) => dirs,
            Err(e) => {
                tracing::debug!(broker, error = %e, "no partition sizes from this broker");
                continue;
            }
        };
        for (tp, size) in dirs.into_iter().flat_map(|d| d.partition_sizes) {
            if client.metadata().leader(&tp.topic, tp.partition) == Some(broker) {
                sizes.insert(tp, size);
            }
        }
    }
    sizes
}

/// The sum of `sizes` over `t`'s partitions, `None` if any is missing.
fn topic_size(t: &TopicMetadata, sizes: &HashMap<TopicPartition, i64>) -> Option<i64> {
    t.partitions
        .iter()
        .map(|p| {
            sizes
                .get(&TopicPartition::new(&t.name, p.partition))
                .copied()
        })
        .sum()
}

pub(crate) async fn list(kafka: Kafka) -> ApiResult<Vec<TopicRow>> {
    let client = kafka.client().await?;
    let topics = client.describe_topics(None).await?;
    let (starts, ends) = offsets(&client, &topics).await?;
    let sizes = leader_sizes(&client, &topics).await;
    Ok(Json(
        topics
            .iter()
            .map(|t| TopicRow {
                name: t.name.clone(),
                internal: t.is_internal,
                partitions: t.partitions.len(),
                replication_factor: t
                    .partitions
                    .iter()
                    .map(|p| p.replicas.len())
                    .max()
                    .unwrap_or(0),
                messages: t
                    .partitions
                    .iter()
                    .map(|p| {
                        let tp = TopicPartition::new(&t.name, p.partition);
                        let end = ends.get(&tp).copied().unwrap_or(0);
                        let start = starts.get(&tp).copied().unwrap_or(0);
                        end.saturating_sub(start).max(0)
                    })
                    .sum(),
                size: topic_size(t, &sizes),
                under_replicated: t
                    .partitions
                    .iter()
                    .filter(|p| p.isr.len() < p.replicas.len())
                    .count(),
            })
            .collect(),
    ))
}

#[derive(Serialize)]
struct PartitionRow {
    partition: i32,
    leader: Option<i32>,
    replicas: Vec<i32>,
    isr: Vec<i32>,
    offline_replicas: Vec<i32>,
    log_start: Option<i64>,
    log_end: Option<i64>,
    /// Bytes on disk of the leader replica.
    size: Option<i64>,
}

#[derive(Serialize)]
pub(crate) struct TopicPage {
    name: String,
    id: String,
    internal: bool,
    partitions: Vec<PartitionRow>,
    configs: Vec<Config>,
}

pub(crate) async fn describe(kafka: Kafka, Path(topic): Path<String>) -> ApiResult<TopicPage> {
    let client = kafka.client().await?;
    let topics = client.describe_topics(Some(&[topic.as_str()])).await?;
    let Some(t) = topics.into_iter().next() else {
        return Err(ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            format!("unknown topic {topic}"),
        ));
    };
    let (starts, ends) = offsets(&client, std::slice::from_ref(&t)).await?;
    let sizes = leader_sizes(&client, std::slice::from_ref(&t)).await;
    let configs = configs_view(client.describe_topic_configs(&topic).await?);
    let partitions = t
        .partitions
        .iter()
        .map(|p| {
            let tp = TopicPartition::new(&t.name, p.partition);
            PartitionRow {
                partition: p.partition,
                leader: p.leader.filter(|l| *l >= 0),
                replicas: p.replicas.clone(),
                isr: p.isr.clone(),
                offline_replicas: p.offline_replicas.clone(),
                log_start: starts.get(&tp).copied(),
                log_end: ends.get(&tp).copied(),
                size: sizes.get(&tp).copied(),
            }
        })
        .collect();
    Ok(Json(TopicPage {
        name: t.name,
        id: t.id.to_string(),
        internal: t.is_internal,
        partitions,
        configs,
    }))
}

pub(crate) async fn messages(
    kafka: Kafka,
    Path(topic): Path<String>,
    Query(query): Query<BrowseQuery>,
) -> ApiResult<Vec<Message>> {
    let client = kafka.client().await?;
    Ok(Json(messages::browse(&client, &topic, &query).await?))
}

/// The produce form's body. Empty strings are records with that empty key/value; absent (null)
/// ones are null.
#[derive(Deserialize)]
pub(crate) struct ProduceRequest {
    partition: Option<i32>,
    key: Option<String>,
    value: Option<String>,
    #[serde(default)]
    headers: Vec<HeaderField>,
}

#[derive(Deserialize)]
struct HeaderField {
    key: String,
    value: Option<String>,
}

#[derive(Serialize)]
pub(crate) struct Produced {
    partition: i32,
    offset: i64,
    timestamp: i64,
}

pub(crate) async fn produce(
    kafka: Kafka,
    Path(topic): Path<String>,
    Json(req): Json<ProduceRequest>,
) -> ApiResult<Produced> {
    let producer = kafka.producer().await?;
    let key = req.key.map(Bytes::from);
    let value = req.value.map(Bytes::from);
    let headers = req
        .headers
        .into_iter()
        .filter(|h| !h.key.is_empty())
        .map(|h| (h.key, h.value.map(Bytes::from)))
        .collect();
    let pending = match req.partition {
        Some(p) => producer.send_to(&topic, p, key, value, headers).await?,
        None => producer.send(&topic, key, value, headers).await?,
    };
    let meta = pending.wait().await?;
    Ok(Json(Produced {
        partition: meta.partition,
        offset: meta.offset,
        timestamp: meta.timestamp,
    }))
}

/// One config change of the topic page: `value` sets an override, `null` removes it.
#[derive(Deserialize)]
pub(crate) struct ConfigChange {
    name: String,
    value: Option<String>,
}

/// IncrementalAlterConfigs of one key (the broker checks ALTER_CONFIGS and the value).
pub(crate) async fn alter_config(
    kafka: Kafka,
    Path(topic): Path<String>,
    Json(change): Json<ConfigChange>,
) -> ApiResult<Vec<Config>> {
    if change.name.trim().is_empty() {
        return Err(ApiError::bad_request("a config name is required"));
    }
    let client = kafka.client().await?;
    let op = match change.value {
        Some(v) => AlterConfigOp::Set(change.name, v),
        None => AlterConfigOp::Delete(change.name),
    };
    let resource = ConfigResource::Topic(topic.clone());
    client.alter_configs(&resource, &[op]).await?;
    Ok(Json(configs_view(
        client.describe_topic_configs(&topic).await?,
    )))
}
