//! A cluster of real `strom serve` processes on loopback for the integration tests: every node
//! is broker and controller voter (combined mode) on fixed ports, so a killed node restarts on
//! the same addresses and rejoins.

use std::time::{Duration, Instant};

use std::collections::BTreeMap;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};

use super::{client_config, StromProcess};

/// Settings that make failure detection fast enough for tests (Kafka's defaults are 9 s / 30 s).
pub(crate) const FAST_FAILOVER: &[&str] = &[
    "--set",
    "broker.session.timeout.ms=2000",
    "--set",
    "broker.heartbeat.interval.ms=250",
    "--set",
    "replica.lag.time.max.ms=2000",
    "--set",
    "replica.fetch.backoff.ms=100",
    "--set",
    "replica.fetch.wait.max.ms=200",
];

/// N combined broker/controller nodes.
#[derive(Debug)]
pub(crate) struct StromCluster {
    pub(crate) nodes: Vec<StromProcess>,
    listen: Vec<String>,
    voters: String,
    /// Held for the cluster's life (dropped after the nodes): one cluster per test binary at a
    /// time, so 2 cores are not shared by a dozen debug-build nodes electing and timing out.
    _one_at_a_time: std::sync::MutexGuard<'static, ()>,
}

static ONE_CLUSTER: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A free loopback port below the kernel's ephemeral range (32768+ on Linux), bound and
/// released. An ephemeral port (`bind(0)`) can be taken again by any outgoing connection —
/// a client of the previous cluster — before the node binds it, which failed a CI run with
/// "Address already in use"; ports below that range are only ever taken by a bind, and clusters
/// start one at a time.
pub(crate) fn free_port() -> u16 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let spread = 12_000;
    let seed = std::process::id() % spread;
    for _ in 0..spread {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let port = 20_000 + ((seed + n * 7) % spread) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a free port");
    l.local_addr().expect("local addr").port()
}

/// A partition's state as clients see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartitionView {
    pub(crate) leader: i32,
    pub(crate) replicas: Vec<i32>,
    pub(crate) isr: Vec<i32>,
}

impl StromCluster {
    /// Starts `n` nodes (ids 1..=n) with `extra` arguments each and waits until all are ready.
    pub(crate) fn start(n: usize, extra: &[&str]) -> StromCluster {
        // A failed test poisons the lock; the next one may still run.
        let guard = ONE_CLUSTER
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let listen: Vec<String> = (0..n)
            .map(|_| format!("127.0.0.1:{}", free_port()))
            .collect();
        let controllers: Vec<String> = (0..n)
            .map(|_| format!("127.0.0.1:{}", free_port()))
            .collect();
        let voters = controllers
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{}@{c}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let mut nodes: Vec<StromProcess> = (0..n)
            .map(|i| {
                let mut args: Vec<String> = vec![
                    "--node-id".into(),
                    (i + 1).to_string(),
                    "--controller-listen".into(),
                    controllers[i].clone(),
                    "--voters".into(),
                    voters.clone(),
                ];
                args.extend(extra.iter().map(|s| s.to_string()));
                StromProcess::launch(&listen[i], &args)
            })
            .collect();
        for node in &mut nodes {
            node.wait_ready();
        }
        let c = StromCluster {
            nodes,
            listen,
            voters,
            _one_at_a_time: guard,
        };
        c.wait_for("all brokers registered", |c| c.live_brokers().len() == n);
        c
    }

    /// Adds a broker-only node (`process.roles=broker`: follows the metadata log, no vote) with
    /// the next id, and waits until it is registered.
    pub(crate) fn add_broker_only(&mut self, extra: &[&str]) -> i32 {
        let id = self.nodes.len() + 1;
        let listen = format!("127.0.0.1:{}", free_port());
        let mut args: Vec<String> = vec![
            "--node-id".into(),
            id.to_string(),
            "--controller-listen".into(),
            format!("127.0.0.1:{}", free_port()),
            "--voters".into(),
            self.voters.clone(),
            "--set".into(),
            "process.roles=broker".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut node = StromProcess::launch(&listen, &args);
        node.wait_ready();
        self.nodes.push(node);
        self.listen.push(listen);
        let want = self.nodes.len();
        self.wait_for("the broker-only node registered", |c| {
            c.live_brokers().len() == want
        });
        i32::try_from(id).expect("small id")
    }

    /// `host:port,...` of every node (running or not).
    pub(crate) fn bootstrap(&self) -> String {
        self.listen.join(",")
    }

    /// Node by broker id (1-based).
    pub(crate) fn node(&mut self, id: i32) -> &mut StromProcess {
        &mut self.nodes[usize::try_from(id - 1).expect("positive id")]
    }

    fn metadata_consumer(&self) -> BaseConsumer {
        client_config(&self.bootstrap())
            .set("group.id", "strom-cluster-probe")
            .create()
            .expect("creating probe consumer")
    }

    /// Broker ids in the Metadata response (live, unfenced), or empty when nobody answers.
    pub(crate) fn live_brokers(&self) -> Vec<i32> {
        let c = self.metadata_consumer();
        match c.fetch_metadata(None, Duration::from_secs(2)) {
            Ok(m) => {
                let mut ids: Vec<i32> = m.brokers().iter().map(|b| b.id()).collect();
                ids.sort_unstable();
                ids
            }
            Err(_) => Vec::new(),
        }
    }

    /// The active controller's id from Metadata as a running node reports it (-1 when
    /// unknown). rdkafka does not expose controller_id, so this asks with the raw protocol.
    pub(crate) fn controller(&self) -> i32 {
        use kafka_protocol::messages::{ApiKey, MetadataRequest, MetadataResponse};
        for (i, addr) in self.listen.iter().enumerate() {
            if !self.nodes[i].is_running() {
                continue;
            }
            let mut conn = super::RawConn::connect(addr);
            let resp: MetadataResponse = conn.request(
                ApiKey::Metadata,
                1,
                1,
                &MetadataRequest::default().with_topics(Some(Vec::new())),
            );
            if resp.controller_id.0 >= 0 {
                return resp.controller_id.0;
            }
        }
        -1
    }

    /// A partition's leader, replicas and ISR from Metadata.
    pub(crate) fn partition(&self, topic: &str, partition: i32) -> Option<PartitionView> {
        let c = self.metadata_consumer();
        let m = c.fetch_metadata(Some(topic), Duration::from_secs(2)).ok()?;
        let t = m.topics().iter().find(|t| t.name() == topic)?;
        let p = t.partitions().iter().find(|p| p.id() == partition)?;
        let mut isr = p.isr().to_vec();
        isr.sort_unstable();
        Some(PartitionView {
            leader: p.leader(),
            replicas: p.replicas().to_vec(),
            isr,
        })
    }

    /// Polls `cond` every 100 ms for up to 60 s; fails the test with `what` otherwise.
    pub(crate) fn wait_for(&self, what: &str, mut cond: impl FnMut(&StromCluster) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if cond(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("timed out waiting for {what}{}", self.log_tails());
    }

    /// The last lines every node wrote to stderr, for a failing test's message.
    pub(crate) fn log_tails(&self) -> String {
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, n)| format!("\n----- node {} -----\n{}", i + 1, tail(&n.stderr(), 60)))
            .collect()
    }

    /// Concatenated segment bytes of `topic-partition` on node `id` (replicas hold the leader's
    /// bytes verbatim, so caught-up replicas compare equal).
    pub(crate) fn log_bytes(&mut self, id: i32, topic: &str, partition: i32) -> Vec<u8> {
        let dir = self
            .node(id)
            .data_dir()
            .join(format!("{topic}-{partition}"));
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .collect();
        files.sort();
        let mut out = Vec::new();
        for f in files {
            out.extend(std::fs::read(&f).expect("reading segment"));
        }
        out
    }

    /// Fails if any node logged a panic.
    pub(crate) fn assert_no_panic(&self) {
        for n in &self.nodes {
            n.assert_no_panic();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers shared by the cluster tests

/// The replicated topic most cluster tests use.
pub(crate) const TOPIC: &str = "replicated";

pub(crate) async fn create_replicated_topic(
    bootstrap: &str,
    name: &str,
    partitions: i32,
    min_isr: &str,
) {
    let admin: AdminClient<DefaultClientContext> =
        client_config(bootstrap).create().expect("admin client");
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(20)));
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(3))
        .set("min.insync.replicas", min_isr);
    for r in admin
        .create_topics(&[topic], &opts)
        .await
        .expect("CreateTopics")
    {
        r.unwrap_or_else(|(t, e)| panic!("creating {t}: {e:?}"));
    }
}

pub(crate) fn acks_all_producer(bootstrap: &str) -> FutureProducer {
    client_config(bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "60000")
        .set("linger.ms", "2")
        .set("retry.backoff.ms", "100")
        .set("topic.metadata.refresh.interval.ms", "500")
        .create()
        .expect("producer")
}

/// Sends values `from..to` (as decimal strings) with up to 20 in flight; returns the acknowledged
/// (value → offset) and calls `midway` once after `kill_at` acknowledgements.
pub(crate) async fn produce_range(
    p: &FutureProducer,
    from: u32,
    to: u32,
    kill_at: Option<u32>,
    midway: &mut dyn FnMut(),
) -> BTreeMap<u32, i64> {
    let mut acked = BTreeMap::new();
    let mut in_flight = Vec::new();
    let mut fired = kill_at.is_none();
    for v in from..to {
        let payload = v.to_string();
        // send_result enqueues now and does not borrow the record afterwards.
        let fut = p
            .send_result(FutureRecord::to(TOPIC).key("k").payload(&payload))
            .map_err(|(e, _)| e)
            .expect("enqueueing a record");
        in_flight.push((v, fut));
        if in_flight.len() >= 20 || v + 1 == to {
            for (v, f) in in_flight.drain(..) {
                if let Ok(Ok(d)) = f.await {
                    acked.insert(v, d.offset);
                }
            }
            if !fired && acked.len() as u32 >= kill_at.unwrap_or(0) {
                fired = true;
                midway();
            }
        }
    }
    acked
}

fn tail(s: &str, lines: usize) -> String {
    let v: Vec<&str> = s.lines().filter(|l| !l.contains("openraft")).collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}
