//! `--command-config FILE` on the `strom` client commands, run as the real binary: accepted at any
//! subcommand level, applied to the connections the command makes (a SASL file against a
//! PLAINTEXT broker fails in the SASL handshake instead of being ignored), and errors that name
//! the file and the key. Also `strom users`' help, which states the kafka-configs equivalents.
//! (TLS and SASL logins themselves are tested in crates/client/tests/security.rs against a mock
//! broker; the broker's own SASL listeners are tested with the broker.)

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::StromProcess;

fn strom(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strom"))
        .args(args)
        .output()
        .expect("running strom")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, body).expect("writing properties");
    path.to_str().expect("utf-8 path").to_owned()
}

#[test]
fn command_config_is_taken_at_any_level_and_applied_to_connections() {
    let broker = StromProcess::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let plaintext = write(
        dir.path(),
        "plain.properties",
        "security.protocol=PLAINTEXT\n",
    );
    let addr = broker.addr();

    let out = strom(&[
        "topics",
        "create",
        "secured",
        "--partitions",
        "2",
        "--bootstrap-server",
        addr,
        "--command-config",
        &plaintext,
    ]);
    assert!(out.status.success(), "{:?}", text(&out));
    let out = strom(&[
        "topics",
        "--command-config",
        &plaintext,
        "list",
        "--bootstrap-server",
        addr,
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.lines().any(|l| l == "secured"), "{stdout}");

    // A SASL login against a PLAINTEXT-only broker: the file was applied, so the command fails
    // in the SASL exchange rather than quietly connecting without one.
    let sasl = write(
        dir.path(),
        "sasl.properties",
        "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\n\
         sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"u\" password=\"pw-not-shown\";\n",
    );
    let out = strom(&[
        "topics",
        "list",
        "--bootstrap-server",
        addr,
        "--command-config",
        &sasl,
    ]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.to_lowercase().contains("sasl"), "{stderr}");
    assert!(!stderr.contains("pw-not-shown"), "{stderr}");
    broker.assert_no_panic();
}

#[test]
fn command_config_errors_name_the_file_and_the_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let incomplete = write(
        dir.path(),
        "c.properties",
        "security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\n",
    );
    // No broker is needed: the file is read and checked before any connection.
    let out = strom(&[
        "cluster",
        "describe",
        "--bootstrap-server",
        "127.0.0.1:1",
        "--command-config",
        &incomplete,
    ]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains(&incomplete), "{stderr}");
    assert!(stderr.contains("sasl.jaas.config"), "{stderr}");

    let unknown = write(dir.path(), "p.properties", "security.protocol=TLS\n");
    let out = strom(&["groups", "list", "--command-config", &unknown]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("security.protocol"), "{stderr}");

    let missing = dir.path().join("absent.properties");
    let out = strom(&[
        "users",
        "list",
        "--command-config",
        missing.to_str().expect("utf-8"),
    ]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("absent.properties"), "{stderr}");
}

#[test]
fn users_help_states_the_kafka_configs_equivalents() {
    for (sub, expected) in [
        (
            "create",
            "--add-config 'SCRAM-SHA-256=[iterations=4096,password=P]' --entity-type users",
        ),
        ("list", "--describe --entity-type users"),
        (
            "delete",
            "--delete-config 'SCRAM-SHA-256' --entity-type users",
        ),
    ] {
        let out = strom(&["users", sub, "--help"]);
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{stderr}");
        assert!(
            stdout.contains("kafka-configs") && stdout.contains(expected),
            "{sub}: {stdout}"
        );
    }
    let out = strom(&[
        "users",
        "create",
        "alice",
        "--password",
        "p",
        "--iterations",
        "100",
    ]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("4096"), "Kafka's iteration range: {stderr}");
}
