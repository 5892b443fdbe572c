//! `strom consume --share-group` run as the real binary against a real `strom serve`: two
//! members of one share group, each stopping at `--max-messages`, print every record of a
//! 2-partition topic exactly once between them; after kill -9 of the broker a third member gets
//! only a record produced since (the accepted ones stay accepted: the acknowledgements were
//! durable) and leaves cleanly on Ctrl-C. Records come from `strom produce`; the topic and the
//! group's `share.auto.offset.reset=earliest` are set up with strom-client.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{strom_cli, StromProcess};
use strom_client::{
    AcknowledgeType, AlterConfigOp, Client, ConfigResource, ShareConsumer, ShareConsumerConfig,
    ShareRecord,
};

const TOPIC: &str = "orders";
const GROUP: &str = "workers";
const RECORDS: usize = 40;

/// Creates `topic` and makes `group` read it from the start (Kafka's default is latest, which
/// would skip records produced before the members join).
async fn set_up(addr: &str, topic: &str, partitions: i32, group: &str) {
    let client = Client::connect(addr).await.expect("connect");
    client
        .create_topic(topic, partitions, 1, &Default::default())
        .await
        .expect("create topic");
    client
        .alter_configs(
            &ConfigResource::Group(group.into()),
            &[AlterConfigOp::Set(
                "share.auto.offset.reset".into(),
                "earliest".into(),
            )],
        )
        .await
        .expect("set share.auto.offset.reset");
}

/// `strom produce` of `lines` (`key:value`) to `topic`.
fn produce(addr: &str, topic: &str, lines: &[String]) {
    let mut child = strom_cli(&[
        "produce",
        "--topic",
        topic,
        "--key-separator",
        ":",
        "--bootstrap-server",
        addr,
    ])
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawning strom produce");
    let mut stdin = child.stdin.take().expect("stdin");
    for l in lines {
        writeln!(stdin, "{l}").expect("writing to strom produce");
    }
    drop(stdin);
    let out = wait_output(child, Duration::from_secs(30));
    assert!(out.status.success(), "strom produce failed: {}", text(&out));
}

fn share_consumer(addr: &str, extra: &[&str]) -> Child {
    let mut args = vec![
        "consume",
        "--share-group",
        GROUP,
        "--topic",
        TOPIC,
        "--print-key",
        "--bootstrap-server",
        addr,
    ];
    args.extend_from_slice(extra);
    strom_cli(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning strom consume")
}

/// Waits for `child` to exit within `limit` (killing it and failing otherwise).
fn wait_output(mut child: Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("waiting for strom").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("collecting output");
            panic!("strom did not exit within {limit:?}: {}", text(&out));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("collecting output")
}

fn text(out: &Output) -> String {
    format!(
        "{}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn share_group_members_split_the_records_and_accepted_ones_survive_kill_9() {
    let mut broker = StromProcess::start();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(set_up(broker.addr(), TOPIC, 2, GROUP));
    let all: Vec<String> = (0..RECORDS).map(|i| format!("k{i}:r{i}")).collect();
    produce(broker.addr(), TOPIC, &all);

    // Two members at once, each printing half of the records.
    let half = (RECORDS / 2).to_string();
    let a = share_consumer(broker.addr(), &["--max-messages", &half]);
    let b = share_consumer(broker.addr(), &["--max-messages", &half]);
    let (a, b) = (
        wait_output(a, Duration::from_secs(60)),
        wait_output(b, Duration::from_secs(60)),
    );
    assert!(a.status.success(), "first member: {}", text(&a));
    assert!(b.status.success(), "second member: {}", text(&b));
    let (a, b) = (lines(&a), lines(&b));
    assert_eq!(a.len(), RECORDS / 2, "first member printed {a:?}");
    assert_eq!(b.len(), RECORDS / 2, "second member printed {b:?}");
    let printed: BTreeSet<String> = a.iter().chain(&b).map(|l| l.replace('\t', ":")).collect();
    let expected: BTreeSet<String> = all.iter().cloned().collect();
    assert_eq!(printed, expected, "every record exactly once");

    // The acceptances are durable: after kill -9 nothing printed comes back, a new record does.
    broker.kill9();
    broker.start_again();
    produce(broker.addr(), TOPIC, &["late:after".to_owned()]);
    let mut c = share_consumer(broker.addr(), &[]);
    let stdout = c.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap_or_default()).is_err() {
                return;
            }
        }
    });
    let first = rx.recv_timeout(Duration::from_secs(30));
    // Anything else the member would be given arrives with it or soon after.
    std::thread::sleep(Duration::from_secs(2));
    let st = std::process::Command::new("kill")
        .args(["-INT", &c.id().to_string()])
        .status()
        .expect("running kill");
    assert!(st.success(), "kill -INT failed");
    let out = wait_output(c, Duration::from_secs(20));
    reader.join().expect("stdout reader");
    let rest: Vec<String> = rx.try_iter().collect();
    assert_eq!(
        first.as_deref(),
        Ok("late\tafter"),
        "third member: {}",
        text(&out)
    );
    assert!(rest.is_empty(), "delivered again after kill -9: {rest:?}");
    assert!(out.status.success(), "Ctrl-C exit: {}", text(&out));
    broker.assert_no_panic();
}

#[test]
fn share_group_conflicts_with_group_partition_and_offset() {
    for extra in [
        &["--group", "g"][..],
        &["--partition", "0"][..],
        &["--partition", "0", "--offset", "0"][..],
        &["--from-beginning"][..],
    ] {
        let mut args = vec!["consume", "--share-group", GROUP, "--topic", TOPIC];
        args.extend_from_slice(extra);
        let out = strom_cli(&args)
            .stdin(Stdio::null())
            .output()
            .expect("running strom");
        assert!(!out.status.success(), "{args:?} accepted: {}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("cannot be used with"),
            "{args:?}: {}",
            text(&out)
        );
    }
}

/// Polls until `n` records arrived (failing after 15 s), then returns them.
async fn poll_records(c: &mut ShareConsumer, n: usize) -> Vec<ShareRecord> {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut out = Vec::new();
    while out.len() < n {
        assert!(Instant::now() < deadline, "got only {out:?}");
        out.extend(c.poll().await.expect("poll"));
    }
    out
}

fn offsets_and_counts(rs: &[ShareRecord]) -> Vec<(i64, i16)> {
    rs.iter()
        .map(|r| (r.record.offset, r.delivery_count))
        .collect()
}

/// The client's acknowledgement types and paths: ACCEPT and REJECT are final, RELEASE
/// redelivers with the next delivery count (sent by `commit`, ShareAcknowledge), and `close`
/// gives an unacknowledged record back at once, not after the 30 s lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn share_consumer_accept_release_reject_commit_and_close() {
    let broker = StromProcess::start();
    let (topic, group) = ("acks", "ackers");
    set_up(broker.addr(), topic, 1, group).await;
    let lines: Vec<String> = (0..3).map(|i| format!("k{i}:v{i}")).collect();
    produce(broker.addr(), topic, &lines);
    let client = Client::connect(broker.addr()).await.expect("connect");

    let mut c = ShareConsumer::new(client.clone(), ShareConsumerConfig::new(group));
    c.subscribe(&[topic]);
    let first = poll_records(&mut c, 3).await;
    assert_eq!(offsets_and_counts(&first), vec![(0, 1), (1, 1), (2, 1)]);
    c.acknowledge(&first[0], AcknowledgeType::Accept);
    c.acknowledge(&first[1], AcknowledgeType::Release);
    c.acknowledge(&first[2], AcknowledgeType::Reject);
    c.commit().await.expect("commit");
    let again = poll_records(&mut c, 1).await;
    assert_eq!(
        offsets_and_counts(&again),
        vec![(1, 2)],
        "only the released"
    );
    c.close().await.expect("close"); // holding offset 1, unacknowledged

    let mut d = ShareConsumer::new(client, ShareConsumerConfig::new(group));
    d.subscribe(&[topic]);
    let started = Instant::now();
    let back = poll_records(&mut d, 1).await;
    assert_eq!(offsets_and_counts(&back), vec![(1, 3)]);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "released by close, not by lock expiry"
    );
    d.acknowledge(&back[0], AcknowledgeType::Accept);
    let quiet_until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < quiet_until {
        let extra = d.poll().await.expect("poll");
        assert!(extra.is_empty(), "delivered after ACCEPT/REJECT: {extra:?}");
    }
    d.close().await.expect("close");
    broker.assert_no_panic();
}

/// The member outlives the broker's memory of it: after kill -9 (share-group membership is in
/// memory; the broker comes back on the same port) the next heartbeat answers UNKNOWN_MEMBER_ID
/// and the member rejoins with the same id, and its fetches open a new share session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn share_consumer_rejoins_after_the_broker_forgets_it() {
    let port = common::cluster::free_port();
    let mut broker = StromProcess::launch(&format!("127.0.0.1:{port}"), &[]);
    broker.wait_ready();
    let (topic, group) = ("rejoin", "rejoiners");
    set_up(broker.addr(), topic, 1, group).await;
    produce(broker.addr(), topic, &["k:before".to_owned()]);
    let client = Client::connect(broker.addr()).await.expect("connect");
    let mut c = ShareConsumer::new(client.clone(), ShareConsumerConfig::new(group));
    c.subscribe(&[topic]);
    let got = poll_records(&mut c, 1).await;
    c.acknowledge(&got[0], AcknowledgeType::Accept);
    c.commit().await.expect("commit"); // else the acceptance waits for the next fetch
    let (member_id, epoch) = c.member();
    assert!(epoch > 0, "joined with epoch {epoch}");

    broker.kill9();
    broker.start_again();
    assert_eq!(broker.port(), port);
    produce(broker.addr(), topic, &["k:after".to_owned()]);
    let got = poll_records(&mut c, 1).await;
    assert_eq!(got[0].record.value.as_deref(), Some(&b"after"[..]));
    c.acknowledge(&got[0], AcknowledgeType::Accept);

    // Heartbeats come every 5 s: within a few the coordinator knows the member again.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let described = client.describe_share_group(group).await.expect("describe");
        if described
            .members
            .iter()
            .any(|m| m.member_id == member_id && m.member_epoch > 0)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "member {member_id} did not rejoin: {described:?}"
        );
        let extra = c.poll().await.expect("poll");
        assert!(extra.is_empty(), "delivered again: {extra:?}");
    }
    c.close().await.expect("close");
    broker.assert_no_panic();
}
