//! `ClientSecurity`: how a client connects — the `strom` CLI from `--command-config FILE`, or
//! the broker itself to other brokers and controllers — built from Kafka client keys
//! (`security.protocol`, `sasl.mechanism`, `sasl.jaas.config` with `PlainLoginModule` /
//! `ScramLoginModule` `username="…" password="…"` [`tokenauth="true"`], `ssl.*`) or librdkafka's
//! (`sasl.mechanisms`, `sasl.username`, `sasl.password`, `ssl.ca.location`, …).
//!
//! The SASL part is kept as credentials, not as a mechanism instance: each connection (and
//! each KIP-368 re-authentication) needs a fresh state machine from [`SaslCredentials::client`].
//! OAUTHBEARER logins (token endpoints, client credentials) are out of scope here; a caller
//! holding a token uses [`crate::OAuthBearerClient`] directly.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::ClientConfig;

use crate::config::jaas::{JaasConfig, PLAIN_LOGIN_MODULE, SCRAM_LOGIN_MODULE};
use crate::config::listener::{ListenerConfig, SecurityProtocol};
use crate::config::listener_props::ListenerProps;
use crate::config::properties::{Password, Properties};
use crate::error::ConfigError;
use crate::sasl::plain::PlainClient;
use crate::sasl::scram::client::ScramClient;
use crate::sasl::scram::ScramMechanism;
use crate::sasl::{Mechanism, SaslClient};
use crate::tls::client::TlsClientSettings;
use crate::tls::stores::Lookup;

/// A SASL login: mechanism and secret.
#[derive(Clone)]
pub struct SaslCredentials {
    mechanism: Mechanism,
    username: String,
    password: Password,
    token_auth: bool,
}

impl fmt::Debug for SaslCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslCredentials")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &self.password)
            .field("token_auth", &self.token_auth)
            .finish()
    }
}

impl SaslCredentials {
    /// A user name and password login with PLAIN or SCRAM-SHA-256/512 (`None` for OAUTHBEARER,
    /// which logs in with a token). The web console makes one per HTTP basic login.
    pub fn password_login(
        mechanism: Mechanism,
        username: impl Into<String>,
        password: Password,
    ) -> Option<Self> {
        (mechanism != Mechanism::OAuthBearer).then(|| SaslCredentials {
            mechanism,
            username: username.into(),
            password,
            token_auth: false,
        })
    }

    /// The mechanism to name in SaslHandshake.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// The user name (or delegation token id).
    pub fn username(&self) -> &str {
        &self.username
    }

    /// A fresh client state machine for one exchange.
    pub fn client(&self) -> Box<dyn SaslClient> {
        match ScramMechanism::from_mechanism(self.mechanism) {
            Some(m) => Box::new(ScramClient::new(
                m,
                self.username.clone(),
                self.password.clone(),
                self.token_auth,
            )),
            None => Box::new(PlainClient::new(
                self.username.clone(),
                self.password.clone(),
            )),
        }
    }
}

/// How to connect: the protocol, the TLS config when it uses TLS, the SASL login when it uses SASL.
#[derive(Debug, Clone)]
pub struct ClientSecurity {
    /// `security.protocol`.
    pub protocol: SecurityProtocol,
    /// The TLS client config (SSL, SASL_SSL).
    pub tls: Option<Arc<ClientConfig>>,
    /// The SASL login (SASL_PLAINTEXT, SASL_SSL).
    pub sasl: Option<SaslCredentials>,
}

impl ClientSecurity {
    /// PLAINTEXT: no TLS, no SASL.
    pub fn plaintext() -> Self {
        ClientSecurity {
            protocol: SecurityProtocol::Plaintext,
            tls: None,
            sasl: None,
        }
    }

    /// Reads a `--command-config` file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::from_properties(&Properties::load(path, "--command-config")?)
    }

    /// From client properties.
    pub fn from_properties(p: &Properties) -> Result<Self, ConfigError> {
        let protocol = match p.setting("security.protocol") {
            None => SecurityProtocol::Plaintext,
            Some((k, v)) => SecurityProtocol::parse(&v).ok_or_else(|| {
                ConfigError::invalid(k, format!("unknown security protocol {v:?}"))
            })?,
        };
        let mechanism = p
            .setting("sasl.mechanism")
            .or_else(|| p.setting("sasl.mechanisms"));
        Self::build(
            p,
            protocol,
            mechanism,
            |p| p.setting("sasl.jaas.config"),
            || TlsClientSettings::from_properties(p),
        )
    }

    /// The broker's own connections to the inter-broker listener (`sasl.mechanism.inter.broker.protocol`,
    /// that listener's `ssl.*` keys and its mechanism's JAAS `username`/`password`).
    pub fn for_inter_broker(
        props: &Properties,
        listeners: &ListenerConfig,
    ) -> Result<Self, ConfigError> {
        let name = listeners
            .inter_broker_listener_name
            .clone()
            .ok_or_else(|| {
                ConfigError::missing(
                    "inter.broker.listener.name",
                    "for inter-broker connections (this node is not a broker)",
                )
            })?;
        let protocol = listeners
            .protocol_map
            .get(&name)
            .copied()
            .unwrap_or(SecurityProtocol::Plaintext);
        Self::for_listener(
            &ListenerProps::new(props, &name),
            protocol,
            "sasl.mechanism.inter.broker.protocol",
        )
    }

    /// The broker's connections to the controllers (the first of `controller.listener.names`,
    /// `sasl.mechanism.controller.protocol`).
    pub fn for_controller(
        props: &Properties,
        listeners: &ListenerConfig,
    ) -> Result<Self, ConfigError> {
        let name = listeners
            .controller_listener_names
            .first()
            .cloned()
            .ok_or_else(|| {
                ConfigError::missing("controller.listener.names", "for controller connections")
            })?;
        let protocol = listeners
            .protocol_map
            .get(&name)
            .copied()
            .unwrap_or(SecurityProtocol::Plaintext);
        Self::for_listener(
            &ListenerProps::new(props, &name),
            protocol,
            "sasl.mechanism.controller.protocol",
        )
    }

    fn for_listener(
        l: &ListenerProps<'_>,
        protocol: SecurityProtocol,
        mechanism_key: &str,
    ) -> Result<Self, ConfigError> {
        let mechanism = l.properties().setting(mechanism_key);
        Self::build(
            l,
            protocol,
            mechanism.clone(),
            |l| {
                let mech = mechanism.as_ref().map_or("GSSAPI", |(_, m)| m.as_str());
                l.lookup_for_mechanism(mech, "sasl.jaas.config")
                    .map(|s| (s.key.to_string(), s.value.to_string()))
            },
            || TlsClientSettings::from_listener(l),
        )
    }

    fn build<L: Lookup>(
        l: &L,
        protocol: SecurityProtocol,
        mechanism: Option<(String, String)>,
        jaas: impl Fn(&L) -> Option<(String, String)>,
        tls: impl Fn() -> Result<TlsClientSettings, ConfigError>,
    ) -> Result<Self, ConfigError> {
        let tls = if protocol.uses_tls() {
            Some(tls()?.build()?)
        } else {
            None
        };
        let sasl = if protocol.uses_sasl() {
            Some(credentials(l, mechanism, jaas)?)
        } else {
            None
        };
        Ok(ClientSecurity {
            protocol,
            tls,
            sasl,
        })
    }
}

fn credentials<L: Lookup>(
    l: &L,
    mechanism: Option<(String, String)>,
    jaas: impl Fn(&L) -> Option<(String, String)>,
) -> Result<SaslCredentials, ConfigError> {
    let (mech_key, mech_name) =
        mechanism.unwrap_or_else(|| ("sasl.mechanism".to_string(), "GSSAPI".to_string()));
    let mechanism = Mechanism::parse(&mech_name.to_ascii_uppercase())
        .filter(|m| *m != Mechanism::OAuthBearer)
        .ok_or_else(|| {
            ConfigError::invalid(mech_key, format!(
                "SASL mechanism {mech_name} is not supported for client logins (supported: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512){}",
                if mech_name == "GSSAPI" { "; Kafka's default is GSSAPI, so set this key" } else { "" }))
        })?;
    if let Some((key, text)) = jaas(l) {
        let entry = JaasConfig::parse_single(&text)
            .map_err(|e| ConfigError::invalid(key.clone(), e.to_string()))?;
        if entry.login_module != PLAIN_LOGIN_MODULE && entry.login_module != SCRAM_LOGIN_MODULE {
            return Err(ConfigError::invalid(
                key,
                format!(
                    "login module {} cannot log in with {mechanism}",
                    entry.login_module
                ),
            ));
        }
        let username = entry
            .option("username")
            .ok_or_else(|| ConfigError::invalid(key.clone(), "the username option is missing"))?;
        let password = entry
            .option("password")
            .ok_or_else(|| ConfigError::invalid(key.clone(), "the password option is missing"))?;
        let token_auth = entry
            .option("tokenauth")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        return Ok(SaslCredentials {
            mechanism,
            username: username.into(),
            password: Password::new(password),
            token_auth,
        });
    }
    match (l.setting("sasl.username"), l.setting("sasl.password")) {
        (Some((_, username)), Some((_, password))) => Ok(SaslCredentials {
            mechanism,
            username,
            password: Password::new(password),
            token_auth: false,
        }),
        _ => Err(ConfigError::missing(
            "sasl.jaas.config",
            format!("for SASL/{mechanism} (or sasl.username and sasl.password)"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sasl::ClientStep;

    fn props(pairs: &[(&str, &str)]) -> Properties {
        pairs.iter().copied().collect()
    }

    #[test]
    fn kafka_style_scram_over_ssl() {
        let pki = crate::test_support::TestPki::new();
        let text = format!(
            "security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\n\
             sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \\\n  username=\"alice\" password=\"alice-secret\";\n\
             ssl.truststore.location={}\n",
            pki.ca_path().display()
        );
        let file = pki.dir().join("client.properties");
        std::fs::write(&file, text).unwrap();
        let c = ClientSecurity::load(&file).unwrap();
        assert_eq!(c.protocol, SecurityProtocol::SaslSsl);
        assert!(c.tls.is_some());
        let sasl = c.sasl.unwrap();
        assert_eq!(
            (sasl.mechanism(), sasl.username()),
            (Mechanism::ScramSha512, "alice")
        );
        assert!(!format!("{sasl:?}").contains("alice-secret"));
        let first = sasl.client().initial_response().unwrap();
        assert!(String::from_utf8(first)
            .unwrap()
            .starts_with("n,,n=alice,r="));
    }

    #[test]
    fn librdkafka_style_plain() {
        let c = ClientSecurity::from_properties(&props(&[
            ("security.protocol", "sasl_plaintext"),
            ("sasl.mechanisms", "PLAIN"),
            ("sasl.username", "bob"),
            ("sasl.password", "bob-secret"),
        ]))
        .unwrap();
        assert!(c.tls.is_none());
        let mut client = c.sasl.unwrap().client();
        assert_eq!(client.initial_response().unwrap(), b"\0bob\0bob-secret");
        assert_eq!(client.step(b"").unwrap(), ClientStep::Done);
        assert_eq!(
            ClientSecurity::from_properties(&Properties::new())
                .unwrap()
                .protocol,
            SecurityProtocol::Plaintext
        );
    }

    #[test]
    fn errors_name_the_key() {
        let cases: [(&[(&str, &str)], &str); 5] = [
            (&[("security.protocol", "TLS")], "security.protocol"),
            (&[("security.protocol", "SASL_PLAINTEXT")], "sasl.mechanism"),
            (
                &[
                    ("security.protocol", "SASL_PLAINTEXT"),
                    ("sasl.mechanism", "PLAIN"),
                ],
                "sasl.jaas.config",
            ),
            (
                &[
                    ("security.protocol", "SASL_PLAINTEXT"),
                    ("sasl.mechanism", "PLAIN"),
                    (
                        "sasl.jaas.config",
                        "a.B required username=\"u\" password=\"p\";",
                    ),
                ],
                "sasl.jaas.config",
            ),
            (
                &[
                    ("security.protocol", "SSL"),
                    ("ssl.truststore.location", "/nonexistent.pem"),
                ],
                "ssl.truststore.location",
            ),
        ];
        for (pairs, key) in cases {
            let err = ClientSecurity::from_properties(&props(pairs)).unwrap_err();
            assert_eq!(err.key(), key, "{pairs:?}: {err}");
        }
    }

    #[test]
    fn inter_broker_login_from_the_listener_jaas() {
        let p = props(&[
            ("listeners", "INTERNAL://127.0.0.1:9092"),
            ("listener.security.protocol.map", "INTERNAL:SASL_PLAINTEXT"),
            ("inter.broker.listener.name", "INTERNAL"),
            ("sasl.mechanism.inter.broker.protocol", "PLAIN"),
            ("listener.name.internal.plain.sasl.jaas.config",
             "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"admin\" password=\"admin-secret\" user_admin=\"admin-secret\";"),
        ]);
        let listeners = ListenerConfig::from_props(&p).unwrap();
        let c = ClientSecurity::for_inter_broker(&p, &listeners).unwrap();
        assert_eq!(c.sasl.unwrap().username(), "admin");
        assert_eq!(
            ClientSecurity::for_controller(&p, &listeners)
                .unwrap_err()
                .key(),
            "controller.listener.names"
        );
    }
}
