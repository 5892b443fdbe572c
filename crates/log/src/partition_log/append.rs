//! The leader's append path of a `PartitionLog`: offsets assigned from the log end, the
//! idempotence and KIP-890 checks under the appender lock, one vectored write straight from the
//! request buffer, then the group-commit flush queued; and segment rolls.

use std::fs::File;
use std::io::IoSlice;
use std::sync::Arc;
use std::time::Instant;

use super::{
    HighWatermarkPolicy, LogAppendInfo, LogOffsetMetadata, PartitionLog, VerificationGuard,
};
use crate::config::LogConfig;
use crate::error::{LogError, Result};
use crate::producer_state::AppendCheck;
use crate::segment::LogSegment;
use crate::validator::{AppendedBatch, ValidatedBatches};

impl PartitionLog {
    /// Appends validated batches as leader: assigns offsets from the log end, stamps the leader
    /// epoch (recording it in the leader epoch cache when it is new), writes them, and queues a
    /// flush. Await [`PartitionLog::wait_durable`] with `last_offset + 1` before acknowledging
    /// when `needs_flush` is set.
    ///
    /// For the broker's own writes (coordinators, markers): transactional batches are not
    /// verified. A client's produce goes through [`PartitionLog::append_verified`].
    pub fn append(
        self: &Arc<Self>,
        batches: &ValidatedBatches,
        leader_epoch: i32,
    ) -> Result<LogAppendInfo> {
        self.append_checked(batches, leader_epoch, None)
    }

    /// [`PartitionLog::append`] for a client's produce: a batch that would open a transaction
    /// here needs the guard of a verification the coordinator confirmed (KIP-890 part 1,
    /// `verification.rs`); without it the append fails with
    /// [`ProducerStateError::UnverifiedTransaction`](crate::ProducerStateError).
    pub fn append_verified(
        self: &Arc<Self>,
        batches: &ValidatedBatches,
        leader_epoch: i32,
        guard: Option<VerificationGuard>,
    ) -> Result<LogAppendInfo> {
        self.append_checked(batches, leader_epoch, Some(guard))
    }

    /// `verify`: `None` trusts transactional batches, `Some(guard)` demands verification.
    fn append_checked(
        self: &Arc<Self>,
        batches: &ValidatedBatches,
        leader_epoch: i32,
        verify: Option<Option<VerificationGuard>>,
    ) -> Result<LogAppendInfo> {
        self.check_writable()?;
        let config = self.config();
        let total = batches.size();
        if total > config.segment_bytes.min(u64::from(u32::MAX)) {
            return Err(LogError::BatchTooLarge {
                size: total as usize,
                segment_bytes: config.segment_bytes,
            });
        }
        let now = (self.clock)();
        let _guard = self.appender.lock();
        let first = self.log_end.lock().offset;
        // Idempotence: checked and applied under the appender lock, so a retry is either
        // recognised here or was never written.
        let producers = match self.check_producer_state(batches, first, now)? {
            AppendCheck::Append(p) => p,
            AppendCheck::Duplicate(dup) => {
                drop(_guard);
                return Ok(self.duplicate_append_info(dup, batches.log_append_time, &config));
            }
        };
        if let Some(guard) = verify {
            self.check_verified(&producers, guard)?;
        }
        let mut segment = self.active_segment()?;
        if self.should_roll(&segment, total, &config, now)? {
            segment = self.roll_locked(&config)?;
        }
        let mut next = first;
        let mut appended: Vec<AppendedBatch> = Vec::with_capacity(batches.batches.len());
        // Header prefixes (baseOffset, batchLength, partitionLeaderEpoch) rewritten per batch;
        // the rest is written straight from the producer's buffer.
        let mut prefixes: Vec<[u8; 16]> = Vec::with_capacity(batches.batches.len());
        let mut stamped: Vec<Vec<u8>> = Vec::new();
        for b in &batches.batches {
            let mut a = *b;
            a.base_offset = next;
            a.last_offset = next + i64::from(b.last_offset_delta);
            next = a.last_offset + 1;
            let src = &batches.bytes[b.start..b.start + b.size as usize];
            let mut p = [0u8; 16];
            p[0..8].copy_from_slice(&a.base_offset.to_be_bytes());
            p[8..12].copy_from_slice(&src[8..12]);
            p[12..16].copy_from_slice(&leader_epoch.to_be_bytes());
            prefixes.push(p);
            if batches.log_append_time {
                let mut copy = src.to_vec();
                crate::batch::BatchMut::new(&mut copy).set_log_append_time(now);
                a.max_timestamp = now;
                stamped.push(copy);
            }
            appended.push(a);
        }
        let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(appended.len() * 2);
        for (i, b) in batches.batches.iter().enumerate() {
            slices.push(IoSlice::new(&prefixes[i]));
            let body: &[u8] = match stamped.get(i) {
                Some(s) => &s[16..],
                None => &batches.bytes[b.start + 16..b.start + b.size as usize],
            };
            slices.push(IoSlice::new(body));
        }
        // The epoch is checkpointed before the data: after a crash the cache may run ahead of the
        // log (the loader cuts it), never behind.
        let new_epoch = self.assign_epochs_locked(&[(leader_epoch, first)])?;
        if let Err(e) = segment.append(&mut slices, total, &appended, config.index_interval_bytes) {
            self.undo_epochs_locked(new_epoch, first);
            if matches!(e, LogError::Io { .. }) {
                self.flusher.log_dir().mark_offline(&e);
            }
            return Err(e);
        }
        let end = LogOffsetMetadata {
            offset: next,
            segment_base: segment.base_offset(),
            position: segment.size(),
        };
        self.publish_log_end(end);
        let txn_files = if producers.is_empty() {
            Vec::new()
        } else {
            self.apply_producer_state(producers, segment.base_offset())?
        };
        let sync = config.sync_on_append();
        let queue = self.mark_dirty(&segment, txn_files, end, batches.record_count(), &config);
        drop(_guard);
        self.request_flush(queue, sync, end);
        Ok(LogAppendInfo {
            first_offset: first,
            last_offset: next - 1,
            log_append_time: if batches.log_append_time { now } else { -1 },
            log_start_offset: self.log_start_offset(),
            needs_flush: sync,
            duplicate: false,
        })
    }

    /// Moves the log end after a write. Caller holds `appender`.
    pub(super) fn publish_log_end(&self, end: LogOffsetMetadata) {
        *self.log_end.lock() = end;
        self.log_end_tx.send_replace(end.offset);
    }

    /// Records an append's files and end for the next flush round; returns true when the caller
    /// must queue the round. Caller holds `appender`.
    pub(super) fn mark_dirty(
        &self,
        segment: &LogSegment,
        txn_files: Vec<Arc<File>>,
        end: LogOffsetMetadata,
        records: i64,
        config: &LogConfig,
    ) -> bool {
        let mut d = self.dirty.lock();
        if !d.files.iter().any(|f| Arc::ptr_eq(f, segment.file())) {
            d.files.push(segment.file().clone());
        }
        d.files.extend(txn_files);
        d.upto = Some(end);
        d.messages += records;
        if d.since.is_none() {
            d.since = Some(Instant::now());
        }
        let want = config.sync_on_append() || d.messages >= config.flush_messages;
        let queue = want && !d.queued;
        if queue {
            d.queued = true;
        }
        queue
    }

    /// After the appender lock is released: queues the flush round (group commit), and moves the
    /// high watermark at once when appends are acknowledged without fsync.
    pub(super) fn request_flush(self: &Arc<Self>, queue: bool, sync: bool, end: LogOffsetMetadata) {
        if queue {
            self.flusher.request(self.clone());
        } else if sync {
            self.flusher.note_waiter();
        }
        if !sync && self.hw_policy == HighWatermarkPolicy::FollowLocal {
            self.advance_high_watermark(end);
        }
    }

    pub(super) fn should_roll(
        &self,
        seg: &LogSegment,
        incoming: u64,
        config: &LogConfig,
        now: i64,
    ) -> Result<bool> {
        if seg.size() == 0 {
            return Ok(false);
        }
        if seg.is_full(incoming, config.segment_bytes) {
            return Ok(true);
        }
        let first_ts = seg.first_batch_timestamp();
        Ok(first_ts >= 0 && now.saturating_sub(first_ts) > config.segment_ms)
    }

    /// Rolls a new active segment at the log end. Caller holds `appender`.
    pub(super) fn roll_locked(self: &Arc<Self>, config: &LogConfig) -> Result<Arc<LogSegment>> {
        let old = self.active_segment()?;
        let base = self.log_end.lock().offset;
        if old.base_offset() == base {
            return Ok(old);
        }
        let closing_files = old.close_for_roll()?;
        // The producer state at the new base, made durable with the rolled segment.
        let snapshot = self.write_producer_snapshot(base, false)?;
        let seg = Arc::new(LogSegment::create(&self.dir, base, config)?);
        self.segments.write().insert(base, seg.clone());
        {
            let mut d = self.dirty.lock();
            for f in closing_files {
                if !d.files.iter().any(|x| Arc::ptr_eq(x, &f)) {
                    d.files.push(f);
                }
            }
            d.files.push(snapshot);
            d.dir = true;
        }
        tracing::debug!(partition = %self.tp, base, "rolled new segment");
        Ok(seg)
    }

    /// Forces a roll (tests, and DeleteRecords of everything).
    pub fn roll(self: &Arc<Self>) -> Result<()> {
        let config = self.config();
        let _g = self.appender.lock();
        self.roll_locked(&config)?;
        Ok(())
    }
}
