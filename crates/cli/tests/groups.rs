//! Consumer groups end to end with librdkafka (the `rdkafka` crate) against a real `strom serve`:
//! partitions split across a group and taken over when a member leaves, a second group reading
//! everything, committed offsets surviving SIGTERM and kill -9, static membership, and Kafka's
//! error codes for bad JoinGroup/SyncGroup/Heartbeat input over a raw socket.
//!
//! The broker runs with `group.initial.rebalance.delay.ms=300` (Kafka's 3 s default would make
//! each group's first rebalance slow), so this file starts `strom serve` itself with `--set`;
//! everything else comes from the shared harness.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{client_config, create_topic, producer, RawConn, TIMEOUT};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, FindCoordinatorRequest,
    FindCoordinatorResponse, GroupId, HeartbeatRequest, HeartbeatResponse, JoinGroupRequest,
    JoinGroupResponse, SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};

/// A `strom serve` child with group settings for tests.
struct Broker {
    child: Option<Child>,
    dir: tempfile::TempDir,
    addr: String,
}

impl Broker {
    fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("strom-groups-")
            .tempdir()
            .expect("temp dir");
        let mut b = Broker {
            child: None,
            dir,
            addr: String::new(),
        };
        b.spawn();
        b
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("stderr.log"))
            .expect("stderr log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_strom"))
            .arg("serve")
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--listen")
            .arg("127.0.0.1:0")
            .args(["--set", "group.initial.rebalance.delay.ms=300"])
            .args(["--set", "offsets.topic.num.partitions=10"])
            .env(
                "STROM_LOG",
                std::env::var("STROM_LOG").unwrap_or("info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawning strom");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut line = String::new();
            let _ = r.read_line(&mut line);
            let _ = tx.send(line);
            let mut sink = Vec::new();
            let _ = r.read_to_end(&mut sink);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("strom did not start; stderr:\n{}", self.stderr()));
        self.addr = line
            .trim()
            .strip_prefix("strom: listening on ")
            .unwrap_or_else(|| panic!("unexpected line {line:?}; stderr:\n{}", self.stderr()))
            .to_string();
        self.child = Some(child);
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    fn addr(&self) -> &str {
        &self.addr
    }

    /// SIGTERM (clean) or SIGKILL, then start again on the same data dir.
    fn restart(&mut self, kill9: bool) {
        let mut child = self.child.take().expect("running");
        if kill9 {
            child.kill().expect("SIGKILL");
        } else {
            let st = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .expect("kill");
            assert!(st.success());
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(st) = child.try_wait().expect("wait") {
                assert!(
                    kill9 || st.success(),
                    "unclean exit {st}; stderr:\n{}",
                    self.stderr()
                );
                break;
            }
            assert!(Instant::now() < deadline, "strom did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
        self.spawn();
    }

    fn assert_no_panic(&self) {
        assert!(
            !self.stderr().contains("panicked"),
            "panic:\n{}",
            self.stderr()
        );
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Counts rebalances a consumer goes through.
#[derive(Clone, Default)]
struct Counting(Arc<AtomicUsize>);

impl ClientContext for Counting {}
impl ConsumerContext for Counting {
    fn pre_rebalance(&self, _c: &BaseConsumer<Self>, _r: &Rebalance<'_>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

type GroupConsumer = BaseConsumer<Counting>;

fn group_consumer(addr: &str, group: &str, extra: &[(&str, &str)]) -> (GroupConsumer, Counting) {
    let mut c = client_config(addr);
    c.set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "500")
        .set("fetch.wait.max.ms", "100");
    for (k, v) in extra {
        c.set(*k, *v);
    }
    let ctx = Counting::default();
    let consumer = c.create_with_context(ctx.clone()).expect("consumer");
    (consumer, ctx)
}

fn assigned(c: &GroupConsumer) -> BTreeSet<i32> {
    c.assignment()
        .map(|t| t.elements().iter().map(|e| e.partition()).collect())
        .unwrap_or_default()
}

/// Polls until every partition of `0..n` is assigned to exactly one consumer; returns them.
fn wait_balanced(cs: &[&GroupConsumer], n: i32) -> Vec<BTreeSet<i32>> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for c in cs {
            if let Some(m) = c.poll(Duration::from_millis(20)) {
                let m = m.expect("consumer error");
                panic!(
                    "record {}@{} before any was produced",
                    m.partition(),
                    m.offset()
                );
            }
        }
        let sets: Vec<BTreeSet<i32>> = cs.iter().map(|c| assigned(c)).collect();
        let total: usize = sets.iter().map(BTreeSet::len).sum();
        let union: BTreeSet<i32> = sets.iter().flatten().copied().collect();
        if total == n as usize && union.len() == n as usize && sets.iter().all(|s| !s.is_empty()) {
            return sets;
        }
        assert!(Instant::now() < deadline, "group never balanced: {sets:?}");
    }
}

/// Polls every consumer until `n` records arrived; returns (consumer index, partition, offset,
/// payload), failing on a duplicate.
fn consume(cs: &[&GroupConsumer], n: usize) -> Vec<(usize, i32, i64, String)> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while out.len() < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} records consumed",
            out.len()
        );
        for (i, c) in cs.iter().enumerate() {
            if let Some(m) = c.poll(Duration::from_millis(20)) {
                let m = m.expect("consumer error");
                assert!(
                    seen.insert((m.partition(), m.offset())),
                    "duplicate {}@{}",
                    m.partition(),
                    m.offset()
                );
                let v = String::from_utf8_lossy(m.payload().unwrap_or_default()).to_string();
                out.push((i, m.partition(), m.offset(), v));
            }
        }
    }
    // Nothing more shortly after.
    let until = Instant::now() + Duration::from_millis(300);
    while Instant::now() < until {
        for c in cs {
            if let Some(m) = c.poll(Duration::from_millis(20)) {
                let m = m.expect("consumer error");
                panic!("extra record {}@{}", m.partition(), m.offset());
            }
        }
    }
    out
}

async fn produce(
    addr: &str,
    topic: &str,
    partitions: i32,
    from: usize,
    n: usize,
) -> BTreeSet<String> {
    let p = producer(addr);
    let mut fs = Vec::new();
    let mut values = BTreeSet::new();
    for i in from..from + n {
        let v = format!("v{i}");
        let part = (i % partitions as usize) as i32;
        fs.push(
            p.send_result(FutureRecord::<(), _>::to(topic).partition(part).payload(&v))
                .map_err(|(e, _)| e)
                .expect("enqueue"),
        );
        values.insert(v);
    }
    for f in fs {
        f.await.expect("delivery").expect("delivered");
    }
    values
}

#[tokio::test(flavor = "multi_thread")]
async fn group_splits_partitions_takes_over_on_leave_and_groups_are_independent() {
    let b = Broker::start();
    create_topic(b.addr(), "orders", 6).await;
    let (c1, _) = group_consumer(b.addr(), "g1", &[]);
    let (c2, _) = group_consumer(b.addr(), "g1", &[]);
    let (c3, _) = group_consumer(b.addr(), "g1", &[]);
    for c in [&c1, &c2, &c3] {
        c.subscribe(&["orders"]).expect("subscribe");
    }
    let sets = wait_balanced(&[&c1, &c2, &c3], 6);
    assert!(
        sets.iter().all(|s| s.len() == 2),
        "range assignment 2/2/2: {sets:?}"
    );

    let first = produce(b.addr(), "orders", 6, 0, 600).await;
    let got = consume(&[&c1, &c2, &c3], 600);
    let values: BTreeSet<String> = got.iter().map(|r| r.3.clone()).collect();
    assert_eq!(values, first, "every record exactly once");
    let mut owner: HashMap<i32, usize> = HashMap::new();
    for (i, p, _, _) in &got {
        assert_eq!(
            *owner.entry(*p).or_insert(*i),
            *i,
            "partition {p} read by two members"
        );
        assert!(sets[*i].contains(p));
    }
    for c in [&c1, &c2, &c3] {
        c.commit_consumer_state(CommitMode::Sync).expect("commit");
    }

    // c3 leaves: c1 and c2 take its partitions from its committed offsets.
    drop(c3);
    let sets = wait_balanced(&[&c1, &c2], 6);
    assert!(sets.iter().all(|s| s.len() == 3), "{sets:?}");
    let second = produce(b.addr(), "orders", 6, 600, 300).await;
    let got = consume(&[&c1, &c2], 300);
    let values: BTreeSet<String> = got.iter().map(|r| r.3.clone()).collect();
    assert_eq!(
        values, second,
        "after the leave: every new record once, nothing old again"
    );

    // Another group sees everything.
    let (other, _) = group_consumer(b.addr(), "g2", &[]);
    other.subscribe(&["orders"]).expect("subscribe");
    let got = consume(&[&other], 900);
    let values: BTreeSet<String> = got.iter().map(|r| r.3.clone()).collect();
    assert_eq!(values, first.union(&second).cloned().collect());
    b.assert_no_panic();
}

fn committed(c: &GroupConsumer, topic: &str, parts: &[i32]) -> BTreeMap<i32, Offset> {
    let mut tpl = TopicPartitionList::new();
    for p in parts {
        tpl.add_partition(topic, *p);
    }
    c.committed_offsets(tpl, TIMEOUT)
        .expect("OffsetFetch")
        .elements()
        .iter()
        .map(|e| (e.partition(), e.offset()))
        .collect()
}

/// A new consumer in `group` resumes exactly at `expect` (partition → first offset read).
fn assert_resumes(addr: &str, group: &str, expect: &BTreeMap<i32, i64>) {
    let (c, _) = group_consumer(addr, group, &[]);
    c.subscribe(&["resume"]).expect("subscribe");
    let mut first: BTreeMap<i32, i64> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while first.len() < expect.len() {
        assert!(Instant::now() < deadline, "resumed only {first:?}");
        if let Some(m) = c.poll(Duration::from_millis(50)) {
            let m = m.expect("consumer error");
            first.entry(m.partition()).or_insert(m.offset());
        }
    }
    assert_eq!(&first, expect);
}

#[tokio::test(flavor = "multi_thread")]
async fn committed_offsets_survive_sigterm_and_kill9() {
    let mut b = Broker::start();
    create_topic(b.addr(), "resume", 2).await;
    produce(b.addr(), "resume", 2, 0, 200).await;
    {
        let (c, _) = group_consumer(b.addr(), "r", &[]);
        c.subscribe(&["resume"]).expect("subscribe");
        consume(&[&c], 200);
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("resume", 0, Offset::Offset(40))
            .expect("tpl");
        tpl.add_partition_offset("resume", 1, Offset::Offset(10))
            .expect("tpl");
        c.commit(&tpl, CommitMode::Sync).expect("commit");
        let got = committed(&c, "resume", &[0, 1]);
        assert_eq!(got[&0], Offset::Offset(40));
    }
    b.restart(false);
    assert_resumes(b.addr(), "r", &BTreeMap::from([(0, 40), (1, 10)]));
    {
        // A simple (assign-only) commit, generation -1, while the group is Empty.
        let (c, _) = group_consumer(b.addr(), "r", &[]);
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("resume", 0, Offset::Offset(70))
            .expect("tpl");
        tpl.add_partition_offset("resume", 1, Offset::Offset(99))
            .expect("tpl");
        // Wait for the previous member's session to end or its leave to land.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match c.commit(&tpl, CommitMode::Sync) {
                Ok(()) => break,
                Err(e) => assert!(Instant::now() < deadline, "simple commit: {e}"),
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    b.restart(true);
    assert_resumes(b.addr(), "r", &BTreeMap::from([(0, 70), (1, 99)]));
    b.assert_no_panic();
}

#[tokio::test(flavor = "multi_thread")]
async fn static_member_restart_does_not_rebalance_the_others() {
    let b = Broker::start();
    create_topic(b.addr(), "static", 4).await;
    let (s1, _) = group_consumer(b.addr(), "s", &[("group.instance.id", "one")]);
    let (s2, s2_rebalances) = group_consumer(b.addr(), "s", &[("group.instance.id", "two")]);
    s1.subscribe(&["static"]).expect("subscribe");
    s2.subscribe(&["static"]).expect("subscribe");
    let before = wait_balanced(&[&s1, &s2], 4);
    let count = s2_rebalances.0.load(Ordering::SeqCst);
    // Restart "one" (static members send no LeaveGroup on close).
    drop(s1);
    let (s1, _) = group_consumer(b.addr(), "s", &[("group.instance.id", "one")]);
    s1.subscribe(&["static"]).expect("subscribe");
    let after = wait_balanced(&[&s1, &s2], 4);
    assert_eq!(before, after, "same assignment after the restart");
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        let _ = s1.poll(Duration::from_millis(20));
        let _ = s2.poll(Duration::from_millis(20));
    }
    assert_eq!(
        s2_rebalances.0.load(Ordering::SeqCst),
        count,
        "the other member rebalanced"
    );
    b.assert_no_panic();
}

fn join(
    conn: &mut RawConn,
    version: i16,
    group: &str,
    member: &str,
    protocol_type: &str,
    protocols: &[&str],
    session_ms: i32,
) -> JoinGroupResponse {
    let req = JoinGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.into())))
        .with_session_timeout_ms(session_ms)
        .with_rebalance_timeout_ms(10_000)
        .with_member_id(StrBytes::from_string(member.into()))
        .with_protocol_type(StrBytes::from_string(protocol_type.into()))
        .with_protocols(
            protocols
                .iter()
                .map(|p| {
                    JoinGroupRequestProtocol::default()
                        .with_name(StrBytes::from_string((*p).into()))
                        .with_metadata(bytes::Bytes::from_static(b"meta"))
                })
                .collect(),
        );
    conn.request(ApiKey::JoinGroup, version, 11, &req)
}

fn heartbeat(conn: &mut RawConn, group: &str, generation: i32, member: &str) -> i16 {
    let req = HeartbeatRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.into())))
        .with_generation_id(generation)
        .with_member_id(StrBytes::from_string(member.into()));
    let r: HeartbeatResponse = conn.request(ApiKey::Heartbeat, 4, 12, &req);
    r.error_code
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_group_requests_get_kafka_error_codes() {
    let b = Broker::start();
    let mut conn = RawConn::connect(b.addr());
    let av: ApiVersionsResponse =
        conn.request(ApiKey::ApiVersions, 3, 1, &ApiVersionsRequest::default());
    let keys: BTreeSet<i16> = av.api_keys.iter().map(|k| k.api_key).collect();
    for k in [8, 9, 10, 11, 12, 13, 14, 15, 16, 42, 47] {
        assert!(keys.contains(&k), "API {k} not advertised");
    }
    // KIP-848 (tests/compat/test_kip848.py): advertised; classic clients must not care.
    assert!(
        keys.contains(&68) && keys.contains(&69),
        "KIP-848 APIs not advertised"
    );

    let fc = FindCoordinatorRequest::default()
        .with_key_type(0)
        .with_coordinator_keys(vec![StrBytes::from_static_str("g")]);
    let r: FindCoordinatorResponse = conn.request(ApiKey::FindCoordinator, 4, 2, &fc);
    assert_eq!(r.coordinators[0].error_code, 0);
    assert_eq!(
        r.coordinators[0].port,
        b.addr().rsplit(':').next().unwrap().parse::<i32>().unwrap()
    );

    // Unknown member id on a group that does not exist.
    assert_eq!(
        join(&mut conn, 5, "bad", "ghost", "consumer", &["range"], 10_000).error_code,
        25
    );
    // KIP-394: v4+ first join gets MEMBER_ID_REQUIRED and a member id.
    let first = join(&mut conn, 5, "bad", "", "consumer", &["range"], 10_000);
    assert_eq!(first.error_code, 79);
    assert!(!first.member_id.is_empty());
    // Empty protocol type / no protocols: INCONSISTENT_GROUP_PROTOCOL.
    assert_eq!(
        join(&mut conn, 3, "bad2", "", "", &["range"], 10_000).error_code,
        23
    );
    assert_eq!(
        join(&mut conn, 3, "bad2", "", "consumer", &[], 10_000).error_code,
        23
    );
    // Session timeout outside group.min/max.session.timeout.ms.
    assert_eq!(
        join(&mut conn, 3, "bad2", "", "consumer", &["range"], 10).error_code,
        26
    );

    // A real member (v3: no KIP-394 round trip), then bad follow-ups.
    let m = join(&mut conn, 3, "bad", "", "consumer", &["range"], 10_000);
    assert_eq!(m.error_code, 0);
    assert_eq!(m.leader, m.member_id);
    assert_eq!(
        heartbeat(&mut conn, "bad", m.generation_id + 5, &m.member_id),
        22
    );
    assert_eq!(heartbeat(&mut conn, "bad", m.generation_id, "nobody"), 25);
    let mut other = RawConn::connect(b.addr());
    assert_eq!(
        join(&mut other, 3, "bad", "", "connect", &["range"], 10_000).error_code,
        23
    );
    assert_eq!(
        join(&mut other, 3, "bad", "", "consumer", &["sticky"], 10_000).error_code,
        23
    );
    let sync = SyncGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("bad")))
        .with_generation_id(m.generation_id + 1)
        .with_member_id(m.member_id.clone());
    let r: SyncGroupResponse = conn.request(ApiKey::SyncGroup, 3, 13, &sync);
    assert_eq!(r.error_code, 22);
    let r: SyncGroupResponse = conn.request(
        ApiKey::SyncGroup,
        3,
        14,
        &sync
            .with_generation_id(m.generation_id)
            .with_assignments(vec![
                kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment::default()
                    .with_member_id(m.member_id.clone())
                    .with_assignment(bytes::Bytes::from_static(b"\x00\x01opaque")),
            ]),
    );
    assert_eq!(r.error_code, 0);
    assert_eq!(
        &r.assignment[..],
        b"\x00\x01opaque",
        "assignment returned intact"
    );
    assert_eq!(
        heartbeat(&mut conn, "bad", m.generation_id, &m.member_id),
        0
    );
    b.assert_no_panic();
}

/// Group configs (KIP-848/KIP-932): IncrementalAlterConfigs on a GROUP resource sets
/// `consumer.heartbeat.interval.ms` for that group only — its members are told the new interval,
/// another group keeps the broker's — DescribeConfigs lists it as a dynamic group config, a
/// value outside the broker's bounds answers INVALID_CONFIG, and an unknown key too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_configs_are_set_described_and_applied_to_that_group() {
    use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
    use kafka_protocol::messages::incremental_alter_configs_request::{
        AlterConfigsResource, AlterableConfig,
    };
    use kafka_protocol::messages::{
        ApiKey, ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse,
        DescribeConfigsRequest, DescribeConfigsResponse, GroupId, IncrementalAlterConfigsRequest,
        IncrementalAlterConfigsResponse, TopicName,
    };

    let b = common::StromProcess::start();
    let mut conn = RawConn::connect(b.addr());
    let alter = |conn: &mut RawConn, key: &'static str, value: &'static str| -> i16 {
        let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(32) // GROUP
                .with_resource_name(StrBytes::from_static_str("tuned"))
                .with_configs(vec![AlterableConfig::default()
                    .with_name(StrBytes::from_static_str(key))
                    .with_config_operation(0) // SET
                    .with_value(Some(StrBytes::from_static_str(value)))]),
        ]);
        let resp: IncrementalAlterConfigsResponse =
            conn.request(ApiKey::IncrementalAlterConfigs, 1, 1, &req);
        resp.responses[0].error_code
    };
    assert_eq!(
        alter(&mut conn, "consumer.heartbeat.interval.ms", "7000"),
        0
    );
    assert_eq!(
        alter(&mut conn, "consumer.heartbeat.interval.ms", "60000"),
        40,
        "INVALID_CONFIG above group.consumer.max.heartbeat.interval.ms"
    );
    assert_eq!(alter(&mut conn, "no.such.group.config", "1"), 40);

    let described: DescribeConfigsResponse = conn.request(
        ApiKey::DescribeConfigs,
        4,
        2,
        &DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(32)
            .with_resource_name(StrBytes::from_static_str("tuned"))
            .with_configuration_keys(None)]),
    );
    let result = &described.results[0];
    assert_eq!(result.error_code, 0);
    let interval = result
        .configs
        .iter()
        .find(|c| c.name.as_str() == "consumer.heartbeat.interval.ms")
        .expect("listed");
    assert_eq!(interval.value.as_ref().map(|v| v.as_str()), Some("7000"));
    assert_eq!(interval.config_source, 8, "DYNAMIC_GROUP_CONFIG");
    assert!(result
        .configs
        .iter()
        .any(|c| c.name.as_str() == "share.auto.offset.reset"
            && c.value.as_ref().map(|v| v.as_str()) == Some("latest")));

    create_topic(b.addr(), "gc", 1).await;
    let join = |conn: &mut RawConn, group: &'static str, correlation: i32| -> i32 {
        let req = ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str(group)))
            .with_member_id(StrBytes::from_string(format!("m-{group}")))
            .with_member_epoch(0)
            .with_rebalance_timeout_ms(30_000)
            .with_subscribed_topic_names(Some(vec![TopicName(StrBytes::from_static_str("gc"))]))
            .with_topic_partitions(Some(Vec::new()));
        let resp: ConsumerGroupHeartbeatResponse =
            conn.request(ApiKey::ConsumerGroupHeartbeat, 1, correlation, &req);
        assert_eq!(resp.error_code, 0, "{:?}", resp.error_message);
        resp.heartbeat_interval_ms
    };
    assert_eq!(join(&mut conn, "tuned", 3), 7000);
    assert_eq!(join(&mut conn, "plain", 4), 5000, "the broker's default");
    b.assert_no_panic();
}

/// Share group membership (KIP-932, behind `group.share.enable`): two members of one share group
/// on a 2-partition topic are given every partition between them, ShareGroupDescribe shows both,
/// ListGroups lists the group as type `share`, DeleteGroups refuses it while it has members and
/// deletes it once both left; a classic JoinGroup of the same id is refused (one namespace).
/// Without the flag the APIs are neither advertised nor served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn share_group_members_are_assigned_described_listed_and_deleted() {
    use kafka_protocol::messages::{
        ApiKey, ApiVersionsRequest, ApiVersionsResponse, DeleteGroupsRequest, DeleteGroupsResponse,
        GroupId, ListGroupsRequest, ListGroupsResponse, ShareGroupDescribeRequest,
        ShareGroupDescribeResponse, ShareGroupHeartbeatRequest, ShareGroupHeartbeatResponse,
        TopicName,
    };

    let advertised = |conn: &mut RawConn| -> bool {
        let resp: ApiVersionsResponse =
            conn.request(ApiKey::ApiVersions, 3, 9, &ApiVersionsRequest::default());
        let api = resp
            .api_keys
            .iter()
            .any(|k| k.api_key == ApiKey::ShareGroupHeartbeat as i16);
        // KIP-584: `share.version` 1 is finalized exactly when the APIs are served.
        let feature = resp
            .finalized_features
            .iter()
            .any(|f| f.name.as_str() == "share.version" && f.max_version_level == 1);
        assert_eq!(
            api, feature,
            "APIs and the share.version feature go together"
        );
        api
    };
    let beat = |conn: &mut RawConn, member: &'static str, epoch: i32, topics: bool| {
        let req = ShareGroupHeartbeatRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str("sg")))
            .with_member_id(StrBytes::from_static_str(member))
            .with_member_epoch(epoch)
            .with_subscribed_topic_names(
                topics.then(|| vec![TopicName(StrBytes::from_static_str("shared"))]),
            );
        let resp: ShareGroupHeartbeatResponse =
            conn.request(ApiKey::ShareGroupHeartbeat, 1, 1, &req);
        resp
    };

    let off = common::StromProcess::start_with_args(&["--set", "group.share.enable=false"]);
    let mut conn = RawConn::connect(off.addr());
    assert!(
        !advertised(&mut conn),
        "not advertised with group.share.enable=false"
    );
    assert_eq!(
        beat(&mut conn, "m1", 0, true).error_code,
        35,
        "UNSUPPORTED_VERSION"
    );
    drop(off);

    let b = common::StromProcess::start_with_args(&["--set", "group.share.enable=true"]);
    create_topic(b.addr(), "shared", 2).await;
    let mut conn = RawConn::connect(b.addr());
    assert!(advertised(&mut conn));
    let first = beat(&mut conn, "m1", 0, true);
    assert_eq!(first.error_code, 0, "{:?}", first.error_message);
    assert!(first.member_epoch > 0);
    let second = beat(&mut conn, "m2", 0, true);
    assert_eq!(second.error_code, 0, "{:?}", second.error_message);
    // m1 learns the new assignment on its next heartbeat (an assignment is sent when it changes).
    let first = beat(&mut conn, "m1", first.member_epoch, false);
    assert_eq!(first.error_code, 0, "{:?}", first.error_message);
    let mut assigned: Vec<i32> = Vec::new();
    for resp in [&first, &second] {
        if let Some(a) = &resp.assignment {
            for t in &a.topic_partitions {
                assigned.extend(&t.partitions);
            }
        }
    }
    assigned.sort();
    assigned.dedup();
    assert_eq!(assigned, vec![0, 1], "every partition has a member");

    let described: ShareGroupDescribeResponse = conn.request(
        ApiKey::ShareGroupDescribe,
        1,
        2,
        &ShareGroupDescribeRequest::default()
            .with_group_ids(vec![GroupId(StrBytes::from_static_str("sg"))]),
    );
    let g = &described.groups[0];
    assert_eq!(g.error_code, 0);
    assert_eq!(g.group_state.as_str(), "Stable");
    assert_eq!(g.members.len(), 2);

    let listed: ListGroupsResponse = conn.request(
        ApiKey::ListGroups,
        5,
        3,
        &ListGroupsRequest::default().with_types_filter(vec![StrBytes::from_static_str("share")]),
    );
    assert_eq!(
        listed
            .groups
            .iter()
            .map(|g| (g.group_id.as_str(), g.group_type.as_str()))
            .collect::<Vec<_>>(),
        vec![("sg", "share")]
    );
    // One namespace: the id cannot be joined as a classic group.
    let join = join_group_raw(&mut conn, "sg");
    assert_eq!(join, 23, "INCONSISTENT_GROUP_PROTOCOL");

    let delete = |conn: &mut RawConn| -> i16 {
        let resp: DeleteGroupsResponse = conn.request(
            ApiKey::DeleteGroups,
            2,
            4,
            &DeleteGroupsRequest::default()
                .with_groups_names(vec![GroupId(StrBytes::from_static_str("sg"))]),
        );
        resp.results[0].error_code
    };
    assert_eq!(delete(&mut conn), 68, "NON_EMPTY_GROUP");
    assert_eq!(beat(&mut conn, "m1", -1, false).error_code, 0);
    assert_eq!(beat(&mut conn, "m2", -1, false).error_code, 0);
    assert_eq!(delete(&mut conn), 0);
    b.assert_no_panic();
}

/// A classic JoinGroup of `group` on `conn`; its error code.
fn join_group_raw(conn: &mut RawConn, group: &str) -> i16 {
    use kafka_protocol::messages::{ApiKey, GroupId, JoinGroupRequest, JoinGroupResponse};
    let req = JoinGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_protocol_type(StrBytes::from_static_str("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(StrBytes::from_static_str("range"))
            .with_metadata(bytes::Bytes::new())]);
    let resp: JoinGroupResponse = conn.request(ApiKey::JoinGroup, 9, 5, &req);
    resp.error_code
}

/// KIP-932's acknowledgement rules over raw requests: a member acknowledging records another
/// member acquired, or its own records after their acquisition lock ran out
/// (`share.record.lock.duration.ms`, set to its 1 s minimum as a group config), is answered
/// INVALID_RECORD_STATE; the expired records are then acquired again with a delivery count of 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledging_anothers_or_an_expired_records_is_invalid_record_state() {
    use kafka_protocol::messages::incremental_alter_configs_request::{
        AlterConfigsResource, AlterableConfig,
    };
    use kafka_protocol::messages::share_acknowledge_request::{
        AcknowledgePartition, AcknowledgeTopic, AcknowledgementBatch,
    };
    use kafka_protocol::messages::share_fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::{
        ApiKey, GroupId, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
        MetadataRequest, MetadataResponse, ShareAcknowledgeRequest, ShareAcknowledgeResponse,
        ShareFetchRequest, ShareFetchResponse, ShareGroupHeartbeatRequest,
        ShareGroupHeartbeatResponse, TopicName,
    };
    const INVALID_RECORD_STATE: i16 = 121;

    // Kafka's floor for a group's lock duration is 15 s; lowered so the test waits 1.5 s.
    let b = common::StromProcess::start_with_args(&[
        "--set",
        "group.share.min.record.lock.duration.ms=1000",
    ]);
    create_topic(b.addr(), "locked", 1).await;
    produce(b.addr(), "locked", 1, 0, 10).await;
    let mut conn = RawConn::connect(b.addr());
    let set = |name: &'static str, value: &'static str| {
        AlterableConfig::default()
            .with_name(StrBytes::from_static_str(name))
            .with_config_operation(0)
            .with_value(Some(StrBytes::from_static_str(value)))
    };
    let altered: IncrementalAlterConfigsResponse = conn.request(
        ApiKey::IncrementalAlterConfigs,
        1,
        1,
        &IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(32) // GROUP
                .with_resource_name(StrBytes::from_static_str("locks"))
                .with_configs(vec![
                    set("share.auto.offset.reset", "earliest"),
                    set("share.record.lock.duration.ms", "1000"),
                ]),
        ]),
    );
    assert_eq!(altered.responses[0].error_code, 0);
    let meta: MetadataResponse = conn.request(
        ApiKey::Metadata,
        12,
        2,
        &MetadataRequest::default().with_topics(Some(vec![
            kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
                .with_name(Some(TopicName(StrBytes::from_static_str("locked")))),
        ])),
    );
    let topic_id = meta.topics[0].topic_id;
    for member in ["a", "b"] {
        let joined: ShareGroupHeartbeatResponse = conn.request(
            ApiKey::ShareGroupHeartbeat,
            1,
            3,
            &ShareGroupHeartbeatRequest::default()
                .with_group_id(GroupId(StrBytes::from_static_str("locks")))
                .with_member_id(StrBytes::from_static_str(member))
                .with_member_epoch(0)
                .with_subscribed_topic_names(Some(vec![TopicName(StrBytes::from_static_str(
                    "locked",
                ))])),
        );
        assert_eq!(joined.error_code, 0, "{:?}", joined.error_message);
    }
    let fetch = |conn: &mut RawConn, member: &'static str, epoch: i32| -> ShareFetchResponse {
        conn.request(
            ApiKey::ShareFetch,
            1,
            4,
            &ShareFetchRequest::default()
                .with_group_id(Some(GroupId(StrBytes::from_static_str("locks"))))
                .with_member_id(Some(StrBytes::from_static_str(member)))
                .with_share_session_epoch(epoch)
                .with_max_wait_ms(500)
                .with_min_bytes(1)
                .with_max_bytes(1 << 20)
                .with_max_records(100)
                .with_batch_size(100)
                .with_topics(vec![FetchTopic::default()
                    .with_topic_id(topic_id)
                    .with_partitions(vec![
                        FetchPartition::default().with_partition_index(0)
                    ])]),
        )
    };
    let acknowledge = |conn: &mut RawConn, member: &'static str, epoch: i32| -> i16 {
        let resp: ShareAcknowledgeResponse = conn.request(
            ApiKey::ShareAcknowledge,
            1,
            5,
            &ShareAcknowledgeRequest::default()
                .with_group_id(Some(GroupId(StrBytes::from_static_str("locks"))))
                .with_member_id(Some(StrBytes::from_static_str(member)))
                .with_share_session_epoch(epoch)
                .with_topics(vec![AcknowledgeTopic::default()
                    .with_topic_id(topic_id)
                    .with_partitions(vec![AcknowledgePartition::default()
                        .with_partition_index(0)
                        .with_acknowledgement_batches(vec![
                            AcknowledgementBatch::default()
                                .with_first_offset(0)
                                .with_last_offset(9)
                                .with_acknowledge_types(vec![1]),
                        ])])]), // ACCEPT
        );
        assert_eq!(resp.error_code, 0, "{:?}", resp.error_message);
        resp.responses[0].partitions[0].error_code
    };
    let acquired = |resp: &ShareFetchResponse| -> Vec<(i64, i64, i16)> {
        resp.responses
            .iter()
            .flat_map(|t| &t.partitions)
            .flat_map(|p| &p.acquired_records)
            .map(|r| (r.first_offset, r.last_offset, r.delivery_count))
            .collect()
    };
    let got = fetch(&mut conn, "a", 0);
    assert_eq!(got.error_code, 0);
    assert_eq!(acquired(&got), vec![(0, 9, 1)], "a acquires all ten");
    // b opens its session (nothing to acquire) and acknowledges a's records.
    let nothing = fetch(&mut conn, "b", 0);
    assert!(acquired(&nothing).is_empty());
    assert_eq!(acknowledge(&mut conn, "b", 1), INVALID_RECORD_STATE);
    // a's locks run out after 1 s: its acknowledgement comes too late.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(acknowledge(&mut conn, "a", 1), INVALID_RECORD_STATE);
    // Nothing was accepted: b acquires them again, on their second delivery.
    let again = fetch(&mut conn, "b", 2);
    assert_eq!(acquired(&again), vec![(0, 9, 2)]);
    b.assert_no_panic();
}
