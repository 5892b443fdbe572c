//! The partition-log workload: record batches, the raw `fdatasync` baseline, and a log fixture.
//!
//! The baseline and the log share one temporary root ([`bench_root`]) so they measure the same
//! filesystem; set `STROM_BENCH_DIR` to put that root on another disk.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use strom_log::{
    now_ms, validate_batches, Batches, LogAppendInfo, LogConfig, LogManager, LogManagerConfig,
    PartitionLog, ReadBound, TopicPartition,
};
use tempfile::TempDir;

/// Any failure in a workload; benchmarks abort on it.
pub type BenchError = Box<dyn std::error::Error + Send + Sync>;

/// A fresh temporary directory under `$STROM_BENCH_DIR`, or the system temp dir.
pub fn bench_root() -> io::Result<TempDir> {
    let base = std::env::var_os("STROM_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&base)?;
    tempfile::Builder::new()
        .prefix("strom-bench-")
        .tempdir_in(base)
}

/// One uncompressed v2 batch of `records` records with `value_len`-byte values and no keys,
/// stamped `timestamp` (use [`now_ms`]: old timestamps make the log roll a segment per batch).
pub fn record_batch(records: i32, value_len: usize, timestamp: i64) -> Result<Bytes, BenchError> {
    let records: Vec<Record> = (0..records)
        .map(|i| Record {
            transactional: false,
            control: false,
            partition_leader_epoch: 0,
            delete_horizon: false,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i64::from(i),
            // The encoder starts a new batch whenever offset - sequence changes; base sequence
            // stays -1 (no idempotence), so this keeps every record in one batch.
            sequence: i - 1,
            timestamp,
            key: None,
            value: Some(Bytes::from(
                (0..value_len)
                    .map(|j| (j as u8).wrapping_mul(31).wrapping_add(i as u8))
                    .collect::<Vec<u8>>(),
            )),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )?;
    Ok(buf.freeze())
}

/// The disk's limit for the log's write pattern: append a chunk to a plain file, `fdatasync`,
/// repeat. No group commit, no index, no page-cache tricks.
#[derive(Debug)]
pub struct RawSyncFile {
    file: File,
}

impl RawSyncFile {
    /// Creates (or truncates) `path`.
    pub fn create(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(path)?;
        Ok(RawSyncFile { file })
    }

    /// Appends `chunk` and waits for it to reach the disk.
    pub fn write_sync(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.file.write_all(chunk)?;
        self.file.sync_data()
    }
}

/// A [`LogManager`] in its own directory with `partitions` logs of topic `bench`; shut down
/// cleanly on drop.
#[derive(Debug)]
pub struct LogFixture {
    manager: Arc<LogManager>,
    logs: Vec<Arc<PartitionLog>>,
}

impl LogFixture {
    /// Opens the manager under `dir` (created if needed) with every partition on `config`.
    pub fn open(dir: &Path, partitions: i32, config: Arc<LogConfig>) -> Result<Self, BenchError> {
        let c = config.clone();
        let manager = LogManager::open(LogManagerConfig::new(dir), &move |_| c.clone())?;
        let logs = (0..partitions)
            .map(|p| manager.get_or_create(&TopicPartition::new("bench", p), config.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(LogFixture { manager, logs })
    }

    /// The manager (for [`LogManager::flush_rounds`]).
    pub fn manager(&self) -> &Arc<LogManager> {
        &self.manager
    }

    /// The partition logs, partition 0 first.
    pub fn logs(&self) -> &[Arc<PartitionLog>] {
        &self.logs
    }
}

impl Drop for LogFixture {
    fn drop(&mut self) {
        let _ = self.manager.shutdown();
    }
}

/// What the broker does for one produce of `batch` with acks=all on one node: validate, append,
/// wait for the group-commit fdatasync that covers it.
pub async fn append_durable(
    log: &Arc<PartitionLog>,
    batch: &Bytes,
) -> Result<LogAppendInfo, BenchError> {
    let validated = validate_batches(batch.clone(), &log.config(), now_ms())?;
    let info = log.append(&validated, 0)?;
    if info.needs_flush {
        log.wait_durable(info.last_offset + 1).await?;
    }
    Ok(info)
}

/// Appends `batch` until the log holds at least `bytes`, then flushes; returns the log size.
pub async fn prefill(
    log: &Arc<PartitionLog>,
    batch: &Bytes,
    bytes: u64,
) -> Result<u64, BenchError> {
    while log.size_bytes() < bytes {
        append_durable(log, batch).await?;
    }
    log.flush().await?;
    Ok(log.size_bytes())
}

/// Reads the log from its start to the high watermark as a consumer would: fetches of at most
/// `max_bytes`, copied out with `FileSlice::read_to_vec`, resuming after the last whole batch.
/// Returns the bytes of whole batches read.
pub fn read_all(log: &PartitionLog, max_bytes: u64) -> Result<u64, BenchError> {
    let mut offset = log.log_start_offset();
    let end = log.high_watermark();
    let mut total = 0u64;
    while offset < end {
        let info = log.read(offset, max_bytes, ReadBound::HighWatermark, true)?;
        let Some(slice) = info.records else { break };
        let bytes = slice.read_to_vec()?;
        let mut next = offset;
        for batch in Batches::new(&bytes) {
            // A fetch may end inside a batch; the next one starts over at its beginning.
            let Ok(batch) = batch else { break };
            next = batch.next_offset();
            total += batch.size() as u64;
        }
        if next <= offset {
            return Err(format!("read at offset {offset} returned no whole batch").into());
        }
        offset = next;
    }
    Ok(total)
}
