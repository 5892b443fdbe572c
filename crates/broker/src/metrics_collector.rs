//! `BrokerCollector`: the `/metrics` view of one broker, computed at scrape time. The hot-path
//! cells (`strom_metrics::BrokerMetrics`) are read as they are; every gauge of broker state
//! (offsets and sizes of hosted partitions, consumer group lag and members, under-replicated and
//! offline partitions, the active controller, throttle totals) is derived from the parts on
//! each scrape, so the hot paths maintain none of them. A scrape takes the same short locks a
//! DescribeGroups or Metadata request takes.

use std::sync::Arc;

use kafka_protocol::messages::ApiKey;
use strom_log::TopicPartition;
use strom_metrics::prometheus_client::collector::Collector;
use strom_metrics::prometheus_client::encoding::DescriptorEncoder;
use strom_metrics::prometheus_client::encoding::EncodeMetric;
use strom_metrics::prometheus_client::metrics::counter::ConstCounter;
use strom_metrics::prometheus_client::metrics::gauge::ConstGauge;
use strom_metrics::prometheus_client::metrics::MetricType;
use strom_quota::QuotaManager;

use crate::broker::Broker;

/// Registers with a `prometheus_client` registry; holds the broker only while registered.
#[derive(Debug)]
pub struct BrokerCollector {
    broker: Arc<Broker>,
}

impl BrokerCollector {
    /// A collector over `broker`.
    pub fn new(broker: Arc<Broker>) -> Self {
        BrokerCollector { broker }
    }
}

/// A gauge family of integer series with one label set type.
fn gauges<L: strom_metrics::prometheus_client::encoding::EncodeLabelSet>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    series: &[(L, i64)],
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, v) in series {
        ConstGauge::new(*v).encode(family.encode_family(labels)?)?;
    }
    Ok(())
}

fn gauge(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    v: i64,
) -> Result<(), std::fmt::Error> {
    ConstGauge::new(v).encode(encoder.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

impl Collector for BrokerCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let b = &self.broker;
        let api_name = |k: i16| ApiKey::try_from(k).ok().map(|a| format!("{a:?}"));
        b.metrics.encode(&mut encoder, &api_name)?;
        encode_partitions(b, &mut encoder)?;
        encode_cluster(b, &mut encoder)?;
        encode_groups(b, &mut encoder)?;
        let q = &b.quotas;
        throttle(
            &mut encoder,
            "strom_produce_throttle_seconds",
            "produce",
            &q.produce,
        )?;
        throttle(
            &mut encoder,
            "strom_fetch_throttle_seconds",
            "fetch",
            &q.fetch,
        )?;
        throttle(
            &mut encoder,
            "strom_request_throttle_seconds",
            "request",
            &q.request,
        )?;
        Ok(())
    }
}

/// Log offsets and sizes of every partition hosted here (leader or follower replica).
fn encode_partitions(
    b: &Broker,
    encoder: &mut DescriptorEncoder<'_>,
) -> Result<(), std::fmt::Error> {
    let mut partitions = b.replicas.all_partitions();
    partitions.sort_by(|x, y| x.tp.cmp(&y.tp));
    type Read = fn(&strom_log::PartitionLog) -> i64;
    let families: [(&str, &str, Read); 3] = [
        (
            "strom_partition_high_watermark",
            "high watermark of each partition replica hosted here",
            |l| l.high_watermark(),
        ),
        (
            "strom_partition_log_start_offset",
            "log start offset of each partition replica hosted here",
            |l| l.log_start_offset(),
        ),
        (
            "strom_partition_size_bytes",
            "bytes of segment files of each partition replica hosted here",
            |l| i64::try_from(l.size_bytes()).unwrap_or(i64::MAX),
        ),
    ];
    for (name, help, read) in families {
        let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
        for p in &partitions {
            let labels = (
                [("topic", p.tp.topic.as_str())],
                [("partition", p.tp.partition)],
            );
            ConstGauge::new(read(&p.log)).encode(family.encode_family(&labels)?)?;
        }
    }
    Ok(())
}

/// Replication health from the metadata image: under-replicated partitions this broker leads
/// (Kafka's UnderReplicatedPartitions), and on the active controller the partitions without a
/// leader (Kafka's OfflinePartitionsCount, reported by the controller only).
fn encode_cluster(b: &Broker, encoder: &mut DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
    let image = b.metadata.image();
    let me = b.config.node_id;
    let active = b.metadata.is_leader();
    let (mut under_replicated, mut offline) = (0i64, 0i64);
    for t in image.topics() {
        for p in t.partitions.values() {
            if p.leader == me && p.isr.len() < p.replicas.len() {
                under_replicated += 1;
            }
            if active && p.leader < 0 {
                offline += 1;
            }
        }
    }
    gauge(
        encoder,
        "strom_under_replicated_partitions",
        "partitions led here whose ISR is smaller than their replica set",
        under_replicated,
    )?;
    gauge(
        encoder,
        "strom_offline_partitions",
        "partitions without a leader (counted by the active controller; 0 elsewhere)",
        offline,
    )?;
    gauge(
        encoder,
        "strom_active_controller",
        "1 on the metadata quorum's leader",
        i64::from(active),
    )
}

/// Lag and members of every group this broker coordinates (classic and KIP-848 groups). The
/// end offset is the high watermark of the local replica; partitions not hosted here are left
/// out (their end offset is another broker's).
fn encode_groups(b: &Broker, encoder: &mut DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
    let c = &b.coordinators;
    let mut groups: Vec<(String, i64)> = c
        .groups
        .list_groups(&[])
        .into_iter()
        .map(|g| {
            let members = c
                .groups
                .describe_group(&g.group_id)
                .map_or(0, |d| d.members.len());
            (g.group_id, members as i64)
        })
        .collect();
    for (group_id, _) in c.consumer_groups.list_groups() {
        let members = c
            .consumer_groups
            .describe_group(&group_id)
            .map_or(0, |d| d.members.len());
        groups.push((group_id, members as i64));
    }
    groups.sort();
    groups.dedup_by(|a, b| a.0 == b.0);
    let mut lag = Vec::new();
    for (group_id, _) in &groups {
        let Ok(offsets) = c.groups.fetch_offsets(group_id, None) else {
            continue;
        };
        for (topic, parts) in offsets {
            for (partition, committed) in parts {
                let Some(committed) = committed else { continue };
                let tp = TopicPartition::new(topic.clone(), partition);
                let Some(log) = b.replicas.log(&tp) else {
                    continue;
                };
                let end = log.high_watermark();
                lag.push((
                    group_id.clone(),
                    topic.clone(),
                    partition,
                    (end - committed.offset).max(0),
                ));
            }
        }
    }
    let lag: Vec<_> = lag
        .iter()
        .map(|(g, t, p, v)| {
            (
                (
                    [("group", g.as_str())],
                    ([("topic", t.as_str())], [("partition", *p)]),
                ),
                *v,
            )
        })
        .collect();
    gauges(
        encoder,
        "strom_consumer_group_lag",
        "high watermark minus committed offset, per group and partition (groups coordinated here)",
        &lag,
    )?;
    let members: Vec<_> = groups
        .iter()
        .map(|(g, n)| ([("group", g.as_str())], *n))
        .collect();
    gauges(
        encoder,
        "strom_consumer_group_members",
        "members of each group coordinated here",
        &members,
    )
}

/// Total throttle time per (user, client id) sensor of one quota type.
fn throttle(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    what: &str,
    quota: &QuotaManager,
) -> Result<(), std::fmt::Error> {
    let help = format!("seconds clients were throttled by their {what} quota");
    let mut family = encoder.encode_descriptor(name, &help, None, MetricType::Counter)?;
    for (user, client_id, seconds) in quota.throttle_totals() {
        let labels = (
            [("user", user.as_str())],
            [("client_id", client_id.as_str())],
        );
        ConstCounter::new(seconds).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}
