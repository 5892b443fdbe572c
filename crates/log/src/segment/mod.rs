//! `LogSegment`: one `.log` file of record batches plus its `.index` and `.timeindex`.
//!
//! File names are the segment's base offset, zero-padded to 20 digits (Kafka's layout). The log
//! file holds batches back to back exactly as producers sent them (only `baseOffset` and
//! `partitionLeaderEpoch` rewritten). Bytes up to `size` are complete batches; readers never look
//! past `size`, which the appender advances only after its write returned.
//!
//! Thread-safety: one appender (serialised by `PartitionLog`) and any number of readers. Reads use
//! `pread`, writes go through the appender's own cursor, so neither blocks the other.

use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

mod scan;
mod swap;
use crate::config::LogConfig;
use crate::error::{LogError, Result};
use crate::index::{read_index_file, write_index_file, OffsetIndex, TimeIndex};
pub(crate) use swap::{CleanedSegmentWriter, CLEANED_SUFFIX, DELETED_SUFFIX, SWAP_SUFFIX};

/// File name stem for a base offset: 20 zero-padded digits.
pub(crate) fn file_stem(base_offset: i64) -> String {
    format!("{base_offset:020}")
}

/// The offset a file stem names, accepted only in the form [`file_stem`] writes (20 ASCII
/// digits). Any other name (`5.log`, `-1.snapshot`) is not ours: every reader opens files by
/// the canonical name of the offset it parsed, so a stray one must be passed over, not opened as
/// a name that does not exist (which failed the whole log directory's load).
pub(crate) fn parse_file_stem(stem: &str) -> Option<i64> {
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// The sparse indexes of a segment, loaded lazily so start-up reads no index it does not use.
#[derive(Debug)]
pub(crate) struct Indexes {
    pub(crate) offset: OffsetIndex,
    pub(crate) time: TimeIndex,
}

/// State only the appender changes; kept behind a mutex held for memory updates only.
#[derive(Debug)]
struct AppendState {
    /// Write cursor handle (a second descriptor of the log file).
    writer: File,
    bytes_since_last_index: u64,
}

/// One segment of a partition log.
#[derive(Debug)]
pub struct LogSegment {
    base_offset: i64,
    log_path: PathBuf,
    file: Arc<File>,
    /// Committed size: bytes `[0, size)` are whole batches visible to readers.
    size: AtomicU64,
    /// The offset after the last batch in this segment (`base_offset` when empty).
    next_offset: AtomicI64,
    /// Largest batch max timestamp seen, and the last offset of that batch.
    max_timestamp: AtomicI64,
    offset_of_max_timestamp: AtomicI64,
    /// Max timestamp of the first batch (Kafka rolls on `segment.ms` from it); -1 when empty.
    first_batch_timestamp: AtomicI64,
    indexes: OnceLock<Indexes>,
    index_max_bytes: u64,
    /// `index.interval.bytes` when the segment was opened (used when rebuilding its indexes).
    index_interval: u64,
    append: Mutex<Option<AppendState>>,
}

/// A batch header located in a segment file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchLocation {
    pub(crate) position: u64,
    pub(crate) size: u64,
    pub(crate) base_offset: i64,
    pub(crate) last_offset: i64,
    pub(crate) max_timestamp: i64,
}

impl LogSegment {
    fn paths(dir: &Path, base_offset: i64) -> (PathBuf, PathBuf, PathBuf) {
        let stem = file_stem(base_offset);
        (
            dir.join(format!("{stem}.log")),
            dir.join(format!("{stem}.index")),
            dir.join(format!("{stem}.timeindex")),
        )
    }

    /// Creates an empty segment (the caller fsyncs the directory before acknowledging data in it).
    pub(crate) fn create(dir: &Path, base_offset: i64, config: &LogConfig) -> Result<LogSegment> {
        let index_max_bytes = config.segment_index_bytes;
        let (log_path, _, _) = Self::paths(dir, base_offset);
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&log_path)
            .map_err(|e| LogError::io(&log_path, e))?;
        let seg = Self::from_file(log_path, file, base_offset, config, 0)?;
        let _ = seg.indexes.set(Indexes {
            offset: OffsetIndex::new(index_max_bytes),
            time: TimeIndex::new(index_max_bytes),
        });
        Ok(seg)
    }

    /// Opens an existing segment without reading it: the size comes from the file length and the
    /// end offset from the last batch, found from the index (or a scan when `recover` runs later).
    pub(crate) fn open(dir: &Path, base_offset: i64, config: &LogConfig) -> Result<LogSegment> {
        let (log_path, _, _) = Self::paths(dir, base_offset);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&log_path)
            .map_err(|e| LogError::io(&log_path, e))?;
        let len = file
            .metadata()
            .map_err(|e| LogError::io(&log_path, e))?
            .len();
        Self::from_file(log_path, file, base_offset, config, len)
    }

    fn from_file(
        log_path: PathBuf,
        file: File,
        base_offset: i64,
        config: &LogConfig,
        len: u64,
    ) -> Result<LogSegment> {
        Ok(LogSegment {
            base_offset,
            log_path,
            file: Arc::new(file),
            size: AtomicU64::new(len),
            next_offset: AtomicI64::new(base_offset),
            max_timestamp: AtomicI64::new(-1),
            offset_of_max_timestamp: AtomicI64::new(-1),
            first_batch_timestamp: AtomicI64::new(-1),
            indexes: OnceLock::new(),
            index_max_bytes: config.segment_index_bytes,
            index_interval: config.index_interval_bytes,
            append: Mutex::new(None),
        })
    }

    /// First offset this segment may hold.
    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }
    /// Committed size in bytes.
    pub fn size(&self) -> u64 {
        self.size.load(Ordering::Acquire)
    }
    /// The offset after the last batch in this segment.
    pub fn next_offset(&self) -> i64 {
        self.next_offset.load(Ordering::Acquire)
    }
    /// Largest timestamp in the segment (-1 when empty or unknown).
    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp.load(Ordering::Acquire)
    }
    pub(crate) fn offset_of_max_timestamp(&self) -> i64 {
        self.offset_of_max_timestamp.load(Ordering::Acquire)
    }
    pub(crate) fn first_batch_timestamp(&self) -> i64 {
        self.first_batch_timestamp.load(Ordering::Acquire)
    }
    /// The segment's log file path.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }
    pub(crate) fn file(&self) -> &Arc<File> {
        &self.file
    }

    fn dir(&self) -> &Path {
        self.log_path.parent().unwrap_or(Path::new("."))
    }

    /// The indexes, loading (or rebuilding when missing or damaged) on first use.
    pub(crate) fn indexes(&self) -> Result<&Indexes> {
        if let Some(i) = self.indexes.get() {
            return Ok(i);
        }
        let loaded = self.load_indexes()?;
        let _ = self.indexes.set(loaded);
        self.indexes
            .get()
            .ok_or_else(|| LogError::Closed(self.log_path.display().to_string()))
    }

    fn load_indexes(&self) -> Result<Indexes> {
        let (_, ipath, tpath) = Self::paths(self.dir(), self.base_offset);
        let size = self.size();
        let max = self.index_max_bytes;
        let off = read_index_file(&ipath, max).map_err(|e| LogError::io(&ipath, e))?;
        let time = read_index_file(&tpath, max).map_err(|e| LogError::io(&tpath, e))?;
        let parsed = match (off, time) {
            (Some(o), Some(t)) => OffsetIndex::parse(&o, self.index_max_bytes, size.max(1))
                .zip(TimeIndex::parse(&t, self.index_max_bytes)),
            _ => None,
        };
        match parsed {
            Some((offset, time)) => Ok(Indexes { offset, time }),
            None if size == 0 => Ok(Indexes {
                offset: OffsetIndex::new(self.index_max_bytes),
                time: TimeIndex::new(self.index_max_bytes),
            }),
            None => {
                tracing::warn!(segment = %self.log_path.display(), "index missing or damaged; rebuilding from the log");
                let rebuilt = self.rebuild_indexes(self.index_interval)?;
                self.write_indexes(&rebuilt)?;
                Ok(rebuilt)
            }
        }
    }

    /// Scans every batch header and builds fresh indexes (no CRC check: for a segment known good).
    fn rebuild_indexes(&self, interval: u64) -> Result<Indexes> {
        let idx = Indexes {
            offset: OffsetIndex::new(self.index_max_bytes),
            time: TimeIndex::new(self.index_max_bytes),
        };
        let mut since = 0u64;
        let mut max_ts = -1i64;
        let mut max_ts_off = -1i64;
        self.scan(0, self.size(), false, |loc| {
            if loc.max_timestamp > max_ts {
                max_ts = loc.max_timestamp;
                max_ts_off = loc.last_offset;
            }
            if since > interval {
                self.index_entry(&idx, loc, max_ts, max_ts_off);
                since = 0;
            }
            since += loc.size;
            true
        })?;
        Ok(idx)
    }

    fn index_entry(&self, idx: &Indexes, loc: &BatchLocation, max_ts: i64, max_ts_off: i64) {
        let rel = (loc.last_offset - self.base_offset).clamp(0, i64::from(u32::MAX)) as u32;
        idx.offset.append(rel, loc.position as u32);
        let ts_rel = (max_ts_off - self.base_offset).clamp(0, i64::from(u32::MAX)) as u32;
        idx.time.maybe_append(max_ts, ts_rel);
    }

    /// Writes both index files from memory (no fsync; the caller decides) and returns them open
    /// (offset index, time index), for a caller that fsyncs them.
    pub(crate) fn write_indexes(&self, idx: &Indexes) -> Result<[File; 2]> {
        let (_, ipath, tpath) = Self::paths(self.dir(), self.base_offset);
        let offset = write_index_file(&ipath, &idx.offset.to_bytes())
            .map_err(|e| LogError::io(&ipath, e))?;
        let time =
            write_index_file(&tpath, &idx.time.to_bytes()).map_err(|e| LogError::io(&tpath, e))?;
        Ok([offset, time])
    }

    /// Persists the indexes and returns the files a flush round must fdatasync to make this
    /// segment durable as a closed segment.
    pub(crate) fn close_for_roll(&self) -> Result<Vec<Arc<File>>> {
        let idx = self.indexes()?;
        // A final time-index entry so the segment's largest timestamp survives a restart.
        let max_ts = self.max_timestamp();
        if max_ts >= 0 {
            let rel =
                (self.offset_of_max_timestamp() - self.base_offset).clamp(0, i64::from(u32::MAX));
            idx.time.maybe_append(max_ts, rel as u32);
        }
        let [offset_index, time_index] = self.write_indexes(idx)?;
        *self.append.lock() = None;
        Ok(vec![
            self.file.clone(),
            Arc::new(offset_index),
            Arc::new(time_index),
        ])
    }

    /// Reads `len` bytes at `position` into a fresh buffer.
    pub(crate) fn read_bytes(&self, position: u64, len: usize) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; len];
        self.read_exact_at(&mut buf, position)?;
        Ok(buf)
    }

    /// Loads the end-of-segment state of a segment known to be intact (clean shutdown): finds the
    /// last batch by scanning headers from the last index entry, and the max timestamp from the
    /// time index.
    pub(crate) fn load_tail_state(&self) -> Result<()> {
        let size = self.size();
        let start = {
            let idx = self.indexes()?;
            u64::from(idx.offset.lookup(u32::MAX).position)
        };
        let mut last: Option<BatchLocation> = None;
        let mut first_ts: Option<i64> = None;
        if start > 0 {
            self.scan(0, size, false, |loc| {
                first_ts = Some(loc.max_timestamp);
                false
            })?;
        }
        let mut max_ts = -1;
        let mut max_off = -1;
        self.scan(start, size, false, |loc| {
            if first_ts.is_none() {
                first_ts = Some(loc.max_timestamp);
            }
            if loc.max_timestamp > max_ts {
                max_ts = loc.max_timestamp;
                max_off = loc.last_offset;
            }
            last = Some(*loc);
            true
        })?;
        if let Some(idx) = self.indexes.get() {
            // The time index holds the max over earlier batches.
            let entries_max = idx.time.last();
            if let Some(e) = entries_max {
                if e.timestamp > max_ts {
                    max_ts = e.timestamp;
                    max_off = self
                        .base_offset
                        .saturating_add(i64::from(e.relative_offset));
                }
            }
        }
        self.set_tail(last.map(|l| l.last_offset + 1), first_ts, max_ts, max_off);
        Ok(())
    }

    fn set_tail(&self, next: Option<i64>, first_ts: Option<i64>, max_ts: i64, max_off: i64) {
        self.next_offset
            .store(next.unwrap_or(self.base_offset), Ordering::Release);
        self.first_batch_timestamp
            .store(first_ts.unwrap_or(-1), Ordering::Release);
        self.max_timestamp.store(max_ts, Ordering::Release);
        self.offset_of_max_timestamp
            .store(max_off, Ordering::Release);
    }

    /// Re-validates every batch (CRC-32C, length, offsets), truncates a torn or corrupt tail and
    /// rebuilds the indexes. Returns the number of bytes cut.
    pub(crate) fn recover(&self, index_interval: u64) -> Result<u64> {
        let size = self.size();
        let idx = Indexes {
            offset: OffsetIndex::new(self.index_max_bytes),
            time: TimeIndex::new(self.index_max_bytes),
        };
        let mut since = 0u64;
        let mut max_ts = -1i64;
        let mut max_off = -1i64;
        let mut first_ts = None;
        let mut next = None;
        let mut prev_next = self.base_offset;
        let valid_end = self.scan(0, size, true, |loc| {
            if loc.base_offset < prev_next {
                return false; // offsets must grow; anything else is garbage
            }
            prev_next = loc.last_offset + 1;
            if first_ts.is_none() {
                first_ts = Some(loc.max_timestamp);
            }
            if loc.max_timestamp > max_ts {
                max_ts = loc.max_timestamp;
                max_off = loc.last_offset;
            }
            if since > index_interval {
                self.index_entry(&idx, loc, max_ts, max_off);
                since = 0;
            }
            since += loc.size;
            next = Some(loc.last_offset + 1);
            true
        })?;
        let cut = size - valid_end;
        if cut > 0 {
            self.file
                .set_len(valid_end)
                .map_err(|e| LogError::io(&self.log_path, e))?;
            self.file
                .sync_all()
                .map_err(|e| LogError::io(&self.log_path, e))?;
            self.size.store(valid_end, Ordering::Release);
        }
        self.write_indexes(&idx)?;
        let _ = self.indexes.set(idx);
        self.set_tail(next, first_ts, max_ts, max_off);
        Ok(cut)
    }

    /// Writes batches (already given their offsets) at the end of the segment. `slices` are the
    /// batch bytes in pieces (header prefix + body) so the producer's buffer is written as is.
    pub(crate) fn append(
        &self,
        slices: &mut [IoSlice<'_>],
        total: u64,
        batches: &[crate::validator::AppendedBatch],
        index_interval: u64,
    ) -> Result<()> {
        let start = self.size();
        {
            let mut guard = self.append.lock();
            if guard.is_none() {
                let mut writer = OpenOptions::new()
                    .write(true)
                    .open(&self.log_path)
                    .map_err(|e| LogError::io(&self.log_path, e))?;
                writer
                    .seek(SeekFrom::Start(start))
                    .map_err(|e| LogError::io(&self.log_path, e))?;
                *guard = Some(AppendState {
                    writer,
                    bytes_since_last_index: 0,
                });
            }
        }
        // The mutex guards only the cursor handle; only the log's appender ever takes it, so
        // holding it across the write blocks no reader.
        let mut guard = self.append.lock();
        let Some(state) = guard.as_mut() else {
            return Err(LogError::Closed(self.log_path.display().to_string()));
        };
        if let Err(e) = write_all_vectored(&mut state.writer, slices) {
            // Undo a partial write so the file never holds a torn batch we would serve.
            let _ = self.file.set_len(start);
            let _ = state.writer.seek(SeekFrom::Start(start));
            return Err(LogError::io(&self.log_path, e));
        }
        let idx = self.indexes()?;
        let mut pos = start;
        for b in batches {
            if self.first_batch_timestamp() < 0 {
                self.first_batch_timestamp
                    .store(b.max_timestamp, Ordering::Release);
            }
            if b.max_timestamp > self.max_timestamp() {
                self.max_timestamp.store(b.max_timestamp, Ordering::Release);
                self.offset_of_max_timestamp
                    .store(b.last_offset, Ordering::Release);
            }
            if state.bytes_since_last_index > index_interval {
                let loc = BatchLocation {
                    position: pos,
                    size: b.size,
                    base_offset: b.base_offset,
                    last_offset: b.last_offset,
                    max_timestamp: b.max_timestamp,
                };
                self.index_entry(
                    idx,
                    &loc,
                    self.max_timestamp(),
                    self.offset_of_max_timestamp(),
                );
                state.bytes_since_last_index = 0;
            }
            state.bytes_since_last_index += b.size;
            pos += b.size;
        }
        debug_assert_eq!(pos - start, total);
        if let Some(last) = batches.last() {
            self.next_offset
                .store(last.last_offset + 1, Ordering::Release);
        }
        self.size.store(start + total, Ordering::Release);
        Ok(())
    }

    /// True when appending `incoming` bytes would overflow the segment or its indexes.
    pub(crate) fn is_full(&self, incoming: u64, segment_bytes: u64) -> bool {
        let size = self.size();
        if size > 0 && size + incoming > segment_bytes {
            return true;
        }
        if size + incoming > u64::from(u32::MAX) {
            return true;
        }
        self.indexes
            .get()
            .is_some_and(|i| i.offset.is_full() || i.time.is_full())
    }

    /// Finds the first batch whose last offset is ≥ `offset`, starting from the index.
    pub(crate) fn locate_offset(
        &self,
        offset: i64,
        max_position: u64,
    ) -> Result<Option<BatchLocation>> {
        let rel = (offset - self.base_offset).clamp(0, i64::from(u32::MAX)) as u32;
        let start = u64::from(self.indexes()?.offset.lookup(rel).position);
        let mut found = None;
        self.scan(start, max_position, false, |loc| {
            if loc.last_offset >= offset {
                found = Some(*loc);
                false
            } else {
                true
            }
        })?;
        Ok(found)
    }

    /// Finds the first batch whose max timestamp is ≥ `timestamp`.
    pub(crate) fn locate_timestamp(
        &self,
        timestamp: i64,
        max_position: u64,
    ) -> Result<Option<BatchLocation>> {
        let idx = self.indexes()?;
        let rel = idx.time.lookup(timestamp);
        let start = u64::from(idx.offset.lookup(rel).position);
        let mut found = None;
        self.scan(start, max_position, false, |loc| {
            if loc.max_timestamp >= timestamp {
                found = Some(*loc);
                false
            } else {
                true
            }
        })?;
        Ok(found)
    }

    /// Cuts the segment at `position` (a batch boundary) and drops index entries past it.
    pub(crate) fn truncate_to(&self, position: u64, next_offset: i64) -> Result<()> {
        self.file
            .set_len(position)
            .map_err(|e| LogError::io(&self.log_path, e))?;
        if let Some(state) = self.append.lock().as_mut() {
            state
                .writer
                .seek(SeekFrom::Start(position))
                .map_err(|e| LogError::io(&self.log_path, e))?;
        }
        self.size.store(position, Ordering::Release);
        let idx = self.indexes()?;
        idx.offset.truncate_to_position(position as u32);
        let rel = (next_offset - self.base_offset).clamp(0, i64::from(u32::MAX)) as u32;
        idx.time.truncate_to_offset(rel);
        self.next_offset.store(next_offset, Ordering::Release);
        Ok(())
    }

    /// Removes the segment's files.
    pub(crate) fn delete_files(&self) -> Result<()> {
        let (log, index, time) = Self::paths(self.dir(), self.base_offset);
        for p in [log, index, time] {
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(LogError::io(&p, e)),
            }
        }
        Ok(())
    }
}

/// `write_all` for vectored writes (std's is unstable).
fn write_all_vectored(w: &mut File, mut bufs: &mut [IoSlice<'_>]) -> io::Result<()> {
    IoSlice::advance_slices(&mut bufs, 0);
    while !bufs.is_empty() {
        match w.write_vectored(bufs) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "write returned 0")),
            Ok(n) => IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
