//! Unit and property tests of the log as a whole (open, append, read, roll, retention, recovery).

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use proptest::prelude::*;

use crate::testing::make_batch;
use crate::*;

mod hostile_disk;

fn small_config(segment_bytes: u64, index_interval: u64) -> Arc<LogConfig> {
    let topic = BTreeMap::from([
        ("segment.bytes".to_string(), segment_bytes.to_string()),
        (
            "index.interval.bytes".to_string(),
            index_interval.to_string(),
        ),
    ]);
    Arc::new(LogConfig::build(&BTreeMap::new(), &topic).expect("config"))
}

fn open(dir: &std::path::Path, cfg: Arc<LogConfig>) -> Arc<LogManager> {
    let c = cfg.clone();
    LogManager::open(LogManagerConfig::new(dir), &move |_| c.clone()).expect("open")
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Appends a batch and waits for it to be durable; returns (first, last).
fn append(log: &Arc<PartitionLog>, count: i32, value_len: usize, ts: i64) -> (i64, i64) {
    let v = validate_batches(
        Bytes::from(make_batch(count, value_len, ts)),
        &log.config(),
        ts,
    )
    .expect("valid");
    let info = log.append(&v, 0).expect("append");
    rt().block_on(log.wait_durable(info.last_offset + 1))
        .expect("durable");
    (info.first_offset, info.last_offset)
}

/// Reads everything from `from` and returns (base, last) of every whole batch.
fn read_all(log: &PartitionLog, mut from: i64) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    loop {
        let info = log
            .read(from, 1 << 20, ReadBound::HighWatermark, true)
            .expect("read");
        let Some(slice) = info.records else { break };
        let bytes = slice.read_to_vec().expect("bytes");
        let mut advanced = false;
        for b in Batches::new(&bytes) {
            let Ok(b) = b else { break };
            b.validate().expect("intact batch");
            if b.last_offset() >= from {
                out.push((b.base_offset(), b.last_offset()));
                from = b.last_offset() + 1;
                advanced = true;
            }
        }
        if !advanced {
            break;
        }
    }
    out
}

#[test]
fn append_read_round_trip_and_offsets() {
    let dir = tempfile::tempdir().expect("tmp");
    let mgr = open(dir.path(), small_config(1 << 20, 4096));
    let log = mgr
        .get_or_create(&TopicPartition::new("t", 0), small_config(1 << 20, 4096))
        .expect("log");
    assert_eq!(append(&log, 3, 10, 1000), (0, 2));
    assert_eq!(append(&log, 2, 10, 2000), (3, 4));
    assert_eq!(log.log_end_offset(), 5);
    assert_eq!(log.high_watermark(), 5);
    assert_eq!(log.durable_offset(), 5);
    assert_eq!(read_all(&log, 0), vec![(0, 2), (3, 4)]);
    // Mid-batch read returns the whole batch containing the offset.
    assert_eq!(read_all(&log, 1)[0], (0, 2));
    assert!(matches!(
        log.read(6, 100, ReadBound::HighWatermark, true),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert!(log
        .read(5, 100, ReadBound::HighWatermark, true)
        .expect("empty")
        .records
        .is_none());
}

#[test]
fn rolls_segments_and_survives_clean_restart() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = small_config(2000, 100);
    let tp = TopicPartition::new("roll-topic", 2);
    {
        let mgr = open(dir.path(), cfg.clone());
        let log = mgr.get_or_create(&tp, cfg.clone()).expect("log");
        for i in 0..50 {
            append(&log, 2, 100, 1000 + i);
        }
        assert!(log.segment_count() > 5, "segments {}", log.segment_count());
        mgr.shutdown().expect("shutdown");
    }
    assert!(dir.path().join(".kafka_cleanshutdown").exists());
    let names: Vec<String> = std::fs::read_dir(dir.path().join("roll-topic-2"))
        .expect("dir")
        .map(|e| e.expect("e").file_name().to_string_lossy().to_string())
        .collect();
    assert!(names.contains(&"00000000000000000000.log".to_string()));
    assert!(names.contains(&"00000000000000000000.index".to_string()));
    assert!(names.contains(&"00000000000000000000.timeindex".to_string()));
    let mgr = open(dir.path(), cfg.clone());
    let log = mgr.get(&tp).expect("log reopened");
    assert_eq!(log.log_end_offset(), 100);
    let batches = read_all(&log, 0);
    assert_eq!(batches.len(), 50);
    assert_eq!(batches.last(), Some(&(98, 99)));
    assert_eq!(append(&log, 1, 10, 5000), (100, 100));
}

#[test]
fn timestamp_search_and_max_timestamp() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = small_config(1500, 50);
    let mgr = open(dir.path(), cfg.clone());
    let log = mgr
        .get_or_create(&TopicPartition::new("ts", 0), cfg)
        .expect("log");
    for i in 0..20 {
        append(&log, 5, 20, 10_000 + i * 100); // record j has ts 10000 + i*100 + j
    }
    // Exact record, inside a batch.
    assert_eq!(
        log.offset_for_timestamp(10_502).expect("ok"),
        Some((27, 10_502))
    );
    assert_eq!(log.offset_for_timestamp(0).expect("ok"), Some((0, 10_000)));
    assert_eq!(
        log.offset_for_timestamp(10_505).expect("ok"),
        Some((30, 10_600))
    );
    assert_eq!(log.offset_for_timestamp(99_999).expect("ok"), None);
    assert_eq!(log.max_timestamp_offset().expect("ok"), Some((99, 11_904)));
}

#[test]
fn retention_by_size_and_time_deletes_whole_old_segments_only() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut topic = BTreeMap::from([("segment.bytes".to_string(), "1000".to_string())]);
    topic.insert("retention.bytes".into(), "3000".into());
    let cfg = Arc::new(LogConfig::build(&BTreeMap::new(), &topic).expect("cfg"));
    let mgr = open(dir.path(), cfg.clone());
    let log = mgr
        .get_or_create(&TopicPartition::new("r", 0), cfg.clone())
        .expect("log");
    let now = now_ms();
    for _ in 0..40 {
        append(&log, 1, 200, now);
    }
    let before = log.segment_count();
    let deleted = log.delete_old_segments(now).expect("retention");
    assert!(deleted > 0);
    assert_eq!(log.segment_count(), before - deleted);
    assert!(log.size_bytes() <= 3000 + 1000, "size {}", log.size_bytes());
    let first = log.segment_base_offsets()[0];
    assert_eq!(log.log_start_offset(), first);
    assert_eq!(read_all(&log, first).first().map(|b| b.0), Some(first));
    assert_eq!(log.log_end_offset(), 40);

    // Time: everything older than retention.ms, but never the active segment.
    let mut t2 = topic.clone();
    t2.insert("retention.bytes".into(), "-1".into());
    t2.insert("retention.ms".into(), "1000".into());
    log.set_config(Arc::new(
        LogConfig::build(&BTreeMap::new(), &t2).expect("cfg"),
    ));
    log.delete_old_segments(now + 10_000).expect("retention");
    assert_eq!(log.segment_count(), 1);
    assert_eq!(log.log_end_offset(), 40);
}

#[test]
fn delete_records_advances_log_start() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = small_config(1000, 4096);
    let mgr = open(dir.path(), cfg.clone());
    let tp = TopicPartition::new("d", 0);
    let log = mgr.get_or_create(&tp, cfg.clone()).expect("log");
    for _ in 0..20 {
        append(&log, 1, 200, now_ms());
    }
    assert_eq!(log.delete_records_before(7).expect("ok"), 7);
    assert!(log.delete_records_before(100).is_err());
    assert!(matches!(
        log.read(3, 100, ReadBound::HighWatermark, true),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    log.delete_old_segments(now_ms()).expect("retention");
    assert!(log.segment_base_offsets()[0] <= 7);
    mgr.shutdown().expect("shutdown");
    let mgr = open(dir.path(), cfg);
    assert_eq!(mgr.get(&tp).expect("log").log_start_offset(), 7);
}

#[test]
fn damaged_and_missing_indexes_are_rebuilt() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = small_config(3000, 100);
    let tp = TopicPartition::new("idx", 0);
    {
        let mgr = open(dir.path(), cfg.clone());
        let log = mgr.get_or_create(&tp, cfg.clone()).expect("log");
        for i in 0..30 {
            append(&log, 3, 50, now_ms() + i);
        }
        mgr.shutdown().expect("shutdown");
    }
    let pdir = dir.path().join("idx-0");
    std::fs::remove_file(pdir.join("00000000000000000000.index")).expect("rm");
    std::fs::write(pdir.join("00000000000000000000.timeindex"), [7u8; 5]).expect("garble");
    let mgr = open(dir.path(), cfg);
    let log = mgr.get(&tp).expect("log");
    assert_eq!(read_all(&log, 0).len(), 30);
    assert_eq!(read_all(&log, 44)[0], (42, 44));
    assert!(
        std::fs::metadata(pdir.join("00000000000000000000.index"))
            .expect("rebuilt")
            .len()
            > 0
    );
}

#[test]
fn corrupt_tail_is_cut_after_crash() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = small_config(1 << 20, 4096);
    let tp = TopicPartition::new("c", 0);
    {
        let mgr = open(dir.path(), cfg.clone());
        let log = mgr.get_or_create(&tp, cfg.clone()).expect("log");
        for _ in 0..10 {
            append(&log, 2, 30, now_ms());
        }
        // No shutdown: simulates a crash (no clean marker, no checkpoint).
    }
    let seg = dir.path().join("c-0/00000000000000000000.log");
    let len = std::fs::metadata(&seg).expect("meta").len();
    let mut bytes = std::fs::read(&seg).expect("read");
    let last = (len as usize) - 5;
    bytes[last] ^= 0xff; // flip a byte in the last batch
    std::fs::write(&seg, &bytes).expect("write");
    let mgr = open(dir.path(), cfg.clone());
    let log = mgr.get(&tp).expect("log");
    assert_eq!(log.log_end_offset(), 18, "the corrupt last batch is cut");
    assert_eq!(read_all(&log, 0).len(), 9);
    drop(mgr);
    // Truncated mid-batch.
    let len = std::fs::metadata(&seg).expect("meta").len();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .expect("open");
    f.set_len(len - 7).expect("truncate");
    let mgr = open(dir.path(), cfg);
    let log = mgr.get(&tp).expect("log");
    assert_eq!(log.log_end_offset(), 16);
    assert_eq!(read_all(&log, 0).len(), 8);
}

#[test]
fn truncate_to_drops_the_tail() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = small_config(800, 100);
    let mgr = open(dir.path(), cfg.clone());
    let log = mgr
        .get_or_create(&TopicPartition::new("tr", 0), cfg)
        .expect("log");
    for _ in 0..20 {
        append(&log, 2, 100, now_ms());
    }
    log.truncate_to(17).expect("truncate"); // inside batch 16..17: the batch boundary is 16
    assert_eq!(read_all(&log, 0).last(), Some(&(14, 15)));
    assert_eq!(append(&log, 1, 10, now_ms()), (16, 16));
}

#[test]
fn group_commit_shares_flush_rounds() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = small_config(1 << 24, 4096);
    let mgr = open(dir.path(), cfg.clone());
    let logs: Vec<_> = (0..8)
        .map(|p| {
            mgr.get_or_create(&TopicPartition::new("g", p), cfg.clone())
                .expect("log")
        })
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(async {
        let mut tasks = Vec::new();
        for log in logs.clone() {
            tasks.push(tokio::spawn(async move {
                for _ in 0..50 {
                    let v = validate_batches(Bytes::from(make_batch(4, 100, 1)), &log.config(), 1)
                        .expect("valid");
                    let info = log.append(&v, 0).expect("append");
                    log.wait_durable(info.last_offset + 1)
                        .await
                        .expect("durable");
                }
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
    });
    for log in &logs {
        assert_eq!(log.durable_offset(), 200);
    }
    // 400 acknowledged appends; group commit must have merged many into shared rounds.
    assert!(mgr.flush_rounds() < 400, "rounds {}", mgr.flush_rounds());
}

#[test]
fn relaxed_flush_acknowledges_without_fsync() {
    let dir = tempfile::tempdir().expect("tmp");
    let topic = BTreeMap::from([("flush.messages".to_string(), "1000".to_string())]);
    let cfg = Arc::new(LogConfig::build(&BTreeMap::new(), &topic).expect("cfg"));
    let mgr = open(dir.path(), cfg.clone());
    let log = mgr
        .get_or_create(&TopicPartition::new("relaxed", 0), cfg)
        .expect("log");
    let v = validate_batches(Bytes::from(make_batch(2, 10, 1)), &log.config(), 1).expect("valid");
    let info = log.append(&v, 0).expect("append");
    assert!(!info.needs_flush);
    assert_eq!(log.high_watermark(), 2);
    assert_eq!(mgr.flush_rounds(), 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Random batch sizes, small segments and index intervals: every batch reads back intact from
    /// any offset, and the index-assisted position matches a linear scan.
    #[test]
    fn prop_round_trip(sizes in proptest::collection::vec((1i32..6, 1usize..300), 1..60),
                       segment_bytes in 2000u64..6000, interval in 0u64..600) {
        let dir = tempfile::tempdir().expect("tmp");
        let cfg = small_config(segment_bytes, interval);
        let mgr = open(dir.path(), cfg.clone());
        let log = mgr.get_or_create(&TopicPartition::new("p", 0), cfg).expect("log");
        let mut expected = Vec::new();
        for (count, len) in &sizes {
            expected.push(append(&log, *count, *len, now_ms()));
        }
        prop_assert_eq!(read_all(&log, 0), expected.clone());
        for (first, last) in &expected {
            for o in *first..=*last {
                let got = read_all(&log, o);
                prop_assert_eq!(got.first().copied(), Some((*first, *last)));
            }
        }
        // Segment boundaries: each segment starts at a batch's first offset.
        for base in log.segment_base_offsets() {
            prop_assert!(base == 0 || expected.iter().any(|(f, _)| *f == base));
        }
    }
}
