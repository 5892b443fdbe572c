//! `validate_batches` (Kafka's LogValidator): checks a producer's record batches before anything touches the log.
//!
//! Parse, then validate, then act: the broker hands the raw `records` bytes of a produce request
//! here; what comes back is a [`ValidatedBatches`] the log can append without looking again.
//! CRC-32C covers the compressed bytes, so a batch that passes is exactly what the producer
//! built. Uncompressed batches are walked record by record in place with the bounded reader
//! ([`BatchRecords`]): every length, header count and varint is checked against the batch, so a
//! record that lies about its structure is refused here rather than met later by a reader (the
//! coordinators' loads, the cleaner). Compressed batches are decompressed only on compacted
//! topics, which need a key on every record, and only up to
//! [`crate::decompression_limit`].

use bytes::Bytes;

use crate::batch::{BatchError, BatchView, Batches, BATCH_HEADER_LEN};
use crate::config::LogConfig;
use crate::records::{BatchRecords, RecordError};

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
    let limit = config.max_decompressed_bytes();
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
        match view.compression() {
            0 => check_uncompressed_records(&view, config.compact_enabled)?,
            1..=4 if config.compact_enabled => check_compressed_keys(&view, limit)?,
            1..=4 => {}
            _ => return Err(ValidationError::InvalidRecord("unknown compression codec")),
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

/// Walks every record of an uncompressed batch in place (no allocation): each length, count and
/// varint checked against the batch, `recordCount` records filling it exactly, and on compacted
/// topics a key on each.
fn check_uncompressed_records(
    view: &BatchView<'_>,
    need_keys: bool,
) -> Result<(), ValidationError> {
    // Uncompressed: read in place, so the decompression limit plays no part.
    for record in &BatchRecords::new(*view, 0)? {
        let record = record?;
        if need_keys && record.key.is_none() {
            return Err(MISSING_KEY);
        }
    }
    Ok(())
}

/// Compacted topics need a key on every record (Kafka's `LogValidator` rejects the batch with
/// INVALID_RECORD); a compressed batch is inflated for it, within `limit` bytes.
fn check_compressed_keys(view: &BatchView<'_>, limit: usize) -> Result<(), ValidationError> {
    for record in &BatchRecords::new(*view, limit)? {
        if record?.key.is_none() {
            return Err(MISSING_KEY);
        }
    }
    Ok(())
}

const MISSING_KEY: ValidationError =
    ValidationError::InvalidRecord("compacted topic records must have a key");

/// Broken record structure is CORRUPT_MESSAGE; a codec or size the broker will not take is
/// INVALID_RECORD.
impl From<RecordError> for ValidationError {
    fn from(e: RecordError) -> Self {
        match e {
            RecordError::Corrupt(why) => ValidationError::Corrupt(BatchError::InvalidRecords(why)),
            RecordError::Decompress { .. } => ValidationError::Corrupt(BatchError::InvalidRecords(
                "compressed records do not decompress",
            )),
            RecordError::UnknownCompression(_) => {
                ValidationError::InvalidRecord("unknown compression codec")
            }
            RecordError::TooLarge { .. } => {
                ValidationError::InvalidRecord("records decompress past the decompression limit")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{make_batch, raw_record, RawBatch};

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

    fn compacted() -> LogConfig {
        LogConfig::build(
            &Default::default(),
            &[("cleanup.policy".to_string(), "compact".to_string())].into(),
        )
        .expect("valid")
    }

    fn corrupt(records: &[u8], count: i32) -> bool {
        let batch = RawBatch {
            record_count: count,
            last_offset_delta: count - 1,
            ..RawBatch::default()
        }
        .encode(records);
        matches!(
            validate_batches(Bytes::from(batch), &LogConfig::default(), 0),
            Err(ValidationError::Corrupt(BatchError::InvalidRecords(_)))
        )
    }

    #[test]
    fn record_structure_is_checked_against_the_batch() {
        let good = raw_record(0, 0, Some(b"k"), Some(b"v"), &[(b"h", Some(b"x"))]);
        assert!(!corrupt(&good, 1));
        assert!(corrupt(&[good.clone(), good.clone()].concat(), 1), "count");
        // Header count 2^31 - 1 in place of 1 (record length grows by 4).
        let mut huge = good.clone();
        let at = huge.len() - 5; // count, key length, key, value length, value
        huge.splice(at..at + 1, [0xfe, 0xff, 0xff, 0xff, 0x0f]);
        huge[0] += 8;
        assert!(corrupt(&huge, 1), "header count");
        // Header key length past the record.
        let mut key = good.clone();
        let n = key.len();
        key[n - 4] = 0x7e;
        assert!(corrupt(&key, 1), "header key length");
        // A record length whose varint overflows 32 bits.
        let mut long = vec![0xff, 0xff, 0xff, 0xff, 0x7f];
        long.extend_from_slice(&good[1..]);
        assert!(corrupt(&long, 1), "varint");
        // Key length -2, value length past the record.
        let mut key_len = raw_record(0, 0, None, None, &[]);
        key_len[4] = 3;
        assert!(corrupt(&key_len, 1), "key length");
        let mut value = raw_record(0, 0, None, Some(b"v"), &[]);
        value[5] = 0x20;
        assert!(corrupt(&value, 1), "value length");
    }

    #[test]
    fn control_batches_are_walked_too() {
        let mut marker = raw_record(0, 0, Some(&[0, 0, 0, 1]), Some(&[0; 6]), &[]);
        let n = marker.len();
        marker[n - 1] = 0x10; // 8 headers in zero bytes
        let batch = RawBatch {
            attributes: 0x30,
            producer_id: 1,
            producer_epoch: 0,
            ..RawBatch::default()
        }
        .encode(&marker);
        assert!(matches!(
            validate_control_batches(Bytes::from(batch), &LogConfig::default(), 0),
            Err(ValidationError::Corrupt(_))
        ));
    }

    #[test]
    fn compressed_keys_are_read_within_the_decompression_limit() {
        let cfg = compacted();
        let batch = |value: &[u8], key: Option<&[u8]>| {
            let record = raw_record(0, 0, key, Some(value), &[]);
            RawBatch {
                attributes: 4,
                ..RawBatch::default()
            }
            .encode(&crate::testing::compress(4, &record))
        };
        let ok = batch(b"v", Some(b"k"));
        assert!(validate_batches(Bytes::from(ok), &cfg, 0).is_ok());
        assert!(matches!(
            validate_batches(Bytes::from(batch(b"v", None)), &cfg, 0),
            Err(ValidationError::InvalidRecord(_))
        ));
        // 32 MiB of zeros: a few KiB on the wire, past 16 × max.message.bytes.
        let bomb = batch(&vec![0; 32 << 20], Some(b"k"));
        assert!(bomb.len() < cfg.max_message_bytes as usize);
        assert!(matches!(
            validate_batches(Bytes::from(bomb), &cfg, 0),
            Err(ValidationError::InvalidRecord(_))
        ));
    }
}
