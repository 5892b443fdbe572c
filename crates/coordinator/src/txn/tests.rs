//! Transaction coordinator tests over the in-memory writer and a recording marker writer.
//!
//! Test-only: declared under #[cfg(test)] by its parent module.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::*;
use crate::{GroupCoordinatorConfig, InMemoryWriter, WriteError};

#[derive(Debug, Default)]
struct Markers {
    written: Mutex<Vec<TxnMarker>>,
}

impl TxnMarkerWriter for Markers {
    fn write_markers(&self, marker: TxnMarker) -> SeamFuture<'_, Result<(), WriteError>> {
        self.written.lock().push(marker);
        Box::pin(async { Ok(()) })
    }
}

#[derive(Debug, Default)]
struct Ids(AtomicI64);

impl ProducerIdSource for Ids {
    fn next_producer_id(&self) -> SeamFuture<'_, Result<i64, TxnError>> {
        let id = self.0.fetch_add(1, Ordering::SeqCst) + 1000;
        Box::pin(async move { Ok(id) })
    }
}

fn coordinator(
    writer: Arc<InMemoryWriter>,
    markers: Arc<Markers>,
    config: TransactionCoordinatorConfig,
) -> TransactionCoordinator {
    let groups = GroupCoordinator::new(
        GroupCoordinatorConfig {
            offsets_topic_partitions: 3,
            ..Default::default()
        },
        InMemoryWriter::new(),
    );
    for p in 0..3 {
        groups.load_partition(p).expect("load group partition");
    }
    let c = TransactionCoordinator::new(config, writer, markers, Arc::new(Ids::default()), groups);
    c.load().expect("load");
    c
}

fn tp(t: &str, p: i32) -> (String, i32) {
    (t.to_string(), p)
}

#[tokio::test]
async fn commit_writes_prepare_markers_then_complete() {
    let writer = InMemoryWriter::new();
    let markers = Arc::new(Markers::default());
    let c = coordinator(writer.clone(), markers.clone(), Default::default());
    let (pid, epoch) = c.init_producer_id("t", 60_000, None).await.expect("init");
    assert_eq!(epoch, 0);
    c.add_partitions("t", pid, epoch, &[tp("a", 0), tp("b", 1)], false)
        .await
        .expect("add");
    c.add_partitions("t", pid, epoch, &[tp("a", 0)], true)
        .await
        .expect("verify");
    assert!(c
        .add_partitions("t", pid, epoch, &[tp("c", 0)], true)
        .await
        .is_err());
    c.end_txn("t", pid, epoch, true).await.expect("commit");
    let m = markers.written.lock().clone();
    assert_eq!(m.len(), 1);
    assert!(m[0].commit);
    assert_eq!(m[0].partitions, vec![tp("a", 0), tp("b", 1)]);
    let d = c.describe_transaction("t").await.expect("describe");
    assert_eq!(d.state, TxnState::CompleteCommit);
    // Retry is fine, the opposite is not.
    c.end_txn("t", pid, epoch, true).await.expect("retry");
    assert!(matches!(
        c.end_txn("t", pid, epoch, false).await,
        Err(TxnError::InvalidTxnState(_))
    ));
    let states: Vec<TxnState> = writer
        .records(c.partition_for("t"))
        .iter()
        .filter_map(|r| record::decode(r).ok()?.1.map(|m| m.state))
        .collect();
    assert_eq!(
        states,
        vec![
            TxnState::Empty,
            TxnState::Ongoing,
            TxnState::PrepareCommit,
            TxnState::CompleteCommit
        ]
    );
}

#[tokio::test]
async fn a_second_producer_fences_the_first_and_aborts_its_transaction() {
    let markers = Arc::new(Markers::default());
    let c = coordinator(InMemoryWriter::new(), markers.clone(), Default::default());
    let (pid, e0) = c.init_producer_id("t", 60_000, None).await.expect("init");
    c.add_partitions("t", pid, e0, &[tp("a", 0)], false)
        .await
        .expect("add");
    let (pid2, e1) = c.init_producer_id("t", 60_000, None).await.expect("init 2");
    assert_eq!(pid2, pid);
    assert!(e1 > e0 + 1, "abort bumped once, init once more: {e1}");
    let m = markers.written.lock().clone();
    assert_eq!(m.len(), 1);
    assert!(!m[0].commit);
    assert!(m[0].producer_epoch > e0);
    assert!(matches!(
        c.end_txn("t", pid, e0, true).await,
        Err(TxnError::ProducerFenced)
    ));
    assert!(matches!(
        c.add_partitions("t", pid, e0, &[tp("a", 0)], false).await,
        Err(TxnError::ProducerFenced)
    ));
    assert!(matches!(
        c.init_producer_id("t", 60_000, Some((pid, e0))).await,
        Err(TxnError::ProducerFenced)
    ));
}

#[tokio::test]
async fn a_restart_completes_a_prepared_commit_and_keeps_ids() {
    let writer = InMemoryWriter::new();
    let markers = Arc::new(Markers::default());
    let c = coordinator(writer.clone(), markers.clone(), Default::default());
    let (pid, epoch) = c.init_producer_id("t", 60_000, None).await.expect("init");
    c.add_partitions("t", pid, epoch, &[tp("a", 0)], false)
        .await
        .expect("add");
    // Simulate a crash right after PrepareCommit was made durable.
    let mut m = c.describe_transaction("t").await.expect("describe");
    m.state = TxnState::PrepareCommit;
    c.persist(&m).await.expect("persist");
    drop(c);
    let markers2 = Arc::new(Markers::default());
    let c2 = coordinator(writer.clone(), markers2.clone(), Default::default());
    for _ in 0..100 {
        if c2.describe_transaction("t").await.expect("d").state == TxnState::CompleteCommit {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        c2.describe_transaction("t").await.expect("d").state,
        TxnState::CompleteCommit
    );
    assert_eq!(markers2.written.lock()[0].partitions, vec![tp("a", 0)]);
    let (pid2, e2) = c2.init_producer_id("t", 60_000, None).await.expect("init");
    assert_eq!((pid2, e2), (pid, epoch + 1));
}

#[tokio::test]
async fn a_transaction_past_its_timeout_is_aborted_with_a_bumped_epoch() {
    let markers = Arc::new(Markers::default());
    let c = coordinator(
        InMemoryWriter::new(),
        markers.clone(),
        TransactionCoordinatorConfig {
            abort_check_interval: Duration::from_millis(20),
            ..Default::default()
        },
    );
    let (pid, epoch) = c.init_producer_id("t", 50, None).await.expect("init");
    c.add_partitions("t", pid, epoch, &[tp("a", 0)], false)
        .await
        .expect("add");
    for _ in 0..200 {
        if !markers.written.lock().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let d = c.describe_transaction("t").await.expect("d");
    assert_eq!(d.state, TxnState::CompleteAbort);
    assert_eq!(d.producer_epoch, epoch + 1);
    assert!(matches!(
        c.end_txn("t", pid, epoch, true).await,
        Err(TxnError::ProducerFenced)
    ));
}

#[tokio::test]
async fn txn_offsets_reach_the_group_only_on_commit() {
    let markers = Arc::new(Markers::default());
    let c = coordinator(InMemoryWriter::new(), markers, Default::default());
    let (pid, epoch) = c.init_producer_id("t", 60_000, None).await.expect("init");
    let commit = |o: i64| crate::PartitionCommit {
        topic: "in".into(),
        partition: 0,
        offset: o,
        leader_epoch: -1,
        metadata: String::new(),
    };
    assert!(c
        .txn_offset_commit("t", "g", pid, epoch, vec![commit(5)])
        .await
        .is_err());
    c.add_offsets("t", pid, epoch, "g")
        .await
        .expect("add offsets");
    c.txn_offset_commit("t", "g", pid, epoch, vec![commit(5)])
        .await
        .expect("txn commit");
    c.end_txn("t", pid, epoch, false).await.expect("abort");
    let fetched = |c: &TransactionCoordinator| {
        c.inner
            .groups
            .fetch_offsets("g", None)
            .expect("fetch")
            .into_iter()
            .flat_map(|(_, ps)| ps)
            .filter_map(|(_, o)| o.map(|o| o.offset))
            .collect::<Vec<_>>()
    };
    assert!(fetched(&c).is_empty());
    c.add_offsets("t", pid, epoch, "g")
        .await
        .expect("add offsets");
    c.txn_offset_commit("t", "g", pid, epoch, vec![commit(7)])
        .await
        .expect("txn commit");
    c.end_txn("t", pid, epoch, true).await.expect("commit");
    assert_eq!(fetched(&c), vec![7]);
}
