//! Transaction state of one cleaning pass (Kafka's `CleanedTransactionMetadata`).
//!
//! Fed every batch of the cleaned range in offset order, with the aborted transactions of that
//! range from the transaction index. It tells whether a data batch belongs to an aborted
//! transaction (its records are removed) and whether a control batch (COMMIT/ABORT marker) may be
//! discarded: only once no batch of its transaction was seen in this pass, i.e. its data is gone
//! from the log. Whether it then goes also depends on `delete.retention.ms` (see `clean.rs`).
//!
//! The cleaned segment's transaction index keeps an aborted transaction's entry only while its
//! data is still in the log (Kafka: the entry is appended to the cleaned index when its marker is
//! retained because batches of it were seen). Once the aborted data is gone the entry is dropped
//! even while the marker stays: a `read_committed` consumer then meets a marker for a producer it
//! has not marked aborted, which is harmless, and never keeps a producer marked aborted past a
//! removed marker.

use std::collections::{BTreeMap, HashMap};

use crate::producer_batch::{control_type, ControlType};
use crate::txn_index::AbortedTxn;
use crate::BatchView;

/// What the tracker says about a control batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MarkerFate {
    /// No batch of the transaction remains (in this pass): the marker may go once past its
    /// delete horizon.
    pub(crate) discardable: bool,
    /// Batches of the transaction were seen but none kept this pass: the next pass may discard it.
    pub(crate) data_gone_now: bool,
    /// An ABORT marker whose aborted-transaction entry stays in the index.
    pub(crate) keep_entry: Option<AbortedTxn>,
}

#[derive(Debug)]
struct Ongoing {
    entry: AbortedTxn,
    observed: bool,
}

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct TxnTracker {
    /// Aborted transactions not yet reached, by first offset.
    pending: BTreeMap<(i64, i64), AbortedTxn>,
    /// Aborted transactions reached whose marker has not been read: producer id → state.
    aborted: HashMap<i64, Ongoing>,
    /// Committed (not aborted) transactions with a batch seen whose marker has not been read:
    /// producer id → whether a record of it was kept.
    committed: HashMap<i64, bool>,
}

impl TxnTracker {
    /// A tracker over a range whose aborted transactions are `aborted`.
    pub(crate) fn new(aborted: Vec<AbortedTxn>) -> TxnTracker {
        TxnTracker {
            pending: aborted
                .into_iter()
                .map(|e| ((e.first_offset, e.last_offset), e))
                .collect(),
            ..Default::default()
        }
    }

    fn reach(&mut self, offset: i64) {
        while let Some(entry) = self.pending.first_key_value().map(|(_, e)| *e) {
            if entry.first_offset > offset {
                break;
            }
            self.pending.pop_first();
            self.aborted.entry(entry.producer_id).or_insert(Ongoing {
                entry,
                observed: false,
            });
        }
    }

    /// A data batch: true when it belongs to an aborted transaction (drop all of it).
    pub(crate) fn on_data(&mut self, view: &BatchView<'_>) -> bool {
        self.reach(view.last_offset());
        if !view.is_transactional() {
            return false;
        }
        let pid = view.producer_id();
        if let Some(o) = self.aborted.get_mut(&pid) {
            o.observed = true;
            return true;
        }
        self.committed.entry(pid).or_insert(false);
        false
    }

    /// Records of the (committed) transactional batch just passed to `on_data` were kept.
    pub(crate) fn kept_data(&mut self, producer_id: i64) {
        if let Some(k) = self.committed.get_mut(&producer_id) {
            *k = true;
        }
    }

    /// A control batch.
    pub(crate) fn on_control(&mut self, view: &BatchView<'_>) -> MarkerFate {
        self.reach(view.last_offset());
        let pid = view.producer_id();
        let gone = MarkerFate {
            discardable: true,
            data_gone_now: false,
            keep_entry: None,
        };
        if view.record_count() == 0 {
            return gone; // an empty control batch: already cleaned
        }
        match control_type(view.as_bytes()) {
            Some(ControlType::Abort) => match self.aborted.remove(&pid) {
                Some(o) if o.observed => MarkerFate {
                    discardable: false,
                    data_gone_now: true,
                    keep_entry: Some(o.entry),
                },
                _ => gone,
            },
            Some(ControlType::Commit) => match self.committed.remove(&pid) {
                Some(kept) => MarkerFate {
                    discardable: false,
                    data_gone_now: !kept,
                    keep_entry: None,
                },
                None => gone,
            },
            // Other control records (or unreadable ones) are kept as they are.
            _ => MarkerFate {
                discardable: false,
                data_gone_now: false,
                keep_entry: None,
            },
        }
    }
}
