//! Reading a partition log: offset and timestamp lookups, and `read` returning file ranges.

use std::sync::Arc;

use super::{LogOffsetMetadata, PartitionLog};
use crate::error::{LogError, Result};
use crate::read::{FetchDataInfo, FileSlice, ReadBound};
use crate::segment::LogSegment;

impl PartitionLog {
    /// Locates `offset` (a batch boundary or inside a batch) in the segments.
    pub(super) fn offset_metadata(&self, offset: i64) -> Result<LogOffsetMetadata> {
        let seg = self.floor_segment(offset)?;
        let loc = seg.locate_offset(offset, seg.size())?;
        Ok(LogOffsetMetadata {
            offset,
            segment_base: seg.base_offset(),
            position: loc.map_or(seg.size(), |l| l.position),
        })
    }

    pub(super) fn floor_segment(&self, offset: i64) -> Result<Arc<LogSegment>> {
        let segs = self.segments.read();
        segs.range(..=offset)
            .next_back()
            .or_else(|| segs.iter().next())
            .map(|(_, s)| s.clone())
            .ok_or_else(|| LogError::Closed(self.tp.to_string()))
    }

    pub(crate) fn segments_snapshot(&self) -> Vec<Arc<LogSegment>> {
        self.segments.read().values().cloned().collect()
    }

    /// Reads whole batches from `fetch_offset`, up to `max_bytes` (at least one batch when
    /// `min_one_message`), never past `bound`. The result names a file range, for sendfile.
    pub fn read(
        &self,
        fetch_offset: i64,
        max_bytes: u64,
        bound: ReadBound,
        min_one_message: bool,
    ) -> Result<FetchDataInfo> {
        let upper = match bound {
            ReadBound::HighWatermark => *self.high_watermark.lock(),
            ReadBound::LogEnd => *self.log_end.lock(),
            ReadBound::LastStable => self.last_stable_metadata()?,
        };
        let log_end = self.log_end_offset();
        let start = self.log_start_offset();
        let info = |records| FetchDataInfo {
            records,
            high_watermark: self.high_watermark(),
            log_start_offset: start,
            log_end_offset: log_end,
        };
        if fetch_offset < start || fetch_offset > log_end {
            return Err(LogError::OffsetOutOfRange {
                offset: fetch_offset,
                log_start_offset: start,
                log_end_offset: log_end,
            });
        }
        if fetch_offset >= upper.offset {
            return Ok(info(None));
        }
        let segments: Vec<Arc<LogSegment>> = {
            let segs = self.segments.read();
            let first = segs
                .range(..=fetch_offset)
                .next_back()
                .map(|(k, _)| *k)
                .unwrap_or(i64::MIN);
            segs.range(first..).map(|(_, s)| s.clone()).collect()
        };
        for seg in segments {
            if seg.base_offset() > upper.segment_base {
                break;
            }
            // min: the cleaner may have swapped a shorter segment in under the same base.
            let max_position = if seg.base_offset() == upper.segment_base {
                upper.position.min(seg.size())
            } else {
                seg.size()
            };
            let Some(loc) = seg.locate_offset(fetch_offset, max_position)? else {
                continue;
            };
            let available = max_position - loc.position;
            let limit = if min_one_message {
                max_bytes.max(loc.size)
            } else {
                max_bytes
            };
            let len = available.min(limit);
            if len == 0 {
                return Ok(info(None));
            }
            return Ok(info(Some(FileSlice::new(
                seg.file().clone(),
                seg.log_path().to_path_buf(),
                loc.position,
                len,
            ))));
        }
        Ok(info(None))
    }

    /// First offset with timestamp ≥ `timestamp` below the high watermark, and its timestamp.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(i64, i64)>> {
        let hw = *self.high_watermark.lock();
        let start = self.log_start_offset();
        let limit = self.config().max_decompressed_bytes();
        for seg in self.segments_snapshot() {
            if seg.base_offset() > hw.segment_base {
                break;
            }
            let max_pos = if seg.base_offset() == hw.segment_base {
                hw.position.min(seg.size())
            } else {
                seg.size()
            };
            if let Some(loc) = seg.locate_timestamp(timestamp, max_pos)? {
                let bytes = seg.read_bytes(loc.position, loc.size as usize)?;
                match crate::read::first_record_at_or_after(&bytes, timestamp, start, limit) {
                    Ok(Some(found)) => return Ok(Some(found)),
                    Ok(None) => {}
                    // The batch's max timestamp reaches the target, so the answer is in it; when
                    // its records cannot be read, its first offset is the safe answer (a
                    // consumer re-reads a little rather than skips).
                    Err(e) => {
                        tracing::warn!(partition = %self.topic_partition(), offset = loc.base_offset, error = %e, "unreadable batch in a timestamp lookup");
                        return Ok(Some((loc.base_offset.max(start), loc.max_timestamp)));
                    }
                }
            }
        }
        Ok(None)
    }

    /// Offset and timestamp of the record with the largest timestamp (ListOffsets -3).
    pub fn max_timestamp_offset(&self) -> Result<Option<(i64, i64)>> {
        let mut best: Option<(i64, i64)> = None;
        for seg in self.segments_snapshot() {
            let ts = segment_largest_timestamp(&seg)?;
            if ts >= 0 && best.is_none_or(|(_, b)| ts > b) {
                best = Some((seg.base_offset(), ts));
            }
        }
        let Some((base, ts)) = best else {
            return Ok(None);
        };
        let segs = self.segments.read().get(&base).cloned();
        let Some(seg) = segs else { return Ok(None) };
        let Some(loc) = seg.locate_timestamp(ts, seg.size())? else {
            return Ok(None);
        };
        let bytes = seg.read_bytes(loc.position, loc.size as usize)?;
        let limit = self.config().max_decompressed_bytes();
        Ok(crate::read::record_with_max_timestamp(&bytes, limit).or(Some((loc.last_offset, ts))))
    }
}

/// A segment's largest timestamp, loading it from the time index for segments opened cleanly.
pub(super) fn segment_largest_timestamp(seg: &LogSegment) -> Result<i64> {
    let ts = seg.max_timestamp();
    if ts >= 0 || seg.size() == 0 {
        return Ok(ts);
    }
    let idx = seg.indexes()?;
    Ok(idx.time.last().map_or(-1, |e| e.timestamp))
}
