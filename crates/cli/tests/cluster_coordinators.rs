//! Coordinators in a 3-node cluster of real `strom serve` processes: FindCoordinator names the
//! leader of the key's internal partition (the internal topics are created on first use, with
//! replication factor 3), committed offsets survive a `kill -9` of that leader because the group
//! coordinator moves with the partition, and a transaction over partitions led by three different
//! brokers commits and aborts through WriteTxnMarkers, also after its coordinator was killed.

mod common;

use std::time::{Duration, Instant};

use common::client_config;
use common::cluster::{StromCluster, FAST_FAILOVER};
use kafka_protocol::messages::{ApiKey, FindCoordinatorRequest, FindCoordinatorResponse};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

const PARTITIONS: i32 = 5;
const T: Duration = Duration::from_secs(30);

fn args() -> Vec<&'static str> {
    let mut a = FAST_FAILOVER.to_vec();
    // Few internal partitions: quicker creation, same rules.
    a.extend([
        "--set",
        "offsets.topic.num.partitions=5",
        "--set",
        "transaction.state.log.num.partitions=5",
    ]);
    a
}

/// Kafka's placement of a group or transactional id: `abs(hashCode(id)) % partitions`.
fn partition_for(id: &str) -> i32 {
    let mut h: i32 = 0;
    for unit in id.encode_utf16() {
        h = h.wrapping_mul(31).wrapping_add(i32::from(unit));
    }
    (if h == i32::MIN { 0 } else { h.abs() }) % PARTITIONS
}

async fn create_topic(bootstrap: &str, name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> =
        client_config(bootstrap).create().expect("admin client");
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(20)));
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(3));
    for r in admin
        .create_topics(&[topic], &opts)
        .await
        .expect("CreateTopics")
    {
        r.unwrap_or_else(|(t, e)| panic!("creating {t}: {e:?}"));
    }
}

/// FindCoordinator (v3) for a key of `key_type` asked of `addr`: (error code, node id).
fn find_coordinator(addr: &str, key_type: i8, key: &str) -> (i16, i32) {
    let mut conn = common::RawConn::connect(addr);
    let req = FindCoordinatorRequest::default()
        .with_key(kafka_protocol::protocol::StrBytes::from_string(
            key.to_string(),
        ))
        .with_key_type(key_type);
    let resp: FindCoordinatorResponse = conn.request(ApiKey::FindCoordinator, 3, 7, &req);
    (resp.error_code, resp.node_id.0)
}

/// Retries `f` until it returns `Some` or `T` passes.
fn retry<R>(what: &str, mut f: impl FnMut() -> Option<R>) -> R {
    let deadline = Instant::now() + T;
    loop {
        if let Some(r) = f() {
            return r;
        }
        assert!(Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn group_consumer(bootstrap: &str, group: &str) -> BaseConsumer {
    client_config(bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer")
}

fn committed(bootstrap: &str, group: &str, topic: &str) -> Option<i64> {
    let c = group_consumer(bootstrap, group);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, 0);
    let got = c.committed_offsets(tpl, Duration::from_secs(5)).ok()?;
    match got.find_partition(topic, 0)?.offset() {
        Offset::Offset(o) => Some(o),
        _ => None,
    }
}

fn commit(bootstrap: &str, group: &str, topic: &str, offset: i64) -> bool {
    let c = group_consumer(bootstrap, group);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Offset(offset))
        .expect("offset");
    c.commit(&tpl, CommitMode::Sync).is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_group_coordinator_follows_its_partition_leader() {
    let mut cluster = StromCluster::start(3, &args());
    let bootstrap = cluster.bootstrap();
    create_topic(&bootstrap, "in", 1).await;
    // The first commit makes FindCoordinator create __consumer_offsets (3 live brokers: RF 3).
    retry("first commit", || {
        commit(&bootstrap, "g", "in", 42).then_some(())
    });
    let p = partition_for("g");
    let leader = cluster
        .partition("__consumer_offsets", p)
        .expect("__consumer_offsets exists")
        .leader;
    assert_eq!(
        cluster
            .partition("__consumer_offsets", p)
            .map(|v| v.replicas.len()),
        Some(3)
    );
    // Every node names the same coordinator: the partition's leader.
    for id in 1..=3 {
        let addr = cluster.node(id).addr().to_string();
        assert_eq!(
            find_coordinator(&addr, 0, "g"),
            (0, leader),
            "asked node {id}"
        );
    }
    cluster.wait_for("__consumer_offsets in sync", |c| {
        c.partition("__consumer_offsets", p)
            .is_some_and(|v| v.isr.len() == 3)
    });
    cluster.node(leader).kill9();
    cluster.wait_for("a new coordinator partition leader", |c| {
        c.partition("__consumer_offsets", p)
            .is_some_and(|v| v.leader > 0 && v.leader != leader)
    });
    let new_leader = cluster
        .partition("__consumer_offsets", p)
        .expect("p")
        .leader;
    let addr = cluster.node(new_leader).addr().to_string();
    retry("FindCoordinator after failover", || {
        (find_coordinator(&addr, 0, "g") == (0, new_leader)).then_some(())
    });
    // The commit made before the kill was replicated: the new coordinator loaded it.
    let got = retry("committed offset after failover", || {
        committed(&bootstrap, "g", "in")
    });
    assert_eq!(got, 42);
    retry("commit on the new coordinator", || {
        commit(&bootstrap, "g", "in", 43).then_some(())
    });
    assert_eq!(committed(&bootstrap, "g", "in"), Some(43));
    cluster.assert_no_panic();
}

fn txn_producer(bootstrap: &str, id: &str) -> BaseProducer {
    let p: BaseProducer = client_config(bootstrap)
        .set("transactional.id", id)
        .set("transaction.timeout.ms", "60000")
        .set("message.timeout.ms", "30000")
        .set("topic.metadata.refresh.interval.ms", "500")
        .set("linger.ms", "1")
        .create()
        .expect("transactional producer");
    p.init_transactions(T).expect("init_transactions");
    p
}

fn one_transaction(p: &BaseProducer, topic: &str, name: &str, commit: bool) {
    p.begin_transaction().expect("begin");
    for part in 0..3 {
        let v = format!("{name}-{part}");
        p.send(BaseRecord::to(topic).partition(part).key(&v).payload(&v))
            .map_err(|(e, _)| e)
            .expect("send");
    }
    p.flush(T).expect("flush");
    if commit {
        p.commit_transaction(T).expect("commit");
    } else {
        p.abort_transaction(T).expect("abort");
    }
}

/// Values readable from `topic` partitions 0..3 at `isolation`, waiting for `want` of them.
fn read(bootstrap: &str, topic: &str, isolation: &str, want: usize) -> Vec<String> {
    let c: BaseConsumer = client_config(bootstrap)
        .set("group.id", "strom-txn-reader")
        .set("enable.auto.commit", "false")
        .set("isolation.level", isolation)
        .set("topic.metadata.refresh.interval.ms", "500")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for part in 0..3 {
        tpl.add_partition_offset(topic, part, Offset::Beginning)
            .expect("assign");
    }
    c.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut quiet_until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline && (out.len() < want || Instant::now() < quiet_until) {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            out.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
            if out.len() >= want {
                quiet_until = Instant::now() + Duration::from_millis(700);
            }
        }
    }
    out.sort();
    out
}

fn values(names: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = names
        .iter()
        .flat_map(|n| (0..3).map(move |p| format!("{n}-{p}")))
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_end_in_partitions_led_by_other_brokers() {
    let mut cluster = StromCluster::start(3, &args());
    let bootstrap = cluster.bootstrap();
    create_topic(&bootstrap, "span", 3).await;
    cluster.wait_for("span in sync", |c| {
        (0..3).all(|p| c.partition("span", p).is_some_and(|v| v.isr.len() == 3))
    });
    let mut leaders: Vec<i32> = (0..3)
        .map(|p| cluster.partition("span", p).expect("p").leader)
        .collect();
    leaders.sort_unstable();
    assert_eq!(leaders, vec![1, 2, 3], "one partition led by each broker");
    let p = txn_producer(&bootstrap, "span-tx");
    one_transaction(&p, "span", "c1", true);
    one_transaction(&p, "span", "a1", false);
    one_transaction(&p, "span", "c2", true);
    assert_eq!(
        read(&bootstrap, "span", "read_committed", 6),
        values(&["c1", "c2"])
    );
    assert_eq!(
        read(&bootstrap, "span", "read_uncommitted", 9),
        values(&["a1", "c1", "c2"])
    );
    drop(p);
    // Kill the transaction coordinator: the id's state moves with its partition.
    let tp = partition_for("span-tx");
    let coordinator = cluster
        .partition("__transaction_state", tp)
        .expect("__transaction_state exists")
        .leader;
    cluster.wait_for("__transaction_state in sync", |c| {
        c.partition("__transaction_state", tp)
            .is_some_and(|v| v.isr.len() == 3)
    });
    cluster.node(coordinator).kill9();
    cluster.wait_for("a new transaction coordinator", |c| {
        c.partition("__transaction_state", tp)
            .is_some_and(|v| v.leader > 0 && v.leader != coordinator)
            && (0..3).all(|p| {
                c.partition("span", p)
                    .is_some_and(|v| v.leader > 0 && v.leader != coordinator)
            })
    });
    let p = txn_producer(&bootstrap, "span-tx");
    one_transaction(&p, "span", "c3", true);
    assert_eq!(
        read(&bootstrap, "span", "read_committed", 9),
        values(&["c1", "c2", "c3"])
    );
    cluster.assert_no_panic();
}

/// The group's coordinator and the transaction's are different brokers: TxnOffsetCommit (served
/// by the group coordinator) verifies with the transaction coordinator over the network, and a
/// partition leader that does not coordinate the transaction verifies a producer's first write
/// the same way (KIP-890 part 1): refused before AddPartitionsToTxn, accepted after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_verify_with_a_coordinator_on_another_broker() {
    use common::txn::{
        add_partition, end_txn_v2, init_producer_id, produce, produce_at, txn_batch,
    };

    let mut cluster = StromCluster::start(3, &args());
    let bootstrap = cluster.bootstrap();
    create_topic(&bootstrap, "eos-in", 1).await;
    create_topic(&bootstrap, "eos-out", 3).await;
    cluster.wait_for("eos-out in sync", |c| {
        (0..3).all(|p| c.partition("eos-out", p).is_some_and(|v| v.isr.len() == 3))
    });
    let p = txn_producer(&bootstrap, "eos-tx");
    let txn_coordinator = cluster
        .partition("__transaction_state", partition_for("eos-tx"))
        .expect("__transaction_state exists")
        .leader;
    // The first group commit creates __consumer_offsets; then pick a group coordinated by
    // another broker than the transaction.
    retry("first commit", || {
        commit(&bootstrap, "probe", "eos-in", 0).then_some(())
    });
    let group = (0..100)
        .map(|i| format!("eos-g{i}"))
        .find(|g| {
            cluster
                .partition("__consumer_offsets", partition_for(g))
                .is_some_and(|v| v.leader > 0 && v.leader != txn_coordinator)
        })
        .expect("a group coordinated by another broker");
    let consumer = group_consumer(&bootstrap, &group);
    p.begin_transaction().expect("begin");
    for part in 0..3 {
        let v = format!("e1-{part}");
        p.send(
            BaseRecord::to("eos-out")
                .partition(part)
                .key(&v)
                .payload(&v),
        )
        .map_err(|(e, _)| e)
        .expect("send");
    }
    p.flush(T).expect("flush");
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset("eos-in", 0, Offset::Offset(7))
        .expect("offset");
    let meta = consumer.group_metadata().expect("group metadata");
    p.send_offsets_to_transaction(&offsets, &meta, T)
        .expect("send_offsets_to_transaction");
    p.commit_transaction(T).expect("commit");
    assert_eq!(committed(&bootstrap, &group, "eos-in"), Some(7));
    assert_eq!(
        read(&bootstrap, "eos-out", "read_committed", 3),
        values(&["e1"])
    );

    // Raw: a partition led by another broker than this transaction's coordinator.
    let any = cluster.node(txn_coordinator).addr().to_string();
    let id = "raw-tx";
    let (to_coordinator, to_leader, part) = split_txn(&mut cluster, &any, id).await;
    let producer = init_producer_id(&to_coordinator, id).await;
    let (pid, epoch) = producer;
    let code = produce(
        &to_leader,
        id,
        "eos-out",
        part,
        txn_batch(pid, epoch, 0, "r", 1),
    )
    .await;
    assert_eq!(
        code,
        kafka_protocol::error::ResponseError::InvalidTxnState.code()
    );
    assert_eq!(
        add_partition(&to_coordinator, id, producer, "eos-out", part).await,
        0
    );
    let code = produce(
        &to_leader,
        id,
        "eos-out",
        part,
        txn_batch(pid, epoch, 0, "r", 1),
    )
    .await;
    assert_eq!(code, 0, "verified by the remote coordinator");

    // Transactions V2: the leader adds the partition at the remote coordinator (AddPartitionsToTxn
    // v5 from a broker), and the commit's markers reach it with the bumped epoch.
    let id = "raw-tx2";
    let (to_coordinator, to_leader, part) = split_txn(&mut cluster, &any, id).await;
    let producer = init_producer_id(&to_coordinator, id).await;
    let (pid, epoch) = producer;
    let batch = txn_batch(pid, epoch, 0, "v2", 1);
    assert_eq!(
        produce_at(&to_leader, 12, id, "eos-out", part, batch).await,
        0
    );
    let (code, next) = end_txn_v2(&to_coordinator, id, producer, true).await;
    assert_eq!((code, next), (0, (pid, epoch + 1)));
    let late = txn_batch(pid, epoch, 1, "late", 1);
    assert_eq!(
        produce_at(&to_leader, 12, id, "eos-out", part, late).await,
        kafka_protocol::error::ResponseError::InvalidProducerEpoch.code()
    );
    cluster.assert_no_panic();
}

/// Connections to transactional id `id`'s coordinator and to the leader of an `eos-out`
/// partition that another broker leads, and that partition.
async fn split_txn(
    cluster: &mut StromCluster,
    any: &str,
    id: &str,
) -> (strom_client::Connection, strom_client::Connection, i32) {
    use strom_client::{Connection, ConnectionConfig};
    let coordinator = retry("transaction coordinator", || {
        let (code, node) = find_coordinator(any, 1, id);
        (code == 0).then_some(node)
    });
    let part = (0..3)
        .find(|p| {
            cluster
                .partition("eos-out", *p)
                .is_some_and(|v| v.leader != coordinator)
        })
        .expect("a partition led elsewhere");
    let leader = cluster.partition("eos-out", part).expect("p").leader;
    let config = ConnectionConfig::default();
    let to_coordinator = Connection::connect(cluster.node(coordinator).addr(), &config)
        .await
        .expect("connect");
    let to_leader = Connection::connect(cluster.node(leader).addr(), &config)
        .await
        .expect("connect");
    (to_coordinator, to_leader, part)
}
