//! `BatchRecords`: the records of one v2 batch, read with every length and count checked.
//!
//! Why our own reader: `kafka-protocol`'s decoder pre-allocates from counts it reads
//! (`records.reserve(record_count)`, a header map sized by the header count), so a 100-byte
//! record claiming 2^31 − 1 headers asks for gigabytes, and it inflates a compressed batch
//! without bound. Here no count from the bytes sizes an allocation: records and headers are
//! yielded as slices borrowed from the batch (or from its one decompressed buffer), each length
//! is checked against the bytes left before it is used (`wire.rs`), and decompression stops
//! at a limit the caller passes (`decompress.rs`).
//!
//! The limit: [`decompression_limit`]`(max.message.bytes)` = max(`max.message.bytes`, 1 MiB) × 16.
//! A compressed batch is at most `max.message.bytes` on the wire; 16× is above what real
//! producers reach on real data (gzip and zstd give 3–10× on JSON and logs), so only a crafted
//! batch is refused, and a bomb costs at most 16× what the topic already accepts per batch.
//! Kafka itself streams records out of the decompressor, bounding each record by its declared
//! size; a bound on the whole batch is what reading it into one buffer needs.
//!
//! Semantics follow Kafka's `DefaultRecordBatch`: a record's offset is `baseOffset +
//! offsetDelta`, its timestamp `baseTimestamp + timestampDelta`, or the batch's `maxTimestamp`
//! for every record of a LogAppendTime batch; the batch must hold exactly `recordCount` records
//! and nothing after them. Sums that would overflow are corrupt records, not wrapped values.
//!
//! ```
//! # fn read(bytes: &[u8]) -> Result<(), Box<dyn std::error::Error>> {
//! use strom_log::{decompression_limit, BatchRecords, BatchView};
//! let batch = BatchRecords::new(BatchView::parse(bytes)?, decompression_limit(1 << 20))?;
//! let (control, pid) = (batch.batch().is_control(), batch.batch().producer_id());
//! for record in batch.iter() {
//!     let record = record?;
//!     let (offset, key, value) = (record.offset, record.key, record.value);
//!     for header in record.headers() { /* header.key, header.value */ }
//! }
//! # Ok(()) }
//! ```

use std::borrow::Cow;

use crate::batch::{BatchView, BATCH_HEADER_LEN};

mod decompress;
mod wire;

pub(crate) use wire::parse_record;
pub use wire::{Header, Headers};

/// Floor of [`decompression_limit`]'s base, so tiny `max.message.bytes` values still read
/// ordinary batches.
const DECOMPRESSION_FLOOR: usize = 1 << 20;
/// Largest expansion of a compressed batch accepted (see the module docs).
const DECOMPRESSION_RATIO: usize = 16;

/// How many bytes a batch of a topic with this `max.message.bytes` may decompress to:
/// max(`max.message.bytes`, 1 MiB) × 16 (see the module docs).
pub fn decompression_limit(max_message_bytes: i32) -> usize {
    usize::try_from(max_message_bytes)
        .unwrap_or(0)
        .max(DECOMPRESSION_FLOOR)
        .saturating_mul(DECOMPRESSION_RATIO)
}

/// Why the records of a batch could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// A record's structure is broken: a length or count past its bytes, a varint that overflows,
    /// fields that do not fill the record, a record count that does not match.
    #[error("corrupt records: {0}")]
    Corrupt(&'static str),
    /// The compression codec id is not one of Kafka's (1 gzip, 2 snappy, 3 lz4, 4 zstd).
    #[error("unknown compression codec {0}")]
    UnknownCompression(i16),
    /// The compressed records did not decompress.
    #[error("{codec} decompression failed")]
    Decompress {
        /// The codec.
        codec: &'static str,
    },
    /// The records decompress to more than the caller's limit.
    #[error("records decompress past the limit of {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
}

/// The records of one batch: the header, and the records section (decompressed if needed).
#[derive(Debug, Clone)]
pub struct BatchRecords<'a> {
    batch: BatchView<'a>,
    records: Cow<'a, [u8]>,
}

impl<'a> BatchRecords<'a> {
    /// Prepares to read `batch`'s records, decompressing them (into at most `max_decompressed`
    /// bytes) when the batch is compressed; an uncompressed batch is read in place. The CRC is
    /// not checked here ([`BatchView::validate`] does).
    pub fn new(batch: BatchView<'a>, max_decompressed: usize) -> Result<Self, RecordError> {
        let body = &batch.as_bytes()[BATCH_HEADER_LEN..];
        let records = match batch.compression() {
            0 => Cow::Borrowed(body),
            codec => Cow::Owned(decompress::decompress(codec, body, max_decompressed)?),
        };
        Ok(BatchRecords { batch, records })
    }

    /// The batch header: control and transactional flags, producer id and epoch, offsets.
    pub fn batch(&self) -> &BatchView<'a> {
        &self.batch
    }

    /// The records, in order. Each item borrows from `self`; after an error the iterator ends.
    pub fn iter(&self) -> RecordIter<'_> {
        let b = &self.batch;
        RecordIter {
            rest: &self.records,
            base_offset: b.base_offset(),
            base_timestamp: b.base_timestamp(),
            log_append_time: b.is_log_append_time().then(|| b.max_timestamp()),
            declared: b.record_count(),
            read: 0,
            done: false,
        }
    }
}

impl<'r> IntoIterator for &'r BatchRecords<'_> {
    type Item = Result<Record<'r>, RecordError>;
    type IntoIter = RecordIter<'r>;
    fn into_iter(self) -> RecordIter<'r> {
        self.iter()
    }
}

/// One record, borrowing its key, value and headers from the batch.
#[derive(Debug, Clone)]
pub struct Record<'r> {
    /// `baseOffset + offsetDelta`.
    pub offset: i64,
    /// `baseTimestamp + timestampDelta`, or the batch's max timestamp under LogAppendTime.
    pub timestamp: i64,
    /// `offsetDelta` as stored.
    pub offset_delta: i32,
    /// `timestampDelta` as stored (the producer's create time is `baseTimestamp` plus this, also
    /// under LogAppendTime).
    pub timestamp_delta: i64,
    /// The key; `None` when null.
    pub key: Option<&'r [u8]>,
    /// The value; `None` when null (a tombstone).
    pub value: Option<&'r [u8]>,
    headers: Headers<'r>,
}

impl<'r> Record<'r> {
    /// The record's headers, in order (duplicate keys are kept, as Kafka keeps them).
    pub fn headers(&self) -> Headers<'r> {
        self.headers.clone()
    }
}

/// Iterator over the records of a [`BatchRecords`].
#[derive(Debug, Clone)]
pub struct RecordIter<'r> {
    rest: &'r [u8],
    base_offset: i64,
    base_timestamp: i64,
    log_append_time: Option<i64>,
    declared: i32,
    read: i32,
    done: bool,
}

impl<'r> RecordIter<'r> {
    #[inline]
    fn next_record(&mut self) -> Result<Option<Record<'r>>, RecordError> {
        if self.rest.is_empty() {
            return if self.read == self.declared {
                Ok(None)
            } else {
                Err(RecordError::Corrupt("fewer records than recordCount"))
            };
        }
        if self.read >= self.declared {
            return Err(RecordError::Corrupt("more records than recordCount"));
        }
        let (raw, rest) = parse_record(self.rest)?;
        let offset = self
            .base_offset
            .checked_add(i64::from(raw.offset_delta))
            .ok_or(RecordError::Corrupt("record offset overflows"))?;
        let timestamp = match self.log_append_time {
            Some(t) => t,
            None => self
                .base_timestamp
                .checked_add(raw.timestamp_delta)
                .ok_or(RecordError::Corrupt("record timestamp overflows"))?,
        };
        self.rest = rest;
        self.read += 1;
        Ok(Some(Record {
            offset,
            timestamp,
            offset_delta: raw.offset_delta,
            timestamp_delta: raw.timestamp_delta,
            key: raw.key,
            value: raw.value,
            headers: raw.headers,
        }))
    }
}

impl<'r> Iterator for RecordIter<'r> {
    type Item = Result<Record<'r>, RecordError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let next = self.next_record();
        if !matches!(next, Ok(Some(_))) {
            self.done = true;
        }
        next.transpose()
    }
}

impl std::iter::FusedIterator for RecordIter<'_> {}

#[cfg(test)]
mod tests;
