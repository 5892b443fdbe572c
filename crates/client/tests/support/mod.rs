//! A tiny in-process mock broker built on kafka-protocol, for the client's integration tests.
//!
//! It keeps one in-memory log per partition as a list of record batches and answers ApiVersions,
//! Metadata, Produce, Fetch and ListOffsets: just enough broker to exercise the client, not a
//! model of the real one. With [`MockOptions`] it listens with TLS and/or SASL (`security.rs`).

#![allow(clippy::unwrap_used, dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{decode_request_header_from_buffer, Decodable, Encodable, StrBytes};
use kafka_protocol::records::RecordBatchDecoder;
use parking_lot::Mutex;
use strom_client::*;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

pub mod security;

pub use security::MockSasl;
use security::{SaslGate, Verdict};

#[derive(Default)]
pub struct MockState {
    /// (topic, partition) -> batches with assigned base offsets.
    pub logs: HashMap<(String, i32), Vec<Bytes>>,
    /// Produce requests to answer with NOT_LEADER_OR_FOLLOWER before accepting.
    pub fail_produce: usize,
    pub metadata_requests: usize,
}

pub struct Mock {
    pub port: u16,
    pub state: Arc<Mutex<MockState>>,
    /// When true, ApiVersions v3 is refused (an "old broker").
    pub old_api_versions: bool,
    pub produces_seen: AtomicUsize,
    /// Connections accepted (and, with TLS, whose handshake completed).
    pub connections: AtomicUsize,
    pub sasl: Option<MockSasl>,
}

/// How the mock listens.
#[derive(Default)]
pub struct MockOptions {
    /// Refuse ApiVersions v3 (an "old broker").
    pub old_api_versions: bool,
    /// Speak TLS with this acceptor.
    pub tls: Option<strom_security::TlsAcceptorHandle>,
    /// Require SASL.
    pub sasl: Option<MockSasl>,
}

pub const TOPIC: &str = "t";
pub const PARTITIONS: i32 = 3;
pub const TOPIC_ID: uuid::Uuid = uuid::Uuid::from_u128(0x1234);

pub async fn start_mock(old_api_versions: bool) -> Arc<Mock> {
    start_mock_with(MockOptions {
        old_api_versions,
        ..MockOptions::default()
    })
    .await
}

pub async fn start_mock_with(options: MockOptions) -> Arc<Mock> {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mock = Arc::new(Mock {
        port,
        state: Arc::default(),
        old_api_versions: options.old_api_versions,
        produces_seen: AtomicUsize::new(0),
        connections: AtomicUsize::new(0),
        sasl: options.sasl,
    });
    let m = mock.clone();
    let tls = options.tls;
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let m = m.clone();
            match &tls {
                None => {
                    m.connections.fetch_add(1, Ordering::SeqCst);
                    tokio::spawn(serve(m, socket));
                }
                Some(tls) => {
                    let acceptor = tls.acceptor();
                    tokio::spawn(async move {
                        // A client that refuses our certificate ends the handshake: no connection.
                        if let Ok(stream) = acceptor.accept(socket).await {
                            m.connections.fetch_add(1, Ordering::SeqCst);
                            serve(m, stream).await;
                        }
                    });
                }
            }
        }
    });
    mock
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mock: Arc<Mock>, mut socket: S) {
    let mut gate = SaslGate::default();
    loop {
        let mut size = [0u8; 4];
        if socket.read_exact(&mut size).await.is_err() {
            return;
        }
        let mut frame = vec![0u8; i32::from_be_bytes(size) as usize];
        if socket.read_exact(&mut frame).await.is_err() {
            return;
        }
        let mut buf = Bytes::from(frame);
        let header = decode_request_header_from_buffer(&mut buf).unwrap();
        let api = ApiKey::try_from(header.request_api_key).unwrap();
        let v = header.request_api_version;
        if let Some(sasl) = &mock.sasl {
            match gate.check(sasl, api, v, &mut buf) {
                Verdict::Pass => {}
                Verdict::Answer(body) => {
                    respond(&mut socket, api, v, header.correlation_id, &body).await;
                    continue;
                }
                Verdict::AnswerThenClose(body) => {
                    respond(&mut socket, api, v, header.correlation_id, &body).await;
                    return;
                }
                Verdict::Close => return,
            }
        }
        let out = match api {
            ApiKey::ApiVersions => api_versions(&mock, v),
            ApiKey::AlterUserScramCredentials => {
                let req = AlterUserScramCredentialsRequest::decode(&mut buf, v).unwrap();
                encode(&security::alter_scram(mock.sasl.as_ref().unwrap(), req), v)
            }
            ApiKey::DescribeUserScramCredentials => {
                let req = DescribeUserScramCredentialsRequest::decode(&mut buf, v).unwrap();
                encode(
                    &security::describe_scram(mock.sasl.as_ref().unwrap(), req),
                    v,
                )
            }
            ApiKey::Metadata => {
                mock.state.lock().metadata_requests += 1;
                encode(&metadata(&mock), v)
            }
            ApiKey::Produce => {
                let req = ProduceRequest::decode(&mut buf, v).unwrap();
                mock.produces_seen.fetch_add(1, Ordering::SeqCst);
                let resp = produce(&mock, req);
                match resp {
                    Some(resp) => encode(&resp, v),
                    None => continue, // acks=0: no response
                }
            }
            ApiKey::Fetch => {
                let req = FetchRequest::decode(&mut buf, v).unwrap();
                let resp = fetch(&mock, &req, v);
                if resp.responses.iter().all(|t| {
                    t.partitions
                        .iter()
                        .all(|p| p.records.as_ref().is_none_or(Bytes::is_empty))
                }) {
                    tokio::time::sleep(Duration::from_millis(20)).await; // a tiny long-poll
                }
                encode(&resp, v)
            }
            ApiKey::ListOffsets => {
                let req = ListOffsetsRequest::decode(&mut buf, v).unwrap();
                encode(&list_offsets(&mock, &req), v)
            }
            other => panic!("mock does not handle {other:?}"),
        };
        respond(&mut socket, api, v, header.correlation_id, &out).await;
    }
}

async fn respond<S: AsyncWrite + Unpin>(
    socket: &mut S,
    api: ApiKey,
    v: i16,
    correlation_id: i32,
    body: &[u8],
) {
    let header_version = if api == ApiKey::ApiVersions {
        0
    } else {
        api.response_header_version(v)
    };
    let mut frame = BytesMut::new();
    frame.put_i32(0);
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut frame, header_version)
        .unwrap();
    frame.put_slice(body);
    let len = (frame.len() - 4) as i32;
    frame[..4].copy_from_slice(&len.to_be_bytes());
    // The client may have hung up (a refused login); that ends this connection, not the test.
    let _ = socket.write_all(&frame).await;
}

pub fn encode<T: Encodable>(body: &T, version: i16) -> Bytes {
    let mut b = BytesMut::new();
    body.encode(&mut b, version).unwrap();
    b.freeze()
}

fn api_versions(mock: &Mock, v: i16) -> Bytes {
    let keys: Vec<ApiVersion> = [
        (
            ApiKey::ApiVersions,
            0,
            if mock.old_api_versions { 2 } else { 4 },
        ),
        (ApiKey::Metadata, 0, 12),
        (ApiKey::Produce, 3, 11),
        (ApiKey::Fetch, 4, 16),
        (ApiKey::ListOffsets, 1, 8),
        (ApiKey::SaslHandshake, 0, 1),
        (ApiKey::SaslAuthenticate, 0, 2),
        (ApiKey::DescribeUserScramCredentials, 0, 0),
        (ApiKey::AlterUserScramCredentials, 0, 0),
    ]
    .iter()
    .map(|&(k, min, max)| {
        ApiVersion::default()
            .with_api_key(k as i16)
            .with_min_version(min)
            .with_max_version(max)
    })
    .collect();
    if mock.old_api_versions && v > 2 {
        // What Kafka does for an unknown ApiVersions version: a v0 body with the error.
        return encode(
            &ApiVersionsResponse::default()
                .with_error_code(35)
                .with_api_keys(keys),
            0,
        );
    }
    encode(&ApiVersionsResponse::default().with_api_keys(keys), v)
}

fn metadata(mock: &Mock) -> MetadataResponse {
    MetadataResponse::default()
        .with_brokers(vec![MetadataResponseBroker::default()
            .with_node_id(BrokerId(1))
            .with_host(StrBytes::from_static_str("127.0.0.1"))
            .with_port(i32::from(mock.port))])
        .with_controller_id(BrokerId(1))
        .with_cluster_id(Some(StrBytes::from_static_str("mock")))
        .with_topics(vec![MetadataResponseTopic::default()
            .with_name(Some(TopicName(StrBytes::from_static_str(TOPIC))))
            .with_topic_id(TOPIC_ID)
            .with_partitions(
                (0..PARTITIONS)
                    .map(|p| {
                        MetadataResponsePartition::default()
                            .with_partition_index(p)
                            .with_leader_id(BrokerId(1))
                            .with_replica_nodes(vec![BrokerId(1)])
                            .with_isr_nodes(vec![BrokerId(1)])
                    })
                    .collect(),
            )])
}

fn log_end(batches: &[Bytes]) -> i64 {
    batches.last().map_or(0, |b| {
        let base = (&b[..8]).get_i64();
        let delta = (&b[23..27]).get_i32();
        base + i64::from(delta) + 1
    })
}

fn produce(mock: &Mock, req: ProduceRequest) -> Option<ProduceResponse> {
    let mut state = mock.state.lock();
    let fail = state.fail_produce > 0;
    if fail {
        state.fail_produce -= 1;
    }
    let mut responses = Vec::new();
    for t in req.topic_data {
        let mut parts = Vec::new();
        for p in t.partition_data {
            if fail {
                parts.push(
                    PartitionProduceResponse::default()
                        .with_index(p.index)
                        .with_error_code(6),
                );
                continue;
            }
            let records = p.records.unwrap();
            // Exactly one batch per partition, as a real broker demands.
            assert_eq!(
                RecordBatchDecoder::decode_batch_info(&mut records.clone())
                    .unwrap()
                    .len(),
                1
            );
            let log = state
                .logs
                .entry((t.name.0.to_string(), p.index))
                .or_default();
            let base = log_end(log);
            let mut batch = BytesMut::from(&records[..]);
            batch[..8].copy_from_slice(&base.to_be_bytes()); // base offset is outside the CRC
            log.push(batch.freeze());
            parts.push(
                PartitionProduceResponse::default()
                    .with_index(p.index)
                    .with_base_offset(base),
            );
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(t.name)
                .with_partition_responses(parts),
        );
    }
    (req.acks != 0).then(|| ProduceResponse::default().with_responses(responses))
}

fn fetch(mock: &Mock, req: &FetchRequest, v: i16) -> FetchResponse {
    let state = mock.state.lock();
    let mut topics = Vec::new();
    for t in &req.topics {
        if v >= 13 {
            assert_eq!(t.topic_id, TOPIC_ID, "v13 fetches by topic id");
        }
        let mut parts = Vec::new();
        for p in &t.partitions {
            let log = state
                .logs
                .get(&(TOPIC.to_owned(), p.partition))
                .cloned()
                .unwrap_or_default();
            let end = log_end(&log);
            if p.fetch_offset > end {
                parts.push(
                    PartitionData::default()
                        .with_partition_index(p.partition)
                        .with_error_code(1),
                );
                continue;
            }
            let mut data = BytesMut::new();
            for b in &log {
                let base = (&b[..8]).get_i64();
                let last = base + i64::from((&b[23..27]).get_i32());
                if last >= p.fetch_offset {
                    data.put_slice(b);
                }
            }
            parts.push(
                PartitionData::default()
                    .with_partition_index(p.partition)
                    .with_high_watermark(end)
                    .with_records(Some(data.freeze())),
            );
        }
        topics.push(
            FetchableTopicResponse::default()
                .with_topic(t.topic.clone())
                .with_topic_id(t.topic_id)
                .with_partitions(parts),
        );
    }
    FetchResponse::default().with_responses(topics)
}

fn list_offsets(mock: &Mock, req: &ListOffsetsRequest) -> ListOffsetsResponse {
    let state = mock.state.lock();
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let parts = t
                .partitions
                .iter()
                .map(|p| {
                    let end = state
                        .logs
                        .get(&(t.name.0.to_string(), p.partition_index))
                        .map_or(0, |l| log_end(l));
                    let offset = if p.timestamp == -2 { 0 } else { end };
                    ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_offset(offset)
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(t.name.clone())
                .with_partitions(parts)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}

pub fn fast_config(port: u16) -> ClientConfig {
    let mut c = ClientConfig::new(format!("127.0.0.1:{port}"));
    c.retry_backoff = Duration::from_millis(5);
    c
}
