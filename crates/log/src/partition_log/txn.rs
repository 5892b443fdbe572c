//! A partition log's transactions: applying markers (open transactions closed, aborted ones
//! indexed), the last stable offset (LSO), and the aborted transactions of a fetch range.
//!
//! LSO = min(first offset of the oldest open transaction, high watermark). Readers read the
//! high watermark *before* the open transactions: a transactional batch joins the open set at
//! append, before the high watermark can cover it, so a read never sees its data as stable.
//!
//! Concurrency: the write side runs under the appender lock (lock order: appender →
//! producer_state → txn_index); readers take `producer_state` and `txn_index` briefly, never
//! nested with the high-watermark lock.

use std::fs::File;
use std::sync::Arc;

use super::{LogOffsetMetadata, PartitionLog};
use crate::error::{LogError, Result};
use crate::producer_state::{CompletedTxn, PendingProducerState};
use crate::txn_index::{AbortedTxn, TransactionIndex};

impl PartitionLog {
    /// Commits an append's producer-state changes and indexes the transactions it aborted.
    /// Returns the `.txnindex` files to fdatasync with the append. Caller holds the appender.
    pub(super) fn apply_producer_state(
        &self,
        pending: PendingProducerState,
        segment_base: i64,
    ) -> Result<Vec<Arc<File>>> {
        self.spend_verifications(&pending.transactional);
        let completed: Vec<CompletedTxn> = pending.completed.clone();
        let first_unstable = {
            let mut state = self.producer_state.lock();
            state.apply(pending);
            state.first_unstable_offset()
        };
        let mut files = Vec::new();
        for c in completed.iter().filter(|c| c.aborted) {
            let entry = AbortedTxn {
                producer_id: c.producer_id,
                first_offset: c.first_offset,
                last_offset: c.last_offset,
                last_stable_offset: first_unstable
                    .map_or(c.last_offset + 1, |f| f.min(c.last_offset + 1)),
            };
            match self.txn_index.lock().append(segment_base, entry) {
                Ok(Some(f)) => files.push(Arc::new(f)),
                Ok(None) => {}
                Err(e) => {
                    self.flusher.log_dir().mark_offline(&e);
                    return Err(e);
                }
            }
        }
        Ok(files)
    }

    /// The last stable offset: `read_committed` consumers read below it.
    pub fn last_stable_offset(&self) -> i64 {
        let hw = self.high_watermark();
        match self.producer_state.lock().first_unstable_offset() {
            Some(f) => f.min(hw),
            None => hw,
        }
    }

    /// The LSO with its position, as a read bound.
    pub(super) fn last_stable_metadata(&self) -> Result<LogOffsetMetadata> {
        let hw = *self.high_watermark.lock();
        let first = self.producer_state.lock().first_unstable_offset();
        match first {
            Some(f) if f < hw.offset => self.offset_metadata(f.max(self.log_start_offset())),
            _ => Ok(hw),
        }
    }

    /// Aborted transactions with data in `[from, upper)` (Fetch `aborted_transactions`).
    pub fn aborted_transactions(&self, from: i64, upper: i64) -> Vec<AbortedTxn> {
        self.txn_index.lock().collect(from, upper)
    }

    /// Every indexed aborted transaction (tests, tools).
    pub fn all_aborted_transactions(&self) -> Vec<AbortedTxn> {
        self.txn_index.lock().all()
    }

    /// Open transactions here: producer id → first offset (DescribeProducers).
    pub fn ongoing_transactions(&self) -> std::collections::BTreeMap<i64, i64> {
        self.producer_state.lock().ongoing_txns().clone()
    }

    /// Loads the `.txnindex` files and adds the aborted transactions found by the producer-state
    /// replay that they lack (markers written after the last flush of the index). Caller holds
    /// the appender.
    pub(super) fn load_txn_index_locked(&self, replayed: &[CompletedTxn]) -> Result<()> {
        let end = self.log_end_offset();
        let mut idx = TransactionIndex::load(&self.dir, end)?;
        for c in replayed.iter().filter(|c| c.aborted && c.last_offset < end) {
            let base = self.floor_segment(c.last_offset)?.base_offset();
            let entry = AbortedTxn {
                producer_id: c.producer_id,
                first_offset: c.first_offset,
                last_offset: c.last_offset,
                last_stable_offset: c.last_offset + 1,
            };
            if let Some(f) = idx.append(base, entry)? {
                f.sync_data()
                    .map_err(|e| LogError::io(self.dir.clone(), e))?;
            }
        }
        *self.txn_index.lock() = idx;
        Ok(())
    }

    /// The cleaner swapped the segments at `old` for one at `new_base`; `kept` are the aborted
    /// transactions whose data remains there (see `cleaner/txn.rs`).
    pub(crate) fn replace_cleaned_txn_index(
        &self,
        old: &[i64],
        new_base: i64,
        kept: Vec<AbortedTxn>,
    ) -> Result<()> {
        self.txn_index.lock().replace_segments(old, new_base, kept)
    }

    /// Retention removed the segments below `base`: drop their index files.
    pub(super) fn delete_txn_index_below(&self, base: i64) -> Result<()> {
        self.txn_index.lock().delete_below(base)
    }
}
