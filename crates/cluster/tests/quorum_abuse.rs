//! The controller port under attack, over raw sockets against a real node: requests without a
//! hello or from unknown ids, forged `Propose`s (`based_on` out of range, names like `../x`),
//! bad registrations, ids claimed from the wrong address, duplicate registrations, and huge
//! frames. Each is refused with a reason or a closed connection, and the node keeps serving.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use common::raw::{error_of, refusal, Raw};
use common::{create_topic, eventually};
use openraft::raft::AppendEntriesRequest;
use openraft::Vote;
use serde_json::{json, Value};
use strom_cluster::metadata::{BrokerRegistration, InvalidRecord, MetadataRecord};
use strom_cluster::quorum::types::TypeConfig;
use strom_cluster::quorum::{PeerRefusal, RemoteError, MAX_ENTRY_BYTES};
use strom_cluster::{Quorum, QuorumConfig, QuorumError};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(15);

/// A one-node quorum (node 1) with a controller listener on 127.0.0.1.
async fn node(tweak: impl Fn(&mut QuorumConfig)) -> (tempfile::TempDir, Arc<Quorum>, SocketAddr) {
    common::init_tracing();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = QuorumConfig::new(1, dir.path());
    cfg.controller_listen = Some("127.0.0.1:0".parse().expect("addr"));
    cfg.auto_leader_rebalance = false;
    tweak(&mut cfg);
    let q = Quorum::start(cfg).await.expect("start");
    let addr = q.controller_addr().expect("listener");
    (dir, q, addr)
}

fn registration(id: i32, host: &str) -> BrokerRegistration {
    BrokerRegistration {
        broker_id: id,
        incarnation: Uuid::new_v4(),
        host: host.into(),
        port: 9092,
        rack: None,
        controller_addr: String::new(),
        endpoints: Vec::new(),
        voter: false,
    }
}

fn topic(name: &str) -> MetadataRecord {
    MetadataRecord::Topic {
        name: name.into(),
        topic_id: Uuid::new_v4(),
    }
}

fn propose(based_on: i64, records: &[MetadataRecord]) -> Value {
    json!({ "Propose": { "based_on": based_on, "records": records } })
}

fn heartbeat(broker_id: i32, incarnation: Uuid, offset: i64) -> Value {
    json!({ "Heartbeat": {
        "broker_id": broker_id, "incarnation": incarnation,
        "metadata_offset": offset, "want_shutdown": false,
    } })
}

fn append_entries(leader: u64) -> Value {
    let req = AppendEntriesRequest::<TypeConfig> {
        vote: Vote::new_committed(99, leader),
        prev_log_id: None,
        entries: Vec::new(),
        leader_commit: None,
    };
    json!({ "AppendEntries": serde_json::to_value(&req).expect("json") })
}

fn register(reg: &BrokerRegistration) -> Value {
    json!({ "RegisterBroker": reg })
}

fn is_hello(answer: &Option<Value>) -> bool {
    answer.as_ref().is_some_and(|v| v == &json!("Hello"))
}

/// The outcome of a `Proposed` answer.
fn outcome(answer: &Option<Value>) -> Option<&Value> {
    answer.as_ref()?.pointer("/Proposed/outcome")
}

/// A node with broker 5 registered at 127.0.0.1, and a connection that said hello as 5.
async fn with_broker_5() -> (tempfile::TempDir, Arc<Quorum>, Raw) {
    let (dir, q, addr) = node(|_| {}).await;
    q.register_broker(registration(5, "127.0.0.1"))
        .await
        .expect("register 5");
    let (raw, answer) = Raw::hello(addr, 5).await;
    assert!(is_hello(&answer), "{answer:?}");
    (dir, q, raw)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_are_refused_and_nothing_changes() {
    let (_dir, q, addr) = node(|_| {}).await;
    let before = q.image().offset;

    // No hello: the request is refused and the connection closed.
    let mut raw = Raw::connect(addr).await;
    let answer = raw.call(&propose(before, &[topic("forged")])).await;
    assert_eq!(refusal(&answer), Some(PeerRefusal::NoHello), "{answer:?}");
    assert!(raw.recv().await.is_none(), "closed after the refusal");

    // An unknown id: only registration is open to it.
    let (mut raw, answer) = Raw::hello(addr, 99).await;
    assert!(is_hello(&answer), "{answer:?}");
    for req in [
        propose(before, &[topic("forged")]),
        json!("ReadIndex"),
        heartbeat(99, Uuid::new_v4(), 0),
        json!({ "ElectLeaders": { "partitions": [] } }),
    ] {
        let answer = raw.call(&req).await;
        assert_eq!(
            refusal(&answer),
            Some(PeerRefusal::NotRegistered),
            "{req}: {answer:?}"
        );
    }
    let answer = raw.call(&append_entries(99)).await;
    assert_eq!(refusal(&answer), Some(PeerRefusal::NotAVoter), "{answer:?}");
    // Registering someone else.
    let answer = raw.call(&register(&registration(98, "127.0.0.1"))).await;
    assert_eq!(
        refusal(&answer),
        Some(PeerRefusal::WrongSender),
        "{answer:?}"
    );
    // A second hello.
    let answer = raw.call(&json!({ "Hello": { "node_id": 1 } })).await;
    assert_eq!(refusal(&answer), Some(PeerRefusal::NoHello), "{answer:?}");

    // Negative ids and this node's own id are refused at the hello.
    for id in [-1, 1] {
        let (mut raw, answer) = Raw::hello(addr, id).await;
        assert_eq!(
            refusal(&answer),
            Some(PeerRefusal::BadNodeId),
            "{id}: {answer:?}"
        );
        assert!(raw.recv().await.is_none());
    }

    // A huge announced length before the hello: closed, nothing allocated for it.
    let mut raw = Raw::connect(addr).await;
    raw.send_bytes(&(1u32 << 30).to_be_bytes()).await;
    assert!(raw.recv().await.is_none(), "closed on an oversized hello");
    // Garbage instead of JSON.
    let mut raw = Raw::connect(addr).await;
    raw.send_bytes(&[0, 0, 0, 3, b'{', b'{', b'{']).await;
    assert!(raw.recv().await.is_none(), "closed on garbage");

    assert!(q.image().topic("forged").is_none());
    assert_eq!(q.image().offset, before, "nothing was written");
    // The node still serves.
    let (created, _) = q.propose(create_topic("after")).await.expect("propose");
    assert!(created);
    q.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_broker_cannot_forge_offsets_names_or_other_ids() {
    let (dir, q, mut raw) = with_broker_5().await;
    let applied = q.image().offset;

    // based_on must be an offset the leader has: i64::MAX (which would pass every conflict
    // check), negative, or past the log end is refused.
    for based_on in [i64::MAX, -1, applied + 1000] {
        let answer = raw.call(&propose(based_on, &[topic("x")])).await;
        assert!(
            matches!(
                error_of(&answer),
                Some(RemoteError::InvalidBasedOn { based_on: b, .. }) if b == based_on
            ),
            "{based_on}: {answer:?}"
        );
    }
    // Names that would be paths.
    for name in ["../x", "/abs", "..", "a/b"] {
        let answer = raw.call(&propose(applied, &[topic(name)])).await;
        assert!(
            matches!(
                error_of(&answer),
                Some(RemoteError::Invalid(InvalidRecord::TopicName(_)))
            ),
            "{name}: {answer:?}"
        );
    }
    // A leader outside the replicas.
    let bad_partition = MetadataRecord::Partition {
        topic_id: Uuid::new_v4(),
        partition: 0,
        replicas: vec![1],
        isr: vec![1],
        leader: 7,
        leader_epoch: 0,
        partition_epoch: 0,
    };
    let answer = raw.call(&propose(applied, &[bad_partition])).await;
    assert!(
        matches!(
            error_of(&answer),
            Some(RemoteError::Invalid(InvalidRecord::Replicas { .. }))
        ),
        "{answer:?}"
    );
    // Registering or unfencing brokers is the controller's.
    for record in [
        MetadataRecord::UnfenceBroker { broker_id: 5 },
        registration(6, "127.0.0.1").to_record(),
    ] {
        let answer = raw.call(&propose(applied, &[record])).await;
        assert_eq!(
            refusal(&answer),
            Some(PeerRefusal::ControllerOnly),
            "{answer:?}"
        );
    }
    // Speaking for another broker, or as a voter.
    let answer = raw.call(&heartbeat(6, Uuid::new_v4(), applied)).await;
    assert_eq!(
        refusal(&answer),
        Some(PeerRefusal::WrongSender),
        "{answer:?}"
    );
    let answer = raw.call(&append_entries(5)).await;
    assert_eq!(refusal(&answer), Some(PeerRefusal::NotAVoter), "{answer:?}");
    assert_eq!(q.image().offset, applied, "nothing was written");

    // An honest proposal on the same connection is served.
    let answer = raw.call(&propose(applied, &[topic("fine")])).await;
    assert_eq!(outcome(&answer), Some(&json!("Applied")), "{answer:?}");
    eventually(WAIT, "the proposal applied", || {
        q.image().topic("fine").is_some()
    })
    .await;

    // Through the API the same records are refused before anything is sent.
    for name in ["../x", "/abs"] {
        let r = q.propose(|_| (vec![topic(name)], ())).await;
        assert!(matches!(r, Err(QuorumError::Invalid(_))), "{name}: {r:?}");
    }
    let names: Vec<String> = q.image().topics().map(|t| t.name.clone()).collect();
    assert_eq!(names, ["fine"]);
    // The image, which the broker makes partition directories from, never held them; and the
    // node's data directory holds only its metadata.
    let entries: Vec<String> = std::fs::read_dir(dir.path())
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(entries, ["metadata"]);
    q.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_are_checked_and_a_live_incarnation_is_not_replaced() {
    let (_dir, q, addr) = node(|c| c.session_timeout_ms = 600).await;
    let (mut raw, answer) = Raw::hello(addr, 7).await;
    assert!(is_hello(&answer), "{answer:?}");
    type Spoil = fn(&mut BrokerRegistration);
    let bad: [(&str, Spoil); 6] = [
        ("empty host", |r| r.host = String::new()),
        ("path host", |r| r.host = "../../etc".into()),
        ("port 0", |r| r.port = 0),
        ("port 70000", |r| r.port = 70_000),
        ("bad controller address", |r| {
            r.controller_addr = "nowhere".into()
        }),
        ("voter flag of a non-voter", |r| r.voter = true),
    ];
    for (what, spoil) in bad {
        let mut reg = registration(7, "127.0.0.1");
        spoil(&mut reg);
        let answer = raw.call(&register(&reg)).await;
        assert!(
            matches!(error_of(&answer), Some(RemoteError::Invalid(_))),
            "{what}: {answer:?}"
        );
        let local = q.register_broker(reg).await;
        assert!(
            matches!(local, Err(QuorumError::Invalid(_))),
            "{what}: {local:?}"
        );
    }
    // A registration naming an address the connection does not come from.
    let answer = raw.call(&register(&registration(7, "127.0.0.2"))).await;
    assert_eq!(
        refusal(&answer),
        Some(PeerRefusal::AddressMismatch),
        "{answer:?}"
    );
    // A negative id cannot even say hello.
    let (_, answer) = Raw::hello(addr, -3).await;
    assert_eq!(refusal(&answer), Some(PeerRefusal::BadNodeId));
    assert!(!q.image().brokers.contains_key(&7));

    // A good registration, then heartbeats make the broker live.
    let first = registration(7, "127.0.0.1");
    let answer = raw.call(&register(&first)).await;
    let offset = answer
        .as_ref()
        .and_then(|a| a.pointer("/Registered/offset"))
        .and_then(Value::as_i64)
        .unwrap_or_else(|| panic!("registered: {answer:?}"));
    eventually(WAIT, "the registration applied", || {
        q.image().offset >= offset
    })
    .await;
    let answer = raw.call(&heartbeat(7, first.incarnation, offset)).await;
    assert_eq!(
        answer
            .as_ref()
            .and_then(|a| a.pointer("/Heartbeat/reply/fenced")),
        Some(&json!(false)),
        "{answer:?}"
    );
    // Another incarnation is refused while that one is live and unfenced (Kafka's
    // DUPLICATE_BROKER_REGISTRATION), over the wire and in-process alike.
    let second = registration(7, "127.0.0.1");
    let answer = raw.call(&register(&second)).await;
    assert_eq!(
        error_of(&answer),
        Some(RemoteError::DuplicateBrokerRegistration { broker_id: 7 }),
        "{answer:?}"
    );
    let local = q.register_broker(second.clone()).await;
    assert!(
        matches!(
            local,
            Err(QuorumError::Remote(
                RemoteError::DuplicateBrokerRegistration { broker_id: 7 }
            ))
        ),
        "{local:?}"
    );
    // Once its session expires (no more heartbeats) the controller fences it, and the new
    // incarnation registers.
    eventually(WAIT, "broker 7 fenced after its session", || {
        q.image().brokers.get(&7).is_some_and(|b| b.fenced)
    })
    .await;
    let answer = raw.call(&register(&second)).await;
    assert!(
        answer.as_ref().and_then(|a| a.get("Registered")).is_some(),
        "{answer:?}"
    );
    eventually(WAIT, "the new incarnation in the image", || {
        q.image()
            .brokers
            .get(&7)
            .is_some_and(|b| b.registration.incarnation == second.incarnation)
    })
    .await;
    q.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_id_counts_only_from_its_registered_address() {
    let (_dir, q, addr) = node(|_| {}).await;
    let mut reg = registration(8, "127.0.0.2");
    reg.controller_addr = "127.0.0.2:1".into();
    q.register_broker(reg).await.expect("register 8");
    let applied = q.image().offset;

    // From 127.0.0.1 the id is claimed from the wrong address: a newcomer, nothing more.
    let (mut raw, answer) = Raw::hello(addr, 8).await;
    assert!(is_hello(&answer), "{answer:?}");
    let answer = raw.call(&propose(applied, &[topic("spoofed")])).await;
    assert_eq!(
        refusal(&answer),
        Some(PeerRefusal::NotRegistered),
        "{answer:?}"
    );

    // From 127.0.0.2 it is broker 8.
    let from: IpAddr = "127.0.0.2".parse().expect("ip");
    let mut raw = Raw::connect_from(from, addr).await;
    assert!(is_hello(
        &raw.call(&json!({ "Hello": { "node_id": 8 } })).await
    ));
    let answer = raw.call(&propose(applied, &[topic("genuine")])).await;
    assert_eq!(outcome(&answer), Some(&json!("Applied")), "{answer:?}");
    assert!(q.image().topic("spoofed").is_none());
    q.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_entries_and_forged_split_proposals_are_refused() {
    let (_dir, q, mut raw) = with_broker_5().await;
    let applied = q.image().offset;
    let topic_id = Uuid::new_v4();
    let partitions: Vec<MetadataRecord> = (0..3000)
        .map(|partition| MetadataRecord::Partition {
            topic_id,
            partition,
            replicas: vec![1],
            isr: vec![1],
            leader: 1,
            leader_epoch: 0,
            partition_epoch: 0,
        })
        .collect();
    // One entry larger than an entry may be (it would not replicate in time): refused.
    let answer = raw.call(&propose(applied, &partitions)).await;
    assert!(
        matches!(
            error_of(&answer),
            Some(RemoteError::ProposalTooLarge { limit, .. }) if limit == MAX_ENTRY_BYTES
        ),
        "{answer:?}"
    );
    // Parts that are not one proposal in order: refused before anything is appended.
    let part = |group: Uuid, index: u32, count: u32, based_on: i64| {
        json!({ "based_on": based_on, "records": [topic(&format!("p{index}"))],
                "part": { "group": group, "index": index, "count": count } })
    };
    let (g, h) = (Uuid::new_v4(), Uuid::new_v4());
    for parts in [
        vec![part(g, 0, 2, applied), part(h, 1, 2, applied)],
        vec![part(g, 1, 2, applied), part(g, 0, 2, applied)],
        vec![part(g, 0, 3, applied), part(g, 1, 3, applied)],
        vec![part(g, 0, 1, applied)],
        vec![part(g, 0, 2, applied), part(g, 1, 2, applied - 1)],
    ] {
        let answer = raw.call(&json!({ "ProposeGroup": parts })).await;
        assert!(error_of(&answer).is_some(), "{parts:?}: {answer:?}");
    }
    let parts = vec![part(g, 0, 2, i64::MAX), part(g, 1, 2, i64::MAX)];
    let answer = raw.call(&json!({ "ProposeGroup": parts })).await;
    assert!(
        matches!(error_of(&answer), Some(RemoteError::InvalidBasedOn { .. })),
        "{answer:?}"
    );
    assert_eq!(q.image().offset, applied, "nothing was written");
    // A well-formed split proposal is applied whole.
    let parts = vec![part(g, 0, 2, applied), part(g, 1, 2, applied)];
    let answer = raw.call(&json!({ "ProposeGroup": parts })).await;
    assert_eq!(outcome(&answer), Some(&json!("Applied")), "{answer:?}");
    eventually(WAIT, "both parts applied", || {
        let img = q.image();
        img.topic("p0").is_some() && img.topic("p1").is_some()
    })
    .await;
    q.shutdown().await;
}
