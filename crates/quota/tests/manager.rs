//! `QuotaManager` through the public API: which sensor a connection shares, what it is throttled
//! for, and how quota changes, strict mode, totals and expiry behave.

use std::time::Duration;

use strom_quota::{
    ClientQuotaManagerConfig, EntityName, ErrorKind, QuotaEntity, QuotaError, QuotaManager,
    QuotaOp, QuotaStore, QuotaType, INACTIVE_SENSOR_EXPIRATION_MS,
};

fn named(name: &str) -> EntityName {
    EntityName::named(name)
}

fn store_with(entries: &[(QuotaEntity, &str, f64)]) -> QuotaStore {
    let mut store = QuotaStore::new();
    for (entity, key, value) in entries {
        store
            .alter(entity, &[QuotaOp::set(*key, *value)])
            .unwrap_or_else(|e| panic!("{entity}: {e}"));
    }
    store
}

fn manager(quota_type: QuotaType, store: &QuotaStore) -> QuotaManager {
    let m = QuotaManager::new(quota_type, ClientQuotaManagerConfig::default());
    m.update_quotas(store);
    m
}

#[test]
fn no_quota_never_throttles() {
    let empty = manager(QuotaType::Produce, &QuotaStore::new());
    // Only a fetch quota: the produce manager has nothing to enforce.
    let other = manager(
        QuotaType::Produce,
        &store_with(&[(
            QuotaEntity::client_id(EntityName::Default),
            "consumer_byte_rate",
            1.0,
        )]),
    );
    for m in [&empty, &other] {
        assert!(!m.quotas_enabled());
        for t in 0..100 {
            assert_eq!(m.record("alice", "app", 1e12, t * 10), 0);
        }
        assert_eq!(m.sensor_count(), 0, "nothing is recorded when disabled");
        assert_eq!(m.quota("alice", "app"), None);
        assert_eq!(m.max_value_in_quota_window("alice", "app"), f64::MAX);
        assert!(m.check_strict("alice", "app", 1e12, 0).is_ok());
    }
}

#[test]
fn a_connection_no_quota_matches_is_not_throttled() {
    let m = manager(
        QuotaType::Produce,
        &store_with(&[(QuotaEntity::user(named("bob")), "producer_byte_rate", 1.0)]),
    );
    assert_eq!(m.record("alice", "app", 1e12, 0), 0);
    assert!(m.record("bob", "app", 1e3, 0) > 0);
}

#[test]
fn user_quota_is_shared_by_all_client_ids_of_the_user() {
    // /users/alice: 1000 B/s over an (at least) 10 s window allows 10 000 bytes at once.
    let m = manager(
        QuotaType::Produce,
        &store_with(&[(
            QuotaEntity::user(named("alice")),
            "producer_byte_rate",
            1000.0,
        )]),
    );
    assert_eq!(m.record("alice", "app-1", 10_000.0, 0), 0);
    let throttle = m.record("alice", "app-2", 1_000.0, 0);
    assert_eq!(
        throttle, 1_000,
        "app-2 pays for app-1's bytes: (1100 - 1000) / 1000 × 10 s"
    );
    assert_eq!(m.sensor_count(), 1);
    assert_eq!(
        m.throttle_totals(),
        vec![("alice".to_owned(), String::new(), 1.0)]
    );
}

#[test]
fn default_client_quota_under_a_user_is_per_client_id() {
    // /users/alice/clients/<default>: the same bound, but each client id has its own rate.
    let m = manager(
        QuotaType::Produce,
        &store_with(&[(
            QuotaEntity::user_client_id(named("alice"), EntityName::Default),
            "producer_byte_rate",
            1000.0,
        )]),
    );
    assert_eq!(m.record("alice", "app-1", 10_000.0, 0), 0);
    assert_eq!(m.record("alice", "app-2", 1_000.0, 0), 0);
    assert_eq!(m.sensor_count(), 2);
    assert!(m.record("alice", "app-1", 1_000.0, 0) > 0);
    assert_eq!(
        m.throttle_totals(),
        vec![("alice".to_owned(), "app-1".to_owned(), 1.0)]
    );
}

#[test]
fn client_quota_is_shared_across_users() {
    let m = manager(
        QuotaType::Fetch,
        &store_with(&[(
            QuotaEntity::client_id(named("etl")),
            "consumer_byte_rate",
            1000.0,
        )]),
    );
    assert_eq!(m.record("alice", "etl", 10_000.0, 0), 0);
    assert!(m.record("bob", "etl", 1_000.0, 0) > 0);
    assert_eq!(m.throttle_totals()[0].0, "");
    assert_eq!(m.throttle_totals()[0].1, "etl");
}

#[test]
fn precedence_through_the_manager() {
    let mut store = store_with(&[
        (
            QuotaEntity::client_id(EntityName::Default),
            "producer_byte_rate",
            8.0,
        ),
        (
            QuotaEntity::user(EntityName::Default),
            "producer_byte_rate",
            6.0,
        ),
        (QuotaEntity::user(named("alice")), "producer_byte_rate", 3.0),
    ]);
    let m = manager(QuotaType::Produce, &store);
    assert_eq!(m.quota("alice", "app"), Some(3.0));
    assert_eq!(m.quota("bob", "app"), Some(6.0));
    let top = QuotaEntity::user_client_id(named("alice"), named("app"));
    store
        .alter(&top, &[QuotaOp::set("producer_byte_rate", 1.0)])
        .unwrap_or_else(|e| panic!("{e}"));
    m.update_quotas(&store);
    assert_eq!(m.quota("alice", "app"), Some(1.0));
    assert_eq!(m.quota("alice", "other"), Some(3.0));
    assert_eq!(m.max_value_in_quota_window("alice", "other"), 30.0);
}

#[test]
fn a_quota_change_applies_to_an_existing_sensor_with_its_history() {
    let alice = QuotaEntity::user(named("alice"));
    let mut store = store_with(&[(alice.clone(), "producer_byte_rate", 1000.0)]);
    let m = manager(QuotaType::Produce, &store);
    assert_eq!(m.record("alice", "app", 5_000.0, 0), 0);
    store
        .alter(&alice, &[QuotaOp::set("producer_byte_rate", 100.0)])
        .unwrap_or_else(|e| panic!("{e}"));
    m.update_quotas(&store);
    // 5000 bytes over 10 s = 500 B/s, five times the new bound: (500 - 100) / 100 × 10 s = 40 s,
    // capped at 11 windows.
    assert_eq!(m.record("alice", "app", 0.0, 0), 11_000);
    store
        .alter(&alice, &[QuotaOp::remove("producer_byte_rate")])
        .unwrap_or_else(|e| panic!("{e}"));
    m.update_quotas(&store);
    assert_eq!(m.record("alice", "app", 1e9, 0), 0);
}

#[test]
fn a_new_entity_re_routes_connections() {
    let mut store = store_with(&[(
        QuotaEntity::user(named("alice")),
        "producer_byte_rate",
        1000.0,
    )]);
    let m = manager(QuotaType::Produce, &store);
    assert_eq!(m.record("alice", "app-1", 10_000.0, 0), 0);
    store
        .alter(
            &QuotaEntity::user_client_id(named("alice"), named("app-2")),
            &[QuotaOp::set("producer_byte_rate", 1000.0)],
        )
        .unwrap_or_else(|e| panic!("{e}"));
    m.update_quotas(&store);
    // app-2 now has its own sensor: app-1's bytes no longer count against it.
    assert_eq!(m.record("alice", "app-2", 1_000.0, 0), 0);
    assert!(m.record("alice", "app-1", 1_000.0, 0) > 0);
}

#[test]
fn unrecord_takes_bytes_back() {
    let m = manager(
        QuotaType::Fetch,
        &store_with(&[(
            QuotaEntity::client_id(named("c")),
            "consumer_byte_rate",
            1000.0,
        )]),
    );
    assert_eq!(m.record("u", "c", 9_000.0, 0), 0);
    let throttle = m.record("u", "c", 5_000.0, 0);
    assert!(throttle > 0);
    m.unrecord("u", "c", 5_000.0, 0);
    assert_eq!(
        m.record("u", "c", 1_000.0, 0),
        0,
        "back to 10 000 bytes in 10 s"
    );
}

#[test]
fn request_percentage_throttles_within_one_window() {
    // Half of one handler thread.
    let m = manager(
        QuotaType::Request,
        &store_with(&[(
            QuotaEntity::user(named("alice")),
            "request_percentage",
            50.0,
        )]),
    );
    assert_eq!(m.max_throttle_ms(), Some(1_000));
    // A client whose requests each take 10 ms of handler time, sent back to back: 100 %.
    // It waits out each throttle before its next request (KIP-219).
    let mut t = 0;
    let mut busy_ms = 0;
    let mut throttled = 0;
    while t < 60_000 {
        let throttle = m.record_request_time("alice", "app", Duration::from_millis(10), t);
        assert!(throttle <= 1_000, "capped at one window: {throttle}");
        throttled += u64::from(throttle > 0);
        busy_ms += 10;
        t += 10 + throttle;
    }
    let utilisation = busy_ms as f64 / t as f64 * 100.0;
    assert!(throttled > 0);
    assert!(
        (utilisation - 50.0).abs() <= 10.0,
        "achieved {utilisation:.1} % of a thread against a 50 % quota"
    );
}

#[test]
fn controller_mutations_strict_refuses_only_once_exhausted() {
    // 10 partitions/s, burst 10 × 11 windows × 1 s = 110.
    let m = manager(
        QuotaType::ControllerMutation,
        &store_with(&[(
            QuotaEntity::user(EntityName::Default),
            "controller_mutation_rate",
            10.0,
        )]),
    );
    assert_eq!(m.check_strict("alice", "admin", 100.0, 0), Ok(()));
    // 10 tokens left: a request for 20 is still admitted (the bucket is not negative yet).
    assert_eq!(m.check_strict("alice", "admin", 20.0, 0), Ok(()));
    let refused = m.check_strict("alice", "admin", 1.0, 0);
    assert_eq!(
        refused,
        Err(QuotaError::ThrottlingQuotaExceeded {
            throttle_time_ms: 1_000
        })
    );
    assert_eq!(
        refused.err().map(|e| e.kind()),
        Some(ErrorKind::ThrottlingQuotaExceeded)
    );
    // Refused requests take no tokens: after 500 ms the deficit is 5.
    assert_eq!(
        m.check_strict("alice", "admin", 1.0, 500),
        Err(QuotaError::ThrottlingQuotaExceeded {
            throttle_time_ms: 500
        })
    );
    assert_eq!(m.check_strict("alice", "admin", 1.0, 1_000), Ok(()));
    assert_eq!(m.throttle_totals()[0].2, 1.5);
}

#[test]
fn controller_mutations_permissive_admits_then_throttles() {
    let m = manager(
        QuotaType::ControllerMutation,
        &store_with(&[(
            QuotaEntity::client_id(EntityName::Default),
            "controller_mutation_rate",
            10.0,
        )]),
    );
    assert_eq!(m.max_throttle_ms(), None);
    assert_eq!(m.record("alice", "admin", 100.0, 0), 0);
    assert_eq!(m.record("alice", "admin", 30.0, 0), 2_000);
    assert_eq!(m.record("alice", "admin", 0.0, 1_500), 500);
    assert_eq!(m.record("alice", "admin", 0.0, 2_000), 0);
}

#[test]
fn idle_sensors_expire_after_an_hour() {
    let m = manager(
        QuotaType::Produce,
        &store_with(&[(
            QuotaEntity::client_id(EntityName::Default),
            "producer_byte_rate",
            1.0,
        )]),
    );
    assert!(m.record("alice", "old", 100.0, 0) > 0);
    assert_eq!(
        m.record("alice", "young", 0.0, INACTIVE_SENSOR_EXPIRATION_MS - 1),
        0
    );
    assert_eq!(m.sensor_count(), 2);
    assert_eq!(m.throttle_totals().len(), 1);
    // Sweeps run at most every 30 s; this one comes an hour after "old" last recorded.
    assert_eq!(
        m.record(
            "alice",
            "young",
            0.0,
            INACTIVE_SENSOR_EXPIRATION_MS + 30_000
        ),
        0
    );
    assert_eq!(m.sensor_count(), 1);
    assert!(
        m.throttle_totals().is_empty(),
        "the expired sensor's total went with it"
    );
    // "old" comes back with a fresh sensor (its old bytes are gone).
    assert_eq!(
        m.record("alice", "old", 0.0, INACTIVE_SENSOR_EXPIRATION_MS + 31_000),
        0
    );
    assert_eq!(m.sensor_count(), 2);
}

#[test]
fn concurrent_recorders_share_one_rate() {
    let m = manager(
        QuotaType::Produce,
        &store_with(&[(
            QuotaEntity::user(named("alice")),
            "producer_byte_rate",
            1000.0,
        )]),
    );
    std::thread::scope(|s| {
        for i in 0..8 {
            let m = &m;
            s.spawn(move || {
                let client = format!("app-{i}");
                for _ in 0..100 {
                    m.record("alice", &client, 10.0, 0);
                }
            });
        }
    });
    // 8 × 100 × 10 = 8000 bytes recorded into one sensor: 800 B/s, within the quota; 3000 more
    // make it 1100 B/s.
    assert_eq!(m.sensor_count(), 1);
    assert_eq!(m.record("alice", "app-9", 2_000.0, 0), 0);
    assert_eq!(m.record("alice", "app-9", 1_000.0, 0), 1_000);
}
