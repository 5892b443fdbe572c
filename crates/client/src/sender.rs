//! The producer's sender task: seals due batches, groups them by partition leader into Produce
//! requests (at most one batch per partition per request, as brokers require for v3+), and
//! completes or retries batches from the responses.
//!
//! Requests are queued on the connection from this one task, in seal order, so batches of one
//! partition reach the broker in order; only the wait for responses runs in spawned tasks, which
//! is what lets up to `max_in_flight` requests be outstanding.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse};
use tokio::sync::Semaphore;

use crate::accumulator::ProducerShared;
use crate::batch::ProducerBatch;
use crate::error::ClientError;
use crate::metadata::topic_name;
use crate::producer_config::Acks;

/// Runs until the producer is closed and every batch is completed.
pub(crate) async fn run(shared: Arc<ProducerShared>) {
    let permits = Arc::new(Semaphore::new(shared.config.max_in_flight.max(1)));
    loop {
        let closing = shared.closing.load(Ordering::Acquire);
        let (ready, next_due) = {
            let mut acc = shared.acc.lock();
            let next_due = acc.seal_due(shared.config.linger, closing);
            (acc.ready.drain(..).collect::<Vec<_>>(), next_due)
        };
        if !ready.is_empty() {
            dispatch(&shared, &permits, ready).await;
            continue;
        }
        if closing && shared.outstanding() == 0 {
            return;
        }
        match next_due {
            Some(due) => {
                tokio::select! {
                    () = shared.wake.notified() => {}
                    () = tokio::time::sleep_until(due) => {}
                }
            }
            None => shared.wake.notified().await,
        }
    }
}

/// Groups batches by leader (keeping seal order) and sends them.
async fn dispatch(
    shared: &Arc<ProducerShared>,
    permits: &Arc<Semaphore>,
    batches: Vec<ProducerBatch>,
) {
    let meta = shared.client.metadata();
    let mut by_leader: Vec<(i32, Vec<ProducerBatch>)> = Vec::new();
    for batch in batches {
        match meta.leader(&batch.topic, batch.partition) {
            Some(leader) => match by_leader.iter_mut().find(|(l, _)| *l == leader) {
                Some((_, group)) => group.push(batch),
                None => by_leader.push((leader, vec![batch])),
            },
            None => {
                let err = ClientError::broker(
                    format!("produce {}-{}", batch.topic, batch.partition),
                    5,
                    None,
                );
                retry_or_fail(shared, batch, err);
            }
        }
    }
    for (leader, mut group) in by_leader {
        while !group.is_empty() {
            let mut request: Vec<ProducerBatch> = Vec::with_capacity(group.len());
            let mut rest = Vec::new();
            for batch in group {
                if request
                    .iter()
                    .any(|b| b.partition == batch.partition && b.topic == batch.topic)
                {
                    rest.push(batch);
                } else {
                    request.push(batch);
                }
            }
            group = rest;
            send_request(shared, permits, leader, request).await;
        }
    }
}

async fn send_request(
    shared: &Arc<ProducerShared>,
    permits: &Arc<Semaphore>,
    leader: i32,
    batches: Vec<ProducerBatch>,
) {
    let Ok(permit) = permits.clone().acquire_owned().await else {
        // The semaphore is never closed; fail rather than panic if that ever changes.
        for batch in batches {
            shared.complete(batch, Err(ClientError::ProducerClosed));
        }
        return;
    };
    let conn = match shared.client.connection(leader).await {
        Ok(conn) => conn,
        Err(e) => return retry_all(shared, batches, &e),
    };
    let version = match conn.version(ApiKey::Produce) {
        Ok(v) => v,
        Err(e) => return fail_all(shared, batches, &e),
    };
    let (request, batches) = build_request(shared, batches);
    if batches.is_empty() {
        return;
    }
    if shared.config.acks == Acks::None {
        // The broker sends nothing back for acks=0: done once queued on the socket.
        match conn.send_without_response(version, &request) {
            Ok(()) => {
                for batch in batches {
                    shared.complete(batch, Ok(-1));
                }
            }
            Err(e) => retry_all(shared, batches, &e),
        }
        drop(permit);
        return;
    }
    match conn.start(version, &request) {
        Ok(pending) => {
            let shared = shared.clone();
            tokio::spawn(async move {
                let response = pending.wait().await;
                drop(permit);
                handle_response(&shared, batches, response);
            });
        }
        Err(e) => retry_all(shared, batches, &e),
    }
}

/// Encodes the batches into one ProduceRequest; a batch that fails to encode is failed on its own.
fn build_request(
    shared: &ProducerShared,
    batches: Vec<ProducerBatch>,
) -> (ProduceRequest, Vec<ProducerBatch>) {
    let mut topic_data: Vec<TopicProduceData> = Vec::new();
    let mut kept = Vec::with_capacity(batches.len());
    for batch in batches {
        let records = match batch.encode(shared.config.compression) {
            Ok(records) => records,
            Err(e) => {
                shared.complete(batch, Err(e));
                continue;
            }
        };
        let partition = PartitionProduceData::default()
            .with_index(batch.partition)
            .with_records(Some(records));
        match topic_data
            .iter_mut()
            .find(|t| t.name.0.as_str() == &*batch.topic)
        {
            Some(t) => t.partition_data.push(partition),
            None => topic_data.push(
                TopicProduceData::default()
                    .with_name(topic_name(&batch.topic))
                    .with_partition_data(vec![partition]),
            ),
        }
        kept.push(batch);
    }
    let timeout_ms = i32::try_from(shared.config.produce_timeout.as_millis()).unwrap_or(i32::MAX);
    let request = ProduceRequest::default()
        .with_acks(shared.config.acks.as_i16())
        .with_timeout_ms(timeout_ms)
        .with_topic_data(topic_data);
    (request, kept)
}

fn handle_response(
    shared: &Arc<ProducerShared>,
    batches: Vec<ProducerBatch>,
    response: Result<ProduceResponse, ClientError>,
) {
    let response = match response {
        Ok(response) => response,
        Err(e) => return retry_all(shared, batches, &e),
    };
    for batch in batches {
        let answer = response
            .responses
            .iter()
            .filter(|t| t.name.0.as_str() == &*batch.topic)
            .flat_map(|t| t.partition_responses.iter())
            .find(|p| p.index == batch.partition);
        let context = || format!("produce {}-{}", batch.topic, batch.partition);
        match answer {
            Some(p) if p.error_code == 0 => shared.complete(batch, Ok(p.base_offset)),
            Some(p) => {
                let err = ClientError::broker(context(), p.error_code, p.error_message.as_deref());
                retry_or_fail(shared, batch, err);
            }
            None => {
                let err =
                    ClientError::broker(context(), -1, Some("partition missing from response"));
                shared.complete(batch, Err(err));
            }
        }
    }
}

fn retry_all(shared: &Arc<ProducerShared>, batches: Vec<ProducerBatch>, err: &ClientError) {
    for batch in batches {
        retry_or_fail(shared, batch, err.clone());
    }
}

fn fail_all(shared: &Arc<ProducerShared>, batches: Vec<ProducerBatch>, err: &ClientError) {
    for batch in batches {
        shared.complete(batch, Err(err.clone()));
    }
}

/// Retries a batch after a backoff and a metadata refresh when the error says the leader or the
/// connection moved, up to the client's `retries`; otherwise fails it.
fn retry_or_fail(shared: &Arc<ProducerShared>, mut batch: ProducerBatch, err: ClientError) {
    if !err.is_retriable() || batch.attempts >= shared.client.config().retries {
        shared.complete(batch, Err(err));
        return;
    }
    batch.attempts += 1;
    tracing::debug!(topic = %batch.topic, partition = batch.partition, attempt = batch.attempts, error = %err, "retrying produce");
    let shared = shared.clone();
    tokio::spawn(async move {
        shared.client.backoff(batch.attempts).await;
        let topic = batch.topic.clone();
        if let Err(e) = shared.client.refresh_metadata(Some(&[&topic]), false).await {
            tracing::debug!(topic = %topic, error = %e, "metadata refresh before retry failed");
        }
        // Older than anything still waiting: put it first.
        shared.acc.lock().ready.push_front(batch);
        shared.wake.notify_one();
    });
}
