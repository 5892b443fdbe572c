//! Abuse resistance over real sockets (one broker process per test): hostile counts in
//! CreateTopics/CreatePartitions and in record batches, clients writing to internal topics,
//! forged follower fetches, connection limits, a frame that stalls midway, and a JoinGroup
//! flood. After each attack the broker is alive, its resident memory is bounded, no panic is
//! logged, and a fresh producer and consumer work.

mod common;

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use common::{
    assert_healthy, create_topic, forged_follower_fetch, list_offset, RawConn, StromProcess,
};
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest,
    CreateTopicsResponse, DeleteRecordsRequest, DeleteRecordsResponse, DeleteTopicsRequest,
    DeleteTopicsResponse, GroupId, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
    JoinGroupRequest, JoinGroupResponse, ProduceRequest, ProduceResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

/// Resident memory a test broker may grow by during one attack (debug build).
const RSS_GROWTH_KIB: u64 = 200 * 1024;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn create_topics(conn: &mut RawConn, topic: &str, partitions: i32, validate_only: bool) -> i16 {
    let req = CreateTopicsRequest::default()
        .with_timeout_ms(10_000)
        .with_validate_only(validate_only)
        .with_topics(vec![CreatableTopic::default()
            .with_name(name(topic))
            .with_num_partitions(partitions)
            .with_replication_factor(1)]);
    let resp: CreateTopicsResponse = conn.request(ApiKey::CreateTopics, 7, 1, &req);
    resp.topics[0].error_code
}

fn create_partitions(conn: &mut RawConn, topic: &str, count: i32) -> i16 {
    let req = CreatePartitionsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![CreatePartitionsTopic::default()
            .with_name(name(topic))
            .with_count(count)]);
    let resp: CreatePartitionsResponse = conn.request(ApiKey::CreatePartitions, 3, 2, &req);
    resp.results[0].error_code
}

/// Produce v9 acks=1 of `records` to one partition: the partition's error code.
fn produce(conn: &mut RawConn, topic: &str, partition: i32, records: Bytes) -> i16 {
    let req = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(records))])]);
    let resp: ProduceResponse = conn.request(ApiKey::Produce, 9, 3, &req);
    resp.responses[0].partition_responses[0].error_code
}

/// One v2 batch holding one record with `record` as its body (everything after the record's
/// length varint), with a valid CRC: the bytes are exactly what a hostile producer would send.
fn batch_with_record(record: &[u8]) -> Bytes {
    let mut rec = BytesMut::new();
    put_varint(&mut rec, record.len() as i64);
    rec.put_slice(record);
    let mut b = BytesMut::new();
    b.put_i64(0); // base offset
    b.put_i32((49 + rec.len()) as i32); // batch length: from the leader epoch to the end
    b.put_i32(-1); // partition leader epoch
    b.put_i8(2); // magic
    b.put_u32(0); // crc, below
    b.put_i16(0); // attributes
    b.put_i32(0); // last offset delta
    b.put_i64(1_700_000_000_000); // base timestamp
    b.put_i64(1_700_000_000_000); // max timestamp
    b.put_i64(-1); // producer id
    b.put_i16(-1); // producer epoch
    b.put_i32(-1); // base sequence
    b.put_i32(1); // record count
    b.put_slice(&rec);
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b.freeze()
}

fn put_varint(b: &mut BytesMut, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        b.put_u8((z as u8) | 0x80);
        z >>= 7;
    }
    b.put_u8(z as u8);
}

#[tokio::test]
async fn hostile_partition_counts_are_refused_before_anything_is_built() {
    let mut b = StromProcess::start();
    let rss = b.rss_kib();
    let mut c = RawConn::connect(b.addr());
    for validate_only in [true, false] {
        assert_eq!(
            create_topics(&mut c, "huge", i32::MAX, validate_only),
            ResponseError::InvalidPartitions.code()
        );
    }
    // Larger than one topic may be, but small enough that a broker building it would notice.
    assert_eq!(
        create_topics(&mut c, "large", 200_000, false),
        ResponseError::InvalidPartitions.code()
    );
    create_topic(b.addr(), "grows", 1).await;
    assert_eq!(
        create_partitions(&mut c, "grows", i32::MAX),
        ResponseError::InvalidPartitions.code()
    );
    assert!(b.rss_kib() < rss + RSS_GROWTH_KIB, "{} KiB", b.rss_kib());
    // A topic within the limits is still created.
    assert_eq!(create_topics(&mut c, "fine", 3, false), 0);
    assert_healthy(&mut b).await;
}

#[tokio::test]
async fn a_record_claiming_two_billion_headers_is_refused() {
    let mut b = StromProcess::start();
    create_topic(b.addr(), "h", 1).await;
    let mut c = RawConn::connect(b.addr());
    let mut rec = BytesMut::new();
    rec.put_i8(0); // attributes
    put_varint(&mut rec, 0); // timestamp delta
    put_varint(&mut rec, 0); // offset delta
    put_varint(&mut rec, -1); // null key
    put_varint(&mut rec, 3);
    rec.put_slice(b"abc");
    put_varint(&mut rec, i64::from(i32::MAX)); // header count
    rec.put_slice(&[0x02; 80]); // a few "headers" worth of bytes
    let rss = b.rss_kib();
    let code = produce(&mut c, "h", 0, batch_with_record(&rec));
    assert_eq!(code, ResponseError::CorruptMessage.code());
    assert!(b.rss_kib() < rss + RSS_GROWTH_KIB);
    // Nothing reached the log.
    assert_eq!(list_offset(&mut c, "h", 0, -1), (0, 0));
    assert_healthy(&mut b).await;
}

#[tokio::test]
async fn clients_cannot_write_delete_or_reshape_internal_topics() {
    let mut b = StromProcess::start();
    let mut c = RawConn::connect(b.addr());
    let offsets = "__consumer_offsets";
    // Produce: Kafka's "Cannot append to internal topic".
    let valid = batch_with_record(&[0, 0, 0, 1, 2, b'v', 0]);
    assert_eq!(
        produce(&mut c, offsets, 0, valid),
        ResponseError::InvalidTopicException.code()
    );
    // DeleteRecords.
    let req = DeleteRecordsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(vec![DeleteRecordsTopic::default()
            .with_name(name(offsets))
            .with_partitions(vec![DeleteRecordsPartition::default()
                .with_partition_index(0)
                .with_offset(-1)])]);
    let r: DeleteRecordsResponse = c.request(ApiKey::DeleteRecords, 2, 4, &req);
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        ResponseError::InvalidTopicException.code()
    );
    // DeleteTopics.
    let req = DeleteTopicsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(vec![
            DeleteTopicState::default().with_name(Some(name(offsets)))
        ]);
    let r: DeleteTopicsResponse = c.request(ApiKey::DeleteTopics, 6, 5, &req);
    assert_eq!(
        r.responses[0].error_code,
        ResponseError::TopicAuthorizationFailed.code()
    );
    // CreatePartitions, CreateTopics of the other internal topic, and config changes.
    assert_eq!(
        create_partitions(&mut c, offsets, 100),
        ResponseError::InvalidTopicException.code()
    );
    assert_eq!(
        create_topics(&mut c, "__transaction_state", 1, false),
        ResponseError::InvalidRequest.code()
    );
    let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_static_str("__consumer_offsets"))
            .with_configs(vec![AlterableConfig::default()
                .with_name(StrBytes::from_static_str("cleanup.policy"))
                .with_config_operation(0)
                .with_value(Some(StrBytes::from_static_str("delete")))]),
    ]);
    let r: IncrementalAlterConfigsResponse = c.request(ApiKey::IncrementalAlterConfigs, 1, 6, &req);
    assert_eq!(
        r.responses[0].error_code,
        ResponseError::TopicAuthorizationFailed.code()
    );
    assert_healthy(&mut b).await;
    // Groups still work on the untouched internal topic, across a restart.
    b.restart();
    assert_healthy(&mut b).await;
}

#[tokio::test]
async fn a_client_posing_as_a_follower_is_refused() {
    let mut b = StromProcess::start();
    create_topic(b.addr(), "f", 1).await;
    let mut c = RawConn::connect(b.addr());
    for (version, epoch) in [(12, -1), (15, 12345), (15, -1)] {
        assert_eq!(
            forged_follower_fetch(&mut c, "f", 7, version, epoch),
            ResponseError::NotLeaderOrFollower.code(),
            "Fetch v{version}"
        );
    }
    assert_healthy(&mut b).await;
}

#[tokio::test]
async fn connections_over_the_per_ip_limit_are_closed() {
    let mut b = StromProcess::start_with_args(&["--set", "max.connections.per.ip=3"]);
    // assert_healthy's clients need a few connections of their own: none are held yet.
    assert_healthy(&mut b).await;
    let held: Vec<RawConn> = (0..3).map(|_| RawConn::connect(b.addr())).collect();
    let mut extra = RawConn::connect(b.addr());
    extra.expect_closed();
    drop(held);
    std::thread::sleep(Duration::from_millis(200));
    assert_healthy(&mut b).await;
}

#[tokio::test]
async fn a_frame_that_stalls_midway_is_closed_and_costs_no_memory() {
    let mut b = StromProcess::start_with_args(&["--set", "connections.max.idle.ms=1000"]);
    let rss = b.rss_kib();
    // Twenty clients each announce a 100 MB request and send ten bytes of it.
    let mut stalled: Vec<RawConn> = (0..20)
        .map(|_| {
            let mut c = RawConn::connect(b.addr());
            c.send_raw(&(100_000_000i32).to_be_bytes());
            c.send_raw(&[0u8; 10]);
            c
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        b.rss_kib() < rss + RSS_GROWTH_KIB,
        "announced sizes must not be allocated: {} KiB",
        b.rss_kib()
    );
    for c in &mut stalled {
        c.expect_closed();
    }
    assert_healthy(&mut b).await;
}

#[tokio::test]
async fn a_join_group_flood_stops_at_group_max_size() {
    let mut b = StromProcess::start_with_args(&["--set", "group.max.size=5"]);
    let mut c = RawConn::connect(b.addr());
    let join = JoinGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("flood")))
        .with_session_timeout_ms(30_000)
        .with_rebalance_timeout_ms(30_000)
        .with_member_id(StrBytes::from_static_str(""))
        .with_protocol_type(StrBytes::from_static_str("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(StrBytes::from_static_str("range"))
            .with_metadata(Bytes::from_static(&[0, 0, 0, 0, 0, 0]))]);
    let mut codes = Vec::new();
    for i in 0..20 {
        let r: JoinGroupResponse = c.request(ApiKey::JoinGroup, 9, 100 + i, &join);
        codes.push(r.error_code);
    }
    let required = codes
        .iter()
        .filter(|c| **c == ResponseError::MemberIdRequired.code())
        .count();
    let full = codes
        .iter()
        .filter(|c| **c == ResponseError::GroupMaxSizeReached.code())
        .count();
    assert_eq!((required, full), (5, 15), "{codes:?}");
    assert_healthy(&mut b).await;
}
