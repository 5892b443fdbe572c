//! CreatePartitions (v0–v3): raises a topic's partition count (never lowers it); validated and
//! applied by `Broker::create_partitions`.

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::StrBytes;

use kafka_protocol::error::ResponseError;
use strom_authorizer::AclOperation;

use crate::handler::RequestContext;

pub(crate) async fn handle(
    ctx: RequestContext,
    req: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let mut results = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        // Kafka: ALTER on the topic.
        if !ctx.authorized_topic(AclOperation::Alter, &t.name.0) {
            results.push(
                CreatePartitionsTopicResult::default()
                    .with_name(t.name)
                    .with_error_code(ResponseError::TopicAuthorizationFailed.code()),
            );
            continue;
        }
        let assignments = t.assignments.as_ref().map(|a| {
            a.iter()
                .map(|x| x.broker_ids.iter().map(|b| b.0).collect())
                .collect()
        });
        let r = ctx
            .broker
            .topic_admin
            .create_partitions(t.name.0.as_str(), t.count, assignments, req.validate_only)
            .await;
        let base = CreatePartitionsTopicResult::default().with_name(t.name);
        results.push(match r {
            Ok(()) => base,
            Err(e) => base
                .with_error_code(e.code)
                .with_error_message(Some(StrBytes::from_string(e.message))),
        });
    }
    CreatePartitionsResponse::default().with_results(results)
}
