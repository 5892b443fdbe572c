//! Builders of raw v2 batches (any header, any record bytes, a valid CRC) and the seed inputs of
//! the fuzz targets: real batches of every kind, and one of each on-disk file.

use std::io::Write;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use crate::batch::BATCH_HEADER_LEN;

/// The header fields of a batch to build by hand; records are passed as bytes to
/// [`RawBatch::encode`], so they may be anything.
#[derive(Debug, Clone, Copy)]
pub struct RawBatch {
    /// `baseOffset`.
    pub base_offset: i64,
    /// `partitionLeaderEpoch`.
    pub partition_leader_epoch: i32,
    /// `attributes` (compression in the low 3 bits, 0x08 LogAppendTime, 0x10 transactional,
    /// 0x20 control).
    pub attributes: i16,
    /// `lastOffsetDelta`.
    pub last_offset_delta: i32,
    /// `baseTimestamp`.
    pub base_timestamp: i64,
    /// `maxTimestamp`.
    pub max_timestamp: i64,
    /// `producerId`.
    pub producer_id: i64,
    /// `producerEpoch`.
    pub producer_epoch: i16,
    /// `baseSequence`.
    pub base_sequence: i32,
    /// `recordCount`.
    pub record_count: i32,
}

impl Default for RawBatch {
    /// One non-idempotent record at offset 0, CreateTime 0, uncompressed.
    fn default() -> Self {
        RawBatch {
            base_offset: 0,
            partition_leader_epoch: 0,
            attributes: 0,
            last_offset_delta: 0,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            record_count: 1,
        }
    }
}

impl RawBatch {
    /// The batch with `records` (already compressed if the attributes say so) and its CRC.
    pub fn encode(&self, records: &[u8]) -> Vec<u8> {
        let mut b = Vec::with_capacity(BATCH_HEADER_LEN + records.len());
        b.extend_from_slice(&self.base_offset.to_be_bytes());
        let len = (BATCH_HEADER_LEN - 12 + records.len()) as i32;
        b.extend_from_slice(&len.to_be_bytes());
        b.extend_from_slice(&self.partition_leader_epoch.to_be_bytes());
        b.push(2);
        b.extend_from_slice(&[0; 4]); // CRC, below
        b.extend_from_slice(&self.attributes.to_be_bytes());
        b.extend_from_slice(&self.last_offset_delta.to_be_bytes());
        b.extend_from_slice(&self.base_timestamp.to_be_bytes());
        b.extend_from_slice(&self.max_timestamp.to_be_bytes());
        b.extend_from_slice(&self.producer_id.to_be_bytes());
        b.extend_from_slice(&self.producer_epoch.to_be_bytes());
        b.extend_from_slice(&self.base_sequence.to_be_bytes());
        b.extend_from_slice(&self.record_count.to_be_bytes());
        b.extend_from_slice(records);
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b
    }
}

fn put_varlong(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

fn put_nullable(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => put_varlong(out, -1),
        Some(b) => {
            put_varlong(out, b.len() as i64);
            out.extend_from_slice(b);
        }
    }
}

/// One v2 record with its length prefix, laid out as Kafka writes it.
pub fn raw_record(
    offset_delta: i32,
    timestamp_delta: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[(&[u8], Option<&[u8]>)],
) -> Vec<u8> {
    let mut body = vec![0u8]; // attributes
    put_varlong(&mut body, timestamp_delta);
    put_varlong(&mut body, i64::from(offset_delta));
    put_nullable(&mut body, key);
    put_nullable(&mut body, value);
    put_varlong(&mut body, headers.len() as i64);
    for (k, v) in headers {
        put_nullable(&mut body, Some(k));
        put_nullable(&mut body, *v);
    }
    let mut out = Vec::with_capacity(body.len() + 5);
    put_varlong(&mut out, body.len() as i64);
    out.extend_from_slice(&body);
    out
}

/// `data` compressed with Kafka's framing for `codec` (1 gzip, 2 snappy in xerial framing,
/// 3 lz4 frame, 4 zstd); anything else is returned as is.
pub fn compress(codec: i16, data: &[u8]) -> Vec<u8> {
    match codec {
        1 => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            let _ = e.write_all(data);
            e.finish().unwrap_or_default()
        }
        2 => {
            let mut out = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01".to_vec();
            for chunk in data.chunks(32 << 10) {
                let block = snap::raw::Encoder::new()
                    .compress_vec(chunk)
                    .unwrap_or_default();
                out.extend_from_slice(&(block.len() as u32).to_be_bytes());
                out.extend_from_slice(&block);
            }
            out
        }
        3 => {
            let Ok(mut e) = lz4::EncoderBuilder::new().build(Vec::new()) else {
                return Vec::new();
            };
            let _ = e.write_all(data);
            e.finish().0
        }
        4 => zstd::encode_all(data, 3).unwrap_or_default(),
        _ => data.to_vec(),
    }
}

/// `records` as Kafka's encoder writes them (one batch while offsets and producer fields allow);
/// empty when the encoder refuses them.
pub fn encode(records: &[Record], compression: Compression) -> Vec<u8> {
    let mut buf = BytesMut::new();
    match RecordBatchEncoder::encode(
        &mut buf,
        records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    ) {
        Ok(()) => buf.to_vec(),
        Err(_) => Vec::new(),
    }
}

/// Batches as clients and the coordinator write them, through Kafka's encoder: plain, keyed
/// with headers under each codec, idempotent, transactional, a COMMIT marker, LogAppendTime.
pub fn record_batch_seeds() -> Vec<Vec<u8>> {
    let record = |i: i64, pid: i64, key: bool| Record {
        transactional: false,
        control: false,
        partition_leader_epoch: 0,
        delete_horizon: false,
        producer_id: pid,
        producer_epoch: if pid >= 0 { 0 } else { -1 },
        timestamp_type: TimestampType::Creation,
        offset: i,
        sequence: if pid >= 0 { i as i32 } else { i as i32 - 1 },
        timestamp: 1_700_000_000_000 + i,
        key: key.then(|| Bytes::from(format!("k{i}"))),
        value: Some(Bytes::from(vec![b'a' + i as u8; 12])),
        headers: if key {
            [("h".into(), Some(Bytes::from_static(b"v")))].into()
        } else {
            Default::default()
        },
    };
    let keyed: Vec<Record> = (0..3).map(|i| record(i, -1, true)).collect();
    let mut seeds = vec![encode(
        &(0..3).map(|i| record(i, -1, false)).collect::<Vec<_>>(),
        Compression::None,
    )];
    for c in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        seeds.push(encode(&keyed, c));
    }
    seeds.push(encode(
        &(0..2).map(|i| record(i, 42, true)).collect::<Vec<_>>(),
        Compression::None,
    ));
    let txn: Vec<Record> = (0..2)
        .map(|i| Record {
            transactional: true,
            ..record(i, 43, true)
        })
        .collect();
    seeds.push(encode(&txn, Compression::None));
    let marker = Record {
        transactional: true,
        control: true,
        key: Some(Bytes::from_static(&[0, 0, 0, 1])),
        value: Some(Bytes::from_static(&[0, 0, 0, 0, 0, 5])),
        headers: Default::default(),
        ..record(0, 43, false)
    };
    seeds.push(encode(&[marker], Compression::None));
    let mut append_time = encode(&keyed, Compression::None);
    crate::batch::BatchMut::new(&mut append_time).set_log_append_time(1_700_000_000_500);
    seeds.push(append_time);
    seeds
}

/// The batch seeds laid end to end as a segment from `base`, each given its offsets.
fn segment(base: i64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut next = base;
    for mut batch in record_batch_seeds() {
        let Ok(view) = crate::batch::BatchView::parse(&batch) else {
            continue;
        };
        let delta = i64::from(view.last_offset_delta());
        crate::batch::BatchMut::new(&mut batch).set_base_offset(next);
        next += delta + 1;
        out.extend_from_slice(&batch);
    }
    out
}

/// The producer-state snapshot at `offset` of the seed segment from 0: every batch ending below
/// it replayed.
fn snapshot(offset: i64) -> Vec<u8> {
    let bytes = segment(0);
    let mut state = crate::ProducerStateManager::new(60_000);
    for view in crate::batch::Batches::new(&bytes).flatten() {
        if view.next_offset() <= offset {
            state.replay(&crate::ProducerBatch::from_view(&view), view.base_offset());
        }
    }
    crate::producer_snapshot::encode(offset, &state)
}

fn aborted(producer_id: i64, first_offset: i64, last_offset: i64) -> [u8; 34] {
    crate::txn_index::AbortedTxn {
        producer_id,
        first_offset,
        last_offset,
        last_stable_offset: last_offset + 1,
    }
    .encode()
}

/// One well-formed input of each kind [`super::disk_files`] reads (kind byte first).
pub fn disk_file_seeds() -> Vec<Vec<u8>> {
    let offsets = crate::index::OffsetIndex::new(1 << 20);
    let times = crate::index::TimeIndex::new(1 << 20);
    for i in 1..4u32 {
        offsets.append(i * 10, i * 4096);
        times.maybe_append(1_700_000_000_000 + i64::from(i), i * 10);
    }
    let with_kind = |kind: u8, bytes: &[u8]| [&[kind][..], bytes].concat();
    vec![
        with_kind(0, &offsets.to_bytes()),
        with_kind(1, &times.to_bytes()),
        with_kind(2, &snapshot(i64::MAX)),
        with_kind(3, b"0\n2\n0 0\n3 1200\n"),
        with_kind(4, b"0\n2\ntopic-a 0 42\ntopic b 3 7\n"),
        with_kind(5, &[aborted(7, 0, 5), aborted(8, 3, 9)].concat()),
    ]
}

/// The offset of the snapshot in [`super::PARTITION_FILES`]: a batch boundary of the seed segment.
const SNAPSHOT_OFFSET: i64 = 3;

/// Partition directories for [`super::partition_dir`]: the seed batches as segments 0 and 10
/// with their indexes, a snapshot, a leader-epoch checkpoint, a transaction index, loaded
/// after a clean shutdown and after a crash.
pub fn partition_dir_seeds() -> Vec<Vec<u8>> {
    let log = segment(0);
    let idx = crate::index::OffsetIndex::new(1 << 20);
    let times = crate::index::TimeIndex::new(1 << 20);
    for view in crate::batch::Batches::new(&log)
        .flatten()
        .skip(1)
        .step_by(3)
    {
        let at = view.as_bytes().as_ptr() as usize - log.as_ptr() as usize;
        idx.append(view.last_offset() as u32, at as u32);
        times.maybe_append(view.max_timestamp(), view.last_offset() as u32);
    }
    let files: [(u8, Vec<u8>); 7] = [
        (0, log),
        (1, idx.to_bytes()),
        (2, times.to_bytes()),
        (3, segment(10)),
        (4, snapshot(SNAPSHOT_OFFSET)),
        (5, b"0\n1\n0 0\n".to_vec()),
        (6, aborted(43, 2, 9).to_vec()),
    ];
    let mut dir = Vec::new();
    for (kind, bytes) in &files {
        dir.push(*kind);
        dir.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
        dir.extend_from_slice(bytes);
    }
    [1u8, 0]
        .iter()
        .map(|clean| {
            let mut seed = dir.clone();
            seed.extend_from_slice(&[8, 0, 17, *clean]);
            seed.extend_from_slice(&[0; 16]);
            seed
        })
        .collect()
}

/// Recomputes the CRC of every whole batch in `data` (a mutation hook: most mutations would
/// otherwise stop at the CRC check and never reach the records).
pub fn fix_crcs(data: &mut [u8]) {
    let mut at = 0usize;
    while let Some(rest) = data.get_mut(at..) {
        let Ok(Some(size)) = crate::batch::batch_size(rest) else {
            return;
        };
        let Some(batch) = rest.get_mut(..size) else {
            return;
        };
        if batch.len() >= BATCH_HEADER_LEN {
            let crc = crc32c::crc32c(&batch[21..]);
            batch[17..21].copy_from_slice(&crc.to_be_bytes());
        }
        at += size;
    }
}
