//! The one place where internal errors become Kafka error codes.

use kafka_protocol::error::ResponseError;
use strom_log::{LogError, ProducerStateError, ValidationError};

use crate::local_leaders::{Leader, LeaderWriteError};
use crate::producer_ids::ProducerIdError;
use crate::replication::AppendError;

/// Kafka error code for a storage error.
pub(crate) fn log_error_code(e: &LogError) -> i16 {
    match e {
        LogError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange.code(),
        LogError::InvalidBatch(_) => ResponseError::CorruptMessage.code(),
        LogError::BatchTooLarge { .. } => ResponseError::RecordListTooLarge.code(),
        LogError::InvalidConfig { .. } => ResponseError::InvalidConfig.code(),
        LogError::Closed(_) => ResponseError::NotLeaderOrFollower.code(),
        // Only a follower appending what its leader sent can hit this.
        LogError::NonContiguousFollowerAppend { .. } => ResponseError::UnknownServerError.code(),
        LogError::Producer(p) => producer_state_error_code(p),
        LogError::Io { .. }
        | LogError::DiskFull { .. }
        | LogError::CorruptSegment { .. }
        | LogError::LogDirOffline(_) => ResponseError::KafkaStorageError.code(),
    }
}

/// Kafka error code for an idempotent batch refused by the producer-state check.
pub(crate) fn producer_state_error_code(e: &ProducerStateError) -> i16 {
    match e {
        ProducerStateError::OutOfOrderSequence { .. } => {
            ResponseError::OutOfOrderSequenceNumber.code()
        }
        ProducerStateError::InvalidProducerEpoch { .. } => {
            ResponseError::InvalidProducerEpoch.code()
        }
        ProducerStateError::UnknownProducerId { .. } => ResponseError::UnknownProducerId.code(),
        ProducerStateError::UnverifiedTransaction { .. } => ResponseError::InvalidTxnState.code(),
        ProducerStateError::TransactionCoordinatorFenced { .. } => {
            ResponseError::TransactionCoordinatorFenced.code()
        }
    }
}

/// Kafka error code for a failed producer id allocation (InitProducerId).
pub(crate) fn producer_id_error_code(e: &ProducerIdError) -> i16 {
    match e {
        ProducerIdError::Metadata(_) => ResponseError::KafkaStorageError.code(),
        ProducerIdError::Exhausted => ResponseError::UnknownServerError.code(),
    }
}

/// Kafka error code for a rejected produce batch.
pub(crate) fn validation_error_code(e: &ValidationError) -> i16 {
    match e {
        ValidationError::Corrupt(_) => ResponseError::CorruptMessage.code(),
        ValidationError::TooLarge { .. } => ResponseError::MessageTooLarge.code(),
        ValidationError::InvalidRecord(_) => ResponseError::InvalidRecord.code(),
        ValidationError::Records {
            invalid_timestamp: true,
            ..
        } => ResponseError::InvalidTimestamp.code(),
        ValidationError::Records { .. } => ResponseError::InvalidRecord.code(),
    }
}

/// Kafka error code for a leader's append that was refused or did not complete as acks=all.
pub(crate) fn append_error_code(e: &AppendError) -> i16 {
    match e {
        AppendError::NotLeader => ResponseError::NotLeaderOrFollower.code(),
        AppendError::Log(e) => log_error_code(e),
        AppendError::NotEnoughReplicas => ResponseError::NotEnoughReplicas.code(),
        AppendError::NotEnoughReplicasAfterAppend => {
            ResponseError::NotEnoughReplicasAfterAppend.code()
        }
        AppendError::TimedOut => ResponseError::RequestTimedOut.code(),
    }
}

/// Kafka error code for a write refused before or by the append (WriteTxnMarkers).
pub(crate) fn leader_write_error_code(e: &LeaderWriteError<ValidationError>) -> i16 {
    match e {
        LeaderWriteError::NotHere(Leader::Unknown) => ResponseError::UnknownTopicOrPartition.code(),
        LeaderWriteError::NotHere(_) => ResponseError::NotLeaderOrFollower.code(),
        LeaderWriteError::Build(e) => validation_error_code(e),
        LeaderWriteError::Append(e) => append_error_code(e),
    }
}
