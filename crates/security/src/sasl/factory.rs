//! `SaslServerFactory`: one per SASL listener, built from the listener's keys. It answers
//! SaslHandshake (the enabled mechanisms, `sasl.enabled.mechanisms` with the listener prefix
//! first) and creates one [`SaslServer`] per exchange. PLAIN users come from
//! `listener.name.<l>.plain.sasl.jaas.config` (falling back to `listener.name.<l>.sasl.jaas.config`
//! and then to a plain `sasl.jaas.config`, where Kafka would fall back to the JAAS file's
//! `KafkaServer` section); SCRAM credentials from the broker's [`ScramCredentialStore`];
//! OAUTHBEARER from the `sasl.oauthbearer.*` keys.

use std::fmt;
use std::sync::Arc;

use crate::config::jaas::{JaasConfig, PLAIN_LOGIN_MODULE};
use crate::config::listener_props::ListenerProps;
use crate::config::properties::split_list;
use crate::error::ConfigError;
use crate::sasl::oauthbearer::jwks::JwksRefresher;
use crate::sasl::oauthbearer::server::OAuthBearerServer;
use crate::sasl::oauthbearer::validator::OAuthBearerValidator;
use crate::sasl::plain::{PlainServer, PlainUsers};
use crate::sasl::scram::credential::ScramCredentialStore;
use crate::sasl::scram::server::ScramServer;
use crate::sasl::scram::ScramMechanism;
use crate::sasl::{Mechanism, SaslServer};

/// SaslHandshake asked for a mechanism this listener does not enable (Kafka answers
/// UNSUPPORTED_SASL_MECHANISM with the enabled list).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Unsupported SASL mechanism {requested}")]
pub struct UnsupportedMechanism {
    /// What the client asked for.
    pub requested: String,
    /// What the listener offers.
    pub enabled: Vec<&'static str>,
}

/// Creates the SASL servers of one listener.
pub struct SaslServerFactory {
    mechanisms: Vec<Mechanism>,
    plain: Option<Arc<PlainUsers>>,
    scram: Option<Arc<dyn ScramCredentialStore>>,
    oauth: Option<Arc<OAuthBearerValidator>>,
    /// Keeps the JWKS refresh task alive as long as the factory.
    _jwks_refresher: Option<JwksRefresher>,
}

impl fmt::Debug for SaslServerFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslServerFactory")
            .field("mechanisms", &self.mechanisms)
            .finish_non_exhaustive()
    }
}

const ENABLED: &str = "sasl.enabled.mechanisms";

impl SaslServerFactory {
    /// Reads the listener's SASL keys. `scram_store` is required when a SCRAM mechanism is
    /// enabled. With OAUTHBEARER this fetches the JWKS, so it must run inside a tokio runtime.
    pub async fn from_listener(
        l: &ListenerProps<'_>,
        scram_store: Option<Arc<dyn ScramCredentialStore>>,
    ) -> Result<Self, ConfigError> {
        let (key, names) = match l.lookup(ENABLED) {
            Some(s) => (s.key.to_string(), split_list(s.value)),
            // Kafka's default is GSSAPI, which does not exist here: say so rather than guess.
            None => (ENABLED.to_string(), vec!["GSSAPI".to_string()]),
        };
        let mut mechanisms = Vec::new();
        for name in &names {
            let m = Mechanism::parse(name).ok_or_else(|| {
                ConfigError::invalid(key.clone(), format!(
                    "SASL mechanism {name} is not supported (supported: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER){}",
                    if name == "GSSAPI" { "; Kafka's default is GSSAPI, so set this key" } else { "" }))
            })?;
            if !mechanisms.contains(&m) {
                mechanisms.push(m);
            }
        }
        if mechanisms.is_empty() {
            return Err(ConfigError::invalid(key, "no SASL mechanism enabled"));
        }
        let plain = if mechanisms.contains(&Mechanism::Plain) {
            Some(Arc::new(plain_users(l)?))
        } else {
            None
        };
        let needs_scram = mechanisms
            .iter()
            .any(|m| ScramMechanism::from_mechanism(*m).is_some());
        let scram = match (needs_scram, scram_store) {
            (true, None) => {
                return Err(ConfigError::invalid(
                    key,
                    "SCRAM is enabled but the broker gave no SCRAM credential store",
                ))
            }
            (true, Some(s)) => Some(s),
            (false, _) => None,
        };
        let (oauth, refresher) = if mechanisms.contains(&Mechanism::OAuthBearer) {
            let (v, r) = crate::sasl::oauthbearer::from_listener(l).await?;
            (Some(v), Some(r))
        } else {
            (None, None)
        };
        Ok(SaslServerFactory {
            mechanisms,
            plain,
            scram,
            oauth,
            _jwks_refresher: refresher,
        })
    }

    /// The enabled mechanisms, in configuration order.
    pub fn enabled_mechanisms(&self) -> &[Mechanism] {
        &self.mechanisms
    }

    /// Their names, for SaslHandshakeResponse.
    pub fn enabled_mechanism_names(&self) -> Vec<&'static str> {
        self.mechanisms.iter().map(|m| m.name()).collect()
    }

    /// The OAUTHBEARER validator, if enabled (to refresh its JWKS on a config update).
    pub fn oauth_validator(&self) -> Option<&Arc<OAuthBearerValidator>> {
        self.oauth.as_ref()
    }

    /// A server for one exchange of `mechanism` (the name from SaslHandshake).
    pub fn create(&self, mechanism: &str) -> Result<Box<dyn SaslServer>, UnsupportedMechanism> {
        let unsupported = || UnsupportedMechanism {
            requested: mechanism.to_string(),
            enabled: self.enabled_mechanism_names(),
        };
        let m = Mechanism::parse(mechanism)
            .filter(|m| self.mechanisms.contains(m))
            .ok_or_else(unsupported)?;
        match m {
            Mechanism::Plain => self
                .plain
                .clone()
                .map(|u| Box::new(PlainServer::new(u)) as Box<dyn SaslServer>),
            Mechanism::ScramSha256 | Mechanism::ScramSha512 => {
                self.scram.clone().and_then(|store| {
                    ScramMechanism::from_mechanism(m)
                        .map(|sm| Box::new(ScramServer::new(sm, store)) as Box<dyn SaslServer>)
                })
            }
            Mechanism::OAuthBearer => self
                .oauth
                .clone()
                .map(|v| Box::new(OAuthBearerServer::new(v)) as Box<dyn SaslServer>),
        }
        .ok_or_else(unsupported)
    }
}

fn plain_users(l: &ListenerProps<'_>) -> Result<PlainUsers, ConfigError> {
    let setting = l
        .lookup_for_mechanism("PLAIN", "sasl.jaas.config")
        .ok_or_else(|| {
            ConfigError::missing(
                l.listener_name().mechanism_config_prefix("PLAIN") + "sasl.jaas.config",
                format!("for SASL/PLAIN on listener {}", l.listener_name()),
            )
        })?;
    let entry = JaasConfig::parse_single(setting.value)
        .map_err(|e| ConfigError::invalid(setting.key, e.to_string()))?;
    if entry.login_module != PLAIN_LOGIN_MODULE {
        return Err(ConfigError::invalid(
            setting.key,
            format!(
                "expected {PLAIN_LOGIN_MODULE}, found {}",
                entry.login_module
            ),
        ));
    }
    let users = PlainUsers::from_jaas(&entry);
    if entry.options().all(|(k, _)| !k.starts_with("user_")) {
        tracing::warn!(
            key = setting.key,
            "SASL/PLAIN has no user_<name> options: every PLAIN login will fail"
        );
    }
    Ok(users)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sasl::scram::credential::{InMemoryScramCredentialStore, ScramCredential};
    use crate::sasl::Step;
    use crate::{ListenerName, Properties};

    fn props(pairs: &[(&str, &str)]) -> Properties {
        pairs.iter().copied().collect()
    }

    #[tokio::test]
    async fn builds_per_listener_and_creates_servers() {
        let p = props(&[
            ("listener.name.external.sasl.enabled.mechanisms", "SCRAM-SHA-512,PLAIN"),
            ("sasl.enabled.mechanisms", "PLAIN"),
            ("listener.name.external.plain.sasl.jaas.config",
             "org.apache.kafka.common.security.plain.PlainLoginModule required user_alice=\"alice-secret\";"),
        ]);
        let store = InMemoryScramCredentialStore::new();
        store.insert(
            ScramMechanism::Sha512,
            "bob",
            ScramCredential::generate("b", ScramMechanism::Sha512, 4096, None).unwrap(),
        );
        let ext = ListenerName::new("EXTERNAL");
        let f =
            SaslServerFactory::from_listener(&ListenerProps::new(&p, &ext), Some(Arc::new(store)))
                .await
                .unwrap();
        assert_eq!(f.enabled_mechanism_names(), ["SCRAM-SHA-512", "PLAIN"]);
        let mut plain = f.create("PLAIN").unwrap();
        assert!(matches!(
            plain.step(b"\0alice\0alice-secret").unwrap(),
            Step::Done(_)
        ));
        let mut scram = f.create("SCRAM-SHA-512").unwrap();
        assert!(matches!(
            scram.step(b"n,,n=bob,r=abc").unwrap(),
            Step::Continue(_)
        ));
        let err = f.create("SCRAM-SHA-256").unwrap_err();
        assert_eq!(err.enabled, ["SCRAM-SHA-512", "PLAIN"]);
        assert!(f.create("plain").is_err());
    }

    #[tokio::test]
    async fn configuration_errors_name_the_key() {
        let name = ListenerName::new("SASL_PLAINTEXT");
        let cases: [(&[(&str, &str)], &str); 5] = [
            (&[], "sasl.enabled.mechanisms"),
            (
                &[("sasl.enabled.mechanisms", "PLAIN,GSSAPI")],
                "sasl.enabled.mechanisms",
            ),
            (
                &[("sasl.enabled.mechanisms", "PLAIN")],
                "listener.name.sasl_plaintext.plain.sasl.jaas.config",
            ),
            (
                &[
                    ("sasl.enabled.mechanisms", "PLAIN"),
                    ("sasl.jaas.config", "x.Y required;"),
                ],
                "sasl.jaas.config",
            ),
            (
                &[(
                    "listener.name.sasl_plaintext.sasl.enabled.mechanisms",
                    "SCRAM-SHA-256",
                )],
                "listener.name.sasl_plaintext.sasl.enabled.mechanisms",
            ),
        ];
        for (pairs, key) in cases {
            let p = props(pairs);
            let err = SaslServerFactory::from_listener(&ListenerProps::new(&p, &name), None)
                .await
                .unwrap_err();
            assert_eq!(err.key(), key, "{pairs:?}: {err}");
        }
        let p = props(&[("sasl.enabled.mechanisms", "OAUTHBEARER")]);
        let err = SaslServerFactory::from_listener(&ListenerProps::new(&p, &name), None)
            .await
            .unwrap_err();
        assert_eq!(
            err.key(),
            "listener.name.sasl_plaintext.oauthbearer.sasl.oauthbearer.jwks.endpoint.url"
        );
    }
}
