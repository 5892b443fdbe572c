//! [`SimpleAssignor`]: Kafka's share-group assignor (`SimpleAssignor`, with its homogeneous and
//! heterogeneous builders). Unlike a consumer group's, a share group's partition may go to several
//! members at once: records are shared per record, not per partition.
//!
//! Kafka's rules, in its order of priority:
//! 1. Balance. With M members and P partitions each partition is wanted by
//!    `desired_sharing = ceil(M / P)` members, so there are `desired_sharing * P` slots, spread so
//!    two members' counts differ by at most one. Every member gets at least one partition and
//!    every partition at least one member when there are both (`desired_sharing * P >= M`).
//! 2. Stickiness. The previous assignment is kept where it fits: only what is no longer
//!    subscribed, what overfills a member and what over-shares a partition is revoked; then the
//!    under-shared partitions go to the members still short.
//!
//! When every member subscribes to the same topics all their partitions form one pool (Kafka's
//! homogeneous case); otherwise each topic is balanced over its own subscribers (heterogeneous).
//! Kafka iterates hash maps, so its ties fall anywhere; here members are ordered by id, partitions
//! by topic and index, and new slots go to the least-loaded member: the result is deterministic,
//! and assigning again with nothing changed returns the same assignment.

use std::collections::{BTreeMap, BTreeSet};

/// A member's partitions: topic name → partition indexes.
pub type Assignment = BTreeMap<String, BTreeSet<i32>>;

/// What the assignor knows of a member: its subscription and what it has now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberSubscriptionAndAssignment {
    /// The topics the member subscribes to.
    pub subscribed_topic_names: BTreeSet<String>,
    /// The member's current target assignment.
    pub assignment: Assignment,
}

/// Kafka's `SimpleAssignor` ("simple", the default of `group.share.assignors`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimpleAssignor;

type TopicPartition = (String, i32);

impl SimpleAssignor {
    /// The assignor's name, as Kafka's.
    pub const NAME: &'static str = "simple";

    /// The target assignment of every member. `partition_counts` gives the partitions of each
    /// existing topic; subscribed topics missing from it are skipped (Kafka resolves subscribed
    /// names against the metadata image and drops unknown ones).
    pub fn assign(
        &self,
        members: &BTreeMap<String, MemberSubscriptionAndAssignment>,
        partition_counts: &BTreeMap<String, u32>,
    ) -> BTreeMap<String, Assignment> {
        let ids: Vec<&String> = members.keys().collect();
        let specs: Vec<&MemberSubscriptionAndAssignment> = members.values().collect();
        let mut result: Vec<BTreeSet<TopicPartition>> = vec![BTreeSet::new(); ids.len()];

        let homogeneous = specs
            .windows(2)
            .all(|pair| pair[0].subscribed_topic_names == pair[1].subscribed_topic_names);
        let pools: Vec<(Vec<String>, Vec<usize>)> = if homogeneous {
            let topics = specs
                .first()
                .map(|spec| spec.subscribed_topic_names.iter().cloned().collect())
                .unwrap_or_default();
            vec![(topics, (0..ids.len()).collect())]
        } else {
            let topics: BTreeSet<&String> = specs
                .iter()
                .flat_map(|spec| spec.subscribed_topic_names.iter())
                .collect();
            topics
                .into_iter()
                .map(|topic| {
                    let subscribers = (0..ids.len())
                        .filter(|&i| specs[i].subscribed_topic_names.contains(topic))
                        .collect();
                    (vec![topic.clone()], subscribers)
                })
                .collect()
        };

        for (topics, subscribers) in pools {
            let partitions: Vec<TopicPartition> = topics
                .iter()
                .filter_map(|topic| partition_counts.get(topic).map(|count| (topic, *count)))
                .flat_map(|(topic, count)| {
                    (0..i32::try_from(count).unwrap_or(i32::MAX)).map(move |p| (topic.clone(), p))
                })
                .collect();
            let current: Vec<BTreeSet<TopicPartition>> = subscribers
                .iter()
                .map(|&i| {
                    specs[i]
                        .assignment
                        .iter()
                        .filter(|(topic, _)| topics.contains(topic))
                        .flat_map(|(topic, ps)| ps.iter().map(move |p| (topic.clone(), *p)))
                        .collect()
                })
                .collect();
            let assigned = assign_pool(&partitions, current);
            for (slot, &member) in subscribers.iter().enumerate() {
                if let (Some(target), Some(set)) = (result.get_mut(member), assigned.get(slot)) {
                    target.extend(set.iter().cloned());
                }
            }
        }

        ids.into_iter()
            .zip(result)
            .map(|(id, partitions)| {
                let mut assignment = Assignment::new();
                for (topic, partition) in partitions {
                    assignment.entry(topic).or_default().insert(partition);
                }
                (id.clone(), assignment)
            })
            .collect()
    }
}

/// Balances `partitions` over the members whose current holdings are `current` (restricted to
/// any subset; what is not in `partitions` is dropped).
fn assign_pool(
    partitions: &[TopicPartition],
    current: Vec<BTreeSet<TopicPartition>>,
) -> Vec<BTreeSet<TopicPartition>> {
    let members = current.len();
    let pool: BTreeSet<&TopicPartition> = partitions.iter().collect();
    let mut by_member: Vec<BTreeSet<TopicPartition>> = current
        .into_iter()
        .map(|held| held.into_iter().filter(|tp| pool.contains(tp)).collect())
        .collect();
    if members == 0 || partitions.is_empty() {
        return vec![BTreeSet::new(); members];
    }

    // Kafka's desired sharing and slot count; members get `floor` slots, `extra` of them one more.
    // Kafka fixes which members get the extra slot before assigning (by member index); here the
    // members that end up able to take it do, which never strands a slot that another member
    // could have filled and keeps a rerun on the result unchanged.
    let sharing = members.div_ceil(partitions.len());
    let slots = sharing * partitions.len();
    let floor = slots / members;
    let mut extra = slots % members;
    let ceil = if extra > 0 { floor + 1 } else { floor };

    let mut by_partition: BTreeMap<TopicPartition, BTreeSet<usize>> = partitions
        .iter()
        .map(|tp| (tp.clone(), BTreeSet::new()))
        .collect();
    for (member, held) in by_member.iter().enumerate() {
        for tp in held {
            if let Some(holders) = by_partition.get_mut(tp) {
                holders.insert(member);
            }
        }
    }
    let revoke = |member: usize,
                  by_member: &mut Vec<BTreeSet<TopicPartition>>,
                  by_partition: &mut BTreeMap<TopicPartition, BTreeSet<usize>>| {
        // The most shared partition goes first: its other holders keep it served.
        let victim = by_member[member]
            .iter()
            .max_by_key(|tp| by_partition.get(*tp).map_or(0, BTreeSet::len))
            .cloned();
        if let Some(victim) = victim {
            by_member[member].remove(&victim);
            if let Some(holders) = by_partition.get_mut(&victim) {
                holders.remove(&member);
            }
        }
    };

    // Revoke what overfills a member: above `ceil`, or at `ceil` beyond the `extra` allowed.
    for member in 0..members {
        while by_member[member].len() > ceil {
            revoke(member, &mut by_member, &mut by_partition);
        }
        if by_member[member].len() == ceil && ceil > floor {
            if extra > 0 {
                extra -= 1;
            } else {
                revoke(member, &mut by_member, &mut by_partition);
            }
        }
    }

    // Revoke over-shared partitions, from the members holding the most.
    for (tp, holders) in by_partition.iter_mut() {
        while holders.len() > sharing {
            let Some(victim) = holders
                .iter()
                .copied()
                .max_by_key(|&m| (by_member[m].len(), m))
            else {
                break;
            };
            if by_member[victim].len() == ceil && ceil > floor {
                extra += 1;
            }
            holders.remove(&victim);
            by_member[victim].remove(tp);
        }
    }

    // Hand each under-shared partition to the least-loaded members lacking it.
    for (tp, holders) in by_partition.iter_mut() {
        while holders.len() < sharing {
            let candidate = (0..members)
                .filter(|m| !holders.contains(m))
                .filter(|&m| by_member[m].len() < floor || (by_member[m].len() < ceil && extra > 0))
                .min_by_key(|&m| (by_member[m].len(), m));
            let Some(member) = candidate else {
                // Everyone with room already has it: tolerate the imbalance, as Kafka does.
                break;
            };
            holders.insert(member);
            by_member[member].insert(tp.clone());
            if by_member[member].len() > floor {
                extra -= 1;
            }
        }
    }

    // Kafka's guarantee, kept even where the filling above could not place someone: a member
    // without a partition takes the least-shared one.
    for (member, held) in by_member.iter_mut().enumerate() {
        if held.is_empty() {
            if let Some((tp, holders)) = by_partition.iter_mut().min_by_key(|(_, h)| h.len()) {
                holders.insert(member);
                held.insert(tp.clone());
            }
        }
    }
    by_member
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(specs: &[(&str, &[&str])]) -> BTreeMap<String, MemberSubscriptionAndAssignment> {
        specs
            .iter()
            .map(|(id, topics)| {
                (
                    id.to_string(),
                    MemberSubscriptionAndAssignment {
                        subscribed_topic_names: topics.iter().map(|t| t.to_string()).collect(),
                        assignment: Assignment::new(),
                    },
                )
            })
            .collect()
    }

    fn counts(topics: &[(&str, u32)]) -> BTreeMap<String, u32> {
        topics.iter().map(|(t, c)| (t.to_string(), *c)).collect()
    }

    fn size(assignment: &Assignment) -> usize {
        assignment.values().map(BTreeSet::len).sum()
    }

    #[test]
    fn more_members_than_partitions_share_them() {
        let m = members(&[
            ("a", &["t"]),
            ("b", &["t"]),
            ("c", &["t"]),
            ("d", &["t"]),
            ("e", &["t"]),
        ]);
        let result = SimpleAssignor.assign(&m, &counts(&[("t", 2)]));
        // ceil(5/2) = 3 sharers per partition: 6 slots over 5 members.
        let mut per_partition = BTreeMap::new();
        for assignment in result.values() {
            assert!((1..=2).contains(&size(assignment)), "{result:?}");
            for p in &assignment["t"] {
                *per_partition.entry(*p).or_insert(0) += 1;
            }
        }
        assert_eq!(per_partition, BTreeMap::from([(0, 3), (1, 3)]));
    }

    #[test]
    fn fewer_members_than_partitions_split_them() {
        let m = members(&[("a", &["t"]), ("b", &["t"]), ("c", &["t"])]);
        let result = SimpleAssignor.assign(&m, &counts(&[("t", 7)]));
        let sizes: Vec<usize> = result.values().map(size).collect();
        assert_eq!(sizes.iter().sum::<usize>(), 7);
        assert!(sizes.iter().all(|s| (2..=3).contains(s)), "{sizes:?}");
        let all: BTreeSet<i32> = result
            .values()
            .flat_map(|a| a["t"].iter().copied())
            .collect();
        assert_eq!(all.len(), 7, "each partition exactly once");
    }

    #[test]
    fn homogeneous_subscriptions_pool_all_topics() {
        let m = members(&[("a", &["x", "y"]), ("b", &["x", "y"])]);
        let result = SimpleAssignor.assign(&m, &counts(&[("x", 1), ("y", 1)]));
        assert_eq!(size(&result["a"]), 1);
        assert_eq!(size(&result["b"]), 1);
    }

    #[test]
    fn heterogeneous_subscriptions_balance_each_topic() {
        let m = members(&[("a", &["x"]), ("b", &["x", "y"]), ("c", &["y"])]);
        let result = SimpleAssignor.assign(&m, &counts(&[("x", 2), ("y", 1)]));
        assert!(!result["a"].contains_key("y"));
        assert!(!result["c"].contains_key("x"));
        assert_eq!(result["a"]["x"].len(), 1);
        assert_eq!(result["c"]["y"], BTreeSet::from([0]));
        assert_eq!(
            result["b"]["y"],
            BTreeSet::from([0]),
            "y is shared by its 2 subscribers"
        );
    }

    #[test]
    fn stable_when_nothing_changes_and_sticky_when_a_member_joins() {
        let mut m = members(&[("a", &["t"]), ("b", &["t"])]);
        let first = SimpleAssignor.assign(&m, &counts(&[("t", 4)]));
        for (id, assignment) in &first {
            if let Some(spec) = m.get_mut(id) {
                spec.assignment = assignment.clone();
            }
        }
        assert_eq!(SimpleAssignor.assign(&m, &counts(&[("t", 4)])), first);

        m.insert(
            "c".to_string(),
            MemberSubscriptionAndAssignment {
                subscribed_topic_names: BTreeSet::from(["t".to_string()]),
                assignment: Assignment::new(),
            },
        );
        let second = SimpleAssignor.assign(&m, &counts(&[("t", 4)]));
        assert!(size(&second["c"]) >= 1);
        for id in ["a", "b"] {
            let kept = second[id]["t"].intersection(&first[id]["t"]).count();
            assert_eq!(
                kept,
                size(&second[id]),
                "{id} only lost partitions: {second:?}"
            );
        }
    }

    #[test]
    fn unknown_topics_and_no_members() {
        let m = members(&[("a", &["missing"])]);
        let result = SimpleAssignor.assign(&m, &counts(&[]));
        assert_eq!(result["a"], Assignment::new());
        assert!(SimpleAssignor
            .assign(&BTreeMap::new(), &counts(&[("t", 3)]))
            .is_empty());
    }
}
