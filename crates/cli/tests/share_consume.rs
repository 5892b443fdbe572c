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
use strom_client::{AlterConfigOp, Client, ConfigResource};

const TOPIC: &str = "orders";
const GROUP: &str = "workers";
const RECORDS: usize = 40;

/// Creates the topic and makes the group read it from the start (Kafka's default is latest,
/// which would skip records produced before the members join).
fn set_up(addr: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let client = Client::connect(addr).await.expect("connect");
        client
            .create_topic(TOPIC, 2, 1, &Default::default())
            .await
            .expect("create topic");
        client
            .alter_configs(
                &ConfigResource::Group(GROUP.into()),
                &[AlterConfigOp::Set(
                    "share.auto.offset.reset".into(),
                    "earliest".into(),
                )],
            )
            .await
            .expect("set share.auto.offset.reset");
    });
}

/// `strom produce` of `lines` (`key:value`) to the topic.
fn produce(addr: &str, lines: &[String]) {
    let mut child = strom_cli(&[
        "produce",
        "--topic",
        TOPIC,
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
    set_up(broker.addr());
    let all: Vec<String> = (0..RECORDS).map(|i| format!("k{i}:r{i}")).collect();
    produce(broker.addr(), &all);

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
    produce(broker.addr(), &["late:after".to_owned()]);
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
