//! The log's side of compaction: which segments the cleaner may read, and swapping a cleaned
//! segment in for the segments it replaces.
//!
//! Concurrency: the swap holds `segment_swap` (as retention and truncation do), checks that every
//! replaced segment is still in the map (retention or truncation may have removed one while the
//! cleaner worked; then the swap is abandoned), and replaces the map entries under a brief write
//! lock. Appends never touch closed segments and readers hold `Arc`s, so neither waits.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::read::segment_largest_timestamp;
use super::{LogOffsetMetadata, PartitionLog};
use crate::error::Result;
use crate::segment::LogSegment;

/// What the cleaner may read of one log right now.
#[derive(Debug, Clone)]
pub(crate) struct CleanableView {
    /// Closed segments entirely below `end`, oldest first.
    pub(crate) segments: Vec<Arc<LogSegment>>,
    /// The first offset the cleaner must not touch (a segment boundary).
    pub(crate) end: i64,
}

impl PartitionLog {
    /// True once the log was closed or deleted.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The closed segments wholly below the active segment, the high watermark and the
    /// `min.compaction.lag.ms` horizon (segments with a younger record are not cleanable).
    pub(crate) fn cleanable_view(&self, now: i64) -> Result<CleanableView> {
        let config = self.config();
        let hw = self.high_watermark();
        let segs = self.segments_snapshot();
        let mut out = Vec::new();
        let mut end = segs.first().map_or(0, |s| s.base_offset());
        for (i, seg) in segs.iter().enumerate() {
            let Some(next) = segs.get(i + 1) else { break };
            let next_base = next.base_offset();
            if next_base > hw {
                break;
            }
            if config.min_compaction_lag_ms() > 0
                && segment_largest_timestamp(seg)?
                    > now.saturating_sub(config.min_compaction_lag_ms())
            {
                break;
            }
            out.push(seg.clone());
            end = next_base;
        }
        Ok(CleanableView { segments: out, end })
    }

    /// Swaps the committed cleaned segment `new` in for `old` (consecutive segments, `new` has the
    /// first one's base offset). Returns false, discarding `new`, when `old` changed meanwhile.
    pub(crate) fn swap_cleaned(
        &self,
        old: &[Arc<LogSegment>],
        new: Arc<LogSegment>,
    ) -> Result<bool> {
        let _swap = self.segment_swap.lock();
        let present = {
            let segs = self.segments.read();
            !self.is_closed()
                && old.iter().all(|o| {
                    segs.get(&o.base_offset())
                        .is_some_and(|s| Arc::ptr_eq(s, o))
                })
        };
        if !present {
            new.discard_swap();
            return Ok(false);
        }
        // Readers of the old segments must never load an index by path again: it is about to
        // name the new segment's index.
        for o in old {
            o.indexes()?;
        }
        let mut deleted = Vec::new();
        for o in old {
            deleted.extend(o.rename_to_deleted()?);
        }
        new.complete_swap()?;
        let (new_base, new_size) = (new.base_offset(), new.size());
        {
            let mut segs = self.segments.write();
            for o in old {
                segs.remove(&o.base_offset());
            }
            segs.insert(new_base, new);
        }
        // Offsets at the end of a replaced segment (the high watermark right after a roll) now
        // sit at the end of the new one; positions inside replaced segments never are kept.
        let fix = |m: &mut LogOffsetMetadata| {
            if old.iter().any(|o| o.base_offset() == m.segment_base) {
                m.segment_base = new_base;
                m.position = new_size;
            }
        };
        fix(&mut self.high_watermark.lock());
        fix(&mut self.log_end.lock());
        fix(&mut self.durable_meta.lock());
        if let Some(m) = self.dirty.lock().upto.as_mut() {
            fix(m);
        }
        crate::durable_file::fsync_dir(&self.dir)?;
        for p in deleted {
            let _ = std::fs::remove_file(p);
        }
        Ok(true)
    }
}
