//! Sparse indexes of a segment, Kafka's formats: `.index` (offset → file position) and
//! `.timeindex` (max timestamp → offset).
//!
//! Both are derived data. Entries live in memory (a sorted `Vec`) and are written to their file
//! when the segment rolls or the log closes; the rolled segment's index files are fdatasync'd in
//! the same flush round as its log file. After an unclean shutdown the indexes of every segment
//! past the recovery point are rebuilt from the log, and any index that fails its sanity check on
//! load is rebuilt too, so a torn index can never misdirect a read.
//!
//! Thread-safety: an index is appended to by the one appender of its log, and read by any number of
//! readers; each lock is held for a memory operation only, never across I/O.

mod offset_index;
mod time_index;

pub(crate) use offset_index::OffsetIndex;
pub(crate) use time_index::TimeIndex;

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Reads a whole index file, or `None` when it does not exist or is longer than `max_len`
/// (`segment.index.bytes`, which no index of ours outgrows): such a file is rebuilt from the
/// log rather than read into memory whatever its size.
pub(crate) fn read_index_file(path: &Path, max_len: u64) -> io::Result<Option<Vec<u8>>> {
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    if len > max_len {
        return Ok(None);
    }
    let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    // `take`: the file may have grown since its length was read.
    f.take(max_len.saturating_add(1)).read_to_end(&mut buf)?;
    Ok((buf.len() as u64 <= max_len).then_some(buf))
}

/// Replaces an index file with `bytes` (written in place; the caller fsyncs when it matters).
pub(crate) fn write_index_file(path: &Path, bytes: &[u8]) -> io::Result<File> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .read(true)
        .open(path)?;
    f.write_all_at(bytes, 0)?;
    f.set_len(bytes.len() as u64)?;
    Ok(f)
}
