//! [`Rate`]: Kafka's windowed rate (`Rate` over a `WindowedSum`), the measure byte-rate and
//! request-time quotas are checked against.
//!
//! Values go into samples of `window_ms` each (`quota.window.size.seconds`); a sample starts at
//! the first record after the previous one completed, so windows are not aligned to the clock.
//! As current Kafka, up to `num_samples + 1` samples are kept (`quota.window.num`, default 11)
//! and a sample is dropped once it has seen no record for `num_samples` windows.
//!
//! The rate is the sum of the kept samples over the elapsed window: the time since the oldest
//! sample started, but at least `num_samples - 1` whole windows. That minimum is what lets a new
//! client burst at first (its first second counts as one second of eleven) and what makes a
//! throttle time long enough to matter. Times are passed in (milliseconds): no clock here, so
//! tests are deterministic; a time earlier than one already seen counts as no time elapsed.
//!
//! Not thread-safe: each sensor holds its `Rate` under a lock.

/// One sample window.
#[derive(Debug, Clone, Copy)]
struct Sample {
    value: f64,
    start_ms: u64,
    last_event_ms: u64,
}

impl Sample {
    fn new(now_ms: u64) -> Sample {
        Sample {
            value: 0.0,
            start_ms: now_ms,
            last_event_ms: now_ms,
        }
    }
}

/// A windowed rate, per second.
#[derive(Debug, Clone)]
pub struct Rate {
    samples: Vec<Sample>,
    current: usize,
    num_samples: u32,
    window_ms: u64,
}

impl Rate {
    /// A rate over `num_samples` windows of `window_ms` (each at least 1).
    pub fn new(num_samples: u32, window_ms: u64) -> Rate {
        let num_samples = num_samples.max(1);
        // Reserved up front so recording never allocates after a sensor is created (bounded, in
        // case of a silly `quota.window.num`: beyond it the Vec grows during the first windows).
        let reserve = (num_samples as usize).saturating_add(1).min(64);
        Rate {
            samples: Vec::with_capacity(reserve),
            current: 0,
            num_samples,
            window_ms: window_ms.max(1),
        }
    }

    /// Adds `value` at `now_ms` (negative values "unrecord", as Kafka's throttled fetch does).
    pub fn record(&mut self, value: f64, now_ms: u64) {
        if self.samples.is_empty() {
            self.samples.push(Sample::new(now_ms));
            self.current = 0;
        }
        let complete = self
            .samples
            .get(self.current)
            .is_none_or(|s| now_ms.saturating_sub(s.start_ms) >= self.window_ms);
        if complete {
            self.advance(now_ms);
        }
        if let Some(sample) = self.samples.get_mut(self.current) {
            sample.value += value;
            sample.last_event_ms = now_ms;
        }
    }

    /// The rate at `now_ms`, per second.
    pub fn measure(&mut self, now_ms: u64) -> f64 {
        self.purge_obsolete(now_ms);
        let total: f64 = self.samples.iter().map(|s| s.value).sum();
        total / (self.window_size_ms(now_ms) as f64 / 1000.0)
    }

    /// The elapsed window the rate divides by (Kafka's `Rate.windowSize`): the time since the
    /// oldest kept sample started, raised to at least `num_samples - 1` whole windows, and never
    /// zero.
    pub fn window_size_ms(&mut self, now_ms: u64) -> u64 {
        self.purge_obsolete(now_ms);
        let oldest = self
            .samples
            .iter()
            .map(|s| s.start_ms)
            .min()
            .unwrap_or(now_ms);
        let mut elapsed = now_ms.saturating_sub(oldest);
        let full_windows = elapsed / self.window_ms;
        let min_full_windows = u64::from(self.num_samples - 1);
        if full_windows < min_full_windows {
            elapsed = elapsed
                .saturating_add((min_full_windows - full_windows).saturating_mul(self.window_ms));
        }
        elapsed.max(1)
    }

    /// Moves to the next sample slot, reusing the oldest once `num_samples + 1` exist.
    fn advance(&mut self, now_ms: u64) {
        let slots = self.num_samples as usize + 1;
        self.current = (self.current + 1) % slots;
        match self.samples.get_mut(self.current) {
            Some(sample) => *sample = Sample::new(now_ms),
            None => {
                self.samples.push(Sample::new(now_ms));
                self.current = self.samples.len() - 1;
            }
        }
    }

    /// Empties samples that have seen no record for `num_samples` windows (they restart at now,
    /// as Kafka's `purgeObsoleteSamples`).
    fn purge_obsolete(&mut self, now_ms: u64) {
        let expire_age = u64::from(self.num_samples).saturating_mul(self.window_ms);
        for sample in &mut self.samples {
            if now_ms.saturating_sub(sample.last_event_ms) >= expire_age {
                *sample = Sample::new(now_ms);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn first_window_counts_as_the_minimum_window() {
        let mut rate = Rate::new(11, 1000);
        rate.record(1000.0, 0);
        // 10 whole windows are assumed before the first sample, plus 500 ms elapsed.
        assert_eq!(rate.window_size_ms(500), 10_500);
        assert!(close(rate.measure(500), 1000.0 / 10.5));
    }

    #[test]
    fn steady_rate_is_measured_exactly() {
        let mut rate = Rate::new(11, 1000);
        // 100 units every 100 ms = 1000/s, for 30 s.
        let mut t = 0;
        while t < 30_000 {
            rate.record(100.0, t);
            t += 100;
        }
        let measured = rate.measure(t - 100);
        assert!((measured - 1000.0).abs() < 1000.0 * 0.1, "{measured}");
        assert!(rate.window_size_ms(t - 100) >= 10_000);
        assert!(rate.window_size_ms(t - 100) <= 12_000);
    }

    #[test]
    fn idle_samples_expire() {
        let mut rate = Rate::new(11, 1000);
        rate.record(5000.0, 0);
        assert!(rate.measure(1000) > 0.0);
        // 11 windows without a record: the sample is obsolete.
        assert!(close(rate.measure(11_000), 0.0));
        assert_eq!(rate.window_size_ms(11_000), 10_000);
    }

    #[test]
    fn keeps_one_more_sample_than_configured() {
        let mut rate = Rate::new(2, 1000);
        rate.record(1.0, 0);
        rate.record(1.0, 999);
        rate.record(1.0, 1000);
        rate.record(1.0, 2000);
        // Three samples (started 0, 1000, 2000) are kept; the first saw a record 1.5 s ago, less
        // than 2 windows, so it still counts: 4 units over 2.5 s.
        assert!(close(rate.measure(2500), 4.0 / 2.5));
        // A fourth sample reuses the slot of the first.
        rate.record(1.0, 3000);
        // At 3.5 s the sample started at 1000 is obsolete: 2 units since 2000.
        assert!(close(rate.measure(3500), 2.0 / 1.5));
    }

    #[test]
    fn time_going_backwards_is_no_time() {
        let mut rate = Rate::new(11, 1000);
        rate.record(10.0, 5000);
        rate.record(10.0, 4000);
        assert!(close(rate.measure(4000), 20.0 / 10.0));
    }

    #[test]
    fn unrecord_cancels_a_record() {
        let mut rate = Rate::new(11, 1000);
        rate.record(10.0, 0);
        rate.record(500.0, 100);
        rate.record(-500.0, 100);
        assert!(close(rate.measure(100), 10.0 / 10.1));
    }
}
