//! DescribeLogDirs on [`Client`]: each log directory of one broker with the size of every
//! partition replica in it (what kafka-log-dirs prints and what consoles show as a topic's size).

use std::collections::BTreeMap;

use kafka_protocol::messages::{ApiKey, DescribeLogDirsRequest};

use crate::client::Client;
use crate::error::ClientError;
use crate::group_admin::check;
use crate::metadata::TopicPartition;

/// One log directory of a broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogDirDescription {
    /// The directory's path on the broker.
    pub path: String,
    /// 0, or the directory's error (KAFKA_STORAGE_ERROR for an offline directory).
    pub error_code: i16,
    /// Bytes on disk of each partition replica in the directory.
    pub partition_sizes: BTreeMap<TopicPartition, i64>,
}

impl Client {
    /// The log directories of broker `broker_id` with every replica's size (DescribeLogDirs of
    /// all topics; needs DESCRIBE on the cluster).
    pub async fn describe_log_dirs(
        &self,
        broker_id: i32,
    ) -> Result<Vec<LogDirDescription>, ClientError> {
        let conn = self.connection(broker_id).await?;
        let version = conn.version(ApiKey::DescribeLogDirs)?;
        let response = conn
            .send(
                version,
                &DescribeLogDirsRequest::default().with_topics(None),
            )
            .await?;
        // The request-level error exists from v3 on; earlier versions answer with no directories.
        check(
            || format!("describe log dirs of broker {broker_id}"),
            response.error_code,
        )?;
        Ok(response
            .results
            .into_iter()
            .map(|dir| LogDirDescription {
                path: dir.log_dir.to_string(),
                error_code: dir.error_code,
                partition_sizes: dir
                    .topics
                    .iter()
                    .flat_map(|t| {
                        t.partitions.iter().map(|p| {
                            (
                                TopicPartition::new(t.name.0.as_str(), p.partition_index),
                                p.partition_size,
                            )
                        })
                    })
                    .collect(),
            })
            .collect())
    }
}
