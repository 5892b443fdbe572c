//! KIP-890 part 1 through a real broker: a transactional write into a partition that is not in
//! the producer's open transaction is refused (INVALID_TXN_STATE) instead of opening a
//! transaction nobody will end, so a late batch after an abort cannot hang the partition's last
//! stable offset. The requests are sent raw: no client library sends them out of order.

mod common;

use common::txn::{add_partition, end_txn, init_producer_id, produce, txn_batch};
use common::{create_topic, list_offset, list_offset_isolated, RawConn, StromProcess};
use kafka_protocol::error::ResponseError;
use strom_client::{Connection, ConnectionConfig};

const ID: &str = "late-tx";
const TOPIC: &str = "hang";

#[tokio::test(flavor = "multi_thread")]
async fn a_late_batch_after_an_abort_cannot_hang_the_partition() {
    let b = StromProcess::start();
    create_topic(b.addr(), TOPIC, 1).await;
    let conn = Connection::connect(b.addr(), &ConnectionConfig::default())
        .await
        .expect("connect");
    let producer = init_producer_id(&conn, ID).await;
    let (pid, epoch) = producer;
    let invalid = ResponseError::InvalidTxnState.code();

    // Not added to the transaction: refused, nothing written.
    let code = produce(&conn, ID, TOPIC, 0, txn_batch(pid, epoch, 0, "early", 1)).await;
    assert_eq!(code, invalid, "a write before AddPartitionsToTxn");
    let mut raw = RawConn::connect(b.addr());
    assert_eq!(list_offset(&mut raw, TOPIC, 0, -1), (0, 0));

    // Added: the write goes in, and the abort closes the transaction here.
    assert_eq!(add_partition(&conn, ID, producer, TOPIC, 0).await, 0);
    let code = produce(&conn, ID, TOPIC, 0, txn_batch(pid, epoch, 0, "in", 1)).await;
    assert_eq!(code, 0);
    assert_eq!(end_txn(&conn, ID, producer, false).await, 0);
    // Batch at 0, ABORT marker at 1.
    assert_eq!(list_offset(&mut raw, TOPIC, 0, -1), (0, 2));

    // The same producer's next batch arrives late (a retry stuck in the network): the
    // coordinator knows no open transaction with this partition, so it is refused.
    let code = produce(&conn, ID, TOPIC, 0, txn_batch(pid, epoch, 1, "late", 1)).await;
    assert_eq!(code, invalid, "a late write after the abort");
    assert_eq!(list_offset(&mut raw, TOPIC, 0, -1), (0, 2));
    // The last stable offset is the log end: read_committed consumers are not stuck.
    assert_eq!(list_offset_isolated(&mut raw, TOPIC, 0, -1, 1), (0, 2));

    // The next transaction works as usual, and its later batches need no new verification.
    assert_eq!(add_partition(&conn, ID, producer, TOPIC, 0).await, 0);
    for seq in 1..4 {
        let code = produce(&conn, ID, TOPIC, 0, txn_batch(pid, epoch, seq, "next", 1)).await;
        assert_eq!(code, 0, "batch {seq} of the next transaction");
    }
    assert_eq!(list_offset_isolated(&mut raw, TOPIC, 0, -1, 1), (0, 2));
    assert_eq!(end_txn(&conn, ID, producer, true).await, 0);
    assert_eq!(list_offset_isolated(&mut raw, TOPIC, 0, -1, 1), (0, 6));
    b.assert_no_panic();
}

/// With `transaction.partition.verification.enable=false` the broker trusts the producer, as
/// Kafka before 3.6: the same late batch is written and the partition hangs (which is what the
/// test above proves cannot happen with verification on).
#[tokio::test(flavor = "multi_thread")]
async fn without_verification_the_late_batch_hangs_the_partition() {
    let b = StromProcess::start_with_args(&[
        "--set",
        "transaction.partition.verification.enable=false",
    ]);
    create_topic(b.addr(), TOPIC, 1).await;
    let conn = Connection::connect(b.addr(), &ConnectionConfig::default())
        .await
        .expect("connect");
    let producer = init_producer_id(&conn, ID).await;
    let (pid, epoch) = producer;
    assert_eq!(add_partition(&conn, ID, producer, TOPIC, 0).await, 0);
    let code = produce(&conn, ID, TOPIC, 0, txn_batch(pid, epoch, 0, "in", 1)).await;
    assert_eq!(code, 0);
    assert_eq!(end_txn(&conn, ID, producer, false).await, 0);
    let code = produce(&conn, ID, TOPIC, 0, txn_batch(pid, epoch, 1, "late", 1)).await;
    assert_eq!(code, 0);
    let mut raw = RawConn::connect(b.addr());
    assert_eq!(list_offset(&mut raw, TOPIC, 0, -1), (0, 3));
    assert_eq!(list_offset_isolated(&mut raw, TOPIC, 0, -1, 1), (0, 2));
    b.assert_no_panic();
}
