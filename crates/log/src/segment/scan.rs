//! Scanning a segment file batch by batch: the one loop behind recovery, index rebuilds and
//! offset/timestamp lookups. Reads in 1 MiB chunks (a bigger batch is read whole) and, when asked,
//! checks each batch's CRC-32C.

use std::os::unix::fs::FileExt;

use super::{BatchLocation, LogSegment};
use crate::batch::{batch_size, BatchView, BATCH_HEADER_LEN, LOG_OVERHEAD};
use crate::error::{LogError, Result};

impl LogSegment {
    /// Visits batches in `[from, to)` in order. With `check_crc`, stops at the first batch that is
    /// truncated, fails its CRC or starts below the segment's base offset, and returns the
    /// position where valid data ends; otherwise stops at the first incomplete header. Either way
    /// it stops at a batch whose offsets cannot be real (see `location`), so every visited
    /// location has `base ≤ last < i64::MAX`. `visit` returns false to stop early.
    pub(crate) fn scan(
        &self,
        from: u64,
        to: u64,
        check_crc: bool,
        mut visit: impl FnMut(&BatchLocation) -> bool,
    ) -> Result<u64> {
        const CHUNK: usize = 1 << 20;
        let mut buf: Vec<u8> = Vec::new();
        let mut pos = from;
        while pos < to {
            let avail = (to - pos) as usize;
            if avail < LOG_OVERHEAD {
                break;
            }
            // Read a chunk (or at least one whole batch when checking CRCs).
            let chunk = avail.min(CHUNK);
            buf.resize(chunk, 0);
            self.read_exact_at(&mut buf, pos)?;
            let mut off = 0usize;
            let mut stop = false;
            while off < buf.len() {
                let rest = &buf[off..];
                let size = match batch_size(rest) {
                    Ok(Some(s)) => s,
                    Ok(None) => break,
                    Err(_) => {
                        stop = true;
                        break;
                    }
                };
                if (pos + off as u64) + size as u64 > to {
                    stop = true;
                    break;
                }
                let whole = if rest.len() >= size {
                    match BatchView::parse(rest) {
                        Ok(v) => Some(v),
                        Err(_) => {
                            stop = true;
                            break;
                        }
                    }
                } else if !check_crc && rest.len() >= BATCH_HEADER_LEN {
                    None
                } else {
                    break; // refill from this batch
                };
                if check_crc && whole.is_some_and(|v| !v.crc_ok()) {
                    stop = true;
                    break;
                }
                let Some(loc) = self.location(rest, pos + off as u64, size, check_crc) else {
                    stop = true;
                    break;
                };
                if !visit(&loc) {
                    return Ok(loc.position);
                }
                off += size;
            }
            if stop {
                return Ok(pos + off as u64);
            }
            if off == 0 {
                // One batch bigger than the chunk: read it whole.
                let size = batch_size(&buf).ok().flatten().unwrap_or(0);
                if size == 0 || pos + size as u64 > to {
                    return Ok(pos);
                }
                buf.resize(size, 0);
                self.read_exact_at(&mut buf, pos)?;
                let Ok(v) = BatchView::parse(&buf) else {
                    return Ok(pos);
                };
                if check_crc && !v.crc_ok() {
                    return Ok(pos);
                }
                let Some(loc) = self.location(&buf, pos, size, check_crc) else {
                    return Ok(pos);
                };
                if !visit(&loc) {
                    return Ok(pos);
                }
                off = size;
            }
            pos += off as u64;
        }
        Ok(pos.min(to))
    }

    pub(super) fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> Result<()> {
        self.file
            .read_exact_at(buf, pos)
            .map_err(|e| LogError::io(&self.log_path, e))
    }
}

const BASE_OFFSET_AT: usize = 0;
const LAST_OFFSET_DELTA_AT: usize = 23;
const MAX_TIMESTAMP_AT: usize = 35;

impl LogSegment {
    /// Where the batch whose header starts `header` (at least [`BATCH_HEADER_LEN`] bytes) lies,
    /// or `None` when its offsets cannot be real: a negative `lastOffsetDelta`, or a last offset
    /// with no offset after it, which every reader computes (`last + 1`). Recovery (`strict`)
    /// also refuses a base offset below the segment's.
    fn location(
        &self,
        header: &[u8],
        position: u64,
        size: usize,
        strict: bool,
    ) -> Option<BatchLocation> {
        let field = |at: usize| {
            header
                .get(at..at + 8)?
                .try_into()
                .ok()
                .map(i64::from_be_bytes)
        };
        let base_offset = field(BASE_OFFSET_AT)?;
        let delta = header
            .get(LAST_OFFSET_DELTA_AT..LAST_OFFSET_DELTA_AT + 4)?
            .try_into()
            .ok()
            .map(i32::from_be_bytes)?;
        let last_offset = base_offset.checked_add(i64::from(delta))?;
        if delta < 0 || last_offset == i64::MAX || (strict && base_offset < self.base_offset) {
            return None;
        }
        Some(BatchLocation {
            position,
            size: size as u64,
            base_offset,
            last_offset,
            max_timestamp: field(MAX_TIMESTAMP_AT)?,
        })
    }
}
