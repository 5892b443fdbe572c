//! One-node quorum (no voters, no listener): propose, restart and replay, snapshots, latency.

mod common;

use std::sync::Arc;
use std::time::Instant;

use common::{create_topic, single};
use strom_cluster::metadata::MetadataRecord;
use strom_cluster::Quorum;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn propose_restart_and_replay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let q = Quorum::start(single(dir.path())).await.expect("start");
    assert_eq!(q.controller_leader(), Some(1));
    assert!(q.caught_up(), "a lone node leads: its image is current");
    let (created, img) = q.propose(create_topic("a")).await.expect("propose");
    assert!(created);
    assert!(img.topic("a").is_some());
    assert_eq!(q.image().offset, img.offset);

    // A decision with no records writes nothing.
    let before = q.image().offset;
    let (created, img) = q.propose(create_topic("a")).await.expect("noop");
    assert!(!created);
    assert_eq!(img.offset, before);

    let (_, img) = q
        .propose(|_| {
            (
                vec![MetadataRecord::ProducerIds {
                    broker_id: 1,
                    next_producer_id: 1000,
                }],
                (),
            )
        })
        .await
        .expect("producer ids");
    let offset = img.offset;
    q.shutdown().await;
    drop(q);

    let q = Quorum::start(single(dir.path())).await.expect("restart");
    assert!(q.caught_up());
    let img = q.image();
    assert!(img.topic("a").is_some(), "topic replayed");
    assert_eq!(img.next_producer_id, 1000);
    assert!(
        img.offset >= offset,
        "image offset {} < {offset}",
        img.offset
    );
    let (created, _) = q
        .propose(create_topic("b"))
        .await
        .expect("propose after restart");
    assert!(created);
    q.shutdown().await;
    drop(q);

    let q = Quorum::start(single(dir.path()))
        .await
        .expect("second restart");
    let img = q.image();
    assert!(img.topic("a").is_some() && img.topic("b").is_some());
    q.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_proposals_all_apply() {
    let dir = tempfile::tempdir().expect("tempdir");
    let q = Quorum::start(single(dir.path())).await.expect("start");
    let mut tasks = Vec::new();
    for i in 0..20 {
        let q = q.clone();
        tasks.push(tokio::spawn(async move {
            let name = format!("t{i}");
            q.propose(create_topic(&name)).await.expect("propose").0
        }));
    }
    for t in tasks {
        assert!(t.await.expect("join"));
    }
    assert_eq!(q.image().topics().count(), 20);
    q.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_purge_the_log_and_restore() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = single(dir.path());
    cfg.snapshot_every_entries = 10;
    cfg.snapshot_keep_entries = 0;
    let q = Quorum::start(cfg.clone()).await.expect("start");
    for i in 0..60 {
        q.propose(create_topic(&format!("s{i}")))
            .await
            .expect("propose");
    }
    common::wait_for_snapshot(dir.path()).await;
    q.shutdown().await;
    drop(q);
    let q = Quorum::start(cfg).await.expect("restart");
    assert_eq!(q.image().topics().count(), 60);
    let (created, _) = q.propose(create_topic("after")).await.expect("propose");
    assert!(created);
    q.shutdown().await;
}

/// Measures the cost of a metadata write on one node (printed; asserted loosely so a slow CI
/// disk does not fail it, but a stray election delay or timer would).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_node_write_latency() {
    let dir = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let q: Arc<Quorum> = Quorum::start(single(dir.path())).await.expect("start");
    let start_ms = started.elapsed().as_secs_f64() * 1e3;
    let n = 200;
    let t0 = Instant::now();
    for i in 0..n {
        q.propose(create_topic(&format!("l{i}")))
            .await
            .expect("propose");
    }
    let per = t0.elapsed().as_secs_f64() * 1e3 / f64::from(n);
    println!("single node: start {start_ms:.1} ms, propose {per:.2} ms avg over {n}");
    assert!(start_ms < 2000.0, "start took {start_ms} ms");
    assert!(per < 50.0, "propose took {per} ms on average");
    q.shutdown().await;
}
