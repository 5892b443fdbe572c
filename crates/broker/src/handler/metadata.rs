//! Metadata (v0–v12): brokers, controller, topics with partitions, leaders, replicas and ISR.
//! Unknown topics are auto-created when the request allows it and `auto.create.topics.enable`.
//! With an authorizer (Kafka's rules): only topics the principal may DESCRIBE are listed; one
//! asked for without DESCRIBE, or missing and not creatable (CREATE on the cluster or the topic),
//! answers TOPIC_AUTHORIZATION_FAILED; authorized operations are filled in when asked.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use strom_authorizer::{AclOperation, ResourceType, CLUSTER_RESOURCE_NAME};

use super::RequestContext;
use crate::metadata::{MetadataImage, TopicImage};
use strom_coordinator::is_internal_topic;

use crate::topic_admin::{validate_topic_name, NewTopic};

pub(crate) async fn handle(ctx: RequestContext, req: MetadataRequest) -> MetadataResponse {
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
    let describable = |name: &str| ctx.authorized_topic(AclOperation::Describe, name);
    // Kafka: auto-creation needs CREATE on the cluster or on the topic.
    let may_create = |name: &str| {
        ctx.authorized_cluster(AclOperation::Create)
            || ctx.authorized_topic(AclOperation::Create, name)
    };
    if let (Some(list), true) = (&wanted, auto_create) {
        let missing: Vec<NewTopic> = list
            .iter()
            .filter_map(|(n, _)| n.clone())
            // Internal topics are made by the coordinators, with their own shape.
            .filter(|n| {
                image.topic(n).is_none()
                    && validate_topic_name(n).is_ok()
                    && !is_internal_topic(n)
                    && describable(n)
                    && may_create(n)
            })
            .map(|name| NewTopic {
                name,
                partitions: -1,
                replication_factor: -1,
                configs: Default::default(),
            })
            .collect();
        if !missing.is_empty() {
            for r in broker.topic_admin.create_topics(missing, false).await {
                if let Err(e) = r {
                    tracing::debug!(error = %e.message, "auto-create skipped");
                }
            }
            image = broker.metadata.image();
        }
    }
    let with_ops = |mut t: MetadataResponseTopic| {
        if ctx.api_version >= 8 && req.include_topic_authorized_operations && t.error_code == 0 {
            if let Some(name) = &t.name {
                t.topic_authorized_operations = ctx.broker.authorization.authorized_operations(
                    &ctx.session,
                    ResourceType::Topic,
                    &name.0,
                );
            }
        }
        t
    };
    let denied = |name: Option<String>, id: uuid::Uuid| {
        MetadataResponseTopic::default()
            .with_error_code(ResponseError::TopicAuthorizationFailed.code())
            .with_name(name.map(|n| TopicName(StrBytes::from_string(n))))
            .with_topic_id(if ctx.api_version >= 10 {
                id
            } else {
                uuid::Uuid::nil()
            })
    };
    let topics: Vec<MetadataResponseTopic> = match wanted {
        // All topics: those the principal may describe.
        None => image
            .topics()
            .filter(|t| describable(&t.name))
            .map(|t| with_ops(topic_response(t, &image, ctx.api_version)))
            .collect(),
        Some(list) => list
            .into_iter()
            .map(|(name, id)| {
                let found = match &name {
                    Some(n) => image.topic(n),
                    None => image.topic_by_id(&id),
                };
                match found {
                    // Asked by id: the name is not revealed to whom may not describe it.
                    Some(t) if !describable(&t.name) => {
                        denied(name.is_some().then(|| t.name.clone()), id)
                    }
                    Some(t) => with_ops(topic_response(t, &image, ctx.api_version)),
                    // A missing topic's existence is not revealed either, and creating it
                    // needs CREATE.
                    None if name
                        .as_deref()
                        .is_some_and(|n| !describable(n) || (auto_create && !may_create(n))) =>
                    {
                        denied(name, id)
                    }
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
    let v = ctx.api_version;
    // Live (registered, unfenced) brokers; before this node's own registration is applied, itself.
    let mut brokers: Vec<MetadataResponseBroker> = image
        .live_brokers()
        .map(|b| {
            // The endpoint of the listener the client came in on.
            let (host, port) = broker.endpoints.of(b, &ctx.session.listener);
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(b.id()))
                .with_host(StrBytes::from_string(host))
                .with_port(port)
                .with_rack(b.registration.rack.clone().map(StrBytes::from_string))
        })
        .collect();
    // Never an answer without brokers (clients cannot go on from one): before this node's own
    // registration is applied or unfenced — the first milliseconds after start — itself.
    if brokers.is_empty() {
        let (host, port) = broker.endpoints.own_on(&ctx.session.listener);
        brokers.push(
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(broker.config.node_id))
                .with_host(StrBytes::from_string(host))
                .with_port(port),
        );
    }
    let controller = broker.metadata.controller_leader().unwrap_or(-1);
    MetadataResponse::default()
        .with_brokers(brokers)
        .with_cluster_id((v >= 2).then(|| StrBytes::from_string(broker.cluster_id.clone())))
        .with_controller_id(BrokerId(if v >= 1 { controller } else { -1 }))
        .with_topics(topics)
        .with_cluster_authorized_operations(
            if (8..=10).contains(&v) && req.include_cluster_authorized_operations {
                broker.authorization.authorized_operations(
                    &ctx.session,
                    ResourceType::Cluster,
                    CLUSTER_RESOURCE_NAME,
                )
            } else {
                i32::MIN
            },
        )
}

fn topic_response(t: &TopicImage, image: &MetadataImage, version: i16) -> MetadataResponseTopic {
    let fenced = |id: &i32| image.brokers.get(id).is_some_and(|b| b.fenced);
    let partitions = t
        .partitions
        .iter()
        .map(|(idx, p)| {
            let code = if p.leader < 0 {
                ResponseError::LeaderNotAvailable.code()
            } else {
                0
            };
            MetadataResponsePartition::default()
                .with_error_code(code)
                .with_partition_index(*idx)
                .with_leader_id(BrokerId(p.leader))
                .with_leader_epoch(if version >= 7 { p.leader_epoch } else { -1 })
                .with_replica_nodes(p.replicas.iter().map(|r| BrokerId(*r)).collect())
                .with_isr_nodes(p.isr.iter().map(|r| BrokerId(*r)).collect())
                .with_offline_replicas(if version >= 5 {
                    p.replicas
                        .iter()
                        .filter(|r| fenced(r))
                        .map(|r| BrokerId(*r))
                        .collect()
                } else {
                    Vec::new()
                })
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(t.name.clone()))))
        .with_topic_id(if version >= 10 {
            t.id
        } else {
            uuid::Uuid::nil()
        })
        .with_is_internal(version >= 1 && is_internal_topic(&t.name))
        .with_partitions(partitions)
        .with_topic_authorized_operations(i32::MIN)
}
