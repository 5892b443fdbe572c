//! The transaction coordinator (Kafka's `TransactionCoordinator`): one state machine per
//! `transactional.id` — Empty → Ongoing → PrepareCommit/PrepareAbort → CompleteCommit/
//! CompleteAbort → (next transaction) Ongoing … — persisted as `__transaction_state` records in
//! Kafka's schemas (`record.rs`) on partition `abs(hashCode(id)) % transaction.state.log.num.partitions`,
//! written through the same [`PartitionWriter`] seam as the group coordinator. A node serves the
//! ids of the `__transaction_state` partitions it leads: the broker loads a partition when this
//! node becomes its leader (`begin_load`, `read_partition` off the async workers, `install`) and
//! unloads it when leadership moves; ids of other partitions get NOT_COORDINATOR, of a loading
//! one COORDINATOR_LOAD_IN_PROGRESS. The partition's leader epoch at load is the coordinator
//! epoch written in markers, and a state change of an id loaded under an older epoch is refused
//! (NOT_COORDINATOR), so an operation that outlived an unload cannot write stale state.
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
//! Transactions V2 (KIP-890 part 2, Kafka 4.0's coordinator rules) sits beside V1, chosen per
//! request: `end_txn(.., transaction_v2)` (EndTxn v5+) bumps the producer epoch at every commit
//! or abort — the Prepare record and the markers carry the bumped epoch, so a late write of the
//! old epoch is fenced at the partition, and the producer is answered the id and epoch to use
//! next (from `i16::MAX - 1` the bump moves it to a new producer id from the
//! [`ProducerIdSource`], epoch 0, once the markers are written). A retried EndTxn carries the
//! epoch before the bump and succeeds if that bump was its own EndTxn's (never a coordinator
//! abort's); the other retries fail as in Kafka (table at `end_txn_v2`). V2 clients send no
//! AddPartitionsToTxn/AddOffsetsToTxn: partition leaders add partitions for them with the
//! producer's current epoch (`add_partitions_v2`, also for TxnOffsetCommit v5's
//! `__consumer_offsets` partition). Each transition records the request's transaction version
//! (`TxnMetadata::client_transaction_version`); a V2 state is stored as `TransactionLogValue`
//! v1 with its tagged previous/next producer id, V1 states stay v0 (`record.rs`), and V1
//! requests behave as before. Not here: the PrepareEpochFence state (fencing writes
//! PrepareAbort with the bumped epoch directly), and Kafka's double bump when it fences a V2
//! transaction (one bump, recorded as a coordinator abort, fences the old epoch the same way).
//!
//! Concurrency: one async mutex per transactional id, held for a whole operation including its
//! writes (operations on one id are serial, as Kafka's per-id state lock); records go through
//! one appender task per `__transaction_state` partition. Different ids proceed in parallel.

mod end;
mod markers;
mod offsets;
mod ops;
mod record;
mod state;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::error::WriteError;
use crate::writer::{wait, Appender, PartitionWriter};
use crate::GroupCoordinator;
use strom_log::now_ms;

pub(crate) use offsets::PendingTxnOffsets;
pub use offsets::TxnCommitMember;
pub use state::{
    ProducerIdSource, SeamFuture, TransactionCoordinatorConfig, TxnError, TxnListing, TxnMarker,
    TxnMarkerWriter, TxnMetadata, TxnState, TXN_V2,
};

/// The internal topic holding transaction state.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

type TxnRef = Arc<tokio::sync::Mutex<TxnMetadata>>;

/// A `__transaction_state` partition this node coordinates.
#[derive(Debug)]
enum Owned {
    /// Being replayed: its ids answer COORDINATOR_LOAD_IN_PROGRESS.
    Loading,
    /// Served: the coordinator epoch it was loaded with, and its single appender.
    Loaded { epoch: i32, appender: Arc<Appender> },
}

/// The ids replayed from one `__transaction_state` partition, not yet served
/// ([`TransactionCoordinator::read_partition`], then [`TransactionCoordinator::install`]).
#[derive(Debug)]
pub struct LoadedTxns {
    partition: i32,
    states: HashMap<String, TxnMetadata>,
}

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
    /// The `__transaction_state` partitions coordinated here (led by this node).
    partitions: Mutex<HashMap<i32, Owned>>,
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
                partitions: Mutex::new(HashMap::new()),
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

    /// Loads every partition of `__transaction_state` with coordinator epoch 0 (tests and
    /// tools; the broker loads the partitions it leads one by one).
    pub fn load(&self) -> Result<(), WriteError> {
        for p in 0..self.inner.config.partitions {
            let loaded = self.read_partition(p)?;
            self.install(loaded, 0);
        }
        Ok(())
    }

    /// Marks `partition` as being loaded: its ids answer COORDINATOR_LOAD_IN_PROGRESS until
    /// [`TransactionCoordinator::install`]. Anything loaded before is dropped first.
    pub fn begin_load(&self, partition: i32) {
        self.unload_partition(partition);
        self.inner
            .partitions
            .lock()
            .insert(partition, Owned::Loading);
    }

    /// Replays one partition (blocking disk I/O: call off the async workers).
    pub fn read_partition(&self, partition: i32) -> Result<LoadedTxns, WriteError> {
        let mut states: HashMap<String, TxnMetadata> = HashMap::new();
        for (id, m) in record::read_partition(self.inner.writer.as_ref(), partition)? {
            match m {
                Some(m) => states.insert(id, m),
                None => states.remove(&id),
            };
        }
        Ok(LoadedTxns { partition, states })
    }

    /// Starts serving a replayed partition under `coordinator_epoch` (its leader epoch), then
    /// (on the current runtime) completes the transactions found in a Prepare state and makes
    /// sure the timeout task runs.
    pub fn install(&self, loaded: LoadedTxns, coordinator_epoch: i32) {
        let LoadedTxns { partition, states } = loaded;
        let mut prepared = Vec::new();
        {
            let mut txns = self.inner.txns.lock();
            let n = self.inner.config.partitions;
            txns.retain(|id, _| crate::record::partition_for(id, n) != partition);
            for (id, mut m) in states {
                if m.state.is_preparing() {
                    prepared.push(id.clone());
                }
                m.coordinator_epoch = coordinator_epoch;
                txns.insert(id, Arc::new(tokio::sync::Mutex::new(m)));
            }
        }
        let appender = Arc::new(Appender::spawn(self.inner.writer.clone(), partition));
        self.inner.partitions.lock().insert(
            partition,
            Owned::Loaded {
                epoch: coordinator_epoch,
                appender,
            },
        );
        tracing::debug!(
            partition,
            coordinator_epoch,
            completing = prepared.len(),
            "loaded __transaction_state partition"
        );
        for id in prepared {
            let this = self.clone();
            tokio::spawn(async move {
                if let Err(e) = this.resume(&id).await {
                    tracing::warn!(transactional_id = %id, error = %e, "completing a prepared transaction after load failed; the producer's retry or the timeout will finish it");
                }
            });
        }
        if self.inner.timer.lock().is_none() {
            self.start_timeout_task();
        }
    }

    /// Stops serving `partition`'s ids. Operations still running on them fail at their next
    /// write (NOT_COORDINATOR).
    pub fn unload_partition(&self, partition: i32) {
        self.inner.partitions.lock().remove(&partition);
        let n = self.inner.config.partitions;
        self.inner
            .txns
            .lock()
            .retain(|id, _| crate::record::partition_for(id, n) != partition);
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

    /// The coordinator epoch of `transactional_id`'s partition if it is served here;
    /// NOT_COORDINATOR if not led here, COORDINATOR_LOAD_IN_PROGRESS while loading.
    pub fn check_owned(&self, transactional_id: &str) -> Result<i32, TxnError> {
        match self
            .inner
            .partitions
            .lock()
            .get(&self.partition_for(transactional_id))
        {
            Some(Owned::Loaded { epoch, .. }) => Ok(*epoch),
            Some(Owned::Loading) => Err(TxnError::CoordinatorLoadInProgress),
            None => Err(TxnError::NotCoordinator),
        }
    }

    /// Whether `partition` is loaded and served here.
    pub fn is_loaded(&self, partition: i32) -> bool {
        matches!(
            self.inner.partitions.lock().get(&partition),
            Some(Owned::Loaded { .. })
        )
    }

    /// Whether some partition led here is still loading (ListTransactions reports it).
    pub fn load_in_progress(&self) -> bool {
        self.inner
            .partitions
            .lock()
            .values()
            .any(|p| matches!(p, Owned::Loading))
    }

    fn get(&self, id: &str) -> Option<TxnRef> {
        self.inner.txns.lock().get(id).cloned()
    }

    fn all(&self) -> Vec<TxnRef> {
        self.inner.txns.lock().values().cloned().collect()
    }

    /// Makes `m` durable in `__transaction_state`, unless its partition was reloaded (or
    /// unloaded) since `m` was loaded: then NOT_COORDINATOR, and nothing is written.
    async fn persist(&self, m: &TxnMetadata) -> Result<(), TxnError> {
        if self.check_owned(&m.transactional_id)? != m.coordinator_epoch {
            return Err(TxnError::NotCoordinator);
        }
        self.append(&m.transactional_id, record::encode(m)).await
    }

    /// Makes `rec` (a state or a tombstone of `transactional_id`) durable in its partition.
    async fn append(&self, transactional_id: &str, rec: crate::Record) -> Result<(), TxnError> {
        let partition = self.partition_for(transactional_id);
        let appender = match self.inner.partitions.lock().get(&partition) {
            Some(Owned::Loaded { appender, .. }) => appender.clone(),
            Some(Owned::Loading) => return Err(TxnError::CoordinatorLoadInProgress),
            None => return Err(TxnError::NotCoordinator),
        };
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
        self.check_owned(id)?;
        let t = self.get(id).ok_or(TxnError::TransactionalIdNotFound)?;
        let m = t.lock().await;
        if m.producer_id < 0 || m.state == TxnState::Dead {
            return Err(TxnError::TransactionalIdNotFound);
        }
        Ok(m.clone())
    }
}
