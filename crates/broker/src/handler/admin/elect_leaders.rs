//! ElectLeaders (v0–v2): preferred leader election (move leadership back to each partition's
//! first replica when it is alive and in sync), decided by the active controller. Unclean
//! election on request is not offered: `unclean.leader.election.enable` governs it.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use strom_authorizer::AclOperation;

use crate::handler::RequestContext;

/// `election_type` of a preferred election.
const PREFERRED: i8 = 0;

pub(crate) async fn handle(ctx: RequestContext, req: ElectLeadersRequest) -> ElectLeadersResponse {
    let image = ctx.broker.metadata.image();
    // Kafka: ALTER on the cluster; refused, every partition asked for says so.
    if !ctx.authorized_cluster(AclOperation::Alter) {
        let code = ResponseError::ClusterAuthorizationFailed.code();
        let results = req
            .topic_partitions
            .unwrap_or_default()
            .into_iter()
            .map(|t| {
                ReplicaElectionResult::default()
                    .with_topic(t.topic)
                    .with_partition_result(
                        t.partitions
                            .into_iter()
                            .map(|p| {
                                PartitionResult::default()
                                    .with_partition_id(p)
                                    .with_error_code(code)
                            })
                            .collect(),
                    )
            })
            .collect();
        return ElectLeadersResponse::default()
            .with_error_code(code)
            .with_replica_election_results(results);
    }
    // null = every partition of every topic.
    let wanted: Vec<(String, Vec<i32>)> = match req.topic_partitions {
        Some(list) => list
            .into_iter()
            .map(|t| (t.topic.0.to_string(), t.partitions))
            .collect(),
        None => image
            .topics()
            .map(|t| (t.name.clone(), t.partitions.keys().copied().collect()))
            .collect(),
    };
    let mut known: Vec<(Uuid, i32)> = Vec::new();
    for (name, parts) in &wanted {
        if let Some(t) = image.topic(name) {
            known.extend(
                parts
                    .iter()
                    .filter(|p| t.partitions.contains_key(p))
                    .map(|p| (t.id, *p)),
            );
        }
    }
    let outcome: Result<Vec<Result<(), i16>>, String> = if req.election_type != PREFERRED {
        Err("only preferred leader election is supported".into())
    } else {
        ctx.broker
            .metadata
            .elect_leaders(known.clone())
            .await
            .map_err(|e| e.to_string())
    };
    let mut results = Vec::with_capacity(wanted.len());
    for (name, parts) in wanted {
        let topic_id = image.topic(&name).map(|t| t.id);
        let partition_result = parts
            .into_iter()
            .map(|p| {
                let base = PartitionResult::default().with_partition_id(p);
                let idx = topic_id.and_then(|id| known.iter().position(|k| *k == (id, p)));
                let code = match (&outcome, idx) {
                    (_, None) => ResponseError::UnknownTopicOrPartition.code(),
                    (Err(_), _) if req.election_type != PREFERRED => {
                        ResponseError::InvalidRequest.code()
                    }
                    (Err(_), _) => ResponseError::RequestTimedOut.code(),
                    (Ok(r), Some(i)) => match r.get(i) {
                        Some(Ok(())) => 0,
                        Some(Err(code)) => *code,
                        None => ResponseError::UnknownServerError.code(),
                    },
                };
                let message = match &outcome {
                    Err(m) if code != 0 => Some(StrBytes::from_string(m.clone())),
                    _ => None,
                };
                base.with_error_code(code).with_error_message(message)
            })
            .collect();
        results.push(
            ReplicaElectionResult::default()
                .with_topic(TopicName(StrBytes::from_string(name)))
                .with_partition_result(partition_result),
        );
    }
    ElectLeadersResponse::default().with_replica_election_results(results)
}
