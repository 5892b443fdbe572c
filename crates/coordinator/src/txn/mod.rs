//! The transaction coordinator (Kafka's `TransactionCoordinator`): one state machine per
//! `transactional.id` — Empty → Ongoing → PrepareCommit/PrepareAbort → CompleteCommit/
//! CompleteAbort → (next transaction) Ongoing … — persisted as `__transaction_state` records in
//! Kafka's schemas (`record.rs`) on partition `abs(hashCode(id)) % transaction.state.log.num.partitions`,
//! written through the same [`PartitionWriter`] seam as the group coordinator and replayed at
//! start-up ([`TransactionCoordinator::load`]).
//!
//! Every transition is a record made durable *before* memory changes and before the response:
//! a request builds the next [`TxnMetadata`], persists it, then installs it. Ending a
//! transaction writes PrepareCommit/PrepareAbort, then the COMMIT/ABORT markers into every
//! partition of the transaction (through [`TxnMarkerWriter`], which the broker implements) —
//! including the groups' `__consumer_offsets` partitions that AddOffsetsToTxn added — then
//! tells the group coordinator that the markers are durable there (its pending transactional
//! offsets, written by TxnOffsetCommit into `__consumer_offsets` inside the transaction, become
//! visible or are dropped: `offsets.rs`), then CompleteCommit/CompleteAbort. A restart finds any transaction stuck in a Prepare state and completes it; an
//! Ongoing one stays open until its producer ends it, a new producer with the same id fences
//! it (abort with a bumped epoch), or `transaction.timeout.ms` passes (proactive abort, also
//! with a bumped epoch so the zombie producer is fenced).
//!
//! The same timer removes ids idle (Empty/CompleteCommit/CompleteAbort, unchanged) for longer
//! than `transactional.id.expiration.ms`: a tombstone in `__transaction_state`, then the id is
//! dropped from memory (and stays gone after replay).
//!
//! Transactions V2 (KIP-890 part 2: epoch bump on every commit/abort) is not implemented: the
//! broker does not advertise EndTxn v5 / Produce v12, so clients use V1. Not here yet either:
//! the PrepareEpochFence state (fencing writes PrepareAbort with the bumped epoch directly).
//!
//! Concurrency: one async mutex per transactional id, held for a whole operation including its
//! writes (operations on one id are serial, as Kafka's per-id state lock); records go through
//! one appender task per `__transaction_state` partition. Different ids proceed in parallel.

mod offsets;
mod ops;
mod record;
mod state;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::coordinator::now_ms;
use crate::error::WriteError;
use crate::writer::{wait, Appender, PartitionWriter};
use crate::GroupCoordinator;

pub(crate) use offsets::PendingTxnOffsets;
pub use offsets::TxnCommitMember;
pub use state::{
    ProducerIdSource, SeamFuture, TransactionCoordinatorConfig, TxnError, TxnListing, TxnMarker,
    TxnMarkerWriter, TxnMetadata, TxnState,
};

/// The internal topic holding transaction state.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

type TxnRef = Arc<tokio::sync::Mutex<TxnMetadata>>;

/// This node's transaction coordinator. Cheap to clone (`Arc` inside); thread-safe.
#[derive(Debug, Clone)]
pub struct TransactionCoordinator {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: TransactionCoordinatorConfig,
    writer: Arc<dyn PartitionWriter>,
    markers: Arc<dyn TxnMarkerWriter>,
    ids: Arc<dyn ProducerIdSource>,
    groups: GroupCoordinator,
    txns: Mutex<HashMap<String, TxnRef>>,
    appenders: Mutex<HashMap<i32, Arc<Appender>>>,
    loaded: AtomicBool,
    timer: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(t) = self.timer.lock().take() {
            t.abort();
        }
    }
}

impl TransactionCoordinator {
    /// A coordinator with nothing loaded; call [`TransactionCoordinator::load`] before serving.
    pub fn new(
        config: TransactionCoordinatorConfig,
        writer: Arc<dyn PartitionWriter>,
        markers: Arc<dyn TxnMarkerWriter>,
        ids: Arc<dyn ProducerIdSource>,
        groups: GroupCoordinator,
    ) -> Self {
        TransactionCoordinator {
            inner: Arc::new(Inner {
                config,
                writer,
                markers,
                ids,
                groups,
                txns: Mutex::new(HashMap::new()),
                appenders: Mutex::new(HashMap::new()),
                loaded: AtomicBool::new(false),
                timer: Mutex::new(None),
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &TransactionCoordinatorConfig {
        &self.inner.config
    }

    /// The `__transaction_state` partition of a transactional id.
    pub fn partition_for(&self, transactional_id: &str) -> i32 {
        crate::record::partition_for(transactional_id, self.inner.config.partitions)
    }

    /// Replays every partition of `__transaction_state`, then (on the current runtime) completes
    /// the transactions found in a Prepare state and starts the timeout task.
    pub fn load(&self) -> Result<(), WriteError> {
        let mut states: HashMap<String, TxnMetadata> = HashMap::new();
        for p in 0..self.inner.config.partitions {
            for (id, m) in record::read_partition(self.inner.writer.as_ref(), p)? {
                match m {
                    Some(m) => states.insert(id, m),
                    None => states.remove(&id),
                };
            }
        }
        let mut prepared = Vec::new();
        {
            let mut txns = self.inner.txns.lock();
            for (id, m) in states {
                if m.state.is_preparing() {
                    prepared.push(id.clone());
                }
                txns.insert(id, Arc::new(tokio::sync::Mutex::new(m)));
            }
            tracing::info!(
                transactions = txns.len(),
                completing = prepared.len(),
                "loaded __transaction_state"
            );
        }
        self.inner.loaded.store(true, Ordering::Release);
        for id in prepared {
            let this = self.clone();
            tokio::spawn(async move {
                if let Err(e) = this.resume(&id).await {
                    tracing::warn!(transactional_id = %id, error = %e, "completing a prepared transaction after restart failed; the producer's retry or the timeout will finish it");
                }
            });
        }
        self.start_timeout_task();
        Ok(())
    }

    fn start_timeout_task(&self) {
        let weak = Arc::downgrade(&self.inner);
        let every = self.inner.config.abort_check_interval;
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { break };
                let this = TransactionCoordinator { inner };
                this.abort_timed_out(now_ms()).await;
                this.expire_transactional_ids(now_ms()).await;
            }
        });
        if let Some(old) = self.inner.timer.lock().replace(task) {
            old.abort();
        }
    }

    /// Fails with COORDINATOR_NOT_AVAILABLE until loaded.
    pub fn check_available(&self) -> Result<(), TxnError> {
        if self.inner.loaded.load(Ordering::Acquire) {
            Ok(())
        } else {
            Err(TxnError::CoordinatorNotAvailable)
        }
    }

    fn get(&self, id: &str) -> Option<TxnRef> {
        self.inner.txns.lock().get(id).cloned()
    }

    fn all(&self) -> Vec<TxnRef> {
        self.inner.txns.lock().values().cloned().collect()
    }

    /// Makes `m` durable in `__transaction_state`.
    async fn persist(&self, m: &TxnMetadata) -> Result<(), TxnError> {
        self.append(&m.transactional_id, record::encode(m)).await
    }

    /// Makes `rec` (a state or a tombstone of `transactional_id`) durable in its partition.
    async fn append(&self, transactional_id: &str, rec: crate::Record) -> Result<(), TxnError> {
        let partition = self.partition_for(transactional_id);
        let appender = self
            .inner
            .appenders
            .lock()
            .entry(partition)
            .or_insert_with(|| Arc::new(Appender::spawn(self.inner.writer.clone(), partition)))
            .clone();
        let pending = appender.enqueue(vec![rec]);
        wait(pending).await.map_err(|e| match e {
            crate::GroupError::Write(w) => TxnError::Write(w),
            other => TxnError::Group(other),
        })
    }

    /// ListTransactions: ids filtered by state names and producer ids (empty = all).
    pub async fn list_transactions(
        &self,
        states: &[String],
        producer_ids: &[i64],
    ) -> Vec<TxnListing> {
        let mut out = Vec::new();
        for t in self.all() {
            let m = t.lock().await;
            if m.producer_id < 0
                || m.state == TxnState::Dead
                || (!states.is_empty() && !states.iter().any(|s| s == m.state.name()))
                || (!producer_ids.is_empty() && !producer_ids.contains(&m.producer_id))
            {
                continue;
            }
            out.push(TxnListing {
                transactional_id: m.transactional_id.clone(),
                producer_id: m.producer_id,
                state: m.state,
            });
        }
        out.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        out
    }

    /// DescribeTransactions: the state of one id.
    pub async fn describe_transaction(&self, id: &str) -> Result<TxnMetadata, TxnError> {
        self.check_available()?;
        let t = self.get(id).ok_or(TxnError::TransactionalIdNotFound)?;
        let m = t.lock().await;
        if m.producer_id < 0 || m.state == TxnState::Dead {
            return Err(TxnError::TransactionalIdNotFound);
        }
        Ok(m.clone())
    }
}
