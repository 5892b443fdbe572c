//! The controller listener over TLS with client certificates on both sides: [`ControllerTls`]
//! (the settings, read from `listener.name.<controller listener>.ssl.*` by `strom_security`),
//! the acceptor that proves a peer's node id from its certificate, and the connector outbound
//! controller calls use with this node's certificate.
//!
//! The node-identity rule: a peer is node `N` when the principal its certificate maps to under
//! the controller listener's `ssl.principal.mapping.rules` is `User:broker-N` (canonical decimal,
//! no sign or leading zero), e.g. subject `CN=broker-3,O=Acme` with the rule
//! `RULE:^CN=([^,]+),.*$/$1/`. Why this rule: Kafka authorizes controller traffic by principal
//! (CLUSTER_ACTION), but does not tie a principal to a node id; our peer checks are per node id
//! (a voter speaks only for itself, a broker only heartbeats for itself), so the certificate
//! must name the id. Taking the id from the hello and trusting any certificate of the CA would
//! let every client certificate that CA ever issued (CAs are often shared with applications)
//! speak for any voter; an explicit `controller.principal.<id>` table would be one more list to
//! keep in step with `controller.quorum.voters`. Reusing Kafka's mapping rules keeps the
//! operator's tool, and a principal that names no node is refused at accept (logged).
//!
//! Refused at the handshake (connection closed, one log line by the accept loop): a peer without
//! a certificate (`ssl.client.auth` must be `required`, checked when the quorum starts), with one
//! the truststore does not trust, a plaintext peer, and a certificate naming no node. A hello
//! for another id than the certificate's is refused by `peer` (`IdentityMismatch`).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use strom_security::{
    ClientAuth, ConfigError, ListenerProps, SecurityProtocol, SslPrincipalBuilder,
    SslPrincipalMapper, TlsAcceptorHandle, TlsClientSettings, TlsServerSettings,
};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsConnector;

use super::transport::{Accepted, Acceptor, Connector};

/// The prefix of a node's principal name: node `N` is `User:broker-N`.
pub const NODE_PRINCIPAL_PREFIX: &str = "broker-";

/// The principal name that proves node `node_id` on a TLS controller listener.
pub fn node_principal_name(node_id: i32) -> String {
    format!("{NODE_PRINCIPAL_PREFIX}{node_id}")
}

/// The node a principal name proves, if it is `broker-<id>` in canonical form.
pub(crate) fn node_of_principal(name: &str) -> Option<i32> {
    let digits = name.strip_prefix(NODE_PRINCIPAL_PREFIX)?;
    let id: i32 = digits.parse().ok()?;
    // "+3", "03": one spelling per node, so one certificate cannot pass for two strings.
    (id >= 0 && id.to_string() == digits).then_some(id)
}

/// The controller listener's TLS: server settings, client settings for outbound controller
/// connections, and the principal mapping that names a peer's node.
#[derive(Debug, Clone)]
pub struct ControllerTls {
    /// The listener's keystore, truststore and protocols; `ssl.client.auth` must be `required`.
    pub server: TlsServerSettings,
    /// This node's certificate for outbound controller connections, and the truststore the
    /// peers' certificates are checked against.
    pub client: TlsClientSettings,
    /// The listener's `ssl.principal.mapping.rules`: certificate subject → principal.
    pub principal_mapper: SslPrincipalMapper,
}

impl ControllerTls {
    /// Reads the controller listener's keys (`listener.name.<name>.ssl.*` before `ssl.*`):
    /// `None` for PLAINTEXT (the listener stays plain), the settings for SSL. SASL on the
    /// controller listener is refused: its identity would not name a node.
    pub fn from_listener(
        l: &ListenerProps<'_>,
        protocol: SecurityProtocol,
    ) -> Result<Option<ControllerTls>, ConfigError> {
        match protocol {
            SecurityProtocol::Plaintext => return Ok(None),
            SecurityProtocol::Ssl => {}
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl => {
                return Err(ConfigError::Invalid {
                    key: "listener.security.protocol.map".into(),
                    reason: format!(
                        "controller listener {} uses {protocol}: only PLAINTEXT and SSL (with ssl.client.auth=required) are supported there",
                        l.listener_name()
                    ),
                })
            }
        }
        let server = TlsServerSettings::from_listener(l, protocol)?;
        if server.client_auth() != ClientAuth::Required {
            return Err(ConfigError::Invalid {
                key: l.prefixed_key("ssl.client.auth"),
                reason: "must be required on the controller listener: peers prove their node id with their certificate".into(),
            });
        }
        let client = TlsClientSettings::from_listener(l)?;
        let rules = l.lookup("ssl.principal.mapping.rules");
        let principal_mapper =
            SslPrincipalMapper::from_rules(rules.map(|s| s.value)).map_err(|e| {
                ConfigError::Invalid {
                    key: rules.map_or("ssl.principal.mapping.rules".into(), |s| s.key.to_string()),
                    reason: e.to_string(),
                }
            })?;
        Ok(Some(ControllerTls {
            server,
            client,
            principal_mapper,
        }))
    }

    /// Checks what `from_listener` checks, for settings assembled by hand.
    pub(crate) fn validate(&self) -> Result<(), String> {
        match self.server.client_auth() {
            ClientAuth::Required => Ok(()),
            other => Err(format!(
                "the controller listener's ssl.client.auth is {other:?}; it must be required (peers prove their node id with their certificate)"
            )),
        }
    }

    /// Reads the key material and builds the listener's acceptor and the outbound connector.
    pub(crate) fn build(&self) -> Result<(TlsNodeAcceptor, Connector), ConfigError> {
        let acceptor = TlsNodeAcceptor {
            handle: Arc::new(TlsAcceptorHandle::new(self.server.clone())?),
            principals: SslPrincipalBuilder::new(self.principal_mapper.clone()),
        };
        let connector = Connector::Tls(TlsConnector::from(self.client.build()?));
        Ok((acceptor, connector))
    }
}

/// The TLS acceptor of the controller listener: handshake with a required client certificate,
/// then the node id its principal names (see the module docs).
#[derive(Debug)]
pub(crate) struct TlsNodeAcceptor {
    handle: Arc<TlsAcceptorHandle>,
    principals: SslPrincipalBuilder,
}

fn refused(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, why)
}

impl Acceptor for TlsNodeAcceptor {
    type Stream = TlsStream<TcpStream>;

    async fn accept(
        &self,
        tcp: TcpStream,
        _from: SocketAddr,
    ) -> io::Result<Accepted<Self::Stream>> {
        // An untrusted, absent or plaintext "certificate" fails here, inside rustls.
        let stream = self.handle.acceptor().accept(tcp).await?;
        let principal = self
            .principals
            .principal(stream.get_ref().1.peer_certificates())
            .map_err(|e| refused(format!("no principal for the client certificate: {e}")))?;
        match node_of_principal(&principal.name) {
            Some(node) => Ok(Accepted {
                stream,
                proven_node: Some(node),
            }),
            None => Err(refused(format!(
                "principal {principal} names no node (expected User:{NODE_PRINCIPAL_PREFIX}<node id>)"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strom_security::test_support::TestPki;
    use strom_security::{ListenerName, Properties};

    fn props(pki: &TestPki, auth: &str) -> Properties {
        let cert = pki.server("broker-1");
        [
            (
                "listener.name.controller.ssl.keystore.location",
                cert.keystore.to_string_lossy().to_string(),
            ),
            (
                "ssl.truststore.location",
                pki.ca_path().to_string_lossy().to_string(),
            ),
            ("listener.name.controller.ssl.client.auth", auth.into()),
        ]
        .into_iter()
        .collect()
    }

    fn read(p: &Properties, protocol: SecurityProtocol) -> Result<Option<ControllerTls>, String> {
        let l = ListenerProps::new(p, &ListenerName::new("controller"));
        ControllerTls::from_listener(&l, protocol).map_err(|e| e.to_string())
    }

    #[test]
    fn the_controller_listener_needs_required_client_certificates() {
        let pki = TestPki::new();
        let required = props(&pki, "required");
        assert!(read(&required, SecurityProtocol::Plaintext)
            .expect("plain")
            .is_none());
        let tls = read(&required, SecurityProtocol::Ssl)
            .expect("valid")
            .expect("TLS");
        assert_eq!(tls.validate(), Ok(()));
        assert!(tls.build().is_ok(), "the material is readable");
        for auth in ["none", "requested"] {
            let err = read(&props(&pki, auth), SecurityProtocol::Ssl).expect_err(auth);
            assert!(
                err.starts_with("listener.name.controller.ssl.client.auth: must be required"),
                "{err}"
            );
        }
        // Assembled by hand with another client auth: the quorum refuses to start on it.
        let l_none = props(&pki, "none");
        let l = ListenerProps::new(&l_none, &ListenerName::new("controller"));
        let mut cfg = super::super::QuorumConfig::new(1, pki.dir());
        cfg.tls = Some(ControllerTls {
            server: TlsServerSettings::from_listener(&l, SecurityProtocol::Ssl).expect("settings"),
            ..tls
        });
        assert!(cfg.validate().is_err());
        let err = read(&required, SecurityProtocol::SaslSsl).expect_err("SASL");
        assert!(err.contains("only PLAINTEXT and SSL"), "{err}");
        let mut bad_rules = required.clone();
        bad_rules.insert("ssl.principal.mapping.rules", "RULE:broken");
        let err = read(&bad_rules, SecurityProtocol::Ssl).expect_err("rules");
        assert!(err.starts_with("ssl.principal.mapping.rules:"), "{err}");
    }

    #[test]
    fn principals_name_nodes_in_one_spelling() {
        assert_eq!(node_of_principal("broker-0"), Some(0));
        assert_eq!(node_of_principal(&node_principal_name(42)), Some(42));
        for bad in [
            "broker-",
            "broker-03",
            "broker-+3",
            "broker--3",
            "broker-3x",
            "broker-99999999999",
            "Broker-3",
            "CN=broker-3,O=Strom",
            "3",
        ] {
            assert_eq!(node_of_principal(bad), None, "{bad}");
        }
    }
}
