//! DescribeCluster (v0–v1): this node as the only broker and the controller.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{ApiKey, BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

use crate::handler::{decode, ready, ApiHandler};

pub(crate) const HANDLER: ApiHandler = ApiHandler {
    api_key: ApiKey::DescribeCluster,
    min_version: 0,
    max_version: 1,
    min_served: 0,
    handle: |ctx, body| {
        let _req: DescribeClusterRequest = decode(ApiKey::DescribeCluster, ctx.api_version, body)?;
        let b = &ctx.broker;
        let (host, port) = b.advertised.clone();
        Ok(ready(
            DescribeClusterResponse::default()
                .with_cluster_id(StrBytes::from_string(b.cluster_id.clone()))
                .with_controller_id(BrokerId(b.config.node_id))
                .with_endpoint_type(1)
                .with_cluster_authorized_operations(i32::MIN)
                .with_brokers(vec![DescribeClusterBroker::default()
                    .with_broker_id(BrokerId(b.config.node_id))
                    .with_host(StrBytes::from_string(host))
                    .with_port(port)]),
        ))
    },
};
