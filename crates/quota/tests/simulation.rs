//! A producer in simulated time that wants twice its byte-rate quota and, as a KIP-219 client,
//! waits out every throttle time before its next send: the throttle times must bring what it
//! achieves to the quota.

use strom_quota::{
    ClientQuotaManagerConfig, EntityName, QuotaEntity, QuotaManager, QuotaOp, QuotaStore, QuotaType,
};

const MB: f64 = 1_000_000.0;

/// Runs the producer for `duration_ms`: 100 kB every 50 ms (2 MB/s) unless throttled. Returns
/// (achieved bytes per second, how many sends were throttled).
fn run(quota_bytes_per_s: f64, duration_ms: u64) -> (f64, u32) {
    let mut store = QuotaStore::new();
    store
        .alter(
            &QuotaEntity::client_id(EntityName::Default),
            &[QuotaOp::set("producer_byte_rate", quota_bytes_per_s)],
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let m = QuotaManager::new(QuotaType::Produce, ClientQuotaManagerConfig::default());
    m.update_quotas(&store);

    let batch = 100_000.0;
    let interval_ms = 50;
    let mut now = 0;
    let mut sent = 0.0;
    let mut throttled = 0;
    while now < duration_ms {
        let throttle = m.record("alice", "producer", batch, now);
        sent += batch;
        throttled += u32::from(throttle > 0);
        now += interval_ms.max(throttle);
    }
    (sent / (duration_ms as f64 / 1000.0), throttled)
}

#[test]
fn ten_seconds_at_twice_the_quota_converge_to_the_quota() {
    let (achieved, throttled) = run(MB, 10_000);
    assert!(throttled > 0, "the producer was never throttled");
    assert!(
        (achieved - MB).abs() <= 0.2 * MB,
        "achieved {:.3} MB/s against a 1 MB/s quota",
        achieved / MB
    );
}

#[test]
fn a_minute_at_twice_the_quota_stays_at_the_quota() {
    let (achieved, _) = run(MB, 60_000);
    assert!(
        (achieved - MB).abs() <= 0.05 * MB,
        "achieved {:.3} MB/s against a 1 MB/s quota",
        achieved / MB
    );
}

#[test]
fn a_producer_within_its_quota_is_never_throttled() {
    let (achieved, throttled) = run(3.0 * MB, 30_000);
    assert_eq!(throttled, 0);
    assert!((achieved - 2.0 * MB).abs() < 0.01 * MB);
}
