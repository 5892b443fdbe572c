//! Cleaner tests: a pass keeps exactly the latest record per key at its original offset, drops
//!
//! Test-only: declared under #[cfg(test)] by its parent module.
//! tombstones only after a pass and `delete.retention.ms`, shrinks the log; an interrupted swap is
//! completed on start-up; the background threads clean on their own.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::records::{Compression, RecordBatchDecoder};

use super::clean::{clean, CleanParams};
use super::throttle::Throttler;
use crate::segment::CleanedSegmentWriter;
use crate::testing::make_keyed_batch_with;
use crate::*;

fn compact_config(extra: &[(&str, &str)]) -> Arc<LogConfig> {
    let mut topic = BTreeMap::from([
        ("cleanup.policy".to_string(), "compact".to_string()),
        ("segment.bytes".to_string(), "2048".to_string()),
        ("index.interval.bytes".to_string(), "256".to_string()),
    ]);
    for (k, v) in extra {
        topic.insert(k.to_string(), v.to_string());
    }
    Arc::new(LogConfig::build(&BTreeMap::new(), &topic).expect("config"))
}

fn open(dir: &std::path::Path, cfg: Arc<LogConfig>, cleaner: CleanerConfig) -> Arc<LogManager> {
    let mut c = LogManagerConfig::new(dir);
    c.cleaner = cleaner;
    LogManager::open(c, &move |_| cfg.clone()).expect("open")
}

fn no_cleaner() -> CleanerConfig {
    CleanerConfig {
        enabled: false,
        ..Default::default()
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Appends one batch of `(key, value)` records; returns the first offset.
fn append(log: &Arc<PartitionLog>, recs: &[(String, Option<String>)], c: Compression) -> i64 {
    let refs: Vec<(&[u8], Option<&[u8]>)> = recs
        .iter()
        .map(|(k, v)| (k.as_bytes(), v.as_deref().map(str::as_bytes)))
        .collect();
    let now = now_ms();
    let v = validate_batches(
        Bytes::from(make_keyed_batch_with(&refs, now, c)),
        &log.config(),
        now,
    )
    .expect("valid");
    let info = log.append(&v, 0).expect("append");
    rt().block_on(log.wait_durable(info.last_offset + 1))
        .expect("durable");
    info.first_offset
}

/// Every record below the high watermark: (offset, key, value).
fn read_records(log: &PartitionLog) -> Vec<(i64, String, Option<String>)> {
    let mut out = Vec::new();
    let mut from = log.log_start_offset();
    loop {
        let info = log
            .read(from, 1 << 20, ReadBound::HighWatermark, true)
            .expect("read");
        let Some(slice) = info.records else { break };
        let mut bytes = Bytes::from(slice.read_to_vec().expect("bytes"));
        let before = from;
        while bytes.len() >= BATCH_HEADER_LEN {
            let Ok(Some(size)) = batch_size(&bytes) else {
                break;
            };
            if bytes.len() < size {
                break;
            }
            let mut one = bytes.split_to(size);
            let set = RecordBatchDecoder::decode(&mut one).expect("decode");
            for r in set.records {
                if r.offset >= from {
                    let s = |b: Option<Bytes>| b.map(|b| String::from_utf8_lossy(&b).into_owned());
                    out.push((r.offset, s(r.key).unwrap_or_default(), s(r.value)));
                }
            }
            from = out.last().map_or(from, |r| r.0 + 1).max(from);
        }
        if from == before {
            break;
        }
    }
    out
}

/// Writes `rounds` batches of 5 records over `keys` keys (value = "v<round>-<i>"), alternating
/// compression; returns the expected latest value per key.
fn fill(log: &Arc<PartitionLog>, rounds: usize, keys: usize) -> HashMap<String, String> {
    let mut latest = HashMap::new();
    let codecs = [
        Compression::None,
        Compression::Gzip,
        Compression::Lz4,
        Compression::Zstd,
    ];
    for round in 0..rounds {
        let recs: Vec<(String, Option<String>)> = (0..5)
            .map(|i| {
                let k = format!("k{}", (round * 5 + i) % keys);
                let v = format!("v{round}-{i}");
                latest.insert(k.clone(), v.clone());
                (k, Some(v))
            })
            .collect();
        append(log, &recs, codecs[round % codecs.len()]);
    }
    latest
}

fn pass(log: &Arc<PartitionLog>, first_dirty: i64) -> super::clean::CleanResult {
    let view = log.cleanable_view(now_ms()).expect("view");
    let stop = AtomicBool::new(false);
    clean(&CleanParams {
        log,
        segments: &view.segments,
        first_dirty,
        now: now_ms(),
        map_limit: 1 << 20,
        throttler: &Throttler::new(f64::INFINITY),
        stopping: &stop,
    })
    .expect("clean")
}

fn assert_latest(recs: &[(i64, String, Option<String>)], latest: &HashMap<String, String>) {
    let mut seen = HashMap::new();
    for w in recs.windows(2) {
        assert!(w[0].0 < w[1].0, "offsets strictly increase: {w:?}");
    }
    for (_, k, v) in recs {
        assert!(
            seen.insert(k.clone(), v.clone()).is_none(),
            "key {k} appears twice"
        );
    }
    for (k, v) in latest {
        assert_eq!(seen.get(k), Some(&Some(v.clone())), "latest value of {k}");
    }
}

#[test]
fn a_pass_keeps_the_latest_record_per_key_at_its_offset() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = compact_config(&[]);
    let mgr = open(dir.path(), cfg.clone(), no_cleaner());
    let log = mgr
        .get_or_create(&TopicPartition::new("c", 0), cfg)
        .expect("log");
    let latest = fill(&log, 200, 20);
    let before: Vec<_> = read_records(&log);
    let offsets_before: HashMap<(String, Option<String>), i64> = before
        .iter()
        .map(|(o, k, v)| ((k.clone(), v.clone()), *o))
        .collect();
    log.roll().expect("roll");
    let size_before = log.size_bytes();
    let segs_before = log.segment_count();
    let r = pass(&log, 0);
    assert!(r.completed);
    assert_eq!(r.next_dirty, log.log_end_offset());
    let after = read_records(&log);
    assert_eq!(after.len(), 20, "one record per key");
    assert_latest(&after, &latest);
    for (o, k, v) in &after {
        assert_eq!(
            offsets_before.get(&(k.clone(), v.clone())),
            Some(o),
            "offset kept"
        );
    }
    assert!(
        log.size_bytes() < size_before / 5,
        "{} vs {size_before}",
        log.size_bytes()
    );
    // Groups are sized by the segments' sizes before cleaning (as in Kafka): the next pass merges
    // the now small segments.
    let r2 = pass(&log, r.next_dirty);
    assert!(r2.completed);
    assert!(
        log.segment_count() < segs_before / 2,
        "{} vs {segs_before}",
        log.segment_count()
    );
    assert_eq!(read_records(&log), after);
    // Appends and reads still work, and a restart sees the same log.
    append(
        &log,
        &[("k0".into(), Some("new".into()))],
        Compression::None,
    );
    mgr.shutdown().expect("shutdown");
    drop(log);
    drop(mgr);
    let mgr = open(dir.path(), compact_config(&[]), no_cleaner());
    let log = mgr.get(&TopicPartition::new("c", 0)).expect("log");
    let again = read_records(&log);
    assert_eq!(again.len(), 21);
    assert_eq!(
        again.last().map(|r| r.2.clone()),
        Some(Some("new".to_string()))
    );
}

#[test]
fn tombstones_survive_one_pass_then_go_after_delete_retention() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = compact_config(&[("delete.retention.ms", "0")]);
    let mgr = open(dir.path(), cfg.clone(), no_cleaner());
    let log = mgr
        .get_or_create(&TopicPartition::new("c", 0), cfg)
        .expect("log");
    let mut latest = fill(&log, 40, 10);
    append(
        &log,
        &[("k3".into(), None), ("k4".into(), None)],
        Compression::Snappy,
    );
    latest.remove("k3");
    latest.remove("k4");
    log.roll().expect("roll");
    let r = pass(&log, 0);
    assert!(r.tombstone_deadline < i64::MAX, "a tombstone was kept");
    let after = read_records(&log);
    assert_eq!(
        after.iter().filter(|r| r.2.is_none()).count(),
        2,
        "kept once"
    );
    std::thread::sleep(Duration::from_millis(5));
    let r2 = pass(&log, r.next_dirty);
    assert!(r2.completed);
    let after = read_records(&log);
    assert!(
        after.iter().all(|r| r.2.is_some()),
        "tombstones gone: {after:?}"
    );
    assert_eq!(after.len(), 8);
    assert_latest(&after, &latest);
}

#[test]
fn an_interrupted_swap_is_completed_on_start() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = compact_config(&[]);
    let mgr = open(dir.path(), cfg.clone(), no_cleaner());
    let tp = TopicPartition::new("c", 0);
    let log = mgr.get_or_create(&tp, cfg.clone()).expect("log");
    fill(&log, 60, 6);
    log.roll().expect("roll");
    let all = read_records(&log);
    let view = log.cleanable_view(now_ms()).expect("view");
    assert!(view.segments.len() >= 3);
    // Commit a "cleaned" copy of the first two segments (unchanged content) as a .swap, then
    // crash before the swap: no shutdown.
    let mut w = CleanedSegmentWriter::create(log.dir(), view.segments[0].base_offset(), &cfg)
        .expect("writer");
    for s in &view.segments[..2] {
        s.for_each_batch(|loc, b| {
            w.append_batch(b, loc.last_offset, loc.max_timestamp)?;
            Ok(true)
        })
        .expect("copy");
    }
    let _committed = w.commit(log.dir()).expect("commit");
    // A leftover .cleaned from a later, unfinished pass.
    std::fs::write(log.dir().join("00000000000000000099.log.cleaned"), b"junk").expect("junk");
    let dir_path = log.dir().to_path_buf();
    drop(log);
    drop(mgr);
    let mgr = open(dir.path(), cfg, no_cleaner());
    let log = mgr.get(&tp).expect("log");
    assert_eq!(read_records(&log), all, "no loss, no duplicates");
    let leftovers: Vec<String> = std::fs::read_dir(&dir_path)
        .expect("ls")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".swap") || n.ends_with(".cleaned") || n.ends_with(".deleted"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert_eq!(log.segment_count(), view.segments.len()); // two merged into one, plus the active
}

#[test]
fn background_threads_clean_dirty_logs() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = compact_config(&[("min.cleanable.dirty.ratio", "0.1")]);
    let mgr = open(
        dir.path(),
        cfg.clone(),
        CleanerConfig {
            backoff: Duration::from_millis(20),
            ..Default::default()
        },
    );
    let log = mgr
        .get_or_create(&TopicPartition::new("c", 0), cfg)
        .expect("log");
    let latest = fill(&log, 100, 5);
    log.roll().expect("roll");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while read_records(&log).len() > 5 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(mgr.cleaner_stats().passes > 0, "the cleaner ran");
    assert_latest(&read_records(&log), &latest);
    assert!(dir.path().join("cleaner-offset-checkpoint").exists());
    mgr.shutdown().expect("shutdown");
}
