//! CreateTopics (v2–v7): validated in `TopicAdmin::create_topics`; `validate_only` supported.
//! Each topic needs CREATE on the cluster or on itself (else TOPIC_AUTHORIZATION_FAILED), and
//! its partitions count against `controller_mutation_rate` (KIP-599; v6+ strict).

use std::collections::BTreeMap;

use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;

use kafka_protocol::error::ResponseError;
use strom_authorizer::AclOperation;

use super::controller_mutation;
use crate::handler::RequestContext;
use crate::topic_admin::{NewTopic, TopicError};

pub(crate) async fn handle(ctx: RequestContext, req: CreateTopicsRequest) -> CreateTopicsResponse {
    let new: Vec<NewTopic> = req
        .topics
        .iter()
        .map(|t| NewTopic {
            name: t.name.0.to_string(),
            partitions: if t.assignments.is_empty() {
                t.num_partitions
            } else {
                t.assignments.len() as i32
            },
            replication_factor: if t.assignments.is_empty() {
                t.replication_factor
            } else {
                t.assignments
                    .first()
                    .map_or(-1, |a| a.broker_ids.len() as i16)
            },
            configs: t
                .configs
                .iter()
                .filter_map(|c| {
                    c.value
                        .as_ref()
                        .map(|v| (c.name.to_string(), v.to_string()))
                })
                .collect::<BTreeMap<_, _>>(),
        })
        .collect();
    // Kafka: CREATE on the cluster, or on each topic; refused topics are not attempted.
    let cluster_create = ctx.authorized_cluster(AclOperation::Create);
    // Then the controller mutation quota (KIP-599), per topic, on its partition count.
    let strict = ctx.api_version >= 6;
    let mut throttle_ms = 0;
    let refusals: Vec<Option<TopicError>> = new
        .iter()
        .map(|t| {
            if !(cluster_create || ctx.authorized_topic(AclOperation::Create, &t.name)) {
                return Some(TopicError::new(
                    ResponseError::TopicAuthorizationFailed,
                    "Authorization failed.",
                ));
            }
            if req.validate_only {
                return None;
            }
            let partitions = usize::try_from(t.partitions).unwrap_or(1).max(1);
            match controller_mutation(&ctx, partitions, strict) {
                Ok(ms) => {
                    throttle_ms = throttle_ms.max(ms);
                    None
                }
                Err(ms) => {
                    throttle_ms = throttle_ms.max(ms);
                    Some(TopicError::new(
                        ResponseError::ThrottlingQuotaExceeded,
                        "The throttling quota has been exceeded.",
                    ))
                }
            }
        })
        .collect();
    ctx.mute_for(throttle_ms);
    let allowed: Vec<bool> = refusals.iter().map(Option::is_none).collect();
    let mut refusals = refusals.into_iter();
    let attempted = new
        .into_iter()
        .zip(&allowed)
        .filter(|(_, ok)| **ok)
        .map(|(t, _)| t)
        .collect();
    let mut created = ctx
        .broker
        .topic_admin
        .create_topics(attempted, req.validate_only)
        .await
        .into_iter();
    let results: Vec<Result<_, TopicError>> = allowed
        .iter()
        .map(|_| match refusals.next().flatten() {
            Some(refusal) => Err(refusal),
            None => created.next().unwrap_or_else(|| {
                Err(TopicError::new(
                    ResponseError::UnknownServerError,
                    "no result",
                ))
            }),
        })
        .collect();
    let topics = req
        .topics
        .into_iter()
        .zip(results)
        .map(|(t, r)| {
            let may_describe_configs =
                ctx.authorized_topic(AclOperation::DescribeConfigs, &t.name.0);
            let base = CreatableTopicResult::default().with_name(t.name);
            match r {
                Ok(img) => {
                    let rf = img
                        .partitions
                        .values()
                        .next()
                        .map_or(t.replication_factor, |p| p.replicas.len() as i16);
                    let cfg = ctx.broker.replicas.topic_config(&img);
                    let configs = cfg
                        .values
                        .iter()
                        .map(|(k, v)| {
                            CreatableTopicConfigs::default()
                                .with_name(StrBytes::from_string(k.clone()))
                                .with_value(Some(StrBytes::from_string(v.clone())))
                                .with_config_source(if img.configs.contains_key(k) { 1 } else { 5 })
                        })
                        .collect();
                    if ctx.api_version < 5 {
                        return base;
                    }
                    // The configs are shown only to whom may describe them (Kafka).
                    let (configs, config_error) = match may_describe_configs {
                        true => (configs, 0),
                        false => (Vec::new(), ResponseError::TopicAuthorizationFailed.code()),
                    };
                    let base = base.with_topic_config_error_code(config_error);
                    base.with_topic_id(if ctx.api_version >= 7 {
                        img.id
                    } else {
                        uuid::Uuid::nil()
                    })
                    .with_num_partitions(img.partitions.len() as i32)
                    .with_replication_factor(rf)
                    .with_configs(Some(configs))
                }
                Err(e) => base
                    .with_error_code(e.code)
                    .with_error_message(Some(StrBytes::from_string(e.message))),
            }
        })
        .collect();
    CreateTopicsResponse::default()
        .with_topics(topics)
        .with_throttle_time_ms(i32::try_from(throttle_ms).unwrap_or(i32::MAX))
}
