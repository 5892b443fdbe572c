//! Shared harness for the integration tests: a real `strom serve` child process on an ephemeral
//! port and a private temp dir ([`StromProcess`]), a raw Kafka-protocol connection for requests
//! no well-behaved client sends ([`RawConn`]), and small rdkafka helpers.
//!
//! Every wait is bounded so a broken broker fails a test instead of hanging the suite.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

pub(crate) mod cluster;
mod raw;
pub(crate) mod txn;

// Each test binary uses a different subset.
#[allow(unused_imports)]
pub(crate) use raw::{
    fetch_batches, forged_follower_fetch, list_offset, list_offset_isolated, RawConn,
};

/// How long any single client operation may take before the test fails.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(10);

/// A `strom serve` child process with its own data directory.
#[derive(Debug)]
pub(crate) struct StromProcess {
    child: Option<Child>,
    /// Holds the stderr log and, unless `data_dir` is set, the data dir.
    dir: tempfile::TempDir,
    /// A data dir elsewhere ([`StromProcess::start_in`]).
    data_dir: Option<PathBuf>,
    addr: String,
    starts: u32,
    /// Extra `strom serve` arguments (e.g. `--set k=v`), used on every start.
    extra_args: Vec<String>,
    /// `--listen` address (`127.0.0.1:0` unless a cluster test fixes the port).
    listen: String,
    /// The first stdout line of a launched process not yet waited for.
    pending: Option<mpsc::Receiver<(usize, String)>>,
    /// The stdout lines after the first, of the current process (`strom: http on ...`).
    later_lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl StromProcess {
    /// A process not yet launched: `listen` address, extra `strom serve` arguments, and the data
    /// dir (`None`: `data` in the process's own temp dir).
    fn new(listen: &str, args: Vec<String>, data_dir: Option<PathBuf>) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("strom-it-")
            .tempdir()
            .expect("creating temp dir");
        StromProcess {
            child: None,
            dir,
            data_dir,
            addr: String::new(),
            starts: 0,
            extra_args: args,
            listen: listen.to_string(),
            pending: None,
            later_lines: Default::default(),
        }
    }

    /// Starts a broker on `127.0.0.1:0` in a fresh temp dir.
    pub(crate) fn start() -> Self {
        let mut p = StromProcess::new("127.0.0.1:0", Vec::new(), None);
        p.spawn();
        p
    }

    /// Launches a broker listening on `listen` with `args` and returns without waiting for it
    /// to be ready (cluster nodes wait for each other); call [`StromProcess::wait_ready`].
    pub(crate) fn launch(listen: &str, args: &[String]) -> Self {
        let mut p = StromProcess::new(listen, args.to_vec(), None);
        p.launch_process();
        p
    }

    /// Starts a broker like [`StromProcess::start`] with extra `strom serve` arguments, kept
    /// for restarts.
    pub(crate) fn start_with_args(args: &[&str]) -> Self {
        let args = args.iter().map(|a| a.to_string()).collect();
        let mut p = StromProcess::new("127.0.0.1:0", args, None);
        p.spawn();
        p
    }

    /// Starts a broker whose data dir is `data_dir` (e.g. on a crashfs mount), with extra
    /// `strom serve` arguments kept for restarts. The stderr log stays in the process's own
    /// temp dir; `data_dir` is left in place when the process is dropped.
    pub(crate) fn start_in(data_dir: &Path, args: &[&str]) -> Self {
        let args = args.iter().map(|a| a.to_string()).collect();
        let mut p = StromProcess::new("127.0.0.1:0", args, Some(data_dir.to_path_buf()));
        p.spawn();
        p
    }

    fn spawn(&mut self) {
        self.launch_process();
        self.wait_ready();
    }

    fn launch_process(&mut self) {
        assert!(self.child.is_none(), "broker already running");
        self.starts += 1;
        // One stderr file for the whole life of the test, appended to across restarts.
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.stderr_path())
            .expect("opening stderr log");
        writeln!(log, "===== strom start #{} =====", self.starts).expect("writing stderr log");
        let mut child = Command::new(strom_bin())
            .arg("serve")
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--listen")
            .arg(&self.listen)
            .args(&self.extra_args)
            .env(
                "STROM_LOG",
                std::env::var("STROM_LOG").unwrap_or("info,openraft=warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawning strom");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        let later = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        self.later_lines = later.clone();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut line = String::new();
            let n = r.read_line(&mut line).unwrap_or(0);
            let _ = tx.send((n, line));
            // Keep draining so the broker never sees a broken pipe; keep the lines.
            for line in r.lines() {
                let Ok(line) = line else { break };
                if let Ok(mut l) = later.lock() {
                    l.push(line);
                }
            }
        });
        self.child = Some(child);
        self.pending = Some(rx);
    }

    /// The address of the HTTP endpoint, from the `strom: http on ADDR` line (the broker must
    /// be started with `--http-listen`); waits up to 10 s for the line.
    pub(crate) fn http_addr(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let found = self.stdout_lines().iter().find_map(|l| {
                l.strip_prefix("strom: http on ")
                    .map(|a| a.trim().to_string())
            });
            if let Some(a) = found {
                return a;
            }
            assert!(
                Instant::now() < deadline,
                "no `strom: http on` line; stdout: {:?}; stderr:\n{}",
                self.stdout_lines(),
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The current process's stdout lines after the first.
    pub(crate) fn stdout_lines(&self) -> Vec<String> {
        self.later_lines
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default()
    }

    /// The broker's resident memory in KiB (Linux `/proc/<pid>/status`).
    pub(crate) fn rss_kib(&self) -> u64 {
        let pid = self.child.as_ref().expect("broker running").id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .expect("VmRSS")
    }

    /// Waits for a launched broker to print its address (it is then serving).
    pub(crate) fn wait_ready(&mut self) {
        let Some(rx) = self.pending.take() else {
            return;
        };
        let line = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok((n, line)) if n > 0 => line,
            other => {
                if let Some(mut child) = self.child.take() {
                    let _ = child.kill();
                    let _ = child.wait();
                }
                panic!(
                    "strom did not print its address ({other:?}); stderr:\n{}",
                    self.stderr()
                );
            }
        };
        let addr = line
            .trim()
            .strip_prefix("strom: listening on ")
            .unwrap_or_else(|| panic!("unexpected first stdout line {line:?}"))
            .to_string();
        assert!(
            addr.starts_with("127.0.0.1:") && !addr.ends_with(":0"),
            "bad address {addr:?}"
        );
        self.addr = addr;
    }

    /// SIGSTOP: the process freezes (a hung broker: sockets open, nothing answered).
    pub(crate) fn pause(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT after [`StromProcess::pause`].
    pub(crate) fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .arg(sig)
            .arg(self.pid().to_string())
            .status()
            .expect("running kill");
        assert!(st.success(), "kill {sig} failed");
    }

    /// Whether the process is running (launched and not exited).
    pub(crate) fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// `127.0.0.1:PORT` of the running broker.
    pub(crate) fn addr(&self) -> &str {
        &self.addr
    }

    pub(crate) fn port(&self) -> u16 {
        self.addr
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port in address")
    }

    pub(crate) fn data_dir(&self) -> PathBuf {
        match &self.data_dir {
            Some(d) => d.clone(),
            None => self.dir.path().join("data"),
        }
    }

    pub(crate) fn stderr_path(&self) -> PathBuf {
        self.dir.path().join("stderr.log")
    }

    /// Everything the broker wrote to stderr so far (all starts).
    pub(crate) fn stderr(&self) -> String {
        std::fs::read_to_string(self.stderr_path()).unwrap_or_default()
    }

    /// Fails the test if the broker logged a panic.
    pub(crate) fn assert_no_panic(&self) {
        assert_no_panic_in(&self.stderr_path());
    }

    /// Fails the test if the broker process has exited (crashed or aborted).
    pub(crate) fn assert_running(&mut self) {
        let child = self.child.as_mut().expect("broker not running");
        if let Some(st) = child.try_wait().expect("checking strom") {
            self.child = None;
            panic!("strom died ({st}); stderr:\n{}", self.stderr());
        }
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("broker not running").id()
    }

    /// SIGTERM and wait for a clean exit (status 0).
    pub(crate) fn stop(&mut self) {
        let pid = self.pid();
        let st = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .expect("running kill");
        assert!(st.success(), "kill -TERM {pid} failed");
        let status = self.wait_exit(Duration::from_secs(20));
        assert!(
            status.success(),
            "strom exited with {status} after SIGTERM; stderr:\n{}",
            self.stderr()
        );
    }

    /// SIGKILL: a crash, no shutdown code runs.
    pub(crate) fn kill9(&mut self) {
        let child = self.child.as_mut().expect("broker not running");
        child.kill().expect("SIGKILL");
        self.wait_exit(Duration::from_secs(10));
    }

    fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("broker not running");
        let deadline = Instant::now() + limit;
        loop {
            if let Some(st) = child.try_wait().expect("waiting for strom") {
                return st;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "strom did not exit within {limit:?}; stderr:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Replaces the extra `strom serve` arguments used by the next (re)start.
    pub(crate) fn set_extra_args(&mut self, args: &[&str]) {
        self.extra_args = args.iter().map(|a| a.to_string()).collect();
    }

    /// Starts after a `kill9` or `stop` (the port may change).
    pub(crate) fn start_again(&mut self) {
        self.spawn();
    }

    /// Launches again after a `kill9` or `stop` without waiting; see [`StromProcess::wait_ready`].
    pub(crate) fn launch_again(&mut self) {
        self.launch_process();
    }

    /// Starts again on the same data dir (stopping first if still running); the port may change.
    pub(crate) fn restart(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
        self.spawn();
    }
}

impl Drop for StromProcess {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // A failed test's logs and data outlive it when asked (`STROM_KEEP_TEST_DIRS=1`): the
        // panic message shows only each node's last lines, and the metadata log tells what the
        // controller decided.
        if std::thread::panicking() && std::env::var_os("STROM_KEEP_TEST_DIRS").is_some() {
            self.dir.disable_cleanup(true);
            eprintln!("kept {}", self.dir.path().display());
        }
    }
}

/// Fails the test if the stderr log at `path` contains "panicked".
pub(crate) fn assert_no_panic_in(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        !text.contains("panicked"),
        "broker panicked; stderr:\n{text}"
    );
}

/// The `strom` binary under test: `STROM_BIN` if set (as for tests/compat), else the one cargo
/// built. With a target dir shared by several checkouts, another checkout's build may replace
/// `target/debug/strom` while a test runs; a copy in `STROM_BIN` pins it.
pub(crate) fn strom_bin() -> PathBuf {
    std::env::var_os("STROM_BIN")
        .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_strom")), PathBuf::from)
}

/// The `strom` binary as a command (`strom ARGS`), for tests that run the CLI itself.
pub(crate) fn strom_cli(args: &[&str]) -> Command {
    let mut c = Command::new(strom_bin());
    c.args(args);
    c
}

// ---------------------------------------------------------------------------------------------
// rdkafka helpers

pub(crate) fn client_config(addr: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", addr)
        .set("socket.timeout.ms", "10000")
        .set("reconnect.backoff.max.ms", "500");
    c
}

/// A producer with acks=all and a 10 s delivery timeout.
pub(crate) fn producer_config(addr: &str) -> ClientConfig {
    let mut c = client_config(addr);
    c.set("acks", "all")
        .set("message.timeout.ms", "10000")
        .set("linger.ms", "5");
    c
}

pub(crate) fn producer(addr: &str) -> FutureProducer {
    producer_config(addr).create().expect("creating producer")
}

/// A consumer for `assign` only: groups are not implemented, nothing is committed.
pub(crate) fn consumer(addr: &str) -> BaseConsumer {
    client_config(addr)
        .set("group.id", "strom-it")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "error")
        .set("fetch.wait.max.ms", "100")
        .create()
        .expect("creating consumer")
}

pub(crate) async fn create_topic(addr: &str, name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> =
        client_config(addr).create().expect("creating admin client");
    let opts = AdminOptions::new().operation_timeout(Some(TIMEOUT));
    let res = admin
        .create_topics(
            &[NewTopic::new(name, partitions, TopicReplication::Fixed(1))],
            &opts,
        )
        .await
        .expect("CreateTopics request");
    for r in res {
        r.unwrap_or_else(|(t, e)| panic!("creating topic {t}: {e:?}"));
    }
}

/// Assigns `parts` of `topic` from `offset` and returns exactly `n` records (in arrival order),
/// failing if fewer arrive within the timeout or if more arrive shortly after.
pub(crate) fn consume_exactly(
    c: &BaseConsumer,
    topic: &str,
    parts: &[i32],
    offset: Offset,
    n: usize,
) -> Vec<OwnedMessage> {
    let mut tpl = TopicPartitionList::new();
    for p in parts {
        tpl.add_partition_offset(topic, *p, offset)
            .expect("building assignment");
    }
    c.assign(&tpl).expect("assign");
    let mut out = Vec::with_capacity(n);
    let deadline = Instant::now() + Duration::from_secs(15);
    while out.len() < n && Instant::now() < deadline {
        if let Some(m) = c.poll(Duration::from_millis(100)) {
            out.push(m.expect("consumer error").detach());
        }
    }
    assert_eq!(out.len(), n, "records consumed from {topic} {parts:?}");
    // Nothing beyond what was produced.
    let extra_deadline = Instant::now() + Duration::from_millis(300);
    while Instant::now() < extra_deadline {
        if let Some(m) = c.poll(Duration::from_millis(50)) {
            let m = m.expect("consumer error");
            panic!(
                "unexpected extra record at {}/{}@{}",
                m.topic(),
                m.partition(),
                m.offset()
            );
        }
    }
    out
}

/// The broker still serves a normal client: produce one record with rdkafka and read it back.
pub(crate) async fn assert_healthy(broker: &mut StromProcess) {
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    // A process that aborts closes its sockets a moment before it can be reaped.
    std::thread::sleep(Duration::from_millis(50));
    broker.assert_running();
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let value = format!("health-{n}");
    let p = producer(broker.addr());
    // Auto-created by the producer's Metadata request on first use.
    let sent = p
        .send(FutureRecord::to("health").key("k").payload(&value), TIMEOUT)
        .await;
    let d = match sent {
        Ok(d) => d,
        Err((e, _)) => {
            broker.assert_running();
            panic!(
                "broker no longer serves a producer: {e}; stderr:\n{}",
                broker.stderr()
            )
        }
    };
    let c = consumer(broker.addr());
    let got = consume_exactly(&c, "health", &[d.partition], Offset::Offset(d.offset), 1);
    assert_eq!(got[0].payload(), Some(value.as_bytes()));
    broker.assert_no_panic();
}
