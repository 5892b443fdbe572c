//! TLS handshakes between the server and client configs over an in-memory duplex: client auth
//! modes, unknown CAs, host names, keystore forms, principals and reloads.

use std::sync::Arc;

use rustls::{ClientConfig, ServerConfig};
use rustls_pki_types::CertificateDer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::test_support::{CertFiles, TestPki};
use crate::{
    ClientAuth, KafkaPrincipal, ListenerName, ListenerProps, Properties, SecurityProtocol,
    SslPrincipalBuilder, SslPrincipalMapper, TlsAcceptorHandle, TlsClientSettings,
    TlsServerSettings,
};

type PeerCerts = Option<Vec<CertificateDer<'static>>>;

/// Runs one handshake plus a one-message round trip (so a server-side refusal of the client's
/// certificate under TLS 1.3 is seen by the client too). Returns the client certs the server saw.
async fn handshake(
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
    name: &str,
) -> Result<PeerCerts, String> {
    let (c, s) = tokio::io::duplex(1 << 16);
    let acceptor = TlsAcceptor::from(server);
    let server_task = tokio::spawn(async move {
        let mut tls = acceptor
            .accept(s)
            .await
            .map_err(|e| format!("server: {e}"))?;
        tls.write_all(b"ok")
            .await
            .map_err(|e| format!("server write: {e}"))?;
        tls.flush()
            .await
            .map_err(|e| format!("server flush: {e}"))?;
        let peer = tls.get_ref().1.peer_certificates().map(|c| c.to_vec());
        Ok::<_, String>(peer)
    });
    let connector = TlsConnector::from(client);
    let sni = crate::server_name(name).map_err(|e| e.to_string())?;
    let client_result = async {
        let mut tls = connector
            .connect(sni, c)
            .await
            .map_err(|e| format!("client: {e}"))?;
        let mut buf = [0u8; 2];
        tls.read_exact(&mut buf)
            .await
            .map_err(|e| format!("client read: {e}"))?;
        Ok::<_, String>(())
    }
    .await;
    let server_result = server_task.await.map_err(|e| e.to_string())?;
    client_result?;
    server_result
}

fn server_props(pki: &TestPki, server: &CertFiles, auth: &str) -> Properties {
    [
        ("ssl.keystore.type", "PEM"),
        (
            "ssl.keystore.location",
            server.keystore.to_str().unwrap_or_default(),
        ),
        ("ssl.truststore.type", "PEM"),
        (
            "ssl.truststore.location",
            pki.ca_path().to_str().unwrap_or_default(),
        ),
        ("listener.name.ssl.ssl.client.auth", auth),
    ]
    .into_iter()
    .collect()
}

fn server_config(props: &Properties) -> Arc<ServerConfig> {
    let l = ListenerProps::new(props, &ListenerName::new("SSL"));
    TlsServerSettings::from_listener(&l, SecurityProtocol::Ssl)
        .unwrap()
        .build()
        .unwrap()
}

fn client_config(pairs: &[(&str, &str)]) -> Arc<ClientConfig> {
    let props: Properties = pairs.iter().copied().collect();
    TlsClientSettings::from_properties(&props)
        .unwrap()
        .build()
        .unwrap()
}

fn path(p: &std::path::Path) -> &str {
    p.to_str().unwrap_or_default()
}

#[tokio::test]
async fn client_auth_none_requested_required() {
    let pki = TestPki::new();
    let server = pki.server("broker");
    let alice = pki.client("alice", "CN=alice,OU=eng,O=Example,C=US");
    let anonymous = client_config(&[("ssl.truststore.location", path(pki.ca_path()))]);
    let with_cert = client_config(&[
        ("ssl.truststore.location", path(pki.ca_path())),
        ("ssl.keystore.location", path(&alice.keystore)),
    ]);

    let none = server_config(&server_props(&pki, &server, "none"));
    assert_eq!(
        handshake(none.clone(), anonymous.clone(), "localhost")
            .await
            .unwrap(),
        None
    );
    // Under `none` a client certificate is not even asked for.
    assert_eq!(
        handshake(none, with_cert.clone(), "localhost")
            .await
            .unwrap(),
        None
    );

    let requested = server_config(&server_props(&pki, &server, "requested"));
    assert_eq!(
        handshake(requested.clone(), anonymous.clone(), "localhost")
            .await
            .unwrap(),
        None
    );
    assert!(handshake(requested, with_cert.clone(), "127.0.0.1")
        .await
        .unwrap()
        .is_some());

    let required = server_config(&server_props(&pki, &server, "required"));
    let err = handshake(required.clone(), anonymous, "localhost")
        .await
        .unwrap_err();
    assert!(
        err.contains("CertificateRequired") || err.contains("server"),
        "{err}"
    );
    let certs = handshake(required, with_cert, "localhost").await.unwrap();
    let builder = SslPrincipalBuilder::new(SslPrincipalMapper::default());
    let principal = builder.principal(certs.as_deref()).unwrap();
    assert_eq!(
        principal,
        KafkaPrincipal::user("CN=alice,OU=eng,O=Example,C=US")
    );
}

#[tokio::test]
async fn unknown_cas_are_refused_both_ways() {
    let pki = TestPki::new();
    let other = TestPki::new();
    let server = pki.server("broker");
    let required = server_config(&server_props(&pki, &server, "required"));
    let stranger = other.client("mallory", "CN=mallory");
    let client = client_config(&[
        ("ssl.truststore.location", path(pki.ca_path())),
        ("ssl.keystore.location", path(&stranger.keystore)),
    ]);
    assert!(handshake(required.clone(), client, "localhost")
        .await
        .is_err());

    let trusts_other = client_config(&[("ssl.truststore.location", path(other.ca_path()))]);
    let err = handshake(required, trusts_other, "localhost")
        .await
        .unwrap_err();
    assert!(err.contains("client"), "{err}");
}

#[tokio::test]
async fn host_name_checked_unless_identification_disabled() {
    let pki = TestPki::new();
    let server = pki.server("broker");
    let config = server_config(&server_props(&pki, &server, "none"));
    let strict = client_config(&[("ssl.truststore.location", path(pki.ca_path()))]);
    assert!(handshake(config.clone(), strict, "broker.example.com")
        .await
        .is_err());
    let lax = client_config(&[
        ("ssl.truststore.location", path(pki.ca_path())),
        ("ssl.endpoint.identification.algorithm", ""),
    ]);
    handshake(config.clone(), lax, "broker.example.com")
        .await
        .unwrap();
    // Skipping the name check still checks the chain.
    let other = TestPki::new();
    let lax_wrong_ca = client_config(&[
        ("ssl.truststore.location", path(other.ca_path())),
        ("ssl.endpoint.identification.algorithm", ""),
    ]);
    assert!(handshake(config, lax_wrong_ca, "localhost").await.is_err());
}

#[tokio::test]
async fn inline_pem_encrypted_keys_and_librdkafka_files() {
    let pki = TestPki::new();
    let server = pki.server("broker");
    let encrypted = server.write_encrypted_keystore("key-secret");
    let props: Properties = [
        ("listener.name.ssl.ssl.keystore.location", path(&encrypted)),
        ("listener.name.ssl.ssl.key.password", "key-secret"),
        ("ssl.truststore.certificates", pki.ca_pem().as_str()),
        ("ssl.client.auth", "required"),
    ]
    .into_iter()
    .collect();
    let config = server_config(&props);
    let bob = pki.client("bob", "CN=bob,O=Example");
    let librdkafka = client_config(&[
        ("ssl.ca.location", path(pki.ca_path())),
        ("ssl.certificate.location", path(&bob.certificate)),
        ("ssl.key.location", path(&bob.key)),
    ]);
    handshake(config.clone(), librdkafka, "localhost")
        .await
        .unwrap();
    let inline = client_config(&[
        ("ssl.truststore.certificates", pki.ca_pem().as_str()),
        (
            "ssl.keystore.certificate.chain",
            bob.certificate_pem.as_str(),
        ),
        ("ssl.keystore.key", bob.key_pem.as_str()),
    ]);
    handshake(config, inline, "localhost").await.unwrap();

    let mut wrong = props.clone();
    wrong.insert("listener.name.ssl.ssl.key.password", "nope");
    let l = ListenerProps::new(&wrong, &ListenerName::new("SSL"));
    let err = TlsServerSettings::from_listener(&l, SecurityProtocol::Ssl)
        .unwrap()
        .build()
        .unwrap_err();
    assert_eq!(err.key(), "listener.name.ssl.ssl.key.password", "{err}");
    let mut missing = props;
    missing.insert("listener.name.ssl.ssl.key.password", "");
    let l = ListenerProps::new(&missing, &ListenerName::new("SSL"));
    let err = TlsServerSettings::from_listener(&l, SecurityProtocol::Ssl)
        .unwrap()
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("ssl.key.password"), "{err}");
}

#[test]
fn sasl_ssl_reads_client_auth_only_with_the_listener_prefix() {
    let pki = TestPki::new();
    let server = pki.server("broker");
    let mut props: Properties = [
        ("ssl.keystore.location", path(&server.keystore)),
        ("ssl.truststore.location", path(pki.ca_path())),
        ("ssl.client.auth", "required"),
    ]
    .into_iter()
    .collect();
    let name = ListenerName::new("EXTERNAL");
    let s = TlsServerSettings::from_listener(
        &ListenerProps::new(&props, &name),
        SecurityProtocol::SaslSsl,
    )
    .unwrap();
    assert_eq!(s.client_auth(), ClientAuth::None);
    let s =
        TlsServerSettings::from_listener(&ListenerProps::new(&props, &name), SecurityProtocol::Ssl)
            .unwrap();
    assert_eq!(s.client_auth(), ClientAuth::Required);
    props.insert("listener.name.external.ssl.client.auth", "requested");
    let s = TlsServerSettings::from_listener(
        &ListenerProps::new(&props, &name),
        SecurityProtocol::SaslSsl,
    )
    .unwrap();
    assert_eq!(s.client_auth(), ClientAuth::Requested);
    props.insert("listener.name.external.ssl.client.auth", "sometimes");
    let e = TlsServerSettings::from_listener(
        &ListenerProps::new(&props, &name),
        SecurityProtocol::SaslSsl,
    )
    .unwrap_err();
    assert_eq!(e.key(), "listener.name.external.ssl.client.auth");
    let empty = Properties::new();
    let e =
        TlsServerSettings::from_listener(&ListenerProps::new(&empty, &name), SecurityProtocol::Ssl)
            .unwrap_err();
    assert_eq!(e.key(), "listener.name.external.ssl.keystore.location");
}

#[tokio::test]
async fn reload_picks_up_a_rotated_certificate_and_guards_the_dn() {
    let pki = TestPki::new();
    let first = pki.server("broker");
    let props = server_props(&pki, &first, "none");
    let l = ListenerProps::new(&props, &ListenerName::new("SSL"));
    let handle = TlsAcceptorHandle::new(
        TlsServerSettings::from_listener(&l, SecurityProtocol::Ssl).unwrap(),
    )
    .unwrap();
    let before = handle.server_config();

    // Same subject, new key: accepted, and new connections use it.
    let rotated = pki.server("broker");
    std::fs::copy(&rotated.keystore, &first.keystore).unwrap();
    handle.reload().unwrap();
    assert!(!Arc::ptr_eq(&before, &handle.server_config()));
    let client = client_config(&[("ssl.truststore.location", path(pki.ca_path()))]);
    handshake(handle.server_config(), client, "localhost")
        .await
        .unwrap();

    // Another subject: refused (Kafka's rule), and the rotated config keeps serving.
    let current = handle.server_config();
    let renamed = pki.server("someone-else");
    std::fs::copy(&renamed.keystore, &first.keystore).unwrap();
    let err = handle.reload().unwrap_err();
    assert!(
        err.to_string()
            .contains("Keystore DistinguishedName does not match"),
        "{err}"
    );
    assert!(Arc::ptr_eq(&current, &handle.server_config()));

    // Unless ssl.allow.dn.changes is set.
    let mut allowing = props.clone();
    allowing.insert("ssl.allow.dn.changes", "true");
    let l = ListenerProps::new(&allowing, &ListenerName::new("SSL"));
    handle
        .update(TlsServerSettings::from_listener(&l, SecurityProtocol::Ssl).unwrap())
        .unwrap();

    // A broken file leaves the old config in place.
    std::fs::write(&first.keystore, "garbage").unwrap();
    let current = handle.server_config();
    assert!(handle.reload().is_err());
    assert!(Arc::ptr_eq(&current, &handle.server_config()));
}

#[test]
fn subject_dn_and_mapping_rules_on_real_certificates() {
    let pki = TestPki::new();
    let c = pki.client("svc", "CN=Duke,OU=ServiceUsers,O=Org,C=US");
    let der = rustls_pki_types::CertificateDer::from(
        rustls_pki_types::pem::PemObject::from_pem_slice(c.certificate_pem.as_bytes())
            .map(|d: CertificateDer<'_>| d.to_vec())
            .unwrap(),
    );
    assert_eq!(
        crate::subject_dn_rfc2253(der.as_ref()).unwrap(),
        "CN=Duke,OU=ServiceUsers,O=Org,C=US"
    );
    let mapper =
        SslPrincipalMapper::from_rules(Some("RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L,DEFAULT"))
            .unwrap();
    let p = SslPrincipalBuilder::new(mapper)
        .principal(Some(&[der]))
        .unwrap();
    assert_eq!(p.to_string(), "User:duke");
    let d = pki.client("dc", "UID=u1,DC=example,O=a+b #1");
    let der: CertificateDer<'_> =
        rustls_pki_types::pem::PemObject::from_pem_slice(d.certificate_pem.as_bytes()).unwrap();
    assert_eq!(
        crate::subject_dn_rfc2253(der.as_ref()).unwrap(),
        "UID=u1,DC=example,O=a\\+b \\#1"
    );
}
