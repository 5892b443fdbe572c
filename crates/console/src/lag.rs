//! Consumer lag, as kafka-consumer-groups computes it: for each partition a group committed or
//! is assigned, lag = log end offset − committed offset (never negative: a commit can be ahead of
//! the end a moment after a truncation, or when the end was read before the commit). A partition
//! with no commit, or whose end is unknown, has no lag (shown as "-"), and counts 0 in the total.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;
use strom_client::TopicPartition;

/// One partition row of a group page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct PartitionLag {
    pub(crate) topic: String,
    pub(crate) partition: i32,
    pub(crate) committed: Option<i64>,
    pub(crate) log_end: Option<i64>,
    pub(crate) lag: Option<i64>,
    /// The member the partition is assigned to (its client id and member id), if any.
    pub(crate) member: Option<String>,
}

/// `end − committed`, floored at 0; `None` when either is unknown.
pub(crate) fn lag(committed: Option<i64>, log_end: Option<i64>) -> Option<i64> {
    let (c, e) = (committed?, log_end?);
    if c < 0 || e < 0 {
        return None;
    }
    Some(e.saturating_sub(c).max(0))
}

/// The rows of every partition committed or assigned, sorted by topic and partition.
pub(crate) fn partition_lags(
    committed: &BTreeMap<TopicPartition, i64>,
    log_ends: &HashMap<TopicPartition, i64>,
    owners: &BTreeMap<TopicPartition, String>,
) -> Vec<PartitionLag> {
    let partitions: BTreeSet<&TopicPartition> = committed.keys().chain(owners.keys()).collect();
    partitions
        .into_iter()
        .map(|tp| {
            let c = committed.get(tp).copied();
            let e = log_ends.get(tp).copied();
            PartitionLag {
                topic: tp.topic.clone(),
                partition: tp.partition,
                committed: c,
                log_end: e,
                lag: lag(c, e),
                member: owners.get(tp).cloned(),
            }
        })
        .collect()
}

/// The sum of the known lags.
pub(crate) fn total_lag(rows: &[PartitionLag]) -> i64 {
    rows.iter()
        .filter_map(|r| r.lag)
        .fold(0i64, i64::saturating_add)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(t: &str, p: i32) -> TopicPartition {
        TopicPartition::new(t, p)
    }

    #[test]
    fn lag_is_end_minus_committed_floored_at_zero() {
        assert_eq!(lag(Some(3), Some(10)), Some(7));
        assert_eq!(lag(Some(10), Some(10)), Some(0));
        assert_eq!(lag(Some(12), Some(10)), Some(0));
        assert_eq!(lag(None, Some(10)), None);
        assert_eq!(lag(Some(3), None), None);
        assert_eq!(lag(Some(-1), Some(10)), None);
    }

    #[test]
    fn rows_cover_committed_and_assigned_partitions() {
        let committed = BTreeMap::from([(tp("a", 0), 4), (tp("a", 1), 9)]);
        let ends = HashMap::from([(tp("a", 0), 10), (tp("a", 1), 9), (tp("b", 0), 5)]);
        let owners = BTreeMap::from([(tp("b", 0), "c1 (m-1)".to_owned())]);
        let rows = partition_lags(&committed, &ends, &owners);
        let summary: Vec<_> = rows
            .iter()
            .map(|r| (r.topic.as_str(), r.partition, r.lag, r.member.as_deref()))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("a", 0, Some(6), None),
                ("a", 1, Some(0), None),
                ("b", 0, None, Some("c1 (m-1)")),
            ]
        );
        assert_eq!(total_lag(&rows), 6);
    }

    #[test]
    fn total_of_nothing_is_zero() {
        assert_eq!(total_lag(&[]), 0);
    }
}
