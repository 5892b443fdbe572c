//! Start-up over files the log did not write as it expects: stray names, batches whose offsets
//! overflow, oversized indexes. Each must load (or recover) without a panic or a failed open.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use super::{append, open, small_config};
use crate::segment::{parse_file_stem, LogSegment};
use crate::testing::{raw_record, RawBatch};
use crate::*;

/// A batch with a valid CRC whose last offset is past `i64::MAX`.
fn overflowing_batch() -> Vec<u8> {
    let record = raw_record(0, 0, None, Some(b"x"), &[]);
    RawBatch {
        base_offset: i64::MAX - 1,
        last_offset_delta: 5,
        record_count: 6,
        ..RawBatch::default()
    }
    .encode(&record)
}

/// A log directory holding partition `topic-0` with one batch of `count` records, shut down
/// cleanly; returns its config and partition.
fn cleanly_closed_log(dir: &Path, topic: &str, count: i32) -> (Arc<LogConfig>, TopicPartition) {
    let cfg = small_config(1 << 20, 4096);
    let tp = TopicPartition::new(topic, 0);
    let mgr = open(dir, cfg.clone());
    let log = mgr.get_or_create(&tp, cfg.clone()).expect("log");
    append(&log, count, 10, 1000);
    mgr.shutdown().expect("shutdown");
    (cfg, tp)
}

fn append_to_file(path: &Path, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open segment");
    f.write_all(bytes).expect("append");
}

#[test]
fn only_canonical_file_stems_name_offsets() {
    assert_eq!(parse_file_stem("00000000000000000042"), Some(42));
    assert_eq!(
        parse_file_stem("09223372036854775807"),
        Some(i64::MAX),
        "the largest offset"
    );
    for stray in [
        "42",
        "-0000000000000000001",
        "+0000000000000000042",
        "99999999999999999999",
        "",
    ] {
        assert_eq!(parse_file_stem(stray), None, "{stray}");
    }
}

#[test]
fn stray_file_names_do_not_stop_the_log_dir_from_loading() {
    let dir = tempfile::tempdir().expect("tmp");
    let (cfg, tp) = cleanly_closed_log(dir.path(), "stray", 3);
    let part = dir.path().join("stray-0");
    for name in ["5.log", "-1.log", "7.snapshot", "3.txnindex", "9.log.swap"] {
        std::fs::write(part.join(name), b"not ours").expect("stray file");
    }
    let mgr = open(dir.path(), cfg);
    let log = mgr.get(&tp).expect("log reopened");
    assert_eq!(log.log_end_offset(), 3);
}

#[test]
fn a_batch_whose_offsets_overflow_ends_the_scan_after_a_clean_shutdown() {
    let dir = tempfile::tempdir().expect("tmp");
    let (cfg, tp) = cleanly_closed_log(dir.path(), "overflow", 2);
    let seg = dir.path().join("overflow-0/00000000000000000000.log");
    append_to_file(&seg, &overflowing_batch());
    // Clean-shutdown path: the tail is scanned without recovery, then producer state is rebuilt.
    let mgr = open(dir.path(), cfg);
    let log = mgr.get(&tp).expect("log reopened");
    assert_eq!(log.log_end_offset(), 2);
    log.offset_for_timestamp(0).expect("lookup");
}

#[test]
fn recovery_cuts_a_batch_whose_offsets_overflow() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = LogConfig::default();
    let seg = LogSegment::create(dir.path(), 0, &cfg).expect("segment");
    let good = RawBatch::default().encode(&raw_record(0, 0, None, Some(b"a"), &[]));
    drop(seg);
    let path = dir.path().join("00000000000000000000.log");
    append_to_file(&path, &good);
    let bad = overflowing_batch();
    append_to_file(&path, &bad);
    let seg = LogSegment::open(dir.path(), 0, &cfg).expect("open");
    assert_eq!(seg.recover(4096).expect("recover"), bad.len() as u64);
    assert_eq!(seg.next_offset(), 1);
    assert_eq!(seg.size(), good.len() as u64);
    let swap = dir.path().join("00000000000000000000.log.swap");
    std::fs::write(&swap, [good, bad].concat()).expect("swap file");
    assert_eq!(
        LogSegment::swap_next_offset(dir.path(), 0, &cfg).expect("scan"),
        1
    );
}

#[test]
fn an_index_longer_than_segment_index_bytes_is_rebuilt_not_read() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = LogConfig {
        segment_index_bytes: 64,
        index_interval_bytes: 1 << 20,
        ..LogConfig::default()
    };
    drop(LogSegment::create(dir.path(), 0, &cfg).expect("segment"));
    let batch = RawBatch::default().encode(&raw_record(0, 0, None, Some(&[b'v'; 200]), &[]));
    append_to_file(&dir.path().join("00000000000000000000.log"), &batch);
    // Eleven well-formed entries (88 bytes), every position inside the segment.
    let index: Vec<u8> = (1..=11u32)
        .flat_map(|i| [i.to_be_bytes(), (i * 8).to_be_bytes()].concat())
        .collect();
    let index_path = dir.path().join("00000000000000000000.index");
    std::fs::write(&index_path, &index).expect("index");
    std::fs::write(dir.path().join("00000000000000000000.timeindex"), []).expect("timeindex");
    let seg = LogSegment::open(dir.path(), 0, &cfg).expect("open");
    seg.indexes().expect("indexes");
    let rebuilt = std::fs::metadata(&index_path).expect("index").len();
    assert!(rebuilt <= 64, "index rebuilt from the log: {rebuilt} bytes");
}
