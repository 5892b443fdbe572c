//! The one place where internal errors become Kafka error codes.

use kafka_protocol::error::ResponseError;
use strom_log::{LogError, ValidationError};

/// Kafka error code for a storage error.
pub(crate) fn log_error_code(e: &LogError) -> i16 {
    match e {
        LogError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange.code(),
        LogError::InvalidBatch(_) => ResponseError::CorruptMessage.code(),
        LogError::BatchTooLarge { .. } => ResponseError::RecordListTooLarge.code(),
        LogError::InvalidConfig { .. } => ResponseError::InvalidConfig.code(),
        LogError::Closed(_) => ResponseError::NotLeaderOrFollower.code(),
        LogError::Io { .. }
        | LogError::DiskFull { .. }
        | LogError::CorruptSegment { .. }
        | LogError::LogDirOffline(_) => ResponseError::KafkaStorageError.code(),
    }
}

/// Kafka error code for a rejected produce batch.
pub(crate) fn validation_error_code(e: &ValidationError) -> i16 {
    match e {
        ValidationError::Corrupt(_) => ResponseError::CorruptMessage.code(),
        ValidationError::TooLarge { .. } => ResponseError::MessageTooLarge.code(),
        ValidationError::InvalidRecord(_) => ResponseError::InvalidRecord.code(),
        ValidationError::InvalidTimestamp { .. } => ResponseError::InvalidTimestamp.code(),
    }
}
