//! librdkafka load generator: measures a broker the way the performance goals are stated (with
//! librdkafka clients), next to `strom perf` which uses Strom's own client.
//!
//! ```text
//! cargo run --release -p strom-bench --example rdkafka_perf -- produce BROKER TOPIC N SIZE ACKS
//! cargo run --release -p strom-bench --example rdkafka_perf -- consume BROKER TOPIC N
//! ```
//! Produce uses a ThreadedProducer with librdkafka's defaults (batch.size 1 MB, linger.ms 5) and
//! prints records/s and MB/s; consume assigns every partition from the beginning and reads N
//! records.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DeliveryResult, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};

#[derive(Debug, Default)]
struct Counts {
    ok: AtomicU64,
    failed: AtomicU64,
}

#[derive(Debug, Clone)]
struct Ctx(Arc<Counts>);
impl ClientContext for Ctx {}
impl ProducerContext for Ctx {
    type DeliveryOpaque = ();
    fn delivery(&self, r: &DeliveryResult<'_>, _: Self::DeliveryOpaque) {
        match r {
            Ok(_) => self.0.ok.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.0.failed.fetch_add(1, Ordering::Relaxed),
        };
    }
}

fn usage() -> ! {
    eprintln!("usage: rdkafka_perf produce BROKER TOPIC N SIZE ACKS | consume BROKER TOPIC N");
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("produce") if args.len() == 6 => produce(
            &args[1],
            &args[2],
            num(&args[3]),
            num(&args[4]) as usize,
            &args[5],
        ),
        Some("consume") if args.len() == 4 => consume(&args[1], &args[2], num(&args[3])),
        _ => usage(),
    }
}

fn num(s: &str) -> u64 {
    s.parse().unwrap_or_else(|_| usage())
}

fn produce(broker: &str, topic: &str, n: u64, size: usize, acks: &str) {
    let counts = Arc::new(Counts::default());
    let producer: ThreadedProducer<Ctx> = ClientConfig::new()
        .set("bootstrap.servers", broker)
        .set("acks", acks)
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .create_with_context(Ctx(counts.clone()))
        .unwrap_or_else(|e| panic!("producer: {e}"));
    let payload = vec![b'x'; size];
    let start = Instant::now();
    for i in 0..n {
        let key = (i % 1024).to_string();
        let mut rec = BaseRecord::to(topic).payload(&payload).key(&key);
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((_, r)) => {
                    rec = r;
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
        }
    }
    while counts.ok.load(Ordering::Relaxed) + counts.failed.load(Ordering::Relaxed) < n {
        std::thread::sleep(Duration::from_millis(1));
    }
    let secs = start.elapsed().as_secs_f64();
    let failed = counts.failed.load(Ordering::Relaxed);
    println!(
        "produce acks={acks} size={size}: {n} records in {secs:.2}s = {:.0} records/s, {:.1} MB/s, {failed} failed",
        n as f64 / secs,
        (n as f64 * size as f64) / secs / 1e6
    );
}

fn consume(broker: &str, topic: &str, n: u64) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker)
        .set("group.id", "rdkafka-perf")
        .set("enable.auto.commit", "false")
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "10485760")
        .create()
        .unwrap_or_else(|e| panic!("consumer: {e}"));
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("metadata: {e}"));
    let mut tpl = TopicPartitionList::new();
    for t in md.topics() {
        for p in t.partitions() {
            tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
                .unwrap_or_else(|e| panic!("{e}"));
        }
    }
    consumer
        .assign(&tpl)
        .unwrap_or_else(|e| panic!("assign: {e}"));
    let (mut count, mut bytes) = (0u64, 0u64);
    let start = Instant::now();
    while count < n {
        match consumer.poll(Duration::from_secs(5)) {
            Some(Ok(m)) => {
                count += 1;
                bytes += m.payload().map_or(0, |p| p.len() as u64);
            }
            Some(Err(e)) => panic!("consume: {e}"),
            None => break,
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "consume: {count} records, {:.1} MB in {secs:.2}s = {:.0} records/s, {:.1} MB/s",
        bytes as f64 / 1e6,
        count as f64 / secs,
        bytes as f64 / secs / 1e6
    );
}
