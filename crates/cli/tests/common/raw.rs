//! A blocking socket speaking the Kafka wire format directly ([`RawConn`]), for requests no
//! well-behaved client sends, and the raw ListOffsets/Fetch helpers built on it.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// A blocking socket speaking the Kafka wire format directly.
#[derive(Debug)]
pub(crate) struct RawConn {
    pub(crate) stream: TcpStream,
}

impl RawConn {
    pub(crate) fn connect(addr: &str) -> Self {
        let stream = TcpStream::connect(addr).expect("connecting");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("read timeout");
        stream.set_nodelay(true).expect("nodelay");
        RawConn { stream }
    }

    pub(crate) fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("writing to broker");
    }

    /// Encodes header and body (body at `body_version`, normally equal to `version`) and sends
    /// the framed request.
    pub(crate) fn send_request<R: Encodable>(
        &mut self,
        api_key: ApiKey,
        version: i16,
        body_version: i16,
        correlation_id: i32,
        body: &R,
    ) {
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        RequestHeader::default()
            .with_request_api_key(api_key as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("strom-it")))
            .encode(&mut buf, api_key.request_header_version(version))
            .expect("encoding request header");
        body.encode(&mut buf, body_version)
            .expect("encoding request body");
        let size = (buf.len() - 4) as i32;
        buf[0..4].copy_from_slice(&size.to_be_bytes());
        self.send_raw(&buf);
    }

    /// Reads one response frame (without its size prefix).
    pub(crate) fn read_frame(&mut self) -> Bytes {
        let mut size = [0u8; 4];
        self.stream
            .read_exact(&mut size)
            .expect("reading response size");
        let size = i32::from_be_bytes(size);
        assert!((0..=64 << 20).contains(&size), "bad response size {size}");
        let mut buf = vec![0u8; size as usize];
        self.stream
            .read_exact(&mut buf)
            .expect("reading response body");
        Bytes::from(buf)
    }

    /// Reads a response, checks its correlation id and decodes the body.
    pub(crate) fn read_response<R: Decodable>(
        &mut self,
        api_key: ApiKey,
        version: i16,
        correlation_id: i32,
    ) -> R {
        let mut frame = self.read_frame();
        let header = ResponseHeader::decode(&mut frame, api_key.response_header_version(version))
            .expect("decoding response header");
        assert_eq!(header.correlation_id, correlation_id, "correlation id");
        let body = R::decode(&mut frame, version).expect("decoding response body");
        assert_eq!(
            frame.remaining(),
            0,
            "trailing bytes after {api_key:?} v{version} response"
        );
        body
    }

    pub(crate) fn request<Req: Encodable, Resp: Decodable>(
        &mut self,
        api_key: ApiKey,
        version: i16,
        correlation_id: i32,
        body: &Req,
    ) -> Resp {
        self.send_request(api_key, version, version, correlation_id, body);
        self.read_response(api_key, version, correlation_id)
    }

    /// Asserts the broker closes the connection (EOF or reset) without sending anything.
    pub(crate) fn expect_closed(&mut self) {
        let mut buf = [0u8; 64];
        match self.stream.read(&mut buf) {
            Ok(0) => {}
            Ok(n) => panic!(
                "expected the connection closed, got {n} bytes: {:?}",
                &buf[..n]
            ),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
                ) => {}
            Err(e) => panic!("expected the connection closed, got {e} ({:?})", e.kind()),
        }
    }
}

/// ListOffsets v8 for one partition: `(error_code, offset)`; `timestamp` -1 is the log end.
pub(crate) fn list_offset(
    conn: &mut RawConn,
    topic: &str,
    partition: i32,
    timestamp: i64,
) -> (i16, i64) {
    list_offset_isolated(conn, topic, partition, timestamp, 0)
}

/// [`list_offset`] at an isolation level (1 = read_committed: the log end is the last stable
/// offset).
pub(crate) fn list_offset_isolated(
    conn: &mut RawConn,
    topic: &str,
    partition: i32,
    timestamp: i64,
    isolation_level: i8,
) -> (i16, i64) {
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_protocol::messages::{BrokerId, ListOffsetsRequest, ListOffsetsResponse, TopicName};
    let req = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(isolation_level)
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.into())))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(partition)
                .with_current_leader_epoch(-1)
                .with_timestamp(timestamp)])]);
    let resp: ListOffsetsResponse = conn.request(ApiKey::ListOffsets, 8, 7001, &req);
    let p = &resp.topics[0].partitions[0];
    (p.error_code, p.offset)
}

/// Fetch v12 from `offset` with generous limits: the batch headers of the returned records.
pub(crate) fn fetch_batches(
    conn: &mut RawConn,
    topic: &str,
    partition: i32,
    offset: i64,
) -> Vec<kafka_protocol::records::BatchDecodeInfo> {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, TopicName};
    use kafka_protocol::records::RecordBatchDecoder;
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(0)
        .with_max_bytes(16 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_string(topic.into())))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(partition)
                .with_current_leader_epoch(-1)
                .with_fetch_offset(offset)
                .with_last_fetched_epoch(-1)
                .with_log_start_offset(-1)
                .with_partition_max_bytes(16 << 20)])]);
    let resp: FetchResponse = conn.request(ApiKey::Fetch, 12, 7002, &req);
    assert_eq!(resp.error_code, 0, "fetch error");
    let p = &resp.responses[0].partitions[0];
    assert_eq!(p.error_code, 0, "fetch partition error");
    let mut records = p.records.clone().unwrap_or_default();
    RecordBatchDecoder::decode_batch_info(&mut records).expect("decoding fetched batch headers")
}

/// A Fetch of partition 0 of `topic` claiming to come from follower `replica_id` at an offset
/// past anything written (v15+: with broker `epoch`; below: none); the partition's error code.
pub(crate) fn forged_follower_fetch(
    conn: &mut RawConn,
    topic: &str,
    replica_id: i32,
    version: i16,
    epoch: i64,
) -> i16 {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ReplicaState};
    use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, TopicName};
    let part = FetchPartition::default()
        .with_partition(0)
        .with_current_leader_epoch(-1)
        .with_fetch_offset(i64::MAX)
        .with_last_fetched_epoch(-1)
        .with_log_start_offset(-1)
        .with_partition_max_bytes(1 << 20);
    let req = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_min_bytes(0)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partitions(vec![part])]);
    let req = if version >= 15 {
        req.with_replica_state(
            ReplicaState::default()
                .with_replica_id(BrokerId(replica_id))
                .with_replica_epoch(epoch),
        )
    } else {
        req.with_replica_id(BrokerId(replica_id))
    };
    // v13+ names topics by id.
    let req = if version >= 13 {
        let id = topic_id(conn, topic);
        let topics = req
            .topics
            .iter()
            .cloned()
            .map(|t| t.with_topic_id(id))
            .collect();
        req.with_topics(topics)
    } else {
        req
    };
    let resp: FetchResponse = conn.request(ApiKey::Fetch, version, 8, &req);
    resp.responses[0].partitions[0].error_code
}

/// The id of `topic` (Metadata v12).
pub(crate) fn topic_id(conn: &mut RawConn, topic: &str) -> uuid::Uuid {
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    use kafka_protocol::messages::{MetadataRequest, MetadataResponse, TopicName};
    let req = MetadataRequest::default().with_topics(Some(vec![MetadataRequestTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(topic.to_string()))))]));
    let resp: MetadataResponse = conn.request(ApiKey::Metadata, 12, 9, &req);
    resp.topics[0].topic_id
}
