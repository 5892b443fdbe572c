//! `TopicCounters`: one topic's produce and fetch counters, created once per topic and shared
//! by `Arc` with every hosted partition of it, so produce and fetch bump an atomic they already
//! hold instead of looking the topic up. `TopicMetrics` is the set, read at scrape time.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::encoding::EncodeMetric;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::MetricType;

/// One topic's counters (this broker's share: what it appended as leader and served to
/// consumers).
#[derive(Debug, Default)]
pub struct TopicCounters {
    records_in: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
}

impl TopicCounters {
    /// A produce appended `records` records in `bytes` bytes of batches.
    pub fn record_produce(&self, records: u64, bytes: u64) {
        self.records_in.fetch_add(records, Ordering::Relaxed);
        self.bytes_in.fetch_add(bytes, Ordering::Relaxed);
    }

    /// A consumer fetch returned `bytes` bytes of batches.
    pub fn record_fetch(&self, bytes: u64) {
        self.bytes_out.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Records appended by produce so far.
    pub fn records_in(&self) -> u64 {
        self.records_in.load(Ordering::Relaxed)
    }
}

/// Every topic's counters, by name. The lock is taken when a partition is first hosted and at
/// scrape time, never per request.
#[derive(Debug, Default)]
pub struct TopicMetrics {
    by_topic: Mutex<BTreeMap<String, Arc<TopicCounters>>>,
}

impl TopicMetrics {
    /// The counters of `topic`, created on first use. A deleted and recreated topic continues
    /// its counters (Prometheus counters must not go back without a restart).
    pub fn topic(&self, topic: &str) -> Arc<TopicCounters> {
        let mut map = self.by_topic.lock();
        if let Some(c) = map.get(topic) {
            return c.clone();
        }
        let c = Arc::new(TopicCounters::default());
        map.insert(topic.to_string(), c.clone());
        c
    }

    /// Writes `strom_topic_records_in_total`, `strom_topic_bytes_in_total` and
    /// `strom_topic_bytes_out_total`, by `topic`.
    pub fn encode(&self, encoder: &mut DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let topics: Vec<(String, Arc<TopicCounters>)> = self
            .by_topic
            .lock()
            .iter()
            .map(|(t, c)| (t.clone(), c.clone()))
            .collect();
        type Read = fn(&TopicCounters) -> &AtomicU64;
        let families: [(&str, &str, Read); 3] = [
            (
                "strom_topic_records_in",
                "records appended by produce requests to partitions this broker leads",
                |c| &c.records_in,
            ),
            (
                "strom_topic_bytes_in",
                "bytes of record batches appended by produce requests",
                |c| &c.bytes_in,
            ),
            (
                "strom_topic_bytes_out",
                "bytes of record batches returned to consumer fetches (not replica fetches)",
                |c| &c.bytes_out,
            ),
        ];
        for (name, help, read) in families {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (topic, c) in &topics {
                let v = read(c).load(Ordering::Relaxed);
                ConstCounter::new(v).encode(family.encode_family(&[("topic", topic.as_str())])?)?;
            }
        }
        Ok(())
    }
}
