//! `strom perf produce`: kafka-producer-perf-test's loop. One payload is built up front and shared
//! by every record (refcounted), so the tool measures the client and broker, not allocation.

use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use strom_client::{Client, DeliveryFuture, Producer, ProducerConfig};
use tokio::sync::mpsc;

use super::stats::{rates, LatencyStats};
use super::ProducePerfArgs;

/// How often a progress line is printed.
const REPORT_EVERY: Duration = Duration::from_secs(5);

pub(super) async fn run(client: Client, args: ProducePerfArgs) -> anyhow::Result<()> {
    // Resolve the topic before the clock starts.
    client
        .topic_metadata(&args.topic, true)
        .await
        .with_context(|| format!("topic {}", args.topic))?;
    let producer = Producer::new(
        client,
        ProducerConfig {
            acks: args.acks.into(),
            batch_size: args.batch_size,
            linger: Duration::from_millis(args.linger_ms),
            compression: args.compression.into(),
            ..ProducerConfig::default()
        },
    );
    let payload = payload(args.record_size);
    let (tx, rx) = mpsc::unbounded_channel();
    let collector = tokio::spawn(collect(rx, args.num_records, args.record_size as u64));

    let start = Instant::now();
    for i in 0..args.num_records {
        if args.throughput > 0 {
            throttle(start, i, args.throughput.unsigned_abs()).await;
        }
        let sent = Instant::now();
        let future = producer
            .send(&args.topic, None, Some(payload.clone()), Vec::new())
            .await?;
        // The collector only stops after the sender half is dropped, so this cannot fail.
        let _ = tx.send((sent, future));
    }
    drop(tx);
    let flushed = producer.flush().await;
    let (mut stats, bytes, failed) = collector.await.context("latency collector task")?;
    let elapsed = start.elapsed();
    let (rps, mbps) = rates(stats.summary().count, bytes, elapsed);
    let s = stats.summary();
    println!(
        "{} records sent, {rps:.1} records/sec ({mbps:.2} MB/sec), {:.2} ms avg latency, {:.2} ms max latency, \
         {:.2} ms 50th, {:.2} ms 95th, {:.2} ms 99th, {:.2} ms 99.9th.",
        s.count, s.avg_ms, s.max_ms, s.p50_ms, s.p95_ms, s.p99_ms, s.p999_ms
    );
    if failed > 0 {
        eprintln!("{failed} records failed");
    }
    flushed.context("producing")?;
    Ok(())
}

/// Waits until record `i` is due under `per_sec` (like Kafka's ThroughputThrottler).
async fn throttle(start: Instant, i: u64, per_sec: u64) {
    let due = start + Duration::from_secs_f64(i as f64 / per_sec as f64);
    if due > Instant::now() + Duration::from_millis(1) {
        tokio::time::sleep_until(due.into()).await;
    }
}

/// Awaits deliveries in send order; returns latencies, bytes acknowledged and failures.
async fn collect(
    mut rx: mpsc::UnboundedReceiver<(Instant, DeliveryFuture)>,
    expected: u64,
    record_size: u64,
) -> (LatencyStats, u64, u64) {
    let mut stats = LatencyStats::new(expected);
    let (mut bytes, mut failed) = (0u64, 0u64);
    let mut window = Window::new();
    while let Some((sent, future)) = rx.recv().await {
        match future.wait().await {
            Ok(_) => {
                let latency = sent.elapsed();
                stats.record(latency);
                bytes += record_size;
                window.record(latency, record_size);
            }
            Err(e) => {
                if failed == 0 {
                    eprintln!("send failed: {e}");
                }
                failed += 1;
            }
        }
        window.maybe_report();
    }
    (stats, bytes, failed)
}

/// Progress over the last `REPORT_EVERY`.
#[derive(Debug)]
struct Window {
    start: Instant,
    count: u64,
    bytes: u64,
    total_latency: Duration,
    max_latency: Duration,
}

impl Window {
    fn new() -> Self {
        Window {
            start: Instant::now(),
            count: 0,
            bytes: 0,
            total_latency: Duration::ZERO,
            max_latency: Duration::ZERO,
        }
    }

    fn record(&mut self, latency: Duration, bytes: u64) {
        self.count += 1;
        self.bytes += bytes;
        self.total_latency += latency;
        self.max_latency = self.max_latency.max(latency);
    }

    fn maybe_report(&mut self) {
        // Reading the clock per record is a measurable share of the tool's CPU at a million
        // records/s (clock_gettime is slow on some VMs): look only every 1024 records (a mask,
        // not `is_multiple_of`, which is newer than the workspace's rust-version).
        const CLOCK_MASK: u64 = 1024 - 1;
        if self.count == 0 || self.count & CLOCK_MASK != 0 {
            return;
        }
        let elapsed = self.start.elapsed();
        if elapsed < REPORT_EVERY {
            return;
        }
        let (rps, mbps) = rates(self.count, self.bytes, elapsed);
        let avg = self.total_latency.as_secs_f64() * 1000.0 / self.count as f64;
        println!(
            "{} records sent, {rps:.1} records/sec ({mbps:.2} MB/sec), {avg:.1} ms avg latency, {:.1} ms max latency.",
            self.count,
            self.max_latency.as_secs_f64() * 1000.0
        );
        *self = Window::new();
    }
}

/// A payload of pseudo-random uppercase letters (as the Java tool), so compression is realistic.
fn payload(size: usize) -> Bytes {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..size)
        .map(|_| {
            // xorshift64: fast, dependency-free, and good enough for filler bytes.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b'A' + (x % 26) as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn payload_has_requested_size_and_letters() {
        let p = payload(1000);
        assert_eq!(p.len(), 1000);
        assert!(p.iter().all(u8::is_ascii_uppercase));
        assert!(payload(0).is_empty());
    }

    #[tokio::test]
    async fn throttle_paces_records() {
        let start = Instant::now();
        for i in 0..=20 {
            throttle(start, i, 200).await;
        }
        // Record 20 is due at 100 ms.
        assert!(start.elapsed() >= Duration::from_millis(95));
    }
}
