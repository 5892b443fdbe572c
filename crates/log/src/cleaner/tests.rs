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

/// One batch of a transactional producer: records `(key, value)` from sequence `seq`.
fn txn_batch(pid: i64, seq: i32, recs: &[(&str, &str)]) -> Bytes {
    let now = now_ms();
    let records: Vec<kafka_protocol::records::Record> = recs
        .iter()
        .enumerate()
        .map(|(i, (k, v))| kafka_protocol::records::Record {
            transactional: true,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: pid,
            producer_epoch: 0,
            timestamp_type: kafka_protocol::records::TimestampType::Creation,
            offset: i as i64,
            sequence: seq + i as i32,
            timestamp: now,
            key: Some(Bytes::copy_from_slice(k.as_bytes())),
            value: Some(Bytes::copy_from_slice(v.as_bytes())),
            headers: Default::default(),
        })
        .collect();
    encode_records(&records)
}

/// A transaction marker in Kafka's format (control key version 0, type 0 abort / 1 commit).
fn marker(pid: i64, commit: bool) -> Bytes {
    let record = kafka_protocol::records::Record {
        transactional: true,
        control: true,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id: pid,
        producer_epoch: 0,
        timestamp_type: kafka_protocol::records::TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: now_ms(),
        key: Some(Bytes::from(vec![0, 0, 0, u8::from(commit)])),
        value: Some(Bytes::from(vec![0, 0, 0, 0, 0, 7])),
        headers: Default::default(),
    };
    encode_records(&[record])
}

fn encode_records(records: &[kafka_protocol::records::Record]) -> Bytes {
    let mut buf = bytes::BytesMut::new();
    kafka_protocol::records::RecordBatchEncoder::encode(
        &mut buf,
        records,
        &kafka_protocol::records::RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("encode");
    buf.freeze()
}

fn append_bytes(log: &Arc<PartitionLog>, bytes: Bytes, control: bool) -> i64 {
    let now = now_ms();
    let v = if control {
        validate_control_batches(bytes, &log.config(), now)
    } else {
        validate_batches(bytes, &log.config(), now)
    }
    .expect("valid");
    let info = log.append(&v, 0).expect("append");
    rt().block_on(log.wait_durable(info.last_offset + 1))
        .expect("durable");
    info.first_offset
}

/// Every record below the high watermark: (offset, producer id, control, key, value).
type FullRecord = (i64, i64, bool, Vec<u8>, Option<String>);

fn read_full(log: &PartitionLog) -> Vec<FullRecord> {
    let mut out: Vec<FullRecord> = Vec::new();
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
                    out.push((
                        r.offset,
                        r.producer_id,
                        r.control,
                        r.key.map(|k| k.to_vec()).unwrap_or_default(),
                        r.value.map(|v| String::from_utf8_lossy(&v).into_owned()),
                    ));
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

fn pass_at(log: &Arc<PartitionLog>, first_dirty: i64, now: i64) -> super::clean::CleanResult {
    let view = log.cleanable_view(now_ms()).expect("view");
    let stop = AtomicBool::new(false);
    clean(&CleanParams {
        log,
        segments: &view.segments,
        first_dirty,
        now,
        map_limit: 1 << 20,
        throttler: &Throttler::new(f64::INFINITY),
        stopping: &stop,
    })
    .expect("clean")
}

/// Data records as (key, value) and markers as (producer id, commit?).
type Split = (Vec<(String, String)>, Vec<(i64, bool)>);

fn split(recs: &[FullRecord]) -> Split {
    let mut data = Vec::new();
    let mut markers = Vec::new();
    for (_, pid, control, key, value) in recs {
        if *control {
            markers.push((*pid, key.get(3) == Some(&1)));
        } else {
            data.push((
                String::from_utf8_lossy(key).into_owned(),
                value.clone().unwrap_or_default(),
            ));
        }
    }
    (data, markers)
}

#[test]
fn aborted_data_goes_committed_data_is_deduplicated_markers_outlive_their_data() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = compact_config(&[("delete.retention.ms", "60000")]);
    let tp = TopicPartition::new("t", 0);
    let mgr = open(dir.path(), cfg.clone(), no_cleaner());
    let log = mgr.get_or_create(&tp, cfg.clone()).expect("log");
    let plain = |recs: &[(&str, &str)]| {
        let recs: Vec<(String, Option<String>)> = recs
            .iter()
            .map(|(k, v)| (k.to_string(), Some(v.to_string())))
            .collect();
        append(&log, &recs, Compression::None)
    };
    plain(&[("k1", "p1"), ("k2", "p2"), ("k3", "p3")]); // 0..=2
    append_bytes(&log, txn_batch(10, 0, &[("k1", "c1"), ("k2", "c2")]), false); // 3, 4: committed
    append_bytes(&log, txn_batch(11, 0, &[("k1", "a1"), ("k3", "a3")]), false); // 5, 6: aborted
    append_bytes(&log, txn_batch(11, 2, &[("k4", "a4")]), false); // 7: aborted
    append_bytes(&log, marker(10, true), true); // 8
    append_bytes(&log, marker(11, false), true); // 9
    log.roll().expect("roll");
    append_bytes(&log, txn_batch(12, 0, &[("k5", "c5")]), false); // 10: committed, superseded
    append_bytes(&log, marker(12, true), true); // 11
    plain(&[("k5", "p5")]); // 12
    log.roll().expect("roll");
    // An open transaction: the LSO stays at 13, and a later k2 above it must not clean c2 away.
    let open_at = append_bytes(&log, txn_batch(13, 0, &[("k2", "d2")]), false);
    assert_eq!(open_at, 13);
    plain(&[("k2", "late")]); // 14
    log.roll().expect("roll");
    plain(&[("k6", "active")]); // 15, the active segment
    assert_eq!(log.last_stable_offset(), 13);
    assert_eq!(
        log.all_aborted_transactions()
            .iter()
            .map(|e| (e.producer_id, e.first_offset, e.last_offset))
            .collect::<Vec<_>>(),
        vec![(11, 5, 9)]
    );
    let unstable_before: Vec<FullRecord> =
        read_full(&log).into_iter().filter(|r| r.0 >= 13).collect();

    // Pass 1: aborted data gone, committed data deduplicated, every marker kept (each had data).
    let r1 = pass_at(&log, 0, now_ms());
    assert!(r1.completed);
    assert_eq!(r1.next_dirty, 13, "cleaning stops at the LSO");
    let after1 = read_full(&log);
    let stable: Vec<FullRecord> = after1.iter().filter(|r| r.0 < 13).cloned().collect();
    let (data, markers) = split(&stable);
    assert_eq!(
        data,
        vec![
            ("k3".to_string(), "p3".to_string()), // the aborted a3 does not shadow it
            ("k1".to_string(), "c1".to_string()),
            ("k2".to_string(), "c2".to_string()), // d2/late are above the LSO
            ("k5".to_string(), "p5".to_string()),
        ]
    );
    assert_eq!(markers, vec![(10, true), (11, false), (12, true)]);
    let offsets: Vec<i64> = stable.iter().map(|r| r.0).collect();
    assert_eq!(offsets, vec![2, 3, 4, 8, 9, 11, 12], "offsets kept");
    let unstable_after: Vec<FullRecord> = after1.iter().filter(|r| r.0 >= 13).cloned().collect();
    assert_eq!(
        unstable_after, unstable_before,
        "nothing at or above the LSO touched"
    );
    assert_eq!(
        log.all_aborted_transactions().len(),
        1,
        "its data was there this pass"
    );
    assert!(
        r1.tombstone_deadline < i64::MAX,
        "a marker awaits its horizon"
    );

    // Pass 2, within delete.retention.ms: the markers of empty transactions stay.
    let r2 = pass_at(&log, r1.next_dirty, now_ms());
    assert!(r2.completed);
    assert_eq!(split(&read_full(&log)).1, markers, "markers kept");

    // Pass 3, past delete.retention.ms: the markers of transactions without data go; the commit
    // marker of the transaction whose data remains stays, and the aborted entry goes with its data.
    let later = now_ms() + 120_000;
    let r3 = pass_at(&log, r2.next_dirty, later);
    assert!(r3.completed);
    let after3 = read_full(&log);
    let (data3, markers3) = split(
        &after3
            .iter()
            .filter(|r| r.0 < 13)
            .cloned()
            .collect::<Vec<_>>(),
    );
    assert_eq!(data3, data);
    assert_eq!(markers3, vec![(10, true)]);
    assert!(log.all_aborted_transactions().is_empty());
    assert_eq!(
        after3
            .iter()
            .filter(|r| r.0 >= 13)
            .cloned()
            .collect::<Vec<_>>(),
        unstable_before
    );

    // A restart sees the same log and index (the .txnindex files follow the cleaned segments).
    mgr.shutdown().expect("shutdown");
    drop(log);
    drop(mgr);
    let mgr = open(dir.path(), cfg, no_cleaner());
    let log = mgr.get(&tp).expect("log");
    assert_eq!(read_full(&log), after3);
    assert!(log.all_aborted_transactions().is_empty());
    assert_eq!(log.last_stable_offset(), 13);
}
