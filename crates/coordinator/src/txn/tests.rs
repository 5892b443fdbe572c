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
    /// `__consumer_offsets`: markers for its partitions are appended there (as the broker does).
    offsets: Option<Arc<InMemoryWriter>>,
}

impl TxnMarkerWriter for Markers {
    fn write_markers(
        &self,
        marker: TxnMarker,
    ) -> SeamFuture<'_, Result<Vec<(String, i32)>, WriteError>> {
        if let Some(w) = &self.offsets {
            for (t, p) in &marker.partitions {
                if t == crate::OFFSETS_TOPIC {
                    w.write_marker(*p, marker.producer_id, marker.commit);
                }
            }
        }
        self.written.lock().push(marker);
        Box::pin(async { Ok(Vec::new()) })
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
    let offsets = markers.offsets.clone().unwrap_or_default();
    over(writer, markers, groups_over(offsets), config)
}

/// A group coordinator replaying `offsets` (its `__consumer_offsets`).
fn groups_over(offsets: Arc<InMemoryWriter>) -> GroupCoordinator {
    let groups = GroupCoordinator::new(
        GroupCoordinatorConfig {
            offsets_topic_partitions: 3,
            ..Default::default()
        },
        offsets,
    );
    for p in 0..3 {
        groups.load_partition(p).expect("load group partition");
    }
    groups
}

fn over(
    writer: Arc<InMemoryWriter>,
    markers: Arc<Markers>,
    groups: GroupCoordinator,
    config: TransactionCoordinatorConfig,
) -> TransactionCoordinator {
    let c = TransactionCoordinator::new(config, writer, markers, Arc::new(Ids::default()), groups);
    c.load().expect("load");
    c
}

fn in_commit(o: i64) -> crate::PartitionCommit {
    crate::PartitionCommit {
        topic: "in".into(),
        partition: 0,
        offset: o,
        leader_epoch: -1,
        metadata: String::new(),
    }
}

/// The committed offsets of `group` (OffsetFetch).
fn fetched(groups: &GroupCoordinator, group: &str) -> Vec<i64> {
    groups
        .fetch_offsets(group, None)
        .expect("fetch")
        .into_iter()
        .flat_map(|(_, ps)| ps)
        .filter_map(|(_, o)| o.map(|o| o.offset))
        .collect()
}

fn no_member() -> TxnCommitMember {
    TxnCommitMember {
        member_id: String::new(),
        generation_id: -1,
        group_instance_id: None,
    }
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
    c.end_txn("t", pid, epoch, true, false)
        .await
        .expect("commit");
    let m = markers.written.lock().clone();
    assert_eq!(m.len(), 1);
    assert!(m[0].commit);
    assert_eq!(m[0].partitions, vec![tp("a", 0), tp("b", 1)]);
    let d = c.describe_transaction("t").await.expect("describe");
    assert_eq!(d.state, TxnState::CompleteCommit);
    // Retry is fine, the opposite is not.
    c.end_txn("t", pid, epoch, true, false)
        .await
        .expect("retry");
    assert!(matches!(
        c.end_txn("t", pid, epoch, false, false).await,
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
        c.end_txn("t", pid, e0, true, false).await,
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
        c.end_txn("t", pid, epoch, true, false).await,
        Err(TxnError::ProducerFenced)
    ));
}

/// `transactional.id.expiration.ms`: an idle completed id is tombstoned and forgotten (also
/// after a replay); an id with an open transaction is not expired by this rule however old.
#[tokio::test]
async fn idle_completed_ids_expire_and_stay_gone_after_replay_ongoing_ones_do_not() {
    let writer = InMemoryWriter::new();
    let markers = Arc::new(Markers::default());
    let config = TransactionCoordinatorConfig {
        transactional_id_expiration_ms: 1_000,
        ..Default::default()
    };
    let c = coordinator(writer.clone(), markers.clone(), config.clone());
    let (pid, epoch) = c
        .init_producer_id("done", 60_000, None)
        .await
        .expect("init");
    c.add_partitions("done", pid, epoch, &[tp("a", 0)], false)
        .await
        .expect("add");
    c.end_txn("done", pid, epoch, true, false)
        .await
        .expect("commit");
    let (p2, e2) = c
        .init_producer_id("open", 60_000, None)
        .await
        .expect("init");
    c.add_partitions("open", p2, e2, &[tp("b", 0)], false)
        .await
        .expect("add");
    let done = c.describe_transaction("done").await.expect("d");
    assert_eq!(done.state, TxnState::CompleteCommit);
    let open = c.describe_transaction("open").await.expect("d");

    // Not yet idle long enough: nothing happens.
    c.expire_transactional_ids(done.last_update_ms + 1_000)
        .await;
    assert!(c.describe_transaction("done").await.is_ok());
    let before = writer.records(c.partition_for("done")).len();

    // Far past the expiration (the Ongoing one also far past it): only "done" goes.
    let later = done.last_update_ms.max(open.last_update_ms) + 10_000_000;
    c.expire_transactional_ids(later).await;
    assert!(matches!(
        c.describe_transaction("done").await,
        Err(TxnError::TransactionalIdNotFound)
    ));
    let listed: Vec<String> = c
        .list_transactions(&[], &[])
        .await
        .into_iter()
        .map(|l| l.transactional_id)
        .collect();
    assert_eq!(listed, vec!["open".to_string()]);
    assert_eq!(
        c.describe_transaction("open").await.expect("d").state,
        TxnState::Ongoing
    );
    // The tombstone is durable.
    let recs = writer.records(c.partition_for("done"));
    assert_eq!(recs.len(), before + 1);
    let last = record::decode(recs.last().expect("tombstone")).expect("decode");
    assert_eq!(last, ("done".to_string(), None));
    // The old producer is unknown now; a new InitProducerId starts afresh.
    assert!(matches!(
        c.add_partitions("done", pid, epoch, &[tp("a", 0)], false)
            .await,
        Err(TxnError::InvalidProducerIdMapping)
    ));
    drop(c);

    // Replay: the tombstone keeps "done" gone; "open" is still open.
    let c2 = coordinator(writer.clone(), Arc::new(Markers::default()), config);
    assert!(matches!(
        c2.describe_transaction("done").await,
        Err(TxnError::TransactionalIdNotFound)
    ));
    assert_eq!(
        c2.describe_transaction("open").await.expect("d").state,
        TxnState::Ongoing
    );
    // A known id would get its epoch bumped (0 -> 1); an expired one starts afresh at 0 (a new
    // producer id from the allocator; this test's allocator is not durable across the restart).
    let (_, e3) = c2
        .init_producer_id("done", 60_000, None)
        .await
        .expect("re-init");
    assert_eq!(e3, 0, "a fresh producer after expiration");
}

/// The periodic timer runs the expiration (real, short intervals as the timeout test).
#[tokio::test]
async fn the_timer_expires_idle_ids() {
    let c = coordinator(
        InMemoryWriter::new(),
        Arc::new(Markers::default()),
        TransactionCoordinatorConfig {
            abort_check_interval: Duration::from_millis(20),
            transactional_id_expiration_ms: 30,
            ..Default::default()
        },
    );
    c.init_producer_id("t", 60_000, None).await.expect("init");
    for _ in 0..200 {
        if c.describe_transaction("t").await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(matches!(
        c.describe_transaction("t").await,
        Err(TxnError::TransactionalIdNotFound)
    ));
}

/// Markers that wait for `open` before completing (an EndTxn held mid-way).
#[derive(Debug, Default)]
struct GatedMarkers {
    open: tokio::sync::Notify,
    written: Mutex<Vec<TxnMarker>>,
}

impl TxnMarkerWriter for GatedMarkers {
    fn write_markers(
        &self,
        marker: TxnMarker,
    ) -> SeamFuture<'_, Result<Vec<(String, i32)>, WriteError>> {
        Box::pin(async move {
            self.open.notified().await;
            self.written.lock().push(marker);
            Ok(Vec::new())
        })
    }
}

#[tokio::test]
async fn ids_follow_their_partition_and_markers_carry_the_load_epoch() {
    let writer = InMemoryWriter::new();
    let markers = Arc::new(Markers::default());
    let c = coordinator(writer.clone(), markers.clone(), Default::default());
    let (pid, epoch) = c.init_producer_id("t", 60_000, None).await.expect("init");
    let p = c.partition_for("t");
    c.unload_partition(p);
    assert!(matches!(
        c.describe_transaction("t").await,
        Err(TxnError::NotCoordinator)
    ));
    assert!(matches!(
        c.init_producer_id("t", 60_000, None).await,
        Err(TxnError::NotCoordinator)
    ));
    c.begin_load(p);
    assert!(matches!(
        c.add_partitions("t", pid, epoch, &[tp("a", 0)], false)
            .await,
        Err(TxnError::CoordinatorLoadInProgress)
    ));
    assert!(c.load_in_progress());
    c.install(c.read_partition(p).expect("read"), 4);
    assert!(!c.load_in_progress());
    c.add_partitions("t", pid, epoch, &[tp("a", 0)], false)
        .await
        .expect("add after reload");
    c.end_txn("t", pid, epoch, true, false)
        .await
        .expect("commit");
    let written = markers.written.lock().clone();
    assert_eq!(written[0].coordinator_epoch, 4);
    assert_eq!(written[0].transactional_id, "t");
}

#[tokio::test]
async fn an_operation_that_outlives_an_unload_cannot_write_stale_state() {
    let writer = InMemoryWriter::new();
    let markers = Arc::new(GatedMarkers::default());
    let c = TransactionCoordinator::new(
        Default::default(),
        writer.clone(),
        markers.clone(),
        Arc::new(Ids::default()),
        groups_over(InMemoryWriter::new()),
    );
    c.load().expect("load");
    let (pid, epoch) = c.init_producer_id("t", 60_000, None).await.expect("init");
    c.add_partitions("t", pid, epoch, &[tp("a", 0)], false)
        .await
        .expect("add");
    let ending = tokio::spawn({
        let c = c.clone();
        async move { c.end_txn("t", pid, epoch, true, false).await }
    });
    // EndTxn wrote PrepareCommit and waits on its markers; leadership moves away and back.
    let p = c.partition_for("t");
    for _ in 0..100 {
        let prepared = writer
            .records(p)
            .iter()
            .filter_map(|r| record::decode(r).ok()?.1)
            .any(|m| m.state == TxnState::PrepareCommit);
        if prepared {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    c.unload_partition(p);
    c.begin_load(p);
    c.install(c.read_partition(p).expect("read"), 1);
    // The reload resumes the prepared commit itself; the old EndTxn must not write again.
    for _ in 0..100 {
        markers.open.notify_waiters();
        if ending.is_finished() && markers.written.lock().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let r = ending.await.expect("join");
    assert!(matches!(r, Err(TxnError::NotCoordinator)), "{r:?}");
    for _ in 0..100 {
        if c.describe_transaction("t").await.expect("d").state == TxnState::CompleteCommit {
            break;
        }
        markers.open.notify_waiters();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let completes = writer
        .records(p)
        .iter()
        .filter_map(|r| record::decode(r).ok()?.1)
        .filter(|m| m.state == TxnState::CompleteCommit)
        .count();
    assert_eq!(completes, 1);
}

#[path = "tests_offsets.rs"]
mod offsets;

#[path = "tests_v2.rs"]
mod v2;
