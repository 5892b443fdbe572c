//! Replication through real `PartitionLog`s in temporary directories: leader epochs assigned by
//! appends and kept across restarts, a follower copying a leader byte for byte, transactions on
//! the follower, truncation, and the high watermark bound.
//!
//! Test-only: declared under #[cfg(test)] by its parent module.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::testing::{make_batch, marker, txn_batch};
use crate::*;

fn config(segment_bytes: u64, extra: &[(&str, &str)]) -> Arc<LogConfig> {
    let mut topic = BTreeMap::from([("segment.bytes".to_string(), segment_bytes.to_string())]);
    for (k, v) in extra {
        topic.insert(k.to_string(), v.to_string());
    }
    Arc::new(LogConfig::build(&BTreeMap::new(), &topic).expect("config"))
}

fn open(dir: &Path, cfg: Arc<LogConfig>) -> Arc<LogManager> {
    let c = cfg.clone();
    LogManager::open(LogManagerConfig::new(dir), &move |_| c.clone()).expect("open")
}

fn tp() -> TopicPartition {
    TopicPartition::new("r", 0)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Appends as leader in `epoch` and waits until durable; returns (first, last).
fn lead(log: &Arc<PartitionLog>, bytes: Vec<u8>, control: bool, epoch: i32) -> (i64, i64) {
    let v = if control {
        validate_control_batches(Bytes::from(bytes), &log.config(), now_ms())
    } else {
        validate_batches(Bytes::from(bytes), &log.config(), now_ms())
    }
    .expect("valid");
    let info = log.append(&v, epoch).expect("append");
    rt().block_on(log.wait_durable(info.last_offset + 1))
        .expect("durable");
    (info.first_offset, info.last_offset)
}

fn follow(log: &Arc<PartitionLog>, bytes: Bytes) -> Result<Option<LogAppendInfo>> {
    let info = log.append_as_follower(bytes)?;
    if let Some(i) = info {
        rt().block_on(log.wait_durable(i.last_offset + 1))?;
    }
    Ok(info)
}

/// The leader's bytes from `from`, at most `max_bytes` (a whole first batch at least), as a
/// replica fetch reads them: possibly ending in a partial batch.
fn fetch(leader: &PartitionLog, from: i64, max_bytes: u64) -> Bytes {
    let info = leader
        .read(from, max_bytes, ReadBound::LogEnd, true)
        .expect("read");
    Bytes::from(info.records.expect("records").read_to_vec().expect("bytes"))
}

/// Fetches from the leader until the follower has everything; returns how many appends it took.
fn replicate(leader: &PartitionLog, follower: &Arc<PartitionLog>, max_bytes: u64) -> usize {
    let mut rounds = 0;
    while follower.log_end_offset() < leader.log_end_offset() {
        let bytes = fetch(leader, follower.log_end_offset(), max_bytes);
        follow(follower, bytes).expect("append").expect("progress");
        rounds += 1;
        assert!(rounds < 10_000, "no progress");
    }
    rounds
}

/// Every file of `dir` with extension `ext`, by name.
fn files(dir: &Path, ext: &str) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .map(|p| {
            let name = p.file_name().expect("name").to_string_lossy().to_string();
            (name, std::fs::read(&p).expect("read"))
        })
        .collect()
}

fn epochs(log: &PartitionLog) -> Vec<(i32, i64)> {
    log.leader_epoch_cache()
        .entries()
        .iter()
        .map(|e| (e.epoch, e.start_offset))
        .collect()
}

#[test]
fn leader_appends_assign_epochs_that_survive_restart_and_rebuild() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = config(1 << 20, &[]);
    let mgr = open(dir.path(), cfg.clone());
    let log = mgr.get_or_create(&tp(), cfg.clone()).expect("log");
    lead(&log, make_batch(3, 10, now_ms()), false, 0);
    lead(&log, make_batch(3, 10, now_ms()), false, 0);
    log.assign_leader_epoch(2);
    assert_eq!(epochs(&log), vec![(0, 0), (2, 6)]);
    lead(&log, make_batch(2, 10, now_ms()), false, 2);
    // An older epoch's append is written but does not move the cache back.
    lead(&log, make_batch(1, 10, now_ms()), false, 1);
    lead(&log, make_batch(2, 10, now_ms()), false, 4);
    assert_eq!(epochs(&log), vec![(0, 0), (2, 6), (4, 9)]);
    assert_eq!(log.latest_leader_epoch(), Some(4));
    assert_eq!(log.end_offset_for_leader_epoch(0), (0, 6));
    assert_eq!(log.end_offset_for_leader_epoch(3), (2, 9));
    assert_eq!(log.end_offset_for_leader_epoch(4), (4, 11));
    assert_eq!(log.end_offset_for_leader_epoch(5), (-1, -1));
    assert_eq!(log.leader_epoch_for_offset(7), Some(2));
    let cp = log.dir().join("leader-epoch-checkpoint");
    assert_eq!(
        std::fs::read_to_string(&cp).expect("checkpoint"),
        "0\n3\n0 0\n2 6\n4 9\n"
    );
    mgr.shutdown().expect("shutdown");
    drop((log, mgr));

    let mgr = open(dir.path(), cfg.clone());
    let log = mgr.get(&tp()).expect("log");
    assert_eq!(epochs(&log), vec![(0, 0), (2, 6), (4, 9)]);
    mgr.shutdown().expect("shutdown");
    drop((log, mgr));

    // Missing: rebuilt from the batches' partitionLeaderEpoch, and written back.
    std::fs::remove_file(&cp).expect("rm");
    let mgr = open(dir.path(), cfg.clone());
    let log = mgr.get(&tp()).expect("log");
    assert_eq!(epochs(&log), vec![(0, 0), (2, 6), (4, 9)]);
    assert!(cp.exists());
    mgr.shutdown().expect("shutdown");
    drop((log, mgr));

    // Ahead of the log (written before data a crash lost): cut to the log end.
    std::fs::write(&cp, "0\n4\n0 0\n2 6\n4 9\n7 500\n").expect("write");
    let mgr = open(dir.path(), cfg);
    let log = mgr.get(&tp()).expect("log");
    assert_eq!(epochs(&log), vec![(0, 0), (2, 6), (4, 9)]);
    assert_eq!(
        std::fs::read_to_string(&cp).expect("checkpoint"),
        "0\n3\n0 0\n2 6\n4 9\n"
    );
}

#[test]
fn follower_copies_the_leaders_log_byte_for_byte() {
    let (ld, fd) = (
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    );
    let cfg = config(1000, &[]);
    let (lm, fm) = (open(ld.path(), cfg.clone()), open(fd.path(), cfg.clone()));
    let leader = lm.get_or_create(&tp(), cfg.clone()).expect("leader");
    let follower = fm.get_or_create(&tp(), cfg.clone()).expect("follower");
    for i in 0..30 {
        let epoch = i / 7;
        lead(&leader, make_batch(1 + i % 4, 30, now_ms()), false, epoch);
    }
    assert!(leader.segment_count() > 3, "several segments");
    // 700 bytes per fetch: most fetches end inside a batch.
    let rounds = replicate(&leader, &follower, 700);
    assert!(rounds > 5);
    assert_eq!(follower.log_end_offset(), leader.log_end_offset());
    assert_eq!(
        follower.segment_base_offsets(),
        leader.segment_base_offsets()
    );
    let (lp, fp) = (leader.dir().to_path_buf(), follower.dir().to_path_buf());
    assert_eq!(files(&fp, "log"), files(&lp, "log"));
    assert_eq!(epochs(&follower), epochs(&leader));
    assert_eq!(epochs(&leader).len(), 5);
    assert_eq!(
        std::fs::read(fp.join("leader-epoch-checkpoint")).expect("f"),
        std::fs::read(lp.join("leader-epoch-checkpoint")).expect("l")
    );
    // The follower's high watermark followed its durable end (no bound set).
    assert_eq!(follower.high_watermark(), follower.log_end_offset());
    // Nothing new: None.
    let again = fetch(&leader, 0, 1 << 20);
    assert!(follow(&follower, again).expect("again").is_none());
    // After a restart the follower's log is intact.
    fm.shutdown().expect("shutdown");
    drop((follower, fm));
    let fm = open(fd.path(), cfg);
    let follower = fm.get(&tp()).expect("follower");
    assert_eq!(follower.log_end_offset(), leader.log_end_offset());
    assert_eq!(epochs(&follower), epochs(&leader));
}

#[test]
fn follower_ignores_a_partial_tail_and_refuses_overlaps_and_corruption() {
    let (ld, fd) = (
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    );
    let cfg = config(1 << 20, &[]);
    let (lm, fm) = (open(ld.path(), cfg.clone()), open(fd.path(), cfg.clone()));
    let leader = lm.get_or_create(&tp(), cfg.clone()).expect("leader");
    let follower = fm.get_or_create(&tp(), cfg).expect("follower");
    for _ in 0..3 {
        lead(&leader, make_batch(3, 20, now_ms()), false, 0);
    }
    let all = fetch(&leader, 0, 1 << 20);
    let one = BatchView::parse(&all).expect("batch").size();
    // Two whole batches and a piece of the third.
    let info = follow(&follower, all.slice(..2 * one + one / 2))
        .expect("append")
        .expect("some");
    assert_eq!((info.first_offset, info.last_offset), (0, 5));
    assert_eq!(follower.log_end_offset(), 6);
    // Only a partial batch: nothing to do.
    assert!(follow(&follower, all.slice(2 * one..2 * one + 10))
        .expect("partial")
        .is_none());
    // A batch overlapping the log end is refused.
    let mut overlap = make_batch(3, 20, now_ms());
    BatchMut::new(&mut overlap).set_base_offset(5);
    assert!(matches!(
        follow(&follower, Bytes::from(overlap)),
        Err(LogError::NonContiguousFollowerAppend {
            expected: 6,
            got: 5
        })
    ));
    // A corrupt batch is refused, nothing written.
    let mut bad = all.slice(2 * one..).to_vec();
    let n = bad.len();
    bad[n - 1] ^= 0xff;
    assert!(matches!(
        follow(&follower, Bytes::from(bad)),
        Err(LogError::InvalidBatch(BatchError::CrcMismatch { .. }))
    ));
    assert_eq!(follower.log_end_offset(), 6);
    // Batches it already has are skipped; the rest is appended.
    let info = follow(&follower, all.clone())
        .expect("append")
        .expect("some");
    assert_eq!((info.first_offset, info.last_offset), (6, 8));
    assert_eq!(
        files(follower.dir(), "log"),
        files(leader.dir(), "log"),
        "byte-identical"
    );
    // A gap (compaction removed batches in the leader's log) is accepted, as in Kafka.
    let mut gap = make_batch(2, 20, now_ms());
    BatchMut::new(&mut gap).set_base_offset(20);
    let info = follow(&follower, Bytes::from(gap))
        .expect("gap")
        .expect("some");
    assert_eq!((info.first_offset, info.last_offset), (20, 21));
    assert_eq!(follower.log_end_offset(), 22);
}

#[test]
fn follower_replays_transactions_into_its_aborted_index_and_lso() {
    let (ld, fd) = (
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    );
    let cfg = config(1 << 20, &[]);
    let (lm, fm) = (open(ld.path(), cfg.clone()), open(fd.path(), cfg.clone()));
    let leader = lm.get_or_create(&tp(), cfg.clone()).expect("leader");
    let follower = fm.get_or_create(&tp(), cfg.clone()).expect("follower");
    lead(&leader, txn_batch(7, 0, 3), false, 1); // 0..=2
    lead(&leader, txn_batch(8, 0, 3), false, 1); // 3..=5
    lead(&leader, marker(7, false), true, 1); // 6: abort 7
    lead(&leader, make_batch(2, 10, now_ms()), false, 1); // 7..=8
    replicate(&leader, &follower, 1 << 20);
    let aborted = follower.all_aborted_transactions();
    assert_eq!(aborted, leader.all_aborted_transactions());
    assert_eq!(aborted.len(), 1);
    assert_eq!(
        (
            aborted[0].producer_id,
            aborted[0].first_offset,
            aborted[0].last_offset
        ),
        (7, 0, 6)
    );
    assert_eq!(follower.ongoing_transactions(), BTreeMap::from([(8, 3)]));
    assert_eq!(follower.high_watermark(), 9);
    assert_eq!(follower.last_stable_offset(), 3);
    assert_eq!(follower.producer_entry(8), leader.producer_entry(8));
    assert_eq!(follower.producer_entry(7), leader.producer_entry(7));
    assert_eq!(files(follower.dir(), "txnindex").len(), 1);
    assert_eq!(
        files(follower.dir(), "txnindex"),
        files(leader.dir(), "txnindex")
    );
    // The commit of 8 arrives in the next fetch, with a retry of data it already has.
    lead(&leader, marker(8, true), true, 1); // 9
    follow(&follower, fetch(&leader, 6, 1 << 20))
        .expect("append")
        .expect("some");
    assert!(follower.ongoing_transactions().is_empty());
    assert_eq!(follower.last_stable_offset(), 10);
    // A follower refuses nothing: the leader fenced producer 7 and it restarts at sequence 0 in
    // a newer epoch; a follower copy of a batch the leader accepted is never refused.
    let mut fenced = txn_batch(7, 0, 1);
    fenced[51..53].copy_from_slice(&1i16.to_be_bytes());
    let crc = crc32c::crc32c(&fenced[21..]);
    fenced[17..21].copy_from_slice(&crc.to_be_bytes());
    lead(&leader, fenced, false, 1);
    follow(&follower, fetch(&leader, 10, 1 << 20))
        .expect("append")
        .expect("some");
    assert_eq!(follower.producer_entry(7), leader.producer_entry(7));
    assert_eq!(follower.ongoing_transactions(), BTreeMap::from([(7, 10)]));
    // Restart: the rebuilt producer state and index agree.
    fm.shutdown().expect("shutdown");
    drop((follower, fm));
    let fm = open(fd.path(), cfg);
    let follower = fm.get(&tp()).expect("follower");
    assert_eq!(
        follower.all_aborted_transactions(),
        leader.all_aborted_transactions()
    );
    assert_eq!(follower.ongoing_transactions(), BTreeMap::from([(7, 10)]));
}

#[test]
fn truncation_cuts_epochs_high_watermark_and_fires_the_log_end_watch() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = config(1 << 20, &[]);
    let mgr = open(dir.path(), cfg.clone());
    let log = mgr.get_or_create(&tp(), cfg).expect("log");
    let mut end_rx = log.subscribe_log_end();
    let mut hw_rx = log.subscribe_high_watermark();
    for epoch in 0..3 {
        lead(&log, make_batch(3, 10, now_ms()), false, epoch);
    }
    assert!(end_rx.has_changed().expect("open"));
    assert_eq!(*end_rx.borrow_and_update(), 9);
    assert_eq!(*hw_rx.borrow_and_update(), 9);
    log.truncate_to(6).expect("truncate");
    assert_eq!(log.log_end_offset(), 6);
    assert_eq!(epochs(&log), vec![(0, 0), (1, 3)]);
    assert_eq!(log.end_offset_for_leader_epoch(1), (1, 6));
    assert_eq!(log.end_offset_for_leader_epoch(2), (-1, -1));
    assert_eq!(log.high_watermark(), 6);
    assert!(end_rx.has_changed().expect("open"));
    assert_eq!(*end_rx.borrow_and_update(), 6);
    assert_eq!(*hw_rx.borrow_and_update(), 6);
    assert_eq!(
        std::fs::read_to_string(log.dir().join("leader-epoch-checkpoint")).expect("cp"),
        "0\n2\n0 0\n1 3\n"
    );
    // Batches are never split: the cut is at the start of the batch holding 2.
    log.truncate_to(2).expect("truncate");
    assert_eq!(log.log_end_offset(), 0);
    assert!(epochs(&log).is_empty());
    assert_eq!(log.latest_leader_epoch(), None);
    // The log start moves the first epoch up (DeleteRecords, retention).
    lead(&log, make_batch(3, 10, now_ms()), false, 4);
    lead(&log, make_batch(3, 10, now_ms()), false, 5);
    assert_eq!(log.delete_records_before(4).expect("delete"), 4);
    assert_eq!(epochs(&log), vec![(5, 4)]);
    assert_eq!(log.end_offset_for_leader_epoch(4), (4, 4));
}

#[test]
fn truncate_fully_and_start_at_restarts_an_empty_log() {
    let (ld, fd) = (
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    );
    let cfg = config(600, &[]);
    let (lm, fm) = (open(ld.path(), cfg.clone()), open(fd.path(), cfg.clone()));
    let follower = fm.get_or_create(&tp(), cfg.clone()).expect("follower");
    for _ in 0..6 {
        lead(&follower, make_batch(3, 30, now_ms()), false, 1);
    }
    lead(&follower, txn_batch(9, 0, 2), false, 1);
    follower.roll().expect("roll");
    assert!(follower.segment_count() > 2);
    follower.truncate_fully_and_start_at(100).expect("restart");
    assert_eq!(follower.log_start_offset(), 100);
    assert_eq!(follower.log_end_offset(), 100);
    assert_eq!(follower.high_watermark(), 100);
    assert_eq!(follower.durable_offset(), 100);
    assert_eq!(follower.segment_base_offsets(), vec![100]);
    assert!(epochs(&follower).is_empty());
    assert!(follower.ongoing_transactions().is_empty());
    assert!(follower.producer_states().is_empty());
    let logs = files(follower.dir(), "log");
    assert_eq!(
        logs.keys().cloned().collect::<Vec<_>>(),
        vec!["00000000000000000100.log"]
    );
    assert!(files(follower.dir(), "snapshot").is_empty());
    // The leader's log starts at 100: the follower continues from there.
    let leader = lm.get_or_create(&tp(), cfg.clone()).expect("leader");
    leader
        .truncate_fully_and_start_at(100)
        .expect("leader start");
    lead(&leader, make_batch(2, 10, now_ms()), false, 3);
    replicate(&leader, &follower, 1 << 20);
    assert_eq!(follower.log_end_offset(), 102);
    assert_eq!(epochs(&follower), vec![(3, 100)]);
    fm.shutdown().expect("shutdown");
    drop((follower, fm));
    let fm = open(fd.path(), cfg);
    let follower = fm.get(&tp()).expect("follower");
    assert_eq!(
        (follower.log_start_offset(), follower.log_end_offset()),
        (100, 102)
    );
    assert_eq!(epochs(&follower), vec![(3, 100)]);
}

#[test]
fn high_watermark_is_min_of_durable_and_bound_and_never_goes_back() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = config(1 << 20, &[]);
    let mgr = open(dir.path(), cfg.clone());
    let log = mgr.get_or_create(&tp(), cfg).expect("log");
    assert_eq!(log.high_watermark_bound(), i64::MAX);
    log.set_high_watermark_bound(3);
    for _ in 0..3 {
        lead(&log, make_batch(2, 10, now_ms()), false, 0); // batches at 0, 2, 4
    }
    assert_eq!(log.durable_offset(), 6);
    assert_eq!(log.high_watermark(), 3, "capped by the bound");
    // Readers see the batches below the high watermark's position: the one holding 3 is cut.
    let info = log
        .read(0, 1 << 20, ReadBound::HighWatermark, true)
        .expect("read");
    let bytes = info.records.expect("records").read_to_vec().expect("bytes");
    let bases: Vec<i64> = Batches::new(&bytes)
        .map(|b| b.expect("batch").base_offset())
        .collect();
    assert_eq!(bases, vec![0]);
    log.set_high_watermark_bound(10);
    assert_eq!(log.high_watermark(), 6, "the durable end");
    lead(&log, make_batch(2, 10, now_ms()), false, 0);
    lead(&log, make_batch(2, 10, now_ms()), false, 0);
    assert_eq!(log.high_watermark(), 10);
    lead(&log, make_batch(2, 10, now_ms()), false, 0);
    assert_eq!(log.high_watermark(), 10);
    log.set_high_watermark_bound(2);
    assert_eq!(log.high_watermark(), 10, "never backwards");
    log.set_high_watermark(4).expect("set");
    assert_eq!(log.high_watermark(), 10, "never backwards");
    log.set_high_watermark_bound(i64::MAX);
    assert_eq!(log.high_watermark(), 12);
    // acks=all: a waiter resolves once the bound lets the high watermark pass it.
    log.set_high_watermark_bound(12);
    lead(&log, make_batch(2, 10, now_ms()), false, 0);
    assert_eq!(log.high_watermark(), 12);
    let runtime = rt();
    let waiting = runtime.block_on(async {
        tokio::time::timeout(Duration::from_millis(50), log.wait_high_watermark(14)).await
    });
    assert!(waiting.is_err(), "not before the bound moves");
    let l2 = log.clone();
    let setter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        l2.set_high_watermark_bound(14);
    });
    runtime
        .block_on(async {
            tokio::time::timeout(Duration::from_secs(5), log.wait_high_watermark(14)).await
        })
        .expect("resolved");
    setter.join().expect("setter");
    assert_eq!(log.high_watermark(), 14);
}

#[test]
fn relaxed_flushing_caps_the_log_end_with_the_bound() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = config(1 << 20, &[("flush.messages", "1000")]);
    let mgr = open(dir.path(), cfg.clone());
    let log = mgr.get_or_create(&tp(), cfg).expect("log");
    log.set_high_watermark_bound(4);
    for _ in 0..3 {
        let v = validate_batches(
            Bytes::from(make_batch(2, 10, now_ms())),
            &log.config(),
            now_ms(),
        )
        .expect("valid");
        let info = log.append(&v, 0).expect("append");
        assert!(!info.needs_flush);
    }
    assert_eq!(log.log_end_offset(), 6);
    assert_eq!(log.high_watermark(), 4);
    log.set_high_watermark_bound(100);
    assert_eq!(log.high_watermark(), 6, "the log end, fsync or not");
}

/// A broker that became leader (its epoch recorded at its log end) and lost leadership before
/// appending: the new leader answers its fetch with a divergence at that same log end. The
/// truncation cuts no record but must drop the empty epoch, or every later fetch carries it and
/// diverges again (a follower stuck in a loop, seen as a stalled coordinator failover).
#[test]
fn truncating_to_the_log_end_drops_an_epoch_that_never_got_a_record() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = config(1 << 20, &[]);
    let mgr = open(dir.path(), cfg.clone());
    let log = mgr.get_or_create(&tp(), cfg).expect("log");
    lead(&log, make_batch(3, 10, now_ms()), false, 0);
    log.assign_leader_epoch(1); // became leader at offset 3, appended nothing
    assert_eq!(log.latest_leader_epoch(), Some(1));
    log.truncate_to(3).expect("truncate");
    assert_eq!(log.log_end_offset(), 3);
    assert_eq!(epochs(&log), vec![(0, 0)]);
    assert_eq!(log.latest_leader_epoch(), Some(0));
}
