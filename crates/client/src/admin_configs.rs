//! More admin operations on [`Client`]: configs of topics and brokers (DescribeConfigs,
//! IncrementalAlterConfigs), adding partitions (CreatePartitions) and deleting records
//! (DeleteRecords). Broker-reported errors become `ClientError::Broker` with Kafka's error name.

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    ApiKey, CreatePartitionsRequest, DeleteRecordsRequest, DescribeConfigsRequest,
    IncrementalAlterConfigsRequest,
};
use kafka_protocol::protocol::StrBytes;

use crate::client::Client;
use crate::error::ClientError;
use crate::metadata::{topic_name, TopicPartition};

const TIMEOUT_MS: i32 = 30_000;

/// Where a config value comes from (DescribeConfigs `config_source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    /// Set on this topic (an override).
    DynamicTopic,
    /// Set dynamically for this broker.
    DynamicBroker,
    /// Set dynamically as the cluster-wide broker default.
    DynamicDefaultBroker,
    /// From the broker's static config file.
    StaticBroker,
    /// The built-in default.
    Default,
    /// Anything else (including unknown, -1).
    Other(i8),
}

impl ConfigSource {
    pub(crate) fn from_code(code: i8) -> Self {
        match code {
            1 => ConfigSource::DynamicTopic,
            2 => ConfigSource::DynamicBroker,
            3 => ConfigSource::DynamicDefaultBroker,
            4 => ConfigSource::StaticBroker,
            5 => ConfigSource::Default,
            other => ConfigSource::Other(other),
        }
    }
}

/// One config of a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    /// Config name (`retention.ms`).
    pub name: String,
    /// Value; `None` when sensitive or unset.
    pub value: Option<String>,
    /// Where the value comes from.
    pub source: ConfigSource,
    /// Whether it can be altered.
    pub read_only: bool,
    /// Whether the value is hidden.
    pub sensitive: bool,
}

impl ConfigEntry {
    /// Whether this is a per-topic override (what `kafka-topics --describe` prints).
    pub fn is_topic_override(&self) -> bool {
        self.source == ConfigSource::DynamicTopic
    }
}

/// A resource with configs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigResource {
    /// A topic by name.
    Topic(String),
    /// A broker by id; `None` is the cluster-wide broker default.
    Broker(Option<i32>),
    /// A group by id (KIP-848/KIP-932 group configs, e.g. `share.auto.offset.reset`).
    Group(String),
}

impl ConfigResource {
    fn wire(&self) -> (i8, String) {
        match self {
            ConfigResource::Topic(t) => (2, t.clone()),
            ConfigResource::Broker(id) => (4, id.map_or_else(String::new, |i| i.to_string())),
            ConfigResource::Group(g) => (32, g.clone()),
        }
    }
}

/// One incremental config change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlterConfigOp {
    /// Set `name` to the value.
    Set(String, String),
    /// Remove the override of `name`.
    Delete(String),
}

impl Client {
    /// Every config of a topic or broker, sorted by name (DescribeConfigs).
    pub async fn describe_configs(
        &self,
        resource: &ConfigResource,
    ) -> Result<Vec<ConfigEntry>, ClientError> {
        let (kind, name) = resource.wire();
        let conn = self.any_connection().await?;
        let version = conn.version(ApiKey::DescribeConfigs)?;
        let request = DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(kind)
                .with_resource_name(StrBytes::from_string(name.clone()))
                .with_configuration_keys(None),
        ]);
        let response = conn.send(version, &request).await?;
        let context = format!("describe configs {name}");
        let result = response.results.into_iter().next().ok_or_else(|| {
            ClientError::broker(&context, -1, Some("resource missing from response"))
        })?;
        if result.error_code != 0 {
            return Err(ClientError::broker(
                context,
                result.error_code,
                result.error_message.as_deref(),
            ));
        }
        let mut entries: Vec<ConfigEntry> = result
            .configs
            .into_iter()
            .map(|c| ConfigEntry {
                name: c.name.to_string(),
                value: c.value.map(|v| v.to_string()),
                source: ConfigSource::from_code(c.config_source),
                read_only: c.read_only,
                sensitive: c.is_sensitive,
            })
            .collect();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    /// Sets or removes config overrides (IncrementalAlterConfigs); fails with the broker's
    /// error (INVALID_CONFIG names the key).
    pub async fn alter_configs(
        &self,
        resource: &ConfigResource,
        ops: &[AlterConfigOp],
    ) -> Result<(), ClientError> {
        let (kind, name) = resource.wire();
        let configs = ops
            .iter()
            .map(|op| match op {
                AlterConfigOp::Set(k, v) => AlterableConfig::default()
                    .with_name(StrBytes::from_string(k.clone()))
                    .with_config_operation(0)
                    .with_value(Some(StrBytes::from_string(v.clone()))),
                AlterConfigOp::Delete(k) => AlterableConfig::default()
                    .with_name(StrBytes::from_string(k.clone()))
                    .with_config_operation(1),
            })
            .collect();
        let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(kind)
                .with_resource_name(StrBytes::from_string(name.clone()))
                .with_configs(configs),
        ]);
        let conn = self.controller_connection().await?;
        let version = conn.version(ApiKey::IncrementalAlterConfigs)?;
        let response = conn.send(version, &request).await?;
        for r in &response.responses {
            if r.error_code != 0 {
                return Err(ClientError::broker(
                    format!("alter configs {name}"),
                    r.error_code,
                    r.error_message.as_deref(),
                ));
            }
        }
        Ok(())
    }

    /// Raises `topic`'s partition count to `count` (CreatePartitions).
    pub async fn create_partitions(&self, topic: &str, count: i32) -> Result<(), ClientError> {
        let request = CreatePartitionsRequest::default()
            .with_topics(vec![CreatePartitionsTopic::default()
                .with_name(topic_name(topic))
                .with_count(count)
                .with_assignments(None)])
            .with_timeout_ms(TIMEOUT_MS);
        let conn = self.controller_connection().await?;
        let version = conn.version(ApiKey::CreatePartitions)?;
        let response = conn.send(version, &request).await?;
        for r in &response.results {
            if r.error_code != 0 {
                return Err(ClientError::broker(
                    format!("create partitions {topic}"),
                    r.error_code,
                    r.error_message.as_deref(),
                ));
            }
        }
        Ok(())
    }

    /// Deletes the records of a partition below `before_offset` (-1: up to the high watermark)
    /// and returns the new low watermark (DeleteRecords, sent to the partition's leader).
    pub async fn delete_records(
        &self,
        tp: &TopicPartition,
        before_offset: i64,
    ) -> Result<i64, ClientError> {
        let request = DeleteRecordsRequest::default()
            .with_topics(vec![DeleteRecordsTopic::default()
                .with_name(topic_name(&tp.topic))
                .with_partitions(vec![DeleteRecordsPartition::default()
                    .with_partition_index(tp.partition)
                    .with_offset(before_offset)])])
            .with_timeout_ms(TIMEOUT_MS);
        let (_, conn) = self.leader_connection(&tp.topic, tp.partition).await?;
        let version = conn.version(ApiKey::DeleteRecords)?;
        let response = conn.send(version, &request).await?;
        let p = response
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter())
            .find(|p| p.partition_index == tp.partition)
            .ok_or_else(|| {
                ClientError::broker(
                    format!("delete records {tp}"),
                    -1,
                    Some("partition missing from response"),
                )
            })?;
        if p.error_code != 0 {
            return Err(ClientError::broker(
                format!("delete records {tp}"),
                p.error_code,
                None,
            ));
        }
        Ok(p.low_watermark)
    }
}
