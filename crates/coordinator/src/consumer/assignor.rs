//! Server-side assignors of KIP-848 consumer groups: `uniform` (the default; balanced and
//! sticky) and `range` (per topic, contiguous ranges in member-id order).
//!
//! Both are pure functions of the members' subscriptions, the topic partition counts and (for
//! `uniform`) the previous target assignment, and iterate only over `BTreeMap`s, so the same input
//! always gives the same output: the coordinator recomputes a target after a restart exactly as
//! before it. Neither knows about reconciliation: a partition moving from A to B is simply in B's
//! new target; `reconcile.rs` makes B wait until A has revoked it.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

/// Partitions per topic id.
pub(crate) type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

/// The assignors this coordinator serves (`group.consumer.assignors` may list a subset).
pub const ASSIGNORS: &[&str] = &["uniform", "range"];

/// What an assignor sees of one member: the topic ids it is subscribed to (only topics that exist).
#[derive(Debug, Clone, Default)]
pub(crate) struct MemberSubscription {
    pub(crate) topics: BTreeSet<Uuid>,
}

/// Runs the named assignor (unknown names fall back to `uniform`).
pub(crate) fn assign(
    name: &str,
    members: &BTreeMap<String, MemberSubscription>,
    partitions: &BTreeMap<Uuid, i32>,
    previous: &BTreeMap<String, Assignment>,
) -> BTreeMap<String, Assignment> {
    match name {
        "range" => range(members, partitions),
        _ => uniform(members, partitions, previous),
    }
}

/// `range`: for each topic, its subscribers in member-id order get contiguous ranges, the first
/// `partitions % subscribers` one partition more.
pub(crate) fn range(
    members: &BTreeMap<String, MemberSubscription>,
    partitions: &BTreeMap<Uuid, i32>,
) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = members
        .keys()
        .map(|m| (m.clone(), Assignment::new()))
        .collect();
    for (topic, count) in partitions {
        let subs: Vec<&String> = members
            .iter()
            .filter(|(_, s)| s.topics.contains(topic))
            .map(|(m, _)| m)
            .collect();
        if subs.is_empty() || *count <= 0 {
            continue;
        }
        let n = i32::try_from(subs.len()).unwrap_or(i32::MAX);
        let (quota, extra) = (count / n, count % n);
        let mut next = 0;
        for (i, m) in subs.into_iter().enumerate() {
            let i = i32::try_from(i).unwrap_or(i32::MAX);
            let take = quota + i32::from(i < extra);
            if take > 0 {
                if let Some(a) = out.get_mut(m) {
                    a.entry(*topic).or_default().extend(next..next + take);
                }
            }
            next += take;
        }
    }
    out
}

/// `uniform`: every partition of a subscribed topic goes to one subscriber, members end within one
/// partition of each other where subscriptions allow, and a partition stays with its previous
/// owner unless balance requires a move.
///
/// 1. keep each previous (topic, partition) whose owner is still subscribed to the topic;
/// 2. give every unowned partition (in topic, partition order) to its least-loaded subscriber;
/// 3. while some member has at least two more partitions than a subscriber of one of its topics,
///    move one (from the highest partition of the most-loaded) — this both trims oversized sticky
///    assignments and balances heterogeneous subscriptions.
pub(crate) fn uniform(
    members: &BTreeMap<String, MemberSubscription>,
    partitions: &BTreeMap<Uuid, i32>,
    previous: &BTreeMap<String, Assignment>,
) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = members
        .keys()
        .map(|m| (m.clone(), Assignment::new()))
        .collect();
    let mut owned: BTreeSet<(Uuid, i32)> = BTreeSet::new();
    for (m, prev) in previous {
        let Some(sub) = members.get(m) else { continue };
        for (topic, ps) in prev {
            let Some(count) = partitions.get(topic) else {
                continue;
            };
            if !sub.topics.contains(topic) {
                continue;
            }
            for p in ps.iter().filter(|p| **p < *count) {
                if owned.insert((*topic, *p)) {
                    if let Some(a) = out.get_mut(m) {
                        a.entry(*topic).or_default().insert(*p);
                    }
                }
            }
        }
    }
    let load = |out: &BTreeMap<String, Assignment>, m: &str| -> usize {
        out.get(m)
            .map_or(0, |a| a.values().map(BTreeSet::len).sum())
    };
    for (topic, count) in partitions {
        let subs: Vec<&String> = members
            .iter()
            .filter(|(_, s)| s.topics.contains(topic))
            .map(|(m, _)| m)
            .collect();
        if subs.is_empty() {
            continue;
        }
        for p in 0..*count {
            if owned.contains(&(*topic, p)) {
                continue;
            }
            let Some(best) = subs.iter().min_by_key(|m| (load(&out, m), **m)) else {
                continue;
            };
            if let Some(a) = out.get_mut(*best) {
                a.entry(*topic).or_default().insert(p);
            }
        }
    }
    // Balance: bounded by the number of partitions (each move lowers the spread).
    let total: i64 = partitions.values().map(|c| i64::from(*c)).sum();
    for _ in 0..total.max(0) {
        let mut by_load: Vec<(usize, &String)> =
            members.keys().map(|m| (load(&out, m), m)).collect();
        by_load.sort();
        let mut moved = false;
        'outer: for (hi_load, hi) in by_load.iter().rev() {
            for (lo_load, lo) in by_load.iter() {
                if hi_load < &(lo_load + 2) {
                    break;
                }
                let Some(lo_sub) = members.get(*lo) else {
                    continue;
                };
                let candidate = out.get(*hi).and_then(|a| {
                    a.iter()
                        .rev()
                        .filter(|(t, _)| lo_sub.topics.contains(t))
                        .find_map(|(t, ps)| ps.iter().next_back().map(|p| (*t, *p)))
                });
                if let Some((t, p)) = candidate {
                    if let Some(a) = out.get_mut(*hi) {
                        if let Some(ps) = a.get_mut(&t) {
                            ps.remove(&p);
                            if ps.is_empty() {
                                a.remove(&t);
                            }
                        }
                    }
                    if let Some(a) = out.get_mut(*lo) {
                        a.entry(t).or_default().insert(p);
                    }
                    moved = true;
                    break 'outer;
                }
            }
        }
        if !moved {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(n: u8) -> Uuid {
        Uuid::from_bytes([n; 16])
    }

    fn subs(list: &[(&str, &[u8])]) -> BTreeMap<String, MemberSubscription> {
        list.iter()
            .map(|(m, ts)| {
                (
                    m.to_string(),
                    MemberSubscription {
                        topics: ts.iter().map(|n| t(*n)).collect(),
                    },
                )
            })
            .collect()
    }

    fn count(a: &Assignment) -> usize {
        a.values().map(BTreeSet::len).sum()
    }

    /// Every partition of every subscribed topic exactly once.
    fn check_complete(out: &BTreeMap<String, Assignment>, partitions: &BTreeMap<Uuid, i32>) {
        let mut seen = BTreeSet::new();
        for a in out.values() {
            for (topic, ps) in a {
                for p in ps {
                    assert!(seen.insert((*topic, *p)), "{topic} {p} assigned twice");
                }
            }
        }
        let want: usize = partitions.values().map(|c| *c as usize).sum();
        assert_eq!(seen.len(), want);
    }

    #[test]
    fn uniform_balances_six_partitions_over_three() {
        let members = subs(&[("a", &[1]), ("b", &[1]), ("c", &[1])]);
        let parts = BTreeMap::from([(t(1), 6)]);
        let out = uniform(&members, &parts, &BTreeMap::new());
        check_complete(&out, &parts);
        assert!(out.values().all(|a| count(a) == 2), "{out:?}");
    }

    #[test]
    fn uniform_is_sticky_when_a_member_leaves() {
        let parts = BTreeMap::from([(t(1), 6)]);
        let three = subs(&[("a", &[1]), ("b", &[1]), ("c", &[1])]);
        let before = uniform(&three, &parts, &BTreeMap::new());
        let two = subs(&[("a", &[1]), ("b", &[1])]);
        let after = uniform(&two, &parts, &before);
        check_complete(&after, &parts);
        for m in ["a", "b"] {
            assert!(before[m]
                .iter()
                .all(|(topic, ps)| ps.is_subset(&after[m][topic])));
            assert_eq!(count(&after[m]), 3);
        }
    }

    #[test]
    fn uniform_moves_only_what_balance_needs_when_a_member_joins() {
        let parts = BTreeMap::from([(t(1), 6)]);
        let two = subs(&[("a", &[1]), ("b", &[1])]);
        let before = uniform(&two, &parts, &BTreeMap::new());
        let three = subs(&[("a", &[1]), ("b", &[1]), ("c", &[1])]);
        let after = uniform(&three, &parts, &before);
        check_complete(&after, &parts);
        assert!(after.values().all(|a| count(a) == 2), "{after:?}");
        for m in ["a", "b"] {
            assert!(after[m][&t(1)].is_subset(&before[m][&t(1)]));
        }
    }

    #[test]
    fn uniform_heterogeneous_subscriptions() {
        let members = subs(&[("a", &[1, 2]), ("b", &[2])]);
        let parts = BTreeMap::from([(t(1), 2), (t(2), 4)]);
        let out = uniform(&members, &parts, &BTreeMap::new());
        check_complete(&out, &parts);
        assert_eq!(count(&out["a"]), 3);
        assert_eq!(count(&out["b"]), 3);
        assert!(!out["b"].contains_key(&t(1)));
    }

    #[test]
    fn uniform_is_deterministic() {
        let members = subs(&[("x", &[1, 2]), ("y", &[1]), ("z", &[2])]);
        let parts = BTreeMap::from([(t(1), 7), (t(2), 5)]);
        let a = uniform(&members, &parts, &BTreeMap::new());
        let b = uniform(&members, &parts, &BTreeMap::new());
        assert_eq!(a, b);
        check_complete(&a, &parts);
    }

    #[test]
    fn range_gives_contiguous_ranges() {
        let members = subs(&[("a", &[1]), ("b", &[1]), ("c", &[1])]);
        let parts = BTreeMap::from([(t(1), 7)]);
        let out = range(&members, &parts);
        check_complete(&out, &parts);
        assert_eq!(out["a"][&t(1)], BTreeSet::from([0, 1, 2]));
        assert_eq!(out["b"][&t(1)], BTreeSet::from([3, 4]));
        assert_eq!(out["c"][&t(1)], BTreeSet::from([5, 6]));
    }

    #[test]
    fn range_skips_unsubscribed_topics() {
        let members = subs(&[("a", &[1]), ("b", &[2])]);
        let parts = BTreeMap::from([(t(1), 2), (t(2), 2), (t(3), 4)]);
        let out = range(&members, &parts);
        assert_eq!(out["a"], Assignment::from([(t(1), BTreeSet::from([0, 1]))]));
        assert_eq!(out["b"], Assignment::from([(t(2), BTreeSet::from([0, 1]))]));
    }
}
