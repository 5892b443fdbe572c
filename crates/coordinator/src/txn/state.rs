//! The transaction coordinator's values: [`TxnState`] (Kafka's `TransactionState`),
//! [`TxnMetadata`] per transactional id, [`TxnError`] (one Kafka error code each), the
//! configuration, and the two seams the broker implements: [`TxnMarkerWriter`] (COMMIT/ABORT
//! control batches into data partitions) and [`ProducerIdSource`] (durable producer ids).

use std::collections::BTreeSet;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::error::{GroupError, WriteError};

/// The state of one transactional id (codes as stored in `__transaction_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxnState {
    /// No transaction open.
    Empty,
    /// Partitions or offsets were added; the transaction is open.
    Ongoing,
    /// EndTxn(commit) accepted; markers being written.
    PrepareCommit,
    /// EndTxn(abort) or a timeout accepted; markers being written.
    PrepareAbort,
    /// The last transaction committed.
    CompleteCommit,
    /// The last transaction aborted.
    CompleteAbort,
    /// The id expired.
    Dead,
    /// Fencing in progress (Kafka's PrepareEpochFence; read only).
    PrepareEpochFence,
}

impl TxnState {
    /// Code in `TransactionLogValue.TransactionStatus`.
    pub fn code(self) -> i8 {
        match self {
            TxnState::Empty => 0,
            TxnState::Ongoing => 1,
            TxnState::PrepareCommit => 2,
            TxnState::PrepareAbort => 3,
            TxnState::CompleteCommit => 4,
            TxnState::CompleteAbort => 5,
            TxnState::Dead => 6,
            TxnState::PrepareEpochFence => 7,
        }
    }

    /// From a stored code.
    pub fn from_code(c: i8) -> Option<TxnState> {
        Some(match c {
            0 => TxnState::Empty,
            1 => TxnState::Ongoing,
            2 => TxnState::PrepareCommit,
            3 => TxnState::PrepareAbort,
            4 => TxnState::CompleteCommit,
            5 => TxnState::CompleteAbort,
            6 => TxnState::Dead,
            7 => TxnState::PrepareEpochFence,
            _ => return None,
        })
    }

    /// Kafka's name (ListTransactions / DescribeTransactions).
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    /// True while markers are being written.
    pub fn is_preparing(self) -> bool {
        matches!(
            self,
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence
        )
    }
}

impl fmt::Display for TxnState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Everything known about one transactional id (one `TransactionLogValue`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMetadata {
    /// The transactional id.
    pub transactional_id: String,
    /// Current producer id.
    pub producer_id: i64,
    /// Current epoch.
    pub producer_epoch: i16,
    /// `transaction.timeout.ms` the producer asked for.
    pub timeout_ms: i32,
    /// State.
    pub state: TxnState,
    /// Partitions in the current transaction (topic, partition), sorted.
    pub partitions: BTreeSet<(String, i32)>,
    /// Last change, wall-clock ms.
    pub last_update_ms: i64,
    /// When the current transaction started (-1: none).
    pub start_ms: i64,
    /// The leader epoch of the id's `__transaction_state` partition when this node loaded it
    /// (memory only, not stored): written in markers, and checked before every state change.
    pub coordinator_epoch: i32,
    /// Kafka's `ClientTransactionVersion`: the transaction version of the request that made the
    /// last transition — [`TXN_V2`] for AddPartitionsToTxn v5 / EndTxn v5 (KIP-890 part 2, the
    /// epoch is bumped at every EndTxn), 0 for the V1 requests and for aborts the coordinator
    /// starts itself (timeout, fencing), so the V2 "epoch + 1 is my own retry" rule never
    /// applies to an epoch the client did not bump. Stored (tag 2 of `TransactionLogValue` v1).
    pub client_transaction_version: i16,
    /// The producer id this transactional id used before its last producer-id rotation at a V2
    /// EndTxn (epoch overflow), -1 if none: lets a retried EndTxn of the old id succeed.
    /// Stored (tag 0).
    pub previous_producer_id: i64,
    /// In a V2 Prepare state whose epoch bump overflowed: the producer id the transaction moves to
    /// (with epoch 0) once its markers are written, -1 otherwise. Stored (tag 1) so a restart
    /// completes the rotation.
    pub next_producer_id: i64,
    /// The epoch the producer held before the last V2 EndTxn bumped it, -1 if unknown (memory
    /// only, as Kafka's `lastProducerEpoch`: -1 after a reload): an InitProducerId that expects
    /// it is a producer that missed that EndTxn's answer, and gets the current epoch unbumped.
    pub last_producer_epoch: i16,
}

/// `ClientTransactionVersion` of Transactions V2 (Kafka's `TransactionVersion.TV_2`).
pub const TXN_V2: i16 = 2;

impl TxnMetadata {
    /// True if the last transition was made by a V2 client request (epoch bumped at EndTxn).
    pub fn is_v2(&self) -> bool {
        self.client_transaction_version >= TXN_V2
    }
}

/// Why a transaction request failed. Each variant is one Kafka error code.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TxnError {
    /// The transactional id is empty.
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    /// The coordinator cannot write its log.
    #[error("the transaction coordinator is not available")]
    CoordinatorNotAvailable,
    /// This node does not lead the id's `__transaction_state` partition (any more).
    #[error("this node is not the transaction coordinator for the id")]
    NotCoordinator,
    /// This node leads the id's partition but is still replaying it.
    #[error("the transaction coordinator is loading the id's partition")]
    CoordinatorLoadInProgress,
    /// Markers of the previous transaction are still being written; retry.
    #[error("a transaction for this id is completing; retry")]
    ConcurrentTransactions,
    /// A newer producer with the same transactional id exists.
    #[error("producer fenced by a newer epoch")]
    ProducerFenced,
    /// The producer id does not belong to the transactional id.
    #[error("producer id does not match the transactional id")]
    InvalidProducerIdMapping,
    /// The request does not fit the state (e.g. commit after abort).
    #[error("invalid transaction state: {0}")]
    InvalidTxnState(&'static str),
    /// `transaction.timeout.ms` above `transaction.max.timeout.ms` or not positive.
    #[error("invalid transaction timeout")]
    InvalidTransactionTimeout,
    /// The transactional id is not known (DescribeTransactions).
    #[error("transactional id not found")]
    TransactionalIdNotFound,
    /// No producer id could be allocated.
    #[error("allocating a producer id failed: {0}")]
    ProducerIdUnavailable(String),
    /// `__transaction_state` could not be written.
    #[error("writing __transaction_state: {0}")]
    Write(#[from] WriteError),
    /// Committing the transaction's offsets failed.
    #[error("committing transactional offsets: {0}")]
    Group(#[from] GroupError),
}

/// Settings (Kafka's broker keys).
#[derive(Debug, Clone)]
pub struct TransactionCoordinatorConfig {
    /// `transaction.state.log.num.partitions`.
    pub partitions: i32,
    /// `transaction.max.timeout.ms`.
    pub max_timeout_ms: i32,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`.
    pub abort_check_interval: Duration,
    /// `transactional.id.expiration.ms`: an id that is Empty/CompleteCommit/CompleteAbort and
    /// unchanged for longer is removed (tombstone), checked every `abort_check_interval`.
    pub transactional_id_expiration_ms: i64,
}

impl Default for TransactionCoordinatorConfig {
    fn default() -> Self {
        TransactionCoordinatorConfig {
            partitions: 50,
            max_timeout_ms: 900_000,
            abort_check_interval: Duration::from_secs(10),
            transactional_id_expiration_ms: 604_800_000,
        }
    }
}

/// Markers for one partition set of one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMarker {
    /// The transaction's id (retrying stops once this node no longer coordinates it).
    pub transactional_id: String,
    /// Producer id.
    pub producer_id: i64,
    /// Epoch written in the control batches.
    pub producer_epoch: i16,
    /// The coordinator's epoch (control record value).
    pub coordinator_epoch: i32,
    /// COMMIT (true) or ABORT.
    pub commit: bool,
    /// Partitions to write to.
    pub partitions: Vec<(String, i32)>,
}

/// A boxed future of the seams below.
pub type SeamFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Writes transaction markers into data partitions. Implemented by the broker (partitions led
/// here are appended to directly, the others get a WriteTxnMarkers request to their leader; a
/// partition that no longer exists is skipped). The coordinator retries what a round could not
/// write (`markers.rs`).
pub trait TxnMarkerWriter: Send + Sync + fmt::Debug + 'static {
    /// One round: appends one COMMIT/ABORT control batch to every partition of `marker`;
    /// completes once every marker written is durable and replicated, with the partitions to
    /// try again (leader unknown, moved, not ready or unreachable).
    fn write_markers(
        &self,
        marker: TxnMarker,
    ) -> SeamFuture<'_, Result<Vec<(String, i32)>, WriteError>>;
}

/// Hands out producer ids that are never reused (the broker's durable allocator).
pub trait ProducerIdSource: Send + Sync + fmt::Debug + 'static {
    /// A fresh producer id.
    fn next_producer_id(&self) -> SeamFuture<'_, Result<i64, TxnError>>;
}

/// One row of ListTransactions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnListing {
    /// Transactional id.
    pub transactional_id: String,
    /// Producer id.
    pub producer_id: i64,
    /// State.
    pub state: TxnState,
}
