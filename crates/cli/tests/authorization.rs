//! The inter-broker APIs under the authorizer (issue 16): a client principal that may do
//! everything on every topic is still refused what only brokers do — WriteTxnMarkers,
//! follower Fetch and OffsetForLeaderEpoch, batched AddPartitionsToTxn — with Kafka's codes,
//! while the same requests from a super user are served; and the controller mutation quota
//! (KIP-599) in strict mode. Over real sockets, on a real broker.

mod common;

use common::StromProcess;
use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ReplicaState};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::read_share_group_state_request::{
    PartitionData as ReadStatePartition, ReadStateData,
};
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, BrokerId, CreateAclsRequest, CreateTopicsRequest, FetchRequest,
    OffsetForLeaderEpochRequest, ProducerId, ReadShareGroupStateRequest, TopicName,
    TransactionalId, WriteTxnMarkersRequest,
};
use kafka_protocol::protocol::StrBytes;
use strom_client::{Connection, ConnectionConfig};

const AUTHORIZER: &str =
    "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer";
const TOPIC: &str = "ib";
const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;

fn topic() -> TopicName {
    TopicName(StrBytes::from_static_str(TOPIC))
}

/// What the inter-broker requests answer on `conn`: the WriteTxnMarkers partition code, the
/// follower Fetch partition code, the follower OffsetForLeaderEpoch partition code, the batched
/// AddPartitionsToTxn top-level code; a consumer Fetch's partition code; and the share
/// coordinator's ReadShareGroupState partition code.
async fn answers(conn: &Connection) -> [i16; 6] {
    let markers =
        WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
            .with_producer_id(ProducerId(4242))
            .with_producer_epoch(0)
            .with_transaction_result(true)
            .with_topics(vec![WritableTxnMarkerTopic::default()
                .with_name(topic())
                .with_partition_indexes(vec![0])])]);
    let markers = conn.send(1, &markers).await.expect("WriteTxnMarkers");
    let fetch = |replica_id: i32| {
        FetchRequest::default()
            .with_max_wait_ms(0)
            .with_replica_state(
                ReplicaState::default()
                    .with_replica_id(BrokerId(replica_id))
                    .with_replica_epoch(-1),
            )
            .with_topics(vec![FetchTopic::default()
                .with_topic(topic())
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(0)
                    .with_partition_max_bytes(1 << 20)])])
    };
    let follower = conn.send(12, &fetch(2).with_replica_id(BrokerId(2))).await;
    let follower = follower.expect("follower Fetch");
    let consumer = conn
        .send(12, &fetch(-1).with_replica_id(BrokerId(-1)))
        .await;
    let consumer = consumer.expect("consumer Fetch");
    let epochs = OffsetForLeaderEpochRequest::default()
        .with_replica_id(BrokerId(2))
        .with_topics(vec![OffsetForLeaderTopic::default()
            .with_topic(topic())
            .with_partitions(vec![OffsetForLeaderPartition::default()
                .with_partition(0)
                .with_current_leader_epoch(-1)
                .with_leader_epoch(0)])]);
    let epochs = conn.send(4, &epochs).await.expect("OffsetForLeaderEpoch");
    let add = AddPartitionsToTxnRequest::default().with_transactions(vec![
        AddPartitionsToTxnTransaction::default()
            .with_transactional_id(TransactionalId(StrBytes::from_static_str("t")))
            .with_producer_id(ProducerId(4242))
            .with_producer_epoch(0)
            .with_verify_only(true)
            .with_topics(vec![AddPartitionsToTxnTopic::default()
                .with_name(topic())
                .with_partitions(vec![0])]),
    ]);
    let add = conn.send(4, &add).await.expect("AddPartitionsToTxn");
    let share_state = ReadShareGroupStateRequest::default()
        .with_group_id(StrBytes::from_static_str("g"))
        .with_topics(vec![ReadStateData::default()
            .with_topic_id(uuid::Uuid::from_u128(1))
            .with_partitions(vec![
                ReadStatePartition::default().with_partition(0)
            ])]);
    let share_state = conn
        .send(0, &share_state)
        .await
        .expect("ReadShareGroupState");
    [
        markers.markers[0].topics[0].partitions[0].error_code,
        follower.responses[0].partitions[0].error_code,
        epochs.topics[0].partitions[0].error_code,
        add.error_code,
        consumer.responses[0].partitions[0].error_code,
        share_state.results[0].partitions[0].error_code,
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inter_broker_apis_are_refused_to_a_client_principal() {
    // First as a super user (everyone is User:ANONYMOUS on PLAINTEXT): make the topic and let
    // ANONYMOUS do ALL on every topic, so only the cluster action is missing later.
    let mut b = StromProcess::start_with_args(&[
        "--set",
        AUTHORIZER,
        "--set",
        "super.users=User:ANONYMOUS",
    ]);
    let conn = Connection::connect(b.addr(), &ConnectionConfig::default())
        .await
        .expect("connect");
    let create = CreateTopicsRequest::default().with_topics(vec![
        kafka_protocol::messages::create_topics_request::CreatableTopic::default()
            .with_name(topic())
            .with_num_partitions(1)
            .with_replication_factor(1),
    ]);
    let created = conn.send(7, &create).await.expect("CreateTopics");
    assert_eq!(created.topics[0].error_code, 0);
    let acl = CreateAclsRequest::default().with_creations(vec![AclCreation::default()
        .with_resource_type(2) // TOPIC
        .with_resource_name(StrBytes::from_static_str("*"))
        .with_resource_pattern_type(3) // LITERAL
        .with_principal(StrBytes::from_static_str("User:ANONYMOUS"))
        .with_host(StrBytes::from_static_str("*"))
        .with_operation(2) // ALL
        .with_permission_type(3)]); // ALLOW
    let made = conn.send(3, &acl).await.expect("CreateAcls");
    assert_eq!(made.results[0].error_code, 0);
    let as_super = answers(&conn).await;
    assert!(
        !as_super.contains(&CLUSTER_AUTHORIZATION_FAILED)
            && !as_super[..4].contains(&TOPIC_AUTHORIZATION_FAILED),
        "a super user's inter-broker requests are authorized: {as_super:?}"
    );
    drop(conn);

    // Then as a plain client: ALL on every topic, nothing on the cluster.
    b.set_extra_args(&["--set", AUTHORIZER, "--set", "super.users=User:admin"]);
    b.restart();
    let conn = Connection::connect(b.addr(), &ConnectionConfig::default())
        .await
        .expect("connect");
    assert_eq!(
        answers(&conn).await,
        [
            CLUSTER_AUTHORIZATION_FAILED, // WriteTxnMarkers: CLUSTER_ACTION
            TOPIC_AUTHORIZATION_FAILED,   // follower Fetch: CLUSTER_ACTION
            TOPIC_AUTHORIZATION_FAILED,   // follower OffsetForLeaderEpoch: CLUSTER_ACTION
            CLUSTER_AUTHORIZATION_FAILED, // batched AddPartitionsToTxn: CLUSTER_ACTION
            0,                            // a consumer's Fetch: READ on the topic, granted
            CLUSTER_AUTHORIZATION_FAILED, // ReadShareGroupState: CLUSTER_ACTION
        ]
    );
    b.assert_no_panic();
}

/// KIP-599 strict mode: with `controller_mutation_rate=1` (partitions per second) for the
/// client, CreateTopics v7 admits one creation that takes the token bucket negative, then
/// answers THROTTLING_QUOTA_EXCEEDED with a throttle time until the bucket refills; another
/// client id is not affected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_mutation_quota_refuses_creations_past_the_burst() {
    use kafka_protocol::messages::alter_client_quotas_request::{EntityData, EntryData, OpData};
    use kafka_protocol::messages::create_topics_request::CreatableTopic;
    use kafka_protocol::messages::AlterClientQuotasRequest;

    let b = StromProcess::start();
    let conn = Connection::connect(b.addr(), &ConnectionConfig::default())
        .await
        .expect("connect");
    let alter = AlterClientQuotasRequest::default().with_entries(vec![EntryData::default()
        .with_entity(vec![EntityData::default()
            .with_entity_type(StrBytes::from_static_str("client-id"))
            .with_entity_name(Some(StrBytes::from_static_str("mutator")))])
        .with_ops(vec![OpData::default()
            .with_key(StrBytes::from_static_str("controller_mutation_rate"))
            .with_value(1.0)])]);
    let altered = conn.send(1, &alter).await.expect("AlterClientQuotas");
    assert_eq!(altered.entries[0].error_code, 0);
    let create = |name: &'static str, partitions: i32| {
        CreateTopicsRequest::default()
            .with_timeout_ms(10_000)
            .with_topics(vec![CreatableTopic::default()
                .with_name(TopicName(StrBytes::from_static_str(name)))
                .with_num_partitions(partitions)
                .with_replication_factor(1)])
    };
    let mutator = ConnectionConfig {
        client_id: "mutator".into(),
        ..ConnectionConfig::default()
    };
    let m = Connection::connect(b.addr(), &mutator)
        .await
        .expect("connect");
    // The burst (1/s × 11 samples × 1 s) admits a creation that overdraws it...
    let first = m.send(7, &create("burst", 50)).await.expect("CreateTopics");
    assert_eq!(first.topics[0].error_code, 0);
    // ...and the next one is refused until the bucket refills.
    let second = m
        .send(7, &create("refused", 1))
        .await
        .expect("CreateTopics");
    assert_eq!(second.topics[0].error_code, 89, "THROTTLING_QUOTA_EXCEEDED");
    assert!(second.throttle_time_ms > 0);
    // Another client id has no quota.
    let other = conn
        .send(7, &create("other", 50))
        .await
        .expect("CreateTopics");
    assert_eq!(other.topics[0].error_code, 0);
    assert_eq!(other.throttle_time_ms, 0);
    b.assert_no_panic();
}
