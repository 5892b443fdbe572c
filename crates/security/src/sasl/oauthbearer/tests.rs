//! OAUTHBEARER end to end through the factory: good RS256/ES256 tokens, forged, expired,
//! wrong audience or issuer, unknown `kid` (and the refresh it triggers), periodic `file://`
//! refresh, and an `https://` JWKS served by a tiny rustls server.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::test_support::{claims, JwtAlg, TestJwtKeys, TestPki};
use crate::{
    AuthErrorKind, ClientStep, KafkaPrincipal, ListenerName, ListenerProps, OAuthBearerClient,
    Password, Properties, SaslClient, SaslServerFactory, Step,
};

const ISS: &str = "https://idp.example.com";
const AUD: &str = "kafka";

fn props(url: &str, extra: &[(&str, &str)]) -> Properties {
    let mut p: Properties = [
        (
            "listener.name.sasl_ssl.sasl.enabled.mechanisms",
            "OAUTHBEARER",
        ),
        (
            "listener.name.sasl_ssl.oauthbearer.sasl.oauthbearer.jwks.endpoint.url",
            url,
        ),
        ("sasl.oauthbearer.expected.audience", "other,kafka"),
        ("sasl.oauthbearer.expected.issuer", ISS),
    ]
    .into_iter()
    .collect();
    for (k, v) in extra {
        p.insert(*k, *v);
    }
    p
}

async fn factory(p: &Properties) -> SaslServerFactory {
    SaslServerFactory::from_listener(&ListenerProps::new(p, &ListenerName::new("SASL_SSL")), None)
        .await
        .unwrap()
}

/// Runs the exchange as a Kafka client would; Ok(principal, expiry) or the server's error.
fn authenticate(
    f: &SaslServerFactory,
    token: &str,
) -> Result<(KafkaPrincipal, Option<i64>), crate::AuthError> {
    let mut server = f.create("OAUTHBEARER").unwrap();
    let mut client = OAuthBearerClient::new(Password::new(token), Default::default());
    match server.step(&client.initial_response()?)? {
        Step::Done(a) => {
            assert_eq!(client.step(&a.server_bytes)?, ClientStep::Done);
            Ok((a.principal, a.credential_expiry_ms))
        }
        Step::Continue(challenge) => {
            assert_eq!(challenge, br#"{"status":"invalid_token"}"#);
            let ClientStep::Send(ack) = client.step(&challenge)? else {
                panic!("client must acknowledge")
            };
            let err = server.step(&ack).unwrap_err();
            assert_eq!(err.kind(), AuthErrorKind::Authentication);
            assert_eq!(
                err.client_message("OAUTHBEARER"),
                r#"{"status":"invalid_token"}"#
            );
            Err(err)
        }
    }
}

fn file_url(path: &std::path::Path) -> String {
    format!("file://{}", path.display())
}

#[tokio::test]
async fn valid_tokens_and_every_way_to_be_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    let keys = TestJwtKeys::new();
    keys.write_jwks(&jwks);
    let f = factory(&props(&file_url(&jwks), &[])).await;

    for alg in [JwtAlg::Rs256, JwtAlg::Es256] {
        let c = claims("alice", ISS, AUD, 600);
        let (principal, expiry) = authenticate(&f, &keys.sign(alg, &c)).unwrap();
        assert_eq!(principal, KafkaPrincipal::user("alice"));
        assert_eq!(expiry, c["exp"].as_i64().map(|s| s * 1000));
    }

    let detail = |token: String| authenticate(&f, &token).unwrap_err().detail().to_string();
    // Forged: another key under the same kid, and a payload swapped under a valid signature.
    let forger = TestJwtKeys::new();
    assert!(
        detail(forger.sign(JwtAlg::Es256, &claims("alice", ISS, AUD, 600)))
            .contains("InvalidSignature")
    );
    let good = keys.sign(JwtAlg::Rs256, &claims("alice", ISS, AUD, 600));
    let admin = keys.sign(JwtAlg::Rs256, &claims("admin", ISS, AUD, 600));
    let parts: Vec<&str> = good.split('.').collect();
    let admin_payload = admin.split('.').nth(1).unwrap();
    assert!(
        detail(format!("{}.{}.{}", parts[0], admin_payload, parts[2])).contains("InvalidSignature")
    );
    // Expired beyond the 30 s skew; within it, still accepted.
    assert!(
        detail(keys.sign(JwtAlg::Rs256, &claims("alice", ISS, AUD, -120)))
            .contains("ExpiredSignature")
    );
    authenticate(
        &f,
        &keys.sign(JwtAlg::Rs256, &claims("alice", ISS, AUD, -5)),
    )
    .unwrap();
    assert!(
        detail(keys.sign(JwtAlg::Es256, &claims("alice", ISS, "someone-else", 600)))
            .contains("InvalidAudience")
    );
    assert!(
        detail(keys.sign(JwtAlg::Es256, &claims("alice", "https://evil", AUD, 600)))
            .contains("InvalidIssuer")
    );
    let mut no_aud = claims("alice", ISS, AUD, 600);
    no_aud.as_object_mut().unwrap().remove("aud");
    assert!(detail(keys.sign(JwtAlg::Es256, &no_aud)).contains("aud"));
    let mut no_iat = claims("alice", ISS, AUD, 600);
    no_iat.as_object_mut().unwrap().remove("iat");
    assert!(detail(keys.sign(JwtAlg::Es256, &no_iat)).contains("iat"));
    let mut no_sub = claims("", ISS, AUD, 600);
    no_sub["sub"] = json!("");
    assert!(detail(keys.sign(JwtAlg::Es256, &no_sub)).contains("sub"));
    // alg "none" is refused outright.
    let unsigned = format!("eyJhbGciOiJub25lIn0.{}.", parts[1]);
    assert!(detail(unsigned).contains("malformed"));

    // The authzid must be the token's subject.
    let mut server = f.create("OAUTHBEARER").unwrap();
    let msg = format!(
        "n,a=bob,\x01auth=Bearer {}\x01\x01",
        keys.sign(JwtAlg::Rs256, &claims("alice", ISS, AUD, 600))
    );
    let err = server.step(msg.as_bytes()).unwrap_err();
    assert!(
        err.detail()
            .contains("different from the token's principal name (alice)"),
        "{err:?}"
    );
    // A garbled first message is a protocol error, and the exchange is over.
    let mut server = f.create("OAUTHBEARER").unwrap();
    assert_eq!(
        server.step(b"n,,auth=Bearer x").unwrap_err().kind(),
        AuthErrorKind::Protocol
    );
    assert_eq!(
        server.step(b"\x01").unwrap_err().kind(),
        AuthErrorKind::IllegalState
    );
}

async fn eventually(f: &SaslServerFactory, token: &str) -> bool {
    for _ in 0..50 {
        if authenticate(f, token).is_ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn unknown_kid_triggers_a_refetch_of_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    TestJwtKeys::new().write_jwks(&jwks);
    let f = factory(&props(&file_url(&jwks), &[])).await;
    // The provider rotates its keys; the broker's cache (refreshed hourly) still has the old set.
    let rotated = TestJwtKeys::with_kids("rsa-2", "ec-2");
    rotated.write_jwks(&jwks);
    let token = rotated.sign(JwtAlg::Es256, &claims("carol", ISS, AUD, 600));
    let err = authenticate(&f, &token).unwrap_err();
    assert!(err.detail().contains("no key with kid \"ec-2\""), "{err:?}");
    // That failure asked for an early refetch, which finds the new key.
    assert!(eventually(&f, &token).await);
}

#[tokio::test]
async fn file_jwks_refreshes_periodically() {
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    TestJwtKeys::new().write_jwks(&jwks);
    let f = factory(&props(
        &file_url(&jwks),
        &[("sasl.oauthbearer.jwks.endpoint.refresh.ms", "100")],
    ))
    .await;
    let rotated = TestJwtKeys::with_kids("rsa-3", "ec-3");
    rotated.write_jwks(&jwks);
    assert!(
        eventually(
            &f,
            &rotated.sign(JwtAlg::Es256, &claims("dave", ISS, AUD, 600))
        )
        .await
    );
}

/// Serves `body` over HTTPS to every connection on 127.0.0.1 (one response each).
async fn https_server(pki: &TestPki, body: String) -> u16 {
    let server = pki.server("idp");
    let p: Properties = [("ssl.keystore.location", server.keystore.to_str().unwrap())]
        .into_iter()
        .collect();
    let settings = crate::TlsServerSettings::from_listener(
        &ListenerProps::new(&p, &ListenerName::new("HTTPS")),
        crate::SecurityProtocol::Ssl,
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(settings.build().unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let body = body.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    port
}

#[tokio::test]
async fn https_jwks_with_the_jaas_truststore() {
    let pki = TestPki::new();
    let keys = Arc::new(TestJwtKeys::new());
    let port = https_server(&pki, keys.jwks().to_string()).await;
    let url = format!("https://localhost:{port}/.well-known/jwks.json");
    let jaas = format!(
        "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required ssl.truststore.location=\"{}\";",
        pki.ca_path().display()
    );
    let p = props(
        &url,
        &[(
            "listener.name.sasl_ssl.oauthbearer.sasl.jaas.config",
            jaas.as_str(),
        )],
    );
    let f = factory(&p).await;
    let (principal, _) = authenticate(
        &f,
        &keys.sign(JwtAlg::Rs256, &claims("erin", ISS, AUD, 600)),
    )
    .unwrap();
    assert_eq!(principal, KafkaPrincipal::user("erin"));

    // Without that truststore the provider's certificate is not trusted: the listener does not start.
    let untrusting = props(&url, &[("listener.name.sasl_ssl.oauthbearer.sasl.jaas.config",
        "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required ssl.truststore.certificates=\"\";")]);
    let other = TestPki::new();
    let jaas = format!(
        "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required ssl.truststore.location=\"{}\";",
        other.ca_path().display()
    );
    for p in [
        untrusting,
        props(
            &url,
            &[(
                "listener.name.sasl_ssl.oauthbearer.sasl.jaas.config",
                jaas.as_str(),
            )],
        ),
    ] {
        let err = SaslServerFactory::from_listener(
            &ListenerProps::new(&p, &ListenerName::new("SASL_SSL")),
            None,
        )
        .await;
        let err = err.map(|_| ()).unwrap_err();
        assert_eq!(
            err.key(),
            "listener.name.sasl_ssl.oauthbearer.sasl.oauthbearer.jwks.endpoint.url",
            "{err}"
        );
    }
}
