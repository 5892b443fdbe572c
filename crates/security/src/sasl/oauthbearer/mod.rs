//! SASL/OAUTHBEARER (RFC 7628) with Kafka's broker-side JWT validation (KIP-768): the client's
//! initial response, a JWKS cache refreshed in the background, the validator, and the server
//! and client state machines. [`from_listener`] reads a listener's `sasl.oauthbearer.*` keys.
//!
//! Out of scope: Kafka's *unsecured* (unsigned-JWS) validator, which is its default when no JWKS
//! endpoint is configured — here `sasl.oauthbearer.jwks.endpoint.url` is required instead.

pub(crate) mod initial_response;
pub(crate) mod jwks;
pub(crate) mod server;
#[cfg(test)]
mod tests;
pub(crate) mod validator;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::config::jaas::JaasConfig;
use crate::config::listener_props::ListenerProps;
use crate::config::properties::{split_list, Properties};
use crate::error::ConfigError;
use crate::tls::client::TlsClientSettings;
use jwks::{JwksCache, JwksLocation, JwksRefresher, JwksSettings};
use validator::{OAuthBearerValidator, ValidatorSettings};

const MECHANISM: &str = "OAUTHBEARER";

/// Builds a listener's validator: reads its keys, fetches the JWKS once (so a wrong URL stops
/// the listener from starting, as in Kafka) and starts the background refresh, which runs until
/// the returned [`JwksRefresher`] is dropped. Must be called within a tokio runtime.
pub(crate) async fn from_listener(
    l: &ListenerProps<'_>,
) -> Result<(Arc<OAuthBearerValidator>, JwksRefresher), ConfigError> {
    let get = |key: &str| {
        l.lookup_for_mechanism(MECHANISM, key)
            .map(|s| (s.key.to_string(), s.value.trim().to_string()))
            .filter(|(_, v)| !v.is_empty())
    };
    let millis = |key: &str, default: u64| -> Result<Duration, ConfigError> {
        match get(key) {
            None => Ok(Duration::from_millis(default)),
            Some((k, v)) => v
                .parse::<u64>()
                .ok()
                .filter(|ms| *ms > 0)
                .map(Duration::from_millis)
                .ok_or_else(|| {
                    ConfigError::invalid(
                        k,
                        format!("expected a positive number of milliseconds, got {v:?}"),
                    )
                }),
        }
    };
    let url_key = "sasl.oauthbearer.jwks.endpoint.url";
    let (url_key, url) = get(url_key).ok_or_else(|| {
        ConfigError::missing(
            l.listener_name().mechanism_config_prefix(MECHANISM) + url_key,
            format!(
                "for SASL/OAUTHBEARER on listener {} (unsecured JWS validation is not supported)",
                l.listener_name()
            ),
        )
    })?;
    let location = if let Some(path) = url.strip_prefix("file://") {
        let path = PathBuf::from(path);
        if !path.is_file() {
            return Err(ConfigError::invalid(
                url_key,
                format!("{} is not a readable file", path.display()),
            ));
        }
        JwksLocation::File(path)
    } else if url.starts_with("https://") {
        JwksLocation::Https(url.clone())
    } else {
        return Err(ConfigError::invalid(
            url_key,
            "only https:// and file:// URLs are supported",
        ));
    };
    let tls = match &location {
        JwksLocation::File(_) => None,
        JwksLocation::Https(_) => {
            // Kafka reads the JWKS client's TLS settings from the OAuthBearerLoginModule's options.
            let mut ssl = Properties::new();
            if let Some(jaas) = l.lookup_for_mechanism(MECHANISM, "sasl.jaas.config") {
                let entry = JaasConfig::parse_single(jaas.value)
                    .map_err(|e| ConfigError::invalid(jaas.key, e.to_string()))?;
                for (k, v) in entry.options().filter(|(k, _)| k.starts_with("ssl.")) {
                    ssl.insert(k, v);
                }
            }
            Some(TlsClientSettings::from_properties(&ssl)?.build()?)
        }
    };
    let settings = JwksSettings {
        location,
        refresh: millis("sasl.oauthbearer.jwks.endpoint.refresh.ms", 3_600_000)?,
        retry_backoff: millis("sasl.oauthbearer.jwks.endpoint.retry.backoff.ms", 100)?,
        retry_backoff_max: millis(
            "sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms",
            10_000,
        )?,
        min_expedite_interval: Duration::from_secs(10),
        tls,
    };
    let jwks = JwksCache::load(settings)
        .await
        .map_err(|e| ConfigError::invalid(url_key.clone(), e.to_string()))?;
    let clock_skew_seconds = match get("sasl.oauthbearer.clock.skew.seconds") {
        None => 30,
        Some((k, v)) => v.parse().map_err(|_| {
            ConfigError::invalid(k, format!("expected a number of seconds, got {v:?}"))
        })?,
    };
    let validator_settings = ValidatorSettings {
        expected_audience: get("sasl.oauthbearer.expected.audience")
            .map(|(_, v)| split_list(&v))
            .unwrap_or_default(),
        expected_issuer: get("sasl.oauthbearer.expected.issuer").map(|(_, v)| v),
        sub_claim_name: get("sasl.oauthbearer.sub.claim.name")
            .map_or_else(|| "sub".into(), |(_, v)| v),
        scope_claim_name: get("sasl.oauthbearer.scope.claim.name")
            .map_or_else(|| "scope".into(), |(_, v)| v),
        clock_skew_seconds,
    };
    let refresher = jwks.spawn_refresher();
    Ok((
        Arc::new(OAuthBearerValidator::new(jwks, validator_settings)),
        refresher,
    ))
}
