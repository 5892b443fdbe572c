//! Hostile and broken input over a raw socket. Each case either gets the answer Kafka gives or has
//! its connection closed; afterwards the same broker must still serve a normal rdkafka client and
//! its stderr must hold no panic.

mod common;

use std::io::Write;
use std::net::Shutdown;

use bytes::{BufMut, Bytes, BytesMut};
use common::{assert_healthy, create_topic, list_offset, RawConn, StromProcess};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, ProduceRequest,
    ProduceResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use rdkafka::consumer::Consumer;

/// A frame: 4-byte size then `body`.
fn frame(body: &[u8]) -> Vec<u8> {
    let mut f = (body.len() as i32).to_be_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

/// The first 10 bytes of a v1 request header: key, version, correlation id, null client id.
fn header_v1(api_key: i16, version: i16, correlation_id: i32) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&api_key.to_be_bytes());
    h.extend_from_slice(&version.to_be_bytes());
    h.extend_from_slice(&correlation_id.to_be_bytes());
    h.extend_from_slice(&(-1i16).to_be_bytes());
    h
}

/// One valid v2 record batch of `n` records (offsets 0..n).
fn record_batch(n: i64) -> BytesMut {
    let records: Vec<Record> = (0..n)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i,
            // The encoder splits batches whenever offset - sequence changes.
            sequence: i as i32 - 1,
            timestamp: 1_700_000_000_000 + i,
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from(format!("value-{i}"))),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("encoding record batch");
    buf
}

/// Produce v9 (acks=all) of `records` to one partition: `(error_code, base_offset)`.
fn produce(
    conn: &mut RawConn,
    topic: &str,
    partition: i32,
    records: Bytes,
    corr: i32,
) -> (i16, i64) {
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.into())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(records))])]);
    let resp: ProduceResponse = conn.request(ApiKey::Produce, 9, corr, &req);
    assert_eq!(resp.responses.len(), 1);
    assert_eq!(resp.responses[0].name.0.as_str(), topic);
    let p = &resp.responses[0].partition_responses[0];
    assert_eq!(p.index, partition);
    (p.error_code, p.base_offset)
}

#[tokio::test]
async fn garbage_bytes_close_the_connection() {
    let mut b = StromProcess::start();
    // An HTTP request: "GET " read as a size of ~1.1 GB.
    let mut c = RawConn::connect(b.addr());
    c.send_raw(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
    c.expect_closed();
    assert_healthy(&mut b).await;
    // A well-sized frame of noise (API key 0xdead).
    let mut c = RawConn::connect(b.addr());
    c.send_raw(&frame(&[
        0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
    ]));
    c.expect_closed();
    assert_healthy(&mut b).await;
    // A frame shorter than any request header.
    let mut c = RawConn::connect(b.addr());
    c.send_raw(&frame(&[0, 3]));
    c.expect_closed();
    assert_healthy(&mut b).await;
    // A valid Metadata v12 header followed by a body of noise.
    let mut c = RawConn::connect(b.addr());
    let mut body = BytesMut::new();
    kafka_protocol::messages::RequestHeader::default()
        .with_request_api_key(ApiKey::Metadata as i16)
        .with_request_api_version(12)
        .with_correlation_id(5)
        .encode(&mut body, ApiKey::Metadata.request_header_version(12))
        .expect("header");
    body.put_slice(&[0x55; 7]);
    c.send_raw(&frame(&body));
    c.expect_closed();
    assert_healthy(&mut b).await;
}

#[tokio::test]
async fn huge_array_length_in_a_small_request_closes_the_connection() {
    let mut b = StromProcess::start();
    // Metadata v1: topics array length i32::MAX, then nothing (a 14-byte request). A decoder
    // that trusts the length and preallocates tries to reserve ~150 GB.
    let mut c = RawConn::connect(b.addr());
    let mut body = header_v1(ApiKey::Metadata as i16, 1, 6);
    body.extend_from_slice(&i32::MAX.to_be_bytes());
    c.send_raw(&frame(&body));
    c.expect_closed();
    assert_healthy(&mut b).await;
}

#[tokio::test]
async fn huge_compact_array_length_in_a_small_request_closes_the_connection() {
    let mut b = StromProcess::start();
    // Metadata v9 (flexible): topics compact array length u32::MAX as an unsigned varint.
    let mut c = RawConn::connect(b.addr());
    let mut body = BytesMut::new();
    kafka_protocol::messages::RequestHeader::default()
        .with_request_api_key(ApiKey::Metadata as i16)
        .with_request_api_version(9)
        .with_correlation_id(7)
        .encode(&mut body, ApiKey::Metadata.request_header_version(9))
        .expect("header");
    body.put_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    c.send_raw(&frame(&body));
    c.expect_closed();
    assert_healthy(&mut b).await;
}

#[tokio::test]
async fn size_prefix_of_i32_max_closes_the_connection() {
    let mut b = StromProcess::start();
    let mut c = RawConn::connect(b.addr());
    c.send_raw(&i32::MAX.to_be_bytes());
    c.send_raw(&[0u8; 64]);
    c.expect_closed();
    assert_healthy(&mut b).await;
}

#[tokio::test]
async fn negative_or_zero_size_closes_the_connection() {
    let mut b = StromProcess::start();
    for size in [-1i32, i32::MIN, 0] {
        let mut c = RawConn::connect(b.addr());
        c.send_raw(&size.to_be_bytes());
        c.send_raw(&header_v1(ApiKey::ApiVersions as i16, 0, 1));
        c.expect_closed();
        assert_healthy(&mut b).await;
    }
}

#[tokio::test]
async fn unknown_api_key_closes_the_connection() {
    let mut b = StromProcess::start();
    for key in [9999i16, -1] {
        let mut c = RawConn::connect(b.addr());
        c.send_raw(&frame(&header_v1(key, 0, 11)));
        c.expect_closed();
        assert_healthy(&mut b).await;
    }
}

#[tokio::test]
async fn unsupported_metadata_version_closes_the_connection() {
    let mut b = StromProcess::start();
    let mut c = RawConn::connect(b.addr());
    // Header in the v99 layout, body encoded at the highest known version.
    c.send_request(ApiKey::Metadata, 99, 12, 21, &MetadataRequest::default());
    c.expect_closed();
    assert_healthy(&mut b).await;
}

#[tokio::test]
async fn api_versions_v99_gets_a_v0_unsupported_version_answer() {
    let mut b = StromProcess::start();
    let mut c = RawConn::connect(b.addr());
    c.send_request(
        ApiKey::ApiVersions,
        99,
        3,
        31,
        &ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("strom-it"))
            .with_client_software_version(StrBytes::from_static_str("1")),
    );
    // KIP-511: a v0 response (header v0: just the correlation id).
    let mut f = c.read_frame();
    assert!(f.len() >= 4, "response too short");
    let corr = i32::from_be_bytes([f[0], f[1], f[2], f[3]]);
    assert_eq!(corr, 31, "correlation id");
    let _ = f.split_to(4);
    let resp = ApiVersionsResponse::decode(&mut f, 0).expect("decoding v0 ApiVersions");
    assert!(f.is_empty(), "{} trailing bytes", f.len());
    assert_eq!(resp.error_code, 35, "UNSUPPORTED_VERSION");
    assert!(!resp.api_keys.is_empty(), "api_keys empty");
    let av = resp
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::ApiVersions as i16)
        .expect("ApiVersions in its own answer");
    assert_eq!(av.min_version, 0);
    assert!(av.max_version >= 3);
    // The connection stays open: the client retries at a version it now knows.
    let resp: ApiVersionsResponse =
        c.request(ApiKey::ApiVersions, 0, 32, &ApiVersionsRequest::default());
    assert_eq!(resp.error_code, 0);
    assert!(!resp.api_keys.is_empty());
    assert_healthy(&mut b).await;
}

#[tokio::test]
async fn truncated_frame_then_close() {
    let mut b = StromProcess::start();
    let mut c = RawConn::connect(b.addr());
    c.send_raw(&100i32.to_be_bytes());
    c.send_raw(&header_v1(ApiKey::ApiVersions as i16, 0, 41));
    c.stream.flush().expect("flush");
    c.stream.shutdown(Shutdown::Write).expect("shutdown");
    c.expect_closed();
    assert_healthy(&mut b).await;
}

#[tokio::test]
async fn produce_with_bad_crc_is_rejected_and_nothing_appended() {
    let mut b = StromProcess::start();
    let topic = "crc";
    create_topic(b.addr(), topic, 1).await;
    let mut c = RawConn::connect(b.addr());
    let good = record_batch(5);
    let mut bad = good.clone();
    // The last byte belongs to the last record's value, inside the CRC's coverage.
    let last = bad.len() - 1;
    bad[last] ^= 0x01;
    let (err, _) = produce(&mut c, topic, 0, bad.freeze(), 51);
    assert_eq!(err, 2, "CORRUPT_MESSAGE");
    assert_eq!(
        list_offset(&mut c, topic, 0, -1),
        (0, 0),
        "log end after bad CRC"
    );
    // The connection is still usable and the same batch, intact, is accepted.
    let (err, base) = produce(&mut c, topic, 0, good.freeze(), 52);
    assert_eq!((err, base), (0, 0), "valid batch");
    assert_eq!(list_offset(&mut c, topic, 0, -1), (0, 5));
    let rc = common::consumer(b.addr());
    let (low, high) = rc
        .fetch_watermarks(topic, 0, common::TIMEOUT)
        .expect("watermarks");
    assert_eq!((low, high), (0, 5));
    assert_healthy(&mut b).await;
}

#[tokio::test]
async fn produce_to_unknown_topic_is_rejected() {
    let mut b = StromProcess::start();
    let mut c = RawConn::connect(b.addr());
    let (err, _) = produce(&mut c, "no-such-topic", 0, record_batch(3).freeze(), 61);
    assert_eq!(err, 3, "UNKNOWN_TOPIC_OR_PARTITION");
    // An unknown partition of a known topic, too.
    create_topic(b.addr(), "known", 1).await;
    let (err, _) = produce(&mut c, "known", 7, record_batch(3).freeze(), 62);
    assert_eq!(err, 3, "UNKNOWN_TOPIC_OR_PARTITION for partition 7");
    assert_eq!(list_offset(&mut c, "known", 0, -1), (0, 0));
    assert_healthy(&mut b).await;
}
