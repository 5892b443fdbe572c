//! `LogError`: the one error type of the storage crate. The broker maps it to Kafka error codes.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in a partition log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// An I/O error other than the special cases below.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The disk is full (ENOSPC / EDQUOT). The append did not happen.
    #[error("disk full writing {path}")]
    DiskFull {
        /// The file being written.
        path: PathBuf,
    },
    /// A segment failed validation where no recovery is possible (not the tail).
    #[error("corrupt segment {path}: {reason}")]
    CorruptSegment {
        /// The segment file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// A batch handed to `append` is not a valid v2 record batch.
    #[error("invalid record batch: {0}")]
    InvalidBatch(#[from] crate::batch::BatchError),
    /// A requested offset is outside `[log_start_offset, log_end_offset]`.
    #[error("offset {offset} out of range [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        /// The offset asked for.
        offset: i64,
        /// The current log start offset.
        log_start_offset: i64,
        /// The current log end offset.
        log_end_offset: i64,
    },
    /// The log directory was taken offline after a failed fsync or write: nothing on it is
    /// acknowledged any more (the fsyncgate rule: never retry an fsync and pretend it worked).
    #[error("log directory {0} is offline")]
    LogDirOffline(PathBuf),
    /// A batch is larger than the segment can ever hold.
    #[error("record batch of {size} bytes is larger than the segment size {segment_bytes}")]
    BatchTooLarge {
        /// The batch size.
        size: usize,
        /// The configured `segment.bytes`.
        segment_bytes: u64,
    },
    /// A topic-level config had an invalid value.
    #[error("invalid value {value:?} for config {name}: {reason}")]
    InvalidConfig {
        /// The Kafka config name.
        name: String,
        /// The rejected value.
        value: String,
        /// Why.
        reason: String,
    },
    /// An idempotent batch failed the producer-state check (sequence, epoch, unknown producer).
    #[error(transparent)]
    Producer(#[from] crate::producer_state::ProducerStateError),
    /// A follower append does not continue the log: its first new batch starts below the log
    /// end while ending at or past it (Kafka's `UnexpectedAppendOffsetException`).
    #[error("follower append starts at offset {got}, but the log ends at {expected}")]
    NonContiguousFollowerAppend {
        /// The log end offset.
        expected: i64,
        /// The base offset of the first batch not already in the log.
        got: i64,
    },
    /// The log was deleted or closed while the operation ran.
    #[error("log {0} is closed")]
    Closed(String),
}

impl LogError {
    /// Wraps an `io::Error`, classifying disk-full conditions.
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        let path = path.into();
        match source.raw_os_error() {
            Some(libc::ENOSPC) | Some(libc::EDQUOT) => LogError::DiskFull { path },
            _ => LogError::Io { path, source },
        }
    }
}

/// Result alias for the storage crate.
pub type Result<T, E = LogError> = std::result::Result<T, E>;
