//! End-to-end tests with librdkafka (the `rdkafka` crate) against a real `strom serve` process:
//! keyed produce, headers, every compression codec, seeks into the middle of a batch, offsets for
//! times, restart after SIGTERM and after `kill -9`, and Metadata/ApiVersions sanity.
//!
//! Consumer groups are not implemented yet, so consumers only `assign` and never commit.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{
    consume_exactly, consumer, create_topic, fetch_batches, producer, producer_config, RawConn,
    StromProcess, TIMEOUT,
};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use rdkafka::consumer::Consumer;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, Timestamp, TopicPartitionList};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

#[tokio::test]
async fn keyed_produce_same_partition_order_and_headers() {
    let b = StromProcess::start();
    let topic = "keyed";
    create_topic(b.addr(), topic, 3).await;
    let p = producer(b.addr());
    const KEYS: usize = 12;
    const ROUNDS: usize = 20;
    let mut pending = Vec::new();
    for round in 0..ROUNDS {
        for key in 0..KEYS {
            let k = format!("key-{key}");
            let v = format!("{k}:{round}");
            let seq = round.to_string();
            let headers = OwnedHeaders::new()
                .insert(Header {
                    key: "seq",
                    value: Some(seq.as_bytes()),
                })
                .insert(Header {
                    key: "key",
                    value: Some(k.as_bytes()),
                })
                .insert(Header {
                    key: "null",
                    value: None::<&[u8]>,
                });
            let f = p
                .send_result(FutureRecord::to(topic).key(&k).payload(&v).headers(headers))
                .map_err(|(e, _)| e)
                .expect("enqueue");
            pending.push((k, v, f));
        }
    }
    // value -> (partition, offset); key -> partitions seen
    let mut acked = HashMap::new();
    let mut key_parts: BTreeMap<String, BTreeSet<i32>> = BTreeMap::new();
    for (k, v, f) in pending {
        let d = f
            .await
            .expect("delivery future")
            .unwrap_or_else(|(e, _)| panic!("delivery of {v} failed: {e}"));
        key_parts.entry(k).or_default().insert(d.partition);
        acked.insert(v, (d.partition, d.offset));
    }
    for (k, parts) in &key_parts {
        assert_eq!(parts.len(), 1, "key {k} went to partitions {parts:?}");
    }
    let used: BTreeSet<i32> = key_parts.values().flatten().copied().collect();
    assert!(used.len() >= 2, "12 keys all hashed to {used:?}");

    let c = consumer(b.addr());
    let msgs = consume_exactly(&c, topic, &[0, 1, 2], Offset::Beginning, KEYS * ROUNDS);
    let mut next_round: HashMap<String, usize> = HashMap::new();
    for m in &msgs {
        let k = std::str::from_utf8(m.key().expect("key")).expect("utf8 key");
        let v = std::str::from_utf8(m.payload().expect("value")).expect("utf8 value");
        assert_eq!(
            acked.get(v),
            Some(&(m.partition(), m.offset())),
            "record {v} consumed at a different place than acknowledged"
        );
        let expect = next_round.entry(k.to_string()).or_insert(0);
        assert_eq!(v, format!("{k}:{expect}"), "per-key order broken");
        *expect += 1;
        let h = m.headers().expect("headers");
        let got: Vec<(String, Option<Vec<u8>>)> = h
            .iter()
            .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
            .collect();
        let round = v.rsplit(':').next().expect("round");
        assert_eq!(
            got,
            vec![
                ("seq".to_string(), Some(round.as_bytes().to_vec())),
                ("key".to_string(), Some(k.as_bytes().to_vec())),
                ("null".to_string(), None),
            ],
            "headers of {v}"
        );
    }
    assert!(next_round.values().all(|n| *n == ROUNDS));
    b.assert_no_panic();
}

async fn codec_round_trip(codec: &str, expected: Compression) {
    let b = StromProcess::start();
    let topic = format!("codec-{codec}");
    create_topic(b.addr(), &topic, 1).await;
    let p: FutureProducer = producer_config(b.addr())
        .set("compression.type", codec)
        .set("linger.ms", "50")
        .create()
        .expect("producer");
    const N: usize = 1000;
    let value = |i: usize| format!("value-{i}-{}", "abcdefgh".repeat(i % 40));
    let mut pending = Vec::with_capacity(N);
    for i in 0..N {
        let f = p
            .send_result(
                FutureRecord::to(&topic)
                    .key(&format!("k{i}"))
                    .payload(&value(i)),
            )
            .map_err(|(e, _)| e)
            .expect("enqueue");
        pending.push(f);
    }
    for (i, f) in pending.into_iter().enumerate() {
        let d = f
            .await
            .expect("delivery future")
            .unwrap_or_else(|(e, _)| panic!("{codec}: delivery {i} failed: {e}"));
        assert_eq!(d.offset, i as i64, "{codec}: acknowledged offset");
    }
    // The batches on disk are the producer's, compressed with the codec.
    let mut conn = RawConn::connect(b.addr());
    let batches = fetch_batches(&mut conn, &topic, 0, 0);
    assert!(!batches.is_empty());
    // librdkafka silently sends uncompressed batches when it thinks the broker lacks the codec
    // (lz4 needs FindCoordinator advertised, zstd Produce v7 and Fetch v10).
    let stored: Vec<_> = batches
        .iter()
        .map(|b| (b.min_offset, b.record_count, b.compression))
        .collect();
    // librdkafka also sends a batch uncompressed when compressing would not make it smaller,
    // which happens to a lone small record (e.g. the first one, if it goes out alone): allow
    // that, but every batch of more records must carry the codec.
    assert!(
        stored
            .iter()
            .all(|b| b.2 == expected || (b.1 == 1 && b.2 == Compression::None)),
        "{codec}: stored batches (base offset, records, compression): {stored:?}"
    );
    assert!(
        stored.iter().any(|b| b.2 == expected),
        "{codec}: nothing stored with the codec: {stored:?}"
    );
    assert_eq!(
        batches
            .iter()
            .map(|b| b.record_count as usize)
            .sum::<usize>(),
        N
    );

    let c = consumer(b.addr());
    let msgs = consume_exactly(&c, &topic, &[0], Offset::Beginning, N);
    for (i, m) in msgs.iter().enumerate() {
        assert_eq!(m.offset(), i as i64, "{codec}: offset");
        assert_eq!(
            m.key(),
            Some(format!("k{i}").as_bytes()),
            "{codec}: key {i}"
        );
        assert_eq!(m.payload(), Some(value(i).as_bytes()), "{codec}: value {i}");
    }
    b.assert_no_panic();
}

#[tokio::test]
async fn codec_gzip() {
    codec_round_trip("gzip", Compression::Gzip).await;
}

#[tokio::test]
async fn codec_snappy() {
    codec_round_trip("snappy", Compression::Snappy).await;
}

#[tokio::test]
async fn codec_lz4() {
    codec_round_trip("lz4", Compression::Lz4).await;
}

#[tokio::test]
async fn codec_zstd() {
    codec_round_trip("zstd", Compression::Zstd).await;
}

#[tokio::test]
async fn seek_to_any_offset_including_mid_batch() {
    let b = StromProcess::start();
    let topic = "seek";
    create_topic(b.addr(), topic, 1).await;
    let p: FutureProducer = producer_config(b.addr())
        .set("linger.ms", "200")
        .set("batch.num.messages", "10000")
        .create()
        .expect("producer");
    const N: i64 = 1000;
    // Four waves, each awaited: a few large batches.
    for wave in 0..4 {
        let mut pending = Vec::new();
        for i in wave * 250..(wave + 1) * 250 {
            let f = p
                .send_result(FutureRecord::to(topic).key("k").payload(&format!("v{i}")))
                .map_err(|(e, _)| e)
                .expect("enqueue");
            pending.push((i, f));
        }
        for (i, f) in pending {
            let d = f
                .await
                .expect("delivery future")
                .unwrap_or_else(|(e, _)| panic!("delivery {i}: {e}"));
            assert_eq!(d.offset, i);
        }
    }
    let mut conn = RawConn::connect(b.addr());
    let batches = fetch_batches(&mut conn, topic, 0, 0);
    let mut next = 0;
    for bi in &batches {
        assert_eq!(bi.min_offset, next, "batches are contiguous");
        next += i64::from(bi.record_count);
    }
    assert_eq!(next, N);
    // Offsets to seek to: every batch's first, second, middle and last record.
    let mut targets = BTreeSet::new();
    let mut mid_batch = 0;
    for bi in &batches {
        let (base, n) = (bi.min_offset, i64::from(bi.record_count));
        for k in [base, base + 1, base + n / 2, base + n - 1] {
            if k < base + n {
                targets.insert(k);
                if k > base {
                    mid_batch += 1;
                }
            }
        }
    }
    assert!(
        mid_batch > 0,
        "producer never batched: {} batches",
        batches.len()
    );
    targets.insert(N - 1);

    let c = consumer(b.addr());
    for &k in &targets {
        // The broker answers a mid-batch fetch with the batch holding k.
        let first = &fetch_batches(&mut conn, topic, 0, k)[0];
        assert!(
            first.min_offset <= k && k < first.min_offset + i64::from(first.record_count),
            "fetch at {k} returned batch {}..+{}",
            first.min_offset,
            first.record_count
        );
        let msgs = consume_exactly(&c, topic, &[0], Offset::Offset(k), (N - k) as usize);
        for (j, m) in msgs.iter().enumerate() {
            let off = k + j as i64;
            assert_eq!(m.offset(), off, "after seeking to {k}");
            assert_eq!(m.payload(), Some(format!("v{off}").as_bytes()));
        }
    }
    // At the log end: nothing, and no error.
    consume_exactly(&c, topic, &[0], Offset::Offset(N), 0);
    b.assert_no_panic();
}

#[tokio::test]
async fn offsets_for_times_finds_first_offset_at_or_after() {
    let b = StromProcess::start();
    let topic = "times";
    create_topic(b.addr(), topic, 1).await;
    let p = producer(b.addr());
    let t0 = now_ms() - 3_600_000;
    let ts = |i: i64| t0 + 10 * i;
    const N: i64 = 300;
    // Three separately awaited waves so the lookup crosses batches.
    for wave in 0..3 {
        let mut pending = Vec::new();
        for i in wave * 100..(wave + 1) * 100 {
            let f = p
                .send_result(
                    FutureRecord::to(topic)
                        .key("k")
                        .payload(&format!("v{i}"))
                        .timestamp(ts(i)),
                )
                .map_err(|(e, _)| e)
                .expect("enqueue");
            pending.push((i, f));
        }
        for (i, f) in pending {
            let d = f
                .await
                .expect("delivery future")
                .unwrap_or_else(|(e, _)| panic!("delivery {i}: {e}"));
            assert_eq!(d.offset, i);
        }
    }
    let c = consumer(b.addr());
    let lookup = |t: i64| -> Offset {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, 0, Offset::Offset(t))
            .expect("tpl");
        let res = c
            .offsets_for_times(tpl, TIMEOUT)
            .expect("offsets_for_times");
        let e = res.find_partition(topic, 0).expect("partition in result");
        e.error().unwrap_or_else(|err| panic!("lookup {t}: {err}"));
        e.offset()
    };
    let mut cases = vec![
        (t0 - 10_000, Offset::Offset(0)),
        (t0, Offset::Offset(0)),
        (ts(N - 1), Offset::Offset(N - 1)),
        (ts(N - 1) + 1, Offset::End),
    ];
    for j in [1, 50, 99, 100, 101, 150, 199, 200, 250] {
        cases.push((ts(j), Offset::Offset(j)));
        cases.push((ts(j) - 5, Offset::Offset(j)));
        cases.push((ts(j) + 1, Offset::Offset(j + 1)));
    }
    for (t, want) in cases {
        assert_eq!(lookup(t), want, "offsets_for_times({t}) with t0={t0}");
    }
    // The timestamps themselves round-trip.
    let msgs = consume_exactly(&c, topic, &[0], Offset::Offset(150), (N - 150) as usize);
    for m in &msgs {
        assert_eq!(m.timestamp(), Timestamp::CreateTime(ts(m.offset())));
    }
    b.assert_no_panic();
}

/// Produces with acks=all, stops (SIGTERM) or crashes (SIGKILL) the broker, restarts it on the
/// same data dir and checks that topics and every acknowledged record are there.
async fn restart_keeps_acknowledged_records(crash: bool) {
    let mut b = StromProcess::start();
    let topics = [("durable-a", 2), ("durable-b", 1)];
    for (t, n) in topics {
        create_topic(b.addr(), t, n).await;
    }
    // (topic, partition) -> offset -> value
    let mut acked: BTreeMap<(String, i32), BTreeMap<i64, String>> = BTreeMap::new();
    let p = producer(b.addr());
    let mut pending = Vec::new();
    for i in 0..600 {
        let (t, n) = topics[i % 2];
        let part = (i / 2) as i32 % n;
        let v = format!("{t}-{part}-{i}");
        let f = p
            .send_result(FutureRecord::to(t).key("k").payload(&v).partition(part))
            .map_err(|(e, _)| e)
            .expect("enqueue");
        pending.push((t, part, v, f));
    }
    for (t, part, v, f) in pending {
        let d = f
            .await
            .expect("delivery future")
            .unwrap_or_else(|(e, _)| panic!("delivery {v}: {e}"));
        assert_eq!(d.partition, part);
        acked
            .entry((t.to_string(), part))
            .or_default()
            .insert(d.offset, v);
    }
    if crash {
        // Keep producing while the broker dies: kill it once acknowledgements are flowing, with
        // more records in flight. Every acknowledged one must survive.
        let p2: FutureProducer = producer_config(b.addr())
            .set("message.timeout.ms", "3000")
            .set("linger.ms", "1")
            .create()
            .expect("producer");
        let late: Arc<Mutex<Vec<(i64, String)>>> = Arc::default();
        let mut tasks = Vec::new();
        let mut killed_after = None;
        for i in 0..20_000 {
            let v = format!("durable-a-0-late-{i}");
            let f = p2
                .send_result(
                    FutureRecord::to("durable-a")
                        .key("k")
                        .payload(&v)
                        .partition(0),
                )
                .map_err(|(e, _)| e)
                .expect("enqueue");
            let sink = late.clone();
            tasks.push(tokio::spawn(async move {
                if let Ok(Ok(d)) = f.await {
                    sink.lock().expect("lock").push((d.offset, v));
                }
            }));
            if i % 50 == 49 {
                tokio::time::sleep(Duration::from_millis(1)).await;
                let n = late.lock().expect("lock").len();
                if killed_after.is_none() && n >= 500 {
                    b.kill9();
                    killed_after = Some((n, i + 1));
                }
                if killed_after.is_some_and(|(_, sent)| i + 1 >= sent + 1000) {
                    break;
                }
            }
        }
        let (acked_before_kill, sent_before_kill) =
            killed_after.expect("acknowledgements never reached 500 before the kill");
        for t in tasks {
            t.await.expect("delivery task");
        }
        let late = std::mem::take(&mut *late.lock().expect("lock"));
        eprintln!(
            "kill -9 after {sent_before_kill} sent / {acked_before_kill} acknowledged; \
             {} acknowledged in total",
            late.len()
        );
        let log = acked.entry(("durable-a".to_string(), 0)).or_default();
        for (offset, v) in late {
            assert!(
                log.insert(offset, v).is_none(),
                "offset {offset} acknowledged twice"
            );
        }
    } else {
        b.stop();
    }
    drop(p);

    b.restart();
    let c = consumer(b.addr());
    let md = c.fetch_metadata(None, TIMEOUT).expect("metadata");
    for (t, n) in topics {
        let mt = md
            .topics()
            .iter()
            .find(|mt| mt.name() == t)
            .unwrap_or_else(|| panic!("topic {t} lost in restart"));
        assert_eq!(mt.partitions().len(), n as usize, "partitions of {t}");
    }
    for ((t, part), records) in &acked {
        let (low, high) = c.fetch_watermarks(t, *part, TIMEOUT).expect("watermarks");
        assert_eq!(low, 0);
        let last_acked = *records.keys().next_back().expect("records");
        assert!(
            high > last_acked,
            "{t}/{part}: log end {high} after restart, acknowledged up to {last_acked}"
        );
        if !crash {
            assert_eq!(high as usize, records.len(), "{t}/{part}: extra records");
        }
        let msgs = consume_exactly(&c, t, &[*part], Offset::Beginning, high as usize);
        for (i, m) in msgs.iter().enumerate() {
            assert_eq!(m.offset(), i as i64, "{t}/{part}: offsets contiguous");
            if let Some(v) = records.get(&m.offset()) {
                assert_eq!(m.payload(), Some(v.as_bytes()), "{t}/{part}@{}", m.offset());
            }
        }
        // The log keeps growing from where it ended.
        let d = producer(b.addr())
            .send(
                FutureRecord::to(t.as_str())
                    .key("k")
                    .payload("after-restart")
                    .partition(*part),
                TIMEOUT,
            )
            .await
            .unwrap_or_else(|(e, _)| panic!("produce after restart: {e}"));
        assert_eq!(d.offset, high, "{t}/{part}: offset after restart");
    }
    b.assert_no_panic();
}

#[tokio::test]
async fn restart_after_sigterm_keeps_acknowledged_records() {
    restart_keeps_acknowledged_records(false).await;
}

#[tokio::test]
async fn restart_after_kill9_keeps_acknowledged_records() {
    restart_keeps_acknowledged_records(true).await;
}

#[tokio::test]
async fn metadata_and_api_versions_sanity() {
    let b = StromProcess::start();
    let c = consumer(b.addr());
    let md = c.fetch_metadata(None, TIMEOUT).expect("metadata");
    assert_eq!(md.brokers().len(), 1, "one broker");
    let broker = &md.brokers()[0];
    assert_eq!(broker.host(), "127.0.0.1");
    assert_eq!(broker.port(), i32::from(b.port()));
    let id = broker.id();

    create_topic(b.addr(), "meta", 3).await;
    let md = c.fetch_metadata(Some("meta"), TIMEOUT).expect("metadata");
    assert_eq!(md.topics().len(), 1);
    let t = &md.topics()[0];
    assert_eq!(t.name(), "meta");
    assert_eq!(t.error(), None);
    let mut ids: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
    ids.sort_unstable();
    assert_eq!(ids, vec![0, 1, 2]);
    for p in t.partitions() {
        assert_eq!(p.error(), None, "partition {}", p.id());
        assert_eq!(p.leader(), id);
        assert_eq!(p.replicas(), &[id]);
        assert_eq!(p.isr(), &[id]);
    }

    // Consumers do not auto-create (allow.auto.create.topics=false).
    let md = c
        .fetch_metadata(Some("no-such-topic"), TIMEOUT)
        .expect("metadata");
    let t = &md.topics()[0];
    assert_eq!(
        t.error().map(RDKafkaErrorCode::from),
        Some(RDKafkaErrorCode::UnknownTopicOrPartition)
    );

    // ApiVersions v3, raw: every core API advertised with a sane range.
    let mut conn = RawConn::connect(b.addr());
    let req = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("strom-it"))
        .with_client_software_version(StrBytes::from_static_str("1"));
    let resp: ApiVersionsResponse = conn.request(ApiKey::ApiVersions, 3, 42, &req);
    assert_eq!(resp.error_code, 0);
    let mut seen = BTreeSet::new();
    for k in &resp.api_keys {
        assert!(k.min_version <= k.max_version, "{k:?}");
        assert!(
            seen.insert(k.api_key),
            "api key {} advertised twice",
            k.api_key
        );
    }
    for key in [
        ApiKey::Produce,
        ApiKey::Fetch,
        ApiKey::ListOffsets,
        ApiKey::Metadata,
        ApiKey::ApiVersions,
        ApiKey::CreateTopics,
    ] {
        assert!(seen.contains(&(key as i16)), "{key:?} not advertised");
    }
    b.assert_no_panic();
}
