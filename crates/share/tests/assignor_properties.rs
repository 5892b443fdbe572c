//! The simple share assignor over random member churn: every member gets a partition, every
//! partition a member, nobody and no partition beyond the balanced share, and an unchanged group
//! keeps its assignment.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use strom_share::{Assignment, MemberSubscriptionAndAssignment, SimpleAssignor};

fn size(assignment: &Assignment) -> usize {
    assignment.values().map(BTreeSet::len).sum()
}

proptest! {
    #[test]
    fn balanced_complete_and_stable(
        partitions in 1..12u32,
        churn in prop::collection::vec((any::<bool>(), 0..10u8), 1..30),
    ) {
        let counts = BTreeMap::from([("t".to_string(), partitions)]);
        let mut members: BTreeMap<String, MemberSubscriptionAndAssignment> = BTreeMap::new();
        for (join, id) in churn {
            let id = format!("m{id}");
            if join {
                members.entry(id).or_insert_with(|| MemberSubscriptionAndAssignment {
                    subscribed_topic_names: BTreeSet::from(["t".to_string()]),
                    assignment: Assignment::new(),
                });
            } else {
                members.remove(&id);
            }
            let result = SimpleAssignor.assign(&members, &counts);
            prop_assert_eq!(result.len(), members.len());
            if members.is_empty() {
                continue;
            }
            let m = members.len();
            let p = usize::try_from(partitions).unwrap_or(0);
            let sharing = m.div_ceil(p);
            let most = (sharing * p).div_ceil(m);
            let mut holders: BTreeMap<i32, usize> = BTreeMap::new();
            for (id, assignment) in &result {
                prop_assert!(size(assignment) >= 1, "{} has nothing: {:?}", id, result);
                prop_assert!(size(assignment) <= most, "{} has too much: {:?}", id, result);
                for partition in assignment.get("t").into_iter().flatten() {
                    *holders.entry(*partition).or_default() += 1;
                }
            }
            prop_assert_eq!(holders.len(), p, "every partition has a member: {:?}", result);
            prop_assert!(holders.values().all(|h| *h <= sharing), "over-shared: {:?}", result);
            for (id, assignment) in &result {
                if let Some(spec) = members.get_mut(id) {
                    spec.assignment = assignment.clone();
                }
            }
            prop_assert_eq!(&SimpleAssignor.assign(&members, &counts), &result, "not stable");
        }
    }
}

proptest! {
    #[test]
    fn any_subscriptions_get_served(
        counts in prop::collection::vec(0..5u32, 3),
        subscriptions in prop::collection::vec(prop::collection::btree_set(0..3usize, 1..3), 1..7),
    ) {
        let names = ["x", "y", "z"];
        let counts: BTreeMap<String, u32> =
            names.iter().zip(&counts).map(|(n, c)| (n.to_string(), *c)).collect();
        let mut members: BTreeMap<String, MemberSubscriptionAndAssignment> = subscriptions
            .iter()
            .enumerate()
            .map(|(i, topics)| {
                (
                    format!("m{i}"),
                    MemberSubscriptionAndAssignment {
                        subscribed_topic_names: topics.iter().map(|t| names[*t].to_string()).collect(),
                        assignment: Assignment::new(),
                    },
                )
            })
            .collect();
        let result = SimpleAssignor.assign(&members, &counts);
        for (id, spec) in &members {
            let assignment = &result[id];
            for (topic, partitions) in assignment {
                prop_assert!(spec.subscribed_topic_names.contains(topic), "{} got unsubscribed {}", id, topic);
                let count = counts.get(topic).copied().unwrap_or(0);
                prop_assert!(partitions.iter().all(|p| u32::try_from(*p).is_ok_and(|p| p < count)));
            }
            let available: u32 = spec.subscribed_topic_names.iter().map(|t| counts[t]).sum();
            if available > 0 {
                prop_assert!(size(assignment) >= 1, "{} has nothing: {:?}", id, result);
            }
        }
        for (topic, count) in &counts {
            let subscribed = members.values().any(|m| m.subscribed_topic_names.contains(topic));
            for p in 0..i32::try_from(*count).unwrap_or(0) {
                let held = result.values().any(|a| a.get(topic).is_some_and(|s| s.contains(&p)));
                prop_assert_eq!(held, subscribed, "{}-{} in {:?}", topic, p, result);
            }
        }
        for (id, assignment) in &result {
            if let Some(spec) = members.get_mut(id) {
                spec.assignment = assignment.clone();
            }
        }
        prop_assert_eq!(&SimpleAssignor.assign(&members, &counts), &result, "not stable");
    }
}
