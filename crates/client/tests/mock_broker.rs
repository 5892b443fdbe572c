//! End-to-end tests of the client against the mock broker in `support/`: version negotiation
//! (including the ApiVersions v0 fallback), out-of-order pipelined responses, produce → fetch
//! round trips with offsets, acks=0, and metadata-driven bounded retries.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{decode_request_header_from_buffer, Encodable, StrBytes};
use strom_client::*;
use support::{encode, fast_config, start_mock, PARTITIONS, TOPIC};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[tokio::test]
async fn negotiates_versions_and_falls_back_to_api_versions_v0() {
    for old in [false, true] {
        let mock = start_mock(old).await;
        let conn = Connection::connect(
            &format!("127.0.0.1:{}", mock.port),
            &ConnectionConfig::default(),
        )
        .await
        .unwrap();
        assert_eq!(
            conn.version(ApiKey::Fetch).unwrap(),
            15,
            "min(client 15, broker 16)"
        );
        assert_eq!(conn.version(ApiKey::Produce).unwrap(), 11);
        assert!(
            conn.version(ApiKey::CreateTopics).is_err(),
            "not advertised"
        );
    }
}

#[tokio::test]
async fn produce_then_consume_round_trip_with_offsets() {
    let mock = start_mock(false).await;
    let client = Client::with_config(fast_config(mock.port)).await.unwrap();
    let producer = Producer::new(
        client.clone(),
        ProducerConfig {
            linger: Duration::from_millis(1),
            batch_size: 200,
            ..ProducerConfig::default()
        },
    );
    let mut futures = Vec::new();
    for i in 0..50u32 {
        let key = Bytes::from(format!("key-{}", i % 5));
        let value = Bytes::from(format!("value-{i}"));
        futures.push(
            producer
                .send(TOPIC, Some(key), Some(value), vec![("h".into(), None)])
                .await
                .unwrap(),
        );
    }
    producer.flush().await.unwrap();
    let mut per_partition: HashMap<i32, Vec<i64>> = HashMap::new();
    for (i, f) in futures.into_iter().enumerate() {
        let md = f.wait().await.unwrap();
        let key = format!("key-{}", i % 5);
        assert_eq!(
            md.partition,
            partition_for_key(key.as_bytes(), PARTITIONS),
            "Java-compatible partitioning"
        );
        per_partition
            .entry(md.partition)
            .or_default()
            .push(md.offset);
    }
    for offsets in per_partition.values() {
        let expected: Vec<i64> = (0..offsets.len() as i64).collect();
        assert_eq!(
            offsets, &expected,
            "dense offsets per partition, in send order"
        );
    }
    assert!(
        mock.produces_seen.load(Ordering::SeqCst) > 1,
        "small batch.size splits into several requests"
    );

    let mut consumer = Consumer::new(client.clone(), ConsumerConfig::default());
    consumer
        .assign_topic(TOPIC, StartOffset::Earliest)
        .await
        .unwrap();
    let mut seen = Vec::new();
    while seen.len() < 50 {
        seen.extend(consumer.poll().await.unwrap());
    }
    assert_eq!(seen.len(), 50);
    let mut values: Vec<String> = seen
        .iter()
        .map(|r| String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap())
        .collect();
    values.sort();
    let mut expected: Vec<String> = (0..50).map(|i| format!("value-{i}")).collect();
    expected.sort();
    assert_eq!(values, expected);
    assert_eq!(seen[0].headers, vec![("h".to_owned(), None)]);

    // Starting mid-batch skips the earlier records of that batch.
    let (p, offsets) = per_partition.iter().find(|(_, o)| o.len() >= 3).unwrap();
    let mut consumer = Consumer::new(client.clone(), ConsumerConfig::default());
    consumer.assign(TOPIC, *p, StartOffset::Offset(2));
    let first = consumer.next().await.unwrap();
    assert_eq!(first.offset, 2);
    assert!(offsets.len() >= 3);

    // Out of range resets to latest by default; latest then sees nothing new.
    let mut consumer = Consumer::new(client.clone(), ConsumerConfig::default());
    consumer.assign(TOPIC, *p, StartOffset::Offset(1_000));
    assert!(consumer.poll().await.unwrap().is_empty());
    consumer.resolve_positions().await.unwrap();
    assert_eq!(consumer.assignment()[0].1, Some(offsets.len() as i64));

    let listed = client
        .list_offsets(&[
            (TopicPartition::new(TOPIC, *p), OffsetSpec::Latest),
            (TopicPartition::new(TOPIC, *p), OffsetSpec::Earliest),
        ])
        .await
        .unwrap();
    assert_eq!(listed.len(), 1, "same partition twice collapses");
}

#[tokio::test]
async fn produce_retries_after_not_leader() {
    let mock = start_mock(false).await;
    mock.state.lock().fail_produce = 2;
    let client = Client::with_config(fast_config(mock.port)).await.unwrap();
    let producer = Producer::new(
        client,
        ProducerConfig {
            linger: Duration::ZERO,
            ..ProducerConfig::default()
        },
    );
    let f = producer
        .send(TOPIC, None, Some(Bytes::from_static(b"x")), Vec::new())
        .await
        .unwrap();
    let md = f.wait().await.unwrap();
    assert_eq!(md.offset, 0);
    assert!(
        mock.state.lock().metadata_requests >= 3,
        "metadata refreshed before each retry"
    );
    producer.flush().await.unwrap();
}

#[tokio::test]
async fn produce_gives_up_after_bounded_retries_and_flush_reports_it() {
    let mock = start_mock(false).await;
    mock.state.lock().fail_produce = usize::MAX;
    let mut config = fast_config(mock.port);
    config.retries = 2;
    let client = Client::with_config(config).await.unwrap();
    let producer = Producer::new(
        client,
        ProducerConfig {
            linger: Duration::ZERO,
            ..ProducerConfig::default()
        },
    );
    let f = producer
        .send(TOPIC, None, Some(Bytes::from_static(b"x")), Vec::new())
        .await
        .unwrap();
    let err = f.wait().await.unwrap_err();
    assert_eq!(err.kafka_code(), Some(6));
    assert!(err.to_string().contains("NOT_LEADER_OR_FOLLOWER"), "{err}");
    let err = producer.flush().await.unwrap_err();
    assert!(
        matches!(err, ClientError::SendFailed { failed: 1, .. }),
        "{err}"
    );
    assert_eq!(
        mock.produces_seen.load(Ordering::SeqCst),
        3,
        "1 try + 2 retries"
    );
    producer.flush().await.unwrap();
}

#[tokio::test]
async fn acks_zero_does_not_wait_for_a_response() {
    let mock = start_mock(false).await;
    let client = Client::with_config(fast_config(mock.port)).await.unwrap();
    let producer = Producer::new(
        client,
        ProducerConfig {
            acks: Acks::None,
            linger: Duration::ZERO,
            ..ProducerConfig::default()
        },
    );
    let f = producer
        .send(TOPIC, None, Some(Bytes::from_static(b"x")), Vec::new())
        .await
        .unwrap();
    let md = tokio::time::timeout(Duration::from_secs(5), f.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(md.offset, -1);
    producer.flush().await.unwrap();
}

/// A server that answers pipelined Metadata requests in reverse order: each response must still
/// reach the request with its correlation id.
#[tokio::test]
async fn out_of_order_responses_reach_their_requests() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut held = Vec::new();
        loop {
            let mut size = [0u8; 4];
            if socket.read_exact(&mut size).await.is_err() {
                return;
            }
            let mut frame = vec![0u8; i32::from_be_bytes(size) as usize];
            socket.read_exact(&mut frame).await.unwrap();
            let mut buf = Bytes::from(frame);
            let header = decode_request_header_from_buffer(&mut buf).unwrap();
            let v = header.request_api_version;
            let (api, body) = if header.request_api_key == ApiKey::ApiVersions as i16 {
                let keys = vec![ApiVersion::default()
                    .with_api_key(ApiKey::Metadata as i16)
                    .with_max_version(12)];
                (
                    ApiKey::ApiVersions,
                    encode(&ApiVersionsResponse::default().with_api_keys(keys), v),
                )
            } else {
                // Tag each answer with the correlation id it belongs to.
                let id = StrBytes::from_string(header.correlation_id.to_string());
                (
                    ApiKey::Metadata,
                    encode(&MetadataResponse::default().with_cluster_id(Some(id)), v),
                )
            };
            let mut out = BytesMut::new();
            out.put_i32(0);
            ResponseHeader::default()
                .with_correlation_id(header.correlation_id)
                .encode(&mut out, api.response_header_version(v))
                .unwrap();
            out.put_slice(&body);
            let len = (out.len() - 4) as i32;
            out[..4].copy_from_slice(&len.to_be_bytes());
            if api == ApiKey::ApiVersions {
                socket.write_all(&out).await.unwrap();
                continue;
            }
            held.push(out);
            if held.len() == 3 {
                for out in held.drain(..).rev() {
                    socket.write_all(&out).await.unwrap();
                }
            }
        }
    });
    let conn = Connection::connect(&format!("127.0.0.1:{port}"), &ConnectionConfig::default())
        .await
        .unwrap();
    let v = conn.version(ApiKey::Metadata).unwrap();
    let pending: Vec<_> = (0..3)
        .map(|_| conn.start(v, &MetadataRequest::default()).unwrap())
        .collect();
    let mut ids = Vec::new();
    for p in pending {
        ids.push(p.wait().await.unwrap().cluster_id.unwrap().to_string());
    }
    assert_eq!(
        ids,
        vec!["1", "2", "3"],
        "correlation 0 was the ApiVersions handshake"
    );
}

#[tokio::test]
async fn dropped_connection_fails_pending_requests() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        // Answer the handshake, then hang up on the next request.
        let mut size = [0u8; 4];
        socket.read_exact(&mut size).await.unwrap();
        let mut frame = vec![0u8; i32::from_be_bytes(size) as usize];
        socket.read_exact(&mut frame).await.unwrap();
        let mut buf = Bytes::from(frame);
        let header = decode_request_header_from_buffer(&mut buf).unwrap();
        let keys = vec![ApiVersion::default()
            .with_api_key(ApiKey::Metadata as i16)
            .with_max_version(12)];
        let body = encode(
            &ApiVersionsResponse::default().with_api_keys(keys),
            header.request_api_version,
        );
        let mut out = BytesMut::new();
        out.put_i32((4 + body.len()) as i32);
        out.put_i32(header.correlation_id);
        out.put_slice(&body);
        socket.write_all(&out).await.unwrap();
        socket.read_exact(&mut size).await.unwrap();
    });
    let conn = Connection::connect(&format!("127.0.0.1:{port}"), &ConnectionConfig::default())
        .await
        .unwrap();
    let err = conn
        .send(12, &MetadataRequest::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::ConnectionClosed { .. } | ClientError::Io { .. }
        ),
        "{err}"
    );
    assert!(conn.is_closed());
    assert!(conn.send(12, &MetadataRequest::default()).await.is_err());
}

/// Records sent one at a time with pauses between them (a rate-limited producer) must each be
/// shipped within about `linger`, and `send` must never block on memory that is not in use: this
/// once hung because a batch released its 61-byte header from `buffer_memory` accounting without
/// having reserved it, so the counter wrapped below zero as soon as the producer went idle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_records_are_each_delivered_promptly() {
    const BOUND: Duration = Duration::from_secs(2);
    for (acks, linger_ms) in [
        (Acks::All, 5),
        (Acks::All, 0),
        (Acks::Leader, 5),
        (Acks::None, 5),
        (Acks::None, 0),
    ] {
        let case = format!("{acks:?}, linger {linger_ms} ms");
        let mock = start_mock(false).await;
        let client = Client::with_config(fast_config(mock.port)).await.unwrap();
        let producer = Producer::new(
            client,
            ProducerConfig {
                acks,
                linger: Duration::from_millis(linger_ms),
                ..ProducerConfig::default()
            },
        );
        let send = |partition: i32, i: u32| {
            let producer = producer.clone();
            async move {
                tokio::time::timeout(
                    BOUND,
                    producer.send_to(
                        TOPIC,
                        partition,
                        None,
                        Some(Bytes::from(format!("v{i}"))),
                        Vec::new(),
                    ),
                )
                .await
                .unwrap_or_else(|_| panic!("send of record {i} blocked"))
                .unwrap()
            }
        };
        // One record at a time: each delivery resolves on its own, without a later record.
        for i in 0..40u32 {
            let f = send(0, i).await;
            let md = tokio::time::timeout(BOUND, f.wait())
                .await
                .unwrap_or_else(|_| panic!("record {i} not delivered ({case})"))
                .unwrap();
            if acks != Acks::None {
                assert_eq!(md.offset, i64::from(i), "{case}");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        // Spaced sends with the futures kept, then flush: flush ships the open batch and returns
        // once everything is acknowledged.
        let mut futures = Vec::new();
        for i in 0..20u32 {
            futures.push(send(1, i).await);
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tokio::time::timeout(BOUND, producer.flush())
            .await
            .unwrap_or_else(|_| panic!("flush hung ({case})"))
            .unwrap();
        for f in futures {
            tokio::time::timeout(BOUND, f.wait())
                .await
                .unwrap_or_else(|_| panic!("flushed record not resolved ({case})"))
                .unwrap();
        }
        // Everything reached the broker (with acks=0 it may still be on its way).
        let deadline = std::time::Instant::now() + BOUND;
        loop {
            let records: usize = {
                let state = mock.state.lock();
                [0, 1]
                    .iter()
                    .filter_map(|p| state.logs.get(&(TOPIC.to_owned(), *p)))
                    .flatten()
                    .map(|b| (&b[57..61]).get_i32() as usize) // v2 header: record count
                    .sum()
            };
            if records == 60 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{records} of 60 records reached the mock ({case})"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}
