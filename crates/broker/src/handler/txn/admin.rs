//! ListTransactions (v0–v1), DescribeTransactions (v0) and DescribeProducers (v0): what
//! `kafka-transactions.sh` and `strom transactions` show.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::describe_transactions_response::{
    TopicData, TransactionState as DescribedState,
};
use kafka_protocol::messages::list_transactions_response::TransactionState as ListedState;
use kafka_protocol::messages::{
    DescribeProducersRequest, DescribeProducersResponse, DescribeTransactionsRequest,
    DescribeTransactionsResponse, ListTransactionsRequest, ListTransactionsResponse, ProducerId,
    TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use strom_coordinator::txn::TxnState;
use strom_log::TopicPartition;

use strom_authorizer::{AclOperation, ResourceType};

use super::super::RequestContext;
use super::code;

const STATES: &[TxnState] = &[
    TxnState::Empty,
    TxnState::Ongoing,
    TxnState::PrepareCommit,
    TxnState::PrepareAbort,
    TxnState::CompleteCommit,
    TxnState::CompleteAbort,
    TxnState::Dead,
    TxnState::PrepareEpochFence,
];

pub(crate) async fn list(
    ctx: RequestContext,
    req: ListTransactionsRequest,
) -> ListTransactionsResponse {
    let states: Vec<String> = req.state_filters.iter().map(|s| s.to_string()).collect();
    let unknown: Vec<StrBytes> = req
        .state_filters
        .iter()
        .filter(|s| !STATES.iter().any(|k| k.name() == s.as_str()))
        .cloned()
        .collect();
    let pids: Vec<i64> = req.producer_id_filters.iter().map(|p| p.0).collect();
    let now = strom_log::now_ms();
    let mut listed = ctx
        .broker
        .coordinators
        .txn
        .list_transactions(&states, &pids)
        .await;
    // Kafka: only the ids the principal may DESCRIBE.
    listed.retain(|t| {
        ctx.authorized(
            AclOperation::Describe,
            ResourceType::TransactionalId,
            &t.transactional_id,
        )
    });
    // duration_filter (v1+): only transactions open longer than this.
    if ctx.api_version >= 1 && req.duration_filter >= 0 {
        let mut kept = Vec::new();
        for t in listed {
            if let Ok(m) = ctx
                .broker
                .coordinators
                .txn
                .describe_transaction(&t.transactional_id)
                .await
            {
                if m.start_ms >= 0 && now - m.start_ms >= req.duration_filter {
                    kept.push(t);
                }
            }
        }
        listed = kept;
    }
    // Kafka: the ids of partitions still loading are missing, and the answer says so.
    let error_code = if ctx.broker.coordinators.txn.load_in_progress() {
        ResponseError::CoordinatorLoadInProgress.code()
    } else {
        0
    };
    ListTransactionsResponse::default()
        .with_error_code(error_code)
        .with_unknown_state_filters(unknown)
        .with_transaction_states(
            listed
                .into_iter()
                .map(|t| {
                    ListedState::default()
                        .with_transactional_id(TransactionalId(StrBytes::from_string(
                            t.transactional_id,
                        )))
                        .with_producer_id(ProducerId(t.producer_id))
                        .with_transaction_state(StrBytes::from_static_str(t.state.name()))
                })
                .collect(),
        )
}

pub(crate) async fn describe(
    ctx: RequestContext,
    req: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let mut out = Vec::with_capacity(req.transactional_ids.len());
    for id in req.transactional_ids {
        let base = DescribedState::default()
            .with_transactional_id(id.clone())
            .with_transaction_state(StrBytes::from_static_str(""))
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
            .with_transaction_start_time_ms(-1);
        // Kafka: DESCRIBE on the id; the partitions of topics the principal may not DESCRIBE
        // are left out.
        if !ctx.authorized(AclOperation::Describe, ResourceType::TransactionalId, &id.0) {
            out.push(
                base.with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code()),
            );
            continue;
        }
        match ctx
            .broker
            .coordinators
            .txn
            .describe_transaction(id.0.as_str())
            .await
        {
            Ok(m) => {
                let mut topics: BTreeMap<String, Vec<i32>> = BTreeMap::new();
                for (t, p) in &m.partitions {
                    if !ctx.authorized_topic(AclOperation::Describe, t) {
                        continue;
                    }
                    topics.entry(t.clone()).or_default().push(*p);
                }
                out.push(
                    base.with_transaction_state(StrBytes::from_static_str(m.state.name()))
                        .with_transaction_timeout_ms(m.timeout_ms)
                        .with_transaction_start_time_ms(m.start_ms)
                        .with_producer_id(ProducerId(m.producer_id))
                        .with_producer_epoch(m.producer_epoch)
                        .with_topics(
                            topics
                                .into_iter()
                                .map(|(t, ps)| {
                                    TopicData::default()
                                        .with_topic(TopicName(StrBytes::from_string(t)))
                                        .with_partitions(ps)
                                })
                                .collect(),
                        ),
                )
            }
            Err(e) => out.push(base.with_error_code(code(&e, true))),
        }
    }
    DescribeTransactionsResponse::default().with_transaction_states(out)
}

pub(crate) fn describe_producers(
    ctx: &RequestContext,
    req: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let image = ctx.broker.metadata.image();
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let name = t.name.0.to_string();
            // Kafka: READ on the topic.
            let allowed = ctx.authorized_topic(AclOperation::Read, &name);
            let partitions = t
                .partition_indexes
                .iter()
                .map(|p| {
                    let resp = PartitionResponse::default().with_partition_index(*p);
                    if !allowed {
                        return resp
                            .with_error_code(ResponseError::TopicAuthorizationFailed.code());
                    }
                    if !image
                        .topic(&name)
                        .is_some_and(|x| x.partitions.contains_key(p))
                    {
                        return resp.with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    }
                    let Some(log) = ctx
                        .broker
                        .replicas
                        .log(&TopicPartition::new(name.clone(), *p))
                    else {
                        return resp.with_error_code(ResponseError::NotLeaderOrFollower.code());
                    };
                    let state = log.producer_states();
                    let ongoing = state.ongoing_txns();
                    let producers = state
                        .entries()
                        .iter()
                        .map(|(pid, e)| {
                            ProducerState::default()
                                .with_producer_id(ProducerId(*pid))
                                .with_producer_epoch(i32::from(e.epoch))
                                .with_last_sequence(e.last_seq().unwrap_or(-1))
                                .with_last_timestamp(e.last_timestamp)
                                .with_coordinator_epoch(-1)
                                .with_current_txn_start_offset(
                                    ongoing.get(pid).copied().unwrap_or(-1),
                                )
                        })
                        .collect();
                    resp.with_active_producers(producers)
                })
                .collect();
            TopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    DescribeProducersResponse::default().with_topics(topics)
}
