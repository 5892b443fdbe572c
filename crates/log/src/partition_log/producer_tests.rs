//! Producer state through a real `PartitionLog`: duplicates answered with the original offsets,
//!
//! Test-only: declared under #[cfg(test)] by its parent module.
//! refused batches, snapshots at roll and at close, and the rebuild after a crash.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use crate::producer_snapshot;
use crate::testing::make_batch;
use crate::*;

fn config(segment_bytes: u64) -> Arc<LogConfig> {
    let topic = BTreeMap::from([("segment.bytes".to_string(), segment_bytes.to_string())]);
    Arc::new(LogConfig::build(&BTreeMap::new(), &topic).expect("config"))
}

fn open(dir: &Path, cfg: Arc<LogConfig>) -> Arc<LogManager> {
    let c = cfg.clone();
    LogManager::open(LogManagerConfig::new(dir), &move |_| c.clone()).expect("open")
}

/// A valid batch of `count` records from an idempotent producer.
fn idempotent_batch(pid: i64, epoch: i16, base_seq: i32, count: i32, ts: i64) -> Vec<u8> {
    let mut b = make_batch(count, 40, ts);
    b[43..51].copy_from_slice(&pid.to_be_bytes());
    b[51..53].copy_from_slice(&epoch.to_be_bytes());
    b[53..57].copy_from_slice(&base_seq.to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

fn append_raw(log: &Arc<PartitionLog>, bytes: Vec<u8>) -> Result<LogAppendInfo> {
    let v = validate_batches(Bytes::from(bytes), &log.config(), now_ms()).expect("valid");
    let info = log.append(&v, 0)?;
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("rt")
        .block_on(log.wait_durable(info.last_offset + 1))
        .expect("durable");
    Ok(info)
}

fn send(log: &Arc<PartitionLog>, pid: i64, epoch: i16, seq: i32, count: i32) -> LogAppendInfo {
    append_raw(log, idempotent_batch(pid, epoch, seq, count, now_ms())).expect("append")
}

/// Appends `rounds` batches for each of `producers` (3 records each), interleaved.
fn produce(log: &Arc<PartitionLog>, producers: i64, rounds: i32) {
    for r in 0..rounds {
        for pid in 0..producers {
            send(log, 100 + pid, 0, r * 3, 3);
        }
    }
}

#[test]
fn retry_is_answered_with_original_offsets_and_appends_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let mgr = open(dir.path(), config(1 << 20));
    let log = mgr
        .get_or_create(&TopicPartition::new("dup", 0), config(1 << 20))
        .expect("log");
    let a = send(&log, 5, 0, 0, 3);
    let b = send(&log, 5, 0, 3, 2);
    assert!(!a.duplicate);
    assert_eq!((b.first_offset, b.last_offset), (3, 4));
    let again = send(&log, 5, 0, 0, 3);
    assert!(again.duplicate);
    assert_eq!((again.first_offset, again.last_offset), (0, 2));
    assert_eq!(log.log_end_offset(), 5);
    // A gap, an old epoch and an unknown producer are refused, and nothing is written.
    let gap = append_raw(&log, idempotent_batch(5, 0, 7, 1, 0));
    assert!(matches!(
        gap,
        Err(LogError::Producer(ProducerStateError::OutOfOrderSequence {
            expected: 5,
            ..
        }))
    ));
    send(&log, 5, 1, 0, 1);
    let old = append_raw(&log, idempotent_batch(5, 0, 5, 1, 0));
    assert!(matches!(
        old,
        Err(LogError::Producer(
            ProducerStateError::InvalidProducerEpoch { .. }
        ))
    ));
    let unknown = append_raw(&log, idempotent_batch(6, 0, 9, 1, 0));
    assert!(matches!(
        unknown,
        Err(LogError::Producer(
            ProducerStateError::UnknownProducerId { .. }
        ))
    ));
    assert_eq!(log.log_end_offset(), 6);
    // Producers without idempotence are untouched.
    append_raw(&log, make_batch(2, 10, 0)).expect("plain");
    append_raw(&log, make_batch(2, 10, 0)).expect("plain again");
    assert_eq!(log.log_end_offset(), 10);
}

#[test]
fn concurrent_retries_append_once() {
    let dir = tempfile::tempdir().expect("tmp");
    let mgr = open(dir.path(), config(1 << 20));
    let log = mgr
        .get_or_create(&TopicPartition::new("race", 0), config(1 << 20))
        .expect("log");
    let barrier = Arc::new(std::sync::Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let log = log.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                (0..50)
                    .map(|seq| {
                        let v = validate_batches(
                            Bytes::from(idempotent_batch(1, 0, seq, 1, 0)),
                            &log.config(),
                            0,
                        )
                        .expect("valid");
                        // Eight copies of the same batch race for the appender.
                        barrier.wait();
                        let info = log.append(&v, 0).expect("append or duplicate");
                        (info.first_offset, info.duplicate)
                    })
                    .collect::<Vec<(i64, bool)>>()
            })
        })
        .collect();
    let results: Vec<Vec<(i64, bool)>> = threads
        .into_iter()
        .map(|t| t.join().expect("thread"))
        .collect();
    for seq in 0..50usize {
        // Everyone saw sequence n at offset n, and exactly one of them wrote it.
        assert!(results.iter().all(|r| r[seq].0 == seq as i64));
        assert_eq!(results.iter().filter(|r| !r[seq].1).count(), 1, "seq {seq}");
    }
    assert_eq!(log.log_end_offset(), 50);
}

#[test]
fn snapshots_at_roll_and_rebuild_after_crash_equal_the_state_before() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = config(1_500);
    let tp = TopicPartition::new("snap", 0);
    let before = {
        let mgr = open(dir.path(), cfg.clone());
        let log = mgr.get_or_create(&tp, cfg.clone()).expect("log");
        produce(&log, 4, 12);
        assert!(log.segment_count() > 4, "segments {}", log.segment_count());
        let pdir = dir.path().join("snap-0");
        let snaps = producer_snapshot::list_snapshots(&pdir).expect("list");
        let bases = log.segment_base_offsets();
        assert_eq!(
            snaps,
            bases[1..].to_vec(),
            "one snapshot per rolled segment"
        );
        log.producer_states()
        // Dropped without shutdown: a crash (no clean marker, no close snapshot).
    };
    assert_eq!(before.len(), 4);
    let mgr = open(dir.path(), cfg.clone());
    let log = mgr.get(&tp).expect("log");
    assert_eq!(log.producer_states(), before);
    // A retry after the restart is still a duplicate, with the offsets from before.
    let last = before.entry(101).and_then(|e| e.batches.back().copied());
    let last = last.expect("entry");
    let again = send(&log, 101, 0, last.first_seq, 3);
    assert!(again.duplicate);
    assert_eq!(again.first_offset, last.first_offset);

    // Without any snapshot the whole log is scanned, with the same result.
    drop(mgr);
    for o in producer_snapshot::list_snapshots(&dir.path().join("snap-0")).expect("list") {
        producer_snapshot::delete(&dir.path().join("snap-0"), o).expect("rm");
    }
    let mgr = open(dir.path(), cfg.clone());
    assert_eq!(mgr.get(&tp).expect("log").producer_states(), before);

    // Clean shutdown writes a snapshot at the log end; the next start scans nothing after it.
    mgr.shutdown().expect("shutdown");
    let end = 4 * 12 * 3;
    assert!(producer_snapshot::snapshot_path(&dir.path().join("snap-0"), end).exists());
    let mgr = open(dir.path(), cfg);
    assert_eq!(mgr.get(&tp).expect("log").producer_states(), before);
}

#[test]
fn damaged_or_stale_snapshots_are_skipped() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = config(1_500);
    let tp = TopicPartition::new("bad", 0);
    let pdir = dir.path().join("bad-0");
    let before = {
        let mgr = open(dir.path(), cfg.clone());
        let log = mgr.get_or_create(&tp, cfg.clone()).expect("log");
        produce(&log, 3, 10);
        log.producer_states()
    };
    let snaps = producer_snapshot::list_snapshots(&pdir).expect("list");
    let newest = *snaps.last().expect("a snapshot");
    // Torn newest snapshot, and one from beyond the log end (its batches were lost).
    let path = producer_snapshot::snapshot_path(&pdir, newest);
    let len = std::fs::metadata(&path).expect("meta").len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open")
        .set_len(len / 2)
        .expect("tear");
    let beyond = producer_snapshot::snapshot_path(&pdir, 1_000_000);
    std::fs::write(
        &beyond,
        producer_snapshot::encode(1_000_000, &ProducerStateManager::default()),
    )
    .expect("write");
    let mgr = open(dir.path(), cfg);
    assert_eq!(mgr.get(&tp).expect("log").producer_states(), before);
    assert!(!path.exists() && !beyond.exists());
}

#[test]
fn truncation_forgets_cut_batches_and_retention_deletes_old_snapshots() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = config(1_000);
    let mgr = open(dir.path(), cfg.clone());
    let log = mgr
        .get_or_create(&TopicPartition::new("tr", 0), cfg)
        .expect("log");
    for seq in 0..20 {
        send(&log, 9, 0, seq * 2, 2);
    }
    log.truncate_to(30).expect("truncate");
    assert_eq!(log.log_end_offset(), 30);
    assert_eq!(log.producer_entry(9).and_then(|e| e.last_seq()), Some(29));
    // Sequence 30 was cut: sending it again appends it (not a duplicate).
    let again = send(&log, 9, 0, 30, 2);
    assert!(!again.duplicate);
    assert_eq!(again.first_offset, 30);

    log.delete_records_before(20).expect("delete records");
    log.delete_old_segments(now_ms()).expect("retention");
    let first = log.segment_base_offsets()[0];
    assert!(first > 0);
    let snaps = producer_snapshot::list_snapshots(log.dir()).expect("list");
    assert!(snaps.iter().all(|o| *o >= first), "{snaps:?} below {first}");
}

#[test]
fn expired_producers_are_removed() {
    let dir = tempfile::tempdir().expect("tmp");
    let mgr = open(dir.path(), config(1 << 20));
    let log = mgr
        .get_or_create(&TopicPartition::new("exp", 0), config(1 << 20))
        .expect("log");
    append_raw(&log, idempotent_batch(1, 0, 0, 1, 1_000)).expect("a");
    append_raw(&log, idempotent_batch(2, 0, 0, 1, now_ms())).expect("b");
    assert_eq!(log.remove_expired_producers(now_ms()), 1);
    assert!(log.producer_entry(1).is_none() && log.producer_entry(2).is_some());
}
