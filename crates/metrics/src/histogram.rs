//! `AtomicHistogram`: a fixed-bucket histogram updated with atomics only, so a request or a
//! flush round records itself without a lock (prometheus-client's `Histogram` takes a lock per
//! observation). Buckets are fixed at construction; a scrape reads each cell once, so a
//! concurrent update may show in `count` and not yet in a bucket (off by one for one scrape,
//! never lost).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::{MetricEncoder, NoLabelSet};

/// Latency buckets in seconds: 0.5 ms to 10 s, roughly ×2.5 apart.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Count buckets (batches per flush round and similar): 1 to 1024, powers of two.
pub const COUNT_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

/// A histogram of values recorded as integer units (nanoseconds, or plain counts) and exposed
/// as `units × scale` (seconds, or counts).
#[derive(Debug)]
pub struct AtomicHistogram {
    bounds: &'static [f64],
    /// One cell per bound, plus the +Inf overflow cell.
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    /// The sum in units (u64 nanoseconds last 584 years).
    sum_units: AtomicU64,
    scale: f64,
}

impl AtomicHistogram {
    /// A histogram of durations, exposed in seconds.
    pub fn seconds(bounds: &'static [f64]) -> Self {
        Self::new(bounds, 1e-9)
    }

    /// A histogram of counts.
    pub fn counts(bounds: &'static [f64]) -> Self {
        Self::new(bounds, 1.0)
    }

    fn new(bounds: &'static [f64], scale: f64) -> Self {
        AtomicHistogram {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_units: AtomicU64::new(0),
            scale,
        }
    }

    /// Records a duration (a `seconds` histogram).
    pub fn observe_duration(&self, d: Duration) {
        self.observe_units(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Records a value in units (nanoseconds for `seconds`, the count for `counts`).
    pub fn observe_units(&self, units: u64) {
        let value = units as f64 * self.scale;
        // Few buckets: a linear scan beats a binary search's branches here.
        let i = self
            .bounds
            .iter()
            .position(|b| value <= *b)
            .unwrap_or(self.bounds.len());
        if let Some(cell) = self.buckets.get(i) {
            cell.fetch_add(1, Ordering::Relaxed);
        }
        self.sum_units.fetch_add(units, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Writes the histogram's buckets, sum and count through `encoder`.
    pub fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        let buckets: Vec<(f64, u64)> = self
            .bounds
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(self.buckets.iter().map(|c| c.load(Ordering::Relaxed)))
            .collect();
        let in_buckets: u64 = buckets.iter().map(|b| b.1).sum();
        // A concurrent observation may have bumped a bucket but not the count yet (or the
        // reverse): keep the count consistent with the buckets Prometheus sees.
        let count = in_buckets;
        let sum = self.sum_units.load(Ordering::Relaxed) as f64 * self.scale;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_their_bucket() {
        let h = AtomicHistogram::seconds(LATENCY_BUCKETS);
        h.observe_duration(Duration::from_micros(300));
        h.observe_duration(Duration::from_millis(30));
        h.observe_duration(Duration::from_secs(60));
        let cells: Vec<u64> = h
            .buckets
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        assert_eq!(cells[0], 1, "0.3 ms ≤ 0.5 ms");
        assert_eq!(cells[6], 1, "30 ms ≤ 50 ms");
        assert_eq!(cells[LATENCY_BUCKETS.len()], 1, "60 s overflows");
        assert_eq!(h.count(), 3);
    }
}
