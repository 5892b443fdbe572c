//! Strom's partition logs: the durable storage engine under every topic partition.
//!
//! A partition is a directory `<topic>-<partition>/` of segments named by base offset
//! (`00000000000000000000.log`, `.index`, `.timeindex`), Kafka's layout byte for byte: segment files
//! hold v2 record batches exactly as producers sent them. Idempotent producers' sequences and open
//! transactions live in a `ProducerStateManager` per partition, snapshotted to `<offset>.snapshot`
//! at each segment roll; aborted transactions in per-segment `.txnindex` files (`TransactionIndex`);
//! the leader epoch of each offset range in `leader-epoch-checkpoint` ([`LeaderEpochCache`]).
//! Followers append the leader's batches unchanged (`PartitionLog::append_as_follower`).
//! See `docs/ARCHITECTURE.md`.
//!
//! Durability contract: an append is acknowledged only after its bytes are fdatasync'd
//! (`flush.messages` = 1, the default), with group commit across all partitions of a log
//! directory ([`FlushScheduler`]). A failed fsync takes the directory offline.
//!
//! This crate must not depend on tokio::net or on crates/broker: it knows nothing of the network.

mod batch;
mod checkpoint;
mod cleaner;
mod clock;
mod config;
mod durable_file;
mod error;
mod flush;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
mod index;
mod leader_epoch;
mod manager;
mod partition_log;
mod producer_batch;
mod producer_snapshot;
mod producer_state;
mod read;
mod records;
mod segment;
#[cfg(test)]
mod testing;
mod topic_partition;
mod txn_index;
mod validator;

pub use batch::{
    batch_size, BatchError, BatchMut, BatchView, Batches, BATCH_HEADER_LEN, LOG_OVERHEAD,
};
pub use cleaner::{CleanerConfig, CleanerStats};
pub use clock::{now_ms, now_ms_unsigned};
pub use config::{
    topic_config, validate_topic_configs, ConfigDef, ConfigType, LogConfig, TimestampType,
    TOPIC_CONFIGS,
};
pub use durable_file::{fsync_dir, write_durably};
pub use error::{LogError, Result};
pub use flush::{FlushScheduler, LogDir};
pub use leader_epoch::{
    end_offset_for_epoch, EpochEntry, LeaderEpochCache, UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET,
};
pub use manager::{LogManager, LogManagerConfig};
pub use partition_log::{
    HighWatermarkPolicy, LogAppendInfo, LogOffsetMetadata, PartitionLog, VerificationGuard,
};
pub use producer_batch::{
    control_type, increment_sequence, BatchMetadata, ControlType, ProducerBatch,
};
pub use producer_state::{
    CompletedTxn, ProducerStateEntry, ProducerStateError, ProducerStateManager,
    DEFAULT_PRODUCER_ID_EXPIRATION_MS, NUM_BATCHES_TO_RETAIN,
};
pub use read::{FetchDataInfo, FileSlice, ReadBound};
pub use records::{
    decompression_limit, BatchRecords, Header, Headers, Record, RecordError, RecordIter,
};
pub use segment::LogSegment;
pub use topic_partition::TopicPartition;
pub use txn_index::AbortedTxn;
pub use validator::{
    validate_batches, validate_control_batches, AppendedBatch, RejectedRecord, ValidatedBatches,
    ValidationError,
};
#[cfg(test)]
mod tests;
