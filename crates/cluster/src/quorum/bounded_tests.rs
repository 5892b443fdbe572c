//! Tests that quorum operations end in bounded time when the leader has lost its quorum: a
//! proposal made on the leader itself (served in-process, no network call to time out) fails
//! within the request timeout, releases the propose lock, and the next one fails the same way.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Quorum, QuorumConfig, QuorumError};
use crate::metadata::MetadataRecord;

const REQUEST_TIMEOUT_MS: u64 = 1500;

fn voter(id: i32, dir: &std::path::Path, addrs: &[std::net::SocketAddr]) -> QuorumConfig {
    let mut c = QuorumConfig::new(id, dir);
    c.controller_listen = Some(addrs[usize::try_from(id - 1).expect("positive id")]);
    c.voters = (1..)
        .zip(addrs)
        .map(|(i, a): (i32, _)| (i, a.to_string()))
        .collect();
    c.heartbeat_interval_ms = 50;
    c.election_timeout_min_ms = 300;
    c.election_timeout_max_ms = 600;
    c.request_timeout_ms = REQUEST_TIMEOUT_MS;
    // The session tick must not propose (fence) on its own while the test measures.
    c.session_timeout_ms = 600_000;
    c.auto_leader_rebalance = false;
    c
}

fn a_record(n: i32) -> MetadataRecord {
    MetadataRecord::ProducerIds {
        broker_id: n,
        next_producer_id: i64::from(n) * 1000,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proposals_on_a_leader_without_quorum_fail_in_bounded_time() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().expect("dir")).collect();
    let listeners: Vec<std::net::TcpListener> = (0..3)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    let addrs: Vec<_> = listeners
        .iter()
        .map(|l| l.local_addr().expect("addr"))
        .collect();
    drop(listeners);
    let starts: Vec<_> = (1..=3)
        .map(|id| {
            let cfg = voter(
                id,
                dirs[usize::try_from(id - 1).expect("id")].path(),
                &addrs,
            );
            tokio::spawn(Quorum::start(cfg))
        })
        .collect();
    let mut nodes: Vec<Arc<Quorum>> = Vec::new();
    for s in starts {
        nodes.push(s.await.expect("join").expect("start"));
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    let leader = loop {
        if let Some(l) = nodes.iter().position(|n| n.is_leader()) {
            break l;
        }
        assert!(Instant::now() < deadline, "no leader elected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let q = nodes[leader].clone();
    q.propose(|_| (vec![a_record(1)], ()))
        .await
        .expect("a proposal with a quorum");
    for (i, n) in nodes.iter().enumerate() {
        if i != leader {
            n.shutdown().await;
        }
    }
    // openraft keeps a leader without followers leading: only a bound ends these proposals.
    let limit = Duration::from_millis(REQUEST_TIMEOUT_MS) * 2;
    for n in 2..=3 {
        let t = Instant::now();
        let r = tokio::time::timeout(limit * 2, q.propose(|_| (vec![a_record(n)], ()))).await;
        let r = r.unwrap_or_else(|_| panic!("proposal {n} still waiting after {:?}", limit * 2));
        assert!(
            matches!(
                r,
                Err(QuorumError::NoController(_)
                    | QuorumError::TimedOut { .. }
                    | QuorumError::Remote(super::RemoteError::Failed(_)))
            ),
            "proposal {n}: {r:?}"
        );
        assert!(t.elapsed() < limit, "proposal {n} took {:?}", t.elapsed());
    }
    q.shutdown().await;
}
