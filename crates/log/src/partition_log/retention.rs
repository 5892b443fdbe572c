//! Shrinking a partition log: retention, DeleteRecords, and truncation of a divergent tail.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::read::segment_largest_timestamp;
use super::{LogOffsetMetadata, PartitionLog};
use crate::error::{LogError, Result};
use crate::segment::LogSegment;

impl PartitionLog {
    /// Truncates the log so `offset` is the new log end (replication: divergent tail). The high
    /// watermark and the leader epoch cache are cut to it too.
    pub fn truncate_to(&self, offset: i64) -> Result<()> {
        let _g = self.appender.lock();
        let _swap = self.segment_swap.lock();
        let end = *self.log_end.lock();
        if offset >= end.offset {
            // No record to cut, but the leader epoch cache is cut anyway (Kafka's rule): a broker
            // that became leader, recorded its epoch at its log end and lost leadership before
            // appending holds an epoch the new leader never had. Kept, it is this follower's
            // last fetched epoch in every fetch, the leader answers the same divergence, and
            // the follower never catches up (seen as a coordinator failover that stalled).
            self.update_leader_epochs(|c| c.truncate_from_end(end.offset))?;
            return Ok(());
        }
        let offset = offset.max(self.log_start_offset());
        let remove: Vec<Arc<LogSegment>> = {
            let mut segs = self.segments.write();
            let doomed: Vec<i64> = segs
                .range((
                    std::ops::Bound::Excluded(offset),
                    std::ops::Bound::Unbounded,
                ))
                .map(|(k, _)| *k)
                .collect();
            doomed.iter().filter_map(|k| segs.remove(k)).collect()
        };
        for s in &remove {
            s.delete_files()?;
        }
        let seg = self.active_segment()?;
        // Cut at the start of the batch holding `offset`: batches are never split.
        let loc = seg.locate_offset(offset, seg.size())?;
        let pos = loc.map_or(seg.size(), |l| l.position);
        let next = loc.map_or(offset, |l| l.base_offset).max(seg.base_offset());
        seg.truncate_to(pos, next)?;
        let meta = LogOffsetMetadata {
            offset: next,
            segment_base: seg.base_offset(),
            position: pos,
        };
        self.publish_log_end(meta);
        self.lower_high_watermark(meta);
        {
            let mut d = self.dirty.lock();
            // A flush round in flight may have taken offsets past the cut: it must not publish.
            self.truncations.fetch_add(1, Ordering::AcqRel);
            d.dir = true;
            d.upto = Some(meta);
            d.files.push(seg.file().clone());
            let mut dm = self.durable_meta.lock();
            if dm.offset > next {
                *dm = meta;
            }
        }
        self.durable_tx
            .send_modify(|d| d.offset = d.offset.min(next));
        self.update_leader_epochs(|c| c.truncate_from_end(next))?;
        // Producer state must forget the cut batches: rebuild from a snapshot at or below `next`
        // (which reloads the transaction index too, without the cut markers).
        self.txn_index.lock().truncate_to(next)?;
        self.load_producer_state_locked(super::now_ms())
    }

    /// Advances the log start offset (DeleteRecords); never past the high watermark.
    /// Returns the new log start offset. Whole segments below it go at the next retention pass.
    pub fn delete_records_before(&self, offset: i64) -> Result<i64> {
        let hw = self.high_watermark();
        if offset > hw {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset(),
                log_end_offset: hw,
            });
        }
        let new = self
            .log_start_offset
            .fetch_max(offset, Ordering::AcqRel)
            .max(offset);
        self.update_leader_epochs(|c| c.truncate_from_start(new))?;
        Ok(new)
    }

    /// Deletes whole old segments past retention (time, size, or below the log start offset);
    /// never the active segment, never data at or above the high watermark. Returns how many.
    pub fn delete_old_segments(&self, now: i64) -> Result<usize> {
        let _swap = self.segment_swap.lock();
        let config = self.config();
        let hw = self.high_watermark();
        let start = self.log_start_offset();
        let segs = self.segments_snapshot();
        if segs.len() <= 1 {
            return Ok(0);
        }
        let total: u64 = segs.iter().map(|s| s.size()).sum();
        let mut excess = if config.retention_bytes >= 0 {
            total.saturating_sub(config.retention_bytes as u64)
        } else {
            0
        };
        let mut doomed = Vec::new();
        for (i, seg) in segs.iter().enumerate() {
            let Some(next) = segs.get(i + 1) else { break };
            let next_base = next.base_offset();
            if next_base > hw {
                break;
            }
            let below_start = next_base <= start;
            let by_size =
                config.delete_enabled && config.retention_bytes >= 0 && excess >= seg.size();
            let by_time = config.delete_enabled
                && config.retention_ms >= 0
                && segment_largest_timestamp(seg)? < now.saturating_sub(config.retention_ms);
            if !(below_start || by_size || by_time) {
                break;
            }
            excess = excess.saturating_sub(seg.size());
            doomed.push(seg.clone());
        }
        if doomed.is_empty() {
            return Ok(0);
        }
        {
            let mut map = self.segments.write();
            for s in &doomed {
                map.remove(&s.base_offset());
            }
            if let Some(first) = map.keys().next() {
                self.log_start_offset.fetch_max(*first, Ordering::AcqRel);
            }
        }
        for s in &doomed {
            tracing::info!(partition = %self.tp, segment = s.base_offset(), "deleting segment past retention");
            s.delete_files()?;
        }
        if let Some(first) = self.segments.read().keys().next().copied() {
            self.delete_producer_snapshots_below(first)?;
            self.delete_txn_index_below(first)?;
        }
        let start = self.log_start_offset();
        self.update_leader_epochs(|c| c.truncate_from_start(start))?;
        crate::durable_file::fsync_dir(&self.dir)?;
        Ok(doomed.len())
    }
}
