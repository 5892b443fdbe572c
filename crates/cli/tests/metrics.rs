//! The HTTP endpoint of `strom serve` end to end: `/health`, `/ready` and `/metrics` scraped
//! over a real socket and parsed as Prometheus text, compared with what real clients
//! (librdkafka) produced, fetched and committed; the default address taken (a second local
//! node runs without HTTP) and an explicit address taken (start-up fails); and in a 3-node
//! cluster, a stopped follower counted as under-replicated on the leader until it returns.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::cluster::{create_replicated_topic, StromCluster, FAST_FAILOVER};
use common::{client_config, consume_exactly, create_topic, producer, StromProcess, TIMEOUT};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};

/// One HTTP/1.1 GET: status, headers (lower-case names), body.
fn get(addr: &str, path: &str, accept: Option<&str>) -> (u16, BTreeMap<String, String>, String) {
    let accept: Vec<(&str, &str)> = accept.map(|a| ("Accept", a)).into_iter().collect();
    get_with(addr, path, &accept)
}

/// A GET with extra request headers.
fn get_with(
    addr: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, BTreeMap<String, String>, String) {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
    s.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Connection: close\r\n\r\n"
    )
    .expect("writing request");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("reading response");
    let (head, body) = raw.split_once("\r\n\r\n").expect("header end");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect::<BTreeMap<_, _>>();
    assert!(
        !headers
            .get("transfer-encoding")
            .is_some_and(|t| t.contains("chunked")),
        "unexpected chunked response"
    );
    (status, headers, body.to_string())
}

/// A librdkafka consumer in `group` with extra settings.
fn group_consumer(addr: &str, group: &str, settings: &[(&str, &str)]) -> BaseConsumer {
    let mut config = client_config(addr);
    config.set("group.id", group);
    for (k, v) in settings {
        config.set(*k, *v);
    }
    config.create().expect("consumer")
}

/// A sample: metric name and its labels.
type Series = (String, BTreeMap<String, String>);

/// Parses Prometheus text exposition (samples only; `#` lines skipped). Label values may hold
/// `\"`, `\\` and `\n` escapes.
fn parse_prometheus(text: &str) -> BTreeMap<Series, f64> {
    let mut out = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (series, value) = line.rsplit_once(' ').expect("sample has a value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series.to_string(), BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').expect("labels end with }");
                (name.to_string(), parse_labels(body))
            }
        };
        assert!(
            out.insert((name, labels), value).is_none(),
            "duplicate series {line:?}"
        );
    }
    out
}

fn parse_labels(body: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut chars = body.chars().peekable();
    loop {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            return labels;
        }
        assert_eq!(chars.next(), Some('"'), "label value quoted");
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '"' => break,
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(other) => value.push(other),
                    None => panic!("dangling escape"),
                },
                c => value.push(c),
            }
        }
        labels.insert(key.trim_start_matches(',').to_string(), value);
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
}

/// A scrape, with lookups by name and labels.
struct Scrape(BTreeMap<Series, f64>);

impl Scrape {
    fn of(http: &str) -> Scrape {
        let (status, headers, body) = get(http, "/metrics", None);
        assert_eq!(status, 200, "{body}");
        assert!(
            headers
                .get("content-type")
                .is_some_and(|c| c.starts_with("text/plain; version=0.0.4")),
            "{headers:?}"
        );
        Scrape(parse_prometheus(&body))
    }

    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let labels: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.0.get(&(name.to_string(), labels)).copied()
    }

    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(name, labels)
            .unwrap_or_else(|| panic!("no series {name}{labels:?} in {:?}", self.names()))
    }

    /// Sum over every series of `name` whose labels include `labels`.
    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .iter()
            .filter(|((n, l), _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(v))
            })
            .map(|(_, v)| v)
            .sum()
    }

    fn names(&self) -> Vec<&str> {
        let mut n: Vec<&str> = self.0.keys().map(|(n, _)| n.as_str()).collect();
        n.dedup();
        n
    }
}

#[test]
fn parser_reads_labels_and_escapes() {
    let m = parse_prometheus(
        "# HELP x y\nstrom_a_total{topic=\"t,\\\"1\",partition=\"0\"} 5\nstrom_b 1.5\nh_bucket{le=\"+Inf\"} 3\n",
    );
    let labels = BTreeMap::from([
        ("topic".to_string(), "t,\"1".to_string()),
        ("partition".to_string(), "0".to_string()),
    ]);
    assert_eq!(m.get(&("strom_a_total".to_string(), labels)), Some(&5.0));
    assert_eq!(m.get(&("strom_b".to_string(), BTreeMap::new())), Some(&1.5));
    assert_eq!(m.len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_match_what_clients_produced_fetched_and_committed() {
    const N: usize = 50;
    const COMMITTED: i64 = 20;
    let b = StromProcess::start_with_args(&["--http-listen", "127.0.0.1:0"]);
    let http = b.http_addr();
    assert_eq!(get(&http, "/health", None).0, 200);
    assert_eq!(get(&http, "/ready", None).0, 200);

    create_topic(b.addr(), "metered", 1).await;
    let p = producer(b.addr());
    for i in 0..N {
        let payload = format!("record-{i}");
        p.send(
            FutureRecord::to("metered").key("k").payload(&payload),
            TIMEOUT,
        )
        .await
        .expect("produce");
    }
    // A consumer reads everything (bytes out), and a group commits offset 20 (lag 30).
    let reader = common::consumer(b.addr());
    consume_exactly(&reader, "metered", &[0], Offset::Beginning, N);
    let group = group_consumer(b.addr(), "lagging", &[("enable.auto.commit", "false")]);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("metered", 0, Offset::Offset(COMMITTED))
        .expect("tpl");
    let deadline = Instant::now() + Duration::from_secs(20);
    while let Err(e) = group.commit(&tpl, CommitMode::Sync) {
        assert!(Instant::now() < deadline, "commit: {e}");
        std::thread::sleep(Duration::from_millis(200));
    }

    let s = Scrape::of(&http);
    let topic = [("topic", "metered")];
    let partition = [("topic", "metered"), ("partition", "0")];
    assert_eq!(s.get("strom_topic_records_in_total", &topic), N as f64);
    assert_eq!(
        s.get("strom_partition_high_watermark", &partition),
        N as f64
    );
    assert_eq!(s.get("strom_partition_log_start_offset", &partition), 0.0);
    let bytes_in = s.get("strom_topic_bytes_in_total", &topic);
    assert!(bytes_in > 0.0);
    // Every appended batch is in the segment, nothing else is.
    assert_eq!(s.get("strom_partition_size_bytes", &partition), bytes_in);
    // The reader fetched every batch at least once.
    assert!(s.get("strom_topic_bytes_out_total", &topic) >= bytes_in);
    assert_eq!(
        s.get(
            "strom_consumer_group_lag",
            &[
                ("group", "lagging"),
                ("topic", "metered"),
                ("partition", "0")
            ]
        ),
        (N as i64 - COMMITTED) as f64
    );
    assert_eq!(
        s.get("strom_consumer_group_members", &[("group", "lagging")]),
        0.0
    );
    assert!(
        s.sum(
            "strom_requests_total",
            &[("api", "Produce"), ("error", "none")]
        ) >= 1.0
    );
    assert!(s.sum("strom_requests_total", &[("api", "OffsetCommit")]) >= 1.0);
    assert!(
        s.get(
            "strom_request_duration_seconds_count",
            &[("api", "Produce")]
        ) >= 1.0
    );
    // The producer, the reader and the group consumer are connected.
    assert!(s.get("strom_connections", &[("listener", "PLAINTEXT")]) >= 3.0);
    assert_eq!(s.get("strom_active_controller", &[]), 1.0);
    assert_eq!(s.get("strom_under_replicated_partitions", &[]), 0.0);
    assert_eq!(s.get("strom_offline_partitions", &[]), 0.0);
    assert!(s.get("strom_log_flush_duration_seconds_count", &[]) >= 1.0);
    assert!(s.get("process_resident_memory_bytes", &[]) > 0.0);
    assert!(s.get("process_open_fds", &[]) > 0.0);

    // OpenMetrics on request.
    let (status, headers, body) = get(&http, "/metrics", Some("application/openmetrics-text"));
    assert_eq!(status, 200);
    assert!(headers
        .get("content-type")
        .is_some_and(|c| c.starts_with("application/openmetrics-text")));
    assert!(body.trim_end().ends_with("# EOF"), "{body}");
    drop((p, reader, group));
    b.assert_no_panic();
}

#[test]
fn a_taken_default_http_address_is_skipped_and_a_taken_explicit_one_fails_start_up() {
    // Whoever holds 127.0.0.1:9644 (this test, or another local node), the broker starts
    // without HTTP and says so.
    let _held = std::net::TcpListener::bind(strom_default_http());
    let b = StromProcess::start();
    assert!(
        b.stderr().contains("running without the HTTP endpoint"),
        "{}",
        b.stderr()
    );
    assert!(
        !b.stdout_lines()
            .iter()
            .any(|l| l.starts_with("strom: http on")),
        "{:?}",
        b.stdout_lines()
    );
    b.assert_no_panic();

    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(env!("CARGO_BIN_EXE_strom"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            &addr,
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .stdin(Stdio::null())
        .output()
        .expect("running strom");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "started on a taken address: {stderr}"
    );
    assert!(stderr.contains("binding the HTTP endpoint"), "{stderr}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("strom: listening on"),
        "the broker started"
    );
}

fn strom_default_http() -> &'static str {
    "127.0.0.1:9644"
}

/// Waits until `cond` holds for a scrape of `http`, or fails with the last scrape.
fn wait_scrape(http: &str, what: &str, cond: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = Scrape::of(http);
        if cond(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; last scrape: {:?}",
            s.0.iter()
                .filter(|((n, _), _)| n.starts_with("strom_isr")
                    || n.starts_with("strom_under")
                    || n.starts_with("strom_partition_high"))
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_follower_is_under_replicated_on_the_leader_until_it_returns() {
    let mut args = FAST_FAILOVER.to_vec();
    // Internal topics unreplicated, so the one replicated topic is all that can be
    // under-replicated.
    args.extend([
        "--http-listen",
        "127.0.0.1:0",
        "--set",
        "offsets.topic.replication.factor=1",
        "--set",
        "transaction.state.log.replication.factor=1",
    ]);
    let mut cluster = StromCluster::start(3, &args);
    let bootstrap = cluster.bootstrap();
    create_replicated_topic(&bootstrap, "replicated", 1, "1").await;
    cluster.wait_for("ISR of 3", |c| {
        c.partition("replicated", 0)
            .is_some_and(|p| p.isr.len() == 3)
    });
    let leader = cluster
        .partition("replicated", 0)
        .expect("partition")
        .leader;
    let http = cluster.node(leader).http_addr();
    assert_eq!(get(&http, "/ready", None).0, 200);
    let s = wait_scrape(&http, "no under-replicated partition", |s| {
        s.get("strom_under_replicated_partitions", &[]) == 0.0
    });
    let shrinks = s.get("strom_isr_shrinks_total", &[]);
    let expands = s.get("strom_isr_expands_total", &[]);
    let controllers: f64 = (1..=3)
        .map(|id| Scrape::of(&cluster.node(id).http_addr()).get("strom_active_controller", &[]))
        .sum();
    assert_eq!(
        controllers, 1.0,
        "exactly one node is the active controller"
    );

    let follower = (1..=3).find(|id| *id != leader).expect("a follower");
    cluster.node(follower).stop();
    let s = wait_scrape(&http, "one under-replicated partition", |s| {
        s.get("strom_under_replicated_partitions", &[]) == 1.0
    });
    assert!(s.get("strom_isr_shrinks_total", &[]) > shrinks);

    cluster.node(follower).start_again();
    let s = wait_scrape(
        &http,
        &format!(
            "the follower back in the ISR ({:?})",
            cluster.partition("replicated", 0)
        ),
        |s| s.get("strom_under_replicated_partitions", &[]) == 0.0,
    );
    assert!(s.get("strom_isr_expands_total", &[]) > expands);
    cluster.assert_no_panic();
}

/// `Authorization: Basic` for `user:password` (RFC 7617; base64 by hand, to keep the test
/// free of the code under test).
fn basic(user: &str, password: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = format!("{user}:{password}").into_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    format!("Basic {out}")
}

#[test]
fn basic_auth_is_required_when_the_listeners_take_passwords() {
    assert_eq!(
        basic("Aladdin", "open sesame"),
        "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("server.properties");
    std::fs::write(
        &config,
        "listeners=PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0\n\
         inter.broker.listener.name=PLAINTEXT\n\
         listener.name.sasl_plaintext.sasl.enabled.mechanisms=SCRAM-SHA-256,PLAIN\n\
         listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_bob=\"bob-secret\";\n",
    )
    .expect("writing config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_strom"))
        .args(["serve", "--http-listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .args([
            "--add-scram",
            "SCRAM-SHA-256=[name=alice,password=alice-secret]",
        ])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(
            std::fs::File::create(dir.path().join("stderr")).expect("stderr file"),
        ))
        .spawn()
        .expect("spawning strom");
    let stdout = child.stdout.take().expect("stdout");
    let http = std::io::BufRead::lines(std::io::BufReader::new(stdout))
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("strom: http on ").map(str::to_string))
        .unwrap_or_else(|| {
            let _ = child.kill();
            panic!(
                "no http line; stderr: {}",
                std::fs::read_to_string(dir.path().join("stderr")).unwrap_or_default()
            )
        });
    let status = |path: &str, auth: Option<String>| {
        let headers: Vec<(&str, &str)> = auth
            .as_deref()
            .map(|a| ("Authorization", a))
            .into_iter()
            .collect();
        get_with(&http, path, &headers).0
    };
    // The SCRAM user may be written in the background just after start: wait for it.
    let deadline = Instant::now() + Duration::from_secs(20);
    while status("/metrics", Some(basic("alice", "alice-secret"))) != 200 {
        assert!(Instant::now() < deadline, "alice never got in");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(status("/health", None), 200, "probes stay open");
    assert_eq!(status("/metrics", None), 401);
    assert_eq!(status("/ready", None), 401);
    assert_eq!(status("/metrics", Some(basic("alice", "wrong"))), 401);
    assert_eq!(
        status("/metrics", Some(basic("mallory", "alice-secret"))),
        401
    );
    assert_eq!(
        status("/ready", Some(basic("bob", "bob-secret"))),
        200,
        "PLAIN user"
    );
    assert_eq!(status("/ready", Some(basic("bob", "bob-secre"))), 401);
    assert_eq!(status("/metrics", Some("Bearer x".to_string())), 401);
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn json_logs_and_slow_requests_are_logged() {
    let b = StromProcess::start_with_args(&[
        "--log-format",
        "json",
        "--set",
        "request.log.slow.ms=150",
    ]);
    // A long-polling fetch on an empty partition waits fetch.wait.max.ms = 400 ms: slow.
    let admin_rt = tokio::runtime::Runtime::new().expect("runtime");
    admin_rt.block_on(create_topic(b.addr(), "quiet", 1));
    let c = group_consumer(b.addr(), "slow-log", &[("fetch.wait.max.ms", "400")]);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("quiet", 0, Offset::Beginning)
        .expect("tpl");
    c.assign(&tpl).expect("assign");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !b.stderr().contains("slow request") {
        assert!(
            Instant::now() < deadline,
            "no slow request line: {}",
            b.stderr()
        );
        let _ = c.poll(Duration::from_millis(200));
    }
    let stderr = b.stderr();
    let log_lines: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with("====="))
        .collect();
    assert!(!log_lines.is_empty());
    for l in &log_lines {
        assert!(
            l.starts_with('{') && l.ends_with('}') && l.contains("\"level\""),
            "not a JSON log line: {l}"
        );
    }
    let slow = log_lines
        .iter()
        .find(|l| l.contains("slow request"))
        .expect("slow line");
    assert!(
        slow.contains("Fetch") && slow.contains("elapsed_ms"),
        "{slow}"
    );
    b.assert_no_panic();
}

#[tokio::test(flavor = "multi_thread")]
async fn produce_throttling_is_counted_per_client_id() {
    let b = StromProcess::start_with_args(&["--http-listen", "127.0.0.1:0"]);
    let http = b.http_addr();
    create_topic(b.addr(), "held", 1).await;
    let out = Command::new(env!("CARGO_BIN_EXE_strom"))
        .args(["quotas", "alter", "--bootstrap-server", b.addr()])
        .args([
            "--client-id",
            "slowpoke",
            "--add-config",
            "producer_byte_rate=1024",
        ])
        .output()
        .expect("strom quotas alter");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p: rdkafka::producer::FutureProducer = common::producer_config(b.addr())
        .set("client.id", "slowpoke")
        .create()
        .expect("producer");
    // 100 KiB against 1 KiB/s (Kafka's rate spreads a burst over the whole quota window, 10 s
    // here, so the margin must be wide): throttled for long, so the sends are not awaited.
    let payload = vec![b'x'; 10 * 1024];
    for _ in 0..10 {
        let _ = p.send_result(FutureRecord::to("held").key("k").payload(&payload));
    }
    let s = wait_scrape(&http, "produce throttle time", |s| {
        s.value(
            "strom_produce_throttle_seconds_total",
            &[("user", ""), ("client_id", "slowpoke")],
        )
        .is_some_and(|v| v > 0.0)
    });
    assert_eq!(s.sum("strom_fetch_throttle_seconds_total", &[]), 0.0);
    b.assert_no_panic();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_only_once_the_quorum_has_registered_the_broker() {
    let _alone = common::cluster::one_cluster_at_a_time();
    let ports: Vec<u16> = (0..6).map(|_| common::cluster::free_port()).collect();
    let voters = format!(
        "1@127.0.0.1:{},2@127.0.0.1:{},3@127.0.0.1:{}",
        ports[3], ports[4], ports[5]
    );
    let launch = |i: usize| {
        let args: Vec<String> = [
            "--node-id".to_string(),
            (i + 1).to_string(),
            "--controller-listen".into(),
            format!("127.0.0.1:{}", ports[3 + i]),
            "--voters".into(),
            voters.clone(),
            "--http-listen".into(),
            "127.0.0.1:0".into(),
        ]
        .into_iter()
        .chain(FAST_FAILOVER.iter().map(|s| s.to_string()))
        .collect();
        StromProcess::launch(&format!("127.0.0.1:{}", ports[i]), &args)
    };
    // Node 1 alone: no quorum, so it cannot register; it starts serving after its join limit.
    let mut first = launch(0);
    first.wait_ready();
    let http = first.http_addr();
    assert_eq!(get(&http, "/health", None).0, 200);
    assert_eq!(get(&http, "/ready", None).0, 503, "ready without a quorum");
    let mut others = [launch(1), launch(2)];
    for n in &mut others {
        n.wait_ready();
    }
    // Under load (debug builds, two cores, other tests) the quorum can take a while to form and
    // unfence node 1.
    let deadline = Instant::now() + Duration::from_secs(90);
    while get(&http, "/ready", None).0 != 200 {
        assert!(
            Instant::now() < deadline,
            "never ready; node 1:\n{}\nnode 2:\n{}\nnode 3:\n{}",
            first.stderr(),
            others[0].stderr(),
            others[1].stderr()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for n in &others {
        assert_eq!(get(&n.http_addr(), "/ready", None).0, 200);
    }
    first.assert_no_panic();
}
