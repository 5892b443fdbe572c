//! The active controller on a three-voter quorum: registration, heartbeats, fencing on session
//! expiry with leader movement, unfencing, AlterPartition, preferred election, controlled
//! shutdown, and fencing after the controller itself fails over.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{agreed_leader, eventually, Cluster};
use strom_cluster::metadata::{MetadataImage, MetadataRecord, PartitionImage};
use strom_cluster::replication::{AlterPartitionError, AlterPartitionRequest};
use strom_cluster::{BrokerRegistration, Quorum, QuorumConfig, QuorumError};
use tokio::task::JoinHandle;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(15);

fn tweak(c: &mut QuorumConfig) {
    c.session_timeout_ms = 800;
    c.auto_leader_rebalance = false;
}

fn registration(id: i32, incarnation: Uuid) -> BrokerRegistration {
    BrokerRegistration {
        broker_id: id,
        incarnation,
        host: "127.0.0.1".into(),
        port: 9000 + id,
        rack: None,
        controller_addr: String::new(),
        endpoints: Vec::new(),
        voter: true,
    }
}

/// Registers broker `id` through node `id` and heartbeats until it is unfenced.
async fn register_and_unfence(q: &Arc<Quorum>, id: i32) -> Uuid {
    let inc = Uuid::new_v4();
    q.register_broker(registration(id, inc))
        .await
        .expect("register");
    assert!(
        q.image().brokers[&id].fenced,
        "a new registration is fenced"
    );
    let reply = q
        .heartbeat(id, inc, q.image().offset, false)
        .await
        .expect("heartbeat");
    assert!(!reply.fenced && !reply.should_shut_down);
    inc
}

/// Heartbeats every 150 ms through `q` until aborted (errors during elections are ignored).
fn keep_alive(q: Arc<Quorum>, id: i32, inc: Uuid) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let _ = q.heartbeat(id, inc, q.image().offset, false).await;
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    })
}

/// Creates topic `name` with one partition on [1,2,3] led by 1.
async fn create_partition(q: &Quorum, name: &str) -> Uuid {
    let topic_id = Uuid::new_v4();
    let name = name.to_string();
    q.propose(|_| {
        (
            vec![
                MetadataRecord::Topic {
                    name: name.clone(),
                    topic_id,
                },
                MetadataRecord::Partition {
                    topic_id,
                    partition: 0,
                    replicas: vec![1, 2, 3],
                    isr: vec![1, 2, 3],
                    leader: 1,
                    leader_epoch: 0,
                    partition_epoch: 0,
                },
            ],
            (),
        )
    })
    .await
    .expect("create");
    topic_id
}

fn partition(img: &MetadataImage, topic_id: Uuid) -> PartitionImage {
    img.topic_by_id(&topic_id).expect("topic").partitions[&0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_expiry_fences_and_the_controller_manages_partitions() {
    let c = Cluster::start(tweak).await;
    let mut incs = Vec::new();
    for id in 1..=3 {
        incs.push(register_and_unfence(c.node(id), id).await);
    }
    // A stale incarnation is refused.
    let stale = c.node(1).heartbeat(1, Uuid::new_v4(), 0, false).await;
    assert!(matches!(stale, Err(QuorumError::Remote(_))), "{stale:?}");

    let topic_id = create_partition(c.node(2), "t").await;
    let alive: Vec<_> = [2, 3]
        .into_iter()
        .map(|id| keep_alive(c.node(id).clone(), id, incs[(id - 1) as usize]))
        .collect();

    // Broker 1 stops heartbeating: fenced, and its partition moves to 2 with a new epoch.
    let t0 = Instant::now();
    for n in &c.nodes {
        eventually(WAIT, "broker 1 fenced and the leader moved", || {
            let img = n.image();
            let p = img
                .topic_by_id(&topic_id)
                .and_then(|t| t.partitions.get(&0));
            img.brokers[&1].fenced && p.is_some_and(|p| p.leader == 2 && p.leader_epoch == 1)
        })
        .await;
    }
    println!("heartbeat lapse: fenced after {:?}", t0.elapsed());
    let p = partition(&c.node(3).image(), topic_id);
    assert_eq!(p.isr, vec![2, 3]);
    assert!(!c.node(3).image().brokers[&2].fenced);

    // It heartbeats again, caught up: unfenced (the partition keeps its leader).
    let reply = c
        .node(1)
        .heartbeat(1, incs[0], c.node(1).image().offset, false)
        .await
        .expect("heartbeat");
    assert!(!reply.fenced);
    let ka1 = keep_alive(c.node(1).clone(), 1, incs[0]);

    // The leader (2) adds 1 back to the ISR; a request from an old partition epoch is refused.
    // (A node speaks only for its own broker: broker 2's requests go through node 2.)
    let add = AlterPartitionRequest {
        broker: 2,
        leader_epoch: 1,
        partition_epoch: p.partition_epoch,
        new_isr: vec![2, 3, 1],
    };
    let grown = c
        .node(2)
        .alter_partition(topic_id, 0, add.clone())
        .await
        .expect("reach")
        .expect("accepted");
    assert_eq!(grown.isr, vec![2, 3, 1]);
    assert_eq!(grown.partition_epoch, p.partition_epoch + 1);
    let refused = c
        .node(2)
        .alter_partition(topic_id, 0, add)
        .await
        .expect("reach");
    assert_eq!(refused, Err(AlterPartitionError::InvalidUpdateVersion));

    // Preferred election brings leadership back to 1.
    let results = c
        .node(1)
        .elect_leaders(vec![(topic_id, 0), (Uuid::new_v4(), 0)])
        .await
        .expect("elect");
    assert_eq!(results, vec![Ok(()), Err(3)]);
    let p = partition(&c.node(1).image(), topic_id);
    assert_eq!((p.leader, p.leader_epoch), (1, 2));

    // Controlled shutdown of broker 3: fenced, out of the ISR, told it may exit.
    alive[1].abort();
    let reply = c
        .node(3)
        .heartbeat(3, incs[2], c.node(3).image().offset, true)
        .await
        .expect("shutdown heartbeat");
    assert!(reply.should_shut_down && reply.fenced);
    let img = c.node(3).image();
    assert!(img.brokers[&3].fenced);
    assert!(!partition(&img, topic_id).isr.contains(&3));

    ka1.abort();
    alive[0].abort();
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_nodes_broker_is_fenced_by_the_next_controller() {
    let mut c = Cluster::start(tweak).await;
    let nodes: Vec<_> = c.nodes.iter().collect();
    let leader = agreed_leader(&nodes, WAIT).await;
    let mut incs = Vec::new();
    for id in 1..=3 {
        incs.push(register_and_unfence(c.node(id), id).await);
    }
    let topic_id = create_partition(c.node(1), "t").await;
    let others: Vec<i32> = (1..=3).filter(|id| *id != leader).collect();
    let alive: Vec<_> = others
        .iter()
        .map(|&id| keep_alive(c.node(id).clone(), id, incs[(id - 1) as usize]))
        .collect();

    // The controller's node dies with its broker.
    let t0 = Instant::now();
    c.node(leader).shutdown().await;
    let survivor = c.node(others[0]).clone();
    eventually(WAIT, "the dead node's broker fenced", || {
        survivor.image().brokers[&leader].fenced
    })
    .await;
    println!(
        "controller failover + session expiry: broker {leader} fenced after {:?}",
        t0.elapsed()
    );
    let img = survivor.image();
    for id in &others {
        assert!(!img.brokers[id].fenced, "broker {id} kept its session");
    }
    let p = partition(&img, topic_id);
    assert_ne!(p.leader, leader);
    assert!(!p.isr.contains(&leader));
    if leader == 1 {
        assert_eq!(p.leader_epoch, 1);
    }
    for a in alive {
        a.abort();
    }
    c.nodes.retain(|n| n.node_id() != leader);
    c.shutdown().await;
}
