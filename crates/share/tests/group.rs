//! ShareGroupHeartbeat scenarios: joining, epochs, fencing, leaving, sessions, rebalancing.

use std::collections::{BTreeMap, BTreeSet};

use strom_share::{
    Assignment, ShareGroup, ShareGroupConfig, ShareGroupError, ShareGroupState,
    FENCED_MEMBER_EPOCH, GROUP_MAX_SIZE_REACHED, INVALID_REQUEST, UNKNOWN_MEMBER_ID,
};

fn topics(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

fn metadata(counts: &[(&str, u32)]) -> impl Fn(&str) -> Option<u32> {
    let map: BTreeMap<String, u32> = counts.iter().map(|(t, c)| (t.to_string(), *c)).collect();
    move |topic| map.get(topic).copied()
}

fn partitions(assignment: &Assignment, topic: &str) -> BTreeSet<i32> {
    assignment.get(topic).cloned().unwrap_or_default()
}

fn code<T>(result: Result<T, ShareGroupError>) -> Option<i16> {
    result.err().map(|e| e.code())
}

#[test]
fn a_member_joins_and_gets_every_partition() {
    let mut group = ShareGroup::new("g", ShareGroupConfig::default());
    assert_eq!(group.state(), ShareGroupState::Empty);
    let t = topics(&["t"]);
    let out = group
        .heartbeat("a", 0, Some(&t), 0, metadata(&[("t", 3)]))
        .expect("join");
    assert_eq!(out.member_id, "a");
    assert_eq!(out.member_epoch, 1);
    assert_eq!(out.heartbeat_interval_ms, 5_000);
    let assignment = out.assignment.expect("sent on join");
    assert_eq!(partitions(&assignment, "t"), BTreeSet::from([0, 1, 2]));
    assert_eq!(group.group_epoch(), 1);
    assert_eq!(group.state(), ShareGroupState::Stable);

    let again = group
        .heartbeat("a", 1, None, 1_000, metadata(&[("t", 3)]))
        .expect("heartbeat");
    assert_eq!(again.member_epoch, 1);
    assert_eq!(again.assignment, None, "unchanged: not sent");
}

#[test]
fn more_members_than_partitions_share_partitions() {
    let mut group = ShareGroup::new("g", ShareGroupConfig::default());
    let t = topics(&["t"]);
    let md = metadata(&[("t", 2)]);
    for (i, member) in ["a", "b", "c", "d"].iter().enumerate() {
        let out = group.heartbeat(member, 0, Some(&t), 0, &md).expect("join");
        assert_eq!(out.member_epoch, i32::try_from(i + 1).expect("small"));
    }
    // The earlier members catch up with the latest epoch on their next heartbeat.
    let mut holders: BTreeMap<i32, usize> = BTreeMap::new();
    for member in ["a", "b", "c", "d"] {
        let current = group
            .member(member)
            .map(|m| m.member_epoch)
            .expect("member");
        let out = group
            .heartbeat(member, current, None, 1, &md)
            .expect("heartbeat");
        assert_eq!(out.member_epoch, 4);
        let assigned = group
            .member(member)
            .expect("member")
            .assigned_partitions
            .clone();
        assert_eq!(
            partitions(&assigned, "t").len(),
            1,
            "{member}: {assigned:?}"
        );
        for p in partitions(&assigned, "t") {
            *holders.entry(p).or_default() += 1;
        }
    }
    assert_eq!(holders, BTreeMap::from([(0, 2), (1, 2)]));
}

#[test]
fn invalid_heartbeats_are_invalid_request() {
    let mut group = ShareGroup::new("g", ShareGroupConfig::default());
    let md = metadata(&[("t", 1)]);
    let t = topics(&["t"]);
    assert_eq!(
        code(group.heartbeat("", 0, Some(&t), 0, &md)),
        Some(INVALID_REQUEST)
    );
    assert_eq!(
        code(group.heartbeat("a", 0, None, 0, &md)),
        Some(INVALID_REQUEST)
    );
    assert_eq!(
        code(group.heartbeat("a", 0, Some(&[]), 0, &md)),
        Some(INVALID_REQUEST)
    );
    assert_eq!(
        code(group.heartbeat("a", -2, None, 0, &md)),
        Some(INVALID_REQUEST)
    );
    assert_eq!(group.members().len(), 0);
}

#[test]
fn unknown_members_and_wrong_epochs_are_refused() {
    let mut group = ShareGroup::new("g", ShareGroupConfig::default());
    let md = metadata(&[("t", 1)]);
    let t = topics(&["t"]);
    assert_eq!(
        code(group.heartbeat("x", 3, None, 0, &md)),
        Some(UNKNOWN_MEMBER_ID)
    );
    assert_eq!(
        code(group.heartbeat("x", -1, None, 0, &md)),
        Some(UNKNOWN_MEMBER_ID)
    );

    group.heartbeat("a", 0, Some(&t), 0, &md).expect("join a");
    assert_eq!(
        code(group.heartbeat("a", 2, None, 0, &md)),
        Some(FENCED_MEMBER_EPOCH)
    );
    group.heartbeat("b", 0, Some(&t), 0, &md).expect("join b");
    let out = group.heartbeat("a", 1, None, 0, &md).expect("catch up");
    assert_eq!(out.member_epoch, 2);
    assert_eq!(out.assignment, None, "one partition, shared: a keeps it");
    // The previous epoch is still accepted (its response may have been lost)...
    assert!(group.heartbeat("a", 1, None, 0, &md).is_ok());
    // ...but nothing older.
    group.heartbeat("c", 0, Some(&t), 0, &md).expect("join c");
    group.heartbeat("a", 2, None, 0, &md).expect("catch up");
    assert_eq!(
        code(group.heartbeat("a", 1, None, 0, &md)),
        Some(FENCED_MEMBER_EPOCH)
    );
    // Epoch 0 rejoins whatever the epoch.
    let rejoin = group.heartbeat("a", 0, Some(&t), 0, &md).expect("rejoin");
    assert_eq!(rejoin.member_epoch, 3);
    assert!(rejoin.assignment.is_some(), "sent on a full request");
}

#[test]
fn leaving_bumps_the_epoch_and_rebalances_the_rest() {
    let mut group = ShareGroup::new("g", ShareGroupConfig::default());
    let md = metadata(&[("t", 4)]);
    let t = topics(&["t"]);
    group.heartbeat("a", 0, Some(&t), 0, &md).expect("join a");
    group.heartbeat("b", 0, Some(&t), 0, &md).expect("join b");
    group.heartbeat("a", 1, None, 0, &md).expect("catch up");
    assert_eq!(
        partitions(&group.member("a").expect("a").assigned_partitions, "t").len(),
        2
    );
    let out = group.heartbeat("b", -1, None, 0, &md).expect("leave");
    assert_eq!(out.member_epoch, -1);
    assert_eq!(group.group_epoch(), 3);
    assert!(group.member("b").is_none());
    let out = group.heartbeat("a", 2, None, 0, &md).expect("heartbeat");
    assert_eq!(out.member_epoch, 3);
    assert_eq!(
        partitions(&out.assignment.expect("changed"), "t"),
        BTreeSet::from([0, 1, 2, 3])
    );
}

#[test]
fn sessions_expire_without_heartbeats() {
    let config = ShareGroupConfig {
        session_timeout_ms: 45_000,
        ..ShareGroupConfig::default()
    };
    let mut group = ShareGroup::new("g", config);
    let md = metadata(&[("t", 1)]);
    let t = topics(&["t"]);
    group.heartbeat("a", 0, Some(&t), 0, &md).expect("join a");
    group
        .heartbeat("b", 0, Some(&t), 10_000, &md)
        .expect("join b");
    assert_eq!(group.next_session_deadline(), Some(45_000));
    assert!(group.expire_sessions(44_999).is_empty());
    group
        .heartbeat("b", 2, None, 40_000, &md)
        .expect("heartbeat b");
    assert_eq!(group.expire_sessions(45_000), vec!["a".to_string()]);
    assert_eq!(group.next_session_deadline(), Some(85_000));
    assert_eq!(
        code(group.heartbeat("a", 1, None, 46_000, &md)),
        Some(UNKNOWN_MEMBER_ID)
    );
    assert_eq!(group.expire_sessions(85_000), vec!["b".to_string()]);
    assert_eq!(group.state(), ShareGroupState::Empty);
    assert_eq!(group.assignment_epoch(), group.group_epoch());
}

#[test]
fn the_group_size_is_bounded() {
    let config = ShareGroupConfig {
        max_size: 2,
        ..ShareGroupConfig::default()
    };
    let mut group = ShareGroup::new("g", config);
    let md = metadata(&[("t", 1)]);
    let t = topics(&["t"]);
    group.heartbeat("a", 0, Some(&t), 0, &md).expect("join a");
    group.heartbeat("b", 0, Some(&t), 0, &md).expect("join b");
    assert_eq!(
        code(group.heartbeat("c", 0, Some(&t), 0, &md)),
        Some(GROUP_MAX_SIZE_REACHED)
    );
    assert!(
        group.heartbeat("a", 0, Some(&t), 0, &md).is_ok(),
        "members may rejoin"
    );
}

#[test]
fn new_partitions_and_subscription_changes_rebalance() {
    let mut group = ShareGroup::new("g", ShareGroupConfig::default());
    let t = topics(&["t"]);
    group
        .heartbeat("a", 0, Some(&t), 0, metadata(&[("t", 1), ("u", 2)]))
        .expect("join");
    let out = group
        .heartbeat("a", 1, None, 0, metadata(&[("t", 3), ("u", 2)]))
        .expect("grown");
    assert_eq!(
        out.member_epoch, 2,
        "a partition count change bumps the epoch"
    );
    assert_eq!(
        partitions(&out.assignment.expect("changed"), "t"),
        BTreeSet::from([0, 1, 2])
    );
    let both = topics(&["t", "u"]);
    let out = group
        .heartbeat("a", 2, Some(&both), 0, metadata(&[("t", 3), ("u", 2)]))
        .expect("subscribe");
    assert_eq!(out.member_epoch, 3);
    let assignment = out.assignment.expect("changed");
    assert_eq!(partitions(&assignment, "u"), BTreeSet::from([0, 1]));
    assert_eq!(group.subscribed_topic_names(), BTreeSet::from(["t", "u"]));
    let missing = topics(&["nope"]);
    let out = group
        .heartbeat("a", 3, Some(&missing), 0, metadata(&[("t", 3), ("u", 2)]))
        .expect("subscribe to a missing topic");
    assert_eq!(out.assignment, Some(Assignment::new()));
}
