//! `JwksCache`: the broker's copy of the identity provider's signing keys, from
//! `sasl.oauthbearer.jwks.endpoint.url` (`file://` or `https://`), loaded before the listener
//! accepts anything (as Kafka's resolver initialises at startup) and refreshed in the background
//! every `sasl.oauthbearer.jwks.endpoint.refresh.ms`, with retries backing off from
//! `...retry.backoff.ms` to `...retry.backoff.max.ms`. A token signed with an unknown `kid` fails
//! (as in Kafka) and asks for an early refresh, at most once per `min_expedite_interval`, so key
//! rotation is picked up quickly without letting random `kid`s hammer the provider. Kafka reads a
//! JWKS *file* only once; this cache refreshes files too, so rotating a file needs no restart.
//!
//! Concurrency: the key set is an immutable `Arc<Vec<Jwk>>` swapped under a `parking_lot` lock;
//! validation (on connection tasks) only clones the `Arc`. One background task per cache does the
//! refreshing and ends when its [`JwksRefresher`] is dropped.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use parking_lot::{Mutex, RwLock};
use rustls::ClientConfig;
use tokio::sync::Notify;

/// Where the JWKS lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksLocation {
    /// `file:///path/to/jwks.json`
    File(PathBuf),
    /// `https://idp.example.com/.well-known/jwks.json`
    Https(String),
}

/// How the cache fetches and refreshes.
#[derive(Debug, Clone)]
pub struct JwksSettings {
    /// The endpoint.
    pub location: JwksLocation,
    /// `sasl.oauthbearer.jwks.endpoint.refresh.ms` (Kafka's default 1 hour).
    pub refresh: Duration,
    /// `sasl.oauthbearer.jwks.endpoint.retry.backoff.ms` (100 ms).
    pub retry_backoff: Duration,
    /// `sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms` (10 s).
    pub retry_backoff_max: Duration,
    /// The least time between two refreshes triggered by unknown `kid`s.
    pub min_expedite_interval: Duration,
    /// TLS for `https://` (the JAAS entry's `ssl.*` options, else the system's CAs).
    pub tls: Option<Arc<ClientConfig>>,
}

/// A JWKS that could not be fetched or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("JWKS from {location}: {reason}")]
pub struct JwksError {
    location: String,
    reason: String,
}

type HttpsClient = Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Empty<Bytes>,
>;

/// The current signing keys.
pub struct JwksCache {
    settings: JwksSettings,
    keys: RwLock<Arc<Vec<Jwk>>>,
    expedite: Notify,
    last_expedite: Mutex<Option<Instant>>,
    https: Option<HttpsClient>,
}

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksCache")
            .field("location", &self.settings.location)
            .field("keys", &self.keys.read().len())
            .finish_non_exhaustive()
    }
}

/// The largest JWKS accepted (real ones are a few KiB).
const MAX_JWKS_BYTES: usize = 1 << 20;
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

impl JwksCache {
    /// Fetches the keys once; fails if that fails (the listener must not start without keys).
    pub async fn load(settings: JwksSettings) -> Result<Arc<JwksCache>, JwksError> {
        let https = match (&settings.location, &settings.tls) {
            (JwksLocation::Https(_), Some(tls)) => {
                let connector = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_tls_config((**tls).clone())
                    .https_only()
                    .enable_http1()
                    .build();
                Some(Client::builder(TokioExecutor::new()).build(connector))
            }
            _ => None,
        };
        let cache = Arc::new(JwksCache {
            settings,
            keys: RwLock::new(Arc::new(Vec::new())),
            expedite: Notify::new(),
            last_expedite: Mutex::new(None),
            https,
        });
        cache.refresh().await?;
        Ok(cache)
    }

    /// The current keys.
    pub fn keys(&self) -> Arc<Vec<Jwk>> {
        self.keys.read().clone()
    }

    fn error(&self, reason: impl Into<String>) -> JwksError {
        let location = match &self.settings.location {
            JwksLocation::File(p) => format!("file://{}", p.display()),
            JwksLocation::Https(u) => u.clone(),
        };
        JwksError {
            location,
            reason: reason.into(),
        }
    }

    /// Fetches now and swaps the key set in; returns how many usable keys it holds. On error
    /// the previous keys stay.
    pub async fn refresh(&self) -> Result<usize, JwksError> {
        let body = match &self.settings.location {
            JwksLocation::File(path) => tokio::fs::read(path)
                .await
                .map_err(|e| self.error(e.to_string()))?,
            JwksLocation::Https(url) => self.fetch(url).await?,
        };
        let keys = parse_jwks(&body).map_err(|e| self.error(e))?;
        let n = keys.len();
        *self.keys.write() = Arc::new(keys);
        tracing::debug!(location = ?self.settings.location, keys = n, "JWKS refreshed");
        Ok(n)
    }

    async fn fetch(&self, url: &str) -> Result<Vec<u8>, JwksError> {
        let client = self
            .https
            .as_ref()
            .ok_or_else(|| self.error("no TLS client configured"))?;
        let uri: hyper::Uri = url
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| self.error(e.to_string()))?;
        let response = tokio::time::timeout(FETCH_TIMEOUT, client.get(uri))
            .await
            .map_err(|_| self.error("timed out"))?
            .map_err(|e| self.error(format!("request failed: {e}")))?;
        if !response.status().is_success() {
            return Err(self.error(format!("HTTP status {}", response.status())));
        }
        let body = tokio::time::timeout(
            FETCH_TIMEOUT,
            Limited::new(response.into_body(), MAX_JWKS_BYTES).collect(),
        )
        .await
        .map_err(|_| self.error("timed out reading the body"))?
        .map_err(|e| self.error(format!("reading the body: {e}")))?;
        Ok(body.to_bytes().to_vec())
    }

    /// Asks the refresher for an early refresh (an unknown `kid` was seen), rate-limited.
    pub fn request_refresh(&self) {
        let mut last = self.last_expedite.lock();
        let now = Instant::now();
        if last.is_none_or(|t| now.duration_since(t) >= self.settings.min_expedite_interval) {
            *last = Some(now);
            self.expedite.notify_one();
        }
    }

    /// Starts the background refresh; it stops when the returned handle is dropped.
    pub fn spawn_refresher(self: &Arc<Self>) -> JwksRefresher {
        let cache = self.clone();
        JwksRefresher(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(cache.settings.refresh) => {}
                    _ = cache.expedite.notified() => {}
                }
                let mut backoff = cache.settings.retry_backoff;
                while let Err(e) = cache.refresh().await {
                    tracing::warn!(error = %e, "JWKS refresh failed; keeping the previous keys");
                    if backoff > cache.settings.retry_backoff_max {
                        break;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = backoff.saturating_mul(2);
                }
            }
        }))
    }
}

/// The background refresh task of a [`JwksCache`]; dropping it stops the task.
#[derive(Debug)]
pub struct JwksRefresher(tokio::task::JoinHandle<()>);

impl Drop for JwksRefresher {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// `{"keys":[...]}` → the usable signature keys. A key this library cannot read (another `kty`,
/// a curve it lacks) or one marked `"use":"enc"` is skipped rather than failing the whole set.
fn parse_jwks(body: &[u8]) -> Result<Vec<Jwk>, String> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let keys = value
        .get("keys")
        .and_then(|k| k.as_array())
        .ok_or("no \"keys\" array")?;
    let mut usable = Vec::new();
    for key in keys {
        match serde_json::from_value::<Jwk>(key.clone()) {
            Ok(jwk) if jwk.common.public_key_use == Some(PublicKeyUse::Encryption) => {}
            Ok(jwk) => usable.push(jwk),
            Err(e) => tracing::debug!(error = %e, "skipping a JWKS key this broker cannot use"),
        }
    }
    Ok(usable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_skips_unusable_keys() {
        let body = br#"{"keys":[{"kty":"EC","kid":"a","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty":"weird","kid":"b"},{"kty":"EC","kid":"c","use":"enc","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;
        let keys = parse_jwks(body).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].common.key_id.as_deref(), Some("a"));
        assert!(parse_jwks(b"[]").is_err());
        assert!(parse_jwks(b"nope").is_err());
    }
}
