//! The marker writer on a real broker: a partition the image says another broker leads gets a
//! WriteTxnMarkers request at that broker's endpoint (here: this same broker registered under a
//! second id, which refuses with NOT_LEADER_OR_FOLLOWER) and is named for a retry; once
//! leadership comes back the next round appends it here, stamped with the new leader epoch; a
//! partition whose topic is gone is skipped. (Retrying with backoff is the coordinator's:
//! `strom_coordinator::txn`.)
//!
//! Test-only: declared under #[cfg(test)] by its parent module.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use strom_coordinator::txn::TxnMarker;
use strom_log::{now_ms, validate_batches, BatchView, TopicPartition};
use uuid::Uuid;

use super::MarkerWriter;
use crate::metadata::MetadataRecord;
use crate::test_broker::start;
use crate::topic_admin::NewTopic;

fn txn_batch(pid: i64, epoch: i16) -> Bytes {
    let record = Record {
        transactional: true,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: pid,
        producer_epoch: epoch,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: 0,
        timestamp: now_ms(),
        key: None,
        value: Some(Bytes::from_static(b"v")),
        headers: Default::default(),
    };
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        [&record],
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    buf.freeze()
}

fn leader_record(topic_id: Uuid, replicas: Vec<i32>, leader: i32, epoch: i32) -> MetadataRecord {
    MetadataRecord::Partition {
        topic_id,
        partition: 0,
        // The leader alone is in sync: broker 77 never fetches.
        isr: vec![leader],
        replicas,
        leader,
        leader_epoch: epoch,
        partition_epoch: epoch,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markers_follow_the_partition_leader() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[]).await;
    let broker = server.broker().clone();
    let me = broker.config.node_id;
    let topic = NewTopic {
        name: "x".into(),
        partitions: 1,
        replication_factor: 1,
        configs: Default::default(),
    };
    let created = broker.topic_admin.create_topics(vec![topic], false).await;
    let topic_id = created[0].as_ref().map(|t| t.id).unwrap();
    let log = broker.replicas.log(&TopicPartition::new("x", 0)).unwrap();
    let validated = validate_batches(txn_batch(9, 0), &log.config(), now_ms()).unwrap();
    let info = log.append(&validated, 0).unwrap();
    log.wait_durable(info.last_offset + 1).await.unwrap();
    assert_eq!(log.last_stable_offset(), 0);

    // Broker 77 (this very listener) leads x-0 now.
    let (host, port) = broker.advertised.clone();
    let other = 77;
    let (_, image) = broker
        .metadata
        .propose(|_| {
            let records = vec![
                MetadataRecord::RegisterBroker {
                    broker_id: other,
                    incarnation: Uuid::new_v4(),
                    host: host.clone(),
                    port,
                    rack: None,
                    controller_addr: String::new(),
                    voter: false,
                    endpoints: Vec::new(),
                },
                MetadataRecord::UnfenceBroker { broker_id: other },
                leader_record(topic_id, vec![me, other], other, 1),
            ];
            (records, ())
        })
        .await
        .unwrap();
    broker.apply_image(&image);
    let writer = MarkerWriter::new(broker.leaders.clone());
    let marker = TxnMarker {
        transactional_id: "t".into(),
        producer_id: 9,
        producer_epoch: 0,
        coordinator_epoch: 0,
        commit: true,
        partitions: vec![("x".into(), 0), ("gone".into(), 0)],
    };
    let retry = writer.write_round(&marker).await.unwrap();
    assert_eq!(
        retry,
        vec![("x".to_string(), 0)],
        "refused by the leader it was sent to: retry it; the gone topic is skipped"
    );
    assert_eq!(log.last_stable_offset(), 0);

    // Leadership comes back here at epoch 2: the next round appends locally.
    let (_, image) = broker
        .metadata
        .propose(|_| (vec![leader_record(topic_id, vec![me, other], me, 2)], ()))
        .await
        .unwrap();
    broker.apply_image(&image);
    let retry = tokio::time::timeout(Duration::from_secs(10), writer.write_round(&marker))
        .await
        .expect("markers written once the leader is back")
        .unwrap();
    assert!(retry.is_empty(), "{retry:?}");
    assert_eq!(log.last_stable_offset(), log.log_end_offset());
    let read = log
        .read(1, 1 << 20, strom_log::ReadBound::LogEnd, true)
        .unwrap();
    let bytes = read.records.unwrap().read_to_vec().unwrap();
    let marker_batch = BatchView::parse(&bytes).unwrap();
    assert!(marker_batch.is_control());
    assert_eq!(marker_batch.partition_leader_epoch(), 2);
    server.shutdown().await;
}
