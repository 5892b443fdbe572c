//! The controller's decisions as pure functions of a `MetadataImage`: which records fence,
//! unfence or register a broker, apply an AlterPartition, or run preferred elections. Partition
//! changes come from `replication::election`; this module only walks the image and turns each
//! changed `PartitionImage` into a `Partition` record. Each function is a `propose` closure body.

use crate::metadata::{MetadataImage, MetadataRecord, PartitionImage, TopicImage};
use crate::replication::election::{
    alter_partition, elect_preferred, on_broker_fenced, on_broker_unfenced, AlterPartitionRequest,
};
use uuid::Uuid;

use crate::metadata::BrokerRegistration;

/// Kafka's `UNKNOWN_TOPIC_OR_PARTITION`.
pub(crate) const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
/// Kafka's `PREFERRED_LEADER_NOT_AVAILABLE`.
pub(crate) const PREFERRED_LEADER_NOT_AVAILABLE: i16 = 80;
/// Kafka's `ELECTION_NOT_NEEDED`.
pub(crate) const ELECTION_NOT_NEEDED: i16 = 84;

/// Kafka's `leader.imbalance.per.broker.percentage` default.
const IMBALANCE_PERCENT: usize = 10;

fn partition_record(topic_id: Uuid, partition: i32, p: &PartitionImage) -> MetadataRecord {
    MetadataRecord::Partition {
        topic_id,
        partition,
        replicas: p.replicas.clone(),
        isr: p.isr.clone(),
        leader: p.leader,
        leader_epoch: p.leader_epoch,
        partition_epoch: p.partition_epoch,
    }
}

fn live(img: &MetadataImage, broker: i32) -> bool {
    img.brokers.get(&broker).is_some_and(|b| !b.fenced)
}

/// `unclean.leader.election.enable` for a topic: its override, else the cluster default config,
/// else the static default.
fn unclean(img: &MetadataImage, t: &TopicImage, default: bool) -> bool {
    const KEY: &str = "unclean.leader.election.enable";
    t.configs
        .get(KEY)
        .or_else(|| img.broker_configs.get("").and_then(|c| c.get(KEY)))
        .map_or(default, |v| v.eq_ignore_ascii_case("true"))
}

/// A `Partition` record for every partition `change` returns a new image for.
fn changes(
    img: &MetadataImage,
    change: impl Fn(&TopicImage, &PartitionImage) -> Option<PartitionImage>,
) -> Vec<MetadataRecord> {
    let mut out = Vec::new();
    for t in img.topics() {
        for (p, part) in &t.partitions {
            if let Some(next) = change(t, part) {
                out.push(partition_record(t.id, *p, &next));
            }
        }
    }
    out
}

/// Fences `broker` (heartbeats lapsed, or controlled shutdown) and moves its leaderships and ISR
/// memberships away. Nothing when it is unknown, already fenced, or (with `incarnation`) was
/// re-registered since the decision to fence.
pub(crate) fn fence(
    img: &MetadataImage,
    broker: i32,
    incarnation: Option<Uuid>,
    unclean_default: bool,
) -> Vec<MetadataRecord> {
    let Some(b) = img.brokers.get(&broker) else {
        return Vec::new();
    };
    if b.fenced || incarnation.is_some_and(|i| i != b.registration.incarnation) {
        return Vec::new();
    }
    let is_live = |r: i32| r != broker && live(img, r);
    let mut records = vec![MetadataRecord::FenceBroker { broker_id: broker }];
    records.extend(changes(img, |t, p| {
        on_broker_fenced(p, broker, &is_live, unclean(img, t, unclean_default))
    }));
    records
}

/// The partitions `records` leave without a leader (`topic-partition`), for the logs: fencing a
/// broker that was alone in an ISR does this unless unclean election is allowed.
pub(crate) fn leaderless(img: &MetadataImage, records: &[MetadataRecord]) -> Vec<String> {
    records
        .iter()
        .filter_map(|r| match r {
            MetadataRecord::Partition {
                topic_id,
                partition,
                leader,
                ..
            } if *leader < 0 => Some(match img.topic_by_id(topic_id) {
                Some(t) => format!("{}-{partition}", t.name),
                None => format!("{topic_id}-{partition}"),
            }),
            _ => None,
        })
        .collect()
}

/// Unfences `broker` and gives it the leaderless partitions it can lead.
pub(crate) fn unfence(
    img: &MetadataImage,
    broker: i32,
    incarnation: Uuid,
    unclean_default: bool,
) -> Vec<MetadataRecord> {
    let Some(b) = img.brokers.get(&broker) else {
        return Vec::new();
    };
    if !b.fenced || b.registration.incarnation != incarnation {
        return Vec::new();
    }
    let is_live = |r: i32| r == broker || live(img, r);
    let mut records = vec![MetadataRecord::UnfenceBroker { broker_id: broker }];
    records.extend(changes(img, |t, p| {
        on_broker_unfenced(p, broker, &is_live, unclean(img, t, unclean_default))
    }));
    records
}

/// Kafka's DUPLICATE_BROKER_REGISTRATION: another incarnation of `reg`'s broker is registered,
/// unfenced, and its session (`session_live`, from the controller's heartbeat tracking) has not
/// expired. A fenced or expired one may be replaced at once.
pub(crate) fn is_duplicate(
    img: &MetadataImage,
    reg: &BrokerRegistration,
    session_live: bool,
) -> bool {
    img.brokers
        .get(&reg.broker_id)
        .is_some_and(|b| b.registration.incarnation != reg.incarnation && !b.fenced && session_live)
}

/// Registers a broker. A retry of the same registration writes nothing; a new incarnation of a
/// broker still unfenced (its session expired, not fenced yet) also moves its partitions away
/// (the registration fences it: the new process has to catch up before it leads again).
pub(crate) fn register(
    img: &MetadataImage,
    reg: &BrokerRegistration,
    unclean_default: bool,
) -> Vec<MetadataRecord> {
    let existing = img.brokers.get(&reg.broker_id);
    if existing.is_some_and(|b| b.registration == *reg) {
        return Vec::new();
    }
    let mut records = vec![reg.to_record()];
    if existing.is_some_and(|b| !b.fenced) {
        let broker = reg.broker_id;
        let is_live = |r: i32| r != broker && live(img, r);
        records.extend(changes(img, |t, p| {
            on_broker_fenced(p, broker, &is_live, unclean(img, t, unclean_default))
        }));
    }
    records
}

/// Validates and applies an AlterPartition. An unknown partition is refused like a sender that
/// does not lead it (`NOT_LEADER_OR_FOLLOWER`: the sender must refresh its metadata).
pub(crate) fn alter(
    img: &MetadataImage,
    topic_id: Uuid,
    partition: i32,
    req: &AlterPartitionRequest,
) -> (Vec<MetadataRecord>, Result<PartitionImage, i16>) {
    let Some(p) = img
        .topic_by_id(&topic_id)
        .and_then(|t| t.partitions.get(&partition))
    else {
        let code = crate::replication::AlterPartitionError::NotLeaderOrFollower.kafka_code();
        return (Vec::new(), Err(code));
    };
    let is_live = |r: i32| live(img, r);
    match alter_partition(p, req, &is_live) {
        Ok(next) if next == *p => (Vec::new(), Ok(next)),
        Ok(next) => (vec![partition_record(topic_id, partition, &next)], Ok(next)),
        Err(e) => (Vec::new(), Err(e.kafka_code())),
    }
}

/// Preferred leader election for the listed partitions.
pub(crate) fn elect(
    img: &MetadataImage,
    partitions: &[(Uuid, i32)],
) -> (Vec<MetadataRecord>, Vec<Result<(), i16>>) {
    let is_live = |r: i32| live(img, r);
    let mut records = Vec::new();
    let mut results = Vec::with_capacity(partitions.len());
    for (topic_id, partition) in partitions {
        let Some(p) = img
            .topic_by_id(topic_id)
            .and_then(|t| t.partitions.get(partition))
        else {
            results.push(Err(UNKNOWN_TOPIC_OR_PARTITION));
            continue;
        };
        match elect_preferred(p, &is_live) {
            Some(next) => {
                records.push(partition_record(*topic_id, *partition, &next));
                results.push(Ok(()));
            }
            None if p.replicas.first() == Some(&p.leader) => results.push(Err(ELECTION_NOT_NEEDED)),
            None => results.push(Err(PREFERRED_LEADER_NOT_AVAILABLE)),
        }
    }
    (records, results)
}

/// Auto leader rebalance (Kafka's `checkAndTriggerAutoLeaderRebalance`): for every broker whose
/// share of preferred-but-not-led partitions exceeds 10%, move those partitions back to it
/// where it is live and in the ISR.
pub(crate) fn rebalance(img: &MetadataImage) -> Vec<MetadataRecord> {
    let mut preferred: std::collections::BTreeMap<i32, (usize, usize)> = Default::default();
    for t in img.topics() {
        for p in t.partitions.values() {
            if let Some(&first) = p.replicas.first() {
                let e = preferred.entry(first).or_default();
                e.0 += 1;
                if p.leader != first {
                    e.1 += 1;
                }
            }
        }
    }
    let imbalanced = |b: i32| {
        preferred
            .get(&b)
            .is_some_and(|(total, off)| *off * 100 > *total * IMBALANCE_PERCENT)
    };
    let is_live = |r: i32| live(img, r);
    changes(img, |_, p| {
        let first = *p.replicas.first()?;
        if imbalanced(first) {
            elect_preferred(p, &is_live)
        } else {
            None
        }
    })
}

#[cfg(test)]
#[path = "decisions_tests.rs"]
pub(super) mod tests;
