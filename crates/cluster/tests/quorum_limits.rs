//! Proposals at and past the documented limits: refused before anything is written when over
//! them, split across entries when larger than one entry, and never seen in part by a reader;
//! the quorum keeps committing afterwards, also on a follower that catches up on split entries.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{create_topic, eventually, Cluster};
use strom_cluster::metadata::{InvalidRecord, MetadataRecord, MAX_PARTITIONS_PER_TOPIC};
use strom_cluster::quorum::MAX_PROPOSAL_BYTES;
use strom_cluster::{Quorum, QuorumConfig, QuorumError};
use tokio::task::JoinHandle;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(60);

/// A topic `name` with `partitions` partitions on brokers [1, 2, 3].
fn topic(name: &str, partitions: i32) -> Vec<MetadataRecord> {
    let topic_id = Uuid::new_v4();
    let mut records = vec![MetadataRecord::Topic {
        name: name.into(),
        topic_id,
    }];
    records.extend((0..partitions).map(|partition| MetadataRecord::Partition {
        topic_id,
        partition,
        replicas: vec![1, 2, 3],
        isr: vec![1, 2, 3],
        leader: 1,
        leader_epoch: 0,
        partition_epoch: 0,
    }));
    records
}

/// Watches every image `q` publishes until aborted; fails (on join) if `name` is ever visible
/// with other than `partitions` partitions.
fn watch_whole(q: &Quorum, name: &'static str, partitions: usize) -> JoinHandle<usize> {
    let mut rx = q.subscribe();
    tokio::spawn(async move {
        let mut seen = 0;
        loop {
            let count = rx
                .borrow_and_update()
                .topic(name)
                .map(|t| t.partitions.len());
            if let Some(count) = count {
                assert_eq!(count, partitions, "a reader saw {name} in part");
                seen += 1;
            }
            if seen > 0 || rx.changed().await.is_err() {
                return seen;
            }
        }
    })
}

fn patient(c: &mut QuorumConfig) {
    // Debug builds on a shared machine: large proposals take seconds, not milliseconds.
    c.request_timeout_ms = 60_000;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_limits_is_refused_and_the_largest_topic_is_created_whole() {
    common::init_tracing();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = common::single(dir.path());
    patient(&mut cfg);
    let q = Quorum::start(cfg.clone()).await.expect("start");
    let before = q.image().offset;

    // 200,000 partitions in one CreateTopics: over the per-topic limit.
    let r = q.propose(|_| (topic("huge", 200_000), ())).await;
    assert!(
        matches!(r, Err(QuorumError::Invalid(InvalidRecord::PartitionId(p))) if p == MAX_PARTITIONS_PER_TOPIC),
        "{r:?}"
    );
    // Three topics at the per-topic limit in one proposal: over the proposal size limit.
    let r = q
        .propose(|_| {
            let records = ["t1", "t2", "t3"]
                .into_iter()
                .flat_map(|n| topic(n, MAX_PARTITIONS_PER_TOPIC))
                .collect();
            (records, ())
        })
        .await;
    assert!(
        matches!(r, Err(QuorumError::TooLarge { limit, .. }) if limit == MAX_PROPOSAL_BYTES),
        "{r:?}"
    );
    assert_eq!(q.image().offset, before, "nothing was written");

    // The largest topic allowed is split across entries and appears whole, at once.
    let watcher = watch_whole(&q, "big", 100_000);
    let (_, img) = q
        .propose(|_| (topic("big", MAX_PARTITIONS_PER_TOPIC), ()))
        .await
        .expect("the largest topic");
    assert_eq!(img.topic("big").map(|t| t.partitions.len()), Some(100_000));
    assert!(img.offset > before + 2, "written as several entries");
    assert_eq!(watcher.await.expect("no partial topic seen"), 1);
    // And the quorum goes on.
    let (created, _) = q.propose(create_topic("after")).await.expect("propose");
    assert!(created);
    q.shutdown().await;
    drop(q);

    // Replay applies the split proposal whole again.
    let q = Quorum::start(cfg).await.expect("restart");
    let img = q.image();
    assert_eq!(img.topic("big").map(|t| t.partitions.len()), Some(100_000));
    assert!(img.topic("after").is_some());
    q.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_proposals_replicate_and_a_lagging_follower_catches_up() {
    let mut c = Cluster::start(patient).await;
    let nodes: Vec<&Arc<Quorum>> = c.nodes.iter().collect();
    let leader = common::agreed_leader(&nodes, WAIT).await;
    let mut followers = (1..=3).filter(|id| *id != leader);
    let (proposer, lagging) = (
        followers.next().expect("follower"),
        followers.next().expect("follower"),
    );
    // One follower is down while two split proposals commit (leader + proposer are a quorum).
    c.node(lagging).shutdown().await;
    const PARTITIONS: i32 = 4000; // about 600 KB: ten entries or so
    let watchers: Vec<_> = [leader, proposer]
        .into_iter()
        .map(|id| watch_whole(c.node(id), "split-a", 4000))
        .collect();
    for name in ["split-a", "split-b"] {
        c.node(proposer)
            .propose(|_| (topic(name, PARTITIONS), ()))
            .await
            .expect("split proposal from a follower");
    }
    for w in watchers {
        assert_eq!(w.await.expect("no partial topic seen"), 1);
    }
    // The lagging follower comes back: the entries reach it in several AppendEntries.
    let back = Quorum::start(c.config(lagging, patient))
        .await
        .expect("restart");
    c.nodes[usize::try_from(lagging - 1).expect("id")] = back.clone();
    eventually(WAIT, "the lagging follower to hold both topics", || {
        let img = back.image();
        ["split-a", "split-b"]
            .iter()
            .all(|n| img.topic(n).map(|t| t.partitions.len()) == Some(4000))
    })
    .await;
    // Everyone still commits.
    let (created, _) = back.propose(create_topic("after")).await.expect("propose");
    assert!(created);
    for n in &c.nodes {
        eventually(WAIT, "the last topic everywhere", || {
            n.image().topic("after").is_some()
        })
        .await;
    }
    c.shutdown().await;
}
