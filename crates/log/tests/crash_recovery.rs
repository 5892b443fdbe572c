//! Crash test with a real process: a child appends with fsync and prints every acknowledged
//! batch; the parent `kill -9`s it at random moments, reopens the log and checks that every
//! acknowledged batch is there, intact and in order. The child is this same test binary,
//! re-executed with `STROM_CRASH_CHILD_DIR` set.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use strom_log::{
    now_ms, validate_batches, Batches, LogConfig, LogManager, LogManagerConfig, ReadBound,
    TopicPartition,
};

const CHILD_ENV: &str = "STROM_CRASH_CHILD_DIR";

fn config() -> Arc<LogConfig> {
    // Small segments so kills also land around segment rolls.
    let topic = BTreeMap::from([
        ("segment.bytes".to_string(), "65536".to_string()),
        ("index.interval.bytes".to_string(), "512".to_string()),
    ]);
    Arc::new(LogConfig::build(&BTreeMap::new(), &topic).expect("config"))
}

/// A batch of `n` records whose values are `"<seq>:<i>"` padded to 100 bytes.
fn batch(seq: u64, n: i32) -> Bytes {
    let now = now_ms();
    let records: Vec<Record> = (0..n)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i64::from(i),
            sequence: i - 1,
            timestamp: now,
            key: None,
            value: Some(Bytes::from(format!("{seq}:{i}:{}", "x".repeat(90)))),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("encode");
    buf.freeze()
}

fn open(dir: &std::path::Path) -> Arc<LogManager> {
    let c = config();
    LogManager::open(LogManagerConfig::new(dir), &move |_| c.clone()).expect("open")
}

/// The child: appends forever from 4 concurrent tasks, printing `ACK seq first last` per
/// durable batch.
#[test]
#[ignore = "run only as the crash test's child process"]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let start_seq: u64 = std::env::var("STROM_CRASH_SEQ")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mgr = open(std::path::Path::new(&dir));
    let log = mgr
        .get_or_create(&TopicPartition::new("crash", 0), config())
        .expect("log");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("rt");
    let out = Arc::new(std::sync::Mutex::new(std::io::stdout()));
    rt.block_on(async move {
        let mut tasks = Vec::new();
        for t in 0..4u64 {
            let log = log.clone();
            let out = out.clone();
            tasks.push(tokio::spawn(async move {
                for k in 0.. {
                    let seq = start_seq + k * 4 + t;
                    let n = 1 + (seq % 7) as i32;
                    let v =
                        validate_batches(batch(seq, n), &log.config(), now_ms()).expect("valid");
                    let info = log.append(&v, 0).expect("append");
                    log.wait_durable(info.last_offset + 1)
                        .await
                        .expect("durable");
                    let mut o = out.lock().expect("stdout");
                    writeln!(o, "ACK {seq} {} {}", info.first_offset, info.last_offset)
                        .expect("print");
                    o.flush().expect("flush");
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    });
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn acknowledged_batches_survive_kill_9() {
    let iterations: u64 = std::env::var("STROM_CRASH_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let seed = now_ms() as u64 | 1;
    eprintln!("crash test seed {seed}");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().expect("tmp");
    let exe = std::env::current_exe().expect("exe");
    // Every acknowledged batch: seq → (first, last).
    let mut acked: BTreeMap<u64, (i64, i64)> = BTreeMap::new();
    let mut next_seq = 0u64;
    for it in 0..iterations {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .env("STROM_CRASH_SEQ", next_seq.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Wait for the first ack so each iteration writes something, then a random extra time.
        let deadline = Instant::now() + Duration::from_secs(30);
        let first = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("child acknowledged nothing");
        let mut lines = vec![first];
        let extra = Duration::from_millis(rng.next() % 150);
        std::thread::sleep(extra);
        assert!(Instant::now() < deadline);
        // SIGKILL: no destructor, no flush, no clean-shutdown marker.
        child.kill().expect("kill -9");
        let _ = child.wait();
        reader.join().expect("reader");
        lines.extend(rx.try_iter());
        let before = acked.len();
        for l in lines {
            let mut p = l.split_whitespace();
            if p.next() != Some("ACK") {
                continue;
            }
            let nums: Vec<i64> = p.filter_map(|x| x.parse().ok()).collect();
            if let [seq, first, last] = nums[..] {
                acked.insert(seq as u64, (first, last));
                next_seq = next_seq.max(seq as u64 + 1);
            }
        }
        next_seq = next_seq.div_ceil(4) * 4 + 4;
        // Reopen and verify everything acknowledged so far.
        let mgr = open(dir.path());
        let log = mgr
            .get(&TopicPartition::new("crash", 0))
            .expect("log reopened");
        let found = read_everything(&log);
        for (seq, (first, last)) in &acked {
            let got = found.get(first).unwrap_or_else(|| {
                panic!("iteration {it} (seed {seed}): acked batch seq {seq} at {first} lost")
            });
            assert_eq!(
                got,
                &(*seq, *last),
                "iteration {it}: batch at {first} changed"
            );
        }
        // Offsets are contiguous and in order.
        let mut expect = 0;
        for (first, (_, last)) in &found {
            assert_eq!(*first, expect, "gap or overlap at {first}");
            expect = last + 1;
        }
        assert_eq!(log.log_end_offset(), expect);
        eprintln!(
            "iteration {it}: {} acked this round, {} batches on disk",
            acked.len() - before,
            found.len()
        );
        mgr.shutdown().expect("shutdown");
        // Alternate clean and unclean reopen paths: delete the marker half of the time.
        if it % 2 == 0 {
            let _ = std::fs::remove_file(dir.path().join(".kafka_cleanshutdown"));
        }
    }
    assert!(acked.len() as u64 >= iterations);
}

/// Every batch in the log: first offset → (seq from its values, last offset), each CRC-checked
/// and decoded.
fn read_everything(log: &strom_log::PartitionLog) -> BTreeMap<i64, (u64, i64)> {
    let mut out = BTreeMap::new();
    let mut from = log.log_start_offset();
    loop {
        let info = log
            .read(from, 1 << 20, ReadBound::HighWatermark, true)
            .expect("read");
        let Some(slice) = info.records else { break };
        let bytes = slice.read_to_vec().expect("bytes");
        let mut progressed = false;
        for b in Batches::new(&bytes) {
            let Ok(b) = b else { break };
            b.validate().expect("CRC of a recovered batch");
            let mut raw = Bytes::copy_from_slice(b.as_bytes());
            let set = RecordBatchDecoder::decode(&mut raw).expect("decode");
            let value = set.records[0].value.clone().expect("value");
            let seq: u64 = std::str::from_utf8(&value)
                .expect("utf8")
                .split(':')
                .next()
                .and_then(|s| s.parse().ok())
                .expect("seq");
            for (i, r) in set.records.iter().enumerate() {
                let v = r.value.clone().expect("value");
                assert!(
                    v.starts_with(format!("{seq}:{i}:").as_bytes()),
                    "record content"
                );
            }
            out.insert(b.base_offset(), (seq, b.last_offset()));
            from = b.last_offset() + 1;
            progressed = true;
        }
        if !progressed {
            break;
        }
    }
    out
}
