//! `RequestMetrics`: requests by API key, version and outcome, and their durations by API key,
//! in tables sized once for every key and version the wire protocol can carry. Recording is an
//! index and a `fetch_add`: no map, no lock, no allocation per request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::encoding::EncodeMetric;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::MetricType;

use crate::histogram::{AtomicHistogram, LATENCY_BUCKETS};

/// API keys 0..MAX_API_KEYS are counted (Kafka's keys end below 100).
const MAX_API_KEYS: usize = 100;
/// Versions 0..MAX_VERSIONS are counted (Kafka's highest request version is below 20).
const MAX_VERSIONS: usize = 24;

/// How a request ended, the `error` label of `strom_requests_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestOutcome {
    /// The handler answered (its per-partition error codes are the client's business).
    Answered,
    /// The request could not be handled (undecodable, or the handler failed) and the connection
    /// was closed.
    Failed,
}

impl RequestOutcome {
    const ALL: [RequestOutcome; 2] = [RequestOutcome::Answered, RequestOutcome::Failed];

    fn label(self) -> &'static str {
        match self {
            RequestOutcome::Answered => "none",
            RequestOutcome::Failed => "request_failed",
        }
    }

    fn index(self) -> usize {
        match self {
            RequestOutcome::Answered => 0,
            RequestOutcome::Failed => 1,
        }
    }
}

/// Request counters and duration histograms.
#[derive(Debug)]
pub struct RequestMetrics {
    /// `[api][version][outcome]`, flattened.
    counts: Box<[AtomicU64]>,
    durations: Box<[AtomicHistogram]>,
}

impl Default for RequestMetrics {
    fn default() -> Self {
        RequestMetrics {
            counts: (0..MAX_API_KEYS * MAX_VERSIONS * RequestOutcome::ALL.len())
                .map(|_| AtomicU64::new(0))
                .collect(),
            durations: (0..MAX_API_KEYS)
                .map(|_| AtomicHistogram::seconds(LATENCY_BUCKETS))
                .collect(),
        }
    }
}

fn slot(api_key: i16, version: i16, outcome: RequestOutcome) -> Option<usize> {
    let api = usize::try_from(api_key)
        .ok()
        .filter(|a| *a < MAX_API_KEYS)?;
    let v = usize::try_from(version)
        .ok()
        .filter(|v| *v < MAX_VERSIONS)?;
    Some((api * MAX_VERSIONS + v) * RequestOutcome::ALL.len() + outcome.index())
}

impl RequestMetrics {
    /// Counts one request (keys or versions outside the table are not counted).
    pub fn record(&self, api_key: i16, version: i16, outcome: RequestOutcome) {
        if let Some(c) = slot(api_key, version, outcome).and_then(|i| self.counts.get(i)) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records how long a request took from dispatch until its response was ready.
    pub fn observe_duration(&self, api_key: i16, elapsed: Duration) {
        if let Some(h) = usize::try_from(api_key)
            .ok()
            .and_then(|a| self.durations.get(a))
        {
            h.observe_duration(elapsed);
        }
    }

    /// How many requests of `api_key` were counted (every version and outcome).
    pub fn total(&self, api_key: i16) -> u64 {
        (0..MAX_VERSIONS as i16)
            .flat_map(|v| RequestOutcome::ALL.map(|o| slot(api_key, v, o)))
            .flatten()
            .filter_map(|i| self.counts.get(i))
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    /// Writes `strom_requests_total{api,version,error}` and
    /// `strom_request_duration_seconds{api}` for the keys `api_name` names (series that were
    /// never hit are left out).
    pub fn encode(
        &self,
        encoder: &mut DescriptorEncoder<'_>,
        api_name: &dyn Fn(i16) -> Option<String>,
    ) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "strom_requests",
            "Kafka requests by API, version and outcome (error=none: answered)",
            None,
            MetricType::Counter,
        )?;
        for api in 0..MAX_API_KEYS as i16 {
            let Some(name) = api_name(api) else { continue };
            for version in 0..MAX_VERSIONS as i16 {
                for outcome in RequestOutcome::ALL {
                    let Some(cell) = slot(api, version, outcome).and_then(|i| self.counts.get(i))
                    else {
                        continue;
                    };
                    let n = cell.load(Ordering::Relaxed);
                    if n == 0 {
                        continue;
                    }
                    let labels = (
                        [("api", name.as_str())],
                        ([("version", version)], [("error", outcome.label())]),
                    );
                    ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        let mut family = encoder.encode_descriptor(
            "strom_request_duration_seconds",
            "time from a request's dispatch until its response is ready, by API",
            None,
            MetricType::Histogram,
        )?;
        for (api, h) in self.durations.iter().enumerate() {
            let Ok(api) = i16::try_from(api) else {
                continue;
            };
            let Some(name) = api_name(api) else { continue };
            if h.count() == 0 {
                continue;
            }
            h.encode(family.encode_family(&[("api", name.as_str())])?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_key_version_and_outcome() {
        let m = RequestMetrics::default();
        m.record(0, 9, RequestOutcome::Answered);
        m.record(0, 9, RequestOutcome::Answered);
        m.record(0, 3, RequestOutcome::Failed);
        m.record(1, 12, RequestOutcome::Answered);
        m.record(-1, 0, RequestOutcome::Answered);
        m.record(0, 400, RequestOutcome::Answered);
        assert_eq!(m.total(0), 3);
        assert_eq!(m.total(1), 1);
    }
}
