//! Metadata (v0–v12): brokers, controller, topics with partitions, leaders, replicas and ISR.
//! Unknown topics are auto-created when the request allows it and `auto.create.topics.enable`.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{ApiKey, BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::{decode, later, ApiHandler, RequestContext};
use crate::broker::{validate_topic_name, NewTopic};
use crate::metadata::TopicImage;

pub(crate) const HANDLER: ApiHandler = ApiHandler {
    api_key: ApiKey::Metadata,
    min_version: 0,
    max_version: 12,
    min_served: 0,
    handle: |ctx, body| {
        let req: MetadataRequest = decode(ApiKey::Metadata, ctx.api_version, body)?;
        Ok(later(handle(ctx, req)))
    },
};

async fn handle(ctx: RequestContext, req: MetadataRequest) -> MetadataResponse {
    let broker = &ctx.broker;
    let mut image = broker.metadata.image();
    // v0: an empty list means all topics; v1+: null means all.
    let wanted: Option<Vec<(Option<String>, uuid::Uuid)>> = match &req.topics {
        None => None,
        Some(t) if t.is_empty() && ctx.api_version == 0 => None,
        Some(t) => Some(
            t.iter()
                .map(|t| (t.name.as_ref().map(|n| n.0.to_string()), t.topic_id))
                .collect(),
        ),
    };
    let auto_create =
        broker.config.auto_create_topics && (ctx.api_version < 4 || req.allow_auto_topic_creation);
    if let (Some(list), true) = (&wanted, auto_create) {
        let missing: Vec<NewTopic> = list
            .iter()
            .filter_map(|(n, _)| n.clone())
            .filter(|n| image.topic(n).is_none() && validate_topic_name(n).is_ok())
            .map(|name| NewTopic {
                name,
                partitions: -1,
                replication_factor: -1,
                configs: Default::default(),
            })
            .collect();
        if !missing.is_empty() {
            for r in broker.create_topics(missing, false).await {
                if let Err(e) = r {
                    tracing::debug!(error = %e.message, "auto-create skipped");
                }
            }
            image = broker.metadata.image();
        }
    }
    let topics: Vec<MetadataResponseTopic> = match wanted {
        None => image
            .topics()
            .map(|t| topic_response(t, ctx.api_version))
            .collect(),
        Some(list) => list
            .into_iter()
            .map(|(name, id)| {
                let found = match &name {
                    Some(n) => image.topic(n),
                    None => image.topic_by_id(&id),
                };
                match found {
                    Some(t) => topic_response(t, ctx.api_version),
                    None => {
                        let code = match &name {
                            Some(n) if validate_topic_name(n).is_err() => {
                                ResponseError::InvalidTopicException
                            }
                            Some(_) => ResponseError::UnknownTopicOrPartition,
                            None => ResponseError::UnknownTopicId,
                        };
                        MetadataResponseTopic::default()
                            .with_error_code(code.code())
                            .with_name(name.map(|n| TopicName(StrBytes::from_string(n))))
                            .with_topic_id(if ctx.api_version >= 10 {
                                id
                            } else {
                                uuid::Uuid::nil()
                            })
                    }
                }
            })
            .collect(),
    };
    let (host, port) = broker.advertised.clone();
    let v = ctx.api_version;
    MetadataResponse::default()
        .with_brokers(vec![MetadataResponseBroker::default()
            .with_node_id(BrokerId(broker.config.node_id))
            .with_host(StrBytes::from_string(host))
            .with_port(port)])
        .with_cluster_id((v >= 2).then(|| StrBytes::from_string(broker.cluster_id.clone())))
        .with_controller_id(BrokerId(if v >= 1 { broker.config.node_id } else { -1 }))
        .with_topics(topics)
        .with_cluster_authorized_operations(i32::MIN)
}

fn topic_response(t: &TopicImage, version: i16) -> MetadataResponseTopic {
    let partitions = t
        .partitions
        .iter()
        .map(|(idx, p)| {
            MetadataResponsePartition::default()
                .with_partition_index(*idx)
                .with_leader_id(BrokerId(p.leader))
                .with_leader_epoch(if version >= 7 { p.leader_epoch } else { -1 })
                .with_replica_nodes(p.replicas.iter().map(|r| BrokerId(*r)).collect())
                .with_isr_nodes(p.isr.iter().map(|r| BrokerId(*r)).collect())
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(t.name.clone()))))
        .with_topic_id(if version >= 10 {
            t.id
        } else {
            uuid::Uuid::nil()
        })
        .with_is_internal(
            version >= 1 && (t.name == "__consumer_offsets" || t.name == "__transaction_state"),
        )
        .with_partitions(partitions)
        .with_topic_authorized_operations(i32::MIN)
}
