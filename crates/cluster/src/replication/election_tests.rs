//! Unit tests for `election`: one test per controller rule.

use super::*;

fn part(replicas: &[i32], isr: &[i32], leader: i32) -> PartitionImage {
    PartitionImage {
        replicas: replicas.to_vec(),
        isr: isr.to_vec(),
        leader,
        leader_epoch: 5,
        partition_epoch: 10,
    }
}

fn live(ids: &'static [i32]) -> impl Fn(i32) -> bool {
    move |r| ids.contains(&r)
}

#[test]
fn fencing_the_leader_elects_the_first_live_isr_member_in_replica_order() {
    let p = part(&[1, 2, 3], &[3, 1, 2], 1);
    let next = on_broker_fenced(&p, 1, &live(&[2, 3]), false).expect("change");
    assert_eq!(next.leader, 2, "replica order, not ISR order");
    assert_eq!(next.isr, vec![3, 2]);
    assert_eq!((next.leader_epoch, next.partition_epoch), (6, 11));
}

#[test]
fn fencing_the_leader_skips_dead_isr_members() {
    let p = part(&[1, 2, 3], &[1, 2, 3], 1);
    let next = on_broker_fenced(&p, 1, &live(&[3]), false).expect("change");
    assert_eq!(next.leader, 3);
}

#[test]
fn fencing_never_picks_the_fenced_broker_even_if_reported_live() {
    let p = part(&[1, 2], &[1, 2], 1);
    let next = on_broker_fenced(&p, 1, &live(&[1, 2]), false).expect("change");
    assert_eq!(next.leader, 2);
    assert_eq!(next.isr, vec![2]);
}

#[test]
fn fencing_the_last_isr_member_keeps_it_in_the_isr_and_leaves_no_leader() {
    let p = part(&[1, 2, 3], &[1], 1);
    let next = on_broker_fenced(&p, 1, &live(&[2, 3]), false).expect("change");
    assert_eq!(next.leader, NO_LEADER);
    assert_eq!(next.isr, vec![1]);
    assert_eq!((next.leader_epoch, next.partition_epoch), (6, 11));
}

#[test]
fn fencing_the_leader_with_no_live_isr_member_leaves_no_leader_and_shrinks_the_isr() {
    let p = part(&[1, 2, 3], &[1, 2], 1);
    let next = on_broker_fenced(&p, 1, &live(&[3]), false).expect("change");
    assert_eq!(next.leader, NO_LEADER);
    assert_eq!(next.isr, vec![2]);
}

#[test]
fn unclean_fencing_picks_the_first_live_replica_as_the_whole_isr() {
    let p = part(&[1, 2, 3], &[1], 1);
    let next = on_broker_fenced(&p, 1, &live(&[3]), true).expect("change");
    assert_eq!(next.leader, 3);
    assert_eq!(next.isr, vec![3]);
    assert_eq!(next.leader_epoch, 6);
}

#[test]
fn unclean_is_not_used_while_an_isr_member_is_live() {
    let p = part(&[1, 2, 3], &[1, 3], 1);
    let next = on_broker_fenced(&p, 1, &live(&[2, 3]), true).expect("change");
    assert_eq!(next.leader, 3);
    assert_eq!(next.isr, vec![3]);
}

#[test]
fn fencing_a_follower_removes_it_from_the_isr_without_a_leader_change() {
    let p = part(&[1, 2, 3], &[1, 2, 3], 1);
    let next = on_broker_fenced(&p, 2, &live(&[1, 3]), false).expect("change");
    assert_eq!(next.leader, 1);
    assert_eq!(next.isr, vec![1, 3]);
    assert_eq!((next.leader_epoch, next.partition_epoch), (5, 11));
}

#[test]
fn fencing_the_last_isr_member_of_a_leaderless_partition_changes_nothing() {
    let p = part(&[1, 2, 3], &[2], NO_LEADER);
    assert_eq!(on_broker_fenced(&p, 2, &live(&[1, 3]), false), None);
}

#[test]
fn fencing_a_broker_outside_the_isr_changes_nothing() {
    let p = part(&[1, 2, 3], &[1, 2], 1);
    assert_eq!(on_broker_fenced(&p, 3, &live(&[1, 2]), false), None);
}

#[test]
fn unfencing_the_last_isr_member_makes_it_leader() {
    let p = part(&[1, 2, 3], &[2], NO_LEADER);
    let next = on_broker_unfenced(&p, 2, &live(&[1, 3]), false).expect("change");
    assert_eq!(next.leader, 2);
    assert_eq!(next.isr, vec![2]);
    assert_eq!((next.leader_epoch, next.partition_epoch), (6, 11));
}

#[test]
fn unfencing_a_non_isr_replica_elects_only_when_unclean() {
    let p = part(&[1, 2, 3], &[2], NO_LEADER);
    assert_eq!(on_broker_unfenced(&p, 3, &live(&[1]), false), None);
    let next = on_broker_unfenced(&p, 3, &live(&[]), true).expect("change");
    assert_eq!(next.leader, 3);
    assert_eq!(next.isr, vec![3]);
}

#[test]
fn unfencing_leaves_a_led_partition_alone() {
    let p = part(&[1, 2, 3], &[1, 2], 1);
    assert_eq!(on_broker_unfenced(&p, 2, &live(&[1]), false), None);
    assert_eq!(on_broker_unfenced(&p, 3, &live(&[1]), true), None);
}

#[test]
fn unfencing_a_non_replica_changes_nothing() {
    let p = part(&[1, 2, 3], &[2], NO_LEADER);
    assert_eq!(on_broker_unfenced(&p, 9, &live(&[]), true), None);
}

fn req(broker: i32, leader_epoch: i32, partition_epoch: i32, isr: &[i32]) -> AlterPartitionRequest {
    AlterPartitionRequest {
        broker,
        leader_epoch,
        partition_epoch,
        new_isr: isr.to_vec(),
    }
}

#[test]
fn alter_partition_applies_a_valid_isr_change() {
    let p = part(&[1, 2, 3], &[1, 2], 1);
    let next = alter_partition(&p, &req(1, 5, 10, &[1, 2, 3]), &live(&[1, 2, 3])).expect("ok");
    assert_eq!(next.isr, vec![1, 2, 3]);
    assert_eq!(
        (next.leader, next.leader_epoch, next.partition_epoch),
        (1, 5, 11)
    );
}

#[test]
fn alter_partition_with_the_same_isr_returns_the_partition_unchanged() {
    let p = part(&[1, 2, 3], &[1, 2], 1);
    let next = alter_partition(&p, &req(1, 5, 10, &[1, 2]), &live(&[1, 2, 3])).expect("ok");
    assert_eq!(next, p);
}

#[test]
fn alter_partition_fences_another_leader_epoch() {
    let p = part(&[1, 2, 3], &[1, 2], 1);
    let e = alter_partition(&p, &req(1, 4, 10, &[1]), &live(&[1, 2, 3]));
    assert_eq!(e, Err(AlterPartitionError::FencedLeaderEpoch));
    // A deposed leader with an old epoch is fenced, not told it is not the leader (Kafka order).
    let e = alter_partition(&p, &req(2, 4, 10, &[2]), &live(&[1, 2, 3]));
    assert_eq!(e, Err(AlterPartitionError::FencedLeaderEpoch));
}

#[test]
fn alter_partition_refuses_a_sender_that_is_not_the_leader() {
    let p = part(&[1, 2, 3], &[1, 2], 1);
    let e = alter_partition(&p, &req(2, 5, 10, &[1, 2]), &live(&[1, 2, 3]));
    assert_eq!(e, Err(AlterPartitionError::NotLeaderOrFollower));
}

#[test]
fn alter_partition_refuses_a_stale_partition_epoch() {
    let p = part(&[1, 2, 3], &[1, 2], 1);
    let e = alter_partition(&p, &req(1, 5, 9, &[1]), &live(&[1, 2, 3]));
    assert_eq!(e, Err(AlterPartitionError::InvalidUpdateVersion));
}

#[test]
fn alter_partition_refuses_malformed_isrs() {
    let p = part(&[1, 2, 3], &[1, 2], 1);
    let all = live(&[1, 2, 3, 4]);
    for isr in [&[2, 3][..], &[1, 4], &[1, 2, 2], &[]] {
        let e = alter_partition(&p, &req(1, 5, 10, isr), &all);
        assert_eq!(e, Err(AlterPartitionError::InvalidRequest), "isr {isr:?}");
    }
}

#[test]
fn alter_partition_refuses_fenced_members() {
    let p = part(&[1, 2, 3], &[1, 2], 1);
    let e = alter_partition(&p, &req(1, 5, 10, &[1, 2, 3]), &live(&[1, 2]));
    assert_eq!(e, Err(AlterPartitionError::IneligibleReplica));
}

#[test]
fn alter_partition_error_codes_are_kafkas() {
    use AlterPartitionError::*;
    let codes: Vec<i16> = [
        NotLeaderOrFollower,
        FencedLeaderEpoch,
        InvalidUpdateVersion,
        IneligibleReplica,
        InvalidRequest,
    ]
    .iter()
    .map(AlterPartitionError::kafka_code)
    .collect();
    assert_eq!(codes, vec![6, 74, 95, 107, 42]);
}

#[test]
fn preferred_election_moves_leadership_to_a_live_in_sync_first_replica() {
    let p = part(&[1, 2, 3], &[2, 1], 2);
    let next = elect_preferred(&p, &live(&[1, 2])).expect("change");
    assert_eq!(next.leader, 1);
    assert_eq!(next.isr, vec![2, 1]);
    assert_eq!((next.leader_epoch, next.partition_epoch), (6, 11));
}

#[test]
fn preferred_election_does_nothing_when_not_possible_or_needed() {
    assert_eq!(
        elect_preferred(&part(&[1, 2], &[1, 2], 1), &live(&[1, 2])),
        None
    );
    assert_eq!(
        elect_preferred(&part(&[1, 2], &[2], 2), &live(&[1, 2])),
        None
    );
    assert_eq!(
        elect_preferred(&part(&[1, 2], &[1, 2], 2), &live(&[2])),
        None
    );
    assert_eq!(
        elect_preferred(&part(&[], &[], NO_LEADER), &live(&[1])),
        None
    );
}

#[test]
fn placement_matches_kafkas_rack_unaware_assignment() {
    let got = place_replicas(10, 3, &[0, 1, 2, 3, 4], 0);
    let want: Vec<Vec<i32>> = vec![
        vec![0, 1, 2],
        vec![1, 2, 3],
        vec![2, 3, 4],
        vec![3, 4, 0],
        vec![4, 0, 1],
        vec![0, 2, 3],
        vec![1, 3, 4],
        vec![2, 4, 0],
        vec![3, 0, 1],
        vec![4, 1, 2],
    ];
    assert_eq!(got, want);
}

#[test]
fn placement_honours_the_start_index_and_broker_ids() {
    let got = place_replicas(3, 2, &[10, 20, 30], 1);
    assert_eq!(got, vec![vec![20, 10], vec![30, 20], vec![10, 30]]);
}

#[test]
fn placement_spreads_leaders_and_never_repeats_a_broker() {
    let brokers = [1, 2, 3, 4];
    let got = place_replicas(8, 4, &brokers, 2);
    for b in brokers {
        assert_eq!(
            got.iter().filter(|r| r[0] == b).count(),
            2,
            "leaders of {b}"
        );
    }
    for r in &got {
        let mut s = r.clone();
        s.sort_unstable();
        s.dedup();
        assert_eq!(s.len(), 4, "{r:?}");
    }
}

#[test]
fn placement_handles_degenerate_inputs() {
    assert_eq!(place_replicas(2, 1, &[7], 0), vec![vec![7], vec![7]]);
    assert_eq!(
        place_replicas(2, 1, &[], 0),
        vec![Vec::<i32>::new(), Vec::new()]
    );
    assert!(place_replicas(0, 3, &[1, 2, 3], 0).is_empty());
}
