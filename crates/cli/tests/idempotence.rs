//! The idempotent producer end to end: InitProducerId (ids never reused across restarts), the
//! produce-path error codes over a raw socket, and librdkafka with `enable.idempotence=true`
//! producing through a TCP proxy that cuts every connection a few times while requests are in
//! flight. The topic must hold each message exactly once, in order.
//!
//! The proxy is what the client believes is the broker: the broker is started with
//! `--advertised-listener 127.0.0.1:<proxy port>`, so Metadata sends clients back through it.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::{client_config, consume_exactly, consumer, create_topic, RawConn, StromProcess};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, InitProducerIdRequest, InitProducerIdResponse, ProduceRequest, ProduceResponse,
    TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Offset;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

fn init_producer_id(conn: &mut RawConn, version: i16, txn: Option<&str>) -> (i16, i64, i16) {
    let req = InitProducerIdRequest::default()
        .with_transactional_id(txn.map(|t| TransactionalId(StrBytes::from_string(t.into()))))
        .with_transaction_timeout_ms(60_000);
    let resp: InitProducerIdResponse = conn.request(ApiKey::InitProducerId, version, 41, &req);
    (resp.error_code, resp.producer_id.0, resp.producer_epoch)
}

#[tokio::test]
async fn producer_ids_are_unique_and_never_reused_after_restart() {
    let mut b = StromProcess::start();
    let mut conn = RawConn::connect(b.addr());
    let (err, first, epoch) = init_producer_id(&mut conn, 4, None);
    assert_eq!((err, epoch), (0, 0));
    assert!(first >= 0);
    for v in [0, 1, 2, 3, 5] {
        let (err, id, epoch) = init_producer_id(&mut conn, v, None);
        assert_eq!((err, epoch), (0, 0), "v{v}");
        assert!(id > first, "v{v}: id {id} not after {first}");
    }
    // A transactional id goes to the transaction coordinator (see tests/transactions.rs).
    assert_eq!(init_producer_id(&mut conn, 4, Some("txn")).0, 0);
    assert_eq!(init_producer_id(&mut conn, 4, Some("")).0, 42);
    drop(conn);
    b.kill9();
    b.restart();
    let mut conn = RawConn::connect(b.addr());
    let (err, after, _) = init_producer_id(&mut conn, 4, None);
    assert_eq!(err, 0);
    assert!(
        after > first + 5,
        "id {after} handed out again after restart"
    );
    b.assert_no_panic();
}

/// One batch of `n` records from producer `pid`, starting at sequence `seq`.
fn idempotent_batch(pid: i64, epoch: i16, seq: i32, n: i32) -> Bytes {
    let values = (seq..seq + n).map(|s| format!("seq-{s}")).collect();
    common::txn::producer_batch(pid, epoch, seq, false, values)
}

/// Produce v9 (acks=all) to partition 0: `(error_code, base_offset)`.
fn produce(conn: &mut RawConn, topic: &str, records: Bytes) -> (i16, i64) {
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.into())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(records))])]);
    let resp: ProduceResponse = conn.request(ApiKey::Produce, 9, 42, &req);
    let p = &resp.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

#[tokio::test]
async fn produce_answers_retries_with_original_offsets_and_maps_sequence_errors() {
    let mut b = StromProcess::start();
    create_topic(b.addr(), "seq", 1).await;
    let mut conn = RawConn::connect(b.addr());
    let (_, pid, _) = init_producer_id(&mut conn, 4, None);
    assert_eq!(
        produce(&mut conn, "seq", idempotent_batch(pid, 0, 0, 3)),
        (0, 0)
    );
    assert_eq!(
        produce(&mut conn, "seq", idempotent_batch(pid, 0, 3, 2)),
        (0, 3)
    );
    // The retry of the first batch: its original offset, nothing written.
    assert_eq!(
        produce(&mut conn, "seq", idempotent_batch(pid, 0, 0, 3)),
        (0, 0)
    );
    // A gap: OUT_OF_ORDER_SEQUENCE_NUMBER.
    assert_eq!(
        produce(&mut conn, "seq", idempotent_batch(pid, 0, 9, 1)).0,
        45
    );
    // An unknown producer continuing a sequence: UNKNOWN_PRODUCER_ID.
    assert_eq!(
        produce(&mut conn, "seq", idempotent_batch(pid + 1, 0, 4, 1)).0,
        59
    );
    // A new epoch fences the old one: INVALID_PRODUCER_EPOCH.
    assert_eq!(
        produce(&mut conn, "seq", idempotent_batch(pid, 1, 0, 1)),
        (0, 5)
    );
    assert_eq!(
        produce(&mut conn, "seq", idempotent_batch(pid, 0, 5, 1)).0,
        47
    );
    assert_eq!(common::list_offset(&mut conn, "seq", 0, -1), (0, 6));
    // After a crash the producer state comes back from the log: still a duplicate.
    drop(conn);
    b.kill9();
    b.restart();
    let mut conn = RawConn::connect(b.addr());
    assert_eq!(
        produce(&mut conn, "seq", idempotent_batch(pid, 1, 0, 1)),
        (0, 5)
    );
    assert_eq!(common::list_offset(&mut conn, "seq", 0, -1), (0, 6));
    b.assert_no_panic();
}

// ---------------------------------------------------------------------------------------------
// A connection-cutting proxy

/// How a scheduled cut happens.
#[derive(Debug, Clone, Copy)]
enum Cut {
    /// Forward a whole Produce request, then close before its response comes back: the broker
    /// appends it and the client retries it (the duplicate case).
    AfterRequest,
    /// Forward half of a Produce request, then close: the broker never sees it.
    MidRequest,
}

/// Cuts every proxied connection at scheduled Produce requests (counted over all connections).
#[derive(Debug)]
struct Proxy {
    port: u16,
    armed: AtomicBool,
    produce_requests: AtomicUsize,
    schedule: Vec<(usize, Cut)>,
    cuts: Mutex<Vec<Cut>>,
    generation: watch::Sender<u64>,
}

impl Proxy {
    async fn start(schedule: Vec<(usize, Cut)>) -> (Arc<Proxy>, TcpListener) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("proxy addr").port();
        let (generation, _) = watch::channel(0);
        let proxy = Arc::new(Proxy {
            port,
            armed: AtomicBool::new(false),
            produce_requests: AtomicUsize::new(0),
            schedule,
            cuts: Mutex::new(Vec::new()),
            generation,
        });
        (proxy, listener)
    }

    fn run(self: &Arc<Self>, listener: TcpListener, upstream: String) {
        let proxy = self.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(broker) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                tokio::spawn(proxy.clone().pipe(client, broker));
            }
        });
    }

    /// The cut due at this Produce request, if any (each scheduled cut fires once).
    fn cut_for(&self, api_key: i16) -> Option<Cut> {
        if api_key != 0 || !self.armed.load(Ordering::SeqCst) {
            return None;
        }
        let n = self.produce_requests.fetch_add(1, Ordering::SeqCst) + 1;
        self.schedule
            .iter()
            .find(|(at, _)| *at == n)
            .map(|(_, cut)| *cut)
    }

    fn cut_all(&self, cut: Cut) {
        self.cuts.lock().expect("cuts").push(cut);
        self.generation.send_modify(|g| *g += 1);
    }

    async fn pipe(self: Arc<Self>, client: TcpStream, broker: TcpStream) {
        let _ = client.set_nodelay(true);
        let _ = broker.set_nodelay(true);
        let mut cut = self.generation.subscribe();
        cut.borrow_and_update();
        let (mut cr, mut cw) = client.into_split();
        let (mut br, mut bw) = broker.into_split();
        let proxy = self.clone();
        // Client → broker, frame by frame, so cuts land on request boundaries or mid-request.
        let upstream = async move {
            let mut pending: Vec<u8> = Vec::new();
            let mut buf = vec![0u8; 64 << 10];
            loop {
                let n = match cr.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                pending.extend_from_slice(&buf[..n]);
                while pending.len() >= 6 {
                    let size = i32::from_be_bytes([pending[0], pending[1], pending[2], pending[3]]);
                    let total = 4 + size.max(0) as usize;
                    if pending.len() < total {
                        break;
                    }
                    let frame: Vec<u8> = pending.drain(..total).collect();
                    let api_key = i16::from_be_bytes([frame[4], frame[5]]);
                    match proxy.cut_for(api_key) {
                        None => {
                            if bw.write_all(&frame).await.is_err() {
                                return;
                            }
                        }
                        Some(c) => {
                            let upto = match c {
                                Cut::AfterRequest => frame.len(),
                                Cut::MidRequest => frame.len() / 2,
                            };
                            let _ = bw.write_all(&frame[..upto]).await;
                            let _ = bw.flush().await;
                            proxy.cut_all(c);
                            return;
                        }
                    }
                }
            }
        };
        let downstream = async move {
            let mut buf = vec![0u8; 64 << 10];
            loop {
                match br.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if cw.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                }
            }
        };
        tokio::select! {
            _ = upstream => {}
            _ = downstream => {}
            _ = cut.changed() => {}
        }
        // Both halves of both sockets drop here: the client and the broker see the close.
    }
}

/// `strom serve` advertising `advertised` (the proxy); returns the child and its own address.
fn start_broker(data: &Path, stderr: &Path, advertised: &str) -> (Child, String) {
    let log = std::fs::File::create(stderr).expect("stderr file");
    let mut child = Command::new(env!("CARGO_BIN_EXE_strom"))
        .arg("serve")
        .arg("--data-dir")
        .arg(data)
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--advertised-listener")
        .arg(advertised)
        // The duplicate path logs at debug; the test checks it ran.
        .env("STROM_LOG", "info,strom_log::partition_log::producer=debug")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("spawning strom");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::{BufRead, BufReader, Read};
        let mut r = BufReader::new(stdout);
        let mut line = String::new();
        let _ = r.read_line(&mut line);
        let _ = tx.send(line);
        let mut sink = Vec::new();
        let _ = r.read_to_end(&mut sink);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("strom printed its address");
    let addr = line
        .trim()
        .strip_prefix("strom: listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    (child, addr)
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rdkafka_idempotent_producer_survives_cut_connections_exactly_once() {
    const N: usize = 4000;
    let dir = tempfile::tempdir().expect("tmp");
    let stderr = dir.path().join("stderr.log");
    let schedule = vec![
        (10, Cut::AfterRequest),
        (25, Cut::MidRequest),
        (40, Cut::AfterRequest),
        (60, Cut::AfterRequest),
        (80, Cut::MidRequest),
        (100, Cut::AfterRequest),
    ];
    let (proxy, listener) = Proxy::start(schedule.clone()).await;
    let proxy_addr = format!("127.0.0.1:{}", proxy.port);
    let (child, broker_addr) = start_broker(&dir.path().join("data"), &stderr, &proxy_addr);
    let _child = KillOnDrop(child);
    proxy.run(listener, broker_addr);

    let topic = "idempotent";
    create_topic(&proxy_addr, topic, 1).await;
    let producer: FutureProducer = client_config(&proxy_addr)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "2")
        .set("batch.num.messages", "20")
        .set("max.in.flight.requests.per.connection", "5")
        .set("message.timeout.ms", "60000")
        .set("retry.backoff.ms", "20")
        .set("reconnect.backoff.ms", "10")
        .create()
        .expect("producer");
    proxy.armed.store(true, Ordering::SeqCst);
    let value = |i: usize| format!("msg-{i:06}-{}", "x".repeat(i % 50));
    let mut pending = Vec::with_capacity(N);
    for i in 0..N {
        let f = producer
            .send_result(FutureRecord::<(), _>::to(topic).payload(&value(i)))
            .map_err(|(e, _)| e)
            .expect("enqueue");
        pending.push(f);
        if i % 100 == 99 {
            // Keep requests flowing at a pace where cuts hit requests in flight.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let mut offsets = Vec::with_capacity(N);
    for (i, f) in pending.into_iter().enumerate() {
        let d = f
            .await
            .expect("delivery future")
            .unwrap_or_else(|(e, _)| panic!("delivery of message {i} failed: {e}"));
        offsets.push(d.offset);
    }
    proxy.armed.store(false, Ordering::SeqCst);
    let cuts = proxy.cuts.lock().expect("cuts").clone();
    assert_eq!(
        cuts.len(),
        schedule.len(),
        "only {} of the scheduled cuts happened ({} produce requests)",
        cuts.len(),
        proxy.produce_requests.load(Ordering::SeqCst)
    );
    assert_eq!(
        offsets,
        (0..N as i64).collect::<Vec<_>>(),
        "acknowledged offsets"
    );

    let c = consumer(&proxy_addr);
    let got = consume_exactly(&c, topic, &[0], Offset::Beginning, N);
    for (i, m) in got.iter().enumerate() {
        assert_eq!(m.offset(), i as i64);
        assert_eq!(
            m.payload(),
            Some(value(i).as_bytes()),
            "record at offset {i}"
        );
    }
    let log = std::fs::read_to_string(&stderr).unwrap_or_default();
    assert!(!log.contains("panicked"), "broker panicked:\n{log}");
    let duplicates = log
        .matches("duplicate batch from an idempotent producer")
        .count();
    assert!(
        duplicates >= 1,
        "no retried batch was answered from producer state; the cuts did not exercise \
         deduplication:\n{log}"
    );
}
