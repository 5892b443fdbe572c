//! Scanning a segment file batch by batch: the one loop behind recovery, index rebuilds and
//! offset/timestamp lookups. Reads in 1 MiB chunks (a bigger batch is read whole) and, when asked,
//! checks each batch's CRC-32C.

use std::os::unix::fs::FileExt;

use super::{BatchLocation, LogSegment};
use crate::batch::{batch_size, BatchView, BATCH_HEADER_LEN, LOG_OVERHEAD};
use crate::error::{LogError, Result};

impl LogSegment {
    /// Visits batches in `[from, to)` in order. With `check_crc`, stops at the first batch that is
    /// truncated or fails its CRC and returns the position where valid data ends; otherwise stops
    /// at the first incomplete header. `visit` returns false to stop early.
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
                let view = if rest.len() >= size {
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
                let loc = match view {
                    Some(v) => {
                        if check_crc && (!v.crc_ok() || v.base_offset() < self.base_offset) {
                            stop = true;
                            break;
                        }
                        BatchLocation {
                            position: pos + off as u64,
                            size: size as u64,
                            base_offset: v.base_offset(),
                            last_offset: v.last_offset(),
                            max_timestamp: v.max_timestamp(),
                        }
                    }
                    None => header_location(rest, pos + off as u64, size),
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
                if check_crc && (!v.crc_ok() || v.base_offset() < self.base_offset) {
                    return Ok(pos);
                }
                let loc = BatchLocation {
                    position: pos,
                    size: size as u64,
                    base_offset: v.base_offset(),
                    last_offset: v.last_offset(),
                    max_timestamp: v.max_timestamp(),
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

fn header_location(rest: &[u8], position: u64, size: usize) -> BatchLocation {
    let base = i64::from_be_bytes(rest[0..8].try_into().unwrap_or([0; 8]));
    let delta = i32::from_be_bytes(rest[23..27].try_into().unwrap_or([0; 4]));
    let max_ts = i64::from_be_bytes(rest[35..43].try_into().unwrap_or([0; 8]));
    BatchLocation {
        position,
        size: size as u64,
        base_offset: base,
        last_offset: base + i64::from(delta),
        max_timestamp: max_ts,
    }
}
