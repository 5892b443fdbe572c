//! How a Raft entry is stored in `__cluster_metadata-0`: one v2 record batch holding one record
//! whose value is the entry as JSON (`{"log_id":…,"payload":…}`), the batch's
//! `partitionLeaderEpoch` set to the entry's term. So the log stays a Kafka log any tool can dump,
//! and one batch per entry keeps offsets and Raft indexes in step (offset + base = index).

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use openraft::EntryPayload;

use super::types::TypeConfig;
use crate::metadata::MetadataRecord;

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

/// An upper estimate of a record's JSON size, from its lengths alone (no encoding).
pub(crate) fn approx_record_len(r: &MetadataRecord) -> usize {
    const ID: usize = 12; // an i32 and a comma
    match r {
        MetadataRecord::Partition { replicas, isr, .. } => 160 + (replicas.len() + isr.len()) * ID,
        MetadataRecord::Topic { name, .. } => 100 + name.len(),
        MetadataRecord::Config {
            resource_name,
            name,
            value,
            ..
        } => 150 + resource_name.len() + name.len() + 2 * value.as_ref().map_or(0, String::len),
        MetadataRecord::RegisterBroker {
            host,
            rack,
            controller_addr,
            endpoints,
            ..
        } => {
            // A listener name may hold `"` and `\`, which JSON escapes: twice its length.
            let endpoints: usize = endpoints
                .iter()
                .map(|e| 100 + 2 * e.name.len() + e.host.len())
                .sum();
            250 + host.len()
                + rack.as_ref().map_or(0, String::len)
                + controller_addr.len()
                + endpoints
        }
        MetadataRecord::UserScramCredential {
            name, credential, ..
        } => {
            // base64: 4 characters per 3 bytes, padded.
            let b64 = |b: &crate::metadata::SecretBytes| 4 * b.as_slice().len().div_ceil(3);
            let c = credential;
            200 + 2 * name.len() + b64(&c.salt) + b64(&c.stored_key) + b64(&c.server_key)
        }
        MetadataRecord::RemoveUserScramCredential { name, .. } => 100 + 2 * name.len(),
        MetadataRecord::AccessControlEntry { binding, .. } => {
            // A name may hold control characters, which JSON escapes as six bytes.
            300 + 6
                * (binding.pattern.name.len()
                    + binding.entry.principal.len()
                    + binding.entry.host.len())
        }
        MetadataRecord::ClientQuota { entity, key, .. } => {
            let parts: usize = entity
                .iter()
                .map(|p| 60 + 6 * p.entity_name.as_ref().map_or(0, String::len))
                .sum();
            150 + 6 * key.len() + parts
        }
        MetadataRecord::RemoveAccessControlEntry { .. }
        | MetadataRecord::RemoveTopic { .. }
        | MetadataRecord::FenceBroker { .. }
        | MetadataRecord::UnfenceBroker { .. }
        | MetadataRecord::ProducerIds { .. } => 100,
    }
}

/// An upper estimate of an entry's JSON size.
pub(crate) fn approx_entry_len(e: &Entry) -> usize {
    200 + match &e.payload {
        EntryPayload::Normal(p) => p.records.iter().map(approx_record_len).sum(),
        EntryPayload::Membership(m) => 100 * m.nodes().count(),
        EntryPayload::Blank => 0,
    }
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
    use crate::quorum::types::Proposal;
    use crate::quorum::wire::json_len;
    use openraft::{CommittedLeaderId, LogId};

    #[test]
    fn entry_round_trips_through_a_batch() {
        let entry = Entry {
            log_id: LogId::new(CommittedLeaderId::new(4, 1), 9),
            payload: EntryPayload::Normal(Proposal {
                based_on: 7,
                records: vec![MetadataRecord::FenceBroker { broker_id: 2 }],
                part: None,
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

    #[test]
    fn the_size_estimate_is_an_upper_bound() {
        let id = uuid::Uuid::new_v4();
        let records = vec![
            MetadataRecord::Topic {
                name: "t".repeat(249),
                topic_id: id,
            },
            MetadataRecord::Partition {
                topic_id: id,
                partition: i32::MAX,
                replicas: vec![i32::MAX; 1000],
                isr: vec![i32::MAX; 1000],
                leader: i32::MAX,
                leader_epoch: i32::MAX,
                partition_epoch: i32::MAX,
            },
            MetadataRecord::Config {
                resource_type: crate::metadata::ConfigResourceType::Topic,
                resource_name: "t".into(),
                name: "n".repeat(255),
                value: Some("\"\n".repeat(8000)),
            },
            MetadataRecord::RegisterBroker {
                broker_id: i32::MAX,
                incarnation: id,
                host: "h".repeat(255),
                port: 65535,
                rack: Some("r".repeat(255)),
                controller_addr: format!("{}:65535", "c".repeat(255)),
                voter: false,
                endpoints: (0..crate::metadata::MAX_LISTENERS_PER_BROKER)
                    .map(|i| crate::metadata::BrokerEndpoint {
                        name: format!("{i}{}", "\"".repeat(254)),
                        host: "h".repeat(255),
                        port: i32::MAX,
                        security_protocol: i16::MIN,
                    })
                    .collect(),
            },
            MetadataRecord::ProducerIds {
                broker_id: i32::MAX,
                next_producer_id: i64::MAX,
            },
            MetadataRecord::UserScramCredential {
                name: "\"".repeat(255),
                mechanism: i8::MIN,
                credential: crate::metadata::StoredScramCredential {
                    salt: vec![0xff; 1025].into(),
                    stored_key: vec![0xff; 64].into(),
                    server_key: vec![0xff; 65].into(),
                    iterations: i32::MIN,
                },
            },
            MetadataRecord::RemoveUserScramCredential {
                name: "\\".repeat(255),
                mechanism: i8::MIN,
            },
        ];
        for r in &records {
            assert!(approx_record_len(r) >= json_len(r).expect("len"), "{r:?}");
        }
        let entry = Entry {
            log_id: LogId::new(CommittedLeaderId::new(u64::MAX, u64::MAX), u64::MAX),
            payload: EntryPayload::Normal(Proposal {
                based_on: i64::MAX,
                records,
                part: None,
            }),
        };
        assert!(approx_entry_len(&entry) >= json_len(&entry).expect("len"));
    }

    #[test]
    fn an_entry_written_before_parts_existed_decodes_as_whole() {
        let old = r#"{"log_id":{"leader_id":{"term":4,"node_id":1},"index":9},
            "payload":{"Normal":{"based_on":7,"records":[{"type":"FenceBroker","broker_id":2}]}}}"#;
        let entry: Entry = serde_json::from_str(old).expect("old entry");
        match entry.payload {
            EntryPayload::Normal(p) => assert_eq!((p.based_on, p.part), (7, None)),
            other => panic!("{other:?}"),
        }
    }
}
