//! Latency statistics for the perf tools: exact count/avg/max, and percentiles from a sorted
//! sample. A sorted vector (no histogram crate) is enough because, like kafka-producer-perf-test,
//! we keep at most ~500k samples (every n-th latency), which sorts in milliseconds.

use std::time::Duration;

/// Upper bound on stored samples.
const MAX_SAMPLES: u64 = 500_000;

/// Latencies in microseconds.
#[derive(Debug)]
pub(super) struct LatencyStats {
    sampling: u64,
    count: u64,
    total_us: u128,
    max_us: u64,
    samples: Vec<u32>,
}

/// Summary of a `LatencyStats`, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Summary {
    pub(super) count: u64,
    pub(super) avg_ms: f64,
    pub(super) max_ms: f64,
    pub(super) p50_ms: f64,
    pub(super) p95_ms: f64,
    pub(super) p99_ms: f64,
    pub(super) p999_ms: f64,
}

impl LatencyStats {
    /// Sized for about `expected` observations.
    pub(super) fn new(expected: u64) -> Self {
        let sampling = (expected / MAX_SAMPLES).max(1);
        let capacity = usize::try_from((expected / sampling).min(MAX_SAMPLES)).unwrap_or(0);
        LatencyStats {
            sampling,
            count: 0,
            total_us: 0,
            max_us: 0,
            samples: Vec::with_capacity(capacity + 1),
        }
    }

    pub(super) fn record(&mut self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        if self.count.is_multiple_of(self.sampling) {
            self.samples.push(u32::try_from(us).unwrap_or(u32::MAX));
        }
        self.count += 1;
        self.total_us += u128::from(us);
        self.max_us = self.max_us.max(us);
    }

    /// Observations so far.
    pub(super) fn summary_count(&self) -> u64 {
        self.count
    }

    pub(super) fn summary(&mut self) -> Summary {
        self.samples.sort_unstable();
        let ms = |us: f64| us / 1000.0;
        Summary {
            count: self.count,
            avg_ms: if self.count == 0 {
                0.0
            } else {
                ms(self.total_us as f64 / self.count as f64)
            },
            max_ms: ms(self.max_us as f64),
            p50_ms: ms(f64::from(percentile(&self.samples, 0.5))),
            p95_ms: ms(f64::from(percentile(&self.samples, 0.95))),
            p99_ms: ms(f64::from(percentile(&self.samples, 0.99))),
            p999_ms: ms(f64::from(percentile(&self.samples, 0.999))),
        }
    }
}

/// Kafka's definition: the element at `floor(len * p)` of the sorted samples.
fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let index = ((sorted.len() as f64 * p) as usize).min(sorted.len() - 1);
    sorted[index]
}

/// records/s and MB/s over `elapsed`.
pub(super) fn rates(records: u64, bytes: u64, elapsed: Duration) -> (f64, f64) {
    let secs = elapsed.as_secs_f64().max(1e-9);
    (records as f64 / secs, bytes as f64 / super::MB / secs)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_follow_kafka_definition() {
        let mut s = LatencyStats::new(1000);
        for ms in 1..=1000u64 {
            s.record(Duration::from_millis(ms));
        }
        let sum = s.summary();
        assert_eq!(sum.count, 1000);
        assert_eq!(sum.p50_ms, 501.0);
        assert_eq!(sum.p99_ms, 991.0);
        assert_eq!(sum.p999_ms, 1000.0);
        assert_eq!(sum.max_ms, 1000.0);
        assert!((sum.avg_ms - 500.5).abs() < 1e-9);
    }

    #[test]
    fn sampling_bounds_memory() {
        let mut s = LatencyStats::new(2_000_000);
        for _ in 0..2_000_000 {
            s.record(Duration::from_micros(5));
        }
        assert!(s.samples.len() <= 500_001);
        assert_eq!(s.summary().count, 2_000_000);
        assert_eq!(LatencyStats::new(0).summary().p99_ms, 0.0);
    }

    #[test]
    fn rates_are_per_second() {
        let (rps, mbps) = rates(1000, 2 * 1024 * 1024, Duration::from_secs(2));
        assert_eq!(rps, 500.0);
        assert_eq!(mbps, 1.0);
    }
}
