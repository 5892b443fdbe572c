//! Zero-copy views of Kafka v2 record batches: header fields, CRC-32C check, base-offset rewrite.
//!
//! A v2 batch on the wire and on disk (all integers big-endian):
//!
//! ```text
//! 0  baseOffset: i64          21 attributes: i16        43 producerId: i64
//! 8  batchLength: i32         23 lastOffsetDelta: i32   51 producerEpoch: i16
//! 12 partitionLeaderEpoch: i32 27 baseTimestamp: i64   53 baseSequence: i32
//! 16 magic: i8 (= 2)          35 maxTimestamp: i64      57 recordCount: i32
//! 17 crc: u32 (CRC-32C of bytes 21..end)                61 records...
//! ```
//!
//! `batchLength` counts the bytes after itself, so a batch occupies `12 + batchLength` bytes.
//! Because the CRC starts at `attributes`, the broker may rewrite `baseOffset` and
//! `partitionLeaderEpoch` without touching the CRC. Reading a header never copies the records.

use std::fmt;

/// Bytes before `batchLength` ends: the minimum needed to know a batch's size.
pub const LOG_OVERHEAD: usize = 12;
/// Size of the fixed v2 batch header.
pub const BATCH_HEADER_LEN: usize = 61;

const MAGIC_OFFSET: usize = 16;
const CRC_OFFSET: usize = 17;
const ATTRIBUTES_OFFSET: usize = 21;
const LAST_OFFSET_DELTA_OFFSET: usize = 23;
const BASE_TIMESTAMP_OFFSET: usize = 27;
const MAX_TIMESTAMP_OFFSET: usize = 35;
const PRODUCER_ID_OFFSET: usize = 43;
const PRODUCER_EPOCH_OFFSET: usize = 51;
const BASE_SEQUENCE_OFFSET: usize = 53;
const RECORD_COUNT_OFFSET: usize = 57;

/// Attribute bits.
const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_BIT: i16 = 0x08;
const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;

/// Why a byte range is not a valid v2 record batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// Fewer bytes than a header, or than the length field promises.
    #[error("truncated batch: need {needed} bytes, have {available}")]
    Truncated {
        /// Bytes the batch claims.
        needed: usize,
        /// Bytes present.
        available: usize,
    },
    /// `batchLength` is smaller than a header or negative.
    #[error("invalid batch length {0}")]
    InvalidLength(i32),
    /// Magic byte is not 2 (v0/v1 message sets are not accepted).
    #[error("unsupported magic {0}")]
    UnsupportedMagic(i8),
    /// The stored CRC does not match the contents.
    #[error("CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch {
        /// CRC in the header.
        stored: u32,
        /// CRC of the bytes.
        computed: u32,
    },
    /// `recordCount` and `lastOffsetDelta` disagree, or records do not parse.
    #[error("invalid records: {0}")]
    InvalidRecords(&'static str),
}

/// A borrowed view of one whole record batch (`12 + batchLength` bytes).
#[derive(Clone, Copy)]
pub struct BatchView<'a> {
    bytes: &'a [u8],
}

impl fmt::Debug for BatchView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchView")
            .field("base_offset", &self.base_offset())
            .field("last_offset_delta", &self.last_offset_delta())
            .field("size", &self.bytes.len())
            .finish()
    }
}

fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

/// Size in bytes of the batch starting at `buf[0]`, read from its first 12 bytes.
/// Returns `Ok(None)` when fewer than 12 bytes are present.
pub fn batch_size(buf: &[u8]) -> Result<Option<usize>, BatchError> {
    if buf.len() < LOG_OVERHEAD {
        return Ok(None);
    }
    let len = be_i32(buf, 8);
    if len < (BATCH_HEADER_LEN - LOG_OVERHEAD) as i32 {
        return Err(BatchError::InvalidLength(len));
    }
    Ok(Some(LOG_OVERHEAD + len as usize))
}

impl<'a> BatchView<'a> {
    /// Views the batch at the start of `buf`, checking only that its header and length fit.
    /// Returns the view and its size; the CRC is not checked (see [`BatchView::validate`]).
    pub fn parse(buf: &'a [u8]) -> Result<BatchView<'a>, BatchError> {
        let size = batch_size(buf)?.ok_or(BatchError::Truncated {
            needed: LOG_OVERHEAD,
            available: buf.len(),
        })?;
        if buf.len() < size {
            return Err(BatchError::Truncated {
                needed: size,
                available: buf.len(),
            });
        }
        let magic = buf[MAGIC_OFFSET] as i8;
        if magic != 2 {
            return Err(BatchError::UnsupportedMagic(magic));
        }
        Ok(BatchView {
            bytes: &buf[..size],
        })
    }

    /// Full check: CRC-32C, and `recordCount == lastOffsetDelta + 1` (Kafka rejects others).
    pub fn validate(&self) -> Result<(), BatchError> {
        let stored = self.crc();
        let computed = crc32c::crc32c(&self.bytes[ATTRIBUTES_OFFSET..]);
        if stored != computed {
            return Err(BatchError::CrcMismatch { stored, computed });
        }
        let count = self.record_count();
        if count <= 0 {
            return Err(BatchError::InvalidRecords("record count must be positive"));
        }
        if i64::from(self.last_offset_delta()) != i64::from(count) - 1 {
            return Err(BatchError::InvalidRecords(
                "lastOffsetDelta does not match recordCount",
            ));
        }
        Ok(())
    }

    /// Checks only the CRC (used by recovery, which also accepts compacted batches with gaps).
    pub fn crc_ok(&self) -> bool {
        self.crc() == crc32c::crc32c(&self.bytes[ATTRIBUTES_OFFSET..])
    }

    /// The whole batch.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }
    /// Total size on disk.
    pub fn size(&self) -> usize {
        self.bytes.len()
    }
    /// First offset of the batch.
    pub fn base_offset(&self) -> i64 {
        be_i64(self.bytes, 0)
    }
    /// Last offset of the batch (saturating: the header is not trusted; the segment scan
    /// refuses a batch whose offsets overflow, and the broker assigns its own).
    pub fn last_offset(&self) -> i64 {
        self.base_offset()
            .saturating_add(i64::from(self.last_offset_delta()))
    }
    /// The offset after this batch (saturating, as [`BatchView::last_offset`]).
    pub fn next_offset(&self) -> i64 {
        self.last_offset().saturating_add(1)
    }
    /// `lastOffsetDelta`.
    pub fn last_offset_delta(&self) -> i32 {
        be_i32(self.bytes, LAST_OFFSET_DELTA_OFFSET)
    }
    /// `partitionLeaderEpoch`.
    pub fn partition_leader_epoch(&self) -> i32 {
        be_i32(self.bytes, 12)
    }
    /// Stored CRC.
    pub fn crc(&self) -> u32 {
        be_i32(self.bytes, CRC_OFFSET) as u32
    }
    /// `attributes`.
    pub fn attributes(&self) -> i16 {
        be_i16(self.bytes, ATTRIBUTES_OFFSET)
    }
    /// Compression codec id (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
    pub fn compression(&self) -> i16 {
        self.attributes() & COMPRESSION_MASK
    }
    /// True when the batch carries LogAppendTime timestamps.
    pub fn is_log_append_time(&self) -> bool {
        self.attributes() & TIMESTAMP_TYPE_BIT != 0
    }
    /// True for transactional batches.
    pub fn is_transactional(&self) -> bool {
        self.attributes() & TRANSACTIONAL_BIT != 0
    }
    /// True for control batches (transaction markers).
    pub fn is_control(&self) -> bool {
        self.attributes() & CONTROL_BIT != 0
    }
    /// `baseTimestamp`.
    pub fn base_timestamp(&self) -> i64 {
        be_i64(self.bytes, BASE_TIMESTAMP_OFFSET)
    }
    /// `maxTimestamp`.
    pub fn max_timestamp(&self) -> i64 {
        be_i64(self.bytes, MAX_TIMESTAMP_OFFSET)
    }
    /// `producerId` (-1 when not idempotent).
    pub fn producer_id(&self) -> i64 {
        be_i64(self.bytes, PRODUCER_ID_OFFSET)
    }
    /// `producerEpoch`.
    pub fn producer_epoch(&self) -> i16 {
        be_i16(self.bytes, PRODUCER_EPOCH_OFFSET)
    }
    /// `baseSequence`.
    pub fn base_sequence(&self) -> i32 {
        be_i32(self.bytes, BASE_SEQUENCE_OFFSET)
    }
    /// `recordCount`.
    pub fn record_count(&self) -> i32 {
        be_i32(self.bytes, RECORD_COUNT_OFFSET)
    }
}

/// Iterates over whole batches in a buffer, stopping at the first incomplete one.
#[derive(Debug, Clone)]
pub struct Batches<'a> {
    rest: &'a [u8],
}

impl<'a> Batches<'a> {
    /// Iterates over `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Batches { rest: buf }
    }
    /// Bytes not yet consumed.
    pub fn remaining(&self) -> &'a [u8] {
        self.rest
    }
}

impl<'a> Iterator for Batches<'a> {
    type Item = Result<BatchView<'a>, BatchError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        match BatchView::parse(self.rest) {
            Ok(view) => {
                self.rest = &self.rest[view.size()..];
                Some(Ok(view))
            }
            Err(e) => {
                self.rest = &[];
                Some(Err(e))
            }
        }
    }
}

/// Mutations the broker makes to a batch it accepts, in place, before writing it.
#[derive(Debug)]
pub struct BatchMut<'a> {
    bytes: &'a mut [u8],
}

impl<'a> BatchMut<'a> {
    /// Wraps a buffer already checked with [`BatchView::parse`].
    pub fn new(bytes: &'a mut [u8]) -> Self {
        BatchMut { bytes }
    }
    /// Rewrites `baseOffset` (outside the CRC).
    pub fn set_base_offset(&mut self, offset: i64) {
        self.bytes[0..8].copy_from_slice(&offset.to_be_bytes());
    }
    /// Rewrites `partitionLeaderEpoch` (outside the CRC).
    pub fn set_partition_leader_epoch(&mut self, epoch: i32) {
        self.bytes[12..16].copy_from_slice(&epoch.to_be_bytes());
    }
    /// Switches the batch to LogAppendTime with `now` as its max timestamp, and recomputes the CRC
    /// (both fields are inside it). Kafka does the same in `LogValidator`.
    pub fn set_log_append_time(&mut self, now: i64) {
        let attrs = be_i16(self.bytes, ATTRIBUTES_OFFSET) | TIMESTAMP_TYPE_BIT;
        self.bytes[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attrs.to_be_bytes());
        self.bytes[MAX_TIMESTAMP_OFFSET..MAX_TIMESTAMP_OFFSET + 8]
            .copy_from_slice(&now.to_be_bytes());
        let crc = crc32c::crc32c(&self.bytes[ATTRIBUTES_OFFSET..]);
        self.bytes[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::make_batch;

    #[test]
    fn parse_and_validate_round_trip() {
        let b = make_batch(3, 10, 1000);
        let v = BatchView::parse(&b).expect("parse");
        v.validate().expect("valid");
        assert_eq!(v.record_count(), 3);
        assert_eq!(v.last_offset_delta(), 2);
        assert_eq!(v.max_timestamp(), 1002);
        assert_eq!(v.size(), b.len());
    }

    #[test]
    fn base_offset_rewrite_keeps_crc() {
        let mut b = make_batch(2, 5, 0);
        BatchMut::new(&mut b).set_base_offset(12345);
        let v = BatchView::parse(&b).expect("parse");
        assert_eq!(v.base_offset(), 12345);
        assert_eq!(v.last_offset(), 12346);
        v.validate().expect("CRC still valid");
    }

    #[test]
    fn flipped_byte_fails_crc() {
        let mut b = make_batch(2, 5, 0);
        let n = b.len();
        b[n - 1] ^= 0xff;
        assert!(matches!(
            BatchView::parse(&b).expect("parse").validate(),
            Err(BatchError::CrcMismatch { .. })
        ));
    }

    #[test]
    fn truncated_and_garbage() {
        let b = make_batch(2, 5, 0);
        assert!(matches!(
            BatchView::parse(&b[..b.len() - 1]),
            Err(BatchError::Truncated { .. })
        ));
        assert!(BatchView::parse(&[0u8; 5]).is_err());
        let mut g = b.clone();
        g[8..12].copy_from_slice(&(-5i32).to_be_bytes());
        assert!(matches!(
            BatchView::parse(&g),
            Err(BatchError::InvalidLength(-5))
        ));
        let mut m = b.clone();
        m[16] = 1;
        assert!(matches!(
            BatchView::parse(&m),
            Err(BatchError::UnsupportedMagic(1))
        ));
    }

    #[test]
    fn log_append_time_recomputes_crc() {
        let mut b = make_batch(2, 5, 10);
        BatchMut::new(&mut b).set_log_append_time(999);
        let v = BatchView::parse(&b).expect("parse");
        v.validate().expect("valid");
        assert!(v.is_log_append_time());
        assert_eq!(v.max_timestamp(), 999);
    }
}
