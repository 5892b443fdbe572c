//! Unit tests of the controller's record decisions.

use super::*;

pub(crate) fn reg(id: i32, incarnation: Uuid) -> BrokerRegistration {
    BrokerRegistration {
        broker_id: id,
        incarnation,
        host: "localhost".into(),
        port: 9092 + id,
        rack: None,
        controller_addr: String::new(),
        endpoints: Vec::new(),
        voter: true,
    }
}

/// Brokers 1..=3 registered and unfenced; topic "t" with partition 0 on [1,2,3] led by 1.
fn cluster() -> (MetadataImage, Uuid, Vec<Uuid>) {
    let mut img = MetadataImage::default();
    let incs: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    for id in 1..=3 {
        for r in register(&img, &reg(id, incs[(id - 1) as usize]), false) {
            img.apply(&r);
        }
        img.apply(&MetadataRecord::UnfenceBroker { broker_id: id });
    }
    let topic_id = Uuid::new_v4();
    img.apply(&MetadataRecord::Topic {
        name: "t".into(),
        topic_id,
    });
    img.apply(&MetadataRecord::Partition {
        topic_id,
        partition: 0,
        replicas: vec![1, 2, 3],
        isr: vec![1, 2, 3],
        leader: 1,
        leader_epoch: 5,
        partition_epoch: 7,
    });
    (img, topic_id, incs)
}

fn apply(img: &mut MetadataImage, records: &[MetadataRecord]) {
    for r in records {
        img.apply(r);
    }
}

fn part(img: &MetadataImage, topic_id: Uuid) -> PartitionImage {
    img.topic_by_id(&topic_id).expect("topic").partitions[&0].clone()
}

#[test]
fn fencing_the_leader_moves_leadership_with_a_new_epoch() {
    let (mut img, topic_id, incs) = cluster();
    let records = fence(&img, 1, Some(incs[0]), false);
    assert_eq!(records[0], MetadataRecord::FenceBroker { broker_id: 1 });
    apply(&mut img, &records);
    let p = part(&img, topic_id);
    assert_eq!(p.leader, 2);
    assert_eq!(p.isr, vec![2, 3]);
    assert_eq!(p.leader_epoch, 6);
    assert_eq!(p.partition_epoch, 8);
    assert!(img.brokers[&1].fenced);
    assert!(fence(&img, 1, None, false).is_empty(), "already fenced");
}

#[test]
fn fence_of_a_stale_incarnation_is_a_no_op() {
    let (img, _, _) = cluster();
    assert!(fence(&img, 1, Some(Uuid::new_v4()), false).is_empty());
    assert!(fence(&img, 9, None, false).is_empty());
}

#[test]
fn unfencing_the_last_isr_member_makes_it_leader() {
    let (mut img, topic_id, incs) = cluster();
    for b in [2, 3, 1] {
        let records = fence(&img, b, None, false);
        apply(&mut img, &records);
    }
    let p = part(&img, topic_id);
    assert_eq!(p.leader, crate::replication::NO_LEADER);
    assert_eq!(p.isr, vec![1]);
    let records = unfence(&img, 1, incs[0], false);
    apply(&mut img, &records);
    let p = part(&img, topic_id);
    assert_eq!(p.leader, 1);
    assert!(!img.brokers[&1].fenced);
}

#[test]
fn registration_retry_is_idempotent_and_new_incarnation_fences() {
    let (mut img, topic_id, incs) = cluster();
    assert!(register(&img, &reg(1, incs[0]), false).is_empty());
    let records = register(&img, &reg(1, Uuid::new_v4()), false);
    apply(&mut img, &records);
    assert!(img.brokers[&1].fenced);
    assert_eq!(part(&img, topic_id).leader, 2);
}

#[test]
fn alter_partition_writes_only_changes_and_refuses_unknown() {
    let (img, topic_id, _) = cluster();
    let req = AlterPartitionRequest {
        broker: 1,
        leader_epoch: 5,
        partition_epoch: 7,
        new_isr: vec![1, 2],
    };
    let (records, result) = alter(&img, topic_id, 0, &req);
    assert_eq!(records.len(), 1);
    assert_eq!(result.expect("accepted").isr, vec![1, 2]);
    let same = AlterPartitionRequest {
        new_isr: vec![1, 2, 3],
        ..req.clone()
    };
    let (records, result) = alter(&img, topic_id, 0, &same);
    assert!(records.is_empty());
    assert!(result.is_ok());
    let (_, result) = alter(&img, topic_id, 1, &req);
    assert_eq!(result, Err(6));
    let stale = AlterPartitionRequest {
        partition_epoch: 6,
        ..req
    };
    assert_eq!(alter(&img, topic_id, 0, &stale).1, Err(95));
}

#[test]
fn preferred_election_and_rebalance_move_leadership_back() {
    let (mut img, topic_id, _) = cluster();
    let (records, results) = elect(&img, &[(topic_id, 0), (Uuid::new_v4(), 0)]);
    assert!(records.is_empty());
    assert_eq!(
        results,
        vec![Err(ELECTION_NOT_NEEDED), Err(UNKNOWN_TOPIC_OR_PARTITION)]
    );
    img.apply(&MetadataRecord::Partition {
        topic_id,
        partition: 0,
        replicas: vec![1, 2, 3],
        isr: vec![1, 2, 3],
        leader: 2,
        leader_epoch: 6,
        partition_epoch: 8,
    });
    let records = rebalance(&img);
    assert_eq!(records.len(), 1);
    let (records, results) = elect(&img, &[(topic_id, 0)]);
    assert_eq!(results, vec![Ok(())]);
    apply(&mut img, &records);
    assert_eq!(part(&img, topic_id).leader, 1);
    assert!(rebalance(&img).is_empty());
}

#[test]
fn fencing_the_last_isr_member_is_reported_leaderless() {
    let (mut img, topic_id, incs) = cluster();
    // The ISR shrank to the leader alone; then the leader dies.
    img.apply(&MetadataRecord::Partition {
        topic_id,
        partition: 0,
        replicas: vec![1, 2, 3],
        isr: vec![1],
        leader: 1,
        leader_epoch: 5,
        partition_epoch: 8,
    });
    let records = fence(&img, 1, Some(incs[0]), false);
    assert_eq!(leaderless(&img, &records), vec!["t-0".to_string()]);
    // With the full ISR, another replica takes over: nothing is left leaderless.
    let (img, _, incs) = cluster();
    assert!(leaderless(&img, &fence(&img, 1, Some(incs[0]), false)).is_empty());
}
