//! `strom perf consume`: read `--messages` records from the beginning of every partition and report
//! throughput, like kafka-consumer-perf-test (which also gives up after 10 s without records).

use std::time::{Duration, Instant};

use anyhow::bail;
use strom_client::{Client, Consumer, ConsumerConfig, OffsetReset, StartOffset};

use super::stats::rates;
use super::ConsumePerfArgs;

/// Give up when no record arrives for this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) async fn run(client: Client, args: ConsumePerfArgs) -> anyhow::Result<()> {
    let mut consumer = Consumer::new(
        client,
        ConsumerConfig {
            auto_offset_reset: OffsetReset::Earliest,
            ..ConsumerConfig::default()
        },
    );
    consumer
        .assign_topic(&args.topic, StartOffset::Earliest)
        .await?;
    consumer.resolve_positions().await?;

    let start = Instant::now();
    let mut last_progress = start;
    let (mut records, mut bytes) = (0u64, 0u64);
    while records < args.messages {
        let batch = consumer.poll().await?;
        if batch.is_empty() {
            if last_progress.elapsed() > IDLE_TIMEOUT {
                eprintln!(
                    "WARNING: no records for {IDLE_TIMEOUT:?}; consumed {records} of {}",
                    args.messages
                );
                break;
            }
            continue;
        }
        last_progress = Instant::now();
        for r in batch
            .iter()
            .take(usize::try_from(args.messages - records).unwrap_or(usize::MAX))
        {
            records += 1;
            bytes += (r.key.as_ref().map_or(0, |k| k.len())
                + r.value.as_ref().map_or(0, |v| v.len())) as u64;
        }
    }
    let elapsed = start.elapsed();
    let (rps, mbps) = rates(records, bytes, elapsed);
    println!("data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, fetch.time.ms");
    println!(
        "{:.4}, {mbps:.4}, {records}, {rps:.4}, {}",
        bytes as f64 / super::MB,
        elapsed.as_millis()
    );
    println!("{records} records received, {rps:.1} records/sec ({mbps:.2} MB/sec)");
    if records == 0 && args.messages > 0 {
        bail!("no records consumed from {}", args.topic);
    }
    Ok(())
}
