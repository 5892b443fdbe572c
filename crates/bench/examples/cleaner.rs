//! Log cleaner benchmark: cleaner throughput (MB/s of log read and rewritten per second of
//! cleaning) and its effect on produce latency (durable appends to another partition of the same
//! log directory) while it runs.
//!
//! ```text
//! cargo run --release -p strom-bench --example cleaner -- [dirty MiB, default 256] [keys, default 100000]
//! ```
//!
//! 1. Writes the dirty log (keyed, 100-byte values, 100 records per batch, 16 MiB segments) under
//!    `cleanup.policy=delete`, so nothing cleans it yet.
//! 2. Baseline: 3 s of single-record durable appends to a second partition; p50/p99/max latency.
//! 3. Switches the dirty log to `compact` (a live config change) and repeats the append loop until
//!    the cleaner completes its pass; reports the cleaner's read rate and the latencies.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use strom_bench::{bench_root, BenchError};
use strom_log::{
    now_ms, validate_batches, CleanerConfig, LogConfig, LogManager, LogManagerConfig, PartitionLog,
    TopicPartition,
};

fn keyed_batch(first_key: u64, keys: u64, n: u64, now: i64) -> Result<Bytes, BenchError> {
    let records: Vec<Record> = (0..n)
        .map(|i| Record {
            transactional: false,
            control: false,
            partition_leader_epoch: 0,
            delete_horizon: false,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: i as i32 - 1,
            timestamp: now,
            key: Some(Bytes::from(format!("key-{:08}", (first_key + i) % keys))),
            value: Some(Bytes::from(vec![b'v'; 100])),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )?;
    Ok(buf.freeze())
}

fn config(policy: &str) -> Result<Arc<LogConfig>, BenchError> {
    let topic = BTreeMap::from([
        ("cleanup.policy".to_string(), policy.to_string()),
        ("segment.bytes".to_string(), (16 << 20).to_string()),
        ("min.cleanable.dirty.ratio".to_string(), "0.5".to_string()),
    ]);
    Ok(Arc::new(LogConfig::build(&BTreeMap::new(), &topic)?))
}

fn append_durable(
    rt: &tokio::runtime::Runtime,
    log: &Arc<PartitionLog>,
    b: Bytes,
) -> Result<(), BenchError> {
    let v = validate_batches(b, &log.config(), now_ms())?;
    let info = log.append(&v, 0)?;
    rt.block_on(log.wait_durable(info.last_offset + 1))?;
    Ok(())
}

/// Durable single-batch appends to `log` until `done()`; returns sorted latencies.
fn latency_loop(
    rt: &tokio::runtime::Runtime,
    log: &Arc<PartitionLog>,
    mut done: impl FnMut() -> bool,
) -> Result<Vec<Duration>, BenchError> {
    let mut out = Vec::new();
    let mut i = 0u64;
    while !done() {
        let b = keyed_batch(i, 1000, 1, now_ms())?;
        let t = Instant::now();
        append_durable(rt, log, b)?;
        out.push(t.elapsed());
        i += 1;
    }
    out.sort();
    Ok(out)
}

fn pct(v: &[Duration], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i].as_secs_f64() * 1e3
}

fn main() -> Result<(), BenchError> {
    let args: Vec<String> = std::env::args().collect();
    let mib: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(256);
    let keys: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let root = bench_root()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut mc = LogManagerConfig::new(root.path());
    mc.cleaner = CleanerConfig {
        backoff: Duration::from_millis(50),
        ..Default::default()
    };
    let delete = config("delete")?;
    let d2 = delete.clone();
    let mgr = LogManager::open(mc, &move |_| d2.clone())?;
    let dirty = mgr.get_or_create(&TopicPartition::new("dirty", 0), delete.clone())?;
    let hot = mgr.get_or_create(&TopicPartition::new("hot", 0), delete)?;

    let started = Instant::now();
    let mut next = 0u64;
    while dirty.size_bytes() < mib << 20 {
        let b = keyed_batch(next, keys, 100, now_ms())?;
        let v = validate_batches(b, &dirty.config(), now_ms())?;
        let info = dirty.append(&v, 0)?;
        if next.is_multiple_of(100_000) {
            rt.block_on(dirty.wait_durable(info.last_offset + 1))?;
        }
        next += 100;
    }
    dirty.roll()?;
    rt.block_on(dirty.flush())?;
    let size_before = dirty.size_bytes();
    println!(
        "wrote {:.0} MiB ({next} records over {keys} keys) in {:.1}s",
        size_before as f64 / 1048576.0,
        started.elapsed().as_secs_f64()
    );

    let until = Instant::now() + Duration::from_secs(3);
    let base = latency_loop(&rt, &hot, || Instant::now() > until)?;

    dirty.set_config(config("compact,delete")?);
    let before = mgr.cleaner_stats();
    let t0 = Instant::now();
    let during = latency_loop(&rt, &hot, || mgr.cleaner_stats().passes > before.passes)?;
    let wall = t0.elapsed();
    let s = mgr.cleaner_stats();
    let read = s.bytes_read - before.bytes_read;
    let busy = (s.busy - before.busy).as_secs_f64();
    println!(
        "cleaner: read {:.0} MiB, wrote {:.1} MiB in {busy:.2}s busy ({:.2}s wall): {:.0} MB/s; log {:.0} MiB -> {:.1} MiB",
        read as f64 / 1048576.0,
        (s.bytes_written - before.bytes_written) as f64 / 1048576.0,
        wall.as_secs_f64(),
        read as f64 / 1e6 / busy.max(1e-9),
        size_before as f64 / 1048576.0,
        dirty.size_bytes() as f64 / 1048576.0,
    );
    for (name, v) in [("idle", &base), ("cleaning", &during)] {
        println!(
            "produce latency ({name:8}): n={:6} p50={:.2} ms p99={:.2} ms max={:.2} ms",
            v.len(),
            pct(v, 0.5),
            pct(v, 0.99),
            pct(v, 1.0)
        );
    }
    mgr.shutdown()?;
    Ok(())
}
