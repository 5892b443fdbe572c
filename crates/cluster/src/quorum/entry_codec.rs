//! How a Raft entry is stored in `__cluster_metadata-0`: one v2 record batch holding one record
//! whose value is the entry as JSON (`{"log_id":…,"payload":…}`), the batch's
//! `partitionLeaderEpoch` set to the entry's term. So the log stays a Kafka log any tool can dump,
//! and one batch per entry keeps offsets and Raft indexes in step (offset + base = index).

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use super::types::TypeConfig;

/// A Raft entry of the metadata quorum.
pub(crate) type Entry = openraft::Entry<TypeConfig>;

/// Why an entry could not be encoded or a stored batch decoded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CodecError {
    /// JSON encoding or decoding failed.
    #[error("entry json: {0}")]
    Json(#[from] serde_json::Error),
    /// The record batch codec failed.
    #[error("record batch: {0}")]
    Batch(String),
    /// The batch does not hold exactly one record with a value.
    #[error("batch holds {0} records, expected one entry")]
    Shape(usize),
}

/// Encodes one entry as one record batch (offsets relative; the log assigns them).
pub(crate) fn encode(entry: &Entry, timestamp: i64) -> Result<Bytes, CodecError> {
    let value = serde_json::to_vec(entry)?;
    let record = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: i32::try_from(entry.log_id.leader_id.term).unwrap_or(i32::MAX),
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp,
        key: None,
        value: Some(Bytes::from(value)),
        headers: Default::default(),
    };
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        std::slice::from_ref(&record),
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .map_err(|e| CodecError::Batch(e.to_string()))?;
    Ok(buf.freeze())
}

/// Decodes the entry stored in one record batch.
pub(crate) fn decode(batch: &[u8]) -> Result<Entry, CodecError> {
    let mut raw = Bytes::copy_from_slice(batch);
    let set = RecordBatchDecoder::decode(&mut raw).map_err(|e| CodecError::Batch(e.to_string()))?;
    let [record] = set.records.as_slice() else {
        return Err(CodecError::Shape(set.records.len()));
    };
    let value = record.value.as_deref().ok_or(CodecError::Shape(0))?;
    Ok(serde_json::from_slice(value)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::MetadataRecord;
    use crate::quorum::types::Proposal;
    use openraft::{CommittedLeaderId, EntryPayload, LogId};

    #[test]
    fn entry_round_trips_through_a_batch() {
        let entry = Entry {
            log_id: LogId::new(CommittedLeaderId::new(4, 1), 9),
            payload: EntryPayload::Normal(Proposal {
                based_on: 7,
                records: vec![MetadataRecord::FenceBroker { broker_id: 2 }],
            }),
        };
        let bytes = encode(&entry, 1).expect("encode");
        let view = strom_log::BatchView::parse(&bytes).expect("batch");
        assert_eq!(view.partition_leader_epoch(), 4);
        assert_eq!(view.record_count(), 1);
        let back = decode(&bytes).expect("decode");
        assert_eq!(back.log_id, entry.log_id);
        assert_eq!(back.payload, entry.payload);
    }
}
