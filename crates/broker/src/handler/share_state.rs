//! The share coordinator's inter-broker APIs (KIP-932): InitializeShareGroupState (83),
//! ReadShareGroupState (84), WriteShareGroupState (85), DeleteShareGroupState (86) and
//! ReadShareGroupStateSummary (87), answered from `Coordinators::share_state` for the keys whose
//! `__share_group_state` partition this node leads. Partition leaders elsewhere send them through
//! their `SharePersister`. Kafka's authorization: CLUSTER_ACTION on the cluster.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    delete_share_group_state_response as delete_resp,
    initialize_share_group_state_response as init_resp,
    read_share_group_state_response as read_resp,
    read_share_group_state_summary_response as summary_resp,
    write_share_group_state_response as write_resp, DeleteShareGroupStateRequest,
    DeleteShareGroupStateResponse, InitializeShareGroupStateRequest,
    InitializeShareGroupStateResponse, ReadShareGroupStateRequest, ReadShareGroupStateResponse,
    ReadShareGroupStateSummaryRequest, ReadShareGroupStateSummaryResponse,
    WriteShareGroupStateRequest, WriteShareGroupStateResponse,
};
use strom_authorizer::AclOperation;
use strom_coordinator::{ShareCoordinator, SharePartitionKey};
use strom_share::{PersisterStateBatch, RecordState, ShareSnapshot, StateChanges};
use uuid::Uuid;

use super::RequestContext;

/// The coordinator, or the code every partition of the request gets.
fn admitted(ctx: &RequestContext) -> Result<&ShareCoordinator, i16> {
    if !super::group::share_group::enabled(ctx) {
        return Err(ResponseError::UnsupportedVersion.code());
    }
    if !ctx.authorized_cluster(AclOperation::ClusterAction) {
        return Err(ResponseError::ClusterAuthorizationFailed.code());
    }
    Ok(&ctx.broker.coordinators.share_state)
}

/// Runs `f` on every partition of a request, in request order: each topic's partitions with
/// their error codes.
async fn codes<'a, P, Fut>(
    topics: impl Iterator<Item = (Uuid, &'a [P])>,
    f: impl Fn(Uuid, &'a P) -> Fut,
) -> Vec<(Uuid, Vec<(&'a P, i16)>)>
where
    P: 'a,
    Fut: std::future::Future<Output = i16>,
{
    let mut out = Vec::new();
    for (topic_id, partitions) in topics {
        let mut done = Vec::with_capacity(partitions.len());
        for p in partitions {
            done.push((p, f(topic_id, p).await));
        }
        out.push((topic_id, done));
    }
    out
}

/// A response's results from [`codes`]: per topic its id, per partition its index and code.
macro_rules! coded_results {
    ($results:expr, $topic:ty, $partition:ty) => {
        $results
            .into_iter()
            .map(|(topic_id, partitions)| {
                <$topic>::default().with_topic_id(topic_id).with_partitions(
                    partitions
                        .into_iter()
                        .map(|(p, code)| {
                            <$partition>::default()
                                .with_partition(p.partition)
                                .with_error_code(code)
                        })
                        .collect(),
                )
            })
            .collect()
    };
}

fn key(group: &str, topic_id: Uuid, partition: i32) -> SharePartitionKey {
    SharePartitionKey {
        group_id: group.to_string(),
        topic_id,
        partition,
    }
}

pub(crate) async fn read(
    ctx: RequestContext,
    req: ReadShareGroupStateRequest,
) -> ReadShareGroupStateResponse {
    let coordinator = admitted(&ctx);
    let mut results = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in &t.partitions {
            let base = read_resp::PartitionResult::default().with_partition(p.partition);
            let read = match coordinator {
                Err(code) => Err(code),
                Ok(c) => c
                    .read_state(&key(&req.group_id, t.topic_id, p.partition))
                    .await
                    .map_err(|e| e.code()),
            };
            partitions.push(match read {
                Err(code) => base.with_error_code(code),
                // Kafka's answer for a share partition never initialized.
                Ok(None) => base.with_state_epoch(0).with_start_offset(-1),
                Ok(Some(s)) => base
                    .with_state_epoch(s.state_epoch)
                    .with_start_offset(s.start_offset)
                    .with_state_batches(
                        s.state_batches
                            .iter()
                            .map(|b| {
                                read_resp::StateBatch::default()
                                    .with_first_offset(b.first_offset)
                                    .with_last_offset(b.last_offset)
                                    .with_delivery_state(b.delivery_state.id())
                                    .with_delivery_count(b.delivery_count)
                            })
                            .collect(),
                    ),
            });
        }
        results.push(
            read_resp::ReadStateResult::default()
                .with_topic_id(t.topic_id)
                .with_partitions(partitions),
        );
    }
    ReadShareGroupStateResponse::default().with_results(results)
}

pub(crate) async fn read_summary(
    ctx: RequestContext,
    req: ReadShareGroupStateSummaryRequest,
) -> ReadShareGroupStateSummaryResponse {
    let coordinator = admitted(&ctx);
    let mut results = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in &t.partitions {
            let base = summary_resp::PartitionResult::default().with_partition(p.partition);
            let read = match coordinator {
                Err(code) => Err(code),
                Ok(c) => c
                    .read_state(&key(&req.group_id, t.topic_id, p.partition))
                    .await
                    .map_err(|e| e.code()),
            };
            partitions.push(match read {
                Err(code) => base.with_error_code(code),
                Ok(None) => base.with_start_offset(-1),
                Ok(Some(s)) => base
                    .with_state_epoch(s.state_epoch)
                    .with_leader_epoch(s.leader_epoch)
                    .with_start_offset(s.start_offset),
            });
        }
        results.push(
            summary_resp::ReadStateSummaryResult::default()
                .with_topic_id(t.topic_id)
                .with_partitions(partitions),
        );
    }
    ReadShareGroupStateSummaryResponse::default().with_results(results)
}

pub(crate) async fn write(
    ctx: RequestContext,
    req: WriteShareGroupStateRequest,
) -> WriteShareGroupStateResponse {
    let coordinator = admitted(&ctx);
    let group = &req.group_id;
    let topics = req.topics.iter().map(|t| (t.topic_id, &t.partitions[..]));
    let results = codes(topics, |topic_id, p| async move {
        let batches = p
            .state_batches
            .iter()
            .map(|b| {
                Some(PersisterStateBatch {
                    first_offset: b.first_offset,
                    last_offset: b.last_offset,
                    delivery_state: RecordState::from_id(b.delivery_state)?,
                    delivery_count: b.delivery_count,
                })
            })
            .collect::<Option<Vec<_>>>();
        match (coordinator, batches) {
            (Err(code), _) => code,
            (_, None) => ResponseError::InvalidRequest.code(),
            (Ok(c), Some(batches)) => {
                let changes =
                    StateChanges::received(p.state_epoch, p.leader_epoch, p.start_offset, batches);
                c.write_state(&key(group, topic_id, p.partition), &changes)
                    .await
                    .map_or_else(|e| e.code(), |()| 0)
            }
        }
    })
    .await;
    WriteShareGroupStateResponse::default().with_results(coded_results!(
        results,
        write_resp::WriteStateResult,
        write_resp::PartitionResult
    ))
}

pub(crate) async fn initialize(
    ctx: RequestContext,
    req: InitializeShareGroupStateRequest,
) -> InitializeShareGroupStateResponse {
    let coordinator = admitted(&ctx);
    let group = &req.group_id;
    let topics = req.topics.iter().map(|t| (t.topic_id, &t.partitions[..]));
    let results = codes(topics, |topic_id, p| async move {
        match coordinator {
            Err(code) => code,
            Ok(c) => c
                .initialize_state(
                    &key(group, topic_id, p.partition),
                    ShareSnapshot::new(p.state_epoch, -1, p.start_offset),
                )
                .await
                .map_or_else(|e| e.code(), |()| 0),
        }
    })
    .await;
    InitializeShareGroupStateResponse::default().with_results(coded_results!(
        results,
        init_resp::InitializeStateResult,
        init_resp::PartitionResult
    ))
}

pub(crate) async fn delete(
    ctx: RequestContext,
    req: DeleteShareGroupStateRequest,
) -> DeleteShareGroupStateResponse {
    let coordinator = admitted(&ctx);
    let group = &req.group_id;
    let topics = req.topics.iter().map(|t| (t.topic_id, &t.partitions[..]));
    let results = codes(topics, |topic_id, p| async move {
        match coordinator {
            Err(code) => code,
            Ok(c) => c
                .delete_state(&key(group, topic_id, p.partition))
                .await
                .map_or_else(|e| e.code(), |()| 0),
        }
    })
    .await;
    DeleteShareGroupStateResponse::default().with_results(coded_results!(
        results,
        delete_resp::DeleteStateResult,
        delete_resp::PartitionResult
    ))
}
