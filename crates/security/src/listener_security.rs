//! `ListenerSecurity`: everything one listener needs, built in one call — the broker iterates
//! `ListenerConfig::listeners` and builds one per socket it binds: a TLS acceptor for SSL and
//! SASL_SSL, the SSL principal builder (`ssl.principal.mapping.rules`) for SSL, the SASL server
//! factory for SASL_PLAINTEXT and SASL_SSL. PLAINTEXT needs nothing: its principal is
//! `User:ANONYMOUS`.

use std::sync::Arc;

use crate::config::listener::{Listener, SecurityProtocol};
use crate::config::listener_props::ListenerProps;
use crate::config::properties::Properties;
use crate::error::ConfigError;
use crate::principal::kafka_principal::SslPrincipalBuilder;
use crate::principal::mapper::SslPrincipalMapper;
use crate::sasl::factory::SaslServerFactory;
use crate::sasl::scram::credential::ScramCredentialStore;
use crate::tls::acceptor::TlsAcceptorHandle;
use crate::tls::server::TlsServerSettings;

/// The security of one listener.
#[derive(Debug)]
pub struct ListenerSecurity {
    /// The listener.
    pub listener: Listener,
    /// Its TLS acceptor (SSL, SASL_SSL); shared with whatever reloads it.
    pub tls: Option<Arc<TlsAcceptorHandle>>,
    /// How SSL connections get their principal (SSL only; SASL_SSL uses SASL's).
    pub ssl_principal: Option<SslPrincipalBuilder>,
    /// Its SASL servers (SASL_PLAINTEXT, SASL_SSL).
    pub sasl: Option<Arc<SaslServerFactory>>,
}

impl ListenerSecurity {
    /// Reads the listener's keys and material (and, with OAUTHBEARER, its JWKS).
    pub async fn build(
        props: &Properties,
        listener: &Listener,
        scram_store: Option<Arc<dyn ScramCredentialStore>>,
    ) -> Result<Self, ConfigError> {
        let l = ListenerProps::new(props, &listener.name);
        let tls = if listener.protocol.uses_tls() {
            Some(Arc::new(TlsAcceptorHandle::new(
                TlsServerSettings::from_listener(&l, listener.protocol)?,
            )?))
        } else {
            None
        };
        let ssl_principal = if listener.protocol == SecurityProtocol::Ssl {
            let rules = l.lookup("ssl.principal.mapping.rules");
            let mapper = SslPrincipalMapper::from_rules(rules.map(|s| s.value)).map_err(|e| {
                ConfigError::invalid(
                    rules.map_or("ssl.principal.mapping.rules", |s| s.key),
                    e.to_string(),
                )
            })?;
            Some(SslPrincipalBuilder::new(mapper))
        } else {
            None
        };
        let sasl = if listener.protocol.uses_sasl() {
            Some(Arc::new(
                SaslServerFactory::from_listener(&l, scram_store).await?,
            ))
        } else {
            None
        };
        Ok(ListenerSecurity {
            listener: listener.clone(),
            tls,
            ssl_principal,
            sasl,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::listener::ListenerConfig;

    #[tokio::test]
    async fn builds_each_kind_of_listener() {
        let pki = crate::test_support::TestPki::new();
        let server = pki.server("broker");
        let p: Properties = [
            ("listeners", "PLAINTEXT://:0,SSL://:0,SASL_PLAINTEXT://:0"),
            (
                "ssl.keystore.location",
                server.keystore.to_str().unwrap_or_default(),
            ),
            (
                "listener.name.ssl.ssl.principal.mapping.rules",
                "RULE:^CN=([^,]*).*$/$1/L",
            ),
            ("sasl.enabled.mechanisms", "PLAIN"),
            (
                "sasl.jaas.config",
                "org.apache.kafka.common.security.plain.PlainLoginModule required user_a=\"b\";",
            ),
        ]
        .into_iter()
        .collect();
        let config = ListenerConfig::from_props(&p).unwrap();
        let mut built = Vec::new();
        for l in &config.listeners {
            built.push(ListenerSecurity::build(&p, l, None).await.unwrap());
        }
        assert!(built[0].tls.is_none() && built[0].sasl.is_none());
        assert!(built[1].tls.is_some() && built[1].ssl_principal.is_some());
        assert!(built[2].sasl.is_some() && built[2].tls.is_none());
        let mut bad = p.clone();
        bad.insert("listener.name.ssl.ssl.principal.mapping.rules", "RULE:x");
        let err = ListenerSecurity::build(&bad, &config.listeners[1], None)
            .await
            .unwrap_err();
        assert_eq!(err.key(), "listener.name.ssl.ssl.principal.mapping.rules");
    }
}
