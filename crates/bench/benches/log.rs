//! Partition-log throughput next to the disk's own limit, from one run on one filesystem.
//!
//! `durable_write/*`: 16 records of 1 KiB per batch (~16.6 KB), each append acknowledged only
//! after the group-commit fdatasync that covers it (`flush.messages` = 1, the default), from
//! 1 appender, 8 appenders on 8 partitions, and 8 appenders on one partition.
//! `durable_write/raw_fdatasync` writes the same bytes in the same chunks to a plain file, each
//! followed by fdatasync: the ratio of the two is the figure that travels between machines. It
//! runs first and again last (`raw_fdatasync_after`), because a shared disk drifts within a run.
//! `read/page_cache`: a consumer's sequential scan of a pre-written 64 MiB log in 1 MiB fetches.
//!
//! Run: `cargo bench -p strom-bench --bench log` (add `-- --test` for a one-iteration check).
//! After criterion's report a summary prints MiB/s, the ratio to raw, and group-commit rounds.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkGroup, Criterion, Throughput};
use strom_bench::{
    append_durable, bench_root, prefill, read_all, record_batch, LogFixture, RawSyncFile,
};
use strom_log::{now_ms, LogConfig, PartitionLog};
use tokio::runtime::Runtime;

const RECORDS_PER_BATCH: i32 = 16;
const RECORD_VALUE_LEN: usize = 1024;
/// `max.partition.fetch.bytes`' default.
const FETCH_MAX_BYTES: u64 = 1 << 20;
const READ_LOG_BYTES: u64 = 64 << 20;
const RAW: &str = "raw_fdatasync";
const RAW_AFTER: &str = "raw_fdatasync_after";

/// Totals over every call of one benchmark's routine (warm-up included), for the summary.
#[derive(Debug, Default, Clone)]
struct Row {
    name: String,
    bytes: u64,
    elapsed: Duration,
    appends: u64,
    rounds: u64,
}

impl Row {
    fn new(name: &str) -> Self {
        Row {
            name: name.to_string(),
            ..Row::default()
        }
    }
    fn mib_per_s(&self) -> f64 {
        self.bytes as f64 / (1 << 20) as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Spawns one task per entry of `logs`, each appending `batch` durably `iters` times.
async fn run_appenders(logs: &[Arc<PartitionLog>], batch: &Bytes, iters: u64) -> Duration {
    let start = Instant::now();
    let tasks: Vec<_> = logs
        .iter()
        .map(|log| {
            let (log, batch) = (log.clone(), batch.clone());
            tokio::spawn(async move {
                for _ in 0..iters {
                    append_durable(&log, &batch).await.expect("durable append");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("appender task");
    }
    start.elapsed()
}

fn raw_fdatasync(
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    root: &std::path::Path,
    batch: &Bytes,
    name: &str,
) -> Row {
    let mut raw = RawSyncFile::create(&root.join(format!("{name}.bin"))).expect("raw file");
    let mut row = Row::new(name);
    group.throughput(Throughput::Bytes(batch.len() as u64));
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                raw.write_sync(batch).expect("raw write + fdatasync");
            }
            let elapsed = start.elapsed();
            row.bytes += iters * batch.len() as u64;
            row.elapsed += elapsed;
            elapsed
        })
    });
    row
}

fn appenders(
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rt: &Runtime,
    root: &std::path::Path,
    batch: &Bytes,
    name: &str,
    partitions: i32,
    appenders: usize,
) -> Row {
    let fixture = LogFixture::open(&root.join(name), partitions, Arc::new(LogConfig::default()))
        .expect("log fixture");
    let logs: Vec<Arc<PartitionLog>> = (0..appenders)
        .map(|i| fixture.logs()[i % fixture.logs().len()].clone())
        .collect();
    let mut row = Row::new(name);
    group.throughput(Throughput::Bytes((appenders * batch.len()) as u64));
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let rounds = fixture.manager().flush_rounds();
            let elapsed = rt.block_on(run_appenders(&logs, batch, iters));
            row.rounds += fixture.manager().flush_rounds() - rounds;
            row.appends += iters * appenders as u64;
            row.bytes += iters * (appenders * batch.len()) as u64;
            row.elapsed += elapsed;
            elapsed
        })
    });
    row
}

fn read_page_cache(c: &mut Criterion, rt: &Runtime, root: &std::path::Path, batch: &Bytes) -> Row {
    // Pre-write without a fdatasync per append: only the read is measured.
    let relaxed = BTreeMap::from([("flush.messages".to_string(), i64::MAX.to_string())]);
    let config = Arc::new(LogConfig::build(&BTreeMap::new(), &relaxed).expect("log config"));
    let fixture = LogFixture::open(&root.join("read"), 1, config).expect("log fixture");
    let log = fixture.logs()[0].clone();
    let size = rt
        .block_on(prefill(&log, batch, READ_LOG_BYTES))
        .expect("prefill");
    let mut row = Row::new("read/page_cache");
    let mut group = c.benchmark_group("read");
    group.throughput(Throughput::Bytes(size));
    group.bench_function("page_cache", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                let read = read_all(&log, FETCH_MAX_BYTES).expect("read");
                assert_eq!(read, size, "read the whole log");
            }
            let elapsed = start.elapsed();
            row.bytes += iters * size;
            row.elapsed += elapsed;
            elapsed
        })
    });
    group.finish();
    row
}

fn print_summary(rows: &[Row], batch_len: usize) {
    // The ratio is against the mean of the raw figures before and after the log benchmarks.
    let raws: Vec<f64> = rows
        .iter()
        .filter(|r| (r.name == RAW || r.name == RAW_AFTER) && r.elapsed > Duration::ZERO)
        .map(Row::mib_per_s)
        .collect();
    let raw = (!raws.is_empty()).then(|| raws.iter().sum::<f64>() / raws.len() as f64);
    println!(
        "\nsummary (totals over all iterations incl. warm-up; batch = {batch_len} bytes; \
         x raw = against the mean of {RAW} and {RAW_AFTER})"
    );
    println!(
        "{:<32} {:>10} {:>8} {:>10} {:>14}",
        "benchmark", "MiB/s", "x raw", "rounds/s", "appends/round"
    );
    for r in rows.iter().filter(|r| r.elapsed > Duration::ZERO) {
        let ratio = match raw {
            Some(raw) if r.appends > 0 => {
                format!("{:.2}", r.mib_per_s() / raw)
            }
            _ => "-".to_string(),
        };
        let (rounds, per_round) = if r.rounds > 0 {
            (
                format!("{:.0}", r.rounds as f64 / r.elapsed.as_secs_f64()),
                format!("{:.1}", r.appends as f64 / r.rounds as f64),
            )
        } else {
            ("-".to_string(), "-".to_string())
        };
        println!(
            "{:<32} {:>10.1} {:>8} {:>10} {:>14}",
            r.name,
            r.mib_per_s(),
            ratio,
            rounds,
            per_round
        );
    }
}

fn main() {
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    let root = bench_root().expect("bench dir");
    let rt = runtime();
    let batch = record_batch(RECORDS_PER_BATCH, RECORD_VALUE_LEN, now_ms()).expect("batch");

    let mut rows = Vec::new();
    {
        let mut group = c.benchmark_group("durable_write");
        rows.push(raw_fdatasync(&mut group, root.path(), &batch, RAW));
        for (name, partitions, n) in [
            ("log_1_appender", 1, 1),
            ("log_8_appenders_8_partitions", 8, 8),
            ("log_8_appenders_1_partition", 1, 8),
        ] {
            rows.push(appenders(
                &mut group,
                &rt,
                root.path(),
                &batch,
                name,
                partitions,
                n,
            ));
        }
        // The disk drifts within a run: measuring the limit again brackets the log figures.
        rows.push(raw_fdatasync(&mut group, root.path(), &batch, RAW_AFTER));
        group.finish();
    }
    rows.push(read_page_cache(&mut c, &rt, root.path(), &batch));

    c.final_summary();
    print_summary(&rows, batch.len());
}
