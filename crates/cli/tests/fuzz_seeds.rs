//! Records the requests a real client sends as the seed corpus of the request fuzz harness
//! (`crates/broker/fuzz/corpus/requests`): librdkafka (through rdkafka) produces idempotently
//! and compressed, runs a transaction with offsets, consumes in a group and commits, and
//! administers topics and configs, through a recording proxy in front of a real broker that
//! advertises the proxy's address. Run by hand when the served APIs change:
//! `cargo test -p strom-cli --test fuzz_seeds -- --ignored`.

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{client_config, StromProcess, TIMEOUT};
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, NewPartitions, NewTopic, ResourceSpecifier,
    TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, FutureProducer, FutureRecord, Producer};

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../broker/fuzz/corpus/requests")
}

/// Forwards `from` → `to`, writing each request frame's body (header + body, no size) once per
/// distinct content.
fn record_frames(mut from: TcpStream, mut to: TcpStream, seen: Arc<Mutex<BTreeSet<Vec<u8>>>>) {
    loop {
        let mut size = [0u8; 4];
        if from.read_exact(&mut size).is_err() {
            return;
        }
        let n = i32::from_be_bytes(size).max(0) as usize;
        let mut body = vec![0u8; n];
        if from.read_exact(&mut body).is_err() {
            return;
        }
        if n >= 4 && seen.lock().expect("seen").insert(body.clone()) {
            let key = i16::from_be_bytes([body[0], body[1]]);
            let version = i16::from_be_bytes([body[2], body[3]]);
            let hash = crc32c::crc32c(&body);
            let path = corpus_dir().join(format!("seed-api{key:02}-v{version:02}-{hash:08x}"));
            std::fs::write(path, &body).expect("writing seed");
        }
        if to
            .write_all(&size)
            .and_then(|_| to.write_all(&body))
            .is_err()
        {
            return;
        }
    }
}

fn proxy(listener: TcpListener, broker: String) {
    let seen = Arc::new(Mutex::new(BTreeSet::new()));
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let Ok(upstream) = TcpStream::connect(&broker) else {
                continue;
            };
            let (c2, u2) = (
                client.try_clone().expect("clone"),
                upstream.try_clone().expect("clone"),
            );
            let seen = seen.clone();
            std::thread::spawn(move || record_frames(client, upstream, seen));
            std::thread::spawn(move || {
                let (mut from, mut to) = (u2, c2);
                let _ = std::io::copy(&mut from, &mut to);
            });
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "records the request fuzz corpus; run by hand"]
async fn record_request_seeds() {
    std::fs::create_dir_all(corpus_dir()).expect("corpus dir");
    let listener = TcpListener::bind("127.0.0.1:0").expect("proxy");
    let front = listener.local_addr().expect("addr").to_string();
    let advertised = format!("advertised.listeners=PLAINTEXT://{front}");
    let broker = StromProcess::start_with_args(&["--set", &advertised]);
    proxy(listener, broker.addr().to_string());
    let admin: AdminClient<DefaultClientContext> = client_config(&front).create().expect("admin");
    let opts = AdminOptions::new().operation_timeout(Some(TIMEOUT));
    let topics = [
        NewTopic::new("seeds", 3, TopicReplication::Fixed(1)).set("retention.ms", "3600000"),
        NewTopic::new("seeds-compact", 1, TopicReplication::Fixed(1))
            .set("cleanup.policy", "compact"),
    ];
    admin.create_topics(&topics, &opts).await.expect("create");
    admin
        .create_partitions(&[NewPartitions::new("seeds", 4)], &opts)
        .await
        .expect("partitions");
    admin
        .alter_configs(
            &[AlterConfig::new(ResourceSpecifier::Topic("seeds")).set("retention.ms", "7200000")],
            &opts,
        )
        .await
        .expect("alter");
    admin
        .describe_configs(&[ResourceSpecifier::Topic("seeds")], &opts)
        .await
        .expect("describe");
    let p: FutureProducer = client_config(&front)
        .set("enable.idempotence", "true")
        .set("compression.type", "lz4")
        .create()
        .expect("producer");
    for i in 0..20 {
        p.send(
            FutureRecord::to("seeds")
                .key(&format!("k{i}"))
                .payload(&format!("value {i}")),
            TIMEOUT,
        )
        .await
        .expect("produce");
    }
    let txn: BaseProducer = client_config(&front)
        .set("transactional.id", "seeds-txn")
        .create()
        .expect("txn producer");
    txn.init_transactions(TIMEOUT).expect("init");
    txn.begin_transaction().expect("begin");
    txn.send(BaseRecord::to("seeds-compact").key("k").payload("v"))
        .map_err(|(e, _)| e)
        .expect("send");
    let c: BaseConsumer = client_config(&front)
        .set("group.id", "seeds-group")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    c.subscribe(&["seeds"]).expect("subscribe");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut got = 0;
    while got < 20 && std::time::Instant::now() < deadline {
        if let Some(Ok(_)) = c.poll(Duration::from_millis(200)) {
            got += 1;
        }
    }
    c.commit_consumer_state(CommitMode::Sync).expect("commit");
    txn.send_offsets_to_transaction(
        &c.position().expect("position"),
        &c.group_metadata().expect("group metadata"),
        TIMEOUT,
    )
    .expect("offsets in txn");
    txn.commit_transaction(TIMEOUT).expect("commit txn");
    admin
        .delete_records(
            &{
                let mut l = rdkafka::TopicPartitionList::new();
                l.add_partition_offset("seeds", 0, rdkafka::Offset::Offset(1))
                    .expect("offset");
                l
            },
            &opts,
        )
        .await
        .expect("delete records");
    admin
        .delete_topics(&["seeds-compact"], &opts)
        .await
        .expect("delete");
    drop(c);
    let n = std::fs::read_dir(corpus_dir()).expect("corpus").count();
    assert!(n >= 20, "only {n} seeds recorded");
}
