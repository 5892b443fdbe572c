//! The follower side of a partition log: appending a leader's batches as they are, and starting
//! over at the leader's log start (Kafka's `appendAsFollower`, `truncateFullyAndStartAt`).
//!
//! A follower append writes the leader's bytes unchanged: offsets, leader epochs, timestamps
//! and CRCs stay as the leader wrote them, so both logs are byte-identical. Each batch is checked
//! (length, magic 2, CRC-32C, offsets increasing) but nothing is refused on producer grounds:
//! the leader already decided sequences, epochs and transactions, and the follower replays them
//! into its own producer state and transaction index. A partial batch at the end (a fetch cut at
//! its byte limit) is ignored; batches the log already has are skipped. Gaps between batches are
//! accepted, as Kafka does, because compaction leaves them in the leader's log.
//!
//! Concurrency: runs under `appender` like a leader append; the two never mix in practice (a
//! partition is leader or follower), but nothing breaks if they do.

use std::io::IoSlice;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;

use super::{LogAppendInfo, LogOffsetMetadata, PartitionLog};
use crate::batch::{BatchError, BatchView, Batches};
use crate::config::LogConfig;
use crate::error::{LogError, Result};
use crate::producer_batch::ProducerBatch;
use crate::producer_state::ProducerStateManager;
use crate::segment::LogSegment;
use crate::txn_index::TransactionIndex;
use crate::validator::AppendedBatch;

/// One checked batch of a follower append.
#[derive(Debug)]
struct ReplicatedBatch {
    appended: AppendedBatch,
    leader_epoch: i32,
    producer: ProducerBatch,
}

impl PartitionLog {
    /// Appends record batches exactly as the leader has them (offsets assigned). Returns `None`
    /// when nothing was new. Await [`PartitionLog::wait_durable`] with `last_offset + 1` when
    /// `needs_flush` is set, as for a leader append. See the module docs.
    pub fn append_as_follower(self: &Arc<Self>, records: Bytes) -> Result<Option<LogAppendInfo>> {
        self.check_writable()?;
        let config = self.config();
        let batches = check_batches(&records)?;
        let max = config.segment_bytes.min(u64::from(u32::MAX));
        if let Some(b) = batches.iter().find(|b| b.appended.size > max) {
            return Err(LogError::BatchTooLarge {
                size: b.appended.size as usize,
                segment_bytes: config.segment_bytes,
            });
        }
        let now = (self.clock)();
        let guard = self.appender.lock();
        let log_end = self.log_end.lock().offset;
        let skip = batches
            .iter()
            .take_while(|b| b.appended.last_offset < log_end)
            .count();
        let new = &batches[skip..];
        let Some(first) = new.first().map(|b| b.appended.base_offset) else {
            return Ok(None);
        };
        if first < log_end {
            return Err(LogError::NonContiguousFollowerAppend {
                expected: log_end,
                got: first,
            });
        }
        let epochs: Vec<(i32, i64)> = new
            .iter()
            .map(|b| (b.leader_epoch, b.appended.base_offset))
            .collect();
        let assigned = self.assign_epochs_locked(&epochs)?;
        let mut rest = new;
        let mut end = *self.log_end.lock();
        let mut queue = false;
        while !rest.is_empty() {
            let written = self
                .next_chunk(rest, &config, now)
                .and_then(|(segment, n)| {
                    let (chunk, later) = rest.split_at(n);
                    rest = later;
                    self.write_chunk(&records, chunk, &segment, &config)
                });
            match written {
                Ok((e, q)) => {
                    end = e;
                    queue |= q;
                }
                Err(e) => {
                    // Epochs of batches that did not make it must not outlive them.
                    self.undo_epochs_locked(assigned, end.offset);
                    return Err(e);
                }
            }
        }
        drop(guard);
        let sync = config.sync_on_append();
        self.request_flush(queue, sync, end);
        Ok(Some(LogAppendInfo {
            first_offset: first,
            last_offset: end.offset - 1,
            log_append_time: -1,
            log_start_offset: self.log_start_offset(),
            needs_flush: sync,
            duplicate: false,
        }))
    }

    /// Deletes every segment and starts an empty log at `offset`: log start, high watermark and
    /// log end all become `offset`; producer state, transaction index and leader epochs are
    /// cleared (a follower that fell below the leader's log start).
    pub fn truncate_fully_and_start_at(&self, offset: i64) -> Result<()> {
        let config = self.config();
        let _g = self.appender.lock();
        let _swap = self.segment_swap.lock();
        let old: Vec<Arc<LogSegment>> = self.segments.read().values().cloned().collect();
        // Old files go first (readers keep their descriptors), so the new segment may reuse a
        // base offset.
        for s in &old {
            s.delete_files()?;
        }
        let seg = Arc::new(LogSegment::create(&self.dir, offset, &config)?);
        *self.segments.write() = std::collections::BTreeMap::from([(offset, seg)]);
        self.delete_producer_snapshots_below(i64::MAX)?;
        {
            let mut idx = self.txn_index.lock();
            idx.delete_below(i64::MAX)?;
            *idx = TransactionIndex::new(&self.dir);
        }
        {
            let mut state = self.producer_state.lock();
            *state = ProducerStateManager::new(state.expiration_ms());
        }
        self.update_leader_epochs(|c| c.clear())?;
        crate::durable_file::fsync_dir(&self.dir)?;
        let meta = LogOffsetMetadata {
            offset,
            segment_base: offset,
            position: 0,
        };
        {
            let mut d = self.dirty.lock();
            self.truncations.fetch_add(1, Ordering::AcqRel);
            d.files.clear();
            d.dir = false;
            d.upto = None;
            d.messages = 0;
            d.since = None;
            *self.durable_meta.lock() = meta;
        }
        self.durable_tx.send_modify(|d| d.offset = offset);
        self.log_start_offset.store(offset, Ordering::Release);
        {
            let mut hw = self.high_watermark.lock();
            *hw = meta;
            self.hw_tx.send_replace(offset);
        }
        self.publish_log_end(meta);
        tracing::info!(partition = %self.tp, offset, segments = old.len(), "truncated fully and restarted the log");
        Ok(())
    }

    /// Writes one chunk into `segment` and applies its producer state. Returns the new log end
    /// and whether a flush round must be queued. Caller holds `appender`.
    fn write_chunk(
        &self,
        records: &Bytes,
        chunk: &[ReplicatedBatch],
        segment: &LogSegment,
        config: &LogConfig,
    ) -> Result<(LogOffsetMetadata, bool)> {
        let (Some(first), Some(last)) = (chunk.first(), chunk.last()) else {
            return Err(LogError::Closed(self.tp.to_string()));
        };
        let from = first.appended.start;
        let to = last.appended.start + last.appended.size as usize;
        let appended: Vec<AppendedBatch> = chunk.iter().map(|b| b.appended).collect();
        // The leader's bytes, untouched.
        let mut slices = [IoSlice::new(&records[from..to])];
        let total = (to - from) as u64;
        if let Err(e) = segment.append(&mut slices, total, &appended, config.index_interval_bytes) {
            if matches!(e, LogError::Io { .. }) {
                self.flusher.log_dir().mark_offline(&e);
            }
            return Err(e);
        }
        let end = LogOffsetMetadata {
            offset: last.appended.last_offset + 1,
            segment_base: segment.base_offset(),
            position: segment.size(),
        };
        self.publish_log_end(end);
        let producers: Vec<(i64, ProducerBatch)> = chunk
            .iter()
            .filter(|b| b.producer.is_idempotent())
            .map(|b| (b.appended.base_offset, b.producer))
            .collect();
        let txn_files = if producers.is_empty() {
            Vec::new()
        } else {
            let pending = self.producer_state.lock().replicated_append(&producers);
            self.apply_producer_state(pending, segment.base_offset())?
        };
        let records: i64 = chunk
            .iter()
            .map(|b| i64::from(b.appended.record_count))
            .sum();
        let queue = self.mark_dirty(segment, txn_files, end, records, config);
        Ok((end, queue))
    }

    /// Picks the segment for the next batches (rolling when the first does not fit or the
    /// segment is old) and how many of them fit in it. Caller holds `appender`.
    fn next_chunk(
        self: &Arc<Self>,
        batches: &[ReplicatedBatch],
        config: &LogConfig,
        now: i64,
    ) -> Result<(Arc<LogSegment>, usize)> {
        let mut segment = self.active_segment()?;
        let first = &batches[0].appended;
        if self.should_roll(&segment, first.size, config, now)?
            || !fits_relative(&segment, first.last_offset)
        {
            segment = self.roll_locked(config)?;
        }
        let limit = config.segment_bytes.min(u64::from(u32::MAX));
        let mut size = segment.size();
        let mut n = 0;
        for b in batches {
            let a = &b.appended;
            let fits = size + a.size <= limit || size == 0;
            if n > 0 && (!fits || !fits_relative(&segment, a.last_offset)) {
                break;
            }
            size += a.size;
            n += 1;
        }
        Ok((segment, n))
    }
}

/// The offset index stores offsets relative to the segment base in 32 bits.
fn fits_relative(segment: &LogSegment, last_offset: i64) -> bool {
    last_offset - segment.base_offset() <= i64::from(u32::MAX)
}

/// Checks every whole batch of a fetched chunk; a partial last batch ends the list.
fn check_batches(records: &[u8]) -> Result<Vec<ReplicatedBatch>> {
    let mut out: Vec<ReplicatedBatch> = Vec::new();
    let mut start = 0usize;
    for view in Batches::new(records) {
        let view = match view {
            Ok(v) => v,
            Err(BatchError::Truncated { .. }) => break,
            Err(e) => return Err(e.into()),
        };
        check_batch(&view, out.last().map(|b| b.appended.last_offset))?;
        out.push(ReplicatedBatch {
            appended: AppendedBatch {
                start,
                size: view.size() as u64,
                base_offset: view.base_offset(),
                last_offset: view.last_offset(),
                last_offset_delta: view.last_offset_delta(),
                max_timestamp: view.max_timestamp(),
                record_count: view.record_count(),
            },
            leader_epoch: view.partition_leader_epoch(),
            producer: ProducerBatch::from_view(&view),
        });
        start += view.size();
    }
    Ok(out)
}

/// Kafka's checks of a replicated batch (`ensureValid` plus monotonic offsets). Compacted batches
/// may hold fewer records than their offset range, so the record count is not compared.
fn check_batch(view: &BatchView<'_>, previous_last: Option<i64>) -> Result<()> {
    if !view.crc_ok() {
        let computed = crc32c::crc32c(&view.as_bytes()[21..]);
        return Err(BatchError::CrcMismatch {
            stored: view.crc(),
            computed,
        }
        .into());
    }
    if view.last_offset_delta() < 0 || view.record_count() < 0 || view.base_offset() < 0 {
        return Err(
            BatchError::InvalidRecords("negative offset delta, count or base offset").into(),
        );
    }
    if previous_last.is_some_and(|p| view.base_offset() <= p) {
        return Err(BatchError::InvalidRecords("batch offsets out of order").into());
    }
    Ok(())
}

#[cfg(test)]
#[path = "replica_tests.rs"]
mod tests;
