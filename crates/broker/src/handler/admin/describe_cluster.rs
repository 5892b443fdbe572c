//! DescribeCluster (v0–v2): the cluster id, the active controller, and the registered brokers
//! (unfenced ones; v2 with `include_fenced_brokers` also the fenced, marked so).

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

use strom_authorizer::{AclOperation, ResourceType, CLUSTER_RESOURCE_NAME};

use crate::handler::RequestContext;

/// Kafka: the cluster's authorized operations when asked, and only to whom may DESCRIBE the
/// cluster (0 otherwise); DescribeCluster itself needs no permission.
fn cluster_operations(ctx: &RequestContext, req: &DescribeClusterRequest) -> i32 {
    if !req.include_cluster_authorized_operations {
        i32::MIN
    } else if ctx.authorized_cluster(AclOperation::Describe) {
        ctx.broker.authorization.authorized_operations(
            &ctx.session,
            ResourceType::Cluster,
            CLUSTER_RESOURCE_NAME,
        )
    } else {
        0
    }
}

pub(crate) fn handle(ctx: &RequestContext, req: DescribeClusterRequest) -> DescribeClusterResponse {
    let b = &ctx.broker;
    let image = b.metadata.image();
    let include_fenced = ctx.api_version >= 2 && req.include_fenced_brokers;
    let mut brokers: Vec<DescribeClusterBroker> = image
        .brokers
        .values()
        .filter(|x| include_fenced || !x.fenced)
        .map(|x| {
            let (host, port) = b.endpoints.of(x, &ctx.session.listener);
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(x.id()))
                .with_host(StrBytes::from_string(host))
                .with_port(port)
                .with_rack(x.registration.rack.clone().map(StrBytes::from_string))
                .with_is_fenced(ctx.api_version >= 2 && x.fenced)
        })
        .collect();
    if image.brokers.is_empty() {
        // Before this node's own registration is applied.
        let (host, port) = b.endpoints.own_on(&ctx.session.listener);
        brokers.push(
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(b.config.node_id))
                .with_host(StrBytes::from_string(host))
                .with_port(port),
        );
    }
    let controller = b.metadata.controller_leader().unwrap_or(-1);
    DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_string(b.cluster_id.clone()))
        .with_controller_id(BrokerId(controller))
        .with_endpoint_type(1)
        .with_cluster_authorized_operations(cluster_operations(ctx, &req))
        .with_brokers(brokers)
}
