//! Transactions spoken raw (no client library would send the requests these tests need):
//! transactional record batches and the transaction APIs over a `strom_client::Connection`.

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, EndTxnRequest, InitProducerIdRequest, ProduceRequest, ProducerId,
    TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use strom_client::Connection;

/// One transactional batch of producer `pid`/`epoch`, sequences from `seq`, values `name-i`.
pub(crate) fn txn_batch(pid: i64, epoch: i16, seq: i32, name: &str, n: i32) -> bytes::Bytes {
    let values = (0..n).map(|i| format!("{name}-{i:04}")).collect();
    producer_batch(pid, epoch, seq, true, values)
}

/// One batch of an idempotent producer (transactional or not), one record per value, sequences
/// from `seq`.
pub(crate) fn producer_batch(
    pid: i64,
    epoch: i16,
    seq: i32,
    transactional: bool,
    values: Vec<String>,
) -> bytes::Bytes {
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let records: Vec<Record> = values
        .into_iter()
        .zip(0..)
        .map(|(v, i)| Record {
            transactional,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: pid,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: i64::from(i),
            sequence: seq + i,
            timestamp: now,
            key: None,
            value: Some(bytes::Bytes::from(v)),
            headers: Default::default(),
        })
        .collect();
    let mut buf = bytes::BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("encoding record batch");
    buf.freeze()
}

fn txn_id(id: &str) -> TransactionalId {
    TransactionalId(StrBytes::from_string(id.to_string()))
}

fn topic_name(t: &str) -> TopicName {
    TopicName(StrBytes::from_string(t.to_string()))
}

/// InitProducerId (v4) for transactional id `id`: (producer id, epoch).
pub(crate) async fn init_producer_id(conn: &Connection, id: &str) -> (i64, i16) {
    let r = conn
        .send(
            4,
            &InitProducerIdRequest::default()
                .with_transactional_id(Some(txn_id(id)))
                .with_transaction_timeout_ms(60_000),
        )
        .await
        .expect("InitProducerId");
    assert_eq!(r.error_code, 0, "InitProducerId");
    (r.producer_id.0, r.producer_epoch)
}

/// AddPartitionsToTxn (v3, a client's): the error code of `topic`-`partition`.
pub(crate) async fn add_partition(
    conn: &Connection,
    id: &str,
    (pid, epoch): (i64, i16),
    topic: &str,
    partition: i32,
) -> i16 {
    let r = conn
        .send(
            3,
            &AddPartitionsToTxnRequest::default()
                .with_v3_and_below_transactional_id(txn_id(id))
                .with_v3_and_below_producer_id(ProducerId(pid))
                .with_v3_and_below_producer_epoch(epoch)
                .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
                    .with_name(topic_name(topic))
                    .with_partitions(vec![partition])]),
        )
        .await
        .expect("AddPartitionsToTxn");
    r.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code
}

/// Produce (v9, acks=all) of one transactional batch as transactional id `id`: the error code.
pub(crate) async fn produce(
    conn: &Connection,
    id: &str,
    topic: &str,
    partition: i32,
    batch: bytes::Bytes,
) -> i16 {
    produce_at(conn, 9, id, topic, partition, batch).await
}

/// [`produce`] at `version` (v12: Transactions V2).
pub(crate) async fn produce_at(
    conn: &Connection,
    version: i16,
    id: &str,
    topic: &str,
    partition: i32,
    batch: bytes::Bytes,
) -> i16 {
    let req = ProduceRequest::default()
        .with_transactional_id(Some(txn_id(id)))
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(batch))])]);
    let r = conn.send(version, &req).await.expect("Produce");
    r.responses[0].partition_responses[0].error_code
}

/// EndTxn (v3): the error code.
pub(crate) async fn end_txn(
    conn: &Connection,
    id: &str,
    producer: (i64, i16),
    commit: bool,
) -> i16 {
    end_txn_at(conn, 3, id, producer, commit).await.0
}

/// EndTxn v5 (Transactions V2): the error code and the producer id and epoch to continue with.
pub(crate) async fn end_txn_v2(
    conn: &Connection,
    id: &str,
    producer: (i64, i16),
    commit: bool,
) -> (i16, (i64, i16)) {
    end_txn_at(conn, 5, id, producer, commit).await
}

async fn end_txn_at(
    conn: &Connection,
    version: i16,
    id: &str,
    (pid, epoch): (i64, i16),
    commit: bool,
) -> (i16, (i64, i16)) {
    let r = conn
        .send(
            version,
            &EndTxnRequest::default()
                .with_transactional_id(txn_id(id))
                .with_producer_id(ProducerId(pid))
                .with_producer_epoch(epoch)
                .with_committed(commit),
        )
        .await
        .expect("EndTxn");
    (r.error_code, (r.producer_id.0, r.producer_epoch))
}

/// TxnOffsetCommit at `version` of one offset for `group`: the error code.
pub(crate) async fn txn_offset_commit(
    conn: &Connection,
    version: i16,
    id: &str,
    group: &str,
    (pid, epoch): (i64, i16),
    (topic, partition, offset): (&str, i32, i64),
) -> i16 {
    use kafka_protocol::messages::txn_offset_commit_request::{
        TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::{GroupId, TxnOffsetCommitRequest};
    let r = conn
        .send(
            version,
            &TxnOffsetCommitRequest::default()
                .with_transactional_id(txn_id(id))
                .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
                .with_producer_id(ProducerId(pid))
                .with_producer_epoch(epoch)
                .with_generation_id(-1)
                .with_topics(vec![TxnOffsetCommitRequestTopic::default()
                    .with_name(topic_name(topic))
                    .with_partitions(vec![TxnOffsetCommitRequestPartition::default()
                        .with_partition_index(partition)
                        .with_committed_offset(offset)])]),
        )
        .await
        .expect("TxnOffsetCommit");
    r.topics[0].partitions[0].error_code
}
