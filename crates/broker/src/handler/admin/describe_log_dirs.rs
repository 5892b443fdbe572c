//! DescribeLogDirs (v1–v4): each log directory with the size of every partition in it (all
//! partitions, or the requested ones). Total and usable bytes (v4) are not measured: -1.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use strom_authorizer::AclOperation;

use crate::handler::RequestContext;

pub(crate) fn handle(ctx: &RequestContext, req: DescribeLogDirsRequest) -> DescribeLogDirsResponse {
    let wanted = |topic: &str, partition: i32| match &req.topics {
        None => true,
        Some(ts) => ts
            .iter()
            .any(|t| t.topic.0.as_str() == topic && t.partitions.contains(&partition)),
    };
    // Kafka: DESCRIBE on the cluster; refused, the answer is the error and no directories.
    if !ctx.authorized_cluster(AclOperation::Describe) {
        return DescribeLogDirsResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    let logs = ctx.broker.replicas.log_manager();
    let results = logs
        .log_dirs()
        .into_iter()
        .map(|(dir, online)| {
            let mut by_topic: BTreeMap<String, Vec<DescribeLogDirsPartition>> = BTreeMap::new();
            for log in logs.all_logs() {
                let tp = log.topic_partition();
                if log.dir().parent() != Some(dir.as_path()) || !wanted(&tp.topic, tp.partition) {
                    continue;
                }
                by_topic.entry(tp.topic.clone()).or_default().push(
                    DescribeLogDirsPartition::default()
                        .with_partition_index(tp.partition)
                        .with_partition_size(log.size_bytes().min(i64::MAX as u64) as i64)
                        .with_offset_lag(0)
                        .with_is_future_key(false),
                );
            }
            let topics = by_topic
                .into_iter()
                .map(|(name, mut parts)| {
                    parts.sort_by_key(|p| p.partition_index);
                    DescribeLogDirsTopic::default()
                        .with_name(TopicName(StrBytes::from_string(name)))
                        .with_partitions(parts)
                })
                .collect();
            let result = DescribeLogDirsResult::default()
                .with_error_code(if online {
                    0
                } else {
                    ResponseError::KafkaStorageError.code()
                })
                .with_log_dir(StrBytes::from_string(dir.display().to_string()))
                .with_topics(topics);
            if ctx.api_version >= 4 {
                result.with_total_bytes(-1).with_usable_bytes(-1)
            } else {
                result
            }
        })
        .collect();
    DescribeLogDirsResponse::default().with_results(results)
}
