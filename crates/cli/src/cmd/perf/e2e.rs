//! `strom perf e2e`: a producer at a fixed rate and a consumer in the same process; each record's
//! value starts with its send time (microseconds since the Unix epoch, big-endian), so latency is
//! measured from `send` to the consumer seeing the record.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use bytes::{BufMut, Bytes, BytesMut};
use strom_client::{Acks, Client, Consumer, ConsumerConfig, Producer, ProducerConfig, StartOffset};

use super::stats::LatencyStats;
use super::E2ePerfArgs;

/// Give up when no record arrives for this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
const TIMESTAMP_BYTES: usize = 8;

pub(super) async fn run(client: Client, args: E2ePerfArgs) -> anyhow::Result<()> {
    if args.record_size < TIMESTAMP_BYTES {
        bail!("--record-size must be at least {TIMESTAMP_BYTES} (the send timestamp lives in the value)");
    }
    if args.rate == 0 {
        bail!("--rate must be positive");
    }
    client
        .topic_metadata(&args.topic, true)
        .await
        .with_context(|| format!("topic {}", args.topic))?;
    let mut consumer = Consumer::new(client.clone(), ConsumerConfig::default());
    consumer
        .assign_topic(&args.topic, StartOffset::Latest)
        .await?;
    // Pin "latest" before producing, or the first records could be skipped.
    consumer.resolve_positions().await?;

    // The producer gets its own connections, as separate client processes would: a consumer's
    // long-poll fetch must not sit in front of produce responses on one connection.
    let producer_client = Client::with_config(client.config().clone())
        .await
        .context("connecting the producer")?;
    // linger 0: latency, not throughput, is what this measures.
    let producer = Producer::new(
        producer_client,
        ProducerConfig {
            acks: Acks::All,
            linger: Duration::ZERO,
            ..ProducerConfig::default()
        },
    );
    let (topic, n, rate, size) = (
        args.topic.clone(),
        args.num_records,
        args.rate,
        args.record_size,
    );
    let producing = tokio::spawn(async move {
        let start = Instant::now();
        for i in 0..n {
            let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
            tokio::time::sleep_until(due.into()).await;
            producer
                .send(&topic, None, Some(value(size)), Vec::new())
                .await?;
        }
        producer.flush().await
    });

    let mut stats = LatencyStats::new(args.num_records);
    let mut last_progress = Instant::now();
    while stats.summary_count() < args.num_records {
        let records = consumer.poll().await?;
        if records.is_empty() {
            if last_progress.elapsed() > IDLE_TIMEOUT {
                eprintln!("WARNING: no records for {IDLE_TIMEOUT:?}");
                break;
            }
            continue;
        }
        last_progress = Instant::now();
        let now = now_micros();
        for r in records {
            let Some(sent) = r.value.as_deref().and_then(|v| v.get(..TIMESTAMP_BYTES)) else {
                continue;
            };
            let mut ts = [0u8; TIMESTAMP_BYTES];
            ts.copy_from_slice(sent);
            let latency = now.saturating_sub(u64::from_be_bytes(ts));
            stats.record(Duration::from_micros(latency));
        }
    }
    producing
        .await
        .context("producer task")?
        .context("producing")?;
    let s = stats.summary();
    println!(
        "{} records, end-to-end latency: {:.2} ms avg, {:.2} ms 50th, {:.2} ms 99th, {:.2} ms 99.9th, {:.2} ms max.",
        s.count, s.avg_ms, s.p50_ms, s.p99_ms, s.p999_ms, s.max_ms
    );
    if s.count < args.num_records {
        bail!("received {} of {} records", s.count, args.num_records);
    }
    Ok(())
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// `size` bytes: the send time, then zero padding.
fn value(size: usize) -> Bytes {
    let mut v = BytesMut::with_capacity(size);
    v.put_u64(now_micros());
    v.resize(size, 0);
    v.freeze()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn value_carries_send_time() {
        let before = now_micros();
        let v = value(100);
        assert_eq!(v.len(), 100);
        let ts = u64::from_be_bytes(v[..8].try_into().unwrap());
        assert!(ts >= before && ts <= now_micros());
    }
}
