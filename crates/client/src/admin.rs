//! Admin operations on [`Client`]: create/delete/list/describe topics, topic configs, ListOffsets
//! and DescribeCluster. Topic-level errors from the broker become `ClientError::Broker` carrying
//! Kafka's error name.

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{
    ApiKey, BrokerId, CreateTopicsRequest, DeleteTopicsRequest, DescribeClusterRequest,
    ListOffsetsRequest,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::admin_configs::{ConfigEntry, ConfigResource};
use crate::client::Client;
use crate::error::ClientError;
use crate::metadata::{topic_name, BrokerInfo, TopicMetadata, TopicPartition};

/// How long the broker may take to create or delete topics before answering REQUEST_TIMED_OUT.
const ADMIN_TIMEOUT_MS: i32 = 30_000;

/// Which offset ListOffsets should return for a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The log start offset (timestamp -2).
    Earliest,
    /// The log end offset / high watermark (timestamp -1).
    Latest,
    /// The offset of the record with the largest timestamp (timestamp -3, ListOffsets v7+).
    MaxTimestamp,
    /// The first offset whose timestamp is >= this (milliseconds since the epoch).
    Timestamp(i64),
}

impl OffsetSpec {
    fn timestamp(self) -> i64 {
        match self {
            OffsetSpec::Earliest => -2,
            OffsetSpec::Latest => -1,
            OffsetSpec::MaxTimestamp => -3,
            OffsetSpec::Timestamp(ts) => ts,
        }
    }
}

/// One ListOffsets answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedOffset {
    /// The offset (-1 when no record matches a timestamp lookup).
    pub offset: i64,
    /// The timestamp of that record (-1 for earliest/latest).
    pub timestamp: i64,
    /// The leader epoch of that record (-1 if unknown).
    pub leader_epoch: i32,
}

/// DescribeCluster's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDescription {
    /// Cluster id.
    pub cluster_id: String,
    /// Active controller, when known.
    pub controller_id: Option<i32>,
    /// Live brokers, sorted by id.
    pub brokers: Vec<BrokerInfo>,
    /// Registered brokers the controller fenced (heartbeats lapsed), sorted; known from
    /// DescribeCluster v2 on.
    pub fenced: Vec<i32>,
}

impl Client {
    /// Creates one topic. `partitions`/`replication_factor` of -1 take the broker defaults (CreateTopics
    /// v4+). Fails with the broker's error (`TOPIC_ALREADY_EXISTS`, `INVALID_CONFIG`, ...).
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: &BTreeMap<String, String>,
    ) -> Result<(), ClientError> {
        let topic = CreatableTopic::default()
            .with_name(topic_name(name))
            .with_num_partitions(partitions)
            .with_replication_factor(replication_factor)
            .with_configs(
                configs
                    .iter()
                    .map(|(k, v)| {
                        CreatableTopicConfig::default()
                            .with_name(StrBytes::from_string(k.clone()))
                            .with_value(Some(StrBytes::from_string(v.clone())))
                    })
                    .collect(),
            );
        let request = CreateTopicsRequest::default()
            .with_topics(vec![topic])
            .with_timeout_ms(ADMIN_TIMEOUT_MS);
        let context = format!("create topic {name}");
        self.with_controller_retry(
            &context,
            |conn, version| {
                let request = &request;
                async move {
                    let response = conn.send(version, request).await?;
                    match response.topics.iter().find(|t| t.name.0.as_str() == name) {
                        Some(t) if t.error_code != 0 => Err(ClientError::broker(
                            format!("create topic {name}"),
                            t.error_code,
                            t.error_message.as_deref(),
                        )),
                        Some(_) => Ok(()),
                        None => Err(ClientError::broker(
                            format!("create topic {name}"),
                            -1,
                            Some("topic missing from response"),
                        )),
                    }
                }
            },
            ApiKey::CreateTopics,
        )
        .await
    }

    /// Deletes topics by name. Fails on the first topic the broker reports an error for.
    pub async fn delete_topics(&self, names: &[&str]) -> Result<(), ClientError> {
        let context = format!("delete topic {}", names.join(","));
        self.with_controller_retry(
            &context,
            |conn, version| async move {
                let request = if version >= 6 {
                    DeleteTopicsRequest::default().with_topics(
                        names
                            .iter()
                            .map(|n| DeleteTopicState::default().with_name(Some(topic_name(n))))
                            .collect(),
                    )
                } else {
                    DeleteTopicsRequest::default()
                        .with_topic_names(names.iter().map(|n| topic_name(n)).collect())
                }
                .with_timeout_ms(ADMIN_TIMEOUT_MS);
                let response = conn.send(version, &request).await?;
                for r in &response.responses {
                    if r.error_code != 0 {
                        let name = r
                            .name
                            .as_ref()
                            .map_or_else(String::new, |n| n.0.to_string());
                        return Err(ClientError::broker(
                            format!("delete topic {name}"),
                            r.error_code,
                            r.error_message.as_deref(),
                        ));
                    }
                }
                Ok(())
            },
            ApiKey::DeleteTopics,
        )
        .await
    }

    /// All topic names, sorted.
    pub async fn list_topics(&self) -> Result<Vec<String>, ClientError> {
        let meta = self.refresh_metadata(None, false).await?;
        let mut names: Vec<String> = meta.topics.keys().cloned().collect();
        names.sort();
        Ok(names)
    }

    /// Partitions, leaders, replicas and ISR of the named topics (`None` = all), sorted by name.
    /// A named topic that does not exist is an `UNKNOWN_TOPIC_OR_PARTITION` error.
    pub async fn describe_topics(
        &self,
        names: Option<&[&str]>,
    ) -> Result<Vec<TopicMetadata>, ClientError> {
        let meta = self.refresh_metadata(names, false).await?;
        let mut topics = Vec::new();
        match names {
            Some(names) => {
                for name in names {
                    let t = meta.topic(name).ok_or_else(|| {
                        ClientError::broker(
                            format!("describe topic {name}"),
                            ResponseError::UnknownTopicOrPartition.code(),
                            None,
                        )
                    })?;
                    topics.push(t.clone());
                }
            }
            None => topics.extend(meta.topics.values().cloned()),
        }
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(topics)
    }

    /// All configs of a topic with their sources (DescribeConfigs).
    pub async fn describe_topic_configs(
        &self,
        topic: &str,
    ) -> Result<Vec<ConfigEntry>, ClientError> {
        self.describe_configs(&ConfigResource::Topic(topic.to_owned()))
            .await
    }

    /// ListOffsets for each partition, routed to each partition's leader; stale-leader errors are
    /// retried after a metadata refresh.
    pub async fn list_offsets(
        &self,
        requests: &[(TopicPartition, OffsetSpec)],
    ) -> Result<HashMap<TopicPartition, ListedOffset>, ClientError> {
        let mut results = HashMap::with_capacity(requests.len());
        let mut todo: Vec<(TopicPartition, OffsetSpec)> = requests.to_vec();
        let mut attempt = 0;
        loop {
            let mut retry = Vec::new();
            let mut last_err = None;
            // Group by leader so each broker gets one request.
            let mut by_leader: HashMap<i32, Vec<(TopicPartition, OffsetSpec)>> = HashMap::new();
            for (tp, spec) in todo {
                match self.leader_connection(&tp.topic, tp.partition).await {
                    Ok((leader, _)) => by_leader.entry(leader).or_default().push((tp, spec)),
                    Err(e) if e.is_retriable() => {
                        last_err = Some(e);
                        retry.push((tp, spec));
                    }
                    Err(e) => return Err(e),
                }
            }
            for (leader, parts) in by_leader {
                match self.list_offsets_on(leader, &parts).await {
                    Ok(answers) => {
                        for ((tp, spec), answer) in parts.into_iter().zip(answers) {
                            match answer {
                                Ok(listed) => {
                                    results.insert(tp, listed);
                                }
                                Err(e) if e.is_retriable() => {
                                    last_err = Some(e);
                                    retry.push((tp, spec));
                                }
                                Err(e) => return Err(e),
                            }
                        }
                    }
                    Err(e) if e.is_retriable() => {
                        last_err = Some(e);
                        retry.extend(parts);
                    }
                    Err(e) => return Err(e),
                }
            }
            if retry.is_empty() {
                return Ok(results);
            }
            attempt += 1;
            if attempt > self.config().retries {
                return Err(last_err
                    .unwrap_or_else(|| ClientError::NoBrokerAvailable("list offsets".to_owned())));
            }
            self.backoff(attempt).await;
            let topics: Vec<&str> = retry.iter().map(|(tp, _)| tp.topic.as_str()).collect();
            self.refresh_metadata(Some(&topics), false).await?;
            todo = retry;
        }
    }

    /// One ListOffsets request to `leader`; answers are in the order of `parts`.
    async fn list_offsets_on(
        &self,
        leader: i32,
        parts: &[(TopicPartition, OffsetSpec)],
    ) -> Result<Vec<Result<ListedOffset, ClientError>>, ClientError> {
        let conn = self.connection(leader).await?;
        let version = conn.version(ApiKey::ListOffsets)?;
        let mut topics: Vec<ListOffsetsTopic> = Vec::new();
        for (tp, spec) in parts {
            let partition = ListOffsetsPartition::default()
                .with_partition_index(tp.partition)
                .with_timestamp(spec.timestamp());
            match topics.iter_mut().find(|t| t.name.0.as_str() == tp.topic) {
                Some(t) => t.partitions.push(partition),
                None => topics.push(
                    ListOffsetsTopic::default()
                        .with_name(topic_name(&tp.topic))
                        .with_partitions(vec![partition]),
                ),
            }
        }
        let mut request = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(topics);
        if version >= 10 {
            request = request.with_timeout_ms(ADMIN_TIMEOUT_MS);
        }
        let response = conn.send(version, &request).await?;
        Ok(parts
            .iter()
            .map(|(tp, _)| {
                let answer = response
                    .topics
                    .iter()
                    .filter(|t| t.name.0.as_str() == tp.topic)
                    .flat_map(|t| t.partitions.iter())
                    .find(|p| p.partition_index == tp.partition);
                match answer {
                    None => Err(ClientError::broker(
                        format!("list offsets {tp}"),
                        -1,
                        Some("partition missing from response"),
                    )),
                    Some(p) if p.error_code != 0 => Err(ClientError::broker(
                        format!("list offsets {tp}"),
                        p.error_code,
                        None,
                    )),
                    Some(p) => Ok(ListedOffset {
                        offset: p.offset,
                        timestamp: p.timestamp,
                        leader_epoch: p.leader_epoch,
                    }),
                }
            })
            .collect())
    }

    /// The cluster id, controller and brokers (DescribeCluster; Metadata on brokers without it).
    pub async fn describe_cluster(&self) -> Result<ClusterDescription, ClientError> {
        let conn = self.any_connection().await?;
        let Ok(version) = conn.version(ApiKey::DescribeCluster) else {
            let meta = self.refresh_metadata(Some(&[]), false).await?;
            return Ok(ClusterDescription {
                cluster_id: meta.cluster_id.clone().unwrap_or_default(),
                controller_id: meta.controller_id,
                brokers: meta.brokers.values().cloned().collect(),
                fenced: Vec::new(),
            });
        };
        let response = conn
            .send(
                version,
                &DescribeClusterRequest::default().with_include_fenced_brokers(version >= 2),
            )
            .await?;
        if response.error_code != 0 {
            return Err(ClientError::broker(
                "describe cluster",
                response.error_code,
                response.error_message.as_deref(),
            ));
        }
        let mut fenced: Vec<i32> = response
            .brokers
            .iter()
            .filter(|b| b.is_fenced)
            .map(|b| b.broker_id.0)
            .collect();
        fenced.sort_unstable();
        let mut brokers: Vec<BrokerInfo> = response
            .brokers
            .iter()
            .filter(|b| !b.is_fenced)
            .map(|b| BrokerInfo {
                id: b.broker_id.0,
                host: b.host.to_string(),
                port: b.port,
                rack: b.rack.as_ref().map(ToString::to_string),
            })
            .collect();
        brokers.sort_by_key(|b| b.id);
        Ok(ClusterDescription {
            cluster_id: response.cluster_id.to_string(),
            controller_id: (response.controller_id.0 >= 0).then_some(response.controller_id.0),
            brokers,
            fenced,
        })
    }

    /// Runs an admin request against the controller, retrying after a metadata refresh when the
    /// broker says NOT_CONTROLLER or the connection failed.
    pub(crate) async fn with_controller_retry<'a, T, F, Fut>(
        &'a self,
        context: &str,
        op: F,
        api: ApiKey,
    ) -> Result<T, ClientError>
    where
        F: Fn(crate::connection::Connection, i16) -> Fut,
        Fut: std::future::Future<Output = Result<T, ClientError>> + 'a,
    {
        let mut attempt = 0;
        loop {
            let result = async {
                let conn = self.controller_connection().await?;
                let version = conn.version(api)?;
                op(conn, version).await
            }
            .await;
            match result {
                Err(e) if attempt < self.config().retries && retry_admin(&e) => {
                    tracing::debug!(context, error = %e, "retrying admin request");
                    attempt += 1;
                    self.backoff(attempt).await;
                    self.refresh_metadata(Some(&[]), false).await?;
                }
                other => return other,
            }
        }
    }
}

/// Admin requests are retried on a moved controller or a dead connection, not on topic errors
/// such as UNKNOWN_TOPIC_OR_PARTITION from DeleteTopics (which are answers, not staleness).
fn retry_admin(e: &ClientError) -> bool {
    match e.kafka_code() {
        Some(code) => {
            code == ResponseError::NotController.code()
                || code == ResponseError::RequestTimedOut.code()
        }
        None => e.is_retriable(),
    }
}
