//! KIP-890 guards through a real `PartitionLog`: a first transactional batch needs the guard,
//! later ones do not, and any marker (leader or follower append) spends it.
//!
//! Test-only: declared under #[cfg(test)] by its parent module.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;

use crate::testing::{make_batch, marker, txn_batch};
use crate::*;

fn log(dir: &std::path::Path) -> (Arc<LogManager>, Arc<PartitionLog>) {
    let cfg = Arc::new(LogConfig::build(&BTreeMap::new(), &BTreeMap::new()).expect("config"));
    let c = cfg.clone();
    let mgr = LogManager::open(LogManagerConfig::new(dir), &move |_| c.clone()).expect("open");
    let log = mgr
        .get_or_create(&TopicPartition::new("v", 0), cfg)
        .expect("log");
    (mgr, log)
}

fn client(
    log: &Arc<PartitionLog>,
    bytes: Vec<u8>,
    guard: Option<VerificationGuard>,
) -> Result<LogAppendInfo> {
    let v = validate_batches(Bytes::from(bytes), &log.config(), now_ms()).expect("valid");
    log.append_verified(&v, 0, guard)
}

fn coordinator_marker(log: &Arc<PartitionLog>, pid: i64, commit: bool) {
    let v = validate_control_batches(Bytes::from(marker(pid, commit)), &log.config(), now_ms())
        .expect("valid");
    log.append(&v, 0).expect("marker");
}

fn unverified(r: Result<LogAppendInfo>) -> bool {
    matches!(
        r,
        Err(LogError::Producer(
            ProducerStateError::UnverifiedTransaction { .. }
        ))
    )
}

#[test]
fn a_first_transactional_batch_needs_the_guard_later_ones_do_not() {
    let dir = tempfile::tempdir().expect("tmp");
    let (_mgr, log) = log(dir.path());
    assert!(unverified(client(&log, txn_batch(7, 0, 2), None)));
    let g = log
        .start_txn_verification(7)
        .expect("no open transaction yet");
    // A second request while the first verifies gets the same guard.
    assert_eq!(log.start_txn_verification(7), Some(g));
    // Another producer's guard does not open producer 7's transaction.
    let other = log.start_txn_verification(8).expect("guard");
    assert!(unverified(client(&log, txn_batch(7, 0, 2), Some(other))));
    assert_eq!(log.log_end_offset(), 0);
    client(&log, txn_batch(7, 0, 2), Some(g)).expect("verified append");
    // The transaction is open here: no verification, and the guard is spent.
    assert_eq!(log.start_txn_verification(7), None);
    client(&log, txn_batch(7, 2, 1), None).expect("next batch");
    // Plain batches never need one.
    client(&log, make_batch(2, 10, now_ms()), None).expect("plain");
    coordinator_marker(&log, 7, true);
    // After the commit the next transaction verifies again, with a fresh guard.
    let next = log.start_txn_verification(7).expect("guard");
    assert_ne!(next, g);
    assert_eq!(log.log_end_offset(), 6);
}

#[test]
fn a_marker_between_verification_and_append_spends_the_guard() {
    let dir = tempfile::tempdir().expect("tmp");
    let (_mgr, log) = log(dir.path());
    // The coordinator said yes to `g`, then aborted the transaction before the batch landed:
    // the late batch must not open a transaction nobody will ever end.
    let g = log.start_txn_verification(7).expect("guard");
    coordinator_marker(&log, 7, false);
    assert!(unverified(client(&log, txn_batch(7, 0, 1), Some(g))));
    assert!(log.ongoing_transactions().is_empty());
    assert_eq!(log.log_end_offset(), 1);
}

#[test]
fn a_replicated_marker_spends_the_guard_too() {
    let dir = tempfile::tempdir().expect("tmp");
    let (_mgr, leader) = log(&dir.path().join("leader"));
    let (_mgr2, follower) = log(&dir.path().join("follower"));
    // `follower` handed out a guard while it led; it then follows and copies an abort marker.
    let g = follower.start_txn_verification(7).expect("guard");
    coordinator_marker(&leader, 7, false);
    let bytes = leader
        .read(0, 1 << 20, ReadBound::LogEnd, true)
        .expect("read")
        .records
        .expect("records")
        .read_to_vec()
        .expect("bytes");
    follower
        .append_as_follower(Bytes::from(bytes))
        .expect("follow");
    assert!(unverified(client(&follower, txn_batch(7, 0, 1), Some(g))));
}
