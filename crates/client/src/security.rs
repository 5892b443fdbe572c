//! `Security`: how this client's connections are secured — Kafka's `security.protocol` with the
//! TLS config and SASL login it needs. It wraps strom-security's [`ClientSecurity`] (which parses
//! `--command-config` files and the broker's inter-broker logins) and adds OAUTHBEARER with a token
//! the caller already holds, which `ClientSecurity` leaves out.
//!
//! The protocol is derived from what is present (TLS config → SSL, login → SASL_…), so a value
//! can never claim TLS without a config to do it with. The login is kept as credentials, not as a
//! mechanism instance: every connection and every KIP-368 re-authentication needs a fresh
//! state machine ([`SaslLogin::client`]).

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use strom_security::{
    ClientSecurity, ConfigError, Mechanism, OAuthBearerClient, Password, SaslClient,
    SaslCredentials, SecurityProtocol,
};
use tokio_rustls::rustls;

/// A SASL login: what a connection authenticates with.
#[derive(Clone)]
pub enum SaslLogin {
    /// PLAIN or SCRAM-SHA-256/512 with a user name and password (or a delegation token).
    Password(SaslCredentials),
    /// OAUTHBEARER with a token obtained elsewhere (Kafka's `OAuthBearerToken`), and SASL
    /// extensions (KIP-342) to send with it.
    OAuthBearer {
        /// The token (a JWT); never shown by `Debug`.
        token: Password,
        /// SASL extensions, `key=value` pairs sent with the token.
        extensions: BTreeMap<String, String>,
    },
}

impl fmt::Debug for SaslLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // SaslCredentials' Debug hides the password.
            SaslLogin::Password(c) => f.debug_tuple("Password").field(c).finish(),
            SaslLogin::OAuthBearer { extensions, .. } => f
                .debug_struct("OAuthBearer")
                .field("token", &"[hidden]")
                .field("extensions", &extensions.keys().collect::<Vec<_>>())
                .finish(),
        }
    }
}

impl SaslLogin {
    /// The mechanism named in SaslHandshake.
    pub fn mechanism(&self) -> Mechanism {
        match self {
            SaslLogin::Password(c) => c.mechanism(),
            SaslLogin::OAuthBearer { .. } => Mechanism::OAuthBearer,
        }
    }

    /// A fresh client state machine for one exchange.
    pub fn client(&self) -> Box<dyn SaslClient> {
        match self {
            SaslLogin::Password(c) => c.client(),
            SaslLogin::OAuthBearer { token, extensions } => {
                Box::new(OAuthBearerClient::new(token.clone(), extensions.clone()))
            }
        }
    }
}

/// How connections are secured. The default is PLAINTEXT.
#[derive(Clone, Default)]
pub struct Security {
    tls: Option<Arc<rustls::ClientConfig>>,
    sasl: Option<SaslLogin>,
}

impl fmt::Debug for Security {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Security")
            .field("protocol", &self.protocol())
            .field("sasl", &self.sasl)
            .finish()
    }
}

impl Security {
    /// PLAINTEXT: no TLS, no SASL.
    pub fn plaintext() -> Self {
        Security::default()
    }

    /// TLS with `tls` (SSL or SASL_SSL) and a SASL login (SASL_PLAINTEXT or SASL_SSL); with
    /// neither, PLAINTEXT.
    pub fn new(tls: Option<Arc<rustls::ClientConfig>>, sasl: Option<SaslLogin>) -> Self {
        Security { tls, sasl }
    }

    /// Reads a Kafka client properties file (`--command-config`: `security.protocol`,
    /// `sasl.mechanism`, `sasl.jaas.config`, `ssl.truststore.location`, librdkafka's keys too).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Security::try_from(ClientSecurity::load(path)?)
    }

    /// `security.protocol`.
    pub fn protocol(&self) -> SecurityProtocol {
        match (self.tls.is_some(), self.sasl.is_some()) {
            (false, false) => SecurityProtocol::Plaintext,
            (true, false) => SecurityProtocol::Ssl,
            (false, true) => SecurityProtocol::SaslPlaintext,
            (true, true) => SecurityProtocol::SaslSsl,
        }
    }

    /// The TLS client config, when connections use TLS.
    pub fn tls(&self) -> Option<&Arc<rustls::ClientConfig>> {
        self.tls.as_ref()
    }

    /// The SASL login, when connections authenticate.
    pub fn sasl(&self) -> Option<&SaslLogin> {
        self.sasl.as_ref()
    }
}

impl TryFrom<ClientSecurity> for Security {
    type Error = ConfigError;

    /// Takes the TLS config and login the protocol calls for; a protocol whose parts are missing
    /// (a `ClientSecurity` assembled by hand) is refused rather than silently downgraded.
    fn try_from(c: ClientSecurity) -> Result<Self, ConfigError> {
        let protocol = c.protocol;
        let tls = if protocol.uses_tls() {
            Some(
                c.tls
                    .ok_or_else(|| missing(protocol, "a TLS client config"))?,
            )
        } else {
            None
        };
        let sasl = if protocol.uses_sasl() {
            Some(SaslLogin::Password(
                c.sasl.ok_or_else(|| missing(protocol, "a SASL login"))?,
            ))
        } else {
            None
        };
        Ok(Security { tls, sasl })
    }
}

fn missing(protocol: SecurityProtocol, what: &str) -> ConfigError {
    ConfigError::Invalid {
        key: "security.protocol".into(),
        reason: format!("{} needs {what}", protocol.name()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strom_security::Properties;

    fn props(pairs: &[(&str, &str)]) -> Properties {
        pairs.iter().copied().collect()
    }

    #[test]
    fn protocol_follows_the_parts_and_debug_hides_secrets() {
        let c = ClientSecurity::from_properties(&props(&[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.username", "alice"),
            ("sasl.password", "alice-secret"),
        ]))
        .unwrap();
        let s = Security::try_from(c).unwrap();
        assert_eq!(s.protocol(), SecurityProtocol::SaslPlaintext);
        assert_eq!(
            s.sasl().map(SaslLogin::mechanism),
            Some(Mechanism::ScramSha512)
        );
        assert!(!format!("{s:?}").contains("alice-secret"), "{s:?}");
        assert_eq!(
            Security::plaintext().protocol(),
            SecurityProtocol::Plaintext
        );

        let token = SaslLogin::OAuthBearer {
            token: Password::new("eyJ.secret.jwt"),
            extensions: BTreeMap::from([("traceId".to_owned(), "1".to_owned())]),
        };
        let shown = format!("{:?}", Security::new(None, Some(token.clone())));
        assert!(
            !shown.contains("eyJ") && shown.contains("traceId"),
            "{shown}"
        );
        assert_eq!(token.client().mechanism(), Mechanism::OAuthBearer);
    }

    #[test]
    fn a_protocol_without_its_parts_is_refused() {
        let mut c = ClientSecurity::plaintext();
        c.protocol = SecurityProtocol::SaslSsl;
        let err = Security::try_from(c).unwrap_err();
        assert_eq!(err.key(), "security.protocol");
        assert!(err.to_string().contains("SASL_SSL needs"), "{err}");
    }
}
