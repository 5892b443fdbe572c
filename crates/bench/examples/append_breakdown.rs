//! Where one durable append's time goes, for a single appender on one partition: validation,
//! the write into the page cache (`PartitionLog::append`), and the wait for the group-commit
//! fdatasync (`wait_durable`, which includes the hand-offs to and from the flusher thread).
//!
//! Run: `cargo run --release -p strom-bench --example append_breakdown [appends]`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use strom_bench::{bench_root, record_batch, BenchError, LogFixture};
use strom_log::{now_ms, validate_batches, LogConfig};

fn main() -> Result<(), BenchError> {
    let appends: u32 = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(3000);
    let root = bench_root()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let batch = record_batch(16, 1024, now_ms())?;
    let fixture = LogFixture::open(&root.path().join("log"), 1, Arc::new(LogConfig::default()))?;
    let log = fixture.logs()[0].clone();
    let task = rt.spawn(async move {
        let (mut validate, mut append, mut wait) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
        let start = Instant::now();
        for _ in 0..appends {
            let t0 = Instant::now();
            let validated = validate_batches(batch.clone(), &log.config(), now_ms())?;
            let t1 = Instant::now();
            let info = log.append(&validated, 0)?;
            let t2 = Instant::now();
            log.wait_durable(info.last_offset + 1).await?;
            validate += t1 - t0;
            append += t2 - t1;
            wait += t2.elapsed();
        }
        let n = appends.max(1);
        println!(
            "per append ({} bytes): total {:?}, validate {:?}, append {:?}, wait_durable {:?}",
            batch.len(),
            start.elapsed() / n,
            validate / n,
            append / n,
            wait / n
        );
        Ok::<(), BenchError>(())
    });
    rt.block_on(task)??;
    println!("flush rounds: {}", fixture.manager().flush_rounds());
    Ok(())
}
