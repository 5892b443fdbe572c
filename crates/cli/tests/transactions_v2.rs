//! Transactions V2 (KIP-890 part 2) through a real broker, spoken raw as a Kafka 4 client does
//! once ApiVersions finalizes `transaction.version` 2: no AddPartitionsToTxn or AddOffsetsToTxn
//! (Produce v12 and TxnOffsetCommit v5 add the partitions), and EndTxn v5 bumps the producer
//! epoch at every commit and abort, so a late write of a finished transaction is fenced.

mod common;

use std::time::Duration;

use common::txn::{end_txn_v2, init_producer_id, produce_at, txn_batch, txn_offset_commit};
use common::{
    client_config, create_topic, fetch_batches, list_offset, list_offset_isolated, RawConn,
    StromProcess,
};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use strom_client::{Connection, ConnectionConfig};

const ID: &str = "tv2";
const TOPIC: &str = "v2";

fn committed(addr: &str, group: &str, topic: &str) -> Option<i64> {
    let c: BaseConsumer = client_config(addr)
        .set("group.id", group)
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, 0);
    let got = c.committed_offsets(tpl, Duration::from_secs(5)).ok()?;
    match got.find_partition(topic, 0)?.offset() {
        Offset::Offset(o) => Some(o),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn v2_producers_add_partitions_implicitly_and_every_end_bumps_the_epoch() {
    let b = StromProcess::start();
    create_topic(b.addr(), TOPIC, 2).await;
    create_topic(b.addr(), "src", 1).await;
    let mut raw = RawConn::connect(b.addr());

    // What makes a Kafka 4 client switch to V2.
    let versions: ApiVersionsResponse =
        raw.request(ApiKey::ApiVersions, 3, 1, &ApiVersionsRequest::default());
    let feature = versions
        .finalized_features
        .iter()
        .find(|f| f.name == StrBytes::from_static_str("transaction.version"))
        .expect("transaction.version finalized");
    assert_eq!(feature.max_version_level, 2);
    assert!(versions.finalized_features_epoch >= 0);
    let max = |k: ApiKey| {
        versions
            .api_keys
            .iter()
            .find(|a| a.api_key == k as i16)
            .map(|a| a.max_version)
    };
    assert_eq!(max(ApiKey::EndTxn), Some(5));
    assert!(max(ApiKey::Produce) >= Some(12));

    let conn = Connection::connect(b.addr(), &ConnectionConfig::default())
        .await
        .expect("connect");
    let first = init_producer_id(&conn, ID).await;
    let (pid, e0) = first;
    // First transaction: two partitions and a group's offset, none of them added explicitly.
    for part in 0..2 {
        let batch = txn_batch(pid, e0, 0, "c", 2);
        assert_eq!(produce_at(&conn, 12, ID, TOPIC, part, batch).await, 0);
    }
    let offset = ("src", 0, 5);
    assert_eq!(
        txn_offset_commit(&conn, 5, ID, "g2", first, offset).await,
        0
    );
    assert_eq!(list_offset_isolated(&mut raw, TOPIC, 0, -1, 1), (0, 0));
    let (code, second) = end_txn_v2(&conn, ID, first, true).await;
    assert_eq!(code, 0);
    assert_eq!(second, (pid, e0 + 1), "commit bumps the epoch");
    // Committed: two records and the marker in each partition, and the group's offset.
    assert_eq!(list_offset_isolated(&mut raw, TOPIC, 0, -1, 1), (0, 3));
    assert_eq!(list_offset_isolated(&mut raw, TOPIC, 1, -1, 1), (0, 3));
    assert_eq!(committed(b.addr(), "g2", "src"), Some(5));
    // The COMMIT marker carries the bumped epoch: the partition itself fences the old one.
    let batches = fetch_batches(&mut raw, TOPIC, 0, 0);
    let marker = batches.iter().find(|b| b.control).expect("a marker");
    assert_eq!((marker.producer_id, marker.producer_epoch), (pid, e0 + 1));

    // A late write of the finished transaction (its old epoch) is fenced, nothing written.
    let late = txn_batch(pid, e0, 2, "late", 1);
    assert_eq!(
        produce_at(&conn, 12, ID, TOPIC, 0, late).await,
        ResponseError::InvalidProducerEpoch.code()
    );
    assert_eq!(list_offset(&mut raw, TOPIC, 0, -1), (0, 3));

    // Second transaction with the new epoch (sequences restart at 0), aborted.
    let batch = txn_batch(pid, second.1, 0, "a", 2);
    assert_eq!(produce_at(&conn, 12, ID, TOPIC, 0, batch).await, 0);
    let (code, third) = end_txn_v2(&conn, ID, second, false).await;
    assert_eq!((code, third), (0, (pid, e0 + 2)), "abort bumps the epoch");
    assert_eq!(list_offset(&mut raw, TOPIC, 0, -1), (0, 6));
    assert_eq!(list_offset_isolated(&mut raw, TOPIC, 0, -1, 1), (0, 6));
    // The abort answer was lost; the client retries with the epoch it had: same answer.
    assert_eq!(end_txn_v2(&conn, ID, second, false).await, (0, third));
    // An EndTxn from a producer two epochs behind is fenced.
    assert_eq!(
        end_txn_v2(&conn, ID, first, false).await.0,
        ResponseError::ProducerFenced.code()
    );
    b.assert_no_panic();
}
