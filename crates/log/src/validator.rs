//! `LogValidator`: checks a producer's record batches before anything touches the log.
//!
//! Parse, then validate, then act: the broker hands the raw `records` bytes of a produce request
//! here; what comes back is a [`ValidatedBatches`] the log can append without looking again.
//! Validation never decompresses: CRC-32C covers the compressed bytes, so a batch that passes is
//! exactly what the producer built. Uncompressed batches are walked record by record (lengths
//! only, no allocation) to catch a `recordCount` that lies.

use bytes::Bytes;

use crate::batch::{BatchError, BatchView, Batches, BATCH_HEADER_LEN};
use crate::config::LogConfig;

/// Why a produce batch was refused; the broker maps each to a Kafka error code.
#[derive(Debug, thiserror::Error)]
pub enum ValidationError {
    /// Structurally broken or failing its CRC: CORRUPT_MESSAGE.
    #[error("corrupt batch: {0}")]
    Corrupt(#[from] BatchError),
    /// Larger than `max.message.bytes`: MESSAGE_TOO_LARGE.
    #[error("batch of {size} bytes exceeds max.message.bytes {max}")]
    TooLarge {
        /// Batch size.
        size: usize,
        /// The limit.
        max: i32,
    },
    /// Semantically wrong (no records, bad counts, control batch from a client): INVALID_RECORD.
    #[error("invalid record: {0}")]
    InvalidRecord(&'static str),
    /// Timestamp outside `message.timestamp.{before,after}.max.ms`: INVALID_TIMESTAMP.
    #[error("timestamp {timestamp} out of the accepted range")]
    InvalidTimestamp {
        /// The offending max timestamp.
        timestamp: i64,
    },
}

/// Where one batch sits in the request buffer, and what it will be once appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendedBatch {
    /// Byte offset of the batch in the records buffer.
    pub start: usize,
    /// Size in bytes.
    pub size: u64,
    /// Offset assigned (filled in by the log at append).
    pub base_offset: i64,
    /// Last offset assigned.
    pub last_offset: i64,
    /// `lastOffsetDelta` from the batch.
    pub last_offset_delta: i32,
    /// Max timestamp (after LogAppendTime, if configured).
    pub max_timestamp: i64,
    /// Record count.
    pub record_count: i32,
}

/// Batches that passed validation, ready for [`crate::PartitionLog::append`].
#[derive(Debug, Clone)]
pub struct ValidatedBatches {
    pub(crate) bytes: Bytes,
    pub(crate) batches: Vec<AppendedBatch>,
    pub(crate) log_append_time: bool,
}

impl ValidatedBatches {
    /// Number of batches.
    pub fn len(&self) -> usize {
        self.batches.len()
    }
    /// True when there are no batches.
    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }
    /// Total records.
    pub fn record_count(&self) -> i64 {
        self.batches.iter().map(|b| i64::from(b.record_count)).sum()
    }
    /// Total bytes.
    pub fn size(&self) -> u64 {
        self.bytes.len() as u64
    }
    /// The first batch's header (producer id, epoch, sequence...).
    pub fn first_batch(&self) -> Option<BatchView<'_>> {
        BatchView::parse(&self.bytes).ok()
    }
}

/// Validates a produce request's records against the topic's config.
pub fn validate_batches(
    records: Bytes,
    config: &LogConfig,
    now_ms: i64,
) -> Result<ValidatedBatches, ValidationError> {
    validate(records, config, now_ms, false)
}

/// Validates transaction markers (control batches) written by the transaction coordinator;
/// otherwise as [`validate_batches`].
pub fn validate_control_batches(
    records: Bytes,
    config: &LogConfig,
    now_ms: i64,
) -> Result<ValidatedBatches, ValidationError> {
    validate(records, config, now_ms, true)
}

fn validate(
    records: Bytes,
    config: &LogConfig,
    now_ms: i64,
    allow_control: bool,
) -> Result<ValidatedBatches, ValidationError> {
    let mut batches = Vec::with_capacity(1);
    let mut start = 0usize;
    for view in Batches::new(&records) {
        let view = view?;
        view.validate()?;
        if view.size() > config.max_message_bytes.max(0) as usize {
            return Err(ValidationError::TooLarge {
                size: view.size(),
                max: config.max_message_bytes,
            });
        }
        if view.is_control() && !allow_control {
            return Err(ValidationError::InvalidRecord(
                "clients may not send control batches",
            ));
        }
        if view.producer_id() >= 0
            && !view.is_control()
            && (view.base_sequence() < 0 || view.producer_epoch() < 0)
        {
            return Err(ValidationError::InvalidRecord(
                "idempotent batch without a sequence number or epoch",
            ));
        }
        if view.compression() == 0 {
            check_uncompressed_records(&view)?;
        } else if view.compression() > 4 {
            return Err(ValidationError::InvalidRecord("unknown compression codec"));
        }
        if config.compact_enabled {
            check_keys(&view)?;
        }
        let max_ts = view.max_timestamp();
        if config.message_timestamp_type == crate::config::TimestampType::CreateTime && max_ts >= 0
        {
            let before = config
                .values
                .get("message.timestamp.before.max.ms")
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(i64::MAX);
            let after = config
                .values
                .get("message.timestamp.after.max.ms")
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(i64::MAX);
            if now_ms.saturating_sub(max_ts) > before || max_ts.saturating_sub(now_ms) > after {
                return Err(ValidationError::InvalidTimestamp { timestamp: max_ts });
            }
        }
        batches.push(AppendedBatch {
            start,
            size: view.size() as u64,
            base_offset: -1,
            last_offset: -1,
            last_offset_delta: view.last_offset_delta(),
            max_timestamp: max_ts,
            record_count: view.record_count(),
        });
        start += view.size();
    }
    if batches.is_empty() || start != records.len() {
        return Err(ValidationError::Corrupt(BatchError::Truncated {
            needed: BATCH_HEADER_LEN,
            available: records.len() - start,
        }));
    }
    Ok(ValidatedBatches {
        bytes: records,
        batches,
        log_append_time: config.message_timestamp_type
            == crate::config::TimestampType::LogAppendTime,
    })
}

/// Reads a zig-zag varint; `None` when the buffer ends first or it is too long.
fn read_varint(buf: &[u8], pos: &mut usize) -> Option<i64> {
    let mut value: u64 = 0;
    for shift in (0..70).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(((value >> 1) as i64) ^ -((value & 1) as i64));
        }
    }
    None
}

/// Walks the records of an uncompressed batch by their length prefixes: the count must match and
/// the records must fill the batch exactly.
fn check_uncompressed_records(view: &BatchView<'_>) -> Result<(), ValidationError> {
    let body = &view.as_bytes()[BATCH_HEADER_LEN..];
    let mut pos = 0usize;
    let mut n = 0i32;
    while pos < body.len() {
        let len = read_varint(body, &mut pos)
            .ok_or(ValidationError::InvalidRecord("truncated record length"))?;
        if len <= 0 || pos as i64 + len > body.len() as i64 {
            return Err(ValidationError::InvalidRecord(
                "record length out of bounds",
            ));
        }
        pos += len as usize;
        n += 1;
    }
    if n != view.record_count() {
        return Err(ValidationError::InvalidRecord(
            "recordCount does not match the records",
        ));
    }
    Ok(())
}

/// Compacted topics need a key on every record (Kafka's `LogValidator` rejects the batch with
/// INVALID_RECORD). Uncompressed batches are walked in place; compressed ones are decoded.
fn check_keys(view: &BatchView<'_>) -> Result<(), ValidationError> {
    const MISSING: ValidationError =
        ValidationError::InvalidRecord("compacted topic records must have a key");
    if view.compression() != 0 {
        let mut raw = Bytes::copy_from_slice(view.as_bytes());
        let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut raw)
            .map_err(|_| ValidationError::InvalidRecord("undecodable compressed batch"))?;
        return if set.records.iter().all(|r| r.key.is_some()) {
            Ok(())
        } else {
            Err(MISSING)
        };
    }
    let body = &view.as_bytes()[BATCH_HEADER_LEN..];
    let mut pos = 0usize;
    while pos < body.len() {
        let len = read_varint(body, &mut pos)
            .ok_or(ValidationError::InvalidRecord("truncated record length"))?;
        let end = pos.saturating_add(usize::try_from(len).unwrap_or(0));
        let mut p = pos + 1; // attributes
        let parsed = read_varint(body, &mut p)
            .and_then(|_| read_varint(body, &mut p))
            .and_then(|_| read_varint(body, &mut p));
        match parsed {
            Some(key_len) if key_len >= 0 => {}
            _ => return Err(MISSING),
        }
        pos = end;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::make_batch;

    #[test]
    fn accepts_good_batches_and_counts() {
        let mut buf = make_batch(3, 10, 1);
        buf.extend(make_batch(2, 10, 1));
        let v = validate_batches(Bytes::from(buf), &LogConfig::default(), 0).expect("valid");
        assert_eq!(v.len(), 2);
        assert_eq!(v.record_count(), 5);
    }

    #[test]
    fn compacted_topics_need_keys() {
        let cfg = LogConfig::build(
            &Default::default(),
            &[("cleanup.policy".to_string(), "compact".to_string())].into(),
        )
        .expect("valid");
        let keyless = make_batch(3, 10, 1);
        assert!(matches!(
            validate_batches(Bytes::from(keyless.clone()), &cfg, 0),
            Err(ValidationError::InvalidRecord(_))
        ));
        assert!(validate_batches(Bytes::from(keyless), &LogConfig::default(), 0).is_ok());
        let keyed =
            crate::testing::make_keyed_batch(&[(b"k".as_slice(), Some(b"v".as_slice()))], 0);
        assert!(validate_batches(Bytes::from(keyed), &cfg, 0).is_ok());
    }

    #[test]
    fn rejects_corrupt_and_large() {
        let mut b = make_batch(3, 10, 1);
        let n = b.len();
        b[n - 2] ^= 1;
        assert!(matches!(
            validate_batches(Bytes::from(b), &LogConfig::default(), 0),
            Err(ValidationError::Corrupt(_))
        ));
        let cfg = LogConfig {
            max_message_bytes: 50,
            ..Default::default()
        };
        assert!(matches!(
            validate_batches(Bytes::from(make_batch(3, 10, 1)), &cfg, 0),
            Err(ValidationError::TooLarge { .. })
        ));
        assert!(validate_batches(Bytes::new(), &LogConfig::default(), 0).is_err());
        let mut t = make_batch(1, 10, 1);
        t.push(0);
        assert!(validate_batches(Bytes::from(t), &LogConfig::default(), 0).is_err());
    }
}
