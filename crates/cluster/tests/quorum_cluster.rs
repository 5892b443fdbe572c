//! Three in-process voters on 127.0.0.1: election, forwarding, optimistic concurrency across
//! nodes, leader failover, restart and catch-up (by log and by snapshot), a broker-only learner.

mod common;

use std::time::{Duration, Instant};

use common::{agreed_leader, create_topic, eventually, Cluster};
use strom_cluster::quorum::PeerRefusal;
use strom_cluster::quorum::RemoteError;
use strom_cluster::{Quorum, QuorumConfig, QuorumError};

const WAIT: Duration = Duration::from_secs(15);

fn no_tweak(_: &mut QuorumConfig) {}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_elected_follower_forwards_and_conflicts_resolve() {
    let c = Cluster::start(no_tweak).await;
    let nodes: Vec<_> = c.nodes.iter().collect();
    let leader = agreed_leader(&nodes, WAIT).await;
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");

    // A follower's proposal is forwarded and answered with its own image holding it.
    let t0 = Instant::now();
    let (created, img) = c
        .node(follower)
        .propose(create_topic("from-follower"))
        .await
        .expect("forwarded propose");
    println!("3 nodes: first forwarded propose {:?}", t0.elapsed());
    assert!(created);
    assert!(img.topic("from-follower").is_some());
    assert!(c.node(follower).image().topic("from-follower").is_some());

    // Latency from the leader and from a follower.
    for (who, id) in [("leader", leader), ("follower", follower)] {
        let n = 50;
        let t0 = Instant::now();
        for i in 0..n {
            c.node(id)
                .propose(create_topic(&format!("{who}-{i}")))
                .await
                .expect("propose");
        }
        let per = t0.elapsed().as_secs_f64() * 1e3 / f64::from(n);
        println!("3 nodes: propose from the {who} {per:.2} ms avg over {n}");
    }

    // Every node races to create the same topic: exactly one wins, all agree on its id.
    for round in 0..5 {
        let name = format!("contested-{round}");
        let handles: Vec<_> = c
            .nodes
            .iter()
            .map(|n| {
                let n = n.clone();
                let name = name.clone();
                tokio::spawn(async move { n.propose(create_topic(&name)).await.expect("race").0 })
            })
            .collect();
        let mut winners = 0;
        for h in handles {
            if h.await.expect("join") {
                winners += 1;
            }
        }
        assert_eq!(winners, 1, "round {round}: exactly one creator");
        let mut ids = Vec::new();
        for n in &c.nodes {
            eventually(WAIT, "the contested topic everywhere", || {
                n.image().topic(&name).is_some()
            })
            .await;
            ids.push(n.image().topic(&name).map(|t| t.id));
        }
        assert!(
            ids.windows(2).all(|w| w[0] == w[1]),
            "same topic id everywhere"
        );
    }
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_shutdown_fails_over_and_restarted_node_catches_up() {
    let mut c = Cluster::start(no_tweak).await;
    let nodes: Vec<_> = c.nodes.iter().collect();
    let old = agreed_leader(&nodes, WAIT).await;
    for i in 0..10 {
        c.node(old)
            .propose(create_topic(&format!("before-{i}")))
            .await
            .expect("propose");
    }
    let t0 = Instant::now();
    c.node(old).shutdown().await;
    let rest: Vec<_> = c
        .nodes
        .iter()
        .filter(|n| n.node_id() != old)
        .cloned()
        .collect();
    let mut new = None;
    eventually(WAIT, "a new leader", || {
        let l = rest[0].controller_leader();
        new = l;
        l.is_some_and(|l| l != old) && rest.iter().all(|n| n.controller_leader() == l)
    })
    .await;
    let elected = t0.elapsed();
    let (created, _) = rest[1]
        .propose(create_topic("after-failover"))
        .await
        .expect("propose after failover");
    assert!(created);
    println!(
        "failover: new leader {:?} after {elected:?}, first write done after {:?}",
        new,
        t0.elapsed()
    );
    for n in &rest {
        let img = n.image();
        assert!((0..10).all(|i| img.topic(&format!("before-{i}")).is_some()));
    }

    // The old leader restarts from its directory (no re-initialization) and catches up.
    let restarted = Quorum::start(c.config(old, no_tweak))
        .await
        .expect("restart");
    c.nodes[(old - 1) as usize] = restarted.clone();
    eventually(WAIT, "the restarted node to catch up", || {
        restarted.image().topic("after-failover").is_some()
    })
    .await;
    let (created, _) = restarted
        .propose(create_topic("from-restarted"))
        .await
        .expect("propose from restarted");
    assert!(created);
    for n in &c.nodes {
        eventually(WAIT, "everyone to see it", || {
            n.image().topic("from-restarted").is_some()
        })
        .await;
    }
    c.shutdown().await;
}

/// Largest `end` of `<end>-<term>.checkpoint` files in a node's snapshot directory.
fn snapshot_end(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir.join("metadata").join("snapshots"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().to_string();
                    name.strip_suffix(".checkpoint")?
                        .split('-')
                        .next()?
                        .parse::<u64>()
                        .ok()
                })
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_behind_a_snapshot_catches_up_by_install_snapshot() {
    let tweak = |c: &mut QuorumConfig| {
        c.snapshot_every_entries = 8;
        c.snapshot_keep_entries = 0;
    };
    let mut c = Cluster::start(tweak).await;
    let nodes: Vec<_> = c.nodes.iter().collect();
    let leader = agreed_leader(&nodes, WAIT).await;
    let lagging = (1..=3).find(|id| *id != leader).expect("a follower");
    c.node(lagging).shutdown().await;
    let behind = c.node(lagging).image().offset;
    for i in 0..40 {
        c.node(leader)
            .propose(create_topic(&format!("while-down-{i}")))
            .await
            .expect("propose");
    }
    let leader_dir = c.dirs[(leader - 1) as usize].path().to_path_buf();
    eventually(WAIT, "the leader to snapshot past the lagging node", || {
        snapshot_end(&leader_dir) > u64::try_from(behind).unwrap_or(0) + 8
    })
    .await;

    let restarted = Quorum::start(c.config(lagging, tweak))
        .await
        .expect("restart");
    c.nodes[(lagging - 1) as usize] = restarted.clone();
    eventually(WAIT, "the lagging node to catch up", || {
        restarted.image().topic("while-down-39").is_some()
    })
    .await;
    let lag_dir = c.dirs[(lagging - 1) as usize].path().to_path_buf();
    assert!(
        snapshot_end(&lag_dir) > u64::try_from(behind).unwrap_or(0) + 8,
        "the lagging node holds an installed snapshot"
    );
    // Its log restarted after the snapshot: new entries still arrive and survive a restart.
    c.node(leader)
        .propose(create_topic("after-snapshot"))
        .await
        .expect("propose");
    eventually(WAIT, "replication after the snapshot", || {
        restarted.image().topic("after-snapshot").is_some()
    })
    .await;
    restarted.shutdown().await;
    let again = Quorum::start(c.config(lagging, tweak))
        .await
        .expect("second restart");
    c.nodes[(lagging - 1) as usize] = again.clone();
    eventually(WAIT, "the image after a restart on the new log", || {
        let img = again.image();
        img.topic("after-snapshot").is_some() && img.topic("while-down-0").is_some()
    })
    .await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_only_learner_receives_the_log() {
    let c = Cluster::start(no_tweak).await;
    c.node(1)
        .propose(create_topic("early"))
        .await
        .expect("propose");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = common::voter(1, dir.path(), &c.addrs);
    cfg.node_id = 4;
    cfg.controller_listen = Some(common::free_addrs(1)[0]);
    cfg.voter = false;
    let learner = Quorum::start(cfg).await.expect("learner start");
    // Not a member yet: nobody serves it until its broker registers, so it is not caught up.
    assert!(!learner.caught_up());
    // A broker-only node may not propose before it registers.
    let early = learner.propose(create_topic("too-early")).await;
    assert!(
        matches!(
            early,
            Err(QuorumError::Remote(RemoteError::Unauthorized {
                node_id: 4,
                reason: PeerRefusal::NotRegistered
            }))
        ),
        "{early:?}"
    );
    // Its broker registers (not a voter): that makes the node a learner, which catches up.
    let inc = uuid::Uuid::new_v4();
    let addr = learner.controller_addr().expect("listener").to_string();
    learner
        .register_broker(strom_cluster::BrokerRegistration {
            broker_id: 4,
            incarnation: inc,
            host: "127.0.0.1".into(),
            port: 9004,
            rack: None,
            controller_addr: addr,
            endpoints: Vec::new(),
            voter: false,
        })
        .await
        .expect("register");
    let img = learner.wait_caught_up(WAIT).await.expect("caught up");
    assert!(img.topic("early").is_some());
    assert!(learner.caught_up());
    c.node(2)
        .propose(create_topic("later"))
        .await
        .expect("propose");
    eventually(WAIT, "the learner to receive new entries", || {
        learner.image().topic("later").is_some()
    })
    .await;
    // A registered learner may propose (forwarded to the leader).
    let (created, img) = learner
        .propose(create_topic("from-learner"))
        .await
        .expect("learner propose");
    assert!(created && img.topic("from-learner").is_some());
    assert!(learner.controller_leader().is_some());
    // It is unfenced like any other broker.
    let reply = learner
        .heartbeat(4, inc, learner.image().offset, false)
        .await
        .expect("heartbeat");
    assert!(!reply.fenced);
    eventually(WAIT, "the voters to see broker 4 unfenced", || {
        c.node(1).image().brokers.get(&4).is_some_and(|b| !b.fenced)
    })
    .await;
    learner.shutdown().await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_voter_starts_after_its_timeout_and_joins_later() {
    common::init_tracing();
    let dirs: Vec<tempfile::TempDir> = (0..3)
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    let addrs = common::free_addrs(3);
    let mut first = common::voter(1, dirs[0].path(), &addrs);
    first.startup_timeout_ms = 500;
    let t0 = Instant::now();
    let lone = Quorum::start(first).await.expect("lone start");
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(400),
        "returned after {waited:?}"
    );
    assert!(lone.controller_leader().is_none());
    // Started without a quorum: its image is not confirmed current.
    assert!(!lone.caught_up());
    let mut caught_up = lone.subscribe_caught_up();
    let others = common::start_all(vec![
        common::voter(2, dirs[1].path(), &addrs),
        common::voter(3, dirs[2].path(), &addrs),
    ])
    .await;
    let (created, _) = others[0].propose(create_topic("x")).await.expect("propose");
    assert!(created);
    eventually(WAIT, "the lone voter to join", || {
        lone.image().topic("x").is_some()
    })
    .await;
    // Once the quorum answers, its image is confirmed current, and stays so.
    let img = lone.wait_caught_up(WAIT).await.expect("caught up");
    assert!(img.offset > 0 && lone.caught_up());
    assert!(*caught_up.wait_for(|c| *c).await.expect("watch"));
    for n in &others {
        assert!(n.caught_up(), "started with a quorum: caught up");
    }
    lone.shutdown().await;
    for n in others {
        n.shutdown().await;
    }
}
