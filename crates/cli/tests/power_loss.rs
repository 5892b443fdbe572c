//! Power loss under a real broker (issue 14): `strom serve` runs on crashfs, a filesystem that
//! keeps only what was fsync'd (files by their own fsync, directory entries by the directory's),
//! and each cycle ends with the broker stopped while records are in flight (kill -9, or a clean
//! SIGTERM shutdown, after which the broker trusts its clean-shutdown marker and skips recovery)
//! and a simulated power cut. After every restart the cluster id and every topic id must be the
//! ones from before, deleted topics stay deleted, every acknowledged record must be at its offset
//! with its value, and a new producer and consumer must work.
//!
//! Needs FUSE (/dev/fuse, and root or fusermount3): without it the test fails, it never passes
//! silently.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{
    client_config, consumer, create_topic, producer_config, RawConn, StromProcess, TIMEOUT,
};
use crashfs::CrashFs;
use kafka_protocol::messages::{ApiKey, MetadataRequest, MetadataResponse};
use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use uuid::Uuid;

/// Crash cycles; each adds a topic and (after the first) grows an older topic by one partition.
/// Even cycles end with kill -9, odd ones with a clean shutdown, then the power loss.
const CYCLES: usize = 5;
/// Records per cycle, acknowledged before the crash.
const RECORDS: usize = 150;
/// At most this many more records are sent around the stop, so it lands mid-stream.
const IN_FLIGHT: usize = 2_000;

/// Small segments, so every cycle rolls some (new segment files, indexes, producer snapshots);
/// a short broker session, so a restarted broker need not wait 9 s for its killed incarnation
/// to expire before it may register again.
const BROKER_ARGS: &[&str] = &[
    "--set",
    "log.segment.bytes=16384",
    "--set",
    "broker.session.timeout.ms=2000",
    "--set",
    "broker.heartbeat.interval.ms=250",
];
/// Producer batches stay well below a segment (a larger batch is refused).
const BATCH_BYTES: &str = "4000";

/// (topic, partition, offset, value) of one acknowledged record.
type AckedRecord = (String, i32, i64, String);

type Acked = BTreeMap<(String, i32), BTreeMap<i64, String>>;

/// What must survive every power loss.
#[derive(Debug, Default)]
struct Expected {
    cluster_id: Option<String>,
    topic_ids: BTreeMap<String, Uuid>,
    partitions: BTreeMap<String, i32>,
    /// Topics deleted (acknowledged): they must stay deleted.
    deleted: Vec<String>,
    acked: Acked,
}

/// `cluster.id` in the data dir's meta.properties.
fn cluster_id_on_disk(data_dir: &Path) -> String {
    let path = data_dir.join("meta.properties");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    text.lines()
        .find_map(|l| l.strip_prefix("cluster.id="))
        .unwrap_or_else(|| panic!("no cluster.id in {}:\n{text}", path.display()))
        .trim()
        .to_string()
}

/// Metadata v12 for every topic: the cluster id, and each topic's id and partition count.
fn metadata(addr: &str) -> (String, BTreeMap<String, (Uuid, i32)>) {
    let mut conn = RawConn::connect(addr);
    let resp: MetadataResponse = conn.request(
        ApiKey::Metadata,
        12,
        1,
        &MetadataRequest::default().with_topics(None),
    );
    let cluster_id = resp
        .cluster_id
        .expect("Metadata v12 names the cluster id")
        .to_string();
    let topics = resp
        .topics
        .into_iter()
        .filter_map(|t| {
            assert_eq!(t.error_code, 0, "metadata of {:?}", t.name);
            let name = t.name?.0.to_string();
            Some((name, (t.topic_id, t.partitions.len() as i32)))
        })
        .collect();
    (cluster_id, topics)
}

/// acks=all (`common::producer_config`) with batches that fit a segment.
fn acks_all_producer(addr: &str) -> FutureProducer {
    producer_config(addr)
        .set("batch.size", BATCH_BYTES)
        .create()
        .expect("producer")
}

async fn add_partitions(addr: &str, topic: &str, total: i32) {
    let admin: AdminClient<DefaultClientContext> =
        client_config(addr).create().expect("admin client");
    let opts = AdminOptions::new().operation_timeout(Some(TIMEOUT));
    let res = admin
        .create_partitions(&[NewPartitions::new(topic, total as usize)], &opts)
        .await
        .expect("CreatePartitions request");
    for r in res {
        r.unwrap_or_else(|(t, e)| panic!("adding partitions to {t}: {e:?}"));
    }
}

/// Produces `RECORDS` records round-robin over every partition of every topic with acks=all and
/// records each acknowledged offset.
async fn produce_acked(addr: &str, cycle: usize, expected: &mut Expected) {
    let targets: Vec<(String, i32)> = expected
        .partitions
        .iter()
        .flat_map(|(t, &n)| (0..n).map(move |p| (t.clone(), p)))
        .collect();
    let p = acks_all_producer(addr);
    let mut pending = Vec::new();
    for i in 0..RECORDS {
        let (t, part) = &targets[i % targets.len()];
        let v = format!("c{cycle}-{t}-{part}-{i}");
        let f = p
            .send_result(FutureRecord::to(t).key("k").payload(&v).partition(*part))
            .map_err(|(e, _)| e)
            .expect("enqueue");
        pending.push((t.clone(), *part, v, f));
    }
    for (t, part, v, f) in pending {
        let d = f
            .await
            .expect("delivery future")
            .unwrap_or_else(|(e, _)| panic!("delivery of {v}: {e}"));
        let log = expected.acked.entry((t, part)).or_default();
        assert!(
            log.insert(d.offset, v).is_none(),
            "offset acknowledged twice"
        );
    }
}

/// Keeps producing to every partition and stops the broker (kill -9, or SIGTERM when `clean`)
/// once some of these records are acknowledged, so the stop lands with appends and fsyncs in
/// flight. Returns how many were acknowledged; those are added to `expected`.
async fn produce_and_stop(
    b: &mut StromProcess,
    cycle: usize,
    expected: &mut Expected,
    clean: bool,
) -> usize {
    let stop = |b: &mut StromProcess| {
        if clean {
            b.stop();
        } else {
            b.kill9();
        }
    };
    let targets: Vec<(String, i32)> = expected
        .partitions
        .iter()
        .flat_map(|(t, &n)| (0..n).map(move |p| (t.clone(), p)))
        .collect();
    let p: FutureProducer = producer_config(b.addr())
        .set("batch.size", BATCH_BYTES)
        .set("message.timeout.ms", "3000")
        .set("linger.ms", "1")
        .create()
        .expect("producer");
    let late: Arc<Mutex<Vec<AckedRecord>>> = Arc::default();
    let mut tasks = Vec::new();
    let mut stopped = false;
    for i in 0..IN_FLIGHT {
        let (t, part) = targets[i % targets.len()].clone();
        let v = format!("c{cycle}-late-{t}-{part}-{i}");
        let f = p
            .send_result(FutureRecord::to(&t).key("k").payload(&v).partition(part))
            .map_err(|(e, _)| e)
            .expect("enqueue");
        let sink = Arc::clone(&late);
        tasks.push(tokio::spawn(async move {
            if let Ok(Ok(d)) = f.await {
                sink.lock().expect("lock").push((t, part, d.offset, v));
            }
        }));
        if i % 20 == 19 {
            tokio::time::sleep(Duration::from_millis(1)).await;
            if late.lock().expect("lock").len() >= 100 {
                stop(b);
                stopped = true;
                break;
            }
        }
    }
    if !stopped {
        stop(b);
    }
    for t in tasks {
        t.await.expect("delivery task");
    }
    let late = std::mem::take(&mut *late.lock().expect("lock"));
    let n = late.len();
    for (t, part, offset, v) in late {
        let log = expected.acked.entry((t, part)).or_default();
        assert!(
            log.insert(offset, v).is_none(),
            "offset {offset} acknowledged twice"
        );
    }
    n
}

async fn delete_topic(addr: &str, topic: &str) {
    let admin: AdminClient<DefaultClientContext> =
        client_config(addr).create().expect("admin client");
    let opts = AdminOptions::new().operation_timeout(Some(TIMEOUT));
    let res = admin
        .delete_topics(&[topic], &opts)
        .await
        .expect("DeleteTopics request");
    for r in res {
        r.unwrap_or_else(|(t, e)| panic!("deleting {t}: {e:?}"));
    }
}

/// The identities now equal the ones recorded (recording them the first time), and deleted
/// topics stay deleted.
fn check_ids(b: &StromProcess, data_dir: &Path, expected: &mut Expected, when: &str) {
    let on_disk = cluster_id_on_disk(data_dir);
    let (served, topics) = metadata(b.addr());
    assert_eq!(
        on_disk, served,
        "{when}: meta.properties vs Metadata cluster id"
    );
    let cluster_id = expected.cluster_id.get_or_insert_with(|| served.clone());
    assert_eq!(&served, cluster_id, "{when}: the cluster id changed");
    for (t, &n) in &expected.partitions {
        let (id, parts) = topics
            .get(t)
            .unwrap_or_else(|| panic!("{when}: topic {t} is gone; topics: {topics:?}"));
        assert_ne!(*id, Uuid::nil(), "{when}: topic {t} has no id");
        let known = *expected.topic_ids.entry(t.clone()).or_insert(*id);
        assert_eq!(*id, known, "{when}: the id of topic {t} changed");
        assert_eq!(*parts, n, "{when}: partitions of {t}");
    }
    for t in &expected.deleted {
        assert!(!topics.contains_key(t), "{when}: deleted topic {t} is back");
        let live = data_dir.join(format!("{t}-0"));
        assert!(
            !live.exists(),
            "{when}: {} of deleted topic {t} is back",
            live.display()
        );
    }
}

/// Assigns each `(topic, partition, from)` and reads exactly `n` records in all.
fn read(c: &BaseConsumer, from: &[(String, i32, i64)], n: usize, when: &str) -> Vec<OwnedMessage> {
    let mut tpl = TopicPartitionList::new();
    for (t, p, offset) in from {
        tpl.add_partition_offset(t, *p, Offset::Offset(*offset))
            .expect("assignment");
    }
    c.assign(&tpl).expect("assign");
    let mut out = Vec::with_capacity(n);
    let deadline = Instant::now() + Duration::from_secs(15);
    while out.len() < n && Instant::now() < deadline {
        if let Some(m) = c.poll(Duration::from_millis(100)) {
            out.push(m.expect("consumer error").detach());
        }
    }
    assert_eq!(out.len(), n, "{when}: records read from {from:?}");
    out
}

/// Every acknowledged record is at its offset with its value; then a new producer appends to
/// every partition and a new consumer reads those records back at the offsets given.
async fn check_records(b: &StromProcess, expected: &mut Expected, when: &str) {
    let c = consumer(b.addr());
    let mut from = Vec::new();
    let mut total = 0;
    for (t, &n) in &expected.partitions {
        for part in 0..n {
            let (low, high) = c.fetch_watermarks(t, part, TIMEOUT).expect("watermarks");
            assert_eq!(low, 0, "{when}: {t}/{part} log start");
            if let Some((&last, _)) = expected
                .acked
                .get(&(t.clone(), part))
                .and_then(|a| a.last_key_value())
            {
                assert!(
                    high > last,
                    "{when}: {t}/{part} ends at {high}, acknowledged up to {last}"
                );
            }
            from.push((t.clone(), part, 0));
            total += high as usize;
        }
    }
    let mut logs: Acked = BTreeMap::new();
    for m in read(&c, &from, total, when) {
        let v = String::from_utf8_lossy(m.payload().unwrap_or_default()).to_string();
        let log = logs
            .entry((m.topic().to_string(), m.partition()))
            .or_default();
        assert!(log.insert(m.offset(), v).is_none(), "{when}: read twice");
    }
    for ((t, part), acked) in &expected.acked {
        let log = logs.get(&(t.clone(), *part));
        let ends = log.and_then(|l| l.keys().next_back()).copied();
        assert_eq!(
            log.map_or(0, |l| l.len() as i64),
            ends.map_or(0, |e| e + 1),
            "{when}: {t}/{part} offsets are not contiguous"
        );
        for (offset, v) in acked {
            assert_eq!(
                log.and_then(|l| l.get(offset)),
                Some(v),
                "{when}: acknowledged record at {t}/{part}@{offset} lost or changed"
            );
        }
    }
    // Records that reached the log but whose ack was lost in the crash stay too: the
    // expectations follow the log, so later cycles also check they do not vanish.
    expected.acked = logs;

    // A fresh producer and consumer work on every partition.
    let p = acks_all_producer(b.addr());
    let mut fresh = BTreeMap::new();
    from.clear();
    for (t, &n) in &expected.partitions {
        for part in 0..n {
            let v = format!("{when}-fresh-{t}-{part}");
            let d = p
                .send(
                    FutureRecord::to(t.as_str())
                        .key("k")
                        .payload(&v)
                        .partition(part),
                    TIMEOUT,
                )
                .await
                .unwrap_or_else(|(e, _)| panic!("{when}: produce to {t}/{part}: {e}"));
            from.push((t.clone(), part, d.offset));
            fresh.insert((t.clone(), part), (d.offset, v));
        }
    }
    for m in read(&consumer(b.addr()), &from, fresh.len(), when) {
        let key = (m.topic().to_string(), m.partition());
        let (offset, v) = fresh.get(&key).expect("a record produced here");
        assert_eq!(m.offset(), *offset, "{when}: fresh record offset");
        assert_eq!(
            m.payload(),
            Some(v.as_bytes()),
            "{when}: fresh record value"
        );
        expected
            .acked
            .entry(key)
            .or_default()
            .insert(*offset, v.clone());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_loss_keeps_cluster_id_topic_ids_and_acknowledged_records() {
    let started = Instant::now();
    let mount_dir = tempfile::Builder::new()
        .prefix("strom-crashfs-")
        .tempdir()
        .expect("temp dir");
    let fs = CrashFs::mount(mount_dir.path()).unwrap_or_else(|e| {
        panic!(
            "the power-loss test needs a FUSE mount and cannot run without one: {e}\n\
             (root with /dev/fuse, or fusermount3 from Debian's fuse3)"
        )
    });
    // A directory the broker creates itself, so its own creation must be made durable too.
    let data_dir: PathBuf = fs.mountpoint().join("data");
    let mut b = StromProcess::start_in(&data_dir, BROKER_ARGS);
    let mut expected = Expected::default();

    for cycle in 0..CYCLES {
        let t0 = Instant::now();
        let topic = format!("power-{cycle}");
        create_topic(b.addr(), &topic, 2).await;
        expected.partitions.insert(topic, 2);
        if cycle > 0 {
            let grown = "power-0".to_string();
            let total = expected.partitions[&grown] + 1;
            add_partitions(b.addr(), &grown, total).await;
            expected.partitions.insert(grown, total);
        }
        if cycle == 1 {
            // A topic created, written and deleted: the deletion must hold too.
            let doomed = "power-doomed".to_string();
            create_topic(b.addr(), &doomed, 1).await;
            acks_all_producer(b.addr())
                .send(FutureRecord::to(&doomed).key("k").payload("x"), TIMEOUT)
                .await
                .unwrap_or_else(|(e, _)| panic!("produce to {doomed}: {e}"));
            delete_topic(b.addr(), &doomed).await;
            expected.deleted.push(doomed);
        }
        produce_acked(b.addr(), cycle, &mut expected).await;
        check_ids(
            &b,
            &data_dir,
            &mut expected,
            &format!("cycle {cycle} before the crash"),
        );
        let t1 = Instant::now();
        let clean = cycle % 2 == 1;
        let acked_late = produce_and_stop(&mut b, cycle, &mut expected, clean).await;

        let t2 = Instant::now();
        let lost = fs.power_loss();
        b.start_again();
        let t3 = Instant::now();
        let when = format!("cycle {cycle} after the power loss");
        check_ids(&b, &data_dir, &mut expected, &when);
        check_records(&b, &mut expected, &when).await;
        b.assert_no_panic();
        eprintln!(
            "cycle {cycle}: {acked_late} acks before the {}; {:?}; timings: setup+produce {:?}, \
             produce+stop {:?}, power loss+restart {:?}, checks {:?}; the power loss threw \
             away:\n{lost}",
            if clean { "clean shutdown" } else { "kill -9" },
            fs.stats(),
            t1 - t0,
            t2 - t1,
            t3 - t2,
            t3.elapsed()
        );
    }
    let stats = fs.stats();
    assert_eq!(stats.power_losses, CYCLES as u64);
    assert!(
        stats.file_syncs > 0 && stats.dir_syncs > 0,
        "the broker never fsync'd on crashfs: {stats:?}"
    );
    eprintln!(
        "{CYCLES} power losses in {:.1} s; {stats:?}",
        started.elapsed().as_secs_f64()
    );
    b.kill9();
}
