//! Transactional produce throughput with librdkafka: records/s committed with 1, 10 and 100
//! records per transaction, next to a non-transactional idempotent producer (acks=all).
//!
//! ```text
//! cargo run --release -p strom-bench --example txn_bench -- BROKER [SECONDS]
//! ```
//! Each mode writes 100-byte records to a fresh 1-partition topic for SECONDS (default 5). A
//! transactional run is begin, N sends, commit, repeated (one producer, so one transaction at a
//! time: commit latency bounds the rate); only committed records count. The non-transactional run
//! sends as fast as the queue takes records and counts acknowledged ones, the final flush included.

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
    println!("{:<32} {:>14} {:>14}", "mode", "records/s", "txns/s");
    let topic = create_topic(&broker, &format!("txn-bench-plain-{tag}"));
    let rate = plain(&broker, &topic, run);
    println!(
        "{:<32} {:>14.0} {:>14}",
        "idempotent, acks=all (no txn)", rate, "-"
    );
    for per_txn in [1usize, 10, 100] {
        let topic = create_topic(&broker, &format!("txn-bench-{per_txn}-{tag}"));
        let (records, txns) = transactional(&broker, &topic, per_txn, run, tag);
        println!(
            "{:<32} {:>14.0} {:>14.0}",
            format!("transactional, {per_txn} records/txn"),
            records,
            txns
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
    producer
        .flush(TIMEOUT)
        .unwrap_or_else(|e| panic!("flush: {e}"));
    let secs = start.elapsed().as_secs_f64();
    let failed = ctx.1.load(Ordering::Relaxed);
    assert_eq!(failed, 0, "{failed} records failed");
    ctx.0.load(Ordering::Relaxed) as f64 / secs
}

/// One transactional producer: (committed records/s, committed transactions/s).
fn transactional(broker: &str, topic: &str, per_txn: usize, run: Duration, tag: u32) -> (f64, f64) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", broker)
        .set("transactional.id", format!("txn-bench-{per_txn}-{tag}"))
        .set("linger.ms", "5")
        .create()
        .unwrap_or_else(|e| panic!("producer: {e}"));
    producer
        .init_transactions(TIMEOUT)
        .unwrap_or_else(|e| panic!("init_transactions: {e}"));
    let payload = [b'x'; RECORD_SIZE];
    let mut txns = 0u64;
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
        producer
            .commit_transaction(TIMEOUT)
            .unwrap_or_else(|e| panic!("commit_transaction: {e}"));
        txns += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    ((txns * per_txn as u64) as f64 / secs, txns as f64 / secs)
}
