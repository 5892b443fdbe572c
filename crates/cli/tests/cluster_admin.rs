//! A 3-node cluster of real `strom serve` processes, its administration and edges: a broker-only
//! node, preferred leader election (ElectLeaders and automatic rebalance), ISR shrink and expansion
//! on follower lag, KIP-951 leader hints from a non-leader, and metadata that survives kill -9 of
//! every node.

mod common;

use std::time::Duration;

use common::client_config;
use common::cluster::{
    acks_all_producer, create_replicated_topic, produce_range, StromCluster, FAST_FAILOVER, TOPIC,
};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::FutureRecord;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_only_node_joins_and_leads_replicas() {
    let mut cluster = StromCluster::start(3, FAST_FAILOVER);
    let id = cluster.add_broker_only(FAST_FAILOVER);
    assert_eq!(id, 4);
    let bootstrap = cluster.bootstrap();
    // Four partitions on four brokers: placement gives the new node a preferred leadership.
    let admin: AdminClient<DefaultClientContext> =
        client_config(&bootstrap).create().expect("admin client");
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(20)));
    for r in admin
        .create_topics(
            &[NewTopic::new("spread", 4, TopicReplication::Fixed(2))],
            &opts,
        )
        .await
        .expect("CreateTopics")
    {
        r.unwrap_or_else(|(t, e)| panic!("creating {t}: {e:?}"));
    }
    let led_by_4: Vec<i32> = (0..4)
        .filter(|p| {
            cluster
                .partition("spread", *p)
                .is_some_and(|v| v.leader == 4)
        })
        .collect();
    assert!(!led_by_4.is_empty(), "the broker-only node leads nothing");
    let p = led_by_4[0];
    cluster.wait_for("ISR of 2", |c| {
        c.partition("spread", p).is_some_and(|v| v.isr.len() == 2)
    });
    let producer = acks_all_producer(&bootstrap);
    for i in 0..20 {
        let d = producer
            .send(
                FutureRecord::<(), _>::to("spread")
                    .partition(p)
                    .payload(&format!("v{i}")),
                Duration::from_secs(20),
            )
            .await
            .expect("acks=all through the broker-only leader");
        assert_eq!(d.offset, i64::from(i));
    }
    cluster.assert_no_panic();
}

/// ElectLeaders (preferred) for `topic`-0 through node 1; the partition's error code.
fn elect_preferred(cluster: &mut StromCluster, topic: &str) -> i16 {
    use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
    use kafka_protocol::messages::{ApiKey, ElectLeadersRequest, ElectLeadersResponse, TopicName};
    use kafka_protocol::protocol::StrBytes;
    let addr = cluster
        .nodes
        .iter()
        .find(|n| n.is_running())
        .expect("a running node")
        .addr()
        .to_string();
    let mut conn = common::RawConn::connect(&addr);
    let resp: ElectLeadersResponse = conn.request(
        ApiKey::ElectLeaders,
        2,
        9,
        &ElectLeadersRequest::default()
            .with_election_type(0)
            .with_timeout_ms(10_000)
            .with_topic_partitions(Some(vec![TopicPartitions::default()
                .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(vec![0])])),
    );
    resp.replica_election_results[0].partition_result[0].error_code
}

/// The preferred leader (first replica) is killed, comes back and catches up; ElectLeaders moves
/// leadership back to it (then answers ELECTION_NOT_NEEDED); with `auto.leader.rebalance.enable`
/// the controller does the same on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leadership_returns_to_the_preferred_replica() {
    for auto in [false, true] {
        let mut args: Vec<&str> = FAST_FAILOVER.to_vec();
        args.extend([
            "--set",
            if auto {
                "auto.leader.rebalance.enable=true"
            } else {
                "auto.leader.rebalance.enable=false"
            },
            "--set",
            "leader.imbalance.check.interval.seconds=1",
        ]);
        let mut cluster = StromCluster::start(3, &args);
        let bootstrap = cluster.bootstrap();
        create_replicated_topic(&bootstrap, TOPIC, 1, "1").await;
        cluster.wait_for("ISR of 3", |c| {
            c.partition(TOPIC, 0).is_some_and(|p| p.isr.len() == 3)
        });
        let preferred = cluster.partition(TOPIC, 0).expect("partition").replicas[0];
        assert_eq!(
            cluster.partition(TOPIC, 0).expect("partition").leader,
            preferred
        );
        cluster.node(preferred).kill9();
        cluster.wait_for("another leader", |c| {
            c.partition(TOPIC, 0)
                .is_some_and(|p| p.leader > 0 && p.leader != preferred)
        });
        cluster.node(preferred).start_again();
        cluster.wait_for("the preferred replica back in the ISR", |c| {
            c.partition(TOPIC, 0).is_some_and(|p| p.isr.len() == 3)
        });
        if auto {
            cluster.wait_for("automatic rebalance to the preferred leader", |c| {
                c.partition(TOPIC, 0).is_some_and(|p| p.leader == preferred)
            });
        } else {
            assert_ne!(
                cluster.partition(TOPIC, 0).expect("partition").leader,
                preferred,
                "moved back without being asked"
            );
            assert_eq!(elect_preferred(&mut cluster, TOPIC), 0);
            cluster.wait_for("the preferred leader after ElectLeaders", |c| {
                c.partition(TOPIC, 0).is_some_and(|p| p.leader == preferred)
            });
            // ELECTION_NOT_NEEDED.
            assert_eq!(elect_preferred(&mut cluster, TOPIC), 84);
        }
        cluster.assert_no_panic();
    }
}

/// A frozen follower leaves the ISR after `replica.lag.time.max.ms` (long before its session
/// expires), acks=all continues with the rest (min.insync.replicas=2), and the follower rejoins
/// the ISR once it catches up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_follower_leaves_and_rejoins_the_isr() {
    let mut args: Vec<&str> = FAST_FAILOVER.to_vec();
    // Sessions outlive the lag time: the ISR shrinks because of lag, not fencing.
    args.extend(["--set", "broker.session.timeout.ms=60000"]);
    let mut cluster = StromCluster::start(3, &args);
    let bootstrap = cluster.bootstrap();
    create_replicated_topic(&bootstrap, TOPIC, 1, "2").await;
    cluster.wait_for("ISR of 3", |c| {
        c.partition(TOPIC, 0).is_some_and(|p| p.isr.len() == 3)
    });
    let view = cluster.partition(TOPIC, 0).expect("partition");
    let controller = cluster.controller();
    // Freeze a follower that is not the active controller (the quorum must keep its leader).
    let follower = *view
        .replicas
        .iter()
        .find(|&&r| r != view.leader && r != controller)
        .expect("a follower that is not the controller");
    cluster.node(follower).pause();
    cluster.wait_for("the frozen follower out of the ISR", |c| {
        c.partition(TOPIC, 0)
            .is_some_and(|p| p.isr.len() == 2 && !p.isr.contains(&follower))
    });
    let producer = acks_all_producer(&bootstrap);
    let acked = produce_range(&producer, 0, 200, None, &mut || {}).await;
    assert_eq!(acked.len(), 200, "acks=all with two in-sync replicas");
    cluster.node(follower).resume();
    cluster.wait_for("the follower back in the ISR", |c| {
        c.partition(TOPIC, 0).is_some_and(|p| p.isr.len() == 3)
    });
    let leader = cluster.partition(TOPIC, 0).expect("partition").leader;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while cluster.log_bytes(follower, TOPIC, 0) != cluster.log_bytes(leader, TOPIC, 0) {
        assert!(
            std::time::Instant::now() < deadline,
            "the follower did not catch up"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    cluster.assert_no_panic();
}

/// A broker that does not lead a partition answers Produce and Fetch with
/// NOT_LEADER_OR_FOLLOWER naming the current leader (KIP-951), and Produce's node endpoints give
/// its address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_leader_answers_name_the_leader() {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{
        ApiKey, FetchRequest, FetchResponse, ProduceRequest, ProduceResponse, TopicName,
    };
    use kafka_protocol::protocol::StrBytes;
    let mut cluster = StromCluster::start(3, FAST_FAILOVER);
    let bootstrap = cluster.bootstrap();
    create_replicated_topic(&bootstrap, TOPIC, 1, "1").await;
    let view = cluster.partition(TOPIC, 0).expect("partition");
    let other = *view
        .replicas
        .iter()
        .find(|&&r| r != view.leader)
        .expect("a follower");
    let leader_addr = cluster.node(view.leader).addr().to_string();
    let mut conn = common::RawConn::connect(cluster.node(other).addr());
    let name = TopicName(StrBytes::from_static_str(TOPIC));
    let produce: ProduceResponse = conn.request(
        ApiKey::Produce,
        11,
        1,
        &ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(5000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(name.clone())
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(bytes::Bytes::new()))])]),
    );
    let p = &produce.responses[0].partition_responses[0];
    assert_eq!(p.error_code, 6, "NOT_LEADER_OR_FOLLOWER");
    assert_eq!(p.current_leader.leader_id.0, view.leader);
    let endpoint = produce
        .node_endpoints
        .iter()
        .find(|n| n.node_id.0 == view.leader)
        .expect("the leader's endpoint");
    assert_eq!(format!("{}:{}", endpoint.host, endpoint.port), leader_addr);
    let fetch: FetchResponse = conn.request(
        ApiKey::Fetch,
        12,
        2,
        &FetchRequest::default()
            .with_max_wait_ms(0)
            .with_max_bytes(1 << 20)
            .with_session_epoch(-1)
            .with_topics(vec![FetchTopic::default()
                .with_topic(name)
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(0)
                    .with_fetch_offset(0)
                    .with_partition_max_bytes(1 << 20)])]),
    );
    let p = &fetch.responses[0].partitions[0];
    assert_eq!(p.error_code, 6, "NOT_LEADER_OR_FOLLOWER");
    assert_eq!(p.current_leader.leader_id.0, view.leader);
    cluster.assert_no_panic();
}

/// Every acknowledged metadata change survives kill -9 of the whole quorum: topics created (and
/// acknowledged) before all three nodes die are there, with their partitions, after all restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_metadata_survives_killing_every_node() {
    let mut cluster = StromCluster::start(3, FAST_FAILOVER);
    let bootstrap = cluster.bootstrap();
    let admin: AdminClient<DefaultClientContext> =
        client_config(&bootstrap).create().expect("admin client");
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(20)));
    let names: Vec<String> = (0..10).map(|i| format!("meta-{i}")).collect();
    for name in &names {
        for r in admin
            .create_topics(&[NewTopic::new(name, 2, TopicReplication::Fixed(3))], &opts)
            .await
            .expect("CreateTopics")
        {
            r.unwrap_or_else(|(t, e)| panic!("creating {t}: {e:?}"));
        }
    }
    drop(admin);
    for id in 1..=3 {
        cluster.node(id).kill9();
    }
    for id in 1..=3 {
        cluster.node(id).launch_again();
    }
    for id in 1..=3 {
        cluster.node(id).wait_ready();
    }
    cluster.wait_for("all brokers back", |c| c.live_brokers().len() == 3);
    for name in &names {
        cluster.wait_for("the topic after restart", |c| {
            (0..2).all(|p| {
                c.partition(name, p)
                    .is_some_and(|v| v.replicas.len() == 3 && v.leader > 0)
            })
        });
    }
    cluster.assert_no_panic();
}

/// ACLs made on one node reach every node (they live in the metadata log) and survive kill -9:
/// DescribeAcls on each node lists the ACL, and a node killed and restarted still does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acls_replicate_to_every_node_and_survive_kill9() {
    use kafka_protocol::messages::create_acls_request::AclCreation;
    use kafka_protocol::messages::{ApiKey, CreateAclsRequest, DescribeAclsRequest};
    use kafka_protocol::messages::{CreateAclsResponse, DescribeAclsResponse};
    use kafka_protocol::protocol::StrBytes;

    let mut args = FAST_FAILOVER.to_vec();
    args.extend([
        "--set",
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        // Every PLAINTEXT client (and broker) is User:ANONYMOUS: a super user here.
        "--set",
        "super.users=User:ANONYMOUS",
    ]);
    let mut cluster = StromCluster::start(3, &args);
    let mut conn = common::RawConn::connect(cluster.node(1).addr());
    let made: CreateAclsResponse = conn.request(
        ApiKey::CreateAcls,
        3,
        1,
        &CreateAclsRequest::default().with_creations(vec![AclCreation::default()
            .with_resource_type(2) // TOPIC
            .with_resource_name(StrBytes::from_static_str("payments-"))
            .with_resource_pattern_type(4) // PREFIXED
            .with_principal(StrBytes::from_static_str("User:alice"))
            .with_host(StrBytes::from_static_str("*"))
            .with_operation(3) // READ
            .with_permission_type(3)]), // ALLOW
    );
    assert_eq!(made.results[0].error_code, 0);
    // Any resource, pattern, operation and permission: every ACL.
    let describe = DescribeAclsRequest::default()
        .with_resource_name_filter(None)
        .with_principal_filter(None)
        .with_host_filter(None)
        .with_resource_type_filter(1)
        .with_pattern_type_filter(1)
        .with_operation(1)
        .with_permission_type(1);
    let listed_on = |cluster: &StromCluster, id: usize| -> Vec<(String, i8, String)> {
        let mut conn = common::RawConn::connect(cluster.nodes[id - 1].addr());
        let resp: DescribeAclsResponse = conn.request(ApiKey::DescribeAcls, 3, 2, &describe);
        assert_eq!(resp.error_code, 0);
        resp.resources
            .iter()
            .flat_map(|r| {
                r.acls.iter().map(|a| {
                    (
                        r.resource_name.to_string(),
                        r.pattern_type,
                        a.principal.to_string(),
                    )
                })
            })
            .collect()
    };
    let want = vec![("payments-".to_string(), 4, "User:alice".to_string())];
    for id in 1..=3 {
        cluster.wait_for(&format!("the ACL on node {id}"), |c| {
            listed_on(c, id) == want
        });
    }
    cluster.node(2).kill9();
    cluster.node(2).start_again();
    cluster.wait_for("the ACL on node 2 after kill -9", |c| {
        listed_on(c, 2) == want
    });
    cluster.assert_no_panic();
}
