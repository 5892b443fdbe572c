//! Strom's metric cells: what the hot paths update (request counts and durations, per-topic
//! produce and fetch counters, ISR changes, connections, log flush rounds) and how they are
//! written in the Prometheus text formats. The rule (issue 18): an update is one atomic
//! operation on a cell the caller already holds, never a map lookup, a lock or an allocation
//! per request. Gauges of broker state (high watermarks, lag, under-replicated partitions) are
//! not kept here: the broker computes them at scrape time (`strom_broker::BrokerCollector`).
//!
//! crates/metrics depends on no other strom crate, so every crate can record into it.

mod histogram;
mod process;
mod requests;
mod topic;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
pub use prometheus_client;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::encoding::EncodeMetric;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

pub use histogram::{AtomicHistogram, COUNT_BUCKETS, LATENCY_BUCKETS};
pub use process::ProcessStats;
pub use requests::{RequestMetrics, RequestOutcome};
pub use topic::{TopicCounters, TopicMetrics};

/// The log flusher's rounds (`strom_log`'s group commit): how long each took and how many
/// batches it made durable.
#[derive(Debug)]
pub struct FlushMetrics {
    /// `strom_log_flush_duration_seconds`.
    pub duration: AtomicHistogram,
    /// `strom_log_flush_batches_per_round`.
    pub batches_per_round: AtomicHistogram,
}

impl Default for FlushMetrics {
    fn default() -> Self {
        FlushMetrics {
            duration: AtomicHistogram::seconds(LATENCY_BUCKETS),
            batches_per_round: AtomicHistogram::counts(COUNT_BUCKETS),
        }
    }
}

/// Every hot-path metric of one broker process, created at start and shared by `Arc`.
#[derive(Debug, Default)]
pub struct BrokerMetrics {
    /// Requests by API, version, outcome; durations by API.
    pub requests: RequestMetrics,
    /// Produce and fetch counters by topic.
    pub topics: TopicMetrics,
    /// ISR shrinks committed for partitions this broker leads.
    pub isr_shrinks: AtomicU64,
    /// ISR expansions committed for partitions this broker leads.
    pub isr_expands: AtomicU64,
    /// Log flush rounds.
    pub flush: Arc<FlushMetrics>,
    connections: Mutex<BTreeMap<String, Arc<AtomicI64>>>,
}

impl BrokerMetrics {
    /// The open-connections gauge of a listener, created on first use (once per listener at
    /// start; connections then hold the `Arc`).
    pub fn listener_connections(&self, listener: &str) -> Arc<AtomicI64> {
        self.connections
            .lock()
            .entry(listener.to_string())
            .or_default()
            .clone()
    }

    /// Writes every metric this struct holds.
    pub fn encode(
        &self,
        encoder: &mut DescriptorEncoder<'_>,
        api_name: &dyn Fn(i16) -> Option<String>,
    ) -> Result<(), std::fmt::Error> {
        self.requests.encode(encoder, api_name)?;
        self.topics.encode(encoder)?;
        for (name, help, cell) in [
            (
                "strom_isr_shrinks",
                "ISR shrinks of partitions led here (committed in the metadata log)",
                &self.isr_shrinks,
            ),
            (
                "strom_isr_expands",
                "ISR expansions of partitions led here (committed in the metadata log)",
                &self.isr_expands,
            ),
        ] {
            let e = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            ConstCounter::new(cell.load(Ordering::Relaxed)).encode(e)?;
        }
        let connections: Vec<(String, i64)> = self
            .connections
            .lock()
            .iter()
            .map(|(l, c)| (l.clone(), c.load(Ordering::Relaxed)))
            .collect();
        let mut family = encoder.encode_descriptor(
            "strom_connections",
            "open client connections by listener",
            None,
            MetricType::Gauge,
        )?;
        for (listener, n) in &connections {
            ConstGauge::new(*n)
                .encode(family.encode_family(&[("listener", listener.as_str())])?)?;
        }
        self.flush.duration.encode(encoder.encode_descriptor(
            "strom_log_flush_duration_seconds",
            "duration of one group-commit flush round (fdatasync of every touched file)",
            None,
            MetricType::Histogram,
        )?)?;
        self.flush
            .batches_per_round
            .encode(encoder.encode_descriptor(
                "strom_log_flush_batches_per_round",
                "record batches made durable by one flush round",
                None,
                MetricType::Histogram,
            )?)?;
        Ok(())
    }
}

/// A connection's place in its listener's gauge: counted while this lives.
#[derive(Debug)]
pub struct ConnectionGauge(Arc<AtomicI64>);

impl ConnectionGauge {
    /// Counts one connection on `gauge` until dropped.
    pub fn open(gauge: &Arc<AtomicI64>) -> ConnectionGauge {
        gauge.fetch_add(1, Ordering::Relaxed);
        ConnectionGauge(gauge.clone())
    }
}

impl Drop for ConnectionGauge {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
