//! A partition leader's questions to a transaction coordinator (Kafka's
//! `AddPartitionsToTxnManager`, KIP-890 part 1): is this partition in the producer's open
//! transaction? Asked before a producer's first transactional batch in a partition (Produce)
//! and before transactional offsets are written (TxnOffsetCommit), so no write lands in a
//! transaction the coordinator does not know about.
//!
//! With Transactions V2 (KIP-890 part 2: Produce v12, TxnOffsetCommit v5) the question becomes
//! an order: the client sends no AddPartitionsToTxn, the leader adds the partition to the
//! transaction on its behalf ([`TxnCheck::Add`]).
//!
//! The coordinator of a transactional id is the leader of its `__transaction_state` partition:
//! this node answers itself when it is that leader, otherwise it sends AddPartitionsToTxn v4+
//! (`verify_only`) or v5 (add) over its own inter-broker connections (`inter_broker.rs`). A
//! coordinator too old for v4 cannot verify: the write then goes ahead unverified, as Kafka
//! does.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, ApiKey, ProducerId, TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use strom_coordinator::txn::{TxnError, TRANSACTION_STATE_TOPIC};

use crate::handler::txn::code as txn_code;
use crate::inter_broker::by_topic;
use crate::Broker;

/// What the leader asks of the coordinator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TxnCheck {
    /// Transactions V1: are the partitions in the open transaction?
    Verify,
    /// Transactions V2: add them to the transaction (starting one if needed).
    Add,
}

impl TxnCheck {
    /// V2 for Produce v12+ and TxnOffsetCommit v5+ (Kafka sends those only with V2 enabled).
    pub(crate) fn for_request(v2: bool) -> Self {
        if v2 {
            TxnCheck::Add
        } else {
            TxnCheck::Verify
        }
    }
}

/// The producer a question is about.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TxnProducer<'a> {
    pub(crate) transactional_id: &'a str,
    pub(crate) producer_id: i64,
    pub(crate) epoch: i16,
}

/// Asks whether `partitions` are in `producer`'s open transaction (or adds them, `check`). One
/// Kafka error code per partition, in order (0 = verified), as the coordinator answered; see
/// [`for_produce`] for what a producer is told.
pub(crate) async fn verify(
    broker: &Broker,
    check: TxnCheck,
    producer: TxnProducer<'_>,
    partitions: &[(String, i32)],
) -> Vec<i16> {
    let all = |code: i16| vec![code; partitions.len()];
    match broker
        .coordinators
        .txn
        .check_owned(producer.transactional_id)
    {
        Ok(_) => {
            let (id, pid, epoch) = (
                producer.transactional_id,
                producer.producer_id,
                producer.epoch,
            );
            let r = match check {
                TxnCheck::Verify => {
                    broker
                        .coordinators
                        .txn
                        .add_partitions(id, pid, epoch, partitions, true)
                        .await
                }
                TxnCheck::Add => {
                    broker
                        .coordinators
                        .txn
                        .add_partitions_v2(id, pid, epoch, partitions)
                        .await
                }
            };
            all(r.err().map_or(0, |e| txn_code(&e, true)))
        }
        Err(TxnError::NotCoordinator) => remote(broker, check, producer, partitions).await,
        Err(e) => all(txn_code(&e, true)),
    }
}

/// Asks the coordinator on another broker.
async fn remote(
    broker: &Broker,
    check: TxnCheck,
    producer: TxnProducer<'_>,
    partitions: &[(String, i32)],
) -> Vec<i16> {
    let all = |code: ResponseError| vec![code.code(); partitions.len()];
    let image = broker.metadata.image();
    let p = broker
        .coordinators
        .txn
        .partition_for(producer.transactional_id);
    let leader = image
        .topic(TRANSACTION_STATE_TOPIC)
        .and_then(|t| t.partitions.get(&p))
        .map_or(-1, |x| x.leader);
    let Some(b) = image
        .brokers
        .get(&leader)
        .filter(|_| leader != broker.config.node_id)
    else {
        return all(ResponseError::CoordinatorNotAvailable);
    };
    let addr = broker.endpoints.inter_broker_addr(b);
    let conn = match broker
        .verification_connections
        .connection(leader, &addr)
        .await
    {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(broker = leader, addr, error = %e, "transaction verification: no connection");
            return all(ResponseError::NetworkException);
        }
    };
    let version = match conn.version(ApiKey::AddPartitionsToTxn) {
        // Adding on the client's behalf needs v5, where it means Transactions V2.
        Ok(v) if check == TxnCheck::Add && v < 5 => {
            return all(ResponseError::UnsupportedVersion);
        }
        Ok(v) if v >= 4 => v,
        _ => {
            tracing::warn!(broker = leader, "transaction coordinator cannot verify (AddPartitionsToTxn v4+); writing unverified");
            return vec![0; partitions.len()];
        }
    };
    let topics = by_topic(partitions)
        .into_iter()
        .map(|(t, ps)| {
            AddPartitionsToTxnTopic::default()
                .with_name(TopicName(StrBytes::from_string(t.to_string())))
                .with_partitions(ps)
        })
        .collect();
    let req = AddPartitionsToTxnRequest::default().with_transactions(vec![
        AddPartitionsToTxnTransaction::default()
            .with_transactional_id(TransactionalId(StrBytes::from_string(
                producer.transactional_id.to_string(),
            )))
            .with_producer_id(ProducerId(producer.producer_id))
            .with_producer_epoch(producer.epoch)
            .with_verify_only(check == TxnCheck::Verify)
            .with_topics(topics),
    ]);
    let resp = match conn.send(version, &req).await {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(broker = leader, addr, error = %e, "transaction verification got no answer");
            broker.verification_connections.forget(leader);
            return all(ResponseError::NetworkException);
        }
    };
    if resp.error_code != 0 {
        return vec![resp.error_code; partitions.len()];
    }
    let Some(result) = resp
        .results_by_transaction
        .iter()
        .find(|r| r.transactional_id.0.as_str() == producer.transactional_id)
    else {
        return all(ResponseError::InvalidTxnState);
    };
    partitions
        .iter()
        .map(|(t, p)| {
            result
                .topic_results
                .iter()
                .filter(|r| r.name.0.as_str() == t)
                .flat_map(|r| &r.results_by_partition)
                .find(|r| r.partition_index == *p)
                // A partition the coordinator did not answer for is not verified.
                .map_or(ResponseError::InvalidTxnState.code(), |r| {
                    r.partition_error_code
                })
        })
        .collect()
}

/// What a producer is told when verification failed (Kafka's `ReplicaManager` mapping):
/// fencing stays fencing (as INVALID_PRODUCER_EPOCH, which producers expect here), a partition
/// not in the transaction is INVALID_TXN_STATE, and a coordinator that is busy, moving or
/// unreachable becomes NOT_ENOUGH_REPLICAS, which every client retries without a metadata
/// refresh.
pub(crate) fn for_produce(code: i16) -> (i16, Option<String>) {
    match ResponseError::try_from_code(code) {
        Some(ResponseError::ProducerFenced) => (ResponseError::InvalidProducerEpoch.code(), None),
        Some(ResponseError::InvalidTxnState) => (
            code,
            Some("Partition was not added to the transaction".into()),
        ),
        Some(
            e @ (ResponseError::ConcurrentTransactions
            | ResponseError::NetworkException
            | ResponseError::CoordinatorLoadInProgress
            | ResponseError::CoordinatorNotAvailable
            | ResponseError::NotCoordinator),
        ) => (
            ResponseError::NotEnoughReplicas.code(),
            Some(format!(
                "Unable to verify the partition has been added to the transaction. Underlying error: {e:?}"
            )),
        ),
        _ => (code, None),
    }
}
