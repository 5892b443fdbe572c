//! A partition log's producer state: the idempotence check inside `append`, snapshots at roll and
//! close, and the rebuild at load from the latest usable snapshot plus the log tail after it.
//!
//! Rebuild (Kafka's `LogLoader`/`rebuildProducerState`): snapshots above the recovered log end
//! (recovery cut the batches they describe) or below the first segment (retention deleted the
//! log after them) are deleted; the newest remaining one that passes its CRC is loaded (a bad
//! one is deleted and the next older tried); then the batches from its offset to the log end are
//! replayed from their headers alone (producer id, epoch, base sequence, last offset delta, max
//! timestamp), read in 1 MiB chunks and never decompressed. The log end after recovery, not the
//! recovery point, bounds the choice: every batch below it passed recovery's CRC check, and a
//! snapshot at or below it describes exactly a prefix of those batches.
//!
//! Concurrency: everything here runs under the appender lock, then takes `producer_state`
//! (lock order: appender → producer_state).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use super::{LogAppendInfo, PartitionLog};
use crate::batch::{batch_size, BatchView, BATCH_HEADER_LEN};
use crate::config::LogConfig;
use crate::error::{LogError, Result};
use crate::producer_batch::BatchMetadata;
use crate::producer_batch::{control_marker, ControlType, ProducerBatch};
use crate::producer_snapshot;
use crate::producer_state::{AppendCheck, ProducerStateEntry, ProducerStateManager};
use crate::read::ReadBound;
use crate::validator::ValidatedBatches;

const SCAN_CHUNK: usize = 1 << 20;

impl PartitionLog {
    /// The idempotence check of an append whose first offset will be `first_offset`. Caller
    /// holds the appender lock.
    pub(super) fn check_producer_state(
        &self,
        batches: &ValidatedBatches,
        first_offset: i64,
        now: i64,
    ) -> Result<AppendCheck> {
        // Most appends are not idempotent: decide that without allocating.
        let header = |b: &crate::validator::AppendedBatch| -> Result<ProducerBatch> {
            let mut h = ProducerBatch::from_view(&BatchView::parse(&batches.bytes[b.start..])?);
            if batches.log_append_time {
                h.max_timestamp = now;
            }
            Ok(h)
        };
        let mut any = false;
        for b in &batches.batches {
            any |= header(b)?.is_idempotent();
        }
        if !any {
            return Ok(AppendCheck::Append(Default::default()));
        }
        let headers = batches
            .batches
            .iter()
            .map(header)
            .collect::<Result<Vec<_>>>()?;
        let check = self
            .producer_state
            .lock()
            .check_append(&headers, first_offset);
        match check {
            Ok(c) => Ok(c),
            Err(e) => {
                tracing::debug!(partition = %self.tp, error = %e, "refused an idempotent batch");
                Err(LogError::Producer(e))
            }
        }
    }

    /// The answer to a retried batch: the original offsets, nothing appended. If the original is
    /// not durable yet, the caller waits for it like for a fresh append (and a flush is queued in
    /// case the original's round has not been).
    pub(super) fn duplicate_append_info(
        self: &Arc<Self>,
        dup: BatchMetadata,
        log_append_time: bool,
        config: &LogConfig,
    ) -> LogAppendInfo {
        tracing::debug!(partition = %self.tp, first_offset = dup.first_offset, last_offset = dup.last_offset, first_seq = dup.first_seq, "duplicate batch from an idempotent producer answered with its original offsets");
        let needs_flush = config.sync_on_append();
        if needs_flush && self.durable_offset() <= dup.last_offset {
            let queue = {
                let mut d = self.dirty.lock();
                let q = d.upto.is_some() && !d.queued;
                if q {
                    d.queued = true;
                }
                q
            };
            if queue {
                self.flusher.request(self.clone());
            }
        }
        LogAppendInfo {
            first_offset: dup.first_offset,
            last_offset: dup.last_offset,
            log_append_time: if log_append_time { dup.timestamp } else { -1 },
            log_start_offset: self.log_start_offset(),
            needs_flush,
            duplicate: true,
        }
    }

    /// Writes the producer-state snapshot at `offset` (the new segment's base). Caller holds the
    /// appender lock; the returned file joins the next flush round.
    pub(super) fn write_producer_snapshot(&self, offset: i64, sync: bool) -> Result<Arc<File>> {
        let state = self.producer_state.lock().clone();
        let file = producer_snapshot::write(&self.dir, offset, &state, sync)?;
        Ok(Arc::new(file))
    }

    /// Every producer known in this partition (DescribeProducers, tests).
    pub fn producer_states(&self) -> ProducerStateManager {
        self.producer_state.lock().clone()
    }

    /// One producer's state here.
    pub fn producer_entry(&self, producer_id: i64) -> Option<ProducerStateEntry> {
        self.producer_state.lock().entry(producer_id).cloned()
    }

    /// Removes producers idle for `producer.id.expiration.ms`; returns how many.
    pub fn remove_expired_producers(&self, now: i64) -> usize {
        let _g = self.appender.lock();
        let n = {
            let mut state = self.producer_state.lock();
            self.expire_verifications(now, state.expiration_ms());
            state.remove_expired(now)
        };
        if n > 0 {
            tracing::debug!(partition = %self.tp, expired = n, "removed expired producers");
        }
        n
    }

    /// Rebuilds producer state from snapshots and the log (start-up). See the module docs.
    pub(crate) fn load_producer_state(&self, now: i64) -> Result<()> {
        let _g = self.appender.lock();
        self.load_producer_state_locked(now)
    }

    /// As [`PartitionLog::load_producer_state`], with the appender lock held (truncation).
    pub(super) fn load_producer_state_locked(&self, now: i64) -> Result<()> {
        let end = self.log_end_offset();
        let first_base = self.segments.read().keys().next().copied().unwrap_or(0);
        let expiration = self.producer_state.lock().expiration_ms();
        let mut state = ProducerStateManager::new(expiration);
        let mut from = first_base;
        let offsets = producer_snapshot::list_snapshots(&self.dir)?;
        for offset in offsets.iter().rev().copied() {
            if offset > end || offset < first_base {
                producer_snapshot::delete(&self.dir, offset)?;
                continue;
            }
            match producer_snapshot::read(&self.dir, offset, expiration)? {
                Ok(s) => {
                    state = s;
                    from = offset;
                    break;
                }
                Err(e) => {
                    tracing::warn!(partition = %self.tp, offset, error = %e, "deleting unusable producer snapshot");
                    producer_snapshot::delete(&self.dir, offset)?;
                }
            }
        }
        let mut replayed = 0u64;
        let mut completed = Vec::new();
        // Reads start at the log start offset (DeleteRecords may have moved it inside a segment).
        let from = from.max(self.log_start_offset());
        self.scan_producer_batches(from, end, |base, _, b| {
            completed.extend(state.replay(&b, base));
            replayed += 1;
        })?;
        self.load_txn_index_locked(&completed)?;
        state.remove_expired(now);
        tracing::debug!(partition = %self.tp, snapshot = from, replayed, producers = state.len(), "loaded producer state");
        *self.producer_state.lock() = state;
        Ok(())
    }

    /// Deletes snapshots below `offset` (their segments are gone).
    pub(super) fn delete_producer_snapshots_below(&self, offset: i64) -> Result<()> {
        for o in producer_snapshot::list_snapshots(&self.dir)? {
            if o < offset {
                producer_snapshot::delete(&self.dir, o)?;
            }
        }
        Ok(())
    }

    /// Visits the base offset, partition leader epoch and producer fields of every batch with
    /// offsets in `[from, end)`, reading headers only: a batch larger than the chunk is skipped
    /// over, not read.
    pub(super) fn scan_producer_batches(
        &self,
        mut from: i64,
        end: i64,
        mut visit: impl FnMut(i64, i32, ProducerBatch),
    ) -> Result<()> {
        let mut buf = vec![0u8; SCAN_CHUNK];
        while from < end {
            let info = self.read(from, u64::MAX, ReadBound::LogEnd, true)?;
            let Some(slice) = info.records else { break };
            let file = slice.file();
            let mut pos = slice.position();
            let stop = pos + slice.len();
            let start_from = from;
            while pos < stop {
                let want = ((stop - pos) as usize).min(SCAN_CHUNK);
                let chunk = &mut buf[..want];
                file.read_exact_at(chunk, pos)
                    .map_err(|e| LogError::io(self.dir.clone(), e))?;
                let mut off = 0usize;
                let mut progressed = false;
                while off + BATCH_HEADER_LEN <= want {
                    let header = &chunk[off..off + BATCH_HEADER_LEN];
                    let Some(size) = batch_size(header).ok().flatten() else {
                        return Ok(()); // recovery already cut the log at anything unreadable
                    };
                    let (base, leader_epoch, control, mut batch) = parse_header(header);
                    // Header bytes from disk: an offset past i64::MAX ends the scan, as a
                    // truncated header does.
                    let Some(next) =
                        base.checked_add(i64::from(batch.last_offset_delta.max(0)) + 1)
                    else {
                        return Ok(());
                    };
                    if next > from {
                        if control {
                            // The marker's type is in its first record, just past the header.
                            let mut head = [0u8; BATCH_HEADER_LEN + 32];
                            let n = head.len().min(size);
                            let at = pos + off as u64;
                            file.read_exact_at(&mut head[..n], at)
                                .map_err(|e| LogError::io(self.dir.clone(), e))?;
                            let (kind, coordinator_epoch) =
                                control_marker(&head[..n]).unwrap_or((ControlType::Other, -1));
                            batch.control = Some(kind);
                            batch.coordinator_epoch = coordinator_epoch;
                        }
                        visit(base, leader_epoch, batch);
                        from = next;
                    }
                    off += size;
                    progressed = true;
                }
                if !progressed {
                    break;
                }
                pos += off as u64;
            }
            if from == start_from {
                break; // no whole batch read: nothing more to find
            }
        }
        Ok(())
    }
}

/// Base offset, partition leader epoch, control flag and producer fields of a batch header
/// (`BATCH_HEADER_LEN` bytes).
fn parse_header(header: &[u8]) -> (i64, i32, bool, ProducerBatch) {
    let i64_at = |at: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&header[at..at + 8]);
        i64::from_be_bytes(a)
    };
    let i32_at = |at: usize| {
        let mut a = [0u8; 4];
        a.copy_from_slice(&header[at..at + 4]);
        i32::from_be_bytes(a)
    };
    let batch = ProducerBatch {
        producer_id: i64_at(43),
        epoch: i16::from_be_bytes([header[51], header[52]]),
        base_sequence: i32_at(53),
        last_offset_delta: i32_at(23),
        max_timestamp: i64_at(35),
        transactional: header[22] & 0x10 != 0,
        control: None,
        coordinator_epoch: -1,
    };
    let control = header[22] & 0x20 != 0;
    (i64_at(0), i32_at(12), control, batch)
}

#[cfg(test)]
#[path = "producer_tests.rs"]
mod tests;
