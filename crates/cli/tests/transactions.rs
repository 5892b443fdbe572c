//! Transactions end to end with librdkafka: committed transactions visible to `read_committed`
//! consumers, aborted ones only to `read_uncommitted`, across partitions and topics; fencing of a
//! zombie producer; a broker killed with -9 mid-transaction; and an exactly-once
//! consume-transform-produce pipeline (`send_offsets_to_transaction`) killed with -9 mid-way and
//! restarted. The pipeline runs in a child process: this test binary re-executed with
//! `STROM_EOS_CHILD` set (as crates/log/tests/crash_recovery.rs does).

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::txn::txn_batch;
use common::{client_config, create_topic, StromProcess};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

const T: Duration = Duration::from_secs(20);
const CHILD_ENV: &str = "STROM_EOS_CHILD";

fn txn_producer(addr: &str, id: &str) -> BaseProducer {
    let p: BaseProducer = client_config(addr)
        .set("transactional.id", id)
        .set("transaction.timeout.ms", "60000")
        .set("message.timeout.ms", "20000")
        .set("linger.ms", "1")
        .create()
        .expect("creating transactional producer");
    p.init_transactions(T).expect("init_transactions");
    p
}

fn send(p: &BaseProducer, topic: &str, partition: i32, value: &str) {
    let mut r = BaseRecord::to(topic)
        .partition(partition)
        .key(value)
        .payload(value);
    loop {
        match p.send(r) {
            Ok(()) => return,
            Err((
                KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull),
                back,
            )) => {
                r = back;
                p.poll(Duration::from_millis(10));
            }
            Err((e, _)) => panic!("send: {e}"),
        }
    }
}

/// Every value readable from `parts` (topic, partition) at `isolation`, waiting until `want`
/// values arrived or a quiet period passed.
fn read_all(addr: &str, isolation: &str, parts: &[(&str, i32)], want: usize) -> Vec<String> {
    let c: BaseConsumer = client_config(addr)
        .set("group.id", "strom-txn-reader")
        .set("enable.auto.commit", "false")
        .set("isolation.level", isolation)
        .set("fetch.wait.max.ms", "100")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for (t, p) in parts {
        tpl.add_partition_offset(t, *p, Offset::Beginning)
            .expect("assign");
    }
    c.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut quiet_until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline && (out.len() < want || Instant::now() < quiet_until) {
        if let Some(m) = c.poll(Duration::from_millis(100)) {
            let m = m.expect("consumer error");
            out.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
            if out.len() >= want {
                quiet_until = Instant::now() + Duration::from_millis(700);
            }
        }
        if out.len() >= want && Instant::now() >= quiet_until {
            break;
        }
    }
    out.sort();
    out
}

fn values(prefix: &str, n: usize) -> Vec<String> {
    let mut v: Vec<String> = (0..n).map(|i| format!("{prefix}-{i:04}")).collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn committed_is_visible_and_aborted_is_not_across_three_partitions_and_two_topics() {
    let b = StromProcess::start();
    create_topic(b.addr(), "ta", 2).await;
    create_topic(b.addr(), "tb", 1).await;
    let parts = [("ta", 0), ("ta", 1), ("tb", 0)];
    let p = txn_producer(b.addr(), "span");
    for (name, commit) in [("c1", true), ("a1", false), ("c2", true)] {
        p.begin_transaction().expect("begin");
        for i in 0..30 {
            let (t, part) = parts[i % 3];
            send(&p, t, part, &format!("{name}-{i:04}"));
        }
        p.flush(T).expect("flush");
        if commit {
            p.commit_transaction(T).expect("commit");
        } else {
            p.abort_transaction(T).expect("abort");
        }
    }
    let mut committed = values("c1", 30);
    committed.extend(values("c2", 30));
    committed.sort();
    assert_eq!(read_all(b.addr(), "read_committed", &parts, 60), committed);
    let mut everything = committed.clone();
    everything.extend(values("a1", 30));
    everything.sort();
    assert_eq!(
        read_all(b.addr(), "read_uncommitted", &parts, 90),
        everything
    );
    // The abort is indexed in each partition's directory (Kafka's 34-byte .txnindex entries).
    for (t, p) in parts {
        let dir = b.data_dir().join(format!("{t}-{p}"));
        let idx = std::fs::read_dir(&dir)
            .expect("partition dir")
            .filter_map(|e| e.ok())
            .find(|e| e.file_name().to_string_lossy().ends_with(".txnindex"))
            .unwrap_or_else(|| panic!("no .txnindex in {}", dir.display()));
        assert_eq!(std::fs::metadata(idx.path()).expect("stat").len(), 34);
    }
    b.assert_no_panic();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_open_transaction_blocks_read_committed_until_it_ends() {
    let b = StromProcess::start();
    create_topic(b.addr(), "open", 1).await;
    let p = txn_producer(b.addr(), "open-1");
    p.begin_transaction().expect("begin");
    for i in 0..5 {
        send(&p, "open", 0, &format!("o-{i:04}"));
    }
    p.flush(T).expect("flush");
    assert!(read_all(b.addr(), "read_committed", &[("open", 0)], 0).is_empty());
    assert_eq!(
        read_all(b.addr(), "read_uncommitted", &[("open", 0)], 5).len(),
        5
    );
    p.commit_transaction(T).expect("commit");
    assert_eq!(
        read_all(b.addr(), "read_committed", &[("open", 0)], 5),
        values("o", 5)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_producer_with_the_same_id_fences_the_first() {
    let b = StromProcess::start();
    create_topic(b.addr(), "fence", 1).await;
    let zombie = txn_producer(b.addr(), "fenced-id");
    zombie.begin_transaction().expect("begin");
    send(&zombie, "fence", 0, "zombie-0000");
    zombie.flush(T).expect("flush");
    // The new instance aborts the zombie's open transaction and bumps the epoch.
    let fresh = txn_producer(b.addr(), "fenced-id");
    fresh.begin_transaction().expect("begin");
    send(&fresh, "fence", 0, "fresh-0000");
    fresh.flush(T).expect("flush");
    fresh.commit_transaction(T).expect("commit");
    // The zombie's next operation fails fatally with a fencing error.
    send(&zombie, "fence", 0, "zombie-0001");
    let _ = zombie.flush(Duration::from_secs(5));
    let err = zombie
        .commit_transaction(T)
        .expect_err("the fenced producer must not commit");
    let text = err.to_string().to_lowercase();
    assert!(
        text.contains("fenced") || text.contains("epoch"),
        "unexpected error: {err}"
    );
    assert_eq!(
        read_all(b.addr(), "read_committed", &[("fence", 0)], 1),
        vec!["fresh-0000".to_string()]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transaction_open_at_a_broker_kill_is_never_half_visible() {
    let mut b = StromProcess::start();
    create_topic(b.addr(), "crash", 2).await;
    let parts = [("crash", 0), ("crash", 1)];
    {
        let p = txn_producer(b.addr(), "crash-id");
        p.begin_transaction().expect("begin");
        for i in 0..20 {
            send(&p, "crash", i % 2, &format!("before-{i:04}"));
        }
        p.flush(T).expect("flush");
        p.commit_transaction(T).expect("commit");
        p.begin_transaction().expect("begin");
        for i in 0..20 {
            send(&p, "crash", i % 2, &format!("open-{i:04}"));
        }
        p.flush(T).expect("flush");
        b.kill9();
    }
    b.start_again();
    // Recovered from the log: the open transaction still bounds the LSO.
    assert_eq!(
        read_all(b.addr(), "read_committed", &parts, 20),
        values("before", 20)
    );
    // A new instance of the producer aborts it; afterwards it is still invisible.
    let p = txn_producer(b.addr(), "crash-id");
    p.begin_transaction().expect("begin");
    send(&p, "crash", 0, "after-0000");
    p.flush(T).expect("flush");
    p.commit_transaction(T).expect("commit");
    let mut want = values("before", 20);
    want.push("after-0000".to_string());
    want.sort();
    assert_eq!(read_all(b.addr(), "read_committed", &parts, 21), want);
    assert_eq!(read_all(b.addr(), "read_uncommitted", &parts, 41).len(), 41);
    b.assert_no_panic();
}

// ---------------------------------------------------------------------------------------------
// Exactly-once pipeline: input (2 partitions) → upper-case → output, offsets in the transaction.

const INPUT: usize = 400;

/// The pipeline: consumes `eos-in` in group `eos`, writes each value upper-cased to `eos-out` in
/// transactions of 10 records with the consumed offsets. Prints a line per commit. Run by the
/// parent as a child process (ignored otherwise).
#[test]
#[ignore]
fn eos_child() {
    let Ok(addr) = std::env::var(CHILD_ENV) else {
        return;
    };
    let producer = txn_producer(&addr, "eos-pipeline");
    let consumer: BaseConsumer = client_config(&addr)
        .set("group.id", "eos")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "100")
        .set("session.timeout.ms", "6000")
        .create()
        .expect("consumer");
    consumer.subscribe(&["eos-in"]).expect("subscribe");
    let mut done = 0usize;
    loop {
        let mut batch = Vec::new();
        let deadline = Instant::now() + Duration::from_millis(500);
        while batch.len() < 10 && Instant::now() < deadline {
            if let Some(m) = consumer.poll(Duration::from_millis(50)) {
                let m = m.expect("consume");
                batch.push((
                    m.partition(),
                    m.offset(),
                    String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
                ));
            }
        }
        if batch.is_empty() {
            continue;
        }
        producer.begin_transaction().expect("begin");
        let mut next: BTreeMap<i32, i64> = BTreeMap::new();
        for (part, off, v) in &batch {
            send(&producer, "eos-out", 0, &v.to_uppercase());
            next.insert(*part, off + 1);
        }
        let mut offsets = TopicPartitionList::new();
        for (part, off) in &next {
            offsets
                .add_partition_offset("eos-in", *part, Offset::Offset(*off))
                .expect("offsets");
        }
        let meta = consumer.group_metadata().expect("group metadata");
        producer
            .send_offsets_to_transaction(&offsets, &meta, T)
            .expect("send_offsets_to_transaction");
        producer.commit_transaction(T).expect("commit");
        done += batch.len();
        println!("committed {done}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_exactly_once_pipeline_killed_mid_way_outputs_each_record_once() {
    let b = StromProcess::start();
    create_topic(b.addr(), "eos-in", 2).await;
    create_topic(b.addr(), "eos-out", 1).await;
    let plain: BaseProducer = client_config(b.addr()).create().expect("producer");
    for i in 0..INPUT {
        let v = format!("rec-{i:04}");
        let r = BaseRecord::to("eos-in")
            .partition((i % 2) as i32)
            .payload(&v)
            .key(&v);
        plain.send(r).expect("send input");
    }
    plain.flush(T).expect("flush input");
    let exe = std::env::current_exe().expect("exe");
    let spawn = || {
        Command::new(&exe)
            .args([
                "--exact",
                "eos_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, b.addr())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn pipeline")
    };
    // Kill the pipeline twice mid-way (after some commits), then let a third run finish.
    for kill_after in [60usize, 200] {
        let mut child = spawn();
        let out = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(out).lines();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            assert!(Instant::now() < deadline, "pipeline made no progress");
            let Some(Ok(line)) = lines.next() else {
                panic!("pipeline exited early")
            };
            if let Some(n) = line.strip_prefix("committed ") {
                if n.trim().parse::<usize>().unwrap_or(0) >= kill_after {
                    break;
                }
            }
        }
        // Mid-transaction most likely: it is producing the next batch right now.
        std::thread::sleep(Duration::from_millis(15));
        child.kill().expect("kill -9 pipeline");
        let _ = child.wait();
    }
    let mut child = spawn();
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut got = Vec::new();
    while Instant::now() < deadline {
        got = read_all(b.addr(), "read_committed", &[("eos-out", 0)], INPUT);
        if got.len() >= INPUT {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let want: Vec<String> = values("REC", INPUT);
    assert_eq!(
        got.len(),
        want.len(),
        "output records (duplicates or losses)"
    );
    assert_eq!(got, want);
    b.assert_no_panic();
}

/// WriteTxnMarkers sent by a client, as another broker's transaction coordinator sends it: a
/// COMMIT marker makes transactional batches visible to read_committed, an ABORT marker hides
/// them for good; a partition that does not exist gets its own error code; a marker from an
/// older coordinator epoch than the partition's last is TRANSACTION_COORDINATOR_FENCED.
#[tokio::test(flavor = "multi_thread")]
async fn write_txn_markers_ends_transactions_in_the_partitions_led_here() {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::write_txn_markers_request::{
        WritableTxnMarker, WritableTxnMarkerTopic,
    };
    use kafka_protocol::messages::{
        ApiKey, InitProducerIdRequest, ProduceRequest, ProducerId, TopicName,
        WriteTxnMarkersRequest,
    };
    use kafka_protocol::protocol::StrBytes;
    use strom_client::{Connection, ConnectionConfig};

    // The test plays a foreign transaction coordinator: nobody here knows its transactions, so
    // the leader's KIP-890 check (tested on its own below) is turned off.
    let b = StromProcess::start_with_args(&[
        "--set",
        "transaction.partition.verification.enable=false",
    ]);
    create_topic(b.addr(), "wtm", 2).await;
    let conn = Connection::connect(b.addr(), &ConnectionConfig::default())
        .await
        .expect("connect");
    let init = conn
        .send(
            4,
            &InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_transaction_timeout_ms(60_000),
        )
        .await
        .expect("InitProducerId");
    assert_eq!(init.error_code, 0);
    let (pid, epoch) = (init.producer_id.0, init.producer_epoch);
    let topic = || TopicName(StrBytes::from_static_str("wtm"));
    let produce = |partition: i32, seq: i32, name: &'static str| {
        let conn = conn.clone();
        async move {
            let req = ProduceRequest::default()
                .with_acks(-1)
                .with_timeout_ms(5000)
                .with_topic_data(vec![TopicProduceData::default()
                    .with_name(topic())
                    .with_partition_data(vec![PartitionProduceData::default()
                        .with_index(partition)
                        .with_records(Some(txn_batch(pid, epoch, seq, name, 5)))])]);
            let resp = conn.send(9, &req).await.expect("Produce");
            assert_eq!(resp.responses[0].partition_responses[0].error_code, 0);
        }
    };
    let markers_from = |coordinator_epoch: i32, commit: bool, partitions: Vec<i32>| {
        let conn = conn.clone();
        async move {
            let req =
                WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
                    .with_producer_id(ProducerId(pid))
                    .with_producer_epoch(epoch)
                    .with_transaction_result(commit)
                    .with_coordinator_epoch(coordinator_epoch)
                    .with_topics(vec![WritableTxnMarkerTopic::default()
                        .with_name(topic())
                        .with_partition_indexes(partitions)])]);
            let version = conn.version(ApiKey::WriteTxnMarkers).expect("advertised");
            let resp = conn.send(version, &req).await.expect("WriteTxnMarkers");
            assert_eq!(resp.markers[0].producer_id.0, pid);
            resp.markers[0].topics[0]
                .partitions
                .iter()
                .map(|p| (p.partition_index, p.error_code))
                .collect::<Vec<_>>()
        }
    };
    let markers = |commit: bool, partitions: Vec<i32>| markers_from(0, commit, partitions);
    let parts = [("wtm", 0), ("wtm", 1)];
    // One transaction over both partitions: invisible until its COMMIT markers.
    produce(0, 0, "c1").await;
    produce(1, 0, "c1b").await;
    assert!(read_all(b.addr(), "read_committed", &parts, 0).is_empty());
    assert_eq!(
        markers(true, vec![0, 1, 7]).await,
        vec![(0, 0), (1, 0), (7, 3)],
        "UNKNOWN_TOPIC_OR_PARTITION for a partition that does not exist"
    );
    let mut committed = values("c1", 5);
    committed.extend(values("c1b", 5));
    committed.sort();
    assert_eq!(read_all(b.addr(), "read_committed", &parts, 10), committed);
    // The next one is aborted: never visible to read_committed.
    produce(0, 5, "a1").await;
    assert_eq!(markers(false, vec![0]).await, vec![(0, 0)]);
    produce(0, 10, "c2").await;
    assert_eq!(markers(true, vec![0]).await, vec![(0, 0)]);
    committed.extend(values("c2", 5));
    committed.sort();
    assert_eq!(read_all(b.addr(), "read_committed", &parts, 15), committed);
    assert_eq!(read_all(b.addr(), "read_uncommitted", &parts, 20).len(), 20);
    // A coordinator that moved to epoch 5 ends the next one; a zombie from epoch 4 (its
    // predecessor, still sending) is fenced and cannot end the one after.
    produce(1, 5, "c3").await;
    assert_eq!(markers_from(5, true, vec![1]).await, vec![(1, 0)]);
    produce(1, 10, "a3").await;
    let fenced = kafka_protocol::error::ResponseError::TransactionCoordinatorFenced.code();
    assert_eq!(markers_from(4, false, vec![1]).await, vec![(1, fenced)]);
    let mut raw = common::RawConn::connect(b.addr());
    let end = common::list_offset(&mut raw, "wtm", 1, -1).1;
    let stable = common::list_offset_isolated(&mut raw, "wtm", 1, -1, 1).1;
    assert_eq!(stable, end - 5, "the transaction stays open");
    b.assert_no_panic();
}
