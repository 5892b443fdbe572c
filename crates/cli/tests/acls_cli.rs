//! `strom acls` and `strom quotas` run as the real binary against a real broker: ACLs added,
//! listed (all, by resource, by MATCH, by principal), removed by entry and by resource, with
//! kafka-acls' output lines; quotas set, described and deleted with kafka-configs' lines; and a
//! broker without an authorizer answering SECURITY_DISABLED, which the CLI explains and exits
//! non-zero on.
//!
//! The broker runs the StandardAuthorizer with `User:ANONYMOUS` (every PLAINTEXT client) as a
//! super user, so the CLI may alter ACLs. A change is in the broker's metadata image a moment
//! after the request commits, so reads after writes poll, bounded.

mod common;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::StromProcess;

const AUTHORIZER: &str =
    "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer";

fn strom(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strom"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("running strom")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `strom ARGS --bootstrap-server ADDR`, asserts success, returns stdout.
fn ok(broker: &StromProcess, args: &[&str]) -> String {
    let mut argv = args.to_vec();
    argv.extend(["--bootstrap-server", broker.addr()]);
    let out = strom(&argv);
    let (stdout, stderr) = text(&out);
    assert!(
        out.status.success(),
        "strom {argv:?} failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    stdout
}

/// Runs `strom ARGS --bootstrap-server ADDR`, asserts failure, returns stderr.
fn fails(broker: &StromProcess, args: &[&str]) -> String {
    let mut argv = args.to_vec();
    argv.extend(["--bootstrap-server", broker.addr()]);
    let out = strom(&argv);
    let (stdout, stderr) = text(&out);
    assert!(
        !out.status.success(),
        "strom {argv:?} succeeded\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    stderr
}

/// Runs `strom ARGS` until its stdout satisfies `done` (10 s at most); returns that stdout.
fn eventually(broker: &StromProcess, args: &[&str], done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stdout = ok(broker, args);
        if done(&stdout) {
            return stdout;
        }
        assert!(
            Instant::now() < deadline,
            "strom {args:?} never got there; last stdout:\n{stdout}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

const ORDERS_PREFIXED: &str = "Current ACLs for resource `ResourcePattern(resourceType=TOPIC, \
                               name=orders, patternType=PREFIXED)`:";
const ALICE_READS: &str = "\t(principal=User:alice, host=*, operation=READ, permissionType=ALLOW)";

#[test]
fn acls_are_added_listed_and_removed_like_kafka_acls() {
    let broker = StromProcess::start_with_args(&[
        "--set",
        AUTHORIZER,
        "--set",
        "super.users=User:ANONYMOUS",
    ]);

    let out = ok(
        &broker,
        &[
            "acls",
            "add",
            "--allow-principal",
            "User:alice",
            "--operation",
            "Read",
            "--topic",
            "orders",
            "--resource-pattern-type",
            "prefixed",
        ],
    );
    assert!(
        out.contains(
            "Adding ACLs for resource `ResourcePattern(resourceType=TOPIC, name=orders, \
             patternType=PREFIXED)`:"
        ),
        "{out}"
    );
    assert!(out.contains(ALICE_READS), "{out}");

    // Every ACL, grouped by resource.
    let listed = eventually(&broker, &["acls", "list"], |o| o.contains(ALICE_READS));
    assert!(listed.contains(ORDERS_PREFIXED), "{listed}");
    assert_eq!(
        listed.lines().filter(|l| l.starts_with('\t')).count(),
        1,
        "{listed}"
    );

    // By resource: the literal `orders` has no ACL; MATCH on a topic the prefix covers finds it.
    let literal = ok(&broker, &["acls", "list", "--topic", "orders"]);
    assert!(!literal.contains(ALICE_READS), "{literal}");
    let matched = ok(
        &broker,
        &[
            "acls",
            "list",
            "--topic",
            "orders-eu",
            "--resource-pattern-type",
            "match",
        ],
    );
    assert!(matched.contains(ORDERS_PREFIXED), "{matched}");
    assert!(matched.contains(ALICE_READS), "{matched}");

    // By principal.
    let bob = ok(&broker, &["acls", "list", "--principal", "User:bob"]);
    assert!(bob.contains("ACLs for principal `User:bob`"), "{bob}");
    assert!(!bob.contains(ALICE_READS), "{bob}");
    let alice = ok(&broker, &["acls", "list", "--principal", "User:alice"]);
    assert!(alice.contains(ALICE_READS), "{alice}");

    // The producer shortcut, with IdempotentWrite on the cluster.
    ok(
        &broker,
        &[
            "acls",
            "add",
            "--allow-principal",
            "User:p",
            "--producer",
            "--topic",
            "payments",
            "--idempotent",
        ],
    );
    let listed = eventually(&broker, &["acls", "list"], |o| {
        o.contains("IDEMPOTENT_WRITE")
    });
    assert!(
        listed.contains(
            "Current ACLs for resource `ResourcePattern(resourceType=CLUSTER, \
             name=kafka-cluster, patternType=LITERAL)`:"
        ),
        "{listed}"
    );
    for op in ["WRITE", "DESCRIBE", "CREATE"] {
        let line = format!("\t(principal=User:p, host=*, operation={op}, permissionType=ALLOW)");
        assert!(listed.contains(&line), "{line} missing:\n{listed}");
    }

    // Without --force and with no answer on stdin, remove asks and removes nothing.
    let asked = ok(&broker, &["acls", "remove", "--topic", "payments"]);
    assert!(asked.contains("Are you sure"), "{asked}");
    assert!(!asked.contains("Removed"), "{asked}");

    // Remove one entry, naming it.
    let removed = ok(
        &broker,
        &[
            "acls",
            "remove",
            "--allow-principal",
            "User:alice",
            "--operation",
            "Read",
            "--topic",
            "orders",
            "--resource-pattern-type",
            "prefixed",
            "--force",
        ],
    );
    assert!(
        removed.contains(
            "Removed ACLs for resource `ResourcePattern(resourceType=TOPIC, name=orders, \
             patternType=PREFIXED)`:"
        ),
        "{removed}"
    );
    assert!(removed.contains(ALICE_READS), "{removed}");

    // Remove every ACL of two resources, naming only the resources.
    let removed = ok(
        &broker,
        &[
            "acls",
            "remove",
            "--topic",
            "payments",
            "--cluster",
            "--force",
        ],
    );
    assert_eq!(
        removed.lines().filter(|l| l.starts_with('\t')).count(),
        4,
        "{removed}"
    );

    let listed = eventually(&broker, &["acls", "list"], |o| o.trim().is_empty());
    assert_eq!(listed, "");
    broker.assert_no_panic();
}

#[test]
fn quotas_are_set_described_and_deleted_like_kafka_configs() {
    let broker = StromProcess::start();

    let out = ok(
        &broker,
        &[
            "quotas",
            "alter",
            "--user",
            "alice",
            "--add-config",
            "producer_byte_rate=1048576",
        ],
    );
    assert!(
        out.contains("Completed updating quotas of user-principal 'alice'."),
        "{out}"
    );
    let alice_line = "Quota configs for user-principal 'alice' are producer_byte_rate=1048576";
    let described = eventually(&broker, &["quotas", "describe", "--user", "alice"], |o| {
        o.contains(alice_line)
    });
    assert_eq!(described.lines().count(), 1, "{described}");

    // The default user, and a user + client-id entity; describing everything shows all three,
    // describing alice shows alice only (kafka-configs' containsOnly).
    ok(
        &broker,
        &[
            "quotas",
            "alter",
            "--user-defaults",
            "--add-config",
            "consumer_byte_rate=2048,producer_byte_rate=4096",
        ],
    );
    ok(
        &broker,
        &[
            "quotas",
            "alter",
            "--user",
            "alice",
            "--client-id",
            "app",
            "--add-config",
            "request_percentage=12.5",
        ],
    );
    let all = eventually(&broker, &["quotas", "describe"], |o| o.lines().count() == 3);
    assert!(all.contains(alice_line), "{all}");
    assert!(
        all.contains(
            "Quota configs for the default user-principal are consumer_byte_rate=2048, \
             producer_byte_rate=4096"
        ),
        "{all}"
    );
    assert!(
        all.contains(
            "Quota configs for user-principal 'alice', client-id 'app' are request_percentage=12.5"
        ),
        "{all}"
    );
    let alice = ok(&broker, &["quotas", "describe", "--user", "alice"]);
    assert_eq!(alice.trim(), alice_line);
    let defaults = ok(&broker, &["quotas", "describe", "--user-defaults"]);
    assert!(
        defaults.contains("the default user-principal"),
        "{defaults}"
    );

    // Deleting: the key goes; deleting it again is refused before sending.
    ok(
        &broker,
        &[
            "quotas",
            "alter",
            "--user",
            "alice",
            "--delete-config",
            "producer_byte_rate",
        ],
    );
    let gone = eventually(&broker, &["quotas", "describe", "--user", "alice"], |o| {
        !o.contains("producer_byte_rate")
    });
    assert!(
        gone.contains("No quota configs for user-principal 'alice'"),
        "{gone}"
    );
    let err = fails(
        &broker,
        &[
            "quotas",
            "alter",
            "--user",
            "alice",
            "--delete-config",
            "producer_byte_rate",
        ],
    );
    assert!(
        err.contains("Invalid config(s): producer_byte_rate"),
        "{err}"
    );

    // A key Kafka does not know is the broker's INVALID_REQUEST.
    let err = fails(
        &broker,
        &[
            "quotas",
            "alter",
            "--user",
            "alice",
            "--add-config",
            "bogus_rate=1",
        ],
    );
    assert!(err.contains("INVALID_REQUEST"), "{err}");
    broker.assert_no_panic();
}

#[test]
fn without_an_authorizer_acl_commands_explain_security_disabled() {
    let broker = StromProcess::start();
    let err = fails(
        &broker,
        &[
            "acls",
            "add",
            "--allow-principal",
            "User:alice",
            "--operation",
            "Read",
            "--topic",
            "orders",
        ],
    );
    assert!(err.contains("SECURITY_DISABLED"), "{err}");
    assert!(err.contains("authorizer.class.name"), "{err}");
    assert!(err.contains("1 of 1 ACL(s) not created"), "{err}");

    let err = fails(&broker, &["acls", "list"]);
    assert!(err.contains("SECURITY_DISABLED"), "{err}");
    let err = fails(&broker, &["acls", "remove", "--topic", "orders", "--force"]);
    assert!(err.contains("SECURITY_DISABLED"), "{err}");
    broker.assert_no_panic();
}
