//! Helpers shared by the quorum integration tests: configs with fast timeouts, free ports,
//! topic-creating decide closures and polling.

#![allow(dead_code, unreachable_pub)]

pub mod raw;
pub mod tls;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use strom_cluster::metadata::{MetadataImage, MetadataRecord};
use strom_cluster::{Quorum, QuorumConfig};
use uuid::Uuid;

/// Logs to the test output when `RUST_LOG` is set.
pub fn init_tracing() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

/// A one-node config under `dir`.
pub fn single(dir: &Path) -> QuorumConfig {
    QuorumConfig::new(1, dir)
}

/// Free 127.0.0.1 ports (bound then released; the kernel does not hand them out again at once).
pub fn free_addrs(n: usize) -> Vec<SocketAddr> {
    let listeners: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("addr"))
        .collect()
}

/// Config of voter `id` (1-based) of a cluster listening on `addrs`.
pub fn voter(id: i32, dir: &Path, addrs: &[SocketAddr]) -> QuorumConfig {
    let mut c = QuorumConfig::new(id, dir);
    c.controller_listen = Some(addrs[(id - 1) as usize]);
    c.voters = addrs
        .iter()
        .enumerate()
        .map(|(i, a)| (i as i32 + 1, a.to_string()))
        .collect();
    c.heartbeat_interval_ms = 50;
    c.election_timeout_min_ms = 300;
    c.election_timeout_max_ms = 600;
    c.startup_timeout_ms = 10_000;
    c
}

/// Records creating topic `name` with one partition on broker 1, unless it exists; the value
/// says whether this call created it.
pub fn create_topic(name: &str) -> impl FnMut(&MetadataImage) -> (Vec<MetadataRecord>, bool) + '_ {
    move |img: &MetadataImage| {
        if img.topic(name).is_some() {
            return (Vec::new(), false);
        }
        let topic_id = Uuid::new_v4();
        (
            vec![
                MetadataRecord::Topic {
                    name: name.to_string(),
                    topic_id,
                },
                MetadataRecord::Partition {
                    topic_id,
                    partition: 0,
                    replicas: vec![1],
                    isr: vec![1],
                    leader: 1,
                    leader_epoch: 0,
                    partition_epoch: 0,
                },
            ],
            true,
        )
    }
}

/// Polls `check` every 20 ms until it holds or `timeout` passes.
pub async fn eventually(timeout: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the node under `dir` has written a metadata snapshot.
pub async fn wait_for_snapshot(dir: &Path) {
    let snaps = dir.join("metadata").join("snapshots");
    eventually(Duration::from_secs(5), "a snapshot file", || {
        std::fs::read_dir(&snaps).is_ok_and(|d| d.count() > 0)
    })
    .await;
}

/// The node that currently leads, once all given nodes agree on one.
pub async fn agreed_leader(nodes: &[&Arc<Quorum>], timeout: Duration) -> i32 {
    let mut leader = None;
    eventually(timeout, "an agreed leader", || {
        let l = nodes[0].controller_leader();
        leader = l;
        l.is_some() && nodes.iter().all(|n| n.controller_leader() == l)
    })
    .await;
    leader.expect("leader")
}

/// Starts the given configs concurrently (a voter's start waits for a quorum).
pub async fn start_all(cfgs: Vec<QuorumConfig>) -> Vec<Arc<Quorum>> {
    let handles: Vec<_> = cfgs
        .into_iter()
        .map(|c| tokio::spawn(Quorum::start(c)))
        .collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("join").expect("start"));
    }
    out
}

/// A three-voter cluster in fresh temporary directories.
pub struct Cluster {
    pub dirs: Vec<tempfile::TempDir>,
    pub addrs: Vec<SocketAddr>,
    pub nodes: Vec<Arc<Quorum>>,
}

impl Cluster {
    pub async fn start(tweak: impl Fn(&mut QuorumConfig)) -> Cluster {
        init_tracing();
        let dirs: Vec<tempfile::TempDir> = (0..3)
            .map(|_| tempfile::tempdir().expect("tempdir"))
            .collect();
        let addrs = free_addrs(3);
        let cfgs = (1..=3)
            .map(|id| {
                let mut c = voter(id, dirs[(id - 1) as usize].path(), &addrs);
                tweak(&mut c);
                c
            })
            .collect();
        let nodes = start_all(cfgs).await;
        Cluster { dirs, addrs, nodes }
    }

    /// The config node `id` was started with (to restart it).
    pub fn config(&self, id: i32, tweak: impl Fn(&mut QuorumConfig)) -> QuorumConfig {
        let mut c = voter(id, self.dirs[(id - 1) as usize].path(), &self.addrs);
        tweak(&mut c);
        c
    }

    pub fn node(&self, id: i32) -> &Arc<Quorum> {
        &self.nodes[(id - 1) as usize]
    }

    pub async fn shutdown(&self) {
        for n in &self.nodes {
            n.shutdown().await;
        }
    }
}
