//! CreatePartitions (v0–v3): raises a topic's partition count (never lowers it); validated and
//! applied by `Broker::create_partitions`.

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::StrBytes;

use kafka_protocol::error::ResponseError;
use strom_authorizer::AclOperation;

use super::controller_mutation;
use crate::handler::RequestContext;

pub(crate) async fn handle(
    ctx: RequestContext,
    req: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let mut results = Vec::with_capacity(req.topics.len());
    let mut throttle_ms = 0;
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
        // The new partitions count against `controller_mutation_rate` (KIP-599; v3+ strict).
        if !req.validate_only {
            let current = ctx
                .broker
                .metadata
                .image()
                .topic(&t.name.0)
                .map_or(0, |x| x.partitions.len());
            let added = usize::try_from(t.count)
                .unwrap_or(0)
                .saturating_sub(current);
            match controller_mutation(&ctx, added, ctx.api_version >= 3) {
                Ok(ms) => throttle_ms = throttle_ms.max(ms),
                Err(ms) => {
                    throttle_ms = throttle_ms.max(ms);
                    results.push(
                        CreatePartitionsTopicResult::default()
                            .with_name(t.name)
                            .with_error_code(ResponseError::ThrottlingQuotaExceeded.code()),
                    );
                    continue;
                }
            }
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
    ctx.mute_for(throttle_ms);
    CreatePartitionsResponse::default()
        .with_results(results)
        .with_throttle_time_ms(i32::try_from(throttle_ms).unwrap_or(i32::MAX))
}
