//! Test-only helpers: valid v2 batches built with the `kafka-protocol` codec.
//!
//! Test-only: declared under #[cfg(test)] by its parent module.

pub(crate) use crate::fuzzing::{compress, encode, raw_record, RawBatch};

use bytes::Bytes;
use kafka_protocol::records::{Compression, Record, TimestampType};

/// A batch of `count` records of `value_len` bytes; record i has timestamp `timestamp + i`.
pub(crate) fn make_batch(count: i32, value_len: usize, timestamp: i64) -> Vec<u8> {
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            transactional: false,
            control: false,
            partition_leader_epoch: 0,
            delete_horizon: false,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i64::from(i),
            // The codec splits batches where offset - sequence changes; base sequence stays -1.
            sequence: i - 1,
            timestamp: timestamp + i64::from(i),
            key: None,
            value: Some(Bytes::from(vec![b'x'; value_len])),
            headers: Default::default(),
        })
        .collect();
    encode(&records, Compression::None)
}

/// A batch of keyed records (value `None` = tombstone), record i at `timestamp + i`.
pub(crate) fn make_keyed_batch(records: &[(&[u8], Option<&[u8]>)], timestamp: i64) -> Vec<u8> {
    make_keyed_batch_with(records, timestamp, Compression::None)
}

/// [`make_keyed_batch`] with a compression codec.
pub(crate) fn make_keyed_batch_with(
    records: &[(&[u8], Option<&[u8]>)],
    timestamp: i64,
    compression: Compression,
) -> Vec<u8> {
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (k, v))| Record {
            transactional: false,
            control: false,
            partition_leader_epoch: 0,
            delete_horizon: false,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: i as i32 - 1,
            timestamp: timestamp + i as i64,
            key: Some(Bytes::copy_from_slice(k)),
            value: v.map(Bytes::copy_from_slice),
            headers: Default::default(),
        })
        .collect();
    encode(&records, compression)
}

fn encode_records(records: &[Record]) -> Vec<u8> {
    encode(records, Compression::None)
}

fn record(pid: i64, seq: i32, control: bool, key: Vec<u8>, value: Vec<u8>) -> Record {
    Record {
        transactional: true,
        control,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id: pid,
        producer_epoch: 0,
        timestamp_type: TimestampType::Creation,
        offset: i64::from(seq.max(0)),
        sequence: seq,
        timestamp: crate::now_ms(),
        key: Some(Bytes::from(key)),
        value: Some(Bytes::from(value)),
        headers: Default::default(),
    }
}

/// `count` records of a transactional producer from sequence `seq`.
pub(crate) fn txn_batch(pid: i64, seq: i32, count: i32) -> Vec<u8> {
    let records: Vec<Record> = (0..count)
        .map(|i| record(pid, seq + i, false, b"k".to_vec(), b"v".to_vec()))
        .collect();
    encode_records(&records)
}

/// A transaction marker (control key version 0, type 0 abort / 1 commit).
pub(crate) fn marker(pid: i64, commit: bool) -> Vec<u8> {
    encode_records(&[record(
        pid,
        -1,
        true,
        vec![0, 0, 0, u8::from(commit)],
        vec![0; 6],
    )])
}
