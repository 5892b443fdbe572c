//! `Sensor`: the state one group of connections shares (one per distinct metric tags): its
//! measure, its current quota bound, when it last recorded, and its throttle total.
//!
//! The quota check is Kafka's `Sensor.checkQuotas`: a rate violates when it is above the bound;
//! a token bucket when it is negative. The throttle time is Kafka's `QuotaUtils.throttleTime`
//! for rates, `((rate - bound) / bound) × window` with the window the rate was measured over,
//! and `-tokens / bound` seconds for buckets; then capped by the manager's cap, if any.

use parking_lot::Mutex;

use crate::rate::Rate;
use crate::token_bucket::TokenBucket;

/// The measure a sensor keeps.
#[derive(Debug)]
pub(crate) enum Stat {
    /// Byte rates and request time.
    Rate(Rate),
    /// Controller mutations.
    Bucket(TokenBucket),
}

/// One shared sensor. The tags are fixed; the state changes under its lock.
#[derive(Debug)]
pub(crate) struct Sensor {
    pub(crate) user_tag: String,
    pub(crate) client_id_tag: String,
    pub(crate) state: Mutex<SensorState>,
}

impl Sensor {
    pub(crate) fn new(user_tag: &str, client_id_tag: &str, stat: Stat, now_ms: u64) -> Sensor {
        Sensor {
            user_tag: user_tag.to_owned(),
            client_id_tag: client_id_tag.to_owned(),
            state: Mutex::new(SensorState {
                stat,
                quota: None,
                last_record_ms: now_ms,
                throttle_total_ms: 0,
            }),
        }
    }
}

/// The mutable part of a sensor.
#[derive(Debug)]
pub(crate) struct SensorState {
    stat: Stat,
    /// The bound; `None` when no quota applies (still recorded, as Kafka, so a quota added later
    /// sees the history).
    pub(crate) quota: Option<f64>,
    pub(crate) last_record_ms: u64,
    pub(crate) throttle_total_ms: u64,
}

impl SensorState {
    /// Records, then checks (Kafka's `record(value, now, checkQuotas = true)`): the throttle time,
    /// 0 when within quota.
    pub(crate) fn record(&mut self, value: f64, now_ms: u64, cap_ms: Option<u64>) -> u64 {
        self.record_no_check(value, now_ms);
        let throttle = self.violation(now_ms, cap_ms).unwrap_or(0);
        self.throttle_total_ms = self.throttle_total_ms.saturating_add(throttle);
        throttle
    }

    /// Records without checking.
    pub(crate) fn record_no_check(&mut self, value: f64, now_ms: u64) {
        self.last_record_ms = self.last_record_ms.max(now_ms);
        match (&mut self.stat, self.quota) {
            (Stat::Rate(rate), _) => rate.record(value, now_ms),
            (Stat::Bucket(bucket), Some(quota)) => bucket.record(value, quota, now_ms),
            // Kafka's bucket ignores records while it has no quota.
            (Stat::Bucket(_), None) => {}
        }
    }

    /// Checks, then records only if within quota (KIP-599 strict): `Err(throttle time)` when the
    /// quota is already violated.
    pub(crate) fn check_then_record(
        &mut self,
        value: f64,
        now_ms: u64,
        cap_ms: Option<u64>,
    ) -> Result<(), u64> {
        self.last_record_ms = self.last_record_ms.max(now_ms);
        if let Some(throttle) = self.violation(now_ms, cap_ms) {
            self.throttle_total_ms = self.throttle_total_ms.saturating_add(throttle);
            return Err(throttle);
        }
        self.record_no_check(value, now_ms);
        Ok(())
    }

    /// `Some(throttle time)` when the quota is violated at `now_ms`.
    fn violation(&mut self, now_ms: u64, cap_ms: Option<u64>) -> Option<u64> {
        let quota = self.quota?;
        let throttle = match &mut self.stat {
            Stat::Rate(rate) => {
                let observed = rate.measure(now_ms);
                if observed <= quota {
                    return None;
                }
                let window_ms = rate.window_size_ms(now_ms) as f64;
                // Saturating float-to-int conversion: no panic on an absurd ratio.
                ((observed - quota) / quota * window_ms).round() as u64
            }
            Stat::Bucket(bucket) => {
                let tokens = bucket.measure(quota, now_ms);
                if tokens >= 0.0 {
                    return None;
                }
                TokenBucket::throttle_time_ms(tokens, quota)
            }
        };
        Some(cap_ms.map_or(throttle, |cap| throttle.min(cap)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate_sensor(quota: Option<f64>) -> Sensor {
        let sensor = Sensor::new("u", "c", Stat::Rate(Rate::new(11, 1000)), 0);
        sensor.state.lock().quota = quota;
        sensor
    }

    #[test]
    fn throttle_is_kafkas_formula() {
        let sensor = rate_sensor(Some(100.0));
        let mut state = sensor.state.lock();
        // 2000 units at t=0: rate 2000 / 10 s = 200/s, twice the bound: throttle one window.
        assert_eq!(state.record(2000.0, 0, None), 10_000);
        assert_eq!(state.throttle_total_ms, 10_000);
    }

    #[test]
    fn cap_applies() {
        let sensor = rate_sensor(Some(100.0));
        assert_eq!(sensor.state.lock().record(1e9, 0, Some(11_000)), 11_000);
    }

    #[test]
    fn no_quota_never_throttles_but_records() {
        let sensor = rate_sensor(None);
        let mut state = sensor.state.lock();
        assert_eq!(state.record(1e12, 0, None), 0);
        state.quota = Some(1.0);
        assert!(
            state.record(0.0, 1, None) > 0,
            "the history counts once a quota applies"
        );
    }
}
