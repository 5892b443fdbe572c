//! The produce path's validation cost: `validate_batches` over one 16 KiB batch of 100-byte
//! records (150 records, keyed), uncompressed on a plain and on a compacted topic, and
//! zstd-compressed on a compacted topic (the one case that decompresses).
//!
//! Run: `cargo bench -p strom-log --bench validator` (add `-- --test` for a one-iteration check).

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use strom_log::{validate_batches, LogConfig};

const RECORDS: i64 = 150;
const VALUE_LEN: usize = 100;
const NOW_MS: i64 = 1_700_000_000_000;

/// One batch of `RECORDS` keyed records of `VALUE_LEN` bytes, the size of a typical 16 KiB
/// producer batch.
fn batch(compression: Compression) -> Bytes {
    let records: Vec<Record> = (0..RECORDS)
        .map(|i| Record {
            transactional: false,
            control: false,
            partition_leader_epoch: 0,
            delete_horizon: false,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i,
            sequence: i as i32 - 1,
            timestamp: NOW_MS + i,
            key: Some(Bytes::from(format!("key-{i:05}"))),
            value: Some(Bytes::from(vec![b'a' + (i % 26) as u8; VALUE_LEN])),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .expect("encode");
    buf.freeze()
}

fn compacted() -> LogConfig {
    LogConfig::build(
        &Default::default(),
        &[("cleanup.policy".to_string(), "compact".to_string())].into(),
    )
    .expect("valid config")
}

fn bench(c: &mut Criterion) {
    let plain = LogConfig::default();
    let compact = compacted();
    let cases = [
        ("uncompressed", batch(Compression::None), &plain),
        ("uncompressed_compacted", batch(Compression::None), &compact),
        ("zstd_compacted", batch(Compression::Zstd), &compact),
    ];
    let mut group = c.benchmark_group("validate_batches");
    for (name, bytes, config) in cases {
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| validate_batches(bytes.clone(), config, NOW_MS).expect("valid"))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
