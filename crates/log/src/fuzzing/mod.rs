//! Fuzz targets over what strangers and disks hand the log: record batches (the validator and
//! the bounded record reader) and the on-disk files (indexes, checkpoints, snapshots,
//! transaction indexes, whole partition directories). Built for this crate's tests (a short
//! deterministic run in `tests.rs`) and, with the `fuzzing` feature, for the cargo-fuzz harness
//! in `crates/log/fuzz`; not part of the broker's API.
//!
//! A target must never panic, whatever the bytes: a panic (or an assertion below about what must
//! agree) is the bug the fuzzer reports.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use crate::batch::{BatchView, Batches};
use crate::config::LogConfig;
use crate::flush::{FlushScheduler, LogDir};
use crate::index::{OffsetIndex, TimeIndex};
use crate::partition_log::HighWatermarkPolicy;
use crate::producer_batch::{control_marker, ProducerBatch};
use crate::records::BatchRecords;
use crate::txn_index::AbortedTxn;
use crate::validator::{validate_batches, validate_control_batches};
use crate::TopicPartition;

mod seeds;
#[cfg(test)]
mod tests;

pub use seeds::{
    compress, disk_file_seeds, encode, fix_crcs, partition_dir_seeds, raw_record,
    record_batch_seeds, RawBatch,
};

/// The "now" every target validates against (the seeds' timestamps are near it).
const NOW_MS: i64 = 1_700_000_000_000;
/// The reader's decompression limit in the targets: small, so a bomb costs little per input.
const LIMIT: usize = 1 << 20;

/// A plain and a compacted topic's config.
fn configs() -> &'static (LogConfig, LogConfig) {
    static CONFIGS: OnceLock<(LogConfig, LogConfig)> = OnceLock::new();
    CONFIGS.get_or_init(|| {
        let compact = [("cleanup.policy".to_string(), "compact".to_string())].into();
        let compacted = LogConfig::build(&Default::default(), &compact).unwrap_or_default();
        (LogConfig::default(), compacted)
    })
}

/// Target (a): `validate_batches` / `validate_control_batches` on a plain and a compacted topic,
/// then the bounded reader, the producer-state header reads and the timestamp lookups over every
/// batch. A batch the validator accepted uncompressed must read back whole.
pub fn record_batches(data: &[u8]) {
    let (plain, compacted) = configs();
    let bytes = Bytes::copy_from_slice(data);
    let accepted = validate_batches(bytes.clone(), plain, NOW_MS).is_ok();
    let _ = validate_batches(bytes.clone(), compacted, NOW_MS);
    let _ = validate_control_batches(bytes, compacted, NOW_MS);
    for view in Batches::new(data) {
        let Ok(view) = view else { break };
        let _ = ProducerBatch::from_view(&view);
        let _ = control_marker(view.as_bytes());
        read_every_record(view, accepted && view.compression() == 0);
        let _ = crate::read::first_record_at_or_after(view.as_bytes(), NOW_MS, 0, LIMIT);
        let _ = crate::read::record_with_max_timestamp(view.as_bytes(), LIMIT);
    }
}

/// Reads every record and header of `view`; with `must_read`, any error is a validator bug.
fn read_every_record(view: BatchView<'_>, must_read: bool) {
    let records = match BatchRecords::new(view, LIMIT) {
        Ok(records) => records,
        Err(e) => {
            assert!(!must_read, "validated batch unreadable: {e}");
            return;
        }
    };
    let mut count = 0i64;
    for record in &records {
        match record {
            Ok(r) => {
                count += 1;
                let bytes: usize = r.headers().map(|h| h.key.len()).sum();
                std::hint::black_box((r.key, r.value, bytes));
            }
            Err(e) => {
                assert!(!must_read, "validated batch unreadable: {e}");
                return;
            }
        }
    }
    assert_eq!(
        count,
        i64::from(view.record_count()),
        "records read vs recordCount"
    );
}

/// Target (b1): the on-disk parsers over bytes in memory. The first byte picks the format: the
/// offset index, the time index, a producer snapshot, the leader-epoch checkpoint, an offset
/// checkpoint, transaction-index entries; then lookups on what parsed.
pub fn disk_files(data: &[u8]) {
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    match kind % 6 {
        0 => {
            if let Some(idx) = OffsetIndex::parse(rest, 1 << 20, 1 << 30) {
                for target in [0, 1, 1_000, u32::MAX] {
                    std::hint::black_box(idx.lookup(target));
                }
                idx.truncate_to_position(1 << 10);
                std::hint::black_box(idx.to_bytes());
            }
        }
        1 => {
            if let Some(idx) = TimeIndex::parse(rest, 1 << 20) {
                for target in [i64::MIN, 0, NOW_MS, i64::MAX] {
                    std::hint::black_box(idx.lookup(target));
                }
                std::hint::black_box(idx.last());
                idx.truncate_to_offset(10);
            }
        }
        2 => {
            if let Ok((offset, state)) = crate::producer_snapshot::decode(rest, 60_000) {
                // What was read must encode and decode to the same state.
                let again = crate::producer_snapshot::decode(
                    &crate::producer_snapshot::encode(offset, &state),
                    60_000,
                );
                assert!(again.is_ok(), "snapshot does not round-trip: {again:?}");
            }
        }
        3 => {
            let text = String::from_utf8_lossy(rest);
            if let Some(entries) = crate::leader_epoch::parse(&text) {
                for epoch in [-1, 0, 1, i32::MAX] {
                    std::hint::black_box(crate::end_offset_for_epoch(&entries, epoch, 100));
                }
            }
        }
        4 => {
            std::hint::black_box(crate::checkpoint::parse(&String::from_utf8_lossy(rest)));
        }
        _ => {
            for chunk in rest.chunks(34) {
                std::hint::black_box(AbortedTxn::decode(chunk));
            }
        }
    }
}

/// One scratch directory and flusher per process for [`partition_dir`]; a tmpfs when there is
/// one (fsync is free there).
fn scratch() -> Option<&'static (PathBuf, Arc<FlushScheduler>)> {
    static SCRATCH: OnceLock<Option<(PathBuf, Arc<FlushScheduler>)>> = OnceLock::new();
    SCRATCH
        .get_or_init(|| {
            let shm = Path::new("/dev/shm");
            let root = if shm.is_dir() {
                shm.to_path_buf()
            } else {
                std::env::temp_dir()
            };
            let dir = root.join("strom-log-fuzz");
            std::fs::create_dir_all(&dir).ok()?;
            let flusher = FlushScheduler::start(Arc::new(LogDir::new(dir.clone())), Arc::default());
            Some((dir, flusher))
        })
        .as_ref()
}

/// The files of a partition directory [`partition_dir`] writes, by the kind byte of each chunk.
pub const PARTITION_FILES: [&str; 8] = [
    "00000000000000000000.log",
    "00000000000000000000.index",
    "00000000000000000000.timeindex",
    "00000000000000000010.log",
    "00000000000000000003.snapshot",
    "leader-epoch-checkpoint",
    "00000000000000000000.txnindex",
    "00000000000000000010.log.swap",
];

/// Target (b2): loads a whole partition directory made of fuzzed files, as the log manager does
/// at start-up (swap completion, segment listing, recovery or tail load, indexes, producer
/// snapshots and replay, transaction index, leader-epoch checkpoint), then reads from it.
///
/// Input: chunks of `kind: u8, len: u16 (big-endian), bytes`; kind % 9 < 8 names a file of
/// [`PARTITION_FILES`], kind % 9 == 8 sets the load: bit 0 of its first byte a clean shutdown,
/// then the recovery point and the log start offset (i64 big-endian each).
pub fn partition_dir(data: &[u8]) {
    let Some(loaded) = load_partition_dir(data) else {
        return;
    };
    let log = &loaded.log;
    let end = log.log_end_offset();
    let _ = log.read(0, 1 << 20, crate::ReadBound::LogEnd, true);
    let _ = log.offset_for_timestamp(0);
    let _ = log.max_timestamp_offset();
    std::hint::black_box(log.aborted_transactions(0, end));
}

/// A scratch directory, removed when dropped.
struct ScratchDir(PathBuf);

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A loaded partition directory (the log is dropped before its directory is removed).
struct LoadedDir {
    log: Arc<crate::PartitionLog>,
    _dir: ScratchDir,
}

/// Writes the files `data` describes (see [`partition_dir`]) and loads them; `None` when the
/// load refused them.
fn load_partition_dir(data: &[u8]) -> Option<LoadedDir> {
    let (root, flusher) = scratch()?;
    // One directory per process and thread: the tests run targets side by side.
    let thread = std::thread::current().id();
    let dir = root.join(format!("{}-{thread:?}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).ok()?;
    let scratch = ScratchDir(dir.clone());
    let (mut clean, mut recovery_point, mut log_start) = (false, 0i64, 0i64);
    let mut rest = data;
    while let [kind, l0, l1, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*l0, *l1])).min(tail.len());
        let (bytes, after) = tail.split_at(len);
        rest = after;
        match PARTITION_FILES.get(usize::from(*kind % 9)) {
            Some(name) => {
                let _ = std::fs::write(dir.join(name), bytes);
            }
            None => {
                clean = bytes.first().is_some_and(|b| b & 1 == 1);
                let field = |at: usize| {
                    bytes
                        .get(at..at + 8)
                        .and_then(|b| b.try_into().ok())
                        .map_or(0, i64::from_be_bytes)
                };
                (recovery_point, log_start) = (field(1), field(9));
            }
        }
    }
    let config = Arc::new(configs().1.clone());
    let log = crate::manager::load_log(
        &dir,
        TopicPartition::new("fuzz", 0),
        config,
        clean,
        recovery_point,
        log_start,
        flusher.clone(),
        HighWatermarkPolicy::FollowLocal,
        60_000,
    )
    .ok()?;
    let loaded = LoadedDir { log, _dir: scratch };
    loaded.log.load_producer_state(NOW_MS).ok()?;
    loaded.log.load_leader_epoch_cache().ok()?;
    Some(loaded)
}
