//! Helpers shared by the quorum integration tests: configs with fast timeouts, free ports,
//! topic-creating decide closures and polling.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use strom_cluster::metadata::{MetadataImage, MetadataRecord};
use strom_cluster::{Quorum, QuorumConfig};
use uuid::Uuid;

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
