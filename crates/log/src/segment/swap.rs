//! Cleaned segments: written beside the live ones and swapped in crash-safely, as Kafka does.
//!
//! The cleaner writes `<base>.log.cleaned` (+ `.index.cleaned`, `.timeindex.cleaned`), fsyncs them,
//! renames all three to `.swap` and fsyncs the directory: that rename is the commit point. The
//! swap then renames the replaced segments' files to `.deleted`, the swap indexes and finally the
//! swap log to their live names, and removes the `.deleted` files. Recovery
//! ([`crate::cleaner::complete_swaps`]) deletes `.cleaned` and `.deleted` leftovers and finishes
//! any `.swap`: the replaced segments are those whose base offset lies in
//! `[swap base, swap next offset]`.
//!
//! Readers holding an `Arc` of a replaced segment keep reading it: its file descriptor stays valid
//! after the rename and unlink, and its indexes are loaded into memory before the swap (they are
//! looked up by path, and the path then names the new segment's index).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

use super::{file_stem, BatchLocation, Indexes, LogSegment};
use crate::config::LogConfig;
use crate::error::{LogError, Result};
use crate::index::{write_index_file, OffsetIndex, TimeIndex};

/// Suffix of a cleaned segment still being written.
pub(crate) const CLEANED_SUFFIX: &str = ".cleaned";
/// Suffix of a cleaned segment committed but not yet renamed into place.
pub(crate) const SWAP_SUFFIX: &str = ".swap";
/// Suffix of a replaced segment file awaiting removal.
pub(crate) const DELETED_SUFFIX: &str = ".deleted";

fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Builds one cleaned segment. Not thread-safe: one cleaner thread owns it.
#[derive(Debug)]
pub(crate) struct CleanedSegmentWriter {
    base_offset: i64,
    paths: [PathBuf; 3],
    file: File,
    size: u64,
    indexes: Indexes,
    index_interval: u64,
    index_max_bytes: u64,
    since_index: u64,
    max_ts: i64,
    max_ts_offset: i64,
    first_ts: Option<i64>,
    next_offset: Option<i64>,
}

impl CleanedSegmentWriter {
    /// Creates (truncating any leftover) `<base>.log.cleaned` in `dir`.
    pub(crate) fn create(dir: &Path, base_offset: i64, config: &LogConfig) -> Result<Self> {
        let (log, index, time) = LogSegment::paths(dir, base_offset);
        let path = with_suffix(&log, CLEANED_SUFFIX);
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| LogError::io(&path, e))?;
        Ok(CleanedSegmentWriter {
            base_offset,
            paths: [log, index, time],
            file,
            size: 0,
            indexes: Indexes {
                offset: OffsetIndex::new(config.segment_index_bytes),
                time: TimeIndex::new(config.segment_index_bytes),
            },
            index_interval: config.index_interval_bytes,
            index_max_bytes: config.segment_index_bytes,
            since_index: 0,
            max_ts: -1,
            max_ts_offset: -1,
            first_ts: None,
            next_offset: None,
        })
    }

    /// Bytes written so far.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Appends one whole batch (its header already holds its final offsets).
    pub(crate) fn append_batch(
        &mut self,
        bytes: &[u8],
        last_offset: i64,
        max_timestamp: i64,
    ) -> Result<()> {
        let path = with_suffix(&self.paths[0], CLEANED_SUFFIX);
        self.file
            .write_all_at(bytes, self.size)
            .map_err(|e| LogError::io(&path, e))?;
        if self.first_ts.is_none() {
            self.first_ts = Some(max_timestamp);
        }
        if max_timestamp > self.max_ts {
            self.max_ts = max_timestamp;
            self.max_ts_offset = last_offset;
        }
        if self.since_index > self.index_interval {
            let rel = (last_offset - self.base_offset).clamp(0, i64::from(u32::MAX)) as u32;
            self.indexes.offset.append(rel, self.size as u32);
            let ts_rel =
                (self.max_ts_offset - self.base_offset).clamp(0, i64::from(u32::MAX)) as u32;
            self.indexes.time.maybe_append(self.max_ts, ts_rel);
            self.since_index = 0;
        }
        self.since_index += bytes.len() as u64;
        self.size += bytes.len() as u64;
        self.next_offset = Some(last_offset + 1);
        Ok(())
    }

    /// Makes the cleaned files durable and renames them to `.swap` (the commit point). Returns the
    /// segment as it will be once swapped in: its path is the live name, its file the swap file.
    pub(crate) fn commit(self, dir: &Path) -> Result<LogSegment> {
        if self.max_ts >= 0 {
            let rel = (self.max_ts_offset - self.base_offset).clamp(0, i64::from(u32::MAX));
            self.indexes.time.maybe_append(self.max_ts, rel as u32);
        }
        let cleaned: Vec<PathBuf> = self
            .paths
            .iter()
            .map(|p| with_suffix(p, CLEANED_SUFFIX))
            .collect();
        self.file
            .sync_data()
            .map_err(|e| LogError::io(&cleaned[0], e))?;
        for (p, bytes) in [
            (&cleaned[1], self.indexes.offset.to_bytes()),
            (&cleaned[2], self.indexes.time.to_bytes()),
        ] {
            write_index_file(p, &bytes)
                .and_then(|f| f.sync_data())
                .map_err(|e| LogError::io(p, e))?;
        }
        for (from, live) in cleaned.iter().zip(&self.paths) {
            let to = with_suffix(live, SWAP_SUFFIX);
            std::fs::rename(from, &to).map_err(|e| LogError::io(from, e))?;
        }
        crate::durable_file::fsync_dir(dir)?;
        let seg = LogSegment {
            base_offset: self.base_offset,
            log_path: self.paths[0].clone(),
            file: Arc::new(self.file),
            size: AtomicU64::new(self.size),
            next_offset: AtomicI64::new(self.next_offset.unwrap_or(self.base_offset)),
            max_timestamp: AtomicI64::new(self.max_ts),
            offset_of_max_timestamp: AtomicI64::new(self.max_ts_offset),
            first_batch_timestamp: AtomicI64::new(self.first_ts.unwrap_or(-1)),
            indexes: OnceLock::new(),
            index_max_bytes: self.index_max_bytes,
            index_interval: self.index_interval,
            append: Mutex::new(None),
        };
        let _ = seg.indexes.set(self.indexes);
        Ok(seg)
    }

    /// Gives up: removes the `.cleaned` files.
    pub(crate) fn abort(self) {
        for p in &self.paths {
            let _ = std::fs::remove_file(with_suffix(p, CLEANED_SUFFIX));
        }
    }
}

impl LogSegment {
    /// Renames this (replaced) segment's files to `.deleted`; returns the new paths.
    pub(crate) fn rename_to_deleted(&self) -> Result<Vec<PathBuf>> {
        let (log, index, time) = Self::paths(self.dir(), self.base_offset);
        let mut out = Vec::new();
        for p in [index, time, log] {
            let to = with_suffix(&p, DELETED_SUFFIX);
            match std::fs::rename(&p, &to) {
                Ok(()) => out.push(to),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(LogError::io(&p, e)),
            }
        }
        Ok(out)
    }

    /// Renames this (committed) cleaned segment's `.swap` files to their live names, log last.
    pub(crate) fn complete_swap(&self) -> Result<()> {
        let (log, index, time) = Self::paths(self.dir(), self.base_offset);
        for p in [index, time, log] {
            let from = with_suffix(&p, SWAP_SUFFIX);
            std::fs::rename(&from, &p).map_err(|e| LogError::io(&from, e))?;
        }
        Ok(())
    }

    /// Removes this (committed, not swapped in) segment's `.swap` files.
    pub(crate) fn discard_swap(&self) {
        let (log, index, time) = Self::paths(self.dir(), self.base_offset);
        for p in [index, time, log] {
            let _ = std::fs::remove_file(with_suffix(&p, SWAP_SUFFIX));
        }
    }

    /// Reads batches `[0, size)` in chunks of about 1 MiB and hands each batch's location and
    /// bytes to `visit` (which returns false to stop).
    pub(crate) fn for_each_batch(
        &self,
        mut visit: impl FnMut(&BatchLocation, &[u8]) -> Result<bool>,
    ) -> Result<()> {
        const CHUNK: u64 = 1 << 20;
        let mut locs: Vec<BatchLocation> = Vec::new();
        self.scan(0, self.size(), false, |l| {
            locs.push(*l);
            true
        })?;
        let mut i = 0;
        while i < locs.len() {
            let start = locs[i].position;
            let mut j = i + 1;
            while j < locs.len()
                && locs[j].position + locs[j].size - start <= CHUNK
                && locs[j].position == locs[j - 1].position + locs[j - 1].size
            {
                j += 1;
            }
            let end = locs[j - 1].position + locs[j - 1].size;
            let buf = self.read_bytes(start, (end - start) as usize)?;
            for loc in &locs[i..j] {
                let from = (loc.position - start) as usize;
                let bytes = &buf[from..from + loc.size as usize];
                if !visit(loc, bytes)? {
                    return Ok(());
                }
            }
            i = j;
        }
        Ok(())
    }

    /// The next offset of a `.log.swap` file found at start-up (CRC-checked scan).
    pub(crate) fn swap_next_offset(
        dir: &Path,
        base_offset: i64,
        config: &LogConfig,
    ) -> Result<i64> {
        let path = dir.join(format!("{}.log{SWAP_SUFFIX}", file_stem(base_offset)));
        let file = File::open(&path).map_err(|e| LogError::io(&path, e))?;
        let len = file.metadata().map_err(|e| LogError::io(&path, e))?.len();
        let seg = Self::from_file(path, file, base_offset, config, len)?;
        let mut next = base_offset;
        seg.scan(0, len, true, |l| {
            next = l.last_offset + 1;
            true
        })?;
        Ok(next)
    }
}
