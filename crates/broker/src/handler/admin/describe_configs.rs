//! DescribeConfigs (v1–v4) for topics and brokers, with Kafka's sources and synonyms in
//! precedence order: dynamic topic, dynamic broker, dynamic cluster default, static broker,
//! default. Broker keys that shape topic defaults are dynamically updatable (not read-only).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use strom_log::TOPIC_CONFIGS;

use crate::config::{broker_config_kind, BROKER_CONFIGS, GROUP_CONFIGS};
use strom_authorizer::AclOperation;

use super::alter_configs::config_refusal;
use crate::handler::RequestContext;
use crate::metadata::MetadataImage;

use super::alter_configs::{BROKER, GROUP, TOPIC};
// Kafka's ConfigSource values.
const DYNAMIC_TOPIC_CONFIG: i8 = 1;
const DYNAMIC_BROKER_CONFIG: i8 = 2;
const DYNAMIC_DEFAULT_BROKER_CONFIG: i8 = 3;
const STATIC_BROKER_CONFIG: i8 = 4;
const DEFAULT_CONFIG: i8 = 5;
/// Kafka's `ConfigSource.DYNAMIC_GROUP_CONFIG`.
const DYNAMIC_GROUP_CONFIG: i8 = 8;

fn s(v: impl Into<String>) -> StrBytes {
    StrBytes::from_string(v.into())
}

pub(crate) fn handle(ctx: &RequestContext, req: DescribeConfigsRequest) -> DescribeConfigsResponse {
    let image = ctx.broker.metadata.image();
    // config_type and documentation exist from v3.
    let v3 = ctx.api_version >= 3;
    let results = req
        .resources
        .iter()
        .map(|r| {
            let name = r.resource_name.to_string();
            let keys: Option<Vec<String>> = r
                .configuration_keys
                .as_ref()
                .map(|k| k.iter().map(|x| x.to_string()).collect());
            let wanted = |k: &str| keys.as_ref().is_none_or(|ks| ks.iter().any(|x| x == k));
            let base = DescribeConfigsResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            if let Some(code) =
                config_refusal(ctx, r.resource_type, &name, AclOperation::DescribeConfigs)
            {
                return base
                    .with_error_code(code.code())
                    .with_error_message(Some(s("Authorization failed.")));
            }
            match r.resource_type {
                TOPIC => {
                    let Some(topic) = image.topic(&name) else {
                        return base
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                            .with_error_message(Some(s(format!("Topic {name} does not exist"))));
                    };
                    let cfg = ctx.broker.replicas.topic_config(topic);
                    let configs = TOPIC_CONFIGS
                        .iter()
                        .filter(|d| wanted(d.name))
                        .map(|d| {
                            let mut synonyms = Vec::new();
                            if let Some(v) = topic.configs.get(d.name) {
                                synonyms.push(
                                    DescribeConfigsSynonym::default()
                                        .with_name(s(d.name))
                                        .with_value(Some(s(v.clone())))
                                        .with_source(DYNAMIC_TOPIC_CONFIG),
                                );
                            }
                            if let Some(b) = d.broker_synonym {
                                for (value, source) in broker_layers(ctx, &image, b) {
                                    synonyms.push(
                                        DescribeConfigsSynonym::default()
                                            .with_name(s(b))
                                            .with_value(Some(s(value)))
                                            .with_source(source),
                                    );
                                }
                            }
                            synonyms.push(
                                DescribeConfigsSynonym::default()
                                    .with_name(s(d.broker_synonym.unwrap_or(d.name)))
                                    .with_value(Some(s(d.default)))
                                    .with_source(DEFAULT_CONFIG),
                            );
                            let source = synonyms.first().map_or(DEFAULT_CONFIG, |x| x.source);
                            DescribeConfigsResourceResult::default()
                                .with_name(s(d.name))
                                .with_value(cfg.values.get(d.name).map(|v| s(v.clone())))
                                .with_config_source(source)
                                .with_config_type(if v3 { d.kind.kafka_type_code() } else { 0 })
                                .with_synonyms(if req.include_synonyms {
                                    synonyms
                                } else {
                                    Vec::new()
                                })
                                .with_documentation(
                                    (v3 && req.include_documentation).then(|| s(d.doc)),
                                )
                        })
                        .collect();
                    base.with_configs(configs)
                }
                BROKER => {
                    if !name.is_empty() && name != ctx.broker.config.node_id.to_string() {
                        return base
                            .with_error_code(ResponseError::InvalidRequest.code())
                            .with_error_message(Some(s("unknown broker id")));
                    }
                    let configs = BROKER_CONFIGS
                        .iter()
                        .map(|d| (d.name, d.default.map(String::from), d.doc, false))
                        .chain(TOPIC_CONFIGS.iter().filter_map(|d| {
                            d.broker_synonym
                                .map(|b| (b, Some(d.default.to_string()), d.doc, true))
                        }))
                        .filter(|(n, _, _, _)| wanted(n))
                        .map(|(n, default, doc, dynamic)| {
                            let layers = broker_layers(ctx, &image, n);
                            let (value, source) = match layers.first() {
                                Some((v, src)) => (Some(v.clone()), *src),
                                None => (default, DEFAULT_CONFIG),
                            };
                            DescribeConfigsResourceResult::default()
                                .with_name(s(n))
                                .with_value(value.map(s))
                                .with_read_only(!dynamic)
                                .with_config_source(source)
                                .with_config_type(if v3 {
                                    broker_config_kind(n).map_or(2, |k| k.kafka_type_code())
                                } else {
                                    0
                                })
                                .with_documentation(
                                    (v3 && req.include_documentation).then(|| s(doc)),
                                )
                        })
                        .collect();
                    base.with_configs(configs)
                }
                GROUP => {
                    // Kafka answers for any group id, existing or not: its overrides, else the
                    // broker's defaults.
                    let overrides = image.group_configs.get(&name);
                    let configs = GROUP_CONFIGS
                        .iter()
                        .filter(|d| wanted(d.name))
                        .map(|d| {
                            let (value, source) = match overrides.and_then(|o| o.get(d.name)) {
                                Some(v) => (v.clone(), DYNAMIC_GROUP_CONFIG),
                                None => (d.default_value(&ctx.broker.config), DEFAULT_CONFIG),
                            };
                            DescribeConfigsResourceResult::default()
                                .with_name(s(d.name))
                                .with_value(Some(s(value)))
                                .with_read_only(false)
                                .with_config_source(source)
                                .with_config_type(if v3 { d.kind.kafka_type_code() } else { 0 })
                                .with_documentation(
                                    (v3 && req.include_documentation).then(|| s(d.doc)),
                                )
                        })
                        .collect();
                    base.with_configs(configs)
                }
                _ => base
                    .with_error_code(ResponseError::InvalidRequest.code())
                    .with_error_message(Some(s("unsupported resource type"))),
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

/// The values a broker key has at each set layer, highest precedence first.
fn broker_layers(ctx: &RequestContext, image: &MetadataImage, key: &str) -> Vec<(String, i8)> {
    let mut out = Vec::new();
    let node = ctx.broker.config.node_id.to_string();
    for (name, source) in [
        (node.as_str(), DYNAMIC_BROKER_CONFIG),
        ("", DYNAMIC_DEFAULT_BROKER_CONFIG),
    ] {
        if let Some(v) = image.broker_configs.get(name).and_then(|c| c.get(key)) {
            out.push((v.clone(), source));
        }
    }
    if let Some(v) = ctx.broker.config.explicit.get(key) {
        out.push((v.clone(), STATIC_BROKER_CONFIG));
    }
    out
}
