//! Log compaction end to end with rdkafka against the `strom` binary: 100k records over 1k keys
//! plus tombstones; after cleaning a consumer from the beginning sees exactly the latest value of
//! every live key, no tombstoned key once `delete.retention.ms` passed, strictly increasing
//! offsets, and the partition shrank on disk. A kill -9 in the middle of (throttled) cleaning
//! loses nothing, duplicates nothing and leaves no `.cleaned`/`.swap`/`.deleted` files.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{client_config, consumer, StromProcess, TIMEOUT};
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, NewTopic, ResourceSpecifier, TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

const KEYS: usize = 1000;
const RECORDS: usize = 100_000;
const TOMBSTONED: usize = 100;
const FILLER: usize = 3000;

/// Topic configs shared by the tests (segments of 64 KiB, eager cleaning, short tombstone life).
const TOPIC_CONFIGS: &[(&str, &str)] = &[
    ("segment.bytes", "65536"),
    ("min.cleanable.dirty.ratio", "0.01"),
    ("delete.retention.ms", "1000"),
];

async fn create_topic(addr: &str, name: &str, policy: &str) {
    let admin: AdminClient<DefaultClientContext> =
        client_config(addr).create().expect("admin client");
    let mut t = NewTopic::new(name, 1, TopicReplication::Fixed(1)).set("cleanup.policy", policy);
    for (k, v) in TOPIC_CONFIGS {
        t = t.set(k, v);
    }
    let res = admin
        .create_topics(&[t], &AdminOptions::new().operation_timeout(Some(TIMEOUT)))
        .await
        .expect("CreateTopics");
    for r in res {
        r.unwrap_or_else(|(t, e)| panic!("creating {t}: {e:?}"));
    }
}

fn bulk_producer(addr: &str) -> FutureProducer {
    client_config(addr)
        .set("acks", "all")
        .set("linger.ms", "20")
        // Batches must fit the 64 KiB segments.
        .set("batch.size", "16384")
        .set("queue.buffering.max.messages", "500000")
        .set("message.timeout.ms", "60000")
        .create()
        .expect("producer")
}

/// Writes the workload and returns the latest value per key (`None` = tombstoned).
async fn write_workload(addr: &str, topic: &str) -> HashMap<String, Option<String>> {
    let p = bulk_producer(addr);
    let mut latest: HashMap<String, Option<String>> = HashMap::new();
    let mut pending = Vec::with_capacity(RECORDS + TOMBSTONED + FILLER);
    let mut send = |key: String, value: Option<String>| {
        let mut r = FutureRecord::<String, String>::to(topic).key(&key);
        if let Some(v) = &value {
            r = r.payload(v);
        }
        match p.send_result(r) {
            Ok(f) => pending.push(f),
            Err((e, _)) => panic!("enqueue failed: {e}"),
        }
        latest.insert(key, value);
    };
    for i in 0..RECORDS {
        send(format!("key-{}", i % KEYS), Some(format!("value-{i}")));
    }
    for k in 0..TOMBSTONED {
        send(format!("key-{k}"), None);
    }
    // Enough fresh keys to roll the segment holding the tombstones, so they can be cleaned.
    for j in 0..FILLER {
        send(format!("filler-{j}"), Some(format!("f-{j}")));
    }
    for f in pending {
        f.await
            .expect("delivery future")
            .unwrap_or_else(|(e, _)| panic!("delivery failed: {e}"));
    }
    latest
}

/// Everything from the beginning up to the high watermark: (offset, key, value).
fn read_all(c: &BaseConsumer, topic: &str) -> Vec<(i64, String, Option<String>)> {
    let (_, high) = c.fetch_watermarks(topic, 0, TIMEOUT).expect("watermarks");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .expect("assignment");
    c.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while out
        .last()
        .is_none_or(|r: &(i64, String, Option<String>)| r.0 + 1 < high)
    {
        assert!(
            Instant::now() < deadline,
            "did not reach the high watermark {high}"
        );
        if let Some(m) = c.poll(Duration::from_millis(100)) {
            let m = m.expect("consumer error");
            let s = |b: Option<&[u8]>| b.map(|b| String::from_utf8_lossy(b).into_owned());
            out.push((m.offset(), s(m.key()).unwrap_or_default(), s(m.payload())));
        }
    }
    out
}

/// Offsets strictly increase (no duplicates, no reordering).
fn assert_increasing(recs: &[(i64, String, Option<String>)]) {
    for w in recs.windows(2) {
        assert!(w[0].0 < w[1].0, "offsets not strictly increasing: {w:?}");
    }
}

/// True when `recs` is exactly the latest value of each live key and nothing else.
fn fully_compacted(
    recs: &[(i64, String, Option<String>)],
    latest: &HashMap<String, Option<String>>,
) -> bool {
    let live = latest.values().filter(|v| v.is_some()).count();
    recs.len() == live
        && recs
            .iter()
            .all(|(_, k, v)| v.is_some() && latest.get(k) == Some(v))
}

fn partition_dir(broker: &StromProcess, topic: &str) -> std::path::PathBuf {
    broker.data_dir().join(format!("{topic}-0"))
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .expect("ls")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("ls")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".cleaned") || n.ends_with(".swap") || n.ends_with(".deleted"))
        .collect()
}

/// Polls until the topic reads as fully compacted; returns the last read.
fn wait_compacted(
    c: &BaseConsumer,
    topic: &str,
    latest: &HashMap<String, Option<String>>,
    limit: Duration,
) -> Vec<(i64, String, Option<String>)> {
    let deadline = Instant::now() + limit;
    loop {
        let recs = read_all(c, topic);
        assert_increasing(&recs);
        if fully_compacted(&recs, latest) || Instant::now() > deadline {
            return recs;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn compaction_keeps_the_latest_value_per_key_and_drops_tombstones() {
    let mut broker = StromProcess::start_with_args(&["--set", "log.cleaner.backoff.ms=100"]);
    let topic = "compacted";
    // Written as a delete-policy topic, then switched to compact with AlterConfigs (API 33): the
    // change must apply without a restart.
    create_topic(broker.addr(), topic, "delete").await;
    let latest = write_workload(broker.addr(), topic).await;
    let dir = partition_dir(&broker, topic);
    let size_before = dir_size(&dir);
    let admin: AdminClient<DefaultClientContext> =
        client_config(broker.addr()).create().expect("admin");
    let mut alter =
        AlterConfig::new(ResourceSpecifier::Topic(topic)).set("cleanup.policy", "compact");
    for (k, v) in TOPIC_CONFIGS {
        alter = alter.set(k, v);
    }
    let res = admin
        .alter_configs(&[alter], &AdminOptions::new())
        .await
        .expect("AlterConfigs");
    for r in res {
        r.unwrap_or_else(|(spec, e)| panic!("altering {spec:?}: {e:?}"));
    }
    let c = consumer(broker.addr());
    let recs = wait_compacted(&c, topic, &latest, Duration::from_secs(90));
    assert!(
        fully_compacted(&recs, &latest),
        "not compacted to the latest value per live key: {} records, {} live keys; stderr:\n{}",
        recs.len(),
        latest.values().filter(|v| v.is_some()).count(),
        broker.stderr()
    );
    for k in 0..TOMBSTONED {
        let key = format!("key-{k}");
        assert!(
            recs.iter().all(|r| r.1 != key),
            "tombstoned {key} still visible"
        );
    }
    let size_after = dir_size(&dir);
    assert!(
        size_after * 5 < size_before,
        "size on disk {size_before} -> {size_after}"
    );
    // Keyless records are refused on a compacted topic.
    let p = common::producer(broker.addr());
    let err = p
        .send(
            FutureRecord::<str, str>::to(topic).payload("no key"),
            TIMEOUT,
        )
        .await
        .expect_err("keyless record accepted");
    assert_eq!(
        err.0.rdkafka_error_code(),
        Some(RDKafkaErrorCode::InvalidRecord),
        "{err:?}"
    );
    broker.assert_no_panic();
    broker.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn kill9_during_cleaning_loses_and_duplicates_nothing() {
    // Throttled so the kill lands while the cleaner is still rewriting segments.
    let mut broker = StromProcess::start_with_args(&[
        "--set",
        "log.cleaner.backoff.ms=100",
        "--set",
        "log.cleaner.io.max.bytes.per.second=400000",
    ]);
    let topic = "compacted-crash";
    create_topic(broker.addr(), topic, "compact").await;
    let latest = write_workload(broker.addr(), topic).await;
    let dir = partition_dir(&broker, topic);
    // Wait until the cleaner is at work (a .cleaned file exists or a swap already happened).
    let deadline = Instant::now() + Duration::from_secs(60);
    let started = loop {
        if !leftovers(&dir).is_empty() || broker.stderr().contains("cleaned log") {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(
        started,
        "the cleaner never started; stderr:\n{}",
        broker.stderr()
    );
    std::thread::sleep(Duration::from_millis(700));
    broker.kill9();
    // Restart with the cleaner off: what recovery left must be complete and consistent.
    broker.set_extra_args(&["--set", "log.cleaner.enable=false"]);
    broker.start_again();
    assert_eq!(
        leftovers(&dir),
        Vec::<String>::new(),
        "swap files left after recovery"
    );
    let c = consumer(broker.addr());
    let recs = read_all(&c, topic);
    assert_increasing(&recs);
    // No data loss: the latest value of every key is there (tombstones too: not yet expired
    // or not yet cleaned).
    let mut last: HashMap<&str, &Option<String>> = HashMap::new();
    for (_, k, v) in &recs {
        last.insert(k, v);
    }
    for (k, v) in &latest {
        match v {
            Some(_) => assert_eq!(last.get(k.as_str()), Some(&v), "latest value of {k}"),
            None => assert!(
                last.get(k.as_str()).is_none_or(|x| x.is_none()),
                "{k} resurrected"
            ),
        }
    }
    // And the cleaner finishes the job after another restart.
    broker.stop();
    broker.set_extra_args(&["--set", "log.cleaner.backoff.ms=100"]);
    broker.start_again();
    let c = consumer(broker.addr());
    let recs = wait_compacted(&c, topic, &latest, Duration::from_secs(90));
    assert!(
        fully_compacted(&recs, &latest),
        "not compacted after restart: {} records",
        recs.len()
    );
    broker.assert_no_panic();
    broker.stop();
}
