//! IncrementalAlterConfigs (v0–v1) and AlterConfigs (v0–v2) for topics, brokers and groups
//! (KIP-848/KIP-932 group configs, `config::GROUP_CONFIGS`): parsed here,
//! validated and applied by `Broker::alter_configs` (persisted as metadata `Config` records,
//! applied to the logs live). Errors name the key (INVALID_CONFIG). Each resource needs
//! ALTER_CONFIGS on the topic or group, or on the cluster for a broker.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    alter_configs_response, incremental_alter_configs_response, AlterConfigsRequest,
    AlterConfigsResponse, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;

use strom_authorizer::AclOperation;

use crate::handler::RequestContext;
use crate::metadata::ConfigResourceType;
use crate::topic_admin::TopicError;
use crate::topic_admin::{ConfigAlteration, ConfigOp};

pub(crate) const TOPIC: i8 = 2;
pub(crate) const BROKER: i8 = 4;
pub(crate) const GROUP: i8 = 32;

fn resource_type(t: i8) -> Option<ConfigResourceType> {
    match t {
        TOPIC => Some(ConfigResourceType::Topic),
        BROKER => Some(ConfigResourceType::Broker),
        GROUP => Some(ConfigResourceType::Group),
        _ => None,
    }
}

/// Kafka's config authorization: `operation` (DESCRIBE_CONFIGS or ALTER_CONFIGS) on the topic
/// or the group, or on the cluster for a broker's configs; the refusal's code, if refused.
pub(crate) fn config_refusal(
    ctx: &RequestContext,
    resource_type: i8,
    name: &str,
    operation: AclOperation,
) -> Option<ResponseError> {
    match resource_type {
        TOPIC if !ctx.authorized_topic(operation, name) => {
            Some(ResponseError::TopicAuthorizationFailed)
        }
        BROKER if !ctx.authorized_cluster(operation) => {
            Some(ResponseError::ClusterAuthorizationFailed)
        }
        GROUP if !ctx.authorized_group(operation, name) => {
            Some(ResponseError::GroupAuthorizationFailed)
        }
        _ => None,
    }
}

/// One resource as parsed: type, name, and its operations (or why they are malformed).
type ParsedResource = (i8, String, Result<Vec<(String, ConfigOp)>, TopicError>);

/// Runs the well-formed alterations; returns one `(code, message)` per resource, in order. A
/// change to this broker's keystore or truststore is read and checked before it is recorded,
/// and the listeners switch to it once it is (`ListenerTls`).
async fn run(
    ctx: &RequestContext,
    resources: Vec<ParsedResource>,
    replace: bool,
    validate_only: bool,
) -> Vec<(i16, Option<String>)> {
    let broker = &ctx.broker;
    let image = broker.metadata.image();
    let mut alterations = Vec::new();
    let mut reloads = Vec::new();
    let mut slots = Vec::new();
    for (t, name, ops) in resources {
        if let Some(code) = config_refusal(ctx, t, &name, AclOperation::AlterConfigs) {
            slots.push(Err(TopicError::new(code, "Authorization failed.")));
            continue;
        }
        let resource_type = resource_type(t);
        let reload = match (&resource_type, &ops) {
            (Some(ConfigResourceType::Broker), Ok(ops))
                if name == broker.config.node_id.to_string() =>
            {
                let current = image.broker_configs.get(&name).cloned().unwrap_or_default();
                broker
                    .listener_tls
                    .prepare(&broker.config.security, &current, ops, replace)
                    .map_err(|reason| TopicError {
                        code: ResponseError::InvalidConfig.code(),
                        message: reason,
                    })
            }
            _ => Ok(None),
        };
        match (resource_type, ops, reload) {
            (None, _, _) => slots.push(Err(TopicError {
                code: ResponseError::InvalidRequest.code(),
                message: format!("Unsupported resource type {t}"),
            })),
            (_, Err(e), _) | (_, _, Err(e)) => slots.push(Err(e)),
            (Some(rt), Ok(ops), Ok(reload)) => {
                slots.push(Ok(alterations.len()));
                reloads.push(reload);
                alterations.push(ConfigAlteration {
                    resource_type: rt,
                    resource_name: name,
                    ops,
                    replace,
                });
            }
        }
    }
    let results = broker
        .topic_admin
        .alter_configs(alterations, validate_only)
        .await;
    for (result, reload) in results.iter().zip(reloads) {
        if let (Ok(()), Some(reload), false) = (result, reload, validate_only) {
            broker.listener_tls.commit(reload);
        }
    }
    slots
        .into_iter()
        .map(
            |s| match s.and_then(|i| results.get(i).cloned().unwrap_or(Ok(())).map(|_| ())) {
                Ok(()) => (0, None),
                Err(e) => (e.code, Some(e.message)),
            },
        )
        .collect()
}

pub(crate) async fn incremental(
    ctx: RequestContext,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let resources = req
        .resources
        .iter()
        .map(|r| {
            let ops = r
                .configs
                .iter()
                .map(|c| {
                    let name = c.name.to_string();
                    let value = c.value.as_ref().map(|v| v.to_string());
                    let op = match (c.config_operation, value) {
                        (0, Some(v)) => ConfigOp::Set(v),
                        (1, _) => ConfigOp::Delete,
                        (2, Some(v)) => ConfigOp::Append(v),
                        (3, Some(v)) => ConfigOp::Subtract(v),
                        (0 | 2 | 3, None) => {
                            return Err(TopicError {
                                code: ResponseError::InvalidConfig.code(),
                                message: format!("Null value not supported for : {name}"),
                            })
                        }
                        (op, _) => {
                            return Err(TopicError {
                                code: ResponseError::InvalidRequest.code(),
                                message: format!("Unknown config operation {op} for {name}"),
                            })
                        }
                    };
                    Ok((name, op))
                })
                .collect::<Result<Vec<_>, _>>();
            (r.resource_type, r.resource_name.to_string(), ops)
        })
        .collect();
    let results = run(&ctx, resources, false, req.validate_only).await;
    let responses = req
        .resources
        .iter()
        .zip(results)
        .map(|(r, (code, msg))| {
            incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                .with_error_code(code)
                .with_error_message(msg.map(StrBytes::from_string))
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone())
        })
        .collect();
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

pub(crate) async fn alter(ctx: RequestContext, req: AlterConfigsRequest) -> AlterConfigsResponse {
    let resources = req
        .resources
        .iter()
        .map(|r| {
            let ops = r
                .configs
                .iter()
                .filter_map(|c| {
                    c.value
                        .as_ref()
                        .map(|v| (c.name.to_string(), ConfigOp::Set(v.to_string())))
                })
                .collect::<Vec<_>>();
            (r.resource_type, r.resource_name.to_string(), Ok(ops))
        })
        .collect();
    let results = run(&ctx, resources, true, req.validate_only).await;
    let responses = req
        .resources
        .iter()
        .zip(results)
        .map(|(r, (code, msg))| {
            alter_configs_response::AlterConfigsResourceResponse::default()
                .with_error_code(code)
                .with_error_message(msg.map(StrBytes::from_string))
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone())
        })
        .collect();
    AlterConfigsResponse::default().with_responses(responses)
}
