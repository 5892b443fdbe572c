//! DeleteTopics (v1–v6): by name, or by topic id (v6). Each topic needs DELETE on it.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use strom_authorizer::AclOperation;

use super::controller_mutation;
use crate::handler::RequestContext;

pub(crate) async fn handle(ctx: RequestContext, req: DeleteTopicsRequest) -> DeleteTopicsResponse {
    let image = ctx.broker.metadata.image();
    // (name if known, id as given)
    let wanted: Vec<(Option<String>, uuid::Uuid)> = if ctx.api_version >= 6 {
        req.topics
            .iter()
            .map(|t| match &t.name {
                Some(n) => (Some(n.0.to_string()), t.topic_id),
                None => (
                    image.topic_by_id(&t.topic_id).map(|x| x.name.clone()),
                    t.topic_id,
                ),
            })
            .collect()
    } else {
        req.topic_names
            .iter()
            .map(|n| (Some(n.0.to_string()), uuid::Uuid::nil()))
            .collect()
    };
    // Kafka: DELETE on the topic; a refused topic is not attempted. A topic asked for by id
    // without DESCRIBE does not reveal its name.
    let allowed = |name: &Option<String>| {
        name.as_deref()
            .is_some_and(|n| ctx.authorized_topic(AclOperation::Delete, n))
    };
    // Then each topic's partitions count against `controller_mutation_rate` (KIP-599; v5+
    // strict: a refused topic answers THROTTLING_QUOTA_EXCEEDED).
    let mut throttle_ms = 0;
    // (name, id, may delete, refused by the quota)
    let wanted: Vec<(Option<String>, uuid::Uuid, bool, bool)> = wanted
        .into_iter()
        .map(|(n, id)| {
            let ok = n.is_none() || allowed(&n);
            if ok {
                let partitions = n
                    .as_deref()
                    .and_then(|n| image.topic(n))
                    .map_or(0, |t| t.partitions.len());
                match controller_mutation(&ctx, partitions, ctx.api_version >= 5) {
                    Ok(ms) => throttle_ms = throttle_ms.max(ms),
                    Err(ms) => {
                        throttle_ms = throttle_ms.max(ms);
                        return (n, id, false, true);
                    }
                }
            }
            (n, id, ok, false)
        })
        .collect();
    ctx.mute_for(throttle_ms);
    let names: Vec<String> = wanted
        .iter()
        .filter(|(_, _, ok, _)| *ok)
        .filter_map(|(n, _, _, _)| n.clone())
        .collect();
    let mut results = ctx
        .broker
        .topic_admin
        .delete_topics(names)
        .await
        .into_iter();
    let responses = wanted
        .into_iter()
        .map(|(name, id, ok, throttled)| {
            if throttled {
                return DeletableTopicResult::default()
                    .with_name(name.map(|n| TopicName(StrBytes::from_string(n))))
                    .with_topic_id(id)
                    .with_error_code(ResponseError::ThrottlingQuotaExceeded.code());
            }
            if !ok {
                let by_id = ctx.api_version >= 6 && !id.is_nil();
                let shown =
                    name.filter(|n| !by_id || ctx.authorized_topic(AclOperation::Describe, n));
                return DeletableTopicResult::default()
                    .with_name(shown.map(|n| TopicName(StrBytes::from_string(n))))
                    .with_topic_id(id)
                    .with_error_code(ResponseError::TopicAuthorizationFailed.code());
            }
            let base = DeletableTopicResult::default()
                .with_name(name.clone().map(|n| TopicName(StrBytes::from_string(n))))
                .with_topic_id(id);
            match name {
                None => base.with_error_code(ResponseError::UnknownTopicId.code()),
                Some(_) => match results.next() {
                    Some(Ok(id)) if ctx.api_version >= 6 => base.with_topic_id(id),
                    Some(Ok(_)) => base,
                    Some(Err(e)) => base.with_error_code(e.code).with_error_message(
                        (ctx.api_version >= 5).then(|| StrBytes::from_string(e.message)),
                    ),
                    None => base.with_error_code(ResponseError::UnknownServerError.code()),
                },
            }
        })
        .collect();
    DeleteTopicsResponse::default()
        .with_responses(responses)
        .with_throttle_time_ms(i32::try_from(throttle_ms).unwrap_or(i32::MAX))
}
