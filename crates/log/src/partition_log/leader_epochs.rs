//! A partition log's leader epoch cache: epochs assigned by appends and by becoming leader,
//! `OffsetsForLeaderEpoch` answers, the cuts that follow truncation and log start moves, and the
//! load at start-up.
//!
//! Every change is checkpointed before it takes effect in memory (a clone is changed and
//! written, then swapped in), so the file and the cache agree even when the write fails.
//!
//! Load (Kafka's `LogLoader`): the checkpoint is read; when it is missing or unreadable it is
//! rebuilt from the `partitionLeaderEpoch` of every batch header in the log. Either way, entries
//! past the recovered log end (the checkpoint is written before the data) or below the log start
//! are then cut.

use super::PartitionLog;
use crate::error::{LogError, Result};
use crate::leader_epoch::LeaderEpochCache;

impl PartitionLog {
    /// Becoming leader in `epoch`: it starts at the log end. Checkpointed before returning.
    ///
    /// A failed checkpoint write is logged, not returned: the cache then keeps the old epoch,
    /// and the first append in `epoch` assigns it again and fails with the error. Answers in
    /// between are unchanged, since the old epoch ends at the log end either way.
    pub fn assign_leader_epoch(&self, epoch: i32) {
        let _g = self.appender.lock();
        let end = self.log_end_offset();
        if let Err(e) = self.assign_epochs_locked(&[(epoch, end)]) {
            tracing::error!(partition = %self.tp, epoch, error = %e, "could not checkpoint the new leader epoch");
        }
    }

    /// `OffsetsForLeaderEpoch`: the largest epoch ≤ `epoch` and the offset where it ended (the log
    /// end for the latest epoch). See [`LeaderEpochCache::end_offset_for`].
    pub fn end_offset_for_leader_epoch(&self, epoch: i32) -> (i32, i64) {
        let cache = self.leader_epochs.lock();
        // Read under the cache lock: an append assigns its epoch before it moves the log end,
        // so the pair is never a new epoch with an end from before it.
        cache.end_offset_for(epoch, self.log_end_offset())
    }

    /// The latest leader epoch in the log, if any.
    pub fn latest_leader_epoch(&self) -> Option<i32> {
        self.leader_epochs.lock().latest_epoch()
    }

    /// The leader epoch that wrote `offset`, if known.
    pub fn leader_epoch_for_offset(&self, offset: i64) -> Option<i32> {
        self.leader_epochs.lock().epoch_for_offset(offset)
    }

    /// A copy of the cache (tests, tools).
    pub fn leader_epoch_cache(&self) -> LeaderEpochCache {
        self.leader_epochs.lock().clone()
    }

    /// Assigns `(epoch, start_offset)` pairs and checkpoints the cache if it changed. Returns
    /// whether it did. Caller holds `appender`.
    pub(super) fn assign_epochs_locked(&self, assignments: &[(i32, i64)]) -> Result<bool> {
        let newer = {
            let cache = self.leader_epochs.lock();
            let latest = cache.latest_epoch();
            assignments
                .iter()
                .any(|(e, _)| *e >= 0 && latest.is_none_or(|l| *e > l))
        };
        // The common case (same epoch as before) costs one comparison.
        if !newer {
            return Ok(false);
        }
        self.update_leader_epochs(|c| {
            let mut changed = false;
            for (epoch, start) in assignments {
                changed |= c.assign(*epoch, *start);
            }
            changed
        })
    }

    /// An append that assigned an epoch failed to write: forget entries from `first` on.
    pub(super) fn undo_epochs_locked(&self, assigned: bool, first: i64) {
        if assigned {
            if let Err(e) = self.update_leader_epochs(|c| c.truncate_from_end(first)) {
                tracing::warn!(partition = %self.tp, error = %e, "could not undo a leader epoch after a failed append");
            }
        }
    }

    /// Applies `change` to the cache; when it reports a change, checkpoints the result before
    /// making it current. A failed write takes the log directory offline like a failed append.
    pub(super) fn update_leader_epochs(
        &self,
        change: impl FnOnce(&mut LeaderEpochCache) -> bool,
    ) -> Result<bool> {
        let mut cache = self.leader_epochs.lock();
        let mut next = cache.clone();
        if !change(&mut next) {
            return Ok(false);
        }
        if let Err(e) = next.write_checkpoint() {
            if matches!(e, LogError::Io { .. }) {
                self.flusher.log_dir().mark_offline(&e);
            }
            return Err(e);
        }
        *cache = next;
        Ok(true)
    }

    /// Start-up: reads or rebuilds the cache, then fits it to `[log_start, log_end]`. See the
    /// module docs.
    pub(crate) fn load_leader_epoch_cache(&self) -> Result<()> {
        let _g = self.appender.lock();
        let start = self.log_start_offset();
        let end = self.log_end_offset();
        let (mut cache, mut changed) = match LeaderEpochCache::load(&self.dir) {
            Some(c) => (c, false),
            None => {
                let mut c = LeaderEpochCache::new(&self.dir);
                self.scan_producer_batches(start, end, |base, epoch, _| {
                    c.assign(epoch, base);
                })?;
                tracing::info!(partition = %self.tp, entries = c.entries().len(), "rebuilt the leader epoch cache from the log");
                (c, true)
            }
        };
        changed |= cache.truncate_from_end(end);
        changed |= cache.truncate_from_start(start);
        if changed {
            cache.write_checkpoint()?;
        }
        *self.leader_epochs.lock() = cache;
        Ok(())
    }
}
