//! CreateTopics (v2–v7): validated in `Broker::create_topics`; `validate_only` supported.

use std::collections::BTreeMap;

use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::handler::RequestContext;
use crate::topic_admin::NewTopic;

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
    let results = ctx
        .broker
        .topic_admin
        .create_topics(new, req.validate_only)
        .await;
    let topics = req
        .topics
        .into_iter()
        .zip(results)
        .map(|(t, r)| {
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
    CreateTopicsResponse::default().with_topics(topics)
}
