//! [`QuotaManager`]: one quota type's sensors (Kafka's `ClientQuotaManager`,
//! `ClientRequestQuotaManager`, `ControllerMutationQuotaManager`): records what each connection
//! does and answers with the throttle time its quota asks for (KIP-219: the broker returns it in
//! the response and mutes the connection that long).
//!
//! - Produce and Fetch record bytes into a [`Rate`](crate::Rate); the bound is bytes per second.
//! - Request records handler-thread time as percent-seconds (`nanos × 100 / 1e9`), so the rate
//!   is a percentage of one thread; throttle times are capped at one window, as Kafka.
//! - ControllerMutation records partitions into a [`TokenBucket`](crate::TokenBucket):
//!   [`QuotaManager::record`] is KIP-599's permissive mode (admit, then throttle; CreateTopics
//!   before v6 and the like), [`QuotaManager::check_strict`] its strict mode (refuse while the
//!   bucket is negative; a mutation is admitted whenever it is not, even one that takes the
//!   bucket below zero).
//!
//! Byte-rate throttle times are capped at `quota.window.num` windows. Kafka does not cap them;
//! the cap only shortens the wait after one huge request, after which the still-high rate
//! throttles the next request again.
//!
//! Concurrency: every method takes `&self`. A `RwLock` guards the quota table and two maps: the
//! route of each (user, client id) to its sensor, keyed user-then-client so a lookup borrows the
//! connection's strings, and the sensors by tags. The hot path takes the read lock and the one
//! sensor's mutex; only a connection's first record (or its first after a quota change) takes
//! the write lock and allocates. When no quota of the type exists at all, `record` returns 0
//! after one atomic load, as Kafka's `quotasEnabled` check. Sensors idle for an hour are dropped
//! (Kafka's inactive sensor expiration) by a sweep that one recorder runs at most every 30 s.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;

use crate::config::ClientQuotaManagerConfig;
use crate::error::QuotaError;
use crate::key::QuotaKey;
use crate::rate::Rate;
use crate::resolve::QuotaTable;
use crate::sensor::{Sensor, Stat};
use crate::store::QuotaStore;
use crate::token_bucket::TokenBucket;

/// Kafka's `InactiveSensorExpirationTimeSeconds`: one hour.
pub const INACTIVE_SENSOR_EXPIRATION_MS: u64 = 3_600_000;

/// How often a recorder sweeps for idle sensors (Kafka's expiry task runs every 30 s).
const SWEEP_INTERVAL_MS: u64 = 30_000;

/// One quota type, with the key whose values bound it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuotaType {
    /// Produce bytes (`producer_byte_rate`).
    Produce,
    /// Fetch bytes (`consumer_byte_rate`).
    Fetch,
    /// Request handler time (`request_percentage`, KIP-124).
    Request,
    /// Partition mutations (`controller_mutation_rate`, KIP-599).
    ControllerMutation,
}

impl QuotaType {
    /// The config key that bounds this type.
    pub fn key(self) -> QuotaKey {
        match self {
            QuotaType::Produce => QuotaKey::ProducerByteRate,
            QuotaType::Fetch => QuotaKey::ConsumerByteRate,
            QuotaType::Request => QuotaKey::RequestPercentage,
            QuotaType::ControllerMutation => QuotaKey::ControllerMutationRate,
        }
    }

    /// Kafka's name of the type (its metric group).
    pub fn name(self) -> &'static str {
        match self {
            QuotaType::Produce => "Produce",
            QuotaType::Fetch => "Fetch",
            QuotaType::Request => "Request",
            QuotaType::ControllerMutation => "ControllerMutation",
        }
    }
}

/// Request time as the request quota records it: percent of one thread, over one second.
pub fn nanos_to_percentage(nanos: u64) -> f64 {
    nanos as f64 * 100.0 / 1e9
}

/// What the lock guards.
#[derive(Debug, Default)]
struct Inner {
    table: QuotaTable,
    /// user → client id → sensor: the connection's route, found without allocating.
    routes: HashMap<String, HashMap<String, Arc<Sensor>>>,
    /// (user tag, client-id tag) → sensor.
    sensors: HashMap<(String, String), Arc<Sensor>>,
}

/// The sensors and quotas of one quota type. See the module header for the concurrency rules.
#[derive(Debug)]
pub struct QuotaManager {
    quota_type: QuotaType,
    config: ClientQuotaManagerConfig,
    max_throttle_ms: Option<u64>,
    /// Whether any quota of this type is configured; read without the lock on every record.
    enabled: AtomicBool,
    next_sweep_ms: AtomicU64,
    inner: RwLock<Inner>,
}

impl QuotaManager {
    /// A manager with no quota configured (call [`QuotaManager::update_quotas`]).
    pub fn new(quota_type: QuotaType, config: ClientQuotaManagerConfig) -> QuotaManager {
        let window_ms = config.quota_window_size_ms();
        let max_throttle_ms = match quota_type {
            QuotaType::Produce | QuotaType::Fetch => {
                Some(window_ms.saturating_mul(u64::from(config.num_quota_samples())))
            }
            QuotaType::Request => Some(window_ms),
            QuotaType::ControllerMutation => None,
        };
        QuotaManager {
            quota_type,
            config,
            max_throttle_ms,
            enabled: AtomicBool::new(false),
            next_sweep_ms: AtomicU64::new(0),
            inner: RwLock::new(Inner::default()),
        }
    }

    /// The type this manager enforces.
    pub fn quota_type(&self) -> QuotaType {
        self.quota_type
    }

    /// The cap on returned throttle times, if any.
    pub fn max_throttle_ms(&self) -> Option<u64> {
        self.max_throttle_ms
    }

    /// Takes the quotas of this type from `store`. They apply from the next record on, to
    /// existing sensors too (their history is kept); connections are re-routed, since a new or
    /// removed entity can change which sensor they share.
    pub fn update_quotas(&self, store: &QuotaStore) {
        let table = QuotaTable::from_store(store, self.quota_type.key());
        let mut inner = self.inner.write();
        self.enabled.store(!table.is_empty(), Ordering::Relaxed);
        inner.table = table;
        inner.routes.clear();
    }

    /// Whether any quota of this type is configured.
    pub fn quotas_enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Records `value` for the connection and returns the throttle time in ms (0 when within
    /// quota or when no quota applies). Units: bytes (Produce, Fetch), percent-seconds (Request;
    /// see [`QuotaManager::record_request_time`]), partitions (ControllerMutation, permissive).
    pub fn record(&self, user: &str, client_id: &str, value: f64, now_ms: u64) -> u64 {
        if !self.quotas_enabled() {
            return 0;
        }
        self.maybe_sweep(now_ms);
        let cap = self.max_throttle_ms;
        self.with_sensor(user, client_id, now_ms, |sensor| {
            sensor.state.lock().record(value, now_ms, cap)
        })
    }

    /// Records a request's handler-thread time (Request quota) and returns the throttle time.
    pub fn record_request_time(
        &self,
        user: &str,
        client_id: &str,
        thread_time: Duration,
        now_ms: u64,
    ) -> u64 {
        let nanos = u64::try_from(thread_time.as_nanos()).unwrap_or(u64::MAX);
        self.record(user, client_id, nanos_to_percentage(nanos), now_ms)
    }

    /// Records without checking the quota (Kafka's `recordNoThrottle`: network-thread time that
    /// counts against the next request).
    pub fn record_no_throttle(&self, user: &str, client_id: &str, value: f64, now_ms: u64) {
        if !self.quotas_enabled() {
            return;
        }
        self.with_sensor(user, client_id, now_ms, |sensor| {
            sensor.state.lock().record_no_check(value, now_ms);
        });
    }

    /// Takes back a recorded value (Kafka's `unrecordQuotaSensor`: a throttled fetch returns no
    /// data, so its bytes must not count).
    pub fn unrecord(&self, user: &str, client_id: &str, value: f64, now_ms: u64) {
        self.record_no_throttle(user, client_id, -value, now_ms);
    }

    /// KIP-599 strict mode: refuses with `ThrottlingQuotaExceeded` (and the time until the quota
    /// recovers) when the quota is already violated; otherwise records `value` and admits, even
    /// if `value` takes it over. Check and record are atomic per sensor.
    pub fn check_strict(
        &self,
        user: &str,
        client_id: &str,
        value: f64,
        now_ms: u64,
    ) -> Result<(), QuotaError> {
        if !self.quotas_enabled() {
            return Ok(());
        }
        self.maybe_sweep(now_ms);
        let cap = self.max_throttle_ms;
        self.with_sensor(user, client_id, now_ms, |sensor| {
            sensor.state.lock().check_then_record(value, now_ms, cap)
        })
        .map_err(|throttle_time_ms| QuotaError::ThrottlingQuotaExceeded { throttle_time_ms })
    }

    /// The bound that applies to the connection, if any.
    pub fn quota(&self, user: &str, client_id: &str) -> Option<f64> {
        if !self.quotas_enabled() {
            return None;
        }
        self.inner.read().table.resolve(user, client_id).quota
    }

    /// The largest value one request can record without being throttled for certain, even
    /// after an idle spell (Kafka's `maxValueInQuotaWindow`: bound × (samples − 1) × window);
    /// the broker caps a fetch response's size with it. `f64::MAX` when no quota applies.
    pub fn max_value_in_quota_window(&self, user: &str, client_id: &str) -> f64 {
        match self.quota(user, client_id) {
            Some(bound) => {
                let windows = f64::from(self.config.num_quota_samples() - 1);
                bound * windows * (self.config.quota_window_size_ms() as f64 / 1000.0)
            }
            None => f64::MAX,
        }
    }

    /// Total throttle time per sensor, as (user tag, client-id tag, seconds), for sensors that
    /// were ever throttled and have not expired (an expired sensor's total goes with it).
    pub fn throttle_totals(&self) -> Vec<(String, String, f64)> {
        let inner = self.inner.read();
        let mut totals: Vec<_> = inner
            .sensors
            .values()
            .filter_map(|sensor| {
                let total_ms = sensor.state.lock().throttle_total_ms;
                (total_ms > 0).then(|| {
                    (
                        sensor.user_tag.clone(),
                        sensor.client_id_tag.clone(),
                        total_ms as f64 / 1000.0,
                    )
                })
            })
            .collect();
        totals.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        totals
    }

    /// How many sensors exist (each distinct tag pair recorded in the last hour).
    pub fn sensor_count(&self) -> usize {
        self.inner.read().sensors.len()
    }

    /// Runs `f` on the connection's sensor, creating and routing it on first use. A lock on
    /// `inner` is held while `f` runs, so a sweep never removes a sensor mid-record.
    fn with_sensor<R>(
        &self,
        user: &str,
        client_id: &str,
        now_ms: u64,
        f: impl FnOnce(&Sensor) -> R,
    ) -> R {
        {
            let inner = self.inner.read();
            if let Some(sensor) = inner.routes.get(user).and_then(|c| c.get(client_id)) {
                return f(sensor);
            }
        }
        let mut inner = self.inner.write();
        let sensor = self.route(&mut inner, user, client_id, now_ms);
        f(&sensor)
    }

    /// Resolves the connection, finds or creates its sensor, sets the sensor's bound, and
    /// remembers the route (unless another caller did all that first).
    fn route(&self, inner: &mut Inner, user: &str, client_id: &str, now_ms: u64) -> Arc<Sensor> {
        if let Some(sensor) = inner.routes.get(user).and_then(|c| c.get(client_id)) {
            return Arc::clone(sensor);
        }
        let resolution = inner.table.resolve(user, client_id);
        let tags = (
            resolution.tags.user.to_owned(),
            resolution.tags.client_id.to_owned(),
        );
        let sensor = inner.sensors.entry(tags).or_insert_with(|| {
            let (user_tag, client_id_tag) = (resolution.tags.user, resolution.tags.client_id);
            Arc::new(Sensor::new(
                user_tag,
                client_id_tag,
                self.new_stat(),
                now_ms,
            ))
        });
        sensor.state.lock().quota = resolution.quota;
        let sensor = Arc::clone(sensor);
        inner
            .routes
            .entry(user.to_owned())
            .or_default()
            .insert(client_id.to_owned(), Arc::clone(&sensor));
        sensor
    }

    fn new_stat(&self) -> Stat {
        let samples = self.config.num_quota_samples();
        let window_ms = self.config.quota_window_size_ms();
        match self.quota_type {
            QuotaType::ControllerMutation => Stat::Bucket(TokenBucket::new(samples, window_ms)),
            _ => Stat::Rate(Rate::new(samples, window_ms)),
        }
    }

    /// At most every `SWEEP_INTERVAL_MS`, one caller drops sensors idle for an hour and their
    /// routes.
    fn maybe_sweep(&self, now_ms: u64) {
        let due = self.next_sweep_ms.load(Ordering::Relaxed);
        if now_ms < due {
            return;
        }
        let next = now_ms.saturating_add(SWEEP_INTERVAL_MS);
        if self
            .next_sweep_ms
            .compare_exchange(due, next, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        let mut inner = self.inner.write();
        let idle = |sensor: &Sensor| {
            now_ms.saturating_sub(sensor.state.lock().last_record_ms)
                >= INACTIVE_SENSOR_EXPIRATION_MS
        };
        inner.sensors.retain(|_, sensor| !idle(sensor));
        inner.routes.retain(|_, clients| {
            clients.retain(|_, sensor| !idle(sensor));
            !clients.is_empty()
        });
    }
}
