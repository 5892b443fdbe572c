//! The leadership hook on a real single-node broker: start-up loads every coordinator
//! partition, a resignation unloads one (NOT_COORDINATOR), a stale election is ignored, a newer
//! one loads it again with its data.
//!
//! Test-only: declared under #[cfg(test)] by its parent module.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use strom_coordinator::txn::{TxnError, TRANSACTION_STATE_TOPIC};
use strom_coordinator::{GroupError, OffsetCommitRequest, PartitionCommit, OFFSETS_TOPIC};

use crate::test_broker::start;

fn commit(group: &str, offset: i64) -> OffsetCommitRequest {
    OffsetCommitRequest {
        group_id: group.into(),
        generation_id: -1,
        member_id: String::new(),
        group_instance_id: None,
        offsets: vec![PartitionCommit {
            topic: "t".into(),
            partition: 0,
            offset,
            leader_epoch: -1,
            metadata: String::new(),
        }],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinator_partitions_follow_leadership() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[]).await;
    let broker = server.broker().clone();
    let c = broker.coordinators.clone();
    assert!((0..4).all(|p| c.groups.is_loaded(p)));
    assert!((0..2).all(|p| c.txn.is_loaded(p)));

    let p = c.groups.partition_for("g");
    let r = broker
        .coordinators
        .groups
        .commit_offsets(commit("g", 5))
        .await
        .unwrap();
    assert!(r[0].is_ok());

    c.on_leadership_change(OFFSETS_TOPIC, p, 1, false);
    assert!(matches!(
        c.groups.check_owned("g"),
        Err(GroupError::NotCoordinator)
    ));
    // An election older than the resignation arrives late: ignored.
    c.on_leadership_change(OFFSETS_TOPIC, p, 0, true);
    assert!(!c.groups.is_loaded(p));
    // A newer one loads the partition again, with what was committed before.
    c.on_leadership_change(OFFSETS_TOPIC, p, 2, true);
    assert!(c.wait_loaded(Duration::from_secs(10)).await);
    assert!(c.groups.is_loaded(p));
    let fetched = c.groups.fetch_offsets("g", None).unwrap();
    assert_eq!(fetched[0].1[0].1.as_ref().map(|o| o.offset), Some(5));

    let tp = c.txn.partition_for("tx");
    c.on_leadership_change(TRANSACTION_STATE_TOPIC, tp, 3, false);
    assert!(matches!(
        broker
            .coordinators
            .txn
            .init_producer_id("tx", 60_000, None)
            .await,
        Err(TxnError::NotCoordinator)
    ));
    c.on_leadership_change(TRANSACTION_STATE_TOPIC, tp, 4, true);
    assert!(c.wait_loaded(Duration::from_secs(10)).await);
    assert_eq!(c.txn.check_owned("tx").unwrap(), 4);
    // Other topics are none of the coordinators' business.
    c.on_leadership_change("t", 0, 9, false);
    server.shutdown().await;
}
