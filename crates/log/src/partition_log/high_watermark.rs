//! A partition log's high watermark: where it follows the acknowledged end, the bound the
//! replication layer puts on it, and the watches that wake waiting fetches and producers.
//!
//! HW = max(HW, min(acknowledged end, bound)), recomputed whenever either moves. The acknowledged
//! end is the durable end (`flush.messages` = 1) or the log end (relaxed flushing). On a single
//! node the bound is `i64::MAX`; a leader sets it to the replicated end (the lowest log end
//! offset of the in-sync replicas), a follower to the leader's high watermark. The high
//! watermark moves backwards only through truncation (`truncate_to`,
//! `truncate_fully_and_start_at`).
//!
//! Races: `set_high_watermark_bound` stores the bound, then reads the acknowledged end;
//! `publish_durable` records the durable end, then reads the bound. Whichever runs second sees
//! both new values, so the high watermark never stays below min(durable, bound). The watch is
//! sent under the high-watermark lock so its value never goes stale out of order.

use std::sync::atomic::Ordering;

use tokio::sync::watch;

use super::{HighWatermarkPolicy, LogOffsetMetadata, PartitionLog};
use crate::error::Result;

impl PartitionLog {
    /// Caps the high watermark at `bound` (replication): it becomes min(acknowledged end, bound)
    /// and keeps following the acknowledged end up to the bound as fsyncs complete. Never moves
    /// it backwards. `i64::MAX` (the default) removes the cap.
    pub fn set_high_watermark_bound(&self, bound: i64) {
        self.hw_bound.store(bound, Ordering::SeqCst);
        if self.hw_policy == HighWatermarkPolicy::FollowLocal {
            let acked = if self.config().sync_on_append() {
                *self.durable_meta.lock()
            } else {
                *self.log_end.lock()
            };
            self.advance_high_watermark(acked);
        }
    }

    /// The current bound on the high watermark (`i64::MAX` when unbounded).
    pub fn high_watermark_bound(&self) -> i64 {
        self.hw_bound.load(Ordering::SeqCst)
    }

    /// Moves the high watermark towards `to` (an acknowledged end), never past the bound.
    pub(super) fn advance_high_watermark(&self, to: LogOffsetMetadata) {
        let bound = self.hw_bound.load(Ordering::SeqCst);
        let target = if to.offset <= bound {
            to
        } else if bound <= self.high_watermark() {
            return;
        } else {
            // `bound` < `to` ≤ log end: it is in the log; find its position for readers.
            match self.offset_metadata(bound) {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(partition = %self.tp, bound, error = %e, "could not locate the high watermark bound");
                    return;
                }
            }
        };
        self.raise_high_watermark(target);
    }

    /// Sets the high watermark to `target` if that moves it forward; fires the watch.
    fn raise_high_watermark(&self, target: LogOffsetMetadata) {
        let mut hw = self.high_watermark.lock();
        if target.offset > hw.offset {
            *hw = target;
            self.hw_tx.send_replace(target.offset);
        }
    }

    /// Truncation: the high watermark drops to `to` if it is above it. Caller holds `appender`.
    pub(super) fn lower_high_watermark(&self, to: LogOffsetMetadata) {
        let mut hw = self.high_watermark.lock();
        if hw.offset > to.offset {
            *hw = to;
            self.hw_tx.send_replace(to.offset);
        }
    }

    /// Sets the high watermark directly, clamped to `[log_start, log_end]`, ignoring the bound
    /// and durability (the caller answers for them). Never moves it backwards.
    pub fn set_high_watermark(&self, offset: i64) -> Result<()> {
        let end = *self.log_end.lock();
        let offset = offset.clamp(self.log_start_offset(), end.offset);
        if offset <= self.high_watermark() {
            return Ok(());
        }
        let meta = if offset == end.offset {
            end
        } else {
            self.offset_metadata(offset)?
        };
        self.raise_high_watermark(meta);
        Ok(())
    }

    /// A watch that fires whenever the high watermark moves.
    pub fn subscribe_high_watermark(&self) -> watch::Receiver<i64> {
        self.hw_tx.subscribe()
    }

    /// Resolves once the high watermark is at least `offset` (acks=all, internal writers). Waits
    /// forever if it never gets there (a failed log directory): callers bound it with a timeout.
    pub async fn wait_high_watermark(&self, offset: i64) {
        let mut rx = self.hw_tx.subscribe();
        // The sender lives in `self`, so the channel cannot close while we borrow it.
        let _ = rx.wait_for(|hw| *hw >= offset).await;
    }

    /// A watch of the log end offset: fires on appends (leader and follower) and truncations.
    pub fn subscribe_log_end(&self) -> watch::Receiver<i64> {
        self.log_end_tx.subscribe()
    }
}
