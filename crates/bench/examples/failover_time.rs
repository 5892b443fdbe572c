//! Failover time as a producer sees it: kill -9 the partition leader while an acks=all
//! librdkafka producer sends one record every millisecond, and report the time from the kill to
//! the first acknowledgement of a record sent after it.
//!
//! ```text
//! cargo run --release -p strom-bench --example failover_time -- BOOTSTRAP TOPIC LEADER_PID
//! ```
//! The topic should have one partition led by the process `LEADER_PID`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseRecord, DeliveryResult, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;

/// When the leader was killed, and the first acknowledgement after that.
#[derive(Debug, Default)]
struct Observed {
    killed_at: Option<Instant>,
    /// Index of the first record sent after the kill.
    first_after: u64,
    first_ack_after: Option<Instant>,
    failed: u64,
}

#[derive(Debug, Clone)]
struct Ctx(Arc<Mutex<Observed>>);
impl ClientContext for Ctx {}
impl ProducerContext for Ctx {
    type DeliveryOpaque = Box<u64>;
    fn delivery(&self, r: &DeliveryResult<'_>, index: Self::DeliveryOpaque) {
        let now = Instant::now();
        let mut o = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match r {
            Ok(_) => {
                if o.killed_at.is_some() && *index >= o.first_after && o.first_ack_after.is_none() {
                    o.first_ack_after = Some(now);
                }
            }
            Err(_) => o.failed += 1,
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [bootstrap, topic, pid] = args.as_slice() else {
        eprintln!("usage: failover_time BOOTSTRAP TOPIC LEADER_PID");
        std::process::exit(2)
    };
    let observed = Arc::new(Mutex::new(Observed::default()));
    let producer: ThreadedProducer<Ctx> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "0")
        .set("message.timeout.ms", "120000")
        .set("retry.backoff.ms", "50")
        .set("retry.backoff.max.ms", "200")
        .create_with_context(Ctx(observed.clone()))
        .expect("creating producer");
    let start = Instant::now();
    let mut i = 0u64;
    loop {
        let payload = i.to_string();
        let _ = producer.send(
            BaseRecord::with_opaque_to(topic, Box::new(i))
                .key("k")
                .payload(&payload),
        );
        i += 1;
        std::thread::sleep(Duration::from_millis(1));
        let elapsed = start.elapsed();
        let mut o = observed.lock().unwrap_or_else(|e| e.into_inner());
        if o.killed_at.is_none() && elapsed > Duration::from_secs(3) {
            let status = std::process::Command::new("kill")
                .args(["-9", pid])
                .status()
                .expect("running kill");
            assert!(status.success(), "kill -9 {pid} failed");
            o.killed_at = Some(Instant::now());
            o.first_after = i;
        }
        if let (Some(k), Some(a)) = (o.killed_at, o.first_ack_after) {
            println!(
                "kill -9 to first acknowledged produce: {:.2} s ({} records sent, {} failed)",
                (a - k).as_secs_f64(),
                i,
                o.failed
            );
            break;
        }
        if elapsed > Duration::from_secs(120) {
            println!("no acknowledgement within 120 s of the kill");
            break;
        }
    }
}
