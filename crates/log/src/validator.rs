//! `validate_batches` (Kafka's LogValidator): checks a producer's record batches before anything touches the log.
//!
//! Parse, then validate, then act: the broker hands the raw `records` bytes of a produce request
//! here; what comes back is a [`ValidatedBatches`] the log can append without looking again.
//! CRC-32C covers the compressed bytes, so a batch that passes is exactly what the producer
//! built. Uncompressed batches are walked record by record in place with the bounded reader
//! ([`BatchRecords`]): every length, header count and varint is checked against the batch, so a
//! record that lies about its structure is refused here rather than met later by a reader (the
//! coordinators' loads, the cleaner). Compressed batches are decompressed only on compacted
//! topics, which need a key on every record, or when their header's timestamps are out of
//! range, and only up to [`crate::decompression_limit`].
//!
//! Records refused one by one (a keyless record on a compacted topic, a CreateTime timestamp
//! outside `message.timestamp.{before,after}.max.ms`) are all collected with their index, as
//! Kafka's `LogValidator` does, so the produce answer can name them (KIP-467
//! `record_errors`) and the producer fails only those records.

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
    /// Records refused one by one (KIP-467): a keyless record on a compacted topic, a timestamp
    /// outside `message.timestamp.{before,after}.max.ms`. The whole request's records are refused,
    /// and the answer names each bad record so the client fails only those (librdkafka gives the
    /// others `_INVALID_DIFFERENT_RECORD`). INVALID_TIMESTAMP when any timestamp is out of
    /// range, else INVALID_RECORD (Kafka's `LogValidator.processRecordErrors`).
    #[error("{}", records_message(*invalid_timestamp, errors))]
    Records {
        /// Whether any record was refused for its timestamp.
        invalid_timestamp: bool,
        /// Every refused record, in order.
        errors: Vec<RejectedRecord>,
    },
}

/// One record refused by validation: Kafka's `ProduceResponse.RecordError` (named apart from
/// [`RecordError`], a reader's error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedRecord {
    /// The record's position among the partition's records in the request, from 0.
    pub batch_index: i32,
    /// Why, in Kafka's words.
    pub message: String,
}

/// Kafka's top-level message for refused records (the produce response's `error_message`).
fn records_message(invalid_timestamp: bool, errors: &[RejectedRecord]) -> String {
    if invalid_timestamp {
        return "One or more records have been rejected due to invalid timestamp".to_string();
    }
    let shown: Vec<String> = errors
        .iter()
        .take(3)
        .map(|e| {
            format!(
                "RecordError(batchIndex={}, message='{}')",
                e.batch_index, e.message
            )
        })
        .collect();
    format!(
        "One or more records have been rejected due to {} record errors in total, and only \
         showing the first three errors at most: [{}]",
        errors.len(),
        shown.join(", ")
    )
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
    // KIP-467: every refused record of the request, by its index among the request's records.
    let mut rejected = Vec::new();
    let mut record_index = 0i32;
    let limit = config.max_decompressed_bytes();
    let checks = RecordChecks {
        need_key: config.compact_enabled,
        timestamps: TimestampRange::of(config, now_ms),
    };
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
        let records_from = record_index;
        record_index = record_index.saturating_add(view.record_count());
        match view.compression() {
            0 => checks.walk(&view, 0, records_from, &mut rejected)?,
            // Compressed batches are inflated only when a record may be refused: a compacted
            // topic needs every key, and a timestamp is read per record only when the header's
            // first or max timestamp is out of range (a producer's batch never holds a record
            // older than its first, so that is where a record out of range shows).
            1..=4 if checks.need_key || !checks.timestamps.header_ok(&view) => {
                checks.walk(&view, limit, records_from, &mut rejected)?
            }
            1..=4 => {}
            _ => return Err(ValidationError::InvalidRecord("unknown compression codec")),
        }
        let max_ts = view.max_timestamp();
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
    if !rejected.is_empty() {
        let invalid_timestamp = rejected.iter().any(|(ts, _)| *ts);
        return Err(ValidationError::Records {
            invalid_timestamp,
            errors: rejected.into_iter().map(|(_, e)| e).collect(),
        });
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

/// What each record of a batch is checked for.
struct RecordChecks {
    /// Compacted topics need a key on every record (Kafka's `LogValidator.validateKey`).
    need_key: bool,
    timestamps: TimestampRange,
}

impl RecordChecks {
    /// Walks every record of `view` (inflating a compressed one within `limit` bytes; an
    /// uncompressed one is read in place, with every length, count and varint checked against
    /// the batch), noting each refused record with its index (`first` is the batch's first
    /// record's index in the request) and whether a timestamp refused it.
    fn walk(
        &self,
        view: &BatchView<'_>,
        limit: usize,
        first: i32,
        rejected: &mut Vec<(bool, RejectedRecord)>,
    ) -> Result<(), ValidationError> {
        for (i, record) in BatchRecords::new(*view, limit)?.iter().enumerate() {
            let record = record?;
            let batch_index = first.saturating_add(i32::try_from(i).unwrap_or(i32::MAX));
            if self.need_key && record.key.is_none() {
                rejected.push((
                    false,
                    RejectedRecord {
                        batch_index,
                        message: "Compacted topic cannot accept message without key.".into(),
                    },
                ));
            }
            if let Some(message) = self.timestamps.refuse(record.timestamp, record.offset) {
                rejected.push((
                    true,
                    RejectedRecord {
                        batch_index,
                        message,
                    },
                ));
            }
        }
        Ok(())
    }
}

/// The CreateTime timestamps a topic accepts: within `message.timestamp.before.max.ms` before
/// and `message.timestamp.after.max.ms` after the broker's clock (LogAppendTime topics take any:
/// the broker stamps its own).
struct TimestampRange {
    /// `(earliest, latest)`, or `None` on a LogAppendTime topic.
    bounds: Option<(i64, i64)>,
}

impl TimestampRange {
    fn of(config: &LogConfig, now_ms: i64) -> Self {
        let ms = |key: &str| {
            config
                .values
                .get(key)
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(i64::MAX)
        };
        let create_time = config.message_timestamp_type == crate::config::TimestampType::CreateTime;
        TimestampRange {
            bounds: create_time.then(|| {
                (
                    now_ms.saturating_sub(ms("message.timestamp.before.max.ms")),
                    now_ms.saturating_add(ms("message.timestamp.after.max.ms")),
                )
            }),
        }
    }

    /// Kafka's message when `timestamp` is refused; -1 (no timestamp) is always taken.
    fn refuse(&self, timestamp: i64, offset: i64) -> Option<String> {
        let (earliest, latest) = self.bounds?;
        (timestamp != NO_TIMESTAMP && !(earliest..=latest).contains(&timestamp)).then(|| {
            format!(
                "Timestamp {timestamp} of message with offset {offset} is out of range. \
                 The timestamp should be within [{earliest}, {latest}]"
            )
        })
    }

    /// Whether the header's first and max timestamps are both accepted.
    fn header_ok(&self, view: &BatchView<'_>) -> bool {
        self.refuse(view.base_timestamp(), 0).is_none()
            && self.refuse(view.max_timestamp(), 0).is_none()
    }
}

/// A record without a timestamp (Kafka's `RecordBatch.NO_TIMESTAMP`).
const NO_TIMESTAMP: i64 = -1;

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
            Err(ValidationError::Records { invalid_timestamp: false, ref errors }) if errors.len() == 3
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
            Err(ValidationError::Records { .. })
        ));
        // 32 MiB of zeros: a few KiB on the wire, past 16 × max.message.bytes.
        let bomb = batch(&vec![0; 32 << 20], Some(b"k"));
        assert!(bomb.len() < cfg.max_message_bytes as usize);
        assert!(matches!(
            validate_batches(Bytes::from(bomb), &cfg, 0),
            Err(ValidationError::InvalidRecord(_))
        ));
    }

    /// KIP-467: every keyless record of a compacted topic is named by its index, across the
    /// request's batches, and only those.
    #[test]
    fn keyless_records_are_named_by_index() {
        let cfg = compacted();
        let records: Vec<u8> = (0..5)
            .flat_map(|i| {
                let key = (i % 2 == 1).then_some(b"k".as_slice());
                raw_record(i, 0, key, Some(b"v"), &[])
            })
            .collect();
        let mut buf = RawBatch {
            record_count: 5,
            last_offset_delta: 4,
            ..RawBatch::default()
        }
        .encode(&records);
        buf.extend(make_batch(1, 3, 0)); // one more keyless record, index 5
        let Err(ValidationError::Records {
            invalid_timestamp,
            errors,
        }) = validate_batches(Bytes::from(buf), &cfg, 0)
        else {
            panic!("keyless records accepted on a compacted topic");
        };
        assert!(!invalid_timestamp);
        let indexes: Vec<i32> = errors.iter().map(|e| e.batch_index).collect();
        assert_eq!(indexes, [0, 2, 4, 5]);
        let message = ValidationError::Records {
            invalid_timestamp,
            errors,
        }
        .to_string();
        assert!(
            message.starts_with("One or more records have been rejected due to 4 record errors"),
            "{message}"
        );
    }

    /// A timestamp outside `message.timestamp.{before,after}.max.ms` refuses its record with
    /// INVALID_TIMESTAMP, read per record (the batch's max timestamp alone would pass it), and
    /// in a compressed batch too.
    #[test]
    fn timestamps_out_of_range_are_named_by_index() {
        let cfg = LogConfig::build(
            &Default::default(),
            &[
                (
                    "message.timestamp.before.max.ms".to_string(),
                    "1000".to_string(),
                ),
                (
                    "message.timestamp.after.max.ms".to_string(),
                    "1000".to_string(),
                ),
            ]
            .into(),
        )
        .expect("valid");
        let now = 1_000_000;
        // Record 1 is 5 s old; the batch's first and max timestamps are now.
        let records = [
            raw_record(0, 0, None, Some(b"a"), &[]),
            raw_record(1, -5_000, None, Some(b"b"), &[]),
            raw_record(2, 0, None, Some(b"c"), &[]),
        ]
        .concat();
        let header = RawBatch {
            record_count: 3,
            last_offset_delta: 2,
            base_timestamp: now,
            max_timestamp: now,
            ..RawBatch::default()
        };
        let Err(ValidationError::Records {
            invalid_timestamp: true,
            errors,
        }) = validate_batches(Bytes::from(header.encode(&records)), &cfg, now)
        else {
            panic!("a record 5 s old accepted with before.max.ms=1000");
        };
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].batch_index, 1);
        assert!(errors[0]
            .message
            .starts_with("Timestamp 995000 of message with offset 1"));
        // The same out-of-range batch compressed, shown by its header's max timestamp.
        let future = RawBatch {
            attributes: 4,
            record_count: 1,
            base_timestamp: now + 5_000,
            max_timestamp: now + 5_000,
            ..RawBatch::default()
        }
        .encode(&crate::testing::compress(
            4,
            &raw_record(0, 0, None, Some(b"x"), &[]),
        ));
        assert!(matches!(
            validate_batches(Bytes::from(future), &cfg, now),
            Err(ValidationError::Records { invalid_timestamp: true, ref errors }) if errors[0].batch_index == 0
        ));
        let fine = make_batch(3, 10, now);
        assert!(validate_batches(Bytes::from(fine), &cfg, now).is_ok());
    }
}
