//! DescribeUserScramCredentials and AlterUserScramCredentials against a real broker, sent raw so
//! the requests a careful client would never send (too few iterations, an unknown mechanism, the
//! same credential twice) get Kafka's per-user error codes; and `strom serve --add-scram`, which
//! writes a credential only when absent. (Logins with these credentials, by every client, are in
//! tests/compat/test_security.py.)

mod common;

use bytes::Bytes;
use common::{RawConn, StromProcess};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse, ApiKey,
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};
use kafka_protocol::protocol::StrBytes;

const SHA256: i8 = 1;
const SHA512: i8 = 2;

fn upsert(user: &str, mechanism: i8, iterations: i32) -> ScramCredentialUpsertion {
    ScramCredentialUpsertion::default()
        .with_name(StrBytes::from_string(user.into()))
        .with_mechanism(mechanism)
        .with_iterations(iterations)
        .with_salt(Bytes::from_static(b"0123456789abcdef"))
        .with_salted_password(Bytes::from(vec![7u8; 32]))
}

fn delete(user: &str, mechanism: i8) -> ScramCredentialDeletion {
    ScramCredentialDeletion::default()
        .with_name(StrBytes::from_string(user.into()))
        .with_mechanism(mechanism)
}

fn alter(
    conn: &mut RawConn,
    deletions: Vec<ScramCredentialDeletion>,
    upsertions: Vec<ScramCredentialUpsertion>,
) -> Vec<(String, i16)> {
    let req = AlterUserScramCredentialsRequest::default()
        .with_deletions(deletions)
        .with_upsertions(upsertions);
    let resp: AlterUserScramCredentialsResponse =
        conn.request(ApiKey::AlterUserScramCredentials, 0, 1, &req);
    resp.results
        .iter()
        .map(|r| (r.user.to_string(), r.error_code))
        .collect()
}

/// A user, its error code, and its (mechanism, iterations) pairs.
type Described = (String, i16, Vec<(i8, i32)>);

fn describe(conn: &mut RawConn, users: Option<&[&str]>) -> Vec<Described> {
    let req = DescribeUserScramCredentialsRequest::default().with_users(users.map(|us| {
        us.iter()
            .map(|u| UserName::default().with_name(StrBytes::from_string((*u).into())))
            .collect()
    }));
    let resp: DescribeUserScramCredentialsResponse =
        conn.request(ApiKey::DescribeUserScramCredentials, 0, 2, &req);
    assert_eq!(resp.error_code, 0);
    resp.results
        .iter()
        .map(|r| {
            let infos = r
                .credential_infos
                .iter()
                .map(|i| (i.mechanism, i.iterations))
                .collect();
            (r.user.to_string(), r.error_code, infos)
        })
        .collect()
}

fn code(e: ResponseError) -> i16 {
    e.code()
}

#[test]
fn alterations_get_kafkas_per_user_errors_and_apply_per_user() {
    let broker = StromProcess::start();
    let mut conn = RawConn::connect(broker.addr());

    let answers = alter(
        &mut conn,
        vec![delete("nobody", SHA256)],
        vec![
            upsert("alice", SHA256, 4096),
            upsert("alice", SHA512, 8192),
            upsert("weak", SHA256, 1000),
            upsert("strong", SHA256, 20000),
            upsert("odd", 9, 4096),
            upsert("twice", SHA256, 4096),
            upsert("twice", SHA256, 4096),
            upsert("", SHA256, 4096),
        ],
    );
    assert_eq!(
        answers,
        vec![
            ("nobody".into(), code(ResponseError::ResourceNotFound)),
            ("alice".into(), 0),
            ("weak".into(), code(ResponseError::UnacceptableCredential)),
            ("strong".into(), code(ResponseError::UnacceptableCredential)),
            ("odd".into(), code(ResponseError::UnsupportedSaslMechanism)),
            ("twice".into(), code(ResponseError::DuplicateResource)),
            ("".into(), code(ResponseError::UnacceptableCredential)),
        ]
    );
    // Only alice's credentials were written.
    assert_eq!(
        describe(&mut conn, None),
        vec![("alice".into(), 0, vec![(SHA256, 4096), (SHA512, 8192)])]
    );
    let described = describe(&mut conn, Some(&["alice", "weak", "weak"]));
    assert_eq!(
        described[0],
        ("alice".into(), 0, vec![(SHA256, 4096), (SHA512, 8192)])
    );
    assert_eq!(
        (described[1].0.as_str(), described[1].1),
        ("weak", code(ResponseError::DuplicateResource))
    );
    assert_eq!(described.len(), 2);

    // A user whose deletion fails keeps its other change unapplied too.
    let answers = alter(
        &mut conn,
        vec![delete("alice", SHA256), delete("alice", SHA512)],
        vec![],
    );
    assert_eq!(answers, vec![("alice".into(), 0)]);
    let answers = alter(
        &mut conn,
        vec![delete("alice", SHA256)],
        vec![upsert("alice", SHA512, 4096)],
    );
    assert_eq!(
        answers,
        vec![("alice".into(), code(ResponseError::ResourceNotFound))]
    );
    assert_eq!(
        describe(&mut conn, Some(&["alice"])),
        vec![(
            "alice".into(),
            code(ResponseError::ResourceNotFound),
            vec![]
        )]
    );
    broker.assert_no_panic();
}

#[test]
fn add_scram_writes_a_credential_only_when_absent() {
    let mut broker = StromProcess::start_with_args(&[
        "--add-scram",
        "SCRAM-SHA-256=[name=admin,password=first-secret,iterations=8192]",
    ]);
    let mut conn = RawConn::connect(broker.addr());
    assert_eq!(
        describe(&mut conn, Some(&["admin"])),
        vec![("admin".into(), 0, vec![(SHA256, 8192)])]
    );
    assert!(!broker.stderr().contains("first-secret"));
    // Changed through the admin API, then the broker restarts with the same flag: the flag does
    // not put the old credential back.
    let answers = alter(&mut conn, vec![], vec![upsert("admin", SHA256, 4096)]);
    assert_eq!(answers, vec![("admin".into(), 0)]);
    drop(conn);
    broker.restart();
    let mut conn = RawConn::connect(broker.addr());
    assert_eq!(
        describe(&mut conn, Some(&["admin"])),
        vec![("admin".into(), 0, vec![(SHA256, 4096)])]
    );
}

#[test]
fn a_malformed_add_scram_stops_the_start_with_a_clear_error() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_strom"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--add-scram",
            "SCRAM-SHA-256=[name=admin,password=x,iterations=10]",
        ])
        .output()
        .expect("running strom");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Iterations 10"), "{stderr}");
}
