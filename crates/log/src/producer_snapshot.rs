//! Producer-state snapshot files: `<offset, 20 digits>.snapshot` in the partition directory
//! (Kafka's file name; the format is Strom's own). A snapshot holds the [`ProducerStateManager`]
//! as it was with every batch below `offset` applied and none at or above it. One is written at
//! every segment roll (named after the new segment's base offset, fdatasync'd in the same group
//! commit round as the rolled segment's files) and one at clean shutdown (at the log end).
//!
//! Format, all integers big-endian:
//!
//! ```text
//! version: i16 (= 3; 1 and 2 are still read)
//! crc: u32                  CRC-32C of every byte after this field
//! offset: i64               must equal the file name's offset
//! producer_count: i32
//! producer_count × {
//!   producer_id: i64
//!   epoch: i16
//!   last_timestamp: i64
//!   v3 only: coordinator_epoch: i32   of the producer's last transaction marker (-1: none)
//!   batch_count: i8         1..=5 (v2: 0..=5, a producer fenced by a marker), oldest first
//!   batch_count × { first_seq: i32, last_seq: i32, first_offset: i64, last_offset: i64,
//!                   timestamp: i64 }
//! }
//! v2+: ongoing_count: i32
//! ongoing_count × { producer_id: i64, first_offset: i64 }   open transactions
//! ```
//!
//! A snapshot is written in place, without a rename: a torn or half-written file fails its CRC
//! and the loader falls back to an older snapshot plus a longer scan of the log, never to wrong
//! state. Nothing read from the file is trusted before the CRC and every length check pass.

use std::collections::VecDeque;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{LogError, Result};
use crate::producer_batch::BatchMetadata;
use crate::producer_state::{ProducerStateEntry, ProducerStateManager, NUM_BATCHES_TO_RETAIN};
use crate::segment::parse_file_stem;

const VERSION: i16 = 3;
/// version + crc.
const PREFIX_LEN: usize = 6;
const SUFFIX: &str = "snapshot";

/// Path of the snapshot at `offset`.
pub(crate) fn snapshot_path(dir: &Path, offset: i64) -> PathBuf {
    dir.join(format!("{offset:020}.{SUFFIX}"))
}

/// Offsets of every snapshot file in `dir`, ascending.
pub(crate) fn list_snapshots(dir: &Path) -> Result<Vec<i64>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| LogError::io(dir, e))? {
        let entry = entry.map_err(|e| LogError::io(dir, e))?;
        let name = entry.file_name();
        let Some((stem, ext)) = name.to_str().and_then(|n| n.split_once('.')) else {
            continue;
        };
        if ext == SUFFIX {
            if let Some(o) = parse_file_stem(stem) {
                out.push(o);
            }
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Encodes `state` as the snapshot at `offset`.
pub(crate) fn encode(offset: i64, state: &ProducerStateManager) -> Vec<u8> {
    let entries = state.entries();
    let mut body = Vec::with_capacity(12 + entries.len() * (19 + NUM_BATCHES_TO_RETAIN * 32));
    body.extend_from_slice(&offset.to_be_bytes());
    body.extend_from_slice(&(entries.len() as i32).to_be_bytes());
    for (pid, e) in entries {
        body.extend_from_slice(&pid.to_be_bytes());
        body.extend_from_slice(&e.epoch.to_be_bytes());
        body.extend_from_slice(&e.last_timestamp.to_be_bytes());
        body.extend_from_slice(&e.coordinator_epoch.to_be_bytes());
        let n = e.batches.len().min(NUM_BATCHES_TO_RETAIN);
        body.push(n as u8);
        for b in e.batches.iter().skip(e.batches.len() - n) {
            body.extend_from_slice(&b.first_seq.to_be_bytes());
            body.extend_from_slice(&b.last_seq.to_be_bytes());
            body.extend_from_slice(&b.first_offset.to_be_bytes());
            body.extend_from_slice(&b.last_offset.to_be_bytes());
            body.extend_from_slice(&b.timestamp.to_be_bytes());
        }
    }
    let ongoing = state.ongoing_txns();
    body.extend_from_slice(&(ongoing.len() as i32).to_be_bytes());
    for (pid, first) in ongoing {
        body.extend_from_slice(&pid.to_be_bytes());
        body.extend_from_slice(&first.to_be_bytes());
    }
    let mut out = Vec::with_capacity(PREFIX_LEN + body.len());
    out.extend_from_slice(&VERSION.to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// Why a snapshot file was not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SnapshotError {
    #[error("unsupported snapshot version {0}")]
    Version(i16),
    #[error("snapshot CRC mismatch")]
    Crc,
    #[error("snapshot truncated")]
    Truncated,
    #[error("snapshot invalid: {0}")]
    Invalid(&'static str),
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], SnapshotError> {
        let (head, rest) = self
            .buf
            .split_first_chunk::<N>()
            .ok_or(SnapshotError::Truncated)?;
        self.buf = rest;
        Ok(*head)
    }
    fn i8(&mut self) -> Result<i8, SnapshotError> {
        Ok(i8::from_be_bytes(self.take()?))
    }
    fn i16(&mut self) -> Result<i16, SnapshotError> {
        Ok(i16::from_be_bytes(self.take()?))
    }
    fn i32(&mut self) -> Result<i32, SnapshotError> {
        Ok(i32::from_be_bytes(self.take()?))
    }
    fn i64(&mut self) -> Result<i64, SnapshotError> {
        Ok(i64::from_be_bytes(self.take()?))
    }
}

/// Decodes a snapshot into `(offset, state)`; `expiration_ms` configures the returned manager.
pub(crate) fn decode(
    bytes: &[u8],
    expiration_ms: i64,
) -> Result<(i64, ProducerStateManager), SnapshotError> {
    let mut r = Reader { buf: bytes };
    let version = r.i16()?;
    if !(1..=VERSION).contains(&version) {
        return Err(SnapshotError::Version(version));
    }
    let min_batches = if version == 1 { 1 } else { 0 };
    let crc = u32::from_be_bytes(r.take()?);
    if crc32c::crc32c(r.buf) != crc {
        return Err(SnapshotError::Crc);
    }
    let offset = r.i64()?;
    let count = r.i32()?;
    if count < 0 {
        return Err(SnapshotError::Invalid("negative producer count"));
    }
    let mut state = ProducerStateManager::new(expiration_ms);
    for _ in 0..count {
        let pid = r.i64()?;
        let epoch = r.i16()?;
        let last_timestamp = r.i64()?;
        let coordinator_epoch = if version >= 3 { r.i32()? } else { -1 };
        let n = r.i8()?;
        if !(min_batches..=NUM_BATCHES_TO_RETAIN as i8).contains(&n) {
            return Err(SnapshotError::Invalid("batch count out of range"));
        }
        let mut batches = VecDeque::with_capacity(NUM_BATCHES_TO_RETAIN);
        for _ in 0..n {
            let b = BatchMetadata {
                first_seq: r.i32()?,
                last_seq: r.i32()?,
                first_offset: r.i64()?,
                last_offset: r.i64()?,
                timestamp: r.i64()?,
            };
            if b.first_offset > b.last_offset || b.last_offset >= offset {
                return Err(SnapshotError::Invalid("batch offsets out of range"));
            }
            batches.push_back(b);
        }
        if pid < 0 || state.entry(pid).is_some() {
            return Err(SnapshotError::Invalid("bad or repeated producer id"));
        }
        state.insert(
            pid,
            ProducerStateEntry {
                epoch,
                batches,
                last_timestamp,
                coordinator_epoch,
            },
        );
    }
    if version >= 2 {
        let n = r.i32()?;
        if n < 0 {
            return Err(SnapshotError::Invalid("negative transaction count"));
        }
        for _ in 0..n {
            let pid = r.i64()?;
            let first = r.i64()?;
            if pid < 0 || first < 0 || first >= offset {
                return Err(SnapshotError::Invalid("open transaction out of range"));
            }
            state.insert_ongoing(pid, first);
        }
    }
    if !r.buf.is_empty() {
        return Err(SnapshotError::Invalid("trailing bytes"));
    }
    Ok((offset, state))
}

/// Writes the snapshot at `offset` and returns the open file so the caller can fdatasync it
/// (with `sync`, it is fsync'd here).
pub(crate) fn write(
    dir: &Path,
    offset: i64,
    state: &ProducerStateManager,
    sync: bool,
) -> Result<File> {
    let path = snapshot_path(dir, offset);
    let bytes = encode(offset, state);
    let io = |e| LogError::io(&path, e);
    let mut f = File::create(&path).map_err(io)?;
    f.write_all(&bytes).map_err(io)?;
    if sync {
        f.sync_all().map_err(io)?;
    }
    Ok(f)
}

/// Reads the snapshot at `offset`: `Ok(Err(_))` when the file exists but is unusable.
pub(crate) fn read(
    dir: &Path,
    offset: i64,
    expiration_ms: i64,
) -> Result<Result<ProducerStateManager, SnapshotError>> {
    let path = snapshot_path(dir, offset);
    let bytes = std::fs::read(&path).map_err(|e| LogError::io(&path, e))?;
    Ok(match decode(&bytes, expiration_ms) {
        Ok((o, _)) if o != offset => Err(SnapshotError::Invalid("offset differs from file name")),
        Ok((_, state)) => Ok(state),
        Err(e) => Err(e),
    })
}

/// Deletes the snapshot at `offset` (missing is fine).
pub(crate) fn delete(dir: &Path, offset: i64) -> Result<()> {
    let path = snapshot_path(dir, offset);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(LogError::io(&path, e)),
    }
}
