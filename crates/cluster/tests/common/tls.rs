//! TLS for the quorum tests: a node's `ControllerTls` from a test CA (certificate
//! `CN=broker-<id>,O=Strom`, mapped to `broker-<id>` by the listener's principal rule), and raw
//! TLS connections to a controller listener with any certificate, or none.

use std::net::SocketAddr;

use strom_cluster::quorum::ControllerTls;
use strom_security::test_support::{CertFiles, TestPki};
use strom_security::{
    ListenerName, ListenerProps, Properties, SecurityProtocol, TlsClientSettings,
};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::raw::Raw;

/// The rule that turns `CN=broker-3,O=Strom` into `broker-3`.
pub const NODE_RULE: &str = "RULE:^CN=([^,]+),.*$/$1/";

/// The controller listener keys of a node whose keystore is `cert`, trusting `pki`'s CA.
pub fn controller_props(pki: &TestPki, cert: &CertFiles) -> Properties {
    let path = |p: &std::path::Path| p.to_str().expect("utf-8 path").to_string();
    [
        (
            "listener.name.controller.ssl.keystore.location",
            path(&cert.keystore),
        ),
        (
            "listener.name.controller.ssl.truststore.location",
            path(pki.ca_path()),
        ),
        (
            "listener.name.controller.ssl.client.auth",
            "required".into(),
        ),
        (
            "listener.name.controller.ssl.principal.mapping.rules",
            NODE_RULE.into(),
        ),
    ]
    .into_iter()
    .collect()
}

/// `ControllerTls` from controller listener keys, as the broker builds it.
pub fn controller_tls(props: &Properties) -> ControllerTls {
    let l = ListenerProps::new(props, &ListenerName::new("CONTROLLER"));
    ControllerTls::from_listener(&l, SecurityProtocol::Ssl)
        .expect("valid keys")
        .expect("SSL is TLS")
}

/// Node `id`'s TLS, its certificate issued by `pki`.
pub fn node_tls(pki: &TestPki, id: i32) -> ControllerTls {
    controller_tls(&controller_props(pki, &pki.server(&format!("broker-{id}"))))
}

/// A TLS client presenting `cert` (none: `None`) and trusting `trust`'s CA.
pub fn connector(trust: &TestPki, cert: Option<&CertFiles>) -> TlsConnector {
    let mut props: Properties = [(
        "ssl.truststore.location",
        trust.ca_path().to_str().expect("utf-8 path"),
    )]
    .into_iter()
    .collect();
    if let Some(cert) = cert {
        props.insert(
            "ssl.keystore.location",
            cert.keystore.to_str().expect("utf-8 path"),
        );
    }
    let settings = TlsClientSettings::from_properties(&props).expect("client settings");
    TlsConnector::from(settings.build().expect("client config"))
}

/// A raw connection over TLS; `None` when the handshake fails on the client's side (a refusal
/// by the server may only show at the first read, under TLS 1.3).
pub async fn connect(to: SocketAddr, tls: &TlsConnector) -> Option<Raw<TlsStream<TcpStream>>> {
    let tcp = TcpStream::connect(to).await.expect("connect");
    let name = strom_security::server_name(&to.ip().to_string()).expect("server name");
    tls.connect(name, tcp).await.ok().map(Raw::over)
}
