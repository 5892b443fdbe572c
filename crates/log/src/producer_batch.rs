//! What producer state reads from a record batch: the producer fields of its header
//! ([`ProducerBatch`]) and, for a control batch, the marker in its first record (type, and the
//! coordinator epoch of a COMMIT/ABORT), parsed from the bytes without decompressing anything.

use crate::batch::BatchView;
use crate::records::parse_record;

/// `sequence + increment`, wrapping past `i32::MAX` to 0 (Kafka's `incrementSequence`).
pub fn increment_sequence(sequence: i32, increment: i32) -> i32 {
    let increment = increment.max(0);
    if sequence > i32::MAX - increment {
        increment - (i32::MAX - sequence) - 1
    } else {
        sequence + increment
    }
}

/// One batch a producer wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMetadata {
    /// `baseSequence`.
    pub first_seq: i32,
    /// Sequence of the last record (wrapped at `i32::MAX`).
    pub last_seq: i32,
    /// Offset of the first record.
    pub first_offset: i64,
    /// Offset of the last record.
    pub last_offset: i64,
    /// Max timestamp of the batch as written.
    pub timestamp: i64,
}

/// The producer fields of one batch header (read without decompressing anything).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerBatch {
    /// `producerId` (-1: not idempotent).
    pub producer_id: i64,
    /// `producerEpoch`.
    pub epoch: i16,
    /// `baseSequence`.
    pub base_sequence: i32,
    /// `lastOffsetDelta`.
    pub last_offset_delta: i32,
    /// Max timestamp as the batch is (or will be) written.
    pub max_timestamp: i64,
    /// The batch's transactional attribute bit.
    pub transactional: bool,
    /// For a control batch, its marker (`None` for data batches).
    pub control: Option<ControlType>,
    /// For a transaction marker, the coordinator epoch it was written with (-1 otherwise).
    pub coordinator_epoch: i32,
}

/// The type of a control batch's record (Kafka's `ControlRecordType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlType {
    /// Key type 0: the transaction aborted.
    Abort,
    /// Key type 1: the transaction committed.
    Commit,
    /// Any other control record (e.g. KRaft's); closes nothing.
    Other,
}

impl ControlType {
    /// From the control record key's `type` field.
    pub fn from_key_type(t: i16) -> ControlType {
        match t {
            0 => ControlType::Abort,
            1 => ControlType::Commit,
            _ => ControlType::Other,
        }
    }
}

impl ProducerBatch {
    /// The producer fields of a batch; `max_timestamp` as stored in it.
    pub fn from_view(v: &BatchView<'_>) -> Self {
        let marker = v
            .is_control()
            .then(|| control_marker(v.as_bytes()).unwrap_or((ControlType::Other, -1)));
        ProducerBatch {
            producer_id: v.producer_id(),
            epoch: v.producer_epoch(),
            base_sequence: v.base_sequence(),
            last_offset_delta: v.last_offset_delta(),
            max_timestamp: v.max_timestamp(),
            transactional: v.is_transactional(),
            control: marker.map(|(t, _)| t),
            coordinator_epoch: marker.map_or(-1, |(_, e)| e),
        }
    }

    /// True when the batch comes from an idempotent (or transactional) producer.
    pub fn is_idempotent(&self) -> bool {
        self.producer_id >= 0
    }

    /// Sequence of the batch's last record.
    pub fn last_sequence(&self) -> i32 {
        increment_sequence(self.base_sequence, self.last_offset_delta)
    }

    pub(crate) fn metadata(&self, first_offset: i64) -> BatchMetadata {
        BatchMetadata {
            first_seq: self.base_sequence,
            last_seq: self.last_sequence(),
            first_offset,
            last_offset: first_offset + i64::from(self.last_offset_delta.max(0)),
            timestamp: self.max_timestamp,
        }
    }
}

/// The control record type of a control batch (the first record's key: version i16, type i16).
/// `None` when the bytes do not hold a readable uncompressed record there.
pub fn control_type(batch: &[u8]) -> Option<ControlType> {
    control_marker(batch).map(|(t, _)| t)
}

/// The control record type and, for a transaction marker, the coordinator epoch in its value
/// (version i16, coordinator epoch i32; -1 when unreadable or not a marker). The first record
/// must be whole in `batch` (which may be cut short after it).
pub(crate) fn control_marker(batch: &[u8]) -> Option<(ControlType, i32)> {
    let (record, _) = parse_record(batch.get(crate::batch::BATCH_HEADER_LEN..)?).ok()?;
    let kind = match record.key? {
        [_, _, t0, t1, ..] => ControlType::from_key_type(i16::from_be_bytes([*t0, *t1])),
        _ => return None,
    };
    let coordinator_epoch = match (kind, record.value) {
        (ControlType::Other, _) => -1,
        (_, Some([_, _, e0, e1, e2, e3, ..])) => i32::from_be_bytes([*e0, *e1, *e2, *e3]),
        _ => -1,
    };
    Some((kind, coordinator_epoch))
}
