//! FindCoordinator (v0–v6; v4+ answers a batch of keys): a group's coordinator is the leader of
//! the group's `__consumer_offsets` partition, a transactional id's the leader of its
//! `__transaction_state` partition, with that broker's endpoint from the metadata image (Kafka's
//! rule). The internal topic is created here on first use if it does not exist yet
//! (`internal_topics::ensure`); no topic yet, no leader, or a leader with no live endpoint is
//! COORDINATOR_NOT_AVAILABLE, and the client asks again. Whether the coordinator has finished
//! loading is not checked here: the next request to it says COORDINATOR_LOAD_IN_PROGRESS.
//! Share groups (key type 2) do not exist yet.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use super::wire;
use strom_authorizer::{AclOperation, ResourceType};

use crate::handler::RequestContext;
use crate::internal_topics;
use crate::local_leaders::Leader;

const GROUP: i8 = 0;
const TRANSACTION: i8 = 1;
/// KIP-932: a share partition's coordinator (`group:topicId:partition`), asked by brokers.
const SHARE: i8 = 2;

/// The answer for one key.
struct Found {
    node: i32,
    host: String,
    port: i32,
    code: i16,
    message: Option<String>,
}

impl Found {
    fn error(e: ResponseError, message: &str) -> Found {
        Found {
            node: -1,
            host: String::new(),
            port: -1,
            code: e.code(),
            message: Some(message.to_string()),
        }
    }
}

async fn lookup(ctx: &RequestContext, key_type: i8, key: &str) -> Found {
    let broker = &ctx.broker;
    let (topic, partition) = match key_type {
        GROUP if key.is_empty() => {
            return Found::error(ResponseError::InvalidRequest, "empty group id")
        }
        TRANSACTION if key.is_empty() => {
            return Found::error(ResponseError::InvalidRequest, "empty transactional id")
        }
        // Kafka: DESCRIBE on the group or the transactional id.
        GROUP if !ctx.authorized_group(AclOperation::Describe, key) => {
            return Found::error(
                ResponseError::GroupAuthorizationFailed,
                "Authorization failed.",
            )
        }
        TRANSACTION
            if !ctx.authorized(AclOperation::Describe, ResourceType::TransactionalId, key) =>
        {
            return Found::error(
                ResponseError::TransactionalIdAuthorizationFailed,
                "Authorization failed.",
            )
        }
        SHARE if !ctx.authorized_cluster(AclOperation::ClusterAction) => {
            return Found::error(
                ResponseError::ClusterAuthorizationFailed,
                "Authorization failed.",
            )
        }
        SHARE => match strom_coordinator::SharePartitionKey::parse(key) {
            Some(k) => (
                internal_topics::share_state(&broker.config, &broker.coordinators),
                broker.coordinators.share_state.partition_for(&k),
            ),
            None => {
                return Found::error(ResponseError::InvalidRequest, "not a share partition key")
            }
        },
        GROUP => (
            internal_topics::offsets(&broker.config, &broker.coordinators),
            broker.coordinators.groups.partition_for(key),
        ),
        TRANSACTION => (
            internal_topics::transaction_state(&broker.config, &broker.coordinators),
            broker.coordinators.txn.partition_for(key),
        ),
        _ => {
            return Found::error(
                ResponseError::InvalidRequest,
                "unsupported coordinator key type",
            )
        }
    };
    if !internal_topics::ensure(&broker.topic_admin, &topic).await {
        return Found::error(
            ResponseError::CoordinatorNotAvailable,
            "the internal topic does not exist yet",
        );
    }
    let image = broker.metadata.image();
    let leaders = &broker.leaders;
    let (node, endpoint) = match leaders.leader_of(&image, topic.name, partition) {
        Leader::Here { .. } => {
            let node = broker.config.node_id;
            (node, leaders.endpoint(&image, node, &ctx.session.listener))
        }
        Leader::Remote { id } => (id, leaders.endpoint(&image, id, &ctx.session.listener)),
        Leader::Unavailable | Leader::Unknown => (-1, None),
    };
    match endpoint {
        Some((host, port)) => Found {
            node,
            host,
            port,
            code: 0,
            message: None,
        },
        None => Found::error(
            ResponseError::CoordinatorNotAvailable,
            "the coordinator's partition has no available leader",
        ),
    }
}

pub(crate) async fn handle(
    ctx: RequestContext,
    req: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let v = ctx.api_version;
    if v >= 4 {
        let mut coordinators = Vec::with_capacity(req.coordinator_keys.len());
        for k in &req.coordinator_keys {
            let f = lookup(&ctx, req.key_type, k.as_str()).await;
            coordinators.push(
                Coordinator::default()
                    .with_key(k.clone())
                    .with_node_id(BrokerId(f.node))
                    .with_host(wire(f.host))
                    .with_port(f.port)
                    .with_error_code(f.code)
                    .with_error_message(f.message.map(StrBytes::from_string)),
            );
        }
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let key_type = if v >= 1 { req.key_type } else { GROUP };
    let Found {
        node,
        host,
        port,
        code,
        message: msg,
    } = lookup(&ctx, key_type, req.key.as_str()).await;
    FindCoordinatorResponse::default()
        .with_node_id(BrokerId(node))
        .with_host(wire(host))
        .with_port(port)
        .with_error_code(code)
        // error_message exists from v1.
        .with_error_message(msg.filter(|_| v >= 1).map(StrBytes::from_string))
}
