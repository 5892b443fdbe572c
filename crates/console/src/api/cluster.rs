//! Overview and cluster configs: DescribeCluster and Metadata for the brokers, controller and
//! partition health; DescribeConfigs for a broker (or the cluster-wide defaults, id `default`).

use axum::extract::{Path, State};
use axum::Json;
use serde::Serialize;
use strom_client::{ConfigEntry, ConfigResource};

use super::{ApiError, ApiResult};
use crate::state::{Console, Kafka};

/// What the front end needs to know about its host server.
#[derive(Serialize)]
pub(crate) struct ConsoleInfo {
    metrics: bool,
    bootstrap: String,
}

pub(crate) async fn config(State(console): State<Console>) -> Json<ConsoleInfo> {
    Json(ConsoleInfo {
        metrics: console.config().metrics_at_origin,
        bootstrap: console.config().client.bootstrap_servers.clone(),
    })
}

#[derive(Serialize)]
struct Broker {
    id: i32,
    host: String,
    port: i32,
    rack: Option<String>,
    state: &'static str,
    controller: bool,
}

#[derive(Serialize)]
pub(crate) struct Overview {
    cluster_id: String,
    controller_id: Option<i32>,
    brokers: Vec<Broker>,
    topics: usize,
    partitions: usize,
    under_replicated: usize,
    offline: usize,
}

pub(crate) async fn overview(kafka: Kafka) -> ApiResult<Overview> {
    let client = kafka.client().await?;
    let cluster = client.describe_cluster().await?;
    let topics = client.describe_topics(None).await?;
    let mut brokers: Vec<Broker> = cluster
        .brokers
        .iter()
        .map(|b| Broker {
            id: b.id,
            host: b.host.clone(),
            port: b.port,
            rack: b.rack.clone(),
            state: "live",
            controller: cluster.controller_id == Some(b.id),
        })
        .collect();
    brokers.extend(cluster.fenced.iter().map(|id| Broker {
        id: *id,
        host: String::new(),
        port: -1,
        rack: None,
        state: "fenced",
        controller: false,
    }));
    let partitions = topics.iter().flat_map(|t| t.partitions.iter());
    Ok(Json(Overview {
        cluster_id: cluster.cluster_id,
        controller_id: cluster.controller_id,
        brokers,
        topics: topics.len(),
        partitions: partitions.clone().count(),
        under_replicated: partitions
            .clone()
            .filter(|p| p.isr.len() < p.replicas.len())
            .count(),
        offline: partitions
            .filter(|p| p.leader.is_none_or(|l| l < 0))
            .count(),
    }))
}

/// One config as pages show it.
#[derive(Serialize)]
pub(crate) struct Config {
    name: String,
    value: Option<String>,
    source: String,
    read_only: bool,
    sensitive: bool,
}

/// Configs for the page: a sensitive value is never sent.
pub(crate) fn configs_view(entries: Vec<ConfigEntry>) -> Vec<Config> {
    entries
        .into_iter()
        .map(|e| Config {
            value: if e.sensitive { None } else { e.value },
            source: format!("{:?}", e.source),
            name: e.name,
            read_only: e.read_only,
            sensitive: e.sensitive,
        })
        .collect()
}

pub(crate) async fn broker_configs(kafka: Kafka, Path(id): Path<String>) -> ApiResult<Vec<Config>> {
    let resource = if id == "default" {
        ConfigResource::Broker(None)
    } else {
        let id = id
            .parse()
            .map_err(|_| ApiError::bad_request(format!("not a broker id: {id}")))?;
        ConfigResource::Broker(Some(id))
    };
    let client = kafka.client().await?;
    Ok(Json(configs_view(
        client.describe_configs(&resource).await?,
    )))
}
