//! Tests of the record rules: Kafka's topic name rule, partition replica state, configs, ids.

use super::*;

#[test]
fn topic_names_follow_kafka() {
    for ok in [
        "a",
        "A.b_c-9",
        &"x".repeat(249),
        "..a",
        "__consumer_offsets",
    ] {
        assert_eq!(validate_topic_name(ok), Ok(()), "{ok}");
    }
    assert_eq!(validate_topic_name(""), Err(TopicNameError::Empty));
    assert_eq!(validate_topic_name("."), Err(TopicNameError::DotOrDotDot));
    assert_eq!(validate_topic_name(".."), Err(TopicNameError::DotOrDotDot));
    assert_eq!(
        validate_topic_name(&"x".repeat(250)),
        Err(TopicNameError::TooLong { len: 250 })
    );
    for bad in ["../x", "/abs", "a/b", "a b", "é", "a\0", "a\\b"] {
        assert!(
            matches!(
                validate_topic_name(bad),
                Err(TopicNameError::IllegalCharacter { .. })
            ),
            "{bad:?}"
        );
    }
}

fn partition(replicas: Vec<i32>, isr: Vec<i32>, leader: i32) -> MetadataRecord {
    MetadataRecord::Partition {
        topic_id: Uuid::new_v4(),
        partition: 0,
        replicas,
        isr,
        leader,
        leader_epoch: 0,
        partition_epoch: 0,
    }
}

fn problem(r: &MetadataRecord) -> Option<ReplicaProblem> {
    match r.validate() {
        Err(InvalidRecord::Replicas { problem, .. }) => Some(problem),
        _ => None,
    }
}

#[test]
fn partitions_need_sane_replicas_isr_and_leader() {
    use ReplicaProblem as P;
    assert_eq!(partition(vec![1, 2, 3], vec![3, 1], 3).validate(), Ok(()));
    assert_eq!(partition(vec![1, 2], vec![2], -1).validate(), Ok(()));
    assert_eq!(problem(&partition(vec![], vec![], -1)), Some(P::NoReplicas));
    let many: Vec<i32> = (0..).take(MAX_REPLICATION_FACTOR + 1).collect();
    assert_eq!(
        problem(&partition(many, vec![], -1)),
        Some(P::TooManyReplicas)
    );
    assert_eq!(
        problem(&partition(vec![1, -2], vec![1], 1)),
        Some(P::NegativeReplica)
    );
    assert_eq!(
        problem(&partition(vec![1, 1], vec![1], 1)),
        Some(P::DuplicateReplica)
    );
    assert_eq!(
        problem(&partition(vec![1, 2], vec![3], 1)),
        Some(P::IsrNotSubsetOfReplicas)
    );
    assert_eq!(
        problem(&partition(vec![1, 2], vec![1, 1], 1)),
        Some(P::IsrNotSubsetOfReplicas)
    );
    assert_eq!(
        problem(&partition(vec![1, 2], vec![1], 5)),
        Some(P::LeaderNotReplica)
    );
    let mut r = partition(vec![1], vec![1], 1);
    if let MetadataRecord::Partition { partition, .. } = &mut r {
        *partition = -1;
    }
    assert_eq!(r.validate(), Err(InvalidRecord::PartitionId(-1)));
    if let MetadataRecord::Partition {
        partition,
        leader_epoch,
        ..
    } = &mut r
    {
        *partition = 0;
        *leader_epoch = -1;
    }
    assert_eq!(problem(&r), Some(P::NegativeEpoch));
}

#[test]
fn configs_topics_and_ids_are_checked() {
    let config = |t, res: &str, name: &str, len: usize| MetadataRecord::Config {
        resource_type: t,
        resource_name: res.into(),
        name: name.into(),
        value: Some("v".repeat(len)),
    };
    use ConfigResourceType::{Broker, Topic};
    assert_eq!(config(Topic, "t", "retention.ms", 3).validate(), Ok(()));
    assert_eq!(config(Broker, "", "log.retention.ms", 3).validate(), Ok(()));
    assert_eq!(config(Broker, "7", "x", 3).validate(), Ok(()));
    assert!(config(Topic, "../t", "retention.ms", 3).validate().is_err());
    assert!(config(Broker, "-1", "x", 3).validate().is_err());
    assert!(config(Broker, "../b", "x", 3).validate().is_err());
    assert!(config(Topic, "t", "", 3).validate().is_err());
    assert!(config(Topic, "t", "a b", 3).validate().is_err());
    assert!(config(Topic, "t", &"n".repeat(256), 3).validate().is_err());
    assert_eq!(
        config(Topic, "t", "x", MAX_CONFIG_VALUE_LEN + 1).validate(),
        Err(InvalidRecord::ConfigValue {
            len: MAX_CONFIG_VALUE_LEN + 1
        })
    );
    let with = |v: &str| MetadataRecord::Config {
        resource_type: Topic,
        resource_name: "t".into(),
        name: "x".into(),
        value: Some(v.into()),
    };
    assert_eq!(with("-----BEGIN\r\nabc\tdef\n").validate(), Ok(()));
    assert!(with("a\u{0}b").validate().is_err());
    assert!(with("a\u{1b}[31m").validate().is_err());
    let topic = |name: &str, id| MetadataRecord::Topic {
        name: name.into(),
        topic_id: id,
    };
    assert_eq!(
        topic(CLUSTER_METADATA_TOPIC, Uuid::new_v4()).validate(),
        Err(InvalidRecord::ReservedTopic)
    );
    assert_eq!(
        topic("t", Uuid::nil()).validate(),
        Err(InvalidRecord::NilTopicId)
    );
    assert_eq!(
        MetadataRecord::FenceBroker { broker_id: -3 }.validate(),
        Err(InvalidRecord::BrokerId(-3))
    );
    assert_eq!(
        MetadataRecord::ProducerIds {
            broker_id: 1,
            next_producer_id: -5
        }
        .validate(),
        Err(InvalidRecord::ProducerId(-5))
    );
}
