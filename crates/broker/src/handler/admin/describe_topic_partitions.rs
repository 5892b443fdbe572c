//! DescribeTopicPartitions (v0, KIP-966; Kafka 3.9+ tools describe topics with it): topics by
//! name (or all), partitions with leader, epoch, replicas and ISR, paginated by
//! `response_partition_limit` with a cursor.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use strom_authorizer::AclOperation;

use crate::handler::RequestContext;

fn ids(v: &[i32]) -> Vec<BrokerId> {
    v.iter().map(|b| BrokerId(*b)).collect()
}

pub(crate) fn handle(
    ctx: &RequestContext,
    req: DescribeTopicPartitionsRequest,
) -> DescribeTopicPartitionsResponse {
    let image = ctx.broker.metadata.image();
    let describable = |name: &str| ctx.authorized_topic(AclOperation::Describe, name);
    // All topics: those the principal may describe (Kafka's rule, as Metadata).
    let mut names: Vec<String> = if req.topics.is_empty() {
        image
            .topics()
            .filter(|t| describable(&t.name))
            .map(|t| t.name.clone())
            .collect()
    } else {
        req.topics.iter().map(|t| t.name.0.to_string()).collect()
    };
    names.sort();
    names.dedup();
    let (cursor_topic, cursor_partition) = req.cursor.as_ref().map_or((String::new(), 0), |c| {
        (c.topic_name.0.to_string(), c.partition_index)
    });
    let limit = if req.response_partition_limit > 0 {
        req.response_partition_limit as usize
    } else {
        2000
    };
    let mut budget = limit;
    let mut topics = Vec::new();
    let mut next_cursor = None;
    for name in names.into_iter().filter(|n| *n >= cursor_topic) {
        let base = DescribeTopicPartitionsResponseTopic::default()
            .with_name(Some(TopicName(StrBytes::from_string(name.clone()))))
            .with_topic_authorized_operations(i32::MIN);
        if !describable(&name) {
            topics.push(base.with_error_code(ResponseError::TopicAuthorizationFailed.code()));
            continue;
        }
        let Some(t) = image.topic(&name) else {
            topics.push(base.with_error_code(ResponseError::UnknownTopicOrPartition.code()));
            continue;
        };
        if budget == 0 {
            next_cursor = Some(
                Cursor::default()
                    .with_topic_name(TopicName(StrBytes::from_string(name)))
                    .with_partition_index(0),
            );
            break;
        }
        let first = if name == cursor_topic {
            cursor_partition
        } else {
            0
        };
        let mut partitions = Vec::new();
        for (p, part) in t.partitions.range(first..) {
            if budget == 0 {
                next_cursor = Some(
                    Cursor::default()
                        .with_topic_name(TopicName(StrBytes::from_string(name.clone())))
                        .with_partition_index(*p),
                );
                break;
            }
            budget -= 1;
            partitions.push(
                DescribeTopicPartitionsResponsePartition::default()
                    .with_partition_index(*p)
                    .with_leader_id(BrokerId(part.leader))
                    .with_leader_epoch(part.leader_epoch)
                    .with_replica_nodes(ids(&part.replicas))
                    .with_isr_nodes(ids(&part.isr))
                    .with_eligible_leader_replicas(Some(Vec::new()))
                    .with_last_known_elr(Some(Vec::new())),
            );
        }
        topics.push(
            base.with_topic_id(t.id)
                .with_is_internal(strom_coordinator::is_internal_topic(&name))
                .with_partitions(partitions),
        );
        if next_cursor.is_some() {
            break;
        }
    }
    DescribeTopicPartitionsResponse::default()
        .with_topics(topics)
        .with_next_cursor(next_cursor)
}
