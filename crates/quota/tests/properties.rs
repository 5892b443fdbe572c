//! Properties over arbitrary traffic: rates are never negative and throttle times stay within
//! their bounds.

use proptest::prelude::*;
use strom_quota::{
    ClientQuotaManagerConfig, EntityName, QuotaEntity, QuotaManager, QuotaOp, QuotaStore,
    QuotaType, Rate, TokenBucket,
};

/// Records as (milliseconds since the previous record, value).
fn traffic() -> impl Strategy<Value = Vec<(u64, f64)>> {
    prop::collection::vec((0u64..3_000, 0.0f64..1e7), 1..200)
}

fn manager(quota_type: QuotaType, samples: u32, window_s: u32, quota: f64) -> QuotaManager {
    let mut store = QuotaStore::new();
    store
        .alter(
            &QuotaEntity::user(EntityName::Default),
            &[QuotaOp::set(quota_type.key().name(), quota)],
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let config = ClientQuotaManagerConfig::new(samples, window_s).unwrap_or_else(|e| panic!("{e}"));
    let m = QuotaManager::new(quota_type, config);
    m.update_quotas(&store);
    m
}

proptest! {
    #[test]
    fn rate_is_never_negative(samples in 1u32..20, window_ms in 1u64..5_000, records in traffic()) {
        let mut rate = Rate::new(samples, window_ms);
        let mut now = 0;
        for (dt, value) in records {
            now += dt;
            rate.record(value, now);
            let measured = rate.measure(now);
            prop_assert!(measured.is_finite() && measured >= 0.0, "{measured}");
            prop_assert!(rate.window_size_ms(now) >= u64::from(samples - 1) * window_ms);
        }
    }

    #[test]
    fn byte_rate_throttle_is_bounded(
        samples in 1u32..20,
        window_s in 1u32..5,
        quota in 1u32..10_000_000,
        records in traffic(),
    ) {
        let m = manager(QuotaType::Produce, samples, window_s, f64::from(quota));
        let cap = u64::from(samples) * u64::from(window_s) * 1000;
        prop_assert_eq!(m.max_throttle_ms(), Some(cap));
        let mut now = 0;
        for (dt, value) in records {
            now += dt;
            prop_assert!(m.record("u", "c", value, now) <= cap);
        }
    }

    #[test]
    fn request_throttle_is_at_most_one_window(
        window_s in 1u32..5,
        quota in 0.5f64..400.0,
        records in traffic(),
    ) {
        let m = manager(QuotaType::Request, 11, window_s, quota);
        let mut now = 0;
        for (dt, value) in records {
            now += dt;
            prop_assert!(m.record("u", "c", value / 1e4, now) <= u64::from(window_s) * 1000);
        }
    }

    #[test]
    fn mutation_throttle_is_bounded_by_the_deficit(
        quota in 0.5f64..100.0,
        records in prop::collection::vec((0u64..3_000, 0.0f64..1_000.0), 1..100),
    ) {
        let m = manager(QuotaType::ControllerMutation, 11, 1, quota);
        let mut now = 0;
        let mut taken = 0.0;
        for (dt, permits) in records {
            now += dt;
            taken += permits;
            let throttle = m.record("u", "c", permits, now) as f64;
            // The bucket can never be more negative than everything taken.
            prop_assert!(throttle <= (taken / quota * 1000.0).round() + 1.0);
        }
    }

    #[test]
    fn bucket_never_exceeds_its_burst(quota in 0.5f64..100.0, records in traffic()) {
        let mut bucket = TokenBucket::new(11, 1000);
        let mut now = 0;
        for (dt, value) in records {
            now += dt;
            bucket.record(value / 1e4, quota, now);
            prop_assert!(bucket.measure(quota, now) <= bucket.burst(quota) + 1e-9);
        }
    }
}
