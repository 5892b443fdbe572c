//! SCRAM tests: RFC 7677's SCRAM-SHA-256 vector on both sides, full SHA-256/512 exchanges
//! between our client and server, and the ways an exchange must fail.

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::client::ScramClient;
use super::credential::{DelegationTokenCredential, InMemoryScramCredentialStore, ScramCredential};
use super::server::ScramServer;
use super::ScramMechanism;
use crate::sasl::{ClientStep, SaslClient, SaslServer, Step};
use crate::{AuthErrorKind, KafkaPrincipal, Password};

const RFC_CLIENT_FIRST: &str = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
const RFC_SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
const RFC_SERVER_FIRST: &str =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
const RFC_CLIENT_FINAL: &str =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
const RFC_SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

fn rfc_store() -> Arc<InMemoryScramCredentialStore> {
    let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
    let cred =
        ScramCredential::generate("pencil", ScramMechanism::Sha256, 4096, Some(&salt)).unwrap();
    let store = InMemoryScramCredentialStore::new();
    store.insert(ScramMechanism::Sha256, "user", cred);
    Arc::new(store)
}

fn store_with(
    mechanism: ScramMechanism,
    user: &str,
    password: &str,
) -> Arc<InMemoryScramCredentialStore> {
    let store = InMemoryScramCredentialStore::new();
    store.insert(
        mechanism,
        user,
        ScramCredential::generate(password, mechanism, 4096, None).unwrap(),
    );
    Arc::new(store)
}

fn continue_bytes(step: Step) -> Vec<u8> {
    match step {
        Step::Continue(b) => b,
        Step::Done(_) => panic!("expected a challenge"),
    }
}

#[test]
fn rfc7677_vector_server_side() {
    let mut server =
        ScramServer::new(ScramMechanism::Sha256, rfc_store()).with_server_nonce(RFC_SERVER_NONCE);
    let first = continue_bytes(server.step(RFC_CLIENT_FIRST.as_bytes()).unwrap());
    assert_eq!(String::from_utf8(first).unwrap(), RFC_SERVER_FIRST);
    match server.step(RFC_CLIENT_FINAL.as_bytes()).unwrap() {
        Step::Done(a) => {
            assert_eq!(String::from_utf8(a.server_bytes).unwrap(), RFC_SERVER_FINAL);
            assert_eq!(a.principal, KafkaPrincipal::user("user"));
            assert_eq!(a.credential_expiry_ms, None);
        }
        Step::Continue(_) => panic!("expected Done"),
    }
    assert_eq!(
        server.step(b"again").unwrap_err().kind(),
        AuthErrorKind::IllegalState
    );
}

#[test]
fn rfc7677_vector_client_side() {
    let mut client = ScramClient::new(
        ScramMechanism::Sha256,
        "user",
        Password::new("pencil"),
        false,
    )
    .with_nonce("rOprNGfwEbeRWgbNEkqO");
    assert_eq!(
        client.initial_response().unwrap(),
        RFC_CLIENT_FIRST.as_bytes()
    );
    assert_eq!(
        client.step(RFC_SERVER_FIRST.as_bytes()).unwrap(),
        ClientStep::Send(RFC_CLIENT_FINAL.as_bytes().to_vec())
    );
    assert_eq!(
        client.step(RFC_SERVER_FINAL.as_bytes()).unwrap(),
        ClientStep::Done
    );
}

/// Runs a whole exchange; returns the server's result.
fn exchange(
    mut client: ScramClient,
    server: &mut ScramServer,
) -> Result<KafkaPrincipal, crate::AuthError> {
    let first = client.initial_response()?;
    let server_first = continue_bytes(server.step(&first)?);
    let ClientStep::Send(client_final) = client.step(&server_first)? else {
        panic!("client must answer")
    };
    match server.step(&client_final)? {
        Step::Done(a) => {
            assert_eq!(client.step(&a.server_bytes)?, ClientStep::Done);
            Ok(a.principal)
        }
        Step::Continue(_) => panic!("expected Done"),
    }
}

#[test]
fn full_exchanges_sha256_and_sha512() {
    for m in [ScramMechanism::Sha256, ScramMechanism::Sha512] {
        let store = store_with(m, "alice,=x", "alice-secret");
        let client = ScramClient::new(m, "alice,=x", Password::new("alice-secret"), false);
        let mut server = ScramServer::new(m, store);
        assert_eq!(
            exchange(client, &mut server).unwrap(),
            KafkaPrincipal::user("alice,=x"),
            "{m:?}"
        );
    }
}

#[test]
fn wrong_password_and_unknown_user() {
    let m = ScramMechanism::Sha512;
    let mut server = ScramServer::new(m, store_with(m, "alice", "alice-secret"));
    let err = exchange(
        ScramClient::new(m, "alice", Password::new("wrong"), false),
        &mut server,
    )
    .unwrap_err();
    assert_eq!(err.kind(), AuthErrorKind::Protocol);
    assert!(err.detail().starts_with("Invalid client credentials"));
    assert_eq!(
        err.client_message("SCRAM-SHA-512"),
        "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512"
    );
    let mut server = ScramServer::new(m, store_with(m, "alice", "alice-secret"));
    let err = exchange(
        ScramClient::new(m, "bob", Password::new("alice-secret"), false),
        &mut server,
    )
    .unwrap_err();
    assert!(err
        .detail()
        .starts_with("Authentication failed: Invalid user credentials"));
    // The other mechanism's credential does not count.
    let mut server = ScramServer::new(
        ScramMechanism::Sha256,
        store_with(m, "alice", "alice-secret"),
    );
    assert!(exchange(
        ScramClient::new(
            ScramMechanism::Sha256,
            "alice",
            Password::new("alice-secret"),
            false
        ),
        &mut server
    )
    .is_err());
}

#[test]
fn replayed_final_message_is_refused() {
    let m = ScramMechanism::Sha256;
    let store = store_with(m, "alice", "alice-secret");
    let mut client = ScramClient::new(m, "alice", Password::new("alice-secret"), false);
    let first = client.initial_response().unwrap();
    let mut server = ScramServer::new(m, store.clone());
    let ClientStep::Send(client_final) = client
        .step(&continue_bytes(server.step(&first).unwrap()))
        .unwrap()
    else {
        panic!()
    };
    assert!(matches!(server.step(&client_final).unwrap(), Step::Done(_)));
    // An eavesdropper replays both client messages to a new exchange: the server nonce differs.
    let mut server = ScramServer::new(m, store);
    server.step(&first).unwrap();
    let err = server.step(&client_final).unwrap_err();
    assert_eq!(
        err.detail(),
        "Invalid client nonce in the final client message."
    );
}

/// librdkafka before 2.6.1 (librdkafka#4895) sends `r=<client nonce><server-first nonce>`:
/// accepted, as Kafka 3.8.1-3.9 accept it; the RFC form stays accepted (the vector above), and a
/// nonce that lacks the server part is refused.
#[test]
fn old_librdkafka_doubled_client_nonce_is_accepted() {
    let m = ScramMechanism::Sha256;
    let final_with_nonce = |nonce: &str| {
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!(
            "{},{RFC_SERVER_FIRST},{without_proof}",
            RFC_CLIENT_FIRST.trim_start_matches("n,,")
        );
        let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let salted = m.salted_password(b"pencil", &salt, 4096);
        let client_key = m.client_key(&salted);
        let signature = m.hmac(&m.hash(&client_key), auth_message.as_bytes());
        let proof = STANDARD.encode(super::xor(&client_key, &signature));
        format!("{without_proof},p={proof}")
    };
    let step = |nonce: &str| {
        let mut server = ScramServer::new(m, rfc_store()).with_server_nonce(RFC_SERVER_NONCE);
        server.step(RFC_CLIENT_FIRST.as_bytes()).unwrap();
        server.step(final_with_nonce(nonce).as_bytes())
    };
    let rfc_nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    assert!(matches!(step(rfc_nonce), Ok(Step::Done(_))));
    let doubled = format!("rOprNGfwEbeRWgbNEkqO{rfc_nonce}");
    assert!(matches!(step(&doubled), Ok(Step::Done(_))));
    for bad in [
        "rOprNGfwEbeRWgbNEkqO",
        "rOprNGfwEbeRWgbNEkqOrOprNGfwEbeRWgbNEkqO",
    ] {
        let err = step(bad).unwrap_err();
        assert_eq!(
            err.detail(),
            "Invalid client nonce in the final client message."
        );
    }
}

#[test]
fn garbled_messages_fail() {
    let m = ScramMechanism::Sha256;
    let server = || ScramServer::new(m, rfc_store()).with_server_nonce(RFC_SERVER_NONCE);
    let mut s = server();
    assert_eq!(
        s.step(b"n,,garbage").unwrap_err().detail(),
        "Invalid SCRAM client first message format"
    );
    assert_eq!(
        s.step(RFC_CLIENT_FIRST.as_bytes()).unwrap_err().kind(),
        AuthErrorKind::IllegalState
    );
    let finals = [
        ("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=eHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", "Invalid client credentials"),
        ("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapW", "Invalid client credentials"),
        ("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=!!!", "Invalid SCRAM client final message format"),
        ("c=eSws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", "Invalid channel binding in the final client message."),
        ("c=biws,r=rOprNGfwEbeRWgbNEkqO,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", "Invalid client nonce in the final client message."),
    ];
    for (final_message, expected) in finals {
        let mut s = server();
        s.step(RFC_CLIENT_FIRST.as_bytes()).unwrap();
        let err = s.step(final_message.as_bytes()).unwrap_err();
        assert!(
            err.detail().starts_with(expected),
            "{final_message}: {err:?}"
        );
    }
    let mut s = server();
    let err = s.step(b"n,a=admin,n=user,r=abc").unwrap_err();
    assert_eq!(err.kind(), AuthErrorKind::Authentication);
    assert_eq!(err.detail(), "Authentication failed: Client requested an authorization id that is different from username");
}

#[test]
fn weak_iterations_refused_on_both_sides() {
    let store = InMemoryScramCredentialStore::new();
    store.insert(
        ScramMechanism::Sha256,
        "u",
        ScramCredential::derive(b"p", ScramMechanism::Sha256, 1000, vec![1, 2, 3]),
    );
    let mut s = ScramServer::new(ScramMechanism::Sha256, Arc::new(store));
    assert_eq!(
        s.step(b"n,,n=u,r=abc").unwrap_err().detail(),
        "Iterations 1000 is less than the minimum 4096 for SCRAM-SHA-256"
    );
    let mut c =
        ScramClient::new(ScramMechanism::Sha256, "u", Password::new("p"), false).with_nonce("abc");
    c.initial_response().unwrap();
    let err = c.step(b"r=abcdef,s=AQID,i=1000").unwrap_err();
    assert_eq!(
        err.detail(),
        "Requested iterations 1000 is less than the minimum 4096 for SCRAM-SHA-256"
    );
    assert!(ScramCredential::generate("p", ScramMechanism::Sha256, 4095, None).is_err());
    assert!(ScramCredential::generate("p", ScramMechanism::Sha256, 16385, None).is_err());
}

#[test]
fn client_checks_the_server() {
    let started = || {
        let mut c = ScramClient::new(
            ScramMechanism::Sha256,
            "user",
            Password::new("pencil"),
            false,
        )
        .with_nonce("rOprNGfwEbeRWgbNEkqO");
        c.initial_response().unwrap();
        c
    };
    let err = started()
        .step(b"r=someoneelse,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
        .unwrap_err();
    assert!(err.detail().starts_with("Invalid server nonce"));
    let mut c = started();
    c.step(RFC_SERVER_FIRST.as_bytes()).unwrap();
    assert_eq!(
        c.step(b"v=AAAA").unwrap_err().detail(),
        "Invalid server signature in server final message"
    );
    let mut c = started();
    c.step(RFC_SERVER_FIRST.as_bytes()).unwrap();
    assert_eq!(
        c.step(b"e=invalid-proof").unwrap_err().detail(),
        "Sasl authentication using SCRAM-SHA-256 failed with error: invalid-proof"
    );
}

#[test]
fn delegation_tokens_authenticate_as_their_owner() {
    let m = ScramMechanism::Sha256;
    let store = InMemoryScramCredentialStore::new();
    store.insert_token(
        m,
        "token-1",
        DelegationTokenCredential {
            credential: ScramCredential::generate("hmac-secret", m, 4096, None).unwrap(),
            owner: "alice".into(),
            expiry_timestamp_ms: 1_000_000,
        },
    );
    let store = Arc::new(store);
    let mut client = ScramClient::new(m, "token-1", Password::new("hmac-secret"), true);
    let mut server = ScramServer::new(m, store.clone());
    let first = client.initial_response().unwrap();
    assert!(String::from_utf8_lossy(&first).ends_with(",tokenauth=true"));
    let ClientStep::Send(fin) = client
        .step(&continue_bytes(server.step(&first).unwrap()))
        .unwrap()
    else {
        panic!()
    };
    let Step::Done(a) = server.step(&fin).unwrap() else {
        panic!()
    };
    assert_eq!(a.principal.name, "alice");
    assert!(a.principal.token_authenticated);
    assert_eq!(a.credential_expiry_ms, Some(1_000_000));
    let mut server = ScramServer::new(m, store);
    let err = server
        .step(b"n,,n=token-2,r=abc,tokenauth=true")
        .unwrap_err();
    assert_eq!(
        err.detail(),
        "Token Authentication failed: Invalid tokenId : token-2"
    );
}

#[test]
fn credentials_debug_redacted() {
    let c = ScramCredential::generate("pw", ScramMechanism::Sha256, 4096, None).unwrap();
    let shown = format!("{c:?}");
    assert!(
        shown.contains("[hidden]") && shown.contains("4096"),
        "{shown}"
    );
}
