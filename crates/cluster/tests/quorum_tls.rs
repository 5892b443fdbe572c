//! The controller listener over TLS with client certificates: a three-voter quorum whose every
//! controller connection is mTLS elects a leader, commits and forwards; a broker-only node
//! registers over it; and on a TLS controller port a plaintext peer, a peer without a
//! certificate, one whose certificate another CA issued, and one whose certificate names no node
//! are all refused at the handshake, while a certificate's node cannot say hello as another.

mod common;

use std::time::Duration;

use common::raw::refusal;
use common::tls::{connect, connector, node_tls};
use common::{agreed_leader, create_topic, eventually, Cluster};
use strom_cluster::quorum::PeerRefusal;
use strom_cluster::{BrokerRegistration, Quorum, QuorumConfig};
use strom_security::test_support::TestPki;

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_quorum_elects_commits_and_admits_a_broker() {
    let pki = TestPki::new();
    let with_tls = |c: &mut QuorumConfig| c.tls = Some(node_tls(&pki, c.node_id));
    let c = Cluster::start(with_tls).await;
    let nodes: Vec<_> = c.nodes.iter().collect();
    let leader = agreed_leader(&nodes, WAIT).await;
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");
    // A follower's proposal travels to the leader over TLS and commits everywhere.
    let (created, _) = c
        .node(follower)
        .propose(create_topic("over-tls"))
        .await
        .expect("propose from a follower");
    assert!(created);
    eventually(WAIT, "every node to apply it", || {
        c.nodes
            .iter()
            .all(|n| n.image().topic("over-tls").is_some())
    })
    .await;

    // A broker-only node: its certificate proves id 4, so it registers from any address.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = common::voter(1, dir.path(), &c.addrs);
    cfg.node_id = 4;
    cfg.voter = false;
    cfg.controller_listen = Some(common::free_addrs(1)[0]);
    cfg.tls = Some(node_tls(&pki, 4));
    let learner = Quorum::start(cfg).await.expect("learner start");
    let addr = learner.controller_addr().expect("listener").to_string();
    learner
        .register_broker(BrokerRegistration {
            broker_id: 4,
            incarnation: uuid::Uuid::new_v4(),
            host: "broker-4.elsewhere.invalid".into(),
            port: 9092,
            rack: None,
            controller_addr: addr,
            voter: false,
            endpoints: Vec::new(),
        })
        .await
        .expect("registration over TLS, address unchecked");
    eventually(WAIT, "the learner to receive the log", || {
        learner.image().topic("over-tls").is_some()
    })
    .await;
    learner.shutdown().await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_and_unauthenticated_peers_are_refused() {
    common::init_tracing();
    let pki = TestPki::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = QuorumConfig::new(1, dir.path());
    cfg.controller_listen = Some("127.0.0.1:0".parse().expect("addr"));
    cfg.tls = Some(node_tls(&pki, 1));
    let q = Quorum::start(cfg).await.expect("start");
    let addr = q.controller_addr().expect("listener");

    // The control: a certificate of this CA naming node 2 says hello as 2 and is answered.
    let node2 = pki.server("broker-2");
    let mut raw = connect(addr, &connector(&pki, Some(&node2)))
        .await
        .expect("handshake");
    let answer = raw.say_hello(2).await;
    assert_eq!(answer, Some(serde_json::json!("Hello")), "{answer:?}");

    // The same certificate cannot speak for node 3.
    let mut raw = connect(addr, &connector(&pki, Some(&node2)))
        .await
        .expect("handshake");
    let answer = raw.say_hello(3).await;
    assert_eq!(refusal(&answer), Some(PeerRefusal::IdentityMismatch));

    // Refused at the handshake: the connection ends without an answer.
    let plaintext = common::raw::Raw::hello(addr, 2).await.1;
    assert_eq!(plaintext, None, "a plaintext peer");
    let other_ca = TestPki::new();
    let forged = other_ca.server("broker-2");
    // It trusts our CA, so only the server's check of its certificate can refuse it.
    let cases = [
        (
            "a certificate from another CA",
            connector(&pki, Some(&forged)),
        ),
        ("no certificate", connector(&pki, None)),
        (
            "a certificate naming no node",
            connector(&pki, Some(&pki.client("alice", "CN=alice,O=Strom"))),
        ),
        (
            "a certificate for a non-canonical id",
            connector(&pki, Some(&pki.client("b02", "CN=broker-02,O=Strom"))),
        ),
    ];
    for (what, tls) in &cases {
        let answer = match connect(addr, tls).await {
            Some(mut raw) => raw.say_hello(2).await,
            None => None,
        };
        assert_eq!(answer, None, "{what}");
    }

    // The node still serves the trusted peer afterwards.
    let mut raw = connect(addr, &connector(&pki, Some(&node2)))
        .await
        .expect("handshake");
    assert_eq!(raw.say_hello(2).await, Some(serde_json::json!("Hello")));
    q.shutdown().await;
}
