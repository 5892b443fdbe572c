//! [`TokenBucket`]: Kafka's `TokenBucket` stat, the measure of controller mutation quotas
//! (KIP-599).
//!
//! A windowed rate copes badly with bursts: one large CreateTopics holds the average above the
//! quota until its sample expires, whatever the throttle time said. The bucket refills
//! continuously at the quota (tokens per second) up to a burst of `quota × num_samples × window`
//! (`controller.quota.window.num` × `controller.quota.window.size.seconds`), each mutation takes
//! a token, and the quota is exhausted while the bucket is negative: the throttle time is the
//! time the refill needs to bring it back to zero.
//!
//! A new bucket is full, as Kafka's (it starts empty at time 0, so its first refill fills it).
//! The quota is passed on every call because it can change under an existing sensor; a lower
//! quota lowers the burst cap at the next call. Not thread-safe: each sensor holds its bucket
//! under a lock.

/// A token bucket; tokens are mutations (partitions created or deleted).
#[derive(Debug, Clone)]
pub struct TokenBucket {
    tokens: f64,
    /// `None` until the first call with a quota: the first refill then fills the bucket.
    last_update_ms: Option<u64>,
    num_samples: u32,
    window_ms: u64,
}

impl TokenBucket {
    /// A full bucket whose burst is `num_samples` windows of `window_ms` at the quota.
    pub fn new(num_samples: u32, window_ms: u64) -> TokenBucket {
        TokenBucket {
            tokens: 0.0,
            last_update_ms: None,
            num_samples: num_samples.max(1),
            window_ms: window_ms.max(1),
        }
    }

    /// The most tokens the bucket holds at `quota` per second.
    pub fn burst(&self, quota: f64) -> f64 {
        f64::from(self.num_samples) * (self.window_ms as f64 / 1000.0) * quota
    }

    /// Takes `value` tokens at `now_ms` (after refilling); the bucket may go negative.
    pub fn record(&mut self, value: f64, quota: f64, now_ms: u64) {
        let burst = self.burst(quota);
        self.refill(quota, burst, now_ms);
        self.tokens = burst.min(self.tokens - value);
    }

    /// The tokens left at `now_ms`, after refilling; negative means exhausted.
    pub fn measure(&mut self, quota: f64, now_ms: u64) -> f64 {
        let burst = self.burst(quota);
        self.refill(quota, burst, now_ms);
        self.tokens
    }

    /// Milliseconds until a bucket at `tokens` is back at zero (Kafka's
    /// `ControllerMutationQuotaManager.throttleTimeMs`); 0 when not negative.
    pub fn throttle_time_ms(tokens: f64, quota: f64) -> u64 {
        if tokens >= 0.0 || quota <= 0.0 {
            return 0;
        }
        // Saturating float-to-int conversion: an absurd deficit gives u64::MAX, not a panic.
        (-tokens / quota * 1000.0).round() as u64
    }

    fn refill(&mut self, quota: f64, burst: f64, now_ms: u64) {
        match self.last_update_ms {
            None => {
                self.tokens = burst;
                self.last_update_ms = Some(now_ms);
            }
            Some(last) => {
                let elapsed_s = now_ms.saturating_sub(last) as f64 / 1000.0;
                self.tokens = burst.min(self.tokens + quota * elapsed_s);
                self.last_update_ms = Some(last.max(now_ms));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_full_and_refills_at_the_quota() {
        // 10 mutations/s, burst 10 × 11 × 1 s = 110.
        let mut bucket = TokenBucket::new(11, 1000);
        assert_eq!(bucket.measure(10.0, 5_000), 110.0);
        bucket.record(130.0, 10.0, 5_000);
        assert_eq!(bucket.measure(10.0, 5_000), -20.0);
        assert_eq!(TokenBucket::throttle_time_ms(-20.0, 10.0), 2_000);
        assert_eq!(bucket.measure(10.0, 6_000), -10.0);
        assert_eq!(bucket.measure(10.0, 7_000), 0.0);
        assert_eq!(bucket.measure(10.0, 100_000), 110.0, "capped at the burst");
    }

    #[test]
    fn a_lower_quota_lowers_the_cap() {
        let mut bucket = TokenBucket::new(11, 1000);
        assert_eq!(bucket.measure(10.0, 0), 110.0);
        assert_eq!(bucket.measure(1.0, 0), 11.0);
    }

    #[test]
    fn throttle_time_is_zero_when_not_negative() {
        assert_eq!(TokenBucket::throttle_time_ms(0.0, 10.0), 0);
        assert_eq!(TokenBucket::throttle_time_ms(5.0, 10.0), 0);
        assert_eq!(TokenBucket::throttle_time_ms(-0.5, 1.0), 500);
    }
}
