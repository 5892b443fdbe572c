//! Transaction admin requests on [`Client`]: ListTransactions (every broker lists the
//! transactional ids it coordinates), DescribeTransactions (at the transaction coordinator, found
//! with FindCoordinator key type 1) and DescribeProducers (at the partition leader).

use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::{
    ApiKey, DescribeProducersRequest, DescribeTransactionsRequest, FindCoordinatorRequest,
    ListTransactionsRequest, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;

use crate::client::Client;
use crate::connection::Connection;
use crate::error::ClientError;
use crate::group_admin::needs_new_coordinator;
use crate::metadata::topic_name;
use crate::metadata::TopicPartition;

/// FindCoordinator key type for transactional ids.
const KEY_TYPE_TRANSACTION: i8 = 1;

/// One transaction of ListTransactions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionListing {
    /// transactional.id.
    pub transactional_id: String,
    /// The producer id currently bound to it.
    pub producer_id: i64,
    /// Kafka's state name ("Ongoing", "CompleteCommit", …).
    pub state: String,
}

/// DescribeTransactions for one transactional id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionDescription {
    /// transactional.id.
    pub transactional_id: String,
    /// Kafka's state name ("Ongoing", "CompleteCommit", …).
    pub state: String,
    /// Producer id.
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
    /// transaction.timeout.ms.
    pub timeout_ms: i32,
    /// When the current transaction started (ms since the epoch), -1 when none is open.
    pub start_time_ms: i64,
    /// The partitions in the transaction, sorted.
    pub partitions: Vec<TopicPartition>,
}

/// One active producer of DescribeProducers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerDescription {
    /// Producer id.
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i32,
    /// Last sequence number written, -1 if none.
    pub last_sequence: i32,
    /// Timestamp of the last batch written.
    pub last_timestamp: i64,
    /// Offset of the first record of its open transaction, -1 if none.
    pub current_txn_start_offset: i64,
}

fn check(context: impl FnOnce() -> String, code: i16) -> Result<(), ClientError> {
    if code == 0 {
        Ok(())
    } else {
        Err(ClientError::broker(context(), code, None))
    }
}

impl Client {
    /// ListTransactions on every broker, sorted by transactional id. `states` filters by state
    /// name (empty: all).
    pub async fn list_transactions(
        &self,
        states: &[String],
    ) -> Result<Vec<TransactionListing>, ClientError> {
        let meta = self.refresh_metadata(Some(&[]), false).await?;
        let mut out = Vec::new();
        for id in meta.brokers.keys() {
            let conn = self.connection(*id).await?;
            let version = conn.version(ApiKey::ListTransactions)?;
            let req = ListTransactionsRequest::default()
                .with_state_filters(states.iter().cloned().map(StrBytes::from_string).collect())
                .with_duration_filter(-1);
            let resp = conn.send(version, &req).await?;
            check(|| "list transactions".to_owned(), resp.error_code)?;
            out.extend(
                resp.transaction_states
                    .into_iter()
                    .map(|t| TransactionListing {
                        transactional_id: t.transactional_id.0.to_string(),
                        producer_id: t.producer_id.0,
                        state: t.transaction_state.to_string(),
                    }),
            );
        }
        out.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        Ok(out)
    }

    /// DescribeTransactions for one transactional id at its coordinator.
    pub async fn describe_transaction(
        &self,
        transactional_id: &str,
    ) -> Result<TransactionDescription, ClientError> {
        let mut attempt = 0;
        loop {
            let result = match self.txn_coordinator_once(transactional_id).await {
                Ok(conn) => describe_on(&conn, transactional_id).await,
                Err(e) => Err(e),
            };
            match result {
                Err(e)
                    if (needs_new_coordinator(&e) || e.is_retriable())
                        && attempt < self.config().retries =>
                {
                    attempt += 1;
                    self.backoff(attempt).await;
                }
                other => return other,
            }
        }
    }

    /// DescribeProducers for one partition at its leader: the producers with state there.
    pub async fn describe_producers(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Vec<ProducerDescription>, ClientError> {
        let (_, conn) = self.leader_connection(topic, partition).await?;
        let version = conn.version(ApiKey::DescribeProducers)?;
        let req = DescribeProducersRequest::default().with_topics(vec![TopicRequest::default()
            .with_name(topic_name(topic))
            .with_partition_indexes(vec![partition])]);
        let resp = conn.send(version, &req).await?;
        let context = || format!("describe producers of {topic}-{partition}");
        let p = resp
            .topics
            .into_iter()
            .flat_map(|t| t.partitions)
            .find(|p| p.partition_index == partition)
            .ok_or_else(|| ClientError::broker(context(), -1, Some("no partition in response")))?;
        check(context, p.error_code)?;
        let mut out: Vec<ProducerDescription> = p
            .active_producers
            .into_iter()
            .map(|s| ProducerDescription {
                producer_id: s.producer_id.0,
                producer_epoch: s.producer_epoch,
                last_sequence: s.last_sequence,
                last_timestamp: s.last_timestamp,
                current_txn_start_offset: s.current_txn_start_offset,
            })
            .collect();
        out.sort_by_key(|p| p.producer_id);
        Ok(out)
    }

    async fn txn_coordinator_once(
        &self,
        transactional_id: &str,
    ) -> Result<Connection, ClientError> {
        let conn = self.any_connection().await?;
        let version = conn.version(ApiKey::FindCoordinator)?;
        let key = StrBytes::from_string(transactional_id.to_owned());
        let req = FindCoordinatorRequest::default().with_key_type(KEY_TYPE_TRANSACTION);
        let req = if version >= 4 {
            req.with_coordinator_keys(vec![key])
        } else {
            req.with_key(key)
        };
        let resp = conn.send(version, &req).await?;
        let context = || format!("find coordinator for transactional id {transactional_id}");
        let node = if version >= 4 {
            let c = resp.coordinators.first().ok_or_else(|| {
                ClientError::broker(context(), -1, Some("no coordinator in response"))
            })?;
            check(context, c.error_code)?;
            c.node_id.0
        } else {
            check(context, resp.error_code)?;
            resp.node_id.0
        };
        if !self.metadata().brokers.contains_key(&node) {
            self.refresh_metadata(Some(&[]), false).await?;
        }
        self.connection(node).await
    }
}

async fn describe_on(
    conn: &Connection,
    transactional_id: &str,
) -> Result<TransactionDescription, ClientError> {
    let version = conn.version(ApiKey::DescribeTransactions)?;
    let req = DescribeTransactionsRequest::default().with_transactional_ids(vec![TransactionalId(
        StrBytes::from_string(transactional_id.to_owned()),
    )]);
    let resp = conn.send(version, &req).await?;
    let context = || format!("describe transaction {transactional_id}");
    let t =
        resp.transaction_states.into_iter().next().ok_or_else(|| {
            ClientError::broker(context(), -1, Some("no transaction in response"))
        })?;
    check(context, t.error_code)?;
    let mut partitions: Vec<TopicPartition> = t
        .topics
        .into_iter()
        .flat_map(|td| {
            let topic = td.topic.0.to_string();
            td.partitions
                .into_iter()
                .map(move |p| TopicPartition::new(topic.clone(), p))
        })
        .collect();
    partitions.sort();
    Ok(TransactionDescription {
        transactional_id: t.transactional_id.0.to_string(),
        state: t.transaction_state.to_string(),
        producer_id: t.producer_id.0,
        producer_epoch: t.producer_epoch,
        timeout_ms: t.transaction_timeout_ms,
        start_time_ms: t.transaction_start_time_ms,
        partitions,
    })
}
