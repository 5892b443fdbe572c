//! Transactional produce throughput with librdkafka: records/s committed with 1, 10 and 100
//! records per transaction, next to a non-transactional idempotent producer (acks=all).
//!
//! ```text
//! cargo run --release -p strom-bench --example txn_bench -- BROKER [SECONDS]
//! ```
//! Each mode writes 100-byte records to a fresh 1-partition topic for SECONDS (default 5). A
//! transactional run is begin, N sends, commit, repeated (one producer, so one transaction at a
//! time: commit latency bounds the rate); only committed records count. The non-transactional run
//! sends as fast as the queue takes records and counts acknowledged ones, the final drain included.
//!
//! Before each commit the bench serves delivery reports itself, 1 ms at a time, until nothing is in
//! flight. rdkafka's own `flush()` (which `commit_transaction()` calls first) polls in slices of
//! up to 100 ms and each `BaseProducer::poll` runs its whole slice even once the reports are in
//! (rdkafka 0.39), so leaving the flush to `commit_transaction()` costs ~100 ms per transaction on
//! the client. The row marked "rdkafka flush" keeps that path, to show the difference.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{
    BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer,
};
use rdkafka::ClientContext;

const RECORD_SIZE: usize = 100;
const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Default)]
struct Ctx(Arc<AtomicU64>, Arc<AtomicU64>);
impl ClientContext for Ctx {}
impl ProducerContext for Ctx {
    type DeliveryOpaque = ();
    fn delivery(&self, r: &DeliveryResult<'_>, _: Self::DeliveryOpaque) {
        match r {
            Ok(_) => self.0.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.1.fetch_add(1, Ordering::Relaxed),
        };
    }
}

fn usage() -> ! {
    eprintln!("usage: txn_bench BROKER [SECONDS]");
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(broker) = args.first().cloned() else {
        usage()
    };
    let secs: u64 = match args.get(1) {
        Some(s) => s.parse().unwrap_or_else(|_| usage()),
        None => 5,
    };
    let run = Duration::from_secs(secs);
    let tag = std::process::id();
    println!(
        "{:<44} {:>12} {:>10} {:>12}",
        "mode", "records/s", "txns/s", "ms/commit"
    );
    let topic = create_topic(&broker, &format!("txn-bench-plain-{tag}"));
    let rate = plain(&broker, &topic, run);
    println!(
        "{:<44} {:>12.0} {:>10} {:>12}",
        "idempotent, acks=all (no txn)", rate, "-", "-"
    );
    for (per_txn, drain) in [(1usize, true), (10, true), (100, true), (10, false)] {
        let name = if drain {
            format!("transactional, {per_txn} records/txn")
        } else {
            format!("transactional, {per_txn} records/txn, rdkafka flush")
        };
        let topic = create_topic(&broker, &format!("txn-bench-{per_txn}-{drain}-{tag}"));
        let r = transactional(&broker, &topic, per_txn, drain, run, tag);
        println!(
            "{:<44} {:>12.0} {:>10.0} {:>12.1}",
            name, r.records_per_sec, r.txns_per_sec, r.commit_ms
        );
    }
}

fn create_topic(broker: &str, name: &str) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    rt.block_on(async {
        let client = strom_client::Client::connect(broker)
            .await
            .unwrap_or_else(|e| panic!("connect {broker}: {e}"));
        client
            .create_topic(name, 1, 1, &BTreeMap::new())
            .await
            .unwrap_or_else(|e| panic!("create topic {name}: {e}"));
    });
    name.to_owned()
}

/// Non-transactional idempotent producer (acks=all): acknowledged records per second.
fn plain(broker: &str, topic: &str, run: Duration) -> f64 {
    let ctx = Ctx::default();
    let producer: ThreadedProducer<Ctx> = ClientConfig::new()
        .set("bootstrap.servers", broker)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .create_with_context(ctx.clone())
        .unwrap_or_else(|e| panic!("producer: {e}"));
    let payload = [b'x'; RECORD_SIZE];
    let start = Instant::now();
    while start.elapsed() < run {
        let mut rec = BaseRecord::<(), [u8]>::to(topic).payload(&payload);
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    rec = r;
                    std::thread::sleep(Duration::from_micros(200));
                }
                Err((e, _)) => panic!("send: {e}"),
            }
        }
    }
    // The polling thread serves the delivery reports; waiting on the count here rather than in
    // `flush()` keeps rdkafka's 100 ms poll slices (see the top of the file) out of the figure.
    let deadline = Instant::now() + TIMEOUT;
    while producer.in_flight_count() > 0 {
        assert!(
            Instant::now() < deadline,
            "records still in flight after {TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let secs = start.elapsed().as_secs_f64();
    let failed = ctx.1.load(Ordering::Relaxed);
    assert_eq!(failed, 0, "{failed} records failed");
    ctx.0.load(Ordering::Relaxed) as f64 / secs
}

struct TxnRate {
    records_per_sec: f64,
    txns_per_sec: f64,
    /// Mean time from the last send of a transaction to `commit_transaction()` returning.
    commit_ms: f64,
}

/// One transactional producer. With `drain`, delivery reports are served here before each commit
/// (see the top of the file); without, `commit_transaction()` flushes through rdkafka.
fn transactional(
    broker: &str,
    topic: &str,
    per_txn: usize,
    drain: bool,
    run: Duration,
    tag: u32,
) -> TxnRate {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", broker)
        .set(
            "transactional.id",
            format!("txn-bench-{per_txn}-{drain}-{tag}"),
        )
        .set("linger.ms", "5")
        .create()
        .unwrap_or_else(|e| panic!("producer: {e}"));
    producer
        .init_transactions(TIMEOUT)
        .unwrap_or_else(|e| panic!("init_transactions: {e}"));
    let payload = [b'x'; RECORD_SIZE];
    let mut txns = 0u64;
    let mut committing = Duration::ZERO;
    let start = Instant::now();
    while start.elapsed() < run {
        producer
            .begin_transaction()
            .unwrap_or_else(|e| panic!("begin_transaction: {e}"));
        for _ in 0..per_txn {
            let mut rec = BaseRecord::<(), [u8]>::to(topic).payload(&payload);
            loop {
                match producer.send(rec) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                        rec = r;
                        producer.poll(Duration::from_millis(1));
                    }
                    Err((e, _)) => panic!("send: {e}"),
                }
            }
        }
        let sent = Instant::now();
        if drain {
            while producer.in_flight_count() > 0 {
                assert!(
                    sent.elapsed() < TIMEOUT,
                    "records still in flight after {TIMEOUT:?}"
                );
                producer.poll(Duration::from_millis(1));
            }
        }
        producer
            .commit_transaction(TIMEOUT)
            .unwrap_or_else(|e| panic!("commit_transaction: {e}"));
        committing += sent.elapsed();
        txns += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    TxnRate {
        records_per_sec: (txns * per_txn as u64) as f64 / secs,
        txns_per_sec: txns as f64 / secs,
        commit_ms: committing.as_secs_f64() * 1000.0 / txns.max(1) as f64,
    }
}
