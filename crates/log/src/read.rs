//! The read side's values: `ReadBound`, `FetchDataInfo`, `FileSlice`, and record-level lookups.
//!
//! A read names a byte range of a segment file rather than copying it, so the broker can
//! `sendfile` it to a socket; `FileSlice::read_to_vec` is the copying path for everyone else.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::batch::BatchView;
use crate::error::{LogError, Result};
use crate::records::{BatchRecords, RecordError};

/// How far a read may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadBound {
    /// Consumers: below the high watermark.
    HighWatermark,
    /// Followers (replication): up to the log end.
    LogEnd,
    /// `read_committed` consumers: below the last stable offset (the first offset of the oldest
    /// open transaction, or the high watermark).
    LastStable,
}

/// A byte range of a segment file, kept open by the `Arc` even if the segment is deleted.
#[derive(Debug, Clone)]
pub struct FileSlice {
    file: Arc<File>,
    path: PathBuf,
    position: u64,
    len: u64,
}

impl FileSlice {
    pub(crate) fn new(file: Arc<File>, path: PathBuf, position: u64, len: u64) -> Self {
        FileSlice {
            file,
            path,
            position,
            len,
        }
    }
    /// The open file (for sendfile).
    pub fn file(&self) -> &File {
        &self.file
    }
    /// Start position in the file.
    pub fn position(&self) -> u64 {
        self.position
    }
    /// Length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Copies the range into memory (the non-sendfile path).
    pub fn read_to_vec(&self) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; self.len as usize];
        self.file
            .read_exact_at(&mut buf, self.position)
            .map_err(|e| LogError::io(&self.path, e))?;
        Ok(buf)
    }
}

/// The result of a read.
#[derive(Debug, Clone)]
pub struct FetchDataInfo {
    /// The batches, if any are available below the bound. The last one may be cut short by the
    /// byte limit (as Kafka does; clients drop a partial trailing batch).
    pub records: Option<FileSlice>,
    /// High watermark at the time of the read.
    pub high_watermark: i64,
    /// Log start offset at the time of the read.
    pub log_start_offset: i64,
    /// Log end offset at the time of the read.
    pub log_end_offset: i64,
}

/// Offset and timestamp of the first record in `batch` whose timestamp is ≥ `target` and whose
/// offset is ≥ `min_offset`, reading (and decompressing, within `limit` bytes) the one batch.
pub(crate) fn first_record_at_or_after(
    batch: &[u8],
    target: i64,
    min_offset: i64,
    limit: usize,
) -> std::result::Result<Option<(i64, i64)>, RecordError> {
    let view = BatchView::parse(batch).map_err(|_| RecordError::Corrupt("unreadable batch"))?;
    for r in &BatchRecords::new(view, limit)? {
        let r = r?;
        if r.timestamp >= target && r.offset >= min_offset {
            return Ok(Some((r.offset, r.timestamp)));
        }
    }
    Ok(None)
}

/// Offset and timestamp of the record with the largest timestamp in `batch` (first on ties);
/// `None` when the batch's records cannot be read within `limit` bytes.
pub(crate) fn record_with_max_timestamp(batch: &[u8], limit: usize) -> Option<(i64, i64)> {
    let records = BatchRecords::new(BatchView::parse(batch).ok()?, limit).ok()?;
    let mut best: Option<(i64, i64)> = None;
    for r in &records {
        let r = r.ok()?;
        if best.is_none_or(|(_, t)| r.timestamp > t) {
            best = Some((r.offset, r.timestamp));
        }
    }
    best
}
