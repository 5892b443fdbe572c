//! Tests of `BatchRecords`: agreement with Kafka's encoder (through `kafka-protocol`) on every
//! codec, and refusal of every structural lie, each of which the kafka-protocol decoder either
//! allocates for or accepts.

use bytes::Bytes;
use kafka_protocol::records::{Compression, Record as KRecord, TimestampType};

use super::*;
use crate::testing::{compress, encode, raw_record, RawBatch};

const LIMIT: usize = 1 << 20;

fn encoded(compression: Compression) -> (Vec<KRecord>, Vec<u8>) {
    let records: Vec<KRecord> = (0..5i64)
        .map(|i| KRecord {
            transactional: false,
            control: false,
            partition_leader_epoch: 0,
            delete_horizon: false,
            producer_id: 7,
            producer_epoch: 1,
            timestamp_type: TimestampType::Creation,
            offset: 100 + i,
            sequence: i as i32,
            timestamp: 1_000 + i * 3,
            key: (i != 2).then(|| Bytes::from(format!("key-{i}"))),
            value: (i != 3).then(|| Bytes::from(vec![b'v'; i as usize * 10])),
            headers: (0..i)
                .map(|h| (format!("h{h}").into(), (h != 1).then(|| Bytes::from("hv"))))
                .collect(),
        })
        .collect();
    let bytes = encode(&records, compression);
    (records, bytes)
}

#[test]
fn reads_what_kafkas_encoder_wrote_with_every_codec() {
    for compression in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let (want, bytes) = encoded(compression);
        let batch = BatchRecords::new(BatchView::parse(&bytes).expect("view"), LIMIT)
            .expect("decompresses");
        assert_eq!(batch.batch().producer_id(), 7);
        let got: Vec<Record<'_>> = batch.iter().collect::<Result<_, _>>().expect("records");
        assert_eq!(got.len(), want.len(), "{compression:?}");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g.offset, w.offset);
            assert_eq!(g.timestamp, w.timestamp);
            assert_eq!(g.key, w.key.as_deref());
            assert_eq!(g.value, w.value.as_deref());
            let headers: Vec<(&[u8], Option<&[u8]>)> =
                g.headers().map(|h| (h.key, h.value)).collect();
            let want_headers: Vec<(&[u8], Option<&[u8]>)> = w
                .headers
                .iter()
                .map(|(k, v)| (k.as_bytes(), v.as_deref()))
                .collect();
            assert_eq!(headers, want_headers);
        }
    }
}

fn read_all(bytes: &[u8]) -> Result<usize, RecordError> {
    let batch = BatchRecords::new(BatchView::parse(bytes).expect("view"), LIMIT)?;
    batch.iter().try_fold(0, |n, r| r.map(|_| n + 1))
}

#[test]
fn a_small_record_claiming_two_billion_headers_is_corrupt() {
    let mut record = raw_record(0, 0, Some(b"k"), Some(&[b'x'; 50]), &[]);
    // Replace the header count (0, the last byte) with i32::MAX.
    record.pop();
    record.extend_from_slice(&[0xfe, 0xff, 0xff, 0xff, 0x0f]);
    record[0] += 8; // the record length grew by four bytes (zig-zag: 2 per byte)
    let bytes = RawBatch::default().encode(&record);
    assert!(matches!(read_all(&bytes), Err(RecordError::Corrupt(_))));
}

#[test]
fn record_count_must_match_the_records() {
    let two = [
        raw_record(0, 0, None, Some(b"a"), &[]),
        raw_record(1, 0, None, Some(b"b"), &[]),
    ]
    .concat();
    let batch = |count| {
        RawBatch {
            record_count: count,
            ..RawBatch::default()
        }
        .encode(&two)
    };
    assert_eq!(read_all(&batch(2)), Ok(2));
    assert_eq!(
        read_all(&batch(1)),
        Err(RecordError::Corrupt("more records than recordCount"))
    );
    assert_eq!(
        read_all(&batch(3)),
        Err(RecordError::Corrupt("fewer records than recordCount"))
    );
    assert!(read_all(&batch(-1)).is_err());
}

#[test]
fn offset_and_timestamp_overflow_are_corrupt() {
    let rec = raw_record(1, 1, None, Some(b"a"), &[]);
    let (mut near_max, mut late) = (RawBatch::default(), RawBatch::default());
    near_max.base_offset = i64::MAX;
    late.base_timestamp = i64::MAX;
    for (batch, why) in [
        (near_max, "record offset overflows"),
        (late, "record timestamp overflows"),
    ] {
        assert_eq!(
            read_all(&batch.encode(&rec)),
            Err(RecordError::Corrupt(why))
        );
    }
}

#[test]
fn log_append_time_batches_carry_the_max_timestamp() {
    let rec = raw_record(0, 5, None, Some(b"a"), &[]);
    let bytes = RawBatch {
        attributes: 0x08,
        base_timestamp: 100,
        max_timestamp: 9_999,
        ..RawBatch::default()
    }
    .encode(&rec);
    let view = BatchView::parse(&bytes).expect("view");
    let batch = BatchRecords::new(view, LIMIT).expect("records");
    let r = batch.iter().next().expect("one").expect("valid");
    assert_eq!((r.timestamp, r.timestamp_delta), (9_999, 5));
}

#[test]
fn duplicate_header_keys_are_kept() {
    let h: &[(&[u8], Option<&[u8]>)] = &[(b"k", Some(b"1")), (b"k", Some(b"2"))];
    let bytes = RawBatch::default().encode(&raw_record(0, 0, None, None, h));
    let view = BatchView::parse(&bytes).expect("view");
    let batch = BatchRecords::new(view, LIMIT).expect("records");
    let r = batch.iter().next().expect("one").expect("valid");
    assert_eq!(r.headers().len(), 2);
    assert_eq!(r.headers().nth(1).and_then(|h| h.value), Some(&b"2"[..]));
}

#[test]
fn a_decompression_bomb_stops_at_the_limit() {
    // One record whose value is 4 MiB of zeros: a few KiB once compressed.
    let rec = raw_record(0, 0, None, Some(&vec![0u8; 4 << 20]), &[]);
    for codec in 1..=4i16 {
        let bytes = RawBatch {
            attributes: codec,
            ..RawBatch::default()
        }
        .encode(&compress(codec, &rec));
        assert!(bytes.len() < 300 << 10, "{codec}");
        let view = BatchView::parse(&bytes).expect("view");
        assert_eq!(
            BatchRecords::new(view, LIMIT).map(|_| ()),
            Err(RecordError::TooLarge { limit: LIMIT })
        );
        assert_eq!(BatchRecords::new(view, 5 << 20).map(|_| ()), Ok(()));
    }
}

#[test]
fn the_limit_follows_max_message_bytes_with_a_floor() {
    assert_eq!(decompression_limit(1_048_588), 1_048_588 * 16);
    assert_eq!(decompression_limit(1_000), 16 << 20);
    assert_eq!(decompression_limit(-1), 16 << 20);
}
