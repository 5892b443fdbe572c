//! A 3-node cluster of real `strom serve` processes (combined broker + controller voters on
//! loopback): acks=all writes survive the partition leader's and the controller leader's
//! `kill -9`, a restarted node catches up and rejoins the ISR, replicas end byte-identical, two
//! dead nodes stop acks=all but not acks=1, and a leader's unreplicated tail is truncated when it
//! comes back as a follower; a client posing as the dead followers cannot make acks=all succeed;
//! groups and transactions survive a coordinator failover. The
//! cluster's administration and edge cases are in `cluster_admin.rs`.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::client_config;
use common::cluster::{
    acks_all_producer, create_replicated_topic, produce_range, StromCluster, FAST_FAILOVER, TOPIC,
};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

/// Reads `topic`-0 from the start on the cluster until `want` records arrived.
fn read_all(bootstrap: &str, topic: &str, want: usize) -> Vec<(i64, String)> {
    let c: BaseConsumer = client_config(bootstrap)
        .set("group.id", "strom-cluster-reader")
        .set("enable.auto.commit", "false")
        .set("topic.metadata.refresh.interval.ms", "500")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .expect("assignment");
    c.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while out.len() < want && std::time::Instant::now() < deadline {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
            let v = String::from_utf8_lossy(m.payload().unwrap_or_default()).to_string();
            out.push((m.offset(), v));
        }
    }
    out
}

/// Every acknowledged value is in the log exactly once, at its acknowledged offset, and values
/// appear in send order.
fn check_acknowledged(acked: &BTreeMap<u32, i64>, log: &[(i64, String)]) {
    let mut seen: BTreeMap<u32, i64> = BTreeMap::new();
    let mut last: Option<u32> = None;
    for (offset, v) in log {
        let v: u32 = v.parse().expect("numeric value");
        assert!(
            seen.insert(v, *offset).is_none(),
            "value {v} twice in the log"
        );
        if let Some(l) = last {
            assert!(v > l, "value {v} after {l}: out of order");
        }
        last = Some(v);
    }
    for (v, offset) in acked {
        assert_eq!(
            seen.get(v),
            Some(offset),
            "acknowledged value {v} (offset {offset}) missing or moved"
        );
    }
}

async fn failover_keeps_every_acknowledged_record(kill_controller: bool) {
    let mut cluster = StromCluster::start(3, FAST_FAILOVER);
    let bootstrap = cluster.bootstrap();
    create_replicated_topic(&bootstrap, TOPIC, 1, "2").await;
    cluster.wait_for("ISR of 3", |c| {
        c.partition(TOPIC, 0).is_some_and(|p| p.isr.len() == 3)
    });
    let producer = acks_all_producer(&bootstrap);
    let victim = if kill_controller {
        cluster.controller()
    } else {
        cluster.partition(TOPIC, 0).expect("partition").leader
    };
    assert!(victim > 0, "no victim found");
    let mut killed = false;
    let acked = {
        let c = &mut cluster;
        produce_range(&producer, 0, 3000, Some(1000), &mut || {
            c.node(victim).kill9();
            killed = true;
        })
        .await
    };
    assert!(killed);
    assert!(
        acked.len() >= 2900,
        "only {} of 3000 acknowledged after failover",
        acked.len()
    );
    cluster.wait_for("a new leader", |c| {
        c.partition(TOPIC, 0)
            .is_some_and(|p| p.leader > 0 && p.leader != victim)
    });
    // The killed node comes back, catches up and rejoins the ISR.
    cluster.node(victim).start_again();
    cluster.wait_for("the restarted node back in the ISR", |c| {
        c.partition(TOPIC, 0).is_some_and(|p| p.isr.len() == 3)
    });
    let more = produce_range(&producer, 3000, 3100, None, &mut || {}).await;
    assert_eq!(more.len(), 100, "acks=all after recovery");
    let mut all = acked.clone();
    all.extend(more);
    let log = read_all(&bootstrap, TOPIC, all.len());
    check_acknowledged(&all, &log);
    // Every replica holds the same bytes (followers write the leader's batches verbatim).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let a = cluster.log_bytes(1, TOPIC, 0);
        let b = cluster.log_bytes(2, TOPIC, 0);
        let c = cluster.log_bytes(3, TOPIC, 0);
        if a == b && b == c {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "replica logs differ: {} / {} / {} bytes",
            a.len(),
            b.len(),
            c.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    cluster.assert_no_panic();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_leader_killed_mid_stream_loses_no_acknowledged_record() {
    failover_keeps_every_acknowledged_record(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_leader_killed_mid_stream_loses_no_acknowledged_record() {
    failover_keeps_every_acknowledged_record(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_down_stop_acks_all_but_not_acks_1() {
    let mut cluster = StromCluster::start(3, FAST_FAILOVER);
    let bootstrap = cluster.bootstrap();
    create_replicated_topic(&bootstrap, TOPIC, 1, "2").await;
    cluster.wait_for("ISR of 3", |c| {
        c.partition(TOPIC, 0).is_some_and(|p| p.isr.len() == 3)
    });
    let leader = cluster.partition(TOPIC, 0).expect("partition").leader;
    let leader_addr = cluster.node(leader).addr().to_string();
    for id in 1..=3 {
        if id != leader {
            cluster.node(id).kill9();
        }
    }
    // acks=all: the quorum is gone, the ISR cannot shrink, the high watermark cannot move.
    let strict: FutureProducer = client_config(&leader_addr)
        .set("acks", "all")
        .set("message.timeout.ms", "6000")
        .set("request.timeout.ms", "2000")
        .create()
        .expect("producer");
    let r = strict
        .send(
            FutureRecord::to(TOPIC).key("k").payload("never"),
            Duration::from_secs(10),
        )
        .await;
    assert!(
        r.is_err(),
        "acks=all acknowledged with 2 of 3 nodes down: {r:?}"
    );
    // acks=1: the leader alone acknowledges.
    let relaxed: FutureProducer = client_config(&leader_addr)
        .set("acks", "1")
        .set("message.timeout.ms", "10000")
        .create()
        .expect("producer");
    let d = relaxed
        .send(
            FutureRecord::to(TOPIC).key("k").payload("leader-only"),
            Duration::from_secs(10),
        )
        .await
        .expect("acks=1 on the surviving leader");
    assert!(d.offset >= 0);
    cluster.assert_no_panic();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_follower_fetches_cannot_complete_acks_all_while_the_followers_are_down() {
    use common::{forged_follower_fetch, RawConn};
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse, TopicName};
    use kafka_protocol::protocol::StrBytes;

    let mut cluster = StromCluster::start(3, FAST_FAILOVER);
    let bootstrap = cluster.bootstrap();
    create_replicated_topic(&bootstrap, TOPIC, 1, "2").await;
    cluster.wait_for("ISR of 3", |c| {
        c.partition(TOPIC, 0).is_some_and(|p| p.isr.len() == 3)
    });
    let leader = cluster.partition(TOPIC, 0).expect("partition").leader;
    let leader_addr = cluster.node(leader).addr().to_string();
    let followers: Vec<i32> = (1..=3).filter(|id| *id != leader).collect();
    for id in &followers {
        cluster.node(*id).kill9();
    }
    // The quorum is gone with them: the ISR stays {1,2,3}, so only the followers' fetches could
    // move the high watermark over a new write.
    let mut producer = RawConn::connect(&leader_addr);
    let batch = {
        use kafka_protocol::records::{
            Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
        };
        let r = Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: 0,
            sequence: -1,
            timestamp: strom_now_ms(),
            key: None,
            value: Some(bytes::Bytes::from_static(b"forged-ack?")),
            headers: Default::default(),
        };
        let mut buf = bytes::BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            [&r],
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .expect("batch");
        buf.freeze()
    };
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(4000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch))])]);
    producer.send_request(ApiKey::Produce, 9, 9, 1, &req);
    // Pose as each dead follower: with no epoch (v12), a guessed one (v15), and none (v15, -1).
    let mut forger = RawConn::connect(&leader_addr);
    for id in &followers {
        for (version, epoch) in [(12, -1), (15, 1), (15, -1), (15, i64::MAX)] {
            let code = forged_follower_fetch(&mut forger, TOPIC, *id, version, epoch);
            assert_ne!(
                code, 0,
                "a forged fetch as broker {id} (v{version}) was served"
            );
        }
    }
    producer
        .stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    let resp: ProduceResponse = producer.read_response(ApiKey::Produce, 9, 1);
    let code = resp.responses[0].partition_responses[0].error_code;
    assert_ne!(
        code, 0,
        "acks=all was acknowledged with both followers dead: forged fetches moved the high watermark"
    );
    cluster.assert_no_panic();
}

fn strom_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreplicated_tail_of_a_dead_leader_is_truncated_when_it_returns() {
    let mut cluster = StromCluster::start(3, FAST_FAILOVER);
    let bootstrap = cluster.bootstrap();
    create_replicated_topic(&bootstrap, TOPIC, 1, "1").await;
    cluster.wait_for("ISR of 3", |c| {
        c.partition(TOPIC, 0).is_some_and(|p| p.isr.len() == 3)
    });
    let producer = acks_all_producer(&bootstrap);
    let acked = produce_range(&producer, 0, 100, None, &mut || {}).await;
    assert_eq!(acked.len(), 100);
    let old = cluster.partition(TOPIC, 0).expect("partition").leader;
    let old_addr = cluster.node(old).addr().to_string();
    // Freeze the followers, write to the leader alone (acks=1), then kill it: those records exist
    // only on the dead leader. Both followers must be in the ISR so one can take over.
    cluster.wait_for("ISR of 3 before freezing", |c| {
        c.partition(TOPIC, 0).is_some_and(|p| p.isr.len() == 3)
    });
    let followers: Vec<i32> = (1..=3).filter(|&i| i != old).collect();
    for &f in &followers {
        cluster.node(f).pause();
    }
    // Fetches already waiting at the leader would carry new records into the frozen followers'
    // socket buffers (legitimately replicating them): let them time out empty first.
    std::thread::sleep(Duration::from_secs(1));
    let lonely: FutureProducer = client_config(&old_addr)
        .set("acks", "1")
        .set("message.timeout.ms", "5000")
        .create()
        .expect("producer");
    for i in 0..5 {
        lonely
            .send(
                FutureRecord::to(TOPIC)
                    .key("k")
                    .payload(&format!("lost-{i}")),
                Duration::from_secs(5),
            )
            .await
            .expect("acks=1 on the isolated leader");
    }
    cluster.node(old).kill9();
    for &f in &followers {
        cluster.node(f).resume();
    }
    cluster.wait_for("a new leader", |c| {
        c.partition(TOPIC, 0)
            .is_some_and(|p| p.leader > 0 && p.leader != old)
    });
    let more = produce_range(&producer, 100, 150, None, &mut || {}).await;
    assert_eq!(more.len(), 50);
    cluster.node(old).start_again();
    cluster.wait_for("the old leader back in the ISR", |c| {
        c.partition(TOPIC, 0).is_some_and(|p| p.isr.len() == 3)
    });
    let new_leader = cluster.partition(TOPIC, 0).expect("partition").leader;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let a = cluster.log_bytes(old, TOPIC, 0);
        let b = cluster.log_bytes(new_leader, TOPIC, 0);
        if a == b {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the old leader's log still differs: {} vs {} bytes",
            a.len(),
            b.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut all = acked;
    all.extend(more);
    let log = read_all(&bootstrap, TOPIC, all.len());
    assert!(
        log.iter().all(|(_, v)| !v.starts_with("lost-")),
        "unreplicated records survived: {log:?}"
    );
    check_acknowledged(&all, &log);
    cluster.assert_no_panic();
}

/// The coordinator node of `key` (`key_type` 0 = group, 1 = transaction), asked of any running
/// node, once it is a running node.
fn coordinator_of(cluster: &mut StromCluster, key: &str, key_type: i8) -> i32 {
    use kafka_protocol::messages::{ApiKey, FindCoordinatorRequest, FindCoordinatorResponse};
    use kafka_protocol::protocol::StrBytes;
    let mut found = -1;
    cluster.wait_for("a coordinator", |c| {
        for n in &c.nodes {
            if !n.is_running() {
                continue;
            }
            let mut conn = common::RawConn::connect(n.addr());
            let resp: FindCoordinatorResponse = conn.request(
                ApiKey::FindCoordinator,
                3,
                7,
                &FindCoordinatorRequest::default()
                    .with_key(StrBytes::from_string(key.to_string()))
                    .with_key_type(key_type),
            );
            let id = resp.node_id.0;
            if resp.error_code == 0 && id > 0 && c.nodes[(id - 1) as usize].is_running() {
                found = id;
                return true;
            }
        }
        false
    });
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_and_transactions_survive_a_coordinator_failover() {
    use rdkafka::consumer::CommitMode;
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let mut cluster = StromCluster::start(3, FAST_FAILOVER);
    let bootstrap = cluster.bootstrap();
    create_replicated_topic(&bootstrap, TOPIC, 1, "2").await;
    let producer = acks_all_producer(&bootstrap);
    assert_eq!(
        produce_range(&producer, 0, 100, None, &mut || {})
            .await
            .len(),
        100
    );

    // A group member reads 50 records and commits.
    let group_consumer = |b: &str| -> BaseConsumer {
        client_config(b)
            .set("group.id", "failover-group")
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "6000")
            .create()
            .expect("group consumer")
    };
    let c = group_consumer(&bootstrap);
    c.subscribe(&[TOPIC]).expect("subscribe");
    let mut read = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while read < 50 && std::time::Instant::now() < deadline {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
            read += 1;
            if read == 50 {
                c.commit_message(&m, CommitMode::Sync).expect("commit");
            }
        }
    }
    assert_eq!(read, 50);
    drop(c);

    // A transaction commits through its coordinator.
    let txn_producer: BaseProducer = client_config(&bootstrap)
        .set("transactional.id", "failover-txn")
        .set("transaction.timeout.ms", "30000")
        .create()
        .expect("transactional producer");
    let t = Duration::from_secs(30);
    txn_producer
        .init_transactions(t)
        .expect("init transactions");
    txn_producer.begin_transaction().expect("begin");
    for i in 0..10 {
        txn_producer
            .send(
                BaseRecord::to(TOPIC)
                    .key("t")
                    .payload(&format!("txn-a-{i}")),
            )
            .expect("send");
    }
    txn_producer.commit_transaction(t).expect("commit");

    // Kill the group coordinator, then the transaction coordinator if it is another node.
    let group_coord = coordinator_of(&mut cluster, "failover-group", 0);
    let txn_coord = coordinator_of(&mut cluster, "failover-txn", 1);
    cluster.node(group_coord).kill9();
    if txn_coord != group_coord {
        cluster.node(txn_coord).kill9();
        // Two of three down would stop the quorum: bring the first back.
        cluster.node(group_coord).start_again();
    }
    let new_group_coord = coordinator_of(&mut cluster, "failover-group", 0);
    assert_ne!(new_group_coord, group_coord, "coordination moved");

    // The committed offset survived: a new member resumes at 50.
    let c = group_consumer(&bootstrap);
    c.subscribe(&[TOPIC]).expect("subscribe");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let first = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "no record after failover"
        );
        if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
            break m.offset();
        }
    };
    assert_eq!(
        first, 50,
        "the group resumed at {first}, not at its committed offset"
    );
    drop(c);

    // The transactional id keeps working with its new coordinator.
    txn_producer
        .begin_transaction()
        .expect("begin after failover");
    for i in 0..10 {
        txn_producer
            .send(
                BaseRecord::to(TOPIC)
                    .key("t")
                    .payload(&format!("txn-b-{i}")),
            )
            .expect("send");
    }
    txn_producer
        .commit_transaction(t)
        .unwrap_or_else(|e| panic!("commit after failover: {e}{}", cluster.log_tails()));
    let committed: BaseConsumer = client_config(&bootstrap)
        .set("group.id", "failover-reader")
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(TOPIC, 0, Offset::Beginning)
        .expect("assignment");
    committed.assign(&tpl).expect("assign");
    let mut txn_values = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while txn_values.len() < 20 && std::time::Instant::now() < deadline {
        if let Some(Ok(m)) = committed.poll(Duration::from_millis(200)) {
            let v = String::from_utf8_lossy(m.payload().unwrap_or_default()).to_string();
            if v.starts_with("txn-") {
                txn_values.push(v);
            }
        }
    }
    assert_eq!(
        txn_values.len(),
        20,
        "committed transactional records: {txn_values:?}"
    );
    cluster.assert_no_panic();
}
