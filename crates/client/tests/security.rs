//! The client over TLS and SASL against the mock broker (`support/security.rs`) speaking TLS with
//! `TestPki` certificates and SASL with strom-security's servers: SCRAM over TLS then requests on
//! the bootstrap and broker connections, the broker's message on a wrong password, an untrusted
//! CA refused in the handshake, UNSUPPORTED_SASL_MECHANISM naming the enabled mechanisms, PLAIN
//! and OAUTHBEARER logins, KIP-368 re-authentication on the same connection with pipelined
//! requests, and SCRAM users created and deleted through the admin APIs.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, MetadataRequest};
use strom_client::*;
use strom_security::test_support::{claims, JwtAlg, TestJwtKeys, TestPki};
use support::security::tls_acceptor;
use support::{fast_config, start_mock_with, Mock, MockOptions, MockSasl, TOPIC};

/// A `--command-config` file with `lines`, loaded as the CLI does.
fn load(pki: &TestPki, name: &str, lines: &[String]) -> Security {
    let path = pki.dir().join(name);
    std::fs::write(&path, lines.join("\n")).unwrap();
    Security::load(&path).unwrap()
}

fn scram_file(mechanism: &str, user: &str, password: &str) -> Vec<String> {
    vec![
        format!("sasl.mechanism={mechanism}"),
        format!(
            "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"{user}\" password=\"{password}\";"
        ),
    ]
}

fn sasl_ssl(pki: &TestPki, trusted_ca: &Path, mechanism: &str, user: &str, pw: &str) -> Security {
    let mut lines = scram_file(mechanism, user, pw);
    lines.push("security.protocol=SASL_SSL".into());
    lines.push(format!("ssl.truststore.location={}", trusted_ca.display()));
    load(pki, "client.properties", &lines)
}

/// A SASL_SSL listener with a certificate from `pki`.
async fn sasl_ssl_mock(pki: &TestPki, sasl: MockSasl) -> Arc<Mock> {
    start_mock_with(MockOptions {
        tls: Some(tls_acceptor(pki)),
        sasl: Some(sasl),
        ..MockOptions::default()
    })
    .await
}

async fn connect(mock: &Mock, security: Security) -> Result<Client, ClientError> {
    let mut config = fast_config(mock.port);
    config.security = security;
    Client::with_config(config).await
}

fn log(mock: &Mock) -> parking_lot::MutexGuard<'_, support::security::SaslLog> {
    mock.sasl.as_ref().unwrap().log.lock()
}

#[tokio::test]
async fn scram_sha_512_over_tls_on_every_connection() {
    let pki = TestPki::new();
    let mock = sasl_ssl_mock(&pki, MockSasl::with_users(None)).await;
    let security = sasl_ssl(
        &pki,
        pki.ca_path(),
        "SCRAM-SHA-512",
        "alice",
        "alice-secret",
    );
    assert_eq!(security.protocol(), SecurityProtocol::SaslSsl);
    let client = connect(&mock, security).await.unwrap();
    let topic = client.topic_metadata(TOPIC, false).await.unwrap();
    assert_eq!(topic.partitions.len(), 3);

    // Produce and fetch go to broker 1's own connection: TLS and SASL there too.
    let producer = Producer::new(client.clone(), ProducerConfig::default());
    let sent = producer
        .send_to(
            TOPIC,
            0,
            None,
            Some(Bytes::from_static(b"secret-data")),
            Vec::new(),
        )
        .await
        .unwrap();
    producer.flush().await.unwrap();
    assert_eq!(sent.wait().await.unwrap().offset, 0);
    let mut consumer = Consumer::new(client.clone(), ConsumerConfig::default());
    consumer.assign(TOPIC, 0, StartOffset::Earliest);
    let record = consumer.next().await.unwrap();
    assert_eq!(record.value.as_deref(), Some(&b"secret-data"[..]));

    let log = log(&mock);
    assert_eq!(
        log.authentications, 2,
        "the bootstrap connection and broker 1's"
    );
    assert_eq!(
        mock.connections.load(std::sync::atomic::Ordering::SeqCst),
        2
    );
    assert!(log.violations.is_empty(), "{:?}", log.violations);
}

#[tokio::test]
async fn wrong_password_fails_once_with_the_brokers_message() {
    let pki = TestPki::new();
    let mock = sasl_ssl_mock(&pki, MockSasl::with_users(None)).await;
    let security = sasl_ssl(
        &pki,
        pki.ca_path(),
        "SCRAM-SHA-512",
        "alice",
        "not-her-password",
    );
    let err = connect(&mock, security).await.unwrap_err();
    assert_eq!(
        err.kafka_code(),
        Some(58),
        "SASL_AUTHENTICATION_FAILED: {err}"
    );
    assert!(err.is_authentication());
    let log = log(&mock);
    assert_eq!(log.failures.len(), 1, "a refused login is not retried");
    let shown = err.to_string();
    assert!(shown.contains("SASL_AUTHENTICATION_FAILED"), "{shown}");
    assert!(
        shown.contains(&log.failures[0]),
        "{shown} lacks the broker's message"
    );
    assert!(!shown.contains("not-her-password"), "{shown}");
}

#[tokio::test]
async fn an_untrusted_server_ca_fails_the_handshake() {
    let pki = TestPki::new();
    let other = TestPki::new();
    let mock = sasl_ssl_mock(&pki, MockSasl::with_users(None)).await;
    let security = sasl_ssl(
        &pki,
        other.ca_path(),
        "SCRAM-SHA-512",
        "alice",
        "alice-secret",
    );
    let err = connect(&mock, security).await.unwrap_err();
    assert!(matches!(err, ClientError::Tls { .. }), "{err}");
    // Both test CAs share a name, so rustls reports the chain's signature rather than an unknown issuer.
    assert!(
        err.to_string().contains("invalid peer certificate"),
        "{err}"
    );
    assert!(!err.is_retriable());
    assert_eq!(
        mock.connections.load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    assert_eq!(log(&mock).authentications, 0);
}

#[tokio::test]
async fn sasl_plaintext_plain_login_and_unsupported_mechanism() {
    let pki = TestPki::new();
    let mut sasl = MockSasl::with_users(None);
    sasl.enabled = vec![Mechanism::Plain, Mechanism::ScramSha256];
    let mock = start_mock_with(MockOptions {
        sasl: Some(sasl),
        ..MockOptions::default()
    })
    .await;
    let plain = load(
        &pki,
        "plain.properties",
        &[
            "security.protocol=SASL_PLAINTEXT".into(),
            "sasl.mechanism=PLAIN".into(),
            "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"bob\" password=\"bob-secret\";".into(),
        ],
    );
    let client = connect(&mock, plain).await.unwrap();
    client.topic_metadata(TOPIC, false).await.unwrap();

    let mut lines = scram_file("SCRAM-SHA-512", "alice", "alice-secret");
    lines.push("security.protocol=SASL_PLAINTEXT".into());
    let err = connect(&mock, load(&pki, "scram.properties", &lines))
        .await
        .unwrap_err();
    assert_eq!(err.kafka_code(), Some(33), "{err}");
    assert!(
        err.to_string().ends_with("Client SASL mechanism 'SCRAM-SHA-512' not enabled in the server, enabled mechanisms are [PLAIN, SCRAM-SHA-256]"),
        "{err}"
    );
    assert!(log(&mock).violations.is_empty());
}

#[tokio::test]
async fn oauthbearer_with_a_given_token() {
    let pki = TestPki::new();
    let keys = TestJwtKeys::new();
    let jwks_path = pki.dir().join("jwks.json");
    keys.write_jwks(&jwks_path);
    let jwks = strom_security::JwksCache::load(strom_security::JwksSettings {
        location: strom_security::JwksLocation::File(jwks_path),
        refresh: Duration::from_secs(3600),
        retry_backoff: Duration::from_millis(100),
        retry_backoff_max: Duration::from_secs(1),
        min_expedite_interval: Duration::from_secs(1),
        tls: None,
    })
    .await
    .unwrap();
    let mut sasl = MockSasl::with_users(None);
    sasl.enabled.push(Mechanism::OAuthBearer);
    // The audience is set because strom-security's validator (jsonwebtoken underneath) refuses a
    // token with an `aud` claim when no expected audience is configured.
    let settings = strom_security::ValidatorSettings {
        expected_audience: vec!["kafka".into()],
        expected_issuer: Some("idp".into()),
        ..strom_security::ValidatorSettings::default()
    };
    sasl.oauth = Some(Arc::new(strom_security::OAuthBearerValidator::new(
        jwks, settings,
    )));
    let mock = sasl_ssl_mock(&pki, sasl).await;
    let tls = strom_security::TlsClientSettings::from_properties(
        &[("ssl.ca.location", pki.ca_path().to_str().unwrap())]
            .into_iter()
            .collect(),
    )
    .unwrap()
    .build()
    .unwrap();
    let login = |token: String| SaslLogin::OAuthBearer {
        token: Password::new(token),
        extensions: BTreeMap::new(),
    };
    let good = keys.sign(JwtAlg::Es256, &claims("carol", "idp", "kafka", 3600));
    let client = connect(&mock, Security::new(Some(tls.clone()), Some(login(good))))
        .await
        .unwrap();
    client.topic_metadata(TOPIC, false).await.unwrap();

    let expired = keys.sign(JwtAlg::Es256, &claims("carol", "idp", "kafka", -3600));
    let err = connect(&mock, Security::new(Some(tls), Some(login(expired))))
        .await
        .unwrap_err();
    assert_eq!(err.kafka_code(), Some(58), "{err}");
    assert!(
        err.to_string().contains(r#"{"status":"invalid_token"}"#),
        "{err}"
    );
}

/// KIP-368: with `connections.max.reauth.ms` = 300, a connection kept busy for over a second
/// re-authenticates on the same socket, and the broker never sees another request between
/// SaslHandshake and the end of the exchange nor after a session ended, although every round
/// pipelines several requests.
#[tokio::test]
async fn reauthenticates_on_the_same_connection_between_pipelined_requests() {
    let pki = TestPki::new();
    let mock = sasl_ssl_mock(&pki, MockSasl::with_users(Some(300))).await;
    let security = sasl_ssl(
        &pki,
        pki.ca_path(),
        "SCRAM-SHA-256",
        "alice",
        "alice-secret",
    );
    let addr = format!("127.0.0.1:{}", mock.port);
    let conn = Connection::connect_with_security(&addr, &ConnectionConfig::default(), &security)
        .await
        .unwrap();
    let v = conn.version(ApiKey::Metadata).unwrap();
    for _ in 0..12 {
        let pending: Vec<_> = (0..4)
            .map(|_| conn.start(v, &MetadataRequest::default()).unwrap())
            .collect();
        for p in pending {
            p.wait().await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!conn.is_closed());
    let log = log(&mock);
    assert!(log.violations.is_empty(), "{:?}", log.violations);
    assert!(
        log.authentications >= 3,
        "{} logins in 1.2 s of 300 ms sessions",
        log.authentications
    );
    assert_eq!(
        mock.connections.load(std::sync::atomic::Ordering::SeqCst),
        1
    );
}

#[tokio::test]
async fn scram_users_created_described_and_deleted() {
    let pki = TestPki::new();
    let mock = start_mock_with(MockOptions {
        sasl: Some(MockSasl::with_users(None)),
        ..MockOptions::default()
    })
    .await;
    let as_user = |user: &str, password: &str| {
        let mut lines = scram_file("SCRAM-SHA-512", user, password);
        lines.push("security.protocol=SASL_PLAINTEXT".into());
        load(&pki, &format!("{user}.properties"), &lines)
    };
    let admin = connect(&mock, as_user("alice", "alice-secret"))
        .await
        .unwrap();
    let results = admin
        .alter_user_scram_credentials(&[
            UserScramCredentialAlteration::Upsertion {
                user: "carol".into(),
                mechanism: ScramMechanism::Sha512,
                iterations: 8192,
                password: Password::new("carol-secret"),
                salt: None,
            },
            UserScramCredentialAlteration::Upsertion {
                user: "".into(),
                mechanism: ScramMechanism::Sha512,
                iterations: 8192,
                password: Password::new("x"),
                salt: None,
            },
        ])
        .await
        .unwrap();
    results["carol"].as_ref().unwrap();
    assert_eq!(
        results[""].as_ref().unwrap_err().kafka_code(),
        Some(93),
        "UNACCEPTABLE_CREDENTIAL"
    );

    let described = admin
        .describe_user_scram_credentials(Some(&["carol"]))
        .await
        .unwrap();
    assert_eq!(
        described["carol"].as_ref().unwrap(),
        &vec![ScramCredentialInfo {
            mechanism: ScramMechanism::Sha512,
            iterations: 8192
        }]
    );
    // The salted password the client sent is what the broker's SCRAM server checks logins with.
    connect(&mock, as_user("carol", "carol-secret"))
        .await
        .unwrap();

    let deleted = admin
        .alter_user_scram_credentials(&[UserScramCredentialAlteration::Deletion {
            user: "carol".into(),
            mechanism: ScramMechanism::Sha512,
        }])
        .await
        .unwrap();
    deleted["carol"].as_ref().unwrap();
    let described = admin
        .describe_user_scram_credentials(Some(&["carol"]))
        .await
        .unwrap();
    assert_eq!(
        described["carol"].as_ref().unwrap_err().kafka_code(),
        Some(91)
    );
    let err = connect(&mock, as_user("carol", "carol-secret"))
        .await
        .unwrap_err();
    assert_eq!(err.kafka_code(), Some(58), "{err}");
}
